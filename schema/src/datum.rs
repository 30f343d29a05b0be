//! The one mapping between [`Value`]s and the primitive a field type is written as, shared by the
//! JSON and Avro formats (which only differ in how they spell a primitive).

use crate::connect::{Field, FieldType};
use crate::decimal::Decimal;
use crate::error::ValueError;
use crate::temporal::{format_zoned, parse_zoned, Date, DateTime};
use crate::value::Value;

/// A value in the primitive form of its field type.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Prim {
    Null,
    Int(i64),
    Float(f32),
    Double(f64),
    Bool(bool),
    Str(String),
    Bytes(Vec<u8>),
}

fn out_of_range(value: impl ToString, field: &Field) -> ValueError {
    ValueError::OutOfRange {
        value: value.to_string(),
        target: field.field_type.connect_type().to_string(),
    }
    .in_column(&field.name)
}

fn int_in(v: i64, field: &Field, bits: u32) -> Result<Prim, ValueError> {
    let max = (1i64 << (bits - 1)) - 1;
    if v < -max - 1 || v > max {
        return Err(out_of_range(v, field));
    }
    Ok(Prim::Int(v))
}

fn exact_millis(micros: i64, field: &Field) -> Result<Prim, ValueError> {
    if micros % 1000 != 0 {
        return Err(out_of_range(format!("{micros} µs"), field));
    }
    Ok(Prim::Int(micros / 1000))
}

const MICROS_PER_DAY: i64 = 86_400_000_000;

/// Connect `Time` is milliseconds within one day: anything else is refused here (value records
/// carry such a TIME as null plus the `cdc.zero_dates` header, see `inexact.rs`).
fn time_of_day_millis(micros: i64, field: &Field) -> Result<Prim, ValueError> {
    if !(0..MICROS_PER_DAY).contains(&micros) {
        return Err(out_of_range(crate::value::format_time(micros), field));
    }
    exact_millis(micros, field)
}

/// The primitive `value` is written as for `field`; checks nullability and kind.
pub(crate) fn to_prim(field: &Field, value: &Value) -> Result<Prim, ValueError> {
    use FieldType as F;
    let mismatch = || {
        ValueError::mismatch(field.field_type.connect_type(), value.kind()).in_column(&field.name)
    };
    let prim = match (&field.field_type, value) {
        (_, Value::Null) if field.optional => Prim::Null,
        (_, Value::Null) => {
            return Err(
                ValueError::mismatch("a value (field is not optional)", "null")
                    .in_column(&field.name),
            )
        }
        (F::Int8, Value::Int(v)) => int_in(*v, field, 8)?,
        (F::Int16, Value::Int(v)) => int_in(*v, field, 16)?,
        (F::Int32, Value::Int(v)) => int_in(*v, field, 32)?,
        (F::Int64, Value::Int(v)) => Prim::Int(*v),
        (F::Float32, Value::Float(v)) => Prim::Float(*v),
        (F::Float64, Value::Double(v)) => Prim::Double(*v),
        (F::Boolean, Value::Bool(v)) => Prim::Bool(*v),
        (F::String, Value::String(v)) => Prim::Str(v.clone()),
        (F::Bytes, Value::Bytes(v)) => Prim::Bytes(v.clone()),
        (F::Decimal { scale, .. }, Value::Decimal(d)) => {
            let d = d.rescale(*scale).ok_or_else(|| out_of_range(d, field))?;
            Prim::Bytes(d.to_be_bytes())
        }
        (F::Date | F::DebeziumDate, Value::Date(d)) => Prim::Int(i64::from(d.to_epoch_days())),
        (F::Time, Value::Time(us)) => time_of_day_millis(*us, field)?,
        (F::Timestamp, Value::Timestamp(us)) => exact_millis(*us, field)?,
        (F::Timestamp | F::DebeziumTimestamp, Value::DateTime(dt)) => {
            Prim::Int(dt.to_epoch_millis().ok_or_else(|| out_of_range(dt, field))?)
        }
        (F::DebeziumMicroTime | F::MicroTime, Value::Time(us))
        | (F::MicroTimestamp, Value::Timestamp(us)) => Prim::Int(*us),
        (F::DebeziumMicroTimestamp | F::LocalMicroTimestamp, Value::DateTime(dt)) => {
            Prim::Int(dt.to_epoch_micros())
        }
        (F::ZonedTimestamp, Value::Timestamp(us)) => Prim::Str(
            format_zoned(*us, field.fsp().unwrap_or(if us % 1_000_000 == 0 { 0 } else { 6 }))
                .ok_or_else(|| out_of_range(format!("{us} µs"), field))?,
        ),
        _ => return Err(mismatch()),
    };
    Ok(prim)
}

/// The value a primitive of `field` stands for; checks nullability and kind.
pub(crate) fn from_prim(field: &Field, prim: Prim) -> Result<Value, ValueError> {
    use FieldType as F;
    // The primitive is only formatted for the message, when it does not fit.
    let mismatch = |found: Prim| {
        ValueError::mismatch(field.field_type.connect_type(), format!("{found:?}")).in_column(&field.name)
    };
    let int32 = |v: i64| i32::try_from(v).map_err(|_| out_of_range(v, field));
    let value = match (&field.field_type, prim) {
        (_, Prim::Null) if field.optional => Value::Null,
        (_, Prim::Null) => {
            return Err(
                ValueError::mismatch("a value (field is not optional)", "null")
                    .in_column(&field.name),
            )
        }
        (F::Int8, Prim::Int(v)) => int_in(v, field, 8).map(|_| Value::Int(v))?,
        (F::Int16, Prim::Int(v)) => int_in(v, field, 16).map(|_| Value::Int(v))?,
        (F::Int32, Prim::Int(v)) => int_in(v, field, 32).map(|_| Value::Int(v))?,
        (F::Int64, Prim::Int(v)) => Value::Int(v),
        (F::Float32, Prim::Float(v)) => Value::Float(v),
        (F::Float64, Prim::Double(v)) => Value::Double(v),
        (F::Boolean, Prim::Bool(v)) => Value::Bool(v),
        (F::String, Prim::Str(v)) => Value::String(v),
        (F::Bytes, Prim::Bytes(v)) => Value::Bytes(v),
        (F::Decimal { scale, .. }, Prim::Bytes(b)) => {
            Value::Decimal(Decimal::from_be_bytes(&b, *scale))
        }
        (F::Date | F::DebeziumDate, Prim::Int(v)) => {
            Value::Date(Date::from_epoch_days(int32(v)?).ok_or_else(|| out_of_range(v, field))?)
        }
        (F::Time, Prim::Int(ms)) => Value::Time(ms * 1000),
        (F::Timestamp | F::DebeziumTimestamp, Prim::Int(ms))
            if field.temporal() == Some(crate::connect::Temporal::DateTime) =>
        {
            Value::DateTime(DateTime::from_epoch_millis(ms).ok_or_else(|| out_of_range(ms, field))?)
        }
        (F::Timestamp, Prim::Int(ms)) => Value::Timestamp(ms * 1000),
        (F::DebeziumMicroTime | F::MicroTime, Prim::Int(us)) => Value::Time(us),
        (F::MicroTimestamp, Prim::Int(us)) => Value::Timestamp(us),
        (F::DebeziumMicroTimestamp | F::LocalMicroTimestamp, Prim::Int(us)) => {
            Value::DateTime(DateTime::from_epoch_micros(us).ok_or_else(|| out_of_range(us, field))?)
        }
        (F::ZonedTimestamp, Prim::Str(text)) => {
            Value::Timestamp(parse_zoned(&text).ok_or_else(|| out_of_range(&text, field))?)
        }
        (_, found) => return Err(mismatch(found)),
    };
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mismatch_names_the_primitive_found() {
        let field = Field::new("n", FieldType::Int32, false);
        let e = from_prim(&field, Prim::Str("x".into())).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(e.contains("Str(\"x\")") && e.contains('n'), "{e}");
        assert_eq!(from_prim(&field, Prim::Int(5)).ok(), Some(Value::Int(5)));
    }
}
