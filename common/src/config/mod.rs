//! Config loading: one flat map of Kafka-Connect-style dotted keys, from a TOML file or a Kafka
//! Connect connector JSON, overridden by environment variables, deserialized into the service's
//! own config struct.
//!
//! Here: [`load`] and the environment overrides. `file` turns the file's text into the flat map,
//! `de` deserializes the flat map into the service's struct, `error` holds [`ConfigError`].
//!
//! # File formats (detected by content)
//! - **Kafka Connect connector JSON**: the file's first non-blank character is `{`. Either
//!   `{"name": "...", "config": {...}}` as posted to Connect's `/connectors`, or the bare
//!   `config` object. Values are strings (`"true"`, `"3000"`); numbers and booleans are accepted too.
//! - **TOML** otherwise. A key is the dotted Connect spelling, written either quoted
//!   (`"batch.size" = 500`) or as nested tables that flatten to the same name
//!   (`[batch]` / `size = 500`). Both spellings of one key in one file are an error. Arrays become
//!   comma-separated lists (`topics = ["a", "b"]` is `topics = "a,b"`).
//!
//! # librdkafka pass-through
//! Keys under `kafka.` (a `[kafka]` table in TOML: `[kafka]` / `"bootstrap.servers" = "…"`) are
//! handed to librdkafka without the `kafka.` prefix: [`Loaded::kafka`]. The security keys may
//! also be written as Kafka Connect spells them (`security.protocol`, `sasl.jaas.config`,
//! `ssl.truststore.*`, bare or under `producer.`/`consumer.`…); they are turned into librdkafka's
//! settings as [`crate::kafka`] describes, and a Java-only form that cannot work is an error.
//!
//! # Environment overrides
//! Every key the service knows can be set or overridden by `<PREFIX><KEY>`, where `<KEY>` is the
//! key upper-cased with `.` and `-` replaced by `_`: with prefix `CDC_SINK_`, `batch.size` is
//! `CDC_SINK_BATCH_SIZE` and `connection.url` is `CDC_SINK_CONNECTION_URL`. librdkafka settings
//! are `<PREFIX>KAFKA_<PROPERTY>` with `_` read as `.`: `CDC_SINK_KAFKA_BOOTSTRAP_SERVERS` is
//! `kafka.bootstrap.servers`. Other variables with the prefix are not config and are left alone.
//!
//! # Secrets from the environment or files
//! Any value may hold Kafka Connect config-provider references, resolved after the overrides:
//! `${env:NAME}`, `${file:/path:key}` (a properties file) and `${file:/path}` (the whole file);
//! see [`crate::providers`]. `GET /connectors/<name>/config` shows the references, not the values.
//!
//! # Schema registry TLS and basic auth
//! The registry's security keys are read here for both services, as Confluent's serializers and
//! Connect's converters spell them, under any of the prefixes `` (none), `schema.registry.`,
//! `value.converter.`, `key.converter.`, `value.converter.schema.registry.` and
//! `key.converter.schema.registry.`: `basic.auth.credentials.source` (`USER_INFO`, or `URL` for
//! `user:password@` in `schema.registry.url`) and `basic.auth.user.info` (`user:password`, a
//! secret). `schema.registry.ssl.ca.location` (also under `value.converter.` / `key.converter.`)
//! is a PEM CA file trusted for `https://`; the Java key store keys
//! (`schema.registry.ssl.truststore.*`, `…keystore.*`) are refused with that hint. The same
//! setting given twice with different values is an error naming both keys. Result:
//! [`Loaded::registry`].
//!
//! # Unknown and ignored keys
//! A key the service does not know is an error that names it and suggests close spellings. Kafka
//! Connect keys that mean nothing to the service (framework keys such as `connector.class`,
//! `tasks.max`, converters, plus the service's own list) are collected in [`Loaded::ignored`];
//! call [`Loaded::warn_ignored`] once logging is up to report them in one warning.
//!
//! # No transforms
//! Neither service applies Kafka Connect's single message transforms. `transforms` or any
//! `transforms.*` key with a non-empty value is an error naming the key: ignoring a RegexRouter
//! would send records to other topics or tables than the config says. Empty ones are ignored.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

use crate::Secret;

mod de;
mod error;
mod file;

pub use error::ConfigError;

/// The schema registry's TLS and basic-auth settings (module doc, "Schema registry").
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RegistryKeys {
    /// CA certificate(s), PEM, read from `schema.registry.ssl.ca.location`.
    pub ca_pem: Option<Vec<u8>>,
    /// `basic.auth.user.info` split at the first `:`.
    pub user_info: Option<(String, Secret)>,
}

const REGISTRY_PREFIXES: &[&str] = &[
    "schema.registry.",
    "",
    "value.converter.",
    "key.converter.",
    "value.converter.schema.registry.",
    "key.converter.schema.registry.",
];

/// Keys of the Kafka Connect framework (not of any connector) that have no meaning for either
/// service. A trailing `*` matches any key with that prefix. `transforms*` is here only for empty
/// values: a transform that is configured is an error ([`ConfigSpec::transforms_hint`]).
pub const CONNECT_FRAMEWORK_KEYS: &[&str] = &[
    "connector.class",
    "tasks.max",
    "key.converter*",
    "value.converter*",
    "header.converter*",
    "transforms*",
    "predicates*",
    "config.action.reload",
    "errors.log.enable",
    "errors.log.include.messages",
];

/// What differs between the services when loading config.
#[derive(Debug, Clone, Copy)]
pub struct ConfigSpec {
    /// Prefix of the environment overrides, e.g. `CDC_SINK_`.
    pub env_prefix: &'static str,
    /// Kafka Connect keys that mean nothing to this service, in addition to
    /// [`CONNECT_FRAMEWORK_KEYS`]; a trailing `*` matches a prefix.
    pub ignored_keys: &'static [&'static str],
    /// Appended to the error refusing `transforms*`: what this service offers instead, e.g.
    /// `"; topic names come from topic.prefix"`.
    pub transforms_hint: &'static str,
}

/// A loaded and deserialized config.
#[derive(Debug, Clone)]
pub struct Loaded<T> {
    /// The service's config struct.
    pub config: T,
    /// librdkafka properties (the `kafka.` prefix removed).
    pub kafka: BTreeMap<String, String>,
    /// Keys present but meaningless here, sorted.
    pub ignored: Vec<String>,
    /// The `name` of a Kafka Connect connector JSON, when the file was one.
    pub connector_name: Option<String>,
    /// Every key as given (file, then environment overrides), as strings, with secrets masked
    /// ([`crate::connect_api::mask_config`]): what `GET /connectors/<name>/config` shows.
    pub connect_config: BTreeMap<String, String>,
    /// The schema registry's TLS and basic-auth keys.
    pub registry: RegistryKeys,
}

impl<T> Loaded<T> {
    /// Logs one warning naming every ignored key (nothing when there are none).
    pub fn warn_ignored(&self) {
        if !self.ignored.is_empty() {
            tracing::warn!(
                keys = %self.ignored.join(", "),
                "config keys ignored: they have no meaning for this service"
            );
        }
    }
}

/// Loads `T` from `path` (or from the environment alone when `None`) with overrides from the
/// process environment.
pub fn load<T: DeserializeOwned>(
    path: Option<&Path>,
    spec: &ConfigSpec,
) -> Result<Loaded<T>, ConfigError> {
    let (text, origin) = match path {
        Some(p) => (
            std::fs::read_to_string(p).map_err(|source| ConfigError::Read {
                path: p.to_path_buf(),
                source,
            })?,
            p.to_path_buf(),
        ),
        None => (String::new(), PathBuf::from("<none>")),
    };
    load_from_str(
        &text,
        &origin,
        spec,
        |name| std::env::var(name).ok(),
        std::env::vars(),
    )
}

/// Like [`load`], with the file text and the environment given explicitly (for tests).
pub fn load_from_str<T: DeserializeOwned>(
    text: &str,
    origin: &Path,
    spec: &ConfigSpec,
    env_var: impl Fn(&str) -> Option<String>,
    env_vars: impl IntoIterator<Item = (String, String)>,
) -> Result<Loaded<T>, ConfigError> {
    let (mut flat, connector_name) = file::parse_file(text, origin)?;
    let fields = de::struct_fields::<T>();
    for field in fields {
        if let Some(value) = env_var(&env_name(spec.env_prefix, field)) {
            flat.insert((*field).to_string(), value);
        }
    }
    let kafka_env = format!("{}KAFKA_", spec.env_prefix);
    for (name, value) in env_vars {
        if let Some(rest) = name.strip_prefix(&kafka_env) {
            let key = format!("kafka.{}", rest.to_ascii_lowercase().replace('_', "."));
            flat.insert(key, value);
        }
    }

    let connect_config = crate::connect_api::mask_config(&flat);
    for (key, value) in flat.iter_mut() {
        *value = crate::providers::resolve(value, &env_var)
            .map_err(|message| ConfigError::invalid(key, message))?;
    }
    refuse_transforms(&flat, spec)?;
    let registry = registry_keys(&mut flat)?;
    let origin = crate::kafka::lift_connect_keys(&mut flat)?;
    let mut kafka = BTreeMap::new();
    let mut ignored = Vec::new();
    let mut unknown = Vec::new();
    let mut known = BTreeMap::new();
    for (key, value) in flat {
        if let Some(prop) = key.strip_prefix("kafka.") {
            kafka.insert(prop.to_string(), value);
        } else if fields.contains(&key.as_str()) {
            known.insert(key, value);
        } else if is_ignored(&key, spec) {
            ignored.push(key);
        } else {
            unknown.push(key);
        }
    }
    if !unknown.is_empty() {
        return Err(ConfigError::UnknownKeys(unknown_keys_message(
            &unknown, fields,
        )));
    }
    let normalized = crate::kafka::normalize(kafka, &origin)?;
    let kafka = normalized.kafka;
    ignored.extend(normalized.ignored);
    ignored.sort();
    let config = de::from_flat_map(&known).map_err(|e| missing_key_hint(e.0, spec))?;
    Ok(Loaded {
        config,
        kafka,
        ignored,
        connector_name,
        connect_config,
        registry,
    })
}

/// A `transforms*` key with a value is an error: no single message transform runs here, so a
/// RegexRouter (or any other) would silently let records go where the config says they do not.
fn refuse_transforms(flat: &BTreeMap<String, String>, spec: &ConfigSpec) -> Result<(), ConfigError> {
    let configured = flat
        .iter()
        .find(|(key, value)| (*key == "transforms" || key.starts_with("transforms.")) && !value.trim().is_empty());
    match configured {
        Some((key, _)) => Err(ConfigError::invalid(
            key,
            format!(
                "this pipeline has no single message transforms (SMTs), so the transform would not run and records would not go where it says; remove `transforms` and every `transforms.*` key{}",
                spec.transforms_hint
            ),
        )),
        None => Ok(()),
    }
}

/// Takes the registry's security keys out of `flat` (module doc, "Schema registry").
fn registry_keys(flat: &mut BTreeMap<String, String>) -> Result<RegistryKeys, ConfigError> {
    for key in flat.keys() {
        let bare = ["", "value.converter.", "key.converter."]
            .iter()
            .find_map(|p| key.strip_prefix(p).and_then(|k| k.strip_prefix("schema.registry.ssl.")));
        if let Some(rest) = bare.filter(|r| r.starts_with("truststore.") || r.starts_with("keystore.")) {
            let hint = if rest.starts_with("truststore.") {
                "Java trust stores cannot be read here; give the CA as a PEM file in schema.registry.ssl.ca.location"
            } else {
                "client certificates for the registry are not supported; use basic.auth.user.info"
            };
            return Err(ConfigError::invalid(key, hint));
        }
    }
    let take = |flat: &mut BTreeMap<String, String>, name: &str, prefixes: &[&str]| -> Result<Option<(String, String)>, ConfigError> {
        let mut found: Option<(String, String)> = None;
        for prefix in prefixes {
            let key = format!("{prefix}{name}");
            if let Some(value) = flat.remove(&key) {
                match &found {
                    Some((first, v)) if *v != value => {
                        return Err(ConfigError::invalid(&key, format!("differs from {first}; set the registry's {name} once")))
                    }
                    Some(_) => {}
                    None => found = Some((key, value)),
                }
            }
        }
        Ok(found)
    };
    let source = take(flat, "basic.auth.credentials.source", REGISTRY_PREFIXES)?;
    let info = take(flat, "basic.auth.user.info", REGISTRY_PREFIXES)?;
    let ca = take(flat, "schema.registry.ssl.ca.location", &["", "value.converter.", "key.converter."])?;
    let mut keys = RegistryKeys::default();
    let from_url = match &source {
        Some((key, v)) => match v.to_ascii_uppercase().as_str() {
            "USER_INFO" => false,
            "URL" => true,
            _ => {
                return Err(ConfigError::invalid(key, format!("`{v}` is not supported; use USER_INFO (with basic.auth.user.info) or URL (user:password@ in schema.registry.url)")))
            }
        },
        None => false,
    };
    match (info, from_url) {
        (Some((key, _)), true) => {
            return Err(ConfigError::invalid(&key, "is set but basic.auth.credentials.source=URL; set the source to USER_INFO to use it"))
        }
        (Some((key, value)), false) => {
            let (user, password) = value.split_once(':').ok_or_else(|| {
                ConfigError::invalid(&key, "must be user:password")
            })?;
            keys.user_info = Some((user.to_string(), Secret::new(password)));
        }
        (None, _) => {
            if let Some((key, v)) = source.filter(|(_, v)| v.eq_ignore_ascii_case("USER_INFO")) {
                return Err(ConfigError::invalid(&key, format!("is {v} but basic.auth.user.info (user:password) is not set")));
            }
        }
    }
    if let Some((key, path)) = ca {
        let pem = std::fs::read(&path).map_err(|e| ConfigError::invalid(&key, format!("cannot read `{path}`: {e}")))?;
        if !String::from_utf8_lossy(&pem).contains("-----BEGIN CERTIFICATE-----") {
            return Err(ConfigError::invalid(&key, format!("`{path}` holds no PEM certificate (-----BEGIN CERTIFICATE-----)")));
        }
        keys.ca_pem = Some(pem);
    }
    Ok(keys)
}

/// The environment variable that overrides `key`: `env_name("CDC_SINK_", "batch.size")` is
/// `CDC_SINK_BATCH_SIZE`.
pub fn env_name(prefix: &str, key: &str) -> String {
    let tail: String = key
        .chars()
        .map(|c| match c {
            '.' | '-' => '_',
            c => c.to_ascii_uppercase(),
        })
        .collect();
    format!("{prefix}{tail}")
}

/// serde's "missing field `x`" becomes a message naming the key and both ways to set it.
fn missing_key_hint(message: String, spec: &ConfigSpec) -> ConfigError {
    let missing = message
        .strip_prefix("missing field `")
        .and_then(|rest| rest.strip_suffix('`'));
    match missing {
        Some(key) => ConfigError::invalid(
            key,
            format!(
                "is required; set it in the config file or as {}",
                env_name(spec.env_prefix, key)
            ),
        ),
        None => ConfigError::Value(message),
    }
}

fn is_ignored(key: &str, spec: &ConfigSpec) -> bool {
    CONNECT_FRAMEWORK_KEYS
        .iter()
        .chain(spec.ignored_keys)
        .any(|pattern| match pattern.strip_suffix('*') {
            Some(prefix) => key.starts_with(prefix),
            None => key == *pattern,
        })
}

fn unknown_keys_message(unknown: &[String], fields: &[&str]) -> String {
    let lines: Vec<String> = unknown
        .iter()
        .map(|key| {
            let close: Vec<&str> = fields
                .iter()
                .copied()
                .filter(|f| is_close(key, f))
                .collect();
            if close.is_empty() {
                format!("unknown config key `{key}`")
            } else {
                format!(
                    "unknown config key `{key}` (did you mean `{}`?)",
                    close.join("` or `")
                )
            }
        })
        .collect();
    format!(
        "{}; remove it, fix its spelling, or put librdkafka settings under `kafka.`",
        lines.join("; ")
    )
}

/// Close spellings: small edit distance, or the same last segment (`size` in `batch.size`).
fn is_close(a: &str, b: &str) -> bool {
    let same_tail = a.rsplit('.').next() == b.rsplit('.').next() && a.contains('.');
    same_tail || edit_distance(a, b) <= 2.max(b.len() / 6)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests;
