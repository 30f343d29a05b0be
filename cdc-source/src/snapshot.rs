//! The lock-free consistent snapshot of existing rows, and how an interrupted one resumes.
//!
//! `START TRANSACTION WITH CONSISTENT SNAPSHOT` on an InnoDB server gives a read view, and
//! MariaDB's `binlog_snapshot_file` / `binlog_snapshot_position` status (read inside that
//! transaction) name the exact binlog point that view matches; `BINLOG_GTID_POS()` turns it into
//! a GTID position. Every captured table is read inside the view in primary-key chunks
//! (`WHERE (pk) > (last) ORDER BY pk LIMIT n`) and published as `cdc.op=r` records, while writes
//! go on; then streaming starts at exactly that point, so nothing is missed or doubled between
//! the two. No table or global lock is taken. The chunk condition is spelled as a disjunction of
//! key prefixes (see `after_key`), which MariaDB reads as primary-key ranges for composite keys
//! too, and a chunk's rows are published as the server streams them: no chunk is held in the
//! source's memory (what a Kafka transaction of `snapshot.chunk.size` records holds is bounded by
//! the producer's queue).
//!
//! ## Progress and resume
//! Each chunk is one Kafka transaction holding the chunk's records and an offset record whose
//! `snapshot` field ([`SnapshotState`]) names the first attempt's point P1 (GTID and file:pos),
//! the tables done and the last key copied of the current table. A chunk is therefore committed
//! exactly once: after a crash, a restart finds that state and resumes after the last committed
//! chunk, in a new read view at P2 — tables done are skipped, the current one continues after its
//! last key — and then streams from **P1**, not P2. Rows copied before the interruption are as at
//! P1; streaming the changes between P1 and P2 brings them up to date (a delete becomes a
//! tombstone with `delete.enabled`, an update is applied again). Rows copied after the resume are
//! as at P2 already; replaying P1..P2 over them is upserts of older versions and then the newer
//! ones, so the mirror converges once the stream passes P2. Starting over at P2 instead would
//! lose the deletes of rows copied before P2: phantom rows in the mirror forever.
//!
//! ## Bounded waits
//! Every statement of the snapshot connection and every row read must answer within
//! `read.timeout.ms` (its connection within `connect.timeout.ms`), so a half-open connection — the
//! path stopped forwarding without closing — ends as a transient error like a closed one; while
//! nothing arrives, `/ready` says 503 and `/status` names the wait (`status.rs`). A transient
//! error aborts the open chunk, and after a backoff the snapshot resumes in this process exactly
//! as a restart would: from the state the offsets topic holds (the last committed chunk).
//!
//! Resuming needs the binlogs from P1 on; if they were purged the source stops with a definite
//! error, and the fix is to reset the offsets (a new snapshot). When every table is copied, a
//! last transaction stores P1 without snapshot state and streaming starts from there.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cdc_common::{Backoff, CancellationToken};
use cdc_schema::{quote_ident, row_from_snapshot, TableSchema};
use mysql_async::prelude::{Protocol, Queryable};
use mysql_async::{Conn, QueryResult, Row};
use rdkafka::message::OwnedHeaders;

use crate::config::SourceConfig;
use crate::error::SourceError;
use crate::metrics::{Class, SourceMetrics, TableLabel};
use crate::offsets::{KeyValue, OffsetRecord, SnapshotState, StoredOffset, TableProgress};
use crate::position::{FilePos, GtidPosition};
use crate::publisher::Publisher;
use crate::records::{Op, ChangePosition, RecordEncoder};
use crate::status::{SnapshotProgress, Status};
use crate::tables::CapturedTable;


/// The captured base tables, by listing `information_schema` for the databases the filter names.
pub async fn captured_tables(conn: &mut Conn, cfg: &SourceConfig) -> Result<Vec<(String, String)>, SourceError> {
    let mut out = Vec::new();
    for db in &cfg.tables.databases {
        let names: Vec<String> = bounded(
            cfg.read_timeout,
            "list the tables to capture",
            conn.exec(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = ? AND table_type = 'BASE TABLE' ORDER BY table_name",
                (db,),
            ),
        )
        .await?;
        out.extend(names.into_iter().filter(|t| cfg.tables.matches(db, t)).map(|t| (db.clone(), t)));
    }
    Ok(out)
}

/// What a snapshot works with: the source's settings, its publisher and record encoder, where
/// it reports, and the token that stops it.
#[derive(Debug)]
pub struct Snapshot<'a> {
    pub cfg: &'a SourceConfig,
    pub publisher: &'a mut Publisher,
    pub writer: &'a mut RecordEncoder,
    pub metrics: &'a SourceMetrics,
    pub status: &'a Status,
    pub shutdown: &'a CancellationToken,
}

/// Runs the snapshot; returns the position streaming must start from and the tables' schemas.
/// Transient errors are retried here after a backoff, resuming after the last committed chunk.
pub async fn run(s: &mut Snapshot<'_>, resume: Option<SnapshotState>) -> Result<(StoredOffset, Vec<Arc<CapturedTable>>), SourceError> {
    let (cfg, metrics, status, shutdown) = (s.cfg, s.metrics, s.status, s.shutdown);
    let mut backoff = Backoff::new(Duration::from_millis(200), cfg.retry_backoff_max);
    let mut resume = Some(resume);
    loop {
        let attempt = async {
            // After an interruption, what is committed is what the offsets topic says (a failed
            // commit may or may not have landed).
            let resume = match resume.take() {
                Some(given) => given,
                None => crate::offsets::load_last(&cfg.kafka, &cfg.offsets_topic, &cfg.name).await?.and_then(|r| r.snapshot),
            };
            attempt(s, resume, &mut backoff).await
        };
        match attempt.await {
            Ok(done) => return Ok(done),
            Err(e) if shutdown.is_cancelled() || !e.is_transient() => return Err(e),
            Err(e) => {
                s.publisher.abort().await?;
                metrics.errors.get_or_create(&Class { class: e.class() }).inc();
                metrics.reconnects.inc();
                let text = e.to_string();
                status.update(|s| {
                    s.state = "reconnecting";
                    s.last_error = Some(text);
                    s.waiting_on = None;
                });
                tracing::warn!(error = %e, "snapshot interrupted; resuming after its last committed chunk");
                if !backoff.wait(shutdown).await {
                    return Err(SourceError::SnapshotStopped);
                }
            }
        }
    }
}

/// The error of a snapshot statement or row read that got no answer within `read.timeout.ms`.
fn no_answer(what: &str, limit: Duration) -> SourceError {
    SourceError::Transient(format!(
        "snapshot: no answer to `{what}` for {limit:?} (read.timeout.ms): the source server or the network path to it stopped answering; resuming after the last committed chunk"
    ))
}

/// `fut`, a statement on the snapshot connection, within `limit`.
async fn bounded<T>(
    limit: Duration,
    what: &'static str,
    fut: impl Future<Output = Result<T, mysql_async::Error>>,
) -> Result<T, SourceError> {
    match tokio::time::timeout(limit, fut).await {
        Ok(r) => r.map_err(SourceError::mysql(what)),
        Err(_) => Err(no_answer(what, limit)),
    }
}

/// One attempt: a new read view, the tables not done in `resume` (all when `None`).
async fn attempt(
    s: &mut Snapshot<'_>,
    resume: Option<SnapshotState>,
    backoff: &mut Backoff,
) -> Result<(StoredOffset, Vec<Arc<CapturedTable>>), SourceError> {
    let (cfg, status) = (s.cfg, s.status);
    status.snapshot_started(cfg.read_timeout);
    let mut conn = tokio::time::timeout(cfg.connect_timeout, Conn::new(cfg.mysql_opts()))
        .await
        .map_err(|_| SourceError::ConnectTimeout(cfg.connect_timeout))?
        .map_err(SourceError::mysql("connect for the snapshot"))?;
    let (limit, q) = (cfg.read_timeout, "start the consistent snapshot");
    // UTC: a TIMESTAMP key read as text and bound back as the next chunk's bound must mean the
    // same instant, which a zone with daylight saving time cannot promise in its repeated hour.
    bounded(limit, q, conn.query_drop("SET SESSION time_zone = '+00:00'")).await?;
    bounded(limit, q, conn.query_drop("SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ")).await?;
    bounded(limit, q, conn.query_drop("START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY")).await?;
    let st: Vec<(String, String)> = bounded(limit, q, conn.query("SHOW STATUS LIKE 'binlog_snapshot_%'")).await?;
    let get = |n: &str| st.iter().find(|(k, _)| k.eq_ignore_ascii_case(n)).map(|(_, v)| v.clone());
    let file = get("binlog_snapshot_file").filter(|f| !f.is_empty()).ok_or_else(|| {
        SourceError::Definite("the server reports no binlog_snapshot_file: enable the binlog (log_bin)".into())
    })?;
    let pos: u64 = get("binlog_snapshot_position").and_then(|p| p.parse().ok()).unwrap_or(4);
    let gtid: Option<String> = bounded(limit, q, conn.exec_first("SELECT BINLOG_GTID_POS(?, ?)", (&file, pos))).await?.flatten();
    let gtid: GtidPosition = gtid.unwrap_or_default().parse().map_err(SourceError::Position)?;
    let binlog = FilePos { file, pos };
    tracing::info!(%gtid, %binlog, "consistent snapshot started");
    let mut state = match resume {
        Some(state) => {
            tracing::info!(
                started_gtid = %state.gtid,
                started_binlog = %state.binlog,
                tables_done = state.done.len(),
                current = ?state.current.as_ref().map(|c| format!("{}.{}", c.database, c.table)),
                rows_done = state.current.as_ref().map_or(0, |c| c.rows),
                "resuming the unfinished snapshot after its last committed chunk; streaming starts at its first read view"
            );
            state
        }
        None => SnapshotState { gtid: gtid.clone(), binlog: binlog.clone(), done: Vec::new(), current: None },
    };
    status.update(|st| {
        st.snapshot = state
            .done
            .iter()
            .map(|t| {
                let chunks = (t.rows / (cfg.snapshot_chunk_size as u64).max(1)) + 1;
                SnapshotProgress {
                    table: t.table.clone(),
                    rows_done: t.rows,
                    rows_estimated: t.rows,
                    chunks_done: chunks,
                    chunks_estimated: chunks,
                    done: true,
                }
            })
            .collect();
    });

    let tables = captured_tables(&mut conn, cfg).await?;
    let mut schemas = Vec::new();
    for (db, name) in &tables {
        let schema = tokio::time::timeout(limit, TableSchema::load(&mut conn, db, name))
            .await
            .map_err(|_| no_answer("read a table's schema", limit))?
            .map_err(|error| SourceError::Schema { context: format!("cannot read the schema of {db}.{name}"), error })?;
        schemas.push(Arc::new(CapturedTable::new(cfg, schema, None)?));
    }
    let origin = ChangePosition {
        gtid: gtid.to_string(),
        binlog: binlog.to_string(),
        ts_ms: SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0),
    };
    for table in &schemas {
        if state.done.iter().any(|t| t.is(&table.schema.database, &table.schema.table)) {
            continue;
        }
        copy_table(s, &mut conn, table, &origin, &mut state, backoff).await?;
    }
    bounded(limit, "end the snapshot", conn.query_drop("COMMIT")).await?;
    let offset = StoredOffset { gtid: state.gtid, binlog: state.binlog, ts_ms: origin.ts_ms };
    s.publisher.commit(&OffsetRecord { tables: Some(schemas.iter().map(|t| format!("{}.{}", t.schema.database, t.schema.table)).collect()), ..OffsetRecord::at(offset.clone()) }).await?;
    tracing::info!(tables = schemas.len(), "snapshot complete");
    Ok((offset, schemas))
}

async fn copy_table(
    snap: &mut Snapshot<'_>,
    conn: &mut Conn,
    table: &CapturedTable,
    origin: &ChangePosition,
    state: &mut SnapshotState,
    backoff: &mut Backoff,
) -> Result<(), SourceError> {
    let (cfg, metrics, status, shutdown) = (snap.cfg, snap.metrics, snap.status, snap.shutdown);
    let (publisher, writer) = (&mut *snap.publisher, &mut *snap.writer);
    let s = &table.schema;
    let full = format!("{}.{}", quote_ident(&s.database), quote_ident(&s.table));
    let label = TableLabel { table: s.table.clone() };
    let estimate: u64 = bounded(
        cfg.read_timeout,
        "estimate the table size",
        conn.exec_first(
            "SELECT COALESCE(table_rows, 0) FROM information_schema.tables WHERE table_schema = ? AND table_name = ?",
            (&s.database, &s.table),
        ),
    )
    .await?
    .unwrap_or(0);
    metrics.snapshot_estimate.get_or_create(&label).set(estimate as i64);
    let chunk_size = (cfg.snapshot_chunk_size as u64).max(1);
    let chunks_estimate = estimate.div_ceil(chunk_size).max(1);
    metrics.snapshot_chunks_estimate.get_or_create(&label).set(chunks_estimate as i64);
    // Chunks are ordered and bounded by the key columns themselves, qualified so that no alias
    // of the select list (`UNIX_TIMESTAMP(ts) AS ts`, `CAST(b AS BINARY(16)) AS b`) takes their
    // place, and the next chunk's bound is the key as stored, read from extra columns after the
    // row's own: with the alias, a TIMESTAMP key compared its epoch value with the column and
    // every chunk started over at the first row.
    let key_cols: Vec<String> = s.primary_key.iter().map(|c| format!("cdc_snapshot.{}", quote_ident(c))).collect();
    let key_list = key_cols.join(", ");
    let bound_cols: Vec<String> = key_cols.iter().enumerate().map(|(i, c)| format!("{c} AS `cdc_snapshot_key_{i}`")).collect();
    let select = format!("{}, {}", s.select_list(), bound_cols.join(", "));
    let first = format!(
        "SELECT {select} FROM {full} AS cdc_snapshot ORDER BY {key_list} LIMIT {}",
        cfg.snapshot_chunk_size
    );
    let next = format!(
        "SELECT {select} FROM {full} AS cdc_snapshot WHERE {} ORDER BY {key_list} LIMIT {}",
        after_key(&key_cols),
        cfg.snapshot_chunk_size
    );
    let bound_from = s.columns.len();
    // Continue after the last committed chunk of an interrupted attempt, if this is its table.
    let (mut last, mut done) = match state.current.as_ref().filter(|c| c.is(&s.database, &s.table)) {
        Some(c) => {
            let key = c
                .last_key
                .iter()
                .map(KeyValue::to_value)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| SourceError::Definite(format!("the stored snapshot progress of {full} has an unreadable key ({e}); reset the source's offsets to take a new snapshot")))?;
            if key.len() != key_cols.len() {
                return Err(SourceError::Definite(format!(
                    "the stored snapshot progress of {full} has {} key values but the primary key now has {} columns; reset the source's offsets to take a new snapshot",
                    key.len(),
                    key_cols.len()
                )));
            }
            tracing::info!(table = %full, rows_done = c.rows, "continuing the table after its last copied key");
            (Some(key), c.rows)
        }
        None => (None, 0),
    };
    // Every committed chunk but a table's last is full.
    let mut chunks_done = done / chunk_size;
    loop {
        if shutdown.is_cancelled() {
            return Err(SourceError::SnapshotStopped);
        }
        let (limit, what) = (cfg.read_timeout, "read a snapshot chunk");
        let copy = ChunkCopy { table, publisher: &mut *publisher, writer: &mut *writer, status, origin, full: &full, limit };
        let (n, last_row) = match &last {
            None => copy.chunk(bounded(limit, what, conn.query_iter(&first)).await?).await?,
            Some(key) => copy.chunk(bounded(limit, what, conn.exec_iter(&next, after_key_params(key))).await?).await?,
        };
        if let Some(row) = last_row {
            last = Some(
                (0..key_cols.len())
                    .map(|i| row.as_ref(bound_from + i).cloned().unwrap_or(mysql_async::Value::NULL))
                    .collect(),
            );
        }
        done += n as u64;
        let finished = n < cfg.snapshot_chunk_size as usize;
        let progress = TableProgress {
            database: s.database.clone(),
            table: s.table.clone(),
            rows: done,
            last_key: if finished { Vec::new() } else { last.iter().flatten().map(KeyValue::from).collect() },
        };
        if finished {
            state.current = None;
            state.done.push(progress);
        } else {
            state.current = Some(progress);
        }
        status.update(|st| st.waiting_on = Some("the Kafka commit of a snapshot chunk"));
        commit_chunk(cfg, publisher, state, origin.ts_ms).await?;
        status.update(|st| st.waiting_on = None);
        status.snapshot_read();
        backoff.reset();
        metrics.snapshot_rows.get_or_create(&label).inc_by(n as u64);
        metrics.snapshot_chunks.get_or_create(&label).inc();
        chunks_done += 1;
        // Known exactly once the table is done.
        let chunks_total = if finished { chunks_done } else { chunks_estimate.max(chunks_done + 1) };
        metrics.snapshot_chunks_estimate.get_or_create(&label).set(chunks_total as i64);
        let total = estimate.max(done);
        tracing::info!(table = %full, rows_done = done, rows_estimated = total, "snapshot chunk copied");
        status.update(|st| {
            st.snapshot.retain(|p| p.table != s.table);
            st.snapshot.push(SnapshotProgress {
                table: s.table.clone(),
                rows_done: done,
                rows_estimated: total,
                chunks_done,
                chunks_estimated: chunks_total,
                done: finished,
            });
        });
        if finished {
            return Ok(());
        }
    }
}

/// The condition "key after the bound" of a chunk query, over the key columns `cols`: for
/// `(a, b, c)`, `a > ? OR (a = ? AND b > ?) OR (a = ? AND b = ? AND c > ?)`, bound with
/// [`after_key_params`]. It means the row comparison `(a, b, c) > (?, ?, ?)`, but MariaDB turns
/// only this form into ranges of the primary key: the row comparison made each chunk of a
/// composite key scan the index from its start, so a table took time quadratic in its size.
pub(crate) fn after_key(cols: &[String]) -> String {
    (0..cols.len())
        .map(|i| {
            let eq = cols[..i].iter().map(|c| format!("{c} = ?"));
            let term = eq.chain(std::iter::once(format!("{} > ?", cols[i]))).collect::<Vec<_>>().join(" AND ");
            format!("({term})")
        })
        .collect::<Vec<_>>()
        .join(" OR ")
}

/// The parameters of [`after_key`] for the bound `key`.
pub(crate) fn after_key_params(key: &[mysql_async::Value]) -> Vec<mysql_async::Value> {
    (0..key.len()).flat_map(|i| key[..=i].iter().cloned()).collect()
}

/// What publishing the rows of one chunk needs.
struct ChunkCopy<'a> {
    table: &'a CapturedTable,
    publisher: &'a mut Publisher,
    writer: &'a mut RecordEncoder,
    status: &'a Status,
    origin: &'a ChangePosition,
    full: &'a str,
    limit: Duration,
}

impl ChunkCopy<'_> {
    /// Publishes the rows of a chunk's result as they arrive, each read within `limit` of the
    /// previous one: the server streams the chunk while it is encoded, and no chunk is held in
    /// memory. Returns the row count and the last row (its extra columns bound the next chunk).
    async fn chunk<P: Protocol>(self, mut result: QueryResult<'_, '_, P>) -> Result<(usize, Option<Row>), SourceError> {
        let (mut n, mut last) = (0, None);
        while let Some(row) = bounded(self.limit, "read a snapshot chunk", result.next()).await? {
            self.status.snapshot_read();
            let values = row_from_snapshot(&self.table.schema, &row).map_err(|e| SourceError::Decode {
                context: format!("cannot decode a snapshot row of {}", self.full),
                error: e.into(),
            })?;
            self.writer.publish(self.publisher, self.table, Op::Read, None, values, self.origin).await?;
            n += 1;
            last = Some(row);
        }
        Ok((n, last))
    }
}

/// Commits the open chunk together with an offset record carrying `state`, so the chunk and the
/// progress that covers it become visible together or not at all.
async fn commit_chunk(cfg: &SourceConfig, publisher: &mut Publisher, state: &SnapshotState, ts_ms: u64) -> Result<(), SourceError> {
    let record = OffsetRecord {
        snapshot: Some(state.clone()),
        ..OffsetRecord::at(StoredOffset { gtid: state.gtid.clone(), binlog: state.binlog.clone(), ts_ms })
    };
    let value = serde_json::to_vec(&record).map_err(SourceError::OffsetRecordEncode)?;
    let what = crate::publisher::RecordRef { table: format!("offsets topic {}", cfg.offsets_topic), key: cfg.name.clone() };
    publisher.send(&cfg.offsets_topic, cfg.name.as_bytes(), Some(&value), OwnedHeaders::new(), what).await?;
    publisher.commit_with_sent_offset().await
}

#[cfg(test)]
mod tests {
    use super::*;
    use mysql_async::Value;

    #[test]
    fn the_chunk_bound_is_a_disjunction_of_key_prefixes() {
        let cols: Vec<String> = ["a", "b", "c"].iter().map(|c| format!("x.`{c}`")).collect();
        assert_eq!(after_key(&cols[..1]), "(x.`a` > ?)");
        assert_eq!(
            after_key(&cols),
            "(x.`a` > ?) OR (x.`a` = ? AND x.`b` > ?) OR (x.`a` = ? AND x.`b` = ? AND x.`c` > ?)"
        );
        let key = [Value::Int(1), Value::from("k"), Value::UInt(3)];
        assert_eq!(
            after_key_params(&key),
            vec![Value::Int(1), Value::Int(1), Value::from("k"), Value::Int(1), Value::from("k"), Value::UInt(3)]
        );
    }
}
