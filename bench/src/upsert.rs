//! The sink's yardstick: MariaDB itself upserting the same rows, sent by the `mariadb`
//! command-line client as multi-row `INSERT … ON DUPLICATE KEY UPDATE c = VALUES(c)` statements
//! of the sink's `batch.size` (one autocommit transaction each, as the sink commits one per
//! batch). The SQL file is written first from the source table; only the client run is timed,
//! each time into a fresh empty copy (`CREATE TABLE … LIKE`) of the mirror table the sink created.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use futures::StreamExt;
use mysql_async::prelude::Queryable;
use mysql_async::Conn;

use cdc_testkit::Stack;

/// The reference table, in the mirror database next to the sink's table.
pub const REFERENCE_TABLE: &str = "upsert_reference";

/// What was written: statements, rows and bytes of the SQL file.
#[derive(Debug, Clone, Copy)]
pub struct SqlFile {
    pub statements: u64,
    pub rows: u64,
    pub bytes: u64,
}

/// Writes every row of `db`.`table` (by primary key `id`) as upserts into [`REFERENCE_TABLE`],
/// `batch` rows per statement, to `path`.
pub async fn write_sql(
    stack: &Stack,
    db: &str,
    table: &str,
    batch: usize,
    path: &Path,
) -> anyhow::Result<SqlFile> {
    let mut conn = Conn::new(stack.root_opts(Some(db))).await?;
    let columns: Vec<String> = conn
        .exec(
            "SELECT column_name FROM information_schema.columns \
             WHERE table_schema = ? AND table_name = ? ORDER BY ordinal_position",
            (db, table),
        )
        .await?;
    let quoted: Vec<String> = columns.iter().map(|c| format!("`{c}`")).collect();
    let head = format!(
        "INSERT INTO `{REFERENCE_TABLE}` ({}) VALUES ",
        quoted.join(",")
    );
    let tail = format!(
        " ON DUPLICATE KEY UPDATE {};\n",
        quoted
            .iter()
            .filter(|c| *c != "`id`")
            .map(|c| format!("{c}=VALUES({c})"))
            .collect::<Vec<_>>()
            .join(",")
    );
    let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
    let mut file = SqlFile {
        statements: 0,
        rows: 0,
        bytes: 0,
    };
    let mut in_statement = 0usize;
    let mut result = conn
        .query_iter(format!(
            "SELECT {} FROM `{table}` ORDER BY id",
            quoted.join(",")
        ))
        .await?;
    let mut rows = result
        .stream::<mysql_async::Row>()
        .await?
        .context("the SELECT returned no result set")?;
    while let Some(row) = rows.next().await {
        let row = row?;
        let values: Vec<String> = row.unwrap().iter().map(|v| v.as_sql(false)).collect();
        let mut text = if in_statement == 0 {
            file.statements += 1;
            head.clone()
        } else {
            ",".to_string()
        };
        text.push('(');
        text.push_str(&values.join(","));
        text.push(')');
        in_statement += 1;
        file.rows += 1;
        if in_statement == batch {
            text.push_str(&tail);
            in_statement = 0;
        }
        file.bytes += text.len() as u64;
        out.write_all(text.as_bytes())?;
    }
    if in_statement > 0 {
        out.write_all(tail.as_bytes())?;
        file.bytes += tail.len() as u64;
    }
    out.flush()?;
    drop(rows);
    drop(result);
    conn.disconnect().await?;
    Ok(file)
}

/// Empties the reference table as a fresh copy of `mirror_table` (same definition).
pub async fn fresh_copy(stack: &Stack, db: &str, mirror_table: &str) -> anyhow::Result<()> {
    let mut conn = Conn::new(stack.root_opts(Some(db))).await?;
    conn.query_drop(format!("DROP TABLE IF EXISTS `{REFERENCE_TABLE}`"))
        .await?;
    conn.query_drop(format!(
        "CREATE TABLE `{REFERENCE_TABLE}` LIKE `{mirror_table}`"
    ))
    .await?;
    conn.disconnect().await?;
    Ok(())
}

/// Times `mariadb <db> < sql` (the client's whole run, connection included).
pub fn time_client(stack: &Stack, db: &str, sql: &Path) -> anyhow::Result<Duration> {
    let input = std::fs::File::open(sql)?;
    let started = Instant::now();
    let out = Command::new("mariadb")
        .arg(format!("--host={}", stack.mariadb_host))
        .arg(format!("--port={}", stack.mariadb_port))
        .arg(format!("--user={}", stack.root_user))
        .arg(format!("--password={}", stack.root_password))
        .arg("--protocol=TCP")
        .arg(db)
        .stdin(input)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .context("run mariadb (Debian package mariadb-client)")?;
    let took = started.elapsed();
    if !out.status.success() {
        bail!(
            "mariadb < {} failed ({}): {}",
            sql.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(took)
}

/// `CHECKSUM TABLE` of a table (equal definitions and rows give equal checksums).
pub async fn checksum(stack: &Stack, db: &str, table: &str) -> anyhow::Result<Option<i64>> {
    let mut conn = Conn::new(stack.root_opts(Some(db))).await?;
    let row: Option<(String, Option<i64>)> = conn
        .query_first(format!("CHECKSUM TABLE `{table}`"))
        .await?;
    conn.disconnect().await?;
    Ok(row.and_then(|(_, c)| c))
}

/// The same upserts through mysql_async, the sink's client library, on one connection: the SQL
/// file's multi-row text statements (`COM_QUERY`, each autocommit), as the sink sends them.
/// Only the statements are timed.
pub async fn time_text(stack: &Stack, db: &str, sql: &Path) -> anyhow::Result<Duration> {
    use std::io::BufRead;
    let mut conn = Conn::new(stack.root_opts(Some(db))).await?;
    let mut took = Duration::ZERO;
    for line in std::io::BufReader::new(std::fs::File::open(sql)?).lines() {
        let line = line?;
        let statement = line.trim_end().trim_end_matches(';');
        if statement.is_empty() {
            continue;
        }
        let started = Instant::now();
        conn.query_drop(statement).await?;
        took += started.elapsed();
    }
    conn.disconnect().await?;
    Ok(took)
}

/// The same upserts as MariaDB's bulk protocol sends them: per `batch` rows of
/// `source_db`.`table` (by `id`), one transaction executing one prepared
/// `INSERT … VALUES (?, …) ON DUPLICATE KEY UPDATE c = VALUES(c)` with mysql_async's
/// `exec_batch` (`COM_STMT_BULK_EXECUTE`: binary values, no escaping or hex). Reading the rows
/// is not timed; `BEGIN`, the bulk execution and `COMMIT` are.
pub async fn time_bulk(
    stack: &Stack,
    db: &str,
    source_db: &str,
    table: &str,
    batch: usize,
) -> anyhow::Result<Duration> {
    let mut source = Conn::new(stack.root_opts(Some(source_db))).await?;
    let columns: Vec<String> = source
        .exec(
            "SELECT column_name FROM information_schema.columns \
             WHERE table_schema = ? AND table_name = ? ORDER BY ordinal_position",
            (source_db, table),
        )
        .await?;
    let quoted: Vec<String> = columns.iter().map(|c| format!("`{c}`")).collect();
    let id = columns
        .iter()
        .position(|c| c == "id")
        .context("the source table has no `id` column")?;
    let updates: Vec<String> = quoted
        .iter()
        .filter(|c| *c != "`id`")
        .map(|c| format!("{c}=VALUES({c})"))
        .collect();
    let mut conn = Conn::new(stack.root_opts(Some(db))).await?;
    let statement = conn
        .prep(format!(
            "INSERT INTO `{REFERENCE_TABLE}` ({}) VALUES ({}) ON DUPLICATE KEY UPDATE {}",
            quoted.join(","),
            vec!["?"; quoted.len()].join(","),
            updates.join(",")
        ))
        .await?;
    let select = format!(
        "SELECT {} FROM `{table}` WHERE id > ? ORDER BY id LIMIT {batch}",
        quoted.join(",")
    );
    let mut took = Duration::ZERO;
    let mut after = i64::MIN;
    loop {
        let rows: Vec<mysql_async::Row> = source.exec(&select, (after,)).await?;
        let Some(last) = rows.last() else { break };
        after = last.get::<i64, usize>(id).context("`id` is not an integer")?;
        let params: Vec<Vec<mysql_async::Value>> = rows.into_iter().map(mysql_async::Row::unwrap).collect();
        let started = Instant::now();
        conn.query_drop("BEGIN").await?;
        conn.exec_batch(&statement, params).await?;
        conn.query_drop("COMMIT").await?;
        took += started.elapsed();
    }
    source.disconnect().await?;
    conn.disconnect().await?;
    Ok(took)
}
