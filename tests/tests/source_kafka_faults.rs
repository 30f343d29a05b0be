//! cdc-source against Kafka failures it cannot retry away: a row larger than its topic accepts,
//! and a binlog transaction that takes longer to stream than the Kafka transaction timeout. The
//! too-large row fails its table alone by default (`errors.tolerance=all`): the other tables of
//! the same Kafka transaction and after it are published once, the source keeps running. With
//! `errors.tolerance=none`, and for the timeout always, the source stops with a message naming
//! the cause and the setting to change, never loops reconnecting, and leaves what was committed
//! before on the topic exactly once.
//!
//! A commit whose outcome is unknown (a timeout while the broker writes the markers) cannot be
//! provoked here without pausing the shared broker; the unit tests of cdc-source's publisher
//! cover it (the position is re-read from the offsets topic).

use std::time::Duration;

use cdc_tests::pipeline::Rng;
use cdc_tests::process::{eventually, http_addr, Service};
use cdc_tests::source::{payload, SourceSetup};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::ClientConfig;

/// Creates `topic` with one partition and `max.message.bytes` (unlike `sink::create_topic`,
/// which takes the broker's defaults).
async fn create_topic_with_max_bytes(bootstrap: &str, topic: &str, max_message_bytes: usize) {
    let admin: AdminClient<DefaultClientContext> =
        ClientConfig::new().set("bootstrap.servers", bootstrap).create().expect("admin client");
    let max = max_message_bytes.to_string();
    let new = NewTopic::new(topic, 1, TopicReplication::Fixed(1)).set("max.message.bytes", &max);
    for r in admin.create_topics(&[new], &AdminOptions::new()).await.expect("create topic") {
        r.unwrap_or_else(|(name, code)| panic!("creating {name}: {code}"));
    }
}

fn ids(records: &[cdc_tests::kafka::Consumed]) -> Vec<i64> {
    records.iter().map(|r| payload(r.key.as_deref()).expect("key")["id"].as_i64().expect("id")).collect()
}

/// Waits for the source to exit by itself; panics with its log if it is still running.
fn exit_code(svc: &mut Service, within: Duration) -> i32 {
    match svc.wait(within) {
        Some(code) => code,
        None => panic!("cdc-source still runs after {within:?} (it should have stopped); log:\n{}", svc.log_text()),
    }
}

fn assert_did_not_loop(svc: &Service) {
    let log = svc.log_text();
    let stopped = log.lines().filter(|l| l.starts_with("cdc-source: ")).collect::<Vec<_>>().join("\n");
    eprintln!("{stopped}");
    assert!(
        !log.contains("resuming from the last committed position"),
        "the source retried an error that cannot go away; log:\n{log}"
    );
}

/// 40000 random hex digits: lz4 cannot shrink a record holding them below 10000 bytes.
fn incompressible_body() -> String {
    let mut rng = Rng::new(7);
    (0..2500).map(|_| format!("{:016x}", rng.next_u64())).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_row_larger_than_its_topic_accepts_fails_its_table_alone() {
    let src = SourceSetup::new("kf_big_alone").await;
    src.exec(&["create table docs(id int primary key, body mediumtext)", "create table notes(id int primary key, t text)"]).await;
    let topic = src.topic("docs");
    create_topic_with_max_bytes(&src.stack.kafka_bootstrap, &topic, 10_000).await;
    let mut svc = src.start(&src.config("json", "\"snapshot.mode\" = \"never\""));
    svc.wait_for_log("streaming the binlog", Duration::from_secs(60));
    src.exec(&["insert into docs values (1, 'small 1')", "insert into notes values (1, 'n1')"]).await;
    assert_eq!(ids(&src.read("docs", 1)), [1], "log:\n{}", svc.log_text());

    // One binlog transaction with the refused row between two rows of notes, then more of both.
    let body = incompressible_body();
    src.exec(&[
        "begin",
        "insert into notes values (2, 'n2')",
        &format!("insert into docs values (2, '{body}')"),
        "insert into notes values (3, 'n3')",
        "commit",
        "insert into docs values (3, 'small 3')",
        "insert into notes values (4, 'n4')",
    ])
    .await;
    let notes = src.read("notes", 4);
    let log = svc.log_text();
    assert_eq!(ids(&notes), [1, 2, 3, 4], "the other table's records, each once; log:\n{log}");
    assert!(svc.exited().is_none(), "the source keeps running; log:\n{log}");
    let docs = src.read_for("docs", 3, Duration::from_secs(3));
    assert_eq!(ids(&docs), [1], "nothing of the failed table after its refused record; log:\n{log}");
    let table = format!("{}.docs", src.database);
    for want in ["table skipped", table.as_str(), "primary key (id=2)", "bytes, more than Kafka accepts", "`max.message.bytes` of that topic"] {
        assert!(log.contains(want), "{want:?} missing from the log:\n{log}");
    }
    let addr = http_addr(&log);
    eventually(Duration::from_secs(10), "the table failure in /metrics", || async {
        let addr = &addr;
        let metrics = reqwest::get(format!("http://{addr}/metrics")).await.ok()?.text().await.ok()?;
        metrics.contains("cdc_source_table_failures_total{table=\"docs\"} 1").then_some(())
    })
    .await;
    svc.terminate(Duration::from_secs(20));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_row_larger_than_its_topic_accepts_stops_the_source_naming_it_with_tolerance_none() {
    let src = SourceSetup::new("kf_big").await;
    src.exec(&["create table docs(id int primary key, body mediumtext)"]).await;
    let topic = src.topic("docs");
    create_topic_with_max_bytes(&src.stack.kafka_bootstrap, &topic, 10_000).await;
    let mut svc = src.start(&src.config("json", "\"snapshot.mode\" = \"never\"\n\"errors.tolerance\" = \"none\""));
    svc.wait_for_log("streaming the binlog", Duration::from_secs(60));

    for id in 1..=3 {
        src.exec(&[&format!("insert into docs values ({id}, 'small {id}')")]).await;
    }
    let before = src.read("docs", 3);
    assert_eq!(ids(&before), [1, 2, 3], "log:\n{}", svc.log_text());

    let body = incompressible_body();
    src.exec(&[&format!("insert into docs values (4, '{body}')"), "insert into docs values (5, 'after')"]).await;

    let code = exit_code(&mut svc, Duration::from_secs(90));
    let log = svc.log_text();
    assert_eq!(code, 1, "a definite error exits 1; log:\n{log}");
    let table = format!("{}.docs", src.database);
    for want in [
        table.as_str(),
        "primary key (id=4)",
        "bytes, more than Kafka accepts",
        topic.as_str(),
        "`max.message.bytes` of that topic",
        "`message.max.bytes`",
        "kafka.message.max.bytes",
    ] {
        assert!(log.contains(want), "{want:?} missing from the log:\n{log}");
    }
    assert_did_not_loop(&svc);
    // What was committed before is there once; nothing of the refused transaction or after it.
    let after = src.read_for("docs", 10, Duration::from_secs(5));
    assert_eq!(ids(&after), [1, 2, 3], "log:\n{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_binlog_transaction_longer_than_the_kafka_transaction_timeout_names_the_timeouts() {
    let src = SourceSetup::new("kf_slow").await;
    src.exec(&["create table bulk(id int primary key, body varchar(200))"]).await;
    let config = format!("{}\"transaction.timeout.ms\" = \"1000\"\n", src.config("json", "\"snapshot.mode\" = \"never\""));
    let mut svc = src.start(&config);
    svc.wait_for_log("streaming the binlog", Duration::from_secs(60));
    src.exec(&["insert into bulk values (0, 'first')"]).await;
    assert_eq!(ids(&src.read("bulk", 1)), [0], "log:\n{}", svc.log_text());

    // One binlog transaction that takes the source well over a second to stream.
    let rows: u64 = std::env::var("CDC_TEST_SLOW_ROWS").ok().and_then(|v| v.parse().ok()).unwrap_or(400_000);
    src.exec(&[&format!("insert into bulk select seq, repeat('x', 150) from seq_1_to_{rows}")]).await;

    let code = exit_code(&mut svc, Duration::from_secs(240));
    let log = svc.log_text();
    assert_eq!(code, 1, "a definite error exits 1; log:\n{log}");
    for want in ["transaction.timeout.ms=1000", "kafka.transaction.timeout.ms", "transaction.max.timeout.ms"] {
        assert!(log.contains(want), "{want:?} missing from the log:\n{log}");
    }
    assert!(!log.contains("took over"), "a timeout is not another instance; log:\n{log}");
    assert_did_not_loop(&svc);
    let after = src.read_for("bulk", 10, Duration::from_secs(5));
    assert_eq!(ids(&after), [0], "nothing of the aborted transaction is visible; log:\n{log}");
}
