//! Collations by MariaDB id, and decoding of column bytes into Unicode text.
//!
//! The binlog names a character column's collation by numeric id; `information_schema` names it by
//! `COLLATION_NAME`. `collations.tsv` (generated from MariaDB 10.11's
//! `information_schema.COLLATION_CHARACTER_SET_APPLICABILITY`) maps one to the other, so both paths
//! build the same [`Collation`].
//!
//! Text is decoded by character set: utf8mb4/utf8mb3/ascii as UTF-8, latin1 as MariaDB's latin1
//! (which is Windows-1252 with the five unassigned bytes mapped to C1 controls), ucs2/utf16/utf32
//! big-endian, utf16le little-endian. Other character sets are refused with an error that says so.

use std::fmt;
use std::sync::OnceLock;

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

    /// Decodes `bytes` stored in this collation's character set into Unicode text.
    pub fn decode(self, bytes: &[u8]) -> Result<String, ValueError> {
        let invalid = || ValueError::InvalidText {
            charset: self.charset().to_string(),
        };
        match self.charset() {
            "utf8mb4" | "utf8mb3" | "ascii" | "binary" => {
                String::from_utf8(bytes.to_vec()).map_err(|_| invalid())
            }
            "latin1" => Ok(bytes.iter().map(|&b| latin1_char(b)).collect()),
            "ucs2" | "utf16" => utf16(bytes, u16::from_be_bytes).ok_or_else(invalid),
            "utf16le" => utf16(bytes, u16::from_le_bytes).ok_or_else(invalid),
            "utf32" => bytes
                .chunks(4)
                .map(|c| {
                    let arr: [u8; 4] = c.try_into().ok()?;
                    char::from_u32(u32::from_be_bytes(arr))
                })
                .collect::<Option<String>>()
                .ok_or_else(invalid),
            other => Err(ValueError::UnsupportedCharset {
                charset: other.to_string(),
            }),
        }
    }
}

fn utf16(bytes: &[u8], unit: fn([u8; 2]) -> u16) -> Option<String> {
    if !bytes.len().is_multiple_of(2) {
        return None;
    }
    let units = bytes.chunks(2).map(|c| unit([c[0], c[1]]));
    char::decode_utf16(units)
        .collect::<Result<String, _>>()
        .ok()
}

/// MariaDB's latin1 is Windows-1252; its five unassigned bytes map to the C1 controls.
fn latin1_char(b: u8) -> char {
    const HIGH: [char; 32] = [
        '\u{20AC}', '\u{0081}', '\u{201A}', '\u{0192}', '\u{201E}', '\u{2026}', '\u{2020}',
        '\u{2021}', '\u{02C6}', '\u{2030}', '\u{0160}', '\u{2039}', '\u{0152}', '\u{008D}',
        '\u{017D}', '\u{008F}', '\u{0090}', '\u{2018}', '\u{2019}', '\u{201C}', '\u{201D}',
        '\u{2022}', '\u{2013}', '\u{2014}', '\u{02DC}', '\u{2122}', '\u{0161}', '\u{203A}',
        '\u{0153}', '\u{009D}', '\u{017E}', '\u{0178}',
    ];
    match b {
        0x80..=0x9F => HIGH[usize::from(b - 0x80)],
        _ => char::from(b),
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
