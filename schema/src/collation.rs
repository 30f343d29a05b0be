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
        // By id in O(1): text columns look their charset up for every value.
        static BY_ID: OnceLock<Vec<Option<&'static Entry>>> = OnceLock::new();
        let by_id = BY_ID.get_or_init(|| {
            let entries = table();
            let max = entries.iter().map(|e| usize::from(e.id)).max().unwrap_or(0);
            let mut by_id = vec![None; max + 1];
            for e in entries {
                by_id[usize::from(e.id)] = Some(e);
            }
            by_id
        });
        by_id.get(usize::from(self.id)).copied().flatten()
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
        charset::decode(self.charset(), bytes).map_err(|failure| {
            let charset = self.charset().to_string();
            match failure {
                Failure::Unsupported => ValueError::UnsupportedCharset { charset },
                Failure::Invalid => ValueError::InvalidText { charset },
                Failure::Unmappable { offset, bytes } => ValueError::Unmappable {
                    charset,
                    offset,
                    bytes: bytes.iter().map(|b| format!("{b:02X}")).collect(),
                },
            }
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

    /// `(charset, text, HEX(CONVERT(text USING charset)))`, as MariaDB 10.11 printed them.
    const SERVER_VECTORS: &[(&str, &str, &str)] = &[
            ("big5", "中文測試，繁體", "A4A4A4E5B4FAB8D5A141C163C5E9"),
            ("dec8", "Ñoño Äßå ½", "D16FF16F20C4DFE520BD"),
            ("cp850", "Grüße ½ ÆØ ╬", "477281E16520AB20929D20CE"),
            ("hp8", "Ça va été ÿ", "B46120766120C574C520EF"),
            ("koi8r", "Привет, мир ё", "F0D2C9D7C5D42C20CDC9D220A3"),
            ("latin1", "Grüße €™ Œ", "4772FCDF65208099208C"),
            ("latin2", "Zażółć gęślą jaźń", "5A61BFF3B3E62067EAB66CB1206A61BCF1"),
            ("swe7", "Räksmörgås ÉÜ", "527B6B736D7C72677D7320405E"),
            ("ascii", "plain text ~", "706C61696E2074657874207E"),
            ("ujis", "日本語テキスト ｶﾅ", "C6FCCBDCB8ECA5C6A5ADA5B9A5C8208EB68EC5"),
            ("sjis", "日本語テキスト ｶﾅ", "93FA967B8CEA8365834C8358836720B6C5"),
            ("hebrew", "שלום עולם", "F9ECE5ED20F2E5ECED"),
            ("tis620", "ภาษาไทย", "C0D2C9D2E4B7C2"),
            ("euckr", "한국어 텍스트", "C7D1B1B9BEEE20C5D8BDBAC6AE"),
            ("koi8u", "Україна ґЄ", "F5CBD2C1A7CEC120ADB4"),
            ("gb2312", "简体中文测试", "BCF2CCE5D6D0CEC4B2E2CAD4"),
            ("greek", "Καλημέρα κόσμε", "CAE1EBE7ECDDF1E120EAFCF3ECE5"),
            ("cp1250", "Příliš žluťoučký kůň", "50F8ED6C699A209E6C759D6F75E86BFD206BF9F2"),
            ("gbk", "简体中文鍀", "BCF2CCE5D6D0CEC4E575"),
            ("latin5", "Türkçe ğışİ", "54FC726BE76520F0FDFEDD"),
            ("armscii8", "Հայերեն", "D0B3DBBBF1BBDD"),
            ("utf8mb3", "Grüße 日本", "4772C3BCC39F6520E697A5E69CAC"),
            ("ucs2", "Grüße 日本", "0047007200FC00DF0065002065E5672C"),
            ("cp866", "Привет, ёж ░", "8FE0A8A2A5E22C20F1A620B0"),
            ("keybcs2", "Příliš žluťoučký", "50A9A16C69A820916C759F6F75876B98"),
            ("macce", "Příliš žluťoučký", "50DE926C69E420EC6C75E96F758B6BF9"),
            ("macroman", "Café ƒ π", "4361668E20C420B9"),
            ("cp852", "Zażółć gęślą", "5A61BEA288862067A9986CA5"),
            ("latin7", "Ąžuolas ščiū", "C0FE756F6C617320F0E869FB"),
            ("utf8mb4", "Grüße 😀", "4772C3BCC39F6520F09F9880"),
            ("cp1251", "Привет, мир", "CFF0E8E2E5F22C20ECE8F0"),
            ("utf16", "Grüße 😀", "0047007200FC00DF00650020D83DDE00"),
            ("utf16le", "Grüße 😀", "47007200FC00DF00650020003DD800DE"),
            ("cp1256", "مرحبا بالعالم", "E3D1CDC8C720C8C7E1DAC7E1E3"),
            ("cp1257", "Ąžuolas šaltinis", "C0FE756F6C617320F0616C74696E6973"),
            ("utf32", "Grüße 😀", "0000004700000072000000FC000000DF00000065000000200001F600"),
            ("geostd8", "ქართული", "D8C0D2C8D6CBC9"),
            ("cp932", "日本語①～", "93FA967B8CEA87408160"),
            ("eucjpms", "日本語①～", "C6FCCBDCB8ECADA1A1C1"),
    ];

    fn unhex(hex: &str) -> Vec<u8> {
        (0..hex.len() / 2)
            .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap_or_default())
            .collect()
    }

    fn charset(name: &str) -> Collation {
        Collation::default_for_charset(name).unwrap_or(Collation::BINARY)
    }

    #[test]
    fn every_charset_of_the_server_decodes_its_samples() {
        for (name, text, hex) in SERVER_VECTORS {
            let collation = charset(name);
            assert_eq!(collation.charset(), *name);
            assert!(collation.can_decode(), "{name}");
            assert_eq!(
                collation.decode(&unhex(hex)).ok().as_deref(),
                Some(*text),
                "{name} 0x{hex}"
            );
        }
        let names: Vec<&str> = SERVER_VECTORS.iter().map(|v| v.0).collect();
        let all = "big5 dec8 cp850 hp8 koi8r latin1 latin2 swe7 ascii ujis sjis hebrew tis620 \
                   euckr koi8u gb2312 greek cp1250 gbk latin5 armscii8 utf8mb3 ucs2 cp866 keybcs2 \
                   macce macroman cp852 latin7 utf8mb4 cp1251 utf16 utf16le cp1256 cp1257 utf32 \
                   geostd8 cp932 eucjpms";
        for name in all.split_whitespace() {
            assert!(names.contains(&name), "no sample for {name}");
        }
    }

    #[test]
    fn follows_mariadb_where_whatwg_differs() {
        // Each pair as the server converts it (SELECT HEX(CONVERT(CONVERT(UNHEX(..) USING cs)
        // USING utf8mb4))).
        let same = [
            ("sjis", "815F", "\\"),
            ("latin5", "80", "\u{80}"),
            ("tis620", "80", "\u{80}"),
            ("swe7", "40", "É"),
            ("ujis", "8FA2AF", "˘"),
        ];
        for (name, hex, text) in same {
            assert_eq!(charset(name).decode(&unhex(hex)).ok().as_deref(), Some(text), "{name}");
        }
    }

    #[test]
    fn bytes_without_a_character_are_an_error_naming_them() {
        // The server shows these as `?` (gbk 80, cp1250 81) or U+FFFD (big5 A1C3).
        for (name, hex) in [("cp1250", "4181"), ("gbk", "4180"), ("big5", "41A1C3"), ("ascii", "41E9")] {
            let err = charset(name).decode(&unhex(hex));
            let text = err.as_ref().map_err(ToString::to_string).err().unwrap_or_default();
            assert!(text.contains("at offset 1") && text.contains(name), "{name}: {err:?}");
            assert!(err.as_ref().is_err_and(ValueError::is_undecodable_text));
        }
        let unknown = Collation::from_id(2000);
        assert!(!unknown.can_decode());
        let err = unknown.decode(b"a").map_err(|e| e.to_string());
        assert!(err.is_err_and(|e| e.contains("character set unknown is not supported")));
    }
}
