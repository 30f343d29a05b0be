//! The offsets table in the mirror database: for each (consumer group, topic, partition) the
//! offset of the next record to apply. It is written in the same transaction as the rows of a
//! batch, so the mirror and its position never disagree; Kafka's group offsets are only a copy for
//! lag monitoring.
//!
//! Fencing: a batch records the offset it started from for each partition. [`store`] locks the
//! rows (`SELECT … FOR UPDATE`) and refuses to commit when another consumer moved a partition in
//! the meantime (after a rebalance), so a stale batch can never overwrite newer rows.
//!
//! The same check resolves an ambiguous commit: when a batch's COMMIT got no answer (the
//! connection broke or `statement.timeout.ms` passed while it was on its way), the batch is
//! retried, and the rows tell what happened. Still at the batch's start: the COMMIT did not take
//! effect and the batch is applied now. At the batch's end on every partition
//! ([`OffsetsError::AtEnd`]): it did, and the batch is not applied again.

use std::collections::HashMap;

use mysql_async::prelude::Queryable;

use crate::ident::Ident;
use crate::sqltext::quote_str;

/// Topic and partition.
pub type TopicPartition = (String, i32);

/// One partition's move in a batch: from `start` (`None`: no row stored yet) to `next`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetMove {
    pub topic: String,
    pub partition: i32,
    pub start: Option<i64>,
    pub next: i64,
}

/// The stored offsets are not where this consumer expected them: another consumer applied
/// records of the partition since. The batch must be rolled back and the partition re-read.
#[derive(Debug, thiserror::Error)]
#[error("offsets of {topic}[{partition}] moved to {found:?} while this sink expected {expected:?}: another consumer owns the partition now")]
pub struct Fenced {
    pub topic: String,
    pub partition: i32,
    pub expected: Option<i64>,
    pub found: Option<i64>,
}

#[derive(Debug, thiserror::Error)]
pub enum OffsetsError {
    #[error(transparent)]
    Fenced(#[from] Fenced),
    /// Every partition already stands at the batch's end: its records are in the mirror (the
    /// batch's own earlier COMMIT took effect although its answer was lost, or another consumer
    /// applied exactly these records).
    #[error("the offsets table is at this batch's end on every partition: the batch is in the mirror already")]
    AtEnd,
    #[error(transparent)]
    Db(#[from] mysql_async::Error),
}

/// Creates the offsets table if it does not exist.
pub async fn ensure_table(
    conn: &mut mysql_async::Conn,
    table: &Ident,
) -> Result<(), mysql_async::Error> {
    conn.query_drop(format!(
        "CREATE TABLE IF NOT EXISTS {table} (\
           consumer_group VARCHAR(255) NOT NULL, \
           topic VARCHAR(255) NOT NULL, \
           kafka_partition INT NOT NULL, \
           next_offset BIGINT NOT NULL, \
           updated_at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6), \
           PRIMARY KEY (consumer_group, topic, kafka_partition)\
         ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4"
    ))
    .await
}

/// The stored next offsets of `group` (all topics).
pub async fn load(
    conn: &mut mysql_async::Conn,
    table: &Ident,
    group: &str,
) -> Result<HashMap<TopicPartition, i64>, mysql_async::Error> {
    let rows: Vec<(String, i32, i64)> = conn
        .exec(
            format!(
                "SELECT topic, kafka_partition, next_offset FROM {table} WHERE consumer_group = ?"
            ),
            (group,),
        )
        .await?;
    Ok(rows.into_iter().map(|(t, p, o)| ((t, p), o)).collect())
}

/// Inside the batch transaction: checks that every partition is still at its `start` and moves
/// it to `next`.
pub async fn store(
    tx: &mut mysql_async::Transaction<'_>,
    table: &Ident,
    group: &str,
    moves: &[OffsetMove],
) -> Result<(), OffsetsError> {
    if moves.is_empty() {
        return Ok(());
    }
    let group_lit = quote_str(group);
    let wanted: Vec<String> = moves
        .iter()
        .map(|m| format!("({}, {})", quote_str(&m.topic), m.partition))
        .collect();
    let current: Vec<(String, i32, i64)> = tx
        .query(format!(
            "SELECT topic, kafka_partition, next_offset FROM {table} \
             WHERE consumer_group = {group_lit} AND (topic, kafka_partition) IN ({}) FOR UPDATE",
            wanted.join(", ")
        ))
        .await?;
    let current: HashMap<TopicPartition, i64> = current.into_iter().map(|(t, p, o)| ((t, p), o)).collect();
    compare(moves, &current)?;
    let values: Vec<String> = moves
        .iter()
        .map(|m| {
            format!(
                "({group_lit}, {}, {}, {})",
                quote_str(&m.topic),
                m.partition,
                m.next
            )
        })
        .collect();
    tx.query_drop(format!(
        "INSERT INTO {table} (consumer_group, topic, kafka_partition, next_offset) VALUES {} \
         ON DUPLICATE KEY UPDATE next_offset = VALUES(next_offset)",
        values.join(", ")
    ))
    .await?;
    Ok(())
}

/// Whether the stored offsets `current` are where `moves` start (`Ok`), all where they end
/// ([`OffsetsError::AtEnd`]), or elsewhere ([`Fenced`], naming the first partition that moved).
pub(crate) fn compare(moves: &[OffsetMove], current: &HashMap<TopicPartition, i64>) -> Result<(), OffsetsError> {
    let found = |m: &OffsetMove| current.get(&(m.topic.clone(), m.partition)).copied();
    if moves.iter().all(|m| found(m) == m.start) {
        return Ok(());
    }
    if !moves.is_empty() && moves.iter().all(|m| found(m) == Some(m.next)) {
        return Err(OffsetsError::AtEnd);
    }
    let m = moves.iter().find(|m| found(m) != m.start).expect("a partition moved");
    Err(Fenced {
        topic: m.topic.clone(),
        partition: m.partition,
        expected: m.start,
        found: found(m),
    }
    .into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mv(partition: i32, start: Option<i64>, next: i64) -> OffsetMove {
        OffsetMove { topic: "t".into(), partition, start, next }
    }

    fn stored(rows: &[(i32, i64)]) -> HashMap<TopicPartition, i64> {
        rows.iter().map(|(p, o)| (("t".to_string(), *p), *o)).collect()
    }

    #[test]
    fn at_the_start_the_batch_commits() {
        let moves = [mv(0, Some(10), 20), mv(1, None, 5)];
        assert!(compare(&moves, &stored(&[(0, 10)])).is_ok());
    }

    #[test]
    fn at_the_end_on_every_partition_the_batch_is_in_the_mirror() {
        // The batch's own COMMIT took effect although its answer was lost.
        let moves = [mv(0, Some(10), 20), mv(1, None, 5)];
        assert!(matches!(compare(&moves, &stored(&[(0, 20), (1, 5)])), Err(OffsetsError::AtEnd)));
    }

    #[test]
    fn anywhere_else_another_consumer_moved_a_partition() {
        let moves = [mv(0, Some(10), 20), mv(1, None, 5)];
        // Further than the batch, or only one partition at its end: not this batch's commit.
        for rows in [&[(0, 25), (1, 5)][..], &[(0, 20)][..], &[(0, 10), (1, 3)][..]] {
            match compare(&moves, &stored(rows)) {
                Err(OffsetsError::Fenced(f)) => assert!(f.found != f.expected, "{f}"),
                other => panic!("{rows:?}: {other:?}"),
            }
        }
    }
}
