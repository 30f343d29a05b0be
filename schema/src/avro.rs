//! Avro schemas and bodies for record schemas (the registry and wire framing are elsewhere).
//!
//! A record schema becomes an Avro record with the record schema's name (`<topic>.Value` is
//! name `Value` in namespace `<topic>`). Optional fields are `["null", T]` with
//! `"default": null`. Types with a Connect name are spelt as Confluent's `AvroConverter` spells
//! them: the primitive with `"connect.version": 1` and `"connect.name"`, plus an Avro
//! `logicalType` only for Kafka Connect's own logical types, whose every written value is
//! within the logical type's meaning:
//!
//! | field type | Avro |
//! |---|---|
//! | Connect Decimal | `bytes`/`decimal` (precision 65 when unknown) |
//! | Connect Date / Time / Timestamp | `int`/`date`, `int`/`time-millis`, `long`/`timestamp-millis`, with `connect.name` |
//! | `io.debezium.time.Date` | `int` + `connect.name`, no logicalType |
//! | `io.debezium.time.MicroTime` / `Timestamp` / `MicroTimestamp` | `long` + `connect.name`, no logicalType |
//! | `io.debezium.time.ZonedTimestamp` | `string` + `connect.name` |
//! | `cdc.MicroTime` / `cdc.MicroTimestamp` / `cdc.LocalMicroTimestamp` (format 1, read) | `long`/`time-micros`, `long`/`timestamp-micros`, `long`/`local-timestamp-micros` |
//!
//! No `logicalType` on the Debezium types: TIME is not a time of day (`time-micros` would be
//! misread for negative values and refused beyond 24 h), a key's zero date is a sentinel no
//! `date` reader accepts, and Debezium's records through `AvroConverter` carry none either, so
//! consumers written for Debezium see the same schema.
//!
//! int8/int16 are `int` with `"connect.type"`. Field parameters are kept in the field attribute
//! `"connect.parameters"`; a column name that is not a valid Avro name is written with invalid
//! characters replaced by `_` and the original kept in `"cdc.column.name"`. Reading a schema back
//! from the registry yields the same [`RecordSchema`].

use std::sync::Arc;

use serde_json::{json, Map, Value as Json};

use crate::connect::{avro_name, Field, FieldType, Record, RecordSchema};
use crate::connect::{
    DATE_NAME, DEBEZIUM_DATE_NAME, DEBEZIUM_MICRO_TIMESTAMP_NAME, DEBEZIUM_MICRO_TIME_NAME,
    DEBEZIUM_TIMESTAMP_NAME, TIMESTAMP_NAME, TIME_NAME, ZONED_TIMESTAMP_NAME,
};
use crate::datum::{from_prim, to_prim, Prim};
use crate::error::CodecError;
use crate::value::Value;
use apache_avro::types::Value as Avro;

const PARAMS_ATTR: &str = "connect.parameters";
const NAME_ATTR: &str = "cdc.column.name";
const DEFAULT_PRECISION: u32 = 65;


fn type_schema(t: &FieldType) -> Json {
    let logical = |base: &str, logical: &str| json!({"type": base, "logicalType": logical});
    let named = |base: &str, logical: Option<&str>| {
        let mut m = Map::new();
        m.insert("type".into(), json!(base));
        m.insert("connect.version".into(), json!(1));
        m.insert("connect.name".into(), json!(t.logical_name()));
        if let Some(l) = logical {
            m.insert("logicalType".into(), json!(l));
        }
        Json::Object(m)
    };
    match t {
        FieldType::Int8 => json!({"type": "int", "connect.type": "int8"}),
        FieldType::Int16 => json!({"type": "int", "connect.type": "int16"}),
        FieldType::Int32 => json!("int"),
        FieldType::Int64 => json!("long"),
        FieldType::Float32 => json!("float"),
        FieldType::Float64 => json!("double"),
        FieldType::Boolean => json!("boolean"),
        FieldType::String => json!("string"),
        FieldType::Bytes => json!("bytes"),
        FieldType::Decimal { precision, scale } => json!({
            "type": "bytes", "logicalType": "decimal",
            "precision": precision.unwrap_or(DEFAULT_PRECISION), "scale": scale
        }),
        FieldType::Date => named("int", Some("date")),
        FieldType::Time => named("int", Some("time-millis")),
        FieldType::Timestamp => named("long", Some("timestamp-millis")),
        FieldType::DebeziumDate => named("int", None),
        FieldType::DebeziumMicroTime
        | FieldType::DebeziumTimestamp
        | FieldType::DebeziumMicroTimestamp => named("long", None),
        FieldType::ZonedTimestamp => named("string", None),
        FieldType::MicroTime => logical("long", "time-micros"),
        FieldType::MicroTimestamp => logical("long", "timestamp-micros"),
        FieldType::LocalMicroTimestamp => logical("long", "local-timestamp-micros"),
    }
}

fn field_json(field: &Field) -> Json {
    let mut m = Map::new();
    let name = avro_name(&field.name);
    m.insert("name".into(), json!(name));
    let t = type_schema(&field.field_type);
    if field.optional {
        m.insert("type".into(), json!(["null", t]));
        m.insert("default".into(), Json::Null);
    } else {
        m.insert("type".into(), t);
    }
    if name != field.name {
        m.insert(NAME_ATTR.into(), json!(field.name));
    }
    if !field.parameters.is_empty() {
        m.insert(PARAMS_ATTR.into(), Json::Object(field.parameters_json()));
    }
    Json::Object(m)
}

/// The Avro schema (JSON text) for `schema`.
pub fn avro_schema(schema: &RecordSchema) -> String {
    let fields: Vec<Json> = schema.fields.iter().map(field_json).collect();
    let name = schema.name.clone().unwrap_or_else(|| "Record".into());
    json!({"type": "record", "name": name, "fields": fields}).to_string()
}

fn bad(message: String) -> CodecError {
    CodecError::BadSchema(message)
}

fn parse_type(t: &Json, field: &str) -> Result<(FieldType, bool), CodecError> {
    if let Some(branches) = t.as_array() {
        let non_null: Vec<&Json> = branches.iter().filter(|b| *b != "null").collect();
        return match non_null.as_slice() {
            [one] if branches.len() == 2 => Ok((parse_type(one, field)?.0, true)),
            _ => Err(bad(format!(
                "field `{field}`: only [\"null\", T] unions are supported"
            ))),
        };
    }
    let base = t.get("type").unwrap_or(t).as_str().unwrap_or_default();
    let logical = t.get("logicalType").and_then(Json::as_str);
    let connect = t.get("connect.type").and_then(Json::as_str);
    let connect_name = t.get("connect.name").and_then(Json::as_str);
    let named = match (base, connect_name) {
        ("int", Some(DATE_NAME)) => Some(FieldType::Date),
        ("int", Some(TIME_NAME)) => Some(FieldType::Time),
        ("long", Some(TIMESTAMP_NAME)) => Some(FieldType::Timestamp),
        ("int", Some(DEBEZIUM_DATE_NAME)) => Some(FieldType::DebeziumDate),
        ("long", Some(DEBEZIUM_MICRO_TIME_NAME)) => Some(FieldType::DebeziumMicroTime),
        ("long", Some(DEBEZIUM_TIMESTAMP_NAME)) => Some(FieldType::DebeziumTimestamp),
        ("long", Some(DEBEZIUM_MICRO_TIMESTAMP_NAME)) => Some(FieldType::DebeziumMicroTimestamp),
        ("string", Some(ZONED_TIMESTAMP_NAME)) => Some(FieldType::ZonedTimestamp),
        _ => None,
    };
    if let Some(ft) = named {
        return Ok((ft, false));
    }
    let number = |k: &str| {
        t.get(k)
            .and_then(Json::as_u64)
            .and_then(|v| u32::try_from(v).ok())
    };
    let ft = match (base, logical, connect) {
        ("bytes" | "fixed", Some("decimal"), _) => FieldType::Decimal {
            precision: number("precision"),
            scale: number("scale").unwrap_or(0),
        },
        ("int", Some("date"), _) => FieldType::Date,
        ("int", Some("time-millis"), _) => FieldType::Time,
        ("long", Some("timestamp-millis"), _) => FieldType::Timestamp,
        ("long", Some("time-micros"), _) => FieldType::MicroTime,
        ("long", Some("timestamp-micros"), _) => FieldType::MicroTimestamp,
        ("long", Some("local-timestamp-micros"), _) => FieldType::LocalMicroTimestamp,
        ("int", _, Some("int8")) => FieldType::Int8,
        ("int", _, Some("int16")) => FieldType::Int16,
        ("int", _, _) => FieldType::Int32,
        ("long", _, _) => FieldType::Int64,
        ("float", _, _) => FieldType::Float32,
        ("double", _, _) => FieldType::Float64,
        ("boolean", _, _) => FieldType::Boolean,
        ("string", _, _) => FieldType::String,
        ("bytes", _, _) => FieldType::Bytes,
        (other, _, _) => {
            return Err(bad(format!(
                "field `{field}`: Avro type `{other}` is not supported"
            )))
        }
    };
    Ok((ft, false))
}

/// Reads a record schema back from Avro schema text (as registered by [`avro_schema`], or any
/// flat Avro record of supported types).
pub fn record_schema_from_avro(text: &str) -> Result<RecordSchema, CodecError> {
    let j: Json = serde_json::from_str(text)?;
    if j.get("type").and_then(Json::as_str) != Some("record") {
        return Err(bad("the Avro schema is not a record".into()));
    }
    let name = j.get("name").and_then(Json::as_str).map(|n| {
        match j.get("namespace").and_then(Json::as_str) {
            Some(ns) if !n.contains('.') && !ns.is_empty() => format!("{ns}.{n}"),
            _ => n.to_string(),
        }
    });
    let fields = j
        .get("fields")
        .and_then(Json::as_array)
        .ok_or_else(|| bad("record without `fields`".into()))?
        .iter()
        .map(|f| {
            let avro_name = f.get("name").and_then(Json::as_str).unwrap_or_default();
            let name = f.get(NAME_ATTR).and_then(Json::as_str).unwrap_or(avro_name);
            let (field_type, optional) = parse_type(f.get("type").unwrap_or(&Json::Null), name)?;
            let parameters = match f.get(PARAMS_ATTR) {
                Some(Json::Object(p)) => p
                    .iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                    .collect(),
                _ => Field::new(name, field_type.clone(), optional).parameters,
            };
            Ok(Field {
                name: name.to_string(),
                field_type,
                optional,
                parameters,
            })
        })
        .collect::<Result<_, CodecError>>()?;
    Ok(RecordSchema { name, fields })
}

/// Bytes of the unscaled value, sign-extended to the length the precision needs (apache-avro
/// checks that length against the precision).
fn decimal_bytes(raw: Vec<u8>, precision: u32) -> Vec<u8> {
    let needed = (1..=64usize)
        .find(|n| ((8 * n - 1) as f64 * 2f64.log10()).floor() as u32 >= precision)
        .unwrap_or(raw.len());
    if raw.len() >= needed {
        return raw;
    }
    let fill = if raw.first().is_some_and(|b| b & 0x80 != 0) {
        0xFF
    } else {
        0
    };
    let mut out = vec![fill; needed - raw.len()];
    out.extend(raw);
    out
}

fn to_avro(field: &Field, value: &Value) -> Result<Avro, CodecError> {
    let prim = to_prim(field, value)?;
    let int32 = |v: i64| i32::try_from(v).unwrap_or_default();
    let avro = match (&field.field_type, prim) {
        (_, Prim::Null) => return Ok(Avro::Union(0, Box::new(Avro::Null))),
        (FieldType::Decimal { precision, .. }, Prim::Bytes(b)) => {
            Avro::Decimal(decimal_bytes(b, precision.unwrap_or(DEFAULT_PRECISION)).into())
        }
        (FieldType::Date, Prim::Int(v)) => Avro::Date(int32(v)),
        (FieldType::Time, Prim::Int(v)) => Avro::TimeMillis(int32(v)),
        (FieldType::Timestamp, Prim::Int(v)) => Avro::TimestampMillis(v),
        (FieldType::MicroTime, Prim::Int(v)) => Avro::TimeMicros(v),
        (FieldType::MicroTimestamp, Prim::Int(v)) => Avro::TimestampMicros(v),
        (FieldType::LocalMicroTimestamp, Prim::Int(v)) => Avro::LocalTimestampMicros(v),
        (
            FieldType::Int64
            | FieldType::DebeziumMicroTime
            | FieldType::DebeziumTimestamp
            | FieldType::DebeziumMicroTimestamp,
            Prim::Int(v),
        ) => Avro::Long(v),
        (_, Prim::Int(v)) => Avro::Int(int32(v)),
        (_, Prim::Float(v)) => Avro::Float(v),
        (_, Prim::Double(v)) => Avro::Double(v),
        (_, Prim::Bool(v)) => Avro::Boolean(v),
        (_, Prim::Str(v)) => Avro::String(v),
        (_, Prim::Bytes(v)) => Avro::Bytes(v),
    };
    Ok(if field.optional {
        Avro::Union(1, Box::new(avro))
    } else {
        avro
    })
}

/// Avro's variable-length zig-zag encoding of `int` and `long`.
fn write_long(out: &mut Vec<u8>, v: i64) {
    let mut z = ((v << 1) ^ (v >> 63)) as u64;
    while z >= 0x80 {
        out.push((z as u8) | 0x80);
        z >>= 7;
    }
    out.push(z as u8);
}

fn write_bytes(out: &mut Vec<u8>, b: &[u8]) {
    write_long(out, b.len() as i64);
    out.extend_from_slice(b);
}

/// One field's value in Avro binary, as [`to_avro`] maps it: an optional field is the union
/// `["null", T]` (branch 0 null, 1 the value).
fn write_field(out: &mut Vec<u8>, field: &Field, prim: Prim) -> Result<(), CodecError> {
    if let Prim::Null = prim {
        if !field.optional {
            return Err(CodecError::Avro(format!("field `{}`: null for a type that is not optional", field.name)));
        }
        out.push(0);
        return Ok(());
    }
    if field.optional {
        out.push(2);
    }
    let int32 = |v: i64| i64::from(i32::try_from(v).unwrap_or_default());
    match (&field.field_type, prim) {
        (FieldType::Decimal { precision, .. }, Prim::Bytes(b)) => {
            write_bytes(out, &decimal_bytes(b, precision.unwrap_or(DEFAULT_PRECISION)));
        }
        (
            FieldType::Int64
            | FieldType::Timestamp
            | FieldType::MicroTime
            | FieldType::MicroTimestamp
            | FieldType::LocalMicroTimestamp
            | FieldType::DebeziumMicroTime
            | FieldType::DebeziumTimestamp
            | FieldType::DebeziumMicroTimestamp,
            Prim::Int(v),
        ) => write_long(out, v),
        (_, Prim::Int(v)) => write_long(out, int32(v)),
        (_, Prim::Float(v)) => out.extend_from_slice(&v.to_le_bytes()),
        (_, Prim::Double(v)) => out.extend_from_slice(&v.to_le_bytes()),
        (_, Prim::Bool(v)) => out.push(u8::from(v)),
        (_, Prim::Str(v)) => write_bytes(out, v.as_bytes()),
        (_, Prim::Bytes(v)) => write_bytes(out, &v),
        (_, Prim::Null) => unreachable!("null is written above"),
    }
    Ok(())
}

fn from_avro(field: &Field, avro: Avro) -> Result<Value, CodecError> {
    let prim = match avro {
        Avro::Union(_, inner) => return from_avro(field, *inner),
        Avro::Null => Prim::Null,
        Avro::Int(v) | Avro::Date(v) | Avro::TimeMillis(v) => Prim::Int(i64::from(v)),
        Avro::Long(v)
        | Avro::TimeMicros(v)
        | Avro::TimestampMillis(v)
        | Avro::TimestampMicros(v)
        | Avro::LocalTimestampMillis(v)
        | Avro::LocalTimestampMicros(v) => Prim::Int(v),
        Avro::Float(v) => Prim::Float(v),
        Avro::Double(v) => Prim::Double(v),
        Avro::Boolean(v) => Prim::Bool(v),
        Avro::String(v) => Prim::Str(v),
        Avro::Bytes(v) | Avro::Fixed(_, v) => Prim::Bytes(v),
        Avro::Decimal(d) => {
            Prim::Bytes(Vec::try_from(&d).map_err(|e| CodecError::Avro(e.to_string()))?)
        }
        other => {
            return Err(CodecError::Avro(format!(
                "field `{}`: unexpected Avro value {other:?}",
                field.name
            )))
        }
    };
    Ok(from_prim(field, prim)?)
}

/// An Avro schema parsed for encoding and decoding, with the record schema it stands for.
#[derive(Debug, Clone)]
pub struct AvroSchema {
    pub avro: apache_avro::Schema,
    pub record: Arc<RecordSchema>,
}

impl AvroSchema {
    /// Parses Avro schema text.
    pub fn parse(text: &str) -> Result<AvroSchema, CodecError> {
        let avro =
            apache_avro::Schema::parse_str(text).map_err(|e| CodecError::Avro(e.to_string()))?;
        let record = Arc::new(record_schema_from_avro(text)?);
        Ok(AvroSchema { avro, record })
    }

    /// The Avro body (no framing) of `values`, one per field of the record schema, written
    /// straight into one buffer: the same bytes as apache-avro writes for the schema, without
    /// building its value tree or resolving the schema per record (see the tests).
    pub fn encode(&self, values: &[Value]) -> Result<Vec<u8>, CodecError> {
        let mut out = Vec::with_capacity(16 * values.len() + 16);
        self.encode_into(values, &mut out)?;
        Ok(out)
    }

    /// Like [`AvroSchema::encode`], appending to `out`.
    pub fn encode_into(&self, values: &[Value], out: &mut Vec<u8>) -> Result<(), CodecError> {
        if values.len() != self.record.fields.len() {
            return Err(CodecError::Avro(format!(
                "{} values for a record of {} fields",
                values.len(),
                self.record.fields.len()
            )));
        }
        for (field, value) in self.record.fields.iter().zip(values) {
            write_field(out, field, to_prim(field, value)?)?;
        }
        Ok(())
    }

    /// The Avro body through apache-avro's generic writer (validating the value against the
    /// schema); what [`AvroSchema::encode`] must equal.
    pub fn encode_generic(&self, values: &[Value]) -> Result<Vec<u8>, CodecError> {
        let fields = self
            .record
            .fields
            .iter()
            .zip(values)
            .map(|(f, v)| Ok((avro_name(&f.name), to_avro(f, v)?)))
            .collect::<Result<Vec<_>, CodecError>>()?;
        apache_avro::writer::datum::GenericDatumWriter::builder(&self.avro)
            .build()
            .and_then(|w| w.write_value_to_vec(Avro::Record(fields)))
            .map_err(|e| CodecError::Avro(e.to_string()))
    }

    /// A record from an Avro body (no framing).
    pub fn decode(&self, body: &[u8]) -> Result<Record, CodecError> {
        let mut reader = body;
        let datum = apache_avro::reader::datum::GenericDatumReader::builder(&self.avro)
            .build()
            .and_then(|r| r.read_value(&mut reader))
            .map_err(|e| CodecError::Avro(e.to_string()))?;
        if !reader.is_empty() {
            return Err(CodecError::Avro(format!(
                "{} bytes left after the record; the schema id does not match the body",
                reader.len()
            )));
        }
        let Avro::Record(fields) = datum else {
            return Err(CodecError::Avro("body is not a record".into()));
        };
        let values = self
            .record
            .fields
            .iter()
            .zip(fields)
            .map(|(f, (_, v))| from_avro(f, v))
            .collect::<Result<_, _>>()?;
        Ok(Record {
            schema: Arc::clone(&self.record),
            values,
        })
    }
}
