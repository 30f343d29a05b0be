//! Message bytes to records, format detected per message.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use schema_registry_converter::schema_registry_common::{get_bytes_result, BytesResult};

use crate::avro::AvroSchema;
use crate::connect::Record;
use crate::encode::{Format, Part};
use crate::error::{CodecError, DecodeError, DecodeErrorKind};
use crate::connect::RecordSchema;
use crate::json::{decode_json_with, parse_schema};
use crate::registry::Registry;

/// Where a message is, for error messages.
#[derive(Debug, Clone, Copy)]
pub struct MessageRef<'a> {
    pub topic: &'a str,
    pub partition: i32,
    pub offset: i64,
}

/// Where a Kafka message is, owned: what a change or an error keeps of its message.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MessageId {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
}

impl MessageId {
    pub fn as_ref(&self) -> MessageRef<'_> {
        MessageRef { topic: &self.topic, partition: self.partition, offset: self.offset }
    }
}

impl std::fmt::Display for MessageId {
    /// `topic[partition]@offset`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}[{}]@{}", self.topic, self.partition, self.offset)
    }
}

impl From<MessageRef<'_>> for MessageId {
    fn from(m: MessageRef<'_>) -> Self {
        MessageId { topic: m.topic.to_string(), partition: m.partition, offset: m.offset }
    }
}

/// The format of a message from its first byte: 0 = Avro (Confluent wire format), `{` (after
/// optional whitespace) = JSON with schema.
pub fn detect_format(bytes: &[u8]) -> Result<Format, DecodeErrorKind> {
    match bytes.iter().find(|b| !b.is_ascii_whitespace()) {
        None => Err(DecodeErrorKind::Empty),
        Some(0) if bytes[0] == 0 => Ok(Format::Avro),
        Some(b'{') => Ok(Format::Json),
        Some(_) => Err(DecodeErrorKind::UnknownFormat(bytes[0])),
    }
}

/// Decodes messages of either format; Avro schema ids are resolved through the registry once
/// and cached.
#[derive(Debug)]
pub struct Decoder {
    registry: Option<Registry>,
    schemas: Mutex<HashMap<u32, Arc<AvroSchema>>>,
    /// Parsed JSON-with-schema schemas by their JSON text.
    json_schemas: Mutex<HashMap<String, Arc<RecordSchema>>>,
}

/// JSON schemas kept at most (people typing records produce a new text each time).
const JSON_SCHEMAS_MAX: usize = 1024;

impl Decoder {
    /// A decoder; without a registry, Avro messages fail with an error saying to configure one.
    pub fn new(registry: Option<Registry>) -> Decoder {
        Decoder {
            registry,
            schemas: Mutex::default(),
            json_schemas: Mutex::default(),
        }
    }

    /// Decodes the `part` bytes of the message at `at`.
    pub async fn decode(
        &self,
        at: MessageRef<'_>,
        part: Part,
        bytes: &[u8],
    ) -> Result<Record, DecodeError> {
        self.decode_kind(bytes).await.map_err(|kind| DecodeError {
            topic: at.topic.to_string(),
            partition: at.partition,
            offset: at.offset,
            part: part.as_str(),
            kind,
        })
    }

    fn json_schema(&self, text: &str) -> Result<Arc<RecordSchema>, CodecError> {
        let lock = || self.json_schemas.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(found) = lock().get(text) {
            return Ok(Arc::clone(found));
        }
        let parsed = Arc::new(parse_schema(&serde_json::from_str(text)?)?);
        let mut cache = lock();
        if cache.len() >= JSON_SCHEMAS_MAX {
            cache.clear();
        }
        cache.insert(text.to_string(), Arc::clone(&parsed));
        Ok(parsed)
    }

    async fn decode_kind(&self, bytes: &[u8]) -> Result<Record, DecodeErrorKind> {
        match detect_format(bytes)? {
            Format::Json => Ok(decode_json_with(bytes, |text| self.json_schema(text))?),
            Format::Avro => {
                let BytesResult::Valid(id, body) = get_bytes_result(Some(bytes)) else {
                    return Err(DecodeErrorKind::Truncated(format!(
                        "{} bytes, but the Confluent wire format needs a 5-byte header",
                        bytes.len()
                    )));
                };
                let schema = self.schema(id).await?;
                schema.decode(body).map_err(|e| match e {
                    CodecError::Avro(m)
                        if m.contains("failed to fill whole buffer")
                            || m.contains("UnexpectedEof") =>
                    {
                        DecodeErrorKind::Truncated(format!(
                            "Avro body of schema id {id} ends early: {m}"
                        ))
                    }
                    other => DecodeErrorKind::Codec(other),
                })
            }
        }
    }

    async fn schema(&self, id: u32) -> Result<Arc<AvroSchema>, DecodeErrorKind> {
        if let Some(found) = self.cache().get(&id) {
            return Ok(Arc::clone(found));
        }
        let registry = self
            .registry
            .as_ref()
            .ok_or(DecodeErrorKind::NoRegistry(id))?;
        let text = registry.schema_by_id(id).await?;
        let schema = Arc::new(AvroSchema::parse(&text)?);
        self.cache().insert(id, Arc::clone(&schema));
        Ok(schema)
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, HashMap<u32, Arc<AvroSchema>>> {
        self.schemas
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
