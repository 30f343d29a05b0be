//! Kafka Connect JSON with schema (`JsonConverter`, `schemas.enable=true`).
//!
//! Written byte-for-byte in the shape `JsonConverter` writes:
//! `{"schema":{"type":"struct","fields":[{"type":"int32","optional":false,"field":"id"},…],
//! "optional":false,"name":"<topic>.Value"},"payload":{"id":1,…}}` — each field schema has `type`,
//! `optional`, then `name`, `version` and `parameters` when set, then `field`. Payload forms:
//! bytes and Decimal as base64 (Decimal: big-endian two's-complement unscaled value), Connect and
//! Debezium Date as int days, Connect Time and Timestamp and Debezium Timestamp as milliseconds,
//! Debezium MicroTime / MicroTimestamp and the format-1 `cdc.*` types as microseconds,
//! ZonedTimestamp as ISO-8601 text. Reading accepts what a person types: missing `optional` means required, integers
//! may be given for floats, a Decimal may also be a JSON number.

use std::sync::Arc;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use serde_json::{json, Map, Value as Json};

use crate::connect::{Field, FieldType, Record, RecordSchema, PRECISION_PARAM};
use crate::connect::{
    DATE_NAME, DEBEZIUM_DATE_NAME, DEBEZIUM_MICRO_TIMESTAMP_NAME, DEBEZIUM_MICRO_TIME_NAME,
    DEBEZIUM_TIMESTAMP_NAME, DECIMAL_NAME, LOCAL_MICRO_TIMESTAMP_NAME, MICRO_TIMESTAMP_NAME,
    MICRO_TIME_NAME, TIMESTAMP_NAME, TIME_NAME, ZONED_TIMESTAMP_NAME,
};
use crate::datum::{from_prim, to_prim, Prim};
use crate::decimal::Decimal;
use crate::error::{CodecError, ValueError};

fn field_schema(field: &Field) -> Json {
    let mut m = Map::new();
    m.insert("type".into(), json!(field.field_type.connect_type()));
    m.insert("optional".into(), json!(field.optional));
    if let Some(name) = field.field_type.logical_name() {
        m.insert("name".into(), json!(name));
        m.insert("version".into(), json!(1));
    }
    if !field.parameters.is_empty() {
        m.insert("parameters".into(), Json::Object(field.parameters_json()));
    }
    m.insert("field".into(), json!(field.name));
    Json::Object(m)
}

/// The `schema` part of the envelope for `schema`.
pub fn json_schema(schema: &RecordSchema) -> Json {
    let mut m = Map::new();
    m.insert("type".into(), json!("struct"));
    let fields: Vec<Json> = schema.fields.iter().map(field_schema).collect();
    m.insert("fields".into(), Json::Array(fields));
    m.insert("optional".into(), json!(false));
    if let Some(name) = &schema.name {
        m.insert("name".into(), json!(name));
    }
    Json::Object(m)
}

fn prim_to_json(prim: Prim) -> Json {
    match prim {
        Prim::Null => Json::Null,
        Prim::Int(v) => json!(v),
        Prim::Float(v) => json!(v),
        Prim::Double(v) => json!(v),
        Prim::Bool(v) => json!(v),
        Prim::Str(v) => json!(v),
        Prim::Bytes(v) => json!(BASE64.encode(v)),
    }
}

/// Encodes `record` as a JSON-with-schema message (UTF-8 bytes).
pub fn encode_json(record: &Record) -> Result<Vec<u8>, CodecError> {
    let schema = serde_json::to_string(&json_schema(&record.schema))?;
    encode_json_with(record, &schema)
}

/// Like [`encode_json`] with the `schema` part already serialized (the encoder caches it per
/// schema, so only the payload is built per record). Same bytes as [`encode_json`].
pub(crate) fn encode_json_with(record: &Record, schema_json: &str) -> Result<Vec<u8>, CodecError> {
    let mut out = Vec::with_capacity(schema_json.len() + 24 * record.values.len() + 24);
    out.extend_from_slice(b"{\"schema\":");
    out.extend_from_slice(schema_json.as_bytes());
    out.extend_from_slice(b",\"payload\":{");
    for (i, (field, value)) in record.schema.fields.iter().zip(&record.values).enumerate() {
        if i > 0 {
            out.push(b',');
        }
        serde_json::to_writer(&mut out, &field.name)?;
        out.push(b':');
        write_prim(&mut out, to_prim(field, value)?)?;
    }
    out.extend_from_slice(b"}}");
    Ok(out)
}

/// One primitive as JSON, as [`prim_to_json`] and serde_json print it.
fn write_prim(out: &mut Vec<u8>, prim: Prim) -> Result<(), CodecError> {
    match prim {
        Prim::Null => out.extend_from_slice(b"null"),
        Prim::Int(v) => serde_json::to_writer(&mut *out, &v)?,
        Prim::Bool(v) => out.extend_from_slice(if v { b"true" } else { b"false" }),
        Prim::Str(v) => serde_json::to_writer(&mut *out, &v)?,
        // Non-finite numbers and the f32 → f64 widening exactly as serde_json's `Value` does.
        Prim::Float(_) | Prim::Double(_) | Prim::Bytes(_) => serde_json::to_writer(&mut *out, &prim_to_json(prim))?,
    }
    Ok(())
}

/// [`encode_json_with`] through a `serde_json::Value` tree: what the streamed bytes must equal.
#[cfg(test)]
pub(crate) fn encode_json_tree(record: &Record, schema_json: &str) -> Result<Vec<u8>, CodecError> {
    let mut payload = Map::new();
    for (field, value) in record.schema.fields.iter().zip(&record.values) {
        payload.insert(field.name.clone(), prim_to_json(to_prim(field, value)?));
    }
    let payload = serde_json::to_vec(&Json::Object(payload))?;
    let mut out = Vec::with_capacity(schema_json.len() + payload.len() + 24);
    out.extend_from_slice(b"{\"schema\":");
    out.extend_from_slice(schema_json.as_bytes());
    out.extend_from_slice(b",\"payload\":");
    out.extend_from_slice(&payload);
    out.push(b'}');
    Ok(out)
}

fn bad(message: String) -> CodecError {
    CodecError::BadSchema(message)
}

fn field_type(
    type_name: &str,
    logical: Option<&str>,
    params: &[(String, String)],
) -> Result<FieldType, CodecError> {
    let param = |k: &str| {
        params
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
    };
    Ok(match (logical, type_name) {
        (Some(DECIMAL_NAME), "bytes") => FieldType::Decimal {
            scale: param("scale")
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| bad("Decimal without an integer `scale` parameter".into()))?,
            precision: param(PRECISION_PARAM).and_then(|p| p.parse().ok()),
        },
        (Some(DATE_NAME), "int32") => FieldType::Date,
        (Some(TIME_NAME), "int32") => FieldType::Time,
        (Some(TIMESTAMP_NAME), "int64") => FieldType::Timestamp,
        (Some(DEBEZIUM_DATE_NAME), "int32") => FieldType::DebeziumDate,
        (Some(DEBEZIUM_MICRO_TIME_NAME), "int64") => FieldType::DebeziumMicroTime,
        (Some(DEBEZIUM_TIMESTAMP_NAME), "int64") => FieldType::DebeziumTimestamp,
        (Some(DEBEZIUM_MICRO_TIMESTAMP_NAME), "int64") => FieldType::DebeziumMicroTimestamp,
        (Some(ZONED_TIMESTAMP_NAME), "string") => FieldType::ZonedTimestamp,
        (Some(MICRO_TIME_NAME), "int64") => FieldType::MicroTime,
        (Some(MICRO_TIMESTAMP_NAME), "int64") => FieldType::MicroTimestamp,
        (Some(LOCAL_MICRO_TIMESTAMP_NAME), "int64") => FieldType::LocalMicroTimestamp,
        (_, "int8") => FieldType::Int8,
        (_, "int16") => FieldType::Int16,
        (_, "int32") => FieldType::Int32,
        (_, "int64") => FieldType::Int64,
        (_, "float") => FieldType::Float32,
        (_, "double") => FieldType::Float64,
        (_, "boolean") => FieldType::Boolean,
        (_, "string") => FieldType::String,
        (_, "bytes") => FieldType::Bytes,
        (_, other) => return Err(bad(format!("field type `{other}` is not supported; records must be flat structs of primitive fields"))),
    })
}

fn parse_field(j: &Json) -> Result<Field, CodecError> {
    let name = j
        .get("field")
        .and_then(Json::as_str)
        .ok_or_else(|| bad("a field without a `field` name".into()))?;
    let type_name = j
        .get("type")
        .and_then(Json::as_str)
        .ok_or_else(|| bad(format!("field `{name}` has no `type`")))?;
    let parameters: Vec<(String, String)> = match j.get("parameters") {
        Some(Json::Object(p)) => p
            .iter()
            .map(|(k, v)| {
                v.as_str()
                    .map(|v| (k.clone(), v.to_string()))
                    .ok_or_else(|| bad(format!("parameter `{k}` of `{name}` is not a string")))
            })
            .collect::<Result<_, _>>()?,
        _ => Vec::new(),
    };
    let logical = j.get("name").and_then(Json::as_str);
    Ok(Field {
        name: name.to_string(),
        field_type: field_type(type_name, logical, &parameters)?,
        optional: j.get("optional").and_then(Json::as_bool).unwrap_or(false),
        parameters,
    })
}

/// Reads the `schema` part of an envelope.
pub(crate) fn parse_schema(j: &Json) -> Result<RecordSchema, CodecError> {
    if j.get("type").and_then(Json::as_str) != Some("struct") {
        return Err(bad(
            "the top-level schema must have \"type\":\"struct\"".into()
        ));
    }
    let fields = j
        .get("fields")
        .and_then(Json::as_array)
        .ok_or_else(|| bad("struct schema without a `fields` array".into()))?;
    Ok(RecordSchema {
        name: j.get("name").and_then(Json::as_str).map(str::to_string),
        fields: fields.iter().map(parse_field).collect::<Result<_, _>>()?,
    })
}

fn json_to_prim(field: &Field, j: &Json) -> Result<Prim, ValueError> {
    let wrong = || {
        ValueError::mismatch(field.field_type.connect_type(), j.to_string()).in_column(&field.name)
    };
    Ok(match (&field.field_type, j) {
        (_, Json::Null) => Prim::Null,
        (FieldType::Float32, Json::Number(n)) => Prim::Float(n.as_f64().ok_or_else(wrong)? as f32),
        (FieldType::Float64, Json::Number(n)) => Prim::Double(n.as_f64().ok_or_else(wrong)?),
        (FieldType::Decimal { scale, .. }, Json::Number(n)) => {
            let d = Decimal::parse(&n.to_string()).map_err(|_| wrong())?;
            Prim::Bytes(d.rescale(*scale).ok_or_else(wrong)?.to_be_bytes())
        }
        (FieldType::Bytes | FieldType::Decimal { .. }, Json::String(s)) => {
            Prim::Bytes(BASE64.decode(s).map_err(|_| wrong())?)
        }
        (_, Json::Number(n)) => Prim::Int(n.as_i64().ok_or_else(wrong)?),
        (_, Json::Bool(b)) => Prim::Bool(*b),
        (_, Json::String(s)) => Prim::Str(s.clone()),
        _ => return Err(wrong()),
    })
}

/// Decodes a JSON-with-schema message.
pub fn decode_json(bytes: &[u8]) -> Result<Record, CodecError> {
    decode_json_with(bytes, |schema| Ok(Arc::new(parse_schema(&serde_json::from_str(schema)?)?)))
}

/// The envelope with both parts left as raw JSON text.
#[derive(serde::Deserialize)]
struct RawEnvelope<'a> {
    #[serde(borrow, default)]
    schema: Option<&'a serde_json::value::RawValue>,
    #[serde(borrow, default)]
    payload: Option<&'a serde_json::value::RawValue>,
}

/// Like [`decode_json`], with the record schema got from `schema_of(schema JSON text)`, so a
/// decoder can parse each distinct schema once and reuse it for every message that carries it.
pub(crate) fn decode_json_with(
    bytes: &[u8],
    schema_of: impl FnOnce(&str) -> Result<Arc<RecordSchema>, CodecError>,
) -> Result<Record, CodecError> {
    let envelope: RawEnvelope<'_> = serde_json::from_slice(bytes)?;
    let schema = envelope
        .schema
        .map(|s| s.get())
        .filter(|s| s.trim() != "null")
        .ok_or(CodecError::MissingEnvelope("schema"))?;
    let payload = envelope
        .payload
        .ok_or(CodecError::MissingEnvelope("payload"))?;
    let schema = schema_of(schema)?;
    let payload: Json = serde_json::from_str(payload.get())?;
    let object = payload.as_object().ok_or_else(|| {
        CodecError::Payload(ValueError::mismatch("a JSON object", payload.to_string()))
    })?;
    let values = schema
        .fields
        .iter()
        .map(|f| {
            let prim = json_to_prim(f, object.get(&f.name).unwrap_or(&Json::Null))?;
            from_prim(f, prim)
        })
        .collect::<Result<_, _>>()?;
    Ok(Record { schema, values })
}
