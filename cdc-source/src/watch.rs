//! `cdc-source watch TOPIC…`: the records of topics, decoded, one JSON object per line on stdout.
//!
//! ## What it prints
//! One line per record: `topic`, `partition`, `offset`, `timestamp` (the Kafka record timestamp,
//! ms since the epoch), `key` and `value` (decoded, `null` when absent), `headers` (name → UTF-8
//! text, lossy). A null value is marked `"tombstone":true`; a record with header `cdc.op=t` is
//! marked `"truncate":true` (and never `tombstone`). Both wire formats of the pipeline are read,
//! detected per message by the same [`Decoder`] jdbc-sink uses: Avro in the Confluent wire format
//! (schemas fetched by id from the registry, cached) and Kafka Connect JSON with schema (the
//! `payload`, typed by its `schema`). Column values print as MariaDB would show them:
//!
//! | value | printed as |
//! |---|---|
//! | integers, FLOAT, DOUBLE, BIT(1) | JSON numbers / booleans (FLOAT in its shortest form: `0.1`) |
//! | DECIMAL, BIGINT UNSIGNED | a string with every digit: `"12.50"` |
//! | DATE / TIME / DATETIME | `"2024-01-31"` / `"-01:02:03.000000"` / `"2024-01-31 12:00:00.000000"` |
//! | TIMESTAMP | UTC, RFC 3339: `"2024-01-31T12:00:00.000000Z"`; the zero timestamp `"0000-00-00 00:00:00"` |
//! | text, ENUM, SET, JSON | a string |
//! | binary, BIT(n>1), GEOMETRY | base64, as Kafka Connect's JsonConverter writes bytes |
//!
//! A record that cannot be decoded prints `"error"` (naming the part and the cause) and
//! `"raw":{"key":…,"value":…}` (base64), and the watch goes on.
//!
//! ## Modes
//! From the first retained offset (`--from beginning`, the default) or from the end (`--from end`).
//! Without `--follow` it stops once every partition reached the end offset it had at start
//! (the last stable offset: records of transactions still open are not awaited), so it suits
//! scripts; with `--follow` it runs until SIGINT/SIGTERM. `--max N` stops after N lines. Reads
//! use `isolation.level=read_committed` and `assign` (no group membership, no offset commits).
//! Topic arguments are names, or regexes (any of `*+?()[]{}|^$\`) matched against whole topic
//! names, e.g. `'my_topic_.*'`; the set of topics is fixed at start.
//!
//! ## Addresses
//! Kafka: `--bootstrap-servers`, else `kafka.bootstrap.servers` of `--config` (a cdc-source config;
//! nothing else of it is required, e.g. no `connection.url`), else `CDC_KAFKA_BOOTSTRAP`, else
//! `127.0.0.1:9092`. Every other `kafka.*` key of the config (TLS, SASL) is passed to the consumer
//! too. Registry: `--registry-url`, else `schema.registry.url`, else `CDC_REGISTRY_URL`; without one,
//! Avro records print an error line. The `CDC_SOURCE_*` overrides apply as for the service.
//!
//! ## Errors
//! Exit 2: bad arguments or config, a topic that does not exist, a pattern that matches nothing.
//! Exit 1: Kafka unreachable, or the registry unreachable when an Avro record needs it (after a
//! few retries). Exit 0 otherwise, also when stdout is closed (`| head`).

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::Path;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use cdc_common::kafka::{client_config, Role};
use cdc_schema::{DateTime, DecodeError, Decoder, MessageRef, Part, Record, Registry, Value};
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{Headers, Message};
use rdkafka::{Offset, TopicPartitionList};
use serde_json::{json, Map, Value as Json};

use crate::config::{Endpoints, SourceConfig};
use crate::offsets::QuietEof;

/// Kafka when neither a flag, the config nor the environment names one.
const DEFAULT_BOOTSTRAP: &str = "127.0.0.1:9092";
/// How long metadata and offset requests may take before Kafka counts as unreachable.
const KAFKA_TIMEOUT: Duration = Duration::from_secs(10);
/// Attempts at a registry lookup before the watch stops.
const REGISTRY_ATTEMPTS: u32 = 4;

/// Where to start reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StartAt {
    Beginning,
    End,
}

/// The arguments of `cdc-source watch`.
#[derive(Debug, Clone, clap::Args)]
pub struct WatchArgs {
    /// Topic names, or regexes matched against whole topic names (e.g. 'my_topic_.*').
    #[arg(required = true, value_name = "TOPIC")]
    pub topics: Vec<String>,
    /// Kafka bootstrap servers [default: kafka.bootstrap.servers of --config, else
    /// $CDC_KAFKA_BOOTSTRAP, else 127.0.0.1:9092].
    #[arg(long, value_name = "HOST:PORT,…")]
    pub bootstrap_servers: Option<String>,
    /// Confluent-API schema registry [default: schema.registry.url of --config, else
    /// $CDC_REGISTRY_URL].
    #[arg(long, value_name = "URL")]
    pub registry_url: Option<String>,
    /// Start from the first retained record or from the end.
    #[arg(long, value_enum, default_value_t = StartAt::Beginning)]
    pub from: StartAt,
    /// Keep printing new records (until SIGINT/SIGTERM) instead of stopping at the end offsets
    /// that existed at start.
    #[arg(long)]
    pub follow: bool,
    /// Stop after this many records.
    #[arg(long, value_name = "N")]
    pub max: Option<u64>,
}

/// Why the watch stopped early.
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    /// Bad arguments or config: exit 2.
    #[error("{0}")]
    Usage(String),
    /// Kafka or the registry failed: exit 1.
    #[error("{0}")]
    Failed(String),
}

/// Resolved addresses: librdkafka properties (with `bootstrap.servers`) and the registry URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub kafka: BTreeMap<String, String>,
    pub registry_url: Option<String>,
    /// The registry's CA and basic auth, from the config file.
    pub registry_keys: cdc_common::RegistryKeys,
}

impl Target {
    /// Flags, then the config file (with its `CDC_SOURCE_*` overrides), then the stack's
    /// `CDC_KAFKA_BOOTSTRAP` / `CDC_REGISTRY_URL`, then the default bootstrap.
    pub fn resolve(config: Endpoints, args: &WatchArgs, env: impl Fn(&str) -> Option<String>) -> Target {
        let mut kafka = config.kafka;
        let bootstrap = args
            .bootstrap_servers
            .clone()
            .or_else(|| kafka.get("bootstrap.servers").cloned())
            .or_else(|| env("CDC_KAFKA_BOOTSTRAP"))
            .unwrap_or_else(|| DEFAULT_BOOTSTRAP.to_string());
        kafka.insert("bootstrap.servers".into(), bootstrap);
        let registry_url = args.registry_url.clone().or(config.registry_url).or_else(|| env("CDC_REGISTRY_URL"));
        Target { kafka, registry_url, registry_keys: config.registry }
    }

    fn bootstrap(&self) -> &str {
        self.kafka.get("bootstrap.servers").map_or(DEFAULT_BOOTSTRAP, String::as_str)
    }

    /// The registry client, with the config file's CA and credentials.
    fn registry(&self) -> Result<Option<Registry>, WatchError> {
        self.registry_url
            .as_deref()
            .map(|url| crate::config::registry_client(url, &self.registry_keys).map_err(|e| WatchError::Usage(e.to_string())))
            .transpose()
    }
}

/// Runs `cdc-source watch`: loads the addresses, prints until done; the process exit code.
pub fn main(config: Option<&Path>, args: &WatchArgs) -> std::process::ExitCode {
    // Logs (librdkafka's complaints, mostly) go to stderr: stdout carries only records.
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into());
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).try_init();
    let result = SourceConfig::load_endpoints(config)
        .map_err(|e| WatchError::Usage(format!("config error: {e}")))
        .map(|endpoints| Target::resolve(endpoints, args, |n| std::env::var(n).ok()))
        .and_then(|target| {
            let rt = tokio::runtime::Runtime::new().map_err(|e| WatchError::Failed(format!("cannot start the runtime: {e}")))?;
            let shutdown = rt.block_on(async { cdc_common::shutdown_on_signals() });
            rt.block_on(watch(&target, args, &mut std::io::stdout().lock(), &shutdown))
        });
    match result {
        Ok(_) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cdc-source watch: {e}");
            std::process::ExitCode::from(match e {
                WatchError::Usage(_) => 2,
                WatchError::Failed(_) => 1,
            })
        }
    }
}

/// One assigned partition and the offset at which it is done (without `--follow`).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Partition {
    topic: String,
    partition: i32,
    start: i64,
    end: i64,
}

/// Prints the records of `args.topics` to `out` until done; how many lines were printed.
pub async fn watch(
    target: &Target,
    args: &WatchArgs,
    out: &mut dyn Write,
    shutdown: &cdc_common::CancellationToken,
) -> Result<u64, WatchError> {
    let consumer: StreamConsumer<QuietEof> = client_config(Role::Consumer, &target.kafka)
        .set("group.id", format!("cdc-source-watch-{}-{}", std::process::id(), unix_nanos()))
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("isolation.level", "read_committed")
        .set("enable.partition.eof", "true")
        .create_with_context(QuietEof)
        .map_err(|e| WatchError::Usage(format!("invalid Kafka settings: {e}")))?;
    let partitions = tokio::task::block_in_place(|| plan(&consumer, target, args))?;
    let mut pending: HashMap<(String, i32), i64> = partitions
        .iter()
        .filter(|p| args.follow || p.start < p.end)
        .map(|p| ((p.topic.clone(), p.partition), p.end))
        .collect();
    let mut tpl = TopicPartitionList::new();
    for p in &partitions {
        tpl.add_partition_offset(&p.topic, p.partition, Offset::Offset(p.start))
            .map_err(|e| WatchError::Failed(e.to_string()))?;
    }
    consumer.assign(&tpl).map_err(|e| WatchError::Failed(format!("cannot read the topics: {e}")))?;
    let decoder = Decoder::new(target.registry()?);
    let mut printed = 0u64;
    while (args.follow || !pending.is_empty()) && args.max.is_none_or(|max| printed < max) {
        let next = tokio::select! {
            () = shutdown.cancelled() => break,
            next = tokio::time::timeout(Duration::from_millis(500), consumer.recv()) => next,
        };
        let msg = match next {
            Err(_) | Ok(Err(KafkaError::PartitionEOF(_))) => {
                // Transaction markers move the position without a message: look it up.
                if !args.follow {
                    drop_reached(&consumer, &mut pending)?;
                }
                continue;
            }
            Ok(Err(e)) => return Err(WatchError::Failed(format!("reading from Kafka failed: {e}"))),
            Ok(Ok(msg)) => msg,
        };
        let at = (msg.topic().to_string(), msg.partition());
        let end = pending.get(&at).copied();
        if !args.follow && end.is_none_or(|end| msg.offset() >= end) {
            continue; // past the end that existed at start
        }
        let headers: Vec<(String, Option<String>)> = msg
            .headers()
            .map(|h| h.iter().map(|h| (h.key.to_string(), h.value.map(|v| String::from_utf8_lossy(v).into_owned()))).collect())
            .unwrap_or_default();
        let raw = Raw {
            topic: msg.topic(),
            partition: msg.partition(),
            offset: msg.offset(),
            timestamp: msg.timestamp().to_millis(),
            key: msg.key(),
            value: msg.payload(),
            headers: &headers,
        };
        let line = render(&decoder, &raw).await?;
        match writeln!(out, "{line}").and_then(|()| out.flush()) {
            Ok(()) => printed += 1,
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => break,
            Err(e) => return Err(WatchError::Failed(format!("cannot write to stdout: {e}"))),
        }
        if !args.follow && end.is_some_and(|end| msg.offset() + 1 >= end) {
            pending.remove(&at);
        }
    }
    Ok(printed)
}

/// The partitions of the topics the arguments name, with start and end offsets.
fn plan(consumer: &StreamConsumer<QuietEof>, target: &Target, args: &WatchArgs) -> Result<Vec<Partition>, WatchError> {
    let unreachable = |e: KafkaError| {
        WatchError::Failed(format!(
            "cannot reach Kafka at {}: {e}; check --bootstrap-servers (or kafka.bootstrap.servers of --config) and that Kafka runs",
            target.bootstrap()
        ))
    };
    let md = consumer.fetch_metadata(None, KAFKA_TIMEOUT).map_err(unreachable)?;
    let mut existing: BTreeMap<String, Vec<i32>> = BTreeMap::new();
    for t in md.topics().iter().filter(|t| t.error().is_none()) {
        existing.insert(t.name().to_string(), t.partitions().iter().map(|p| p.id()).collect());
    }
    let names: Vec<String> = existing.keys().cloned().collect();
    let mut out = Vec::new();
    for topic in select(&args.topics, &names, target.bootstrap())? {
        for &partition in &existing[&topic] {
            let (low, high) = consumer.fetch_watermarks(&topic, partition, KAFKA_TIMEOUT).map_err(unreachable)?;
            let start = match args.from {
                StartAt::Beginning => low,
                StartAt::End => high,
            };
            out.push(Partition { topic: topic.clone(), partition, start, end: high });
        }
    }
    Ok(out)
}

/// The topics named by `args` among `existing`, sorted; internal topics (`__…`) only by name.
fn select(args: &[String], existing: &[String], bootstrap: &str) -> Result<Vec<String>, WatchError> {
    let mut chosen = std::collections::BTreeSet::new();
    for arg in args {
        if !arg.contains(['*', '+', '?', '(', ')', '[', ']', '{', '}', '|', '^', '$', '\\']) {
            if !existing.contains(arg) {
                return Err(WatchError::Usage(format!(
                    "topic `{arg}` does not exist on {bootstrap}; list the topics with `stack/kafka-cli topics --list` (a source creates its topics when it starts)"
                )));
            }
            chosen.insert(arg.clone());
            continue;
        }
        let pattern = arg.trim_start_matches('^').trim_end_matches('$');
        let re = regex::Regex::new(&format!("^(?:{pattern})$"))
            .map_err(|e| WatchError::Usage(format!("topic pattern `{arg}` is not a valid regex: {e}")))?;
        let matched: Vec<&String> = existing.iter().filter(|t| !t.starts_with("__") && re.is_match(t)).collect();
        if matched.is_empty() {
            return Err(WatchError::Usage(format!("topic pattern `{arg}` matches no topic on {bootstrap}")));
        }
        chosen.extend(matched.into_iter().cloned());
    }
    Ok(chosen.into_iter().collect())
}

/// Removes the partitions whose consumer position reached their end.
fn drop_reached(consumer: &StreamConsumer<QuietEof>, pending: &mut HashMap<(String, i32), i64>) -> Result<(), WatchError> {
    if pending.is_empty() {
        return Ok(());
    }
    let positions = consumer.position().map_err(|e| WatchError::Failed(format!("cannot read the consumer position: {e}")))?;
    pending.retain(|(topic, partition), end| {
        !matches!(positions.find_partition(topic, *partition).map(|e| e.offset()), Some(Offset::Offset(pos)) if pos >= *end)
    });
    Ok(())
}

fn unix_nanos() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos())
}

/// One consumed record, as bytes.
#[derive(Debug)]
struct Raw<'a> {
    topic: &'a str,
    partition: i32,
    offset: i64,
    timestamp: Option<i64>,
    key: Option<&'a [u8]>,
    value: Option<&'a [u8]>,
    headers: &'a [(String, Option<String>)],
}

/// The printed line of one record; `Err` only when the registry stays unreachable.
async fn render(decoder: &Decoder, raw: &Raw<'_>) -> Result<Json, WatchError> {
    let mut line = Map::new();
    line.insert("topic".into(), json!(raw.topic));
    line.insert("partition".into(), json!(raw.partition));
    line.insert("offset".into(), json!(raw.offset));
    line.insert("timestamp".into(), json!(raw.timestamp));
    let headers: Map<String, Json> = raw.headers.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
    let truncate = headers.get("cdc.op").and_then(Json::as_str) == Some("t");
    let at = MessageRef { topic: raw.topic, partition: raw.partition, offset: raw.offset };
    // An empty key is no key (as jdbc-sink reads it); an empty value is an error.
    let decoded = match decode(decoder, at, Part::Key, raw.key.filter(|k| !k.is_empty())).await? {
        Ok(key) => decode(decoder, at, Part::Value, raw.value).await?.map(|value| (key, value)),
        Err(e) => Err(e),
    };
    match decoded {
        Ok((key, value)) => {
            let tombstone = value.is_none() && !truncate;
            line.insert("key".into(), key.as_ref().map_or(Json::Null, record_json));
            line.insert("value".into(), value.as_ref().map_or(Json::Null, record_json));
            if tombstone {
                line.insert("tombstone".into(), json!(true));
            }
            if truncate {
                line.insert("truncate".into(), json!(true));
            }
        }
        Err(e) => {
            line.insert("error".into(), json!(e.to_string()));
            let b64 = |b: Option<&[u8]>| json!(b.map(|b| BASE64.encode(b)));
            line.insert("raw".into(), json!({"key": b64(raw.key), "value": b64(raw.value)}));
        }
    }
    line.insert("headers".into(), Json::Object(headers));
    Ok(Json::Object(line))
}

/// Decodes one part (`None` stays `None`), retrying registry outages a few times.
async fn decode(
    decoder: &Decoder,
    at: MessageRef<'_>,
    part: Part,
    bytes: Option<&[u8]>,
) -> Result<Result<Option<Record>, DecodeError>, WatchError> {
    let Some(bytes) = bytes else { return Ok(Ok(None)) };
    let mut delay = Duration::from_millis(250);
    for attempt in 1.. {
        match decoder.decode(at, part, bytes).await {
            Ok(record) => return Ok(Ok(Some(record))),
            Err(e) if e.is_transient() && attempt < REGISTRY_ATTEMPTS => {
                tracing::warn!(error = %e, "retrying");
                tokio::time::sleep(delay).await;
                delay *= 2;
            }
            Err(e) if e.is_transient() => return Err(WatchError::Failed(format!("{e} (or pass --registry-url)"))),
            Err(e) => return Ok(Err(e)),
        }
    }
    unreachable!("the loop returns")
}

/// A decoded record as a JSON object, field → value in field order.
fn record_json(record: &Record) -> Json {
    let fields = record.schema.fields.iter().zip(&record.values);
    Json::Object(fields.map(|(f, v)| (f.name.clone(), value_json(v))).collect())
}

/// One value as a person reads it (see the module docs' table).
fn value_json(value: &Value) -> Json {
    let float = |f: f64| serde_json::Number::from_f64(f).map_or_else(|| json!(f.to_string()), Json::Number);
    match value {
        Value::Null => Json::Null,
        Value::Bool(b) => json!(b),
        Value::Int(i) => json!(i),
        // Through the f32's shortest text, so 0.1f32 prints 0.1 rather than 0.10000000149011612.
        Value::Float(f) => f.to_string().parse().map_or_else(|_| json!(f.to_string()), float),
        Value::Double(d) => float(*d),
        Value::Decimal(d) => json!(d.to_string()),
        Value::Date(d) => json!(d.to_string()),
        Value::Time(micros) => json!(cdc_schema::format_time(*micros)),
        Value::DateTime(dt) => json!(dt.to_string()),
        Value::Timestamp(0) => json!("0000-00-00 00:00:00"),
        Value::Timestamp(micros) => match DateTime::from_epoch_micros(*micros) {
            Some(t) => json!(format!("{}T{:02}:{:02}:{:02}.{:06}Z", t.date, t.hour, t.minute, t.second, t.micros)),
            None => json!(micros),
        },
        Value::String(s) => json!(s),
        Value::Bytes(b) => json!(BASE64.encode(b)),
    }
}


#[cfg(test)]
#[path = "watch_tests.rs"]
mod tests;
