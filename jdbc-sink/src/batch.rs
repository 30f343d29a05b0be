//! A batch: the changes read since the last commit, the records bound for the dead letter queue,
//! and for each partition the offset range the batch covers.

use std::collections::HashMap;
use std::time::Instant;

use crate::change::Change;
use crate::dlq::DeadLetter;
use crate::ident::Ident;
use crate::offsets::{OffsetMove, TopicPartition};

/// Original bytes of a record, kept while a batch is open so that a record refused at write time
/// can still be sent to the DLQ.
#[derive(Debug, Clone, Default)]
pub struct RawRecord {
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub headers: Vec<(String, Option<Vec<u8>>)>,
}

#[derive(Debug, Default)]
pub struct Batch {
    /// Mirror tables emptied by truncate records (`truncate.enabled`), before any change of the
    /// batch: a truncate record first flushes the batch's changes, so every change here follows
    /// every truncate here in partition order.
    pub truncates: Vec<Ident>,
    pub changes: Vec<Change>,
    pub letters: Vec<DeadLetter>,
    /// Per partition: (stored offset when the batch began, next offset after the batch).
    pub moves: HashMap<TopicPartition, (Option<i64>, i64)>,
    /// Raw records by (topic, partition, offset), only kept when a DLQ is configured.
    pub raw: HashMap<(String, i32, i64), RawRecord>,
    /// Records consumed into the batch (changes, skipped tombstones and DLQ records).
    pub records: usize,
    pub started: Option<Instant>,
    /// Event time (ms since the epoch) of each record, for the latency histogram.
    pub event_ms: Vec<i64>,
}

impl Batch {
    pub fn is_empty(&self) -> bool {
        self.moves.is_empty()
    }

    /// The offset the next record of `tp` must have, if the batch has records of `tp`.
    pub fn next_offset(&self, tp: &TopicPartition) -> Option<i64> {
        self.moves.get(tp).map(|(_, next)| *next)
    }

    /// Marks record `offset` of `tp` as consumed; `stored` is the partition's stored offset.
    pub fn advance(&mut self, tp: &TopicPartition, stored: Option<i64>, offset: i64) {
        self.records += 1;
        self.started.get_or_insert_with(Instant::now);
        match self.moves.get_mut(tp) {
            Some(m) => m.1 = offset + 1,
            None => {
                self.moves.insert(tp.clone(), (stored, offset + 1));
            }
        }
    }

    pub fn offset_moves(&self) -> Vec<OffsetMove> {
        let mut moves: Vec<OffsetMove> = self
            .moves
            .iter()
            .map(|((topic, partition), (start, next))| OffsetMove {
                topic: topic.clone(),
                partition: *partition,
                start: *start,
                next: *next,
            })
            .collect();
        moves.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
        moves
    }

    pub fn covers_any(&self, tps: &[TopicPartition]) -> bool {
        tps.iter().any(|tp| self.moves.contains_key(tp))
    }
}
