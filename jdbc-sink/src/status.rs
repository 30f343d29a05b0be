//! What `/ready` and `/status` report. The apply loop updates it; nothing in it is secret (the
//! connection is shown without credentials). The same state in Kafka Connect's terms is
//! `/connectors/<name>/status` ([`connect_state`]).
//!
//! `/ready` is 503 while the sink is not `running`: starting, `joining` (the consumer group has
//! not assigned this sink its partitions yet: after a start, or between the revocation and the
//! assignment of a rebalance), `retrying` a transient error (a database or network path that
//! does not answer within its timeout included, see [`crate::apply`]), stopping or failed;
//! `last_error` says why. `partitions` are the assigned ones (an assignment may be empty: a group
//! with more sinks than partitions). While none of the subscribed topics exists the consumer
//! does not join the group; with nothing to wait for, the sink is `running` and ready. `lag_seconds` is computed from the clock when asked, so it
//! keeps growing while a batch cannot be committed.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cdc_common::{Connector, ConnectorState, ConnectorType};
use serde::Serialize;

use crate::config::Settings;

/// The `/status` document.
#[derive(Debug, Clone, Default, Serialize)]
pub struct StatusDoc {
    /// `starting`, `joining`, `running`, `retrying`, `stopping`, `stopped` or `failed`.
    pub state: &'static str,
    /// The partitions the consumer group assigned to this sink, as `topic/partition`.
    pub partitions: std::collections::BTreeSet<String>,
    pub name: String,
    pub group: String,
    pub connection: String,
    /// Next offset to apply, per `topic/partition`, as stored in the offsets table (the offset
    /// after the last applied record; when caught up usually that of the transaction marker
    /// which follows it, so `lag_records` rather than the end offset minus this is the lag).
    pub offsets: BTreeMap<String, i64>,
    pub batches_committed: u64,
    pub records_committed: u64,
    pub dlq_records: u64,
    pub last_commit_unix_ms: Option<u64>,
    /// While records wait to be committed: now minus the event time of the oldest of them (it
    /// grows while the sink is stalled or retrying). Otherwise, as at the last commit: seconds
    /// from the newest applied record's event time to the commit.
    pub lag_seconds: Option<f64>,
    /// Records still to apply, per `topic/partition` of the assignment: the partition's last
    /// stable offset minus the consumer group's committed offset, from librdkafka statistics
    /// (every 5 s), the same numbers as `cdc_sink_consumer_lag_records`. Transaction markers are
    /// not counted: 0 once everything committed so far is in the mirror.
    pub lag_records: BTreeMap<String, i64>,
    pub last_error: Option<String>,
}

/// Shared between the apply loop and the HTTP server.
#[derive(Debug, Default)]
pub struct SinkStatus {
    ready: AtomicBool,
    /// The consumer group assigned this sink its partitions (set by the consumer's rebalance
    /// callbacks); not ready without, unless `no_topics`.
    assigned: AtomicBool,
    /// None of the subscribed topics exists yet: the consumer does not join the group until one
    /// does, and there is nothing to apply, so the sink counts as ready (as Kafka Connect reports
    /// such a sink `RUNNING`).
    no_topics: AtomicBool,
    doc: Mutex<StatusDoc>,
    /// Event time (unix ms) of the oldest record read and not yet committed; 0: none.
    pending_event_ms: AtomicI64,
    /// Event time (unix ms) of the newest record committed to the mirror; 0: none yet.
    applied_event_ms: AtomicI64,
    /// `pending_event_ms` was set by [`SinkStatus::stalled_idle`], not by a record of a batch.
    stall_lag: AtomicBool,
}

impl SinkStatus {
    pub fn new(doc: StatusDoc) -> SinkStatus {
        SinkStatus {
            ready: AtomicBool::new(false),
            assigned: AtomicBool::new(false),
            no_topics: AtomicBool::new(false),
            doc: Mutex::new(doc),
            pending_event_ms: AtomicI64::new(0),
            applied_event_ms: AtomicI64::new(0),
            stall_lag: AtomicBool::new(false),
        }
    }

    /// A batch whose newest record has event time `ms` is committed.
    pub fn note_applied_event_ms(&self, ms: i64) {
        self.applied_event_ms.fetch_max(ms, Ordering::Relaxed);
    }

    /// The database stopped answering while no batch was open (`stalled`) or answers again.
    /// While stalled with records waiting in Kafka (`lag_records`), no record is read, so the
    /// lag counts from the newest applied record: the mirror is at least that far behind.
    pub fn stalled_idle(&self, stalled: bool) {
        if stalled {
            let waiting = self.doc.lock().map(|d| d.lag_records.values().any(|n| *n > 0)).unwrap_or(false);
            let applied = self.applied_event_ms.load(Ordering::Relaxed);
            if waiting
                && applied > 0
                && self.pending_event_ms.compare_exchange(0, applied, Ordering::Relaxed, Ordering::Relaxed).is_ok()
            {
                self.stall_lag.store(true, Ordering::Relaxed);
            }
        } else if self.stall_lag.swap(false, Ordering::Relaxed) {
            self.pending_event_ms.store(0, Ordering::Relaxed);
        }
    }

    /// A record with event time `ms` joined the open batch.
    pub fn note_pending_event_ms(&self, ms: i64) {
        let ms = ms.max(1);
        let _ = self.pending_event_ms.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |old| {
            (old == 0 || ms < old).then_some(ms)
        });
    }

    /// The open batch was committed or given up (`None`), or starts over.
    pub fn set_pending_event_ms(&self, ms: Option<i64>) {
        self.stall_lag.store(false, Ordering::Relaxed);
        self.pending_event_ms.store(ms.unwrap_or(0), Ordering::Relaxed);
    }

    /// Now minus the oldest waiting record's event time, in seconds; `None` when none waits.
    pub fn pending_lag(&self) -> Option<f64> {
        let oldest = self.pending_event_ms.load(Ordering::Relaxed);
        (oldest > 0).then(|| (now_ms() - oldest).max(0) as f64 / 1000.0)
    }

    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::Relaxed);
    }

    /// The group assigned `partitions` (`topic/partition`) to this sink; ready from now on
    /// (unless the loop says otherwise), even when there are none.
    pub fn assigned(&self, partitions: impl IntoIterator<Item = String>) {
        self.update(|s| s.partitions.extend(partitions));
        self.assigned.store(true, Ordering::Relaxed);
    }

    /// The group took `partitions` away; not ready until the next assignment once none is left.
    pub fn revoked(&self, partitions: impl IntoIterator<Item = String>) {
        let mut left = 0;
        self.update(|s| {
            for p in partitions {
                s.partitions.remove(&p);
                s.lag_records.remove(&p);
            }
            left = s.partitions.len();
        });
        if left == 0 {
            self.assigned.store(false, Ordering::Relaxed);
        }
    }

    /// Whether the group assigned this sink its partitions (see [`SinkStatus::assigned`]).
    pub fn is_assigned(&self) -> bool {
        self.assigned.load(Ordering::Relaxed)
    }

    /// Whether none of the subscribed topics exists (checked while not assigned).
    pub fn set_no_topics(&self, none: bool) {
        self.no_topics.store(none, Ordering::Relaxed);
    }

    /// Assigned partitions, or nothing to be assigned yet.
    fn has_work_or_none_to_wait_for(&self) -> bool {
        self.assigned.load(Ordering::Relaxed) || self.no_topics.load(Ordering::Relaxed)
    }

    /// Changes the document under its lock.
    pub fn update(&self, f: impl FnOnce(&mut StatusDoc)) {
        if let Ok(mut doc) = self.doc.lock() {
            f(&mut doc);
        }
    }

    /// The document, with `lag_seconds` as of now.
    pub fn snapshot(&self) -> StatusDoc {
        let mut doc = self.doc.lock().map(|d| d.clone()).unwrap_or_default();
        if let Some(lag) = self.pending_lag() {
            doc.lag_seconds = Some(lag);
        }
        if doc.state == "running" && !self.has_work_or_none_to_wait_for() {
            doc.state = "joining";
        }
        doc
    }
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

/// Keeps `cdc_sink_lag_seconds` following the clock (every half second), whatever the apply loop
/// is waiting on.
pub async fn follow_lag(status: std::sync::Arc<SinkStatus>, gauge: prometheus_client::metrics::gauge::Gauge<f64, std::sync::atomic::AtomicU64>) {
    let mut every = tokio::time::interval(Duration::from_millis(500));
    loop {
        every.tick().await;
        gauge.set(status.pending_lag().unwrap_or(0.0));
    }
}

impl cdc_common::ServiceStatus for SinkStatus {
    fn ready(&self) -> bool {
        self.ready.load(Ordering::Relaxed) && self.has_work_or_none_to_wait_for()
    }

    fn status(&self) -> serde_json::Value {
        serde_json::to_value(self.snapshot()).unwrap_or(serde_json::Value::Null)
    }

    fn connector_state(&self) -> ConnectorState {
        let doc = self.snapshot();
        connect_state(doc.state, doc.last_error.as_deref())
    }
}

/// The connector the Kafka Connect endpoints report: a `sink` named by `name`.
pub fn connector(settings: &Settings) -> Connector {
    Connector::new(
        &settings.name,
        ConnectorType::Sink,
        "jdbc-sink",
        env!("CARGO_PKG_VERSION"),
        &settings.connect_config,
    )
}

/// The sink's state as Kafka Connect's:
///
/// | sink | Connect | why |
/// |---|---|---|
/// | `starting` | `UNASSIGNED` | connecting to the mirror database and Kafka; not yet applying |
/// | `joining` | `UNASSIGNED` | waiting for the consumer group to assign partitions |
/// | `running` | `RUNNING` | |
/// | `retrying` | `RUNNING` | a transient error is retried; Connect keeps a retrying task `RUNNING` without a trace (the error is in `/status` `last_error`) |
/// | `stopping`, `stopped` | `UNASSIGNED` | a graceful stop, as a Connect worker leaving reports it |
/// | `failed` | `FAILED`, `trace` = the error | a definite error; the process exits after `http.failed.linger.ms` |
///
/// The sink cannot be paused: `PAUSED`, `RESTARTING` and `STOPPED` are never reported.
pub fn connect_state(state: &str, last_error: Option<&str>) -> ConnectorState {
    ConnectorState::of_service(state, &["running", "retrying"], last_error)
}

#[cfg(test)]
mod tests {
    use super::*;
    use cdc_common::ConnectState;

    #[test]
    fn every_state_maps() {
        let state = |s, e| connect_state(s, e).state;
        assert_eq!(state("starting", None), ConnectState::Unassigned);
        assert_eq!(state("joining", None), ConnectState::Unassigned);
        assert_eq!(state("running", None), ConnectState::Running);
        assert_eq!(state("retrying", Some("deadlock")), ConnectState::Running);
        assert_eq!(state("stopping", None), ConnectState::Unassigned);
        assert_eq!(state("stopped", None), ConnectState::Unassigned);
        assert_eq!(
            connect_state("failed", Some("record t[0]@3 cannot be applied")),
            ConnectorState::failed("record t[0]@3 cannot be applied")
        );
        assert_eq!(connect_state("failed", None).state, ConnectState::Failed);
    }

    #[test]
    fn ready_only_with_an_assignment() {
        use cdc_common::ServiceStatus;
        let status = SinkStatus::new(StatusDoc { state: "running", ..StatusDoc::default() });
        status.set_ready(true);
        assert!(!status.ready());
        assert_eq!(status.snapshot().state, "joining");
        status.assigned(["t/0".to_string(), "t/1".to_string()]);
        assert!(status.ready());
        assert_eq!(status.snapshot().state, "running");
        status.revoked(["t/0".to_string()]);
        assert!(status.ready(), "one partition left");
        status.revoked(["t/1".to_string()]);
        assert!(!status.ready());
        assert_eq!(status.snapshot().state, "joining");
        // No subscribed topic exists yet: nothing to wait for.
        status.set_no_topics(true);
        assert!(status.ready());
        assert_eq!(status.snapshot().state, "running");
        status.set_no_topics(false);
        // An empty assignment (more sinks than partitions) is an assignment.
        status.assigned(Vec::new());
        assert!(status.ready());
        status.set_ready(false);
        assert!(!status.ready(), "retrying");
    }

    #[test]
    fn the_lag_of_a_waiting_batch_follows_the_clock() {
        let status = SinkStatus::new(StatusDoc { lag_seconds: Some(0.5), ..StatusDoc::default() });
        assert_eq!(status.snapshot().lag_seconds, Some(0.5));
        status.note_pending_event_ms(now_ms() - 7_000);
        status.note_pending_event_ms(now_ms() - 3_000);
        let lag = status.snapshot().lag_seconds.unwrap();
        assert!((7.0..8.0).contains(&lag), "{lag}");
        status.set_pending_event_ms(None);
        assert_eq!(status.pending_lag(), None);
        assert_eq!(status.snapshot().lag_seconds, Some(0.5));
    }

    #[test]
    fn a_stall_with_records_waiting_counts_from_the_newest_applied_record() {
        let status = SinkStatus::new(StatusDoc::default());
        status.note_applied_event_ms(now_ms() - 9_000);
        status.stalled_idle(true);
        assert_eq!(status.pending_lag(), None, "nothing waits in Kafka: no lag");
        status.update(|s| {
            s.lag_records.insert("t/0".into(), 17);
        });
        status.stalled_idle(true);
        let lag = status.pending_lag().expect("lag while stalled");
        assert!((9.0..10.0).contains(&lag), "{lag}");
        status.stalled_idle(false);
        assert_eq!(status.pending_lag(), None, "the stall's lag ends with the stall");
        // A waiting batch's own lag is not ended by the idle check.
        status.note_pending_event_ms(now_ms() - 3_000);
        status.stalled_idle(false);
        assert!(status.pending_lag().is_some());
    }
}
