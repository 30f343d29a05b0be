//! Where each partition stands: the stored offset in the mirror database is the truth, and the
//! consumer is moved to it on assignment and whenever it is found elsewhere. See
//! [`crate::apply`] for how the apply loop uses these positions.

use std::time::Duration;

use cdc_common::Backoff;
use rdkafka::consumer::Consumer;
use rdkafka::Offset;

use crate::apply::Sink;
use crate::batch::Batch;
use crate::consumer::RebalanceEvent;
use crate::errors::SinkError;
use crate::offsets::Tp;

impl Sink {
    pub(crate) async fn handle_rebalance(&mut self, batch: &mut Batch) -> Result<(), SinkError> {
        for event in self.consumer.context().take_events() {
            match event {
                RebalanceEvent::Revoked(tps) => {
                    if batch.covers_any(&tps) {
                        self.flush_with_retry(batch, false).await?;
                    }
                    for tp in &tps {
                        self.positions.remove(tp);
                        self.seeking.remove(tp);
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
