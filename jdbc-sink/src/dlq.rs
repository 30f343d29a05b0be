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
//!
//! The sink creates the DLQ topic at start when it does not exist (one partition, replication
//! factor `errors.deadletterqueue.topic.replication.factor`, `-1` for the broker's default); a
//! topic that exists is used as it is. A refusal that retrying cannot change (a replication factor
//! above the number of brokers, a denied ACL) stops the sink naming the key.

use std::collections::BTreeMap;
use std::time::Duration;

use cdc_common::kafka::{client_config, Role};
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
    replication_factor: i32,
    kafka: BTreeMap<String, String>,
    producer: FutureProducer,
}

impl std::fmt::Debug for DeadLetterQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeadLetterQueue")
            .field("topic", &self.topic)
            .finish()
    }
}

impl DeadLetterQueue {
    pub fn new(
        topic: &str,
        replication_factor: i32,
        kafka: &BTreeMap<String, String>,
    ) -> Result<DeadLetterQueue, SinkError> {
        let producer = client_config(Role::Producer, kafka)
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("message.timeout.ms", "30000")
            .create()
            .map_err(|e| {
                SinkError::Definite(format!("cannot create the dead letter queue producer: {e}"))
            })?;
        Ok(DeadLetterQueue {
            topic: topic.to_string(),
            replication_factor,
            kafka: kafka.clone(),
            producer,
        })
    }

    /// Creates the DLQ topic unless it exists (see the module docs).
    pub async fn ensure_topic(&self) -> Result<(), SinkError> {
        use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
        use rdkafka::error::RDKafkaErrorCode as C;
        let admin: AdminClient<rdkafka::client::DefaultClientContext> =
            client_config(Role::Admin, &self.kafka).create().map_err(|e| {
                SinkError::Definite(format!("cannot create the dead letter queue admin client: {e}"))
            })?;
        let new = NewTopic::new(
            &self.topic,
            1,
            TopicReplication::Fixed(self.replication_factor),
        );
        let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
        let results = admin.create_topics([&new], &opts).await.map_err(|e| {
            SinkError::transient(
                class::KAFKA,
                format!("cannot create the dead letter queue topic {}: {e}", self.topic),
            )
        })?;
        match results.into_iter().find_map(|r| r.err()).map(|(_, code)| code) {
            None | Some(C::TopicAlreadyExists) => Ok(()),
            Some(C::InvalidReplicationFactor) => Err(SinkError::Definite(format!(
                "cannot create the dead letter queue topic {}: errors.deadletterqueue.topic.replication.factor={} is more than the Kafka cluster's brokers (InvalidReplicationFactor); lower it, or set -1 for the broker's default.replication.factor",
                self.topic, self.replication_factor
            ))),
            Some(code @ (C::InvalidTopic | C::TopicAuthorizationFailed | C::ClusterAuthorizationFailed | C::PolicyViolation | C::InvalidConfig)) => {
                Err(SinkError::Definite(format!(
                    "cannot create the dead letter queue topic {} ({code}); check errors.deadletterqueue.topic.name and the sink's Kafka permissions, or create the topic beforehand",
                    self.topic
                )))
            }
            Some(code) => Err(SinkError::transient(
                class::KAFKA,
                format!("cannot create the dead letter queue topic {}: {code}", self.topic),
            )),
        }
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
