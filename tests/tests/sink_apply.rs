//! jdbc-sink against the real stack: records produced to a topic land in the mirror table.
//! Records are produced here with a plain producer (typed JSON, as a person would) or with the
//! schema crate's encoders (as the source does).

use std::time::Duration;

use cdc_schema::{Encoder, FieldType, Part, Registry, Value};
use cdc_tests::sink::{producer, send, typed_field, users_row, users_schemas, SinkCase};

const WAIT: Duration = Duration::from_secs(60);

/// The tutorial's sink connector JSON, verbatim; the stack's addresses come from environment
/// overrides, as a deployment would set them.
const TUTORIAL_SINK: &str = r#"{"name":"my-sink-connect","config":{"connector.class":"io.confluent.connect.jdbc.JdbcSinkConnector","connection.url":"jdbc:mysql://localhost:3306/mydb","connection.user":"root","connection.password":"mypassword","auto.create":"true","auto.evolve":"true","delete.enabled":"false","tasks.max":"1","topics":"my_topic_users"}}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tutorial_json_config_and_a_hand_typed_record() {
    let case = SinkCase::new("sink_manual", 1).await;
    let url = format!(
        "jdbc:mysql://{}:{}/{}",
        case.stack.mariadb_host, case.stack.mariadb_port, case.database
    );
    let http = format!("127.0.0.1:{}", case.http_port);
    let group = format!("connect-{}", case.database);
    let sink = case.start_sink(
        TUTORIAL_SINK,
        "json",
        &[
            ("CDC_SINK_CONNECTION_URL", url.as_str()),
            (
                "CDC_SINK_CONNECTION_PASSWORD",
                case.stack.root_password.as_str(),
            ),
            ("CDC_SINK_TOPICS", case.topic.as_str()),
            ("CDC_SINK_HTTP_LISTEN", http.as_str()),
            (
                "CDC_SINK_KAFKA_BOOTSTRAP_SERVERS",
                case.stack.kafka_bootstrap.as_str(),
            ),
            ("CDC_SINK_KAFKA_GROUP_ID", group.as_str()),
        ],
    );
    // Typed by hand: Kafka Connect JsonConverter format, no column types recorded.
    let key = r#"{"schema":{"type":"struct","fields":[{"type":"int32","optional":false,"field":"id"}],"optional":false},"payload":{"id":1}}"#;
    let value = r#"{"schema":{"type":"struct","fields":[{"type":"int32","optional":false,"field":"id"},{"type":"string","optional":true,"field":"user_id"},{"type":"string","optional":true,"field":"pwd"},{"type":"string","optional":true,"field":"name"}],"optional":false,"name":"users"},"payload":{"id":1,"user_id":"user1","pwd":"test1111","name":"User name"}}"#;
    let p = producer(&case.stack.kafka_bootstrap);
    send(
        &p,
        &case.topic,
        None,
        Some(key.as_bytes()),
        Some(value.as_bytes()),
    )
    .await;

    let table = format!("SELECT id, user_id, pwd, name FROM `{}`", case.topic);
    case.wait_rows(
        &table,
        &[&[
            Some("1"),
            Some("user1"),
            Some("test1111"),
            Some("User name"),
        ]],
        WAIT,
        &sink,
    )
    .await;

    // Ready, status without the password, metrics by Prometheus conventions.
    assert_eq!(case.http("/health").await.0, 200);
    assert_eq!(case.http("/ready").await.0, 200);
    let (code, status) = case.http("/status").await;
    assert_eq!(code, 200);
    assert!(status.contains("\"lag_seconds\":"), "{status}");
    assert!(
        status.contains("\"state\":\"running\"") && !status.contains(&case.stack.root_password),
        "{status}"
    );
    let (_, metrics) = case.http("/metrics").await;
    for name in [
        "cdc_sink_records_read_total",
        "cdc_sink_rows_applied_total{table=\"",
        "cdc_sink_batch_duration_seconds_bucket",
        "cdc_sink_batch_records_bucket",
        "cdc_sink_ddl_total{table=\"",
        "cdc_sink_replication_latency_seconds_count 1",
        "cdc_sink_last_applied_event_timestamp_seconds",
    ] {
        assert!(
            metrics.contains(name),
            "{name} missing from /metrics:\n{metrics}"
        );
    }
    // Lag per partition comes from librdkafka's statistics (every 5 s).
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let (_, metrics) = case.http("/metrics").await;
        if metrics.contains(&format!(
            "cdc_sink_consumer_lag_records{{topic=\"{}\",partition=\"0\"}} 0",
            case.topic
        )) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no lag gauge:\n{metrics}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // delete.enabled=false, as in the tutorial: a tombstone leaves the row.
    send(&p, &case.topic, None, Some(key.as_bytes()), None).await;
    let marker = r#"{"schema":{"type":"struct","fields":[{"type":"int32","optional":false,"field":"id"}],"optional":false},"payload":{"id":2}}"#;
    send(
        &p,
        &case.topic,
        None,
        Some(marker.as_bytes()),
        Some(marker.as_bytes()),
    )
    .await;
    case.wait_rows(
        &format!("SELECT id, name FROM `{}` ORDER BY id", case.topic),
        &[&[Some("1"), Some("User name")], &[Some("2"), None]],
        WAIT,
        &sink,
    )
    .await;
    let log = sink.log_text();
    assert!(
        log.contains("connector.class") && log.contains("tasks.max") && log.contains("ignored"),
        "{log}"
    );
    // String key columns are bounded, values keep every character.
    let cols = case
        .rows(&format!("SELECT COLUMN_NAME, COLUMN_TYPE FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = '{}' AND TABLE_NAME = '{}' ORDER BY ORDINAL_POSITION", case.database, case.topic))
        .await;
    assert_eq!(cols[0], vec![Some("id".into()), Some("int(11)".into())]);
    assert_eq!(
        cols[1],
        vec![Some("user_id".into()), Some("longtext".into())]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn avro_upsert_update_delete() {
    let case = SinkCase::new("sink_avro", 1).await;
    let config = case.toml(&format!(
        "\"delete.enabled\" = true\n\"schema.registry.url\" = \"{}\"",
        case.stack.registry_url
    ));
    let mut sink = case.start_sink(&config, "toml", &[]);
    let encoder = Encoder::avro(Registry::new(&case.stack.registry_url));
    let schemas = users_schemas(&case.topic, vec![]);
    let p = producer(&case.stack.kafka_bootstrap);
    let rows = [
        (1, "user1", "test1111", "User name"),
        (2, "user2", "pw2", "Second"),
        (3, "user3", "pw3", "Third"),
    ];
    for (id, user, pwd, name) in rows {
        let (k, v) = users_row(&schemas, id, user, pwd, name, vec![]);
        let kb = encoder
            .encode(&case.topic, Part::Key, &k)
            .await
            .expect("encode key");
        let vb = encoder
            .encode(&case.topic, Part::Value, &v)
            .await
            .expect("encode value");
        send(&p, &case.topic, None, Some(&kb), Some(&vb)).await;
    }
    let table = format!(
        "SELECT id, user_id, pwd, name FROM `{}` ORDER BY id",
        case.topic
    );
    case.wait_rows(
        &table,
        &[
            &[
                Some("1"),
                Some("user1"),
                Some("test1111"),
                Some("User name"),
            ],
            &[Some("2"), Some("user2"), Some("pw2"), Some("Second")],
            &[Some("3"), Some("user3"), Some("pw3"), Some("Third")],
        ],
        WAIT,
        &sink,
    )
    .await;
    // UPDATE twice (collapses within a batch or not: same result), DELETE by tombstone.
    for name in ["Renamed once", "Renamed twice"] {
        let (k, v) = users_row(&schemas, 1, "user1", "test1111", name, vec![]);
        let kb = encoder
            .encode(&case.topic, Part::Key, &k)
            .await
            .expect("key");
        let vb = encoder
            .encode(&case.topic, Part::Value, &v)
            .await
            .expect("value");
        send(&p, &case.topic, None, Some(&kb), Some(&vb)).await;
    }
    let (k, _) = users_row(&schemas, 2, "", "", "", vec![]);
    let kb = encoder
        .encode(&case.topic, Part::Key, &k)
        .await
        .expect("key");
    send(&p, &case.topic, None, Some(&kb), None).await;
    case.wait_rows(
        &table,
        &[
            &[
                Some("1"),
                Some("user1"),
                Some("test1111"),
                Some("Renamed twice"),
            ],
            &[Some("3"), Some("user3"), Some("pw3"), Some("Third")],
        ],
        WAIT,
        &sink,
    )
    .await;
    // The mirror columns have the source's exact types.
    let types = case
        .rows(&format!("SELECT COLUMN_TYPE FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = '{}' AND TABLE_NAME = '{}' AND COLUMN_NAME = 'name'", case.database, case.topic))
        .await;
    assert_eq!(types, vec![vec![Some("varchar(20)".to_string())]]);
    assert_eq!(
        sink.terminate(Duration::from_secs(20)),
        Some(0),
        "SIGTERM exits 0:\n{}",
        sink.log_text()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_evolve_adds_a_column_and_a_type_change_stops_with_its_names() {
    let case = SinkCase::new("sink_evolve", 1).await;
    let mut sink = case.start_sink(&case.toml("\"auto.evolve\" = true"), "toml", &[]);
    let json = Encoder::json();
    let p = producer(&case.stack.kafka_bootstrap);
    let v1 = users_schemas(&case.topic, vec![]);
    let (k, v) = users_row(&v1, 1, "user1", "pw", "One", vec![]);
    send(
        &p,
        &case.topic,
        None,
        Some(&json.encode(&case.topic, Part::Key, &k).await.expect("k")),
        Some(&json.encode(&case.topic, Part::Value, &v).await.expect("v")),
    )
    .await;
    // The source added a nullable column.
    let v2 = users_schemas(
        &case.topic,
        vec![typed_field("email", FieldType::String, true, "varchar(50)")],
    );
    let (k, v) = users_row(
        &v2,
        2,
        "user2",
        "pw",
        "Two",
        vec![Value::String("two@example.com".into())],
    );
    send(
        &p,
        &case.topic,
        None,
        Some(&json.encode(&case.topic, Part::Key, &k).await.expect("k")),
        Some(&json.encode(&case.topic, Part::Value, &v).await.expect("v")),
    )
    .await;
    let table = format!("SELECT id, name, email FROM `{}` ORDER BY id", case.topic);
    case.wait_rows(
        &table,
        &[
            &[Some("1"), Some("One"), None],
            &[Some("2"), Some("Two"), Some("two@example.com")],
        ],
        WAIT,
        &sink,
    )
    .await;
    // `name` becomes an integer: not applied; the sink stops naming table, column and both types.
    let mut v3 = users_schemas(&case.topic, vec![]);
    let mut fields = v3.1.fields.clone();
    fields[3] = typed_field("name", FieldType::Int32, true, "int");
    v3.1 = std::sync::Arc::new(cdc_schema::RecordSchema {
        name: v3.1.name.clone(),
        fields,
    });
    let k = cdc_schema::Record {
        schema: v3.0.clone(),
        values: vec![Value::Int(3)],
    };
    let v = cdc_schema::Record {
        schema: v3.1.clone(),
        values: vec![
            Value::Int(3),
            Value::String("u3".into()),
            Value::String("pw".into()),
            Value::Int(7),
        ],
    };
    send(
        &p,
        &case.topic,
        None,
        Some(&json.encode(&case.topic, Part::Key, &k).await.expect("k")),
        Some(&json.encode(&case.topic, Part::Value, &v).await.expect("v")),
    )
    .await;
    let code = sink.wait(WAIT);
    let log = sink.log_text();
    assert_eq!(code, Some(1), "the sink must stop:\n{log}");
    let expected = format!(
        "table `{}` column `name` has type varchar(20) but the record's field has type int",
        case.topic
    );
    assert!(log.contains(&expected), "{log}");
    assert_eq!(
        case.rows(&format!("SELECT COUNT(*) FROM `{}`", case.topic))
            .await,
        vec![vec![Some("2".to_string())]]
    );
}

/// `pk.mode=record_value` takes the key from named value fields (records without a key), and
/// `insert.mode=update` only changes rows that exist.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn record_value_keys_and_update_mode() {
    let case = SinkCase::new("sink_pkvalue", 1).await;
    let mut conn = case.stack.root_conn(Some(&case.database)).await;
    mysql_async::prelude::Queryable::query_drop(
        &mut conn,
        format!("CREATE TABLE `{}` (id INT PRIMARY KEY, user_id VARCHAR(20), pwd VARCHAR(20), name VARCHAR(20)); INSERT INTO `{}` VALUES (1, 'u1', 'pw', 'old')", case.topic, case.topic),
    )
    .await
    .expect("table");
    let config = case.toml(
        "\"pk.mode\" = \"record_value\"\n\"pk.fields\" = \"id\"\n\"insert.mode\" = \"update\"",
    );
    let sink = case.start_sink(&config, "toml", &[]);
    let schemas = users_schemas(&case.topic, vec![]);
    let json = Encoder::json();
    let p = producer(&case.stack.kafka_bootstrap);
    for (id, name) in [(1, "new"), (2, "not there")] {
        let (_, v) = users_row(&schemas, id, "u", "pw", name, vec![]);
        send(
            &p,
            &case.topic,
            None,
            None,
            Some(&json.encode(&case.topic, Part::Value, &v).await.expect("v")),
        )
        .await;
    }
    // Both records consumed: row 1 updated, the other had no row to update.
    case.wait_rows(
        "SELECT next_offset FROM cdc_sink_offsets",
        &[&[Some("2")]],
        WAIT,
        &sink,
    )
    .await;
    case.wait_rows(
        &format!("SELECT id, user_id, name FROM `{}` ORDER BY id", case.topic),
        &[&[Some("1"), Some("u"), Some("new")]],
        WAIT,
        &sink,
    )
    .await;
}

/// `pk.mode` unset and no mirror table yet: keyless records behave as Kafka Connect's
/// `pk.mode=none` — the table is created without a primary key and every record is a row, so two
/// equal records are two rows. A keyed record on another topic still gets its key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyless_records_for_a_new_table_are_inserted_into_a_table_without_a_key() {
    let case = SinkCase::new("sink_keyless", 1).await;
    let sink = case.start_sink(&case.toml(""), "toml", &[]);
    let value = r#"{"schema":{"type":"struct","fields":[{"type":"int32","optional":false,"field":"id"},{"type":"string","optional":true,"field":"name"}],"optional":false,"name":"events"},"payload":{"id":7,"name":"seen"}}"#;
    let p = producer(&case.stack.kafka_bootstrap);
    for _ in 0..2 {
        send(&p, &case.topic, None, None, Some(value.as_bytes())).await;
    }
    case.wait_rows(
        &format!("SELECT id, name FROM `{}` ORDER BY id", case.topic),
        &[&[Some("7"), Some("seen")], &[Some("7"), Some("seen")]],
        WAIT,
        &sink,
    )
    .await;
    let keys = case
        .rows(&format!(
            "SELECT COUNT(*) FROM information_schema.KEY_COLUMN_USAGE WHERE TABLE_SCHEMA = '{}' AND TABLE_NAME = '{}'",
            case.database, case.topic
        ))
        .await;
    assert_eq!(keys, vec![vec![Some("0".to_string())]], "the mirror table has no key");
}
