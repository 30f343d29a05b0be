//! The apply loop: Kafka records in, mirror rows out, exactly once.
//!
//! ```text
//!  loop:    recv ─► position check ─► decode ─► change ─► batch n+1 ──(full / old enough / flusher free)──┐
//!                                                                                                       │ handed over
//!  flusher task (batch n):                                                                              ▼
//!   DDL (outside the txn) ─► BEGIN ─► rows ─► offsets row per partition (fenced) ─► DLQ acked ─► COMMIT ─► landed:
//!                                          positions, group offsets commit (monitoring only) in the loop
//! ```
//!
//! **Parts.** The loop (this module) owns the consumer, the decoder and the change builder; the
//! positions and seeking live in [`crate::positions`]; the [`crate::flush::Flusher`] owns the
//! database connection, the mirror tables' DDL, the offsets table and the DLQ, and commits one
//! batch at a time on its own task while the loop decodes the next ([`crate::pipeline`]).
//!
//! **Positions.** The offsets table in the mirror database is the only truth. The first record
//! seen from a partition (after start or an assignment) loads the partition's stored offset;
//! records below it were applied already and are skipped; a record above it means the consumer
//! started too far ahead (its group offset is newer than the database), and the consumer is moved
//! back to the stored offset. A partition without a stored offset starts where the group left
//! off, or at the earliest record. The group offsets are a copy of the stored offsets moved past
//! trailing transaction markers, refreshed after each commit and on the idle tick
//! ([`crate::positions`] explains why they never run ahead of the mirror).
//!
//! **Guarantees.** Rows of a batch and the batch's next offsets commit in one transaction, so
//! after a crash at any point the mirror holds exactly the records before the stored offsets;
//! re-reading from there neither loses nor repeats a record. A batch that lost its partitions in a
//! rebalance cannot commit over the new owner's work: the offsets rows are locked and checked
//! (fencing) and the batch is dropped if they moved. Order per key is the partition order.
//! Transient failures roll the batch back and retry it with backoff, forever; a record that can
//! never be applied goes to the DLQ (`errors.tolerance=all`) or stops the sink (`none`).
//!
//! **Bounded waits.** Every database round trip has a deadline: connecting and pinging
//! `connect.timeout.ms`, a batch's transaction, a table's DDL and the offsets read
//! `statement.timeout.ms` (also the server-side `max_statement_time`). While idle the connection is
//! pinged every `connection.ping.interval.ms`. A deadline missed is a transient error like a lost
//! connection: the connection is dropped, the sink is `retrying` (`/ready` 503, `/status`
//! `last_error` says what did not answer) and tries again with backoff. While a batch waits,
//! `lag_seconds` grows from the clock ([`crate::status`]).
//!
//! **Shutdown.** When the token is cancelled the loop stops reading, lets the batch in flight
//! land, commits the open batch (or
//! rolls it back if the database is unreachable: it is re-read on the next start), commits the
//! group offsets and returns.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use cdc_common::{Backoff, CancellationToken};
use cdc_schema::{Decoder, Part, Record};
use futures::FutureExt;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::{Headers, Message, OwnedMessage};

use crate::batch::{Batch, RawRecord};
use crate::change::ChangeBuilder;
use crate::config::{PkMode, Settings};
use crate::consumer::SinkContext;
use crate::errors::{class, MessageId, RecordError, SinkError};
use crate::metrics::{SinkMetrics, TopicLabel};
use crate::offsets::TopicPartition;
use crate::pipeline::{landing, Slot};
use crate::positions::Positions;
use crate::status::SinkStatus;

/// How often rebalance events are looked at while no record arrives.
const REBALANCE_CHECK: Duration = Duration::from_millis(200);

/// The running sink: the consume loop's parts (consumer, decoder, change builder, positions)
/// and the [`crate::flush::Flusher`], which owns the database side and commits on its own task.
pub struct Sink {
    pub(crate) settings: Arc<Settings>,
    pub(crate) consumer: StreamConsumer<SinkContext>,
    pub(crate) decoder: Decoder,
    pub(crate) builder: ChangeBuilder,
    /// Whether refused records go to a dead letter queue.
    pub(crate) has_dlq: bool,
    pub(crate) metrics: SinkMetrics,
    pub(crate) status: Arc<SinkStatus>,
    pub(crate) group: String,
    pub(crate) positions: Positions,
    /// The flusher, idle or committing the batch in flight ([`crate::pipeline`]).
    pub(crate) flusher: Slot,
    /// Event time of the open batch's oldest record (the in-flight batch's is in `status`).
    pub(crate) open_oldest_ms: Option<i64>,
    /// `records_read` per topic, so a record costs no label String.
    pub(crate) records_read: HashMap<String, prometheus_client::metrics::counter::Counter>,
    /// Per topic, the truncate record its partitions are stopped at (see [`crate::truncate`]).
    pub(crate) truncate_waits: HashMap<String, crate::truncate::TruncateWait>,
    /// While not assigned: whether there is any subscribed topic to wait for.
    pub(crate) topic_watch: crate::consumer::TopicWatch,
    pub(crate) shutdown: CancellationToken,
}

impl std::fmt::Debug for Sink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sink")
            .field("group", &self.group)
            .finish_non_exhaustive()
    }
}

impl Sink {
    /// Consumes until `shutdown` is cancelled (returns `Ok`) or a definite error stops the sink.
    pub async fn run(mut self) -> Result<(), SinkError> {
        let ensured = match self.flusher().await {
            Ok(flusher) => flusher.ensure_offsets_table().await,
            Err(e) => Err(e),
        };
        match ensured {
            Err(SinkError::Stopped(reason)) => {
                tracing::info!(reason, "stopped before the mirror database was reachable");
                return Ok(());
            }
            other => other?,
        }
        crate::consumer::subscribe_topics(&self.consumer, &self.settings.topics)?;
        self.status.update(|s| s.state = "running");
        self.status.set_ready(true);
        let mut batch = Batch::default();
        let result = match self.consume(&mut batch).await {
            Err(SinkError::Stopped(reason)) => {
                tracing::info!(reason, "shutdown during a retry");
                Ok(())
            }
            other => other,
        };
        self.status.set_ready(false);
        match &result {
            Ok(()) => {
                self.status.update(|s| s.state = "stopping");
                // Finish the open batch; if the database is gone it stays uncommitted and is
                // re-read on the next start.
                if let Err(e) = self.final_flush(&mut batch).await {
                    tracing::warn!(error = %e, "open batch rolled back at shutdown; it is re-read on the next start");
                }
                self.commit_group_offsets(rdkafka::consumer::CommitMode::Sync);
                self.status.update(|s| s.state = "stopped");
            }
            Err(e) => {
                self.abandon();
                let message = e.to_string();
                self.status.update(|s| {
                    s.state = "failed";
                    s.last_error = Some(message);
                });
            }
        }
        self.consumer.unsubscribe();
        result
    }

    async fn consume(&mut self, batch: &mut Batch) -> Result<(), SinkError> {
        let shutdown = self.shutdown.clone();
        let mut tick = tokio::time::interval(REBALANCE_CHECK);
        loop {
            let first = tokio::select! {
                biased;
                _ = shutdown.cancelled() => return Ok(()),
                landed = landing(&mut self.flusher) => {
                    self.landed(landed)?;
                    // The open batch goes as soon as the flusher is free.
                    self.handle_rebalance(batch).await?;
                    self.dispatch(batch).await?;
                    continue;
                }
                msg = self.consumer.recv() => msg.map(|m| m.detach()),
                // Rebalances happen while no record arrives, too.
                _ = tick.tick() => {
                    if let Some(fatal) = crate::consumer::fatal_error(&self.settings, &self.consumer) {
                        return Err(fatal);
                    }
                    self.topic_watch.check(&self.consumer, &self.settings.topics, &self.status);
                    if let Slot::Idle(flusher) = &mut self.flusher {
                        flusher.check_idle_connection().await?;
                    }
                    self.handle_rebalance(batch).await?;
                    self.retry_seeks();
                    // Idle: the position may have moved past the last transaction markers.
                    self.commit_group_offsets(rdkafka::consumer::CommitMode::Async);
                    continue;
                }
            };
            self.handle_rebalance(batch).await?;
            self.take(batch, first).await?;
            // Take whatever else is ready now, then commit: batches grow under load and stay
            // small (low latency) when records trickle in.
            while batch.records < self.settings.batch_size
                && batch
                    .started
                    .is_none_or(|t| t.elapsed() < self.settings.flush_interval)
            {
                let Some(next) = self.consumer.recv().now_or_never() else {
                    break;
                };
                self.take(batch, next.map(|m| m.detach())).await?;
            }
            self.handle_rebalance(batch).await?;
            // Nothing more ready: the batch goes now if the flusher is free, else it keeps
            // growing until the batch in flight lands (or it is full, or old enough).
            let due = batch.records >= self.settings.batch_size
                || batch.started.is_some_and(|t| t.elapsed() >= self.settings.flush_interval);
            if due || !self.in_flight() {
                self.dispatch(batch).await?;
            }
        }
    }

    async fn take(
        &mut self,
        batch: &mut Batch,
        msg: Result<OwnedMessage, rdkafka::error::KafkaError>,
    ) -> Result<(), SinkError> {
        match msg {
            Ok(m) => self.accept(batch, m).await,
            Err(rdkafka::error::KafkaError::MessageConsumptionFatal(code)) => {
                Err(crate::consumer::fatal_error(&self.settings, &self.consumer)
                    .unwrap_or_else(|| crate::consumer::fatal(&self.settings, code, "no details")))
            }
            Err(e) => {
                if crate::consumer::topic_missing(&e) {
                    tracing::debug!(error = %e, "a subscribed topic does not exist yet");
                } else {
                    self.metrics.error(class::KAFKA);
                    tracing::warn!(error = %e, "consumer error; librdkafka retries by itself");
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
                Ok(())
            }
        }
    }

    /// Position check, decoding and batching of one record.
    async fn accept(&mut self, batch: &mut Batch, msg: OwnedMessage) -> Result<(), SinkError> {
        let tp: TopicPartition = (msg.topic().to_string(), msg.partition());
        let offset = msg.offset();
        if self.waits_at_truncate(&tp) {
            // Fetched before the pause took effect; read again after the truncate.
            return Ok(());
        }
        match self.positions.group_copy.delivered.get_mut(&tp) {
            Some(delivered) => *delivered = offset + 1,
            None => {
                self.positions.group_copy.delivered.insert(tp.clone(), offset + 1);
            }
        }
        match self.records_read.get(&tp.0) {
            Some(counter) => {
                counter.inc();
            }
            None => {
                let counter = self
                    .metrics
                    .records_read
                    .get_or_create(&TopicLabel { topic: tp.0.clone() })
                    .clone();
                counter.inc();
                self.records_read.insert(tp.0.clone(), counter);
            }
        }
        let stored = self.stored_position(&tp).await?;
        let expected = batch.next_offset(&tp).or(stored);
        if let Some(target) = self.positions.seeking.get(&tp).copied() {
            if offset < target {
                // Fetched before the seek took effect.
                return Ok(());
            }
            self.positions.seeking.remove(&tp);
            if offset > target {
                self.check_gap(&tp, target)?;
            }
        }
        if let Some(expected) = expected {
            if offset < expected {
                tracing::debug!(
                    topic = tp.0,
                    partition = tp.1,
                    offset,
                    expected,
                    "record already applied; skipped"
                );
                return Ok(());
            }
            // offset > expected is normal: transaction markers (every committed source
            // transaction leaves one) and compaction leave gaps between record offsets.
        }
        let origin = MessageId {
            topic: tp.0.clone(),
            partition: tp.1,
            offset,
        };
        if crate::truncate::is_truncate(&msg) {
            let gtid = header(&msg, "cdc.gtid").unwrap_or_default().to_string();
            return self.accept_truncate(batch, origin, gtid).await;
        }
        let raw = self.has_dlq.then(|| raw_record(&msg));
        let decoded = match self.decode_both(&origin, &msg).await {
            Ok(records) => Ok(records),
            Err(SinkError::Record(e)) => Err(e),
            Err(other) => return Err(other),
        };
        let change =
            decoded.and_then(|(key, value)| {
                self.builder.build(origin.clone(), key, value, zero_dates(&msg))
            });
        batch.advance(&tp, stored, offset);
        if let Some(ms) = event_time_ms(&msg) {
            batch.event_ms.push(ms);
            self.open_oldest_ms = Some(self.open_oldest_ms.map_or(ms, |o| o.min(ms)));
            self.status.note_pending_event_ms(ms);
        }
        match change {
            Ok(Some(change)) => batch.changes.push(change),
            Ok(None) => tracing::debug!(%origin, "tombstone skipped (delete.enabled=false)"),
            Err(error) => self.refuse(batch, error, raw.clone())?,
        }
        if let Some(raw) = raw {
            batch.raw.insert((tp.0, tp.1, offset), raw);
        }
        Ok(())
    }

    /// A record that can never be applied: into the batch's DLQ letters, or stop.
    pub(crate) fn refuse(
        &mut self,
        batch: &mut Batch,
        error: RecordError,
        raw: Option<RawRecord>,
    ) -> Result<(), SinkError> {
        crate::flush::refuse(&self.settings, &self.metrics, self.has_dlq, &mut batch.letters, error, raw)
    }

    async fn decode_both(
        &self,
        origin: &MessageId,
        msg: &OwnedMessage,
    ) -> Result<(Option<Record>, Option<Record>), SinkError> {
        // The key is only read when it makes the primary key (pk.mode=record_key or unset);
        // otherwise any key, even one in another format, is fine.
        let key = match msg.key() {
            Some(bytes)
                if !bytes.is_empty()
                    && matches!(self.settings.pk_mode, PkMode::RecordKey | PkMode::Adaptive) =>
            {
                Some(self.decode(origin, Part::Key, bytes).await?)
            }
            _ => None,
        };
        let value = match msg.payload() {
            Some(bytes) => Some(self.decode(origin, Part::Value, bytes).await?),
            None => None,
        };
        Ok((key, value))
    }

    /// Decodes one part; registry outages are retried (the record is never skipped for them).
    /// A record that can never be decoded is a [`SinkError::Record`].
    async fn decode(&self, origin: &MessageId, part: Part, bytes: &[u8]) -> Result<Record, SinkError> {
        let mut backoff = Backoff::new(self.settings.retry_backoff, Duration::from_secs(30));
        loop {
            match self.decoder.decode(origin.as_ref(), part, bytes).await {
                Ok(record) => return Ok(record),
                Err(e) if e.is_transient() => {
                    self.metrics.retry(class::REGISTRY);
                    tracing::warn!(error = %e, "decoding needs the schema registry; retrying");
                    if !backoff.wait(&self.shutdown).await {
                        return Err(SinkError::Stopped(e.to_string()));
                    }
                }
                Err(e) => {
                    return Err(SinkError::Record(RecordError {
                        origin: origin.clone(),
                        class: class::DECODE,
                        message: e.to_string(),
                    }))
                }
            }
        }
    }
}

/// The record's event time: header `cdc.ts_ms` (the source's event time), else the Kafka
/// timestamp.
fn event_time_ms(msg: &OwnedMessage) -> Option<i64> {
    let header = msg.headers().and_then(|h| {
        h.iter()
            .find(|h| h.key == "cdc.ts_ms")
            .and_then(|h| std::str::from_utf8(h.value?).ok()?.trim().parse().ok())
    });
    header.or_else(|| msg.timestamp().to_millis())
}

/// The text of header `key`, if the record has it.
fn header<'a>(msg: &'a OwnedMessage, key: &str) -> Option<&'a str> {
    let h = msg.headers()?.iter().find(|h| h.key == key)?;
    std::str::from_utf8(h.value?).ok()
}

/// The record's `cdc.zero_dates` header (exact values of fields that carry null in its place).
fn zero_dates(msg: &OwnedMessage) -> Option<&str> {
    let h = msg.headers()?.iter().find(|h| h.key == cdc_schema::ZERO_DATES_HEADER)?;
    std::str::from_utf8(h.value?).ok()
}

fn raw_record(msg: &OwnedMessage) -> RawRecord {
    let headers = msg
        .headers()
        .map(|h| {
            h.iter()
                .map(|h| (h.key.to_string(), h.value.map(<[u8]>::to_vec)))
                .collect()
        })
        .unwrap_or_default();
    RawRecord {
        key: msg.key().map(<[u8]>::to_vec),
        value: msg.payload().map(<[u8]>::to_vec),
        headers,
    }
}
