//! Incremental snapshots: a table, or the rows of it a filter selects, copied again in
//! primary-key chunks while the binlog keeps streaming, with no lock and no pause of the stream.
//!
//! ## The watermark algorithm, with an exact window
//! This is DBLog's algorithm (as Debezium's and Flink CDC's incremental snapshots): for each chunk
//! a window is opened in the stream; row changes of the table that the stream reads inside the
//! window win over the chunk's copy of those rows, and the rest of the chunk is published when
//! the stream reaches the window's end. MariaDB makes the window exact. The chunk is read by
//! the [`reader`] task in a read view of its own (`START TRANSACTION WITH CONSISTENT SNAPSHOT`),
//! whose binlog point P the server reports: every transaction up to P is in the chunk's rows and
//! none after it. So:
//! 1. When a chunk is requested the stream opens the window: from then on it notes the key (and
//!    the binlog point of the rows event) of every change it reads of that table. The stream is
//!    at or before P then, as P is taken later.
//! 2. The chunk arrives with P. Once the stream, between two binlog transactions, has read up to
//!    P (its position, file number then offset, is at or past P — a heartbeat brings it to the
//!    binlog's end when nothing is left to read, also after a rotation — or, when nothing was
//!    written between the read view and the reader's `@@gtid_binlog_pos`, its GTID position
//!    includes that one, which an idle stream knows at once), the chunk's rows are
//!    published as `cdc.op=r` records — except those whose key the stream changed in a rows event
//!    past P (a later transaction): that change, newer than the chunk, is already published.
//!    Changes before P are older than the chunk, which follows them. Positions are compared as
//!    file:pos only: asking the server for P's GTID position (`BINLOG_GTID_POS`) reads the binlog
//!    file from its start, which costs tens to hundreds of milliseconds of server CPU per chunk
//!    on a large file.
//! 3. The window closes and the next chunk is requested.
//!
//! Records of one key thus stay in order on the topic, and after the last chunk the topic holds
//! every row of the table as it is. A chunk waits in memory (at most
//! `incremental.snapshot.chunk.size` rows and about [`reader::CHUNK_MAX_BYTES`]) only until the
//! stream reaches P; the keys noted in a window are capped at [`WINDOW_MAX_KEYS`]: a window that
//! sees more changes is dropped and its chunk read again.
//!
//! ## Progress, restarts, exactly once
//! What is queued and how far each table got ([`IncrementalState`]) is part of the offset record,
//! so a chunk's records and the progress past it commit in one Kafka transaction: after a crash
//! the stream resumes from the last committed position with the progress committed there, and
//! the chunk after the last committed one is read again. After a transient error the same.
//!
//! ## What starts one
//! A signal (`signal.rs`: a row inserted into the table `signal.data.collection`, or `POST
//! /signals`), or a start that finds captured tables the stored position has not seen (a table
//! newly added to `table.include.list`; `snapshot.new.tables`). Tables are copied one after the
//! other in the order requested; a table asked for again while queued is not queued twice.

pub mod http;
pub mod reader;
pub mod signal;

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::config::SourceConfig;
use crate::offsets::KeyValue;
use reader::{Chunk, ChunkReply, ChunkRequest};
pub use signal::{Rejected, Requested, Signal};

/// The most changed keys a window notes before it is dropped and its chunk read again.
pub const WINDOW_MAX_KEYS: usize = 200_000;

/// The incremental snapshots queued and how far each got, as stored in the offset record.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct IncrementalState {
    /// In order; the first is being copied.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub snapshots: Vec<TableSnapshot>,
}

impl IncrementalState {
    pub fn is_empty(&self) -> bool {
        self.snapshots.is_empty()
    }
}

/// One table's incremental snapshot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TableSnapshot {
    /// The signal's id (or `new-table` for a table newly captured).
    pub id: String,
    pub database: String,
    pub table: String,
    /// The SQL condition selecting the rows to copy (`additional-conditions`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<String>,
    /// Rows published so far.
    #[serde(default)]
    pub rows: u64,
    /// Chunks published so far.
    #[serde(default)]
    pub chunks: u64,
    /// The key of the last row read; the next chunk starts after it (from the first row when
    /// empty).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub last_key: Vec<KeyValue>,
    /// Only these primary keys, in one chunk; those the table does not hold get tombstones.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keys: Vec<Vec<KeyValue>>,
    /// Rows the table was estimated to hold when its first chunk was read (0: unknown).
    #[serde(default)]
    pub rows_estimated: u64,
}

impl TableSnapshot {
    pub fn name(&self) -> String {
        format!("{}.{}", self.database, self.table)
    }
}

/// The chunk in flight and the window it opened.
#[derive(Debug)]
pub struct Window {
    pub generation: u64,
    pub database: String,
    pub table: String,
    /// Key (see [`key_id`]) → the binlog point ([`crate::position::FilePos::order`]) of the last change the
    /// stream read of it.
    changed: HashMap<String, (u64, u64)>,
    overflow: bool,
    /// The chunk, once read; published when the stream reaches its position.
    pub chunk: Option<Chunk>,
}

/// What the stream does with incremental snapshots: the state to store, the window open, the
/// reader task.
pub struct Incremental {
    cfg: SourceConfig,
    /// As read so far: what the next commit stores.
    pub state: IncrementalState,
    /// As of the last stored commit.
    pub committed: IncrementalState,
    /// Captured tables the stored position has seen (`db.table`).
    pub known: BTreeSet<String>,
    /// The state changed since the last commit was queued (a signal, a finished table).
    pub dirty: bool,
    pub window: Option<Window>,
    generation: u64,
    retry_at: Option<Instant>,
    reader: Option<(mpsc::Sender<ChunkRequest>, mpsc::Receiver<ChunkReply>)>,
}

impl std::fmt::Debug for Incremental {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Incremental").field("state", &self.state).field("dirty", &self.dirty).finish()
    }
}

/// A signal posted to `POST /signals`, with the channel its answer goes back on.
#[derive(Debug)]
pub struct PostedSignal {
    pub id: String,
    pub kind: String,
    /// The `data` object as JSON text.
    pub data: String,
    pub reply: tokio::sync::oneshot::Sender<Result<String, String>>,
}

/// The identity of a key for the window: its values, as the records carry them.
pub fn key_id(key: &[cdc_schema::Value]) -> String {
    format!("{key:?}")
}

impl Incremental {
    pub fn new(cfg: &SourceConfig, state: IncrementalState, known: BTreeSet<String>, dirty: bool) -> Self {
        Incremental {
            cfg: cfg.clone(),
            committed: state.clone(),
            state,
            known,
            dirty,
            window: None,
            generation: 0,
            retry_at: None,
            reader: None,
        }
    }

    /// After an interruption the stream resumes from the last stored position: so does the
    /// progress, and a chunk in flight is forgotten (its reply is ignored).
    pub fn reset_to_committed(&mut self) {
        self.state = self.committed.clone();
        self.window = None;
        self.generation += 1;
        self.retry_at = None;
        self.dirty = false;
    }

    /// Queues snapshots of `requested` under `id`; returns the names queued (a table already
    /// queued with the same filter is not queued twice).
    pub fn execute(&mut self, id: &str, requested: Vec<Requested>) -> Vec<String> {
        let mut queued = Vec::new();
        for r in requested {
            let dup = self.state.snapshots.iter().any(|s| s.database == r.database && s.table == r.table && s.filter == r.filter && s.keys == r.keys);
            if dup {
                continue;
            }
            let s = TableSnapshot {
                id: id.to_string(),
                database: r.database,
                table: r.table,
                filter: r.filter,
                rows: 0,
                chunks: 0,
                last_key: Vec::new(),
                rows_estimated: r.keys.len() as u64,
                keys: r.keys,
            };
            queued.push(s.name());
            self.state.snapshots.push(s);
            self.dirty = true;
        }
        queued
    }

    /// Drops the snapshots of `tables` (all when `None`); returns the names dropped.
    pub fn stop(&mut self, tables: Option<&[(String, String)]>) -> Vec<String> {
        let hit = |s: &TableSnapshot| tables.is_none_or(|t| t.iter().any(|(d, n)| *d == s.database && *n == s.table));
        let dropped: Vec<String> = self.state.snapshots.iter().filter(|s| hit(s)).map(TableSnapshot::name).collect();
        if dropped.is_empty() {
            return dropped;
        }
        let first_dropped = self.state.snapshots.first().is_some_and(hit);
        self.state.snapshots.retain(|s| !hit(s));
        if first_dropped {
            self.window = None;
            self.generation += 1;
        }
        self.dirty = true;
        dropped
    }

    /// The stream read a change of `database.table` with primary key `key` in the rows event
    /// ending at binlog point `at` ([`crate::position::FilePos::order`]): inside a window of that table it wins
    /// over the chunk's copy.
    pub fn changed(&mut self, database: &str, table: &str, key: &[cdc_schema::Value], at: (u64, u64)) {
        let Some(w) = self.window.as_mut().filter(|w| !w.overflow && w.table == table && w.database == database) else {
            return;
        };
        if w.changed.len() >= WINDOW_MAX_KEYS {
            w.overflow = true;
            w.changed = HashMap::new();
            return;
        }
        w.changed.insert(key_id(key), at);
    }

    /// Whether the stream's change of this key comes after the chunk's binlog point (a rows
    /// event of a later transaction ends past it), so the chunk's copy is older and must not be
    /// published.
    pub fn changed_after(window: &Window, chunk: &Chunk, key: &[cdc_schema::Value]) -> bool {
        !window.changed.is_empty() && window.changed.get(&key_id(key)).is_some_and(|at| *at > chunk.binlog.order())
    }

    /// Sends the next chunk request when none is in flight, something is queued and no retry
    /// wait is on.
    pub fn dispatch(&mut self) {
        if self.window.is_some() || self.retry_at.is_some_and(|t| Instant::now() < t) {
            return;
        }
        let Some(s) = self.state.snapshots.first() else { return };
        self.retry_at = None;
        self.generation += 1;
        let req = ChunkRequest {
            generation: self.generation,
            database: s.database.clone(),
            table: s.table.clone(),
            filter: s.filter.clone(),
            last_key: s.last_key.clone(),
            keys: s.keys.clone(),
            rows: self.cfg.incremental_chunk_size as usize,
        };
        let (tx, _) = self.reader.get_or_insert_with(|| reader::start(self.cfg.clone()));
        // Capacity one, and only one request is ever out: this cannot be full.
        if tx.try_send(req).is_ok() {
            self.window = Some(Window {
                generation: self.generation,
                database: s.database.clone(),
                table: s.table.clone(),
                changed: HashMap::new(),
                overflow: false,
                chunk: None,
            });
        }
    }

    /// The next reply of the reader task. Pending forever while none can come. Cancel-safe.
    pub async fn reply(&mut self) -> ChunkReply {
        match self.reader.as_mut() {
            Some((_, replies)) if self.window.as_ref().is_some_and(|w| w.chunk.is_none()) => match replies.recv().await {
                Some(r) => r,
                None => std::future::pending().await,
            },
            _ => std::future::pending().await,
        }
    }

    /// Takes a reply in: a chunk waits in the window, a refusal drops the table's snapshot (its
    /// name and reason are returned for the log), a failure retries the chunk after a pause.
    pub fn accept(&mut self, reply: ChunkReply) -> Option<(String, String)> {
        let current = self.window.as_ref().map(|w| w.generation);
        match reply {
            ChunkReply::Chunk(chunk) if Some(chunk.generation) == current => {
                let overflow = self.window.as_ref().is_some_and(|w| w.overflow);
                if overflow {
                    tracing::info!(
                        table = %self.window.as_ref().map(|w| format!("{}.{}", w.database, w.table)).unwrap_or_default(),
                        keys = WINDOW_MAX_KEYS,
                        "incremental snapshot: the table changed too much while its chunk was read; reading the chunk again"
                    );
                    self.window = None;
                } else if let Some(w) = self.window.as_mut() {
                    w.chunk = Some(chunk);
                }
                None
            }
            ChunkReply::Rejected { generation, reason } if Some(generation) == current => {
                self.window = None;
                let dropped = if self.state.snapshots.is_empty() { None } else { Some(self.state.snapshots.remove(0)) };
                self.dirty = true;
                dropped.map(|s| (s.name(), reason))
            }
            ChunkReply::Failed { generation, error } if Some(generation) == current => {
                tracing::warn!(error = %error, "incremental snapshot: reading a chunk failed; trying again in 1 s");
                self.window = None;
                self.retry_at = Some(Instant::now() + Duration::from_secs(1));
                None
            }
            // A reply to a request from before a reset or a stop.
            _ => None,
        }
    }

    /// The chunk just published: progress moves past it; a finished table leaves the queue.
    /// Returns the snapshot as it stands and whether it finished.
    pub fn published(&mut self, chunk: &Chunk, rows: u64) -> Option<(TableSnapshot, bool)> {
        let s = self.state.snapshots.first_mut()?;
        s.rows += rows;
        s.chunks += 1;
        s.last_key = chunk.last_key.clone();
        if let Some(estimate) = chunk.estimate {
            s.rows_estimated = estimate;
        }
        let done = s.clone();
        if chunk.finished {
            self.state.snapshots.remove(0);
        }
        self.dirty = true;
        Some((done, chunk.finished))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::position::FilePos;

    fn cfg() -> SourceConfig {
        SourceConfig::from_str(
            r#"{"name": "s", "config": {"connection.url": "jdbc:mysql://localhost:3306/mydb", "connection.user": "u", "format": "json"}}"#,
            &[],
        )
        .expect("config")
    }

    fn chunk(generation: u64, pos: u64) -> Chunk {
        Chunk {
            generation,
            schema: cdc_schema::TableSchema { database: "mydb".into(), table: "orders".into(), columns: Vec::new(), primary_key: vec!["id".into()] },
            binlog: FilePos { file: "mysql-bin.000003".into(), pos },
            gtid: None,
            rows: Vec::new(),
            missing: Vec::new(),
            last_key: vec![KeyValue::Int(7)],
            finished: false,
            estimate: None,
        }
    }

    fn window(inc: &mut Incremental, generation: u64) {
        inc.window = Some(Window {
            generation,
            database: "mydb".into(),
            table: "orders".into(),
            changed: HashMap::new(),
            overflow: false,
            chunk: None,
        });
    }

    #[test]
    fn a_change_after_the_chunks_position_wins_over_the_chunk_and_one_before_it_does_not() {
        let mut inc = Incremental::new(&cfg(), IncrementalState::default(), BTreeSet::new(), false);
        window(&mut inc, 1);
        let (k1, k2, k3) = ([cdc_schema::Value::Int(1)], [cdc_schema::Value::Int(2)], [cdc_schema::Value::Int(3)]);
        inc.changed("mydb", "orders", &k1, (3, 900));
        inc.changed("mydb", "orders", &k2, (3, 1200));
        inc.changed("mydb", "users", &k3, (3, 1300));
        let c = chunk(1, 1000);
        let w = inc.window.as_ref().expect("window");
        assert!(!Incremental::changed_after(w, &c, &k1), "a change in the chunk's view is older than the chunk");
        assert!(Incremental::changed_after(w, &c, &k2), "a change after the view is newer");
        assert!(!Incremental::changed_after(w, &c, &k3), "another table's change is not noted");
    }

    #[test]
    fn progress_moves_per_chunk_and_a_reply_from_before_a_reset_is_ignored() {
        let mut inc = Incremental::new(&cfg(), IncrementalState::default(), BTreeSet::new(), false);
        let queued = inc.execute("sig-1", vec![Requested { database: "mydb".into(), table: "orders".into(), filter: None, keys: Vec::new() }]);
        assert_eq!(queued, vec!["mydb.orders".to_string()]);
        assert!(inc.execute("sig-2", vec![Requested { database: "mydb".into(), table: "orders".into(), filter: None, keys: Vec::new() }]).is_empty());
        window(&mut inc, 3);
        inc.accept(ChunkReply::Chunk(chunk(2, 4)));
        assert!(inc.window.as_ref().expect("w").chunk.is_none(), "a stale chunk is dropped");
        inc.accept(ChunkReply::Chunk(chunk(3, 4)));
        let c = inc.window.take().and_then(|w| w.chunk).expect("chunk kept");
        let (s, finished) = inc.published(&c, 5).expect("published");
        assert!(!finished);
        assert_eq!((s.rows, s.chunks, s.last_key.clone()), (5, 1, vec![KeyValue::Int(7)]));
        inc.committed = inc.state.clone();
        inc.published(&c, 5);
        inc.reset_to_committed();
        assert_eq!(inc.state.snapshots[0].rows, 5, "back to the stored progress");
        window(&mut inc, 99);
        let dropped = inc.accept(ChunkReply::Rejected { generation: 99, reason: "gone".into() });
        assert_eq!(dropped, Some(("mydb.orders".into(), "gone".into())));
        assert!(inc.state.is_empty());
    }

    #[test]
    fn stop_drops_the_named_tables_and_the_window_of_the_running_one() {
        let mut inc = Incremental::new(&cfg(), IncrementalState::default(), BTreeSet::new(), false);
        let r = |t: &str| Requested { database: "mydb".into(), table: t.into(), filter: None, keys: Vec::new() };
        inc.execute("a", vec![r("orders"), r("users")]);
        window(&mut inc, 1);
        assert_eq!(inc.stop(Some(&[("mydb".into(), "users".into())])), vec!["mydb.users".to_string()]);
        assert!(inc.window.is_some(), "the running table's window stays");
        assert_eq!(inc.stop(None), vec!["mydb.orders".to_string()]);
        assert!(inc.window.is_none() && inc.state.is_empty());
    }

    #[test]
    fn the_state_round_trips_through_the_offset_record_text() {
        let state = IncrementalState {
            snapshots: vec![TableSnapshot {
                id: "x".into(),
                database: "mydb".into(),
                table: "orders".into(),
                filter: Some("id > 3".into()),
                rows: 10,
                chunks: 2,
                last_key: vec![KeyValue::Int(10)],
                keys: vec![vec![KeyValue::Int(3)]],
                rows_estimated: 100,
            }],
        };
        let text = serde_json::to_string(&state).expect("json");
        assert_eq!(serde_json::from_str::<IncrementalState>(&text).expect("back"), state);
    }
}
