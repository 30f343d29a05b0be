//! The sink's Prometheus metrics, all registered in [`SinkMetrics::register`]. Label values come
//! from small fixed sets (op, error class, DDL kind) or from configuration (table, topic and
//! partition of the subscribed topics) — never from keys or offsets.
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `cdc_sink_records_read_total` | counter | `topic` |
//! | `cdc_sink_rows_applied_total` | counter | `table`, `op` (`upsert`, `insert`, `update`, `delete`) |
//! | `cdc_sink_batch_records` | histogram | – |
//! | `cdc_sink_batch_duration_seconds` | histogram | – |
//! | `cdc_sink_consumer_lag_records` | gauge | `topic`, `partition` |
//! | `cdc_sink_dlq_records_total` | counter | `class` (`decode`, `identifier`, `schema`, `data`) |
//! | `cdc_sink_retries_total` | counter | `class` (`database`, `kafka`, `registry`) |
//! | `cdc_sink_errors_total` | counter | `class` (all of the above) |
//! | `cdc_sink_ddl_total` | counter | `table`, `kind` (`create_table`, `add_column`, `modify_column`, `drop_not_null`) |
//! | `cdc_sink_truncates_total` | counter | `table`, `outcome` (`applied`, `skipped`) |
//! | `cdc_sink_last_commit_timestamp_seconds` | gauge | – |
//! | `cdc_sink_replication_latency_seconds` | histogram | – |
//! | `cdc_sink_last_applied_event_timestamp_seconds` | gauge | – |
//! | `cdc_sink_lag_seconds` | gauge | – now minus the event time of the oldest record read and not yet committed (0 when none waits); follows the clock, so it grows while the sink is stalled |
//!
//! The latency is measured per record from its event time (header `cdc.ts_ms` written by the
//! source — the source commit, second resolution from the binlog — else the Kafka record
//! timestamp) to the commit of the batch that applied it.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;

use crate::errors::class;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TopicLabel {
    pub topic: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TableOpLabels {
    pub table: String,
    pub op: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PartitionLabels {
    pub topic: String,
    pub partition: i32,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ClassLabel {
    pub class: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DdlLabels {
    pub table: String,
    pub kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TruncateLabels {
    pub table: String,
    /// `applied` (`truncate.enabled=true`, committed) or `skipped`.
    pub outcome: &'static str,
}

/// Handles to every metric of the sink; cheap to clone.
#[derive(Clone, Debug)]
pub struct SinkMetrics {
    pub records_read: Family<TopicLabel, Counter>,
    pub rows_applied: Family<TableOpLabels, Counter>,
    pub batch_records: Histogram,
    pub batch_duration: Histogram,
    pub consumer_lag: Family<PartitionLabels, Gauge>,
    pub dlq_records: Family<ClassLabel, Counter>,
    pub retries: Family<ClassLabel, Counter>,
    pub errors: Family<ClassLabel, Counter>,
    pub ddl: Family<DdlLabels, Counter>,
    pub truncates: Family<TruncateLabels, Counter>,
    pub last_commit: Gauge<f64, AtomicU64>,
    pub latency: Histogram,
    pub last_event: Gauge<f64, AtomicU64>,
    pub lag: Gauge<f64, AtomicU64>,
}

const BATCH_RECORD_BUCKETS: [f64; 9] = [
    1.0, 10.0, 50.0, 100.0, 500.0, 1000.0, 3000.0, 5000.0, 10000.0,
];
const LATENCY_BUCKETS: [f64; 14] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
];
const DURATION_BUCKETS: [f64; 13] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

impl SinkMetrics {
    /// Creates the metrics and registers them (names without the `_total` suffix, which the
    /// OpenMetrics encoder appends to counters).
    pub fn register(registry: &mut Registry) -> SinkMetrics {
        let m = SinkMetrics {
            records_read: Family::default(),
            rows_applied: Family::default(),
            batch_records: Histogram::new(BATCH_RECORD_BUCKETS),
            batch_duration: Histogram::new(DURATION_BUCKETS),
            consumer_lag: Family::default(),
            dlq_records: Family::default(),
            retries: Family::default(),
            errors: Family::default(),
            ddl: Family::default(),
            truncates: Family::default(),
            last_commit: Gauge::default(),
            latency: Histogram::new(LATENCY_BUCKETS),
            last_event: Gauge::default(),
            lag: Gauge::default(),
        };
        let r = registry.sub_registry_with_prefix("cdc_sink");
        r.register(
            "records_read",
            "Records consumed from Kafka",
            m.records_read.clone(),
        );
        r.register(
            "rows_applied",
            "Rows written to mirror tables, by table and operation",
            m.rows_applied.clone(),
        );
        r.register(
            "batch_records",
            "Records per committed batch",
            m.batch_records.clone(),
        );
        r.register(
            "batch_duration_seconds",
            "Time to apply and commit one batch",
            m.batch_duration.clone(),
        );
        r.register(
            "consumer_lag_records",
            "Records still to apply: end of each partition (last stable offset) minus the group offset, transaction markers not counted",
            m.consumer_lag.clone(),
        );
        r.register(
            "dlq_records",
            "Records sent to the dead letter queue, by error class",
            m.dlq_records.clone(),
        );
        r.register(
            "retries",
            "Retries after transient errors, by error class",
            m.retries.clone(),
        );
        r.register("errors", "Errors, by class", m.errors.clone());
        r.register(
            "ddl",
            "DDL statements applied (auto.create / auto.evolve)",
            m.ddl.clone(),
        );
        r.register(
            "truncates",
            "Truncate records (header cdc.op=t), applied or skipped (truncate.enabled=false)",
            m.truncates.clone(),
        );
        r.register(
            "last_commit_timestamp_seconds",
            "Unix time of the last committed batch",
            m.last_commit.clone(),
        );
        r.register(
            "replication_latency_seconds",
            "Time from a record's event time to the commit that applied it",
            m.latency.clone(),
        );
        r.register(
            "last_applied_event_timestamp_seconds",
            "Event time of the newest record applied",
            m.last_event.clone(),
        );
        r.register(
            "lag_seconds",
            "Now minus the event time of the oldest record read and not yet committed",
            m.lag.clone(),
        );
        // Every series of a fixed label set exists from the start, at 0, so that `rate()` has
        // data before the first event of a class.
        for class in class::RECORD {
            let _ = m.dlq_records.get_or_create(&ClassLabel { class });
        }
        for class in class::TRANSIENT {
            let _ = m.retries.get_or_create(&ClassLabel { class });
        }
        for class in class::RECORD.into_iter().chain(class::TRANSIENT) {
            let _ = m.errors.get_or_create(&ClassLabel { class });
        }
        m
    }

    pub fn error(&self, class: &'static str) {
        self.errors.get_or_create(&ClassLabel { class }).inc();
    }

    pub fn retry(&self, class: &'static str) {
        self.retries.get_or_create(&ClassLabel { class }).inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn class_series_exist_at_zero_from_the_start() {
        let mut registry = Registry::default();
        let _m = SinkMetrics::register(&mut registry);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        for line in [
            "cdc_sink_dlq_records_total{class=\"decode\"} 0",
            "cdc_sink_dlq_records_total{class=\"data\"} 0",
            "cdc_sink_retries_total{class=\"database\"} 0",
            "cdc_sink_retries_total{class=\"registry\"} 0",
            "cdc_sink_errors_total{class=\"kafka\"} 0",
            "cdc_sink_errors_total{class=\"schema\"} 0",
        ] {
            assert!(text.contains(line), "{line:?} missing:\n{text}");
        }
    }
}
