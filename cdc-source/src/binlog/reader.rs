//! The replica connection: session set-up, the dump request from a GTID position, and a stream of
//! events with a read timeout, the current file:pos and the fake-rotate fix.
//!
//! Every step is bounded. Opening the connection (TCP, handshake, session set-up and the dump
//! request) must finish within the connect timeout (`connect.timeout.ms`). Once streaming, the
//! server sends an event or at least a heartbeat every `heartbeat.interval.ms`; when nothing at
//! all arrived for the read timeout (`read.timeout.ms`, by default twice the heartbeat), the
//! connection is taken for dead (a half-open path: a firewall or NAT that stopped forwarding
//! without closing it) and [`BinlogReader::next`] fails with a transient error, so the stream
//! reconnects with backoff. The read deadline is kept in the reader, not in the future
//! [`BinlogReader::next`] returns: the streaming loop polls `next()` in a `select!` and drops it on
//! every tick of its commit timer, so a timeout started afresh by each call would never fire.
//! Time the caller spends elsewhere (acting on an event, committing) is not silence of the server
//! ([`BinlogReader::not_waiting`]).

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

use futures::StreamExt;
use mysql_async::binlog::events::{Event, EventData, TableMapEvent};
use mysql_async::binlog::EventType;
use mysql_async::prelude::Queryable;
use mysql_async::{BinlogStream, BinlogStreamRequest, Conn};

use crate::error::SourceError;
use crate::position::{FilePos, GtidPosition};

/// The replica server id of a second, short-lived connection (re-reading a prepared XA group):
/// MariaDB ends an older dump of the same server id when a new one connects.
pub fn replay_server_id(server_id: u32) -> u32 {
    server_id ^ 0x8000_0000
}

/// How long opening a replica connection and waiting for its next event may take.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// TCP connect, handshake, session set-up and the dump request, together.
    pub connect: Duration,
    /// Longest silence (not even a heartbeat) of an open stream.
    pub read: Duration,
}

/// `open` within `limit`, else a transient error (the server or the path to it does not answer).
async fn bounded<T>(limit: Duration, open: impl Future<Output = Result<T, SourceError>>) -> Result<T, SourceError> {
    tokio::time::timeout(limit, open).await.map_err(|_| SourceError::ConnectTimeout(limit))?
}

/// A binlog stream positioned at a GTID position.
pub struct BinlogReader {
    stream: BinlogStream,
    file: String,
    pos: u64,
    seen_format: bool,
    read_timeout: Duration,
    /// When [`BinlogReader::next`] gives up: the read timeout after the last event (or connect).
    deadline: Instant,
}

impl std::fmt::Debug for BinlogReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BinlogReader").field("file", &self.file).field("pos", &self.pos).finish()
    }
}

impl BinlogReader {
    /// Connects as a replica with `server_id` and asks for every transaction after `from`
    /// (an empty position starts at the oldest binlog).
    pub async fn connect(
        opts: mysql_async::Opts,
        server_id: u32,
        from: &GtidPosition,
        heartbeat: Duration,
        timeouts: Timeouts,
    ) -> Result<Self, SourceError> {
        let stream = bounded(timeouts.connect, Self::open(opts, server_id, from, heartbeat)).await?;
        Ok(Self::reading(stream, String::new(), 4, timeouts.read))
    }

    async fn open(
        opts: mysql_async::Opts,
        server_id: u32,
        from: &GtidPosition,
        heartbeat: Duration,
    ) -> Result<BinlogStream, SourceError> {
        let mut conn = Conn::new(opts).await.map_err(SourceError::mysql("connect to the source server"))?;
        let setup = [
            // Without this MariaDB sends GTID events as "BEGIN" queries.
            "SET @mariadb_slave_capability=4".to_string(),
            format!("SET @master_heartbeat_period={}", heartbeat.as_nanos()),
            format!("SET @slave_connect_state='{from}'"),
            "SET @slave_gtid_strict_mode=0".to_string(),
            "SET @slave_gtid_ignore_duplicates=0".to_string(),
        ];
        for q in setup {
            conn.query_drop(&q).await.map_err(SourceError::mysql("set up the replica session"))?;
        }
        // With @slave_connect_state set, an empty file name asks for the GTID position.
        let request = BinlogStreamRequest::new(server_id).with_filename(b"").with_pos(4u64);
        conn.get_binlog_stream(request)
            .await
            .map_err(|e| SourceError::from_dump(e, server_id, from))
    }

    fn reading(stream: BinlogStream, file: String, pos: u64, read_timeout: Duration) -> Self {
        let deadline = Instant::now() + read_timeout;
        BinlogReader { stream, file, pos, seen_format: false, read_timeout, deadline }
    }

    /// Connects as a replica with `server_id` and reads from `at` (file:pos, the start of an
    /// event) on: the server sends the file's FORMAT_DESCRIPTION first, then the events from `at`.
    pub async fn connect_at(
        opts: mysql_async::Opts,
        server_id: u32,
        at: &FilePos,
        heartbeat: Duration,
        timeouts: Timeouts,
    ) -> Result<Self, SourceError> {
        let stream = bounded(timeouts.connect, Self::open_at(opts, server_id, at, heartbeat)).await?;
        Ok(Self::reading(stream, at.file.clone(), at.pos, timeouts.read))
    }

    async fn open_at(opts: mysql_async::Opts, server_id: u32, at: &FilePos, heartbeat: Duration) -> Result<BinlogStream, SourceError> {
        let mut conn = Conn::new(opts).await.map_err(SourceError::mysql("connect to the source server"))?;
        for q in ["SET @mariadb_slave_capability=4".to_string(), format!("SET @master_heartbeat_period={}", heartbeat.as_nanos())] {
            conn.query_drop(&q).await.map_err(SourceError::mysql("set up the replica session"))?;
        }
        let request = BinlogStreamRequest::new(server_id).with_filename(at.file.as_bytes()).with_pos(at.pos);
        conn.get_binlog_stream(request)
            .await
            .map_err(|error| SourceError::BinlogFileUnreadable { at: at.clone(), server_id, error })
    }

    /// The next event, or an error if nothing (not even a heartbeat) arrived within the read
    /// timeout of the previous event. `Ok(None)` means the server ended the stream.
    ///
    /// Cancel-safe: dropping the returned future loses nothing (the stream keeps any partly read
    /// packet) and does not move the deadline.
    pub async fn next(&mut self) -> Result<Option<Event>, SourceError> {
        let next = tokio::time::timeout_at(self.deadline, self.stream.next())
            .await
            .map_err(|_| SourceError::ReadTimeout(self.read_timeout))?;
        self.deadline = Instant::now() + self.read_timeout;
        let Some(event) = next else { return Ok(None) };
        let event = event.map_err(|e| SourceError::from_stream(e, self.stream_position()))?;
        self.track(&event);
        Ok(Some(event))
    }

    /// The caller spent `busy` on something other than waiting for the server (acting on an event,
    /// committing): that time does not count as the server's silence.
    pub fn not_waiting(&mut self, busy: Duration) {
        self.deadline += busy;
    }

    fn track(&mut self, event: &Event) {
        let header = event.header();
        let log_pos = u64::from(header.log_pos());
        // Only ROTATE and FORMAT_DESCRIPTION change what is tracked: other events are not parsed.
        let kind = header.event_type_raw();
        if kind != EventType::ROTATE_EVENT as u8 && kind != EventType::FORMAT_DESCRIPTION_EVENT as u8 {
            if log_pos > 0 {
                self.pos = log_pos;
            }
            return;
        }
        match event.read_data() {
            Ok(Some(EventData::RotateEvent(r))) => {
                let raw = r.name_raw();
                // The first, fake ROTATE comes before FORMAT_DESCRIPTION: the reader does not know
                // yet that events carry a CRC32, so the name keeps its 4 checksum bytes.
                let raw = if !self.seen_format && raw.len() > 4 { &raw[..raw.len() - 4] } else { raw };
                self.file = String::from_utf8_lossy(raw).into_owned();
                self.pos = r.position();
            }
            Ok(Some(EventData::FormatDescriptionEvent(_))) => self.seen_format = true,
            _ => {
                if log_pos > 0 {
                    self.pos = log_pos;
                }
            }
        }
    }

    /// File and offset just after the last event read.
    pub fn stream_position(&self) -> FilePos {
        FilePos { file: self.file.clone(), pos: self.pos }
    }

    /// The table map of a rows event's `table_id`.
    pub fn table_map(&self, table_id: u64) -> Option<&TableMapEvent<'static>> {
        self.stream.get_tme(table_id)
    }

    pub async fn close(self) {
        let _ = self.stream.close().await;
    }
}
