//! Where each partition stands: the stored offset in the mirror database is the truth, and the
//! consumer is moved to it on assignment and whenever it is found elsewhere. See
//! [`crate::apply`] for how the apply loop uses these positions.
//!
//! **Group offsets (monitoring only).** The stored offset is the offset after the last record
//! applied. Every committed source transaction ends, on each partition it wrote, with a
//! transaction marker: a control record that takes an offset but is never delivered. So a fully
//! applied partition's stored offset is usually its last marker's offset, one below the end.
//! Copied as is to the consumer group, it would show a lag of 1 forever. The consumer's position
//! moves past markers (librdkafka advances it over control records as it polls them), so the
//! group gets the position instead, but only where it cannot run ahead of the mirror:
//! [`group_offset`] takes it when every record the consumer delivered for the partition is at or
//! below the stored offset (nothing in an open, in-flight or dropped batch) and no seek is
//! pending; then everything between the stored offset and the position is markers. Otherwise
//! the group gets the stored offset. The loop copies these on every commit and on its idle
//! tick, so the group follows the markers within a fraction of a second.
//!
//! The stored offset itself stays at "last applied record + 1": it is derived from records
//! alone, the fencing in [`crate::offsets`] compares exactly those values, and re-reading one
//! marker after a restart costs nothing. The group copy is where the marker is skipped.

use std::collections::HashMap;
use std::time::Duration;

use cdc_common::Backoff;
use rdkafka::consumer::{CommitMode, Consumer};
use rdkafka::{Offset, TopicPartitionList};

use crate::apply::Sink;
use crate::batch::Batch;
use crate::consumer::RebalanceEvent;
use crate::errors::SinkError;
use crate::offsets::TopicPartition;

/// Where each partition stands, as the apply loop knows it.
#[derive(Debug, Default)]
pub(crate) struct Positions {
    /// Stored offset per partition, once loaded (`None`: no row yet).
    pub(crate) stored: HashMap<TopicPartition, Option<i64>>,
    /// Per partition of the batch in flight: its next offset, where the open batch starts (the
    /// fencing start of the open batch is the end of the one committing before it).
    pub(crate) in_flight: HashMap<TopicPartition, i64>,
    /// Partitions being moved back to their stored offset.
    pub(crate) seeking: HashMap<TopicPartition, i64>,
    /// Seeks the consumer refused so far (partition not fetching yet), retried on each tick.
    pub(crate) seeks_to_retry: HashMap<TopicPartition, i64>,
    /// What the group offsets (monitoring only) are computed from.
    pub(crate) group_copy: GroupCopy,
}

impl Positions {
    /// Forgets all about `tp` (revoked, or assigned anew).
    fn forget(&mut self, tp: &TopicPartition) {
        self.stored.remove(tp);
        self.seeking.remove(tp);
        self.group_copy.delivered.remove(tp);
        self.group_copy.committed.remove(tp);
    }

    /// Where the open batch's records of `tp` start, when known without asking the database:
    /// the in-flight batch's end, else the stored offset.
    pub(crate) fn start(&self, tp: &TopicPartition) -> Option<Option<i64>> {
        match self.in_flight.get(tp) {
            Some(next) => Some(Some(*next)),
            None => self.stored.get(tp).copied(),
        }
    }
}

/// What the consumer group's offsets are computed from, besides the stored offsets.
#[derive(Debug, Default)]
pub(crate) struct GroupCopy {
    /// Per partition: offset after the last record the consumer delivered to the loop.
    pub(crate) delivered: HashMap<TopicPartition, i64>,
    /// Per partition: the offset last sent to the group coordinator.
    pub(crate) committed: HashMap<TopicPartition, i64>,
}

/// The group offset of a partition whose stored offset is `stored`: the consumer's `position`
/// when it is further on, the last record delivered (`delivered`: its offset + 1) is applied
/// (`<= stored`) and no seek is pending — then only transaction markers lie between the two;
/// else `stored`. Never more than `stored` plus markers, so the group never claims a record that
/// is not in the mirror.
pub(crate) fn group_offset(
    stored: i64,
    delivered: Option<i64>,
    position: Option<i64>,
    seek_pending: bool,
) -> i64 {
    match position {
        Some(p) if p > stored && !seek_pending && delivered.is_none_or(|d| d <= stored) => p,
        _ => stored,
    }
}

impl Sink {
    pub(crate) async fn handle_rebalance(&mut self, batch: &mut Batch) -> Result<(), SinkError> {
        for event in self.consumer.context().take_events() {
            self.release_truncate_waits();
            // The batch in flight lands before any rebalance is handled.
            self.drain().await?;
            match event {
                RebalanceEvent::Revoked(tps) => {
                    if batch.covers_any(&tps) {
                        self.flush_now(batch).await?;
                    }
                    for tp in &tps {
                        self.positions.forget(tp);
                    }
                }
                RebalanceEvent::Assigned(tps) => self.on_assigned(&tps).await?,
            }
        }
        Ok(())
    }

    /// Moves newly assigned partitions to their stored offsets. Records other than the target
    /// that arrive before the seek takes effect are dropped (see [`Sink::check_seek`]).
    async fn on_assigned(&mut self, tps: &[TopicPartition]) -> Result<(), SinkError> {
        for tp in tps {
            self.positions.forget(tp);
        }
        for tp in tps {
            if let Some(offset) = self.stored_position(tp).await? {
                tracing::info!(
                    topic = tp.0,
                    partition = tp.1,
                    offset,
                    "assigned; continuing from the stored offset"
                );
                self.positions.seeking.insert(tp.clone(), offset);
                self.seek(tp, offset)?;
            }
        }
        Ok(())
    }

    /// Where the open batch's records of `tp` start: the end of the batch in flight, else the
    /// stored offset (read from the offsets table the first time, once the batch in flight
    /// landed).
    pub(crate) async fn stored_position(&mut self, tp: &TopicPartition) -> Result<Option<i64>, SinkError> {
        if let Some(p) = self.positions.start(tp) {
            return Ok(p);
        }
        let mut backoff = Backoff::new(self.settings.retry_backoff, Duration::from_secs(30));
        loop {
            let loaded = match self.flusher().await {
                Ok(flusher) => flusher.load_positions().await,
                Err(e) => Err(e),
            };
            match loaded {
                Ok(all) => {
                    // Landing the batch in flight may have told where `tp` is.
                    if let Some(p) = self.positions.start(tp) {
                        return Ok(p);
                    }
                    let p = all.get(tp).copied();
                    self.positions.stored.insert(tp.clone(), p);
                    return Ok(p);
                }
                Err(SinkError::Transient { class, message }) => {
                    crate::flush::retrying(&self.metrics, &self.status, class, &message);
                    if !backoff.wait(&self.shutdown).await {
                        return Err(SinkError::Stopped(message));
                    }
                }
                Err(e) => return Err(e),
            }
        }
    }

    pub(crate) fn seek(&mut self, tp: &TopicPartition, offset: i64) -> Result<(), SinkError> {
        match self
            .consumer
            .seek(&tp.0, tp.1, Offset::Offset(offset), Duration::from_secs(10))
        {
            Ok(()) => {
                self.positions.seeks_to_retry.remove(tp);
            }
            Err(e) => {
                // Right after an assignment the partition may not be fetching yet; retried on
                // the next tick (and with the partition's next record).
                tracing::debug!(error = %e, topic = tp.0, partition = tp.1, offset, "seek not possible yet; retrying");
                self.positions.seeks_to_retry.insert(tp.clone(), offset);
            }
        }
        Ok(())
    }

    pub(crate) fn retry_seeks(&mut self) {
        let pending: Vec<(TopicPartition, i64)> = self
            .positions
            .seeks_to_retry
            .iter()
            .map(|(tp, o)| (tp.clone(), *o))
            .collect();
        for (tp, offset) in pending {
            if self.positions.seeking.get(&tp) == Some(&offset) {
                let _ = self.seek(&tp, offset);
            } else {
                self.positions.seeks_to_retry.remove(&tp);
            }
        }
    }

    /// Forgets the positions of `tps` and moves the consumer back to where their rows now end
    /// (read again from the offsets table with the partitions' next record), so that the records
    /// of a dropped batch are read again rather than waiting for new traffic.
    pub(crate) fn rewind(&mut self, tps: &[TopicPartition]) {
        let assigned = self.consumer.assignment().unwrap_or_default();
        for tp in tps {
            let from = self.positions.stored.remove(tp).flatten();
            if let Some(offset) = from {
                if assigned.find_partition(&tp.0, tp.1).is_some() {
                    self.positions.seeking.insert(tp.clone(), offset);
                    // A refused seek is retried on the next tick (`seeks_to_retry`).
                    let _ = self.seek(tp, offset);
                }
            }
        }
    }


    /// Copies the positions to the consumer group, for lag monitoring only: per assigned
    /// partition with a stored offset, [`group_offset`] (the stored offset, or the consumer's
    /// position past trailing transaction markers). Offsets equal to the last ones sent are not
    /// sent again, except by a synchronous commit (at shutdown).
    pub(crate) fn commit_group_offsets(&mut self, mode: CommitMode) {
        // After a lost session (the group coordinator away longer than session.timeout.ms) the
        // consumer rejoins under its group.instance.id with a new member id; a commit sent
        // under the old one is answered FENCED_INSTANCE_ID, which librdkafka makes fatal.
        if self.consumer.assignment_lost() {
            return;
        }
        let assigned = self.consumer.assignment().unwrap_or_default();
        let consumed = self.consumer.position().unwrap_or_default();
        let mut offsets: HashMap<TopicPartition, i64> = HashMap::new();
        for (tp, stored) in &self.positions.stored {
            let Some(stored) = *stored else { continue };
            if assigned.find_partition(&tp.0, tp.1).is_none() {
                continue;
            }
            let position = consumed
                .find_partition(&tp.0, tp.1)
                .and_then(|e| match e.offset() {
                    Offset::Offset(o) => Some(o),
                    _ => None,
                });
            let offset = group_offset(
                stored,
                self.positions.group_copy.delivered.get(tp).copied(),
                position,
                self.positions.seeks_to_retry.contains_key(tp),
            );
            offsets.insert(tp.clone(), offset);
        }
        let changed = offsets
            .iter()
            .any(|(tp, o)| self.positions.group_copy.committed.get(tp) != Some(o));
        if offsets.is_empty() || (matches!(mode, CommitMode::Async) && !changed) {
            return;
        }
        let mut tpl = TopicPartitionList::new();
        for ((topic, partition), offset) in &offsets {
            let _ = tpl.add_partition_offset(topic, *partition, Offset::Offset(*offset));
        }
        match self.consumer.commit(&tpl, mode) {
            Ok(()) => self.positions.group_copy.committed.extend(offsets),
            Err(e) => tracing::debug!(error = %e, "group offset commit failed (monitoring only)"),
        }
    }

    /// The first record after a seek to `target` has a higher offset: normal where transaction
    /// markers or compaction left a gap, but a definite error where retention deleted records
    /// this sink never applied.
    pub(crate) fn check_gap(&mut self, tp: &TopicPartition, target: i64) -> Result<(), SinkError> {
        let low = tokio::task::block_in_place(|| {
            self.consumer
                .fetch_watermarks(&tp.0, tp.1, Duration::from_secs(10))
        });
        if let Ok((low, _)) = low {
            if low > target {
                return Err(SinkError::Definite(format!(
                    "{}[{}]: records from offset {target} to {low} were deleted by retention before this sink applied them; \
                     the mirror is missing them: re-snapshot the source, then delete the partition's row from {} to start over",
                    tp.0, tp.1, self.settings.offsets_table
                )));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::{group_offset, Positions};

    #[test]
    fn the_open_batch_starts_where_the_batch_in_flight_ends() {
        let tp = ("t".to_string(), 0);
        let mut p = Positions::default();
        assert_eq!(p.start(&tp), None, "unknown: read from the offsets table");
        p.stored.insert(tp.clone(), None);
        assert_eq!(p.start(&tp), Some(None), "no row stored yet");
        p.stored.insert(tp.clone(), Some(10));
        assert_eq!(p.start(&tp), Some(Some(10)));
        p.in_flight.insert(tp.clone(), 25);
        assert_eq!(p.start(&tp), Some(Some(25)), "fenced on the in-flight batch's end");
        p.forget(&tp);
        assert_eq!(p.start(&tp), Some(Some(25)), "the batch in flight still ends there");
        p.in_flight.clear();
        assert_eq!(p.start(&tp), None);
    }

    #[test]
    fn an_applied_partition_reports_the_position_past_its_marker() {
        // Records up to 9 applied (stored 10), the marker at 10 polled: position 11.
        assert_eq!(group_offset(10, Some(10), Some(11), false), 11);
        // After a restart nothing was delivered yet; the marker at the stored offset was polled.
        assert_eq!(group_offset(10, None, Some(11), false), 11);
        // Records delivered but skipped as already applied.
        assert_eq!(group_offset(10, Some(8), Some(11), false), 11);
    }

    #[test]
    fn records_not_in_the_mirror_keep_the_stored_offset() {
        // Records 10..=14 delivered into a batch that is not committed (open, in flight, or
        // dropped at shutdown): the position 15 is ahead of the mirror.
        assert_eq!(group_offset(10, Some(15), Some(15), false), 10);
        // A seek to the stored offset has not been taken yet: the position is the old one.
        assert_eq!(group_offset(10, None, Some(20), true), 10);
        // No position yet (after an assignment or a seek), or one behind the stored offset.
        assert_eq!(group_offset(10, Some(10), None, false), 10);
        assert_eq!(group_offset(10, Some(10), Some(7), false), 10);
    }
}
