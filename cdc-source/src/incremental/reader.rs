//! The chunk reader: a task with its own connection to the source server that reads one chunk of
//! an incremental snapshot per request, each in a read view of its own whose binlog position it
//! reports (`START TRANSACTION WITH CONSISTENT SNAPSHOT` and `binlog_snapshot_file` /
//! `binlog_snapshot_position`, as the initial snapshot's view).

use std::time::Duration;

use cdc_schema::{row_from_snapshot, TableSchema, Value};
use mysql_async::prelude::Queryable;
use mysql_async::Conn;
use tokio::sync::mpsc;

use crate::config::SourceConfig;
use crate::error::SourceError;
use crate::offsets::KeyValue;
use crate::position::{FilePos, GtidPosition};
use crate::snapshot::{after_key, after_key_params};
use cdc_schema::quote_ident;

/// The most a chunk holds in bytes (about): rows past it wait for the next chunk, so a table of
/// large rows is copied in chunks of fewer rows.
pub const CHUNK_MAX_BYTES: usize = 2 << 20;

/// One chunk to read: the rows after `last_key` (from the first when empty), at most `rows`.
#[derive(Debug, Clone)]
pub struct ChunkRequest {
    pub generation: u64,
    pub database: String,
    pub table: String,
    pub filter: Option<String>,
    pub last_key: Vec<KeyValue>,
    /// Only these keys (one chunk); see [`Chunk::missing`].
    pub keys: Vec<Vec<KeyValue>>,
    pub rows: usize,
}

/// The rows of one chunk as of the binlog point `at`.
#[derive(Debug)]
pub struct Chunk {
    pub generation: u64,
    pub schema: TableSchema,
    /// The read view's binlog point: every transaction before it is in the rows, none after it.
    pub binlog: FilePos,
    /// The GTID position at `binlog`, when nothing was written to the binlog between the read
    /// view and reading `@@gtid_binlog_pos` (then the two name the same point): lets an idle
    /// stream, whose file:pos moves only with a heartbeat, see at once that it is there.
    pub gtid: Option<GtidPosition>,
    pub rows: Vec<Vec<Value>>,
    /// For a request of keys: the keys the table does not hold at `at`, each as a row whose
    /// other columns are NULL (published as tombstones).
    pub missing: Vec<Vec<Value>>,
    /// The key of the chunk's last row (where the next chunk starts).
    pub last_key: Vec<KeyValue>,
    /// No row after this chunk: the table (or the filter's rows) is copied.
    pub finished: bool,
    /// For the first chunk of a whole table: its estimated rows (table statistics).
    pub estimate: Option<u64>,
}

/// The answer to a [`ChunkRequest`].
#[derive(Debug)]
pub enum ChunkReply {
    Chunk(Chunk),
    /// The request can never succeed (no such table, no primary key, a filter the server
    /// refuses): the snapshot of that table is dropped.
    Rejected { generation: u64, reason: String },
    /// The server or the path to it failed; the same request may succeed later.
    Failed { generation: u64, error: SourceError },
}

/// Starts the reader task; it ends when the request sender is dropped.
pub fn start(cfg: SourceConfig) -> (mpsc::Sender<ChunkRequest>, mpsc::Receiver<ChunkReply>) {
    let (req_tx, mut requests) = mpsc::channel::<ChunkRequest>(1);
    let (reply_tx, replies) = mpsc::channel(1);
    tokio::spawn(async move {
        let mut conn: Option<Conn> = None;
        while let Some(req) = requests.recv().await {
            let generation = req.generation;
            let reply = match read(&cfg, &mut conn, &req).await {
                Ok(chunk) => ChunkReply::Chunk(chunk),
                Err(Failure::Rejected(reason)) => {
                    let _ = rollback(&mut conn, cfg.read_timeout).await;
                    ChunkReply::Rejected { generation, reason }
                }
                Err(Failure::Transient(error)) => {
                    conn = None;
                    ChunkReply::Failed { generation, error }
                }
            };
            if reply_tx.send(reply).await.is_err() {
                break;
            }
        }
    });
    (req_tx, replies)
}

enum Failure {
    Rejected(String),
    Transient(SourceError),
}

impl From<SourceError> for Failure {
    fn from(e: SourceError) -> Self {
        Failure::Transient(e)
    }
}

/// `fut` within `limit`; a server error (the statement was refused) is a rejection of the
/// request, anything else is transient.
async fn bounded<T>(
    limit: Duration,
    what: &'static str,
    fut: impl std::future::Future<Output = Result<T, mysql_async::Error>>,
) -> Result<T, Failure> {
    match tokio::time::timeout(limit, fut).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(mysql_async::Error::Server(e))) => Err(Failure::Rejected(format!("the server refused to {what}: {}", e.message))),
        Ok(Err(e)) => Err(Failure::Transient(SourceError::mysql(what)(e))),
        Err(_) => Err(Failure::Transient(SourceError::Transient(format!(
            "incremental snapshot: no answer to `{what}` for {limit:?} (read.timeout.ms); the chunk is read again"
        )))),
    }
}

async fn rollback(conn: &mut Option<Conn>, limit: Duration) -> Result<(), Failure> {
    if let Some(c) = conn.as_mut() {
        bounded(limit, "end the chunk's read view", c.query_drop("ROLLBACK")).await?;
    }
    Ok(())
}

async fn read(cfg: &SourceConfig, conn: &mut Option<Conn>, req: &ChunkRequest) -> Result<Chunk, Failure> {
    let limit = cfg.read_timeout;
    if conn.is_none() {
        let mut c = tokio::time::timeout(cfg.connect_timeout, Conn::new(cfg.mysql_opts()))
            .await
            .map_err(|_| SourceError::ConnectTimeout(cfg.connect_timeout))?
            .map_err(SourceError::mysql("connect for an incremental snapshot"))?;
        // As the initial snapshot's: key values read as text are bound back unchanged.
        bounded(limit, "set up the snapshot session", c.query_drop("SET SESSION time_zone = '+00:00'")).await?;
        bounded(limit, "set up the snapshot session", c.query_drop("SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ")).await?;
        *conn = Some(c);
    }
    let Some(c) = conn.as_mut() else { unreachable!("connected above") };
    let schema = match tokio::time::timeout(limit, TableSchema::load(c, &req.database, &req.table)).await {
        Ok(Ok(s)) => s,
        Ok(Err(cdc_schema::SchemaError::TableNotFound { .. })) => {
            return Err(Failure::Rejected(format!("table {}.{} does not exist", req.database, req.table)))
        }
        Ok(Err(e)) => return Err(Failure::Rejected(format!("cannot read the schema of {}.{}: {e}", req.database, req.table))),
        Err(_) => return Err(Failure::Transient(SourceError::Transient("incremental snapshot: no answer reading a table's schema".into()))),
    };
    if schema.primary_key.is_empty() {
        return Err(Failure::Rejected(format!(
            "table {}.{} has no primary key: an incremental snapshot reads a table in primary-key ranges",
            req.database, req.table
        )));
    }
    let full = format!("{}.{}", quote_ident(&schema.database), quote_ident(&schema.table));
    let key_cols: Vec<String> = schema.primary_key.iter().map(|k| format!("cdc_snapshot.{}", quote_ident(k))).collect();
    let bound_cols: Vec<String> = key_cols.iter().enumerate().map(|(i, k)| format!("{k} AS `cdc_snapshot_key_{i}`")).collect();
    let mut conditions = Vec::new();
    if !req.last_key.is_empty() && req.keys.is_empty() {
        conditions.push(after_key(&key_cols));
    }
    // Keys asked for: decoded as the records carry them (to find those missing), bound as given.
    let wanted: Vec<(Vec<Value>, Vec<mysql_async::Value>)> = req
        .keys
        .iter()
        .map(|k| key_of(&schema, k).map_err(Failure::Rejected))
        .collect::<Result<_, _>>()?;
    if !wanted.is_empty() {
        let one = format!("({})", key_cols.iter().map(|k| format!("{k} = ?")).collect::<Vec<_>>().join(" AND "));
        conditions.push(vec![one; wanted.len()].join(" OR "));
    }
    if let Some(f) = &req.filter {
        conditions.push(format!("({f})"));
    }
    let filter = if conditions.is_empty() { String::new() } else { format!(" WHERE ({})", conditions.join(") AND (")) };
    let sql = format!(
        "SELECT {}, {} FROM {full} AS cdc_snapshot{filter} ORDER BY {} LIMIT {}",
        schema.select_list(),
        bound_cols.join(", "),
        key_cols.join(", "),
        if wanted.is_empty() { req.rows } else { wanted.len() }
    );
    let last: Vec<mysql_async::Value> = req
        .last_key
        .iter()
        .map(KeyValue::to_value)
        .collect::<Result<_, _>>()
        .map_err(|e| Failure::Rejected(format!("the stored progress of {full} has an unreadable key ({e})")))?;
    if !last.is_empty() && last.len() != key_cols.len() {
        return Err(Failure::Rejected(format!(
            "the stored progress of {full} has {} key values but the primary key has {} columns now",
            last.len(),
            key_cols.len()
        )));
    }
    let estimate = if req.last_key.is_empty() && req.keys.is_empty() && req.filter.is_none() {
        let rows: Option<u64> = bounded(
            limit,
            "estimate the table size",
            c.exec_first(
                "SELECT COALESCE(table_rows, 0) FROM information_schema.tables WHERE table_schema = ? AND table_name = ?",
                (&schema.database, &schema.table),
            ),
        )
        .await?;
        rows
    } else {
        None
    };
    let q = "start the chunk's read view";
    bounded(limit, q, c.query_drop("START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY")).await?;
    let st: Vec<(String, String)> = bounded(limit, q, c.query("SHOW STATUS LIKE 'binlog_snapshot_%'")).await?;
    let get = |n: &str| st.iter().find(|(k, _)| k.eq_ignore_ascii_case(n)).map(|(_, v)| v.clone());
    let Some(file) = get("binlog_snapshot_file").filter(|f| !f.is_empty()) else {
        return Err(Failure::Transient(SourceError::Definite("the server reports no binlog_snapshot_file: enable the binlog (log_bin)".into())));
    };
    let pos: u64 = get("binlog_snapshot_position").and_then(|p| p.parse().ok()).unwrap_or(4);
    // Cheap (unlike BINLOG_GTID_POS, which reads the binlog file from its start): the current
    // GTID position, kept only when the binlog's end is still the read view's point afterwards.
    let current: Option<String> = bounded(limit, q, c.query_first("SELECT @@gtid_binlog_pos")).await?;
    let end: Option<(String, u64)> = bounded(limit, q, c.query_first("SHOW MASTER STATUS")).await?.map(|row: mysql_async::Row| {
        (row.get::<String, _>(0).unwrap_or_default(), row.get::<u64, _>(1).unwrap_or(0))
    });
    let gtid = match (current, end) {
        (Some(g), Some((f, p))) if f == file && p == pos => g.parse().ok(),
        _ => None,
    };
    let mut params = if last.is_empty() || !wanted.is_empty() { Vec::new() } else { after_key_params(&last) };
    params.extend(wanted.iter().flat_map(|(_, bound)| bound.iter().cloned()));
    let bound_from = schema.columns.len();
    let (mut rows, mut bytes, mut last_row) = (Vec::new(), 0usize, None);
    let mut more = false;
    {
        let mut result = bounded(limit, "read an incremental snapshot chunk", c.exec_iter(sql.as_str(), params)).await?;
        while let Some(row) = bounded(limit, "read an incremental snapshot chunk", result.next()).await? {
            if bytes >= CHUNK_MAX_BYTES {
                // The rest of the result is read and dropped; the next chunk starts after the
                // last row kept.
                more = true;
                continue;
            }
            let values = row_from_snapshot(&schema, &row).map_err(|e| {
                Failure::Rejected(format!("cannot decode a row of {full}: {e}"))
            })?;
            bytes += values.iter().map(value_bytes).sum::<usize>() + 64;
            rows.push(values);
            last_row = Some(row);
        }
    }
    bounded(limit, "end the chunk's read view", c.query_drop("COMMIT")).await?;
    let last_key = match &last_row {
        Some(row) => (0..key_cols.len())
            .map(|i| KeyValue::from(&row.as_ref(bound_from + i).cloned().unwrap_or(mysql_async::Value::NULL)))
            .collect(),
        None => req.last_key.clone(),
    };
    let finished = !wanted.is_empty() || (!more && rows.len() < req.rows);
    let missing = if wanted.is_empty() {
        Vec::new()
    } else {
        let found: std::collections::HashSet<String> =
            rows.iter().map(|r| super::key_id(&cdc_schema::key_values(&schema, r))).collect();
        let positions: Vec<usize> = schema.primary_key.iter().filter_map(|k| schema.columns.iter().position(|c| &c.name == k)).collect();
        wanted
            .into_iter()
            .filter(|(key, _)| !found.contains(&super::key_id(key)))
            .map(|(key, _)| {
                let mut row = vec![Value::Null; schema.columns.len()];
                for (at, v) in positions.iter().zip(key) {
                    row[*at] = v;
                }
                row
            })
            .collect()
    };
    Ok(Chunk { generation: req.generation, schema, binlog: FilePos { file, pos }, gtid, rows, missing, last_key, finished, estimate })
}

/// A requested key: its values as the records carry them, and as bound to the query.
fn key_of(schema: &TableSchema, key: &[KeyValue]) -> Result<(Vec<Value>, Vec<mysql_async::Value>), String> {
    if key.len() != schema.primary_key.len() {
        return Err(format!(
            "a key of {}.{} has {} values but its primary key ({}) has {} columns",
            schema.database,
            schema.table,
            key.len(),
            schema.primary_key.join(", "),
            schema.primary_key.len()
        ));
    }
    let mut values = Vec::new();
    let mut bound = Vec::new();
    for (name, k) in schema.primary_key.iter().zip(key) {
        let column = schema.columns.iter().find(|c| &c.name == name).ok_or_else(|| format!("no key column {name}"))?;
        let v = k.to_value()?;
        // As a text-protocol result carries it: what the snapshot's decoding reads.
        let text = match &v {
            mysql_async::Value::Int(i) => mysql_async::Value::Bytes(i.to_string().into_bytes()),
            mysql_async::Value::UInt(u) => mysql_async::Value::Bytes(u.to_string().into_bytes()),
            other => other.clone(),
        };
        let decoded = Value::from_snapshot(column, &text)
            .map_err(|e| format!("the key value {k:?} cannot be read as column `{name}` of {}.{}: {e}", schema.database, schema.table))?;
        values.push(decoded);
        bound.push(v);
    }
    Ok((values, bound))
}

/// About what a value holds in memory.
fn value_bytes(v: &Value) -> usize {
    match v {
        Value::String(s) => s.len() + 24,
        Value::Bytes(b) => b.len() + 24,
        _ => 32,
    }
}
