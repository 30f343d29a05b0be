//! Decoding of MariaDB character sets into Unicode text, exactly as the server converts them.
//!
//! Every character set of MariaDB 10.11 (`SHOW CHARACTER SET`) decodes:
//!
//! * utf8mb4, utf8mb3 (and the `binary` pseudo charset, whose text columns do not exist) as
//!   UTF-8; ucs2 and utf16 as big-endian UTF-16, utf16le little-endian; utf32 big-endian.
//! * Every other one through a table: a base decoder from `encoding_rs` (the WHATWG encodings:
//!   windows-125x, ISO-8859-x, KOI8, IBM866, macintosh, Shift_JIS, EUC-JP, EUC-KR, GBK, Big5)
//!   or, for the charsets the WHATWG standard lacks (dec8, cp850, cp852, hp8, swe7, keybcs2,
//!   armscii8, geostd8, macce), ASCII; corrected by `charsets.tsv`, the sequences where MariaDB's
//!   own definition differs, generated from the server. The corrections matter: MariaDB's
//!   latin5 is ISO-8859-9 (not windows-1254), tis620 is TIS-620 (not windows-874), sjis is
//!   JIS X 0208 Shift-JIS (0x815F is `\`, not `＼`), big5 is plain Big5 (not Big5-HKSCS), and
//!   bytes the server has no character for (cp1250 0x81, GBK's GB18030 extensions, ...) are
//!   "no character" even where WHATWG assigns one.
//!
//! A byte sequence with no character (the server would show `?`) is an error naming the bytes
//! and their offset: nothing is replaced by U+FFFD or `?`, so no text is lost silently.
//!
//! Multi-byte sequences are read greedily, longest first (3 bytes for ujis/eucjpms `8F xx yy`,
//! then 2, then 1), as the server does. Tables are built once per character set on first use.

use std::collections::HashMap;
use std::sync::OnceLock;

use encoding_rs::Encoding;

const CORRECTIONS: &str = include_str!("charsets.tsv");

/// How a character set is decoded.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Utf8,
    Utf16Be,
    Utf16Le,
    Utf32Be,
    /// A table: base decoder (`None`: ASCII) and the longest sequence in bytes.
    Table(Option<&'static Encoding>, usize),
}

fn kind(charset: &str) -> Option<Kind> {
    use encoding_rs as e;
    use Kind::Table;
    Some(match charset {
        "utf8mb4" | "utf8mb3" | "binary" => Kind::Utf8,
        "ucs2" | "utf16" => Kind::Utf16Be,
        "utf16le" => Kind::Utf16Le,
        "utf32" => Kind::Utf32Be,
        "ascii" | "dec8" | "cp850" | "cp852" | "hp8" | "swe7" | "keybcs2" | "armscii8"
        | "geostd8" | "macce" => Table(None, 1),
        "latin1" => Table(Some(e::WINDOWS_1252), 1),
        "latin2" => Table(Some(e::ISO_8859_2), 1),
        "latin5" => Table(Some(e::WINDOWS_1254), 1),
        "latin7" => Table(Some(e::ISO_8859_13), 1),
        "greek" => Table(Some(e::ISO_8859_7), 1),
        "hebrew" => Table(Some(e::ISO_8859_8), 1),
        "tis620" => Table(Some(e::WINDOWS_874), 1),
        "koi8r" => Table(Some(e::KOI8_R), 1),
        "koi8u" => Table(Some(e::KOI8_U), 1),
        "cp866" => Table(Some(e::IBM866), 1),
        "cp1250" => Table(Some(e::WINDOWS_1250), 1),
        "cp1251" => Table(Some(e::WINDOWS_1251), 1),
        "cp1256" => Table(Some(e::WINDOWS_1256), 1),
        "cp1257" => Table(Some(e::WINDOWS_1257), 1),
        "macroman" => Table(Some(e::MACINTOSH), 1),
        "big5" => Table(Some(e::BIG5), 2),
        "sjis" | "cp932" => Table(Some(e::SHIFT_JIS), 2),
        "euckr" => Table(Some(e::EUC_KR), 2),
        "gb2312" | "gbk" => Table(Some(e::GBK), 2),
        "ujis" | "eucjpms" => Table(Some(e::EUC_JP), 3),
        _ => return None,
    })
}

/// Whether `charset` (a MariaDB character set name) can be decoded.
pub(crate) fn is_supported(charset: &str) -> bool {
    kind(charset).is_some()
}

/// Why bytes could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Failure {
    /// The character set is not one this module knows.
    Unsupported,
    /// Invalid UTF-8/16/32.
    Invalid,
    /// `bytes` at `offset` have no character in the character set.
    Unmappable { offset: usize, bytes: Vec<u8> },
}

/// Decodes `bytes` stored in MariaDB character set `charset`.
pub(crate) fn decode(charset: &str, bytes: &[u8]) -> Result<String, Failure> {
    match kind(charset).ok_or(Failure::Unsupported)? {
        Kind::Utf8 => String::from_utf8(bytes.to_vec()).map_err(|_| Failure::Invalid),
        Kind::Utf16Be => utf16(bytes, u16::from_be_bytes).ok_or(Failure::Invalid),
        Kind::Utf16Le => utf16(bytes, u16::from_le_bytes).ok_or(Failure::Invalid),
        Kind::Utf32Be => bytes
            .chunks(4)
            .map(|c| char::from_u32(u32::from_be_bytes(c.try_into().ok()?)))
            .collect::<Option<String>>()
            .ok_or(Failure::Invalid),
        Kind::Table(..) => table(charset).ok_or(Failure::Unsupported)?.decode(bytes),
    }
}

fn utf16(bytes: &[u8], unit: fn([u8; 2]) -> u16) -> Option<String> {
    if !bytes.len().is_multiple_of(2) {
        return None;
    }
    let units = bytes.chunks(2).map(|c| unit([c[0], c[1]]));
    char::decode_utf16(units).collect::<Result<String, _>>().ok()
}

/// The characters of one table character set, by sequence.
#[derive(Debug)]
struct Table {
    one: [Option<char>; 256],
    /// Two-byte sequences `0x8000..=0xFFFF` (empty for single-byte character sets).
    two: Vec<Option<char>>,
    /// Three-byte sequences `0x8F0000..=0x8FFFFF` (empty unless ujis/eucjpms).
    three: Vec<Option<char>>,
}

impl Table {
    fn decode(&self, bytes: &[u8]) -> Result<String, Failure> {
        let mut out = String::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            let rest = &bytes[i..];
            let (c, n) = match rest {
                [0x8F, b, c, ..] if !self.three.is_empty() => {
                    (self.three[usize::from(*b) << 8 | usize::from(*c)], 3)
                }
                _ => (None, 0),
            };
            let (c, n) = match (c, rest) {
                (None, [a @ 0x80..=0xFF, b, ..]) if !self.two.is_empty() => {
                    (self.two[usize::from(*a - 0x80) << 8 | usize::from(*b)], 2)
                }
                _ => (c, n),
            };
            let (c, n) = match c {
                Some(_) => (c, n),
                None => (self.one[usize::from(rest[0])], 1),
            };
            let Some(c) = c else {
                let end = (i + n.max(1)).min(bytes.len());
                return Err(Failure::Unmappable {
                    offset: i,
                    bytes: bytes[i..end].to_vec(),
                });
            };
            out.push(c);
            i += n;
        }
        Ok(out)
    }
}

/// The one character `base` makes of `seq`, or ASCII when there is no base.
fn base_char(base: Option<&'static Encoding>, seq: &[u8]) -> Option<char> {
    match base {
        Some(enc) => {
            let text = enc.decode_without_bom_handling_and_without_replacement(seq)?;
            let mut chars = text.chars();
            chars.next().filter(|_| chars.next().is_none())
        }
        None => match seq {
            [b @ ..=0x7F] => Some(char::from(*b)),
            _ => None,
        },
    }
}

/// `(first, last, code point)` corrections of one character set; `None`: no character.
type Corrections = Vec<(u32, u32, usize, Option<u32>)>;

fn corrections() -> &'static HashMap<&'static str, Corrections> {
    static PARSED: OnceLock<HashMap<&'static str, Corrections>> = OnceLock::new();
    PARSED.get_or_init(|| {
        let mut map: HashMap<&str, Corrections> = HashMap::new();
        for line in CORRECTIONS.lines().filter(|l| !l.starts_with('#')) {
            let mut parts = line.split('\t');
            let (Some(charset), Some(seq), Some(cp)) = (parts.next(), parts.next(), parts.next())
            else {
                continue;
            };
            let (from, to) = seq.split_once('-').unwrap_or((seq, seq));
            let (Ok(first), Ok(last)) = (u32::from_str_radix(from, 16), u32::from_str_radix(to, 16))
            else {
                continue;
            };
            let cp = u32::from_str_radix(cp, 16).ok();
            map.entry(charset)
                .or_default()
                .push((first, last, from.len() / 2, cp));
        }
        map
    })
}

fn build(charset: &str, base: Option<&'static Encoding>, width: usize) -> Table {
    let mut one = [None; 256];
    for (b, slot) in (0u8..=255).zip(one.iter_mut()) {
        *slot = base_char(base, &[b]);
    }
    let mut two = Vec::new();
    if width >= 2 {
        two = (0x80u8..=0xFF)
            .flat_map(|a| (0u8..=0xFF).map(move |b| [a, b]))
            .map(|seq| base_char(base, &seq))
            .collect();
    }
    let mut three = Vec::new();
    if width >= 3 {
        three = (0u8..=0xFF)
            .flat_map(|a| (0u8..=0xFF).map(move |b| [0x8F, a, b]))
            .map(|seq| base_char(base, &seq))
            .collect();
    }
    for &(first, last, len, cp) in corrections().get(charset).into_iter().flatten() {
        for seq in first..=last {
            let c = cp.and_then(|cp| char::from_u32(cp + (seq - first)));
            let index = usize::try_from(seq).unwrap_or(usize::MAX);
            let slot = match len {
                1 => one.get_mut(index),
                2 => two.get_mut(index.wrapping_sub(0x8000)),
                _ => three.get_mut(index.wrapping_sub(0x8F_0000)),
            };
            if let Some(slot) = slot {
                *slot = c;
            }
        }
    }
    Table { one, two, three }
}

/// The character sets decoded through a [`Table`], each built on first use.
const TABLE_CHARSETS: [&str; 33] = [
    "ascii", "dec8", "cp850", "cp852", "hp8", "swe7", "keybcs2", "armscii8", "geostd8", "macce",
    "latin1", "latin2", "latin5", "latin7", "greek", "hebrew", "tis620", "koi8r", "koi8u", "cp866",
    "cp1250", "cp1251", "cp1256", "cp1257", "macroman", "big5", "sjis", "cp932", "euckr", "gb2312",
    "gbk", "ujis", "eucjpms",
];

fn table(charset: &str) -> Option<&'static Table> {
    static TABLES: [OnceLock<Table>; TABLE_CHARSETS.len()] =
        [const { OnceLock::new() }; TABLE_CHARSETS.len()];
    let Some(Kind::Table(base, width)) = kind(charset) else {
        return None;
    };
    let index = TABLE_CHARSETS.iter().position(|c| *c == charset)?;
    Some(TABLES[index].get_or_init(|| build(charset, base, width)))
}
