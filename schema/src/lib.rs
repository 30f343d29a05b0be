//! # cdc-schema
//!
//! The one place that knows how a MariaDB column becomes a field of a record, and how a record
//! becomes bytes on a Kafka topic and back.
//!
//! ## Moving parts
//!
//! 1. **Column model** ([`TableSchema`], [`Column`], [`ColumnType`], [`Collation`]), built from a
//!    binlog table-map event ([`TableSchema::from_table_map`], needs `binlog_row_metadata=FULL`) or
//!    from `information_schema` ([`TableSchema::load`]). **Guarantee:** both yield equal values for
//!    the same table. Only what the binlog carries is modelled (no defaults, no display widths).
//! 2. **Values** ([`Value`]): lossless; from binlog rows ([`Value::from_binlog`],
//!    [`row_from_binlog`]) and from snapshot rows ([`Value::from_snapshot`], [`row_from_snapshot`]).
//!    **Guarantee:** the same row read from the binlog and by a snapshot `SELECT` that uses
//!    [`TableSchema::select_list`] gives equal values.
//! 3. **Record schemas** ([`RecordSchema`], [`Field`], [`FieldType`], [`key_schema`],
//!    [`value_schema`]) at the Kafka Connect level, with [`sql_type`] for the sink's DDL.
//! 4. **Formats**: Kafka Connect JSON with schema ([`encode_json`], [`decode_json`]) and Avro in
//!    the Confluent wire format with a registry ([`Encoder`], [`Registry`]). [`Decoder`] reads
//!    either, detected per message. **Guarantee:** value → bytes → value is the identity in both
//!    formats, for every value a column of that type can hold.
//! 5. **Evolution** ([`diff`], [`evolve_value_schema`]): added columns become optional with
//!    default null, so new value schemas stay BACKWARD compatible; drops and retypes are reported.
//!
//! The type mapping table and the decisions on edge cases are documented in the sections below
//! and in the modules.

mod avro;
mod binlog;
mod collation;
mod column;
mod connect;
mod datum;
mod decimal;
mod decode;
mod encode;
mod error;
mod evolve;
mod info_schema;
mod json;
mod mysql_value;
mod registry;
mod sql_type;
mod temporal;
mod value;

pub use avro::{avro_schema, record_schema_from_avro, AvroSchema};
pub use collation::Collation;
pub use column::{BlobSize, Column, ColumnType, IntWidth, TableSchema};
pub use connect::{
    key_schema, key_values, value_schema, Field, FieldType, Record, RecordSchema,
    COLUMN_TYPE_PARAM, DATE_NAME, DECIMAL_NAME, LOCAL_MICRO_TIMESTAMP_NAME, MICRO_TIMESTAMP_NAME,
    MICRO_TIME_NAME, PRECISION_PARAM, TIMESTAMP_NAME, TIME_NAME,
};
pub use decimal::Decimal;
pub use decode::{detect_format, Decoder, MessageRef};
pub use encode::{Encoder, Format, Part};
pub use error::{
    CodecError, DecodeError, DecodeErrorKind, EncodeError, RegistryError, SchemaError, ValueError,
};
pub use evolve::{diff, evolve_value_schema, SchemaChange};
pub use json::{decode_json, encode_json, json_schema};
pub use mysql_value::{row_from_binlog, row_from_snapshot};
pub use registry::{Compatibility, RegisteredSchema, Registry};
pub use sql_type::{sql_key_type, sql_type};
pub use temporal::{Date, DateTime};
pub use value::{format_time, Value};

#[cfg(test)]
mod roundtrip_tests;
