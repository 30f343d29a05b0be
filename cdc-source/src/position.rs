//! Binlog positions: MariaDB GTID positions (one `domain-server-seq` per replication domain) and
//! the file:pos of the event that produced them.
//!
//! The GTID position is what resumption uses (`@slave_connect_state`); file:pos is carried for
//! people (headers, `/status`) and for the snapshot hand-over. Positions compare per domain: the
//! server id of a domain's last GTID can change on failover, the sequence number only grows.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// One MariaDB GTID.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Gtid {
    pub domain: u32,
    pub server: u32,
    pub seq: u64,
}

impl fmt::Display for Gtid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}-{}", self.domain, self.server, self.seq)
    }
}

impl FromStr for Gtid {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let mut it = s.trim().splitn(3, '-');
        let (Some(d), Some(srv), Some(seq)) = (it.next(), it.next(), it.next()) else {
            return Err(format!("`{s}` is not a MariaDB GTID (domain-server-sequence)"));
        };
        let bad = |_| format!("`{s}` is not a MariaDB GTID (domain-server-sequence)");
        Ok(Gtid {
            domain: d.parse().map_err(bad)?,
            server: srv.parse().map_err(bad)?,
            seq: seq.parse().map_err(bad)?,
        })
    }
}

/// A GTID position: the last GTID applied per domain, as in `@@gtid_binlog_pos`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GtidPosition(BTreeMap<u32, Gtid>);

impl GtidPosition {
    /// Records `gtid` as the domain's latest.
    pub fn advance(&mut self, gtid: Gtid) {
        self.0.insert(gtid.domain, gtid);
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn domain(&self, domain: u32) -> Option<&Gtid> {
        self.0.get(&domain)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Gtid> {
        self.0.values()
    }

    /// Whether every transaction of `other` is also in `self`: a stream that has read up to
    /// `self` has passed the point `other` names (one server's binlog is a single order).
    pub fn includes(&self, other: &GtidPosition) -> bool {
        other.iter().all(|o| self.domain(o.domain).is_some_and(|mine| mine.seq >= o.seq))
    }

    /// Whether some domain of `self` lies before the start of `oldest` (the position at the start of
    /// the oldest binlog still on the server): resuming at `self` would need purged binlogs.
    /// Returns the first such domain's pair.
    pub fn purged_against(&self, oldest: &GtidPosition) -> Option<(Gtid, Gtid)> {
        oldest.iter().find_map(|o| match self.domain(o.domain) {
            Some(mine) if mine.seq < o.seq => Some((*mine, *o)),
            None if o.seq > 0 => Some((Gtid { domain: o.domain, server: 0, seq: 0 }, *o)),
            _ => None,
        })
    }
}

impl fmt::Display for GtidPosition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for g in self.0.values() {
            if !first {
                f.write_str(",")?;
            }
            first = false;
            write!(f, "{g}")?;
        }
        Ok(())
    }
}

impl FromStr for GtidPosition {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let mut pos = GtidPosition::default();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            pos.advance(part.parse()?);
        }
        Ok(pos)
    }
}

impl Serialize for GtidPosition {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for GtidPosition {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A binlog file and the offset of the next event in it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FilePos {
    pub file: String,
    pub pos: u64,
}

impl FilePos {
    /// Where this point lies in the server's binlog, as a number pair that orders like the
    /// binlog: the file's sequence number (its name's last `.`-part), then the offset in it.
    pub fn order(&self) -> (u64, u64) {
        let seq = self.file.rsplit('.').next().and_then(|n| n.parse().ok()).unwrap_or(0);
        (seq, self.pos)
    }
}

impl fmt::Display for FilePos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file, self.pos)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gtid_position_round_trips_and_advances_per_domain() {
        let mut p: GtidPosition = "0-1-19,2-5-7".parse().expect("parses");
        assert_eq!(p.to_string(), "0-1-19,2-5-7");
        p.advance("0-2-20".parse().expect("gtid"));
        assert_eq!(p.to_string(), "0-2-20,2-5-7");
        assert!("".parse::<GtidPosition>().expect("empty").is_empty());
        assert!("0-1".parse::<GtidPosition>().is_err());
        assert!("a-1-2".parse::<GtidPosition>().is_err());
    }

    #[test]
    fn purged_detection_compares_per_domain() {
        let oldest: GtidPosition = "0-1-100".parse().expect("p");
        let behind: GtidPosition = "0-1-99".parse().expect("p");
        let at: GtidPosition = "0-1-100,1-1-3".parse().expect("p");
        assert!(behind.purged_against(&oldest).is_some());
        assert!(at.purged_against(&oldest).is_none());
        assert!(GtidPosition::default().purged_against(&oldest).is_some());
        assert!(behind.purged_against(&GtidPosition::default()).is_none());
    }

    #[test]
    fn a_position_includes_another_per_domain() {
        let read: GtidPosition = "0-1-20,1-1-5".parse().expect("p");
        assert!(read.includes(&"0-1-20".parse().expect("p")));
        assert!(read.includes(&"0-2-19,1-1-5".parse().expect("p")));
        assert!(!read.includes(&"0-1-21".parse().expect("p")));
        assert!(!read.includes(&"2-1-1".parse().expect("p")), "a domain not read yet is not passed");
        assert!(read.includes(&GtidPosition::default()));
    }

    #[test]
    fn binlog_points_order_by_file_number_then_offset() {
        let at = |f: &str, p| FilePos { file: f.into(), pos: p }.order();
        assert!(at("mysql-bin.000002", 4) > at("mysql-bin.000001", 999_999));
        assert!(at("mysql-bin.000010", 4) > at("mysql-bin.000009", 4));
        assert!(at("mysql-bin.000001", 500) > at("mysql-bin.000001", 499));
        assert_eq!(at("mysql-bin.000001", 500), at("mysql-bin.000001", 500));
    }
}
