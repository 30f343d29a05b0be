//! A snapshot killed midway resumes after its last committed chunk and leaves no phantom rows.
//!
//! The real cdc-source and jdbc-sink, deletes enabled end to end, `orders` (copied first) and a
//! larger `users` table in chunks of 100, and writers changing both tables all along. The source
//! is killed (SIGKILL) while it copies `users`; then 100 rows it already copied are deleted and
//! 100 others updated. Restarted, it must say it resumes (not start over), the mirror must end
//! equal to the source — a restart that streams from its new read view never deletes those 100
//! rows — and a `read_committed` reader must see every original row exactly once as `r`: a
//! committed chunk is never copied again, and an aborted one is invisible.
//!
//! A second test resumes a table whose key is a TIMESTAMP(6) and a BINARY(4): the stored last
//! key must bind again to the same bound, so every row is still copied exactly once.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use cdc_tests::pipeline::{logs, seed, PipelineSetup, Workload, WriterPlan, ORDERS_COLUMNS, USERS_COLUMNS};
use cdc_tests::process::Service;
use cdc_tests::source::{payload, SourceSetup};

const USERS: usize = 6000;
const ORDERS: usize = 500;
const EXTRA: &str = "\"delete.enabled\" = true\n\"snapshot.chunk.size\" = 100";

/// `(id, op)` of every committed record of `topic`'s table, in topic order (one partition).
fn ops(p: &PipelineSetup, table: &str) -> Vec<(i64, String)> {
    p.source
        .read_for(table, usize::MAX, Duration::from_secs(5))
        .iter()
        .map(|r| {
            let id = payload(r.key.as_deref()).and_then(|k| k["id"].as_i64()).expect("key with an id");
            (id, r.header("cdc.op").to_string())
        })
        .collect()
}

/// Waits until `service` logged `chunks` "snapshot chunk copied" lines of `table`, then kills it
/// (SIGKILL) and checks the snapshot had not finished.
fn kill_after_chunks(service: &mut Service, table: &str, chunks: usize) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let log = service.log_text();
        let copied = log.lines().filter(|l| l.contains("snapshot chunk copied") && l.contains(&format!("`{table}`"))).count();
        if copied >= chunks {
            break;
        }
        assert!(service.exited().is_none() && Instant::now() < deadline, "no {table} chunk copied:\n{log}");
        std::thread::sleep(Duration::from_millis(10));
    }
    service.kill();
    let log = service.log_text();
    assert!(!log.contains("snapshot complete"), "the kill came too late, the snapshot had finished:\n{log}");
}

fn http_addr(log: &str) -> String {
    let at = log.find("http=").expect("http address in the log") + 5;
    log[at..].split_whitespace().next().expect("address").trim_end_matches(|c: char| !c.is_ascii_digit()).to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_snapshot_resumes_and_replays_deletes_of_copied_rows() {
    let p = PipelineSetup::new("snap_resume").await;
    for chunk in (0..USERS).collect::<Vec<_>>().chunks(1000) {
        let rows: Vec<String> = chunk.iter().map(|i| format!("('u{i}', 'p{i}', 'name {i}')")).collect();
        p.exec(&[&format!("INSERT INTO users(user_id, pwd, name) VALUES {}", rows.join(", "))]).await;
    }
    let rows: Vec<String> = (0..ORDERS).map(|i| format!("('prod{i}', {i}, 1, 1, 'u{i}', 'o{i}')")).collect();
    p.exec(&[&format!(
        "INSERT INTO orders(product_id, qty, unit_price, total_price, user_id, order_id) VALUES {}",
        rows.join(", ")
    )])
    .await;
    let sink = p.start_sink("a", "\"delete.enabled\" = true", &[]);
    let writers = Workload::start(
        p.stack(),
        &p.source.database,
        2,
        WriterPlan { seed: seed(0x5eed_5a9e), statements: u64::MAX, pause: Duration::from_millis(20) },
    );

    // Kill the source once a few chunks of `users` are committed.
    let mut first = p.start_source("json", EXTRA);
    kill_after_chunks(&mut first, "users", 5);

    // Delete 100 rows the first attempt copied (and committed), update 100 others.
    let copied: Vec<i64> = ops(&p, "users").into_iter().filter(|(_, op)| op == "r").map(|(id, _)| id).collect();
    assert!(copied.len() >= 400 && copied.len() < USERS, "{} users rows copied before the kill", copied.len());
    let ids = |from: usize| copied[from..from + 100].iter().map(i64::to_string).collect::<Vec<_>>().join(",");
    p.exec(&[
        &format!("DELETE FROM users WHERE id IN ({})", ids(0)),
        &format!("UPDATE users SET name = 'changed' WHERE id IN ({})", ids(200)),
        // A few rows of the table done before the kill change too.
        "DELETE FROM orders WHERE id <= 10",
        "UPDATE orders SET qty = qty + 1000 WHERE id BETWEEN 11 AND 20",
    ])
    .await;

    let mut second = p.start_source("json", EXTRA);
    second.wait_for_log("snapshot complete", Duration::from_secs(120));
    let report = writers.stop().await;
    assert!(report.commits > 0, "the writers wrote during the snapshot: {report:?}");
    p.wait_mirror_equals_source(
        &[("users", USERS_COLUMNS), ("orders", ORDERS_COLUMNS)],
        Duration::from_secs(120),
        &[&second, &sink],
    )
    .await;

    let log = second.log_text();
    assert!(log.contains("resuming the unfinished snapshot"), "the restart resumes:\n{log}");
    assert!(log.contains("continuing the table after its last copied key"), "users continues:\n{log}");
    assert!(
        !log.lines().any(|l| l.contains("snapshot chunk copied") && l.contains("orders")),
        "orders, done before the kill, is not copied again:\n{}",
        logs(&[&second])
    );

    // Every original row exactly once as `r` across both attempts.
    for (table, rows) in [("users", USERS), ("orders", ORDERS)] {
        let mut reads: HashMap<i64, usize> = HashMap::new();
        for (id, op) in ops(&p, table) {
            if op == "r" {
                *reads.entry(id).or_default() += 1;
            }
        }
        let twice: Vec<_> = reads.iter().filter(|(_, n)| **n > 1).map(|(id, _)| *id).collect();
        assert!(twice.is_empty(), "{table}: {} keys copied twice, e.g. {:?}", twice.len(), &twice[..twice.len().min(10)]);
        let missing: Vec<i64> = (1..=rows as i64).filter(|id| !reads.contains_key(id)).collect();
        assert!(missing.is_empty(), "{table}: original rows never copied: {missing:?}");
    }
    // The deletes of copied rows reached the topic as tombstones.
    let users = ops(&p, "users");
    let deleted: Vec<i64> = copied[..100].to_vec();
    assert!(deleted.iter().all(|id| users.contains(&(*id, "d".to_string()))), "a tombstone for each deleted row");

    // /status and the metrics cover the resumed snapshot.
    let base = format!("http://{}", http_addr(&log));
    let status: serde_json::Value = reqwest::get(format!("{base}/status")).await.expect("status").json().await.expect("json");
    let progress = |t: &str| status["snapshot"].as_array().and_then(|a| a.iter().find(|s| s["table"] == t).cloned());
    let orders = progress("orders").unwrap_or_else(|| panic!("orders in /status: {status}"));
    // The writers' rows count too.
    assert_eq!(orders["done"], true, "{status}");
    assert!(orders["rows_done"].as_u64() >= Some(ORDERS as u64), "orders, done before the kill, keeps its count: {status}");
    let users = progress("users").unwrap_or_else(|| panic!("users in /status: {status}"));
    assert_eq!(users["done"], true, "{status}");
    assert!(users["rows_done"].as_u64() >= Some(USERS as u64), "users rows_done counts both attempts: {status}");
    let metrics = reqwest::get(format!("{base}/metrics")).await.expect("metrics").text().await.expect("text");
    let resumed_rows = users["rows_done"].as_u64().unwrap_or(0) - copied.len() as u64;
    let line = format!("cdc_source_snapshot_rows_total{{table=\"users\"}} {resumed_rows}");
    assert!(metrics.contains(&line), "/metrics lacks {line}:\n{metrics}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_binds_a_temporal_and_binary_key_again() {
    const ROWS: usize = 2000;
    let src = SourceSetup::new("snap_resume_keys").await;
    let rows: Vec<String> = (0..ROWS)
        .map(|i| format!("(TIMESTAMP('2024-03-31 00:00:00') + INTERVAL {} MINUTE + INTERVAL {i} MICROSECOND, UNHEX(CONCAT('FF', LPAD(HEX({}), 6, '0'))), {i})", i / 7, (i * 37) % 7))
        .collect();
    src.exec(&[
        "SET SESSION time_zone = '+05:30'",
        "CREATE TABLE k_ts_bin (ts TIMESTAMP(6) NOT NULL, b BINARY(4) NOT NULL, payload INT, PRIMARY KEY (ts, b))",
        &format!("INSERT INTO k_ts_bin (ts, b, payload) VALUES {}", rows.join(", ")),
    ])
    .await;
    let config = src.config("json", "\"table.include.list\" = \"k_ts_bin\"\n\"delete.enabled\" = true\n\"snapshot.chunk.size\" = 100");
    let mut first = src.start(&config);
    kill_after_chunks(&mut first, "k_ts_bin", 4);
    let copied = src.read_for("k_ts_bin", usize::MAX, Duration::from_secs(5));
    assert!(copied.len() >= 400 && copied.len() < ROWS, "{} rows copied before the kill", copied.len());
    src.exec(&["DELETE FROM k_ts_bin WHERE payload < 50"]).await;
    // The progress stored with the last committed chunk holds the key as the server sent it.
    let offsets = cdc_tests::kafka::read_topic(&src.stack.kafka_bootstrap, &src.offsets_topic, usize::MAX, Duration::from_secs(3));
    let stored: serde_json::Value = serde_json::from_slice(offsets.last().and_then(|r| r.value.as_deref()).expect("an offset record")).expect("json");
    let last_key = &stored["snapshot"]["current"]["last_key"];
    assert!(last_key[0]["date"].is_array() && last_key[1]["hex"].as_str().is_some_and(|h| h.starts_with("ff")), "{stored}");

    let mut second = src.start(&config);
    second.wait_for_log("snapshot complete", Duration::from_secs(120));
    let log = second.log_text();
    assert!(log.contains("continuing the table after its last copied key"), "the restart resumes:\n{log}");
    let records = src.read_for("k_ts_bin", usize::MAX, Duration::from_secs(5));
    let mut reads: HashMap<String, usize> = HashMap::new();
    let mut payloads = std::collections::HashSet::new();
    for r in records.iter().filter(|r| r.header("cdc.op") == "r") {
        *reads.entry(payload(r.key.as_deref()).expect("key").to_string()).or_default() += 1;
        payloads.insert(payload(r.value.as_deref()).and_then(|v| v["payload"].as_i64()).expect("payload"));
    }
    assert!(reads.values().all(|n| *n == 1), "no row copied twice: {reads:?}");
    assert_eq!(payloads, (0..ROWS as i64).collect(), "every row copied once across both attempts");
    let tombstones = records.iter().filter(|r| r.header("cdc.op") == "d").count();
    assert_eq!(tombstones, 50, "the rows deleted after they were copied get their tombstones");
    drop(second);
}
