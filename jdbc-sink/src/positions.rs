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
use rdkafka::consumer::Consumer;
use rdkafka::Offset;

use crate::apply::Sink;
use crate::batch::Batch;
use crate::consumer::RebalanceEvent;
use crate::errors::SinkError;
use crate::offsets::Tp;

/// What the consumer group's offsets are computed from, besides the stored offsets.
#[derive(Debug, Default)]
pub(crate) struct GroupCopy {
    /// Per partition: offset after the last record the consumer delivered to the loop.
    pub(crate) delivered: HashMap<Tp, i64>,
    /// Per partition: the offset last sent to the group coordinator.
    pub(crate) committed: HashMap<Tp, i64>,
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
            match event {
                RebalanceEvent::Revoked(tps) => {
                    if batch.covers_any(&tps) {
                        self.flush_with_retry(batch, false).await?;
                    }
                    for tp in &tps {
                        self.positions.remove(tp);
                        self.seeking.remove(tp);
                        self.group_copy.delivered.remove(tp);
                        self.group_copy.committed.remove(tp);
                    }
                }
                RebalanceEvent::Assigned(tps) => self.on_assigned(&tps).await?,
            }
        }
        Ok(())
    }

    /// Moves newly assigned partitions to their stored offsets. Records other than the target
    /// that arrive before the seek takes effect are dropped (see [`Sink::check_seek`]).
    async fn on_assigned(&mut self, tps: &[Tp]) -> Result<(), SinkError> {
        for tp in tps {
            self.positions.remove(tp);
            self.seeking.remove(tp);
            self.group_copy.delivered.remove(tp);
            self.group_copy.committed.remove(tp);
        }
        for tp in tps {
            if let Some(offset) = self.stored_position(tp).await? {
                tracing::info!(
                    topic = tp.0,
                    partition = tp.1,
                    offset,
                    "assigned; continuing from the stored offset"
                );
                self.seeking.insert(tp.clone(), offset);
                self.seek(tp, offset)?;
            }
        }
        Ok(())
    }

    pub(crate) async fn stored_position(&mut self, tp: &Tp) -> Result<Option<i64>, SinkError> {
        if let Some(p) = self.positions.get(tp) {
            return Ok(*p);
        }
        let mut backoff = Backoff::new(self.settings.retry_backoff, Duration::from_secs(30));
        loop {
            match self.load_positions().await {
                Ok(all) => {
                    let p = all.get(tp).copied();
                    self.positions.insert(tp.clone(), p);
                    return Ok(p);
                }
                Err(SinkError::Transient { class, message }) => {
                    self.retrying(class, &message);
                    if !backoff.wait(&self.shutdown).await {
                        return Err(SinkError::Stopped(message));
                    }
                }
                Err(e) => return Err(e),
            }
        }
    }

    pub(crate) fn seek(&mut self, tp: &Tp, offset: i64) -> Result<(), SinkError> {
        match self
            .consumer
            .seek(&tp.0, tp.1, Offset::Offset(offset), Duration::from_secs(10))
        {
            Ok(()) => {
                self.unsought.remove(tp);
            }
            Err(e) => {
                // Right after an assignment the partition may not be fetching yet; retried on
                // the next tick (and with the partition's next record).
                tracing::debug!(error = %e, topic = tp.0, partition = tp.1, offset, "seek not possible yet; retrying");
                self.unsought.insert(tp.clone(), offset);
            }
        }
        Ok(())
    }

    pub(crate) fn retry_seeks(&mut self) {
        let pending: Vec<(Tp, i64)> = self
            .unsought
            .iter()
            .map(|(tp, o)| (tp.clone(), *o))
            .collect();
        for (tp, offset) in pending {
            if self.seeking.get(&tp) == Some(&offset) {
                let _ = self.seek(&tp, offset);
            } else {
                self.unsought.remove(&tp);
            }
        }
    }

    /// The first record after a seek to `target` has a higher offset: normal where transaction
    /// markers or compaction left a gap, but fatal where retention deleted records this sink never
    /// applied.
    pub(crate) fn check_gap(&mut self, tp: &Tp, target: i64) -> Result<(), SinkError> {
        let low = tokio::task::block_in_place(|| {
            self.consumer
                .fetch_watermarks(&tp.0, tp.1, Duration::from_secs(10))
        });
        if let Ok((low, _)) = low {
            if low > target {
                return Err(SinkError::Fatal(format!(
                    "{}[{}]: records from offset {target} to {low} were deleted by retention before this sink applied them; \
                     the mirror is missing them: re-snapshot the source, then delete the partition's row from {} to start over",
                    tp.0, tp.1, self.offsets_table.as_str()
                )));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::group_offset;

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
