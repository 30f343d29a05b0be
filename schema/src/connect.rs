//! Record schemas at the Kafka Connect level, shared by the JSON and Avro formats.
//!
//! A topic carries two record schemas: the key (primary-key columns, never optional) and the
//! value (all columns, optional where the column is nullable). Both are named after the topic:
//! `<topic>.Key` and `<topic>.Value` (characters other than ASCII letters, digits and `_` in the
//! topic are replaced by `_`), in both formats.
//!
//! Every field made from a column carries the parameter [`COLUMN_TYPE_PARAM`] with the column's
//! exact DDL type, so a sink can recreate the column; [`sql_type`] falls back to a type chosen from
//! the field type when the parameter is absent (records typed by hand).

use std::sync::Arc;

use crate::column::{Column, ColumnType, IntWidth, TableSchema};
use crate::value::Value;

/// Field parameter holding the MariaDB column type, e.g. `varchar(20)`.
pub const COLUMN_TYPE_PARAM: &str = "cdc.column.type";
/// Connect's Decimal logical name.
pub const DECIMAL_NAME: &str = "org.apache.kafka.connect.data.Decimal";
/// Connect's Date logical name (int32 days since the epoch).
pub const DATE_NAME: &str = "org.apache.kafka.connect.data.Date";
/// Connect's Time logical name (int32 milliseconds of the day).
pub const TIME_NAME: &str = "org.apache.kafka.connect.data.Time";
/// Connect's Timestamp logical name (int64 milliseconds since the epoch, UTC).
pub const TIMESTAMP_NAME: &str = "org.apache.kafka.connect.data.Timestamp";
/// Debezium's Date: int32 days since 1970-01-01 (DATE).
pub const DEBEZIUM_DATE_NAME: &str = "io.debezium.time.Date";
/// Debezium's MicroTime: int64 microseconds, signed, may exceed 24 hours (TIME).
pub const DEBEZIUM_MICRO_TIME_NAME: &str = "io.debezium.time.MicroTime";
/// Debezium's Timestamp: int64 milliseconds since 1970-01-01 00:00 of a zone-less wall clock
/// read as if UTC (DATETIME(0..3)).
pub const DEBEZIUM_TIMESTAMP_NAME: &str = "io.debezium.time.Timestamp";
/// Debezium's MicroTimestamp: int64 microseconds, wall clock as if UTC (DATETIME(4..6)).
pub const DEBEZIUM_MICRO_TIMESTAMP_NAME: &str = "io.debezium.time.MicroTimestamp";
/// Debezium's ZonedTimestamp: ISO-8601 string with zone; here always UTC (`…Z`) (TIMESTAMP).
pub const ZONED_TIMESTAMP_NAME: &str = "io.debezium.time.ZonedTimestamp";
/// Record format 1 (read only): int64 signed microseconds, a TIME value.
pub const MICRO_TIME_NAME: &str = "cdc.MicroTime";
/// Record format 1 (read only): int64 microseconds since the epoch, UTC, a TIMESTAMP value.
pub const MICRO_TIMESTAMP_NAME: &str = "cdc.MicroTimestamp";
/// Record format 1 (read only): int64 microseconds of a zone-less wall clock, a DATETIME value.
pub const LOCAL_MICRO_TIMESTAMP_NAME: &str = "cdc.LocalMicroTimestamp";
/// Decimal parameter carrying the precision (as Confluent's converters name it).
pub const PRECISION_PARAM: &str = "connect.decimal.precision";

/// The type of one field: a Connect primitive, or a logical type over one.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum FieldType {
    Int8,
    Int16,
    Int32,
    Int64,
    Float32,
    Float64,
    Boolean,
    String,
    Bytes,
    /// Connect Decimal: bytes of the unscaled value, `scale` parameter; precision when known.
    Decimal {
        precision: Option<u32>,
        scale: u32,
    },
    /// Connect Date: int32 days since 1970-01-01.
    Date,
    /// Connect Time: int32 milliseconds since midnight.
    Time,
    /// Connect Timestamp: int64 milliseconds since the epoch (UTC).
    Timestamp,
    /// [`DEBEZIUM_DATE_NAME`]: int32 days since 1970-01-01.
    DebeziumDate,
    /// [`DEBEZIUM_MICRO_TIME_NAME`]: int64 signed microseconds.
    DebeziumMicroTime,
    /// [`DEBEZIUM_TIMESTAMP_NAME`]: int64 milliseconds of a zone-less wall clock.
    DebeziumTimestamp,
    /// [`DEBEZIUM_MICRO_TIMESTAMP_NAME`]: int64 microseconds of a zone-less wall clock.
    DebeziumMicroTimestamp,
    /// [`ZONED_TIMESTAMP_NAME`]: ISO-8601 text of an instant.
    ZonedTimestamp,
    /// [`MICRO_TIME_NAME`] (format 1): int64 signed microseconds.
    MicroTime,
    /// [`MICRO_TIMESTAMP_NAME`] (format 1): int64 microseconds since the epoch (UTC).
    MicroTimestamp,
    /// [`LOCAL_MICRO_TIMESTAMP_NAME`] (format 1): int64 microseconds of a zone-less wall clock.
    LocalMicroTimestamp,
}

/// How temporal columns are typed (`time.precision.mode`, with Debezium's values).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimePrecisionMode {
    /// Debezium's default: DATE → `io.debezium.time.Date`, TIME → `MicroTime`, DATETIME(0..3) →
    /// `Timestamp` (ms), DATETIME(4..6) → `MicroTimestamp`, TIMESTAMP → `ZonedTimestamp`.
    #[default]
    AdaptiveTimeMicroseconds,
    /// Kafka Connect's own Date / Time / Timestamp (milliseconds) for DATE, TIME and DATETIME
    /// value fields; TIMESTAMP stays `ZonedTimestamp` (as in Debezium) and key fields keep the
    /// adaptive types, which hold every value exactly.
    Connect,
}

/// The kind of [`Value`] a temporal field holds, from its field type and, where the type alone
/// does not say (Connect `Timestamp`), from its [`COLUMN_TYPE_PARAM`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Temporal {
    Date,
    Time,
    DateTime,
    Timestamp,
}

impl Field {
    /// The Connect schema parameters as a JSON object (what both record formats carry).
    pub(crate) fn parameters_json(&self) -> serde_json::Map<String, serde_json::Value> {
        self.parameters.iter().map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone()))).collect()
    }

    /// The temporal value kind of this field, if it is temporal.
    pub(crate) fn temporal(&self) -> Option<Temporal> {
        use FieldType as F;
        Some(match self.field_type {
            F::Date | F::DebeziumDate => Temporal::Date,
            F::Time | F::DebeziumMicroTime | F::MicroTime => Temporal::Time,
            F::DebeziumTimestamp | F::DebeziumMicroTimestamp | F::LocalMicroTimestamp => {
                Temporal::DateTime
            }
            F::ZonedTimestamp | F::MicroTimestamp => Temporal::Timestamp,
            F::Timestamp if self.column_type().is_some_and(|t| t.starts_with("datetime")) => {
                Temporal::DateTime
            }
            F::Timestamp => Temporal::Timestamp,
            _ => return None,
        })
    }

    /// The fsp of the column type (`timestamp(3)` → 3); `None` when no column type is recorded.
    pub(crate) fn fsp(&self) -> Option<u8> {
        let t = self.column_type()?;
        let open = t.find('(');
        Some(match open {
            Some(at) => t[at + 1..].trim_end_matches(')').parse().ok()?,
            None => 0,
        })
    }
}

impl FieldType {
    /// The Connect schema type (`int32`, `bytes`, …) this field is written as.
    pub fn connect_type(&self) -> &'static str {
        match self {
            FieldType::Int8 => "int8",
            FieldType::Int16 => "int16",
            FieldType::Int32
            | FieldType::Date
            | FieldType::Time
            | FieldType::DebeziumDate => "int32",
            FieldType::Int64
            | FieldType::Timestamp
            | FieldType::DebeziumMicroTime
            | FieldType::DebeziumTimestamp
            | FieldType::DebeziumMicroTimestamp
            | FieldType::MicroTime
            | FieldType::MicroTimestamp
            | FieldType::LocalMicroTimestamp => "int64",
            FieldType::Float32 => "float",
            FieldType::Float64 => "double",
            FieldType::Boolean => "boolean",
            FieldType::String | FieldType::ZonedTimestamp => "string",
            FieldType::Bytes | FieldType::Decimal { .. } => "bytes",
        }
    }

    /// The logical name (`org.apache.kafka.connect.data.Decimal`, …), if any.
    pub fn logical_name(&self) -> Option<&'static str> {
        match self {
            FieldType::Decimal { .. } => Some(DECIMAL_NAME),
            FieldType::Date => Some(DATE_NAME),
            FieldType::Time => Some(TIME_NAME),
            FieldType::Timestamp => Some(TIMESTAMP_NAME),
            FieldType::DebeziumDate => Some(DEBEZIUM_DATE_NAME),
            FieldType::DebeziumMicroTime => Some(DEBEZIUM_MICRO_TIME_NAME),
            FieldType::DebeziumTimestamp => Some(DEBEZIUM_TIMESTAMP_NAME),
            FieldType::DebeziumMicroTimestamp => Some(DEBEZIUM_MICRO_TIMESTAMP_NAME),
            FieldType::ZonedTimestamp => Some(ZONED_TIMESTAMP_NAME),
            FieldType::MicroTime => Some(MICRO_TIME_NAME),
            FieldType::MicroTimestamp => Some(MICRO_TIMESTAMP_NAME),
            FieldType::LocalMicroTimestamp => Some(LOCAL_MICRO_TIMESTAMP_NAME),
            _ => None,
        }
    }

    /// The field type a column's values are written as in the default
    /// `adaptive_time_microseconds` mode (see the crate docs' mapping table).
    pub fn for_column(column_type: &ColumnType) -> FieldType {
        FieldType::for_column_in(column_type, TimePrecisionMode::AdaptiveTimeMicroseconds)
    }

    /// The field type a column's values are written as in `mode`.
    pub fn for_column_in(column_type: &ColumnType, mode: TimePrecisionMode) -> FieldType {
        let connect = mode == TimePrecisionMode::Connect;
        match column_type {
            ColumnType::Integer { width, unsigned } => match (width, unsigned) {
                (IntWidth::Tiny, false) => FieldType::Int8,
                (IntWidth::Tiny, true) | (IntWidth::Small, false) => FieldType::Int16,
                (IntWidth::Small, true) | (IntWidth::Medium, _) | (IntWidth::Int, false) => {
                    FieldType::Int32
                }
                (IntWidth::Int, true) | (IntWidth::Big, false) => FieldType::Int64,
                (IntWidth::Big, true) => FieldType::Decimal {
                    precision: Some(20),
                    scale: 0,
                },
            },
            ColumnType::Decimal { precision, scale } => FieldType::Decimal {
                precision: Some(u32::from(*precision)),
                scale: u32::from(*scale),
            },
            ColumnType::Float => FieldType::Float32,
            ColumnType::Double => FieldType::Float64,
            ColumnType::Bit { bits: 1 } => FieldType::Boolean,
            ColumnType::Year => FieldType::Int32,
            ColumnType::Date if connect => FieldType::Date,
            ColumnType::Date => FieldType::DebeziumDate,
            ColumnType::Time { .. } if connect => FieldType::Time,
            ColumnType::Time { .. } => FieldType::DebeziumMicroTime,
            ColumnType::DateTime { .. } if connect => FieldType::Timestamp,
            ColumnType::DateTime { fsp } if *fsp <= 3 => FieldType::DebeziumTimestamp,
            ColumnType::DateTime { .. } => FieldType::DebeziumMicroTimestamp,
            ColumnType::Timestamp { .. } => FieldType::ZonedTimestamp,
            ColumnType::Char { .. }
            | ColumnType::VarChar { .. }
            | ColumnType::Text { .. }
            | ColumnType::Enum { .. }
            | ColumnType::Set { .. }
            | ColumnType::Json => FieldType::String,
            ColumnType::Bit { .. }
            | ColumnType::Binary { .. }
            | ColumnType::VarBinary { .. }
            | ColumnType::Blob { .. }
            | ColumnType::Geometry => FieldType::Bytes,
        }
    }
}

/// One field of a record schema.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Field {
    /// Field name (the column name).
    pub name: String,
    /// Field type.
    pub field_type: FieldType,
    /// Whether the value may be null.
    pub optional: bool,
    /// Connect schema parameters in insertion order (`scale`, [`PRECISION_PARAM`],
    /// [`COLUMN_TYPE_PARAM`], …).
    pub parameters: Vec<(String, String)>,
}

impl Field {
    /// The value field for a column in the default mode (see [`Field::for_column_in`]).
    pub fn for_column(column: &Column) -> Field {
        Field::for_column_in(column, TimePrecisionMode::AdaptiveTimeMicroseconds)
    }

    /// The value field for a column in `mode`: type from the mapping table, `optional` =
    /// nullable (always for DATE, DATETIME and TIMESTAMP, which may hold a zero date, and in
    /// `connect` mode TIME, whose Connect type cannot hold every value: see `inexact.rs`),
    /// parameters with the Decimal scale/precision and the column type.
    pub fn for_column_in(column: &Column, mode: TimePrecisionMode) -> Field {
        let field_type = FieldType::for_column_in(&column.column_type, mode);
        let may_be_inexact = match column.column_type {
            ColumnType::Date | ColumnType::DateTime { .. } | ColumnType::Timestamp { .. } => true,
            ColumnType::Time { .. } => mode == TimePrecisionMode::Connect,
            _ => false,
        };
        let mut field = Field::new(&column.name, field_type, column.nullable || may_be_inexact);
        field
            .parameters
            .push((COLUMN_TYPE_PARAM.to_string(), column.column_type.sql()));
        field
    }

    /// A field of the given type, with the parameters its logical type requires.
    pub fn new(name: &str, field_type: FieldType, optional: bool) -> Field {
        let mut parameters = Vec::new();
        if let FieldType::Decimal { precision, scale } = &field_type {
            parameters.push(("scale".to_string(), scale.to_string()));
            if let Some(p) = precision {
                parameters.push((PRECISION_PARAM.to_string(), p.to_string()));
            }
        }
        Field {
            name: name.to_string(),
            field_type,
            optional,
            parameters,
        }
    }

    /// The value of parameter `key`, if present.
    pub fn parameter(&self, key: &str) -> Option<&str> {
        self.parameters
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The MariaDB column type this field was made from ([`COLUMN_TYPE_PARAM`]), if recorded.
    pub fn column_type(&self) -> Option<&str> {
        self.parameter(COLUMN_TYPE_PARAM)
    }
}

/// A struct schema: the key or the value of the records of one topic.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RecordSchema {
    /// Record name, `<topic>.Key` or `<topic>.Value` (any name when decoded from a message).
    pub name: Option<String>,
    /// Fields in column order.
    pub fields: Vec<Field>,
}

impl RecordSchema {
    /// The field called `name`, if any.
    pub fn field(&self, name: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.name == name)
    }
}

/// A record: a schema and one value per field, in field order.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub schema: Arc<RecordSchema>,
    pub values: Vec<Value>,
}

/// `name` as an Avro name: each character outside `[A-Za-z0-9_]` as `_`, and `_` before a
/// leading digit.
pub(crate) fn avro_name(name: &str) -> String {
    let clean: String = name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '_' }).collect();
    if clean.starts_with(|c: char| c.is_ascii_digit()) || clean.is_empty() {
        format!("_{clean}")
    } else {
        clean
    }
}

fn record_name(topic: &str, suffix: &str) -> String {
    format!("{}.{suffix}", avro_name(topic))
}

/// The key schema of `table` on `topic`: the primary-key columns in key order, none optional,
/// temporal ones in the adaptive types whatever the mode (a key can be neither null nor
/// inexact: zero dates are written as the sentinels of `temporal.rs`).
pub fn key_schema(topic: &str, table: &TableSchema) -> RecordSchema {
    let fields = table
        .primary_key_columns()
        .into_iter()
        .map(|c| {
            let mut field = Field::for_column(c);
            field.optional = false;
            field
        })
        .collect();
    RecordSchema {
        name: Some(record_name(topic, "Key")),
        fields,
    }
}

/// The value schema of `table` on `topic` in the default mode (see [`value_schema_in`]).
pub fn value_schema(topic: &str, table: &TableSchema) -> RecordSchema {
    value_schema_in(topic, table, TimePrecisionMode::AdaptiveTimeMicroseconds)
}

/// The value schema of `table` on `topic`: every column, optional where nullable or where the
/// value may be inexact (see [`Field::for_column_in`]).
pub fn value_schema_in(topic: &str, table: &TableSchema, mode: TimePrecisionMode) -> RecordSchema {
    RecordSchema {
        name: Some(record_name(topic, "Value")),
        fields: table.columns.iter().map(|c| Field::for_column_in(c, mode)).collect(),
    }
}

/// The key values of a full row of `table` (primary-key columns, in key order).
pub fn key_values(table: &TableSchema, row: &[Value]) -> Vec<Value> {
    // Per row: no index list is built; a key column is usually where its name says.
    table
        .primary_key
        .iter()
        .map(|k| {
            table
                .columns
                .iter()
                .position(|c| &c.name == k)
                .and_then(|i| row.get(i))
                .cloned()
                .unwrap_or(Value::Null)
        })
        .collect()
}
