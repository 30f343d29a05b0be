use super::*;

const TUTORIAL: &str = r#"{
  "name": "my-source-connect",
  "config": {
    "connector.class": "io.confluent.connect.jdbc.JdbcSourceConnector",
    "connection.url": "jdbc:mysql://localhost:3306/mydb",
    "connection.user": "root",
    "connection.password": "secret",
    "mode": "incrementing",
    "incrementing.column.name": "id",
    "table.whitelist": "users",
    "topic.prefix": "my_topic_",
    "tasks.max": "1",
    "format": "json"
  }
}"#;

#[test]
fn tutorial_connector_json_is_accepted_and_meaningless_keys_reported() {
    let c = SourceConfig::from_str(TUTORIAL, &[]).expect("tutorial config loads");
    assert_eq!(c.name, "my-source-connect");
    assert_eq!(c.database, "mydb");
    assert_eq!(c.user, "root");
    assert_eq!(c.topic("users"), "my_topic_users");
    assert!(c.tables.matches("mydb", "users"));
    assert!(!c.tables.matches("mydb", "orders"));
    assert_eq!(c.ignored, vec!["connector.class", "incrementing.column.name", "mode", "tasks.max"]);
    assert!(!format!("{c:?}").contains("secret"), "password must not be printed");
}

#[test]
fn toml_with_env_override_and_kafka_passthrough() {
    let text = r#"
        "connection.url" = "mysql://cdc@127.0.0.1:13306/mydb"
        "table.include.list" = ["users", "orders"]
        "schema.registry.url" = "http://127.0.0.1:18081/apis/ccompat/v7"
        [kafka]
        "bootstrap.servers" = "127.0.0.1:19092"
    "#;
    let c = SourceConfig::from_str(text, &[("CDC_SOURCE_SERVER_ID", "77"), ("CDC_SOURCE_KAFKA_LINGER_MS", "5")])
        .expect("loads");
    assert_eq!(c.server_id, 77);
    assert_eq!(c.format, Format::Avro);
    assert_eq!(c.kafka.get("bootstrap.servers").map(String::as_str), Some("127.0.0.1:19092"));
    assert_eq!(c.kafka.get("linger.ms").map(String::as_str), Some("5"));
    assert!(c.tables.matches("mydb", "orders"));
    assert!(!c.tables.matches("other", "orders"));
}

fn err(text: &str) -> String {
    SourceConfig::from_str(text, &[]).expect_err("must fail").to_string()
}

#[test]
fn errors_name_the_key() {
    assert!(err(r#"format = "json""#).contains("connection.url"));
    let base = r#""connection.url" = "mysql://u@h:1/db""#;
    assert!(err(base).contains("schema.registry.url"));
    assert!(err(&format!("{base}\nformat = \"xml\"")).contains("format"));
    assert!(err(&format!("{base}\nformat = \"json\"\n\"server.id\" = 0")).contains("server.id"));
    assert!(err(&format!("{base}\nformat = \"json\"\n\"table.include.list\" = \"us(ers\"")).contains("table.include.list"));
    assert!(err(&format!("{base}\nformat = \"json\"\n\"tabel.include.list\" = \"users\"")).contains("tabel.include.list"));
    assert!(err(&format!("{base}\nformat = \"json\"\n[kafka]\n\"transactional.id\" = \"x\"")).contains("kafka.transactional.id"));
}

#[test]
fn exclude_list_and_qualified_patterns() {
    let text = r#"
        "connection.url" = "mysql://u@h:1/mydb"
        format = "json"
        "table.include.list" = "mydb.*,shop\\.or.*"
        "table.exclude.list" = "secrets"
    "#;
    let c = SourceConfig::from_str(text, &[]).expect("loads");
    assert!(c.tables.matches("mydb", "users"));
    assert!(!c.tables.matches("mydb", "secrets"));
    assert!(c.tables.matches("shop", "orders"));
    assert!(!c.tables.matches("shop", "users"));
}

#[test]
fn time_precision_mode_takes_debeziums_values() {
    let base = "\"connection.url\" = \"mysql://u@h:1/db\"\nformat = \"json\"";
    let c = SourceConfig::from_str(base, &[]).expect("loads");
    assert_eq!(c.time_precision_mode, TimePrecisionMode::AdaptiveTimeMicroseconds);
    let c = SourceConfig::from_str(&format!("{base}\n\"time.precision.mode\" = \"connect\""), &[]).expect("loads");
    assert_eq!(c.time_precision_mode, TimePrecisionMode::Connect);
    let c = SourceConfig::from_str(base, &[("CDC_SOURCE_TIME_PRECISION_MODE", "adaptive_time_microseconds")]).expect("loads");
    assert_eq!(c.time_precision_mode, TimePrecisionMode::AdaptiveTimeMicroseconds);
    let e = err(&format!("{base}\n\"time.precision.mode\" = \"adaptive\""));
    assert!(e.contains("time.precision.mode") && e.contains("adaptive_time_microseconds") && e.contains("connect"), "{e}");
}

const BASE: &str = r#"
    "connection.url" = "mysql://cdc@127.0.0.1:13306/mydb"
    format = "json"
"#;

#[test]
fn topic_creation_keys_in_connect_spelling() {
    let text = format!(
        "{BASE}\"topic.creation.default.replication.factor\" = 3\n\"topic.creation.default.partitions\" = 6\n\
         \"topic.creation.default.min.insync.replicas\" = 2\n\"topic.creation.default.compression.type\" = \"lz4\"\n\
         \"offsets.topic.replication.factor\" = 3\n\"errors.tolerance\" = \"none\"\n"
    );
    let c = SourceConfig::from_str(&text, &[]).expect("config");
    assert_eq!(c.topic_creation.partitions, 6);
    assert_eq!(c.topic_creation.replication_factor, 3);
    assert_eq!(
        c.topic_creation.configs,
        [("compression.type".to_string(), "lz4".to_string()), ("min.insync.replicas".to_string(), "2".to_string())].into()
    );
    assert_eq!(c.offsets_topic_creation.replication_factor, 3);
    assert_eq!(c.offsets_topic_creation.configs.get("cleanup.policy").map(String::as_str), Some("compact"));
    assert_eq!(c.errors_tolerance, ErrorTolerance::None);
    assert!(c.ignored.is_empty(), "topic configs are not reported as ignored: {:?}", c.ignored);
}

#[test]
fn topic_creation_defaults_and_the_older_partitions_key() {
    let c = SourceConfig::from_str(BASE, &[]).expect("config");
    assert_eq!(c.topic_creation, TopicCreation { partitions: 1, replication_factor: -1, configs: Default::default() });
    assert_eq!(c.offsets_topic_creation.replication_factor, -1);
    assert_eq!(c.errors_tolerance, ErrorTolerance::All);
    let c = SourceConfig::from_str(&format!("{BASE}\"topic.partitions\" = 4\n"), &[]).expect("config");
    assert_eq!(c.topic_creation.partitions, 4);
    let e = SourceConfig::from_str(&format!("{BASE}\"topic.partitions\" = 4\n\"topic.creation.default.partitions\" = 2\n"), &[])
        .expect_err("both spellings");
    assert!(e.to_string().contains("topic.partitions"), "{e}");
    let e = SourceConfig::from_str(&format!("{BASE}\"topic.creation.default.replication.factor\" = 0\n"), &[]).expect_err("rf 0");
    assert!(e.to_string().contains("topic.creation.default.replication.factor"), "{e}");
    let e = SourceConfig::from_str(&format!("{BASE}\"offsets.topic.replication.factor\" = -2\n"), &[]).expect_err("rf -2");
    assert!(e.to_string().contains("offsets.topic.replication.factor"), "{e}");
}

#[test]
fn topics_of_tables_with_illegal_names_are_sanitised() {
    let c = SourceConfig::from_str(BASE, &[]).expect("config");
    assert_eq!(c.topic("h1_back`tick"), "my_topic_h1_back_tick");
    assert_eq!(c.topic("h4_ünïcödé_表"), "my_topic_h4__n_c_d___");
}

#[test]
fn include_patterns_that_match_no_table_are_named() {
    let text = format!("{BASE}\"table.include.list\" = \"ord.*,users,mydb\\\\.items_.*\"\n");
    let c = SourceConfig::from_str(&text, &[]).expect("config");
    let existing = [("mydb".to_string(), "orders".to_string()), ("mydb".to_string(), "users".to_string())];
    assert_eq!(c.tables.unmatched_includes(&existing), vec!["ord.*", "mydb\\.items_.*"]);
    assert!(c.tables.unmatched_includes(&[("ordersdb".into(), "x".into()), ("mydb".into(), "users".into()), ("mydb".into(), "items_1".into())]).is_empty());
}

#[test]
fn the_read_timeout_defaults_to_two_heartbeats_and_connects_are_bounded() {
    let base = r#""connection.url" = "mysql://cdc@127.0.0.1:13306/mydb"
        format = "json""#;
    let c = SourceConfig::from_str(&format!("{base}\n\"heartbeat.interval.ms\" = 1500"), &[]).expect("config");
    assert_eq!(c.read_timeout, Duration::from_millis(3000));
    assert_eq!(c.connect_timeout, Duration::from_millis(10_000));
    let c = SourceConfig::from_str(&format!("{base}\n\"read.timeout.ms\" = 9000\n\"connect.timeout.ms\" = 2000"), &[]).expect("config");
    assert_eq!((c.read_timeout, c.connect_timeout), (Duration::from_millis(9000), Duration::from_millis(2000)));
    let e = SourceConfig::from_str(&format!("{base}\n\"read.timeout.ms\" = 5000"), &[]).expect_err("not above the heartbeat");
    assert!(e.to_string().contains("read.timeout.ms"), "{e}");
}

#[test]
fn a_transform_is_refused_naming_topic_prefix() {
    let routed = TUTORIAL.replace("\"tasks.max\": \"1\",", "\"tasks.max\": \"1\", \"transforms\": \"unwrap\", \"transforms.unwrap.type\": \"io.debezium.transforms.ExtractNewRecordState\",");
    let e = SourceConfig::from_str(&routed, &[]).expect_err("a transform is refused").to_string();
    assert!(e.contains("config key `transforms`: this pipeline has no single message transforms"), "{e}");
    assert!(e.contains("topic.prefix"), "{e}");
}
