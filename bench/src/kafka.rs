//! The bench's Kafka side: the start position written to the source's offsets topic, a watcher
//! that notices when the end of the workload is committed, and a `read_committed` count of what
//! the source published.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use cdc_source::offsets::{OffsetRecord, StoredOffset};
use cdc_source::topics::ensure_topics;
use cdc_source::position::GtidPosition;
use rdkafka::admin::{AdminClient, AdminOptions};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{Headers, Message};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

fn client(kafka: &BTreeMap<String, String>) -> ClientConfig {
    let mut cfg = ClientConfig::new();
    for (k, v) in kafka {
        cfg.set(k, v);
    }
    cfg
}

/// Stores `offset` as the last committed position of source `name`, as if an earlier run of it had
/// committed the records up to there: the source resumes right at the start of the workload.
pub async fn seed_offset(
    kafka: &BTreeMap<String, String>,
    topic: &str,
    name: &str,
    offset: &StoredOffset,
) -> anyhow::Result<()> {
    ensure_topics(kafka, &[(topic.to_string(), 1, true)])
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let producer: ThreadedProducer<DefaultProducerContext> = client(kafka).create()?;
    let value = serde_json::to_vec(offset)?;
    producer
        .send(BaseRecord::to(topic).key(name).payload(&value))
        .map_err(|(e, _)| e)
        .context("write the start offset")?;
    producer.flush(Duration::from_secs(30))?;
    Ok(())
}

/// Whether `at` has reached `end` in every domain of `end`.
pub fn reached(at: &GtidPosition, end: &GtidPosition) -> bool {
    end.iter()
        .all(|g| at.domain(g.domain).is_some_and(|mine| mine.seq >= g.seq))
}

/// Watches the offsets topic as a `read_committed` consumer; sends the moment the committed
/// position of `name` reaches `end`. It only reads the (small) offsets topic, so it costs the
/// source nothing.
pub async fn watch_committed(
    kafka: &BTreeMap<String, String>,
    topic: &str,
    name: &str,
    end: GtidPosition,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<mpsc::Receiver<Instant>> {
    let records = follow_offsets(kafka, topic, name, stop).await?;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        if let Some((at, _)) = records.iter().find(|(_, r)| reached(&r.position.gtid, &end)) {
            let _ = tx.send(at);
        }
    });
    Ok(rx)
}

/// Follows the offsets topic from its start as a `read_committed` consumer until `stop`, sending
/// each committed offset record of source `name` with the moment it became readable (what the
/// source has committed, snapshot progress included). Reads only the small offsets topic, which
/// is created first if missing (compacted, as the source makes it) so that it can be assigned.
pub async fn follow_offsets(
    kafka: &BTreeMap<String, String>,
    topic: &str,
    name: &str,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<mpsc::Receiver<(Instant, OffsetRecord)>> {
    ensure_topics(kafka, &[(topic.to_string(), 1, true)])
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let consumer: BaseConsumer = client(kafka)
        .set("group.id", format!("cdc-bench-watch-{name}"))
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        .set("fetch.wait.max.ms", "10")
        .create()?;
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Beginning)?;
    consumer.assign(&tpl)?;
    let (tx, rx) = mpsc::channel();
    let name = name.to_string();
    std::thread::spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            let Some(Ok(m)) = consumer.poll(Duration::from_millis(50)) else {
                continue;
            };
            if m.key() != Some(name.as_bytes()) {
                continue;
            }
            let at = Instant::now();
            let record = m.payload().and_then(|v| serde_json::from_slice::<OffsetRecord>(v).ok());
            if let Some(r) = record {
                if tx.send((at, r)).is_err() {
                    return;
                }
            }
        }
    });
    Ok(rx)
}

/// Counts the committed records of `topic` by their `cdc.op` header (reads to the end).
pub fn count_ops(
    kafka: &BTreeMap<String, String>,
    topic: &str,
    timeout: Duration,
) -> anyhow::Result<BTreeMap<String, u64>> {
    let consumer: BaseConsumer = client(kafka)
        .set("group.id", format!("cdc-bench-count-{topic}"))
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        .set("enable.partition.eof", "true")
        .create()?;
    let md = consumer.fetch_metadata(Some(topic), Duration::from_secs(10))?;
    let partitions: Vec<i32> = md
        .topics()
        .iter()
        .filter(|t| t.error().is_none())
        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
        .collect();
    let mut tpl = TopicPartitionList::new();
    for p in &partitions {
        tpl.add_partition_offset(topic, *p, Offset::Beginning)?;
    }
    consumer.assign(&tpl)?;
    let mut counts = BTreeMap::new();
    let mut open = partitions.len();
    let deadline = Instant::now() + timeout;
    while open > 0 {
        if Instant::now() > deadline {
            bail!("counting the records of {topic} took over {timeout:?}");
        }
        match consumer.poll(Duration::from_millis(200)) {
            None => {}
            Some(Err(KafkaError::PartitionEOF(_))) => open -= 1,
            Some(Err(e)) => bail!("reading {topic}: {e}"),
            Some(Ok(m)) => {
                let op = m
                    .headers()
                    .and_then(|h| h.iter().find(|h| h.key == "cdc.op").and_then(|h| h.value))
                    .map(|v| String::from_utf8_lossy(v).into_owned())
                    .unwrap_or_else(|| "?".into());
                *counts.entry(op).or_insert(0) += 1;
            }
        }
    }
    Ok(counts)
}

/// Deletes the topics of a finished run.
pub async fn delete_topics(
    kafka: &BTreeMap<String, String>,
    topics: &[String],
) -> anyhow::Result<()> {
    let admin: AdminClient<DefaultClientContext> = client(kafka).create()?;
    let names: Vec<&str> = topics.iter().map(String::as_str).collect();
    admin.delete_topics(&names, &AdminOptions::new()).await?;
    Ok(())
}

/// The high watermark of each partition of `topic` (the offset after its last record or, for a
/// transactional producer, after its last commit marker).
pub fn end_offsets(
    kafka: &BTreeMap<String, String>,
    topic: &str,
) -> anyhow::Result<Vec<(i32, i64)>> {
    let consumer: BaseConsumer = client(kafka)
        .set("group.id", format!("cdc-bench-ends-{topic}"))
        .create()?;
    let md = consumer.fetch_metadata(Some(topic), Duration::from_secs(10))?;
    let mut ends = Vec::new();
    for t in md.topics() {
        for p in t.partitions() {
            let (_, high) = consumer.fetch_watermarks(topic, p.id(), Duration::from_secs(10))?;
            ends.push((p.id(), high));
        }
    }
    if ends.is_empty() {
        bail!("topic {topic} has no partitions");
    }
    Ok(ends)
}

/// When a record became readable: its Kafka timestamp (the source's produce time, ms) and the
/// moment a `read_committed` consumer received it (µs since the epoch).
#[derive(Debug, Clone, Copy)]
pub struct Arrival {
    pub produced_ms: i64,
    pub readable_us: i64,
}

/// The integer primary key `id` of a record key: Kafka Connect JSON (`{"payload":{"id":…}}`) or
/// Avro in the Confluent wire format (magic byte, 4-byte schema id, zig-zag varint).
pub fn key_id(key: &[u8]) -> Option<i64> {
    if key.first() == Some(&0) && key.len() > 5 {
        let (mut n, mut shift) = (0u64, 0);
        for b in &key[5..] {
            n |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Some((n >> 1) as i64 ^ -((n & 1) as i64));
            }
            shift += 7;
        }
        return None;
    }
    let v: serde_json::Value = serde_json::from_slice(key).ok()?;
    v["payload"]["id"].as_i64().or_else(|| v["id"].as_i64())
}

/// Follows `topic` from its end as a `read_committed` consumer (like the sink) until `stop`,
/// noting for each record whose `cdc.op` is one of `ops` (id of its key, `cdc.op`) when it was
/// produced and when it became readable. Returns the notes when stopped.
pub fn follow_arrivals(
    kafka: &BTreeMap<String, String>,
    topic: &str,
    ops: &'static [&'static str],
    stop: Arc<AtomicBool>,
) -> anyhow::Result<std::thread::JoinHandle<BTreeMap<(i64, String), Arrival>>> {
    let consumer: BaseConsumer = client(kafka)
        .set("group.id", format!("cdc-bench-follow-{topic}"))
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        .set("fetch.wait.max.ms", "10")
        .create()?;
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::End)?;
    consumer.assign(&tpl)?;
    Ok(std::thread::spawn(move || {
        let mut seen = BTreeMap::new();
        while !stop.load(Ordering::Relaxed) {
            let Some(Ok(m)) = consumer.poll(Duration::from_millis(20)) else {
                continue;
            };
            let readable_us = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_micros() as i64)
                .unwrap_or(0);
            let op = m
                .headers()
                .and_then(|h| h.iter().find(|h| h.key == "cdc.op").and_then(|h| h.value))
                .map(|v| String::from_utf8_lossy(v).into_owned())
                .unwrap_or_default();
            if !ops.contains(&op.as_str()) {
                continue;
            }
            if let Some(id) = m.key().and_then(key_id) {
                seen.insert(
                    (id, op),
                    Arrival {
                        produced_ms: m.timestamp().to_millis().unwrap_or(0),
                        readable_us,
                    },
                );
            }
        }
        seen
    }))
}
