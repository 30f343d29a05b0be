//! Which of the `kafka.*` settings each kind of librdkafka client gets.
//!
//! One `kafka.*` map configures every client of a service: cdc-source's transactional producer,
//! its offsets and metadata consumers and its admin client; jdbc-sink's consumer, its dead letter
//! queue producer and admin client. librdkafka warns about (and ignores) a producer property given
//! to a consumer and the other way round, and an admin client is a producer underneath: given
//! `enable.idempotence` or `transactional.id` it would act on them. So [`client_config`] passes
//! every setting except those of the other role, as librdkafka's CONFIGURATION.md scopes them
//! (`P` producer, `C` consumer; `*` settings such as `bootstrap.servers`, `security.protocol`,
//! `sasl.*`, `ssl.*`, `socket.*`, `client.id`, `debug` go to every client). An admin client gets
//! neither. `bootstrap.servers` is `localhost:9092` unless set.

use std::collections::BTreeMap;

use rdkafka::config::ClientConfig;

/// The kind of client a config is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Producer,
    Consumer,
    /// An `AdminClient`, or a client that only reads metadata.
    Admin,
}

/// `bootstrap.servers` when the map has none (librdkafka has no default).
pub const DEFAULT_BOOTSTRAP: &str = "localhost:9092";

/// Producer-only properties (scope `P` in librdkafka 2.12's CONFIGURATION.md, global and topic).
const PRODUCER_ONLY: &[&str] = &[
    "acks",
    "batch.num.messages",
    "batch.size",
    "compression.codec",
    "compression.level",
    "compression.type",
    "delivery.report.only.error",
    "delivery.timeout.ms",
    "enable.gapless.guarantee",
    "enable.idempotence",
    "linger.ms",
    "message.send.max.retries",
    "message.timeout.ms",
    "partitioner",
    "produce.offset.report",
    "queue.buffering.backpressure.threshold",
    "queue.buffering.max.kbytes",
    "queue.buffering.max.messages",
    "queue.buffering.max.ms",
    "queuing.strategy",
    "request.required.acks",
    "request.timeout.ms",
    "retries",
    "sticky.partitioning.linger.ms",
    "transaction.timeout.ms",
    "transactional.id",
];

/// Consumer-only properties (scope `C` in librdkafka 2.12's CONFIGURATION.md, global and topic).
const CONSUMER_ONLY: &[&str] = &[
    "auto.commit.enable",
    "auto.commit.interval.ms",
    "auto.offset.reset",
    "check.crcs",
    "consume.callback.max.messages",
    "coordinator.query.interval.ms",
    "enable.auto.commit",
    "enable.auto.offset.store",
    "enable.partition.eof",
    "fetch.error.backoff.ms",
    "fetch.max.bytes",
    "fetch.message.max.bytes",
    "fetch.min.bytes",
    "fetch.queue.backoff.ms",
    "fetch.wait.max.ms",
    "group.id",
    "group.instance.id",
    "group.protocol",
    "group.protocol.type",
    "group.remote.assignor",
    "heartbeat.interval.ms",
    "isolation.level",
    "max.partition.fetch.bytes",
    "max.poll.interval.ms",
    "offset.store.method",
    "offset.store.path",
    "offset.store.sync.interval.ms",
    "partition.assignment.strategy",
    "queued.max.messages.kbytes",
    "queued.min.messages",
    "session.timeout.ms",
];

/// Whether a client of `role` gets the librdkafka setting `key` (module doc).
pub fn applies_to(role: Role, key: &str) -> bool {
    let producer_only = PRODUCER_ONLY.contains(&key);
    let consumer_only = CONSUMER_ONLY.contains(&key);
    match role {
        Role::Producer => !consumer_only,
        Role::Consumer => !producer_only,
        Role::Admin => !producer_only && !consumer_only,
    }
}

/// The librdkafka config of a `role` client from a service's `kafka.*` settings (module doc).
/// The caller adds what it sets itself (`group.id`, `transactional.id`, …) to the result; it
/// cannot copy it into another config through `config_map()`, which masks the secrets.
pub fn client_config(role: Role, kafka: &BTreeMap<String, String>) -> ClientConfig {
    let mut cfg = ClientConfig::new();
    cfg.set("bootstrap.servers", DEFAULT_BOOTSTRAP);
    for (key, value) in kafka.iter().filter(|(key, _)| applies_to(role, key)) {
        cfg.set(key, value);
    }
    cfg
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> BTreeMap<String, String> {
        [
            ("bootstrap.servers", "k1:9092,k2:9092"),
            ("security.protocol", "SASL_SSL"),
            ("sasl.username", "u"),
            ("ssl.ca.location", "/ca.pem"),
            ("client.id", "c"),
            ("reconnect.backoff.max.ms", "1000"),
            ("linger.ms", "20"),
            ("compression.type", "zstd"),
            ("enable.idempotence", "true"),
            ("group.id", "g"),
            ("session.timeout.ms", "10000"),
            ("fetch.min.bytes", "1"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    fn keys(role: Role) -> Vec<String> {
        let cfg = client_config(role, &settings());
        let mut keys: Vec<String> = cfg.config_map().keys().map(|k| k.to_string()).collect();
        keys.sort();
        keys
    }

    const SHARED: [&str; 6] = [
        "bootstrap.servers",
        "client.id",
        "reconnect.backoff.max.ms",
        "sasl.username",
        "security.protocol",
        "ssl.ca.location",
    ];

    fn with(extra: &[&str]) -> Vec<String> {
        let mut all: Vec<String> = SHARED.iter().chain(extra).map(|k| k.to_string()).collect();
        all.sort();
        all
    }

    #[test]
    fn each_role_gets_the_shared_settings_and_its_own() {
        assert_eq!(keys(Role::Producer), with(&["compression.type", "enable.idempotence", "linger.ms"]));
        assert_eq!(keys(Role::Consumer), with(&["fetch.min.bytes", "group.id", "session.timeout.ms"]));
        assert_eq!(keys(Role::Admin), with(&[]));
    }

    #[test]
    fn values_pass_unchanged_and_bootstrap_has_a_default() {
        let cfg = client_config(Role::Consumer, &settings());
        assert_eq!(cfg.get("bootstrap.servers"), Some("k1:9092,k2:9092"));
        assert_eq!(cfg.get("security.protocol"), Some("SASL_SSL"));
        let bare = client_config(Role::Admin, &BTreeMap::new());
        assert_eq!(bare.get("bootstrap.servers"), Some(DEFAULT_BOOTSTRAP));
        assert_eq!(bare.config_map().len(), 1);
    }

    /// Every key listed is one librdkafka knows, and no key is in both lists.
    #[test]
    fn the_lists_name_real_properties_of_one_role_each() {
        for key in PRODUCER_ONLY.iter().chain(CONSUMER_ONLY) {
            let mut cfg = ClientConfig::new();
            cfg.set(*key, "1");
            if let Err(e) = cfg.create_native_config() {
                assert!(!e.to_string().contains("No such configuration property"), "{key}: {e}");
            }
        }
        assert!(PRODUCER_ONLY.iter().all(|k| !CONSUMER_ONLY.contains(k)));
    }
}
