//! Checks made before any work, each failure naming the setting and the fix: the server's binlog
//! settings, the account's grants, the server id, Kafka and the registry.

use std::time::Duration;

use mysql_async::prelude::Queryable;
use mysql_async::Conn;

use crate::config::{Format, SourceConfig};
use crate::error::SourceError;
use crate::position::GtidPosition;

/// One failed check.
fn fail(msg: String) -> SourceError {
    SourceError::preflight(msg)
}

/// Checks the source server; returns an open connection for further start-up queries.
pub async fn check_server(cfg: &SourceConfig) -> Result<Conn, SourceError> {
    let mut conn = Conn::new(cfg.mysql_opts()).await.map_err(|e| {
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
    let client = crate::offsets::kafka_config(&cfg.kafka);
    let kafka = cfg.kafka.clone();
    tokio::task::spawn_blocking(move || cdc_common::kafka::probe(&client, &kafka, Duration::from_secs(10)).map(|_| ()))
        .await
        .map_err(|e| SourceError::preflight_on(e.to_string(), e))?
        .map_err(|e| fail(e.message))
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
