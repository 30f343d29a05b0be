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
//! ## Type mapping
//!
//! | MariaDB column | [`Value`] | [`FieldType`] (Connect) | Avro |
//! |---|---|---|---|
//! | TINYINT | `Int` | int8 | int (`connect.type` int8) |
//! | TINYINT UNSIGNED, SMALLINT | `Int` | int16 | int (`connect.type` int16) |
//! | SMALLINT UNSIGNED, MEDIUMINT (±), INT | `Int` | int32 | int |
//! | INT UNSIGNED, BIGINT | `Int` | int64 | long |
//! | BIGINT UNSIGNED | `Decimal` (scale 0) | Decimal(20,0) | bytes/decimal(20,0) |
//! | DECIMAL(p,s), p ≤ 65 | `Decimal` | Decimal, `scale`=s, `connect.decimal.precision`=p | bytes/decimal(p,s) |
//! | FLOAT / DOUBLE | `Float` / `Double` | float / double | float / double |
//! | BIT(1) | `Bool` | boolean | boolean |
//! | BIT(n>1) | `Bytes` (big-endian) | bytes | bytes |
//! | YEAR | `Int` (0 or 1901..2155) | int32 | int |
//! | DATE | `Date` | Date (int32 days) | int/date |
//! | TIME(fsp) | `Time` (µs, signed) | `cdc.MicroTime` (int64 µs) | long/time-micros |
//! | DATETIME(fsp) | `DateTime` | `cdc.LocalMicroTimestamp` (int64 µs) | long/local-timestamp-micros |
//! | TIMESTAMP(fsp) | `Timestamp` (µs UTC) | `cdc.MicroTimestamp` (int64 µs) | long/timestamp-micros |
//! | CHAR/VARCHAR/TEXT (any supported charset), ENUM, SET, JSON | `String` | string | string |
//! | BINARY/VARBINARY/BLOB, GEOMETRY, UUID, INET6, INET4 | `Bytes` | bytes | bytes |
//!
//! Every field also carries `cdc.column.type` (the exact DDL type, e.g. `varchar(20)`), which
//! [`sql_type`] returns for the sink's mirror table. Records are named `<topic>.Key` and
//! `<topic>.Value` in both formats; Avro subjects are `<topic>-key` / `<topic>-value`. Connect's
//! millisecond `Time`/`Timestamp` are read (records typed by hand) but never written: they cannot
//! hold microseconds, negative or > 24 h times.
//!
//! ## Decisions on edge cases
//!
//! * **Zero dates** (`0000-00-00`, `2024-00-00`, zero DATETIME) are kept, not turned into NULL: on
//!   the wire they are sentinels far below year 1 (see [`Date::to_epoch_days`]) and decode back
//!   exactly. The zero TIMESTAMP is `Value::Timestamp(0)`.
//! * **UUID / INET6 / INET4**: the binlog carries them as BINARY(16)/BINARY(16)/BINARY(4) with
//!   nothing to tell them from real BINARY columns, so both paths describe them as `binary(16)` /
//!   `binary(4)` and values are the bytes `CAST(col AS BINARY(n))` gives (for UUID the textual
//!   byte order; for INET network order). A mirror of such a column is a BINARY column.
//! * **MariaDB JSON** is LONGTEXT (utf8mb4_bin) in the binlog and in `information_schema`, so it
//!   is `longtext` here; values are the JSON text. MySQL's binary JSON is converted to text.
//! * **Snapshot `SELECT`**: use [`TableSchema::select_list`]. It reads TIMESTAMP columns with
//!   `UNIX_TIMESTAMP()` (so the session time zone does not matter) and BINARY columns with
//!   `CAST(… AS BINARY(n))`. Text and binary protocol both work (tested); the connection's
//!   `character_set_results` must be utf8mb4 (mysql_async's default).
//! * **Character sets**: binlog text is decoded by the column's collation, exactly as MariaDB
//!   converts it to utf8mb4, for every character set of MariaDB 10.11 (latin1 is cp1252 as in
//!   MariaDB, latin5 ISO-8859-9, sjis JIS X 0208, ...). Bytes without a character (which the
//!   server shows as `?`) are an error naming the bytes, never a replacement character; an
//!   unknown collation id gives an error naming the charset. CHAR values lose trailing spaces,
//!   as MariaDB returns them.
//! * **GEOMETRY** values are MariaDB's internal form (4-byte SRID + WKB), which MariaDB accepts
//!   back on INSERT; all spatial types map to `geometry`.
//! * **Evolution**: [`evolve_value_schema`] keeps a field required only if it was required
//!   before, so added columns are optional with default null and the registry accepts the new
//!   version under BACKWARD; [`diff`] reports added, dropped, retyped and re-nulled columns.
//! * The encoder caches schema ids by (subject, schema text), never by subject alone, so a
//!   changed schema is always registered and its new id used.

mod avro;
mod binlog;
mod charset;
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
