//! The publisher task and the queue that feeds it while streaming.
//!
//! The stream loop (reading, decoding, encoding) and the Kafka transaction run on two tasks, so
//! reading goes on while a Kafka transaction commits. The loop hands records, commits and aborts
//! to an [`Outbox`]; one task owns the [`Publisher`] and plays them in order: the records of the
//! next Kafka transaction wait in the queue while the previous one commits, and are never added
//! to it. The queue is bounded in bytes ([`QUEUE_BYTES`]): when it is full the loop waits, so the
//! memory held stays bounded whatever the traffic.
//!
//! A commit is queued with a ticket; the task reports each ticket once its commit landed, and
//! only then does the loop count its position as stored. When the task fails (a record refused,
//! a commit that failed), it aborts what is open, stops taking items and hands the Publisher and
//! the error back ([`Outbox::finish`]); the loop then resumes from the last position reported
//! stored, as after any transient error. Nothing queued after a failure is published: the
//! exactly-once argument of `stream.rs` is unchanged, only its waits moved to another task.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use prometheus_client::metrics::gauge::Gauge;
use rdkafka::message::OwnedHeaders;
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};

use crate::error::SourceError;
use crate::offsets::OffsetRecord;
use crate::publisher::{Publisher, RecordRef};

/// Most record bytes (keys, values and a fixed allowance per record) queued for the publisher
/// task at a time.
pub const QUEUE_BYTES: usize = 8 << 20;

/// Bytes counted per record besides its key and value: what a queued record costs on top of
/// them (its headers as librdkafka holds them, the topic and record reference strings, the
/// queue slot), so that small records are bounded by what they really hold.
const RECORD_OVERHEAD: usize = 640;

/// Where the record writer puts records: the [`Publisher`] itself (snapshot) or the [`Outbox`]
/// of the publisher task (streaming).
#[allow(async_fn_in_trait)]
pub trait Outlet {
    /// One record into the open (or next) Kafka transaction; `value = None` is a tombstone.
    async fn send(&mut self, topic: &str, key: Vec<u8>, value: Option<Vec<u8>>, headers: OwnedHeaders, record: RecordRef) -> Result<(), SourceError>;
    /// A record without key and value on one partition (the truncate record).
    async fn send_keyless(&mut self, topic: &str, partition: i32, headers: OwnedHeaders) -> Result<(), SourceError>;
}

impl Outlet for Publisher {
    async fn send(&mut self, topic: &str, key: Vec<u8>, value: Option<Vec<u8>>, headers: OwnedHeaders, record: RecordRef) -> Result<(), SourceError> {
        Publisher::send(self, topic, &key, value.as_deref(), headers, record).await
    }
    async fn send_keyless(&mut self, topic: &str, partition: i32, headers: OwnedHeaders) -> Result<(), SourceError> {
        Publisher::send_keyless(self, topic, partition, headers).await
    }
}

/// One step for the publisher task.
enum Item {
    Record {
        topic: String,
        key: Vec<u8>,
        value: Option<Vec<u8>>,
        headers: OwnedHeaders,
        record: RecordRef,
        /// Its share of [`QUEUE_BYTES`], returned once librdkafka has the record.
        _room: OwnedSemaphorePermit,
    },
    Keyless {
        topic: String,
        partition: i32,
        headers: OwnedHeaders,
    },
    Commit {
        ticket: u64,
        offset: Box<OffsetRecord>,
    },
    Abort,
}

impl Item {
    /// Whether the item is a record (counted as queued).
    fn is_record(&self) -> bool {
        matches!(self, Item::Record { .. } | Item::Keyless { .. })
    }
}

/// What the publisher task hands back when it ends.
struct Finished {
    publisher: Publisher,
    error: Option<SourceError>,
}

/// The stream loop's end of the publisher task.
pub struct Outbox {
    items: Option<mpsc::UnboundedSender<Item>>,
    room: Arc<Semaphore>,
    done: mpsc::UnboundedReceiver<u64>,
    /// Set when the loop gives up on what is queued: the task stops playing items.
    discard: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<Finished>,
    next_ticket: u64,
    /// Tickets queued and not yet reported stored, oldest first.
    pending: VecDeque<u64>,
    /// Records queued and not yet taken by the task (`cdc_source_records_pending{stage="queued"}`).
    queued: Gauge,
}

impl std::fmt::Debug for Outbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outbox").field("pending", &self.pending).finish()
    }
}

impl Outbox {
    /// Starts the publisher task on `publisher` (no transaction open); `queued` counts the
    /// records waiting in the queue.
    pub fn start(publisher: Publisher, queued: Gauge) -> Outbox {
        let (items_tx, items) = mpsc::unbounded_channel();
        let (done_tx, done) = mpsc::unbounded_channel();
        let discard = Arc::new(AtomicBool::new(false));
        let task = tokio::spawn(play(publisher, items, done_tx, Arc::clone(&discard), queued.clone()));
        Outbox {
            items: Some(items_tx),
            room: Arc::new(Semaphore::new(QUEUE_BYTES)),
            done,
            discard,
            task,
            next_ticket: 0,
            pending: VecDeque::new(),
            queued,
        }
    }

    fn push(&self, item: Item) -> Result<(), SourceError> {
        match &self.items {
            Some(items) if items.send(item).is_ok() => Ok(()),
            _ => Err(SourceError::PublisherStopped),
        }
    }

    /// Whether the queue has room for `bytes` more now.
    pub fn has_room(&self, bytes: usize) -> bool {
        self.room.available_permits() >= bytes.min(QUEUE_BYTES)
    }

    /// Queues a commit of everything queued so far, with `offset` as its offset record; returns
    /// its ticket (reported by [`Outbox::stored`] once the commit landed).
    pub fn commit(&mut self, offset: OffsetRecord) -> Result<u64, SourceError> {
        self.next_ticket += 1;
        let ticket = self.next_ticket;
        self.push(Item::Commit { ticket, offset: Box::new(offset) })?;
        self.pending.push_back(ticket);
        Ok(ticket)
    }

    /// Queues an abort of what was queued since the last commit.
    pub fn abort(&mut self) -> Result<(), SourceError> {
        self.push(Item::Abort)
    }

    /// Commits queued and not yet stored.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// The next commit that landed (its ticket); `Err` once the task has stopped (the cause is
    /// returned by [`Outbox::finish`]). Cancel-safe.
    pub async fn stored(&mut self) -> Result<u64, SourceError> {
        match self.done.recv().await {
            Some(ticket) => {
                self.pending.retain(|t| *t > ticket);
                Ok(ticket)
            }
            None => Err(SourceError::PublisherStopped),
        }
    }

    /// Tickets already reported and not yet taken by [`Outbox::stored`].
    pub fn stored_now(&mut self) -> Vec<u64> {
        let mut out = Vec::new();
        while let Ok(ticket) = self.done.try_recv() {
            self.pending.retain(|t| *t > ticket);
            out.push(ticket);
        }
        out
    }

    /// Ends the task and hands back the Publisher with no transaction open, the tickets stored
    /// meanwhile, and the task's error if it failed. `discard`: drop what is still queued
    /// (after an error of the loop); otherwise everything queued is played first.
    pub async fn finish(mut self, discard: bool) -> Result<(Publisher, Vec<u64>, Option<SourceError>), SourceError> {
        if discard {
            self.discard.store(true, Ordering::SeqCst);
        }
        self.items = None;
        let finished = (&mut self.task)
            .await
            .map_err(|error| SourceError::Task { context: "the publisher task ended abnormally", error })?;
        let stored = self.stored_now();
        Ok((finished.publisher, stored, finished.error))
    }
}

impl Outlet for Outbox {
    async fn send(&mut self, topic: &str, key: Vec<u8>, value: Option<Vec<u8>>, headers: OwnedHeaders, record: RecordRef) -> Result<(), SourceError> {
        let bytes = (key.len() + value.as_ref().map_or(0, Vec::len) + RECORD_OVERHEAD).min(QUEUE_BYTES);
        let room = Arc::clone(&self.room)
            .acquire_many_owned(bytes as u32)
            .await
            .map_err(|_| SourceError::PublisherStopped)?;
        // Counted before it is queued: the task uncounts it when it takes it.
        self.queued.inc();
        self.push(Item::Record { topic: topic.to_string(), key, value, headers, record, _room: room })
            .inspect_err(|_| {
                self.queued.dec();
            })
    }

    async fn send_keyless(&mut self, topic: &str, partition: i32, headers: OwnedHeaders) -> Result<(), SourceError> {
        self.queued.inc();
        self.push(Item::Keyless { topic: topic.to_string(), partition, headers }).inspect_err(|_| {
            self.queued.dec();
        })
    }
}

/// The publisher task: plays the items in order until the queue closes, an item fails, or the
/// loop discards the rest; then aborts whatever is open.
async fn play(
    mut publisher: Publisher,
    mut items: mpsc::UnboundedReceiver<Item>,
    done: mpsc::UnboundedSender<u64>,
    discard: Arc<AtomicBool>,
    queued: Gauge,
) -> Finished {
    let mut error = None;
    while let Some(item) = items.recv().await {
        if item.is_record() {
            queued.dec();
        }
        if discard.load(Ordering::SeqCst) {
            break;
        }
        let result = match item {
            Item::Record { topic, key, value, headers, record, _room } => {
                publisher.send(&topic, &key, value.as_deref(), headers, record).await
            }
            Item::Keyless { topic, partition, headers } => publisher.send_keyless(&topic, partition, headers).await,
            Item::Commit { ticket, offset } => publisher.commit(&offset).await.map(|()| {
                let _ = done.send(ticket);
            }),
            Item::Abort => publisher.abort().await,
        };
        if let Err(e) = result {
            error = Some(e);
            break;
        }
    }
    // Stop taking items first: the loop's next send fails and its queued records are freed.
    items.close();
    while let Ok(item) = items.try_recv() {
        if item.is_record() {
            queued.dec();
        }
    }
    drop(items);
    drop(done);
    if let Err(e) = publisher.abort().await {
        error.get_or_insert(e);
    }
    Finished { publisher, error }
}
