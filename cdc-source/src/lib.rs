//! # cdc-source: MariaDB binlog → Kafka, exactly once
//!
//! Reads the MariaDB binlog as a replica and publishes one schema-tagged record per changed row
//! of the captured tables to `topic.prefix + table` (default `my_topic_<table>`).
//!
//! ## What it promises
//! - **Exactly once into Kafka.** The records of one or more whole binlog transactions and one
//!   offset record (source name → GTID position after them) are written in one Kafka
//!   transaction. A crash at any point neither loses nor duplicates a committed record:
//!   on restart the producer fences any zombie (`transactional.id` = `cdc-source-<name>`), the
//!   last committed offset is read with `read_committed`, and streaming resumes after that GTID
//!   position. A second instance with the same `name` fences the first, which stops. A failed
//!   commit is always aborted (or the producer recreated) and the stored position re-read from
//!   the offsets topic before streaming goes on, so a commit whose outcome was unknown is neither
//!   lost nor repeated ([`publisher`]).
//! - **Only committed effects.** A binlog group ending in ROLLBACK, and an XA transaction until
//!   its XA COMMIT, publish nothing; a prepared XA transaction is published once, at its commit,
//!   by reading its rows again from the binlog ([`binlog::boundary`]).
//! - **Order.** Records of one key are published in binlog order, to one partition.
//! - **Records.** Key = primary-key struct; value = the full row after the change; DELETE = a
//!   tombstone (only with `delete.enabled`); TRUNCATE = a truncate record on every partition
//!   ([`records`]); headers `cdc.op` (`c`,`u`,`d`,`r`,`t`), `cdc.gtid`, `cdc.binlog`, `cdc.ts_ms`. Tables without a primary key are refused (see [`tables`]).
//! - **Schema changes** are read from the binlog's table maps (`binlog_row_metadata=FULL`): after
//!   `ALTER TABLE … ADD COLUMN` / `MODIFY` the next records carry the change and a new schema
//!   version, evolved from the registry's latest version after a restart. RENAME and DROP TABLE
//!   are followed by name.
//! - **Snapshot** of existing rows without locks (see [`snapshot`]), also exactly once: each
//!   chunk commits with its progress in the offset record, so an interrupted snapshot resumes
//!   after its last committed chunk (no chunk is published twice) in a new read view, then streams
//!   from the first attempt's binlog position, which replays the deletes and updates of rows
//!   copied before the interruption. If those binlogs are purged meanwhile, it stops with a
//!   definite error (reset the offsets to take a new snapshot).
//! - **Incremental snapshots** while streaming (see [`incremental`]): a table, or the rows a
//!   condition or a key list selects, copied again in primary-key chunks without a lock or a
//!   pause of the stream, on a signal (the signal table or `POST /signals`, Debezium's shapes) or
//!   at the start that finds a newly captured table. A chunk is read in a read view of its own
//!   whose binlog position the server names, and published once the stream has read up to it,
//!   without the keys the stream changed after it; its progress commits with its records.
//! - **Bounded memory**: rows stream into the open Kafka transaction as they are read.
//!
//! ## Moving parts
//! [`app`] (start-up: preflight, fencing, where to start) → [`snapshot`] → [`stream`] (the loop,
//! over [`binlog`], with [`incremental`] snapshots) → [`records`] → [`outbox`] → [`publisher`]
//! (transactions) with [`offsets`].
//!
//! [`watch`] is the reverse view for people: `cdc-source watch TOPIC…` prints the records of
//! topics decoded (either format), one JSON object per line.

pub mod app;
pub mod binlog;
pub mod config;
pub mod error;
pub mod incremental;
pub mod metrics;
pub mod offsets;
pub mod outbox;
pub mod position;
pub mod preflight;
pub mod publisher;
pub mod records;
pub mod snapshot;
pub mod status;
pub mod stream;
pub mod tables;
pub mod topics;
pub mod watch;
