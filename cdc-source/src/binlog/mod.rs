//! The binlog side of the source: we connect to MariaDB as a replica and read its binlog.
//!
//! # Moving parts
//! - [`reader::BinlogReader`] opens a replica session (`@mariadb_slave_capability=4` so GTID
//!   events arrive as such, a heartbeat period, `@slave_connect_state` = the GTID position to
//!   resume after) and yields events with a read timeout. It keeps the current file:pos, fixing
//!   the first (fake) ROTATE whose name still carries checksum bytes.
//! - [`mariadb`] decodes the MariaDB events the source acts on (GTID with its flags and XA XID,
//!   XA_PREPARE) from raw bytes; the others (GTID_LIST, BINLOG_CHECKPOINT, …) are not decoded.
//! - [`boundary`] is the pure state machine saying where a group begins and how it ends: an XID
//!   or a `COMMIT` query commits it, a `ROLLBACK` query or an XA_PREPARE event discards it, the
//!   single statement of a standalone GTID (DDL, `XA COMMIT`/`XA ROLLBACK`) ends it. [`ddl`]
//!   recognises the table DDL the source acts on (TRUNCATE, RENAME, DROP).
//! - Rows events are decoded by `cdc_schema::RowsDecoder`, driven by the table's schema, straight
//!   from the event bytes; the UPDATE before-image only with `delete.enabled` (its key may need a
//!   tombstone).
//! - [`crate::stream`] acts on it: rows events add row changes to the open Kafka transaction; only
//!   ended groups advance the position, so a restart never resumes in the middle of one (a rows
//!   event needs its table map), and a discarded group's records are aborted, never committed.
//!
//! # Resume
//! The position is the GTID position after the last transaction whose records Kafka committed.
//! On reconnect the server is asked for everything after it; nothing before is sent again, and
//! nothing after is skipped.

pub mod boundary;
pub mod ddl;
pub mod mariadb;
pub mod reader;
