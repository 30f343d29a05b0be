//! Error types. Each says what is wrong and, where there is one, what to do about it.
//! `is_transient()` tells retry-worthy failures (registry or database unreachable) from definite
//! ones (a record or schema that can never be processed).

use thiserror::Error;

/// Building a [`TableSchema`](crate::TableSchema) from a table map or `information_schema` failed.
#[derive(Debug, Error)]
pub enum SchemaError {
    /// The table-map event lacks the optional metadata this crate needs.
    #[error("table map of `{table}` has no {what}; set binlog_row_metadata=FULL on the server (MariaDB >= 10.5) and restart the reader")]
    MissingMetadata { table: String, what: &'static str },
    /// A column type this crate does not know.
    #[error("table `{table}` column `{column}` has type {type_name}, which is not supported; exclude the table or change the column type")]
    UnsupportedType {
        table: String,
        column: String,
        type_name: String,
    },
    /// The table does not exist (or the user cannot see it).
    #[error("table `{database}`.`{table}` not found in information_schema; check the name and that the user has SELECT on it")]
    TableNotFound { database: String, table: String },
    /// The table-map event could not be parsed.
    #[error("table map of `{table}` is malformed: {message}")]
    Malformed { table: String, message: String },
    /// The query against `information_schema` failed.
    #[error("reading information_schema failed: {0}")]
    Query(#[from] mysql_async::Error),
}

impl SchemaError {
    /// Whether retrying later may succeed (a lost connection).
    pub fn is_transient(&self) -> bool {
        matches!(self, SchemaError::Query(mysql_async::Error::Io(_)))
    }
}

/// A single value could not be converted.
#[derive(Debug, Error)]
pub enum ValueError {
    /// The value's kind does not fit the column or field.
    #[error("expected {expected}, got {found}")]
    Mismatch { expected: String, found: String },
    /// The number does not fit the target type.
    #[error("{value} is out of range for {target}")]
    OutOfRange { value: String, target: String },
    /// DECIMAL text that is not a plain decimal number.
    #[error("`{text}` is not a decimal number")]
    BadDecimal { text: String },
    /// Date/time text in an unexpected form.
    #[error("`{text}` is not a valid {kind}")]
    BadTemporal { text: String, kind: &'static str },
    /// Bytes that are not valid in the column's character set.
    #[error("bytes are not valid {charset}")]
    InvalidText { charset: String },
    /// Bytes that have no character in the column's character set (MariaDB shows them as `?`).
    #[error("bytes 0x{bytes} at offset {offset} have no character in MariaDB's {charset} (the server shows them as '?'); correct the value, or convert the column to utf8mb4, or exclude the table")]
    Unmappable {
        charset: String,
        offset: usize,
        bytes: String,
    },
    /// A character set this crate cannot decode.
    #[error("character set {charset} is not supported; convert the column to utf8mb4 (ALTER TABLE ... CONVERT TO CHARACTER SET utf8mb4) or exclude the table")]
    UnsupportedCharset { charset: String },
    /// ENUM index or SET bit without a label.
    #[error("{what} has no label in the column definition; the table map is stale")]
    NoLabel { what: String },
    /// Binary JSON that could not be turned into text.
    #[error("JSON value cannot be converted to text: {0}")]
    Json(String),
    /// The same problem, in a named column or field.
    #[error("column `{column}`: {source}")]
    InColumn {
        column: String,
        #[source]
        source: Box<ValueError>,
    },
}

impl ValueError {
    /// Attaches the column or field name.
    pub fn in_column(self, column: &str) -> ValueError {
        ValueError::InColumn {
            column: column.to_string(),
            source: Box::new(self),
        }
    }

    /// Whether this is text that cannot be decoded (invalid or unmappable bytes, unsupported
    /// character set): a fault of the table's data or definition, not of the pipeline.
    pub fn is_undecodable_text(&self) -> bool {
        match self {
            ValueError::InvalidText { .. }
            | ValueError::Unmappable { .. }
            | ValueError::UnsupportedCharset { .. } => true,
            ValueError::InColumn { source, .. } => source.is_undecodable_text(),
            _ => false,
        }
    }

    pub(crate) fn mismatch(expected: impl Into<String>, found: impl Into<String>) -> ValueError {
        ValueError::Mismatch {
            expected: expected.into(),
            found: found.into(),
        }
    }
}

/// A record does not fit its format (JSON-with-schema or Avro), or a schema is not understood.
#[derive(Debug, Error)]
pub enum CodecError {
    /// The bytes are not JSON.
    #[error("not valid JSON: {0}")]
    NotJson(#[from] serde_json::Error),
    /// A JSON message without the `schema`/`payload` envelope.
    #[error("JSON message has no `{0}`; produce records as Kafka Connect JsonConverter does with schemas.enable=true: {{\"schema\":{{...}},\"payload\":{{...}}}}")]
    MissingEnvelope(&'static str),
    /// A schema this crate cannot read (wrong shape, unsupported type).
    #[error("schema not understood: {0}")]
    BadSchema(String),
    /// The payload does not match its schema.
    #[error("payload does not match the schema: {0}")]
    Payload(#[from] ValueError),
    /// Avro encoding or decoding failed.
    #[error("Avro: {0}")]
    Avro(String),
}

/// The schema registry refused a request or could not be reached.
#[derive(Debug, Error)]
pub enum RegistryError {
    /// Network or TLS failure talking to the registry (transient); `message` names the cause and
    /// the setting that fixes it.
    #[error("schema registry at {url} unreachable: {message}")]
    Unreachable { url: String, message: String },
    /// The registry rejected a schema as incompatible with the subject's existing versions.
    #[error("schema for subject `{subject}` is incompatible with its registered versions ({message}); make the change compatible (e.g. add columns as NULL) or change the subject's compatibility")]
    Incompatible { subject: String, message: String },
    /// The registry rejected a schema as invalid.
    #[error("registry rejected the schema for subject `{subject}` as invalid: {message}")]
    InvalidSchema { subject: String, message: String },
    /// No schema has this id.
    #[error("schema id {id} is not known to the registry; the message was written against another registry or the schema was deleted")]
    UnknownSchemaId { id: u32 },
    /// The subject does not exist.
    #[error("subject `{subject}` not found in the registry")]
    SubjectNotFound { subject: String },
    /// Any other error response.
    #[error("schema registry answered {status} (error code {code}): {message}")]
    Http {
        status: u16,
        code: i64,
        message: String,
    },
}

impl RegistryError {
    /// Whether retrying later may succeed.
    pub fn is_transient(&self) -> bool {
        match self {
            RegistryError::Unreachable { .. } => true,
            RegistryError::Http { status, .. } => *status >= 500,
            _ => false,
        }
    }
}

/// Encoding a record failed.
#[derive(Debug, Error)]
pub enum EncodeError {
    /// Registering or looking up the schema failed.
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// The record does not fit its schema.
    #[error(transparent)]
    Codec(#[from] CodecError),
}

impl EncodeError {
    /// Whether retrying later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, EncodeError::Registry(e) if e.is_transient())
    }
}

/// What is wrong with a message that could not be decoded.
#[derive(Debug, Error)]
pub enum DecodeErrorKind {
    /// Empty key or value where a record was expected.
    #[error("message is empty")]
    Empty,
    /// Neither Avro (magic byte 0) nor JSON (`{`).
    #[error("unknown format: first byte is 0x{0:02x}; expected 0x00 (Avro, Confluent wire format) or '{{' (JSON with schema)")]
    UnknownFormat(u8),
    /// Confluent wire format shorter than its 5-byte header, or Avro body cut short.
    #[error("truncated message: {0}")]
    Truncated(String),
    /// An Avro message, but the decoder has no registry to resolve its schema id.
    #[error("message is Avro (schema id {0}) but no schema registry is configured; set the registry URL")]
    NoRegistry(u32),
    /// The schema id could not be resolved.
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// The body does not match its schema, or the schema is not understood.
    #[error(transparent)]
    Codec(#[from] CodecError),
}

/// A message could not be decoded; names where it is.
#[derive(Debug, Error)]
#[error("cannot decode {part} of {topic}[{partition}]@{offset}: {kind}")]
pub struct DecodeError {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    /// `key` or `value`.
    pub part: &'static str,
    #[source]
    pub kind: DecodeErrorKind,
}

impl DecodeError {
    /// Whether retrying later may succeed (registry unreachable); otherwise the message can never
    /// be decoded and belongs in the dead-letter queue.
    pub fn is_transient(&self) -> bool {
        matches!(&self.kind, DecodeErrorKind::Registry(e) if e.is_transient())
    }
}
