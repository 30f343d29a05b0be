//! The sink's two kinds of error, and where each failure belongs.
//!
//! - **Transient** ([`SinkError::Transient`]): connection lost, deadlock, lock wait timeout,
//!   registry or broker unreachable. The batch is rolled back and retried with backoff, forever;
//!   no record is skipped.
//! - **Record** ([`RecordError`]): one record can never be applied (undecodable bytes, unknown
//!   schema id, a hostile identifier, an incompatible type, a value that does not fit its column).
//!   With `errors.tolerance=all` it goes to the dead letter queue; with `none` the sink stops with
//!   the message.
//! - **Fatal** ([`SinkError::Fatal`]): nothing a retry or the DLQ can fix (missing privileges, a
//!   broken configuration). The sink stops.

use mysql_async::Error as DbError;

/// Where one record came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}[{}]@{}", self.topic, self.partition, self.offset)
    }
}

/// Error classes: the `class` label of the error metrics and the DLQ header.
pub mod class {
    pub const DECODE: &str = "decode";
    pub const IDENTIFIER: &str = "identifier";
    pub const SCHEMA: &str = "schema";
    pub const DATA: &str = "data";
    pub const DATABASE: &str = "database";
    pub const KAFKA: &str = "kafka";
    pub const REGISTRY: &str = "registry";

    /// Classes of a record that can never be applied (the DLQ's classes).
    pub const RECORD: [&str; 4] = [DECODE, IDENTIFIER, SCHEMA, DATA];
    /// Classes of transient failures, retried with backoff.
    pub const TRANSIENT: [&str; 3] = [DATABASE, KAFKA, REGISTRY];
}

/// A record that can never be applied.
#[derive(Debug, Clone, thiserror::Error)]
#[error("record {origin} cannot be applied ({class}): {message}")]
pub struct RecordError {
    pub origin: Origin,
    /// One of [`class`].
    pub class: &'static str,
    pub message: String,
}

#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// Retry with backoff; `class` is the metrics label.
    #[error("{message}")]
    Transient {
        class: &'static str,
        message: String,
    },
    /// A record that can never be applied.
    #[error(transparent)]
    Record(#[from] RecordError),
    /// Stop the sink.
    #[error("{0}")]
    Fatal(String),
    /// Shutdown was requested while waiting to retry a transient failure; nothing is lost (the
    /// open batch is not committed and is read again on the next start).
    #[error("stopped while waiting to retry: {0}")]
    Stopped(String),
}

impl SinkError {
    pub fn transient(class: &'static str, message: impl std::fmt::Display) -> SinkError {
        SinkError::Transient {
            class,
            message: message.to_string(),
        }
    }
}

/// How a database failure should be handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DbErrorKind {
    /// Retry the batch: connection trouble, deadlock, lock wait timeout.
    Transient,
    /// The data of some record does not fit (SQLSTATE class 22 or 23): find the record.
    Data,
    /// Anything else (privileges, syntax, missing objects): stop.
    Fatal,
}

/// Server error codes worth retrying.
const TRANSIENT_CODES: &[u16] = &[
    1040, // too many connections
    1053, // server shutdown in progress
    1158, 1159, 1160, 1161, // network read/write errors
    1205, // lock wait timeout
    1213, // deadlock
    1317, // query interrupted
    1927, // connection killed
    2006, 2013, // server gone / lost connection
    4031, // disconnected by the server (idle)
];

/// Classifies a mysql_async error.
pub fn classify_db(e: &DbError) -> DbErrorKind {
    match e {
        DbError::Io(_) | DbError::Driver(_) => DbErrorKind::Transient,
        DbError::Server(s) if TRANSIENT_CODES.contains(&s.code) => DbErrorKind::Transient,
        DbError::Server(s) if s.state.starts_with("22") || s.state.starts_with("23") => {
            DbErrorKind::Data
        }
        // Truncation and conversion errors MariaDB reports with SQLSTATE HY000.
        DbError::Server(s) if matches!(s.code, 1292 | 1366 | 1367 | 3140 | 4025) => {
            DbErrorKind::Data
        }
        _ => DbErrorKind::Fatal,
    }
}

/// A database failure outside of any one record, as a [`SinkError`].
pub fn db_error(context: &str, e: &DbError) -> SinkError {
    match classify_db(e) {
        DbErrorKind::Transient => SinkError::transient(class::DATABASE, format!("{context}: {e}")),
        _ => SinkError::Fatal(format!(
            "{context}: {e}; check the mirror database, its privileges for the sink user and connection.url"
        )),
    }
}
