//! The committed position of a source, stored in a compacted Kafka topic (key = source name) by
//! the same transaction as the records it covers, and read back with `read_committed` on start.
//! (Creating the topics is `topics.rs`.)
//!
//! While a snapshot is under way, each of its chunks writes an [`OffsetRecord`] whose `snapshot`
//! says how far it got ([`SnapshotState`]), in the Kafka transaction of the chunk's rows, so a
//! restart resumes after the last committed chunk (see [`crate::snapshot`]). Records written by
//! earlier versions have no `snapshot` and read as a finished position.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use cdc_common::kafka::{client_config, Role};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::{Message, Offset, TopicPartitionList};
use serde::{Deserialize, Serialize};

use crate::incremental::IncrementalState;
use crate::error::SourceError;
use crate::position::{FilePos, GtidPosition};

/// What one offset record says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredOffset {
    /// Resume after this GTID position.
    pub gtid: GtidPosition,
    /// file:pos matching `gtid` (informational).
    pub binlog: FilePos,
    /// Server time of the last event covered, ms since the epoch.
    pub ts_ms: u64,
}

/// One offset record as stored: the position, plus the snapshot's progress while it is unfinished.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OffsetRecord {
    #[serde(flatten)]
    pub position: StoredOffset,
    /// Present only while a snapshot is unfinished; `position` then is where it started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<SnapshotState>,
    /// Incremental snapshots queued or running, and how far each got.
    #[serde(default, skip_serializing_if = "IncrementalState::is_empty")]
    pub incremental: IncrementalState,
    /// The captured tables (`db.table`) this position has seen, so that a start can tell a newly
    /// captured one; absent in records of earlier versions and of the initial snapshot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tables: Option<Vec<String>>,
}

impl OffsetRecord {
    /// A record of `position` alone.
    pub fn at(position: StoredOffset) -> Self {
        OffsetRecord { position, snapshot: None, incremental: IncrementalState::default(), tables: None }
    }
}

/// How far an unfinished snapshot got, as of its last committed chunk.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SnapshotState {
    /// GTID position of the first attempt's read view (P1): streaming starts here afterwards.
    pub gtid: GtidPosition,
    /// file:pos of that read view.
    pub binlog: FilePos,
    /// Tables copied completely, in order.
    #[serde(default)]
    pub done: Vec<TableProgress>,
    /// The table being copied and the key of its last copied row.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current: Option<TableProgress>,
}

/// One table of a snapshot: rows copied so far and, for the current table, the last key copied.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TableProgress {
    pub database: String,
    pub table: String,
    pub rows: u64,
    /// The primary-key values of the last row copied, in key order (empty for a done table).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub last_key: Vec<KeyValue>,
}

impl TableProgress {
    pub fn is(&self, database: &str, table: &str) -> bool {
        self.database == database && self.table == table
    }
}

/// A key value exactly as the server returned it, so that binding it again compares the same.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyValue {
    Null,
    /// Bytes that are valid UTF-8.
    Text(String),
    /// Any other bytes, as lowercase hex.
    Hex(String),
    Int(i64),
    Uint(u64),
    Float(f32),
    Double(f64),
    /// year, month, day, hour, minute, second, microsecond.
    Date(u16, u8, u8, u8, u8, u8, u32),
    /// negative, days, hours, minutes, seconds, microseconds.
    Time(bool, u32, u8, u8, u8, u32),
}

impl From<&mysql_async::Value> for KeyValue {
    fn from(v: &mysql_async::Value) -> Self {
        use mysql_async::Value as V;
        match v {
            V::NULL => KeyValue::Null,
            V::Bytes(b) => match std::str::from_utf8(b) {
                Ok(s) => KeyValue::Text(s.to_string()),
                Err(_) => KeyValue::Hex(b.iter().map(|x| format!("{x:02x}")).collect()),
            },
            V::Int(i) => KeyValue::Int(*i),
            V::UInt(u) => KeyValue::Uint(*u),
            V::Float(f) => KeyValue::Float(*f),
            V::Double(d) => KeyValue::Double(*d),
            V::Date(y, mo, d, h, mi, s, us) => KeyValue::Date(*y, *mo, *d, *h, *mi, *s, *us),
            V::Time(neg, d, h, mi, s, us) => KeyValue::Time(*neg, *d, *h, *mi, *s, *us),
        }
    }
}

impl KeyValue {
    /// The value to bind again; fails only on hex that is not hex (a hand-edited record).
    pub fn to_value(&self) -> Result<mysql_async::Value, String> {
        use mysql_async::Value as V;
        Ok(match self {
            KeyValue::Null => V::NULL,
            KeyValue::Text(s) => V::Bytes(s.as_bytes().to_vec()),
            KeyValue::Hex(h) => {
                let bad = || format!("`{h}` is not hex");
                if h.len() % 2 != 0 {
                    return Err(bad());
                }
                let bytes = (0..h.len())
                    .step_by(2)
                    .map(|i| h.get(i..i + 2).and_then(|p| u8::from_str_radix(p, 16).ok()).ok_or_else(bad))
                    .collect::<Result<Vec<u8>, String>>()?;
                V::Bytes(bytes)
            }
            KeyValue::Int(i) => V::Int(*i),
            KeyValue::Uint(u) => V::UInt(*u),
            KeyValue::Float(f) => V::Float(*f),
            KeyValue::Double(d) => V::Double(*d),
            KeyValue::Date(y, mo, d, h, mi, s, us) => V::Date(*y, *mo, *d, *h, *mi, *s, *us),
            KeyValue::Time(neg, d, h, mi, s, us) => V::Time(*neg, *d, *h, *mi, *s, *us),
        })
    }
}

/// A client context that does not log the end-of-partition signal the offset reader waits for.
pub(crate) struct QuietEof;

impl rdkafka::ClientContext for QuietEof {
    fn error(&self, error: rdkafka::error::KafkaError, reason: &str) {
        use rdkafka::error::KafkaError as E;
        let eof = matches!(error, E::PartitionEOF(_) | E::Global(RDKafkaErrorCode::PartitionEOF));
        if !eof {
            tracing::error!(%error, reason, "Kafka client error");
        }
    }
}

impl rdkafka::consumer::ConsumerContext for QuietEof {}

/// Reads the last committed offset record of `name` (None when the source never committed).
/// Call after the producer fenced earlier instances, so no transaction of theirs is left open.
pub async fn load_last(
    kafka: &BTreeMap<String, String>,
    topic: &str,
    name: &str,
) -> Result<Option<OffsetRecord>, SourceError> {
    let kafka = kafka.clone();
    let topic = topic.to_string();
    let name = name.to_string();
    tokio::task::spawn_blocking(move || load_last_blocking(&kafka, &topic, &name))
        .await
        .map_err(|error| SourceError::Task { context: "offset reader failed", error })?
}

fn load_last_blocking(
    kafka: &BTreeMap<String, String>,
    topic: &str,
    name: &str,
) -> Result<Option<OffsetRecord>, SourceError> {
    let consumer: BaseConsumer<QuietEof> = client_config(Role::Consumer, kafka)
        .set("group.id", format!("cdc-source-offsets-{name}"))
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        .set("enable.partition.eof", "true")
        .create_with_context(QuietEof)
        .map_err(|error| SourceError::KafkaConfig { what: "settings", error })?;
    let md = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(30))
        .map_err(|error| SourceError::Kafka { context: format!("cannot read metadata of {topic}"), error })?;
    let partitions: Vec<i32> = md
        .topics()
        .iter()
        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
        .collect();
    let mut tpl = TopicPartitionList::new();
    let mut pending = 0usize;
    for p in &partitions {
        let (low, high) = consumer
            .fetch_watermarks(topic, *p, Duration::from_secs(30))
            .map_err(|error| SourceError::Kafka { context: format!("cannot read offsets of {topic}"), error })?;
        if high > low {
            tpl.add_partition_offset(topic, *p, Offset::Beginning)
                .map_err(SourceError::KafkaLocal)?;
            pending += 1;
        }
    }
    if pending == 0 {
        return Ok(None);
    }
    consumer.assign(&tpl).map_err(|error| SourceError::Kafka { context: format!("cannot read {topic}"), error })?;
    let mut last = None;
    let deadline = Instant::now() + Duration::from_secs(60);
    while pending > 0 {
        if Instant::now() > deadline {
            return Err(SourceError::OffsetsReadTimeout { topic: topic.to_string() });
        }
        match consumer.poll(Duration::from_millis(500)) {
            None => {}
            Some(Err(rdkafka::error::KafkaError::PartitionEOF(_))) => pending -= 1,
            Some(Err(error)) => return Err(SourceError::Kafka { context: format!("cannot read {topic}"), error }),
            Some(Ok(m)) if m.key() == Some(name.as_bytes()) => {
                last = match m.payload() {
                    Some(v) => Some(serde_json::from_slice::<OffsetRecord>(v).map_err(|error| SourceError::OffsetRecordUnreadable {
                        name: name.to_string(),
                        topic: topic.to_string(),
                        offset: m.offset(),
                        error,
                    })?),
                    None => None, // a tombstone resets the source
                };
            }
            Some(Ok(_)) => {}
        }
    }
    Ok(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_topic_is_retried_only_when_retrying_can_change_it() {
        use RDKafkaErrorCode as C;
        let error = |code| SourceError::TopicNotCreated { topic: "t".into(), code };
        for code in [C::InvalidTopic, C::TopicAuthorizationFailed, C::PolicyViolation, C::InvalidConfig] {
            assert!(!error(code).is_transient(), "{code:?}");
        }
        for code in [C::RequestTimedOut, C::NotController, C::InvalidReplicationFactor, C::BrokerNotAvailable] {
            assert!(error(code).is_transient(), "{code:?}");
        }
        let text = error(C::InvalidTopic).to_string();
        assert!(text.contains("collides with an existing topic"), "{text}");
    }

    #[test]
    fn records_of_earlier_versions_read_as_a_finished_position() {
        let old = br#"{"gtid":"0-1-42","binlog":{"file":"mariadb-bin.000003","pos":1234},"ts_ms":7}"#;
        let r: OffsetRecord = serde_json::from_slice(old).expect("old record");
        assert_eq!(r.position.gtid.to_string(), "0-1-42");
        assert_eq!(r.snapshot, None);
        // A finished position is written exactly as before.
        let again: serde_json::Value = serde_json::to_value(&r).expect("json");
        assert_eq!(again, serde_json::from_slice::<serde_json::Value>(old).expect("json"));
    }

    #[test]
    fn snapshot_state_round_trips_with_every_kind_of_key() {
        use mysql_async::Value as V;
        let keys = vec![
            V::NULL,
            V::Bytes(b"2024-03-31 02:30:00.000001".to_vec()),
            V::Bytes(vec![0, 0xff, 0x80, 7]),
            V::Int(-5),
            V::UInt(u64::MAX),
            V::Float(0.1),
            V::Double(-1e-300),
            V::Date(2024, 3, 31, 2, 30, 0, 1),
            V::Time(true, 3, 23, 59, 58, 999_999),
        ];
        let state = SnapshotState {
            gtid: "0-1-9,1-2-3".parse().expect("gtid"),
            binlog: FilePos { file: "mariadb-bin.000001".into(), pos: 4 },
            done: vec![TableProgress { database: "d".into(), table: "a".into(), rows: 10, last_key: vec![] }],
            current: Some(TableProgress { database: "d".into(), table: "b".into(), rows: 5, last_key: keys.iter().map(KeyValue::from).collect() }),
        };
        let record = OffsetRecord {
            snapshot: Some(state.clone()),
            ..OffsetRecord::at(StoredOffset { gtid: state.gtid.clone(), binlog: state.binlog.clone(), ts_ms: 1 })
        };
        let text = serde_json::to_string(&record).expect("json");
        let back: OffsetRecord = serde_json::from_str(&text).expect("parse");
        assert_eq!(back, record, "{text}");
        let bound: Vec<V> = back.snapshot.and_then(|s| s.current).expect("current").last_key.iter().map(|k| k.to_value().expect("value")).collect();
        assert_eq!(bound, keys);
        assert!(KeyValue::Hex("0g".into()).to_value().is_err());
    }
}
