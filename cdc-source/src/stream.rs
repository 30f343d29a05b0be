//! The streaming loop: binlog events in, Kafka transactions out.
//!
//! Rows of captured tables are encoded and handed to the open Kafka transaction as they are read
//! (nothing holds a whole binlog transaction in memory). At a binlog commit boundary (XID, a
//! `COMMIT` query, or the end of a standalone DDL statement) the transaction may be closed: when
//! `batch.max.rows` records are in it or it has been open for `batch.max.ms`. Closing writes the
//! offset record (GTID position after the last whole binlog transaction) and commits. Mid-way
//! through a binlog transaction nothing is ever committed.
//!
//! While idle or when all traffic is filtered out, the read position still advances; it is
//! stored (an offset-only Kafka transaction) at most once per `heartbeat.interval.ms`, so a
//! restart after a long quiet period never asks for purged binlogs.
//!
//! Any transient error aborts the open Kafka transaction, drops the connection and resumes from
//! the last committed position after a backoff; definite errors stop the source, except text a
//! table cannot decode, which fails that table alone (see `tables.rs`).

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use cdc_common::{Backoff, CancellationToken};
use cdc_schema::row_from_binlog;
use mysql_async::binlog::events::{Event, EventData};
use mysql_async::binlog::EventType;

use crate::binlog::mariadb;
use crate::binlog::reader::BinlogReader;
use crate::config::SourceConfig;
use crate::error::SourceError;
use crate::metrics::{Class, SourceMetrics};
use crate::offsets::StoredOffset;
use crate::position::{FilePos, Gtid, GtidPosition};
use crate::publisher::Publisher;
use crate::records::{Op, Origin, RecordWriter};
use crate::status::Status;
use crate::tables::Tables;

/// The streaming state between reconnects.
#[derive(Debug)]
pub struct Streamer<'a> {
    pub cfg: &'a SourceConfig,
    pub tables: Tables,
    pub writer: RecordWriter,
    pub publisher: Publisher,
    pub metrics: SourceMetrics,
    pub status: &'a Status,
    /// The last stored position.
    pub committed: StoredOffset,
    read: GtidPosition,
    read_binlog: FilePos,
    read_ts_ms: u64,
    in_tx: Option<mariadb::GtidEvent>,
    rows_in_batch: usize,
    last_store: Instant,
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

impl<'a> Streamer<'a> {
    pub fn new(
        cfg: &'a SourceConfig,
        tables: Tables,
        writer: RecordWriter,
        publisher: Publisher,
        metrics: SourceMetrics,
        status: &'a Status,
        committed: StoredOffset,
    ) -> Self {
        Streamer {
            cfg,
            tables,
            writer,
            publisher,
            metrics,
            status,
            read: committed.gtid.clone(),
            read_binlog: committed.binlog.clone(),
            read_ts_ms: committed.ts_ms,
            committed,
            in_tx: None,
            rows_in_batch: 0,
            last_store: Instant::now(),
        }
    }

    /// Streams until `shutdown` (then commits what is whole and returns `Ok`) or a definite error.
    pub async fn run(&mut self, shutdown: &CancellationToken) -> Result<(), SourceError> {
        let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(30));
        loop {
            match self.stream_once(shutdown, &mut backoff).await {
                Ok(()) => return Ok(()),
                Err(e) => {
                    if let Err(abort) = self.publisher.abort().await {
                        tracing::error!(error = %abort, "cannot abort the Kafka transaction");
                        return Err(abort);
                    }
                    self.metrics.errors.get_or_create(&Class { class: e.class() }).inc();
                    let text = e.to_string();
                    self.status.update(|s| s.last_error = Some(text.clone()));
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
        // Resume exactly after what Kafka has: after a failed commit, the offsets topic says
        // whether it landed.
        if let Some(stored) = self.publisher.settled_position().await? {
            self.committed = stored;
        }
        self.read = self.committed.gtid.clone();
        self.read_binlog = self.committed.binlog.clone();
        self.in_tx = None;
        self.rows_in_batch = 0;
        self.tables.forget_table_ids();
        let mut reader = BinlogReader::connect(
            self.cfg.mysql_opts(),
            self.cfg.server_id,
            &self.committed.gtid,
            self.cfg.heartbeat,
            self.cfg.read_timeout,
        )
        .await?;
        tracing::info!(gtid = %self.committed.gtid, "streaming the binlog");
        self.status.update(|s| s.state = "streaming");
        let mut tick = tokio::time::interval(self.cfg.batch_max.min(self.cfg.heartbeat) / 2);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => {
                    if self.in_tx.is_none() && (self.publisher.is_open() || self.read != self.committed.gtid) {
                        self.commit().await?;
                    } else {
                        self.publisher.abort().await?;
                    }
                    reader.close().await;
                    return Ok(());
                }
                _ = tick.tick() => self.maybe_commit().await?,
                event = reader.next() => {
                    let Some(event) = event? else {
                        return Err(SourceError::Transient("the server ended the binlog stream".into()));
                    };
                    backoff.reset();
                    self.handle(&reader, &event).await?;
                }
            }
        }
    }

    async fn handle(&mut self, reader: &BinlogReader, event: &Event) -> Result<(), SourceError> {
        let header = event.header();
        let ts = header.timestamp();
        if ts > 0 {
            let behind = (now_ms() as f64 / 1000.0 - f64::from(ts)).max(0.0);
            self.metrics.seconds_behind.set(behind);
            self.metrics.last_event_timestamp.set(i64::from(ts));
        }
        let kind = header.event_type_raw();
        match kind {
            mariadb::GTID => {
                let g = mariadb::parse_gtid(event.data(), header.server_id())
                    .ok_or_else(|| SourceError::Definite(format!("malformed GTID event at {}", reader.stream_position())))?;
                self.in_tx = Some(g);
                self.read_ts_ms = u64::from(ts) * 1000;
            }
            k if k == EventType::XID_EVENT as u8 => self.end_tx(reader).await?,
            k if k == EventType::QUERY_EVENT as u8 => {
                let query = match event.read_data() {
                    Ok(Some(EventData::QueryEvent(q))) => q.query().trim().to_ascii_uppercase(),
                    _ => String::new(),
                };
                if query == "COMMIT" || self.in_tx.is_some_and(|g| g.standalone) {
                    self.end_tx(reader).await?;
                }
            }
            k if is_rows_event(k) => self.rows(reader, event).await?,
            // Every binlog file starts with one; a restarted server starts a new file and hands
            // out table ids from the start again.
            k if k == EventType::FORMAT_DESCRIPTION_EVENT as u8 => self.tables.forget_table_ids(),
            // The server sends one after each heartbeat period without events: everything is
            // read, so the source is 0 s behind (in the metric and in /status alike).
            k if k == EventType::HEARTBEAT_EVENT as u8 => {
                self.metrics.seconds_behind.set(0.0);
                self.status.update(|s| {
                    s.read_binlog = reader.stream_position().to_string();
                    s.seconds_behind_source = 0.0;
                });
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

    async fn rows(&mut self, reader: &BinlogReader, event: &Event) -> Result<(), SourceError> {
        let at = reader.stream_position();
        let data = event
            .read_data()
            .map_err(|e| SourceError::Definite(format!("cannot parse rows event at {at}: {e}")))?;
        let Some(EventData::RowsEvent(rows)) = data else { return Ok(()) };
        let tme = reader
            .table_map(rows.table_id())
            .ok_or_else(|| SourceError::Definite(format!("rows event at {at} without its table map")))?;
        let Some(table) = self.tables.resolve(self.cfg, &self.metrics, rows.table_id(), tme)? else {
            return Ok(());
        };
        let kind = event.header().event_type_raw();
        let op = if kind == EventType::WRITE_ROWS_EVENT as u8 || kind == EventType::WRITE_ROWS_EVENT_V1 as u8 {
            Op::Create
        } else if kind == EventType::UPDATE_ROWS_EVENT as u8 || kind == EventType::UPDATE_ROWS_EVENT_V1 as u8 {
            Op::Update
        } else {
            Op::Delete
        };
        let origin = Origin {
            gtid: self.in_tx.map(|g| g.gtid.to_string()).unwrap_or_default(),
            binlog: at.to_string(),
            ts_ms: self.read_ts_ms,
        };
        let bad_row = |e: String| SourceError::Definite(format!("cannot decode a row of {}.{} at {at}: {e}", table.schema.database, table.schema.table));
        for row in rows.rows(tme) {
            let (before, after) = row.map_err(|e| bad_row(e.to_string()))?;
            let decode = |r: Option<_>| r.map(|r| row_from_binlog(&table.schema, &r)).transpose();
            let (before, after) = match (decode(before), decode(after)) {
                (Ok(b), Ok(a)) => (b, a),
                // Text this table's definition or data makes undecodable fails the table alone.
                (Err(e), _) | (_, Err(e)) if e.is_undecodable_text() => {
                    let error = bad_row(e.to_string()).to_string();
                    self.tables.fail(&self.metrics, &table.schema.database, &table.schema.table, &error);
                    self.status.update(|s| s.last_error = Some(error.clone()));
                    return Ok(());
                }
                (Err(e), _) | (_, Err(e)) => return Err(bad_row(e.to_string())),
            };
            let (prior, row) = match (op, before, after) {
                (Op::Delete, Some(b), _) => (None, b),
                (_, b, Some(a)) => (b, a),
                _ => return Err(bad_row("row image missing; set binlog_row_image=FULL".into())),
            };
            self.writer.publish(&mut self.publisher, &table, op, prior.as_deref(), row, &origin).await?;
            self.rows_in_batch += 1;
        }
        Ok(())
    }

    async fn end_tx(&mut self, reader: &BinlogReader) -> Result<(), SourceError> {
        if let Some(g) = self.in_tx.take() {
            self.read.advance(Gtid { ..g.gtid });
        }
        self.read_binlog = reader.stream_position();
        self.metrics.binlog_transactions.inc();
        self.maybe_commit().await
    }

    /// Commits at a boundary when the batch is full or old enough, or stores an advanced idle
    /// position once per heartbeat interval.
    async fn maybe_commit(&mut self) -> Result<(), SourceError> {
        if self.in_tx.is_some() {
            return Ok(());
        }
        let batch_due = self.publisher.is_open()
            && (self.rows_in_batch >= self.cfg.batch_max_rows
                || self.publisher.open_for().is_some_and(|d| d >= self.cfg.batch_max));
        let idle_due = !self.publisher.is_open()
            && self.read != self.committed.gtid
            && self.last_store.elapsed() >= self.cfg.heartbeat;
        if batch_due || idle_due {
            self.commit().await?;
        }
        Ok(())
    }

    async fn commit(&mut self) -> Result<(), SourceError> {
        let offset = StoredOffset { gtid: self.read.clone(), binlog: self.read_binlog.clone(), ts_ms: self.read_ts_ms };
        self.publisher.commit(Some(&offset)).await?;
        self.committed = offset;
        self.rows_in_batch = 0;
        self.last_store = Instant::now();
        let (g, b) = (self.committed.gtid.to_string(), self.committed.binlog.to_string());
        let behind = self.metrics.seconds_behind.get();
        self.status.update(|s| {
            s.seconds_behind_source = behind;
            s.committed_gtid = g;
            s.read_binlog = b.clone();
            s.committed_binlog = b;
        });
        Ok(())
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
