//! The dashboards against real data: both services run with the compose configs
//! (deploy/config/, addresses of the local stack put in by environment variables) under a
//! workload of inserts, updates, deletes, a schema change, a poison record and dropped database
//! connections; Prometheus runs as the stack runs it (`stack/up prometheus`, scraping with
//! deploy/prometheus/prometheus-local.yml); then every query of every dashboard panel, evaluated
//! through Prometheus' HTTP API, must return at least one series with a finite value. A query
//! that is invalid or returns nothing fails the test with the panel's title. Queries of what the
//! workload did (a DLQ record, retries, reconnects, DDL, …) must return data too, so that a
//! panel over a counter that exists at 0 from the start is not taken as proof. The metrics both
//! services emit must be exactly those listed in docs/metrics.md.
//!
//! The repository's Prometheus config scrapes fixed ports (18083 and 18084, the services'
//! `http.listen` in deploy/config), so nothing else may listen there while this test runs.

mod ops_support;

use std::collections::BTreeSet;
use std::net::TcpListener;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cdc_tests::process::Service;
use cdc_tests::{unique_name, Stack};
use mysql_async::prelude::Queryable;
use ops_support::{http_port, panel_queries, read, repo};
use serde_json::Value as Json;

/// Grafana's `$__rate_interval` for the local Prometheus (5 s scrapes): four scrape intervals,
/// rounded up to a minute as Grafana's default minimum interval does.
const RATE_INTERVAL: &str = "1m";

/// What the workload does, as seen by Prometheus: each query must return a series. Without
/// these, a panel over a counter whose series exist from the start at 0 would have "data" even
/// if the event it shows never happened.
const WORKLOAD_EVIDENCE: [(&str, &str); 9] = [
    ("snapshot rows", "cdc_source_snapshot_rows_total > 0"),
    ("schema change seen by the source", "cdc_source_schema_changes_total > 0"),
    ("source reconnect after its connection was killed", "cdc_source_reconnects_total > 0"),
    ("column added by auto.evolve", "cdc_sink_ddl_total{kind=\"add_column\"} > 0"),
    ("poison record in the DLQ", "cdc_sink_dlq_records_total{class=\"decode\"} > 0"),
    ("sink retry after its connection was killed", "cdc_sink_retries_total{class=\"database\"} > 0"),
    ("rows deleted in the mirror", "cdc_sink_rows_applied_total{op=\"delete\"} > 0"),
    ("both topics consumed", "count(cdc_sink_records_read_total > 0) == 2"),
    ("replication latency measured", "cdc_sink_replication_latency_seconds_count > 0"),
];

/// How long the queries may take to all return data once the workload runs.
const DEADLINE: Duration = Duration::from_secs(150);

/// A private source database, DB accounts and topics, so that the test shares nothing with the
/// tutorial tables or with other tests.
#[derive(Debug)]
struct Setup {
    stack: Stack,
    tag: String,
    database: String,
    source_user: String,
    sink_user: String,
    password: String,
}

impl Setup {
    async fn new() -> Setup {
        let stack = Stack::from_env();
        let tag = unique_name("ops_dash");
        let n = tag.rsplit('_').next().unwrap_or("0").to_string();
        let setup = Setup {
            database: tag.clone(),
            source_user: format!("ops_src_{}_{n}", std::process::id()),
            sink_user: format!("ops_sink_{}_{n}", std::process::id()),
            password: "ops_pw".into(),
            stack,
            tag,
        };
        let mut conn = setup.stack.root_conn(None).await;
        let db = &setup.database;
        conn.query_drop(format!("CREATE DATABASE `{db}` CHARACTER SET utf8mb4")).await.expect("create database");
        let ddl = read("sql/01-databases.sql");
        conn.query_drop(format!("USE `{db}`")).await.expect("use");
        for stmt in ddl.split(';').map(str::trim).filter(|s| s.to_lowercase().starts_with("create table")) {
            conn.query_drop(stmt).await.expect("create table from sql/01-databases.sql");
        }
        // Accounts of their own (grants as in sql/02-users.sql), so that dropping their
        // connections disturbs no other test.
        for stmt in [
            format!("CREATE USER '{}'@'%' IDENTIFIED BY '{}'", setup.source_user, setup.password),
            format!(
                "GRANT REPLICATION SLAVE, BINLOG MONITOR, REPLICATION MASTER ADMIN, SELECT ON *.* TO '{}'@'%'",
                setup.source_user
            ),
            format!("CREATE USER '{}'@'%' IDENTIFIED BY '{}'", setup.sink_user, setup.password),
            format!("GRANT ALL PRIVILEGES ON mirror.* TO '{}'@'%'", setup.sink_user),
        ] {
            conn.query_drop(&stmt).await.unwrap_or_else(|e| panic!("{stmt}: {e}"));
        }
        setup
    }

    fn topic(&self, table: &str) -> String {
        format!("{}_{table}", self.tag)
    }

    fn url(&self, database: &str) -> String {
        format!("jdbc:mysql://{}:{}/{database}", self.stack.mariadb_host, self.stack.mariadb_port)
    }

    /// `cdc-source` with deploy/config/cdc-source.toml, pointed at this setup.
    fn start_source(&self) -> Service {
        let server_id = (30_000 + std::process::id() % 20_000).to_string();
        let env = [
            ("CDC_SOURCE_NAME", self.tag.clone()),
            ("CDC_SOURCE_CONNECTION_URL", self.url(&self.database)),
            ("CDC_SOURCE_CONNECTION_USER", self.source_user.clone()),
            ("CDC_SOURCE_CONNECTION_PASSWORD", self.password.clone()),
            ("CDC_SOURCE_SERVER_ID", server_id),
            ("CDC_SOURCE_TOPIC_PREFIX", format!("{}_", self.tag)),
            ("CDC_SOURCE_OFFSETS_TOPIC", format!("{}_offsets", self.tag)),
            ("CDC_SOURCE_SCHEMA_REGISTRY_URL", self.stack.registry_url.clone()),
            ("CDC_SOURCE_KAFKA_BOOTSTRAP_SERVERS", self.stack.kafka_bootstrap.clone()),
            ("CDC_SOURCE_HTTP_LISTEN", format!("127.0.0.1:{}", http_port("cdc-source"))),
        ];
        start("cdc-source", &self.tag, &env)
    }

    /// `jdbc-sink` with deploy/config/jdbc-sink.toml, pointed at this setup.
    fn start_sink(&self) -> Service {
        let env = [
            ("CDC_SINK_NAME", self.tag.clone()),
            ("CDC_SINK_CONNECTION_URL", self.url("mirror")),
            ("CDC_SINK_CONNECTION_USER", self.sink_user.clone()),
            ("CDC_SINK_CONNECTION_PASSWORD", self.password.clone()),
            ("CDC_SINK_TOPICS", format!("{},{}", self.topic("users"), self.topic("orders"))),
            ("CDC_SINK_ERRORS_DEADLETTERQUEUE_TOPIC_NAME", format!("{}_dlq", self.tag)),
            ("CDC_SINK_SCHEMA_REGISTRY_URL", self.stack.registry_url.clone()),
            ("CDC_SINK_KAFKA_BOOTSTRAP_SERVERS", self.stack.kafka_bootstrap.clone()),
            ("CDC_SINK_HTTP_LISTEN", format!("127.0.0.1:{}", http_port("jdbc-sink"))),
        ];
        start("jdbc-sink", &self.tag, &env)
    }

    async fn conn(&self) -> mysql_async::Conn {
        self.stack.root_conn(Some(&self.database)).await
    }

    /// Drops the current connections of `user` (as a failing network would), returning how many.
    async fn kill_connections(&self, user: &str) -> usize {
        let mut conn = self.stack.root_conn(None).await;
        let ids: Vec<u64> = conn
            .exec("SELECT id FROM information_schema.processlist WHERE user = ?", (user,))
            .await
            .expect("processlist");
        for id in &ids {
            // A connection may end by itself meanwhile.
            let _ = conn.query_drop(format!("KILL CONNECTION {id}")).await;
        }
        ids.len()
    }

    async fn cleanup(&self) {
        let mut conn = self.stack.root_conn(None).await;
        for stmt in [
            format!("DROP DATABASE IF EXISTS `{}`", self.database),
            format!("DROP TABLE IF EXISTS mirror.`{}`, mirror.`{}`", self.topic("users"), self.topic("orders")),
            format!("DROP USER IF EXISTS '{}'@'%'", self.source_user),
            format!("DROP USER IF EXISTS '{}'@'%'", self.sink_user),
        ] {
            let _ = conn.query_drop(stmt).await;
        }
    }
}

/// Starts `binary` with its compose config (the file's text, unchanged) and `env`.
fn start(binary: &str, tag: &str, env: &[(&str, String)]) -> Service {
    let config = read(&format!("deploy/config/{binary}.toml"));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    Service::start(binary, tag, &config, "toml", &[], &env)
}

/// The ports the repository's Prometheus config scrapes must be free for our services.
fn assert_port_free(service: &str) {
    let port = http_port(service);
    assert!(
        TcpListener::bind(("127.0.0.1", port)).is_ok(),
        "port {port} ({service}'s http.listen in deploy/config, scraped by deploy/prometheus/prometheus-local.yml) \
         is taken; stop whatever runs there (e.g. a {service} started by stack/run) and run the test again"
    );
}

/// Starts Prometheus the way the stack does (idempotent).
fn prometheus_up() {
    let out = Command::new(repo().join("stack/up"))
        .arg("prometheus")
        .output()
        .expect("run stack/up prometheus");
    assert!(
        out.status.success(),
        "stack/up prometheus failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// What one query returned: `Ok(n)` with the number of series with a finite value, or the error.
async fn evaluate(client: &reqwest::Client, prometheus: &str, promql: &str) -> Result<usize, String> {
    let url = format!("{prometheus}/api/v1/query?query={}", percent_encode(promql));
    let response = client.get(&url).send().await.map_err(|e| format!("Prometheus at {prometheus}: {e}"))?;
    let body: Json = response.json().await.map_err(|e| format!("Prometheus answer: {e}"))?;
    if body["status"] != "success" {
        return Err(format!("{}: {}", body["errorType"], body["error"]));
    }
    let result = &body["data"]["result"];
    let value = |v: &Json| v[1].as_str().and_then(|s| s.parse::<f64>().ok());
    let finite = match body["data"]["resultType"].as_str() {
        Some("vector") => result.as_array().into_iter().flatten().filter(|s| value(&s["value"]).is_some_and(f64::is_finite)).count(),
        Some("scalar") => usize::from(value(result).is_some_and(f64::is_finite)),
        other => return Err(format!("unexpected result type {other:?}")),
    };
    Ok(finite)
}

/// Writes to both tables until `stop`: inserts, updates and deletes, an ALTER TABLE, a poison
/// record on the users topic, and dropped connections of both services.
async fn workload(setup: Arc<Setup>, stop: Arc<AtomicBool>) {
    let mut conn = setup.conn().await;
    let started = Instant::now();
    let (mut altered, mut poisoned, mut sink_killed, mut source_killed) = (false, false, false, false);
    let mut i: u64 = 0;
    while !stop.load(Ordering::Relaxed) {
        i += 1;
        let stmts = [
            format!("insert into users(user_id,pwd,name) values('w{i}','p{i}','Workload {i}')"),
            format!(
                "insert into orders(product_id,qty,unit_price,total_price,user_id,order_id) values('p{}',{},10,{},'w{i}','o{i}')",
                i % 7,
                i % 5 + 1,
                (i % 5 + 1) * 10
            ),
            format!("update users set name='Updated {i}' where user_id='w{}'", i / 2),
            format!("delete from orders where order_id='o{}'", i.saturating_sub(5)),
        ];
        for s in &stmts {
            conn.query_drop(s).await.unwrap_or_else(|e| panic!("{s}: {e}"));
        }
        let t = started.elapsed();
        if !altered && t > Duration::from_secs(5) {
            conn.query_drop("alter table users add column email varchar(100) null").await.expect("alter table");
            altered = true;
        }
        if !poisoned && t > Duration::from_secs(8) {
            produce_poison(&setup.stack.kafka_bootstrap, &setup.topic("users")).await;
            poisoned = true;
        }
        // Once each, as soon as the service has a connection to drop.
        if !sink_killed && t > Duration::from_secs(12) {
            sink_killed = setup.kill_connections(&setup.sink_user).await > 0;
        }
        if !source_killed && t > Duration::from_secs(12) {
            source_killed = setup.kill_connections(&setup.source_user).await > 0;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A record neither Avro nor JSON-with-schema: the sink sends it to its dead letter queue.
async fn produce_poison(bootstrap: &str, topic: &str) {
    use rdkafka::producer::{FutureProducer, FutureRecord};
    let producer: FutureProducer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .expect("producer");
    producer
        .send(FutureRecord::to(topic).key("poison").payload("this is not a record"), Duration::from_secs(10))
        .await
        .map_err(|(e, _)| e)
        .expect("produce the poison record");
}

/// Waits until `service` answers 200 on `/ready` at its deploy/config port.
async fn wait_ready(client: &reqwest::Client, service: &mut Service, name: &str) {
    let url = format!("http://127.0.0.1:{}/ready", http_port(name));
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(code) = service.exited() {
            panic!("{name} exited with {code} at start; log tail:\n{}", tail(service));
        }
        if client.get(&url).send().await.is_ok_and(|r| r.status().is_success()) {
            return;
        }
        assert!(Instant::now() < deadline, "{name} not ready within 60 s at {url}; log tail:\n{}", tail(service));
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The metric names both services expose at `/metrics` (counters with their `_total` suffix).
async fn emitted_metrics(client: &reqwest::Client) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for service in ["cdc-source", "jdbc-sink"] {
        let url = format!("http://127.0.0.1:{}/metrics", http_port(service));
        let text = client.get(&url).send().await.expect("GET /metrics").text().await.expect("metrics text");
        for line in text.lines() {
            let Some(rest) = line.strip_prefix("# TYPE ") else { continue };
            let mut parts = rest.split_whitespace();
            let (Some(name), Some(kind)) = (parts.next(), parts.next()) else { continue };
            names.insert(if kind == "counter" { format!("{name}_total") } else { name.to_string() });
        }
    }
    names
}

/// The metric names in the tables of docs/metrics.md (first column).
fn documented_metrics() -> BTreeSet<String> {
    read("docs/metrics.md")
        .lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split_once('`').map(|(name, _)| name.to_string()))
        .filter(|name| name.starts_with("cdc_"))
        .collect()
}

fn tail(service: &Service) -> String {
    let log = service.log_text();
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(25)..].join("\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_dashboard_query_returns_data_from_the_running_pipeline() {
    let queries = panel_queries();
    assert_port_free("cdc-source");
    assert_port_free("jdbc-sink");
    prometheus_up();

    let setup = Arc::new(Setup::new().await);
    // Rows before the source starts: the snapshot copies them (snapshot progress panel).
    let mut conn = setup.conn().await;
    conn.query_drop("insert into users(user_id,pwd,name) values('s1','p','Snap One'),('s2','p','Snap Two')")
        .await
        .expect("insert");
    conn.query_drop("insert into orders(product_id,user_id,order_id) values('p','s1','so1'),('p','s2','so2')")
        .await
        .expect("insert");
    drop(conn);

    // As in docker-compose.yml, the sink starts once the source is up; the source may not have
    // created both topics by then, and the sink picks them up when they appear.
    let mut source = setup.start_source();
    let client = reqwest::Client::new();
    wait_ready(&client, &mut source, "cdc-source").await;
    let mut sink = setup.start_sink();
    let stop = Arc::new(AtomicBool::new(false));
    let writer = tokio::spawn(workload(setup.clone(), stop.clone()));

    let prometheus = setup.stack.prometheus_url.clone();
    let deadline = Instant::now() + DEADLINE;
    let mut failing: Vec<String>;
    loop {
        tokio::time::sleep(Duration::from_secs(5)).await;
        for s in [&mut source, &mut sink] {
            if let Some(code) = s.exited() {
                stop.store(true, Ordering::Relaxed);
                panic!("{} exited with {code} during the workload; log tail:\n{}", s.name, tail(s));
            }
        }
        failing = Vec::new();
        for q in &queries {
            match evaluate(&client, &prometheus, &q.promql(RATE_INTERVAL)).await {
                Ok(0) => failing.push(format!("{q}: no data for {}", q.promql(RATE_INTERVAL))),
                Ok(_) => {}
                Err(e) => failing.push(format!("{q}: {e} for {}", q.promql(RATE_INTERVAL))),
            }
        }
        for (what, promql) in WORKLOAD_EVIDENCE {
            match evaluate(&client, &prometheus, promql).await {
                Ok(0) => failing.push(format!("workload: no {what} yet ({promql})")),
                Ok(_) => {}
                Err(e) => failing.push(format!("workload: {what}: {e} for {promql}")),
            }
        }
        if failing.is_empty() || Instant::now() > deadline || writer.is_finished() {
            break;
        }
    }
    stop.store(true, Ordering::Relaxed);
    let emitted = emitted_metrics(&client).await;
    let workload_result = writer.await;
    let _ = source.terminate(Duration::from_secs(30));
    let _ = sink.terminate(Duration::from_secs(30));
    setup.cleanup().await;
    if let Err(e) = workload_result {
        panic!("the workload failed: {e}");
    }
    let documented = documented_metrics();
    assert_eq!(
        emitted, documented,
        "the metrics the running services emit (left) differ from those docs/metrics.md lists (right)"
    );
    assert!(
        failing.is_empty(),
        "{} of {} dashboard and workload queries return nothing after {DEADLINE:?} of workload:\n  {}\n\ncdc-source log tail:\n{}\n\njdbc-sink log tail:\n{}",
        failing.len(),
        queries.len() + WORKLOAD_EVIDENCE.len(),
        failing.join("\n  "),
        tail(&source),
        tail(&sink)
    );
}
