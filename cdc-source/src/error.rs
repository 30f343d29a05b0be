//! The source's two kinds of error: transient ones are retried (reconnect with backoff, resume from
//! the last committed position — nothing is skipped), definite ones stop the service with a message
//! that says what to do.

use crate::position::{FilePos, GtidPosition};

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// Retried with backoff: connection lost, broker unavailable, timeouts.
    #[error("{0}")]
    Transient(String),
    /// Never retried: the service stops with this message.
    #[error("{0}")]
    Definite(String),
}

impl SourceError {
    pub fn is_transient(&self) -> bool {
        matches!(self, SourceError::Transient(_))
    }

    /// The metric label of the error's class.
    pub fn class(&self) -> &'static str {
        match self {
            SourceError::Transient(_) => "transient",
            SourceError::Definite(_) => "definite",
        }
    }

    /// Maps a MariaDB error met while doing `what`: server errors on our own statements are
    /// definite (grants, syntax), I/O and driver errors transient.
    pub fn mysql(what: &'static str) -> impl Fn(mysql_async::Error) -> SourceError {
        move |e| match e {
            mysql_async::Error::Server(ref s) if !is_transient_server_code(s.code) => {
                SourceError::Definite(format!("cannot {what}: {e}"))
            }
            e => SourceError::Transient(format!("cannot {what}: {e}")),
        }
    }

    /// Errors of the dump request itself.
    pub fn from_dump(e: mysql_async::Error, server_id: u32, from: &GtidPosition) -> SourceError {
        match e {
            mysql_async::Error::Server(ref s) => classify_dump(s.code, &s.message, server_id, &from.to_string(), None),
            e => SourceError::Transient(format!("binlog dump request failed: {e}")),
        }
    }

    /// Errors in the middle of the stream.
    pub fn from_stream(e: mysql_async::Error, at: FilePos) -> SourceError {
        match e {
            mysql_async::Error::Server(ref s) => classify_dump(s.code, &s.message, 0, "", Some(&at)),
            e => SourceError::Transient(format!("binlog stream broke at {at}: {e}")),
        }
    }

    /// One record larger than the topic, the broker or the producer accepts: definite, since
    /// retrying sends the same record again.
    pub fn record_too_large(table: &str, key: &str, size: usize, topic: &str, producer_max: &str, error: &str) -> SourceError {
        SourceError::Definite(format!(
            "a record of {table} with primary key ({key}) is {size} bytes, more than Kafka accepts on topic {topic} ({error}). \
             Raise `max.message.bytes` of that topic (or the broker's `message.max.bytes`, the default for topics without their own) \
             and, if the record is bigger than {producer_max} bytes, the producer's `message.max.bytes` (`kafka.message.max.bytes`), \
             or exclude the table; the Kafka transaction was aborted, nothing of it is visible, and the source resumes at that record when restarted"
        ))
    }

    /// A Kafka transaction open longer than `transaction.timeout.ms`: the broker aborted it.
    /// Definite: the same binlog transaction would take as long again.
    pub fn transaction_too_long(what: &str, open: std::time::Duration, timeout: std::time::Duration, error: &str) -> SourceError {
        SourceError::Definite(format!(
            "{what}: the Kafka transaction was open {:.1} s, longer than transaction.timeout.ms={} ms, so the broker aborted it ({error}). \
             A binlog transaction is published in one Kafka transaction: raise the producer's `transaction.timeout.ms` (`kafka.transaction.timeout.ms`) \
             above the time the largest binlog transaction takes to stream, and the broker's `transaction.max.timeout.ms` (15 min by default) if needed, \
             and keep `batch.max.ms` well below it",
            open.as_secs_f64(),
            timeout.as_millis()
        ))
    }

    /// Another instance took over the transactional id: definite.
    pub fn fenced(what: &str, error: &str) -> SourceError {
        SourceError::Definite(format!(
            "{what}: another cdc-source with the same `name` took over this source's transactional id ({error}); run one instance per name, or give this one another `name`"
        ))
    }

    /// A Kafka error: fatal ones (fenced, unsupported) are definite.
    pub fn kafka(what: &str, e: &rdkafka::error::KafkaError) -> SourceError {
        use rdkafka::error::RDKafkaErrorCode as C;
        let fatal = match e {
            rdkafka::error::KafkaError::Transaction(t) => t.is_fatal(),
            _ => false,
        };
        let fenced = matches!(e.rdkafka_error_code(), Some(C::Fenced | C::ProducerFenced | C::InvalidProducerEpoch));
        if fenced {
            SourceError::fenced(what, &e.to_string())
        } else if fatal {
            // The producer cannot go on; a new one (same transactional id) can: see
            // `Publisher::abort`, which recreates it.
            SourceError::Transient(format!("{what}: fatal Kafka producer error, recreating the producer: {e}"))
        } else {
            SourceError::Transient(format!("{what}: {e}"))
        }
    }
}

/// Server error codes worth retrying: deadlocks, lock waits, connection-level failures.
fn is_transient_server_code(code: u16) -> bool {
    matches!(code, 1205 | 1213 | 1040 | 1053 | 2006 | 2013 | 1927 | 4031)
}

fn classify_dump(code: u16, message: &str, server_id: u32, from: &str, at: Option<&FilePos>) -> SourceError {
    let at = at.map(|p| format!(" at {p}")).unwrap_or_default();
    match code {
        // ER_MASTER_FATAL_ERROR_READING_BINLOG: purged GTID, missing file, corrupt event.
        1236 => SourceError::Definite(format!(
            "the server cannot send the binlog{at} from GTID position '{from}': {message} (error 1236). If the binlogs were purged, the stored position is gone: reset this source's offsets (or use snapshot.mode=when_needed) to take a new snapshot"
        )),
        // ER_SLAVE_SAME_ID / a replica with the same server id connected.
        4052 | 1062 if message.to_ascii_lowercase().contains("server") => SourceError::Definite(format!(
            "another replica uses server.id={server_id} ({message}); give this source a distinct `server.id`"
        )),
        1045 | 1227 | 1044 => SourceError::Definite(format!(
            "the configured user may not read the binlog: {message} (error {code}); grant REPLICATION SLAVE, BINLOG MONITOR and SELECT (see sql/02-users.sql)"
        )),
        _ => SourceError::Transient(format!("binlog stream error{at}: {message} (error {code})")),
    }
}
