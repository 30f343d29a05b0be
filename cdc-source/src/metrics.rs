//! The source's Prometheus metrics, all registered in [`SourceMetrics::register`]. Label values
//! come from small fixed sets (op, outcome, class) or from the captured tables — never from keys,
//! GTIDs or positions.
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `cdc_source_events_total` | counter | `table`, `op` (`c`, `u`, `d`, `r`, `t`) — records published (`t`: one truncate record per partition) |
//! | `cdc_source_binlog_transactions_total` | counter | – binlog transactions read (captured or not) |
//! | `cdc_source_seconds_behind_source` | gauge | – now minus the last event's server time |
//! | `cdc_source_last_event_timestamp_seconds` | gauge | – server time of the last binlog event |
//! | `cdc_source_snapshot_rows_total` | counter | `table` — rows read by the snapshot |
//! | `cdc_source_snapshot_rows_estimate` | gauge | `table` — estimated rows to snapshot |
//! | `cdc_source_snapshot_chunks_total` | counter | `table` — snapshot chunks committed |
//! | `cdc_source_snapshot_chunks_estimate` | gauge | `table` — chunks the table's snapshot is estimated to take |
//! | `cdc_source_kafka_transactions_total` | counter | `outcome` (`committed`, `aborted`) |
//! | `cdc_source_kafka_transaction_duration_seconds` | histogram | – begin to commit |
//! | `cdc_source_reconnects_total` | counter | – binlog reconnects |
//! | `cdc_source_errors_total` | counter | `class` (`transient`, `definite`) |
//! | `cdc_source_schema_changes_total` | counter | `table` — new table schemas seen mid-stream |
//! | `cdc_source_table_failures_total` | counter | `table` — tables skipped after an error of their own (undecodable text, a topic the broker refuses, a topic another table holds, a schema the registry refuses) |
//! | `cdc_source_binlog_groups_discarded_total` | counter | `reason` (`rollback`, `xa_prepare`) — binlog groups that ended without committing, nothing published |
//! | `cdc_source_table_ddl_total` | counter | `table`, `ddl` (`truncate`, `rename_away`, `rename_in`, `rename`, `drop`) — table DDL acted on |
//! | `cdc_source_signals_total` | counter | `type` (`execute-snapshot`, `stop-snapshot`, `log`, `other`), `outcome` (`accepted`, `rejected`) — signals read from the signal table or posted to `/signals` |
//! | `cdc_source_incremental_snapshots` | gauge | – incremental snapshots queued or running (their chunks count in the `snapshot_*` series of their table) |
//! | `cdc_source_incremental_snapshots_ended_total` | counter | `outcome` (`finished`, `stopped`, `rejected`) — incremental snapshots that ended |
//! | `cdc_source_records_pending` | gauge | `stage` (`queued`: encoded, waiting for the publisher task; `unacknowledged`: handed to librdkafka, not yet acknowledged by the broker; `uncommitted`: in the open Kafka transaction) |

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TableOp {
    pub table: String,
    pub op: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TableLabel {
    pub table: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Outcome {
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Reason {
    pub reason: &'static str,
}

/// The `ddl` label values of `cdc_source_table_ddl_total`; every captured table has each series
/// from its first event on.
pub const TABLE_DDL_KINDS: [&str; 5] = ["truncate", "rename_away", "rename_in", "rename", "drop"];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TableDdl {
    pub table: String,
    pub ddl: &'static str,
}

/// The `stage` label values of `cdc_source_records_pending`.
pub const PENDING_STAGES: [&str; 3] = ["queued", "unacknowledged", "uncommitted"];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Stage {
    pub stage: &'static str,
}

/// The `type` label values of `cdc_source_signals_total`.
pub const SIGNAL_TYPES: [&str; 4] = ["execute-snapshot", "stop-snapshot", "log", "other"];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SignalLabel {
    pub r#type: &'static str,
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Class {
    pub class: &'static str,
}

/// Handles to every metric of the source; cheap to clone.
#[derive(Clone, Debug)]
pub struct SourceMetrics {
    pub events: Family<TableOp, Counter>,
    pub binlog_transactions: Counter,
    pub seconds_behind: Gauge<f64, AtomicU64>,
    pub last_event_timestamp: Gauge,
    pub snapshot_rows: Family<TableLabel, Counter>,
    pub snapshot_estimate: Family<TableLabel, Gauge>,
    pub snapshot_chunks: Family<TableLabel, Counter>,
    pub snapshot_chunks_estimate: Family<TableLabel, Gauge>,
    pub kafka_transactions: Family<Outcome, Counter>,
    pub kafka_transaction_duration: Histogram,
    pub reconnects: Counter,
    pub errors: Family<Class, Counter>,
    pub schema_changes: Family<TableLabel, Counter>,
    pub table_failures: Family<TableLabel, Counter>,
    pub discarded_groups: Family<Reason, Counter>,
    pub table_ddl: Family<TableDdl, Counter>,
    pub records_pending: Family<Stage, Gauge>,
    pub signals: Family<SignalLabel, Counter>,
    pub incremental_snapshots: Gauge,
    pub incremental_ended: Family<Outcome, Counter>,
}

const TXN_BUCKETS: [f64; 12] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0];

impl SourceMetrics {
    /// Creates the metrics and registers them (names without the `cdc_source_` prefix here).
    pub fn register(registry: &mut Registry) -> Self {
        let m = SourceMetrics {
            events: Family::default(),
            binlog_transactions: Counter::default(),
            seconds_behind: Gauge::default(),
            last_event_timestamp: Gauge::default(),
            snapshot_rows: Family::default(),
            snapshot_estimate: Family::default(),
            snapshot_chunks: Family::default(),
            snapshot_chunks_estimate: Family::default(),
            kafka_transactions: Family::default(),
            kafka_transaction_duration: Histogram::new(TXN_BUCKETS),
            reconnects: Counter::default(),
            errors: Family::default(),
            schema_changes: Family::default(),
            table_failures: Family::default(),
            discarded_groups: Family::default(),
            table_ddl: Family::default(),
            records_pending: Family::default(),
            signals: Family::default(),
            incremental_snapshots: Gauge::default(),
            incremental_ended: Family::default(),
        };
        let r = registry.sub_registry_with_prefix("cdc_source");
        r.register("events", "Change records published, by table and op (c, u, d, r)", m.events.clone());
        r.register("binlog_transactions", "Binlog transactions read, captured or not", m.binlog_transactions.clone());
        r.register("seconds_behind_source", "Now minus the server time of the last binlog event read", m.seconds_behind.clone());
        r.register(
            "last_event_timestamp_seconds",
            "Server time of the last binlog event read (Unix seconds)",
            m.last_event_timestamp.clone(),
        );
        r.register("snapshot_rows", "Rows read by the initial snapshot", m.snapshot_rows.clone());
        r.register("snapshot_rows_estimate", "Estimated rows of each table to snapshot", m.snapshot_estimate.clone());
        r.register("snapshot_chunks", "Snapshot chunks committed", m.snapshot_chunks.clone());
        r.register(
            "snapshot_chunks_estimate",
            "Chunks each table's snapshot is estimated to take (rows estimate / snapshot.chunk.size, at least the chunks done)",
            m.snapshot_chunks_estimate.clone(),
        );
        r.register("kafka_transactions", "Kafka transactions ended, by outcome", m.kafka_transactions.clone());
        r.register(
            "kafka_transaction_duration_seconds",
            "Time from the start of a Kafka transaction to its commit",
            m.kafka_transaction_duration.clone(),
        );
        r.register("reconnects", "Reconnects of the binlog stream", m.reconnects.clone());
        r.register("errors", "Errors by class (transient are retried, definite stop the source)", m.errors.clone());
        r.register("schema_changes", "Table schema changes seen in the binlog", m.schema_changes.clone());
        r.register(
            "table_failures",
            "Tables skipped after an error of their own (undecodable text); the other tables keep flowing",
            m.table_failures.clone(),
        );
        r.register(
            "binlog_groups_discarded",
            "Binlog groups that ended without committing (ROLLBACK, XA PREPARE): nothing of them published",
            m.discarded_groups.clone(),
        );
        r.register("table_ddl", "Table DDL acted on (truncate, rename_away, rename_in, rename, drop)", m.table_ddl.clone());
        r.register(
            "records_pending",
            "Records on their way to Kafka, by stage: queued for the publisher task, unacknowledged by the broker, in the open Kafka transaction",
            m.records_pending.clone(),
        );
        r.register("signals", "Signals read from the signal table or posted to /signals, by type and outcome", m.signals.clone());
        r.register("incremental_snapshots", "Incremental snapshots queued or running", m.incremental_snapshots.clone());
        r.register(
            "incremental_snapshots_ended",
            "Incremental snapshots that ended, by outcome (finished, stopped, rejected)",
            m.incremental_ended.clone(),
        );
        for r#type in SIGNAL_TYPES {
            for outcome in ["accepted", "rejected"] {
                let _ = m.signals.get_or_create(&SignalLabel { r#type, outcome });
            }
        }
        for outcome in ["finished", "stopped", "rejected"] {
            let _ = m.incremental_ended.get_or_create(&Outcome { outcome });
        }
        for stage in PENDING_STAGES {
            let _ = m.records_pending.get_or_create(&Stage { stage });
        }
        for reason in ["rollback", "xa_prepare"] {
            let _ = m.discarded_groups.get_or_create(&Reason { reason });
        }
        for outcome in ["committed", "aborted"] {
            let _ = m.kafka_transactions.get_or_create(&Outcome { outcome });
        }
        for class in ["transient", "definite"] {
            let _ = m.errors.get_or_create(&Class { class });
        }
        m
    }

    /// The gauge of `cdc_source_records_pending` for `stage` (one of [`PENDING_STAGES`]).
    pub fn pending(&self, stage: &'static str) -> Gauge {
        self.records_pending.get_or_create(&Stage { stage }).clone()
    }
}
