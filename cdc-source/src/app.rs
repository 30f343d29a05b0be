//! Start-up and the life of the source: preflight, fencing, where to start, snapshot, streaming.

use std::collections::HashSet;

use cdc_common::CancellationToken;
use cdc_schema::{Encoder, Registry};

use crate::config::{Format, SnapshotMode, SourceConfig};
use crate::error::SourceError;
use crate::metrics::SourceMetrics;
use crate::offsets::{self, StoredOffset};
use crate::position::{FilePos, GtidPosition};
use crate::publisher::Publisher;
use crate::records::RecordWriter;
use crate::status::Status;
use crate::stream::Streamer;
use crate::tables::{no_primary_key, Tables};
use crate::{preflight, snapshot};

/// Runs every preflight check (what `cdc-source check` does). Returns the stored offset, if any.
pub async fn check(cfg: &SourceConfig) -> Result<Option<StoredOffset>, SourceError> {
    let mut conn = preflight::check_server(cfg).await?;
    preflight::check_kafka(cfg).await?;
    preflight::check_registry(cfg).await?;
    check_tables(&mut conn, cfg).await?;
    let stored = offsets::load_last(&cfg.kafka, &cfg.offsets_topic, &cfg.name).await?;
    if let Some(s) = &stored {
        if cfg.snapshot_mode != SnapshotMode::WhenNeeded {
            preflight::check_not_purged(&mut conn, &s.gtid).await?;
        }
    }
    Ok(stored)
}

/// Every captured table that exists now has a primary key.
async fn check_tables(conn: &mut mysql_async::Conn, cfg: &SourceConfig) -> Result<(), SourceError> {
    use mysql_async::prelude::Queryable;
    for (db, table) in snapshot::captured_tables(conn, cfg).await? {
        let pk: Option<u64> = conn
            .exec_first(
                "SELECT COUNT(*) FROM information_schema.key_column_usage WHERE table_schema = ? AND table_name = ? AND constraint_name = 'PRIMARY'",
                (&db, &table),
            )
            .await
            .map_err(SourceError::mysql("read primary keys"))?;
        if pk.unwrap_or(0) == 0 {
            return Err(no_primary_key(&db, &table));
        }
    }
    Ok(())
}

/// Runs the source until `shutdown` or a definite error.
pub async fn run(
    cfg: &SourceConfig,
    metrics: SourceMetrics,
    status: &Status,
    shutdown: &CancellationToken,
) -> Result<(), SourceError> {
    status.update(|s| {
        s.state = "starting";
        s.name = cfg.name.clone();
    });
    let mut conn = preflight::check_server(cfg).await?;
    preflight::check_kafka(cfg).await?;
    preflight::check_registry(cfg).await?;
    check_tables(&mut conn, cfg).await?;
    offsets::ensure_topics(&cfg.kafka, &[(cfg.offsets_topic.clone(), 1, true)]).await?;
    // Fence any earlier instance first: afterwards no transaction of theirs is open, so the
    // offsets read next are final.
    let mut publisher = Publisher::connect(&cfg.kafka, &cfg.name, &cfg.offsets_topic, metrics.clone()).await?;
    let stored = offsets::load_last(&cfg.kafka, &cfg.offsets_topic, &cfg.name).await?;
    let encoder = match (cfg.format, &cfg.registry) {
        (Format::Avro, Some(registry)) => Encoder::avro(registry.clone()),
        _ => Encoder::json(),
    };
    let mut writer = RecordWriter {
        encoder,
        delete_enabled: cfg.delete_enabled,
        metrics: metrics.clone(),
        kafka: cfg.kafka.clone(),
        partitions: cfg.topic_partitions,
        ensured: HashSet::new(),
    };
    let purged = match &stored {
        Some(s) => preflight::check_not_purged(&mut conn, &s.gtid).await.err(),
        None => None,
    };
    let mut tables = Tables::default();
    if let (Format::Avro, Some(registry)) = (cfg.format, &cfg.registry) {
        remember_registered(&mut conn, cfg, registry, &mut tables).await?;
    }
    let start = match (stored, purged, cfg.snapshot_mode) {
        (Some(s), None, _) => {
            tracing::info!(gtid = %s.gtid, binlog = %s.binlog, "resuming from the committed position");
            s
        }
        (Some(_), Some(e), mode) if mode != SnapshotMode::WhenNeeded => return Err(e),
        (None, _, SnapshotMode::Never) => {
            let pos: Option<String> = mysql_async::prelude::Queryable::query_first(&mut conn, "SELECT @@gtid_binlog_pos")
                .await
                .map_err(SourceError::mysql("read @@gtid_binlog_pos"))?;
            let gtid: GtidPosition = pos.unwrap_or_default().parse().map_err(SourceError::Definite)?;
            tracing::info!(%gtid, "snapshot.mode=never: streaming from the current position");
            let offset = StoredOffset { gtid, binlog: FilePos::default(), ts_ms: 0 };
            publisher.commit(Some(&offset)).await?;
            offset
        }
        (_, purged, _) => {
            if let Some(e) = purged {
                tracing::warn!(error = %e, "stored position purged; snapshot.mode=when_needed takes a new snapshot");
            }
            let snap = snapshot::run(cfg, &mut publisher, &mut writer, &metrics, status, shutdown).await;
            let (offset, captured) = match snap {
                Ok(done) => done,
                Err(e) if shutdown.is_cancelled() => {
                    // A graceful stop during the snapshot: nothing half-done stays visible.
                    publisher.abort().await?;
                    tracing::info!(reason = %e, "stopped during the snapshot; it starts over on the next start");
                    status.update(|s| s.state = "stopped");
                    return Ok(());
                }
                Err(e) => return Err(e),
            };
            for t in captured {
                tables.seed(t);
            }
            offset
        }
    };
    drop(conn);
    status.update(|s| {
        s.committed_gtid = start.gtid.to_string();
        s.committed_binlog = start.binlog.to_string();
    });
    let mut streamer = Streamer::new(cfg, tables, writer, publisher, metrics, status, start);
    let result = streamer.run(shutdown).await;
    status.update(|s| s.state = if result.is_ok() { "stopped" } else { "failed" });
    result
}

/// Reads the latest value schema of every captured table's subject from the registry into
/// `tables`, so the first schema each table registers after a restart evolves from it.
async fn remember_registered(
    conn: &mut mysql_async::Conn,
    cfg: &SourceConfig,
    registry: &Registry,
    tables: &mut Tables,
) -> Result<(), SourceError> {
    for (_, table) in snapshot::captured_tables(conn, cfg).await? {
        let topic = cfg.topic(&table);
        let subject = format!("{topic}-value");
        let latest = registry.latest(&subject).await.map_err(|e| {
            SourceError::Transient(format!("reading the latest schema of {subject} from the registry: {e}"))
        })?;
        if let Some(latest) = latest {
            match cdc_schema::record_schema_from_avro(&latest.schema) {
                Ok(schema) => tables.remember_registered(topic, schema),
                Err(e) => tracing::warn!(subject, error = %e, "the registry's latest schema is not one of ours; the table registers its own"),
            }
        }
    }
    Ok(())
}
