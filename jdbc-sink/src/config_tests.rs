use super::*;

const TUTORIAL: &str = r#"{"name":"my-sink-connect","config":{"connector.class":"io.confluent.connect.jdbc.JdbcSinkConnector","connection.url":"jdbc:mysql://localhost:3306/mydb","connection.user":"root","connection.password":"secret-pw","auto.create":"true","auto.evolve":"true","delete.enabled":"false","tasks.max":"1","topics":"my_topic_users"}}"#;

#[test]
fn tutorial_connector_json_is_accepted_verbatim() {
    let s = Settings::from_str_with_env(TUTORIAL, &[]).unwrap();
    assert_eq!(s.name, "my-sink-connect");
    assert_eq!(s.group_id(), "connect-my-sink-connect");
    assert_eq!(s.database, "mydb");
    assert_eq!((s.url.host.as_str(), s.url.port), ("localhost", 3306));
    assert_eq!(s.topics, Topics::List(vec!["my_topic_users".into()]));
    assert!(s.auto_create && s.auto_evolve && !s.delete_enabled);
    assert_eq!(s.ignored, vec!["connector.class", "tasks.max"]);
    assert_eq!(s.insert_mode, InsertMode::Upsert);
    assert_eq!(s.pk_mode, PkMode::Adaptive);
    assert_eq!(
        s.http_listen, "127.0.0.1:18084",
        "HTTP on loopback by default"
    );
    assert!(!format!("{s:?}").contains("secret-pw"));
}

#[test]
fn environment_overrides() {
    let s = Settings::from_str_with_env(
        TUTORIAL,
        &[
            ("CDC_SINK_BATCH_SIZE", "10"),
            ("CDC_SINK_CONNECTION_URL", "mysql://127.0.0.1:13306/mirror"),
        ],
    )
    .unwrap();
    assert_eq!(s.batch_size, 10);
    assert_eq!(s.database, "mirror");
}

fn error_of(toml: &str) -> String {
    Settings::from_str_with_env(toml, &[])
        .unwrap_err()
        .to_string()
}

#[test]
fn validation_names_the_key() {
    let base = "\"connection.url\" = \"mysql://h/mirror\"\n";
    assert!(
        error_of("\"connection.url\" = \"mysql://h\"\ntopics = \"t\"").contains("`connection.url`")
    );
    assert!(error_of(base).contains("`topics`"));
    assert!(
        error_of(&format!("{base}topics = \"t\"\n\"topics.regex\" = \"t.*\""))
            .contains("`topics.regex`")
    );
    assert!(error_of(&format!("{base}\"topics.regex\" = \"(\"")).contains("`topics.regex`"));
    assert!(error_of(&format!(
        "{base}topics = \"t\"\n\"errors.tolerance\" = \"all\""
    ))
    .contains("`errors.deadletterqueue.topic.name`"));
    assert!(error_of(&format!(
        "{base}topics = \"t\"\n\"pk.mode\" = \"record_value\""
    ))
    .contains("`pk.fields`"));
    assert!(error_of(&format!(
        "{base}topics = \"t\"\n\"pk.mode\" = \"none\"\n\"delete.enabled\" = true"
    ))
    .contains("`delete.enabled`"));
    assert!(error_of(&format!(
        "{base}topics = \"t\"\n[kafka]\n\"isolation.level\" = \"read_uncommitted\""
    ))
    .contains("`kafka.isolation.level`"));
    assert!(
        error_of(&format!("{base}topics = \"t\"\n\"batch.size\" = 0")).contains("`batch.size`")
    );
    assert!(error_of(&format!(
        "{base}topics = \"t\"\n\"insert.mode\" = \"merge\""
    ))
    .contains("`insert.mode`"));
    assert!(error_of(&format!(
        "{base}topics = \"t\"\n\"table.name.format\" = \"${{db}}\""
    ))
    .contains("`table.name.format`"));
}

#[test]
fn unknown_key_suggests_spelling() {
    let e = error_of("\"connection.url\" = \"mysql://h/m\"\ntopics = \"t\"\n\"auto.evolv\" = true");
    assert!(e.contains("`auto.evolve`"), "{e}");
}

#[test]
fn toml_nested_tables_and_kafka_pass_through() {
    let s = Settings::from_str_with_env(
        "topics = [\"a\", \"b\"]\n[connection]\nurl = \"jdbc:mariadb://db:3307/mirror\"\n[kafka]\n\"bootstrap.servers\" = \"k:9092\"\n\"group.id\" = \"g1\"\n",
        &[],
    )
    .unwrap();
    assert_eq!(s.topics, Topics::List(vec!["a".into(), "b".into()]));
    assert_eq!(
        s.kafka.get("bootstrap.servers").map(String::as_str),
        Some("k:9092")
    );
    assert_eq!(s.group_id(), "g1");
}

#[test]
fn example_config_is_valid() {
    let s = Settings::from_str_with_env(include_str!("../sink.example.toml"), &[]).unwrap();
    assert_eq!(s.group_id(), "connect-my-sink-connect");
    assert_eq!(s.topics, Topics::Regex("my_topic_.*".into()));
    assert!(s.ignored.is_empty());
}

#[test]
fn database_timeouts_have_defaults_and_a_floor() {
    let s = Settings::from_str_with_env(TUTORIAL, &[]).unwrap();
    assert_eq!(
        (s.connect_timeout, s.statement_timeout, s.ping_interval),
        (Duration::from_secs(10), Duration::from_secs(60), Duration::from_secs(5))
    );
    let s = Settings::from_str_with_env(TUTORIAL, &[("CDC_SINK_STATEMENT_TIMEOUT_MS", "2500")]).unwrap();
    assert_eq!(s.statement_timeout, Duration::from_millis(2500));
    let e = Settings::from_str_with_env(TUTORIAL, &[("CDC_SINK_CONNECT_TIMEOUT_MS", "0")]).unwrap_err();
    assert!(e.to_string().contains("connect.timeout.ms"), "{e}");
}

#[test]
fn static_membership_only_when_an_instance_id_is_set() {
    let s = Settings::from_str_with_env(TUTORIAL, &[]).unwrap();
    assert_eq!(s.group_instance_id(), None);
    let base = "topics = \"t\"\n\"connection.url\" = \"mysql://h:3306/db\"\n";
    let set = Settings::from_str_with_env(base, &[("CDC_SINK_KAFKA_GROUP_INSTANCE_ID", "sink-a.1")]).unwrap();
    assert_eq!(set.group_instance_id().as_deref(), Some("sink-a.1"));
    let off = Settings::from_str_with_env(&format!("{base}[kafka]\n\"group.instance.id\" = \"\"\n"), &[]).unwrap();
    assert_eq!(off.group_instance_id(), None);
    let bad = error_of(&format!("{base}[kafka]\n\"group.instance.id\" = \"sink a\"\n"));
    assert!(bad.contains("`kafka.group.instance.id`") && bad.contains("letters, digits"), "{bad}");
}

#[test]
fn a_regex_router_is_refused_naming_table_name_format() {
    let routed = TUTORIAL.replace(
        "\"tasks.max\":\"1\"",
        "\"tasks.max\":\"1\",\"transforms\":\"route\",\"transforms.route.type\":\"org.apache.kafka.connect.transforms.RegexRouter\"",
    );
    let e = Settings::from_str_with_env(&routed, &[]).unwrap_err().to_string();
    assert!(e.contains("config key `transforms`: this pipeline has no single message transforms"), "{e}");
    assert!(e.contains("table.name.format"), "{e}");
}
