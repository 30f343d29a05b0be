//! What `/ready` and `/status` report. The apply loop updates it; nothing in it is secret (the
//! connection is shown without credentials).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use serde::Serialize;

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
}
