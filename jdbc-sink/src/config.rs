//! The sink's configuration: Kafka Connect JDBC sink keys, loaded by `cdc-common` (TOML or a
//! connector JSON, environment overrides with prefix `CDC_SINK_`), then validated once into
//! [`Settings`]. Every validation error names the key.
//!
//! | key | default | meaning |
//! |---|---|---|
//! | `name` | `jdbc-sink` | sink name; the consumer group is `connect-<name>` unless `kafka.group.id` is set |
//! | `connection.url` | required | `jdbc:mysql://host:port/db`, `jdbc:mariadb://…` or `mysql://…`; mirror tables live in `db` |
//! | `connection.user`, `connection.password` | from the URL | account of the mirror database |
//! | `connection.ssl.mode` | `disable`, or the URL's `sslMode`/`useSSL` | `disable`, `prefer`, `require`, `verify-ca`, `verify-full`; see cdc-common's `url` module for the URL spellings |
//! | `connection.ssl.ca` | the URL's `serverSslCert`, else the system's CAs | PEM CA file the server's certificate must be signed by |
//! | `connection.ssl.cert` / `connection.ssl.key` | – | client certificate and private key, PEM |
//! | `topics` / `topics.regex` | one required | comma-separated topics, or a regex such as `my_topic_.*`; topics created later (a listed one that does not exist yet, a new match of the regex) are picked up within seconds |
//! | `table.name.format` | `${topic}` | mirror table name; `${topic}` is replaced by the topic |
//! | `insert.mode` | `upsert` | `upsert` (INSERT … ON DUPLICATE KEY UPDATE), `insert`, `update` |
//! | `pk.mode` | unset | `record_key`, `record_value` (with `pk.fields`), `none`, as in Kafka Connect; unset: a record's key when it has one, else the mirror table's primary key taken from the value, else (a keyless record for a table still to be created) a table without a key and plain inserts |
//! | `pk.fields` | all key fields | primary-key fields |
//! | `auto.create`, `auto.evolve` | `false` | create missing tables / add missing columns, widen column types to the source's wider ones (`ALTER … MODIFY`) and make NOT NULL columns the records no longer carry NULLable; a change that is not a widening is refused, never rounded |
//! | `delete.enabled` | `false` | apply tombstones as DELETE by key (needs `pk.mode=record_key` or unset) |
//! | `truncate.enabled` | `false` | apply truncate records (header `cdc.op=t`) as `DELETE FROM` the mirror table, in the batch's transaction; `false`: counted (`cdc_sink_truncates_total{outcome="skipped"}`), logged and skipped |
//! | `batch.size` | `3000` | most records per database transaction |
//! | `flush.interval.ms` | `1000` | longest a record waits in a batch (a batch is also flushed when no more records are ready) |
//! | `retry.backoff.ms` | `100` | first delay when retrying a transient error (doubles up to 30 s, retried forever) |
//! | `connect.timeout.ms` | `10000` | longest opening a connection to the mirror database may take (TCP, handshake, session set-up), and longest an idle connection's ping may take; then it is dropped and retried with backoff. Every connection also has TCP keepalive (cdc-common's `url` module) |
//! | `statement.timeout.ms` | `60000` | longest one batch's transaction (BEGIN to COMMIT), one table's DDL or the offsets read may take; beyond it the connection is dropped and the work retried (the batch is re-applied exactly once: its offsets row decides). Also the session's `max_statement_time`, so the server itself aborts a statement running longer; raise it when `auto.evolve` may `ALTER` large mirror tables. The session's `wait_timeout` is twice the larger of this and `connection.ping.interval.ms` (at least 10 s), so the server ends a connection the sink gave up on (a half-open path) and releases its transaction's locks |
//! | `connection.ping.interval.ms` | `5000` | while no batch is being committed, the connection is pinged this often, so a database or network path that stopped answering is noticed (`/ready` 503) before the next record arrives |
//! | `errors.tolerance` | `none` | `none`: stop on a record that can never be applied; `all`: send it to the DLQ |
//! | `errors.deadletterqueue.topic.name` | – | DLQ topic, required with `errors.tolerance=all` |
//! | `errors.deadletterqueue.topic.replication.factor` | `-1` (the broker's `default.replication.factor`; Connect's default is 3) | replication factor of the DLQ topic, which the sink creates at start when it does not exist |
//! | `schema.registry.url` | – | registry for Avro records (`value.converter.schema.registry.url` is read too); `user:password@` in it is sent as basic auth and never shown |
//! | `basic.auth.credentials.source`, `basic.auth.user.info`, `schema.registry.ssl.ca.location` | – | registry basic auth and PEM CA, also under `schema.registry.` / `value.converter.` (see cdc-common's `config` module) |
//! | `offsets.table.name` | `cdc_sink_offsets` | table in the mirror database holding the applied offsets |
//! | `http.listen` | `127.0.0.1:18084` | address of `/metrics`, `/health`, `/ready`, `/status` and the Kafka Connect `/connectors` reads (loopback only by default; containers set `0.0.0.0:18084`) |
//! | `http.failed.linger.ms` | `10000` | after a definite error, keep serving HTTP (state `FAILED` and the error) this long before exiting; SIGTERM ends it, `0` exits at once |
//! | `log.format` | `text` | `text` or `json` (`LOG_FORMAT` wins) |
//! | `kafka.*` | | librdkafka consumer/producer settings, e.g. `kafka.bootstrap.servers` (default `localhost:9092`); the consumer refreshes topic metadata every 3 s unless `kafka.topic.metadata.refresh.interval.ms` is set |
//! | `kafka.group.instance.id` | – (dynamic membership) | static membership in the consumer group (KIP-345), e.g. the sink's name: a sink restarted with the same id takes its predecessor's place and gets its partitions back at once, without waiting for the dead member's session to time out. Each running instance of one group needs its own id: a second sink with the same id fences the first, which stops with an error naming the id |
//! | `kafka.session.timeout.ms` | `10000` with `kafka.group.instance.id`, else librdkafka's 45000 | how long a member the group does not hear from keeps its partitions; a static member also keeps them over a graceful stop (it does not leave the group), so this is how long its partitions wait for it before another member of the group takes them over |

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use cdc_common::{ConfigError, ConfigSpec, ConnectionUrl, Loaded, LogFormat, Secret, TlsKeys};
use serde::Deserialize;

use crate::ident::{validate_identifier, TableNameFormat};

/// Connect keys of the JDBC sink connector that mean nothing here; reported once as ignored.
pub const IGNORED_KEYS: &[&str] = &[
    "dialect.name",
    "db.timezone",
    "quote.sql.identifiers",
    "sql.quote.identifiers",
    "table.types",
    "max.retries",
    "connection.attempts",
    "connection.backoff.ms",
    "errors.deadletterqueue.context.headers.enable",
    "errors.retry.timeout",
    "errors.retry.delay.max.ms",
    "consumer.override.*",
];

pub const SPEC: ConfigSpec = ConfigSpec {
    env_prefix: "CDC_SINK_",
    ignored_keys: IGNORED_KEYS,
    transforms_hint: "; table names come from `table.name.format` (`${topic}` is the topic's name)",
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InsertMode {
    Upsert,
    Insert,
    Update,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PkMode {
    None,
    RecordKey,
    RecordValue,
    /// `pk.mode` unset: the record key when there is one; for a record without a key, the mirror
    /// table's primary key columns taken from the value (an upsert, as typed records of the
    /// tutorial expect), or no key at all when the table does not exist yet or has none
    /// (Kafka Connect's `pk.mode=none`: the table is created without a key, rows are inserted).
    #[serde(skip)]
    Adaptive,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Tolerance {
    None,
    All,
}

/// The file as written, before validation.
#[derive(Debug, Deserialize)]
struct RawConfig {
    #[serde(default = "default_name")]
    name: String,
    #[serde(rename = "connection.url")]
    connection_url: String,
    #[serde(rename = "connection.user")]
    connection_user: Option<String>,
    #[serde(rename = "connection.password")]
    connection_password: Option<Secret>,
    #[serde(rename = "connection.ssl.mode")]
    connection_ssl_mode: Option<String>,
    #[serde(rename = "connection.ssl.ca")]
    connection_ssl_ca: Option<String>,
    #[serde(rename = "connection.ssl.cert")]
    connection_ssl_cert: Option<String>,
    #[serde(rename = "connection.ssl.key")]
    connection_ssl_key: Option<String>,
    #[serde(default)]
    topics: Vec<String>,
    #[serde(rename = "topics.regex")]
    topics_regex: Option<String>,
    #[serde(rename = "table.name.format", default = "default_table_format")]
    table_name_format: String,
    #[serde(rename = "insert.mode", default = "default_insert_mode")]
    insert_mode: InsertMode,
    #[serde(rename = "pk.mode", default = "default_pk_mode")]
    pk_mode: PkMode,
    #[serde(rename = "pk.fields", default)]
    pk_fields: Vec<String>,
    #[serde(rename = "auto.create", default)]
    auto_create: bool,
    #[serde(rename = "auto.evolve", default)]
    auto_evolve: bool,
    #[serde(rename = "delete.enabled", default)]
    delete_enabled: bool,
    #[serde(rename = "truncate.enabled", default)]
    truncate_enabled: bool,
    #[serde(rename = "batch.size", default = "default_batch_size")]
    batch_size: usize,
    #[serde(rename = "flush.interval.ms", default = "default_flush_ms")]
    flush_interval_ms: u64,
    #[serde(rename = "retry.backoff.ms", default = "default_retry_ms")]
    retry_backoff_ms: u64,
    #[serde(rename = "connect.timeout.ms", default = "default_connect_timeout_ms")]
    connect_timeout_ms: u64,
    #[serde(rename = "statement.timeout.ms", default = "default_statement_timeout_ms")]
    statement_timeout_ms: u64,
    #[serde(rename = "connection.ping.interval.ms", default = "default_ping_interval_ms")]
    ping_interval_ms: u64,
    #[serde(rename = "errors.tolerance", default = "default_tolerance")]
    errors_tolerance: Tolerance,
    #[serde(rename = "errors.deadletterqueue.topic.name")]
    dlq_topic: Option<String>,
    #[serde(rename = "errors.deadletterqueue.topic.replication.factor", default = "default_dlq_replication")]
    dlq_replication_factor: i32,
    #[serde(rename = "schema.registry.url")]
    registry_url: Option<String>,
    #[serde(rename = "value.converter.schema.registry.url")]
    converter_registry_url: Option<String>,
    #[serde(rename = "offsets.table.name", default = "default_offsets_table")]
    offsets_table: String,
    #[serde(rename = "http.listen", default = "default_http_listen")]
    http_listen: String,
    #[serde(rename = "http.failed.linger.ms", default = "default_failed_linger_ms")]
    http_failed_linger_ms: u64,
    #[serde(rename = "log.format", default)]
    log_format: LogFormat,
}

fn default_name() -> String {
    "jdbc-sink".into()
}
fn default_table_format() -> String {
    "${topic}".into()
}
fn default_insert_mode() -> InsertMode {
    InsertMode::Upsert
}
fn default_pk_mode() -> PkMode {
    PkMode::Adaptive
}
fn default_batch_size() -> usize {
    3000
}
fn default_flush_ms() -> u64 {
    1000
}
fn default_retry_ms() -> u64 {
    100
}
fn default_dlq_replication() -> i32 {
    -1
}

fn default_connect_timeout_ms() -> u64 {
    10_000
}
fn default_statement_timeout_ms() -> u64 {
    60_000
}
fn default_ping_interval_ms() -> u64 {
    5_000
}
fn default_tolerance() -> Tolerance {
    Tolerance::None
}
fn default_offsets_table() -> String {
    "cdc_sink_offsets".into()
}
fn default_http_listen() -> String {
    "127.0.0.1:18084".into()
}
fn default_failed_linger_ms() -> u64 {
    10_000
}

/// The librdkafka key of static group membership (`kafka.group.instance.id`).
pub const GROUP_INSTANCE_ID: &str = "group.instance.id";

/// The consumer's session timeout unless `kafka.session.timeout.ms` is set, in ms.
pub const SESSION_TIMEOUT_MS: u64 = 10_000;

/// Whether Kafka accepts `id` as a group instance id (as a topic name: at most 249 of
/// `[a-zA-Z0-9._-]`).
fn legal_instance_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')
}

/// Which topics to consume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Topics {
    List(Vec<String>),
    /// A regex that must match whole topic names; subscribed as librdkafka's `^(…)$` pattern.
    Regex(String),
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Settings {
    pub name: String,
    pub url: ConnectionUrl,
    /// Mirror database (from `connection.url`).
    pub database: String,
    pub user: Option<String>,
    pub password: Option<Secret>,
    pub topics: Topics,
    pub table_format: TableNameFormat,
    pub insert_mode: InsertMode,
    pub pk_mode: PkMode,
    pub pk_fields: Vec<String>,
    pub auto_create: bool,
    pub auto_evolve: bool,
    pub delete_enabled: bool,
    /// Apply truncate records (`truncate.enabled`).
    pub truncate_enabled: bool,
    pub batch_size: usize,
    pub flush_interval: Duration,
    pub retry_backoff: Duration,
    /// `connect.timeout.ms`: opening a connection, and an idle connection's ping.
    pub connect_timeout: Duration,
    /// `statement.timeout.ms`: a batch's transaction, a table's DDL, the offsets read; also the
    /// session's `max_statement_time`.
    pub statement_timeout: Duration,
    /// `connection.ping.interval.ms`: how often an idle connection is checked.
    pub ping_interval: Duration,
    pub tolerance: Tolerance,
    pub dlq_topic: Option<String>,
    /// Replication factor of the DLQ topic when the sink creates it (`-1`: the broker's default).
    pub dlq_replication_factor: i32,
    /// The registry URL without credentials (safe to print).
    pub registry_url: Option<String>,
    /// The registry client with its CA and basic auth (set when a registry URL is).
    pub registry: Option<cdc_schema::Registry>,
    pub offsets_table: String,
    pub http_listen: String,
    /// How long HTTP keeps serving after a definite error (`http.failed.linger.ms`).
    pub http_failed_linger: Duration,
    pub log_format: LogFormat,
    /// librdkafka properties from `kafka.*`.
    pub kafka: BTreeMap<String, String>,
    /// Keys present but meaningless here (reported once at start).
    pub ignored: Vec<String>,
    /// Every key as given, secrets masked, for `GET /connectors/<name>/config`.
    pub connect_config: BTreeMap<String, String>,
}

impl Settings {
    /// Loads and validates the config file (`None`: environment only).
    pub fn load(path: Option<&Path>) -> Result<Settings, ConfigError> {
        Settings::validate(cdc_common::load::<RawConfig>(path, &SPEC)?)
    }

    /// Like [`Settings::load`] from text, with an explicit environment (for tests).
    pub fn from_str_with_env(text: &str, env: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let lookup = env.clone();
        let loaded = cdc_common::config::load_from_str(
            text,
            Path::new("<text>"),
            &SPEC,
            move |n| lookup.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone()),
            env,
        )?;
        Settings::validate(loaded)
    }

    fn validate(loaded: Loaded<RawConfig>) -> Result<Settings, ConfigError> {
        let Loaded {
            config: raw,
            kafka,
            ignored,
            connector_name,
            connect_config,
            registry: registry_keys,
        } = loaded;
        fn invalid(key: &str, message: impl Into<String>) -> ConfigError {
            ConfigError::invalid(key, message)
        }
        let mut url = ConnectionUrl::parse(&raw.connection_url)
            .map_err(|e| invalid("connection.url", e.to_string()))?;
        url.tls
            .apply_keys(&TlsKeys {
                mode: raw.connection_ssl_mode.as_deref(),
                ca: raw.connection_ssl_ca.as_deref(),
                cert: raw.connection_ssl_cert.as_deref(),
                key: raw.connection_ssl_key.as_deref(),
            })
            .map_err(|(key, message)| invalid(key, message))?;
        let registry = raw
            .registry_url
            .or(raw.converter_registry_url)
            .map(|u| {
                let access = cdc_schema::RegistryAccess {
                    ca_pem: registry_keys.ca_pem.clone(),
                    user_info: registry_keys
                        .user_info
                        .as_ref()
                        .map(|(user, pw)| (user.clone(), pw.expose().to_string())),
                };
                cdc_schema::Registry::connect(&u, &access)
                    .map_err(|e| invalid("schema.registry.ssl.ca.location", e.to_string()))
            })
            .transpose()?;
        let database = url.database.clone().ok_or_else(|| {
            invalid(
                "connection.url",
                "names no database; add it, e.g. jdbc:mysql://host:3306/mirror",
            )
        })?;
        let topics = match (raw.topics.is_empty(), raw.topics_regex) {
            (false, None) => Topics::List(raw.topics),
            (true, Some(re)) => {
                regex::Regex::new(&re).map_err(|e| invalid("topics.regex", e.to_string()))?;
                Topics::Regex(re)
            }
            (true, None) => {
                return Err(invalid("topics", "set `topics` (a list) or `topics.regex`"))
            }
            (false, Some(_)) => {
                return Err(invalid(
                    "topics.regex",
                    "set either `topics` or `topics.regex`, not both",
                ))
            }
        };
        for (key, ms) in [
            ("connect.timeout.ms", raw.connect_timeout_ms),
            ("statement.timeout.ms", raw.statement_timeout_ms),
            ("connection.ping.interval.ms", raw.ping_interval_ms),
        ] {
            if ms < 100 {
                return Err(invalid(key, "must be at least 100"));
            }
        }
        let table_format = TableNameFormat::parse(&raw.table_name_format)
            .map_err(|e| invalid("table.name.format", e))?;
        if raw.pk_mode == PkMode::RecordValue && raw.pk_fields.is_empty() {
            return Err(invalid(
                "pk.fields",
                "pk.mode=record_value needs the key fields in pk.fields",
            ));
        }
        if raw.delete_enabled && !matches!(raw.pk_mode, PkMode::RecordKey | PkMode::Adaptive) {
            return Err(invalid(
                "delete.enabled",
                "deletes need pk.mode=record_key or pk.mode unset (a tombstone carries only the key)",
            ));
        }
        if raw.insert_mode != InsertMode::Insert && raw.pk_mode == PkMode::None {
            return Err(invalid(
                "insert.mode",
                "upsert and update need a primary key: set pk.mode, or insert.mode=insert",
            ));
        }
        if raw.batch_size == 0 {
            return Err(invalid("batch.size", "must be at least 1"));
        }
        if raw.flush_interval_ms == 0 {
            return Err(invalid("flush.interval.ms", "must be at least 1"));
        }
        if raw.dlq_replication_factor < 1 && raw.dlq_replication_factor != -1 {
            return Err(invalid(
                "errors.deadletterqueue.topic.replication.factor",
                "must be at least 1, or -1 for the broker's default.replication.factor",
            ));
        }
        if raw.errors_tolerance == Tolerance::All && raw.dlq_topic.is_none() {
            return Err(invalid(
                "errors.deadletterqueue.topic.name",
                "errors.tolerance=all needs a dead letter queue topic, so that no record is dropped silently",
            ));
        }
        validate_identifier(&raw.offsets_table)
            .map_err(|e| invalid("offsets.table.name", e.to_string()))?;
        for field in &raw.pk_fields {
            validate_identifier(field).map_err(|e| invalid("pk.fields", e.to_string()))?;
        }
        for (key, forced) in [
            ("isolation.level", "read_committed"),
            ("enable.auto.commit", "false"),
        ] {
            if kafka.get(key).is_some_and(|v| v != forced) {
                return Err(invalid(
                    &format!("kafka.{key}"),
                    format!("must be {forced} for exactly-once delivery; remove it"),
                ));
            }
        }
        if let Some(id) = kafka.get(GROUP_INSTANCE_ID) {
            if id.len() > 249 || !id.chars().all(legal_instance_char) {
                return Err(invalid(
                    &format!("kafka.{GROUP_INSTANCE_ID}"),
                    format!("`{id}` is not a legal group instance id: use at most 249 letters, digits, `.`, `_` or `-` (or \"\" for no static membership)"),
                ));
            }
        }
        Ok(Settings {
            name: connector_name.unwrap_or(raw.name),
            database,
            user: raw.connection_user,
            password: raw.connection_password,
            url,
            topics,
            table_format,
            insert_mode: raw.insert_mode,
            pk_mode: raw.pk_mode,
            pk_fields: raw.pk_fields,
            auto_create: raw.auto_create,
            auto_evolve: raw.auto_evolve,
            delete_enabled: raw.delete_enabled,
            truncate_enabled: raw.truncate_enabled,
            batch_size: raw.batch_size,
            flush_interval: Duration::from_millis(raw.flush_interval_ms),
            retry_backoff: Duration::from_millis(raw.retry_backoff_ms),
            connect_timeout: Duration::from_millis(raw.connect_timeout_ms),
            statement_timeout: Duration::from_millis(raw.statement_timeout_ms),
            ping_interval: Duration::from_millis(raw.ping_interval_ms),
            tolerance: raw.errors_tolerance,
            dlq_topic: raw.dlq_topic,
            dlq_replication_factor: raw.dlq_replication_factor,
            registry_url: registry.as_ref().map(|r| r.url().to_string()),
            registry,
            offsets_table: raw.offsets_table,
            http_listen: raw.http_listen,
            http_failed_linger: Duration::from_millis(raw.http_failed_linger_ms),
            log_format: raw.log_format,
            kafka,
            ignored,
            connect_config,
        })
    }

    /// The consumer group: `kafka.group.id`, else `connect-<name>` as Kafka Connect names it.
    pub fn group_id(&self) -> String {
        self.kafka
            .get("group.id")
            .cloned()
            .unwrap_or_else(|| format!("connect-{}", self.name))
    }

    /// The consumer's `group.instance.id` (static membership) when `kafka.group.instance.id`
    /// is set and not empty; `None`: dynamic membership.
    pub fn group_instance_id(&self) -> Option<String> {
        self.kafka.get(GROUP_INSTANCE_ID).filter(|id| !id.is_empty()).cloned()
    }

    /// mysql_async options for the mirror database (always TCP).
    pub fn db_opts(&self) -> mysql_async::OptsBuilder {
        self.url.opts(self.user.as_deref(), self.password.as_ref())
    }
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
