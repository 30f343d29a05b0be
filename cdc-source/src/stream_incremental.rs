//! The stream's side of incremental snapshots (see `incremental/mod.rs`): signals read from the
//! signal table or posted, chunk replies, and publishing a chunk once the stream has reached its
//! position.

use std::time::{SystemTime, UNIX_EPOCH};

use cdc_schema::{RowsDecoder, TableSchema, Value};
use mysql_async::binlog::events::{RowsEventData, TableMapEvent};

use super::Streamer;
use crate::error::SourceError;
use crate::incremental::reader::ChunkReply;
use crate::incremental::{signal, Incremental, PostedSignal, Signal};
use crate::metrics::{Outcome, SignalLabel, TableLabel, SIGNAL_TYPES};
use crate::outbox::Outbox;
use crate::position::FilePos;
use crate::records::{Op, ChangePosition};
use crate::status::IncrementalProgress;

impl Streamer<'_> {
    /// Acts on the rows inserted into the signal table by this rows event, if it is that table's.
    pub(super) fn signal_rows(&mut self, rows: &RowsEventData<'_>, tme: &TableMapEvent<'_>, at: &FilePos) {
        let Some((db, table)) = &self.cfg.signal_table else { return };
        if tme.database_name() != db.as_str() || tme.table_name() != table.as_str() {
            return;
        }
        let decoded = TableSchema::from_table_map(tme).map_err(|e| e.to_string()).and_then(|schema| {
            let decoder = RowsDecoder::new(&schema, tme).map_err(|e| e.to_string())?;
            let column = |name: &str, fallback: usize| schema.columns.iter().position(|c| c.name.eq_ignore_ascii_case(name)).unwrap_or(fallback);
            let (id, kind, data) = (column("id", 0), column("type", 1), column("data", 2));
            let mut out = Vec::new();
            for row in decoder.rows(rows, false).map_err(|e| e.to_string())? {
                let (_, after) = row.map_err(|e| e.to_string())?;
                let after = after.unwrap_or_default();
                let text = |i: usize| after.get(i).map(text_of).unwrap_or_default();
                out.push((text(id), text(kind), text(data)));
            }
            Ok(out)
        });
        match decoded {
            Ok(signals) => {
                for (id, kind, data) in signals {
                    let _ = self.take_signal(&id, &kind, &data, "signal table");
                }
            }
            Err(e) => {
                self.count_signal("other", "rejected");
                tracing::warn!(table = %format!("{db}.{table}"), binlog = %at, error = %e, "a row of the signal table cannot be read (columns id, type, data expected); ignored");
            }
        }
    }

    /// A signal posted to `POST /signals`: the answer goes back to the request.
    pub(super) fn posted_signal(&mut self, posted: PostedSignal) {
        if posted.reply.is_closed() {
            // Its request was answered 503 meanwhile: acting on it now would surprise.
            tracing::info!(signal = %posted.id, "a signal posted while the source was not streaming is dropped (its request was answered 503)");
            return;
        }
        let answer = self.take_signal(&posted.id, &posted.kind, &posted.data, "POST /signals");
        let _ = posted.reply.send(answer.map_err(|e| e.0));
    }

    /// Parses and acts on one signal; the answer says what was done, or why nothing was.
    fn take_signal(&mut self, id: &str, kind: &str, data: &str, channel: &'static str) -> Result<String, signal::Rejected> {
        let lower = kind.trim().to_ascii_lowercase();
        let label = SIGNAL_TYPES.iter().copied().find(|t| *t == lower).unwrap_or("other");
        let id = if id.is_empty() { "unnamed" } else { id };
        let answer = match signal::parse(self.cfg, kind, data) {
            Ok(Signal::Execute(requested)) => {
                let queued = self.inc.execute(id, requested);
                tracing::info!(signal = id, channel, tables = ?queued, "execute-snapshot: incremental snapshot queued");
                Ok(if queued.is_empty() {
                    "every table named is queued already".to_string()
                } else {
                    format!("incremental snapshot queued for {}", queued.join(", "))
                })
            }
            Ok(Signal::Stop(tables)) => {
                let dropped = self.inc.stop(tables.as_deref());
                self.metrics.incremental_ended.get_or_create(&Outcome { outcome: "stopped" }).inc_by(dropped.len() as u64);
                tracing::info!(signal = id, channel, tables = ?dropped, "stop-snapshot: incremental snapshots dropped");
                Ok(if dropped.is_empty() { "no incremental snapshot to stop".to_string() } else { format!("stopped: {}", dropped.join(", ")) })
            }
            Ok(Signal::Log(message)) => {
                tracing::info!(signal = id, channel, message, "log signal");
                Ok("logged".to_string())
            }
            Err(e) => {
                tracing::warn!(signal = id, channel, r#type = kind, reason = %e, "signal rejected; streaming goes on");
                Err(e)
            }
        };
        self.count_signal(label, if answer.is_ok() { "accepted" } else { "rejected" });
        self.show_incremental();
        self.inc.dispatch();
        answer
    }

    fn count_signal(&self, r#type: &'static str, outcome: &'static str) {
        self.metrics.signals.get_or_create(&SignalLabel { r#type, outcome }).inc();
    }

    /// A reply of the chunk reader.
    pub(super) async fn chunk_reply(&mut self, outbox: &mut Outbox, reply: ChunkReply) -> Result<(), SourceError> {
        if let Some((table, reason)) = self.inc.accept(reply) {
            tracing::error!(table, reason, "incremental snapshot dropped: it cannot be read; streaming goes on");
            self.metrics.incremental_ended.get_or_create(&Outcome { outcome: "rejected" }).inc();
            self.status.update(|s| s.last_error = Some(format!("incremental snapshot of {table} dropped: {reason}")));
            self.show_incremental();
            self.inc.dispatch();
        }
        self.publish_chunk(outbox).await
    }

    /// Publishes the chunk waiting in the window once the stream has read up to its position and
    /// is between two binlog transactions; then requests the next chunk.
    pub(super) async fn publish_chunk(&mut self, outbox: &mut Outbox) -> Result<(), SourceError> {
        if self.in_tx.is_some() {
            return Ok(());
        }
        let ready = self
            .inc
            .window
            .as_ref()
            .and_then(|w| w.chunk.as_ref())
            .is_some_and(|c| self.read_binlog.order() >= c.binlog.order() || c.gtid.as_ref().is_some_and(|g| self.read.includes(g)));
        if !ready {
            return Ok(());
        }
        let Some(mut window) = self.inc.window.take() else { return Ok(()) };
        let Some(mut chunk) = window.chunk.take() else { return Ok(()) };
        let name = format!("{}.{}", chunk.schema.database, chunk.schema.table);
        let table = match self.tables.for_snapshot(self.cfg, chunk.schema.clone()) {
            Ok(t) => t,
            Err(e) => {
                tracing::error!(table = %name, error = %e, "incremental snapshot dropped: its records cannot be built; streaming goes on");
                self.inc.stop(Some(&[(chunk.schema.database.clone(), chunk.schema.table.clone())]));
                self.metrics.incremental_ended.get_or_create(&Outcome { outcome: "rejected" }).inc();
                self.show_incremental();
                self.inc.dispatch();
                return Ok(());
            }
        };
        // As of the chunk's read view (`cdc.binlog`), published at the stream's position.
        let origin = ChangePosition {
            gtid: self.read.to_string(),
            binlog: chunk.binlog.to_string(),
            ts_ms: SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0),
        };
        let (mut published, mut superseded) = (0u64, 0u64);
        for row in std::mem::take(&mut chunk.rows) {
            let key = cdc_schema::key_values(&table.schema, &row);
            if Incremental::changed_after(&window, &chunk, &key) {
                superseded += 1;
                continue;
            }
            self.writer.publish(outbox, &table, Op::Read, None, row, &origin).await?;
            published += 1;
        }
        // Keys asked for that the table does not hold: a tombstone each (with delete.enabled).
        let mut removed = 0u64;
        for row in std::mem::take(&mut chunk.missing) {
            let key = cdc_schema::key_values(&table.schema, &row);
            if Incremental::changed_after(&window, &chunk, &key) || !self.writer.delete_enabled {
                continue;
            }
            self.writer.publish(outbox, &table, Op::Delete, None, row, &origin).await?;
            removed += 1;
        }
        if removed > 0 {
            tracing::info!(table = %name, tombstones = removed, "incremental snapshot: keys asked for that the table does not hold get tombstones");
        }
        published += removed;
        if published > 0 {
            self.rows_in_batch += published as usize;
            self.batch_since.get_or_insert_with(std::time::Instant::now);
        }
        if let Some((s, finished)) = self.inc.published(&chunk, published) {
            let label = TableLabel { table: s.table.clone() };
            self.metrics.snapshot_rows.get_or_create(&label).inc_by(published);
            self.metrics.snapshot_chunks.get_or_create(&label).inc();
            self.metrics.snapshot_estimate.get_or_create(&label).set(s.rows_estimated.max(s.rows) as i64);
            let chunks_total = if finished { s.chunks } else { chunks_estimated(&s, self.cfg.incremental_chunk_size) };
            self.metrics.snapshot_chunks_estimate.get_or_create(&label).set(chunks_total as i64);
            if finished {
                self.metrics.incremental_ended.get_or_create(&Outcome { outcome: "finished" }).inc();
                tracing::info!(table = %name, signal = s.id, rows = s.rows, chunks = s.chunks, "incremental snapshot finished");
            } else {
                tracing::debug!(table = %name, rows = s.rows, superseded, at = %chunk.binlog, "incremental snapshot chunk published");
            }
        }
        self.show_incremental();
        self.inc.dispatch();
        Ok(())
    }

    /// Puts the incremental snapshots into `/status` and the gauge.
    pub(super) fn show_incremental(&self) {
        let list: Vec<IncrementalProgress> = self
            .inc
            .state
            .snapshots
            .iter()
            .enumerate()
            .map(|(i, s)| IncrementalProgress {
                id: s.id.clone(),
                table: s.name(),
                filter: s.filter.clone(),
                rows_done: s.rows,
                rows_estimated: s.rows_estimated.max(s.rows),
                chunks_done: s.chunks,
                chunks_estimated: chunks_estimated(s, self.cfg.incremental_chunk_size),
                running: i == 0,
            })
            .collect();
        self.metrics.incremental_snapshots.set(list.len() as i64);
        self.status.update(|st| st.incremental_snapshots = list);
    }

    /// The captured tables this position has seen: those known at start and those streamed since.
    pub(super) fn seen_tables(&self) -> Vec<String> {
        let mut all = self.inc.known.clone();
        all.extend(self.tables.names().map(|(db, t)| format!("{db}.{t}")));
        all.into_iter().collect()
    }
}

/// A signal column's text.
fn text_of(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Bytes(b) => String::from_utf8_lossy(b).into_owned(),
        Value::Int(i) => i.to_string(),
        Value::Null => String::new(),
        other => format!("{other:?}"),
    }
}

/// The chunks an incremental snapshot is estimated to take: its rows estimate over the chunk
/// size, at least one more than done.
fn chunks_estimated(s: &crate::incremental::TableSnapshot, chunk_size: u32) -> u64 {
    s.rows_estimated.div_ceil(u64::from(chunk_size.max(1))).max(s.chunks + 1)
}
