//! Start-up and the life of the source: preflight, fencing, where to start, snapshot, streaming.

use cdc_common::CancellationToken;
use cdc_schema::{Encoder, Registry};

use crate::config::{Format, SnapshotMode, SourceConfig};
use crate::error::SourceError;
use crate::incremental::{Incremental, IncrementalState, PostedSignal, Requested};
use std::collections::BTreeSet;
use crate::metrics::SourceMetrics;
use crate::offsets::{self, OffsetRecord, SnapshotState, StoredOffset};
use crate::position::{FilePos, GtidPosition};
use crate::publisher::Publisher;
use crate::records::RecordEncoder;
use crate::status::Status;
use crate::stream::Streamer;
use crate::tables::{no_primary_key, TableMapCache};
use crate::{preflight, snapshot};

/// Runs every preflight check (what `cdc-source check` does). Returns the stored offset, if any.
pub async fn check(cfg: &SourceConfig) -> Result<Option<StoredOffset>, SourceError> {
    let mut conn = preflight::check_server(cfg).await?;
    preflight::check_kafka(cfg).await?;
    preflight::check_topic_settings(cfg).await?;
    preflight::check_registry(cfg).await?;
    check_tables(&mut conn, cfg).await?;
    let stored = offsets::load_last(&cfg.kafka, &cfg.offsets_topic, &cfg.name).await?;
    if let Some(r) = &stored {
        if let Some(state) = &r.snapshot {
            check_resumable(&mut conn, cfg, state).await?;
        } else if cfg.snapshot_mode != SnapshotMode::WhenNeeded {
            preflight::check_not_purged(&mut conn, &r.position.gtid).await?;
        }
    }
    Ok(stored.map(|r| r.position))
}

/// Every captured table that exists now has a primary key and a topic of its own; include
/// patterns that match no table are reported.
async fn check_tables(conn: &mut mysql_async::Conn, cfg: &SourceConfig) -> Result<(), SourceError> {
    use mysql_async::prelude::Queryable;
    let captured = snapshot::captured_tables(conn, cfg).await?;
    preflight::check_topic_collisions(cfg, &captured)?;
    preflight::warn_unmatched_includes(conn, cfg).await?;
    for (db, table) in captured {
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

/// Runs the source until `shutdown` or a definite error. `posted` brings the signals posted to
/// `POST /signals`.
pub async fn run(
    cfg: &SourceConfig,
    metrics: SourceMetrics,
    status: &Status,
    shutdown: &CancellationToken,
    posted: Option<tokio::sync::mpsc::Receiver<PostedSignal>>,
) -> Result<(), SourceError> {
    status.update(|s| {
        s.state = "starting";
        s.name = cfg.name.clone();
    });
    let mut conn = preflight::check_server(cfg).await?;
    preflight::check_kafka(cfg).await?;
    preflight::check_topic_settings(cfg).await?;
    preflight::check_registry(cfg).await?;
    check_tables(&mut conn, cfg).await?;
    crate::topics::ensure_topic(&cfg.kafka, &cfg.offsets_topic, &cfg.offsets_topic_creation).await?;
    // Fence any earlier instance first: afterwards no transaction of theirs is open, so the
    // offsets read next are final.
    let mut publisher = Publisher::connect(&cfg.kafka, &cfg.name, &cfg.offsets_topic, metrics.clone()).await?;
    let stored = offsets::load_last(&cfg.kafka, &cfg.offsets_topic, &cfg.name).await?;
    let encoder = match (cfg.format, &cfg.registry) {
        (Format::Avro, Some(registry)) => Encoder::avro(registry.clone()),
        _ => Encoder::json(),
    };
    let mut writer = RecordEncoder::new(cfg, encoder, metrics.clone());
    let purged = match &stored {
        Some(OffsetRecord { snapshot: Some(state), .. }) => {
            check_resumable(&mut conn, cfg, state).await?;
            None
        }
        Some(s) => preflight::check_not_purged(&mut conn, &s.position.gtid).await.err(),
        None => None,
    };
    // What the stored position carries besides the position: incremental snapshots under way,
    // and the tables it has seen (to tell a newly captured one).
    let resumes_stream = matches!(&stored, Some(OffsetRecord { snapshot: None, .. })) && purged.is_none();
    let (stored_incremental, stored_tables) =
        stored.as_ref().map(|r| (r.incremental.clone(), r.tables.clone())).unwrap_or_default();
    let mut tables = TableMapCache::default();
    if let (Format::Avro, Some(registry)) = (cfg.format, &cfg.registry) {
        remember_registered(&mut conn, cfg, registry, &mut tables).await?;
    }
    let taken = match (stored, purged, cfg.snapshot_mode) {
        (Some(OffsetRecord { snapshot: Some(state), .. }), _, _) => {
            tracing::info!(gtid = %state.gtid, binlog = %state.binlog, "the stored snapshot is unfinished; resuming it");
            take_snapshot(&mut snapshot::Snapshot { cfg, publisher: &mut publisher, writer: &mut writer, metrics: &metrics, status, shutdown }, Some(state)).await?
        }
        (Some(OffsetRecord { position: s, .. }), None, _) => {
            tracing::info!(gtid = %s.gtid, binlog = %s.binlog, "resuming from the committed position");
            Some((s, Vec::new()))
        }
        (Some(_), Some(e), mode) if mode != SnapshotMode::WhenNeeded => return Err(e),
        (None, _, SnapshotMode::Never) => {
            let pos: Option<String> = mysql_async::prelude::Queryable::query_first(&mut conn, "SELECT @@gtid_binlog_pos")
                .await
                .map_err(SourceError::mysql("read @@gtid_binlog_pos"))?;
            let gtid: GtidPosition = pos.unwrap_or_default().parse().map_err(SourceError::Position)?;
            tracing::info!(%gtid, "snapshot.mode=never: streaming from the current position");
            let offset = StoredOffset { gtid, binlog: FilePos::default(), ts_ms: 0 };
            publisher.commit(&OffsetRecord::at(offset.clone())).await?;
            Some((offset, Vec::new()))
        }
        (_, purged, _) => {
            if let Some(e) = purged {
                tracing::warn!(error = %e, "stored position purged; snapshot.mode=when_needed takes a new snapshot");
            }
            take_snapshot(&mut snapshot::Snapshot { cfg, publisher: &mut publisher, writer: &mut writer, metrics: &metrics, status, shutdown }, None).await?
        }
    };
    let Some((start, captured)) = taken else {
        status.update(|s| s.state = "stopped");
        return Ok(());
    };
    let names = |list: &[(String, String)]| list.iter().map(|(d, t)| format!("{d}.{t}")).collect::<BTreeSet<String>>();
    let inc = if resumes_stream {
        let now = names(&snapshot::captured_tables(&mut conn, cfg).await?);
        incremental_at_start(cfg, stored_incremental, stored_tables, now)
    } else {
        let known: Vec<(String, String)> = if captured.is_empty() {
            snapshot::captured_tables(&mut conn, cfg).await?
        } else {
            captured.iter().map(|t| (t.schema.database.clone(), t.schema.table.clone())).collect()
        };
        Incremental::new(cfg, IncrementalState::default(), names(&known), true)
    };
    for t in captured {
        tables.seed(t);
    }
    drop(conn);
    status.update(|s| {
        s.committed_gtid = start.gtid.to_string();
        s.committed_binlog = start.binlog.to_string();
    });
    let mut streamer = Streamer::new(cfg, tables, writer, publisher, metrics, status, start, inc, posted);
    let result = streamer.run(shutdown).await;
    status.update(|s| s.state = if result.is_ok() { "stopped" } else { "failed" });
    result
}

/// The incremental snapshots a resumed stream starts with: those under way at the stored
/// position, plus one for each captured table that position has not seen (with
/// `snapshot.new.tables=incremental`). `now` are the tables captured now.
fn incremental_at_start(cfg: &SourceConfig, stored: IncrementalState, seen: Option<Vec<String>>, now: BTreeSet<String>) -> Incremental {
    for s in &stored.snapshots {
        tracing::info!(
            table = %s.name(),
            signal = %s.id,
            rows_done = s.rows,
            chunks_done = s.chunks,
            "incremental snapshot under way at the stored position: continuing after its last published chunk"
        );
    }
    let Some(seen) = seen else {
        // Written by an earlier version: which tables it saw is unknown, so none counts as new;
        // the next commit stores the list.
        return Incremental::new(cfg, stored, now, true);
    };
    let seen: BTreeSet<String> = seen.into_iter().collect();
    let new: Vec<&String> = now.iter().filter(|t| !seen.contains(*t)).collect();
    let mut inc = Incremental::new(cfg, stored, now.clone(), !new.is_empty());
    if new.is_empty() {
        return inc;
    }
    if !cfg.snapshot_new_tables {
        tracing::info!(tables = ?new, "newly captured tables are streamed from here without copying their rows (snapshot.new.tables=off)");
        return inc;
    }
    let requested = new
        .iter()
        .filter_map(|t| t.split_once('.'))
        .map(|(database, table)| Requested { database: database.to_string(), table: table.to_string(), filter: None, keys: Vec::new() })
        .collect();
    let queued = inc.execute("new-table", requested);
    // Part of where this process starts: an interruption before the next commit returns here.
    inc.committed = inc.state.clone();
    tracing::info!(tables = ?queued, "tables newly captured since the stored position: copying their rows with an incremental snapshot while streaming");
    inc
}

/// Reads the latest value schema of every captured table's subject from the registry into
/// `tables`, so the first schema each table registers after a restart evolves from it.
async fn remember_registered(
    conn: &mut mysql_async::Conn,
    cfg: &SourceConfig,
    registry: &Registry,
    tables: &mut TableMapCache,
) -> Result<(), SourceError> {
    for (_, table) in snapshot::captured_tables(conn, cfg).await? {
        let topic = cfg.topic(&table);
        let subject = format!("{topic}-value");
        let latest = registry.latest(&subject).await.map_err(|error| SourceError::Registry { subject: subject.clone(), error })?;
        if let Some(latest) = latest {
            match cdc_schema::record_schema_from_avro(&latest.schema) {
                Ok(schema) => tables.remember_registered(topic, schema),
                Err(e) => tracing::warn!(subject, error = %e, "the registry's latest schema is not one of ours; the table registers its own"),
            }
        }
    }
    Ok(())
}

/// Runs the snapshot (a new one, or the rest of `resume`). `None` when stopped by `shutdown`:
/// the open chunk is aborted and the next start resumes after the last committed one.
async fn take_snapshot(
    s: &mut snapshot::Snapshot<'_>,
    resume: Option<SnapshotState>,
) -> Result<Option<(StoredOffset, Vec<std::sync::Arc<crate::tables::CapturedTable>>)>, SourceError> {
    match snapshot::run(s, resume).await {
        Ok(done) => Ok(Some(done)),
        Err(e) if s.shutdown.is_cancelled() => {
            // A graceful stop during the snapshot: nothing half-done stays visible.
            s.publisher.abort().await?;
            tracing::info!(reason = %e, "stopped during the snapshot; it resumes after its last committed chunk on the next start");
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// An unfinished snapshot can resume only while the binlogs from its first read view are on the
/// server: streaming starts there afterwards.
async fn check_resumable(conn: &mut mysql_async::Conn, cfg: &SourceConfig, state: &SnapshotState) -> Result<(), SourceError> {
    let oldest = preflight::oldest_position(conn).await?;
    match state.gtid.purged_against(&oldest) {
        Some((_, first)) => Err(unresumable(cfg, state, first)),
        None => Ok(()),
    }
}

/// The definite error of an unfinished snapshot whose first read view's binlogs are purged: it
/// can neither resume nor start over without losing deletes, so a person must reset the offsets.
fn unresumable(cfg: &SourceConfig, state: &SnapshotState, oldest: crate::position::Gtid) -> SourceError {
    SourceError::Definite(format!(
        "cannot resume the unfinished snapshot: it started at GTID position {} (binlog {}), but the binlogs from there were purged (domain {}: the oldest binlog on the server starts after {oldest}). \
         Reset the source's offsets to take a new snapshot: write a tombstone (null value) with key `{}` to the offsets topic {} (or use another `name`), \
         and clear the mirror first if rows were deleted meanwhile",
        state.gtid, state.binlog, oldest.domain, cfg.name, cfg.offsets_topic
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unresumable_snapshot_names_its_position_and_the_reset() {
        let cfg = SourceConfig::from_str(
            r#"{"name": "src-a", "config": {"connection.url": "jdbc:mysql://localhost:3306/db", "connection.user": "u", "offsets.topic": "offs", "format": "json"}}"#,
            &[],
        )
        .expect("config");
        let state = SnapshotState {
            gtid: "0-1-77".parse().expect("gtid"),
            binlog: FilePos { file: "mysql-bin.000003".into(), pos: 910 },
            done: Vec::new(),
            current: None,
        };
        let e = unresumable(&cfg, &state, "0-1-90".parse().expect("gtid"));
        let text = e.to_string();
        assert!(!e.is_transient(), "{text}");
        for part in ["0-1-77", "mysql-bin.000003:910", "purged", "starts after 0-1-90", "tombstone", "`src-a`", "offs"] {
            assert!(text.contains(part), "{part} missing from: {text}");
        }
    }
}
