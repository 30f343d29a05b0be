use super::*;
use crate::Secret;
use serde::Deserialize;

#[derive(Debug, Deserialize)]
struct SinkLike {
    #[serde(rename = "connection.url")]
    url: String,
    #[serde(rename = "connection.password", default)]
    password: Option<Secret>,
    #[serde(rename = "batch.size", default = "default_batch")]
    batch_size: u32,
    #[serde(rename = "auto.create", default)]
    auto_create: bool,
    #[serde(default)]
    topics: Vec<String>,
}

fn default_batch() -> u32 {
    3000
}

const SPEC: ConfigSpec = ConfigSpec {
    env_prefix: "CDC_SINK_",
    ignored_keys: &["pk.legacy"],
    transforms_hint: "; name tables with table.name.format",
};

fn load_with(text: &str, env: &[(&str, &str)]) -> Result<Loaded<SinkLike>, ConfigError> {
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let lookup = env.clone();
    load_from_str(
        text,
        Path::new("test.toml"),
        &SPEC,
        move |name| {
            lookup
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        },
        env,
    )
}

#[test]
fn toml_quoted_and_nested_keys_flatten_alike() {
    let a = load_with(
        "\"connection.url\" = \"mysql://h/db\"\n\"batch.size\" = 10\n",
        &[],
    )
    .unwrap();
    let b = load_with(
        "[connection]\nurl = \"mysql://h/db\"\n[batch]\nsize = 10\n",
        &[],
    )
    .unwrap();
    assert_eq!(a.config.url, b.config.url);
    assert_eq!(a.config.batch_size, 10);
    assert_eq!(b.config.batch_size, 10);
}

#[test]
fn both_spellings_of_one_key_are_an_error() {
    let e = load_with("\"batch.size\" = 1\n[batch]\nsize = 2\n", &[]).unwrap_err();
    assert!(e.to_string().contains("`batch.size` is given twice"), "{e}");
}

#[test]
fn connect_json_is_accepted_verbatim() {
    let json = r#"{"name":"my-sink-connect","config":{
        "connector.class":"io.confluent.connect.jdbc.JdbcSinkConnector",
        "connection.url":"jdbc:mysql://localhost:3306/mydb",
        "connection.password":"pw","auto.create":"true","tasks.max":"1",
        "pk.legacy":"x","topics":"my_topic_users"}}"#;
    let l = load_with(json, &[]).unwrap();
    assert_eq!(l.connector_name.as_deref(), Some("my-sink-connect"));
    assert!(l.config.auto_create);
    assert_eq!(l.config.topics, vec!["my_topic_users"]);
    assert_eq!(l.config.batch_size, 3000);
    assert_eq!(l.ignored, vec!["connector.class", "pk.legacy", "tasks.max"]);
    assert_eq!(format!("{:?}", l.config.password), "Some(***)");
}

#[test]
fn a_configured_transform_is_an_error_naming_the_key() {
    let router = r#"{"name":"s","config":{"connection.url":"mysql://h/db",
        "transforms":"route","transforms.route.type":"org.apache.kafka.connect.transforms.RegexRouter",
        "transforms.route.regex":"(.*)","transforms.route.replacement":"x_$1"}}"#;
    let msg = load_with(router, &[]).unwrap_err().to_string();
    assert!(msg.starts_with("config key `transforms`: this pipeline has no single message transforms (SMTs)"), "{msg}");
    assert!(msg.contains("remove `transforms` and every `transforms.*` key; name tables with table.name.format"), "{msg}");
    // Without the alias list, the transform's own keys are named.
    let msg = load_with("\"connection.url\" = \"u\"\n[transforms.route]\ntype = \"RegexRouter\"\n", &[]).unwrap_err().to_string();
    assert!(msg.starts_with("config key `transforms.route.type`:"), "{msg}");
    // An empty `transforms` lists no transform: only an ignored key.
    let l = load_with("\"connection.url\" = \"u\"\ntransforms = \"\"\n", &[]).unwrap();
    assert_eq!(l.ignored, vec!["transforms"]);
}

#[test]
fn environment_overrides_file_and_feeds_kafka() {
    let l = load_with(
        "\"connection.url\" = \"mysql://h/db\"\n\"batch.size\" = 10\n[kafka]\n\"group.id\" = \"g\"\n",
        &[
            ("CDC_SINK_BATCH_SIZE", "77"),
            ("CDC_SINK_KAFKA_BOOTSTRAP_SERVERS", "k:1"),
            ("CDC_SINK_USER", "not config"),
        ],
    )
    .unwrap();
    assert_eq!(l.config.batch_size, 77);
    assert_eq!(
        l.kafka.get("bootstrap.servers").map(String::as_str),
        Some("k:1")
    );
    assert_eq!(l.kafka.get("group.id").map(String::as_str), Some("g"));
}

#[test]
fn unknown_key_is_named_with_suggestion() {
    let e = load_with("\"connection.url\" = \"u\"\n\"batch.sise\" = 1\n", &[]).unwrap_err();
    let msg = e.to_string();
    assert!(msg.contains("unknown config key `batch.sise`"), "{msg}");
    assert!(msg.contains("did you mean `batch.size`"), "{msg}");
}

#[test]
fn bad_value_names_the_key() {
    let e = load_with(
        "\"connection.url\" = \"u\"\n\"auto.create\" = \"yes\"\n",
        &[],
    )
    .unwrap_err();
    assert!(e.to_string().contains("`auto.create`"), "{e}");
    let e = load_with("", &[]).unwrap_err();
    assert_eq!(
        e.to_string(),
        "config key `connection.url`: is required; set it in the config file or as CDC_SINK_CONNECTION_URL"
    );
}

#[test]
fn env_names() {
    assert_eq!(
        env_name("CDC_SINK_", "flush.interval.ms"),
        "CDC_SINK_FLUSH_INTERVAL_MS"
    );
    assert_eq!(
        env_name("CDC_SOURCE_", "table.include.list"),
        "CDC_SOURCE_TABLE_INCLUDE_LIST"
    );
}

#[test]
fn secrets_come_from_the_environment_and_the_config_shows_the_reference() {
    let loaded = load_with(
        "\"connection.url\" = \"mysql://h/db\"\n\"connection.password\" = \"${env:DB_PW}\"\n",
        &[("DB_PW", "hunter2")],
    )
    .unwrap();
    assert_eq!(loaded.config.password.as_ref().map(Secret::expose), Some("hunter2"));
    assert!(!format!("{:?}", loaded.connect_config).contains("hunter2"));
    let e = load_with("\"connection.url\" = \"${env:MISSING_URL}\"\n", &[]).unwrap_err();
    assert!(e.to_string().contains("`connection.url`") && e.to_string().contains("MISSING_URL"), "{e}");
}

#[test]
fn registry_basic_auth_under_connect_prefixes() {
    let json = r#"{"name": "s", "config": {"connection.url": "mysql://h/db",
        "value.converter.basic.auth.credentials.source": "USER_INFO",
        "value.converter.basic.auth.user.info": "reg:pw7"}}"#;
    let loaded = load_with(json, &[]).unwrap();
    let (user, pw) = loaded.registry.user_info.clone().unwrap();
    assert_eq!((user.as_str(), pw.expose()), ("reg", "pw7"));
    assert!(!format!("{:?} {:?}", loaded.connect_config, loaded.registry).contains("pw7"));
    for (text, key) in [
        ("\"basic.auth.user.info\" = \"nocolon\"", "basic.auth.user.info"),
        ("\"schema.registry.basic.auth.credentials.source\" = \"SASL_INHERIT\"", "schema.registry.basic.auth.credentials.source"),
        ("\"basic.auth.credentials.source\" = \"USER_INFO\"", "basic.auth.credentials.source"),
        ("\"schema.registry.ssl.truststore.location\" = \"/ts.jks\"", "schema.registry.ssl.ca.location"),
        ("\"schema.registry.ssl.ca.location\" = \"/nonexistent/ca.pem\"", "schema.registry.ssl.ca.location"),
        ("\"basic.auth.user.info\" = \"a:b\"\n\"schema.registry.basic.auth.user.info\" = \"a:c\"", "basic.auth.user.info"),
    ] {
        let e = load_with(&format!("\"connection.url\" = \"u\"\n{text}\n"), &[]).unwrap_err().to_string();
        assert!(e.contains(key), "{text}: {e}");
    }
}
