//! Rows events (WRITE/UPDATE/DELETE, v1 and v2) decoded straight into [`Value`]s.
//!
//! [`RowsDecoder::new`] reads, once per event, how each column is laid out in a row image (the
//! type byte and type metadata of the table map) next to what the [`TableSchema`] built from
//! the same table map says about it (signedness, collation, ENUM/SET labels). Each row is then
//! read from the event's bytes with no per-row setup: text is decoded by its collation straight
//! from the event buffer, numbers and temporals are read in place. The UPDATE before-image is
//! only walked over (not decoded) unless the caller asks for it.
//!
//! **Guarantee:** for every row, the values equal what mysql_common's `RowsEvent::rows` followed
//! by [`row_from_binlog`](crate::row_from_binlog) gives (property-tested below for every column
//! type, and against real MariaDB events in `tests/tests/schema_binlog.rs`); the conversions
//! themselves are shared with that path (`mysql_value.rs`). Errors differ only in wording for
//! malformed events; undecodable text is the same [`ValueError`] (see
//! [`ValueError::is_undecodable_text`]).
//!
//! A row image must carry every column (`binlog_row_image=FULL`); a missing column is an error
//! naming it and the setting.

use mysql_common::binlog::events::{RowsEventData, TableMapEvent};
use mysql_common::binlog::misc::{
    datetime_from_packed, my_datetime_packed_from_binary, my_time_packed_from_binary,
    my_timestamp_from_binary, time_from_packed,
};
use mysql_common::binlog::value::BinlogValue;
use mysql_common::constants::ColumnType as Raw;
use mysql_common::io::ParseBuf;
use mysql_common::proto::MyDeserialize;
use mysql_common::value::Value as My;
use num_bigint::BigInt;

use crate::column::{ColumnType, TableSchema};
use crate::decimal::Decimal;
use crate::error::ValueError;
use crate::mysql_value::{
    binary_value, binlog_value, bit_value, convert_binlog, enum_value, set_labels, trim_char,
};
use crate::value::Value;

/// How one column's value is laid out in a row image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wire {
    /// Little-endian integer of `bytes` bytes (1, 2, 3, 4 or 8).
    Int { bytes: u8, unsigned: bool },
    Float,
    Double,
    /// MySQL's binary DECIMAL.
    Decimal { precision: u8, scale: u8 },
    Year,
    /// 3 bytes `yyyy…ymmmmddddd`.
    Date,
    /// Old TIME: 3 bytes `hhmmss` as a number.
    Time,
    Time2 { fsp: u8 },
    /// Old DATETIME: 8 bytes `YYYYMMDDhhmmss` as a number.
    DateTime,
    DateTime2 { fsp: u8 },
    /// Old TIMESTAMP: 4 bytes of epoch seconds.
    Timestamp,
    Timestamp2 { fsp: u8 },
    Bit { bytes: u8 },
    /// ENUM index in 1 or 2 bytes.
    Enum { bytes: u8 },
    /// SET bitmask of `bytes` bytes.
    Set { bytes: u8 },
    /// A length of `prefix` bytes (little-endian), then that many bytes: CHAR, VARCHAR,
    /// BINARY, VARBINARY, BLOB, TEXT, GEOMETRY.
    Prefixed { prefix: u8 },
    /// MySQL's JSONB behind a 4-byte length.
    Json,
}

fn malformed(what: impl Into<String>) -> ValueError {
    ValueError::mismatch("a well-formed rows event", what)
}

fn truncated() -> ValueError {
    malformed("an event that ends in the middle of a row")
}

fn wire(raw: Raw, meta: &[u8], column: &ColumnType) -> Result<Wire, ValueError> {
    let byte = |i: usize| meta.get(i).copied().unwrap_or(0);
    let unsigned = matches!(column, ColumnType::Integer { unsigned: true, .. });
    let int = |bytes| Wire::Int { bytes, unsigned };
    Ok(match raw {
        Raw::MYSQL_TYPE_TINY => int(1),
        Raw::MYSQL_TYPE_SHORT => int(2),
        Raw::MYSQL_TYPE_INT24 => int(3),
        Raw::MYSQL_TYPE_LONG => int(4),
        Raw::MYSQL_TYPE_LONGLONG => int(8),
        Raw::MYSQL_TYPE_FLOAT => Wire::Float,
        Raw::MYSQL_TYPE_DOUBLE => Wire::Double,
        Raw::MYSQL_TYPE_NEWDECIMAL => Wire::Decimal {
            precision: byte(0),
            scale: byte(1),
        },
        Raw::MYSQL_TYPE_YEAR => Wire::Year,
        Raw::MYSQL_TYPE_NEWDATE => Wire::Date,
        Raw::MYSQL_TYPE_TIME => Wire::Time,
        Raw::MYSQL_TYPE_TIME2 => Wire::Time2 { fsp: byte(0) },
        Raw::MYSQL_TYPE_DATETIME => Wire::DateTime,
        Raw::MYSQL_TYPE_DATETIME2 => Wire::DateTime2 { fsp: byte(0) },
        Raw::MYSQL_TYPE_TIMESTAMP => Wire::Timestamp,
        Raw::MYSQL_TYPE_TIMESTAMP2 => Wire::Timestamp2 { fsp: byte(0) },
        Raw::MYSQL_TYPE_BIT => {
            let bits = usize::from(byte(1)) * 8 + usize::from(byte(0));
            Wire::Bit {
                bytes: u8::try_from(bits.div_ceil(8)).map_err(|_| malformed("a BIT wider than 64"))?,
            }
        }
        Raw::MYSQL_TYPE_ENUM => match byte(1) {
            bytes @ (1 | 2) => Wire::Enum { bytes },
            other => return Err(malformed(format!("an ENUM of {other} bytes"))),
        },
        Raw::MYSQL_TYPE_SET => Wire::Set { bytes: byte(1) },
        Raw::MYSQL_TYPE_TINY_BLOB
        | Raw::MYSQL_TYPE_MEDIUM_BLOB
        | Raw::MYSQL_TYPE_LONG_BLOB
        | Raw::MYSQL_TYPE_BLOB
        | Raw::MYSQL_TYPE_GEOMETRY => match byte(0) {
            prefix @ 1..=4 => Wire::Prefixed { prefix },
            other => return Err(malformed(format!("a BLOB length of {other} bytes"))),
        },
        Raw::MYSQL_TYPE_VARCHAR | Raw::MYSQL_TYPE_VAR_STRING => {
            let max = u16::from_le_bytes([byte(0), byte(1)]);
            Wire::Prefixed {
                prefix: if max < 256 { 1 } else { 2 },
            }
        }
        Raw::MYSQL_TYPE_STRING => {
            let length = if byte(0) >= 1 {
                let (b0, b1) = (usize::from(byte(0)), usize::from(byte(1)));
                if b0 & 0x30 != 0x30 {
                    b1 | (((b0 & 0x30) ^ 0x30) << 4)
                } else {
                    b1
                }
            } else {
                usize::from(u16::from_le_bytes([byte(0), byte(1)]))
            };
            Wire::Prefixed {
                prefix: if length < 256 { 1 } else { 2 },
            }
        }
        Raw::MYSQL_TYPE_JSON => Wire::Json,
        other => return Err(malformed(format!("a column of type {other:?}"))),
    })
}

/// The bytes of a row image still to read.
struct Cursor<'a> {
    data: &'a [u8],
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], ValueError> {
        if n > self.data.len() {
            return Err(truncated());
        }
        let (head, rest) = self.data.split_at(n);
        self.data = rest;
        Ok(head)
    }

    fn uint(&mut self, n: usize) -> Result<u64, ValueError> {
        Ok(self
            .take(n)?
            .iter()
            .rev()
            .fold(0u64, |acc, b| acc << 8 | u64::from(*b)))
    }

    /// Runs one of mysql_common's `io::Read` parsers on the bytes, advancing past what it read.
    fn read<T>(&mut self, parse: impl FnOnce(&mut &'a [u8]) -> std::io::Result<T>) -> Result<T, ValueError> {
        parse(&mut self.data).map_err(|_| truncated())
    }
}

/// How many bytes the value of `wire` takes at the start of `cursor` (for image skipping).
fn skip(wire: Wire, cursor: &mut Cursor<'_>) -> Result<(), ValueError> {
    let n = match wire {
        Wire::Int { bytes, .. } | Wire::Bit { bytes } | Wire::Enum { bytes } | Wire::Set { bytes } => {
            usize::from(bytes)
        }
        Wire::Float | Wire::Timestamp => 4,
        Wire::Double | Wire::DateTime => 8,
        Wire::Year => 1,
        Wire::Date | Wire::Time => 3,
        Wire::Time2 { fsp } => 3 + fsp_bytes(fsp),
        Wire::DateTime2 { fsp } => 5 + fsp_bytes(fsp),
        Wire::Timestamp2 { fsp } => 4 + fsp_bytes(fsp),
        Wire::Decimal { precision, scale } => decimal_size(precision, scale)?,
        Wire::Prefixed { prefix } => usize::try_from(cursor.uint(usize::from(prefix))?).unwrap_or(usize::MAX),
        Wire::Json => usize::try_from(cursor.uint(4)?).unwrap_or(usize::MAX),
    };
    cursor.take(n).map(|_| ())
}

fn fsp_bytes(fsp: u8) -> usize {
    match fsp {
        1 | 2 => 1,
        3 | 4 => 2,
        5 | 6 => 3,
        _ => 0,
    }
}

/// Bytes of a group of `digits` (< 9) decimal digits.
const DIGIT_BYTES: [usize; 10] = [0, 1, 1, 2, 2, 3, 3, 4, 4, 4];

fn decimal_size(precision: u8, scale: u8) -> Result<usize, ValueError> {
    let intg = usize::from(precision)
        .checked_sub(usize::from(scale))
        .ok_or_else(|| malformed(format!("DECIMAL({precision},{scale})")))?;
    let frac = usize::from(scale);
    Ok(intg / 9 * 4 + DIGIT_BYTES[intg % 9] + frac / 9 * 4 + DIGIT_BYTES[frac % 9])
}

/// MySQL's binary DECIMAL: the sign in the top bit (flipped), negative numbers with every byte
/// inverted, then groups of 9 digits in 4 big-endian bytes, the leading and trailing partial
/// groups in fewer bytes.
fn decimal(raw: &[u8], precision: u8, scale: u8) -> Decimal {
    let negative = raw.first().is_some_and(|b| b & 0x80 == 0);
    let mask = if negative { 0xFF } else { 0 };
    let intg = usize::from(precision - scale);
    let frac = usize::from(scale);
    let mut groups: Vec<(usize, usize)> = Vec::with_capacity(8);
    if intg % 9 > 0 {
        groups.push((intg % 9, DIGIT_BYTES[intg % 9]));
    }
    groups.extend(std::iter::repeat_n((9, 4), intg / 9 + frac / 9));
    if frac % 9 > 0 {
        groups.push((frac % 9, DIGIT_BYTES[frac % 9]));
    }
    let mut at = 0;
    let mut group = |bytes: usize| {
        let value = raw[at..at + bytes].iter().enumerate().fold(0u64, |acc, (i, b)| {
            let b = if at + i == 0 { b ^ 0x80 } else { *b };
            acc << 8 | u64::from(b ^ mask)
        });
        at += bytes;
        value
    };
    let unscaled = if precision <= 38 {
        let mut v: i128 = 0;
        for (digits, bytes) in &groups {
            v = v * 10i128.pow(u32::try_from(*digits).unwrap_or(0)) + i128::from(group(*bytes));
        }
        BigInt::from(if negative { -v } else { v })
    } else {
        let mut v = BigInt::from(0);
        for (digits, bytes) in &groups {
            v = v * BigInt::from(10u64.pow(u32::try_from(*digits).unwrap_or(0))) + group(*bytes);
        }
        if negative {
            -v
        } else {
            v
        }
    };
    Decimal::new(unscaled, u32::from(scale))
}

/// TIME(fsp) in MySQL's packed form. TIME(1) and TIME(2) are read here: mysql_common's
/// `my_time_packed_from_binary` computes a negative time's fraction in a `u32`, which
/// overflows (a panic in debug builds, a wrong value in release ones).
fn time2_packed(cursor: &mut Cursor<'_>, fsp: u8) -> Result<i64, ValueError> {
    if !matches!(fsp, 1 | 2) {
        return cursor.read(|r| my_time_packed_from_binary(r, u32::from(fsp)));
    }
    let b = cursor.take(4)?;
    let mut int = i64::from(u32::from_be_bytes([0, b[0], b[1], b[2]])) - 0x80_0000;
    let mut frac = i64::from(b[3]);
    if int < 0 && frac > 0 {
        int += 1;
        frac -= 0x100;
    }
    Ok((int << 24) + frac * 10_000)
}

/// Reads one non-null value of `column`.
fn value(wire: Wire, column: &ColumnType, cursor: &mut Cursor<'_>) -> Result<Value, ValueError> {
    let scalar = |v: My| convert_binlog(column, &v);
    match wire {
        Wire::Int { bytes, unsigned } => {
            let n = usize::from(bytes);
            let u = cursor.uint(n)?;
            let v = if unsigned {
                if n == 8 {
                    My::UInt(u)
                } else {
                    My::Int(u as i64)
                }
            } else {
                let shift = 64 - 8 * n as u32;
                My::Int(((u << shift) as i64) >> shift)
            };
            scalar(v)
        }
        Wire::Float => {
            let b = cursor.take(4)?;
            scalar(My::Float(f32::from_le_bytes([b[0], b[1], b[2], b[3]])))
        }
        Wire::Double => scalar(My::Double(f64::from_bits(cursor.uint(8)?))),
        Wire::Decimal { precision, scale } => {
            let raw = cursor.take(decimal_size(precision, scale)?)?;
            Ok(Value::Decimal(decimal(raw, precision, scale)))
        }
        Wire::Year => match cursor.uint(1)? {
            0 => Ok(Value::Int(0)),
            y => Ok(Value::Int(1900 + y as i64)),
        },
        Wire::Date => {
            let t = cursor.uint(3)?;
            scalar(My::Date((t >> 9) as u16, ((t >> 5) & 15) as u8, (t & 31) as u8, 0, 0, 0, 0))
        }
        Wire::Time => {
            let t = cursor.uint(3)?;
            scalar(My::Time(false, 0, (t / 10000) as u8, (t % 10000 / 100) as u8, (t % 100) as u8, 0))
        }
        Wire::Time2 { fsp } => scalar(time_from_packed(time2_packed(cursor, fsp)?)),
        Wire::DateTime => {
            let raw = cursor.uint(8)?;
            let (d, t) = (raw / 1_000_000, raw % 1_000_000);
            scalar(My::Date(
                (d / 10000) as u16,
                (d % 10000 / 100) as u8,
                (d % 100) as u8,
                (t / 10000) as u8,
                (t % 10000 / 100) as u8,
                (t % 100) as u8,
                0,
            ))
        }
        Wire::DateTime2 { fsp } => {
            let packed = cursor.read(|r| my_datetime_packed_from_binary(r, u32::from(fsp)))?;
            scalar(datetime_from_packed(packed))
        }
        Wire::Timestamp => scalar(My::Int(cursor.uint(4)? as i64)),
        Wire::Timestamp2 { fsp } => {
            let (secs, micros) = cursor.read(|r| my_timestamp_from_binary(r, fsp))?;
            match column {
                ColumnType::Timestamp { .. } => {
                    Ok(Value::Timestamp(i64::from(secs) * 1_000_000 + i64::from(micros)))
                }
                _ => Err(ValueError::mismatch(column.sql(), "a binlog TIMESTAMP")),
            }
        }
        Wire::Bit { bytes } => {
            let raw = cursor.take(usize::from(bytes))?;
            match column {
                ColumnType::Bit { bits } => Ok(bit_value(*bits, raw)),
                _ => Err(ValueError::mismatch(column.sql(), "a binlog BIT")),
            }
        }
        Wire::Enum { bytes } => {
            let index = cursor.uint(usize::from(bytes))?;
            match column {
                ColumnType::Enum { labels } => enum_value(labels, usize::try_from(index).unwrap_or(usize::MAX)),
                _ => Err(ValueError::mismatch(column.sql(), "a binlog ENUM")),
            }
        }
        Wire::Set { bytes } => {
            let raw = cursor.take(usize::from(bytes))?;
            match column {
                ColumnType::Set { labels } => Ok(Value::String(set_labels(labels, raw)?)),
                _ => Err(ValueError::mismatch(column.sql(), "a binlog SET")),
            }
        }
        Wire::Prefixed { prefix } => {
            let n = cursor.uint(usize::from(prefix))?;
            let raw = cursor.take(usize::try_from(n).unwrap_or(usize::MAX))?;
            Ok(match column {
                ColumnType::Char { collation, .. } => Value::String(trim_char(collation.decode(raw)?)),
                ColumnType::VarChar { collation, .. } | ColumnType::Text { collation, .. } => {
                    Value::String(collation.decode(raw)?)
                }
                ColumnType::Binary { length } => binary_value(*length, raw),
                ColumnType::VarBinary { .. } | ColumnType::Blob { .. } | ColumnType::Geometry => {
                    Value::Bytes(raw.to_vec())
                }
                _ => return Err(ValueError::mismatch(column.sql(), "binlog string bytes")),
            })
        }
        Wire::Json => {
            let mut buf = ParseBuf(cursor.data);
            let json = BinlogValue::deserialize((Raw::MYSQL_TYPE_JSON, &[][..], false, false), &mut buf)
                .map_err(|_| truncated())?;
            cursor.data = buf.0;
            binlog_value(column, &json)
        }
    }
}

/// One event's rows decoder: the layout of each column of the table.
#[derive(Debug)]
pub struct RowsDecoder<'t> {
    table: &'t TableSchema,
    wires: Vec<Wire>,
}

/// The before and after image of one row, as mysql_common's `RowsEvent::rows` pairs them:
/// WRITE `(None, after)`, DELETE `(before, None)`, UPDATE `(before, after)` (before `None` when
/// not asked for).
pub type RowImages = (Option<Vec<Value>>, Option<Vec<Value>>);

impl<'t> RowsDecoder<'t> {
    /// The decoder for rows of `table`, whose schema was built from `table_map` by
    /// [`TableSchema::from_table_map`].
    pub fn new(table: &'t TableSchema, table_map: &TableMapEvent<'_>) -> Result<RowsDecoder<'t>, ValueError> {
        let count = usize::try_from(table_map.columns_count()).unwrap_or(usize::MAX);
        if count != table.columns.len() {
            return Err(malformed(format!(
                "a table map of {count} columns for a table of {}",
                table.columns.len()
            )));
        }
        let wires = table
            .columns
            .iter()
            .enumerate()
            .map(|(i, column)| {
                let raw = table_map
                    .get_column_type(i)
                    .ok()
                    .flatten()
                    .ok_or_else(|| malformed(format!("no type for column {i}")))?;
                let meta = table_map.get_column_metadata(i).unwrap_or(&[]);
                wire(raw, meta, &column.column_type).map_err(|e| e.in_column(&column.name))
            })
            .collect::<Result<_, _>>()?;
        Ok(RowsDecoder { table, wires })
    }

    /// The rows of `event`. The UPDATE before-image is decoded only with `update_before`;
    /// a DELETE's image (its before-image) always is.
    pub fn rows<'e>(&'e self, event: &'e RowsEventData<'e>, update_before: bool) -> Result<Rows<'e>, ValueError> {
        if matches!(event, RowsEventData::PartialUpdateRowsEvent(_)) {
            return Err(ValueError::Json(
                "partial JSON update; set binlog_row_value_options='' on the server".into(),
            ));
        }
        let count = usize::try_from(event.num_columns()).unwrap_or(usize::MAX);
        if count != self.wires.len() {
            return Err(malformed(format!(
                "a rows event of {count} columns for a table of {}",
                self.wires.len()
            )));
        }
        let image = |bits: Option<Vec<bool>>, decode: bool| {
            bits.map(|present| Image {
                values: present.iter().filter(|p| **p).count(),
                present,
                decode,
            })
        };
        let before_bits = event
            .columns_before_image()
            .map(|bits| (0..count).map(|i| bits.get(i).is_some_and(|b| *b)).collect());
        let after_bits = event
            .columns_after_image()
            .map(|bits| (0..count).map(|i| bits.get(i).is_some_and(|b| *b)).collect());
        let before = image(before_bits, after_bits.is_none() || update_before);
        let after = image(after_bits, true);
        Ok(Rows {
            decoder: self,
            data: event.rows_data(),
            before,
            after,
        })
    }

    /// Reads one row image.
    fn image(&self, image: &Image, cursor: &mut Cursor<'_>) -> Result<Vec<Value>, ValueError> {
        let nulls = cursor.take(image.values.div_ceil(8))?;
        let mut values = Vec::with_capacity(self.wires.len());
        // Every column is present (or it is an error), so a column's index is its index in the
        // image's null bitmap.
        for (at, ((wire, column), present)) in self.wires.iter().zip(&self.table.columns).zip(&image.present).enumerate() {
            if !present {
                return Err(ValueError::mismatch("a value (binlog_row_image=FULL)", "none").in_column(&column.name));
            }
            let null = nulls[at / 8] >> (at % 8) & 1 == 1;
            values.push(if null {
                Value::Null
            } else {
                value(*wire, &column.column_type, cursor).map_err(|e| e.in_column(&column.name))?
            });
        }
        Ok(values)
    }

    /// Walks over one row image without decoding it.
    fn skip_image(&self, image: &Image, cursor: &mut Cursor<'_>) -> Result<(), ValueError> {
        let nulls = cursor.take(image.values.div_ceil(8))?;
        let mut at = 0;
        for (wire, present) in self.wires.iter().zip(&image.present) {
            if !present {
                continue;
            }
            let null = nulls[at / 8] >> (at % 8) & 1 == 1;
            at += 1;
            if !null {
                skip(*wire, cursor)?;
            }
        }
        Ok(())
    }
}

/// The columns one image of each row carries.
#[derive(Debug)]
struct Image {
    /// Per column, whether the image has it.
    present: Vec<bool>,
    /// How many columns it has.
    values: usize,
    /// Whether to decode it (else it is walked over).
    decode: bool,
}

/// The rows of one event, each `Ok(`[`RowImages`]`)` or the first error (which ends them).
#[derive(Debug)]
pub struct Rows<'e> {
    decoder: &'e RowsDecoder<'e>,
    data: &'e [u8],
    before: Option<Image>,
    after: Option<Image>,
}

impl Rows<'_> {
    fn read(&self, image: &Option<Image>, cursor: &mut Cursor<'_>) -> Result<Option<Vec<Value>>, ValueError> {
        match image {
            Some(image) if image.decode => self.decoder.image(image, cursor).map(Some),
            Some(image) => self.decoder.skip_image(image, cursor).map(|()| None),
            None => Ok(None),
        }
    }
}

impl Iterator for Rows<'_> {
    type Item = Result<RowImages, ValueError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.data.is_empty() {
            return None;
        }
        let mut cursor = Cursor { data: self.data };
        let row = self
            .read(&self.before, &mut cursor)
            .and_then(|before| Ok((before, self.read(&self.after, &mut cursor)?)));
        self.data = if row.is_ok() { cursor.data } else { &[] };
        Some(row)
    }
}

#[cfg(test)]
#[path = "rows_tests.rs"]
mod tests;
