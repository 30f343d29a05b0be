//! What `/ready` and `/status` report. The apply loop updates it; nothing in it is secret (the
//! connection is shown without credentials). The same state in Kafka Connect's terms is
//! `/connectors/<name>/status` ([`connect_state`]).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use cdc_common::{ConnectState, Connector, ConnectorState, ConnectorType};
use serde::Serialize;

use crate::config::Settings;

/// The `/status` document.
#[derive(Debug, Clone, Default, Serialize)]
pub struct StatusDoc {
    /// `starting`, `running`, `retrying`, `stopping`, `stopped` or `failed`.
    pub state: &'static str,
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
    /// At the last commit: seconds from the newest applied record's event time to the commit.
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
    doc: Mutex<StatusDoc>,
}

impl SinkStatus {
    pub fn new(doc: StatusDoc) -> SinkStatus {
        SinkStatus {
            ready: AtomicBool::new(false),
            doc: Mutex::new(doc),
        }
    }

    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::Relaxed);
    }

    /// Changes the document under its lock.
    pub fn update(&self, f: impl FnOnce(&mut StatusDoc)) {
        if let Ok(mut doc) = self.doc.lock() {
            f(&mut doc);
        }
    }

    pub fn snapshot(&self) -> StatusDoc {
        self.doc.lock().map(|d| d.clone()).unwrap_or_default()
    }
}

impl cdc_common::ServiceStatus for SinkStatus {
    fn ready(&self) -> bool {
        self.ready.load(Ordering::Relaxed)
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
/// | `running` | `RUNNING` | |
/// | `retrying` | `RUNNING` | a transient error is retried; Connect keeps a retrying task `RUNNING` without a trace (the error is in `/status` `last_error`) |
/// | `stopping`, `stopped` | `UNASSIGNED` | a graceful stop, as a Connect worker leaving reports it |
/// | `failed` | `FAILED`, `trace` = the error | a definite error; the process exits after `http.failed.linger.ms` |
///
/// The sink cannot be paused: `PAUSED`, `RESTARTING` and `STOPPED` are never reported.
pub fn connect_state(state: &str, last_error: Option<&str>) -> ConnectorState {
    match state {
        "running" | "retrying" => ConnectorState::new(ConnectState::Running),
        "failed" => ConnectorState::failed(
            last_error.unwrap_or("stopped by a definite error; see the log"),
        ),
        _ => ConnectorState::new(ConnectState::Unassigned),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_state_maps() {
        let state = |s, e| connect_state(s, e).state;
        assert_eq!(state("starting", None), ConnectState::Unassigned);
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
}
