//! Exact column types compared: can a mirror column hold every value of the source's column type
//! (field parameter `cdc.column.type`), or can it be widened to it without losing a stored value?
//!
//! [`compare`] answers with a [`Fit`]:
//! - [`Fit::Holds`]: the mirror column holds every value of the record's type (equal, or wider:
//!   a column narrowed at the source still fits its wider mirror column, which is kept — the sink
//!   never narrows a column);
//! - [`Fit::Widen`]: the record's type holds every value of the mirror column and more
//!   (`VARCHAR(20)`→`VARCHAR(50)`, `CHAR`→wider `VARCHAR`, an integer to one whose range contains
//!   it, `DECIMAL(10,2)`→`DECIMAL(12,2)`, fsp up, `FLOAT`→`DOUBLE`, `TEXT`/`BLOB` up, an ENUM or
//!   SET gaining labels with the existing ones in their order): `auto.evolve` applies it with
//!   `ALTER TABLE … MODIFY`;
//! - [`Fit::Neither`]: a cross-family or mixed change (`INT`→`INT UNSIGNED`, `DECIMAL(10,2)`→
//!   `DECIMAL(10,4)`, a string into a number): values would be rounded, cut or refused, so records
//!   of that shape are refused naming both types.
//!
//! Types the parser does not know give `None`; the caller then keeps the family check of
//! [`crate::coltype`]. Character lengths are compared in bytes of utf8mb4 (4 per character), so
//! `VARCHAR(n)` and the `TEXT` types compare with each other.

use std::sync::LazyLock;

use regex::Regex;

/// What a mirror column is to a record's column type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fit {
    Holds,
    Widen,
    Neither,
}

/// A column type, reduced to what decides which values it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    /// Range of an integer as (min, max).
    Int(i128, i128),
    /// Integer digits, scale, unsigned.
    Decimal(u32, u32, bool),
    /// 4 (FLOAT) or 8 (DOUBLE) bytes.
    Float(u8),
    Bit(u32),
    /// DATETIME and TIMESTAMP (fsp), TIME (fsp).
    DateTime(u8),
    Time(u8),
    /// Fixed-length text (trailing spaces are not kept), and variable text with its capacity in
    /// bytes.
    Char(u64),
    Text(u64),
    /// Fixed-length binary (padded with zero bytes), and variable binary with its capacity.
    Binary(u64),
    Blob(u64),
    Enum(Vec<String>),
    Set(Vec<String>),
    /// Anything else (DATE, YEAR, JSON, geometry, UUID…): equal names only.
    Other(String),
}

static TYPE: LazyLock<Regex> = LazyLock::new(|| {
    #[allow(clippy::unwrap_used)] // a constant pattern, covered by the tests
    Regex::new(r"(?i)^\s*([a-z0-9_]+)\s*(?:\((.*)\))?\s*(.*?)\s*$").unwrap()
});

static LABEL: LazyLock<Regex> = LazyLock::new(|| {
    #[allow(clippy::unwrap_used)] // a constant pattern
    Regex::new(r"'((?:[^'\\]|''|\\.)*)'").unwrap()
});

fn parse(text: &str) -> Option<Kind> {
    let c = TYPE.captures(text)?;
    let base = c.get(1)?.as_str().to_ascii_lowercase();
    let args = c.get(2).map(|m| m.as_str()).unwrap_or("");
    let rest = c.get(3).map(|m| m.as_str().to_ascii_lowercase()).unwrap_or_default();
    let unsigned = rest.split_whitespace().any(|w| w == "unsigned");
    let enum_like = matches!(base.as_str(), "enum" | "set");
    let nums: Vec<u64> = if enum_like {
        Vec::new()
    } else {
        args.split(',')
            .filter(|s| !s.trim().is_empty())
            .map(|s| s.trim().parse().ok())
            .collect::<Option<_>>()?
    };
    let n = |default: u64| nums.first().copied().unwrap_or(default);
    let int = |bits: u32| {
        let bits = bits as i128;
        if unsigned {
            Kind::Int(0, (1i128 << bits) - 1)
        } else {
            Kind::Int(-(1i128 << (bits - 1)), (1i128 << (bits - 1)) - 1)
        }
    };
    // Labels unescaped: `''` (as the server writes them) and `\'` mean the same quote.
    let labels = || {
        LABEL
            .captures_iter(args)
            .map(|l| l[1].replace("''", "'").replace("\\'", "'").replace("\\\\", "\\"))
            .collect()
    };
    Some(match base.as_str() {
        "tinyint" | "bool" | "boolean" => int(8),
        "smallint" => int(16),
        "mediumint" => int(24),
        "int" | "integer" => int(32),
        "bigint" => int(64),
        "decimal" | "numeric" | "dec" | "fixed" => {
            let p = n(10) as u32;
            let s = nums.get(1).copied().unwrap_or(0) as u32;
            Kind::Decimal(p.checked_sub(s)?, s, unsigned)
        }
        "float" => Kind::Float(4),
        "double" | "real" => Kind::Float(8),
        "bit" => Kind::Bit(n(1) as u32),
        "datetime" | "timestamp" => Kind::DateTime(n(0) as u8),
        "time" => Kind::Time(n(0) as u8),
        "char" => Kind::Char(n(1) * 4),
        "varchar" => Kind::Text(n(1) * 4),
        "tinytext" => Kind::Text(255),
        "text" => Kind::Text(65_535),
        "mediumtext" => Kind::Text(16_777_215),
        "longtext" | "json" => Kind::Text(4_294_967_295),
        "binary" => Kind::Binary(n(1)),
        "varbinary" => Kind::Blob(n(1)),
        "tinyblob" => Kind::Blob(255),
        "blob" => Kind::Blob(65_535),
        "mediumblob" => Kind::Blob(16_777_215),
        "longblob" => Kind::Blob(4_294_967_295),
        "year" => Kind::Other("year".into()),
        "enum" => Kind::Enum(labels()),
        "set" => Kind::Set(labels()),
        other if nums.is_empty() => Kind::Other(other.to_string()),
        _ => return None,
    })
}

/// Whether every value of `b` is a value of `a`.
fn holds(a: &Kind, b: &Kind) -> bool {
    use Kind as K;
    match (a, b) {
        (K::Int(amin, amax), K::Int(bmin, bmax)) => amin <= bmin && bmax <= amax,
        (K::Decimal(ai, asc, au), K::Decimal(bi, bsc, bu)) => ai >= bi && asc >= bsc && (!au || *bu),
        (K::Float(a), K::Float(b)) => a >= b,
        (K::Bit(a), K::Bit(b)) => a >= b,
        (K::DateTime(a), K::DateTime(b)) | (K::Time(a), K::Time(b)) => a >= b,
        (K::Char(a), K::Char(b)) => a == b,
        (K::Text(a), K::Char(b) | K::Text(b)) => a >= b,
        (K::Binary(a), K::Binary(b)) => a == b,
        (K::Blob(a), K::Binary(b) | K::Blob(b)) => a >= b,
        (K::Enum(a), K::Enum(b)) | (K::Set(a), K::Set(b)) => is_subsequence(b, a),
        (K::Other(a), K::Other(b)) => a == b || a == "geometry",
        _ => false,
    }
}

/// Whether `small`'s items appear in `big` in the same order.
fn is_subsequence(small: &[String], big: &[String]) -> bool {
    let mut it = big.iter();
    small.iter().all(|s| it.any(|b| b == s))
}

/// How the mirror column `mirror` (`information_schema.COLUMNS.COLUMN_TYPE`) relates to the
/// record's column type `wanted`; `None` when either type is not understood here.
pub fn compare(mirror: &str, wanted: &str) -> Option<Fit> {
    let (m, w) = (parse(mirror)?, parse(wanted)?);
    Some(if holds(&m, &w) {
        Fit::Holds
    } else if holds(&w, &m) {
        Fit::Widen
    } else {
        Fit::Neither
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn widenings() {
        for (mirror, wanted) in [
            ("varchar(20)", "varchar(50)"),
            ("char(10)", "varchar(20)"),
            ("char(10)", "varchar(10)"),
            ("int(11)", "bigint"),
            ("tinyint(3) unsigned", "smallint"),
            ("smallint(6)", "int"),
            ("int unsigned", "bigint"),
            ("decimal(10,2)", "decimal(12,2)"),
            ("decimal(10,2)", "decimal(12,4)"),
            ("datetime", "datetime(6)"),
            ("time(1)", "time(3)"),
            ("timestamp", "timestamp(3)"),
            ("float", "double"),
            ("text", "mediumtext"),
            ("text", "longtext"),
            ("varchar(20)", "text"),
            ("blob", "longblob"),
            ("varbinary(10)", "blob"),
            ("bit(3)", "bit(8)"),
            ("enum('a','b')", "enum('a','b','c')"),
            ("enum('a','b')", "enum('x','a','b')"),
            ("set('a','b')", "set('a','b','c')"),
        ] {
            assert_eq!(compare(mirror, wanted), Some(Fit::Widen), "{mirror} -> {wanted}");
            assert_eq!(compare(wanted, mirror), Some(Fit::Holds), "{wanted} holds {mirror}");
        }
    }

    #[test]
    fn equal_types_hold() {
        for t in ["int(11)", "varchar(20)", "enum('a','b''c')", "json", "date", "geometry", "decimal(65,30)"] {
            assert_eq!(compare(t, t), Some(Fit::Holds), "{t}");
        }
        assert_eq!(compare("int(11)", "int"), Some(Fit::Holds));
        assert_eq!(compare("varchar(20)", "varchar(20) character set latin1"), Some(Fit::Holds));
        assert_eq!(compare("tinyint(1)", "bool"), Some(Fit::Holds));
        assert_eq!(compare("longtext", "json"), Some(Fit::Holds));
        assert_eq!(compare("enum('a','b''c','d,e')", "enum('a','b\\'c','d,e')"), Some(Fit::Holds));
        assert_eq!(compare("year(4)", "year"), Some(Fit::Holds));
    }

    #[test]
    fn neither() {
        for (mirror, wanted) in [
            ("int(11)", "int unsigned"),
            ("decimal(10,2)", "decimal(10,4)"),
            ("varchar(20)", "int"),
            ("int", "varchar(20)"),
            ("enum('a','b')", "enum('b','a','c')"),
            ("enum('a','b')", "enum('a','c')"),
            ("double", "decimal(10,2)"),
            ("date", "datetime"),
            ("binary(4)", "binary(8)"),
        ] {
            assert_eq!(compare(mirror, wanted), Some(Fit::Neither), "{mirror} -> {wanted}");
        }
    }

    #[test]
    fn unknown_text_is_none() {
        assert_eq!(compare("varchar(x)", "varchar(20)"), None);
        assert_eq!(compare("int", "decimal(2,5)"), None);
    }
}
