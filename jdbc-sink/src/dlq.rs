//! The dead letter queue: records that can never be applied, with `errors.tolerance=all`.
//!
//! Each DLQ message keeps the original key and value bytes and the original headers, plus headers
//! in Kafka Connect's names so existing tooling reads them:
//! `__connect.errors.topic`, `__connect.errors.partition`, `__connect.errors.offset`,
//! `__connect.errors.exception.class.name` (our error class: `decode`, `schema`, `data`, …) and
//! `__connect.errors.exception.message`.
//!
//! Delivery to the DLQ is awaited **before** the batch that skips the record commits, so a record
//! is never both skipped and missing from the DLQ; after a crash between the two it may appear in
//! the DLQ twice (at-least-once).

use std::collections::BTreeMap;
use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};

use crate::errors::{class, RecordError, SinkError};

/// A record on its way to the DLQ: the error plus the original bytes.
#[derive(Debug, Clone)]
pub struct DeadLetter {
    pub error: RecordError,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub headers: Vec<(String, Option<Vec<u8>>)>,
}

/// Producer of the DLQ topic.
pub struct DeadLetterQueue {
    topic: String,
    producer: FutureProducer,
}

impl std::fmt::Debug for DeadLetterQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeadLetterQueue")
            .field("topic", &self.topic)
            .finish()
    }
}

/// librdkafka settings shared by the consumer and the DLQ producer (connection and security).
pub fn connection_settings(kafka: &BTreeMap<String, String>) -> ClientConfig {
    let mut cfg = ClientConfig::new();
    cfg.set("bootstrap.servers", "localhost:9092");
    for (k, v) in kafka {
        let shared = k == "bootstrap.servers"
            || k == "client.id"
            || ["security.", "sasl.", "enable.sasl.", "ssl.", "socket.", "broker."]
                .iter()
                .any(|p| k.starts_with(p));
        if shared {
            cfg.set(k, v);
        }
    }
    cfg
}

impl DeadLetterQueue {
    pub fn new(
        topic: &str,
        kafka: &BTreeMap<String, String>,
    ) -> Result<DeadLetterQueue, SinkError> {
        let producer = connection_settings(kafka)
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("message.timeout.ms", "30000")
            .create()
            .map_err(|e| {
                SinkError::Fatal(format!("cannot create the dead letter queue producer: {e}"))
            })?;
        Ok(DeadLetterQueue {
            topic: topic.to_string(),
            producer,
        })
    }

    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// Sends every letter and waits for the broker's acknowledgement of each.
    pub async fn send_all(&self, letters: &[DeadLetter]) -> Result<(), SinkError> {
        let sends = letters.iter().map(|l| self.send(l));
        for result in futures::future::join_all(sends).await {
            result?;
        }
        Ok(())
    }

    async fn send(&self, letter: &DeadLetter) -> Result<(), SinkError> {
        let e = &letter.error;
        let mut headers = OwnedHeaders::new();
        for (k, v) in &letter.headers {
            headers = headers.insert(Header {
                key: k,
                value: v.as_deref(),
            });
        }
        let partition = e.origin.partition.to_string();
        let offset = e.origin.offset.to_string();
        for (key, value) in [
            ("__connect.errors.topic", e.origin.topic.as_str()),
            ("__connect.errors.partition", &partition),
            ("__connect.errors.offset", &offset),
            ("__connect.errors.exception.class.name", e.class),
            ("__connect.errors.exception.message", &e.message),
        ] {
            headers = headers.insert(Header {
                key,
                value: Some(value),
            });
        }
        let mut record: FutureRecord<'_, [u8], [u8]> =
            FutureRecord::to(&self.topic).headers(headers);
        if let Some(k) = &letter.key {
            record = record.key(k.as_slice());
        }
        if let Some(v) = &letter.value {
            record = record.payload(v.as_slice());
        }
        self.producer
            .send(record, Duration::from_secs(30))
            .await
            .map(|_| ())
            .map_err(|(err, _)| {
                SinkError::transient(
                    class::KAFKA,
                    format!(
                        "sending {} to the dead letter queue {}: {err}",
                        e.origin, self.topic
                    ),
                )
            })
    }
}
