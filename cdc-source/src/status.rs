//! What `/status` and `/ready` report: state, positions, lag, snapshot progress, last error;
//! and the same state in Kafka Connect's terms for `/connectors/<name>/status`
//! ([`connect_state`]).

use std::sync::Mutex;

use cdc_common::{ConnectState, Connector, ConnectorState, ConnectorType};
use serde::Serialize;

use crate::config::SourceConfig;

/// The source's state, shared between the pipeline (writer) and the HTTP endpoints (readers).
#[derive(Debug, Default)]
pub struct Status {
    inner: Mutex<StatusDoc>,
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
    /// Now minus the server time of the last event read, as at the last Kafka commit or binlog
    /// heartbeat; a heartbeat (nothing left to read) sets it to 0.
    pub seconds_behind_source: f64,
    pub snapshot: Vec<SnapshotProgress>,
    pub last_error: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SnapshotProgress {
    pub table: String,
    pub rows_done: u64,
    pub rows_estimated: u64,
    pub done: bool,
}

impl Status {
    pub fn update(&self, f: impl FnOnce(&mut StatusDoc)) {
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut g);
    }

    pub fn snapshot(&self) -> StatusDoc {
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

impl cdc_common::ServiceStatus for Status {
    fn ready(&self) -> bool {
        let doc = self.snapshot();
        doc.state == "streaming" || doc.state == "snapshot"
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
    match state {
        "snapshot" | "streaming" | "reconnecting" => ConnectorState::new(ConnectState::Running),
        "failed" => ConnectorState::failed(last_error.unwrap_or("stopped by a definite error; see the log")),
        _ => ConnectorState::new(ConnectState::Unassigned),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
