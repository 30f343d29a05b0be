//! XA transactions in the stream: a group prepared by `XA PREPARE` publishes nothing at its
//! prepare (see `stream.rs`); at its `XA COMMIT` it is read again from the binlog and its rows are
//! published in the commit's Kafka transaction.
//!
//! # Where the prepared group is found
//! - Prepared while this process streamed: its start (file:pos) was kept by XID at the prepare.
//! - Prepared before the position this process resumed from (a restart between prepare and
//!   commit, or a prepare older than the first snapshot): the binlog files are searched for the
//!   last group that prepared the XID before the commit, the file being read first and then the
//!   ones before it by number, while the server still has them. This costs a scan of those files
//!   once per such commit; `XA COMMIT`s of transactions from other databases pay it as well (their
//!   rows are then filtered out as usual).
//! - Not found (its binlog was purged): the source stops with a definite error naming the XID and
//!   the fix, never skipping the rows silently.
//!
//! The group is re-read on a second replica connection with server id `server.id` with the top
//! bit flipped ([`replay_server_id`]): MariaDB ends an older dump of the same server id. An entry
//! is forgotten only once a Kafka commit covers its outcome, so a reconnect in between finds it.

use crate::binlog::mariadb::{self, Xid};
use crate::binlog::reader::{replay_server_id, BinlogReader};
use crate::error::SourceError;
use crate::outbox::Outbox;
use crate::position::{FilePos, Gtid};

use super::{is_rows_event, Streamer};

/// A group that ended with `XA PREPARE`; its records were aborted.
#[derive(Debug, Clone)]
pub(super) struct Prepared {
    pub(super) gtid: Gtid,
    pub(super) at: FilePos,
    /// Records of captured tables the group had when it was read (0: nothing to publish).
    pub(super) rows: usize,
}

impl Streamer<'_> {
    /// The standalone `XA COMMIT` (`commit`) or `XA ROLLBACK` of the group prepared as `xid`.
    pub(super) async fn xa_outcome(&mut self, outbox: &mut Outbox, reader: &BinlogReader, xid: Option<Xid>, commit: bool) -> Result<(), SourceError> {
        let prepared = xid.as_ref().and_then(|x| self.prepared.get(x)).cloned();
        let gtid = self.in_tx.as_ref().map(|g| g.gtid.to_string()).unwrap_or_default();
        let shown = xid.as_ref().map_or_else(|| "(unknown)".to_string(), |x| x.to_string());
        if let Some(x) = &xid {
            // Forgotten only once a Kafka commit covers the outcome: a reconnect before
            // that reads the outcome again.
            self.resolved.push(x.clone());
        }
        if commit {
            match prepared {
                Some(p) if p.rows == 0 => {}
                Some(p) => {
                    let n = self.replay_prepared(outbox, &p).await?;
                    tracing::info!(xid = %shown, gtid, prepared = %p.gtid, at = %p.at, records = n, "XA COMMIT: the prepared rows are published now");
                }
                None => {
                    // Prepared before this process resumed: look for the group in the binlog.
                    let found = match &xid {
                        Some(x) => self.find_prepared(reader, x).await?,
                        None => None,
                    };
                    let Some(p) = found else {
                        return Err(SourceError::Definite(format!(
                            "XA transaction {shown} was committed (XA COMMIT, GTID {gtid} at {}) but the binlog files still on the server do not hold its XA PREPARE, so whether it changed captured tables is unknown; cdc-source stops rather than lose its rows. Fix: use plain transactions or XA COMMIT ... ONE PHASE for captured tables; to go on, snapshot the affected tables again (reset this source's offsets)",
                            reader.stream_position()
                        )));
                    };
                    let n = self.replay_prepared(outbox, &p).await?;
                    tracing::info!(xid = %shown, gtid, prepared = %p.gtid, at = %p.at, records = n, "XA COMMIT of a transaction prepared before this source resumed: its rows are published now");
                }
            }
        } else {
            tracing::info!(xid = %shown, gtid, "XA ROLLBACK: the prepared transaction is not published");
        }
        self.end_tx(outbox, reader)
    }

    /// Finds the last group that prepared `xid` before the current event, scanning the binlog
    /// file being read and then the ones before it (by number) while the server still has them.
    async fn find_prepared(&mut self, reader: &BinlogReader, xid: &Xid) -> Result<Option<Prepared>, SourceError> {
        let end = reader.stream_position();
        let mut file = end.file.clone();
        tracing::info!(xid = %xid, before = %end, "XA COMMIT of a transaction prepared before this source resumed: searching the binlog for its XA PREPARE");
        loop {
            let at = FilePos { file: file.clone(), pos: 4 };
            let mut scan = match BinlogReader::connect_at(
                self.cfg.mysql_opts(),
                replay_server_id(self.cfg.server_id),
                &at,
                self.cfg.heartbeat,
                self.cfg.replica_timeouts(),
            )
            .await
            {
                Ok(scan) => scan,
                // Purged or never there: the search ends.
                Err(e) if !e.is_transient() => return Ok(None),
                Err(e) => return Err(e),
            };
            let mut found = None;
            loop {
                let Some(event) = scan.next().await? else { break };
                let header = event.header();
                let here = scan.stream_position();
                if here.file != file || (file == end.file && here.pos >= end.pos) {
                    break;
                }
                if header.event_type_raw() == mariadb::GTID {
                    if let Some(g) = mariadb::parse_gtid(event.data(), header.server_id()) {
                        if g.prepared_xa() && g.xid.as_ref() == Some(xid) {
                            let start = u64::from(header.log_pos()).saturating_sub(u64::from(header.event_size()));
                            found = Some(Prepared { gtid: g.gtid, at: FilePos { file: file.clone(), pos: start }, rows: 0 });
                        }
                    }
                }
            }
            scan.close().await;
            if found.is_some() {
                return Ok(found);
            }
            match previous_file(&file) {
                Some(prev) => file = prev,
                None => return Ok(None),
            }
        }
    }

    /// Re-reads the group prepared at `p.at` up to its XA_PREPARE event on a second replica
    /// connection and publishes its rows in the open Kafka transaction (that of the XA COMMIT).
    async fn replay_prepared(&mut self, outbox: &mut Outbox, p: &Prepared) -> Result<usize, SourceError> {
        let mut replay = BinlogReader::connect_at(
            self.cfg.mysql_opts(),
            replay_server_id(self.cfg.server_id),
            &p.at,
            self.cfg.heartbeat,
            self.cfg.replica_timeouts(),
        )
        .await?;
        let before = self.rows_in_batch;
        let mut in_group = false;
        let result = loop {
            let event = match replay.next().await {
                Ok(Some(event)) => event,
                Ok(None) => break Err(SourceError::Transient(format!("the server ended the binlog stream while re-reading the XA group prepared at {}", p.at))),
                Err(e) => break Err(e),
            };
            let kind = event.header().event_type_raw();
            match kind {
                mariadb::GTID if !in_group => match mariadb::parse_gtid(event.data(), event.header().server_id()) {
                    Some(g) if g.gtid == p.gtid => in_group = true,
                    other => {
                        break Err(SourceError::Definite(format!(
                            "the binlog at {} holds {:?}, not the XA group {} prepared there; cannot publish it",
                            p.at,
                            other.map(|g| g.gtid.to_string()),
                            p.gtid
                        )))
                    }
                },
                mariadb::XA_PREPARE if in_group => break Ok(()),
                mariadb::GTID => break Err(SourceError::Definite(format!("the XA group {} prepared at {} has no XA_PREPARE event", p.gtid, p.at))),
                k if in_group && is_rows_event(k) => {
                    if let Err(e) = self.rows(outbox, &replay, &event).await {
                        break Err(e);
                    }
                }
                _ => {}
            }
        };
        replay.close().await;
        result.map(|()| self.rows_in_batch - before)
    }
}

/// The binlog file numbered one lower (`mysql-bin.000012` → `mysql-bin.000011`).
fn previous_file(file: &str) -> Option<String> {
    let (base, num) = file.rsplit_once('.')?;
    let n: u64 = num.parse().ok()?;
    let prev = n.checked_sub(1).filter(|p| *p > 0)?;
    Some(format!("{base}.{prev:0width$}", width = num.len()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn previous_binlog_file() {
        assert_eq!(super::previous_file("mysql-bin.000012").as_deref(), Some("mysql-bin.000011"));
        assert_eq!(super::previous_file("mysql-bin.000001"), None);
        assert_eq!(super::previous_file("nonumber"), None);
    }
}
