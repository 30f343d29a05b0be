//! Creating the topics the source writes to (KIP-158's `topic.creation.default.*` for the data
//! topics, `offsets.topic.replication.factor` for the compacted offsets topic), validating a
//! creation at preflight, and telling a refusal that lasts from one a retry may get past.

use std::collections::BTreeMap;
use std::time::Duration;

use cdc_common::kafka::{client_config, Role};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::error::RDKafkaErrorCode;

use crate::config::TopicCreation;
use crate::error::SourceError;

/// Creates `topic` unless it exists, with `creation`'s partitions, replication factor and configs.
/// A refusal is [`SourceError::TopicNotCreated`]; [`refused_for_good`] tells whether retrying can
/// change it.
pub async fn ensure_topic(kafka: &BTreeMap<String, String>, topic: &str, creation: &TopicCreation) -> Result<(), SourceError> {
    match create_topic(kafka, topic, creation, false).await? {
        None | Some(RDKafkaErrorCode::TopicAlreadyExists) => Ok(()),
        Some(code) => Err(SourceError::TopicNotCreated { topic: topic.to_string(), code }),
    }
}

/// Creates `topics` — (name, partitions, compacted) — that do not exist yet, with the broker's
/// default replication factor (what the benchmarks use).
pub async fn ensure_topics(kafka: &BTreeMap<String, String>, topics: &[(String, i32, bool)]) -> Result<(), SourceError> {
    for (name, partitions, compact) in topics {
        let configs = if *compact { [("cleanup.policy".to_string(), "compact".to_string())].into() } else { BTreeMap::new() };
        ensure_topic(kafka, name, &TopicCreation { partitions: *partitions, replication_factor: -1, configs }).await?;
    }
    Ok(())
}

/// Asks the broker to validate the creation of `topic` without creating it (preflight): `None`
/// when it would be created (or exists), else the broker's refusal.
pub async fn validate_topic(kafka: &BTreeMap<String, String>, topic: &str, creation: &TopicCreation) -> Result<Option<RDKafkaErrorCode>, SourceError> {
    Ok(create_topic(kafka, topic, creation, true).await?.filter(|c| *c != RDKafkaErrorCode::TopicAlreadyExists))
}

async fn create_topic(
    kafka: &BTreeMap<String, String>,
    topic: &str,
    creation: &TopicCreation,
    validate_only: bool,
) -> Result<Option<RDKafkaErrorCode>, SourceError> {
    let admin: AdminClient<DefaultClientContext> = client_config(Role::Admin, kafka)
        .create()
        .map_err(|error| SourceError::KafkaConfig { what: "settings", error })?;
    let mut new = NewTopic::new(topic, creation.partitions, TopicReplication::Fixed(creation.replication_factor));
    for (key, value) in &creation.configs {
        new = new.set(key, value);
    }
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30))).validate_only(validate_only);
    let results = admin
        .create_topics([&new], &opts)
        .await
        .map_err(|error| SourceError::Kafka { context: format!("cannot create topic {topic}"), error })?;
    Ok(results.into_iter().find_map(|r| r.err()).map(|(_, code)| code))
}

/// Whether a topic creation refused with `code` stays refused however often it is retried: the
/// name, the ACLs, a policy or a config value. A replication factor above the brokers alive, or a
/// broker or controller away, may pass.
pub fn refused_for_good(code: RDKafkaErrorCode) -> bool {
    use RDKafkaErrorCode as C;
    matches!(
        code,
        C::InvalidTopic
            | C::TopicAuthorizationFailed
            | C::ClusterAuthorizationFailed
            | C::PolicyViolation
            | C::InvalidConfig
            | C::InvalidPartitions
            | C::InvalidReplicaAssignment
            | C::InvalidRequest
    )
}

/// What to check for a refusal with `code`.
pub fn refusal_hint(code: RDKafkaErrorCode) -> &'static str {
    use RDKafkaErrorCode as C;
    match code {
        C::InvalidTopic => "the name is illegal, longer than 249 characters, or collides with an existing topic that differs only in `.` versus `_`",
        C::TopicAuthorizationFailed | C::ClusterAuthorizationFailed => "the source's Kafka principal may not create this topic; grant CREATE on it or create the topic beforehand",
        C::PolicyViolation => "the broker's create.topic.policy refuses it; create the topic beforehand",
        C::InvalidConfig => "a topic.creation.default.* config is unknown or has a value the broker refuses",
        C::InvalidPartitions => "check topic.creation.default.partitions",
        C::InvalidReplicationFactor => "topic.creation.default.replication.factor (or offsets.topic.replication.factor) is above the number of brokers",
        _ => "see the broker's log",
    }
}
