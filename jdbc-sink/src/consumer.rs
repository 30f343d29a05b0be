//! The Kafka consumer: `read_committed` (records of aborted source transactions are never seen),
//! no auto-commit (positions live in the mirror database, see [`crate::offsets`]), subscribed to
//! `topics` or `topics.regex`. Subscribed topics that do not exist yet, and new topics matching
//! the regex, are picked up within seconds of their creation ([`METADATA_REFRESH_MS`]).
//!
//! Rebalances are reported by the consumer context as [`RebalanceEvent`]s that the apply loop
//! takes after each poll: on revocation it commits its batch (fencing in the offsets table makes
//! a late commit harmless), on assignment it forgets what it knew of those partitions so that their
//! position is read again from the offsets table and the consumer is moved there if needed.
//! The callbacks also keep `/status` `partitions`: `/ready` is 503 until the group has assigned
//! this sink its partitions ([`crate::status`]).
//!
//! **Static membership** (opt-in). With `kafka.group.instance.id` set, the consumer joins the
//! group under that id ([`Settings::group_instance_id`]). A sink restarted after a crash takes
//! its predecessor's place and is given the same partitions at once; without it the group would
//! wait for the dead member's session to time out (librdkafka's 45 s) before assigning anything.
//! The price: a member that stops, even gracefully, keeps its partitions for
//! `session.timeout.ms` (10 s here unless `kafka.session.timeout.ms` says otherwise) before the
//! rest of the group takes them over, and two live consumers with one id fence each other — the
//! broker keeps the newer one, and the older one gets librdkafka's fatal `FENCED_INSTANCE_ID`,
//! which stops it with an error naming the id ([`fatal`]).
//!
//! librdkafka statistics feed the per-partition lag gauge and `/status` `lag_records`: the
//! partition's last stable offset minus the group's committed offset, which the apply loop keeps
//! past transaction markers (see [`crate::positions`]), so a caught-up partition shows 0.

use std::sync::{Arc, Mutex};

use cdc_common::kafka::{client_config, Role};
use rdkafka::consumer::{BaseConsumer, ConsumerContext, Rebalance, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::statistics::Statistics;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{ClientContext, TopicPartitionList};

use crate::config::{Settings, Topics, GROUP_INSTANCE_ID, SESSION_TIMEOUT_MS};
use crate::errors::{class, SinkError};
use crate::metrics::{PartitionLabels, SinkMetrics};
use crate::offsets::TopicPartition;
use crate::status::SinkStatus;

/// A change of the partitions this consumer owns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RebalanceEvent {
    Assigned(Vec<TopicPartition>),
    Revoked(Vec<TopicPartition>),
}

/// Consumer context: collects rebalance events, exports lag, counts client errors.
pub struct SinkContext {
    events: Mutex<Vec<RebalanceEvent>>,
    metrics: SinkMetrics,
    status: Arc<SinkStatus>,
}

impl std::fmt::Debug for SinkContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SinkContext").finish_non_exhaustive()
    }
}

impl SinkContext {
    /// The events since the last call, oldest first.
    pub fn take_events(&self) -> Vec<RebalanceEvent> {
        self.events
            .lock()
            .map(|mut e| std::mem::take(&mut *e))
            .unwrap_or_default()
    }

    fn push(&self, event: RebalanceEvent) {
        if let Ok(mut events) = self.events.lock() {
            events.push(event);
        }
    }
}

fn partitions(tpl: &TopicPartitionList) -> Vec<TopicPartition> {
    tpl.elements()
        .iter()
        .map(|e| (e.topic().to_string(), e.partition()))
        .collect()
}

impl ClientContext for SinkContext {
    /// `consumer_lag` is librdkafka's end offset (the last stable offset under
    /// `read_committed`) minus the committed offset; -1 while either is unknown.
    fn stats(&self, statistics: Statistics) {
        let mut lags = Vec::new();
        for (topic, t) in &statistics.topics {
            for (partition, p) in &t.partitions {
                if *partition >= 0 && p.consumer_lag >= 0 {
                    self.metrics
                        .consumer_lag
                        .get_or_create(&PartitionLabels {
                            topic: topic.clone(),
                            partition: *partition,
                        })
                        .set(p.consumer_lag);
                    lags.push((format!("{topic}/{partition}"), p.consumer_lag));
                }
            }
        }
        if !lags.is_empty() {
            self.status.update(|s| s.lag_records.extend(lags));
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        if topic_missing(&error) {
            tracing::info!(
                reason,
                "a subscribed topic does not exist yet; it is consumed once it is created"
            );
            return;
        }
        self.metrics.error(class::KAFKA);
        tracing::warn!(%error, reason, "Kafka client error");
    }
}

impl ConsumerContext for SinkContext {
    fn pre_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(tpl) = rebalance {
            let tps = partitions(tpl);
            tracing::info!(partitions = ?tps, "partitions revoked");
            for (topic, partition) in &tps {
                self.metrics.consumer_lag.remove(&PartitionLabels {
                    topic: topic.clone(),
                    partition: *partition,
                });
            }
            self.status
                .revoked(tps.iter().map(|(topic, partition)| format!("{topic}/{partition}")));
            self.push(RebalanceEvent::Revoked(tps));
        }
    }

    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(tpl) = rebalance {
            let tps = partitions(tpl);
            tracing::info!(partitions = ?tps, "partitions assigned");
            self.status
                .assigned(tps.iter().map(|(topic, partition)| format!("{topic}/{partition}")));
            self.push(RebalanceEvent::Assigned(tps));
        }
        if let Rebalance::Error(e) = rebalance {
            tracing::warn!(error = %e, "consumer group rebalance failed; librdkafka retries it");
        }
    }
}

/// The consumer stopped on what librdkafka calls a fatal error (`code`, librdkafka's `reason`):
/// a definite error that names the cause. [`RDKafkaErrorCode::FencedInstanceId`] means another
/// consumer joined the group with this sink's `group.instance.id`.
pub fn fatal(settings: &Settings, code: RDKafkaErrorCode, reason: &str) -> SinkError {
    match (code, settings.group_instance_id()) {
        (RDKafkaErrorCode::FencedInstanceId, Some(id)) => SinkError::Definite(format!(
            "fenced out of consumer group `{}`: another consumer joined it with the same group.instance.id `{id}`, \
             so two sinks run under one id and the newer one took over; stop one of them, or give each its own \
             kafka.group.instance.id, or remove kafka.group.instance.id to turn static membership off ({reason})",
            settings.group_id()
        )),
        _ => SinkError::Definite(format!(
            "the Kafka consumer stopped on a fatal error: {code} ({reason}); check the kafka.* settings"
        )),
    }
}

/// The fatal error of `consumer`, if it has one (see [`fatal`]).
pub fn fatal_error(settings: &Settings, consumer: &StreamConsumer<SinkContext>) -> Option<SinkError> {
    let (code, reason) = rdkafka::consumer::Consumer::client(consumer).fatal_error()?;
    Some(fatal(settings, code, &reason))
}

/// How often, while the group has not assigned partitions, the sink looks whether any
/// subscribed topic exists (see [`SinkStatus::set_no_topics`]).
const TOPICS_CHECK: std::time::Duration = std::time::Duration::from_secs(1);

/// While not assigned, at most every [`TOPICS_CHECK`]: tells `status` whether any subscribed
/// topic exists (from the cluster's metadata; unchanged when it cannot be read).
#[derive(Debug, Default)]
pub struct TopicWatch {
    last: Option<std::time::Instant>,
}

impl TopicWatch {
    pub fn check(&mut self, consumer: &StreamConsumer<SinkContext>, topics: &Topics, status: &SinkStatus) {
        if status.is_assigned() {
            status.set_no_topics(false);
            return;
        }
        if self.last.is_some_and(|t| t.elapsed() < TOPICS_CHECK) {
            return;
        }
        self.last = Some(std::time::Instant::now());
        let metadata = tokio::task::block_in_place(|| {
            rdkafka::consumer::Consumer::fetch_metadata(consumer, None, std::time::Duration::from_secs(2))
        });
        let Ok(metadata) = metadata else { return };
        let names: Vec<&str> = metadata
            .topics()
            .iter()
            .filter(|t| t.error().is_none() && !t.partitions().is_empty())
            .map(|t| t.name())
            .collect();
        status.set_no_topics(!any_subscribed(topics, &names));
    }
}

/// Whether any of `existing` is one of `topics`.
fn any_subscribed(topics: &Topics, existing: &[&str]) -> bool {
    match topics {
        Topics::List(list) => existing.iter().any(|t| list.iter().any(|l| l == t)),
        Topics::Regex(re) => regex::Regex::new(&whole_names(re)).is_ok_and(|re| existing.iter().any(|t| re.is_match(t))),
    }
}

/// `topics.regex` as a pattern of whole topic names, as Kafka Connect matches it (librdkafka
/// only looks for the pattern somewhere in the name).
fn whole_names(re: &str) -> String {
    format!("^({})$", re.trim_start_matches('^').trim_end_matches('$'))
}

/// A subscribed topic that does not exist (yet): expected while the source has not created its
/// topics, so not an error.
pub fn topic_missing(error: &KafkaError) -> bool {
    error.rdkafka_error_code() == Some(RDKafkaErrorCode::UnknownTopicOrPartition)
}

/// How often the consumer refreshes topic metadata unless `kafka.topic.metadata.refresh.interval.ms`
/// says otherwise (librdkafka's default is 5 minutes). A subscribed topic that does not exist yet
/// — the sink usually starts before the source has created its topics — and every new topic
/// matching `topics.regex` is assigned within about this long of its creation.
pub const METADATA_REFRESH_MS: u64 = 3000;

/// Creates the consumer (not subscribed yet, see [`subscribe_topics`]); its statistics go to
/// `metrics` and `status`.
pub fn create(
    settings: &Settings,
    metrics: SinkMetrics,
    status: Arc<SinkStatus>,
) -> Result<StreamConsumer<SinkContext>, SinkError> {
    let mut cfg = client_config(Role::Consumer, &settings.kafka);
    cfg.remove(GROUP_INSTANCE_ID);
    let defaults = [
        ("group.id", settings.group_id()),
        ("auto.offset.reset", "earliest".into()),
        ("statistics.interval.ms", "5000".into()),
        ("topic.metadata.refresh.interval.ms", METADATA_REFRESH_MS.to_string()),
        // librdkafka prefetches up to 64 MiB per partition by default, which is most of the
        // process's memory; 4 MiB keeps the sink small without slowing it (measured with
        // cdc-bench --sink).
        ("queued.min.messages", "10000".into()),
        ("queued.max.messages.kbytes", "4096".into()),
        ("fetch.queue.backoff.ms", "5".into()),
    ];
    // Any kafka.* setting overrides these.
    for (key, value) in defaults {
        if cfg.get(key).is_none() {
            cfg.set(key, value);
        }
    }
    if let Some(id) = settings.group_instance_id() {
        cfg.set(GROUP_INSTANCE_ID, id);
        if !settings.kafka.contains_key("session.timeout.ms") {
            cfg.set("session.timeout.ms", SESSION_TIMEOUT_MS.to_string());
        }
    }
    cfg.set("isolation.level", "read_committed")
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("enable.partition.eof", "false");
    let context = SinkContext {
        events: Mutex::new(Vec::new()),
        metrics,
        status,
    };
    let consumer: StreamConsumer<SinkContext> = cfg.create_with_context(context).map_err(|e| {
        SinkError::Definite(format!(
            "cannot create the Kafka consumer: {e}; check the kafka.* settings"
        ))
    })?;
    Ok(consumer)
}

/// Subscribes `consumer` to `topics` (it joins the group from here on). The apply loop does it
/// once the mirror database answers: a sink that cannot apply anything does not take
/// partitions from the group, and a sink stopped before never joins — dropping a consumer
/// whose (static) join completes during the drop can hang in librdkafka's close.
pub fn subscribe_topics(consumer: &StreamConsumer<SinkContext>, topics: &Topics) -> Result<(), SinkError> {
    let topics: Vec<String> = match topics {
        Topics::List(list) => list.clone(),
        Topics::Regex(re) => vec![whole_names(re)],
    };
    let refs: Vec<&str> = topics.iter().map(String::as_str).collect();
    rdkafka::consumer::Consumer::subscribe(consumer, &refs)
        .map_err(|e| SinkError::Definite(format!("cannot subscribe to {topics:?}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_subscription_matches_whole_existing_names() {
        let list = Topics::List(vec!["a".into(), "b".into()]);
        assert!(any_subscribed(&list, &["x", "b"]));
        assert!(!any_subscribed(&list, &["x", "ab"]));
        let re = Topics::Regex("my_topic_.*".into());
        assert!(any_subscribed(&re, &["__consumer_offsets", "my_topic_users"]));
        assert!(!any_subscribed(&re, &["old_my_topic_users"]));
        assert!(!any_subscribed(&re, &[]));
    }
}
