//! Kafka client settings shared by both services: Kafka Connect's security spellings turned into
//! librdkafka's, [`client_config`] giving each kind of client ([`Role`]) its settings, and a
//! metadata probe that says why a broker did not answer.
//!
//! # Security keys as Connect users write them
//! librdkafka settings live under `kafka.` ([`crate::config`]). The security keys are also
//! accepted as a Kafka Connect worker or connector config spells them: `security.protocol`,
//! `sasl.*` and `ssl.*` bare or under `producer.`, `consumer.`, `admin.`, `producer.override.`,
//! `consumer.override.`, `admin.override.` (one client identity serves all of a service's
//! clients, so the same setting given twice with different values is an error naming both keys).
//! Then, in the `kafka.` map:
//!
//! | Connect / Java client | becomes | |
//! |---|---|---|
//! | `security.protocol` | same | PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL (any case) |
//! | `sasl.mechanism` | same | PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, OAUTHBEARER; GSSAPI is refused (no Kerberos in this build) |
//! | `sasl.jaas.config` with `PlainLoginModule` / `ScramLoginModule` | `sasl.username`, `sasl.password` | the module's `username` and `password`; PLAIN is implied by `PlainLoginModule` |
//! | `sasl.jaas.config` with `OAuthBearerLoginModule` | `sasl.oauthbearer.client.id`, `…client.secret`, `…scope` | `clientId`, `clientSecret`, `scope`; `unsecuredLoginStringClaim_sub` gives an unsecured token for that principal |
//! | `ssl.truststore.type=PEM` + `ssl.truststore.location` | `ssl.ca.location` | a PEM trust store is a CA file; `ssl.truststore.certificates` becomes `ssl.ca.pem` |
//! | `ssl.truststore.location` (JKS, PKCS12) | error | "give the CA certificate(s) as a PEM file in kafka.ssl.ca.location" |
//! | `ssl.keystore.location` (PKCS12) + `ssl.keystore.password` | same | librdkafka reads PKCS#12 key stores |
//! | `ssl.keystore.type=PEM` + `ssl.keystore.location` | `ssl.certificate.location`, `ssl.key.location` | one PEM file with the key and the chain |
//! | `ssl.keystore.location` (a JKS file) | error | convert it to PKCS#12 or use `ssl.certificate.location` + `ssl.key.location` |
//! | `ssl.endpoint.identification.algorithm=` (empty) | `…=none` | Java's way of turning host name checks off |
//! | `ssl.protocol`, `ssl.enabled.protocols`, `ssl.keymanager.algorithm`, `ssl.trustmanager.algorithm`, `ssl.secure.random.implementation`, `ssl.provider` | ignored (reported once) | Java-only; librdkafka negotiates TLS 1.2/1.3 with OpenSSL |
//!
//! `reconnect.backoff.max.ms` defaults to 1000 (librdkafka's 10 s would delay the return to a
//! broker that was away by up to that long).
//!
//! A SASL protocol without a mechanism and credentials, a JAAS option not understood, or a
//! certificate/key file that cannot be read is an error naming the key. Secrets
//! (`sasl.password`, `sasl.jaas.config`, `ssl.key.password`, `ssl.keystore.password`,
//! `sasl.oauthbearer.client.secret`) are masked wherever the config is shown
//! ([`crate::connect_api::mask_config`]) and never put into messages.
//!
//! # Why a broker did not answer
//! [`probe`] asks for cluster metadata with a client context that records librdkafka's
//! connection errors, and [`explain`] turns a failure into a message naming its real cause:
//! credentials refused (authentication), TLS verification failed, a listener of another
//! security protocol, or nothing answering at all.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use rdkafka::client::ClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::metadata::Metadata;

use crate::ConfigError;

#[path = "kafka_client.rs"]
mod client;
pub use client::{applies_to, client_config, Role, DEFAULT_BOOTSTRAP};

/// Prefixes under which Connect configs carry client settings.
const CONNECT_PREFIXES: &[&str] = &[
    "",
    "producer.",
    "consumer.",
    "admin.",
    "producer.override.",
    "consumer.override.",
    "admin.override.",
];

/// Java-only TLS settings without an equivalent or an effect here.
const JAVA_ONLY: &[&str] = &[
    "ssl.protocol",
    "ssl.enabled.protocols",
    "ssl.keymanager.algorithm",
    "ssl.trustmanager.algorithm",
    "ssl.secure.random.implementation",
    "ssl.provider",
];

fn is_security_key(key: &str) -> bool {
    key == "security.protocol" || key.starts_with("sasl.") || key.starts_with("ssl.")
}

/// The client settings after [`normalize`]: librdkafka's properties, and the Connect keys that
/// were dropped because they mean nothing to librdkafka.
#[derive(Debug, Default)]
pub(crate) struct Normalized {
    pub kafka: BTreeMap<String, String>,
    pub ignored: Vec<String>,
}

/// Moves the security keys Connect spells without `kafka.` (module doc) into `kafka.` keys of
/// `flat`. Returns, for each moved property, the key the user wrote (for error messages).
pub(crate) fn lift_connect_keys(flat: &mut BTreeMap<String, String>) -> Result<BTreeMap<String, String>, ConfigError> {
    let mut origin = BTreeMap::new();
    let candidates: Vec<(String, String)> = flat
        .keys()
        .filter_map(|key| {
            CONNECT_PREFIXES
                .iter()
                .filter_map(|p| key.strip_prefix(p))
                .find(|rest| is_security_key(rest))
                .map(|prop| (key.clone(), prop.to_string()))
        })
        .collect();
    for (key, prop) in candidates {
        let Some(value) = flat.remove(&key) else { continue };
        let target = format!("kafka.{prop}");
        if let Some(existing) = flat.get(&target) {
            if *existing != value {
                let first = origin.get(&prop).cloned().unwrap_or_else(|| target.clone());
                return Err(ConfigError::invalid(&key, format!("differs from {first}; the services use one Kafka client identity, set it once")));
            }
        } else {
            flat.insert(target, value);
            origin.insert(prop, key);
        }
    }
    Ok(origin)
}

/// One option of a JAAS login module line.
type JaasOptions = BTreeMap<String, String>;

/// Parses `<module class> <flag> [name=value …];` (values quoted with `"` or bare).
fn parse_jaas(text: &str) -> Result<(String, JaasOptions), String> {
    let mut chars = text.trim().chars().peekable();
    let word = |chars: &mut std::iter::Peekable<std::str::Chars<'_>>| {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let mut w = String::new();
        while let Some(&c) = chars.peek() {
            if c.is_whitespace() || c == '=' || c == ';' {
                break;
            }
            w.push(c);
            chars.next();
        }
        w
    };
    let module = word(&mut chars);
    let flag = word(&mut chars);
    if module.is_empty() || !matches!(flag.to_ascii_lowercase().as_str(), "required" | "requisite" | "sufficient" | "optional") {
        return Err("must look like `org.apache.kafka.common.security.scram.ScramLoginModule required username=\"…\" password=\"…\";`".into());
    }
    let mut options = JaasOptions::new();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        match chars.peek() {
            None => return Err("does not end with `;`".into()),
            Some(';') => {
                chars.next();
                if chars.any(|c| !c.is_whitespace()) {
                    return Err("holds more than one login module; give one".into());
                }
                return Ok((module, options));
            }
            _ => {}
        }
        let name = word(&mut chars);
        if chars.next() != Some('=') || name.is_empty() {
            return Err(format!("option `{name}` has no `=value`"));
        }
        let value = if chars.peek() == Some(&'"') {
            chars.next();
            let mut v = String::new();
            loop {
                match chars.next() {
                    None => return Err(format!("the value of `{name}` has no closing quote")),
                    Some('"') => break,
                    Some('\\') => match chars.next() {
                        Some(c) => v.push(c),
                        None => return Err(format!("the value of `{name}` has no closing quote")),
                    },
                    Some(c) => v.push(c),
                }
            }
            v
        } else {
            word(&mut chars)
        };
        options.insert(name, value);
    }
}

/// Makes librdkafka settings of the `kafka.` map (module doc). `origin` names the key as the
/// user wrote it for properties that came from Connect spellings.
pub(crate) fn normalize(mut kafka: BTreeMap<String, String>, origin: &BTreeMap<String, String>) -> Result<Normalized, ConfigError> {
    let key_of = |prop: &str| origin.get(prop).cloned().unwrap_or_else(|| format!("kafka.{prop}"));
    let bad = |prop: &str, message: String| ConfigError::invalid(&key_of(prop), message);
    let mut ignored = Vec::new();
    for prop in JAVA_ONLY {
        if kafka.remove(*prop).is_some() {
            ignored.push(key_of(prop));
        }
    }
    if kafka.contains_key("ssl.engine.factory.class") || kafka.contains_key("sasl.login.callback.handler.class") || kafka.contains_key("sasl.client.callback.handler.class") {
        let prop = ["ssl.engine.factory.class", "sasl.login.callback.handler.class", "sasl.client.callback.handler.class"]
            .into_iter()
            .find(|p| kafka.contains_key(*p))
            .unwrap_or_default();
        return Err(bad(prop, "names a Java class, which cannot be loaded here; remove it and configure TLS/SASL with the kafka.ssl.* / kafka.sasl.* keys".into()));
    }

    // Trust store: PEM only.
    let truststore_type = kafka.remove("ssl.truststore.type").map(|t| t.to_ascii_uppercase());
    if let Some(pem) = kafka.remove("ssl.truststore.certificates") {
        set_once(&mut kafka, "ssl.ca.pem", pem, &key_of("ssl.truststore.certificates"))?;
    }
    if let Some(location) = kafka.remove("ssl.truststore.location") {
        if truststore_type.as_deref() == Some("PEM") {
            kafka.remove("ssl.truststore.password");
            set_once(&mut kafka, "ssl.ca.location", location, &key_of("ssl.truststore.location"))?;
        } else {
            return Err(bad(
                "ssl.truststore.location",
                "Java trust stores cannot be read here; give the CA certificate(s) as a PEM file in kafka.ssl.ca.location \
                 (export them with `keytool -exportcert -rfc -keystore <store> -alias <ca>`), or set ssl.truststore.type=PEM for a PEM file"
                    .into(),
            ));
        }
    }
    kafka.remove("ssl.truststore.password");

    // Key store: PKCS#12 or PEM.
    let keystore_type = kafka.remove("ssl.keystore.type").map(|t| t.to_ascii_uppercase());
    if let (Some(chain), Some(key)) = (kafka.remove("ssl.keystore.certificate.chain"), kafka.remove("ssl.keystore.key")) {
        set_once(&mut kafka, "ssl.certificate.pem", chain, &key_of("ssl.keystore.certificate.chain"))?;
        set_once(&mut kafka, "ssl.key.pem", key, &key_of("ssl.keystore.key"))?;
    }
    if let Some(location) = kafka.get("ssl.keystore.location").cloned() {
        match keystore_type.as_deref() {
            Some("PEM") => {
                kafka.remove("ssl.keystore.location");
                set_once(&mut kafka, "ssl.certificate.location", location.clone(), &key_of("ssl.keystore.location"))?;
                set_once(&mut kafka, "ssl.key.location", location, &key_of("ssl.keystore.location"))?;
                if let Some(pw) = kafka.remove("ssl.keystore.password") {
                    kafka.entry("ssl.key.password".into()).or_insert(pw);
                }
            }
            Some("JKS") => return Err(bad("ssl.keystore.location", jks_hint())),
            _ => {
                let head = read_head(&location).map_err(|e| bad("ssl.keystore.location", format!("cannot read {location}: {e}")))?;
                if head.starts_with(&[0xFE, 0xED, 0xFE, 0xED]) {
                    return Err(bad("ssl.keystore.location", jks_hint()));
                }
            }
        }
    }

    if kafka.get("ssl.endpoint.identification.algorithm").is_some_and(|v| v.trim().is_empty()) {
        kafka.insert("ssl.endpoint.identification.algorithm".into(), "none".into());
    }

    // SASL.
    if let Some(alias) = kafka.remove("sasl.mechanisms") {
        set_once(&mut kafka, "sasl.mechanism", alias, "kafka.sasl.mechanisms")?;
    }
    if let Some(jaas) = kafka.remove("sasl.jaas.config") {
        let jaas_key = key_of("sasl.jaas.config");
        let (module, mut options) = parse_jaas(&jaas).map_err(|m| ConfigError::invalid(&jaas_key, m))?;
        let class = module.rsplit('.').next().unwrap_or_default().to_string();
        let mut take = |name: &str| options.remove(name);
        let implied = match class.as_str() {
            "PlainLoginModule" | "ScramLoginModule" => {
                let (Some(user), Some(password)) = (take("username"), take("password")) else {
                    return Err(ConfigError::invalid(&jaas_key, format!("{class} needs username=\"…\" and password=\"…\"")));
                };
                set_once(&mut kafka, "sasl.username", user, &jaas_key)?;
                set_once(&mut kafka, "sasl.password", password, &jaas_key)?;
                (class == "PlainLoginModule").then_some("PLAIN")
            }
            "OAuthBearerLoginModule" => {
                for (option, prop) in [
                    ("clientId", "sasl.oauthbearer.client.id"),
                    ("clientSecret", "sasl.oauthbearer.client.secret"),
                    ("scope", "sasl.oauthbearer.scope"),
                ] {
                    if let Some(v) = take(option) {
                        set_once(&mut kafka, prop, v, &jaas_key)?;
                    }
                }
                if let Some(sub) = take("unsecuredLoginStringClaim_sub") {
                    kafka.insert("enable.sasl.oauthbearer.unsecure.jwt".into(), "true".into());
                    set_once(&mut kafka, "sasl.oauthbearer.config", format!("principal={sub}"), &jaas_key)?;
                } else if kafka.contains_key("sasl.oauthbearer.token.endpoint.url") {
                    kafka.entry("sasl.oauthbearer.method".into()).or_insert_with(|| "oidc".into());
                }
                Some("OAUTHBEARER")
            }
            "Krb5LoginModule" => {
                return Err(ConfigError::invalid(&jaas_key, "Kerberos (GSSAPI) is not available in this build; use SCRAM-SHA-512, SCRAM-SHA-256 or PLAIN"))
            }
            _ => {
                return Err(ConfigError::invalid(
                    &jaas_key,
                    format!("login module `{module}` is not supported; use PlainLoginModule, ScramLoginModule or OAuthBearerLoginModule"),
                ))
            }
        };
        if let Some(option) = options.keys().next() {
            return Err(ConfigError::invalid(&jaas_key, format!("option `{option}` of {class} is not understood; remove it")));
        }
        match (kafka.get("sasl.mechanism").map(|m| m.to_ascii_uppercase()), implied) {
            (None, Some(m)) => {
                kafka.insert("sasl.mechanism".into(), m.into());
            }
            (None, None) => {
                return Err(bad("sasl.mechanism", "is not set; with the ScramLoginModule set it to SCRAM-SHA-512 or SCRAM-SHA-256".into()));
            }
            (Some(m), Some(implied)) if m != implied => {
                return Err(bad("sasl.mechanism", format!("is {m} but sasl.jaas.config uses {class}, which serves {implied}")));
            }
            (Some(m), None) if !m.starts_with("SCRAM-") => {
                return Err(bad("sasl.mechanism", format!("is {m} but sasl.jaas.config uses the ScramLoginModule; set SCRAM-SHA-512 or SCRAM-SHA-256")));
            }
            _ => {}
        }
    }
    let protocol = match kafka.get("security.protocol") {
        None => "PLAINTEXT".to_string(),
        Some(p) => {
            let p = p.trim().to_ascii_uppercase();
            if !matches!(p.as_str(), "PLAINTEXT" | "SSL" | "SASL_PLAINTEXT" | "SASL_SSL") {
                return Err(bad("security.protocol", format!("`{p}` is not one of PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL")));
            }
            kafka.insert("security.protocol".into(), p.clone());
            p
        }
    };
    if let Some(m) = kafka.get("sasl.mechanism").map(|m| m.trim().to_ascii_uppercase()) {
        if !matches!(m.as_str(), "PLAIN" | "SCRAM-SHA-256" | "SCRAM-SHA-512" | "OAUTHBEARER") {
            let why = if m == "GSSAPI" { "Kerberos (GSSAPI) is not available in this build" } else { "it is not a SASL mechanism this build knows" };
            return Err(bad("sasl.mechanism", format!("`{m}`: {why}; use PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or OAUTHBEARER")));
        }
        kafka.insert("sasl.mechanism".into(), m);
    }
    if protocol.starts_with("SASL_") {
        let mechanism = kafka.get("sasl.mechanism").cloned();
        match mechanism.as_deref() {
            None => {
                return Err(bad(
                    "security.protocol",
                    format!("is {protocol} but no SASL mechanism is set; set kafka.sasl.mechanism (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, OAUTHBEARER) and the credentials (kafka.sasl.jaas.config, or kafka.sasl.username and kafka.sasl.password)"),
                ))
            }
            Some("OAUTHBEARER") => {}
            Some(m) => {
                if !kafka.contains_key("sasl.username") || !kafka.contains_key("sasl.password") {
                    return Err(bad("sasl.mechanism", format!("{m} needs credentials: kafka.sasl.jaas.config, or kafka.sasl.username and kafka.sasl.password")));
                }
            }
        }
    }
    for prop in ["ssl.ca.location", "ssl.certificate.location", "ssl.key.location", "ssl.keystore.location", "ssl.crl.location"] {
        if let Some(path) = kafka.get(prop) {
            if prop == "ssl.ca.location" && path == "probe" {
                continue;
            }
            read_head(path).map_err(|e| bad(prop, format!("cannot read {path}: {e}")))?;
        }
    }
    // librdkafka waits up to 10 s between reconnects to a broker that was away; a pipeline
    // should resume within a second or two of the broker's return.
    kafka.entry("reconnect.backoff.max.ms".into()).or_insert_with(|| "1000".into());
    Ok(Normalized { kafka, ignored })
}

fn jks_hint() -> String {
    "is a Java key store (JKS), which cannot be read here; convert it to PKCS#12 \
     (`keytool -importkeystore -srckeystore <ks.jks> -destkeystore <ks.p12> -deststoretype PKCS12`) \
     or give PEM files in kafka.ssl.certificate.location and kafka.ssl.key.location"
        .into()
}

fn read_head(path: &str) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut head = vec![0u8; 4];
    let mut f = std::fs::File::open(path)?;
    let n = f.read(&mut head)?;
    head.truncate(n);
    Ok(head)
}

/// Sets `prop` unless it holds a different value already.
fn set_once(kafka: &mut BTreeMap<String, String>, prop: &str, value: String, from: &str) -> Result<(), ConfigError> {
    match kafka.get(prop) {
        Some(v) if *v != value => Err(ConfigError::invalid(from, format!("differs from kafka.{prop}; set one of them"))),
        _ => {
            kafka.insert(prop.to_string(), value);
            Ok(())
        }
    }
}

/// A client context that records librdkafka's errors on the way to a broker.
#[derive(Debug, Default)]
pub struct Diagnosing {
    seen: Mutex<Vec<(RDKafkaErrorCode, String)>>,
}

impl Diagnosing {
    /// The most telling error seen: authentication, then TLS, then any other.
    fn cause(&self) -> Option<(RDKafkaErrorCode, String)> {
        let seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        let rank = |c: &RDKafkaErrorCode, reason: &str| match c {
            RDKafkaErrorCode::Authentication => 0,
            RDKafkaErrorCode::SSL => 1,
            _ if tls_failure(reason) => 1,
            _ if protocol_mismatch(reason) => 2,
            _ => 3,
        };
        seen.iter().min_by_key(|(c, r)| rank(c, r)).cloned()
    }
}

impl ClientContext for Diagnosing {
    /// librdkafka reports a broker closing the connection as a `FAIL` log line, not always as an
    /// error event.
    fn log(&self, level: rdkafka::config::RDKafkaLogLevel, fac: &str, log_message: &str) {
        tracing::debug!(?level, fac, log_message, "librdkafka while probing");
        if fac == "FAIL" {
            let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
            if seen.len() < 32 {
                seen.push((RDKafkaErrorCode::BrokerTransportFailure, log_message.to_string()));
            }
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        tracing::debug!(%error, reason, "Kafka client error while probing");
        if let Some(code) = error.rdkafka_error_code() {
            let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
            if seen.len() < 32 {
                seen.push((code, if reason.is_empty() { error.to_string() } else { reason.to_string() }));
            }
        }
    }
}

impl ConsumerContext for Diagnosing {}

/// Why Kafka could not be used, as a message naming the keys to check.
pub fn explain(servers: &str, kafka: &BTreeMap<String, String>, error: &dyn std::fmt::Display, cause: Option<(RDKafkaErrorCode, String)>) -> String {
    let protocol = kafka.get("security.protocol").map(String::as_str).unwrap_or("PLAINTEXT");
    match cause {
        Some((RDKafkaErrorCode::Authentication, reason)) => format!(
            "Kafka at {servers} refused the credentials ({reason}); check kafka.sasl.username and kafka.sasl.password \
             (or the username and password in sasl.jaas.config) and kafka.sasl.mechanism"
        ),
        Some((code, reason)) if code == RDKafkaErrorCode::SSL || tls_failure(&reason) => format!(
            "TLS with Kafka at {servers} failed ({reason}); check kafka.ssl.ca.location (the CA that signed the broker's \
             certificate), that the certificate names the host in kafka.bootstrap.servers \
             (kafka.ssl.endpoint.identification.algorithm), and kafka.ssl.certificate.location / kafka.ssl.key.location \
             when the listener requires a client certificate"
        ),
        Some((_, reason)) if protocol_mismatch(&reason) => format!(
            "Kafka at {servers} closed the connection at the first request ({reason}); the listener expects another \
             protocol than kafka.security.protocol={protocol}: check kafka.security.protocol and that \
             kafka.bootstrap.servers names a listener of that protocol"
        ),
        Some((_, reason)) => format!("Kafka at {servers} does not answer: {error} ({reason}); check kafka.bootstrap.servers and that Kafka runs"),
        None => format!("Kafka at {servers} does not answer: {error}; check kafka.bootstrap.servers and that Kafka runs"),
    }
}

/// What stood between a client and the cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Obstacle {
    /// The settings themselves (librdkafka refused them).
    Settings,
    /// SASL credentials refused.
    Credentials,
    /// TLS handshake or certificate verification failed.
    Tls,
    /// The listener speaks another security protocol.
    Protocol,
    /// Nothing answered in time (address, network, or Kafka down).
    Unreachable,
}

impl Obstacle {
    /// A configuration mistake that waiting will not fix.
    pub fn is_definite(self) -> bool {
        !matches!(self, Obstacle::Unreachable)
    }
}

/// Why [`probe`] failed: the cause and a message from [`explain`].
#[derive(Debug, Clone)]
pub struct ProbeError {
    pub obstacle: Obstacle,
    pub message: String,
}

impl std::fmt::Display for ProbeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ProbeError {}

/// What a recorded librdkafka error says about the obstacle.
fn obstacle_of(cause: &Option<(RDKafkaErrorCode, String)>) -> Obstacle {
    match cause {
        Some((RDKafkaErrorCode::Authentication, _)) => Obstacle::Credentials,
        Some((RDKafkaErrorCode::SSL, _)) => Obstacle::Tls,
        Some((_, reason)) if tls_failure(reason) => Obstacle::Tls,
        Some((_, reason)) if protocol_mismatch(reason) => Obstacle::Protocol,
        _ => Obstacle::Unreachable,
    }
}

/// A transport error that is OpenSSL's (e.g. the broker's alert for a missing client
/// certificate arrives as a receive failure).
fn tls_failure(reason: &str) -> bool {
    reason.contains("SSL routines") || reason.contains("SSL handshake")
}

/// A broker that closes the connection at the first request (ApiVersion) without a TLS or SASL
/// error: a plaintext client at a TLS or SASL listener.
fn protocol_mismatch(reason: &str) -> bool {
    reason.contains("security.protocol") || (reason.contains("Disconnected") && reason.contains("APIVERSION_QUERY"))
}

/// Asks the cluster for its metadata with `config` (blocking; call it off the async threads).
/// Gives up early when librdkafka reports a cause that waiting will not fix.
pub fn probe(config: &ClientConfig, kafka: &BTreeMap<String, String>, timeout: Duration) -> Result<Metadata, ProbeError> {
    let servers = kafka.get("bootstrap.servers").cloned().unwrap_or_else(|| DEFAULT_BOOTSTRAP.into());
    let consumer: BaseConsumer<Diagnosing> = config.create_with_context(Diagnosing::default()).map_err(|e| ProbeError {
        obstacle: Obstacle::Settings,
        message: format!("invalid Kafka settings (kafka.*): {e}"),
    })?;
    let deadline = std::time::Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let error = match consumer.fetch_metadata(None, left.clamp(Duration::from_millis(100), Duration::from_secs(2))) {
            Ok(md) => return Ok(md),
            Err(e) => e,
        };
        // Error events wait in the client's queue until it is polled.
        let until = std::time::Instant::now() + Duration::from_millis(300);
        while std::time::Instant::now() < until {
            if let Some(Err(e)) = consumer.poll(Duration::from_millis(50)) {
                consumer.context().error(e, "");
            }
        }
        let cause = consumer.context().cause();
        let obstacle = obstacle_of(&cause);
        if obstacle.is_definite() || std::time::Instant::now() >= deadline {
            return Err(ProbeError { obstacle, message: explain(&servers, kafka, &error, cause) });
        }
    }
}

#[cfg(test)]
#[path = "kafka_tests.rs"]
mod tests;
