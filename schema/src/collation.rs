//! Collations by MariaDB id, and decoding of column bytes into Unicode text.
//!
//! The binlog names a character column's collation by numeric id; `information_schema` names it by
//! `COLLATION_NAME`. `collations.tsv` (generated from MariaDB 10.11's
//! `information_schema.COLLATION_CHARACTER_SET_APPLICABILITY`) maps one to the other, so both paths
//! build the same [`Collation`].
//!
//! Text is decoded by character set, exactly as MariaDB converts it to utf8mb4: every character
//! set of MariaDB 10.11 is supported (see `charset.rs`). Bytes without a character are an error
//! naming them; a collation id this table does not know (a newer server) has charset `unknown`,
//! which is refused with an error that says what to do.

use std::fmt;
use std::sync::OnceLock;

use crate::charset::{self, Failure};
use crate::error::ValueError;

const TABLE: &str = include_str!("collations.tsv");

#[derive(Debug)]
struct Entry {
    id: u16,
    name: &'static str,
    charset: &'static str,
    max_len: u8,
    is_default: bool,
}

fn table() -> &'static [Entry] {
    static PARSED: OnceLock<Vec<Entry>> = OnceLock::new();
    PARSED.get_or_init(|| {
        TABLE
            .lines()
            .filter_map(|line| {
                let mut parts = line.split('\t');
                Some(Entry {
                    id: parts.next()?.parse().ok()?,
                    name: parts.next()?,
                    charset: parts.next()?,
                    max_len: parts.next()?.parse().ok()?,
                    is_default: parts.next() == Some("default"),
                })
            })
            .collect()
    })
}

/// A MariaDB collation (and through it, a character set), identified by its id.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Collation {
    id: u16,
}

impl Collation {
    /// `binary` (id 63): the "collation" of binary strings.
    pub const BINARY: Collation = Collation { id: 63 };
    /// `utf8mb4_general_ci` (id 45), MariaDB 10.11's default for utf8mb4.
    pub const UTF8MB4_GENERAL_CI: Collation = Collation { id: 45 };
    /// `utf8mb4_bin` (id 46), used by MariaDB's JSON columns.
    pub const UTF8MB4_BIN: Collation = Collation { id: 46 };
    /// `latin1_swedish_ci` (id 8), latin1's default.
    pub const LATIN1_SWEDISH_CI: Collation = Collation { id: 8 };

    /// The collation with this id. Unknown ids are kept (their name reads `unknown_<id>`).
    pub fn from_id(id: u16) -> Collation {
        Collation { id }
    }

    /// The collation called `name` (e.g. `utf8mb4_general_ci`), if MariaDB 10.11 knows it.
    pub fn from_name(name: &str) -> Option<Collation> {
        table()
            .iter()
            .find(|e| e.name.eq_ignore_ascii_case(name))
            .map(|e| Collation { id: e.id })
    }

    /// The default collation of character set `charset` (e.g. `latin1` → `latin1_swedish_ci`).
    pub fn default_for_charset(charset: &str) -> Option<Collation> {
        table()
            .iter()
            .find(|e| e.is_default && e.charset.eq_ignore_ascii_case(charset))
            .map(|e| Collation { id: e.id })
    }

    fn entry(self) -> Option<&'static Entry> {
        table().iter().find(|e| e.id == self.id)
    }

    /// Numeric id, as in the binlog.
    pub fn id(self) -> u16 {
        self.id
    }

    /// Collation name, e.g. `utf8mb4_general_ci`.
    pub fn name(self) -> String {
        self.entry()
            .map_or_else(|| format!("unknown_{}", self.id), |e| e.name.to_string())
    }

    /// Character set name, e.g. `utf8mb4`, `latin1`, `binary`.
    pub fn charset(self) -> &'static str {
        self.entry().map_or("unknown", |e| e.charset)
    }

    /// Largest number of bytes one character takes (binlog lengths are in bytes).
    pub fn max_bytes_per_char(self) -> u32 {
        self.entry().map_or(1, |e| u32::from(e.max_len.max(1)))
    }

    /// Whether this is the binary pseudo-collation.
    pub fn is_binary(self) -> bool {
        self.id == Collation::BINARY.id
    }

    /// The DDL suffix naming charset and collation; empty for `utf8mb4_general_ci`.
    pub fn ddl_suffix(self) -> String {
        if self == Collation::UTF8MB4_GENERAL_CI {
            String::new()
        } else {
            format!(" character set {} collate {}", self.charset(), self.name())
        }
    }

    /// Whether [`decode`](Self::decode) knows this collation's character set.
    pub fn can_decode(self) -> bool {
        charset::is_supported(self.charset())
    }

    /// Decodes `bytes` stored in this collation's character set into Unicode text, as MariaDB
    /// converts them to utf8mb4; bytes the server has no character for are an error.
    pub fn decode(self, bytes: &[u8]) -> Result<String, ValueError> {
        let charset = self.charset().to_string();
        charset::decode(self.charset(), bytes).map_err(|failure| match failure {
            Failure::Unsupported => ValueError::UnsupportedCharset { charset },
            Failure::Invalid => ValueError::InvalidText { charset },
            Failure::Unmappable { offset, bytes } => ValueError::Unmappable {
                charset,
                offset,
                bytes: bytes.iter().map(|b| format!("{b:02X}")).collect(),
            },
        })
    }
}

impl fmt::Debug for Collation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}({})", self.name(), self.id)
    }
}

impl fmt::Display for Collation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_names_agree() {
        assert_eq!(
            Collation::from_name("utf8mb4_general_ci"),
            Some(Collation::UTF8MB4_GENERAL_CI)
        );
        assert_eq!(Collation::from_id(8).name(), "latin1_swedish_ci");
        assert_eq!(Collation::from_id(46).charset(), "utf8mb4");
        assert_eq!(Collation::from_id(33).max_bytes_per_char(), 3);
        assert_eq!(
            Collation::default_for_charset("latin1"),
            Some(Collation::LATIN1_SWEDISH_CI)
        );
    }

    #[test]
    fn decodes_latin1_and_utf8() {
        let latin1 = Collation::LATIN1_SWEDISH_CI;
        assert_eq!(
            latin1.decode(&[0x80, 0xE9, b'a']).ok(),
            Some("€éa".to_string())
        );
        let emoji = "한😀".as_bytes();
        assert_eq!(
            Collation::UTF8MB4_BIN.decode(emoji).ok(),
            Some("한😀".to_string())
        );
        assert!(Collation::UTF8MB4_BIN.decode(&[0xFF]).is_err());
    }
}
