//! Lag that reads 0 when the pipeline is caught up. Every source transaction is a Kafka
//! transaction, so each partition it wrote ends with a transaction marker (a control record that
//! takes an offset but is never delivered). Once the mirror equals the source and both services
//! are idle, every lag figure must be 0 — not 1 per partition for the marker:
//! - jdbc-sink: each `cdc_sink_consumer_lag_records` series, each `/status` `lag_records` entry,
//!   and the consumer group's committed offsets against the partitions' end offsets;
//! - cdc-source: `cdc_source_seconds_behind_source` and `/status` `seconds_behind_source`.
//!
//! The same holds after the idle sink restarts: its stored offsets are the markers' offsets, and
//! the consumer group must still end up at the partitions' end.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use cdc_tests::pipeline::{logs, PipelineSetup, ORDERS_COLUMNS, USERS_COLUMNS};
use cdc_tests::process::Service;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

const WAIT: Duration = Duration::from_secs(60);
/// How long the figures may take to settle once everything is applied: librdkafka statistics
/// come every 5 s, the test source's heartbeat every second.
const SETTLE: Duration = Duration::from_secs(20);

/// `http://address` from the line a service logs when its HTTP server listens (`address=` for
/// jdbc-sink, `http=` for cdc-source).
fn http_base(service: &mut Service, field: &str) -> String {
    service.wait_for_log(&format!("{field}="), WAIT);
    let log = service.log_text();
    let at = log.find(&format!("{field}=")).expect("address in the log") + field.len() + 1;
    let addr = log[at..]
        .split_whitespace()
        .next()
        .expect("address")
        .trim_end_matches(|c: char| !c.is_ascii_digit());
    format!("http://{addr}")
}

async fn get(url: &str) -> String {
    match reqwest::get(url).await {
        Ok(r) => r.text().await.unwrap_or_default(),
        Err(e) => format!("GET {url} failed: {e}"),
    }
}

/// Every sample of `name` in a Prometheus text page: labels text → value.
fn samples(page: &str, name: &str) -> BTreeMap<String, f64> {
    page.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let rest = l.strip_prefix(name)?;
            let (labels, value) = match rest.strip_prefix('{') {
                Some(r) => {
                    let (labels, value) = r.split_once('}')?;
                    (labels.to_string(), value)
                }
                None if rest.starts_with(' ') => (String::new(), rest),
                None => return None,
            };
            Some((labels, value.trim().parse().ok()?))
        })
        .collect()
}

/// Committed offsets of `group` and the high watermarks, per `topic/partition` of `topics`.
fn group_offsets(
    bootstrap: &str,
    group: &str,
    topics: &[String],
) -> BTreeMap<String, (Option<i64>, i64)> {
    let client: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        .create()
        .expect("offsets client");
    let timeout = Duration::from_secs(10);
    let mut out = BTreeMap::new();
    for topic in topics {
        let md = client
            .fetch_metadata(Some(topic), timeout)
            .expect("topic metadata");
        let mut tpl = TopicPartitionList::new();
        for t in md.topics() {
            for p in t.partitions() {
                tpl.add_partition(topic, p.id());
            }
        }
        let committed = client
            .committed_offsets(tpl, timeout)
            .expect("committed offsets");
        for e in committed.elements() {
            let (_, high) = client
                .fetch_watermarks(topic, e.partition(), timeout)
                .expect("watermarks");
            let offset = match e.offset() {
                Offset::Offset(o) => Some(o),
                _ => None,
            };
            out.insert(format!("{topic}/{}", e.partition()), (offset, high));
        }
    }
    out
}

/// What the test looks at, for one round of checks.
#[derive(Debug, Default)]
struct Observed {
    sink_lag_metric: BTreeMap<String, f64>,
    sink_lag_status: serde_json::Value,
    group: BTreeMap<String, (Option<i64>, i64)>,
    source_behind_metric: BTreeMap<String, f64>,
    source_behind_status: serde_json::Value,
}

impl Observed {
    /// Why the round is not all zero (empty when it is).
    fn problems(&self, topics: &[String]) -> Vec<String> {
        let mut out = Vec::new();
        if self.sink_lag_metric.is_empty() {
            out.push("no cdc_sink_consumer_lag_records series".to_string());
        }
        for topic in topics {
            if !self
                .sink_lag_metric
                .keys()
                .any(|l| l.contains(&format!("topic=\"{topic}\"")))
            {
                out.push(format!("no cdc_sink_consumer_lag_records series of {topic}"));
            }
            let listed = self
                .sink_lag_status
                .as_object()
                .is_some_and(|m| m.keys().any(|k| k.starts_with(&format!("{topic}/"))));
            if !listed {
                out.push(format!("/status lag_records has no partition of {topic}"));
            }
        }
        for (labels, v) in &self.sink_lag_metric {
            if *v != 0.0 {
                out.push(format!("cdc_sink_consumer_lag_records{{{labels}}} = {v}"));
            }
        }
        if let Some(m) = self.sink_lag_status.as_object() {
            for (tp, v) in m {
                if v.as_i64() != Some(0) {
                    out.push(format!("/status lag_records[{tp}] = {v}"));
                }
            }
        }
        if self.group.is_empty() {
            out.push("no partitions found for the group offsets".to_string());
        }
        for (tp, (committed, high)) in &self.group {
            if *committed != Some(*high) {
                out.push(format!(
                    "group offset of {tp} is {committed:?}, the end offset {high}"
                ));
            }
        }
        let behind: Vec<f64> = self.source_behind_metric.values().copied().collect();
        if behind != [0.0] {
            out.push(format!(
                "cdc_source_seconds_behind_source = {:?}",
                self.source_behind_metric
            ));
        }
        if self.source_behind_status.as_f64() != Some(0.0) {
            out.push(format!(
                "/status seconds_behind_source = {}",
                self.source_behind_status
            ));
        }
        out
    }
}

/// Where the figures are read.
struct Probe<'a> {
    p: &'a PipelineSetup,
    source_http: String,
    sink_http: String,
    topics: Vec<String>,
    group: String,
}

impl Probe<'_> {
    async fn observe(&self) -> (Observed, serde_json::Value, serde_json::Value) {
        let json = |text: String| serde_json::from_str(&text).unwrap_or_default();
        let sink_status: serde_json::Value = json(get(&format!("{}/status", self.sink_http)).await);
        let source_status: serde_json::Value =
            json(get(&format!("{}/status", self.source_http)).await);
        let observed = Observed {
            sink_lag_metric: samples(
                &get(&format!("{}/metrics", self.sink_http)).await,
                "cdc_sink_consumer_lag_records",
            ),
            sink_lag_status: sink_status["lag_records"].clone(),
            group: group_offsets(&self.p.stack().kafka_bootstrap, &self.group, &self.topics),
            source_behind_metric: samples(
                &get(&format!("{}/metrics", self.source_http)).await,
                "cdc_source_seconds_behind_source",
            ),
            source_behind_status: source_status["seconds_behind_source"].clone(),
        };
        (observed, sink_status, source_status)
    }

    /// Waits (idle) until every figure is 0; panics with what is not after [`SETTLE`].
    async fn settle(&self, when: &str, services: &[&Service]) {
        tokio::time::sleep(Duration::from_secs(6)).await;
        let deadline = Instant::now() + SETTLE;
        loop {
            let (observed, sink_status, source_status) = self.observe().await;
            let problems = observed.problems(&self.topics);
            if problems.is_empty() {
                eprintln!("settled {when}: {observed:?}");
                return;
            }
            assert!(
                Instant::now() < deadline,
                "lag is not 0 {SETTLE:?} {when}:\n  {}\n\
                 sink /status: {sink_status}\nsource /status: {source_status}\n{}",
                problems.join("\n  "),
                logs(services)
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}

fn stop(mut service: Service) {
    assert_eq!(
        service.terminate(Duration::from_secs(30)),
        Some(0),
        "{} exits 0 on SIGTERM:\n{}",
        service.name,
        service.log_text()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lag_is_zero_once_caught_up_and_idle() {
    let p = PipelineSetup::new("pl_lag").await;
    let mut source = p.start_source("avro", "\"delete.enabled\" = true");
    let mut sink = p.start_sink("a", "\"delete.enabled\" = true", &[]);
    let mut probe = Probe {
        p: &p,
        source_http: http_base(&mut source, "http"),
        sink_http: http_base(&mut sink, "address"),
        topics: vec![p.topic("users"), p.topic("orders")],
        group: format!("connect-{}", p.sink_name),
    };
    // Binlog transactions, not snapshot reads.
    source.wait_for_log("streaming the binlog", WAIT);

    // Several source transactions: each leaves a marker on the partitions it wrote.
    for i in 0..5 {
        p.exec(&[
            "BEGIN",
            &format!("insert into users(user_id,pwd,name) values('u{i}','p{i}','User {i}')"),
            &format!(
                "insert into orders(product_id,qty,unit_price,total_price,user_id,order_id) \
                 values('p{i}',{i},10,{},'u{i}','o{i}')",
                i * 10
            ),
            "COMMIT",
        ])
        .await;
    }
    p.exec(&["update users set name='Renamed' where user_id='u1'"])
        .await;
    p.exec(&["delete from orders where order_id='o2'"]).await;
    p.wait_mirror_equals_source(
        &[("users", USERS_COLUMNS), ("orders", ORDERS_COLUMNS)],
        WAIT,
        &[&source, &sink],
    )
    .await;
    probe
        .settle(
            "after the mirror caught up and both services went idle",
            &[&source, &sink],
        )
        .await;

    // A restart of the idle sink continues from the stored offsets (the markers' offsets).
    stop(sink);
    let mut sink = p.start_sink("b", "\"delete.enabled\" = true", &[]);
    probe.sink_http = http_base(&mut sink, "address");
    sink.wait_for_log("partitions assigned", WAIT);
    probe
        .settle("after the idle sink restarted", &[&source, &sink])
        .await;
    stop(sink);
    stop(source);
}
