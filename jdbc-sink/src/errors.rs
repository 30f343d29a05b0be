//! The sink's two kinds of error, and where each failure belongs.
//!
//! - **Transient** ([`SinkError::Transient`]): connection lost, deadlock, lock wait timeout,
//!   registry or broker unreachable. The batch is rolled back and retried with backoff, forever;
//!   no record is skipped.
//! - **Record** ([`RecordError`]): one record can never be applied (undecodable bytes, unknown
//!   schema id, a hostile identifier, an incompatible type, a value that does not fit its column,
//!   a row whose statement is longer than the mirror server's `max_allowed_packet`, found before
//!   it is sent: see [`crate::writer`]).
//!   With `errors.tolerance=all` it goes to the dead letter queue; with `none` the sink stops with
//!   the message.
//! - **Definite** ([`SinkError::Definite`]): nothing a retry or the DLQ can fix (missing privileges, a
//!   broken configuration). The sink stops.

use mysql_async::Error as DbError;

/// Where one record came from.
pub use cdc_schema::MessageId;

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
    pub origin: MessageId,
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
    /// Nothing a retry or the DLQ can fix: stop the sink.
    #[error("{0}")]
    Definite(String),
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
    /// Any other error a statement of records gets from the server (a value that does not fit,
    /// a duplicate key, a constraint, anything unexpected): find the record. Its fate is the
    /// record's: the DLQ with `errors.tolerance=all`, a stop naming it with `none`. So no
    /// single record can wedge the sink.
    Data,
    /// The account or the server, not a record (privileges, a read-only or full server, a
    /// table dropped under the sink) and client-side failures: stop.
    Definite,
}

/// Server error codes about the database or the account rather than one record's data.
const ENVIRONMENT_CODES: &[u16] = &[
    1021, // disk full
    1036, // table is read only
    1044, 1045, // access denied
    1114, // table is full
    1142, 1143, // command / column denied
    1146, // table does not exist
    1227, // a privilege is needed
    1290, 1836, // read-only server
    1054, // unknown column: the table changed under the sink
];

/// Server error codes worth retrying.
const TRANSIENT_CODES: &[u16] = &[
    1040, // too many connections
    1053, // server shutdown in progress
    1158, 1159, 1160, 1161, // network read/write errors
    1205, // lock wait timeout
    1213, // deadlock
    1317, // query interrupted
    1927, // connection killed
    1969, // max_statement_time exceeded (statement.timeout.ms)
    2006, 2013, // server gone / lost connection
    4031, // disconnected by the server (idle)
];

/// Classifies a mysql_async error.
pub fn classify_db(e: &DbError) -> DbErrorKind {
    match e {
        DbError::Io(_) | DbError::Driver(_) => DbErrorKind::Transient,
        DbError::Server(s) if TRANSIENT_CODES.contains(&s.code) => DbErrorKind::Transient,
        DbError::Server(s) if ENVIRONMENT_CODES.contains(&s.code) => DbErrorKind::Definite,
        DbError::Server(_) => DbErrorKind::Data,
        _ => DbErrorKind::Definite,
    }
}

/// A database failure outside of any one record, as a [`SinkError`].
pub fn db_error(context: &str, e: &DbError) -> SinkError {
    match classify_db(e) {
        DbErrorKind::Transient => SinkError::transient(class::DATABASE, format!("{context}: {e}")),
        _ => SinkError::Definite(format!(
            "{context}: {e}; check the mirror database, its privileges for the sink user and connection.url"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(code: u16, state: &str) -> DbError {
        DbError::Server(mysql_async::ServerError {
            code,
            message: format!("error {code}"),
            state: state.into(),
        })
    }

    #[test]
    fn values_that_do_not_fit_are_data_errors_whatever_their_sqlstate() {
        for (code, state) in [
            (1265, "01000"), // data truncated (an ENUM label the mirror lacks)
            (1264, "22003"), // out of range
            (1366, "HY000"), // incorrect value
            (1292, "22007"), // incorrect date
            (1406, "22001"), // data too long
            (1364, "HY000"), // field has no default
            (1048, "23000"), // column cannot be null
            (1062, "23000"), // duplicate key
            (1452, "23000"), // foreign key
            (4025, "23000"), // CHECK constraint
        ] {
            assert_eq!(classify_db(&server(code, state)), DbErrorKind::Data, "{code}");
        }
    }

    #[test]
    fn the_account_and_the_server_stop_the_sink_and_connections_retry() {
        for code in [1142, 1044, 1290, 1021, 1146] {
            assert_eq!(classify_db(&server(code, "42000")), DbErrorKind::Definite, "{code}");
        }
        for code in [1213, 1205, 2013, 1927] {
            assert_eq!(classify_db(&server(code, "HY000")), DbErrorKind::Transient, "{code}");
        }
    }
}
