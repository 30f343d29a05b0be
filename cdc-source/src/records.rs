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
//!
//! # Topics
//! A table's topic is `topic.prefix` + its name made a legal topic name ([`topic_name`]: as
//! Debezium's sanitiser, each character outside `[a-zA-Z0-9._-]` becomes `_`); a renamed mapping
//! is logged once, when the table's topic is first used. The writer creates each topic before its
//! first record with `topic.creation.default.*`.
//!
//! # A table that cannot be published
//! A table whose topic the broker refuses for good (an illegal or colliding name, a denied
//! ACL, a policy), whose topic another table already publishes to, whose record the encoder
//! refuses for good (an incompatible schema), or one of whose records the broker refuses for
//! good (larger than the topic accepts, denied, invalid for the topic) fails alone: one error log line naming the table,
//! the topic and the cause, `cdc_source_table_failures_total{table}` counts it, and its records
//! are skipped until the source restarts while the other tables keep flowing. Records of that
//! table already in the open Kafka transaction stay in it (as with a failure on undecodable
//! text, see `crate::tables`), so after fixing it, snapshot the table again. A record refused at
//! delivery aborts the whole Kafka transaction: the stream then resumes from the last committed
//! position without the failed table, so the other tables' records of that transaction are
//! published once all the same. With
//! `errors.tolerance=none` the failure stops the source instead. Refusals that may pass (broker
//! unavailable, a replication factor above the brokers alive) stay transient and are retried.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use cdc_schema::{key_values, take_inexact, Encoder, Part, Record, Value, ZERO_DATES_HEADER};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Header, OwnedHeaders};

use crate::config::{ErrorTolerance, SourceConfig, TopicCreation};
use crate::error::SourceError;
use crate::metrics::{SourceMetrics, TableOp};
use crate::outbox::Outlet;
use crate::publisher::RecordRef;
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
pub struct ChangePosition {
    pub gtid: String,
    pub binlog: String,
    pub ts_ms: u64,
}

/// Longest topic name Kafka accepts.
pub const MAX_TOPIC_LEN: usize = 249;

/// `name` as a legal Kafka topic name: each character outside `[a-zA-Z0-9._-]` becomes `_` (as
/// Debezium's `TopicNameSanitizer`), and `.` / `..` (which Kafka refuses) become `_` / `__`. A
/// name longer than [`MAX_TOPIC_LEN`] is left long: the broker refuses it and the table fails
/// alone with that error.
pub fn topic_name(name: &str) -> String {
    let out: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') { c } else { '_' })
        .collect();
    match out.as_str() {
        "." | ".." => "_".repeat(out.len()),
        _ => out,
    }
}

/// `(database, table)`.
type TableKey = (String, String);

/// Encodes and publishes record(s) for one row change; creates each table's topic before its
/// first record; fails a table that cannot be published (see the module docs).
#[derive(Debug)]
pub struct RecordEncoder {
    pub encoder: Encoder,
    pub delete_enabled: bool,
    pub metrics: SourceMetrics,
    pub kafka: BTreeMap<String, String>,
    pub creation: TopicCreation,
    pub tolerance: ErrorTolerance,
    prefix: String,
    /// Topics known to exist.
    ensured: HashSet<String>,
    /// Which table publishes to each topic used so far.
    claimed: HashMap<String, TableKey>,
    /// Tables failed by this writer; their records are skipped.
    failed: HashSet<TableKey>,
    /// Topics the broker refused for good.
    refused: HashSet<String>,
}

impl RecordEncoder {
    pub fn new(cfg: &SourceConfig, encoder: Encoder, metrics: SourceMetrics) -> RecordEncoder {
        RecordEncoder {
            encoder,
            delete_enabled: cfg.delete_enabled,
            metrics,
            kafka: cfg.kafka.clone(),
            creation: cfg.topic_creation.clone(),
            tolerance: cfg.errors_tolerance,
            prefix: cfg.topic_prefix.clone(),
            ensured: HashSet::new(),
            claimed: HashMap::new(),
            failed: HashSet::new(),
            refused: HashSet::new(),
        }
    }

    /// Publishes the change of one row. `before` is the old row of an UPDATE; when the primary key
    /// changed and deletes are enabled, the old key gets a tombstone first.
    pub async fn publish(
        &mut self,
        publisher: &mut impl Outlet,
        table: &CapturedTable,
        op: Op,
        before: Option<&[Value]>,
        after_or_deleted: Vec<Value>,
        origin: &ChangePosition,
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
    pub async fn truncate(&mut self, publisher: &mut impl Outlet, topic: &str, table: &str, origin: &ChangePosition) -> Result<usize, SourceError> {
        let owner = match self.claimed.get(topic) {
            Some(owner) if owner.1 != table || self.failed.contains(owner) => return Ok(0),
            Some(owner) => owner.clone(),
            None => (String::new(), table.to_string()),
        };
        if self.refused.contains(topic) || !self.ensure_topic(&owner, topic).await? {
            return Ok(0);
        }
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

    /// Creates `topic` for `table` if needed; `false` when the broker refused it for good and the
    /// table failed.
    async fn ensure_topic(&mut self, table: &TableKey, topic: &str) -> Result<bool, SourceError> {
        if self.ensured.contains(topic) {
            return Ok(true);
        }
        match crate::topics::ensure_topic(&self.kafka, topic, &self.creation).await {
            Ok(()) => {
                self.ensured.insert(topic.to_string());
                Ok(true)
            }
            Err(SourceError::TopicNotCreated { code, .. }) if crate::topics::refused_for_good(code) => {
                self.refused.insert(topic.to_string());
                let error = format!(
                    "cannot publish table {}: the broker refuses to create its topic {topic} ({code}: {}); exclude the table with table.exclude.list, or fix the cause and restart",
                    shown(table),
                    crate::topics::refusal_hint(code),
                );
                self.fail(table, error)?;
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    /// Whether records of `table` can go to its topic: claims the topic on first use (logging a
    /// sanitised mapping), refuses a second table on a claimed topic, creates the topic.
    async fn ready(&mut self, table: &CapturedTable) -> Result<bool, SourceError> {
        let key = (table.schema.database.clone(), table.schema.table.clone());
        if self.failed.contains(&key) {
            return Ok(false);
        }
        match self.claimed.get(&table.topic) {
            Some(owner) if *owner != key => {
                let error = format!(
                    "cannot publish table {}: its topic {} is the topic of table {} already (topic names replace characters outside [a-zA-Z0-9._-] by `_`); exclude one of them with table.exclude.list, or rename one",
                    shown(&key),
                    table.topic,
                    shown(owner),
                );
                self.fail(&key, error)?;
                return Ok(false);
            }
            Some(_) => {}
            None => {
                let unsanitised = format!("{}{}", self.prefix, table.schema.table);
                if unsanitised != table.topic {
                    tracing::info!(table = %shown(&key), topic = %table.topic, "table name is not a legal topic name: its topic has each other character replaced by `_`");
                }
                self.claimed.insert(table.topic.clone(), key.clone());
            }
        }
        self.ensure_topic(&key, &table.topic).await
    }

    /// After the broker refused a record of `topic` for good (`refused`, see
    /// [`SourceError::refused_on_topic`]): fails the table publishing to it alone, so the stream
    /// goes on without it; `Err` (definite) with `errors.tolerance=none` or when no table of this
    /// writer owns the topic.
    pub fn fail_refused(&mut self, topic: &str, refused: SourceError) -> Result<(), SourceError> {
        let Some(owner) = self.claimed.get(topic).cloned() else { return Err(refused) };
        if self.tolerance == ErrorTolerance::None {
            return Err(refused);
        }
        self.fail(&owner, format!("cannot publish table {}: {refused}", shown(&owner)))
    }

    /// Fails `table` alone (see the module docs), or stops the source with `errors.tolerance=none`.
    fn fail(&mut self, table: &TableKey, error: String) -> Result<(), SourceError> {
        if self.tolerance == ErrorTolerance::None {
            return Err(SourceError::Definite(format!("{error} (errors.tolerance=none stops the source on a table that cannot be published; errors.tolerance=all skips the table alone)")));
        }
        crate::tables::report_table_failure(&self.metrics, &shown(table), &table.1, &error);
        self.failed.insert(table.clone());
        Ok(())
    }

    async fn send(
        &mut self,
        publisher: &mut impl Outlet,
        table: &CapturedTable,
        op: Op,
        key: Vec<Value>,
        value: Option<Vec<Value>>,
        origin: &ChangePosition,
    ) -> Result<(), SourceError> {
        if !self.ready(table).await? {
            return Ok(());
        }
        let what = RecordRef::row(&table.schema, &key);
        let key = Record { schema: Arc::clone(&table.key), values: key };
        let mut zero_dates = None;
        let encoded = match self.encode(&table.topic, Part::Key, &key).await {
            Ok(key_bytes) => match value {
                Some(mut values) => {
                    zero_dates = take_inexact(&table.value, &mut values);
                    let record = Record { schema: Arc::clone(&table.value), values };
                    self.encode(&table.topic, Part::Value, &record).await.map(|v| (key_bytes, Some(v)))
                }
                None => Ok((key_bytes, None)),
            },
            Err(e) => Err(e),
        };
        let (key_bytes, value_bytes) = match encoded {
            Ok(bytes) => bytes,
            Err(e) if !e.is_transient() => {
                let table_key = (table.schema.database.clone(), table.schema.table.clone());
                self.fail(&table_key, format!("cannot publish table {}: {e}", shown(&table_key)))?;
                return Ok(());
            }
            Err(e) => return Err(e),
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
        publisher.send(&table.topic, key_bytes, value_bytes, headers, what).await?;
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

fn shown((db, table): &TableKey) -> String {
    if db.is_empty() {
        table.clone()
    } else {
        format!("{db}.{table}")
    }
}

/// The number of partitions of `topic` as the broker reports it (a topic just created may take a
/// moment to show up in the metadata).
async fn partition_count(kafka: &BTreeMap<String, String>, topic: &str) -> Result<i32, SourceError> {
    let consumer: BaseConsumer = cdc_common::kafka::client_config(cdc_common::kafka::Role::Consumer, kafka)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legal_names_stay_as_they_are() {
        for name in ["my_topic_users", "a.b-c_D9", "x"] {
            assert_eq!(topic_name(name), name);
        }
    }

    #[test]
    fn each_illegal_character_becomes_an_underscore() {
        assert_eq!(topic_name("t_h1_back`tick"), "t_h1_back_tick");
        assert_eq!(topic_name("t_h2_semi;colon--dash"), "t_h2_semi_colon--dash");
        assert_eq!(topic_name("t_h3_quote'dq\""), "t_h3_quote_dq_");
        assert_eq!(topic_name("t_h4_ünïcödé_表"), "t_h4__n_c_d___");
        assert_eq!(topic_name("a b/c\\d\0e"), "a_b_c_d_e");
        assert_eq!(topic_name("😀"), "_", "one character, one underscore");
    }

    #[test]
    fn dot_names_kafka_refuses_are_replaced() {
        assert_eq!(topic_name("."), "_");
        assert_eq!(topic_name(".."), "__");
        assert_eq!(topic_name("..."), "...");
    }

    #[test]
    fn the_result_is_always_legal() {
        let legal = |s: &str| s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')) && s != "." && s != "..";
        for name in ["", "`", "'\"", "--;", "表表", ".", "..", "é.é", "a\u{7f}b"] {
            let t = topic_name(name);
            assert!(legal(&t), "{name:?} -> {t:?}");
            assert_eq!(t.chars().count(), name.chars().count(), "{name:?}");
        }
    }
}
