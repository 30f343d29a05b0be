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

use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::OwnedHeaders;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};

use crate::error::SourceError;
use crate::metrics::{Outcome, SourceMetrics};
use crate::offsets::StoredOffset;

/// Longest a Kafka transaction may stay open (one huge binlog transaction is one Kafka transaction).
const TXN_TIMEOUT: Duration = Duration::from_secs(600);

pub struct Publisher {
    producer: FutureProducer,
    config: ClientConfig,
    offsets_topic: String,
    name: String,
    open_since: Option<Instant>,
    metrics: SourceMetrics,
}

impl std::fmt::Debug for Publisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Publisher").field("name", &self.name).field("open", &self.open_since.is_some()).finish()
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
        let mut cfg = ClientConfig::new();
        cfg.set("queue.buffering.max.kbytes", "16384")
            .set("linger.ms", "5")
            .set("compression.type", "lz4")
            .set("message.max.bytes", "16777216")
            .set("transaction.timeout.ms", &TXN_TIMEOUT.as_millis().to_string())
            // The first record of a transaction right after a commit is often answered
            // CONCURRENT_TRANSACTIONS until the previous markers are written; the default 100 ms
            // backoff before retrying would stall every transaction.
            .set("retry.backoff.ms", "5")
            .set("retry.backoff.max.ms", "100");
        for (k, v) in kafka {
            cfg.set(k, v);
        }
        cfg.set("transactional.id", transactional_id(name)).set("enable.idempotence", "true");
        let producer = init(&cfg).await?;
        Ok(Publisher { producer, config: cfg, offsets_topic: offsets_topic.to_string(), name: name.to_string(), open_since: None, metrics })
    }

    /// Replaces the producer with a new one under the same `transactional.id`: its
    /// `init_transactions` aborts whatever the old one left open. For a producer that can no
    /// longer abort (a fatal error other than being fenced).
    pub async fn recreate(&mut self) -> Result<(), SourceError> {
        self.open_since = None;
        self.producer = init(&self.config).await?;
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
            self.producer
                .begin_transaction()
                .map_err(|e| SourceError::kafka("begin a Kafka transaction", &e))?;
            self.open_since = Some(Instant::now());
        }
        Ok(())
    }

    /// Adds one record to the open transaction (opening one if needed). `value = None` is a
    /// tombstone. Waits while librdkafka's queue is full.
    pub async fn send(
        &mut self,
        topic: &str,
        key: &[u8],
        value: Option<&[u8]>,
        headers: OwnedHeaders,
    ) -> Result<(), SourceError> {
        self.ensure_open()?;
        let mut record = FutureRecord::to(topic).key(key).headers(headers);
        if let Some(v) = value {
            record = record.payload(v);
        }
        loop {
            match self.producer.send_result(record) {
                Ok(_delivery) => return Ok(()),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                    record = r;
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
                Err((e, _)) => return Err(SourceError::kafka(&format!("produce to {topic}"), &e)),
            }
        }
    }

    /// Adds a record without key and value to `partition` of `topic` (the truncate record) to
    /// the open transaction (opening one if needed).
    pub async fn send_keyless(&mut self, topic: &str, partition: i32, headers: OwnedHeaders) -> Result<(), SourceError> {
        self.ensure_open()?;
        let mut record: FutureRecord<'_, (), ()> = FutureRecord::to(topic).partition(partition).headers(headers);
        loop {
            match self.producer.send_result(record) {
                Ok(_delivery) => return Ok(()),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                    record = r;
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
                Err((e, _)) => return Err(SourceError::kafka(&format!("produce to {topic} partition {partition}"), &e)),
            }
        }
    }

    /// Writes the offset record (if any) and commits the transaction (opening one if none is
    /// open, so a position can be stored without records). The snapshot commits its chunks
    /// without an offset: its position is stored only once every table is copied.
    pub async fn commit(&mut self, offset: Option<&StoredOffset>) -> Result<(), SourceError> {
        self.ensure_open()?;
        if let Some(offset) = offset {
            let value = serde_json::to_vec(offset).map_err(|e| SourceError::Definite(format!("offset record: {e}")))?;
            let topic = self.offsets_topic.clone();
            let name = self.name.clone();
            self.send(&topic, name.as_bytes(), Some(&value), OwnedHeaders::new()).await?;
        }
        // Wait for the deliveries here, asynchronously: commit_transaction flushes first, and its
        // flush polls in 100 ms steps for delivery reports that the producer's own polling thread
        // takes, so with anything still in flight every commit would last at least 100 ms.
        let flush_deadline = Instant::now() + TXN_TIMEOUT;
        while self.producer.in_flight_count() > 0 && Instant::now() < flush_deadline {
            tokio::time::sleep(Duration::from_micros(500)).await;
        }
        let p = self.producer.clone();
        let started = self.open_since.take().unwrap_or_else(Instant::now);
        match blocking(move || p.commit_transaction(TXN_TIMEOUT)).await {
            Ok(()) => {
                self.metrics.kafka_transactions.get_or_create(&Outcome { outcome: "committed" }).inc();
                self.metrics.kafka_transaction_duration.observe(started.elapsed().as_secs_f64());
                Ok(())
            }
            Err(e) => {
                let err = SourceError::kafka("commit the Kafka transaction", &e);
                if err.is_transient() {
                    self.abort().await?;
                }
                Err(err)
            }
        }
    }

    /// Aborts the open transaction, if any: none of its records become visible. If the producer
    /// cannot abort (it is in a fatal state), it is recreated, which aborts the transaction on the
    /// broker; that fails only when another instance has taken over (fenced).
    pub async fn abort(&mut self) -> Result<(), SourceError> {
        if self.open_since.take().is_some() {
            self.metrics.kafka_transactions.get_or_create(&Outcome { outcome: "aborted" }).inc();
            let p = self.producer.clone();
            if let Err(e) = blocking(move || p.abort_transaction(TXN_TIMEOUT)).await {
                // Fenced: another instance owns the id now; recreating would fence it back.
                let err = SourceError::kafka("abort the Kafka transaction", &e);
                if !err.is_transient() {
                    return Err(err);
                }
                tracing::warn!(error = %e, "aborting the Kafka transaction failed; recreating the producer");
                return self.recreate().await;
            }
        }
        Ok(())
    }
}

/// Creates a transactional producer and fences earlier ones with the same id.
async fn init(cfg: &ClientConfig) -> Result<FutureProducer, SourceError> {
    let producer: FutureProducer = cfg
        .create()
        .map_err(|e| SourceError::Definite(format!("invalid Kafka producer settings (kafka.*): {e}")))?;
    let p = producer.clone();
    blocking(move || p.init_transactions(Duration::from_secs(30)))
        .await
        .map_err(|e| SourceError::kafka("initialise Kafka transactions", &e))?;
    Ok(producer)
}

/// Runs a blocking librdkafka call off the async threads.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, KafkaError> + Send + 'static,
) -> Result<T, KafkaError> {
    tokio::task::spawn_blocking(f).await.unwrap_or(Err(KafkaError::Canceled))
}
