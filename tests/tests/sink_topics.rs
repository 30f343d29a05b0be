//! jdbc-sink subscribes to topics that do not exist yet: a listed topic created after the sink
//! started, and a new topic matching `topics.regex`, are consumed within seconds of their
//! creation (a sink usually starts before the source has created its topics). `topics.regex`
//! matches whole topic names, as in Kafka Connect.

use std::time::{Duration, Instant};

use cdc_tests::process::Service;
use cdc_tests::sink::{create_topic, producer, send, SinkCase};
use rdkafka::producer::FutureProducer;

/// How soon after its creation a new topic must be consumed (librdkafka's default metadata
/// refresh alone would take up to 5 minutes).
const PICKED_UP_WITHIN: Duration = Duration::from_secs(20);

/// Produces a Kafka Connect JSON-with-schema row `(id, name)` to `topic`.
async fn send_row(p: &FutureProducer, topic: &str, id: i32, name: &str) {
    let key = format!(
        r#"{{"schema":{{"type":"struct","fields":[{{"type":"int32","optional":false,"field":"id"}}],"optional":false}},"payload":{{"id":{id}}}}}"#
    );
    let value = format!(
        r#"{{"schema":{{"type":"struct","fields":[{{"type":"int32","optional":false,"field":"id"}},{{"type":"string","optional":true,"field":"name"}}],"optional":false}},"payload":{{"id":{id},"name":"{name}"}}}}"#
    );
    send(p, topic, None, Some(key.as_bytes()), Some(value.as_bytes())).await;
}

/// Creates `topic`, produces one row to it and waits until the row is in its mirror table.
/// Returns how long that took.
async fn new_topic_lands(
    case: &SinkCase,
    sink: &Service,
    p: &FutureProducer,
    topic: &str,
) -> Duration {
    let started = Instant::now();
    create_topic(&case.stack.kafka_bootstrap, topic, 1).await;
    send_row(p, topic, 7, "late").await;
    case.wait_rows(
        &format!("SELECT id, name FROM `{topic}`"),
        &[&[Some("7"), Some("late")]],
        PICKED_UP_WITHIN,
        sink,
    )
    .await;
    started.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listed_topic_created_after_the_start_is_consumed() {
    let case = SinkCase::new("sink_topic_list", 1).await;
    let later = format!("{}_later", case.topic);
    let config = case.toml("").replace(
        &format!("topics = \"{}\"", case.topic),
        &format!("topics = \"{},{later}\"", case.topic),
    );
    let sink = case.start_sink(&config, "toml", &[]);
    let p = producer(&case.stack.kafka_bootstrap);
    send_row(&p, &case.topic, 1, "early").await;
    case.wait_rows(
        &format!("SELECT id, name FROM `{}`", case.topic),
        &[&[Some("1"), Some("early")]],
        Duration::from_secs(60),
        &sink,
    )
    .await;

    let took = new_topic_lands(&case, &sink, &p, &later).await;
    println!("a listed topic created later was consumed {took:?} after its creation");
    let (_, metrics) = case.http("/metrics").await;
    assert!(
        metrics.contains(r#"cdc_sink_errors_total{class="kafka"} 0"#),
        "a topic that does not exist yet is not an error:\n{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_topic_matching_the_regex_is_consumed_and_only_whole_names_match() {
    let case = SinkCase::new("sink_topic_re", 1).await;
    let new = format!("{}_new", case.topic);
    // Contains a match of the regex, but the whole name does not match.
    let longer = format!("{}_newer", case.topic);
    let regex = format!("{}(_new)?", case.topic);
    let config = case.toml("").replace(
        &format!("topics = \"{}\"", case.topic),
        &format!("\"topics.regex\" = \"{regex}\""),
    );
    let sink = case.start_sink(&config, "toml", &[]);
    let p = producer(&case.stack.kafka_bootstrap);
    send_row(&p, &case.topic, 1, "early").await;
    case.wait_rows(
        &format!("SELECT id, name FROM `{}`", case.topic),
        &[&[Some("1"), Some("early")]],
        Duration::from_secs(60),
        &sink,
    )
    .await;

    create_topic(&case.stack.kafka_bootstrap, &longer, 1).await;
    send_row(&p, &longer, 9, "not subscribed").await;
    let took = new_topic_lands(&case, &sink, &p, &new).await;
    println!("a new topic matching topics.regex was consumed {took:?} after its creation");
    // `longer` was created before `new`, so the metadata whose regex match brought `new` into the
    // assignment listed `longer` too: the assignment that holds `new` shows whether it matched.
    let (_, status) = case.http("/status").await;
    let status: serde_json::Value = serde_json::from_str(&status).expect("/status is JSON");
    let assigned: Vec<&str> = status["partitions"].as_array().expect("partitions").iter().filter_map(|p| p.as_str()).collect();
    assert!(assigned.contains(&format!("{new}/0").as_str()), "{new} is consumed, so it is assigned: {assigned:?}");
    assert!(
        !assigned.contains(&format!("{longer}/0").as_str()),
        "{longer} does not match topics.regex {regex} as a whole name, but was assigned: {assigned:?}"
    );
    // Absence checks (they cannot prove that nothing comes later): no table, no mention in the log.
    let tables = case
        .rows(&format!(
            "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = '{}' ORDER BY TABLE_NAME",
            case.database
        ))
        .await;
    assert!(
        !tables.contains(&vec![Some(longer.clone())]),
        "{longer} does not match topics.regex {regex} as a whole name, but was consumed: {tables:?}"
    );
    assert!(!sink.log_text().contains(&longer), "{}", sink.log_text());
}
