//! Row changes to Kafka records: key = primary-key struct, value = the full row after the change
//! (a tombstone for DELETE), headers `cdc.op`, `cdc.gtid`, `cdc.binlog`, `cdc.ts_ms`, and
//! `cdc.zero_dates` when a value field carries null or a truncated value in place of a zero date
//! or another value its type cannot hold (see `cdc_schema::take_inexact`).
//!
//! # The truncate record
//! `TRUNCATE TABLE t` of a captured table becomes, on **every** partition of t's topic (as the
//! broker reports them at that moment), one record with key = null, value = null and the headers
//! `cdc.op=t`, `cdc.gtid` (the TRUNCATE's GTID), `cdc.binlog` (file:pos after its query event)
//! and `cdc.ts_ms` (its server time, ms), in the Kafka transaction of that binlog group. Every
//! partition gets one so that a consumer reading any partition sees it in order with the rows of
//! that partition: rows before it were in the table before the TRUNCATE, rows after it after.
//! A tombstone has a key; the truncate record has none and is told apart by `cdc.op=t`. Each
//! counts in `cdc_source_events_total{op="t"}`.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use cdc_schema::{key_values, take_inexact, Encoder, Part, Record, Value, ZERO_DATES_HEADER};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Header, OwnedHeaders};

use crate::error::SourceError;
use crate::metrics::{SourceMetrics, TableOp};
use crate::publisher::{Publisher, RecordRef};
use crate::tables::CapturedTable;

/// The kind of change: `c` insert, `u` update, `d` delete, `r` snapshot read, `t` truncate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Create,
    Update,
    Delete,
    Read,
    Truncate,
}

impl Op {
    pub fn code(self) -> &'static str {
        match self {
            Op::Create => "c",
            Op::Update => "u",
            Op::Delete => "d",
            Op::Read => "r",
            Op::Truncate => "t",
        }
    }
}

/// Where a change comes from, for the headers.
#[derive(Debug, Clone)]
pub struct Origin {
    pub gtid: String,
    pub binlog: String,
    pub ts_ms: u64,
}

/// Encodes and publishes record(s) for one row change; creates each table's topic before its
/// first record.
#[derive(Debug)]
pub struct RecordWriter {
    pub encoder: Encoder,
    pub delete_enabled: bool,
    pub metrics: SourceMetrics,
    pub kafka: BTreeMap<String, String>,
    pub partitions: i32,
    pub ensured: HashSet<String>,
}

impl RecordWriter {
    /// Publishes the change of one row. `before` is the old row of an UPDATE; when the primary key
    /// changed and deletes are enabled, the old key gets a tombstone first.
    pub async fn publish(
        &mut self,
        publisher: &mut Publisher,
        table: &CapturedTable,
        op: Op,
        before: Option<&[Value]>,
        after_or_deleted: Vec<Value>,
        origin: &Origin,
    ) -> Result<(), SourceError> {
        let key = key_values(&table.schema, &after_or_deleted);
        if op == Op::Delete {
            if !self.delete_enabled {
                return Ok(());
            }
            return self.send(publisher, table, Op::Delete, key, None, origin).await;
        }
        if let (Op::Update, Some(before), true) = (op, before, self.delete_enabled) {
            let old_key = key_values(&table.schema, before);
            if old_key != key {
                self.send(publisher, table, Op::Delete, old_key, None, origin).await?;
            }
        }
        self.send(publisher, table, op, key, Some(after_or_deleted), origin).await
    }

    /// Publishes the truncate record of `table` on every partition of `topic` (see the module
    /// docs); returns how many records that made.
    pub async fn truncate(&mut self, publisher: &mut Publisher, topic: &str, table: &str, origin: &Origin) -> Result<usize, SourceError> {
        self.ensure_topic(topic).await?;
        let partitions = partition_count(&self.kafka, topic).await?;
        let ts = origin.ts_ms.to_string();
        for partition in 0..partitions {
            let headers = OwnedHeaders::new_with_capacity(4)
                .insert(Header { key: "cdc.op", value: Some(Op::Truncate.code()) })
                .insert(Header { key: "cdc.gtid", value: Some(origin.gtid.as_str()) })
                .insert(Header { key: "cdc.binlog", value: Some(origin.binlog.as_str()) })
                .insert(Header { key: "cdc.ts_ms", value: Some(ts.as_str()) });
            publisher.send_keyless(topic, partition, headers).await?;
            self.metrics.events.get_or_create(&TableOp { table: table.to_string(), op: Op::Truncate.code() }).inc();
        }
        Ok(partitions as usize)
    }

    async fn ensure_topic(&mut self, topic: &str) -> Result<(), SourceError> {
        if !self.ensured.contains(topic) {
            crate::offsets::ensure_topics(&self.kafka, &[(topic.to_string(), self.partitions, false)]).await?;
            self.ensured.insert(topic.to_string());
        }
        Ok(())
    }

    async fn send(
        &mut self,
        publisher: &mut Publisher,
        table: &CapturedTable,
        op: Op,
        key: Vec<Value>,
        value: Option<Vec<Value>>,
        origin: &Origin,
    ) -> Result<(), SourceError> {
        self.ensure_topic(&table.topic).await?;
        let what = RecordRef::row(&table.schema, &key);
        let key = Record { schema: Arc::clone(&table.key), values: key };
        let key_bytes = self.encode(&table.topic, Part::Key, &key).await?;
        let mut zero_dates = None;
        let value_bytes = match value {
            Some(mut values) => {
                zero_dates = take_inexact(&table.value, &mut values);
                let record = Record { schema: Arc::clone(&table.value), values };
                Some(self.encode(&table.topic, Part::Value, &record).await?)
            }
            None => None,
        };
        let ts = origin.ts_ms.to_string();
        let mut headers = OwnedHeaders::new_with_capacity(5)
            .insert(Header { key: "cdc.op", value: Some(op.code()) })
            .insert(Header { key: "cdc.gtid", value: Some(origin.gtid.as_str()) })
            .insert(Header { key: "cdc.binlog", value: Some(origin.binlog.as_str()) })
            .insert(Header { key: "cdc.ts_ms", value: Some(ts.as_str()) });
        if let Some(text) = &zero_dates {
            headers = headers.insert(Header { key: ZERO_DATES_HEADER, value: Some(text.as_str()) });
        }
        publisher.send(&table.topic, &key_bytes, value_bytes.as_deref(), headers, what).await?;
        self.metrics
            .events
            .get_or_create(&TableOp { table: table.schema.table.clone(), op: op.code() })
            .inc();
        Ok(())
    }

    async fn encode(&self, topic: &str, part: Part, record: &Record) -> Result<Vec<u8>, SourceError> {
        // Registry unreachable is worth a retry; an incompatible or unencodable schema is not
        // (`SourceError::is_transient` asks the cause).
        self.encoder
            .encode(topic, part, record)
            .await
            .map_err(|error| SourceError::Encode { part: part.as_str(), topic: topic.to_string(), error })
    }
}

/// The number of partitions of `topic` as the broker reports it (a topic just created may take a
/// moment to show up in the metadata).
async fn partition_count(kafka: &BTreeMap<String, String>, topic: &str) -> Result<i32, SourceError> {
    let consumer: BaseConsumer = crate::offsets::kafka_config(kafka)
        .create()
        .map_err(|error| SourceError::KafkaConfig { what: "settings", error })?;
    let topic = topic.to_string();
    tokio::task::spawn_blocking(move || {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let count = consumer
                .fetch_metadata(Some(&topic), Duration::from_secs(10))
                .map(|m| m.topics().iter().find(|t| t.name() == topic).map_or(0, |t| t.partitions().len() as i32));
            match count {
                Ok(n) if n > 0 => return Ok(n),
                _ if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(100)),
                Ok(_) => return Err(SourceError::NoPartitionsYet { topic }),
                Err(error) => return Err(SourceError::Kafka { context: format!("cannot read the partitions of topic {topic}"), error }),
            }
        }
    })
    .await
    .unwrap_or_else(|error| Err(SourceError::Task { context: "partition lookup interrupted", error }))
}
