//! Records to message bytes, in either format.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use schema_registry_converter::schema_registry_common::get_payload;

use crate::avro::{avro_schema, AvroSchema};
use crate::connect::Record;
use crate::error::EncodeError;
use crate::json::encode_json;
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

/// Encodes records; for Avro registers each distinct schema once per subject and reuses its id.
#[derive(Debug)]
pub struct Encoder {
    format: Format,
    registry: Option<Registry>,
    schemas: Mutex<SchemaCache>,
}

impl Encoder {
    /// An encoder writing Kafka Connect JSON with schema.
    pub fn json() -> Encoder {
        Encoder {
            format: Format::Json,
            registry: None,
            schemas: Mutex::default(),
        }
    }

    /// An encoder writing Avro, registering schemas in `registry`.
    pub fn avro(registry: Registry) -> Encoder {
        Encoder {
            format: Format::Avro,
            registry: Some(registry),
            schemas: Mutex::default(),
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
        let Some(registry) = (self.format == Format::Avro)
            .then_some(self.registry.as_ref())
            .flatten()
        else {
            return Ok(encode_json(record)?);
        };
        let subject = part.subject(topic);
        let text = avro_schema(&record.schema);
        let key = (subject, text);
        let cached = self.cache().get(&key).cloned();
        let (id, schema) = match cached {
            Some(found) => found,
            None => {
                let schema = Arc::new(AvroSchema::parse(&key.1)?);
                let id = registry.register(&key.0, &key.1).await?;
                self.cache().insert(key, (id, Arc::clone(&schema)));
                (id, schema)
            }
        };
        let body = schema.encode(&record.values)?;
        Ok(get_payload(id, body))
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, SchemaCache> {
        self.schemas
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
