//! MariaDB-only binlog events that `mysql_common` does not parse (types 160–164), read from the
//! raw payload after the common header. Layouts are in `../shared/MARIADB-BINLOG.md`.

use crate::position::{Gtid, GtidPosition};

pub const ANNOTATE_ROWS: u8 = 160;
pub const BINLOG_CHECKPOINT: u8 = 161;
pub const GTID: u8 = 162;
pub const GTID_LIST: u8 = 163;
pub const START_ENCRYPTION: u8 = 164;
/// Compressed query and rows events (`log_bin_compress=ON`); never decoded, always refused.
pub const COMPRESSED_FIRST: u8 = 165;
pub const COMPRESSED_LAST: u8 = 171;

/// GTID event flag: the transaction is a single statement without BEGIN/COMMIT (DDL).
const FL_STANDALONE: u8 = 0x01;

/// A MariaDB GTID event: the start of a binlog transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GtidEvent {
    pub gtid: Gtid,
    /// A single statement that commits by itself (DDL); no XID follows.
    pub standalone: bool,
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

/// Parses a GTID event payload; the server id comes from the event header.
pub fn parse_gtid(payload: &[u8], server_id: u32) -> Option<GtidEvent> {
    let seq = u64_at(payload, 0)?;
    let domain = u32_at(payload, 8)?;
    let flags = *payload.get(12)?;
    Some(GtidEvent {
        gtid: Gtid { domain, server: server_id, seq },
        standalone: flags & FL_STANDALONE != 0,
    })
}

/// Parses a GTID_LIST event payload into a position.
pub fn parse_gtid_list(payload: &[u8]) -> Option<GtidPosition> {
    let count = u32_at(payload, 0)? & 0x0fff_ffff;
    let mut pos = GtidPosition::default();
    for i in 0..count as usize {
        let at = 4 + i * 16;
        pos.advance(Gtid {
            domain: u32_at(payload, at)?,
            server: u32_at(payload, at + 4)?,
            seq: u64_at(payload, at + 8)?,
        });
    }
    Some(pos)
}

/// Parses a BINLOG_CHECKPOINT payload into the file name it names.
pub fn parse_checkpoint(payload: &[u8]) -> Option<String> {
    let len = u32_at(payload, 0)? as usize;
    let name = payload.get(4..4 + len)?;
    Some(String::from_utf8_lossy(name).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gtid_event_layout() {
        let mut p = Vec::new();
        p.extend_from_slice(&19u64.to_le_bytes());
        p.extend_from_slice(&3u32.to_le_bytes());
        p.push(FL_STANDALONE);
        let e = parse_gtid(&p, 7).expect("parses");
        assert_eq!(e.gtid.to_string(), "3-7-19");
        assert!(e.standalone);
        assert!(parse_gtid(&p[..10], 7).is_none());
    }

    #[test]
    fn gtid_list_layout() {
        let mut p = Vec::new();
        p.extend_from_slice(&(2u32 | 0x1000_0000).to_le_bytes());
        for (d, s, q) in [(0u32, 1u32, 5u64), (1, 2, 9)] {
            p.extend_from_slice(&d.to_le_bytes());
            p.extend_from_slice(&s.to_le_bytes());
            p.extend_from_slice(&q.to_le_bytes());
        }
        assert_eq!(parse_gtid_list(&p).expect("parses").to_string(), "0-1-5,1-2-9");
        assert!(parse_gtid_list(&p[..20]).is_none());
    }

    #[test]
    fn checkpoint_layout() {
        let mut p = 16u32.to_le_bytes().to_vec();
        p.extend_from_slice(b"mysql-bin.000002");
        assert_eq!(parse_checkpoint(&p).as_deref(), Some("mysql-bin.000002"));
    }
}
