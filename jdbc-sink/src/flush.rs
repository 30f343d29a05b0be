//! The flusher: owns the mirror database connection and commits batches on it — DDL first, then
//! one transaction holding the rows, the offsets and the DLQ acknowledgements. It runs on a task
//! of its own, one batch at a time, while the apply loop reads and decodes the next batch (see
//! [`crate::apply`] for the guarantees this upholds). It never touches the consumer: what a
//! commit means for the positions it reports as a [`Flushed`].

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use cdc_common::{Backoff, CancellationToken};
use mysql_async::TxOpts;

use crate::batch::Batch;
use crate::change::{Change, Op};
use crate::config::{PkMode, Settings};
use crate::ddl::MirrorTables;
use crate::dlq::{DeadLetter, DeadLetterQueue};
use crate::ident::Ident;
use crate::errors::{class, classify_db, db_error, DbErrorKind, RecordError, SinkError};
use crate::metrics::SinkMetrics;
use crate::offsets::{self, OffsetMove, OffsetsError, TopicPartition};
use crate::status::SinkStatus;
use crate::writer::{collapse, count_applied, write_each, write_grouped, StatementLimit, WriteError};

#[path = "flush_conn.rs"]
mod conn;
use conn::bounded;

/// Added to a transient error when the batch's COMMIT was sent and got no answer.
pub(crate) const IN_DOUBT: &str = "; the COMMIT was sent but got no answer, so whether the batch took effect is unknown: \
     the retry reads the offsets table to find out (at the batch's end: it did, and it is not applied again; \
     at its start: it did not, and it is applied now)";

/// What a flushed batch means for the positions of its partitions.
#[derive(Debug)]
pub(crate) enum Flushed {
    /// The batch was empty.
    Nothing,
    /// Committed: each partition's stored offset is now its move's `next`.
    Committed(Vec<OffsetMove>),
    /// Dropped because another consumer moved these partitions (fencing): read them again from
    /// the offsets table.
    Dropped(Vec<OffsetMove>),
}

/// The database side of the sink: connection, mirror tables, offsets table, DLQ producer.
pub(crate) struct Flusher {
    settings: Arc<Settings>,
    tables: MirrorTables,
    dlq: Option<DeadLetterQueue>,
    metrics: SinkMetrics,
    status: Arc<SinkStatus>,
    conn: Option<mysql_async::Conn>,
    /// How long the statements of `conn` may be (read with each new connection).
    statement_limit: StatementLimit,
    offsets_table: Ident,
    group: String,
    /// When the database last answered (a commit, the offsets table, a ping).
    db_answered: Instant,
    /// The open batch's COMMIT was sent and got no answer: whether it took effect is unknown
    /// until the retry reads the offsets table (see [`crate::offsets`]).
    commit_in_doubt: bool,
    shutdown: CancellationToken,
}

impl std::fmt::Debug for Flusher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Flusher").field("group", &self.group).finish_non_exhaustive()
    }
}

/// A record that can never be applied: into `letters` (bound for the DLQ), or stop.
pub(crate) fn refuse(
    settings: &Settings,
    metrics: &SinkMetrics,
    has_dlq: bool,
    letters: &mut Vec<DeadLetter>,
    error: RecordError,
    raw: Option<crate::batch::RawRecord>,
) -> Result<(), SinkError> {
    metrics.error(error.class);
    if settings.tolerance == crate::config::Tolerance::None || !has_dlq {
        return Err(SinkError::Record(error));
    }
    tracing::warn!(origin = %error.origin, class = error.class, message = error.message, "record goes to the dead letter queue");
    let raw = raw.unwrap_or_default();
    letters.push(DeadLetter {
        error,
        key: raw.key,
        value: raw.value,
        headers: raw.headers,
    });
    Ok(())
}

/// A transient error: counted, logged, `/status` says `retrying`, `/ready` 503.
pub(crate) fn retrying(metrics: &SinkMetrics, status: &SinkStatus, class: &'static str, message: &str) {
    metrics.retry(class);
    metrics.error(class);
    status.set_ready(false);
    let message = message.to_string();
    tracing::warn!(
        class,
        error = message,
        "transient error; retrying with backoff"
    );
    status.update(|s| {
        s.state = "retrying";
        s.last_error = Some(message);
    });
}

impl Flusher {
    /// A flusher not yet connected (it connects on its first use).
    pub(crate) fn new(
        settings: Arc<Settings>,
        metrics: SinkMetrics,
        status: Arc<SinkStatus>,
        dlq: Option<DeadLetterQueue>,
        offsets_table: Ident,
        shutdown: CancellationToken,
    ) -> Flusher {
        Flusher {
            tables: MirrorTables::new(&settings.database, settings.auto_create, settings.auto_evolve, metrics.clone()),
            dlq,
            group: settings.group_id(),
            settings,
            metrics,
            status,
            conn: None,
            statement_limit: Default::default(),
            offsets_table,
            db_answered: Instant::now(),
            commit_in_doubt: false,
            shutdown,
        }
    }

    /// The dead letter queue, if records refused go to one.
    pub(crate) fn dlq(&self) -> Option<&DeadLetterQueue> {
        self.dlq.as_ref()
    }
    pub(crate) async fn ensure_offsets_table(&mut self) -> Result<(), SinkError> {
        let mut backoff = Backoff::new(self.settings.retry_backoff, Duration::from_secs(30));
        let limit = self.settings.statement_timeout;
        loop {
            let attempt = bounded(limit, "statement.timeout.ms", "creating the offsets table", async {
                let mut conn = self.take_conn().await?;
                offsets::ensure_table(&mut conn, &self.offsets_table)
                    .await
                    .map_err(|e| db_error("creating the offsets table", &e))?;
                self.conn = Some(conn);
                Ok(())
            })
            .await;
            match attempt {
                Ok(()) => {
                    self.db_answered = Instant::now();
                    return Ok(());
                }
                Err(SinkError::Transient { class, message }) => {
                    self.conn = None;
                    self.retrying(class, &message);
                    if !backoff.wait(&self.shutdown).await {
                        return Err(SinkError::Stopped(message));
                    }
                }
                Err(e) => return Err(e),
            }
        }
    }

    pub(crate) async fn load_positions(&mut self) -> Result<HashMap<TopicPartition, i64>, SinkError> {
        let limit = self.settings.statement_timeout;
        bounded(limit, "statement.timeout.ms", "reading the offsets table", async {
            let mut conn = self.take_conn().await?;
            let positions = offsets::load(&mut conn, &self.offsets_table, &self.group)
                .await
                .map_err(|e| db_error("reading the offsets table", &e))?;
            self.conn = Some(conn);
            Ok(positions)
        })
        .await
    }

    fn retrying(&self, class: &'static str, message: &str) {
        retrying(&self.metrics, &self.status, class, message);
    }

    /// The database answered again after retries: ready, `running`.
    fn recovered(&self) {
        self.status.set_ready(true);
        self.status.update(|s| {
            if s.state == "retrying" {
                s.state = "running";
            }
        });
    }

    /// Commits `batch`, retrying transient failures with backoff; the caller applies the
    /// [`Flushed`] outcome to the positions. At shutdown (`final_flush`) a
    /// transient failure is not retried: the batch is rolled back and re-read on the next start.
    pub(crate) async fn flush_with_retry(
        &mut self,
        mut batch: Batch,
        final_flush: bool,
    ) -> Result<Flushed, SinkError> {
        if batch.is_empty() {
            return Ok(Flushed::Nothing);
        }
        let batch = &mut batch;
        let mut backoff = Backoff::new(self.settings.retry_backoff, Duration::from_secs(30));
        let mut keyed = false;
        self.commit_in_doubt = false;
        let limit = self.settings.statement_timeout;
        loop {
            let started = Instant::now();
            let attempt = if keyed {
                self.try_flush(batch).await
            } else {
                let keying = self.key_keyless_changes(batch);
                match bounded(limit, "statement.timeout.ms", "reading mirror table keys", keying).await {
                    Ok(()) => {
                        keyed = true;
                        batch.changes = collapse(
                            std::mem::take(&mut batch.changes),
                            self.settings.insert_mode,
                        );
                        self.try_flush(batch).await
                    }
                    Err(e) => Err(e),
                }
            };
            match attempt {
                Ok(flushed) => {
                    self.metrics
                        .batch_duration
                        .observe(started.elapsed().as_secs_f64());
                    self.db_answered = Instant::now();
                    self.recovered();
                    return Ok(flushed);
                }
                Err(SinkError::Transient { class, mut message }) => {
                    self.conn = None;
                    if self.commit_in_doubt {
                        message.push_str(IN_DOUBT);
                    }
                    self.retrying(class, &message);
                    if final_flush {
                        self.status.set_pending_event_ms(None);
                        return Err(SinkError::Transient { class, message });
                    }
                    if !backoff.wait(&self.shutdown).await {
                        // The batch stays uncommitted; it is read again on the next start.
                        self.status.set_pending_event_ms(None);
                        return Err(SinkError::Stopped(message));
                    }
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// With `pk.mode` unset, gives each keyless write the primary key of its mirror table — or,
    /// for a table still to be created, the key of the batch's first keyed change of that table
    /// (it creates the table) — so it upserts and collapses like a keyed change of the same row.
    /// A change that lacks a key column, or whose table has no key, stays keyless.
    async fn key_keyless_changes(&mut self, batch: &mut Batch) -> Result<(), SinkError> {
        let keyless = |c: &Change| c.op == Op::Write && c.shape.pk_len == 0;
        if self.settings.pk_mode != PkMode::Adaptive || !batch.changes.iter().any(keyless) {
            return Ok(());
        }
        let mut conn = self.take_conn().await?;
        let mut keys: HashMap<Ident, Vec<String>> = HashMap::new();
        for c in batch.changes.iter().filter(|c| keyless(c)) {
            if keys.contains_key(&c.table) {
                continue;
            }
            let key = match self.tables.primary_key(&mut conn, &c.table).await {
                Ok(Some(key)) => key,
                Ok(None) => batch
                    .changes
                    .iter()
                    .find(|k| k.table == c.table && k.shape.pk_len > 0)
                    .map(|k| k.shape.pk_names().iter().map(|n| n.as_str().to_lowercase()).collect())
                    .unwrap_or_default(),
                Err(e) => return Err(e),
            };
            keys.insert(c.table.clone(), key);
        }
        self.conn = Some(conn);
        let mut shapes = HashMap::new();
        for c in batch.changes.iter_mut().filter(|c| keyless(c)) {
            let Some(key) = keys.get(&c.table).filter(|k| !k.is_empty()) else { continue };
            if let Some(keyed) = c.keyed_by(key, &mut shapes) {
                *c = keyed;
            }
        }
        Ok(())
    }

    /// One attempt within `statement.timeout.ms`: a connection that stops answering mid-batch is
    /// dropped with the attempt (the transaction is rolled back by the server, or — if only the
    /// COMMIT's answer was lost — the retry finds the offsets table at the batch's end and takes
    /// the batch as committed; see [`crate::offsets`]).
    async fn try_flush(&mut self, batch: &mut Batch) -> Result<Flushed, SinkError> {
        let mut conn = self.take_conn().await?;
        let limit = self.settings.statement_timeout;
        let result = bounded(limit, "statement.timeout.ms", "committing a batch", self.flush_on(&mut conn, batch)).await;
        if !matches!(result, Err(SinkError::Transient { .. })) {
            self.conn = Some(conn);
        }
        result
    }

    async fn flush_on(
        &mut self,
        conn: &mut mysql_async::Conn,
        batch: &mut Batch,
    ) -> Result<Flushed, SinkError> {
        // DDL outside the transaction; changes whose shape is refused become DLQ letters.
        let mut refused: HashMap<(&str, &str, Op), (&'static str, String)> = HashMap::new();
        let mut seen = std::collections::HashSet::new();
        for c in &batch.changes {
            if !seen.insert((c.table.as_str(), c.shape.id.as_str(), c.op)) {
                continue;
            }
            let inserts = c.op == Op::Write && self.settings.insert_mode != crate::config::InsertMode::Update;
            if let Err(refusal) = self.tables.prepare(conn, &c.table, &c.shape, inserts).await? {
                refused.insert((c.table.as_str(), c.shape.id.as_str(), c.op), refusal);
            }
        }
        let mut letters = batch.letters.clone();
        let mut good: Vec<&Change> = Vec::with_capacity(batch.changes.len());
        for c in &batch.changes {
            match refused.get(&(c.table.as_str(), c.shape.id.as_str(), c.op)) {
                Some((cls, msg)) => self.refuse_change(batch, &mut letters, c, cls, msg.clone())?,
                None => good.push(c),
            }
        }
        let moves = batch.offset_moves();
        let (table, group, mode, limit) = (
            self.offsets_table.clone(),
            self.group.clone(),
            self.settings.insert_mode,
            self.statement_limit,
        );

        let mut tx = conn
            .start_transaction(TxOpts::default())
            .await
            .map_err(|e| db_error("starting a transaction", &e))?;
        truncate_tables(&mut tx, &batch.truncates).await?;
        let mut applied: Vec<&Change> = good.clone();
        if let Err(e) = write_grouped(&mut tx, &good, mode, limit).await {
            if let WriteError::Db(e) = &e {
                if classify_db(e) != DbErrorKind::Data {
                    return Err(db_error("writing the batch", e));
                }
            }
            // Find the records that do not fit (or whose statement is too large to send):
            // replay one by one behind savepoints.
            tx.rollback()
                .await
                .map_err(|e| db_error("rolling back", &e))?;
            tx = conn
                .start_transaction(TxOpts::default())
                .await
                .map_err(|e| db_error("starting a transaction", &e))?;
            truncate_tables(&mut tx, &batch.truncates).await?;
            let failed = write_each(&mut tx, &good, mode, limit)
                .await
                .map_err(|e| db_error("writing the batch", &e))?;
            let bad: std::collections::HashSet<usize> = failed.iter().map(|(i, _)| *i).collect();
            applied = good
                .iter()
                .enumerate()
                .filter(|(i, _)| !bad.contains(i))
                .map(|(_, c)| *c)
                .collect();
            for (i, message) in failed {
                let c = good[i];
                if let Err(stop) = self.refuse_change(batch, &mut letters, c, class::DATA, message)
                {
                    let _ = tx.rollback().await;
                    return Err(stop);
                }
            }
        }
        let in_doubt = self.commit_in_doubt;
        match offsets::store(&mut tx, &table, &group, &moves).await {
            Ok(()) => {
                if in_doubt {
                    tracing::info!("ambiguous commit resolved: the earlier COMMIT of this batch, whose answer was lost, did not take effect (the offsets table is still at the batch's start); the batch is applied now");
                }
                if let Some(dlq) = &self.dlq {
                    if !letters.is_empty() {
                        dlq.send_all(&letters).await?;
                    }
                }
                // From here until the answer, the outcome is unknown.
                self.commit_in_doubt = true;
                tx.commit()
                    .await
                    .map_err(|e| db_error("committing the batch", &e))?;
                self.commit_in_doubt = false;
            }
            Err(OffsetsError::AtEnd) if in_doubt => {
                let _ = tx.rollback().await;
                self.commit_in_doubt = false;
                tracing::info!("ambiguous commit resolved: the earlier COMMIT of this batch, whose answer was lost, took effect (the offsets table is at the batch's end); the batch is done, not applied twice");
            }
            Err(moved @ (OffsetsError::AtEnd | OffsetsError::Fenced(_))) => {
                let _ = tx.rollback().await;
                self.commit_in_doubt = false;
                let note = if in_doubt {
                    " (the earlier COMMIT of this batch got no answer; whether it took effect no longer matters: the stored offsets decide)"
                } else {
                    ""
                };
                tracing::warn!(reason = %moved, "batch dropped: another consumer applied its partitions since it was read (a rebalance), the offsets table moved; the partitions are read again from there{note}");
                return Ok(Flushed::Dropped(moves));
            }
            Err(OffsetsError::Db(e)) => return Err(db_error("storing offsets", &e)),
        }

        // Committed: record the new positions and report.
        count_applied(&self.metrics, applied.iter().copied(), mode);
        for t in &batch.truncates {
            self.metrics
                .truncates
                .get_or_create(&crate::metrics::TruncateLabels { table: t.as_str().to_string(), outcome: "applied" })
                .inc();
        }
        for l in &letters {
            self.metrics
                .dlq_records
                .get_or_create(&crate::metrics::ClassLabel {
                    class: l.error.class,
                })
                .inc();
        }
        self.metrics.batch_records.observe(batch.records as f64);
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        self.metrics.last_commit.set(now.as_secs_f64());
        let now_ms = now.as_millis() as i64;
        for ms in &batch.event_ms {
            self.metrics
                .latency
                .observe((now_ms - ms).max(0) as f64 / 1000.0);
        }
        let newest_event = batch.event_ms.iter().max().copied();
        if let Some(ms) = newest_event {
            self.metrics.last_event.set(ms as f64 / 1000.0);
        }
        let (records, dlq) = (batch.records as u64, letters.len() as u64);
        if let Some(ms) = newest_event {
            self.status.note_applied_event_ms(ms);
        }
        self.status.update(|s| {
            s.state = "running";
            s.batches_committed += 1;
            s.records_committed += records;
            s.dlq_records += dlq;
            s.last_commit_unix_ms = Some(now.as_millis() as u64);
            if let Some(ms) = newest_event {
                s.lag_seconds = Some((now_ms - ms).max(0) as f64 / 1000.0);
            }
            for m in &moves {
                s.offsets
                    .insert(format!("{}/{}", m.topic, m.partition), m.next);
            }
        });
        Ok(Flushed::Committed(moves))
    }

    fn refuse_change(
        &self,
        batch: &Batch,
        letters: &mut Vec<crate::dlq::DeadLetter>,
        c: &Change,
        cls: &'static str,
        message: String,
    ) -> Result<(), SinkError> {
        let o = &c.origin;
        let raw = batch
            .raw
            .get(&(o.topic.clone(), o.partition, o.offset))
            .cloned();
        let error = RecordError {
            origin: o.clone(),
            class: cls,
            message,
        };
        refuse(&self.settings, &self.metrics, self.dlq.is_some(), letters, error, raw)
    }

}

/// Empties the truncated tables inside the batch's transaction (`DELETE FROM`, not `TRUNCATE`,
/// which is DDL and would commit implicitly). A table that does not exist has nothing to empty.
async fn truncate_tables(
    tx: &mut mysql_async::Transaction<'_>,
    tables: &[Ident],
) -> Result<(), SinkError> {
    use mysql_async::prelude::Queryable;
    for table in tables {
        match tx.query_drop(format!("DELETE FROM {table}")).await {
            Ok(()) => {}
            Err(mysql_async::Error::Server(s)) if s.code == 1146 => {}
            Err(e) => return Err(db_error(&format!("emptying `{}` for a truncate record", table.as_str()), &e)),
        }
    }
    Ok(())
}
