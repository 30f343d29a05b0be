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
