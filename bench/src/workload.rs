//! The workloads, written into MariaDB while no source is running, and the binlog range they
//! occupy.
//!
//! - **W1**: `rows` rows inserted into `orders` by INSERTs of 1,000 rows each (one transaction each).
//! - **W2**: `rows` single-row transactions, a quarter each of INSERT into `users`, INSERT into
//!   `orders`, UPDATE of that user and UPDATE of that order; written over [`W2_CONNECTIONS`]
//!   connections so that group commit keeps the preparation short.
//! - **W3**: `rows` rows inserted into `orders` *before* the range, then one transaction (a single
//!   `UPDATE`) changing all of them: the bounded-memory case.
//! - **snapshot**: `rows` rows in `orders` (inserted as in W1) copied by the source's initial
//!   snapshot, not streamed: see `snapshot_bench.rs`, which runs it instead of [`prepare`].
//! - **incremental**: `rows` rows in `orders` copied by an incremental snapshot a signal starts
//!   while the source streams, alone and under a paced writer: see `incremental_bench.rs`.
//!
//! Each workload starts in a fresh binlog file (`FLUSH BINARY LOGS`), so neither reader pays for
//! skipping earlier events of the file. The range is given as file:pos (for `mariadb-binlog`) and as
//! the GTID position at both ends (`BINLOG_GTID_POS`), which is where the source resumes and what
//! it must report as committed at the end.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use cdc_source::position::GtidPosition;
use mysql_async::prelude::Queryable;
use mysql_async::Conn;

use cdc_testkit::Stack;

/// Rows per INSERT in W1 and in W3's preparation.
pub const INSERT_BATCH: u64 = 1_000;
/// Connections writing W2.
pub const W2_CONNECTIONS: u64 = 4;
/// W2 steps (of four transactions each) sent as one multi-statement query.
const W2_STEPS_PER_QUERY: u64 = 25;

/// The tutorial's table definitions, exactly as the stack creates them.
const DDL: &str = include_str!("../../sql/01-databases.sql");

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Workload {
    W1,
    W2,
    W3,
    Snapshot,
    Incremental,
}

impl Workload {
    pub fn name(self) -> &'static str {
        match self {
            Workload::W1 => "W1",
            Workload::W2 => "W2",
            Workload::W3 => "W3",
            Workload::Snapshot => "snapshot",
            Workload::Incremental => "incremental",
        }
    }

    pub fn default_rows(self) -> u64 {
        match self {
            Workload::W1 | Workload::W3 | Workload::Snapshot | Workload::Incremental => 1_000_000,
            Workload::W2 => 100_000,
        }
    }

    pub fn describe(self, rows: u64) -> String {
        match self {
            Workload::W1 => {
                format!("{rows} rows inserted into orders, {INSERT_BATCH} rows per INSERT")
            }
            Workload::W2 => {
                format!("{rows} single-row transactions: INSERT/UPDATE on users and orders")
            }
            Workload::W3 => format!("one transaction updating {rows} rows of orders"),
            Workload::Snapshot => format!("initial snapshot of {rows} rows of orders"),
            Workload::Incremental => {
                format!("incremental snapshot of {rows} rows of orders, alone and under a paced writer")
            }
        }
    }
}

/// A point of the binlog: file:pos and the GTID position there.
#[derive(Debug, Clone)]
pub struct BinlogPoint {
    pub file: String,
    pub pos: u64,
    pub gtid: GtidPosition,
}

/// Records the source must publish: table → op code → count.
pub type Expected = BTreeMap<&'static str, BTreeMap<&'static str, u64>>;

/// A workload written to the binlog.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub start: BinlogPoint,
    pub end: BinlogPoint,
    /// Binlog files from `start.file` to `end.file`, in order.
    pub files: Vec<String>,
    /// Bytes of binlog between `start` and `end`.
    pub bytes: u64,
    /// Row changes in the range.
    pub rows: u64,
    pub expected: Expected,
    pub prepare_time: Duration,
}

/// Creates database `db` with the tutorial's `users` and `orders`.
pub async fn create_database(stack: &Stack, db: &str) -> anyhow::Result<()> {
    let mut conn = Conn::new(stack.root_opts(None))
        .await
        .context("connect to MariaDB as root; is the stack up (stack/up)?")?;
    conn.query_drop(format!("CREATE DATABASE `{db}` CHARACTER SET utf8mb4"))
        .await?;
    conn.query_drop(format!("USE `{db}`")).await?;
    for stmt in DDL
        .split(';')
        .map(str::trim)
        .filter(|s| s.to_ascii_lowercase().starts_with("create table"))
    {
        conn.query_drop(stmt)
            .await
            .with_context(|| format!("create table: {stmt}"))?;
    }
    conn.disconnect().await?;
    Ok(())
}

pub async fn drop_database(stack: &Stack, db: &str) -> anyhow::Result<()> {
    let mut conn = Conn::new(stack.root_opts(None)).await?;
    conn.query_drop(format!("DROP DATABASE IF EXISTS `{db}`"))
        .await?;
    conn.disconnect().await?;
    Ok(())
}

/// Writes `workload` into `db` and returns the binlog range it occupies.
pub async fn prepare(
    stack: &Stack,
    db: &str,
    workload: Workload,
    rows: u64,
) -> anyhow::Result<Prepared> {
    let mut conn = Conn::new(stack.root_opts(Some(db))).await?;
    if workload == Workload::W3 {
        insert_orders(&mut conn, rows).await?;
    }
    conn.query_drop("FLUSH BINARY LOGS")
        .await
        .context("FLUSH BINARY LOGS (needs RELOAD)")?;
    let start = point(&mut conn).await?;
    let began = Instant::now();
    let mut expected = Expected::new();
    match workload {
        Workload::W1 => {
            insert_orders(&mut conn, rows).await?;
            expected.insert("orders", BTreeMap::from([("c", rows)]));
        }
        Workload::W2 => {
            let steps = rows / 4;
            if steps == 0 {
                bail!("W2 needs at least 4 rows");
            }
            let mut writers = Vec::new();
            for c in 0..W2_CONNECTIONS {
                let (from, to) = (steps * c / W2_CONNECTIONS, steps * (c + 1) / W2_CONNECTIONS);
                let opts = stack.root_opts(Some(db));
                writers.push(tokio::spawn(async move {
                    w2_writer(opts, from + 1, to + 1).await
                }));
            }
            for w in writers {
                w.await.context("W2 writer")??;
            }
            for table in ["users", "orders"] {
                expected.insert(table, BTreeMap::from([("c", steps), ("u", steps)]));
            }
        }
        Workload::Snapshot | Workload::Incremental => {
            bail!("the snapshot workloads have no binlog range; see snapshot_bench and incremental_bench")
        }
        Workload::W3 => {
            conn.query_drop(
                "UPDATE orders SET qty = qty + 1, total_price = total_price + unit_price",
            )
            .await?;
            expected.insert("orders", BTreeMap::from([("u", rows)]));
        }
    }
    let prepare_time = began.elapsed();
    let end = point(&mut conn).await?;
    let logs: Vec<(String, u64)> = conn.query("SHOW BINARY LOGS").await?;
    conn.disconnect().await?;
    let first = logs
        .iter()
        .position(|(n, _)| *n == start.file)
        .context("start binlog file vanished")?;
    let last = logs
        .iter()
        .position(|(n, _)| *n == end.file)
        .context("end binlog file vanished")?;
    let files: Vec<String> = logs[first..=last].iter().map(|(n, _)| n.clone()).collect();
    let bytes = if first == last {
        end.pos - start.pos
    } else {
        logs[first].1 - start.pos
            + logs[first + 1..last].iter().map(|(_, s)| s).sum::<u64>()
            + end.pos
    };
    let rows = expected.values().flat_map(|ops| ops.values()).sum();
    Ok(Prepared {
        start,
        end,
        files,
        bytes,
        rows,
        expected,
        prepare_time,
    })
}

/// The current end of the binlog: file:pos and the GTID position there.
pub async fn point(conn: &mut Conn) -> anyhow::Result<BinlogPoint> {
    let (file, pos): (String, u64) = conn
        .query_first("SHOW MASTER STATUS")
        .await?
        .map(|row: mysql_async::Row| {
            (
                row.get(0).unwrap_or_default(),
                row.get(1).unwrap_or_default(),
            )
        })
        .context("SHOW MASTER STATUS is empty: is the binlog on?")?;
    let gtid: Option<String> = conn
        .exec_first("SELECT BINLOG_GTID_POS(?, ?)", (&file, pos))
        .await?;
    let gtid = gtid
        .unwrap_or_default()
        .parse()
        .map_err(anyhow::Error::msg)?;
    Ok(BinlogPoint { file, pos, gtid })
}

/// Inserts `rows` orders, [`INSERT_BATCH`] per statement (one transaction each).
pub async fn insert_orders(conn: &mut Conn, rows: u64) -> anyhow::Result<()> {
    let mut done = 0;
    while done < rows {
        let n = INSERT_BATCH.min(rows - done);
        let mut sql = String::with_capacity(80 * n as usize + 100);
        sql.push_str("INSERT INTO orders (product_id, qty, unit_price, total_price, user_id, order_id) VALUES ");
        for i in done..done + n {
            if i > done {
                sql.push(',');
            }
            let (qty, price) = (1 + i % 9, 100 + i % 997);
            sql.push_str(&format!(
                "('product-{:05}',{qty},{price},{},'user-{:07}','order-{i:010}')",
                i % 50_000,
                qty * price,
                i % 1_000_003
            ));
        }
        conn.query_drop(sql).await?;
        done += n;
    }
    Ok(())
}

/// Writes W2 steps `from..to`: per step four autocommit transactions on one id.
async fn w2_writer(opts: mysql_async::Opts, from: u64, to: u64) -> anyhow::Result<()> {
    let mut conn = Conn::new(opts).await?;
    let mut id = from;
    while id < to {
        let end = (id + W2_STEPS_PER_QUERY).min(to);
        let mut sql = String::new();
        for i in id..end {
            let (qty, price) = (1 + i % 9, 100 + i % 997);
            sql.push_str(&format!(
                "INSERT INTO users (id, user_id, pwd, name) VALUES ({i}, 'user-{i:07}', 'pw-{i}', 'name {i}');\
                 INSERT INTO orders (id, product_id, qty, unit_price, total_price, user_id, order_id) \
                 VALUES ({i}, 'product-{:05}', {qty}, {price}, {}, 'user-{i:07}', 'order-{i:010}');\
                 UPDATE users SET name = 'renamed {i}' WHERE id = {i};\
                 UPDATE orders SET qty = qty + 1, total_price = total_price + unit_price WHERE id = {i};",
                i % 50_000,
                qty * price
            ));
        }
        conn.query_drop(sql).await?;
        id = end;
    }
    conn.disconnect().await?;
    Ok(())
}
