//! Row changes to Kafka records: key = primary-key struct, value = the full row after the change
//! (a tombstone for DELETE), headers `cdc.op`, `cdc.gtid`, `cdc.binlog`, `cdc.ts_ms`, and
//! `cdc.zero_dates` when a value field carries null or a truncated value in place of a zero date
//! or another value its type cannot hold (see `cdc_schema::take_inexact`).

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use cdc_schema::{key_values, take_inexact, Encoder, Part, Record, Value, ZERO_DATES_HEADER};
use rdkafka::message::{Header, OwnedHeaders};

use crate::error::SourceError;
use crate::metrics::{SourceMetrics, TableOp};
use crate::publisher::{Publisher, RecordRef};
use crate::tables::CapturedTable;

/// The kind of change: `c` insert, `u` update, `d` delete, `r` snapshot read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Create,
    Update,
    Delete,
    Read,
}

impl Op {
    pub fn code(self) -> &'static str {
        match self {
            Op::Create => "c",
            Op::Update => "u",
            Op::Delete => "d",
            Op::Read => "r",
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

    async fn send(
        &mut self,
        publisher: &mut Publisher,
        table: &CapturedTable,
        op: Op,
        key: Vec<Value>,
        value: Option<Vec<Value>>,
        origin: &Origin,
    ) -> Result<(), SourceError> {
        if !self.ensured.contains(&table.topic) {
            crate::offsets::ensure_topics(&self.kafka, &[(table.topic.clone(), self.partitions, false)]).await?;
            self.ensured.insert(table.topic.clone());
        }
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
        self.encoder.encode(topic, part, record).await.map_err(|e| {
            // Registry unreachable is worth a retry; an incompatible or unencodable schema is not.
            let text = format!("encoding the {} of a record for {topic}: {e}", part.as_str());
            if e.is_transient() {
                SourceError::Transient(text)
            } else {
                SourceError::Definite(text)
            }
        })
    }
}
