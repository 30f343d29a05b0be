//! Both services behind a faulty network path to MariaDB: each talks to MariaDB through its own
//! loopback TCP proxy (`cdc_tests::tcp_proxy`) while a writer keeps changing the source tables
//! directly.
//!
//! 1. A full cut of 10 s: both services notice, say so on `/ready` (503), and recover by
//!    themselves once the path is back.
//! 2. A half-open path of 30 s (connections accepted and never answered, existing ones frozen
//!    without being closed), first for the sink, a few seconds later for the source: both must
//!    turn `/ready` 503 within twice the heartbeat plus a margin, `/status` must name the stall,
//!    and their lag (`seconds_behind_source`, the sink's `lag_seconds` and both gauges) must keep
//!    growing with the clock while nothing moves. After the path heals both recover by themselves
//!    within twice the heartbeat plus their backoff.
//!
//! Afterwards the mirror equals the source over all columns, and each row change is on the topics
//! exactly once: per row at most one insert and one delete, and the versions the writer gives
//! every write strictly increase (a change published twice would repeat one).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use cdc_tests::kafka::Consumed;
use cdc_tests::pipeline::{alive, logs, PipelineSetup, Workload, WriterPlan, ORDERS_COLUMNS, USERS_COLUMNS};
use cdc_tests::process::Service;
use cdc_tests::sink::free_port;
use cdc_tests::source::payload;
use cdc_tests::tcp_proxy::{Mode, TcpProxy};

/// The test source's `heartbeat.interval.ms` (its `read.timeout.ms` is left at twice that).
const HEARTBEAT: Duration = Duration::from_secs(1);
/// Beyond twice the heartbeat: the sink's ping interval plus its connect timeout, and polling.
const DETECT_MARGIN: Duration = Duration::from_secs(5);
/// Twice the heartbeat, plus the backoff both services reach after 30 s of failures (about 13 s,
/// doubling from 0.2 s and 50 ms), one more connect timeout (2 s) and 5 s to spare.
const RECOVER: Duration = Duration::from_secs(2 + 13 + 2 + 5);

const SOURCE_EXTRA: &str = "\"delete.enabled\" = true\n\"connect.timeout.ms\" = 2000";
const SINK_EXTRA: &str = "\"delete.enabled\" = true\n\"connect.timeout.ms\" = 2000\n\"statement.timeout.ms\" = 3000\n\"connection.ping.interval.ms\" = 1000";

struct Endpoint {
    base: String,
}

impl Endpoint {
    async fn get(&self, path: &str) -> (u16, String) {
        let client = reqwest::Client::builder().timeout(Duration::from_secs(2)).build().expect("client");
        match client.get(format!("{}{path}", self.base)).send().await {
            Ok(r) => (r.status().as_u16(), r.text().await.unwrap_or_default()),
            Err(e) => (0, format!("GET {path} failed: {e}")),
        }
    }

    async fn ready(&self) -> bool {
        self.get("/ready").await.0 == 200
    }

    async fn status(&self) -> serde_json::Value {
        serde_json::from_str(&self.get("/status").await.1).unwrap_or(serde_json::Value::Null)
    }

    /// The value of an unlabelled gauge on `/metrics`.
    async fn gauge(&self, name: &str) -> f64 {
        let page = self.get("/metrics").await.1;
        page.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
            .unwrap_or(f64::NAN)
    }
}

/// Polls `/ready` until it answers `want`; how long that took, or a panic with the logs.
async fn until_ready_is(e: &Endpoint, want: bool, within: Duration, what: &str, services: &[&Service]) -> Duration {
    let start = Instant::now();
    while e.ready().await != want {
        if start.elapsed() > within {
            panic!("{what}: /ready did not turn {} within {within:?}; /status {}\n{}", if want { 200 } else { 503 }, e.status().await, logs(services));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    start.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_open_and_cut_paths_to_mariadb_are_detected_reported_and_survived() {
    let p = PipelineSetup::new("pl_net").await;
    let stack = p.stack().clone();
    let upstream = format!("{}:{}", stack.mariadb_host, stack.mariadb_port);
    let (source_path, sink_path) = (TcpProxy::start(&upstream).await, TcpProxy::start(&upstream).await);
    let (source_port, sink_port) = (free_port(), free_port());
    let config = p
        .source
        .config("json", SOURCE_EXTRA)
        .replace("\"read.timeout.ms\" = 5000\n", "")
        .replace("\"http.listen\" = \"127.0.0.1:0\"", &format!("\"http.listen\" = \"127.0.0.1:{source_port}\""));
    assert!(config.contains("\"heartbeat.interval.ms\" = 1000"), "{config}");
    let mut source = p.source.start(&source_path.rewrite(&config, &stack.mariadb_host, stack.mariadb_port));
    source.wait_for_log("streaming the binlog", Duration::from_secs(60));
    let sink_config = sink_path.rewrite(&p.sink_config(sink_port, SINK_EXTRA), &stack.mariadb_host, stack.mariadb_port);
    let sink = Service::start("jdbc-sink", &format!("{}-net", p.mirror), &sink_config, "toml", &[], &[]);
    let src = Endpoint { base: format!("http://127.0.0.1:{source_port}") };
    let snk = Endpoint { base: format!("http://127.0.0.1:{sink_port}") };
    let services = [&source, &sink];

    let plan = WriterPlan { seed: cdc_tests::pipeline::seed(13), statements: u64::MAX, pause: Duration::from_millis(50) };
    let workload = Workload::start(&stack, &p.source.database, 1, plan);
    until_ready_is(&src, true, Duration::from_secs(30), "source at start", &services).await;
    until_ready_is(&snk, true, Duration::from_secs(30), "sink at start", &services).await;
    tokio::time::sleep(Duration::from_secs(2)).await;

    // 1. A full cut of 10 s.
    source_path.set(Mode::Cut);
    sink_path.set(Mode::Cut);
    let cut = Instant::now();
    let detect = 2 * HEARTBEAT + DETECT_MARGIN;
    let source_down = until_ready_is(&src, false, detect, "source, path cut", &services).await;
    let sink_down = until_ready_is(&snk, false, detect, "sink, path cut", &services).await;
    tokio::time::sleep(Duration::from_secs(10).saturating_sub(cut.elapsed())).await;
    source_path.set(Mode::Forward);
    sink_path.set(Mode::Forward);
    let source_back = until_ready_is(&src, true, RECOVER, "source after the cut", &services).await;
    let sink_back = until_ready_is(&snk, true, RECOVER, "sink after the cut", &services).await;
    println!("cut 10 s: not ready after {source_down:?} (source) / {sink_down:?} (sink); ready again {source_back:?} / {sink_back:?} after the path healed");
    tokio::time::sleep(Duration::from_secs(2)).await;

    // 2. Half-open: the sink's path first (records keep arriving from Kafka, so a batch waits),
    // the source's 4 s later; both for 30 s.
    sink_path.set(Mode::HalfOpen);
    let sink_frozen = Instant::now();
    let sink_down = until_ready_is(&snk, false, detect, "sink, path half-open", &services).await;
    tokio::time::sleep(Duration::from_secs(4).saturating_sub(sink_frozen.elapsed())).await;
    source_path.set(Mode::HalfOpen);
    let source_frozen = Instant::now();
    let source_down = until_ready_is(&src, false, detect, "source, path half-open", &services).await;
    let source_status = src.status().await;
    let why = format!("{} {}", source_status["stalled"], source_status["last_error"]);
    assert!(
        why.contains("read.timeout.ms") || why.contains("connect.timeout.ms"),
        "the source's /status names the stall: {source_status}"
    );
    let sink_status = snk.status().await;
    assert_eq!(sink_status["state"], "retrying", "{sink_status}");
    assert!(sink_status["last_error"].as_str().is_some_and(|e| e.contains("did not answer within")), "the sink's /status names the stall: {sink_status}");

    // The lag follows the clock while nothing moves.
    tokio::time::sleep(Duration::from_secs(10).saturating_sub(source_frozen.elapsed())).await;
    let (behind_1, lag_1) = (src.status().await["seconds_behind_source"].as_f64(), snk.status().await["lag_seconds"].as_f64());
    tokio::time::sleep(Duration::from_secs(6)).await;
    let (source_status, sink_status) = (src.status().await, snk.status().await);
    let (behind_2, lag_2) = (source_status["seconds_behind_source"].as_f64(), sink_status["lag_seconds"].as_f64());
    let (source_gauge, sink_gauge) = (src.gauge("cdc_source_seconds_behind_source").await, snk.gauge("cdc_sink_lag_seconds").await);
    println!("half-open: seconds_behind_source {behind_1:?} → {behind_2:?} (gauge {source_gauge}), sink lag_seconds {lag_1:?} → {lag_2:?} (gauge {sink_gauge})");
    assert!(behind_2.unwrap_or(0.0) >= behind_1.unwrap_or(f64::MAX) + 5.0, "seconds_behind_source grows while stalled: {source_status}");
    assert!(lag_2.unwrap_or(0.0) >= lag_1.unwrap_or(f64::MAX) + 5.0, "the sink's lag_seconds grows while stalled: {sink_status}");
    assert!(source_gauge >= 10.0 && sink_gauge >= 10.0, "both lag gauges follow the clock: source {source_gauge}, sink {sink_gauge}");
    assert!(!src.ready().await && !snk.ready().await, "still not ready while half-open");

    tokio::time::sleep(Duration::from_secs(30).saturating_sub(source_frozen.elapsed())).await;
    source_path.set(Mode::Forward);
    sink_path.set(Mode::Forward);
    let source_back = until_ready_is(&src, true, RECOVER, "source after the half-open path healed", &services).await;
    let sink_back = until_ready_is(&snk, true, RECOVER, "sink after the half-open path healed", &services).await;
    println!("half-open 34 s (sink) / 30 s (source): not ready after {sink_down:?} (sink) / {source_down:?} (source); ready again {sink_back:?} / {source_back:?} after the path healed");

    // Everything arrives, once.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let report = workload.stop().await;
    assert!(report.commits > 100, "the writer kept writing: {report:?}");
    p.wait_mirror_equals_source(&[("users", USERS_COLUMNS), ("orders", ORDERS_COLUMNS)], Duration::from_secs(60), &services)
        .await;
    let readers: Vec<_> = [("users", "pwd"), ("orders", "qty")]
        .into_iter()
        .map(|(table, version)| {
            let s = p.source.clone();
            std::thread::spawn(move || (table, version, s.read_for(table, usize::MAX, Duration::from_secs(8))))
        })
        .collect();
    for reader in readers {
        let (table, version, records) = reader.join().expect("reader");
        let changes = assert_each_change_once(table, version, &records);
        println!("{table}: {changes} row changes on the topic, each once");
    }
    println!("writer: {report:?}");
    assert!(services.iter().all(|s| alive(s)), "both services still run\n{}", logs(&services));
}

/// Per row of `table`: at most one insert and one delete, the `version` field strictly increasing
/// over its inserts and updates. Returns the number of row changes.
fn assert_each_change_once(table: &str, version: &str, records: &[Consumed]) -> usize {
    let mut rows: BTreeMap<i64, (Vec<i64>, usize)> = BTreeMap::new();
    let mut changes = 0;
    for r in records {
        let Some(key) = payload(r.key.as_deref()) else { continue };
        let id = key["id"].as_i64().expect("id in the key");
        let (versions, deletes) = rows.entry(id).or_default();
        match r.header("cdc.op") {
            "d" => *deletes += 1,
            "c" | "u" => {
                let value = payload(r.value.as_deref()).expect("value of an insert or update");
                let v = match &value[version] {
                    serde_json::Value::String(s) => s.parse().expect("a version"),
                    other => other.as_i64().expect("a version"),
                };
                versions.push(v);
            }
            // Tombstones after a delete (delete.enabled).
            _ => continue,
        }
        changes += 1;
    }
    assert!(changes > 100, "{table}: the topic holds the writer's changes ({changes})");
    for (id, (versions, deletes)) in &rows {
        assert!(*deletes <= 1, "{table} row {id} deleted {deletes} times on the topic");
        assert!(versions.windows(2).all(|w| w[0] < w[1]), "{table} row {id}: a change repeated or out of order: {versions:?}");
    }
    changes
}

/// A path that accepts and never answers: both services' start (and `check`) give up after
/// `connect.timeout.ms` naming it, instead of waiting forever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_half_open_path_at_start_fails_after_the_connect_timeout() {
    let p = PipelineSetup::new("pl_net_start").await;
    let stack = p.stack().clone();
    let path = TcpProxy::start(&format!("{}:{}", stack.mariadb_host, stack.mariadb_port)).await;
    path.set(Mode::HalfOpen);
    let timeout = "\"connect.timeout.ms\" = 2000\n\"http.failed.linger.ms\" = 0\n";
    let source = path.rewrite(&p.source.config("json", timeout), &stack.mariadb_host, stack.mariadb_port);
    let sink = path.rewrite(&p.sink_config(free_port(), timeout), &stack.mariadb_host, stack.mariadb_port);
    for (binary, tag, config, args) in [
        ("cdc-source", p.source.tag.clone(), &source, &[][..]),
        ("jdbc-sink", p.mirror.clone(), &sink, &["check"][..]),
    ] {
        let started = Instant::now();
        let (code, log) = cdc_tests::process::run_to_exit(binary, &tag, config, args, &[]);
        assert!(matches!(code, Some(c) if c != 0), "{binary} {args:?} should fail, got {code:?}:\n{log}");
        assert!(log.contains("connect.timeout.ms"), "{binary} {args:?} names the timeout:\n{log}");
        assert!(started.elapsed() < Duration::from_secs(30), "{binary} {args:?} gave up after {:?}", started.elapsed());
    }
}
