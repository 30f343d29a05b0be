//! `cdc-bench --verify`: how fast `jdbc-sink verify` compares a table with its mirror.
//!
//! 1. A fresh source database gets `orders` (DDL of `sql/01-databases.sql`) with `--rows`
//!    (default 1,000,000) rows; a fresh mirror database gets an exact copy as `my_topic_orders`
//!    (`CREATE TABLE … LIKE`, `INSERT … SELECT`). Not timed.
//! 2. `jdbc-sink verify --tables orders --json` (default chunk size, no rate limit) is timed,
//!    with the CPU seconds MariaDB spends meanwhile.
//!
//! Target: at least 100,000 rows/s verified on this 2-core machine, and the result `equal`.

use std::path::Path;
use std::process::Command;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use mysql_async::prelude::Queryable;

use crate::cpu::{CpuMeter, CpuUse};
use cdc_testkit::Stack;

/// Rows verified per second, at least.
const TARGET_ROWS_PER_S: f64 = 100_000.0;

/// Runs the verify benchmark; whether the target was met.
pub async fn run(stack: &Stack, sink_bin: &Path, root: &Path, rows: u64, keep: bool) -> anyhow::Result<bool> {
    let secs = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
    let db = format!("bench_verify_{secs}");
    let mirror = format!("{db}_m");
    let mut conn = mysql_async::Conn::new(stack.root_opts(None)).await?;
    let ddl = std::fs::read_to_string(root.join("sql/01-databases.sql"))?;
    let create = ddl
        .split(';')
        .map(str::trim)
        .find(|s| s.starts_with("create table if not exists orders"))
        .context("no orders table in sql/01-databases.sql")?;
    println!("== verify: {rows} rows of orders against their mirror copy ({db})");
    let t0 = Instant::now();
    for stmt in [
        format!("CREATE DATABASE `{db}` CHARACTER SET utf8mb4"),
        format!("CREATE DATABASE `{mirror}` CHARACTER SET utf8mb4"),
        format!("USE `{db}`"),
        create.to_string(),
        format!(
            "INSERT INTO orders(product_id, qty, unit_price, total_price, user_id, order_id, created_at) \
             SELECT CONCAT('p', seq % 1000), seq % 97, seq % 1000, seq * 7 % 100000, CONCAT('user-', seq % 5000), \
             CONCAT('order-', seq), IF(seq % 10 = 0, NULL, '2025-01-02 03:04:05' + INTERVAL seq SECOND) FROM seq_1_to_{rows}"
        ),
        format!("CREATE TABLE `{mirror}`.my_topic_orders LIKE orders"),
        format!("INSERT INTO `{mirror}`.my_topic_orders SELECT * FROM orders"),
    ] {
        conn.query_drop(&stmt).await.with_context(|| stmt.chars().take(80).collect::<String>())?;
    }
    println!("   prepared in {:.1} s (not timed)", t0.elapsed().as_secs_f64());
    let config = std::env::temp_dir().join(format!("{db}-verify.toml"));
    std::fs::write(
        &config,
        format!(
            "topics = \"my_topic_orders\"\n\"connection.url\" = \"jdbc:mysql://{}:{}/{mirror}\"\n\
             \"connection.user\" = \"{}\"\n\"connection.password\" = \"{}\"\n[kafka]\n\"bootstrap.servers\" = \"{}\"\n",
            stack.mariadb_host, stack.mariadb_port, stack.root_user, stack.root_password, stack.kafka_bootstrap
        ),
    )?;
    let home = std::env::var_os("CDC_STACK_HOME").map(std::path::PathBuf::from).unwrap_or_else(|| root.join(".stack"));
    let meter = CpuMeter::new(&[], &home);
    let before = meter.snapshot();
    let started = Instant::now();
    let out = Command::new(sink_bin)
        .args(["verify", "--config"])
        .arg(&config)
        .args(["--source-url", &format!("jdbc:mysql://{}:{}/{db}", stack.mariadb_host, stack.mariadb_port)])
        .args(["--source-user", &stack.root_user, "--tables", "orders", "--topic-prefix", "my_topic_", "--json"])
        .env("CDC_VERIFY_SOURCE_PASSWORD", &stack.root_password)
        .output()
        .with_context(|| format!("running {}", sink_bin.display()))?;
    let elapsed = started.elapsed();
    let cpu = CpuUse::between(&before, &meter.snapshot());
    let _ = std::fs::remove_file(&config);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    if !keep {
        for d in [&db, &mirror] {
            conn.query_drop(format!("DROP DATABASE `{d}`")).await?;
        }
    }
    if report["result"] != "equal" {
        bail!(
            "verify did not find the copy equal (exit {:?}):\n{}{}",
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let verified = report["rows"].as_u64().unwrap_or(0);
    let rate = verified as f64 / elapsed.as_secs_f64().max(1e-9);
    let ok = verified == rows && rate >= TARGET_ROWS_PER_S;
    println!(
        "   jdbc-sink verify: {verified} rows in {:.2} s -> {rate:.0} rows/s (target ≥ {TARGET_ROWS_PER_S:.0}): {}",
        elapsed.as_secs_f64(),
        if ok { "ok" } else { "MISSED" }
    );
    println!("   CPU meanwhile: {}", cpu.describe());
    let line = serde_json::json!({
        "at": secs,
        "bench": "verify",
        "rows": verified,
        "seconds": elapsed.as_secs_f64(),
        "rows_per_s": rate,
        "cpu_s": cpu.processes.iter().map(|(n, s)| (n.clone(), serde_json::json!(s))).collect::<serde_json::Map<_, _>>(),
        "machine_busy": cpu.machine_busy,
    });
    let dir = root.join("target/cdc-bench");
    std::fs::create_dir_all(&dir)?;
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new().create(true).append(true).open(dir.join("results.jsonl"))?;
    writeln!(f, "{line}")?;
    Ok(ok)
}
