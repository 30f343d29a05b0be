//! The committed position of a source, stored in a compacted Kafka topic (key = source name) by
//! the same transaction as the records it covers, and read back with `read_committed` on start.
//! Also creates the topics the source writes to.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::{Message, Offset, TopicPartitionList};
use serde::{Deserialize, Serialize};

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

pub(crate) fn kafka_config(kafka: &BTreeMap<String, String>) -> ClientConfig {
    let mut cfg = ClientConfig::new();
    for (k, v) in kafka {
        // Producer-only settings would make the consumer/admin client refuse the config.
        if !matches!(k.as_str(), "linger.ms" | "compression.type" | "acks" | "queue.buffering.max.kbytes" | "batch.size" | "message.timeout.ms" | "queue.buffering.max.ms" | "batch.num.messages") {
            cfg.set(k, v);
        }
    }
    cfg
}

/// Creates `topics` that do not exist yet (`compact` ones with `cleanup.policy=compact`).
pub async fn ensure_topics(
    kafka: &BTreeMap<String, String>,
    topics: &[(String, i32, bool)],
) -> Result<(), SourceError> {
    let admin: AdminClient<DefaultClientContext> = kafka_config(kafka)
        .create()
        .map_err(|e| SourceError::Definite(format!("invalid Kafka settings (kafka.*): {e}")))?;
    let new: Vec<NewTopic> = topics
        .iter()
        .map(|(name, partitions, compact)| {
            let t = NewTopic::new(name, *partitions, TopicReplication::Fixed(-1));
            if *compact {
                t.set("cleanup.policy", "compact")
            } else {
                t
            }
        })
        .collect();
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    let results = admin
        .create_topics(new.iter(), &opts)
        .await
        .map_err(|e| SourceError::Transient(format!("cannot create topics: {e}")))?;
    for r in results {
        match r {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((topic, code)) => {
                return Err(SourceError::Transient(format!("cannot create topic {topic}: {code}")));
            }
        }
    }
    Ok(())
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
) -> Result<Option<StoredOffset>, SourceError> {
    let kafka = kafka.clone();
    let topic = topic.to_string();
    let name = name.to_string();
    tokio::task::spawn_blocking(move || load_last_blocking(&kafka, &topic, &name))
        .await
        .map_err(|e| SourceError::Transient(format!("offset reader failed: {e}")))?
}

fn load_last_blocking(
    kafka: &BTreeMap<String, String>,
    topic: &str,
    name: &str,
) -> Result<Option<StoredOffset>, SourceError> {
    let consumer: BaseConsumer<QuietEof> = kafka_config(kafka)
        .set("group.id", format!("cdc-source-offsets-{name}"))
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        .set("enable.partition.eof", "true")
        .create_with_context(QuietEof)
        .map_err(|e| SourceError::Definite(format!("invalid Kafka settings (kafka.*): {e}")))?;
    let md = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(30))
        .map_err(|e| SourceError::Transient(format!("cannot read metadata of {topic}: {e}")))?;
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
            .map_err(|e| SourceError::Transient(format!("cannot read offsets of {topic}: {e}")))?;
        if high > low {
            tpl.add_partition_offset(topic, *p, Offset::Beginning)
                .map_err(|e| SourceError::Definite(e.to_string()))?;
            pending += 1;
        }
    }
    if pending == 0 {
        return Ok(None);
    }
    consumer.assign(&tpl).map_err(|e| SourceError::Transient(format!("cannot read {topic}: {e}")))?;
    let mut last = None;
    let deadline = Instant::now() + Duration::from_secs(60);
    while pending > 0 {
        if Instant::now() > deadline {
            return Err(SourceError::Transient(format!("reading the offsets topic {topic} took over 60 s")));
        }
        match consumer.poll(Duration::from_millis(500)) {
            None => {}
            Some(Err(rdkafka::error::KafkaError::PartitionEOF(_))) => pending -= 1,
            Some(Err(e)) => return Err(SourceError::Transient(format!("cannot read {topic}: {e}"))),
            Some(Ok(m)) => {
                if m.key() == Some(name.as_bytes()) {
                    last = match m.payload() {
                        Some(v) => Some(serde_json::from_slice::<StoredOffset>(v).map_err(|e| {
                            SourceError::Definite(format!(
                                "offset record of `{name}` in {topic} at offset {} is unreadable ({e}); delete it or use another `name`",
                                m.offset()
                            ))
                        })?),
                        None => None, // a tombstone resets the source
                    };
                }
            }
        }
    }
    Ok(last)
}
