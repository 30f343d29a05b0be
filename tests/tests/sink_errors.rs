//! jdbc-sink and records that can never be applied: with `errors.tolerance=all` they go to the
//! dead letter queue with headers naming where they came from and why; with `none` the sink stops
//! with that message. Hostile identifiers never reach SQL.

use std::time::Duration;

use cdc_schema::{Encoder, FieldType, Part, Record, Value};
use cdc_tests::kafka::read_topic;
use cdc_tests::sink::{
    create_topic, producer, send, typed_field, users_row, users_schemas, SinkCase,
};

const WAIT: Duration = Duration::from_secs(60);
/// A field name that, were its backtick let through into the sink's `CREATE TABLE`, would end that
/// statement validly and then drop `canary`.
const HOSTILE: &str = "x` INT); DROP TABLE canary; -- x";

async fn json(topic: &str, part: Part, record: &Record) -> Vec<u8> {
    Encoder::json()
        .encode(topic, part, record)
        .await
        .expect("encode")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poison_records_go_to_the_dead_letter_queue() {
    let case = SinkCase::new("sink_dlq", 1).await;
    let dlq = format!("{}_dlq", case.topic);
    create_topic(&case.stack.kafka_bootstrap, &dlq, 1).await;
    let config = case.toml(&format!(
        "\"errors.tolerance\" = \"all\"\n\"errors.deadletterqueue.topic.name\" = \"{dlq}\"\n\"schema.registry.url\" = \"{}\"",
        case.stack.registry_url
    ));
    let sink = case.start_sink(&config, "toml", &[]);
    let p = producer(&case.stack.kafka_bootstrap);
    let t = case.topic.as_str();
    let users = users_schemas(t, vec![]);
    let hostile = users_schemas(t, vec![typed_field(HOSTILE, FieldType::Int32, true, "int")]);
    let (k1, v1) = users_row(&users, 1, "user1", "pw", "One", vec![]);
    let (k2, v2) = users_row(&users, 2, "user2", "pw", "Two", vec![]);
    let (k3, v3) = users_row(
        &users,
        3,
        "user3",
        "pw",
        "a name far longer than twenty characters",
        vec![],
    );
    let (k4, v4) = users_row(&hostile, 4, "user4", "pw", "Four", vec![Value::Int(1)]);
    let key = |n: i32| {
        format!(
            r#"{{"schema":{{"type":"struct","fields":[{{"type":"int32","optional":false,"field":"id"}}]}},"payload":{{"id":{n}}}}}"#
        )
    };

    send(
        &p,
        t,
        None,
        Some(&json(t, Part::Key, &k1).await),
        Some(&json(t, Part::Value, &v1).await),
    )
    .await; // offset 0
    send(
        &p,
        t,
        None,
        Some(key(5).as_bytes()),
        Some(b"\xff\x00 not a record"),
    )
    .await; // 1: garbage
    send(
        &p,
        t,
        None,
        Some(key(6).as_bytes()),
        Some(br#"{"id":6,"name":"no schema"}"#),
    )
    .await; // 2: JSON without schema
    send(
        &p,
        t,
        None,
        Some(key(7).as_bytes()),
        Some(&[0, 0x7f, 0xff, 0xff, 0xf0, 2, 4]),
    )
    .await; // 3: unknown schema id
    send(
        &p,
        t,
        None,
        Some(&json(t, Part::Key, &k3).await),
        Some(&json(t, Part::Value, &v3).await),
    )
    .await; // 4: too long
    send(
        &p,
        t,
        None,
        Some(&json(t, Part::Key, &k4).await),
        Some(&json(t, Part::Value, &v4).await),
    )
    .await; // 5: hostile field
    send(
        &p,
        t,
        None,
        Some(&json(t, Part::Key, &k2).await),
        Some(&json(t, Part::Value, &v2).await),
    )
    .await; // 6

    let table = format!("SELECT id, name FROM `{t}` ORDER BY id");
    case.wait_rows(
        &table,
        &[&[Some("1"), Some("One")], &[Some("2"), Some("Two")]],
        WAIT,
        &sink,
    )
    .await;
    let letters = read_topic(&case.stack.kafka_bootstrap, &dlq, 5, WAIT);
    assert_eq!(
        letters.len(),
        5,
        "DLQ records; sink log:\n{}",
        sink.log_text()
    );
    let mut seen: Vec<(String, String)> = letters
        .iter()
        .map(|l| {
            assert_eq!(l.header("__connect.errors.topic"), t);
            assert_eq!(l.header("__connect.errors.partition"), "0");
            assert!(!l.header("__connect.errors.exception.message").is_empty());
            assert_eq!(l.header("cdc.op"), "c", "original headers are kept");
            (
                l.header("__connect.errors.offset").to_string(),
                l.header("__connect.errors.exception.class.name")
                    .to_string(),
            )
        })
        .collect();
    seen.sort();
    let expected: Vec<(String, String)> = [
        ("1", "decode"),
        ("2", "decode"),
        ("3", "decode"),
        ("4", "data"),
        ("5", "identifier"),
    ]
    .iter()
    .map(|(o, c)| (o.to_string(), c.to_string()))
    .collect();
    assert_eq!(seen, expected);
    assert_eq!(
        letters
            .iter()
            .find(|l| l.header("__connect.errors.offset") == "1")
            .and_then(|l| l.value.clone()),
        Some(b"\xff\x00 not a record".to_vec())
    );
    let (_, metrics) = case.http("/metrics").await;
    assert!(
        metrics.contains("cdc_sink_dlq_records_total{class=\"decode\"} 3"),
        "{metrics}"
    );
}

/// Creates `canary` in the case's database, where its sink works: a statement smuggled into that
/// sink's SQL (`DROP TABLE canary`) would drop it.
async fn plant_canary(case: &SinkCase) {
    let mut conn = case.stack.root_conn(Some(&case.database)).await;
    mysql_async::prelude::Queryable::query_drop(&mut conn, "CREATE TABLE canary (id INT PRIMARY KEY)")
        .await
        .expect("canary");
}

async fn assert_canary_alive(case: &SinkCase, log: &str) {
    assert_eq!(
        case.rows("SELECT COUNT(*) FROM canary").await,
        vec![vec![Some("0".to_string())]],
        "the injected DROP TABLE ran: canary is gone from {}:\n{log}",
        case.database
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_identifiers_stop_the_sink_and_touch_nothing() {
    let case = SinkCase::new("sink_hostile", 1).await;
    plant_canary(&case).await;
    let mut sink = case.start_sink(&case.toml(""), "toml", &[]);
    let p = producer(&case.stack.kafka_bootstrap);
    let t = case.topic.as_str();
    let hostile = users_schemas(t, vec![typed_field(HOSTILE, FieldType::Int32, true, "int")]);
    let (k, v) = users_row(&hostile, 1, "u", "pw", "n", vec![Value::Int(1)]);
    send(
        &p,
        t,
        None,
        Some(&json(t, Part::Key, &k).await),
        Some(&json(t, Part::Value, &v).await),
    )
    .await;
    let exit = sink.wait(WAIT);
    let log = sink.log_text();
    assert_canary_alive(&case, &log).await;
    assert_eq!(exit, Some(1), "the sink must stop:\n{log}");
    assert!(
        log.contains(&format!("record {t}[0]@0 cannot be applied (identifier)")),
        "{log}"
    );
    assert!(
        log.contains("cannot be used as a table or column name"),
        "{log}"
    );

    // A column type smuggled into the schema parameter is refused as well.
    let case2 = SinkCase::new("sink_hostile_type", 1).await;
    plant_canary(&case2).await;
    let mut sink2 = case2.start_sink(&case2.toml(""), "toml", &[]);
    let t2 = case2.topic.as_str();
    let smuggled = users_schemas(
        t2,
        vec![typed_field(
            "extra",
            FieldType::Int32,
            true,
            "int, id2 int) ; DROP TABLE canary; --",
        )],
    );
    let (k, v) = users_row(&smuggled, 1, "u", "pw", "n", vec![Value::Int(1)]);
    send(
        &p,
        t2,
        None,
        Some(&json(t2, Part::Key, &k).await),
        Some(&json(t2, Part::Value, &v).await),
    )
    .await;
    let exit = sink2.wait(WAIT);
    let log = sink2.log_text();
    assert_canary_alive(&case2, &log).await;
    assert_eq!(exit, Some(1), "the sink must stop:\n{log}");
    assert!(log.contains("not a MariaDB column type this sink creates"), "{log}");
    assert!(
        case2
            .rows(&format!("SHOW TABLES LIKE '{t2}'"))
            .await
            .is_empty(),
        "no table created"
    );
}

/// Kafka allows topic names longer than MariaDB's 64-character table names: the mirror table is
/// the name cut to 55 characters plus `_` and 8 hex digits of a hash of the whole name (so two
/// long topics with one beginning stay apart), logged once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_topic_too_long_for_a_table_name_lands_in_a_shortened_table() {
    let case = SinkCase::new("sink_longtopic", 1).await;
    let topic = format!("{}.{}", case.topic, "x".repeat(70));
    create_topic(&case.stack.kafka_bootstrap, &topic, 1).await;
    let config = case.toml("").replace(
        &format!("topics = \"{}\"", case.topic),
        &format!("topics = \"{topic}\""),
    );
    let mut sink = case.start_sink(&config, "toml", &[]);
    let users = users_schemas(&topic, vec![]);
    let (k, v) = users_row(&users, 1, "u", "pw", "n", vec![]);
    let p = producer(&case.stack.kafka_bootstrap);
    send(
        &p,
        &topic,
        None,
        Some(&json(&topic, Part::Key, &k).await),
        Some(&json(&topic, Part::Value, &v).await),
    )
    .await;
    sink.wait_for_log("shortened with a hash of the whole name", WAIT);
    let head: String = topic.chars().take(55).collect();
    let deadline = std::time::Instant::now() + WAIT;
    let table = loop {
        let tables = case
            .rows(&format!("SELECT table_name FROM information_schema.tables WHERE table_schema = '{}' AND table_name LIKE '{}\\_%'", case.database, head.replace('_', "\\_")))
            .await;
        if let Some(t) = tables.first().and_then(|r| r[0].clone()) {
            break t;
        }
        assert!(std::time::Instant::now() < deadline, "no shortened table:\n{}", sink.log_text());
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(table.chars().count(), 64, "{table}");
    case.wait_rows(&format!("SELECT id FROM `{table}`"), &[&[Some("1")]], WAIT, &sink).await;
    assert!(cdc_tests::pipeline::alive(&sink), "{}", sink.log_text());
    sink.terminate(Duration::from_secs(20));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undecodable_record_stops_the_sink_with_tolerance_none() {
    let case = SinkCase::new("sink_stop", 1).await;
    let mut sink = case.start_sink(&case.toml(""), "toml", &[]);
    let p = producer(&case.stack.kafka_bootstrap);
    send(&p, &case.topic, None, Some(b"{}"), Some(b"garbage")).await;
    assert_eq!(
        sink.wait(WAIT),
        Some(1),
        "the sink must stop:\n{}",
        sink.log_text()
    );
    let log = sink.log_text();
    assert!(
        log.contains(&format!("cannot decode key of {}[0]@0", case.topic)),
        "{log}"
    );
}
