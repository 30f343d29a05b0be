//! The transactional Kafka producer.
//!
//! One Kafka transaction holds the records of one or more *whole* binlog transactions plus one
//! offset record (this source's name → the GTID position after them) on the compacted offsets
//! topic. Either all of it becomes visible to `read_committed` consumers, or none of it does.
//! `transactional.id` is derived from the source name, so a second instance with the same name
//! fences the first (its next transactional call fails with a fatal error and it stops).
//!
//! Records are handed to librdkafka without waiting for each delivery; when its queue is full we
//! wait for room, which bounds memory whatever the size of a binlog transaction. The commit
//! flushes everything and fails if any record failed.
//!
//! A failed commit never leaves the transaction open: it is aborted, or, when the producer can no
//! longer abort, a new producer with the same `transactional.id` is created (its
//! `init_transactions` ends whatever the old one left). A failed commit may still have landed
//! (a timeout while the broker was writing the markers), so the Publisher then marks its position
//! as unknown and [`Publisher::settled_position`] re-reads it from the offsets topic before the
//! stream resumes: the batch is neither lost nor written twice.
//!
//! Each record carries, as its delivery opaque, what it is (table and primary key), so a
//! delivery failure names the record. Two failures are definite, because retrying cannot help:
//! a record larger than the topic or broker accepts, and a transaction open longer than
//! `transaction.timeout.ms` (the broker aborts it and bumps the producer epoch).

use std::sync::Arc;
use std::time::{Duration, Instant};

use prometheus_client::metrics::gauge::Gauge;
use cdc_common::kafka::{client_config, Role};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::OwnedHeaders;

use crate::error::{is_fenced, Fenced, KafkaFatal, NotDelivered, RecordTooLarge, SourceError, TransactionTooLong};
use crate::metrics::{Outcome, SourceMetrics};
use crate::offsets::OffsetRecord;

/// Default longest a Kafka transaction may stay open (one huge binlog transaction is one Kafka
/// transaction); `kafka.transaction.timeout.ms` overrides it.
const TXN_TIMEOUT: Duration = Duration::from_secs(600);

/// The producer's default `message.max.bytes`; `kafka.message.max.bytes` overrides it.
const MESSAGE_MAX_BYTES: &str = "16777216";

#[path = "publisher_deliveries.rs"]
mod deliveries;
pub use deliveries::{Deliveries, DeliveryContext, KafkaProducer, RecordRef, Sent, TxnProducer};
use deliveries::is_too_large;

/// Makes a new, not yet initialised producer reporting to the given [`Deliveries`].
type Factory<P> = Box<dyn Fn(&Arc<Deliveries>) -> Result<P, SourceError> + Send + Sync>;

/// Reads the stored position from the offsets topic (`offsets::load_last`).
type Loader = Box<
    dyn Fn() -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<Option<OffsetRecord>, SourceError>> + Send>>
        + Send
        + Sync,
>;

pub struct Publisher<P: TxnProducer = KafkaProducer> {
    producer: P,
    factory: Factory<P>,
    load_stored: Loader,
    deliveries: Arc<Deliveries>,
    offsets_topic: String,
    name: String,
    open_since: Option<Instant>,
    /// `transaction.timeout.ms` in effect.
    txn_timeout: Duration,
    /// The producer's `message.max.bytes` in effect.
    message_max_bytes: String,
    /// A commit failed: whether it landed is known only to the offsets topic.
    position_unknown: bool,
    metrics: SourceMetrics,
    /// Records sent in the open transaction (`cdc_source_records_pending{stage="uncommitted"}`).
    uncommitted: Gauge,
}

impl<P: TxnProducer> std::fmt::Debug for Publisher<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Publisher")
            .field("name", &self.name)
            .field("open", &self.open_since.is_some())
            .field("position_unknown", &self.position_unknown)
            .finish()
    }
}

/// The `transactional.id` of a source.
pub fn transactional_id(name: &str) -> String {
    format!("cdc-source-{name}")
}

impl Publisher {
    /// Creates the producer and fences any earlier instance with the same name
    /// (`init_transactions` also aborts a transaction it left open).
    pub async fn connect(
        kafka: &std::collections::BTreeMap<String, String>,
        name: &str,
        offsets_topic: &str,
        metrics: SourceMetrics,
    ) -> Result<Self, SourceError> {
        let mut cfg = client_config(Role::Producer, kafka);
        let defaults = [
            ("queue.buffering.max.kbytes", "16384".to_string()),
            // librdkafka's default of 100,000 queued messages lets small records (each with its
            // headers) hold far more memory than their bytes; 20,000 keep enough in flight.
            ("queue.buffering.max.messages", "20000".into()),
            ("linger.ms", "5".into()),
            ("compression.type", "lz4".into()),
            ("message.max.bytes", MESSAGE_MAX_BYTES.into()),
            ("transaction.timeout.ms", TXN_TIMEOUT.as_millis().to_string()),
            // The first record of a transaction right after a commit is often answered
            // CONCURRENT_TRANSACTIONS until the previous markers are written; the default 100 ms
            // backoff before retrying would stall every transaction.
            ("retry.backoff.ms", "5".into()),
            ("retry.backoff.max.ms", "100".into()),
            // A produce request waits on the broker until every in-sync replica has it; when
            // replicas died, it ends only at this timeout (librdkafka's 30 s) and is retried.
            // 10 s resends it sooner once the replicas are back.
            ("request.timeout.ms", "10000".into()),
        ];
        // Any kafka.* setting overrides these.
        for (key, value) in defaults {
            if cfg.get(key).is_none() {
                cfg.set(key, value);
            }
        }
        cfg.set("transactional.id", transactional_id(name)).set("enable.idempotence", "true");
        let factory: Factory<KafkaProducer> = Box::new(move |deliveries| {
            cfg.create_with_context(DeliveryContext { deliveries: Arc::clone(deliveries) })
                .map_err(|error| SourceError::KafkaConfig { what: "producer settings", error })
        });
        let (map, topic, source) = (kafka.clone(), offsets_topic.to_string(), name.to_string());
        let load_stored: Loader = Box::new(move || {
            let (map, topic, source) = (map.clone(), topic.clone(), source.clone());
            Box::pin(async move {
                // Streaming resumes at the stored position (a snapshot in progress is resumed
                // by the next start, not here).
                crate::offsets::load_last(&map, &topic, &source).await
            })
        });
        Publisher::with_factory(factory, load_stored, kafka, name, offsets_topic, metrics).await
    }
}

impl<P: TxnProducer> Publisher<P> {
    /// A Publisher over producers made by `factory` (see [`Publisher::connect`]).
    async fn with_factory(
        factory: Factory<P>,
        load_stored: Loader,
        kafka: &std::collections::BTreeMap<String, String>,
        name: &str,
        offsets_topic: &str,
        metrics: SourceMetrics,
    ) -> Result<Self, SourceError> {
        let txn_timeout = kafka
            .get("transaction.timeout.ms")
            .and_then(|v| v.parse().ok())
            .map(Duration::from_millis)
            .unwrap_or(TXN_TIMEOUT);
        let message_max_bytes = kafka.get("message.max.bytes").cloned().unwrap_or_else(|| MESSAGE_MAX_BYTES.into());
        let deliveries = Arc::new(Deliveries::new(metrics.pending("unacknowledged")));
        let producer = init(&factory, &deliveries, txn_timeout).await?;
        Ok(Publisher {
            producer,
            factory,
            load_stored,
            deliveries,
            offsets_topic: offsets_topic.to_string(),
            name: name.to_string(),
            open_since: None,
            txn_timeout,
            message_max_bytes,
            position_unknown: false,
            uncommitted: metrics.pending("uncommitted"),
            metrics,
        })
    }

    /// Replaces the producer with a new one under the same `transactional.id`: its
    /// `init_transactions` aborts whatever the old one left open. For a producer that can no
    /// longer abort (a fatal error other than being fenced).
    pub async fn recreate(&mut self) -> Result<(), SourceError> {
        self.open_since = None;
        self.uncommitted.set(0);
        self.deliveries.next_txn();
        self.producer = init(&self.factory, &self.deliveries, self.txn_timeout).await?;
        tracing::info!(name = %self.name, "Kafka producer recreated");
        Ok(())
    }

    pub fn is_open(&self) -> bool {
        self.open_since.is_some()
    }

    /// How long the current transaction has been open.
    pub fn open_for(&self) -> Option<Duration> {
        self.open_since.map(|t| t.elapsed())
    }

    fn ensure_open(&mut self) -> Result<(), SourceError> {
        if self.open_since.is_none() {
            self.deliveries.next_txn();
            self.producer
                .begin_transaction()
                .map_err(|e| SourceError::kafka("begin a Kafka transaction", &e))?;
            self.open_since = Some(Instant::now());
        }
        Ok(())
    }

    /// Adds one record to the open transaction (opening one if needed). `value = None` is a
    /// tombstone. Waits while librdkafka's queue is full. `record` names the row in errors.
    pub async fn send(
        &mut self,
        topic: &str,
        key: &[u8],
        value: Option<&[u8]>,
        headers: OwnedHeaders,
        record: RecordRef,
    ) -> Result<(), SourceError> {
        let size = key.len() + value.map_or(0, <[u8]>::len);
        let what = || format!("produce to {topic}");
        self.hand_over(topic, record, headers, size, what, |p, h, s| p.send(topic, key, value, h, s)).await
    }

    /// Hands one record to librdkafka with `hand` in the open transaction (opening one if
    /// needed), waiting while its queue is full; `size` and `what` (built only on an error) are
    /// for the errors.
    async fn hand_over(
        &mut self,
        topic: &str,
        record: RecordRef,
        headers: OwnedHeaders,
        size: usize,
        what: impl Fn() -> String,
        hand: impl Fn(&P, OwnedHeaders, Box<Sent>) -> Result<(), (KafkaError, OwnedHeaders, Box<Sent>)>,
    ) -> Result<(), SourceError> {
        self.ensure_open()?;
        self.within_timeout(topic)?;
        let mut sent = Box::new(Sent { txn: self.deliveries.current(), record });
        let mut headers = headers;
        loop {
            match hand(&self.producer, headers, sent) {
                Ok(()) => {
                    self.sent();
                    return Ok(());
                }
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), h, s)) => {
                    self.queue_full(topic)?;
                    (headers, sent) = (h, s);
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
                Err((e, _, s)) if is_too_large(e.rdkafka_error_code()) => {
                    return Err(self.too_large(&s.record, topic, size, e.to_string()));
                }
                Err((e, _, _)) => return Err(self.explain(&what(), &e)),
            }
        }
    }

    /// A transaction open for `transaction.timeout.ms` is aborted by the broker (at its next
    /// timeout scan) whatever is still sent into it: the error now, at the first record past
    /// the timeout, instead of after whatever librdkafka does with the records meanwhile.
    fn within_timeout(&self, topic: &str) -> Result<(), SourceError> {
        match self.open_for() {
            Some(open) if open >= self.txn_timeout => Err(SourceError::TransactionTooLong(Box::new(TransactionTooLong {
                context: format!("produce to {topic}"),
                open,
                timeout: self.txn_timeout,
                reason: "the broker aborts a transaction once it has been open that long".into(),
                error: KafkaError::MessageProduction(RDKafkaErrorCode::MessageTimedOut),
            }))),
            _ => Ok(()),
        }
    }

    /// librdkafka took a record of the open transaction.
    fn sent(&self) {
        self.deliveries.unacknowledged.inc();
        self.uncommitted.inc();
    }

    /// librdkafka's queue is full: go on waiting for room only while the transaction can still
    /// commit. Once a record of it failed, the producer is in a fatal state, or it has been open
    /// for `transaction.timeout.ms` (the broker aborts it then), librdkafka keeps the queued
    /// records until the transaction is aborted, so the queue would never drain: the error.
    fn queue_full(&self, topic: &str) -> Result<(), SourceError> {
        let failed = self.deliveries.failure().is_some() || self.producer.fatal_error().is_some();
        if failed || self.open_for().is_some_and(|open| open >= self.txn_timeout) {
            let e = KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull);
            return Err(self.explain(&format!("produce to {topic}"), &e));
        }
        Ok(())
    }

    /// Adds a record without key and value to `partition` of `topic` (the truncate record) to
    /// the open transaction (opening one if needed).
    pub async fn send_keyless(&mut self, topic: &str, partition: i32, headers: OwnedHeaders) -> Result<(), SourceError> {
        let record = RecordRef { table: topic.to_string(), key: format!("truncate record, partition {partition}") };
        let what = || format!("produce to {topic} partition {partition}");
        self.hand_over(topic, record, headers, 0, what, |p, h, s| p.send_keyless(topic, partition, h, s)).await
    }

    /// Writes `offset` into the transaction and commits it (opening one if none is open, so a
    /// position can be stored without records).
    ///
    /// When the commit fails, the transaction is ended before this returns (aborted, or the
    /// producer recreated) and the stored position must be re-read: see
    /// [`Publisher::settled_position`].
    pub async fn commit(&mut self, offset: &OffsetRecord) -> Result<(), SourceError> {
        self.end_transaction(Some(offset)).await
    }

    /// Commits the transaction as it is: the caller has sent its own offset record into it (the
    /// snapshot does, with its progress, for each chunk). Fails as [`Publisher::commit`] does.
    pub async fn commit_with_sent_offset(&mut self) -> Result<(), SourceError> {
        self.end_transaction(None).await
    }

    async fn end_transaction(&mut self, offset: Option<&OffsetRecord>) -> Result<(), SourceError> {
        self.ensure_open()?;
        if let Some(offset) = offset {
            let value = serde_json::to_vec(offset).map_err(SourceError::OffsetRecordEncode)?;
            let topic = self.offsets_topic.clone();
            let record = RecordRef { table: format!("offsets topic {topic}"), key: self.name.clone() };
            let key = self.name.clone();
            self.send(&topic, key.as_bytes(), Some(&value), OwnedHeaders::new(), record).await?;
        }
        // Wait for the deliveries here, asynchronously: commit_transaction flushes first, and its
        // flush polls in 100 ms steps for delivery reports that the producer's own polling thread
        // takes, so with anything still in flight every commit would last at least 100 ms.
        let flush_deadline = Instant::now() + self.txn_timeout;
        while self.producer.in_flight_count() > 0 && Instant::now() < flush_deadline {
            tokio::time::sleep(Duration::from_micros(500)).await;
        }
        let p = self.producer.clone();
        let timeout = self.txn_timeout;
        match blocking(move || p.commit_transaction(timeout)).await {
            Ok(()) => {
                let started = self.open_since.take().unwrap_or_else(Instant::now);
                self.uncommitted.set(0);
                self.metrics.kafka_transactions.get_or_create(&Outcome { outcome: "committed" }).inc();
                self.metrics.kafka_transaction_duration.observe(started.elapsed().as_secs_f64());
                Ok(())
            }
            Err(e) => {
                // Whether a failed commit landed is known only to the offsets topic.
                self.position_unknown = true;
                let err = self.explain("commit the Kafka transaction", &e);
                tracing::warn!(error = %err, "Kafka commit failed; ending the transaction");
                match self.abort().await {
                    Ok(()) => Err(err),
                    // The commit's own error says more, unless it was transient.
                    Err(abort) if err.is_transient() => Err(abort),
                    Err(abort) => {
                        tracing::error!(error = %abort, "cannot end the failed Kafka transaction");
                        Err(err)
                    }
                }
            }
        }
    }

    /// Aborts the open transaction, if any: none of its records become visible. If the producer
    /// cannot abort (it is in a fatal state), it is recreated, which aborts the transaction on the
    /// broker; that fails only when another instance has taken over (fenced).
    pub async fn abort(&mut self) -> Result<(), SourceError> {
        if self.open_since.is_some() {
            self.metrics.kafka_transactions.get_or_create(&Outcome { outcome: "aborted" }).inc();
            let p = self.producer.clone();
            let timeout = self.txn_timeout;
            let result = blocking(move || p.abort_transaction(timeout)).await;
            if let Err(e) = result {
                // Fenced: another instance owns the id now (or the broker ended the transaction
                // on its timeout); recreating would fence the other instance back.
                let err = self.explain("abort the Kafka transaction", &e);
                self.open_since = None;
                self.uncommitted.set(0);
                self.deliveries.next_txn();
                if !err.is_transient() {
                    return Err(err);
                }
                tracing::warn!(error = %e, "aborting the Kafka transaction failed; recreating the producer");
                return self.recreate().await;
            }
            self.open_since = None;
            self.uncommitted.set(0);
            self.deliveries.next_txn();
        }
        Ok(())
    }

    /// After a failed commit: the position stored in the offsets topic (`read_committed`), which
    /// says whether that commit landed. `None` when no commit failed since the last call, or when
    /// the topic holds no position. Call with no transaction open, before streaming resumes.
    pub async fn settled_position(&mut self) -> Result<Option<OffsetRecord>, SourceError> {
        if !self.position_unknown {
            return Ok(None);
        }
        self.abort().await?;
        let stored = (self.load_stored)().await?;
        self.position_unknown = false;
        if let Some(s) = &stored {
            tracing::info!(gtid = %s.position.gtid, "position re-read from the offsets topic after a failed commit");
        }
        Ok(stored)
    }

    /// The error for a failed call: what the deliveries, the producer's fatal state and the
    /// transaction's age say about it first, librdkafka's own classification otherwise.
    fn explain(&self, what: &str, e: &KafkaError) -> SourceError {
        let failure = self.deliveries.failure();
        if let Some(f) = failure.as_ref().filter(|f| f.too_large()) {
            return self.too_large(&f.record, &f.topic, f.size, f.error.clone());
        }
        // Once fatal, librdkafka answers every call with __FATAL; the cause is kept apart.
        let fatal = self.producer.fatal_error();
        let codes = [e.rdkafka_error_code(), fatal.as_ref().map(|f| f.0), failure.as_ref().and_then(|f| f.code)];
        let reason = fatal.as_ref().map_or_else(|| e.to_string(), |(_, reason)| reason.clone());
        let open = self.open_for().unwrap_or_default();
        let (context, error) = (what.to_string(), e.clone());
        if open >= self.txn_timeout && codes.into_iter().any(is_txn_timeout_symptom) {
            return SourceError::TransactionTooLong(Box::new(TransactionTooLong { context, open, timeout: self.txn_timeout, reason, error }));
        }
        if codes.into_iter().any(is_fenced) {
            return SourceError::Fenced(Box::new(Fenced { context, reason, error }));
        }
        match (fatal, failure) {
            (Some(_), _) => SourceError::KafkaFatal(Box::new(KafkaFatal { context, reason, error })),
            (None, Some(f)) => SourceError::NotDelivered(Box::new(NotDelivered {
                context,
                code: f.code,
                table: f.record.table,
                key: f.record.key,
                topic: f.topic,
                delivery: f.error,
                error,
            })),
            (None, None) => SourceError::kafka(what, e),
        }
    }

    fn too_large(&self, record: &RecordRef, topic: &str, size: usize, detail: String) -> SourceError {
        SourceError::RecordTooLarge(Box::new(RecordTooLarge {
            table: record.table.clone(),
            key: record.key.clone(),
            size,
            topic: topic.to_string(),
            producer_max: self.message_max_bytes.clone(),
            detail,
        }))
    }
}

/// What librdkafka reports once the broker aborted a transaction on its timeout: the broker
/// bumped the producer's epoch, so the next produce request is refused as from an old epoch and
/// librdkafka turns that into the fatal `_FENCED` ("fenced by newer producer instance"); or the
/// records time out locally first (`message.timeout.ms` is capped at `transaction.timeout.ms`).
fn is_txn_timeout_symptom(code: Option<RDKafkaErrorCode>) -> bool {
    use RDKafkaErrorCode as C;
    is_fenced(code)
        || matches!(
            code,
            Some(C::InvalidTransactionalState | C::MessageTimedOut | C::OperationTimedOut | C::RequestTimedOut | C::QueueFull)
        )
}

/// Creates a transactional producer and fences earlier ones with the same id.
async fn init<P: TxnProducer>(factory: &Factory<P>, deliveries: &Arc<Deliveries>, txn_timeout: Duration) -> Result<P, SourceError> {
    let producer = factory(deliveries)?;
    let p = producer.clone();
    blocking(move || p.init_transactions(Duration::from_secs(30))).await.map_err(|e| {
        if e.rdkafka_error_code() == Some(RDKafkaErrorCode::InvalidTransactionTimeout) {
            SourceError::TransactionTimeoutRefused { timeout: txn_timeout, error: e }
        } else {
            SourceError::kafka("initialise Kafka transactions", &e)
        }
    })?;
    Ok(producer)
}

/// Runs a blocking librdkafka call off the async threads.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, KafkaError> + Send + 'static,
) -> Result<T, KafkaError> {
    tokio::task::spawn_blocking(f).await.unwrap_or(Err(KafkaError::Canceled))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
#[path = "publisher_tests.rs"]
mod tests;
