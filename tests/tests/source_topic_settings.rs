//! Topic creation settings in Kafka Connect's spelling (KIP-158), read back from the real broker
//! with the admin API:
//! - `topic.creation.default.partitions` and `topic.creation.default.<config>` on the data topics
//!   the source creates; the offsets topic compacted with `offsets.topic.replication.factor`;
//! - a replication factor above the broker count (the stack has one broker) or a config the
//!   broker refuses stops the source at preflight, naming the key;
//! - the sink creates its DLQ topic with `errors.deadletterqueue.topic.replication.factor`, and
//!   stops naming that key when the broker refuses it;
//! - a `table.include.list` pattern that matches no table is warned about, with the tables that
//!   exist.

use std::collections::HashMap;
use std::time::Duration;

use cdc_tests::pipeline::{logs, PipelineSetup};
use cdc_tests::sink::SinkCase;
use rdkafka::admin::{AdminClient, AdminOptions, ResourceSpecifier};
use rdkafka::client::DefaultClientContext;
use rdkafka::ClientConfig;

const WAIT: Duration = Duration::from_secs(60);

fn admin(bootstrap: &str) -> AdminClient<DefaultClientContext> {
    ClientConfig::new().set("bootstrap.servers", bootstrap).create().expect("admin client")
}

/// The configs of `topic` as the broker describes them.
async fn topic_configs(bootstrap: &str, topic: &str) -> HashMap<String, String> {
    let results = admin(bootstrap)
        .describe_configs([&ResourceSpecifier::Topic(topic)], &AdminOptions::new().request_timeout(Some(WAIT)))
        .await
        .expect("describe configs");
    let resource = results.into_iter().next().expect("one resource").expect("topic configs");
    resource.entries.into_iter().filter_map(|e| Some((e.name, e.value?))).collect()
}

/// (partitions, replicas of each) of `topic`, empty when it does not exist.
fn topic_layout(bootstrap: &str, topic: &str) -> Vec<usize> {
    // All topics: asking for one by name may have the broker auto-create it.
    let md = admin(bootstrap).inner().fetch_metadata(None, Duration::from_secs(10)).expect("metadata");
    md.topics().iter().filter(|t| t.name() == topic && t.error().is_none()).flat_map(|t| t.partitions().iter().map(|p| p.replicas().len())).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_and_offsets_topics_are_created_with_the_topic_creation_settings() {
    let p = PipelineSetup::new("tsettings").await;
    let extra = "\"snapshot.mode\" = \"never\"\n\
                 \"topic.creation.default.partitions\" = 3\n\
                 \"topic.creation.default.replication.factor\" = 1\n\
                 \"topic.creation.default.min.insync.replicas\" = 1\n\
                 \"topic.creation.default.compression.type\" = \"lz4\"\n\
                 \"topic.creation.default.retention.ms\" = 123456789\n\
                 \"offsets.topic.replication.factor\" = 1\n";
    let mut source = p.start_source("json", extra);
    source.wait_for_log("streaming the binlog", WAIT);
    p.exec(&["insert into users (id, user_id, pwd, name) values (1, 'u1', 'p', 'n')"]).await;
    assert_eq!(p.source.read("users", 1).len(), 1, "{}", logs(&[&source]));
    let bootstrap = &p.stack().kafka_bootstrap;
    let topic = p.topic("users");
    assert_eq!(topic_layout(bootstrap, &topic), [1, 1, 1], "3 partitions of 1 replica");
    let configs = topic_configs(bootstrap, &topic).await;
    for (key, want) in [("compression.type", "lz4"), ("retention.ms", "123456789"), ("min.insync.replicas", "1")] {
        assert_eq!(configs.get(key).map(String::as_str), Some(want), "{key} of {topic}: {configs:?}");
    }
    let offsets = topic_configs(bootstrap, &p.source.offsets_topic).await;
    assert_eq!(offsets.get("cleanup.policy").map(String::as_str), Some("compact"), "{offsets:?}");
    assert_eq!(topic_layout(bootstrap, &p.source.offsets_topic), [1], "one partition of 1 replica");
    let log = source.log_text();
    assert!(!log.contains("config keys ignored"), "the topic configs are not ignored:\n{log}");
    source.terminate(Duration::from_secs(20));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_the_broker_refuses_stop_the_source_at_preflight_naming_the_key() {
    let p = PipelineSetup::new("tsrefused").await;
    for (extra, wants) in [
        (
            "\"topic.creation.default.replication.factor\" = 2",
            &["topic.creation.default.replication.factor=2 but the Kafka cluster has 1 broker(s)", "at most 1"][..],
        ),
        ("\"offsets.topic.replication.factor\" = 2", &["offsets.topic.replication.factor=2 but the Kafka cluster has 1 broker(s)"][..]),
        (
            "\"topic.creation.default.cleanup.policy\" = \"nonsense\"",
            &["InvalidConfig", "topic.creation.default.cleanup.policy=nonsense"][..],
        ),
    ] {
        let mut source = p.start_source("json", extra);
        let code = source.wait(WAIT);
        let log = source.log_text();
        assert!(code.is_some_and(|c| c != 0), "{extra}: the source must stop: {code:?}\n{log}");
        for want in wants {
            assert!(log.contains(want), "{extra}: `{want}` missing:\n{log}");
        }
        assert!(topic_layout(&p.stack().kafka_bootstrap, &p.source.offsets_topic).is_empty(), "{extra}: nothing created");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dlq_topic_is_created_with_its_replication_factor() {
    let case = SinkCase::new("tsdlq", 1).await;
    let bootstrap = &case.stack.kafka_bootstrap;
    let dlq = format!("{}_dlq", case.topic);
    let config = |rf: i32| {
        case.toml(&format!(
            "\"errors.tolerance\" = \"all\"\n\"errors.deadletterqueue.topic.name\" = \"{dlq}\"\n\"errors.deadletterqueue.topic.replication.factor\" = {rf}\n\"http.failed.linger.ms\" = 0"
        ))
    };
    let mut sink = case.start_sink(&config(2), "toml", &[]);
    let code = sink.wait(WAIT);
    let log = sink.log_text();
    assert!(code.is_some_and(|c| c != 0), "the sink must stop: {code:?}\n{log}");
    assert!(log.contains("errors.deadletterqueue.topic.replication.factor=2 is more than the Kafka cluster's brokers"), "{log}");
    assert!(topic_layout(bootstrap, &dlq).is_empty(), "no DLQ topic with a refused factor");

    let mut sink = case.start_sink(&config(1), "toml", &[]);
    let layout = cdc_tests::process::eventually(WAIT, "the DLQ topic", || async { Some(topic_layout(bootstrap, &dlq)).filter(|l| !l.is_empty()) }).await;
    assert_eq!(layout, [1], "one partition of 1 replica:\n{}", sink.log_text());
    assert!(cdc_tests::pipeline::alive(&sink), "{}", sink.log_text());
    assert!(!sink.log_text().contains("config keys ignored"), "{}", sink.log_text());
    sink.terminate(Duration::from_secs(20));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_include_pattern_that_matches_no_table_is_warned_about() {
    let p = PipelineSetup::new("tsinclude").await;
    let mut source = p.start_source("json", "\"snapshot.mode\" = \"never\"\n\"table.include.list\" = \"ord.*,users\"");
    source.wait_for_log("streaming the binlog", WAIT);
    let log = source.log_text();
    let db = &p.source.database;
    let warning = log.lines().find(|l| l.contains("matches no table")).unwrap_or_else(|| panic!("no warning:\n{log}"));
    assert!(warning.contains("pattern=ord.*") && warning.contains("database.table"), "{warning}");
    assert!(warning.contains(&format!("{db}.orders")) && warning.contains(&format!("{db}.users")), "the tables that exist: {warning}");
    assert_eq!(log.matches("matches no table").count(), 1, "only `ord.*`:\n{log}");
    source.terminate(Duration::from_secs(20));
}
