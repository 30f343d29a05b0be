//! The replica connection: session set-up, the dump request from a GTID position, and a stream of
//! events with a read timeout, the current file:pos and the fake-rotate fix.

use std::time::Duration;

use futures::StreamExt;
use mysql_async::binlog::events::{Event, EventData, TableMapEvent};
use mysql_async::prelude::Queryable;
use mysql_async::{BinlogStream, BinlogStreamRequest, Conn};

use crate::error::SourceError;
use crate::position::{FilePos, GtidPosition};

/// The replica server id of a second, short-lived connection (re-reading a prepared XA group):
/// MariaDB ends an older dump of the same server id when a new one connects.
pub fn replay_server_id(server_id: u32) -> u32 {
    server_id ^ 0x8000_0000
}

/// A binlog stream positioned at a GTID position.
pub struct BinlogReader {
    stream: BinlogStream,
    file: String,
    pos: u64,
    seen_format: bool,
    read_timeout: Duration,
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
        read_timeout: Duration,
    ) -> Result<Self, SourceError> {
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
        let stream = conn
            .get_binlog_stream(request)
            .await
            .map_err(|e| SourceError::from_dump(e, server_id, from))?;
        Ok(BinlogReader { stream, file: String::new(), pos: 4, seen_format: false, read_timeout })
    }

    /// Connects as a replica with `server_id` and reads from `at` (file:pos, the start of an
    /// event) on: the server sends the file's FORMAT_DESCRIPTION first, then the events from `at`.
    pub async fn connect_at(
        opts: mysql_async::Opts,
        server_id: u32,
        at: &FilePos,
        heartbeat: Duration,
        read_timeout: Duration,
    ) -> Result<Self, SourceError> {
        let mut conn = Conn::new(opts).await.map_err(SourceError::mysql("connect to the source server"))?;
        for q in ["SET @mariadb_slave_capability=4".to_string(), format!("SET @master_heartbeat_period={}", heartbeat.as_nanos())] {
            conn.query_drop(&q).await.map_err(SourceError::mysql("set up the replica session"))?;
        }
        let request = BinlogStreamRequest::new(server_id).with_filename(at.file.as_bytes()).with_pos(at.pos);
        let stream = conn
            .get_binlog_stream(request)
            .await
            .map_err(|error| SourceError::BinlogFileUnreadable { at: at.clone(), server_id, error })?;
        Ok(BinlogReader { stream, file: at.file.clone(), pos: at.pos, seen_format: false, read_timeout })
    }

    /// The next event, or an error if nothing (not even a heartbeat) arrived within the read
    /// timeout. `Ok(None)` means the server ended the stream.
    pub async fn next(&mut self) -> Result<Option<Event>, SourceError> {
        let next = tokio::time::timeout(self.read_timeout, self.stream.next())
            .await
            .map_err(|_| SourceError::ReadTimeout(self.read_timeout))?;
        let Some(event) = next else { return Ok(None) };
        let event = event.map_err(|e| SourceError::from_stream(e, self.stream_position()))?;
        self.track(&event);
        Ok(Some(event))
    }

    fn track(&mut self, event: &Event) {
        let header = event.header();
        let log_pos = u64::from(header.log_pos());
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
