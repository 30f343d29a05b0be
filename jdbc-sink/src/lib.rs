//! # jdbc-sink
//!
//! Keeps MariaDB mirror tables equal to the `my_topic_*` topics, replacing Kafka Connect's JDBC
//! sink connector and accepting its configuration ([`config`]).
//!
//! ## What it promises
//! - **Exactly once into the mirror.** Each batch's rows and the next offset of each of its
//!   partitions commit in one MariaDB transaction ([`offsets`]); on start and on every partition
//!   assignment the consumer continues from those stored offsets. A crash at any point neither
//!   loses nor repeats a record. Kafka group offsets are a copy for lag monitoring.
//! - **Only committed source data.** The consumer reads with `isolation.level=read_committed`.
//! - **Exactly once, not atomic per source transaction.** A source transaction whose rows span
//!   several sink batches (more rows than `batch.size`, or a batch cut by `flush.interval.ms`) or
//!   several topics (tables) is applied exactly once, but in parts: for a moment the mirror can
//!   show some of its rows and not yet the others.
//! - **Order per key** is the partition order; within a batch several changes of one key collapse
//!   to the last one (upsert mode), which leaves the same table.
//! - **Nothing dropped silently.** Transient failures are retried with backoff, forever; a record
//!   that can never be applied goes to the dead letter queue (`errors.tolerance=all`, [`dlq`]) or
//!   stops the sink with a message naming the record and what to do (`none`). Tombstones with
//!   `delete.enabled=false` are skipped by configuration, as in Kafka Connect; so are truncate
//!   records (header `cdc.op=t`, never taken for tombstones) with `truncate.enabled=false`
//!   (counted). With `truncate.enabled` the mirror table is emptied in the batch transaction, at
//!   that point of every partition ([`truncate`]).
//! - **The mirror follows the source's DDL, never losing precision.** With `auto.evolve`, new
//!   fields add columns, widened source columns widen the mirror column (`ALTER TABLE … MODIFY`),
//!   and NOT NULL columns the records no longer carry become NULLable; a change that is not a
//!   widening is refused naming table, column and both types, never rounded or cut ([`ddl`],
//!   [`widen`]).
//! - **Safe identifiers.** Table and column names from topics and fields are validated and quoted
//!   ([`ident`]); column types from messages are checked against MariaDB's type grammar
//!   ([`coltype`]).
//!
//! - **Back at once after a crash**, with `kafka.group.instance.id` set: the consumer is then a
//!   static member of its group ([`consumer`]), so a sink restarted after a crash is given its
//!   partitions back within a second or two instead of after the dead member's session timeout
//!   (dynamic membership, the default, waits for it). The consumer joins the group only once
//!   the mirror database answers, and `/ready` is 503 until the group has assigned it its
//!   partitions.
//!
//! The apply loop and its moving parts are described in [`apply`].
//! Operations: `/metrics` ([`metrics`]), `/health`, `/ready`, `/status` ([`status`]); SIGTERM
//! finishes (or rolls back) the open batch, commits and exits 0.

#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod apply;
pub mod batch;
pub mod change;
pub mod check;
pub mod coltype;
pub mod config;
pub mod consumer;
pub mod ddl;
pub mod dlq;
pub mod errors;
mod flush;
pub mod ident;
pub mod metrics;
pub mod offsets;
mod pipeline;
mod positions;
pub mod sqltext;
pub mod status;
pub mod truncate;
pub mod widen;
pub mod writer;

use std::collections::HashMap;
use std::sync::Arc;

use cdc_common::{CancellationToken, Registry};

use crate::apply::Sink;
use crate::config::Settings;
use crate::errors::SinkError;
use crate::ident::Ident;
use crate::metrics::SinkMetrics;
use crate::status::{SinkStatus, StatusDoc};

/// Serves HTTP and runs the sink until `shutdown` is cancelled or a definite error stops it.
pub async fn run(settings: Settings, shutdown: CancellationToken) -> Result<(), SinkError> {
    let mut registry = Registry::default();
    let metrics = SinkMetrics::register(&mut registry);
    let status = Arc::new(SinkStatus::new(StatusDoc {
        state: "starting",
        name: settings.name.clone(),
        group: settings.group_id(),
        connection: settings.url.to_string(),
        ..StatusDoc::default()
    }));
    let http_stop = shutdown.child_token();
    let http = cdc_common::serve_http(
        &settings.http_listen,
        Arc::new(registry),
        status.clone(),
        status::connector(&settings),
        cdc_common::HttpRoutes::new(),
        http_stop.clone(),
    )
    .await
    .map_err(|e| SinkError::Definite(e.to_string()))?;
    tracing::info!(address = %http.local_addr, "HTTP endpoints listening");
    let linger = settings.http_failed_linger;
    let lag = tokio::spawn(status::follow_lag(status.clone(), metrics.lag.clone()));
    let result = match kafka_usable(&settings).await.and_then(|()| build(settings, metrics, status.clone(), shutdown.clone())) {
        // A broker away now is no reason to stop: the first dead letter waits for it anyway.
        Ok(sink) => match sink.dlq() {
            Some(dlq) => match dlq.ensure_topic().await {
                Err(SinkError::Transient { message, .. }) => {
                    tracing::warn!(error = %message, "dead letter queue topic not created at start");
                    Ok(())
                }
                other => other,
            },
            None => Ok(()),
        }
        .map(|()| sink),
        Err(e) => Err(e),
    };
    let result = match result {
        Ok(sink) => sink.run().await,
        Err(e) => Err(e),
    };
    if let Err(e) = &result {
        let message = e.to_string();
        status.update(|s| {
            s.state = "failed";
            s.last_error = Some(message);
        });
        http.linger_after_failure(linger, &shutdown).await;
    }
    lag.abort();
    http_stop.cancel();
    result
}

/// Stops the sink at start when Kafka refuses it for a reason waiting will not fix (credentials,
/// TLS, another security protocol); a Kafka that does not answer yet is only reported, the
/// consumer keeps trying.
async fn kafka_usable(settings: &Settings) -> Result<(), SinkError> {
    let client = cdc_common::kafka::client_config(cdc_common::kafka::Role::Consumer, &settings.kafka);
    let kafka = settings.kafka.clone();
    let probed = tokio::task::spawn_blocking(move || {
        cdc_common::kafka::probe(&client, &kafka, std::time::Duration::from_secs(15)).map(|_| ())
    })
    .await
    .map_err(|e| SinkError::Definite(e.to_string()))?;
    match probed {
        Err(e) if e.obstacle.is_definite() => Err(SinkError::Definite(e.message)),
        Err(e) => {
            tracing::warn!(error = %e, "Kafka does not answer yet; the sink keeps trying");
            Ok(())
        }
        Ok(()) => Ok(()),
    }
}

/// Assembles the sink from validated settings.
pub fn build(
    settings: Settings,
    metrics: SinkMetrics,
    status: Arc<SinkStatus>,
    shutdown: CancellationToken,
) -> Result<Sink, SinkError> {
    let offsets_table =
        Ident::new(&settings.offsets_table).map_err(|e| SinkError::Definite(e.to_string()))?;
    let consumer = consumer::create(&settings, metrics.clone(), status.clone())?;
    let dlq = match (&settings.tolerance, &settings.dlq_topic) {
        (config::Tolerance::All, Some(topic)) => {
            Some(dlq::DeadLetterQueue::new(
                topic,
                settings.dlq_replication_factor,
                &settings.kafka,
            )?)
        }
        _ => None,
    };
    let decoder = cdc_schema::Decoder::new(settings.registry.clone());
    let settings = Arc::new(settings);
    let has_dlq = dlq.is_some();
    let flusher = flush::Flusher::new(settings.clone(), metrics.clone(), status.clone(), dlq, offsets_table, shutdown.clone());
    Ok(Sink {
        builder: change::ChangeBuilder::new(&settings),
        group: settings.group_id(),
        has_dlq,
        flusher: pipeline::Slot::Idle(Box::new(flusher)),
        settings,
        consumer,
        decoder,
        metrics,
        status,
        positions: Default::default(),
        open_oldest_ms: None,
        records_read: HashMap::new(),
        truncate_waits: HashMap::new(),
        topic_watch: Default::default(),
        shutdown,
    })
}
