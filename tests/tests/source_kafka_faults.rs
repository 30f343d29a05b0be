//! cdc-source against Kafka failures it cannot retry away: a row larger than its topic accepts,
//! and a binlog transaction that takes longer to stream than the Kafka transaction timeout. Both
//! must stop the source with a message naming the cause and the setting to change, never loop
//! reconnecting, and leave what was committed before on the topic exactly once.
//!
//! A commit whose outcome is unknown (a timeout while the broker writes the markers) cannot be
//! provoked here without pausing the shared broker; the unit tests of cdc-source's publisher
//! cover it (the position is re-read from the offsets topic).

use std::time::Duration;

use cdc_tests::pipeline::Rng;
use cdc_tests::process::Service;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_row_larger_than_its_topic_accepts_stops_the_source_naming_it() {
    let src = SourceSetup::new("kf_big").await;
    src.exec(&["create table docs(id int primary key, body mediumtext)"]).await;
    let topic = src.topic("docs");
    create_topic_with_max_bytes(&src.stack.kafka_bootstrap, &topic, 10_000).await;
    let mut svc = src.start(&src.config("json", "\"snapshot.mode\" = \"never\""));
    svc.wait_for_log("streaming the binlog", Duration::from_secs(60));

    for id in 1..=3 {
        src.exec(&[&format!("insert into docs values ({id}, 'small {id}')")]).await;
    }
    let before = src.read("docs", 3);
    assert_eq!(ids(&before), [1, 2, 3], "log:\n{}", svc.log_text());

    // 40000 random hex digits: lz4 cannot shrink the record below the topic's 10000 bytes.
    let mut rng = Rng::new(7);
    let body: String = (0..2500).map(|_| format!("{:016x}", rng.next_u64())).collect();
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
