//! The source's two kinds of error: transient ones are retried (reconnect with backoff, resume from
//! the last committed position — nothing is skipped), definite ones stop the service with a message
//! that says what to do.
//!
//! Each variant says what happened and keeps its cause (`source()`); [`SourceError::is_transient`]
//! decides from the variant and the typed cause (a server error code, librdkafka's code, the
//! registry's answer), never from message text.

use std::time::Duration;

use cdc_schema::{EncodeError, RegistryError, SchemaError};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};

use crate::position::{FilePos, GtidPosition};

/// A cause of any type, for the few variants whose cause differs by call site.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// One of our own statements on the source server failed: server errors are definite
    /// (grants, syntax) unless their code says connection loss or a lock conflict; I/O and
    /// driver errors are transient.
    #[error("cannot {context}: {error}")]
    Mysql { context: &'static str, #[source] error: mysql_async::Error },
    /// The binlog dump request failed before the server answered it (I/O, driver): transient.
    #[error("binlog dump request failed: {error}")]
    DumpRequest { #[source] error: mysql_async::Error },
    /// The binlog stream broke without a server error (I/O, driver): transient.
    #[error("binlog stream broke at {at}: {error}")]
    StreamBroke { at: FilePos, #[source] error: mysql_async::Error },
    /// The server refused or ended the binlog stream with an error: definite for a purged
    /// position, a taken server id and missing grants, transient otherwise.
    #[error("{}", binlog_refused(error, *server_id, from, at.as_ref()))]
    BinlogRefused { server_id: u32, from: String, at: Option<FilePos>, #[source] error: mysql_async::ServerError },
    /// The binlog could not be opened at a file position (rewinding for an XA group): definite.
    #[error("cannot read the binlog from {at} (server id {server_id}): {error}; the binlog file may have been purged")]
    BinlogFileUnreadable { at: FilePos, server_id: u32, #[source] error: mysql_async::Error },
    /// Nothing, not even a heartbeat, arrived within the read timeout: transient.
    #[error("no binlog event or heartbeat for {0:?} (read.timeout.ms): the source server or the network path to it stopped answering; reconnecting")]
    ReadTimeout(Duration),
    /// Opening a connection to the source server (TCP, handshake, session set-up) did not finish
    /// within `connect.timeout.ms`: transient.
    #[error("the source server did not complete the connection within {0:?} (connect.timeout.ms): it or the network path to it is not answering; retrying")]
    ConnectTimeout(Duration),
    /// The server closed the binlog stream: transient.
    #[error("the server ended the binlog stream")]
    StreamEnded,
    /// The publisher task stopped taking records (its own error says why): transient.
    #[error("the Kafka publisher task stopped")]
    PublisherStopped,
    /// A start-up check failed: definite.
    #[error("preflight: {message}")]
    Preflight { message: String, #[source] cause: Option<BoxError> },
    /// A table's definition cannot be read or mapped: definite.
    #[error("{context}: {error}")]
    Schema { context: String, #[source] error: SchemaError },
    /// A row, or a stored key, cannot be decoded: definite.
    #[error("{context}: {error}")]
    Decode { context: String, #[source] error: BoxError },
    /// Encoding a record failed: transient when the registry is unreachable, definite for an
    /// incompatible or unencodable schema.
    #[error("encoding the {part} of a record for {topic}: {error}")]
    Encode { part: &'static str, topic: String, #[source] error: EncodeError },
    /// Reading a subject's latest schema at start: transient.
    #[error("reading the latest schema of {subject} from the registry: {error}")]
    Registry { subject: String, #[source] error: RegistryError },
    /// librdkafka refuses the `kafka.*` settings: definite.
    #[error("invalid Kafka {what} (kafka.*): {error}")]
    KafkaConfig { what: &'static str, #[source] error: KafkaError },
    /// A Kafka call failed: transient (fatal and fenced producers have their own variants).
    #[error("{context}: {error}")]
    Kafka { context: String, #[source] error: KafkaError },
    /// A local librdkafka call refused its arguments: definite.
    #[error("{0}")]
    KafkaLocal(#[source] KafkaError),
    /// The producer is in a fatal state; a new one under the same transactional id can go on:
    /// transient (see `Publisher::abort`, which recreates it).
    #[error(transparent)]
    KafkaFatal(Box<KafkaFatal>),
    /// A record of the transaction was not delivered: transient.
    #[error(transparent)]
    NotDelivered(Box<NotDelivered>),
    /// Another instance took over the transactional id: definite.
    #[error(transparent)]
    Fenced(Box<Fenced>),
    /// One record larger than the topic, the broker or the producer accepts: definite, since
    /// retrying sends the same record again.
    #[error(transparent)]
    RecordTooLarge(Box<RecordTooLarge>),
    /// A Kafka transaction open longer than `transaction.timeout.ms`: the broker aborted it.
    /// Definite: the same binlog transaction would take as long again.
    #[error(transparent)]
    TransactionTooLong(Box<TransactionTooLong>),
    /// The broker refuses the producer's `transaction.timeout.ms`: definite.
    #[error(
        "the broker refuses transaction.timeout.ms={} ms ({error}): lower `kafka.transaction.timeout.ms` to at most the broker's `transaction.max.timeout.ms` (15 min by default), or raise that",
        timeout.as_millis()
    )]
    TransactionTimeoutRefused { timeout: Duration, #[source] error: KafkaError },
    /// The broker did not create a topic: transient unless the refusal lasts
    /// ([`crate::topics::refused_for_good`]).
    #[error("cannot create topic {topic}: {code} ({})", crate::topics::refusal_hint(*code))]
    TopicNotCreated { topic: String, code: RDKafkaErrorCode },
    /// A topic just created is not in the metadata yet: transient.
    #[error("topic {topic} has no partitions in the broker metadata yet")]
    NoPartitionsYet { topic: String },
    /// Reading the offsets topic took too long: transient.
    #[error("reading the offsets topic {topic} took over 60 s")]
    OffsetsReadTimeout { topic: String },
    /// The stored offset record cannot be read: definite.
    #[error("offset record of `{name}` in {topic} at offset {offset} is unreadable ({error}); delete it or use another `name`")]
    OffsetRecordUnreadable { name: String, topic: String, offset: i64, #[source] error: serde_json::Error },
    /// The offset record cannot be serialised: definite.
    #[error("offset record: {0}")]
    OffsetRecordEncode(#[source] serde_json::Error),
    /// A blocking task died or was cancelled: transient.
    #[error("{context}: {error}")]
    Task { context: &'static str, #[source] error: tokio::task::JoinError },
    /// The server reported a GTID position that does not parse: definite.
    #[error("{0}")]
    Position(String),
    /// The service's HTTP listener cannot start: definite.
    #[error("{0}")]
    Http(#[source] std::io::Error),
    /// Shutdown during the snapshot: transient (the next start resumes it).
    #[error("stopped during the snapshot; it resumes after its last committed chunk on the next start")]
    SnapshotStopped,
    /// A condition this code detects itself, with no underlying error, worth a retry.
    #[error("{0}")]
    Transient(String),
    /// A condition this code detects itself, with no underlying error, that retrying cannot
    /// change: the service stops with this message.
    #[error("{0}")]
    Definite(String),
}

impl SourceError {
    pub fn is_transient(&self) -> bool {
        use SourceError as E;
        match self {
            E::Mysql { error, .. } => is_transient_mysql(error),
            E::BinlogRefused { error, .. } => dump_refusal(error).is_none(),
            E::TopicNotCreated { code, .. } => !crate::topics::refused_for_good(*code),
            E::Encode { error, .. } => error.is_transient(),
            E::DumpRequest { .. }
            | E::StreamBroke { .. }
            | E::ReadTimeout(_)
            | E::ConnectTimeout(_)
            | E::StreamEnded
            | E::PublisherStopped
            | E::Registry { .. }
            | E::Kafka { .. }
            | E::KafkaFatal(_)
            | E::NotDelivered(_)
            | E::NoPartitionsYet { .. }
            | E::OffsetsReadTimeout { .. }
            | E::Task { .. }
            | E::SnapshotStopped
            | E::Transient(_) => true,
            E::BinlogFileUnreadable { .. }
            | E::Preflight { .. }
            | E::Schema { .. }
            | E::Decode { .. }
            | E::KafkaConfig { .. }
            | E::KafkaLocal(_)
            | E::Fenced(_)
            | E::RecordTooLarge(_)
            | E::TransactionTooLong(_)
            | E::TransactionTimeoutRefused { .. }
            | E::OffsetRecordUnreadable { .. }
            | E::OffsetRecordEncode(_)
            | E::Position(_)
            | E::Http(_)
            | E::Definite(_) => false,
        }
    }

    /// The topic whose broker refused a record for good — too large, or the topic denied to
    /// this producer (ACL), or the record invalid for it (e.g. a keyless record on a compacted
    /// topic) — when that is this error: the refusal is the table's, not the source's.
    pub fn refused_on_topic(&self) -> Option<&str> {
        use rdkafka::types::RDKafkaErrorCode as C;
        match self {
            SourceError::RecordTooLarge(e) => Some(&e.topic),
            SourceError::NotDelivered(e)
                if matches!(e.code, Some(C::TopicAuthorizationFailed | C::InvalidRecord | C::PolicyViolation)) =>
            {
                Some(&e.topic)
            }
            _ => None,
        }
    }

    /// The metric label of the error's class.
    pub fn class(&self) -> &'static str {
        if self.is_transient() {
            "transient"
        } else {
            "definite"
        }
    }

    /// Maps a MariaDB error met while doing `context` (see [`SourceError::Mysql`]).
    pub fn mysql(context: &'static str) -> impl Fn(mysql_async::Error) -> SourceError {
        move |error| SourceError::Mysql { context, error }
    }

    /// Errors of the dump request itself.
    pub fn from_dump(e: mysql_async::Error, server_id: u32, from: &GtidPosition) -> SourceError {
        match e {
            mysql_async::Error::Server(error) => SourceError::BinlogRefused { server_id, from: from.to_string(), at: None, error },
            error => SourceError::DumpRequest { error },
        }
    }

    /// Errors in the middle of the stream.
    pub fn from_stream(e: mysql_async::Error, at: FilePos) -> SourceError {
        match e {
            mysql_async::Error::Server(error) => SourceError::BinlogRefused { server_id: 0, from: String::new(), at: Some(at), error },
            error => SourceError::StreamBroke { at, error },
        }
    }

    /// A start-up check failed, with no underlying error.
    pub fn preflight(message: String) -> SourceError {
        SourceError::Preflight { message, cause: None }
    }

    /// A start-up check failed on `cause`.
    pub fn preflight_on(message: String, cause: impl Into<BoxError>) -> SourceError {
        SourceError::Preflight { message, cause: Some(cause.into()) }
    }

    /// A Kafka error met while doing `context`: fenced is definite; a fatal producer error is
    /// transient (a new producer can go on), as is everything else.
    pub fn kafka(context: &str, error: &KafkaError) -> SourceError {
        let context = context.to_string();
        if is_fenced(error.rdkafka_error_code()) {
            SourceError::Fenced(Box::new(Fenced { context, reason: error.to_string(), error: error.clone() }))
        } else if matches!(error, KafkaError::Transaction(t) if t.is_fatal()) {
            SourceError::KafkaFatal(Box::new(KafkaFatal { context, reason: error.to_string(), error: error.clone() }))
        } else {
            SourceError::Kafka { context, error: error.clone() }
        }
    }
}

// The producer's failures carry the most text; boxed, they keep `SourceError` small.

/// See [`SourceError::KafkaFatal`]. `reason` is librdkafka's reason for the fatal state.
#[derive(Debug, thiserror::Error)]
#[error("{context}: fatal Kafka producer error, recreating the producer: {reason}")]
pub struct KafkaFatal {
    pub context: String,
    pub reason: String,
    #[source]
    pub error: KafkaError,
}

/// See [`SourceError::NotDelivered`]. `delivery` is the delivery report's error; `error` the
/// failed call's.
#[derive(Debug, thiserror::Error)]
#[error("{context}: record of {table} ({key}) on topic {topic} was not delivered: {delivery}")]
pub struct NotDelivered {
    pub context: String,
    /// The delivery report's error code.
    pub code: Option<rdkafka::types::RDKafkaErrorCode>,
    pub table: String,
    pub key: String,
    pub topic: String,
    pub delivery: String,
    #[source]
    pub error: KafkaError,
}

/// See [`SourceError::Fenced`].
#[derive(Debug, thiserror::Error)]
#[error("{context}: another cdc-source with the same `name` took over this source's transactional id ({reason}); run one instance per name, or give this one another `name`")]
pub struct Fenced {
    pub context: String,
    pub reason: String,
    #[source]
    pub error: KafkaError,
}

/// See [`SourceError::RecordTooLarge`]. `detail` is what the producer or the delivery report
/// said.
#[derive(Debug, thiserror::Error)]
#[error(
    "a record of {table} with primary key ({key}) is {size} bytes, more than Kafka accepts on topic {topic} ({detail}). \
     Raise `max.message.bytes` of that topic (or the broker's `message.max.bytes`, the default for topics without their own) \
     and, if the record is bigger than {producer_max} bytes, the producer's `message.max.bytes` (`kafka.message.max.bytes`), \
     or exclude the table; the Kafka transaction holding it was aborted (nothing of it is visible)"
)]
pub struct RecordTooLarge {
    pub table: String,
    pub key: String,
    pub size: usize,
    pub topic: String,
    pub producer_max: String,
    pub detail: String,
}

/// See [`SourceError::TransactionTooLong`].
#[derive(Debug, thiserror::Error)]
#[error(
    "{context}: the Kafka transaction was open {:.1} s, longer than transaction.timeout.ms={} ms, so the broker aborted it ({reason}). \
     A binlog transaction is published in one Kafka transaction: raise the producer's `transaction.timeout.ms` (`kafka.transaction.timeout.ms`) \
     above the time the largest binlog transaction takes to stream, and the broker's `transaction.max.timeout.ms` (15 min by default) if needed, \
     and keep `batch.max.ms` well below it",
    open.as_secs_f64(),
    timeout.as_millis()
)]
pub struct TransactionTooLong {
    pub context: String,
    pub open: Duration,
    pub timeout: Duration,
    pub reason: String,
    #[source]
    pub error: KafkaError,
}

/// librdkafka's codes for a producer another instance has taken over.
pub(crate) fn is_fenced(code: Option<RDKafkaErrorCode>) -> bool {
    use RDKafkaErrorCode as C;
    matches!(code, Some(C::InvalidProducerEpoch | C::ProducerFenced | C::Fenced))
}

fn is_transient_mysql(e: &mysql_async::Error) -> bool {
    match e {
        mysql_async::Error::Server(s) => is_transient_server_code(s.code),
        _ => true,
    }
}

/// Server error codes worth retrying: deadlocks, lock waits, connection-level failures.
fn is_transient_server_code(code: u16) -> bool {
    matches!(code, 1205 | 1213 | 1040 | 1053 | 2006 | 2013 | 1927 | 4031)
}

/// Why the server refused the binlog for good, if it did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DumpRefusal {
    /// ER_MASTER_FATAL_ERROR_READING_BINLOG: purged GTID, missing file, corrupt event.
    Unreadable,
    /// ER_SLAVE_SAME_ID / a replica with the same server id connected.
    ServerIdTaken,
    /// Missing grants.
    NotPermitted,
}

fn dump_refusal(e: &mysql_async::ServerError) -> Option<DumpRefusal> {
    match e.code {
        1236 => Some(DumpRefusal::Unreadable),
        // The code alone is ambiguous (1062 is also a duplicate key); the server's message says
        // which.
        4052 | 1062 if e.message.to_ascii_lowercase().contains("server") => Some(DumpRefusal::ServerIdTaken),
        1045 | 1227 | 1044 => Some(DumpRefusal::NotPermitted),
        _ => None,
    }
}

fn binlog_refused(e: &mysql_async::ServerError, server_id: u32, from: &str, at: Option<&FilePos>) -> String {
    let at = at.map(|p| format!(" at {p}")).unwrap_or_default();
    let (code, message) = (e.code, &e.message);
    match dump_refusal(e) {
        Some(DumpRefusal::Unreadable) => format!(
            "the server cannot send the binlog{at} from GTID position '{from}': {message} (error 1236). If the binlogs were purged, the stored position is gone: reset this source's offsets (or use snapshot.mode=when_needed) to take a new snapshot"
        ),
        Some(DumpRefusal::ServerIdTaken) => format!("another replica uses server.id={server_id} ({message}); give this source a distinct `server.id`"),
        Some(DumpRefusal::NotPermitted) => format!(
            "the configured user may not read the binlog: {message} (error {code}); grant REPLICATION SLAVE, BINLOG MONITOR and SELECT (see sql/02-users.sql)"
        ),
        None => format!("binlog stream error{at}: {message} (error {code})"),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::error::Error as _;

    use super::*;

    fn server(code: u16, message: &str) -> mysql_async::Error {
        mysql_async::Error::Server(mysql_async::ServerError { code, message: message.into(), state: "HY000".into() })
    }

    fn io() -> mysql_async::Error {
        mysql_async::Error::Io(mysql_async::IoError::Io(std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset")))
    }

    fn at() -> FilePos {
        FilePos { file: "mariadb-bin.000001".into(), pos: 4 }
    }

    #[test]
    fn our_statements_are_transient_on_connection_loss_and_lock_conflicts_only() {
        for code in [2013, 2006, 1213, 1205, 1040, 1053, 1927, 4031] {
            assert!(SourceError::mysql("read grants")(server(code, "x")).is_transient(), "{code}");
        }
        for code in [1045, 1142, 1064, 1236] {
            assert!(!SourceError::mysql("read grants")(server(code, "x")).is_transient(), "{code}");
        }
        let e = SourceError::mysql("read grants")(io());
        assert!(e.is_transient());
        assert_eq!(e.to_string(), format!("cannot read grants: {}", io()));
    }

    #[test]
    fn the_binlog_refused_for_good_is_definite_and_says_why() {
        let from: GtidPosition = "0-1-42".parse().unwrap();
        let purged = SourceError::from_dump(server(1236, "Could not find GTID state"), 7, &from);
        assert!(!purged.is_transient());
        assert!(purged.to_string().starts_with("the server cannot send the binlog from GTID position '0-1-42': Could not find GTID state (error 1236)"), "{purged}");
        let denied = SourceError::from_dump(server(1045, "Access denied"), 7, &from);
        assert!(!denied.is_transient() && denied.to_string().contains("grant REPLICATION SLAVE"), "{denied}");
        let taken = SourceError::from_dump(server(4052, "A slave with the same server_uuid/server_id"), 7, &from);
        assert!(!taken.is_transient() && taken.to_string().contains("server.id=7"), "{taken}");
        // 1062 without "server" in it is not about the server id.
        assert!(SourceError::from_dump(server(1062, "Duplicate entry"), 7, &from).is_transient());
        let lost = SourceError::from_stream(server(2013, "Lost connection"), at());
        assert!(lost.is_transient());
        assert_eq!(lost.to_string(), "binlog stream error at mariadb-bin.000001:4: Lost connection (error 2013)");
        let broke = SourceError::from_stream(io(), at());
        assert!(broke.is_transient() && broke.to_string().starts_with("binlog stream broke at mariadb-bin.000001:4: "), "{broke}");
        assert!(SourceError::from_dump(io(), 7, &from).is_transient());
    }

    #[test]
    fn kafka_errors_are_classified_by_their_code() {
        let fenced = SourceError::kafka("commit", &KafkaError::MessageProduction(RDKafkaErrorCode::ProducerFenced));
        assert!(matches!(fenced, SourceError::Fenced(_)) && !fenced.is_transient(), "{fenced}");
        assert!(fenced.to_string().contains("took over"), "{fenced}");
        let down = SourceError::kafka("commit", &KafkaError::MessageProduction(RDKafkaErrorCode::AllBrokersDown));
        assert!(matches!(down, SourceError::Kafka { .. }) && down.is_transient(), "{down}");
        let config = SourceError::KafkaConfig { what: "settings", error: KafkaError::ClientCreation("bad".into()) };
        assert!(!config.is_transient());
        assert_eq!(config.class(), "definite");
        assert_eq!(down.class(), "transient");
    }

    #[test]
    fn registry_errors_decide_by_the_registry_answer() {
        let unreachable = RegistryError::Unreachable { url: "http://r".into(), message: "refused".into() };
        let incompatible = RegistryError::Incompatible { subject: "t-value".into(), message: "no".into() };
        let encode = |e| SourceError::Encode { part: "value", topic: "t".into(), error: EncodeError::Registry(e) };
        assert!(encode(unreachable).is_transient());
        let e = encode(incompatible);
        assert!(!e.is_transient());
        assert!(matches!(e.source().unwrap().downcast_ref::<EncodeError>(), Some(EncodeError::Registry(RegistryError::Incompatible { .. }))));
    }

    #[test]
    fn the_cause_is_the_source() {
        let e = SourceError::mysql("read grants")(server(1045, "Access denied"));
        let cause = e.source().unwrap().downcast_ref::<mysql_async::Error>().unwrap();
        assert!(matches!(cause, mysql_async::Error::Server(s) if s.code == 1045));
        let e = SourceError::from_stream(server(1236, "purged"), at());
        assert_eq!(e.source().unwrap().downcast_ref::<mysql_async::ServerError>().unwrap().code, 1236);
        let e = SourceError::kafka("begin", &KafkaError::MessageProduction(RDKafkaErrorCode::Fenced));
        assert!(e.source().unwrap().downcast_ref::<KafkaError>().is_some());
        let e = SourceError::preflight_on("cannot connect".into(), io());
        assert!(e.source().unwrap().downcast_ref::<mysql_async::Error>().is_some());
        assert_eq!(e.to_string(), "preflight: cannot connect");
        assert!(SourceError::preflight("x".into()).source().is_none());
    }
}
