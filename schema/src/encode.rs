//! Records to message bytes, in either format.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use schema_registry_converter::schema_registry_common::get_payload;

use crate::avro::{avro_schema, AvroSchema};
use crate::connect::Record;
use crate::error::EncodeError;
use crate::connect::RecordSchema;
use crate::json::{encode_json_with, json_schema};
use crate::registry::Registry;

/// A record format on a topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// Avro in the Confluent wire format: byte 0, 4-byte big-endian schema id, Avro body.
    Avro,
    /// Kafka Connect JSON with schema.
    Json,
}

/// Key or value of a message; decides the registry subject `<topic>-key` / `<topic>-value`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Part {
    Key,
    Value,
}

impl Part {
    /// `key` or `value`.
    pub fn as_str(self) -> &'static str {
        match self {
            Part::Key => "key",
            Part::Value => "value",
        }
    }

    /// The registry subject for this part on `topic` (TopicNameStrategy).
    pub fn subject(self, topic: &str) -> String {
        format!("{topic}-{}", self.as_str())
    }
}

/// Registered schemas by (subject, Avro schema text): id and parsed schema.
type SchemaCache = HashMap<(String, String), (u32, Arc<AvroSchema>)>;

/// What the encoder prepared for one `Arc<RecordSchema>` on one topic and part: the serialized
/// JSON schema, or the Avro schema and its registry id. Keyed by the `Arc`'s address, which stays
/// unique because the entry holds a clone of the `Arc`; this spares rebuilding and hashing the
/// schema text for every record of a table.
#[derive(Debug)]
struct Prepared {
    _keep: Arc<RecordSchema>,
    topic: String,
    json: Option<Arc<str>>,
    avro: Option<(u32, Arc<AvroSchema>)>,
}

type PreparedCache = HashMap<(usize, Part), Prepared>;

/// Entries kept at most; schemas decoded per message (new `Arc`s each time) would otherwise grow it.
const PREPARED_MAX: usize = 4096;

/// Encodes records; for Avro registers each distinct schema once per subject and reuses its id.
#[derive(Debug)]
pub struct Encoder {
    format: Format,
    registry: Option<Registry>,
    schemas: Mutex<SchemaCache>,
    prepared: Mutex<PreparedCache>,
}

impl Encoder {
    /// An encoder writing Kafka Connect JSON with schema.
    pub fn json() -> Encoder {
        Encoder {
            format: Format::Json,
            registry: None,
            schemas: Mutex::default(),
            prepared: Mutex::default(),
        }
    }

    /// An encoder writing Avro, registering schemas in `registry`.
    pub fn avro(registry: Registry) -> Encoder {
        Encoder {
            format: Format::Avro,
            registry: Some(registry),
            schemas: Mutex::default(),
            prepared: Mutex::default(),
        }
    }

    /// The format this encoder writes.
    pub fn format(&self) -> Format {
        self.format
    }

    /// Encodes `record` as the `part` of a message on `topic`. For Avro, the record's schema is
    /// registered under `<topic>-key`/`<topic>-value` the first time this encoder sees it (a
    /// changed schema is a new registration, hence a new version and id).
    pub async fn encode(
        &self,
        topic: &str,
        part: Part,
        record: &Record,
    ) -> Result<Vec<u8>, EncodeError> {
        let ptr = Arc::as_ptr(&record.schema) as usize;
        let hit = {
            let prepared = self.prepared_cache();
            prepared
                .get(&(ptr, part))
                .filter(|p| p.topic == topic)
                .map(|p| (p.json.clone(), p.avro.clone()))
        };
        let (json, avro) = match hit {
            Some(found) => found,
            None => {
                let (json, avro) = match self.format {
                    Format::Json => (Some(Arc::from(serde_json::to_string(&json_schema(&record.schema)).map_err(crate::error::CodecError::from)?)), None),
                    Format::Avro => (None, Some(self.register(topic, part, &record.schema).await?)),
                };
                let mut prepared = self.prepared_cache();
                if prepared.len() >= PREPARED_MAX {
                    prepared.clear();
                }
                prepared.insert(
                    (ptr, part),
                    Prepared { _keep: Arc::clone(&record.schema), topic: topic.to_string(), json: json.clone(), avro: avro.clone() },
                );
                (json, avro)
            }
        };
        match (json, avro) {
            (Some(schema_json), _) => Ok(encode_json_with(record, &schema_json)?),
            (_, Some((id, schema))) => Ok(get_payload(id, schema.encode(&record.values)?)),
            (None, None) => unreachable!("an encoder prepares JSON or Avro"),
        }
    }

    /// The registry id and parsed Avro schema of `schema` under `<topic>-<part>`, registering it
    /// the first time this encoder sees that schema text for that subject.
    async fn register(&self, topic: &str, part: Part, schema: &RecordSchema) -> Result<(u32, Arc<AvroSchema>), EncodeError> {
        let Some(registry) = self.registry.as_ref() else {
            unreachable!("an Avro encoder has a registry")
        };
        let key = (part.subject(topic), avro_schema(schema));
        if let Some(found) = self.cache().get(&key).cloned() {
            return Ok(found);
        }
        let parsed = Arc::new(AvroSchema::parse(&key.1)?);
        let id = registry.register(&key.0, &key.1).await?;
        self.cache().insert(key, (id, Arc::clone(&parsed)));
        Ok((id, parsed))
    }

    fn prepared_cache(&self) -> std::sync::MutexGuard<'_, PreparedCache> {
        self.prepared
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, SchemaCache> {
        self.schemas
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connect::{Field, FieldType};
    use crate::value::Value;

    #[test]
    fn cached_json_encoding_is_byte_identical_to_encode_json() {
        let schema = Arc::new(RecordSchema {
            name: Some("t.Value".into()),
            fields: vec![
                Field::new("id", FieldType::Int32, false),
                Field::new("name", FieldType::String, true),
            ],
        });
        let encoder = Encoder::json();
        let rt = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
        for name in [Value::String("a \"quoted\" 😀".into()), Value::Null] {
            let record = Record { schema: Arc::clone(&schema), values: vec![Value::Int(7), name] };
            let cached = rt.block_on(encoder.encode("t", Part::Value, &record)).expect("encodes");
            assert_eq!(cached, crate::json::encode_json(&record).expect("encodes"));
        }
        // Same schema on another topic is prepared separately.
        let record = Record { schema, values: vec![Value::Int(1), Value::Null] };
        assert!(rt.block_on(encoder.encode("other", Part::Value, &record)).is_ok());
    }
}
