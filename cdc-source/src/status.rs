//! What `/status` and `/ready` report: state, positions, lag, snapshot progress, last error.

use std::sync::Mutex;

use serde::Serialize;

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
}
