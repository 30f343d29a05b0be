//! A snapshot whose connection to MariaDB goes half-open midway: detected, reported, survived.
//!
//! The real cdc-source talks to MariaDB through the loopback TCP proxy (`cdc_tests::tcp_proxy`)
//! and copies `orders` ([`ROWS`] rows in chunks of [`CHUNK`], one Kafka transaction each). Once a
//! few chunks are committed the path goes half-open for 30 s: connections accepted and never
//! answered, the snapshot's own connection frozen without being closed. Within `read.timeout.ms`
//! plus a margin `/ready` must turn 503 and `/status` must name the wait; it must stay 503 while
//! the path is half-open. After the path heals the source must resume by itself after its last
//! committed chunk (in the same process), finish the snapshot, turn ready, and every row must be
//! on the topic exactly once as a snapshot read.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use cdc_tests::process::Service;
use cdc_tests::sink::free_port;
use cdc_tests::source::{payload, SourceSetup};
use cdc_tests::tcp_proxy::{Mode, TcpProxy};

const ROWS: i64 = 30_000;
const CHUNK: u32 = 100;
/// The test source's `read.timeout.ms` (from `SourceSetup::config`).
const READ_TIMEOUT: Duration = Duration::from_secs(5);
/// Beyond the read timeout: polling and a commit in flight.
const DETECT_MARGIN: Duration = Duration::from_secs(5);
/// The backoff reached after 30 s of failures (doubling from 0.2 s to `retry.backoff.max.ms`
/// 5 s), one connect timeout (2 s), and time to copy the rest.
const RECOVER: Duration = Duration::from_secs(5 + 2 + 60);

async fn get(port: u16, path: &str) -> (u16, String) {
    let client = reqwest::Client::builder().timeout(Duration::from_secs(2)).build().expect("client");
    match client.get(format!("http://127.0.0.1:{port}{path}")).send().await {
        Ok(r) => (r.status().as_u16(), r.text().await.unwrap_or_default()),
        Err(e) => (0, format!("GET {path} failed: {e}")),
    }
}

async fn status(port: u16) -> serde_json::Value {
    serde_json::from_str(&get(port, "/status").await.1).unwrap_or(serde_json::Value::Null)
}

/// Polls `/ready` until it answers `want`; how long that took, or a panic with the log.
async fn until_ready_is(port: u16, want: bool, within: Duration, what: &str, source: &Service) -> Duration {
    let start = Instant::now();
    while (get(port, "/ready").await.0 == 200) != want {
        if start.elapsed() > within {
            panic!(
                "{what}: /ready did not turn {} within {within:?}; /status {}\n{}",
                if want { 200 } else { 503 },
                status(port).await,
                source.log_text()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    start.elapsed()
}

fn chunks_copied(log: &str) -> usize {
    log.lines().filter(|l| l.contains("snapshot chunk copied") && l.contains("`orders`")).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_half_open_path_during_the_snapshot_is_detected_reported_and_survived() {
    let src = SourceSetup::new("snap_net").await;
    src.exec(&[&format!(
        "INSERT INTO orders(product_id, qty, unit_price, total_price, user_id, order_id) \
         SELECT CONCAT('p', seq), seq % 7, 3, 3 * (seq % 7), CONCAT('u', seq % 100), CONCAT('o', seq) FROM seq_1_to_{ROWS}"
    )])
    .await;
    let stack = &src.stack;
    let path = TcpProxy::start(&format!("{}:{}", stack.mariadb_host, stack.mariadb_port)).await;
    let port = free_port();
    let config = src
        .config("json", &format!("\"snapshot.chunk.size\" = {CHUNK}\n\"connect.timeout.ms\" = 2000"))
        .replace("\"http.listen\" = \"127.0.0.1:0\"", &format!("\"http.listen\" = \"127.0.0.1:{port}\""));
    assert!(config.contains("\"read.timeout.ms\" = 5000"), "{config}");
    let mut source = src.start(&path.rewrite(&config, &stack.mariadb_host, stack.mariadb_port));

    // Half-open once a few chunks are committed, while most of the table is still to copy.
    let deadline = Instant::now() + Duration::from_secs(120);
    while chunks_copied(&source.log_text()) < 5 {
        assert!(source.exited().is_none() && Instant::now() < deadline, "no chunk copied:\n{}", source.log_text());
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    path.set(Mode::HalfOpen);
    let frozen = Instant::now();
    let copied_before = chunks_copied(&source.log_text());
    assert!(!source.log_text().contains("snapshot complete"), "the snapshot finished before the path froze");

    let down = until_ready_is(port, false, READ_TIMEOUT + DETECT_MARGIN, "source, path half-open", &source).await;
    let doc = status(port).await;
    let why = format!("{} {}", doc["stalled"], doc["last_error"]);
    assert!(why.contains("read.timeout.ms") || why.contains("connect.timeout.ms"), "/status names the wait: {doc}");
    tokio::time::sleep(Duration::from_secs(20).saturating_sub(frozen.elapsed())).await;
    let doc = status(port).await;
    assert_ne!(get(port, "/ready").await.0, 200, "still not ready while half-open: {doc}");
    assert!(doc["last_error"].as_str().is_some_and(|e| e.contains("timeout.ms")), "/status keeps naming the wait: {doc}");
    let frozen_chunks = chunks_copied(&source.log_text());
    assert!(frozen_chunks <= copied_before + 1, "no chunk is copied while half-open ({copied_before} → {frozen_chunks})");

    tokio::time::sleep(Duration::from_secs(30).saturating_sub(frozen.elapsed())).await;
    path.set(Mode::Forward);
    let healed = Instant::now();
    source.wait_for_log("snapshot complete", RECOVER);
    let back = until_ready_is(port, true, RECOVER.saturating_sub(healed.elapsed()), "source after the path healed", &source).await;
    println!("half-open 30 s during the snapshot: not ready after {down:?}; ready again {:?} after the path healed", healed.elapsed().max(back));
    let log = source.log_text();
    assert!(log.contains("snapshot interrupted; resuming after its last committed chunk"), "{log}");
    assert!(source.exited().is_none(), "the source resumed in the same process:\n{log}");
    assert_eq!(status(port).await["state"], "streaming");

    // Every row exactly once as a snapshot read, nothing else.
    let records = src.read_for("orders", usize::MAX, Duration::from_secs(8));
    let mut reads: HashMap<i64, usize> = HashMap::new();
    for r in &records {
        let id = payload(r.key.as_deref()).and_then(|k| k["id"].as_i64()).expect("key with an id");
        assert_eq!(r.header("cdc.op"), "r", "only snapshot reads: id {id}");
        *reads.entry(id).or_default() += 1;
    }
    let twice: Vec<i64> = reads.iter().filter(|(_, n)| **n > 1).map(|(id, _)| *id).collect();
    assert!(twice.is_empty(), "{} ids copied twice, e.g. {:?}", twice.len(), &twice[..twice.len().min(10)]);
    let missing: Vec<i64> = (1..=ROWS).filter(|id| !reads.contains_key(id)).collect();
    assert!(missing.is_empty(), "{} ids never copied, e.g. {:?}", missing.len(), &missing[..missing.len().min(10)]);
    source.terminate(Duration::from_secs(20));
}
