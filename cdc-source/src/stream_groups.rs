//! How the stream acts where a binlog group opens and ends (see `binlog/boundary.rs` for how
//! that is decided): a group that may end uncommitted gets a Kafka transaction of its own, a
//! group ending without committing is aborted and skipped, table DDL is acted on, and a group
//! that ended moves the read position.

use std::time::Instant;

use super::Streamer;
use crate::binlog::boundary::{Discard, Step};
use crate::binlog::ddl::Ddl;
use crate::binlog::mariadb;
use crate::binlog::reader::BinlogReader;
use crate::error::SourceError;
use crate::metrics::Reason;
use crate::outbox::Outbox;
use crate::position::FilePos;
use crate::records::ChangePosition;
use super::xa::Prepared;

impl Streamer<'_> {
    /// A group opened: isolate it in a Kafka transaction of its own if it may end uncommitted.
    pub(super) fn open_group(&mut self, outbox: &mut Outbox, g: mariadb::GtidEvent, start: FilePos, step: Step) -> Result<(), SourceError> {
        let isolate = matches!(step, Step::Open { isolate: true }) || self.isolate.remove(&g.gtid);
        self.in_tx = None;
        if isolate && self.batch_since.is_some() {
            self.commit(outbox)?;
        }
        self.in_tx = Some(g);
        self.group_start = start;
        self.rows_before_group = self.rows_in_batch;
        Ok(())
    }

    pub(super) async fn step(&mut self, outbox: &mut Outbox, reader: &BinlogReader, step: Step) -> Result<(), SourceError> {
        match step {
            Step::Continue | Step::Open { .. } => Ok(()),
            Step::Commit { ddl } => {
                if let Some(ddl) = ddl {
                    self.ddl(outbox, reader, ddl).await?;
                }
                self.end_tx(outbox, reader)
            }
            Step::Discard(why) => self.discard(outbox, reader, why),
            Step::XaOutcome { xid, commit } => self.xa_outcome(outbox, reader, xid, commit).await,
        }
    }

    /// The open group ended without committing: abort its records and move past it.
    pub(super) fn discard(&mut self, outbox: &mut Outbox, reader: &BinlogReader, why: Discard) -> Result<(), SourceError> {
        let gtid = self.in_tx.as_ref().map(|g| g.gtid);
        let shown = gtid.map(|g| g.to_string()).unwrap_or_default();
        if self.rows_before_group > 0 {
            if let Some(g) = gtid {
                self.isolate.insert(g);
            }
            return Err(SourceError::Transient(format!(
                "binlog group {shown} ended without committing ({}) while its Kafka transaction also holds committed groups; aborting it and reading again from the last committed position",
                why.label()
            )));
        }
        outbox.abort()?;
        self.batch_since = None;
        let dropped = std::mem::take(&mut self.rows_in_batch);
        self.metrics.discarded_groups.get_or_create(&Reason { reason: why.label() }).inc();
        match why {
            Discard::Rollback => tracing::warn!(
                gtid = %shown,
                records = dropped,
                "binlog transaction ended with ROLLBACK: none of its rows are published (MariaDB writes such a group when a rolled-back transaction also changed a non-transactional table; those changes are not in Kafka)"
            ),
            Discard::XaPrepared(xid) => {
                let shown_xid = xid.as_ref().map_or_else(|| "(unknown)".to_string(), |x| x.to_string());
                tracing::info!(xid = %shown_xid, gtid = %shown, records = dropped, "XA PREPARE: the prepared rows are not published before the XA COMMIT");
                if let (Some(xid), Some(gtid)) = (xid, gtid) {
                    self.prepared.insert(xid, Prepared { gtid, at: self.group_start.clone(), rows: dropped });
                }
            }
        }
        self.end_tx(outbox, reader)
    }

    /// Acts on table DDL of the group that is ending.
    pub(super) async fn ddl(&mut self, outbox: &mut Outbox, reader: &BinlogReader, ddl: Ddl) -> Result<(), SourceError> {
        match ddl {
            Ddl::Truncate(t) => {
                if self.cfg.tables.matches(&t.db, &t.table) && !self.tables.is_failed(&t.db, &t.table) {
                    let origin = ChangePosition {
                        gtid: self.in_tx.as_ref().map(|g| g.gtid.to_string()).unwrap_or_default(),
                        binlog: reader.stream_position().to_string(),
                        ts_ms: self.read_ts_ms,
                    };
                    let topic = self.cfg.topic(&t.table);
                    let n = self.writer.truncate(outbox, &topic, &t.table, &origin).await?;
                    if n > 0 {
                        self.batch_since.get_or_insert_with(Instant::now);
                    }
                    tracing::info!(table = %t, topic, partitions = n, "TRUNCATE TABLE: truncate record published on every partition");
                    self.metrics.table_ddl.get_or_create(&crate::metrics::TableDdl { table: t.table.clone(), ddl: "truncate" }).inc();
                    self.rows_in_batch += n;
                }
            }
            Ddl::Rename(pairs) => {
                for (from, to) in pairs {
                    self.tables.renamed(self.cfg, &self.metrics, &from, &to);
                }
            }
            Ddl::Drop(names) => {
                for name in names {
                    self.tables.dropped(self.cfg, &self.metrics, &name);
                }
            }
        }
        Ok(())
    }

    pub(super) fn end_tx(&mut self, outbox: &mut Outbox, reader: &BinlogReader) -> Result<(), SourceError> {
        if let Some(g) = self.in_tx.take() {
            self.read.advance(g.gtid);
        }
        self.read_binlog = reader.stream_position();
        self.metrics.binlog_transactions.inc();
        self.maybe_commit(outbox)
    }
}
