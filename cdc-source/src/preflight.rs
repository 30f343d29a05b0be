//! Checks made before any work, each failure naming the setting and the fix: the server's binlog
//! settings, the account's grants, the server id, Kafka, the topic settings, the captured tables'
//! topics and the registry. Warnings (the start goes on): an include pattern that matches no
//! table, a replication factor of 1 on a cluster of more brokers.

use std::time::Duration;

use mysql_async::prelude::Queryable;
use mysql_async::Conn;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::RDKafkaErrorCode;

use crate::config::{Format, SourceConfig};
use crate::error::SourceError;
use crate::position::GtidPosition;

/// One failed check.
fn fail(msg: String) -> SourceError {
    SourceError::preflight(msg)
}

/// Checks the source server; returns an open connection for further start-up queries.
pub async fn check_server(cfg: &SourceConfig) -> Result<Conn, SourceError> {
    let connecting = tokio::time::timeout(cfg.connect_timeout, Conn::new(cfg.mysql_opts())).await.map_err(|_| {
        fail(format!(
            "cannot connect to {}:{} within {:?} (connect.timeout.ms): the server or the network path to it does not answer; check connection.url",
            cfg.url.host, cfg.url.port, cfg.connect_timeout
        ))
    })?;
    let mut conn = connecting.map_err(|e| {
        let fix = cfg.url.tls.hint(&e).unwrap_or_else(|| "check connection.url, connection.user and connection.password".into());
        SourceError::preflight_on(format!("cannot connect to {}:{} as `{}`: {e}; {fix}", cfg.url.host, cfg.url.port, cfg.user), e)
    })?;
    let q = SourceError::mysql("read server variables");
    let vars: Vec<(String, String)> = conn
        .query(
            "SELECT variable_name, variable_value FROM information_schema.global_variables WHERE variable_name IN \
             ('LOG_BIN','BINLOG_FORMAT','BINLOG_ROW_IMAGE','BINLOG_ROW_METADATA','LOG_BIN_COMPRESS','SERVER_ID')",
        )
        .await
        .map_err(&q)?;
    let var = |n: &str| vars.iter().find(|(k, _)| k.eq_ignore_ascii_case(n)).map(|(_, v)| v.to_ascii_uppercase());
    for (name, want, why) in [
        ("LOG_BIN", "ON", "the binlog is what the source reads"),
        ("BINLOG_FORMAT", "ROW", "only row events carry the changed rows"),
        ("BINLOG_ROW_IMAGE", "FULL", "records carry the full row after each change"),
        ("BINLOG_ROW_METADATA", "FULL", "column names, signedness and keys come from the binlog (MariaDB >= 10.5)"),
        ("LOG_BIN_COMPRESS", "OFF", "compressed row events cannot be read without loss"),
    ] {
        let got = var(name).unwrap_or_else(|| "(not available)".into());
        if got != want {
            return Err(fail(format!(
                "server variable {} is {got}, must be {want} ({why}); start mariadbd with --{}={want}",
                name.to_ascii_lowercase(),
                name.to_ascii_lowercase().replace('_', "-")
            )));
        }
    }
    if var("SERVER_ID").as_deref() == Some(cfg.server_id.to_string().as_str()) {
        return Err(fail(format!(
            "server.id={} is the source server's own server_id; give this source a distinct server.id",
            cfg.server_id
        )));
    }
    check_grants(&mut conn, cfg).await?;
    wait_for_server_id(&mut conn, cfg).await?;
    Ok(conn)
}

type Row = mysql_async::Row;

/// Refuses a server id another connected replica uses. The dump thread of a replica that just
/// died (our own previous process after a crash) lingers until its next heartbeat write fails,
/// so a listed id is re-checked for up to three heartbeat periods before it counts as taken.
/// Needs REPLICATION MASTER ADMIN for SHOW SLAVE HOSTS; without it the check is skipped.
async fn wait_for_server_id(conn: &mut Conn, cfg: &SourceConfig) -> Result<(), SourceError> {
    let deadline = std::time::Instant::now() + (cfg.heartbeat * 3).min(Duration::from_secs(60));
    loop {
        let Ok(hosts) = conn.query::<Row, _>("SHOW SLAVE HOSTS").await else { return Ok(()) };
        let taken = hosts.iter().any(|h| h.get::<u32, _>(0) == Some(cfg.server_id));
        if !taken {
            return Ok(());
        }
        if std::time::Instant::now() > deadline {
            return Err(fail(format!(
                "another replica is connected with server.id={}; give this source a distinct server.id",
                cfg.server_id
            )));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

async fn check_grants(conn: &mut Conn, cfg: &SourceConfig) -> Result<(), SourceError> {
    let grants: Vec<String> = conn.query("SHOW GRANTS").await.map_err(SourceError::mysql("read grants"))?;
    let global: Vec<String> = grants
        .iter()
        .map(|g| g.to_ascii_uppercase())
        .filter(|g| g.contains(" ON *.* "))
        .collect();
    let has = |p: &str| global.iter().any(|g| g.contains("ALL PRIVILEGES") || g.contains(p));
    let mut missing = Vec::new();
    if !has("REPLICATION SLAVE") {
        missing.push("REPLICATION SLAVE");
    }
    if !has("BINLOG MONITOR") && !has("REPLICATION CLIENT") && !has("SUPER") {
        missing.push("BINLOG MONITOR");
    }
    let any_select = grants.iter().any(|g| g.to_ascii_uppercase().contains("SELECT") || g.to_ascii_uppercase().contains("ALL PRIVILEGES"));
    if !any_select {
        missing.push("SELECT");
    }
    if !missing.is_empty() {
        return Err(fail(format!(
            "user `{}` lacks {}; run: GRANT {} ON *.* TO '{}'@'%'",
            cfg.user,
            missing.join(", "),
            missing.join(", "),
            cfg.user
        )));
    }
    Ok(())
}

/// The GTID position at the start of the oldest binlog on the server.
pub async fn oldest_position(conn: &mut Conn) -> Result<GtidPosition, SourceError> {
    let q = SourceError::mysql("list binary logs");
    let logs: Vec<Row> = conn.query("SHOW BINARY LOGS").await.map_err(&q)?;
    let Some(first) = logs.first().and_then(|r| r.get::<String, _>(0)) else {
        return Ok(GtidPosition::default());
    };
    let pos: Option<Option<String>> = conn.exec_first("SELECT BINLOG_GTID_POS(?, 4)", (first,)).await.map_err(&q)?;
    pos.flatten().unwrap_or_default().parse().map_err(SourceError::Position)
}

/// Whether resuming at `stored` needs binlogs the server no longer has.
pub async fn check_not_purged(conn: &mut Conn, stored: &GtidPosition) -> Result<(), SourceError> {
    let oldest = oldest_position(conn).await?;
    if let Some((mine, first)) = stored.purged_against(&oldest) {
        return Err(fail(format!(
            "the stored position {stored} is no longer in the server's binlogs (domain {}: stored seq {}, oldest binlog starts after {first}); the binlogs were purged. Set snapshot.mode=when_needed to take a new snapshot, or keep binlogs longer (binlog_expire_logs_seconds)",
            first.domain, mine.seq
        )));
    }
    Ok(())
}

/// Kafka answers a metadata request; a failure says why (credentials, TLS, protocol, address).
pub async fn check_kafka(cfg: &SourceConfig) -> Result<(), SourceError> {
    let client = cdc_common::kafka::client_config(cdc_common::kafka::Role::Consumer, &cfg.kafka);
    let kafka = cfg.kafka.clone();
    tokio::task::spawn_blocking(move || cdc_common::kafka::probe(&client, &kafka, Duration::from_secs(10)).map(|_| ()))
        .await
        .map_err(|e| SourceError::preflight_on(e.to_string(), e))?
        .map_err(|e| fail(e.message))
}

/// Two captured tables whose topics would be the same are refused, naming both.
pub fn check_topic_collisions(cfg: &SourceConfig, tables: &[(String, String)]) -> Result<(), SourceError> {
    let mut by_topic: std::collections::BTreeMap<String, &(String, String)> = std::collections::BTreeMap::new();
    for t in tables {
        let topic = cfg.topic(&t.1);
        if let Some(other) = by_topic.insert(topic.clone(), t) {
            return Err(fail(format!(
                "tables {}.{} and {}.{} would both publish to topic {topic} (topic names replace characters outside [a-zA-Z0-9._-] by `_`, and do not hold the database); exclude one of them with table.exclude.list, or rename one",
                other.0, other.1, t.0, t.1
            )));
        }
    }
    Ok(())
}

/// Warns about each `table.include.list` pattern that matches no existing table, naming the
/// tables that exist (patterns match `database.table`).
pub async fn warn_unmatched_includes(conn: &mut Conn, cfg: &SourceConfig) -> Result<(), SourceError> {
    let all: Vec<(String, String)> = conn
        .query(
            "SELECT table_schema, table_name FROM information_schema.tables WHERE table_type = 'BASE TABLE' \
             AND table_schema NOT IN ('mysql', 'information_schema', 'performance_schema', 'sys') ORDER BY table_schema, table_name",
        )
        .await
        .map_err(SourceError::mysql("list the tables"))?;
    let unmatched = cfg.tables.unmatched_includes(&all);
    if unmatched.is_empty() {
        return Ok(());
    }
    // The tables of the databases the patterns are about (the URL's, and those they name).
    const SHOWN: usize = 30;
    let near: Vec<String> = all.iter().filter(|(d, _)| cfg.tables.databases.contains(d)).map(|(d, t)| format!("{d}.{t}")).collect();
    let mut existing: Vec<String> = near.iter().take(SHOWN).cloned().collect();
    if near.len() > SHOWN {
        existing.push(format!("… ({} more)", near.len() - SHOWN));
    }
    if existing.is_empty() {
        existing.push(format!("none in database {}", cfg.database));
    }
    for pattern in unmatched {
        tracing::warn!(
            pattern = %pattern,
            existing = %existing.join(", "),
            "table.include.list pattern matches no table: patterns are regexes matched against `database.table` (a pattern without a `.` means a table of the connection.url database, `{}`); nothing is captured for it until a matching table is created",
            cfg.database
        );
    }
    Ok(())
}

/// The topic settings are ones the broker accepts (validate-only creations of a data topic and
/// the offsets topic); warns when the effective replication factor is 1 on a cluster of more
/// brokers.
pub async fn check_topic_settings(cfg: &SourceConfig) -> Result<(), SourceError> {
    let broker_ids = brokers(&cfg.kafka).await?;
    let brokers = broker_ids.len();
    let probe = format!("{}cdc_preflight_probe", cfg.topic_prefix);
    for (what, topic, creation, rf_key) in [
        ("data topics", probe.as_str(), &cfg.topic_creation, "topic.creation.default.replication.factor"),
        ("offsets topic", cfg.offsets_topic.as_str(), &cfg.offsets_topic_creation, "offsets.topic.replication.factor"),
    ] {
        match crate::topics::validate_topic(&cfg.kafka, topic, creation).await? {
            None => {}
            Some(RDKafkaErrorCode::InvalidReplicationFactor) => {
                return Err(fail(format!(
                    "{rf_key}={} but the Kafka cluster has {brokers} broker(s): the broker refuses to create the {what} (InvalidReplicationFactor); set {rf_key} to at most {brokers}, or -1 for the broker's default.replication.factor",
                    creation.replication_factor
                )))
            }
            // Settings refused whatever the name; a denied CREATE or a policy may be meant for
            // topics created beforehand, so those only warn.
            Some(code @ (RDKafkaErrorCode::InvalidConfig | RDKafkaErrorCode::InvalidPartitions | RDKafkaErrorCode::InvalidRequest)) => {
                let keys: Vec<String> = creation.configs.iter().map(|(k, v)| format!("topic.creation.default.{k}={v}")).collect();
                return Err(fail(format!(
                    "the broker refuses to create the {what} ({code}): {}; the settings are partitions={}, replication factor={}{}{}",
                    crate::topics::refusal_hint(code),
                    creation.partitions,
                    creation.replication_factor,
                    if keys.is_empty() { "" } else { ", " },
                    keys.join(", ")
                )));
            }
            Some(code) => tracing::warn!(
                %code,
                what,
                hint = crate::topics::refusal_hint(code),
                "the broker did not validate the topic settings; topics that do not exist yet are created when first written, and a table whose topic is refused then fails alone"
            ),
        }
        let rf = match creation.replication_factor {
            -1 => match broker_ids.first() {
                Some(id) => default_replication_factor(&cfg.kafka, *id).await,
                None => None,
            },
            n => Some(n),
        };
        if rf == Some(1) && brokers > 1 {
            tracing::warn!(
                what,
                brokers,
                key = rf_key,
                "the {what} are created with replication factor 1 on a cluster of {brokers} brokers: losing one broker loses their data; set {rf_key} (e.g. 3, with topic.creation.default.min.insync.replicas=2)"
            );
        }
    }
    Ok(())
}

/// The ids of the brokers the cluster metadata lists.
async fn brokers(kafka: &std::collections::BTreeMap<String, String>) -> Result<Vec<i32>, SourceError> {
    let consumer: BaseConsumer = cdc_common::kafka::client_config(cdc_common::kafka::Role::Consumer, kafka)
        .create()
        .map_err(|error| SourceError::KafkaConfig { what: "settings", error })?;
    tokio::task::spawn_blocking(move || consumer.fetch_metadata(None, Duration::from_secs(10)).map(|m| m.brokers().iter().map(|b| b.id()).collect()))
        .await
        .map_err(|error| SourceError::Task { context: "metadata request interrupted", error })?
        .map_err(|error| SourceError::Kafka { context: "cannot read the cluster metadata".into(), error })
}

/// The `default.replication.factor` of a broker (None when it cannot be read, e.g. without
/// DESCRIBE_CONFIGS permission).
async fn default_replication_factor(kafka: &std::collections::BTreeMap<String, String>, broker: i32) -> Option<i32> {
    use rdkafka::admin::{AdminClient, AdminOptions, ResourceSpecifier};
    let admin: AdminClient<rdkafka::client::DefaultClientContext> = cdc_common::kafka::client_config(cdc_common::kafka::Role::Admin, kafka).create().ok()?;
    let opts = AdminOptions::new().request_timeout(Some(Duration::from_secs(10)));
    let results = admin.describe_configs([&ResourceSpecifier::Broker(broker)], &opts).await.ok()?;
    let resource = results.into_iter().next()?.ok()?;
    resource.get("default.replication.factor")?.value.as_deref()?.parse().ok()
}

/// The registry answers (only with `format=avro`).
pub async fn check_registry(cfg: &SourceConfig) -> Result<(), SourceError> {
    let (Format::Avro, Some(registry)) = (cfg.format, cfg.registry.as_ref()) else { return Ok(()) };
    let url = registry.url();
    match tokio::time::timeout(Duration::from_secs(10), registry.subjects()).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => {
            let message = match &e {
                cdc_schema::RegistryError::Unreachable { message, .. } => format!(
                    "schema registry at {url} does not answer: {message}; check schema.registry.url (and schema.registry.ssl.ca.location for https)"
                ),
                e => format!("schema registry at {url}: {e}; check schema.registry.url (the Confluent API base, e.g. …/apis/ccompat/v7)"),
            };
            Err(SourceError::preflight_on(message, e))
        }
        Err(_) => Err(fail(format!("schema registry at {url} does not answer within 10 s; check schema.registry.url"))),
    }
}
