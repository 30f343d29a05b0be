//! Values a value field cannot carry exactly, and the record header that carries them instead.
//!
//! Record format 2 writes only values every standard reader understands. A value field whose
//! column value has no such form gets the nearest form there is, and the record header
//! [`ZERO_DATES_HEADER`] keeps the exact value:
//!
//! | value | field carries |
//! |---|---|
//! | zero or invalid DATE / DATETIME (`0000-00-00`, `2024-00-00`, `2023-02-30`) | null |
//! | zero TIMESTAMP (`0000-00-00 00:00:00`) | null |
//! | `connect` mode: TIME outside `00:00:00`…`23:59:59.999999` | null |
//! | `connect` mode: TIME or DATETIME with a sub-millisecond fraction | the value truncated to ms |
//!
//! Such fields are always optional in the value schema (see `connect.rs`). Key fields are never
//! touched: a key can be neither null nor inexact, so there zero dates are sentinels (see
//! `temporal.rs`).
//!
//! ## Header format
//!
//! `name=value` pairs joined by `,`, in field order, e.g.
//! `created_at=0000-00-00 00:00:00,d=2024-00-00,t=-00:00:00.000001`. Names are field names with
//! `%`, `,` and `=` written as `%25`, `%2C` and `%3D`; values are MariaDB's own text of the value
//! (`YYYY-MM-DD`, `YYYY-MM-DD HH:MM:SS[.ffffff]`, `[-]HHH:MM:SS[.ffffff]`, the fraction only when it
//! is not zero), which never contains those characters. A TIMESTAMP is its UTC wall clock. No
//! header is written when every value is exact.

use crate::connect::{FieldType, RecordSchema, Temporal};
use crate::error::ValueError;
use crate::temporal::{Date, DateTime};
use crate::value::{format_time_short, parse_time, Value};

/// The record header listing the value fields whose exact value is not in the record.
pub const ZERO_DATES_HEADER: &str = "cdc.zero_dates";

const MICROS_PER_DAY: i64 = 86_400_000_000;

fn escape(name: &str) -> String {
    name.replace('%', "%25").replace(',', "%2C").replace('=', "%3D")
}

fn unescape(name: &str) -> String {
    name.replace("%2C", ",").replace("%3D", "=").replace("%25", "%")
}

/// What `field_type` carries for `value` when that is not `value` itself: `(carried, exact text)`.
fn inexact(field_type: &FieldType, kind: Temporal, value: &Value) -> Option<(Value, String)> {
    let millis_only = matches!(
        field_type,
        FieldType::Time | FieldType::Timestamp | FieldType::DebeziumTimestamp
    );
    match (kind, value) {
        (Temporal::Date, Value::Date(d)) if !d.is_calendar_date() => {
            Some((Value::Null, d.to_string()))
        }
        (Temporal::DateTime, Value::DateTime(dt)) if !dt.is_calendar() => {
            Some((Value::Null, dt.to_short_string()))
        }
        (Temporal::DateTime, Value::DateTime(dt)) if millis_only && dt.micros % 1000 != 0 => {
            let truncated = DateTime { micros: dt.micros / 1000 * 1000, ..*dt };
            Some((Value::DateTime(truncated), dt.to_short_string()))
        }
        (Temporal::Timestamp, Value::Timestamp(0)) => {
            Some((Value::Null, DateTime::ZERO.to_short_string()))
        }
        (Temporal::Time, Value::Time(us)) if *field_type == FieldType::Time => {
            if !(0..MICROS_PER_DAY).contains(us) {
                Some((Value::Null, format_time_short(*us)))
            } else if us % 1000 != 0 {
                Some((Value::Time(us / 1000 * 1000), format_time_short(*us)))
            } else {
                None
            }
        }
        _ => None,
    }
}

/// Replaces each value of a value record that its field cannot carry exactly by what it can
/// carry (null, or the value truncated to milliseconds), and returns the
/// [`ZERO_DATES_HEADER`] text that restores them; `None` when every value is exact.
/// Required fields and the format-1 `cdc.*` types are left alone.
pub fn take_inexact(schema: &RecordSchema, values: &mut [Value]) -> Option<String> {
    let mut header = String::new();
    for (field, value) in schema.fields.iter().zip(values.iter_mut()) {
        let legacy = matches!(
            field.field_type,
            FieldType::MicroTime | FieldType::MicroTimestamp | FieldType::LocalMicroTimestamp
        );
        let Some(kind) = field.temporal().filter(|_| field.optional && !legacy) else {
            continue;
        };
        if let Some((carried, text)) = inexact(&field.field_type, kind, value) {
            if !header.is_empty() {
                header.push(',');
            }
            header.push_str(&escape(&field.name));
            header.push('=');
            header.push_str(&text);
            *value = carried;
        }
    }
    (!header.is_empty()).then_some(header)
}

fn parse_value(kind: Temporal, text: &str) -> Option<Value> {
    Some(match kind {
        Temporal::Date => Value::Date(Date::parse(text)?),
        Temporal::DateTime => Value::DateTime(DateTime::parse(text)?),
        Temporal::Time => Value::Time(parse_time(text)?),
        Temporal::Timestamp => match DateTime::parse(text)? {
            zero if zero == DateTime::ZERO => Value::Timestamp(0),
            dt if dt.is_calendar() => Value::Timestamp(dt.to_epoch_micros()),
            _ => return None,
        },
    })
}

/// Puts the exact values of a [`ZERO_DATES_HEADER`] back into a decoded value record. A header
/// that names no temporal field of the record, or a value that is not that field's kind, is an
/// error naming the problem.
pub fn restore_inexact(
    schema: &RecordSchema,
    values: &mut [Value],
    header: &str,
) -> Result<(), ValueError> {
    let bad = |found: &str| {
        ValueError::mismatch(
            format!("`name=value` pairs of temporal fields joined by `,` in header {ZERO_DATES_HEADER}"),
            found.to_string(),
        )
    };
    for pair in header.split(',').filter(|p| !p.trim().is_empty()) {
        let (name, text) = pair.split_once('=').ok_or_else(|| bad(pair))?;
        let name = unescape(name.trim());
        let at = schema
            .fields
            .iter()
            .position(|f| f.name == name)
            .ok_or_else(|| bad(pair))?;
        let field = &schema.fields[at];
        let kind = field.temporal().ok_or_else(|| bad(pair).in_column(&name))?;
        let value = parse_value(kind, text.trim()).ok_or_else(|| {
            ValueError::BadTemporal {
                text: text.to_string(),
                kind: match kind {
                    Temporal::Date => "date",
                    Temporal::DateTime => "datetime",
                    Temporal::Time => "time",
                    Temporal::Timestamp => "timestamp",
                },
            }
            .in_column(&name)
        })?;
        if let Some(slot) = values.get_mut(at) {
            *slot = value;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connect::Field;

    #[test]
    fn names_with_separators_round_trip() {
        let schema = RecordSchema {
            name: None,
            fields: vec![Field::new("a,b=c%d", FieldType::DebeziumDate, true)],
        };
        let mut values = vec![Value::Date(Date::ZERO)];
        let header = take_inexact(&schema, &mut values).expect("zero date");
        assert_eq!(header, "a%2Cb%3Dc%25d=0000-00-00");
        assert_eq!(values, vec![Value::Null]);
        restore_inexact(&schema, &mut values, &header).expect("restores");
        assert_eq!(values, vec![Value::Date(Date::ZERO)]);
    }

    #[test]
    fn bad_headers_name_the_problem() {
        let schema = RecordSchema {
            name: None,
            fields: vec![
                Field::new("d", FieldType::DebeziumDate, true),
                Field::new("n", FieldType::Int32, true),
            ],
        };
        let mut values = vec![Value::Null, Value::Null];
        for (header, needle) in [
            ("x=0000-00-00", "cdc.zero_dates"),
            ("d", "cdc.zero_dates"),
            ("n=1", "`n`"),
            ("d=2024-13-01", "not a valid date"),
        ] {
            let err = restore_inexact(&schema, &mut values, header).expect_err(header);
            assert!(err.to_string().contains(needle), "{header}: {err}");
        }
    }
}
