//! One batch in flight: the [`Flusher`] commits batch *n* on a task of its own while the apply
//! loop reads and decodes batch *n + 1*.
//!
//! - **At most one batch in flight, one connection.** The flusher (and with it the connection)
//!   is either idle in the loop's hands or moved into the task committing a batch; it comes back
//!   with the batch's outcome. Whatever else needs the database (reading the offsets table for a
//!   new partition, the idle ping) waits for the batch in flight to land first.
//! - **Fencing starts where the batch in flight ends.** A partition's records in the open batch
//!   start at the in-flight batch's next offset ([`crate::positions::Positions::start`]), so the
//!   open batch can only commit on top of the batch before it: if that one is dropped (fenced),
//!   the open batch is fenced too, or commits exactly on the other consumer's end.
//! - **Order.** Batches commit in the order they were read; a batch is handed over only after the
//!   one before it landed.
//! - **Drained before the positions change hands.** The batch in flight lands before a rebalance
//!   is handled, before a truncate record flushes, and at shutdown before the open batch's final
//!   commit.
//! - **A failed batch in flight fails as a batch always did.** The flusher's task retries
//!   transient errors with backoff (the loop keeps reading until the open batch is full, then
//!   waits); a record error goes to the DLQ or stops the sink, a definite error stops it — seen
//!   by the loop when the batch lands.

use tokio::task::{JoinError, JoinHandle};

use crate::apply::Sink;
use crate::batch::Batch;
use crate::errors::SinkError;
use crate::flush::{Flushed, Flusher};

type Landed = (Box<Flusher>, Result<Flushed, SinkError>);

/// Where the flusher is.
#[derive(Debug)]
pub(crate) enum Slot {
    Idle(Box<Flusher>),
    /// Committing a batch on its own task.
    Busy(JoinHandle<Landed>),
    /// Its task panicked (the sink stops).
    Gone,
}

/// The outcome of the batch in flight, once it lands; never, when none is in flight.
pub(crate) async fn landing(slot: &mut Slot) -> Result<Landed, JoinError> {
    match slot {
        Slot::Busy(handle) => handle.await,
        _ => std::future::pending().await,
    }
}

impl Sink {
    pub(crate) fn in_flight(&self) -> bool {
        matches!(self.flusher, Slot::Busy(_))
    }

    /// Waits for the batch in flight, if any, and applies its outcome.
    pub(crate) async fn drain(&mut self) -> Result<(), SinkError> {
        if !self.in_flight() {
            return Ok(());
        }
        let landed = landing(&mut self.flusher).await;
        self.landed(landed)
    }

    /// Takes back the flusher from its task and applies the batch's outcome.
    pub(crate) fn landed(&mut self, landed: Result<Landed, JoinError>) -> Result<(), SinkError> {
        match landed {
            Ok((flusher, result)) => {
                self.flusher = Slot::Idle(flusher);
                self.apply_flushed(result?);
                Ok(())
            }
            Err(e) => {
                self.flusher = Slot::Gone;
                self.positions.in_flight.clear();
                Err(SinkError::Definite(format!("the task committing a batch failed: {e}")))
            }
        }
    }

    /// The flusher, once the batch in flight (if any) landed.
    pub(crate) async fn flusher(&mut self) -> Result<&mut Flusher, SinkError> {
        self.drain().await?;
        match &mut self.flusher {
            Slot::Idle(flusher) => Ok(flusher),
            _ => Err(SinkError::Definite("the task committing batches is gone".into())),
        }
    }

    /// Hands the open batch to the flusher's task, once the batch before it landed; the open
    /// batch starts over empty.
    pub(crate) async fn dispatch(&mut self, batch: &mut Batch) -> Result<(), SinkError> {
        if batch.is_empty() {
            return Ok(());
        }
        self.drain().await?;
        let Slot::Idle(mut flusher) = std::mem::replace(&mut self.flusher, Slot::Gone) else {
            return Err(SinkError::Definite("the task committing batches is gone".into()));
        };
        let batch = std::mem::take(batch);
        for (tp, (_, next)) in &batch.moves {
            self.positions.in_flight.insert(tp.clone(), *next);
        }
        self.open_oldest_ms = None;
        self.flusher = Slot::Busy(tokio::spawn(async move {
            let result = flusher.flush_with_retry(batch, false).await;
            (flusher, result)
        }));
        Ok(())
    }

    /// Commits the open batch and waits until it landed.
    pub(crate) async fn flush_now(&mut self, batch: &mut Batch) -> Result<(), SinkError> {
        self.dispatch(batch).await?;
        self.drain().await
    }

    /// At shutdown: the batch in flight lands, then the open batch commits once, without
    /// retrying a transient failure (it is re-read on the next start). When the batch in flight
    /// failed, the open batch, which starts at its end, is not tried.
    pub(crate) async fn final_flush(&mut self, batch: &mut Batch) -> Result<(), SinkError> {
        let batch = std::mem::take(batch);
        self.open_oldest_ms = None;
        self.drain().await?;
        if !self.positions.in_flight.is_empty() {
            // Only a batch that failed leaves its end behind: the open batch starts there.
            return Err(SinkError::Stopped("the batch committing before it did not commit".into()));
        }
        let flushed = self.flusher().await?.flush_with_retry(batch, true).await?;
        self.apply_flushed(flushed);
        Ok(())
    }

    /// What a landed batch means for the positions.
    fn apply_flushed(&mut self, flushed: Flushed) {
        match flushed {
            Flushed::Nothing => {}
            Flushed::Committed(moves) => {
                self.positions.in_flight.clear();
                for m in moves {
                    self.positions.stored.insert((m.topic, m.partition), Some(m.next));
                }
                self.status.set_pending_event_ms(self.open_oldest_ms);
                self.commit_group_offsets(rdkafka::consumer::CommitMode::Async);
            }
            Flushed::Dropped(moves) => {
                self.positions.in_flight.clear();
                self.status.set_pending_event_ms(self.open_oldest_ms);
                let tps: Vec<_> = moves.into_iter().map(|m| (m.topic, m.partition)).collect();
                self.rewind(&tps);
            }
        }
    }

    /// The dead letter queue, while no batch is in flight.
    pub(crate) fn dlq(&self) -> Option<&crate::dlq::DeadLetterQueue> {
        match &self.flusher {
            Slot::Idle(flusher) => flusher.dlq(),
            _ => None,
        }
    }

    /// Stops the batch in flight when the sink stops on an error: its transaction is rolled
    /// back by the server (or, if its COMMIT was on its way, the offsets table tells on the next
    /// start).
    pub(crate) fn abandon(&mut self) {
        if let Slot::Busy(handle) = &self.flusher {
            handle.abort();
        }
    }
}
