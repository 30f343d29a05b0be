//! The lock-free consistent snapshot of existing rows.
//!
//! `START TRANSACTION WITH CONSISTENT SNAPSHOT` on an InnoDB server gives a read view, and
//! MariaDB's `binlog_snapshot_file` / `binlog_snapshot_position` status (read inside that
//! transaction) name the exact binlog point that view matches; `BINLOG_GTID_POS()` turns it into
//! a GTID position. Every captured table is read inside the view in primary-key chunks
//! (`WHERE (pk) > (last) ORDER BY pk LIMIT n`) and published as `cdc.op=r` records, while writes
//! go on; then streaming starts at exactly that point, so nothing is missed or doubled between
//! the two. No table or global lock is taken.
//!
//! Chunks are committed to Kafka as they go, without an offset record; the position is stored
//! only after the last table. A snapshot interrupted by a crash therefore starts over: rows of
//! the first attempt may appear twice as `r` records (upserts in the sink make that harmless).

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use cdc_common::CancellationToken;
use cdc_schema::{row_from_snapshot, TableSchema};
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Row};

use crate::config::SourceConfig;
use crate::error::SourceError;
use crate::metrics::{SourceMetrics, TableLabel};
use crate::offsets::StoredOffset;
use crate::position::{FilePos, GtidPosition};
use crate::publisher::Publisher;
use crate::records::{Op, Origin, RecordWriter};
use crate::status::{SnapshotProgress, Status};
use crate::tables::CapturedTable;

/// Quotes an identifier for MariaDB.
pub fn quote(ident: &str) -> String {
    format!("`{}`", ident.replace('`', "``"))
}

/// The captured base tables, by listing `information_schema` for the databases the filter names.
pub async fn captured_tables(conn: &mut Conn, cfg: &SourceConfig) -> Result<Vec<(String, String)>, SourceError> {
    let mut out = Vec::new();
    for db in &cfg.tables.databases {
        let names: Vec<String> = conn
            .exec(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = ? AND table_type = 'BASE TABLE' ORDER BY table_name",
                (db,),
            )
            .await
            .map_err(SourceError::mysql("list the tables to capture"))?;
        out.extend(names.into_iter().filter(|t| cfg.tables.matches(db, t)).map(|t| (db.clone(), t)));
    }
    Ok(out)
}

/// Runs the snapshot; returns the position streaming must start from and the tables' schemas.
pub async fn run(
    cfg: &SourceConfig,
    publisher: &mut Publisher,
    writer: &mut RecordWriter,
    metrics: &SourceMetrics,
    status: &Status,
    shutdown: &CancellationToken,
) -> Result<(StoredOffset, Vec<Arc<CapturedTable>>), SourceError> {
    status.update(|s| s.state = "snapshot");
    let mut conn = Conn::new(cfg.mysql_opts()).await.map_err(SourceError::mysql("connect for the snapshot"))?;
    let q = SourceError::mysql("start the consistent snapshot");
    // UTC: a TIMESTAMP key read as text and bound back as the next chunk's bound must mean the
    // same instant, which a zone with daylight saving time cannot promise in its repeated hour.
    conn.query_drop("SET SESSION time_zone = '+00:00'").await.map_err(&q)?;
    conn.query_drop("SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ").await.map_err(&q)?;
    conn.query_drop("START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY").await.map_err(&q)?;
    let st: Vec<(String, String)> = conn.query("SHOW STATUS LIKE 'binlog_snapshot_%'").await.map_err(&q)?;
    let get = |n: &str| st.iter().find(|(k, _)| k.eq_ignore_ascii_case(n)).map(|(_, v)| v.clone());
    let file = get("binlog_snapshot_file").filter(|f| !f.is_empty()).ok_or_else(|| {
        SourceError::Definite("the server reports no binlog_snapshot_file: enable the binlog (log_bin)".into())
    })?;
    let pos: u64 = get("binlog_snapshot_position").and_then(|p| p.parse().ok()).unwrap_or(4);
    let gtid: Option<String> = conn
        .exec_first("SELECT BINLOG_GTID_POS(?, ?)", (&file, pos))
        .await
        .map_err(&q)?
        .flatten();
    let gtid: GtidPosition = gtid.unwrap_or_default().parse().map_err(SourceError::Definite)?;
    let binlog = FilePos { file, pos };
    tracing::info!(%gtid, %binlog, "consistent snapshot started");

    let tables = captured_tables(&mut conn, cfg).await?;
    let mut schemas = Vec::new();
    for (db, name) in &tables {
        let schema = TableSchema::load(&mut conn, db, name)
            .await
            .map_err(|e| SourceError::Definite(format!("cannot read the schema of {db}.{name}: {e}")))?;
        schemas.push(Arc::new(CapturedTable::new(cfg, schema, None)?));
    }
    let origin = Origin {
        gtid: gtid.to_string(),
        binlog: binlog.to_string(),
        ts_ms: SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0),
    };
    for table in &schemas {
        copy_table(cfg, &mut conn, table, publisher, writer, metrics, status, &origin, shutdown).await?;
    }
    conn.query_drop("COMMIT").await.map_err(SourceError::mysql("end the snapshot"))?;
    let offset = StoredOffset { gtid, binlog, ts_ms: origin.ts_ms };
    publisher.commit(Some(&offset)).await?;
    tracing::info!(tables = schemas.len(), "snapshot complete");
    Ok((offset, schemas))
}

#[allow(clippy::too_many_arguments)]
async fn copy_table(
    cfg: &SourceConfig,
    conn: &mut Conn,
    table: &CapturedTable,
    publisher: &mut Publisher,
    writer: &mut RecordWriter,
    metrics: &SourceMetrics,
    status: &Status,
    origin: &Origin,
    shutdown: &CancellationToken,
) -> Result<(), SourceError> {
    let s = &table.schema;
    let full = format!("{}.{}", quote(&s.database), quote(&s.table));
    let label = TableLabel { table: s.table.clone() };
    let estimate: u64 = conn
        .exec_first(
            "SELECT COALESCE(table_rows, 0) FROM information_schema.tables WHERE table_schema = ? AND table_name = ?",
            (&s.database, &s.table),
        )
        .await
        .map_err(SourceError::mysql("estimate the table size"))?
        .unwrap_or(0);
    metrics.snapshot_estimate.get_or_create(&label).set(estimate as i64);
    // Chunks are ordered and bounded by the key columns themselves, qualified so that no alias
    // of the select list (`UNIX_TIMESTAMP(ts) AS ts`, `CAST(b AS BINARY(16)) AS b`) takes their
    // place, and the next chunk's bound is the key as stored, read from extra columns after the
    // row's own: with the alias, a TIMESTAMP key compared its epoch value with the column and
    // every chunk started over at the first row.
    let key_cols: Vec<String> = s.primary_key.iter().map(|c| format!("cdc_snapshot.{}", quote(c))).collect();
    let key_list = key_cols.join(", ");
    let placeholders = vec!["?"; key_cols.len()].join(", ");
    let bound_cols: Vec<String> = key_cols.iter().enumerate().map(|(i, c)| format!("{c} AS `cdc_snapshot_key_{i}`")).collect();
    let select = format!("{}, {}", s.select_list(), bound_cols.join(", "));
    let first = format!(
        "SELECT {select} FROM {full} AS cdc_snapshot ORDER BY {key_list} LIMIT {}",
        cfg.snapshot_chunk_size
    );
    let next = format!(
        "SELECT {select} FROM {full} AS cdc_snapshot WHERE ({key_list}) > ({placeholders}) ORDER BY {key_list} LIMIT {}",
        cfg.snapshot_chunk_size
    );
    let bound_from = s.columns.len();
    let mut last: Option<Vec<mysql_async::Value>> = None;
    let mut done: u64 = 0;
    loop {
        if shutdown.is_cancelled() {
            return Err(SourceError::Transient("stopped during the snapshot; it starts over on the next start".into()));
        }
        let rows: Vec<Row> = match &last {
            None => conn.query(&first).await,
            Some(key) => conn.exec(&next, key.clone()).await,
        }
        .map_err(SourceError::mysql("read a snapshot chunk"))?;
        let n = rows.len();
        for row in &rows {
            let values = row_from_snapshot(s, row)
                .map_err(|e| SourceError::Definite(format!("cannot decode a snapshot row of {full}: {e}")))?;
            writer.publish(publisher, table, Op::Read, None, values, origin).await?;
        }
        if let Some(row) = rows.last() {
            last = Some(
                (0..key_cols.len())
                    .map(|i| row.as_ref(bound_from + i).cloned().unwrap_or(mysql_async::Value::NULL))
                    .collect(),
            );
        }
        if publisher.is_open() {
            publisher.commit(None).await?;
        }
        done += n as u64;
        metrics.snapshot_rows.get_or_create(&label).inc_by(n as u64);
        let total = estimate.max(done);
        tracing::info!(table = %full, rows_done = done, rows_estimated = total, "snapshot chunk copied");
        status.update(|st| {
            st.snapshot.retain(|p| p.table != s.table);
            st.snapshot.push(SnapshotProgress { table: s.table.clone(), rows_done: done, rows_estimated: total, done: n < cfg.snapshot_chunk_size as usize });
        });
        if n < cfg.snapshot_chunk_size as usize {
            return Ok(());
        }
    }
}
