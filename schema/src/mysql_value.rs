//! [`Value`] from what mysql_common hands over: binlog row values and snapshot `SELECT` values.
//!
//! Both paths meet in one conversion per column type; they differ only where the wire forms
//! differ: the binlog gives ENUM as an index and SET as a bitmask (a `SELECT` gives labels),
//! TIMESTAMP as `"epoch[.usec]"` text (a `SELECT` through [`TableSchema::select_list`] gives the
//! same via `UNIX_TIMESTAMP`), YEAR 0 as `1900`, BINARY(n) without its trailing zero bytes, and
//! MySQL's JSON as binary JSONB.

use mysql_common::binlog::row::BinlogRow;
use mysql_common::binlog::value::BinlogValue;
use mysql_common::value::Value as My;

use crate::collation::Collation;
use crate::column::{Column, ColumnType, IntWidth, TableSchema};
use crate::decimal::Decimal;
use crate::error::ValueError;
use crate::temporal::{Date, DateTime};
use crate::value::Value;

/// Where a value comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Origin {
    Binlog,
    Snapshot,
}

fn text(v: &My) -> Result<String, ValueError> {
    match v {
        My::Bytes(b) => String::from_utf8(b.clone()).map_err(|_| ValueError::InvalidText {
            charset: "utf8".into(),
        }),
        My::Int(i) => Ok(i.to_string()),
        My::UInt(u) => Ok(u.to_string()),
        My::Float(f) => Ok(f.to_string()),
        My::Double(d) => Ok(d.to_string()),
        other => Err(ValueError::mismatch("text or number", format!("{other:?}"))),
    }
}

fn integer(v: &My) -> Result<i128, ValueError> {
    match v {
        My::Int(i) => Ok(i128::from(*i)),
        My::UInt(u) => Ok(i128::from(*u)),
        _ => {
            let t = text(v)?;
            t.trim()
                .parse()
                .map_err(|_| ValueError::mismatch("an integer", t))
        }
    }
}

/// The bytes of a BYTES value, borrowed: text is decoded straight from them (one copy, into
/// the `String`).
fn raw(v: &My) -> Result<&[u8], ValueError> {
    match v {
        My::Bytes(b) => Ok(b),
        other => Err(ValueError::mismatch("bytes", format!("{other:?}"))),
    }
}

fn bytes(v: &My) -> Result<Vec<u8>, ValueError> {
    raw(v).map(<[u8]>::to_vec)
}

fn parse_num<T: std::str::FromStr>(t: &str, kind: &str) -> Result<T, ValueError> {
    t.trim()
        .parse()
        .map_err(|_| ValueError::mismatch(kind.to_string(), t.to_string()))
}

fn bad(text: &str, kind: &'static str) -> ValueError {
    ValueError::BadTemporal {
        text: text.to_string(),
        kind,
    }
}

/// `YYYY-MM-DD[ hh:mm:ss[.ffffff]]` as MariaDB prints DATE and DATETIME.
fn parse_datetime(t: &str) -> Result<DateTime, ValueError> {
    let (date, time) = t.trim().split_once(' ').unwrap_or((t.trim(), "00:00:00"));
    let mut d = date.split('-').map(|p| p.parse::<u32>().ok());
    let (Some(Some(y)), Some(Some(m)), Some(Some(day))) = (d.next(), d.next(), d.next()) else {
        return Err(bad(t, "date"));
    };
    let micros = parse_time(time).map_err(|_| bad(t, "datetime"))?;
    let secs = micros / 1_000_000;
    let narrow = |v: i64| u8::try_from(v).map_err(|_| bad(t, "datetime"));
    Ok(DateTime {
        date: Date {
            year: u16::try_from(y).map_err(|_| bad(t, "date"))?,
            month: u8::try_from(m).map_err(|_| bad(t, "date"))?,
            day: u8::try_from(day).map_err(|_| bad(t, "date"))?,
        },
        hour: narrow(secs / 3600)?,
        minute: narrow(secs / 60 % 60)?,
        second: narrow(secs % 60)?,
        micros: u32::try_from(micros % 1_000_000).map_err(|_| bad(t, "datetime"))?,
    })
}

/// `[-]hhh:mm:ss[.ffffff]` → signed microseconds.
fn parse_time(t: &str) -> Result<i64, ValueError> {
    let t = t.trim();
    let (neg, rest) = t.strip_prefix('-').map_or((false, t), |r| (true, r));
    let (hms, frac) = rest.split_once('.').unwrap_or((rest, ""));
    let parts: Vec<i64> = hms
        .split(':')
        .map(|p| p.parse::<i64>().map_err(|_| bad(t, "time")))
        .collect::<Result<_, _>>()?;
    let [h, m, s] = parts[..] else {
        return Err(bad(t, "time"));
    };
    let frac = format!("{frac:0<6}");
    let us: i64 = frac
        .get(..6)
        .unwrap_or("0")
        .parse()
        .map_err(|_| bad(t, "time"))?;
    let total = ((h * 60 + m) * 60 + s) * 1_000_000 + us;
    Ok(if neg { -total } else { total })
}

/// `epoch[.fraction]` → microseconds since the epoch.
fn parse_epoch(t: &str) -> Result<i64, ValueError> {
    let (secs, frac) = t.trim().split_once('.').unwrap_or((t.trim(), ""));
    let secs: i64 = secs.parse().map_err(|_| bad(t, "timestamp"))?;
    let frac = format!("{frac:0<6}");
    let us: i64 = frac
        .get(..6)
        .unwrap_or("0")
        .parse()
        .map_err(|_| bad(t, "timestamp"))?;
    Ok(secs * 1_000_000 + us)
}

pub(crate) fn datetime_of(v: &My) -> Result<DateTime, ValueError> {
    match v {
        My::Date(y, m, d, h, mi, s, us) => Ok(DateTime {
            date: Date {
                year: *y,
                month: *m,
                day: *d,
            },
            hour: *h,
            minute: *mi,
            second: *s,
            micros: *us,
        }),
        _ => parse_datetime(&text(v)?),
    }
}

pub(crate) fn time_of(v: &My) -> Result<i64, ValueError> {
    match v {
        My::Time(neg, days, h, m, s, us) => {
            let secs =
                ((i64::from(*days) * 24 + i64::from(*h)) * 60 + i64::from(*m)) * 60 + i64::from(*s);
            let total = secs * 1_000_000 + i64::from(*us);
            Ok(if *neg { -total } else { total })
        }
        _ => parse_time(&text(v)?),
    }
}

/// The binlog carries text in the column's character set; a `SELECT` result arrives converted to
/// the connection's `character_set_results`, utf8mb4 with mysql_async.
fn decode_text(collation: Collation, raw: &[u8], origin: Origin) -> Result<String, ValueError> {
    match origin {
        Origin::Binlog => collation.decode(raw),
        Origin::Snapshot => Collation::UTF8MB4_GENERAL_CI.decode(raw),
    }
}

/// BIT(bits) from its big-endian bytes: `Bool` for BIT(1), else exactly `bits`/8 bytes.
pub(crate) fn bit_value(bits: u8, raw: &[u8]) -> Value {
    let width = usize::from(bits).div_ceil(8);
    let mut out = vec![0u8; width.saturating_sub(raw.len())];
    out.extend_from_slice(&raw[raw.len().saturating_sub(width)..]);
    if bits == 1 {
        Value::Bool(out.iter().any(|b| *b != 0))
    } else {
        Value::Bytes(out)
    }
}

/// BINARY(length): the binlog drops trailing zero bytes; they are put back.
pub(crate) fn binary_value(length: u32, raw: &[u8]) -> Value {
    let length = usize::try_from(length).unwrap_or(usize::MAX);
    let mut b = Vec::with_capacity(length.max(raw.len()));
    b.extend_from_slice(raw);
    if b.len() < length {
        b.resize(length, 0);
    }
    Value::Bytes(b)
}

/// ENUM by index: 0 is the empty string of an invalid value, 1 the first label.
pub(crate) fn enum_value(labels: &[String], index: usize) -> Result<Value, ValueError> {
    Ok(Value::String(match index {
        0 => String::new(),
        i => label(labels, i - 1)?,
    }))
}

/// A CHAR value as MariaDB returns it: without trailing spaces (truncated in place).
pub(crate) fn trim_char(mut s: String) -> String {
    s.truncate(s.trim_end_matches(' ').len());
    s
}

pub(crate) fn label(labels: &[String], index: usize) -> Result<String, ValueError> {
    labels
        .get(index)
        .cloned()
        .ok_or_else(|| ValueError::NoLabel {
            what: format!("value number {}", index + 1),
        })
}

pub(crate) fn set_labels(labels: &[String], bitmask: &[u8]) -> Result<String, ValueError> {
    let mut out = Vec::new();
    for (byte_idx, byte) in bitmask.iter().enumerate() {
        for bit in 0..8 {
            if byte & (1 << bit) != 0 {
                out.push(label(labels, byte_idx * 8 + bit)?);
            }
        }
    }
    Ok(out.join(","))
}

fn convert(column: &ColumnType, v: &My, origin: Origin) -> Result<Value, ValueError> {
    if matches!(v, My::NULL) {
        return Ok(Value::Null);
    }
    Ok(match column {
        ColumnType::Integer {
            width: IntWidth::Big,
            unsigned: true,
        } => Value::Decimal(Decimal::from_u64(u64::try_from(integer(v)?).map_err(
            |_| ValueError::OutOfRange {
                value: format!("{v:?}"),
                target: "bigint unsigned".into(),
            },
        )?)),
        ColumnType::Integer { width, unsigned } => {
            let (min, max) = width.range(*unsigned);
            let mut i = integer(v)?;
            // mysql_common sign-extends MEDIUMINT -8388608 wrongly; the raw bits are right.
            if origin == Origin::Binlog && !*unsigned && i > max && i <= 2 * max + 1 {
                i -= 2 * (max + 1);
            }
            if i < min || i > max {
                return Err(ValueError::OutOfRange {
                    value: i.to_string(),
                    target: column.sql(),
                });
            }
            Value::Int(i64::try_from(i).unwrap_or_default())
        }
        ColumnType::Year => match integer(v)? {
            1900 => Value::Int(0),
            y => Value::Int(i64::try_from(y).unwrap_or(0)),
        },
        ColumnType::Decimal { scale, .. } => {
            let d = Decimal::parse(&text(v)?)?;
            let rescaled = d.rescale(u32::from(*scale));
            Value::Decimal(rescaled.ok_or_else(|| ValueError::BadDecimal {
                text: d.to_string(),
            })?)
        }
        ColumnType::Float => match v {
            My::Float(f) => Value::Float(*f),
            _ => Value::Float(parse_num(&text(v)?, "a float")?),
        },
        ColumnType::Double => match v {
            My::Double(d) => Value::Double(*d),
            _ => Value::Double(parse_num(&text(v)?, "a double")?),
        },
        ColumnType::Bit { bits } => bit_value(*bits, raw(v)?),
        ColumnType::Date => Value::Date(datetime_of(v)?.date),
        ColumnType::Time { .. } => Value::Time(time_of(v)?),
        ColumnType::DateTime { .. } => Value::DateTime(datetime_of(v)?),
        ColumnType::Timestamp { .. } => match v {
            My::Int(secs) => Value::Timestamp(secs * 1_000_000),
            My::Bytes(_) => Value::Timestamp(parse_epoch(&text(v)?)?),
            other => {
                return Err(ValueError::mismatch(
                    "epoch seconds (select TIMESTAMP columns with TableSchema::select_list)",
                    format!("{other:?}"),
                ))
            }
        },
        ColumnType::Char { collation, .. } => {
            Value::String(trim_char(decode_text(*collation, raw(v)?, origin)?))
        }
        ColumnType::VarChar { collation, .. } | ColumnType::Text { collation, .. } => {
            Value::String(decode_text(*collation, raw(v)?, origin)?)
        }
        ColumnType::Binary { length } => binary_value(*length, raw(v)?),
        ColumnType::VarBinary { .. } | ColumnType::Blob { .. } | ColumnType::Geometry => {
            Value::Bytes(bytes(v)?)
        }
        ColumnType::Enum { labels } => match (origin, v) {
            (Origin::Binlog, _) | (_, My::Int(_) | My::UInt(_)) => {
                enum_value(labels, usize::try_from(integer(v)?).unwrap_or(usize::MAX))?
            }
            _ => Value::String(text(v)?),
        },
        ColumnType::Set { labels } => match origin {
            Origin::Binlog => Value::String(set_labels(labels, raw(v)?)?),
            Origin::Snapshot => Value::String(text(v)?),
        },
        ColumnType::Json => Value::String(text(v)?),
    })
}

/// Converts one binlog value of a column of type `column` (no column name attached).
pub(crate) fn binlog_value(column: &ColumnType, value: &BinlogValue<'_>) -> Result<Value, ValueError> {
    match value {
        BinlogValue::Value(v) => convert(column, v, Origin::Binlog),
        BinlogValue::Jsonb(j) => serde_json::Value::try_from(j.clone())
            .map(|json| Value::String(json.to_string()))
            .map_err(|e| ValueError::Json(e.to_string())),
        BinlogValue::JsonDiff(_) => Err(ValueError::Json(
            "partial JSON update; set binlog_row_value_options='' on the server".into(),
        )),
    }
}

/// Converts a scalar binlog value of a column of type `column` (no column name attached).
pub(crate) fn convert_binlog(column: &ColumnType, v: &My) -> Result<Value, ValueError> {
    convert(column, v, Origin::Binlog)
}

impl Value {
    /// Converts one binlog row value of `column`.
    pub fn from_binlog(column: &Column, value: &BinlogValue<'_>) -> Result<Value, ValueError> {
        binlog_value(&column.column_type, value).map_err(|e| e.in_column(&column.name))
    }

    /// Converts one value of `column` read by a snapshot `SELECT` (text or binary protocol) that
    /// used [`TableSchema::select_list`].
    pub fn from_snapshot(column: &Column, value: &My) -> Result<Value, ValueError> {
        convert(&column.column_type, value, Origin::Snapshot).map_err(|e| e.in_column(&column.name))
    }
}

/// Converts a whole binlog row (all columns, FULL row image) of `table`.
pub fn row_from_binlog(table: &TableSchema, row: &BinlogRow) -> Result<Vec<Value>, ValueError> {
    table
        .columns
        .iter()
        .enumerate()
        .map(|(i, column)| match row.as_ref(i) {
            Some(v) => Value::from_binlog(column, v),
            None => Err(
                ValueError::mismatch("a value (binlog_row_image=FULL)", "none")
                    .in_column(&column.name),
            ),
        })
        .collect()
}

/// Converts a whole snapshot row selected with [`TableSchema::select_list`].
pub fn row_from_snapshot(
    table: &TableSchema,
    row: &mysql_common::row::Row,
) -> Result<Vec<Value>, ValueError> {
    table
        .columns
        .iter()
        .enumerate()
        .map(|(i, column)| match row.as_ref(i) {
            Some(v) => Value::from_snapshot(column, v),
            None => Err(ValueError::mismatch("a value", "none").in_column(&column.name)),
        })
        .collect()
}
