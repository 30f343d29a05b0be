//! The binlog side of the source: we connect to MariaDB as a replica and read its binlog.
//!
//! # Moving parts
//! - [`reader::BinlogReader`] opens a replica session (`@mariadb_slave_capability=4` so GTID
//!   events arrive as such, a heartbeat period, `@slave_connect_state` = the GTID position to
//!   resume after) and yields events with a read timeout. It keeps the current file:pos, fixing
//!   the first (fake) ROTATE whose name still carries checksum bytes.
//! - [`mariadb`] decodes MariaDB's own events (GTID, GTID_LIST, BINLOG_CHECKPOINT) from raw bytes.
//! - [`crate::stream`] turns events into whole transactions: a GTID event opens one, rows events
//!   add row changes, an XID (or a `COMMIT` query, or the single statement of a standalone GTID,
//!   i.e. DDL) closes it. Only closed transactions advance the position, so a restart never
//!   resumes in the middle of one (a rows event needs its table map).
//!
//! # Resume
//! The position is the GTID position after the last transaction whose records Kafka committed.
//! On reconnect the server is asked for everything after it; nothing before is sent again, and
//! nothing after is skipped.

pub mod mariadb;
pub mod reader;
