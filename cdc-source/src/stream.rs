//! The streaming loop: binlog events in, Kafka transactions out.
//!
//! Rows of captured tables are encoded and handed, through the byte-bounded queue of the
//! publisher task (`outbox.rs`), to the Kafka transaction as they are read (nothing holds a whole
//! binlog transaction in memory); reading goes on while a Kafka transaction commits. Where a
//! binlog transaction (group) ends and how is decided by [`Boundary`] (see
//! `binlog/boundary.rs`). At a commit boundary (XID, a `COMMIT` query, or the end of a standalone
//! statement) the transaction may be closed: when `batch.max.rows` records are in it, when it has
//! been open for `batch.max.ms`, or at once when no further event is waiting — each only while no
//! earlier commit is still landing; meanwhile the batch grows. So light traffic is committed
//! without waiting and heavy traffic in large transactions. Closing queues the offset record (GTID
//! position after the last whole binlog transaction) and the commit; the position counts as
//! stored once the task reports the commit landed. Mid-way through a binlog transaction nothing
//! is ever committed.
//!
//! Only committed effects are published:
//! - A group that may end without committing (an `XA PREPARE` group, or one that is not fully
//!   transactional and could end in `ROLLBACK`) gets a Kafka transaction of its own: what is open
//!   is committed before its first row. When it then ends in `ROLLBACK` or XA_PREPARE, its Kafka
//!   transaction is aborted and the position moves past it: nothing of it is published. Should
//!   such a group ever share a Kafka transaction with committed groups (a flag MariaDB did not
//!   set), the whole Kafka transaction is aborted, the source re-reads from the last committed
//!   position and isolates that group the second time.
//! - `XA PREPARE` then `XA ROLLBACK`: nothing is published. `XA PREPARE` then `XA COMMIT`: the
//!   prepare group's records are aborted, and its start (file:pos) is remembered by XID; at the
//!   `XA COMMIT` the group is read again from there on a second replica connection (server id
//!   `server.id` with the top bit flipped) up to its XA_PREPARE event, and its rows are published
//!   in the Kafka transaction of the commit: once, at the commit. An `XA COMMIT` whose prepare
//!   came before the position this process resumed from (a restart between the two) finds the
//!   group by searching the binlog; only when the server no longer has it does the source stop,
//!   with a definite error naming the XID and the fix (see `stream_xa.rs`). `XA COMMIT … ONE
//!   PHASE` is an ordinary transaction.
//! - Table DDL: `TRUNCATE TABLE` of a captured table publishes the truncate record (see
//!   `records.rs`) on every partition of its topic, in the Kafka transaction of that group.
//!   `RENAME TABLE` and `DROP TABLE` make the source forget what it knew of the names involved
//!   (`tables.rs`), so nothing is decoded against a stale table; capture then follows the
//!   include list by the new name.
//!
//! While idle or when all traffic is filtered out, the read position still advances; it is
//! stored (an offset-only Kafka transaction) at most once per `heartbeat.interval.ms`, so a
//! restart after a long quiet period never asks for purged binlogs.
//!
//! Every wait is bounded: connecting within `connect.timeout.ms`, and while streaming an event or
//! heartbeat within `read.timeout.ms` (twice the heartbeat by default; see `binlog/reader.rs` for
//! why the deadline lives in the reader). A half-open connection — the path stopped forwarding
//! without closing — thus ends as a transient error like a closed one. Meanwhile `/ready` says 503
//! and `/status` why (`status.rs`), and the lag keeps growing from the clock.
//!
//! Any transient error aborts the open Kafka transaction, drops the connection and resumes from
//! the last committed position after a backoff; definite errors stop the source, except text a
//! table cannot decode, which fails that table alone (see `tables.rs`).

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use cdc_common::{Backoff, CancellationToken};
use cdc_schema::RowsDecoder;
use futures::FutureExt;
use mysql_async::binlog::events::{Event, EventData};
use mysql_async::binlog::EventType;

use crate::binlog::boundary::{Boundary, Input};
use crate::binlog::mariadb::{self, Xid};
use crate::binlog::reader::BinlogReader;
use crate::config::SourceConfig;
use crate::error::SourceError;
use crate::metrics::{Class, SourceMetrics};
use crate::offsets::StoredOffset;
use crate::outbox::Outbox;
use crate::position::{FilePos, Gtid, GtidPosition};
use crate::publisher::Publisher;
use crate::records::{Op, ChangePosition, RecordEncoder};
use crate::status::Status;
use crate::tables::TableMapCache;

#[path = "stream_xa.rs"]
mod xa;
use xa::Prepared;

#[path = "stream_groups.rs"]
mod groups;

#[path = "stream_incremental.rs"]
mod incremental;
use crate::incremental::{Incremental, IncrementalState, PostedSignal};
use crate::offsets::OffsetRecord;

/// The streaming state between reconnects.
#[derive(Debug)]
pub struct Streamer<'a> {
    pub cfg: &'a SourceConfig,
    pub tables: TableMapCache,
    pub writer: RecordEncoder,
    /// Between connections; while streaming the publisher task owns it.
    publisher: Option<Publisher>,
    pub metrics: SourceMetrics,
    pub status: &'a Status,
    /// The last stored position.
    pub committed: StoredOffset,
    /// Commits queued for the publisher task and not yet stored, oldest first.
    pending: VecDeque<PendingCommit>,
    /// The position of the last commit queued (stored or not).
    queued: GtidPosition,
    /// When the first record of the Kafka transaction being filled was queued; `None` while
    /// nothing was queued since the last commit or abort.
    batch_since: Option<Instant>,
    read: GtidPosition,
    read_binlog: FilePos,
    read_ts_ms: u64,
    boundary: Boundary,
    /// The open binlog group, as its GTID event described it.
    in_tx: Option<mariadb::GtidEvent>,
    /// Where the open group's GTID event starts.
    group_start: FilePos,
    /// Records in the open Kafka transaction from groups before the open one.
    rows_before_group: usize,
    rows_in_batch: usize,
    last_store: Instant,
    /// Groups to isolate when read again: they ended without committing while sharing a Kafka
    /// transaction with committed groups.
    isolate: HashSet<Gtid>,
    /// XA transactions prepared since this process started streaming, by XID.
    prepared: HashMap<Xid, Prepared>,
    /// XIDs whose XA COMMIT/ROLLBACK was read but not yet covered by a Kafka commit.
    resolved: Vec<Xid>,
    /// Incremental snapshots: progress, the window open, the chunk reader.
    inc: Incremental,
    /// Signals posted to `POST /signals`.
    posted: Option<tokio::sync::mpsc::Receiver<PostedSignal>>,
}

/// A commit queued for the publisher task: what it stores once it lands.
#[derive(Debug)]
struct PendingCommit {
    ticket: u64,
    offset: StoredOffset,
    /// XA outcomes it covers.
    resolved: Vec<Xid>,
    /// The incremental snapshots' progress it stores.
    incremental: IncrementalState,
}

impl<'a> Streamer<'a> {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        cfg: &'a SourceConfig,
        tables: TableMapCache,
        writer: RecordEncoder,
        publisher: Publisher,
        metrics: SourceMetrics,
        status: &'a Status,
        committed: StoredOffset,
        inc: Incremental,
        posted: Option<tokio::sync::mpsc::Receiver<PostedSignal>>,
    ) -> Self {
        Streamer {
            cfg,
            tables,
            writer,
            publisher: Some(publisher),
            metrics,
            status,
            pending: VecDeque::new(),
            queued: committed.gtid.clone(),
            batch_since: None,
            read: committed.gtid.clone(),
            read_binlog: committed.binlog.clone(),
            read_ts_ms: committed.ts_ms,
            committed,
            boundary: Boundary::default(),
            in_tx: None,
            group_start: FilePos::default(),
            rows_before_group: 0,
            rows_in_batch: 0,
            last_store: Instant::now(),
            isolate: HashSet::new(),
            prepared: HashMap::new(),
            resolved: Vec::new(),
            inc,
            posted,
        }
    }

    /// Streams until `shutdown` (then commits what is whole and returns `Ok`) or a definite error.
    /// Meanwhile `cdc_source_seconds_behind_source` follows the clock (see `status.rs`), also
    /// while the loop waits on a stalled connection.
    pub async fn run(&mut self, shutdown: &CancellationToken) -> Result<(), SourceError> {
        let (status, gauge) = (self.status, self.metrics.seconds_behind.clone());
        let lag = async move {
            let mut every = tokio::time::interval(Duration::from_millis(500));
            loop {
                every.tick().await;
                if let Some(behind) = status.seconds_behind() {
                    gauge.set(behind);
                }
            }
        };
        tokio::select! {
            result = self.run_reconnecting(shutdown) => result,
            // The timer never ends.
            () = lag => Ok(()),
        }
    }

    async fn run_reconnecting(&mut self, shutdown: &CancellationToken) -> Result<(), SourceError> {
        let mut backoff = Backoff::new(Duration::from_millis(200), self.cfg.retry_backoff_max);
        loop {
            match self.stream_once(shutdown, &mut backoff).await {
                Ok(()) => return Ok(()),
                Err(e) => {
                    self.metrics.errors.get_or_create(&Class { class: e.class() }).inc();
                    let text = e.to_string();
                    self.status.update(|s| {
                        s.last_error = Some(text.clone());
                        s.waiting_on = None;
                    });
                    if !e.is_transient() {
                        return Err(e);
                    }
                    tracing::warn!(error = %e, resume = %self.committed.gtid, "binlog stream interrupted; resuming from the last committed position");
                    self.status.update(|s| s.state = "reconnecting");
                    self.metrics.reconnects.inc();
                    if !backoff.wait(shutdown).await {
                        return Ok(());
                    }
                }
            }
        }
    }

    async fn stream_once(&mut self, shutdown: &CancellationToken, backoff: &mut Backoff) -> Result<(), SourceError> {
        let Some(mut publisher) = self.publisher.take() else {
            return Err(SourceError::Definite("the Kafka producer was lost when the publisher task ended abnormally; restart the source".into()));
        };
        // Resume exactly after what Kafka has: after a failed commit, the offsets topic says
        // whether it landed.
        let settled = publisher.settled_position().await;
        let mut outbox = Outbox::start(publisher, self.metrics.pending("queued"));
        let result = match settled {
            Ok(stored) => {
                if let Some(stored) = stored {
                    self.committed = stored.position;
                    self.inc.committed = stored.incremental;
                }
                self.stream_with(&mut outbox, shutdown, backoff).await
            }
            Err(e) => Err(e),
        };
        // After an error nothing queued may land: it is read again from the last stored
        // position. After a shutdown what is queued is whole and is committed first.
        let (publisher, stored, failure) = outbox.finish(result.is_err()).await?;
        self.publisher = Some(publisher);
        for ticket in stored {
            self.stored(ticket);
        }
        self.pending.clear();
        self.status.commit_waiting(false);
        match (result, failure) {
            (_, Some(e)) => match e.refused_on_topic().map(str::to_string) {
                Some(topic) => {
                    self.writer.fail_refused(&topic, e)?;
                    Err(SourceError::Transient(format!(
                        "the Kafka transaction was aborted because a record of topic {topic} was refused; its table is skipped from now on"
                    )))
                }
                None => Err(e),
            },
            (result, None) => result,
        }
    }

    async fn stream_with(&mut self, outbox: &mut Outbox, shutdown: &CancellationToken, backoff: &mut Backoff) -> Result<(), SourceError> {
        self.read = self.committed.gtid.clone();
        self.read_binlog = self.committed.binlog.clone();
        self.queued = self.committed.gtid.clone();
        self.pending.clear();
        self.batch_since = None;
        self.in_tx = None;
        self.boundary.reset();
        self.rows_in_batch = 0;
        self.rows_before_group = 0;
        self.resolved.clear();
        self.inc.reset_to_committed();
        self.show_incremental();
        self.tables.forget_table_ids();
        let mut reader = BinlogReader::connect(
            self.cfg.mysql_opts(),
            self.cfg.server_id,
            &self.committed.gtid,
            self.cfg.heartbeat,
            self.cfg.replica_timeouts(),
        )
        .await?;
        tracing::info!(gtid = %self.committed.gtid, "streaming the binlog");
        self.status.streaming(self.cfg.heartbeat, self.cfg.read_timeout);
        let mut tick = tokio::time::interval(self.cfg.batch_max.min(self.cfg.heartbeat) / 2);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            if self.quiet_commit_due(outbox) {
                // The stream is quiet (no event waiting): what is whole goes out now rather than
                // at batch.max.ms; under load the next event is always there and batches fill.
                match reader.next().now_or_never() {
                    Some(event) => {
                        self.event(outbox, &mut reader, event, backoff).await?;
                        continue;
                    }
                    None => self.commit(outbox)?,
                }
            }
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => {
                    if self.in_tx.is_none() && (self.batch_since.is_some() || self.read != self.queued) {
                        self.commit(outbox)?;
                    } else {
                        outbox.abort()?;
                    }
                    reader.close().await;
                    return Ok(());
                }
                ticket = outbox.stored() => {
                    self.stored(ticket?);
                    self.maybe_commit(outbox)?;
                }
                reply = self.inc.reply() => {
                    self.chunk_reply(outbox, reply).await?;
                }
                Some(signal) = next_posted(&mut self.posted) => {
                    self.posted_signal(signal);
                    self.maybe_commit(outbox)?;
                }
                _ = tick.tick() => {
                    self.inc.dispatch();
                    self.publish_chunk(outbox).await?;
                    self.maybe_commit(outbox)?;
                }
                event = reader.next() => self.event(outbox, &mut reader, event, backoff).await?,
            }
        }
    }

    async fn event(
        &mut self,
        outbox: &mut Outbox,
        reader: &mut BinlogReader,
        event: Result<Option<Event>, SourceError>,
        backoff: &mut Backoff,
    ) -> Result<(), SourceError> {
        let Some(event) = event? else {
            return Err(SourceError::StreamEnded);
        };
        backoff.reset();
        let busy = Instant::now();
        self.handle(outbox, reader, &event).await?;
        if self.in_tx.is_none() {
            self.publish_chunk(outbox).await?;
        }
        reader.not_waiting(busy.elapsed());
        Ok(())
    }

    /// Whether the batch may go out as soon as the stream is quiet: it is whole, not empty, and
    /// no earlier commit is still landing (then the batch grows meanwhile instead).
    fn quiet_commit_due(&self, outbox: &Outbox) -> bool {
        self.in_tx.is_none() && self.batch_since.is_some() && outbox.pending() == 0
    }

    async fn handle(&mut self, outbox: &mut Outbox, reader: &BinlogReader, event: &Event) -> Result<(), SourceError> {
        let header = event.header();
        let ts = header.timestamp();
        let kind = header.event_type_raw();
        // A heartbeat comes after a heartbeat period without events: everything is read, so the
        // source is 0 s behind (in the metric and in /status alike).
        let heartbeat = kind == EventType::HEARTBEAT_EVENT as u8;
        let behind = self.status.read_event((ts > 0 && !heartbeat).then_some(ts));
        if ts > 0 || heartbeat {
            self.metrics.seconds_behind.set(behind);
        }
        if ts > 0 && !heartbeat {
            self.metrics.last_event_timestamp.set(i64::from(ts));
        }
        match kind {
            mariadb::GTID => {
                let g = mariadb::parse_gtid(event.data(), header.server_id())
                    .ok_or_else(|| SourceError::Definite(format!("malformed GTID event at {}", reader.stream_position())))?;
                self.read_ts_ms = u64::from(ts) * 1000;
                let step = self.boundary.feed(Input::Gtid(&g));
                let at = reader.stream_position();
                let start = FilePos { file: at.file, pos: u64::from(header.log_pos()).saturating_sub(u64::from(header.event_size())) };
                self.open_group(outbox, g, start, step)?;
            }
            k if k == EventType::XID_EVENT as u8 => {
                let step = self.boundary.feed(Input::XidCommit);
                self.step(outbox, reader, step).await?;
            }
            k if k == EventType::QUERY_EVENT as u8 => {
                let step = match event.read_data() {
                    Ok(Some(EventData::QueryEvent(q))) => {
                        self.boundary.feed(Input::Query { sql: &q.query(), db: &q.schema() })
                    }
                    _ => self.boundary.feed(Input::Query { sql: "", db: "" }),
                };
                self.step(outbox, reader, step).await?;
            }
            mariadb::XA_PREPARE => {
                let xid = mariadb::parse_xa_prepare(event.data());
                let step = self.boundary.feed(Input::XaPrepare(xid.as_ref()));
                self.step(outbox, reader, step).await?;
            }
            k if is_rows_event(k) => self.rows(outbox, reader, event).await?,
            // Every binlog file starts with one; a restarted server starts a new file and hands
            // out table ids from the start again.
            k if k == EventType::FORMAT_DESCRIPTION_EVENT as u8 => self.tables.forget_table_ids(),
            k if k == EventType::HEARTBEAT_EVENT as u8 => {
                // Nothing is left to read: between transactions the stream is at the binlog's
                // end (also in a file rotated to), which a waiting snapshot chunk compares with.
                if self.in_tx.is_none() {
                    self.read_binlog = reader.stream_position();
                }
                self.status.update(|s| s.read_binlog = reader.stream_position().to_string());
            }
            mariadb::COMPRESSED_FIRST..=mariadb::COMPRESSED_LAST => {
                return Err(SourceError::Definite(format!(
                    "compressed binlog event (type {kind}) at {}: set log_bin_compress=OFF on the server; compressed events cannot be read without loss",
                    reader.stream_position()
                )));
            }
            _ => {}
        }
        Ok(())
    }

    pub(crate) async fn rows(&mut self, outbox: &mut Outbox, reader: &BinlogReader, event: &Event) -> Result<(), SourceError> {
        let at = reader.stream_position();
        let data = event
            .read_data()
            .map_err(|e| SourceError::Decode { context: format!("cannot parse rows event at {at}"), error: e.into() })?;
        let Some(EventData::RowsEvent(rows)) = data else { return Ok(()) };
        let tme = reader
            .table_map(rows.table_id())
            .ok_or_else(|| SourceError::Definite(format!("rows event at {at} without its table map")))?;
        let kind = event.header().event_type_raw();
        if kind == EventType::WRITE_ROWS_EVENT as u8 || kind == EventType::WRITE_ROWS_EVENT_V1 as u8 {
            self.signal_rows(&rows, tme, &at);
        }
        let Some(table) = self.tables.resolve(self.cfg, &self.metrics, rows.table_id(), tme)? else {
            return Ok(());
        };
        let op = if kind == EventType::WRITE_ROWS_EVENT as u8 || kind == EventType::WRITE_ROWS_EVENT_V1 as u8 {
            Op::Create
        } else if kind == EventType::UPDATE_ROWS_EVENT as u8 || kind == EventType::UPDATE_ROWS_EVENT_V1 as u8 {
            Op::Update
        } else {
            Op::Delete
        };
        let origin = ChangePosition {
            gtid: self.in_tx.as_ref().map(|g| g.gtid.to_string()).unwrap_or_default(),
            binlog: at.to_string(),
            ts_ms: self.read_ts_ms,
        };
        let context = || format!("cannot decode a row of {}.{} at {at}", table.schema.database, table.schema.table);
        let bad_row = |error: crate::error::BoxError| SourceError::Decode { context: context(), error };
        // The UPDATE before-image only matters for the tombstone of a changed key.
        let decoder = RowsDecoder::new(&table.schema, tme).map_err(|e| bad_row(e.into()))?;
        let windowed = self.inc.window.as_ref().is_some_and(|w| w.table == table.schema.table && w.database == table.schema.database);
        let event_at = at.order();
        for row in decoder.rows(&rows, self.writer.delete_enabled).map_err(|e| bad_row(e.into()))? {
            let (before, after) = match row {
                Ok(images) => images,
                // Text this table's definition or data makes undecodable fails the table alone.
                Err(e) if e.is_undecodable_text() => {
                    let error = bad_row(e.into()).to_string();
                    self.tables.fail(&self.metrics, &table.schema.database, &table.schema.table, &error);
                    self.status.update(|s| s.last_error = Some(error.clone()));
                    return Ok(());
                }
                Err(e) => return Err(bad_row(e.into())),
            };
            let (prior, row) = match (op, before, after) {
                (Op::Delete, Some(b), _) => (None, b),
                (_, b, Some(a)) => (b, a),
                _ => return Err(SourceError::Definite(format!("{}: row image missing; set binlog_row_image=FULL", context()))),
            };
            if windowed {
                // Inside a chunk's window the stream's change of a key wins over the chunk.
                let (db, name) = (&table.schema.database, &table.schema.table);
                if let Some(before) = &prior {
                    self.inc.changed(db, name, &cdc_schema::key_values(&table.schema, before), event_at);
                }
                self.inc.changed(db, name, &cdc_schema::key_values(&table.schema, &row), event_at);
            }
            self.writer.publish(outbox, &table, op, prior.as_deref(), row, &origin).await?;
            self.rows_in_batch += 1;
            self.batch_since.get_or_insert_with(Instant::now);
        }
        Ok(())
    }

    /// Commits at a boundary when the batch is full or old enough, or stores an advanced idle
    /// position once per heartbeat interval. While an earlier commit is still queued or landing,
    /// the batch keeps growing instead (up to what the queue holds): under load fewer, larger
    /// Kafka transactions, without a wait when traffic is light.
    fn maybe_commit(&mut self, outbox: &mut Outbox) -> Result<(), SourceError> {
        if self.in_tx.is_some() || outbox.pending() > 0 {
            return Ok(());
        }
        let batch_due = self.batch_since.is_some_and(|since| {
            self.rows_in_batch >= self.cfg.batch_max_rows || since.elapsed() >= self.cfg.batch_max
        });
        // A signal taken in or a snapshot ended changes what the offset record stores: soon.
        let idle_due = self.batch_since.is_none()
            && ((self.read != self.queued && self.last_store.elapsed() >= self.cfg.heartbeat) || self.inc.dirty);
        if batch_due || idle_due {
            self.commit(outbox)?;
        }
        Ok(())
    }

    /// Queues the commit of the Kafka transaction being filled, with the position read so far.
    fn commit(&mut self, outbox: &mut Outbox) -> Result<(), SourceError> {
        let offset = StoredOffset { gtid: self.read.clone(), binlog: self.read_binlog.clone(), ts_ms: self.read_ts_ms };
        let incremental = self.inc.state.clone();
        let record = OffsetRecord {
            incremental: incremental.clone(),
            tables: Some(self.seen_tables()),
            ..OffsetRecord::at(offset.clone())
        };
        let ticket = outbox.commit(record)?;
        self.inc.dirty = false;
        self.queued = offset.gtid.clone();
        self.pending.push_back(PendingCommit { ticket, offset, resolved: std::mem::take(&mut self.resolved), incremental });
        self.status.commit_waiting(true);
        self.rows_in_batch = 0;
        self.batch_since = None;
        self.last_store = Instant::now();
        Ok(())
    }

    /// The commit with `ticket` landed: its position is stored.
    fn stored(&mut self, ticket: u64) {
        while self.pending.front().is_some_and(|p| p.ticket <= ticket) {
            let Some(done) = self.pending.pop_front() else { break };
            for xid in &done.resolved {
                self.prepared.remove(xid);
            }
            self.committed = done.offset;
            self.inc.committed = done.incremental;
        }
        self.status.commit_waiting(!self.pending.is_empty());
        let (g, b) = (self.committed.gtid.to_string(), self.committed.binlog.to_string());
        self.status.update(|s| {
            s.committed_gtid = g;
            s.committed_binlog = b;
        });
    }
}

fn is_rows_event(kind: u8) -> bool {
    [
        EventType::WRITE_ROWS_EVENT_V1,
        EventType::UPDATE_ROWS_EVENT_V1,
        EventType::DELETE_ROWS_EVENT_V1,
        EventType::WRITE_ROWS_EVENT,
        EventType::UPDATE_ROWS_EVENT,
        EventType::DELETE_ROWS_EVENT,
    ]
    .iter()
    .any(|t| *t as u8 == kind)
}

/// The next posted signal; pending forever when signals cannot be posted.
async fn next_posted(posted: &mut Option<tokio::sync::mpsc::Receiver<PostedSignal>>) -> Option<PostedSignal> {
    match posted {
        Some(rx) => match rx.recv().await {
            Some(signal) => Some(signal),
            None => std::future::pending().await,
        },
        None => std::future::pending().await,
    }
}
