//! `jdbc-sink verify` against both services running, with writers going on:
//! - a healthy pipeline verifies equal (0 mismatches, exit 0) in 3 consecutive runs;
//! - after the mirror is corrupted behind the sink's back on rows the writers do not touch
//!   (17 rows updated, 5 deleted, 3 foreign rows inserted), verify reports exactly those rows,
//!   each inside its reported key range, and exits 1; `verify --repair` then has the source
//!   re-copy those keys (tombstones for the foreign rows) and the next verify is clean;
//! - a table without a primary key cannot be verified: exit 2 naming it.

use std::process::Command;
use std::time::{Duration, Instant};

use cdc_tests::pipeline::{seed, PipelineSetup, Workload, WriterPlan, ORDERS_COLUMNS, USERS_COLUMNS};
use cdc_tests::process::binary;
use cdc_tests::sink::free_port;
use mysql_async::prelude::Queryable;
use serde_json::Value;

/// Rows of each table written before the writers start; the writers touch only rows they insert.
const SEEDED: u64 = 6_000;

/// Runs `jdbc-sink verify --json` for `p` with `extra` arguments: (exit code, report, output).
fn verify(p: &PipelineSetup, extra: &[&str]) -> (i32, Value, String) {
    let path = std::env::temp_dir().join(format!("{}-verify.toml", p.mirror));
    std::fs::write(&path, p.sink_config(free_port(), "")).expect("write config");
    let started = Instant::now();
    let out = Command::new(binary("jdbc-sink"))
        .arg("verify")
        .arg("--config")
        .arg(&path)
        .args(["--source-url", &p.stack().root_url(Some(&p.source.database))])
        .args(["--topic-prefix", &p.source.prefix])
        .args(extra)
        .output()
        .expect("run jdbc-sink verify");
    let _ = std::fs::remove_file(&path);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let text = format!("{stdout}{}", String::from_utf8_lossy(&out.stderr));
    let report = serde_json::from_str(&stdout).unwrap_or(Value::Null);
    println!("verify {extra:?}: exit {:?} in {:?}", out.status.code(), started.elapsed());
    (out.status.code().unwrap_or(-1), report, text)
}

fn table<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["tables"]
        .as_array()
        .and_then(|ts| ts.iter().find(|t| t["table"] == name))
        .unwrap_or_else(|| panic!("no table {name} in {report:#}"))
}

async fn seed_rows(p: &PipelineSetup) {
    p.exec(&[
        &format!("INSERT INTO users(user_id, pwd, name, created_at) SELECT CONCAT('u', seq), seq, IF(seq % 7 = 0, NULL, IF(seq % 11 = 0, '', CONCAT('n', seq))), '2024-01-02 03:04:05' FROM seq_1_to_{SEEDED}"),
        &format!("INSERT INTO orders(product_id, qty, unit_price, total_price, user_id, order_id, created_at) SELECT CONCAT('p', seq), seq, seq % 100, seq * 3, CONCAT('u', seq), CONCAT('o', seq), IF(seq % 5 = 0, NULL, '2025-06-07 08:09:10') FROM seq_1_to_{SEEDED}"),
    ])
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_finds_exactly_the_corrupted_rows_while_writes_go_on() {
    let p = PipelineSetup::new("verify").await;
    let mut source = p.start_source("avro", "\"delete.enabled\" = true");
    source.wait_for_log("streaming the binlog", Duration::from_secs(60));
    let sink = p.start_sink("a", "\"delete.enabled\" = true", &[]);
    seed_rows(&p).await;
    p.wait_mirror_equals_source(&[("users", USERS_COLUMNS), ("orders", ORDERS_COLUMNS)], Duration::from_secs(120), &[&source, &sink])
        .await;
    let seed = seed(20_261_201);
    let plan = WriterPlan { seed, statements: u64::MAX, pause: Duration::from_millis(5) };
    let writers = Workload::start(p.stack(), &p.source.database, 2, plan);
    tokio::time::sleep(Duration::from_secs(2)).await;

    // A loaded machine may hold the sink back for seconds: the rows in flight need that long to agree.
    let args = ["--json", "--chunk-rows", "1000", "--settle-secs", "60"];
    for run in 1..=3 {
        // The third run is held to 5,000 source rows/s.
        let limited = [&args[..], &["--rate-limit", "5000"]].concat();
        let (code, report, text) = verify(&p, if run == 3 { &limited } else { &args });
        if run == 3 {
            let (rows, ms) = (report["rows"].as_u64().unwrap_or(0), report["elapsed_ms"].as_u64().unwrap_or(0));
            assert!(ms * 5 >= rows * 9 / 10, "--rate-limit 5000: {rows} rows in {ms} ms:\n{text}");
        }
        for t in ["users", "orders"] {
            let t = table(&report, t);
            println!("  {}: rows {}, chunks {}, re-checked {}, rows agreed later {}", t["table"], t["rows"], t["chunks"], t["chunks_rechecked"], t["rows_settled"]);
        }
        assert_eq!(code, 0, "run {run}, seed {seed}: a healthy pipeline must verify equal:\n{text}");
        assert_eq!(report["mismatching_rows"], 0, "{text}");
        for t in ["users", "orders"] {
            let rows = table(&report, t)["rows"].as_u64().unwrap_or(0);
            assert!(rows >= SEEDED, "run {run}: {t} compared only {rows} rows:\n{text}");
            assert!(table(&report, t)["chunks"].as_u64().unwrap_or(0) >= 6, "{text}");
        }
    }

    // Behind the sink's back, on seeded rows (ids 1..=SEEDED) the writers never touch.
    let updated: Vec<u64> = vec![1, 2, 500, 999, 1000, 1001, 1500, 2000, 2001, 2999, 3000, 3333, 4000, 4400, 5000, 5999, 6000];
    let deleted: Vec<u64> = vec![7, 1002, 2500, 4001, 5998];
    let foreign: Vec<u64> = vec![900_001, 900_002, 900_003];
    assert_eq!((updated.len(), deleted.len(), foreign.len()), (17, 5, 3));
    let join = |ids: &[u64]| ids.iter().map(u64::to_string).collect::<Vec<_>>().join(",");
    let mut m = p.mirror_stack().root_conn(Some(&p.mirror)).await;
    let users = format!("`{}`", p.topic("users"));
    // NULL -> '' and '' -> NULL are corruptions too, as is a changed time.
    m.query_drop(format!(
        "UPDATE {users} SET name = CASE WHEN name IS NULL THEN '' WHEN name = '' THEN NULL ELSE CONCAT(name, 'x') END, \
         created_at = IF(id = 1000, created_at + INTERVAL 1 SECOND, created_at) WHERE id IN ({})",
        join(&updated)
    ))
    .await
    .expect("corrupt");
    m.query_drop(format!("DELETE FROM {users} WHERE id IN ({})", join(&deleted))).await.expect("delete");
    for id in &foreign {
        m.query_drop(format!("INSERT INTO {users}(id, user_id, pwd, name) VALUES ({id}, 'foreign', '0', 'foreign')")).await.expect("insert");
    }
    drop(m);

    let (code, report, text) = verify(&p, &["--json", "--chunk-rows", "1000", "--settle-secs", "5"]);
    assert_eq!(code, 1, "seed {seed}: a corrupted mirror must be reported:\n{text}");
    let u = table(&report, "users");
    assert_eq!(u["mismatching_rows"], 25, "{text}");
    assert_eq!(table(&report, "orders")["mismatching_rows"], 0, "{text}");
    let mut keys: Vec<u64> = Vec::new();
    let (mut different, mut missing, mut extra) = (0, 0, 0);
    for range in u["mismatches"].as_array().expect("mismatches") {
        let bound = |b: &Value| b.as_str().map(|s| s.parse::<u64>().expect("integer key"));
        let (after, up_to) = (bound(&range["after"]), bound(&range["up_to"]));
        let in_range: Vec<u64> = range["keys"].as_array().expect("keys").iter().map(|k| k.as_str().unwrap_or("").parse().expect("key")).collect();
        assert_eq!(range["rows"].as_u64(), Some(in_range.len() as u64), "{range}");
        for k in &in_range {
            assert!(after.is_none_or(|a| *k > a) && up_to.is_none_or(|h| *k <= h), "key {k} outside its range {range}");
        }
        keys.extend(in_range);
        different += range["different"].as_u64().unwrap_or(0);
        missing += range["missing_in_mirror"].as_u64().unwrap_or(0);
        extra += range["only_in_mirror"].as_u64().unwrap_or(0);
    }
    keys.sort_unstable();
    let mut want: Vec<u64> = updated.iter().chain(&deleted).chain(&foreign).copied().collect();
    want.sort_unstable();
    assert_eq!(keys, want, "{text}");
    assert_eq!((different, missing, extra), (17, 5, 3), "{text}");

    // The text report names the ranges too.
    let (code, _, text) = verify(&p, &["--tables", "users", "--chunk-rows", "1000", "--settle-secs", "5"]);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("MISMATCH users") && text.contains("keys (1000, 2000]: 4 rows (1 missing in mirror, 0 only in mirror, 3 different): 1001, 1002, 1500, 2000"), "{text}");

    // --repair: each range becomes an incremental snapshot of its keys at the source (a row only
    // in the mirror gets a tombstone), then the table is verified again, writes still going on.
    let signal_url = format!("http://{}", cdc_tests::process::http_addr(&source.log_text()));
    let (code, report, text) = verify(&p, &["--json", "--tables", "users", "--chunk-rows", "1000", "--settle-secs", "30", "--repair", "--signal-url", &signal_url]);
    assert_eq!(code, 0, "seed {seed}: --repair must leave the mirror equal:\n{text}");
    assert_eq!(report["before"]["mismatching_rows"], 25, "{text}");
    assert_eq!(report["repair"][0]["keys"], 25, "{text}");
    assert_eq!(report["after"]["result"], "equal", "{text}");
    assert_eq!(report["after"]["mismatching_rows"], 0, "{text}");
    let (code, _, text) = verify(&p, &["--json", "--chunk-rows", "1000", "--settle-secs", "60"]);
    assert_eq!(code, 0, "the next verify is clean:\n{text}");
    let log = source.log_text();
    assert!(log.contains("keys asked for that the table does not hold get tombstones"), "the foreign rows were removed by tombstones:\n{log}");
    let report = writers.stop().await;
    println!("seed {seed}: writers {report:?}");
    assert!(report.commits > 10, "the writers must have written during the runs: {report:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_table_without_a_primary_key_cannot_be_verified() {
    let p = PipelineSetup::new("verify_nokey").await;
    p.exec(&["CREATE TABLE nokey (a int, b varchar(10))", "INSERT INTO nokey VALUES (1, 'x')"]).await;
    let (code, report, text) = verify(&p, &["--json", "--tables", "nokey"]);
    assert_eq!(code, 2, "{text}");
    assert_eq!(report["result"], "error", "{text}");
    let error = table(&report, "nokey")["error"].as_str().unwrap_or("").to_string();
    assert!(error.contains("`nokey` has no primary key"), "{text}");
    let (code, _, text) = verify(&p, &["--tables", "nokey"]);
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("ERROR    nokey: could not verify:") && text.contains("has no primary key"), "{text}");
    // A source that cannot be reached: exit 2, named, the password not shown.
    let path = std::env::temp_dir().join(format!("{}-verify-down.toml", p.mirror));
    std::fs::write(&path, p.sink_config(free_port(), "")).expect("write config");
    let out = Command::new(binary("jdbc-sink"))
        .args(["verify", "--config"])
        .arg(&path)
        .args(["--source-url", &format!("jdbc:mysql://root:hidden-pw@127.0.0.1:{}/{}", free_port(), p.source.database)])
        .output()
        .expect("run jdbc-sink verify");
    let _ = std::fs::remove_file(&path);
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(text.contains("cannot connect to the source database") && text.contains("check --source-url") && !text.contains("hidden-pw"), "{text}");
    // --repair needs a way to reach the source: refused, naming both.
    let (code, _, text) = verify(&p, &["--repair"]);
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("--signal-url") && text.contains("--signal-table"), "{text}");
}

/// Source and mirror columns of other types (wider, another precision, scale or character set,
/// text for varchar) holding the same values compare equal; a composite key chunks correctly; one
/// changed value, a NULL turned into '' and a foreign row are found.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn values_compare_alike_across_column_types_with_a_composite_key() {
    let p = PipelineSetup::new("verify_types").await;
    p.exec(&[
        "DROP TABLE orders",
        "CREATE TABLE orders (region varchar(10) CHARACTER SET latin1 NOT NULL, n int NOT NULL, \
         amount decimal(10,2), at datetime, t time(3), flag bit(1), bits varbinary(4), f float, \
         kind enum('a','b'), doc json, note text, PRIMARY KEY (region, n))",
        "INSERT INTO orders SELECT ELT(1 + seq % 3, 'north', 'süd', 'east'), seq, seq / 7, \
         '2024-05-06 07:08:09' + INTERVAL seq MINUTE, SEC_TO_TIME(seq) + INTERVAL 0.125 SECOND, seq % 2, \
         UNHEX(HEX(seq)), seq / 3, IF(seq % 2, 'a', 'b'), JSON_OBJECT('k', seq), \
         CASE seq % 4 WHEN 0 THEN NULL WHEN 1 THEN '' ELSE CONCAT('naïve ', seq) END FROM seq_1_to_2500",
    ])
    .await;
    let mirror = p.topic("orders");
    let mut m = p.mirror_stack().root_conn(Some(&p.mirror)).await;
    m.query_drop(format!(
        "CREATE TABLE `{mirror}` (region varchar(255) CHARACTER SET utf8mb4 NOT NULL, n bigint NOT NULL, \
         amount decimal(20,6), at datetime(6), t time(6), flag bit(8), bits varbinary(255), f float, \
         kind enum('a','b'), doc longtext, note mediumtext, extra int, PRIMARY KEY (region, n))"
    ))
    .await
    .expect("mirror table");
    m.query_drop(format!("INSERT INTO `{mirror}` (region, n, amount, at, t, flag, bits, f, kind, doc, note) SELECT * FROM `{}`.orders", p.source.database))
        .await
        .expect("copy");
    let args = ["--json", "--tables", "orders", "--chunk-rows", "300", "--settle-secs", "1"];
    let (code, report, text) = verify(&p, &args);
    assert_eq!(code, 0, "equal values in other column types must compare equal:\n{text}");
    let t = table(&report, "orders");
    assert_eq!((t["rows"].as_u64(), t["chunks"].as_u64()), (Some(2500), Some(9)), "{text}");
    m.query_drop(format!("UPDATE `{mirror}` SET amount = amount + 0.000001 WHERE region = 'north' AND n = 3")).await.expect("corrupt");
    m.query_drop(format!("UPDATE `{mirror}` SET note = '' WHERE region = 'süd' AND n = 4")).await.expect("corrupt");
    m.query_drop(format!("INSERT INTO `{mirror}` (region, n) VALUES ('zzz', 1)")).await.expect("foreign");
    let (code, report, text) = verify(&p, &args);
    assert_eq!(code, 1, "{text}");
    let t = table(&report, "orders");
    let mut keys: Vec<String> = t["mismatches"].as_array().expect("mismatches").iter().flat_map(|r| r["keys"].as_array().cloned().unwrap_or_default()).map(|k| k.as_str().unwrap_or("").to_string()).collect();
    keys.sort();
    assert_eq!(keys, ["north#3", "süd#4", "zzz#1"], "{text}");
    // Past --recheck-rows-max the differing rows are reported as first read, and counted so.
    let (code, report, text) = verify(&p, &[&args[..], &["--recheck-rows-max", "1"]].concat());
    assert_eq!(code, 1, "{text}");
    let t = table(&report, "orders");
    assert_eq!((t["mismatching_rows"].as_u64(), t["rows_not_rechecked"].as_u64()), (Some(3), Some(2)), "{text}");
}
