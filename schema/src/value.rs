//! The lossless in-memory value of one column in one row.
//!
//! | MariaDB type | [`Value`] |
//! |---|---|
//! | TINYINT … BIGINT (signed), TINYINT … INT UNSIGNED, YEAR | `Int` |
//! | BIGINT UNSIGNED | `Decimal` with scale 0 (never wraps) |
//! | DECIMAL(p,s) | `Decimal` with scale `s` (all 65 digits) |
//! | FLOAT / DOUBLE | `Float` / `Double` |
//! | BIT(1) | `Bool` |
//! | BIT(n>1) | `Bytes`, big-endian, `ceil(n/8)` bytes |
//! | DATE | `Date` (zero dates kept) |
//! | TIME(fsp) | `Time`: signed microseconds (negative and > 24 h kept) |
//! | DATETIME(fsp) | `DateTime`: wall clock, no zone (zero dates kept) |
//! | TIMESTAMP(fsp) | `Timestamp`: microseconds since the Unix epoch, UTC; `0` is the zero timestamp |
//! | CHAR/VARCHAR/TEXT | `String`, decoded by the column's collation |
//! | ENUM | `String`: the label (`""` for the invalid-value index 0) |
//! | SET | `String`: the labels in declaration order joined by `,` (as MariaDB prints it) |
//! | JSON | `String`: the JSON text |
//! | BINARY/VARBINARY/BLOB | `Bytes` |
//! | GEOMETRY | `Bytes`: MariaDB's internal form, 4-byte little-endian SRID then WKB |
//! | UUID / INET6 / INET4 | `Bytes`: 16 / 16 / 4 bytes, the form `CAST(col AS BINARY(n))` gives |
//!
//! Values decoded from a message follow the field type (see `connect.rs`): Debezium's and
//! Connect's Date become `Date`, MicroTime and Connect `Time` become `Time`, Debezium's Timestamp
//! and MicroTimestamp become `DateTime`, ZonedTimestamp becomes `Timestamp`. Connect `Timestamp`
//! becomes `DateTime` when its column type is `datetime(…)` (the `connect` mode's DATETIME),
//! else `Timestamp`.

use crate::decimal::Decimal;
use crate::temporal::{Date, DateTime};

/// One column value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// SQL NULL.
    Null,
    /// BIT(1), Connect `boolean`.
    Bool(bool),
    /// Any integer that fits `i64` (every integer type but BIGINT UNSIGNED), YEAR.
    Int(i64),
    /// FLOAT.
    Float(f32),
    /// DOUBLE.
    Double(f64),
    /// DECIMAL and BIGINT UNSIGNED.
    Decimal(Decimal),
    /// DATE.
    Date(Date),
    /// TIME as signed microseconds.
    Time(i64),
    /// DATETIME (zone-less).
    DateTime(DateTime),
    /// TIMESTAMP as microseconds since 1970-01-01 00:00:00 UTC.
    Timestamp(i64),
    /// Character data, ENUM/SET labels, JSON text.
    String(String),
    /// Binary data, BIT(n>1), GEOMETRY, UUID/INET.
    Bytes(Vec<u8>),
}

impl Value {
    /// Whether this is SQL NULL.
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// A short name of the variant, for error messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "boolean",
            Value::Int(_) => "integer",
            Value::Float(_) => "float",
            Value::Double(_) => "double",
            Value::Decimal(_) => "decimal",
            Value::Date(_) => "date",
            Value::Time(_) => "time",
            Value::DateTime(_) => "datetime",
            Value::Timestamp(_) => "timestamp",
            Value::String(_) => "string",
            Value::Bytes(_) => "bytes",
        }
    }
}

/// Formats TIME microseconds as MariaDB prints them, e.g. `-838:59:59.000000`.
pub fn format_time(micros: i64) -> String {
    let sign = if micros < 0 { "-" } else { "" };
    let m = micros.unsigned_abs();
    let secs = m / 1_000_000;
    format!(
        "{sign}{:02}:{:02}:{:02}.{:06}",
        secs / 3600,
        secs / 60 % 60,
        secs % 60,
        m % 1_000_000
    )
}

/// Parses TIME text as MariaDB prints it (`-838:59:59.999999`, `12:00:00`; 1..=6 fraction
/// digits) into signed microseconds.
pub fn parse_time(text: &str) -> Option<i64> {
    let (negative, body) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (hms, frac) = match body.split_once('.') {
        Some((hms, f)) => (hms, Some(f)),
        None => (body, None),
    };
    let mut parts = hms.split(':');
    let mut num = |max_len: usize| -> Option<i64> {
        let p = parts.next()?;
        (!p.is_empty() && p.len() <= max_len && p.bytes().all(|b| b.is_ascii_digit())).then_some(())?;
        p.parse().ok()
    };
    let (h, m, s) = (num(3)?, num(2)?, num(2)?);
    if parts.next().is_some() || m > 59 || s > 59 {
        return None;
    }
    let micros = match frac {
        None => 0,
        Some(f) if !f.is_empty() && f.len() <= 6 && f.bytes().all(|b| b.is_ascii_digit()) => {
            f.parse::<i64>().ok()? * 10i64.pow(6 - f.len() as u32)
        }
        Some(_) => return None,
    };
    let total = (h * 3600 + m * 60 + s) * 1_000_000 + micros;
    Some(if negative { -total } else { total })
}

/// TIME microseconds as MariaDB prints them, the fraction only when it is not zero
/// (`-00:00:00.000001`, `838:59:59`).
pub fn format_time_short(micros: i64) -> String {
    let text = format_time(micros);
    if micros % 1_000_000 == 0 {
        text[..text.len() - 7].to_string()
    } else {
        text
    }
}
