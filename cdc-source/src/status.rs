//! What `/status` and `/ready` report: state, positions, lag, snapshot progress, last error;
//! and the same state in Kafka Connect's terms for `/connectors/<name>/status`
//! ([`connect_state`]).
//!
//! # Stalls
//! While streaming, the server sends an event or at least a heartbeat every
//! `heartbeat.interval.ms`. The stream records when it read the last one ([`Status::read_event`]);
//! `/ready` and `/status` look at the clock when asked. When nothing was read for `read.timeout.ms`
//! the source is stalled — the binlog connection does not deliver, or the loop waits on Kafka —
//! `/ready` answers 503 and `/status` `stalled` says on what and for how long. The same holds
//! for a Kafka commit that has not landed within `read.timeout.ms` ([`Status::commit_waiting`]):
//! reading goes on meanwhile (the publisher task commits), but nothing read is stored. `reconnecting` (a transient error, retried with backoff) is not ready either.
//! `seconds_behind_source` is computed from the clock too, so it keeps growing while stalled.
//!
//! The snapshot reports its progress the same way ([`Status::snapshot_read`]: a row read, a chunk
//! committed): nothing for `read.timeout.ms` while in `snapshot` is a stall too, with `/ready` 503
//! and `stalled` naming what the snapshot waits on.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cdc_common::{Connector, ConnectorState, ConnectorType};
use serde::Serialize;

use crate::config::SourceConfig;

/// The source's state, shared between the pipeline (writer) and the HTTP endpoints (readers).
#[derive(Debug, Default)]
pub struct Status {
    inner: Mutex<StatusDoc>,
    /// Unix ms when the stream last read an event (or connected); 0 before streaming.
    last_read_ms: AtomicU64,
    /// Lag of that event when read: now minus its server time, ms (0 for a heartbeat).
    lag_at_read_ms: AtomicU64,
    heartbeat_ms: AtomicU64,
    stall_after_ms: AtomicU64,
    /// Unix ms since when a queued Kafka commit has been waiting to land; 0 when none waits.
    commit_since_ms: AtomicU64,
    /// Unix ms when the snapshot last made progress (a row read, a chunk committed); 0 outside it.
    snapshot_read_ms: AtomicU64,
    /// Silence of the snapshot that is a stall (`read.timeout.ms`).
    snapshot_stall_after_ms: AtomicU64,
}

#[derive(Debug, Default, Clone, Serialize)]
pub struct StatusDoc {
    /// `starting`, `snapshot`, `streaming`, `reconnecting`, `stopped`, `failed`.
    pub state: &'static str,
    pub name: String,
    /// GTID position of the last committed Kafka transaction.
    pub committed_gtid: String,
    /// file:pos of the last committed Kafka transaction.
    pub committed_binlog: String,
    /// file:pos of the last event read.
    pub read_binlog: String,
    /// How far behind the source server the stream is, from the clock when asked: the lag of the
    /// last event when it was read (now minus its server time; 0 for a heartbeat, which means
    /// nothing was left to read), plus — once the next event or heartbeat is overdue, nothing read
    /// for 1.5 heartbeat intervals — the time since one was due. It keeps growing while the
    /// stream is stalled or reconnecting.
    pub seconds_behind_source: f64,
    /// While streaming: why the source makes no progress, if it does not (nothing read for
    /// `read.timeout.ms`). `/ready` is 503 while this is set.
    pub stalled: Option<String>,
    /// What the stream loop is waiting on besides the binlog (e.g. a Kafka commit), if anything.
    #[serde(skip)]
    pub waiting_on: Option<&'static str>,
    pub snapshot: Vec<SnapshotProgress>,
    /// Incremental snapshots queued or running, the running one first.
    pub incremental_snapshots: Vec<IncrementalProgress>,
    pub last_error: Option<String>,
}

/// One incremental snapshot in `/status`.
#[derive(Debug, Clone, Serialize)]
pub struct IncrementalProgress {
    /// The signal's id (`new-table` for a table newly captured).
    pub id: String,
    pub table: String,
    pub filter: Option<String>,
    pub rows_done: u64,
    /// The table's estimated rows (statistics, or the keys asked for; 0 until its first chunk).
    pub rows_estimated: u64,
    pub chunks_done: u64,
    /// Chunks it is estimated to take in all (rows estimate / chunk size, at least one more than
    /// done while it runs).
    pub chunks_estimated: u64,
    /// Whether its chunks are being read now (else it waits for the ones before it).
    pub running: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct SnapshotProgress {
    pub table: String,
    pub rows_done: u64,
    pub rows_estimated: u64,
    /// Chunks committed (of this table's snapshot, across restarts) and estimated in all.
    pub chunks_done: u64,
    pub chunks_estimated: u64,
    pub done: bool,
}

impl Status {
    pub fn update(&self, f: impl FnOnce(&mut StatusDoc)) {
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut g);
    }

    /// The document with `seconds_behind_source` and `stalled` as of now.
    pub fn snapshot(&self) -> StatusDoc {
        let mut doc = self.inner.lock().unwrap_or_else(|p| p.into_inner()).clone();
        self.live(&mut doc, now_ms());
        doc
    }

    /// The stream (re)connected: from now on an event or heartbeat is due every `heartbeat`, and
    /// none for `stall_after` is a stall.
    pub fn streaming(&self, heartbeat: Duration, stall_after: Duration) {
        self.heartbeat_ms.store(heartbeat.as_millis() as u64, Ordering::Relaxed);
        self.stall_after_ms.store(stall_after.as_millis() as u64, Ordering::Relaxed);
        if self.last_read_ms.load(Ordering::Relaxed) == 0 {
            self.lag_at_read_ms.store(0, Ordering::Relaxed);
        }
        self.last_read_ms.store(now_ms(), Ordering::Relaxed);
        self.update(|s| s.state = "streaming");
    }

    /// An event was read whose server time is `server_ts` (unix seconds; `None` for a heartbeat:
    /// everything is read).
    pub fn read_event(&self, server_ts: Option<u32>) -> f64 {
        let now = now_ms();
        let lag = server_ts.map_or(0, |ts| now.saturating_sub(u64::from(ts) * 1000));
        self.lag_at_read_ms.store(lag, Ordering::Relaxed);
        self.last_read_ms.store(now, Ordering::Relaxed);
        lag as f64 / 1000.0
    }

    /// Whether a queued Kafka commit waits to land: the wait counts from the first call with
    /// `true` after one with `false`.
    pub fn commit_waiting(&self, waiting: bool) {
        if !waiting {
            self.commit_since_ms.store(0, Ordering::Relaxed);
        } else if self.commit_since_ms.load(Ordering::Relaxed) == 0 {
            self.commit_since_ms.store(now_ms(), Ordering::Relaxed);
        }
    }

    /// The snapshot (re)started: from now on no progress for `stall_after` is a stall.
    pub fn snapshot_started(&self, stall_after: Duration) {
        self.snapshot_stall_after_ms.store(stall_after.as_millis() as u64, Ordering::Relaxed);
        self.snapshot_read();
        self.update(|s| s.state = "snapshot");
    }

    /// The snapshot made progress: a row was read or a chunk committed.
    pub fn snapshot_read(&self) {
        self.snapshot_read_ms.store(now_ms(), Ordering::Relaxed);
    }

    /// `seconds_behind_source` as of now; `None` before the stream first connected.
    pub fn seconds_behind(&self) -> Option<f64> {
        let mut doc = self.inner.lock().unwrap_or_else(|p| p.into_inner()).clone();
        self.live(&mut doc, now_ms());
        (self.last_read_ms.load(Ordering::Relaxed) > 0).then_some(doc.seconds_behind_source)
    }

    fn live(&self, doc: &mut StatusDoc, now: u64) {
        if doc.state == "snapshot" {
            let (last, stall_after) =
                (self.snapshot_read_ms.load(Ordering::Relaxed), self.snapshot_stall_after_ms.load(Ordering::Relaxed));
            let silent = now.saturating_sub(last);
            doc.stalled = (last > 0 && stall_after > 0 && silent > stall_after).then(|| {
                let on = match doc.waiting_on {
                    Some(what) => format!("waiting for {what}"),
                    None => "no snapshot row read".to_string(),
                };
                format!(
                    "snapshot: {on} for {:.1} s (stalled after read.timeout.ms = {stall_after} ms): the source server, the network path to it or Kafka does not answer",
                    silent as f64 / 1000.0
                )
            });
            return;
        }
        let last = self.last_read_ms.load(Ordering::Relaxed);
        if last == 0 {
            return;
        }
        let read_silent = now.saturating_sub(last);
        let commit_since = self.commit_since_ms.load(Ordering::Relaxed);
        let commit_wait = if commit_since > 0 { now.saturating_sub(commit_since) } else { 0 };
        // What was read is not stored while a commit waits: the lag grows all the same.
        let silent = read_silent.max(commit_wait);
        let heartbeat = self.heartbeat_ms.load(Ordering::Relaxed);
        // Overdue once half an interval past the next heartbeat (they arrive a few ms late).
        let late = if silent > heartbeat + heartbeat / 2 { silent - heartbeat } else { 0 };
        doc.seconds_behind_source = (self.lag_at_read_ms.load(Ordering::Relaxed) + late) as f64 / 1000.0;
        let stall_after = self.stall_after_ms.load(Ordering::Relaxed);
        doc.stalled = (doc.state == "streaming" && stall_after > 0 && silent > stall_after).then(|| {
            let on = match doc.waiting_on {
                _ if commit_wait >= read_silent => "waiting for the Kafka transaction to commit".to_string(),
                Some(what) => format!("waiting for {what}"),
                None => "no binlog event or heartbeat read".to_string(),
            };
            format!(
                "{on} for {:.1} s (one is due every {} ms, heartbeat.interval.ms; stalled after read.timeout.ms = {stall_after} ms): the source server, the network path to it or Kafka does not answer",
                silent as f64 / 1000.0,
                self.heartbeat_ms.load(Ordering::Relaxed)
            )
        });
    }
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

impl cdc_common::ServiceStatus for Status {
    fn ready(&self) -> bool {
        let doc = self.snapshot();
        (doc.state == "streaming" || doc.state == "snapshot") && doc.stalled.is_none()
    }

    fn status(&self) -> serde_json::Value {
        serde_json::to_value(self.snapshot()).unwrap_or(serde_json::Value::Null)
    }

    fn connector_state(&self) -> ConnectorState {
        let doc = self.snapshot();
        connect_state(doc.state, doc.last_error.as_deref())
    }
}

/// The connector the Kafka Connect endpoints report: a `source` named by `name`.
pub fn connector(cfg: &SourceConfig) -> Connector {
    Connector::new(&cfg.name, ConnectorType::Source, "cdc-source", env!("CARGO_PKG_VERSION"), &cfg.connect_config)
}

/// The source's state as Kafka Connect's:
///
/// | source | Connect | why |
/// |---|---|---|
/// | (not yet set), `starting` | `UNASSIGNED` | preflight and connections; not yet copying |
/// | `snapshot`, `streaming` | `RUNNING` | |
/// | `reconnecting` | `RUNNING` | a transient error is retried; Connect keeps a retrying task `RUNNING` without a trace (the error is in `/status` `last_error`) |
/// | `stopped` | `UNASSIGNED` | a graceful stop, as a Connect worker leaving reports it |
/// | `failed` | `FAILED`, `trace` = the error | a definite error; the process exits after `http.failed.linger.ms` |
///
/// The source cannot be paused: `PAUSED`, `RESTARTING` and `STOPPED` are never reported.
pub fn connect_state(state: &str, last_error: Option<&str>) -> ConnectorState {
    ConnectorState::of_service(state, &["snapshot", "streaming", "reconnecting"], last_error)
}

#[cfg(test)]
mod tests {
    use super::*;
    use cdc_common::ConnectState;

    #[test]
    fn every_state_maps() {
        let state = |s, e| connect_state(s, e).state;
        assert_eq!(state("", None), ConnectState::Unassigned);
        assert_eq!(state("starting", None), ConnectState::Unassigned);
        assert_eq!(state("snapshot", None), ConnectState::Running);
        assert_eq!(state("streaming", None), ConnectState::Running);
        assert_eq!(state("reconnecting", Some("connection lost")), ConnectState::Running);
        assert_eq!(state("stopped", None), ConnectState::Unassigned);
        assert_eq!(connect_state("failed", Some("purged GTID")), ConnectorState::failed("purged GTID"));
        assert_eq!(connect_state("failed", None).state, ConnectState::Failed);
    }

    #[test]
    fn silence_beyond_the_read_timeout_is_a_stall_and_lag_grows_from_the_clock() {
        use cdc_common::ServiceStatus;
        let status = Status::default();
        status.streaming(Duration::from_millis(1000), Duration::from_millis(2000));
        let t0 = status.last_read_ms.load(Ordering::Relaxed);
        status.read_event(Some(((t0 - 3000) / 1000) as u32));
        assert!(status.ready());
        let lag_at_read = status.lag_at_read_ms.load(Ordering::Relaxed);
        let read_at = status.last_read_ms.load(Ordering::Relaxed);
        // Until the next heartbeat is overdue: the lag is the event's.
        let mut doc = status.inner.lock().expect("status lock").clone();
        for after in [900, 1400] {
            status.live(&mut doc, read_at + after);
            assert_eq!(doc.seconds_behind_source, lag_at_read as f64 / 1000.0);
            assert!(doc.stalled.is_none());
        }
        // 5 s of silence: 4 s late, stalled.
        status.live(&mut doc, read_at + 5000);
        assert_eq!(doc.seconds_behind_source, (lag_at_read + 4000) as f64 / 1000.0);
        let why = doc.stalled.clone().expect("stalled");
        assert!(why.contains("no binlog event or heartbeat") && why.contains("5.0 s"), "{why}");
        doc.waiting_on = Some("the Kafka commit");
        status.live(&mut doc, read_at + 5000);
        assert!(doc.stalled.as_deref().is_some_and(|w| w.contains("waiting for the Kafka commit")));
        // A commit that does not land while reading goes on: stalled on it, lag growing.
        doc.waiting_on = None;
        status.read_event(None);
        status.commit_waiting(true);
        let since = status.commit_since_ms.load(Ordering::Relaxed);
        assert!(since > 0, "the wait is noted");
        status.commit_waiting(true);
        assert_eq!(status.commit_since_ms.load(Ordering::Relaxed), since, "a second commit queued: the wait counts from the first");
        // Reading goes on (a heartbeat 100 ms ago) while the commit has waited 5.1 s.
        status.last_read_ms.store(since + 5000, Ordering::Relaxed);
        status.live(&mut doc, since + 5100);
        let why = doc.stalled.clone().expect("stalled on the commit");
        assert!(why.contains("waiting for the Kafka transaction to commit") && why.contains("5.1 s"), "{why}");
        assert_eq!(doc.seconds_behind_source, 4.1);
        status.commit_waiting(false);
        status.live(&mut doc, since + 5100);
        assert!(doc.stalled.is_none());
        status.commit_since_ms.store(0, Ordering::Relaxed);
        status.last_read_ms.store(read_at, Ordering::Relaxed);
        status.lag_at_read_ms.store(lag_at_read, Ordering::Relaxed);
        // Reconnecting: not ready, not "stalled", lag still growing.
        doc.state = "reconnecting";
        status.live(&mut doc, read_at + 7000);
        assert!(doc.stalled.is_none());
        assert_eq!(doc.seconds_behind_source, (lag_at_read + 6000) as f64 / 1000.0);
        // A heartbeat: caught up.
        status.read_event(None);
        assert_eq!(status.seconds_behind(), Some(0.0));
    }

    #[test]
    fn a_silent_snapshot_is_a_stall() {
        use cdc_common::ServiceStatus;
        let status = Status::default();
        status.snapshot_started(Duration::from_millis(2000));
        assert!(status.ready());
        let read_at = status.snapshot_read_ms.load(Ordering::Relaxed);
        let mut doc = status.inner.lock().expect("status lock").clone();
        status.live(&mut doc, read_at + 1500);
        assert!(doc.stalled.is_none());
        status.live(&mut doc, read_at + 3000);
        let why = doc.stalled.clone().expect("stalled");
        assert!(why.contains("no snapshot row read for 3.0 s") && why.contains("read.timeout.ms"), "{why}");
        doc.waiting_on = Some("the Kafka commit");
        status.live(&mut doc, read_at + 3000);
        assert!(doc.stalled.as_deref().is_some_and(|w| w.contains("waiting for the Kafka commit")));
        // Progress again: ready.
        status.snapshot_read();
        assert!(status.ready());
    }
}
