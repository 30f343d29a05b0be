//! The source's configuration: Kafka Connect key spellings, loaded by `cdc-common` from a TOML file
//! or the tutorial's JDBC source connector JSON, every key overridable by `CDC_SOURCE_<KEY>`.
//!
//! | key | default | meaning |
//! |---|---|---|
//! | `name` | connector name, else `cdc-source` | source name: Kafka `transactional.id` and offsets key |
//! | `connection.url` | – (required) | `jdbc:mysql://host:port/db` or `mysql://…` of the source server |
//! | `connection.user` / `connection.password` | from the URL | replication account |
//! | `connection.ssl.mode` | `disable`, or the URL's `sslMode`/`useSSL` | `disable`, `prefer`, `require`, `verify-ca`, `verify-full` (replication and snapshot connections); see cdc-common's `url` module for the URL spellings |
//! | `connection.ssl.ca` | the URL's `serverSslCert`, else the system's CAs | PEM CA file the server's certificate must be signed by |
//! | `connection.ssl.cert` / `connection.ssl.key` | – | client certificate and private key, PEM |
//! | `server.id` | `5401` | replica server id; must differ from every other replica's |
//! | `table.include.list` | all tables of the URL's database | comma-separated `table` or `db.table` regexes (see *Table patterns* below) |
//! | `table.whitelist` | – | older spelling of `table.include.list` |
//! | `table.exclude.list` | – | tables to leave out (same form) |
//! | `topic.prefix` | `my_topic_` | topic = prefix + table, each character a topic name cannot hold replaced by `_` (see *Topic names* below) |
//! | `format` | `avro` | `avro` (Confluent wire format + registry) or `json` (Connect JSON with schema) |
//! | `schema.registry.url` | – | Confluent-API registry (required for `avro`); `user:password@` in it is sent as basic auth and never shown |
//! | `basic.auth.credentials.source`, `basic.auth.user.info`, `schema.registry.ssl.ca.location` | – | registry basic auth and PEM CA, also under `schema.registry.` / `value.converter.` (see cdc-common's `config` module) |
//! | `delete.enabled` | `false` | publish DELETE as a tombstone |
//! | `time.precision.mode` | `adaptive_time_microseconds` | temporal types as Debezium's: `adaptive_time_microseconds` (`io.debezium.time.*`) or `connect` (Kafka Connect's ms `Date`/`Time`/`Timestamp` for value fields); see cdc-schema |
//! | `snapshot.mode` | `initial` | `initial`, `never`, `when_needed` |
//! | `snapshot.chunk.size` | `20000` | rows per primary-key chunk, one Kafka transaction each (its rows are streamed, not held in the source; an interrupted chunk is copied again) |
//! | `incremental.snapshot.chunk.size` | `1024` (Debezium's) | rows per chunk of an incremental snapshot (at most about 2 MiB of rows; see `incremental`). A chunk's records go out in one burst between two binlog transactions, so larger chunks copy faster and delay the stream's own changes more |
//! | `signal.data.collection` | – | `db.table` (or `table` of the URL's database) of the signal table whose inserted rows (`id`, `type`, `data`) are signals, as Debezium's; signals can also be posted to `POST /signals` |
//! | `snapshot.new.tables` | `incremental` | a captured table the stored position has not seen (newly added to `table.include.list`) is copied by an incremental snapshot at start; `off` streams it without copying |
//! | `offsets.topic` | `_cdc_source_offsets` | compacted topic with the committed positions |
//! | `offsets.topic.replication.factor` | `-1` (the broker's `default.replication.factor`) | replication factor of the offsets topic when the source creates it |
//! | `batch.max.rows` | `5000` | rows per Kafka transaction (closed at the next binlog commit); more while the previous transaction is still committing |
//! | `batch.max.ms` | `20` | longest a Kafka transaction stays open while events flow; when the stream goes quiet (no event waiting) and no commit is landing, what is whole is committed at once |
//! | `heartbeat.interval.ms` | `5000` | server heartbeat; also how often an idle position is stored |
//! | `read.timeout.ms` | 2 × `heartbeat.interval.ms` | reconnect (with backoff) when nothing, not even a heartbeat, arrived for this long; also when `/ready` turns 503 as stalled |
//! | `retry.backoff.max.ms` | `5000` | after a transient error (MariaDB, Kafka or the registry away) the source retries from its last committed position after 200 ms, doubling up to this; so it resumes within this long of the cause going away |
//! | `connect.timeout.ms` | `10000` | longest opening a connection to the source server may take (TCP, handshake, session set-up, dump request); then retried with backoff. Every connection also has TCP keepalive (cdc-common's `url` module) |
//! | `topic.creation.default.partitions` | `1` | partitions of the data topics the source creates (`-1`: the broker's `num.partitions`); `topic.partitions` is the older spelling |
//! | `topic.creation.default.replication.factor` | `-1` (the broker's `default.replication.factor`) | replication factor of the data topics the source creates |
//! | `topic.creation.default.<config>` | – | any topic config for the data topics the source creates, e.g. `topic.creation.default.min.insync.replicas = 2`, `compression.type`, `max.message.bytes`, `retention.ms` (read from the file, `${env:…}` / `${file:…}` references resolved; no `CDC_SOURCE_` override) |
//! | `errors.tolerance` | `all` | a table that cannot be published (its topic refused, two tables on one topic, an incompatible schema, undecodable text, a record the broker refuses: larger than the topic accepts, denied by an ACL): `all` skips that table alone (error log, `cdc_source_table_failures_total`) while the others keep flowing; `none` stops the source with the error |
//! | `http.listen` | `127.0.0.1:18083` | address of `/metrics`, `/health`, `/ready`, `/status` and the Kafka Connect `/connectors` reads |
//! | `http.failed.linger.ms` | `10000` | after a definite error, keep serving HTTP (state `FAILED` and the error) this long before exiting; SIGTERM ends it, `0` exits at once |
//! | `log.format` | `text` | `text` or `json` |
//! | `kafka.*` | `bootstrap.servers=127.0.0.1:9092` | passed to librdkafka |
//!
//! # Table patterns
//! As Debezium's, each pattern of `table.include.list` / `table.exclude.list` is an anchored
//! regex matched against `database.table`. A pattern with a `.` (escaped or not) is such a full
//! pattern; one without is a table pattern in the URL's database (`orders` means `mydb\.orders`).
//! So `ord.*` is a full pattern that matches tables of databases starting with `ord` — not
//! `mydb.orders`; write `orders.*` or `mydb\.ord.*`. A pattern that matches no existing table is
//! reported at start in a warning naming the pattern and the tables that exist.
//!
//! # Topic names
//! A Kafka topic name holds only ASCII letters, digits, `.`, `_` and `-` (at most 249
//! characters). As Debezium does, every other character of `topic.prefix` + table becomes `_`
//! (`a;b` → `a_b`, `ünï` → `_n_`), and each renamed mapping is logged once. Two captured tables
//! whose topics would be the same are refused at start with an error naming both (exclude one);
//! a table created later that collides is a table failure (see `errors.tolerance`).
//!
//! # Topic creation
//! The source creates its topics when it first writes to them, in Kafka Connect's spelling
//! (KIP-158): `topic.creation.default.*` for the data topics and
//! `offsets.topic.replication.factor` for the compacted offsets topic. Topics that exist already
//! are used as they are. Preflight checks the settings with a validate-only creation (a
//! replication factor above the broker count, an unknown config) and warns when the effective
//! replication factor is 1 on a cluster of more brokers.

use std::path::Path;
use std::time::Duration;

use cdc_common::{ConfigError, ConfigSpec, ConnectionUrl, LogFormat, RegistryKeys, Secret, TlsKeys};
use cdc_schema::{Registry, RegistryAccess};
pub use cdc_schema::TimePrecisionMode;
use serde::Deserialize;

/// Connect keys of the JDBC source connector that mean nothing for a binlog source.
const IGNORED: &[&str] = &[
    "mode",
    "incrementing.column.name",
    "timestamp.column.name",
    "poll.interval.ms",
    "validate.non.null",
    "query",
    "numeric.mapping",
    "dialect.name",
    "table.poll.interval.ms",
    "batch.max.rows.jdbc",
    // Read from the connector config as a whole (see `topic_configs`), not as one field each.
    "topic.creation.default.*",
];

/// Prefix of the topic configs of the data topics (KIP-158).
const TOPIC_CREATION_DEFAULT: &str = "topic.creation.default.";

pub const SPEC: ConfigSpec = ConfigSpec {
    env_prefix: "CDC_SOURCE_",
    ignored_keys: IGNORED,
    transforms_hint: "; topic names are `topic.prefix` + table name",
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    Avro,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SnapshotMode {
    Initial,
    Never,
    WhenNeeded,
}

/// What a table that cannot be published does (`errors.tolerance`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorTolerance {
    /// Stop the source with the table's error.
    None,
    /// Skip the table alone; the other tables keep flowing.
    All,
}

/// How the source creates a topic (KIP-158's `topic.creation.default.*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicCreation {
    /// `-1`: the broker's `num.partitions`.
    pub partitions: i32,
    /// `-1`: the broker's `default.replication.factor`.
    pub replication_factor: i32,
    /// Topic configs, e.g. `min.insync.replicas` → `2`.
    pub configs: std::collections::BTreeMap<String, String>,
}

/// The raw keys as written; [`SourceConfig::load`] turns them into a validated [`SourceConfig`].
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    name: Option<String>,
    #[serde(rename = "connection.url")]
    connection_url: Option<String>,
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
    #[serde(rename = "server.id", default = "d_server_id")]
    server_id: u32,
    #[serde(rename = "table.include.list")]
    table_include_list: Option<Vec<String>>,
    #[serde(rename = "table.whitelist")]
    table_whitelist: Option<Vec<String>>,
    #[serde(rename = "table.exclude.list")]
    table_exclude_list: Option<Vec<String>>,
    #[serde(rename = "topic.prefix", default = "d_topic_prefix")]
    topic_prefix: String,
    #[serde(default = "d_format")]
    format: Format,
    #[serde(rename = "schema.registry.url")]
    schema_registry_url: Option<String>,
    #[serde(rename = "delete.enabled", default)]
    delete_enabled: bool,
    #[serde(rename = "time.precision.mode", default)]
    time_precision_mode: TimePrecisionMode,
    #[serde(rename = "snapshot.mode", default = "d_snapshot_mode")]
    snapshot_mode: SnapshotMode,
    #[serde(rename = "snapshot.chunk.size", default = "d_chunk")]
    snapshot_chunk_size: u32,
    #[serde(rename = "incremental.snapshot.chunk.size", default = "d_incremental_chunk")]
    incremental_chunk_size: u32,
    #[serde(rename = "signal.data.collection")]
    signal_data_collection: Option<String>,
    #[serde(rename = "snapshot.new.tables", default = "d_new_tables")]
    snapshot_new_tables: String,
    #[serde(rename = "offsets.topic", default = "d_offsets_topic")]
    offsets_topic: String,
    #[serde(rename = "batch.max.rows", default = "d_batch_rows")]
    batch_max_rows: u32,
    #[serde(rename = "batch.max.ms", default = "d_batch_ms")]
    batch_max_ms: u64,
    #[serde(rename = "heartbeat.interval.ms", default = "d_heartbeat_ms")]
    heartbeat_interval_ms: u64,
    #[serde(rename = "read.timeout.ms")]
    read_timeout_ms: Option<u64>,
    #[serde(rename = "connect.timeout.ms", default = "d_connect_timeout_ms")]
    connect_timeout_ms: u64,
    #[serde(rename = "retry.backoff.max.ms", default = "d_retry_max_ms")]
    retry_backoff_max_ms: u64,
    #[serde(rename = "topic.partitions")]
    topic_partitions: Option<i32>,
    #[serde(rename = "topic.creation.default.partitions")]
    topic_creation_partitions: Option<i32>,
    #[serde(rename = "topic.creation.default.replication.factor", default = "d_replication")]
    topic_creation_replication_factor: i32,
    #[serde(rename = "offsets.topic.replication.factor", default = "d_replication")]
    offsets_topic_replication_factor: i32,
    #[serde(rename = "errors.tolerance", default = "d_tolerance")]
    errors_tolerance: ErrorTolerance,
    #[serde(rename = "http.listen", default = "d_http")]
    http_listen: String,
    #[serde(rename = "http.failed.linger.ms", default = "d_failed_linger_ms")]
    http_failed_linger_ms: u64,
    #[serde(rename = "log.format", default)]
    log_format: LogFormat,
}

fn d_server_id() -> u32 {
    5401
}
fn d_topic_prefix() -> String {
    "my_topic_".into()
}
fn d_format() -> Format {
    Format::Avro
}
fn d_snapshot_mode() -> SnapshotMode {
    SnapshotMode::Initial
}
fn d_chunk() -> u32 {
    20_000
}
fn d_incremental_chunk() -> u32 {
    1024
}
fn d_new_tables() -> String {
    "incremental".into()
}
fn d_offsets_topic() -> String {
    "_cdc_source_offsets".into()
}
fn d_batch_rows() -> u32 {
    5000
}
fn d_batch_ms() -> u64 {
    20
}
fn d_heartbeat_ms() -> u64 {
    5000
}
fn d_connect_timeout_ms() -> u64 {
    10_000
}
fn d_retry_max_ms() -> u64 {
    5_000
}
fn d_partitions() -> i32 {
    1
}
fn d_replication() -> i32 {
    -1
}
fn d_tolerance() -> ErrorTolerance {
    ErrorTolerance::All
}
fn d_http() -> String {
    "127.0.0.1:18083".into()
}
fn d_failed_linger_ms() -> u64 {
    10_000
}

/// A validated source configuration.
#[derive(Debug, Clone)]
pub struct SourceConfig {
    pub name: String,
    pub url: ConnectionUrl,
    pub user: String,
    pub password: Option<Secret>,
    /// The database of `connection.url`; unqualified table patterns refer to it.
    pub database: String,
    pub server_id: u32,
    pub tables: TableFilter,
    pub topic_prefix: String,
    pub format: Format,
    /// `schema.registry.url` without credentials (safe to print).
    pub registry_url: Option<String>,
    /// The registry client with its CA and basic auth (set when `schema.registry.url` is).
    pub registry: Option<Registry>,
    pub delete_enabled: bool,
    pub time_precision_mode: TimePrecisionMode,
    pub snapshot_mode: SnapshotMode,
    pub snapshot_chunk_size: u32,
    /// `incremental.snapshot.chunk.size`.
    pub incremental_chunk_size: u32,
    /// The signal table (`signal.data.collection`), database and table.
    pub signal_table: Option<(String, String)>,
    /// Copy newly captured tables at start (`snapshot.new.tables=incremental`).
    pub snapshot_new_tables: bool,
    pub offsets_topic: String,
    pub batch_max_rows: usize,
    pub batch_max: Duration,
    pub heartbeat: Duration,
    pub read_timeout: Duration,
    /// How the data topics are created.
    pub topic_creation: TopicCreation,
    /// How the offsets topic is created (compacted, one partition).
    pub offsets_topic_creation: TopicCreation,
    pub errors_tolerance: ErrorTolerance,
    pub connect_timeout: Duration,
    /// `retry.backoff.max.ms`: the longest wait between two attempts after transient errors.
    pub retry_backoff_max: Duration,
    pub http_listen: String,
    /// How long HTTP keeps serving after a definite error (`http.failed.linger.ms`).
    pub http_failed_linger: Duration,
    pub log_format: LogFormat,
    /// librdkafka properties from `kafka.*`.
    pub kafka: std::collections::BTreeMap<String, String>,
    /// Keys present but meaningless here (reported once at start).
    pub ignored: Vec<String>,
    /// Every key as given, secrets masked, for `GET /connectors/<name>/config`.
    pub connect_config: std::collections::BTreeMap<String, String>,
}

/// Where the source's records are: see [`SourceConfig::load_endpoints`].
#[derive(Debug, Clone, Default)]
pub struct Endpoints {
    /// librdkafka properties from `kafka.*` (possibly without `bootstrap.servers`).
    pub kafka: std::collections::BTreeMap<String, String>,
    pub registry_url: Option<String>,
    /// The registry's CA and basic-auth keys.
    pub registry: RegistryKeys,
}

impl SourceConfig {
    /// Loads and validates; every error names the exact key.
    pub fn load(path: Option<&Path>) -> Result<Self, ConfigError> {
        let loaded = cdc_common::load::<Raw>(path, &SPEC)?;
        Self::validate(loaded)
    }

    /// Like [`SourceConfig::load`] from text, with an explicit environment (for tests).
    pub fn from_str(text: &str, env: &[(&str, &str)]) -> Result<Self, ConfigError> {
        let vars: Vec<(String, String)> =
            env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let loaded = cdc_common::config::load_from_str::<Raw>(
            text,
            Path::new("<text>"),
            &SPEC,
            |n| vars.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone()),
            vars.clone(),
        )?;
        Self::validate(loaded)
    }

    /// Only the addresses of Kafka (`kafka.*`) and the registry (`schema.registry.url`), read like
    /// [`SourceConfig::load`] (same keys, same environment overrides) without requiring or
    /// validating anything else: what a reader of the source's topics (`cdc-source watch`) needs.
    pub fn load_endpoints(path: Option<&Path>) -> Result<Endpoints, ConfigError> {
        let loaded = cdc_common::load::<Raw>(path, &SPEC)?;
        Ok(Endpoints { kafka: loaded.kafka, registry_url: loaded.config.schema_registry_url, registry: loaded.registry })
    }

    fn validate(loaded: cdc_common::Loaded<Raw>) -> Result<Self, ConfigError> {
        let raw = loaded.config;
        let url_text = raw
            .connection_url
            .ok_or_else(|| ConfigError::invalid("connection.url", "is required, e.g. jdbc:mysql://127.0.0.1:3306/mydb"))?;
        let mut url = ConnectionUrl::parse(&url_text).map_err(|e| ConfigError::invalid("connection.url", e.to_string()))?;
        url.tls
            .apply_keys(&TlsKeys {
                mode: raw.connection_ssl_mode.as_deref(),
                ca: raw.connection_ssl_ca.as_deref(),
                cert: raw.connection_ssl_cert.as_deref(),
                key: raw.connection_ssl_key.as_deref(),
            })
            .map_err(|(key, message)| ConfigError::invalid(key, message))?;
        let database = url.database.clone().filter(|d| !d.is_empty()).ok_or_else(|| {
            ConfigError::invalid("connection.url", "names no database; add it as the path, e.g. jdbc:mysql://host:3306/mydb")
        })?;
        let signal_table = match raw.signal_data_collection.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
            None => None,
            Some(name) => {
                let (db, table) = name.split_once('.').unwrap_or((database.as_str(), name));
                if db.is_empty() || table.is_empty() || table.contains('.') {
                    return Err(ConfigError::invalid("signal.data.collection", "must be a table name, database.table (e.g. mydb.cdc_signal)"));
                }
                Some((db.to_string(), table.to_string()))
            }
        };
        let user = raw.connection_user.or_else(|| url.user.clone()).ok_or_else(|| {
            ConfigError::invalid("connection.user", "is required (or put the user in connection.url)")
        })?;
        let password = raw.connection_password.or_else(|| url.password.clone());
        if raw.server_id == 0 {
            return Err(ConfigError::invalid("server.id", "must be 1..4294967295 and differ from every server and replica id"));
        }
        if raw.table_include_list.is_some() && raw.table_whitelist.is_some() {
            return Err(ConfigError::invalid("table.whitelist", "is the older spelling of table.include.list; set only one of them"));
        }
        let (include_key, include) = match (raw.table_include_list, raw.table_whitelist) {
            (Some(l), _) => ("table.include.list", l),
            (None, Some(l)) => ("table.whitelist", l),
            (None, None) => ("table.include.list", Vec::new()),
        };
        let tables = TableFilter::new(
            &database,
            (include_key, &include),
            ("table.exclude.list", raw.table_exclude_list.as_deref().unwrap_or(&[])),
        )?;
        if !valid_topic_part(&raw.topic_prefix) {
            return Err(ConfigError::invalid("topic.prefix", "may contain only ASCII letters, digits, '.', '_' and '-'"));
        }
        if !valid_topic_part(&raw.offsets_topic) || raw.offsets_topic.is_empty() {
            return Err(ConfigError::invalid("offsets.topic", "must be a topic name of ASCII letters, digits, '.', '_' and '-'"));
        }
        if raw.format == Format::Avro && raw.schema_registry_url.is_none() {
            return Err(ConfigError::invalid("schema.registry.url", "is required with format=avro (or set format=json)"));
        }
        if raw.snapshot_chunk_size == 0 {
            return Err(ConfigError::invalid("snapshot.chunk.size", "must be at least 1"));
        }
        if raw.incremental_chunk_size == 0 {
            return Err(ConfigError::invalid("incremental.snapshot.chunk.size", "must be at least 1"));
        }
        let snapshot_new_tables = match raw.snapshot_new_tables.trim().to_ascii_lowercase().as_str() {
            "incremental" => true,
            "off" => false,
            _ => return Err(ConfigError::invalid("snapshot.new.tables", "must be `incremental` (copy a newly captured table at start) or `off`")),
        };
        if raw.batch_max_rows == 0 {
            return Err(ConfigError::invalid("batch.max.rows", "must be at least 1"));
        }
        if raw.heartbeat_interval_ms < 100 {
            return Err(ConfigError::invalid("heartbeat.interval.ms", "must be at least 100"));
        }
        let read_timeout_ms = raw.read_timeout_ms.unwrap_or(2 * raw.heartbeat_interval_ms);
        if read_timeout_ms <= raw.heartbeat_interval_ms {
            return Err(ConfigError::invalid("read.timeout.ms", "must be larger than heartbeat.interval.ms (the default is twice it)"));
        }
        if raw.connect_timeout_ms < 100 {
            return Err(ConfigError::invalid("connect.timeout.ms", "must be at least 100"));
        }
        let (partitions_key, partitions) = match (raw.topic_partitions, raw.topic_creation_partitions) {
            (Some(_), Some(_)) => {
                return Err(ConfigError::invalid("topic.partitions", "is the older spelling of topic.creation.default.partitions; set only one of them"))
            }
            (Some(n), None) => ("topic.partitions", n),
            (None, Some(n)) => ("topic.creation.default.partitions", n),
            (None, None) => ("topic.creation.default.partitions", d_partitions()),
        };
        if partitions < 1 && partitions != -1 {
            return Err(ConfigError::invalid(partitions_key, "must be at least 1, or -1 for the broker's num.partitions"));
        }
        for (key, rf) in [
            ("topic.creation.default.replication.factor", raw.topic_creation_replication_factor),
            ("offsets.topic.replication.factor", raw.offsets_topic_replication_factor),
        ] {
            if rf < 1 && rf != -1 {
                return Err(ConfigError::invalid(key, "must be at least 1, or -1 for the broker's default.replication.factor"));
            }
        }
        let configs = topic_configs(&loaded.connect_config)?;
        let mut ignored = loaded.ignored;
        ignored.retain(|k| !k.starts_with(TOPIC_CREATION_DEFAULT));
        let name = raw
            .name
            .or(loaded.connector_name)
            .unwrap_or_else(|| "cdc-source".to_string());
        if name.is_empty() || !valid_topic_part(&name) {
            return Err(ConfigError::invalid("name", "must be non-empty ASCII letters, digits, '.', '_' and '-'"));
        }
        let mut kafka = loaded.kafka;
        kafka.entry("bootstrap.servers".into()).or_insert_with(|| "127.0.0.1:9092".into());
        for reserved in ["transactional.id", "enable.idempotence", "isolation.level"] {
            if kafka.contains_key(reserved) {
                return Err(ConfigError::invalid(&format!("kafka.{reserved}"), "is set by the source itself (exactly-once delivery); remove it"));
            }
        }
        let registry = raw
            .schema_registry_url
            .as_deref()
            .map(|u| registry_client(u, &loaded.registry))
            .transpose()?;
        Ok(SourceConfig {
            name,
            url,
            user,
            password,
            database,
            server_id: raw.server_id,
            tables,
            topic_prefix: raw.topic_prefix,
            format: raw.format,
            registry_url: registry.as_ref().map(|r| r.url().to_string()),
            registry,
            delete_enabled: raw.delete_enabled,
            time_precision_mode: raw.time_precision_mode,
            snapshot_mode: raw.snapshot_mode,
            snapshot_chunk_size: raw.snapshot_chunk_size,
            incremental_chunk_size: raw.incremental_chunk_size,
            signal_table,
            snapshot_new_tables,
            offsets_topic: raw.offsets_topic,
            batch_max_rows: raw.batch_max_rows as usize,
            batch_max: Duration::from_millis(raw.batch_max_ms),
            heartbeat: Duration::from_millis(raw.heartbeat_interval_ms),
            read_timeout: Duration::from_millis(read_timeout_ms),
            connect_timeout: Duration::from_millis(raw.connect_timeout_ms),
            retry_backoff_max: Duration::from_millis(raw.retry_backoff_max_ms.max(200)),
            topic_creation: TopicCreation {
                partitions,
                replication_factor: raw.topic_creation_replication_factor,
                configs,
            },
            offsets_topic_creation: TopicCreation {
                partitions: 1,
                replication_factor: raw.offsets_topic_replication_factor,
                configs: [("cleanup.policy".to_string(), "compact".to_string())].into(),
            },
            errors_tolerance: raw.errors_tolerance,
            http_listen: raw.http_listen,
            http_failed_linger: Duration::from_millis(raw.http_failed_linger_ms),
            log_format: raw.log_format,
            kafka,
            ignored,
            connect_config: loaded.connect_config,
        })
    }

    /// The topic of a table: `topic.prefix` + table, sanitised (see *Topic names*).
    pub fn topic(&self, table: &str) -> String {
        crate::records::topic_name(&format!("{}{}", self.topic_prefix, table))
    }

    /// How long opening a replica connection and waiting for its next event may take.
    pub fn replica_timeouts(&self) -> crate::binlog::reader::Timeouts {
        crate::binlog::reader::Timeouts { connect: self.connect_timeout, read: self.read_timeout }
    }

    /// The options of a connection to the source server (always TCP, with keepalive).
    pub fn mysql_opts(&self) -> mysql_async::Opts {
        self.url
            .opts(Some(&self.user), self.password.as_ref())
            .into()
    }
}

/// The registry client for `url` with the registry keys of the config.
pub(crate) fn registry_client(url: &str, keys: &RegistryKeys) -> Result<Registry, ConfigError> {
    let access = RegistryAccess {
        ca_pem: keys.ca_pem.clone(),
        user_info: keys.user_info.as_ref().map(|(u, p)| (u.clone(), p.expose().to_string())),
    };
    Registry::connect(url, &access).map_err(|e| ConfigError::invalid("schema.registry.ssl.ca.location", e.to_string()))
}

/// The `topic.creation.default.<config>` keys other than partitions and replication factor.
fn topic_configs(all: &std::collections::BTreeMap<String, String>) -> Result<std::collections::BTreeMap<String, String>, ConfigError> {
    let mut configs = std::collections::BTreeMap::new();
    for (key, value) in all {
        let Some(config) = key.strip_prefix(TOPIC_CREATION_DEFAULT) else { continue };
        if matches!(config, "partitions" | "replication.factor") {
            continue;
        }
        if config.is_empty() || value.is_empty() {
            return Err(ConfigError::invalid(key, "needs a topic config name and a value, e.g. topic.creation.default.min.insync.replicas = 2"));
        }
        // These keys come from the config as given: resolve `${env:…}` / `${file:…}` here.
        let value = cdc_common::providers::resolve(value, &|n| std::env::var(n).ok()).map_err(|m| ConfigError::invalid(key, m))?;
        configs.insert(config.to_string(), value);
    }
    Ok(configs)
}

fn valid_topic_part(s: &str) -> bool {
    s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

#[path = "config_tables.rs"]
mod tables;
pub use tables::TableFilter;

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
