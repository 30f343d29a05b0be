//! Truncate records: for `TRUNCATE TABLE t` the source writes, on every partition of t's topic,
//! one record with key and value null and header `cdc.op=t` (plus `cdc.gtid`), in the Kafka
//! transaction of that binlog group. It is never a tombstone (which has no such header).
//!
//! With `truncate.enabled=false` (the default) it is counted
//! (`cdc_sink_truncates_total{outcome="skipped"}`), logged, and its offset advances.
//!
//! With `truncate.enabled=true` the mirror table is emptied with `DELETE FROM` inside a batch's
//! transaction together with the offsets (exactly once; `TRUNCATE` is DDL and would commit
//! implicitly). Order within the partition: the changes read before it are committed first (the
//! batch is flushed), and [`crate::batch::Batch::truncates`] run before the batch's changes, so the
//! changes after it land in the emptied table.
//!
//! **Several partitions.** The table's rows come from every partition, so the table may only be
//! emptied once every partition has applied its changes from before the truncate, and none has
//! applied one from after it. A partition that reaches its truncate record commits what it read
//! before it and is paused there (its stored offset is the truncate record's own: after a crash
//! or a rebalance it is read again and waited at again). When every partition of the topic
//! assigned to this sink has reached its truncate record of the same `cdc.gtid`, the table is
//! emptied, all those truncate records are consumed in that same transaction, and the paused
//! partitions resume right after them. A rebalance releases every wait (the partitions are
//! moved back to their truncate records and wait again under the new assignment).
//!
//! Limitation: the rule counts the partitions assigned to *this* sink. With several sink
//! instances sharing one topic's partitions, each instance empties the table when its own
//! partitions are there, which can delete rows another instance wrote after the truncate. Run a
//! topic with truncate records on one sink instance (`tasks.max=1`, as here).

use std::collections::HashMap;

use rdkafka::consumer::Consumer;
use rdkafka::message::{Headers, Message, OwnedMessage};
use rdkafka::TopicPartitionList;

use crate::apply::Sink;
use crate::batch::Batch;
use crate::errors::{class, MessageId, RecordError, SinkError};
use crate::metrics::TruncateLabels;
use crate::offsets::TopicPartition;

/// Partitions of one topic stopped at a truncate record.
#[derive(Debug, Default)]
pub struct TruncateWait {
    gtid: String,
    /// Partition → offset of its truncate record.
    reached: HashMap<i32, i64>,
}

/// Whether the record is a truncate record: header `cdc.op` = `t`.
pub fn is_truncate(msg: &OwnedMessage) -> bool {
    msg.headers()
        .is_some_and(|h| h.iter().any(|h| h.key == "cdc.op" && h.value == Some(b"t".as_slice())))
}

impl Sink {
    /// Whether `tp` is paused at a truncate record (its later records are read again after it).
    pub(crate) fn waits_at_truncate(&self, tp: &TopicPartition) -> bool {
        self.truncate_waits
            .get(&tp.0)
            .is_some_and(|w| w.reached.contains_key(&tp.1))
    }

    /// One truncate record (see the module doc).
    pub(crate) async fn accept_truncate(
        &mut self,
        batch: &mut Batch,
        origin: MessageId,
        gtid: String,
    ) -> Result<(), SinkError> {
        let tp: TopicPartition = (origin.topic.clone(), origin.partition);
        let table = match self.settings.table_format.table_for(&tp.0) {
            Ok(table) => table,
            Err(e) => {
                let stored = self.stored_position(&tp).await?;
                batch.advance(&tp, stored, origin.offset);
                let error = RecordError { origin, class: class::IDENTIFIER, message: e.to_string() };
                return self.refuse(batch, error, None);
            }
        };
        if !self.settings.truncate_enabled {
            let stored = self.stored_position(&tp).await?;
            batch.advance(&tp, stored, origin.offset);
            self.metrics
                .truncates
                .get_or_create(&TruncateLabels { table: table.as_str().to_string(), outcome: "skipped" })
                .inc();
            tracing::info!(%origin, table = table.as_str(), "truncate record skipped (truncate.enabled=false): the mirror table keeps its rows");
            return Ok(());
        }
        // What this partition read before the truncate is committed first.
        if !batch.changes.is_empty() {
            self.flush_now(batch).await?;
        }
        let partitions = self.assigned_partitions(&tp.0);
        let wait = self.truncate_waits.entry(tp.0.clone()).or_default();
        if wait.gtid != gtid && !wait.reached.is_empty() {
            tracing::warn!(%origin, gtid, waiting_for = wait.gtid, "truncate record of another transaction while partitions wait; waiting for this one instead");
            let stale: Vec<(i32, i64)> = wait.reached.drain().collect();
            wait.gtid = gtid.clone();
            self.resume_at(&tp.0, &stale, false);
        }
        let wait = self.truncate_waits.entry(tp.0.clone()).or_default();
        wait.gtid = gtid;
        wait.reached.insert(tp.1, origin.offset);
        let complete = partitions.iter().all(|p| wait.reached.contains_key(p));
        if !complete {
            // Stop this partition here until the others arrive; its stored offset is this record.
            let mut tpl = TopicPartitionList::new();
            tpl.add_partition(&tp.0, tp.1);
            if let Err(e) = self.consumer.pause(&tpl) {
                tracing::warn!(error = %e, %origin, "pausing the partition at its truncate record failed; its later records are dropped until the truncate");
            }
            tracing::info!(%origin, table = table.as_str(), "truncate record: waiting until every partition of the topic reaches it");
            return Ok(());
        }
        let reached: Vec<(i32, i64)> = self
            .truncate_waits
            .remove(&tp.0)
            .map(|w| w.reached.into_iter().collect())
            .unwrap_or_default();
        for &(partition, offset) in &reached {
            let other: TopicPartition = (tp.0.clone(), partition);
            let stored = self.stored_position(&other).await?;
            batch.advance(&other, stored, offset);
        }
        let others: Vec<(i32, i64)> = reached.into_iter().filter(|(p, _)| *p != tp.1).collect();
        self.resume_at(&tp.0, &others, true);
        tracing::info!(%origin, table = table.as_str(), partitions = others.len() + 1, "truncate record: the mirror table is emptied with this batch");
        batch.truncates.push(table);
        Ok(())
    }

    /// Resumes `parts` of `topic` and moves each to just after (`past`) or back to its truncate
    /// record.
    fn resume_at(&mut self, topic: &str, parts: &[(i32, i64)], past: bool) {
        let mut tpl = TopicPartitionList::new();
        for (p, _) in parts {
            tpl.add_partition(topic, *p);
        }
        if !parts.is_empty() {
            if let Err(e) = self.consumer.resume(&tpl) {
                tracing::warn!(error = %e, topic, "resuming partitions after a truncate record failed");
            }
        }
        for &(p, offset) in parts {
            let tp: TopicPartition = (topic.to_string(), p);
            let to = if past { offset + 1 } else { offset };
            self.positions.seeking.insert(tp.clone(), to);
            let _ = self.seek(&tp, to);
        }
    }

    /// Releases every partition waiting at a truncate record (before a rebalance is handled):
    /// each goes back to its truncate record and waits there again if it is still assigned.
    pub(crate) fn release_truncate_waits(&mut self) {
        let waits: Vec<(String, Vec<(i32, i64)>)> = self
            .truncate_waits
            .drain()
            .map(|(t, w)| (t, w.reached.into_iter().collect()))
            .collect();
        let assigned = self.consumer.assignment().unwrap_or_default();
        for (topic, parts) in waits {
            let still: Vec<(i32, i64)> = parts
                .into_iter()
                .filter(|(p, _)| assigned.find_partition(&topic, *p).is_some())
                .collect();
            self.resume_at(&topic, &still, false);
        }
    }

    /// The partitions of `topic` assigned to this sink.
    fn assigned_partitions(&self, topic: &str) -> Vec<i32> {
        self.consumer
            .assignment()
            .map(|a| {
                a.elements()
                    .iter()
                    .filter(|e| e.topic() == topic)
                    .map(|e| e.partition())
                    .collect()
            })
            .unwrap_or_default()
    }
}
