//! Turning a batch of changes into statements inside one transaction.
//!
//! - **Collapse** ([`collapse`]): with a primary key and `insert.mode=upsert`, only the last change
//!   of each key in a batch is kept — the table ends the same, with fewer rows written. Other modes
//!   keep every change in order (a second `insert` of a key must fail as it would alone).
//!   Keys are compared as rendered literals: two keys that only a case-insensitive collation
//!   makes equal (`'a'` and `'A'`) are both kept and written in their order within a statement.
//! - **Grouping**: changes of one table, operation and column list share one multi-row statement
//!   (`INSERT … VALUES (…),(…) ON DUPLICATE KEY UPDATE c = VALUES(c)`, or `DELETE … WHERE key IN
//!   (…)`), cut at the connection's [`StatementLimit`]. After collapsing, keys are distinct, so
//!   groups can run in any order; without collapsing, only consecutive changes are grouped.
//! - **Bulk writes**: on MariaDB (10.2 and later) a group of inserts or upserts is sent as one
//!   prepared `INSERT … VALUES (?, …)` executed for all its rows at once (`COM_STMT_BULK_EXECUTE`,
//!   mysql_async's `exec_batch`): values travel binary, strings and bytes unescaped, and the server
//!   skips parsing a multi-row statement. Measured against the multi-row text statement by
//!   `cdc-bench --sink` (bench/README.md): about 0.5–0.6× its time for the same rows. Deletes,
//!   `insert.mode=update`, ENUM `''` changes, groups with a row too long for the text limit, and
//!   the one-by-one replay below stay text.
//! - **The server's packet**: a statement longer than the mirror server's `max_allowed_packet`
//!   gets error 1153 and a closed connection, which would look transient and be retried forever.
//!   So the value is read on every connection ([`StatementLimit::read`]); multi-row statements
//!   are cut below it, and a change whose own statement is longer ([`WriteError::TooLarge`]) is
//!   never sent: [`write_each`] reports it as the failed record, with a message naming the
//!   setting to raise.
//! - **Finding a bad record**: when a grouped statement fails on data (a value that does not fit
//!   its column, a duplicate key with `insert.mode=insert`), the caller rolls back and replays the
//!   batch with [`write_each`]: one statement per change behind a savepoint, so exactly the failing
//!   records are known and the rest still commit in the same transaction.
//! - **What the source accepted, the mirror accepts**: the session allows zero dates and, with
//!   `ALLOW_INVALID_DATES`, the invalid dates a non-strict source session stored, and stays strict
//!   otherwise, so a value that does not fit its mirror column is an error, never truncated. An
//!   ENUM holding `''` (MariaDB's error value, index 0) can only be stored by a non-strict
//!   statement: such a change is written alone with `SET STATEMENT sql_mode = … FOR`, and any
//!   warning but the expected "Data truncated" on those very columns fails it as a data error.

use std::collections::HashMap;

use mysql_async::prelude::Queryable;

use crate::change::{Change, Op};
use crate::config::InsertMode;
use crate::metrics::{SinkMetrics, TableOpLabels};

/// Multi-row statements are cut at this size, well below MariaDB's default `max_allowed_packet`
/// (16 MiB), or below the server's setting when it is smaller (see [`StatementLimit`]).
pub const MAX_STATEMENT_BYTES: usize = 4 * 1024 * 1024;

/// What a statement leaves unused of `max_allowed_packet`: the packet also holds the command
/// byte, and this keeps clear of any off-by-a-few in the server's accounting.
pub const PACKET_HEADROOM_BYTES: usize = 1024;

/// How long the statements of one connection may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatementLimit {
    /// The session's `max_allowed_packet` (fixed for the life of a MariaDB session).
    pub max_allowed_packet: usize,
    /// The longest statement sent: `max_allowed_packet` less [`PACKET_HEADROOM_BYTES`].
    pub single: usize,
    /// Where multi-row statements are cut: `single`, at most [`MAX_STATEMENT_BYTES`].
    pub cut: usize,
    /// The server is MariaDB 10.2 or later: inserts and upserts go as bulk executions.
    pub bulk: bool,
}

impl StatementLimit {
    pub fn new(max_allowed_packet: usize) -> StatementLimit {
        let single = max_allowed_packet.saturating_sub(PACKET_HEADROOM_BYTES);
        StatementLimit {
            max_allowed_packet,
            single,
            cut: single.min(MAX_STATEMENT_BYTES),
            bulk: false,
        }
    }

    /// The limit of `conn`, from its session's `max_allowed_packet`; bulk writes when the
    /// server's `VERSION()` is MariaDB's, 10.2 or later.
    pub async fn read(conn: &mut mysql_async::Conn) -> Result<StatementLimit, mysql_async::Error> {
        let row: Option<(Option<u64>, String)> =
            conn.query_first("SELECT @@SESSION.max_allowed_packet, VERSION()").await?;
        let (packet, version) = row.unwrap_or((None, String::new()));
        Ok(StatementLimit {
            bulk: bulk_capable(&version),
            ..StatementLimit::new(packet.unwrap_or(16 * 1024 * 1024) as usize)
        })
    }

    /// This limit for statements behind a prefix of `bytes`.
    fn less(self, bytes: usize) -> StatementLimit {
        StatementLimit {
            single: self.single.saturating_sub(bytes),
            cut: self.cut.saturating_sub(bytes),
            ..self
        }
    }
}

impl Default for StatementLimit {
    /// MariaDB's default `max_allowed_packet`, until a connection says otherwise.
    fn default() -> StatementLimit {
        StatementLimit::new(16 * 1024 * 1024)
    }
}

/// Whether a server of `VERSION()` text `version` executes bulk statements: MariaDB 10.2 or
/// later (MySQL has no `COM_STMT_BULK_EXECUTE`; mysql_async would run one statement per row).
pub fn bulk_capable(version: &str) -> bool {
    if !version.contains("MariaDB") {
        return false;
    }
    let mut parts = version.split(['.', '-']).map(|p| p.parse::<u32>().unwrap_or(0));
    let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    (major, minor) >= (10, 2)
}

/// Why grouped statements failed.
#[derive(Debug)]
pub enum WriteError {
    Db(mysql_async::Error),
    /// A change whose own statement is over the [`StatementLimit`]; nothing of its group was
    /// sent. [`write_each`] finds it and names it.
    TooLarge,
}

impl From<mysql_async::Error> for WriteError {
    fn from(e: mysql_async::Error) -> WriteError {
        WriteError::Db(e)
    }
}

/// The message of a change whose statement of `bytes` is over `limit`.
fn too_large_message(change: &Change, bytes: usize, limit: StatementLimit) -> String {
    format!(
        "table `{}`, {}: its statement is {bytes} bytes, over the {} bytes that the mirror server's \
         max_allowed_packet of {} allows (less {PACKET_HEADROOM_BYTES} bytes of headroom); raise \
         max_allowed_packet on the mirror server (SET GLOBAL and its option file) above the row's \
         size, counting binary values twice, as they are sent as hex",
        change.table.as_str(),
        key_text(change),
        limit.single,
        limit.max_allowed_packet,
    )
}

/// `key …` (at most 100 characters of it), or `no key`.
fn key_text(change: &Change) -> String {
    if change.shape.pk_len == 0 {
        return "no key".into();
    }
    let key = change.key();
    match key.char_indices().nth(100) {
        Some((end, _)) => format!("key {}…", &key[..end]),
        None => format!("key {key}"),
    }
}

/// The session's `sql_mode`: strict, so a value that does not fit is an error rather than
/// silently truncated; zero dates (no `NO_ZERO_DATE`/`NO_ZERO_IN_DATE`) and invalid dates
/// allowed, as a source may hold them.
pub const SESSION_SQL_MODE: &str =
    "STRICT_ALL_TABLES,NO_ENGINE_SUBSTITUTION,ERROR_FOR_DIVISION_BY_ZERO,ALLOW_INVALID_DATES";

/// The `sql_mode` of a statement that stores an ENUM's `''`; its warnings are checked.
const ENUM_BLANK_SQL_MODE: &str = "NO_ENGINE_SUBSTITUTION,ALLOW_INVALID_DATES";

/// How long a statement waits for a metadata lock (`lock_wait_timeout`, MariaDB's default is a
/// day): an `ALTER TABLE` of `auto.evolve` behind a long transaction on the mirror table fails
/// with 1205 after this long, a transient error retried with backoff and shown in `/status`.
pub const DDL_LOCK_WAIT_SECONDS: u32 = 60;

/// Session settings of every connection: UTC for TIMESTAMP literals, [`SESSION_SQL_MODE`],
/// [`DDL_LOCK_WAIT_SECONDS`], and backslash escapes (which [`crate::sqltext`] relies on) enabled.
pub fn session_setup() -> Vec<String> {
    vec![
        "SET NAMES utf8mb4".into(),
        format!("SET SESSION time_zone = '+00:00', sql_mode = '{SESSION_SQL_MODE}'"),
        format!("SET SESSION lock_wait_timeout = {DDL_LOCK_WAIT_SECONDS}"),
    ]
}

/// Keeps, for each (table, key), only the last change, in the order of those last changes.
pub fn collapse(changes: Vec<Change>, mode: InsertMode) -> Vec<Change> {
    if mode != InsertMode::Upsert || changes.iter().all(|c| c.shape.pk_len == 0) {
        return changes;
    }
    let mut keep = vec![true; changes.len()];
    let mut last: HashMap<(&str, &str), usize> = HashMap::with_capacity(changes.len());
    for (i, c) in changes.iter().enumerate() {
        if c.shape.pk_len > 0 {
            if let Some(earlier) = last.insert((c.table.as_str(), c.key()), i) {
                keep[earlier] = false;
            }
        }
    }
    drop(last);
    changes
        .into_iter()
        .zip(keep)
        .filter_map(|(c, keep)| keep.then_some(c))
        .collect()
}

/// The metrics `op` label of a change.
pub fn op_label(op: Op, mode: InsertMode) -> &'static str {
    match (op, mode) {
        (Op::Delete, _) => "delete",
        (Op::Write, InsertMode::Upsert) => "upsert",
        (Op::Write, InsertMode::Insert) => "insert",
        (Op::Write, InsertMode::Update) => "update",
    }
}

/// Writes `changes` with grouped statements. On error the caller rolls back.
pub async fn write_grouped(
    tx: &mut mysql_async::Transaction<'_>,
    changes: &[&Change],
    mode: InsertMode,
    limit: StatementLimit,
) -> Result<(), WriteError> {
    for g in group(changes, mode) {
        if !g[0].enum_blanks.is_empty() {
            let sqls = statements(&g, mode, limit.less(enum_blank_prefix().len()))
                .map_err(|_| WriteError::TooLarge)?;
            write_enum_blanks(tx, g[0], sqls).await?;
            continue;
        }
        if let Some((sql, rows)) = bulk_statement(&g, mode, limit) {
            tx.exec_batch(sql, rows).await?;
            continue;
        }
        send_all(tx, statements(&g, mode, limit).map_err(|_| WriteError::TooLarge)?).await?;
    }
    Ok(())
}

/// The prepared statement and rows of a group of inserts or upserts, when it goes as a bulk
/// execution: a MariaDB connection, writes that insert, and every row within the limit the text
/// statements would keep it to (a binary row is never longer than its literals; mysql_async
/// splits the rows into packets below `max_allowed_packet`).
fn bulk_statement(
    group: &[&Change],
    mode: InsertMode,
    limit: StatementLimit,
) -> Option<(String, Vec<mysql_async::Params>)> {
    let first = group[0];
    if !limit.bulk || first.op != Op::Write || mode == InsertMode::Update || !first.enum_blanks.is_empty() {
        return None;
    }
    let (head, tail) = insert_parts(first, mode);
    let fits = |c: &&Change| {
        c.binds.len() == c.shape.fields.len() && head.len() + c.literals.joined().len() + 2 + tail.len() <= limit.cut
    };
    if !group.iter().all(fits) {
        return None;
    }
    let placeholders = vec!["?"; first.shape.fields.len()].join(",");
    let rows = group
        .iter()
        .map(|c| mysql_async::Params::Positional(c.binds.clone()))
        .collect();
    Some((format!("{head}({placeholders}){tail}"), rows))
}

/// `INSERT INTO t (columns) VALUES ` and the upsert's ` ON DUPLICATE KEY UPDATE …` (empty for
/// `insert.mode=insert`) of a write's shape.
fn insert_parts(first: &Change, mode: InsertMode) -> (String, String) {
    let shape = &first.shape;
    let cols: Vec<String> = shape.names.iter().map(|n| n.to_string()).collect();
    let head = format!("INSERT INTO {} ({}) VALUES ", first.table, cols.join(", "));
    let tail = if mode == InsertMode::Upsert {
        let updated: Vec<String> = if shape.fields.len() > shape.pk_len {
            shape.names[shape.pk_len..]
                .iter()
                .map(|n| format!("{n} = VALUES({n})"))
                .collect()
        } else {
            shape
                .pk_names()
                .iter()
                .map(|n| format!("{n} = {n}"))
                .collect()
        };
        format!(" ON DUPLICATE KEY UPDATE {}", updated.join(", "))
    } else {
        String::new()
    };
    (head, tail)
}

/// Writes `sqls`, the statements of one change whose ENUM columns `change.enum_blanks` hold `''`,
/// non-strict for that statement only; every other warning (a truncated or adjusted value
/// anywhere else) is returned as the data error it would have been in strict mode.
async fn write_enum_blanks(
    tx: &mut mysql_async::Transaction<'_>,
    change: &Change,
    sqls: Vec<String>,
) -> Result<(), mysql_async::Error> {
    let prefix = enum_blank_prefix();
    for sql in sqls {
        tx.query_drop(format!("{prefix}{sql}")).await?;
        let warnings: Vec<(String, u16, String)> = tx.query("SHOW WARNINGS").await?;
        let expected = |code: u16, message: &str| {
            let message = message.to_lowercase();
            code == 1265
                && change
                    .enum_blanks
                    .iter()
                    .any(|c| message.contains(&format!("column '{}'", c.to_lowercase())))
        };
        if let Some((_, code, message)) = warnings.into_iter().find(|(_, c, m)| !expected(*c, m)) {
            return Err(mysql_async::Error::Server(mysql_async::ServerError {
                code,
                message,
                state: "22000".into(),
            }));
        }
    }
    Ok(())
}

async fn send_all(
    tx: &mut mysql_async::Transaction<'_>,
    sqls: Vec<String>,
) -> Result<(), mysql_async::Error> {
    for sql in sqls {
        tx.query_drop(sql).await?;
    }
    Ok(())
}

fn enum_blank_prefix() -> String {
    format!("SET STATEMENT sql_mode = '{ENUM_BLANK_SQL_MODE}' FOR ")
}

/// Writes each change behind its own savepoint; returns the index and message (naming its table)
/// of every change whose statement failed on its data or is too large to send. Transient and
/// definite errors are returned as `Err`.
pub async fn write_each(
    tx: &mut mysql_async::Transaction<'_>,
    changes: &[&Change],
    mode: InsertMode,
    limit: StatementLimit,
) -> Result<Vec<(usize, String)>, mysql_async::Error> {
    let mut failed = Vec::new();
    for (i, &change) in changes.iter().enumerate() {
        // Measured before anything is sent: a change too large is never sent.
        let prefix = if change.enum_blanks.is_empty() { 0 } else { enum_blank_prefix().len() };
        let sqls = match statements(&[change], mode, limit.less(prefix)) {
            Ok(sqls) => sqls,
            Err(bytes) => {
                failed.push((i, too_large_message(change, bytes + prefix, limit)));
                continue;
            }
        };
        tx.query_drop("SAVEPOINT cdc_sink_row").await?;
        let result = if change.enum_blanks.is_empty() {
            send_all(tx, sqls).await
        } else {
            write_enum_blanks(tx, change, sqls).await
        };
        match result {
            Ok(()) => {}
            Err(e) if crate::errors::classify_db(&e) == crate::errors::DbErrorKind::Data => {
                tx.query_drop("ROLLBACK TO SAVEPOINT cdc_sink_row").await?;
                failed.push((i, format!("table `{}`: {e}", change.table.as_str())));
            }
            Err(e) => return Err(e),
        }
    }
    Ok(failed)
}

/// Counts committed changes in `cdc_sink_rows_applied_total`.
pub fn count_applied<'a>(
    metrics: &SinkMetrics,
    changes: impl Iterator<Item = &'a Change>,
    mode: InsertMode,
) {
    let mut counts: HashMap<(&str, &'static str), u64> = HashMap::new();
    for c in changes {
        *counts
            .entry((c.table.as_str(), op_label(c.op, mode)))
            .or_default() += 1;
    }
    for ((table, op), n) in counts {
        // The truncate series of a table exist at 0 from its first row on.
        for outcome in ["applied", "skipped"] {
            let _ = metrics.truncates.get_or_create(&crate::metrics::TruncateLabels {
                table: table.to_string(),
                outcome,
            });
        }
        metrics
            .rows_applied
            .get_or_create(&TableOpLabels {
                table: table.to_string(),
                op,
            })
            .inc_by(n);
    }
}

/// Groups changes that can share a statement (see the module docs).
fn group<'a>(changes: &[&'a Change], mode: InsertMode) -> Vec<Vec<&'a Change>> {
    let same =
        |a: &Change, b: &Change| a.table == b.table && a.op == b.op && a.shape.id == b.shape.id;
    let mut groups: Vec<Vec<&Change>> = Vec::new();
    if mode == InsertMode::Upsert {
        let mut index: HashMap<(&str, Op, &str), usize> = HashMap::new();
        for &c in changes {
            if !c.enum_blanks.is_empty() {
                groups.push(vec![c]);
                continue;
            }
            let k = (c.table.as_str(), c.op, c.shape.id.as_str());
            match index.get(&k) {
                Some(&g) => groups[g].push(c),
                None => {
                    index.insert(k, groups.len());
                    groups.push(vec![c]);
                }
            }
        }
    } else {
        for &c in changes {
            match groups.last_mut() {
                Some(g) if same(g[0], c) && g[0].enum_blanks.is_empty() && c.enum_blanks.is_empty() => {
                    g.push(c)
                }
                _ => groups.push(vec![c]),
            }
        }
    }
    groups
}

/// The statements of one group, multi-row ones cut at `limit.cut`; `Err` with its statement's
/// length when a change's own statement is over `limit.single`.
fn statements(group: &[&Change], mode: InsertMode, limit: StatementLimit) -> Result<Vec<String>, usize> {
    let first = group[0];
    let table = &first.table;
    let shape = &first.shape;
    match (first.op, mode) {
        (Op::Delete, _) => {
            let cols: Vec<String> = shape.pk_names().iter().map(|n| n.to_string()).collect();
            let (lhs, wrap) = if cols.len() == 1 {
                (cols[0].clone(), false)
            } else {
                (format!("({})", cols.join(", ")), true)
            };
            let head = format!("DELETE FROM {table} WHERE {lhs} IN (");
            chunked(&head, ")", group.iter().map(|c| (c.key(), wrap)), limit)
        }
        (Op::Write, InsertMode::Update) => group
            .iter()
            .filter(|c| c.shape.fields.len() > c.shape.pk_len)
            .map(|c| {
                let set: Vec<String> = (shape.pk_len..shape.fields.len())
                    .map(|i| format!("{} = {}", shape.names[i], c.literals.get(i)))
                    .collect();
                let cond: Vec<String> = (0..shape.pk_len)
                    .map(|i| format!("{} = {}", shape.names[i], c.literals.get(i)))
                    .collect();
                let sql = format!(
                    "UPDATE {table} SET {} WHERE {}",
                    set.join(", "),
                    cond.join(" AND ")
                );
                if sql.len() > limit.single {
                    return Err(sql.len());
                }
                Ok(sql)
            })
            .collect(),
        (Op::Write, _) => {
            let (head, tail) = insert_parts(first, mode);
            chunked(
                &head,
                &tail,
                group.iter().map(|c| (c.literals.joined(), true)),
                limit,
            )
        }
    }
}

/// `head item, item, … tail`, split into statements of at most `limit.cut` bytes (one item
/// alone may be longer, up to `limit.single`); `Err` with the length of an item's own statement
/// over `limit.single`. Each item is `(text, wrapped)`: with `wrapped` it is written as `(text)`.
/// The items are copied straight into the statement.
fn chunked<'a>(
    head: &str,
    tail: &str,
    items: impl Iterator<Item = (&'a str, bool)>,
    limit: StatementLimit,
) -> Result<Vec<String>, usize> {
    let mut out = Vec::new();
    let capacity = limit.cut.min(64 * 1024);
    let fresh = || {
        let mut sql = String::with_capacity(capacity);
        sql.push_str(head);
        sql
    };
    let mut sql = fresh();
    let mut empty = true;
    for (text, wrapped) in items {
        let item_len = text.len() + if wrapped { 2 } else { 0 };
        let alone = head.len() + item_len + tail.len();
        if alone > limit.single {
            return Err(alone);
        }
        if !empty && sql.len() + 1 + item_len + tail.len() > limit.cut {
            sql.push_str(tail);
            out.push(std::mem::replace(&mut sql, fresh()));
            empty = true;
        }
        if !empty {
            sql.push(',');
        }
        if wrapped {
            sql.push('(');
            sql.push_str(text);
            sql.push(')');
        } else {
            sql.push_str(text);
        }
        empty = false;
    }
    if !empty {
        sql.push_str(tail);
        out.push(sql);
    }
    Ok(out)
}

#[cfg(test)]
#[path = "writer_tests.rs"]
mod tests;
