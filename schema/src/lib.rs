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
//! 2. **Values** ([`Value`]): lossless; from binlog rows ([`RowsDecoder`], straight from a rows
//!    event; [`Value::from_binlog`], [`row_from_binlog`] from mysql_common's rows) and from snapshot rows ([`Value::from_snapshot`], [`row_from_snapshot`]).
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
//! | DATE | `Date` | `io.debezium.time.Date` (int32 days) | int + `connect.name` |
//! | TIME(fsp) | `Time` (µs, signed) | `io.debezium.time.MicroTime` (int64 µs, may be < 0 or ≥ 24 h) | long + `connect.name` |
//! | DATETIME(0..3) | `DateTime` | `io.debezium.time.Timestamp` (int64 ms, wall clock as if UTC) | long + `connect.name` |
//! | DATETIME(4..6) | `DateTime` | `io.debezium.time.MicroTimestamp` (int64 µs, wall clock as if UTC) | long + `connect.name` |
//! | TIMESTAMP(fsp) | `Timestamp` (µs UTC) | `io.debezium.time.ZonedTimestamp` (string, `2024-05-01T10:00:00.123456Z`, fsp digits) | string + `connect.name` |
//! | CHAR/VARCHAR/TEXT (any supported charset), ENUM, SET, JSON | `String` | string | string |
//! | BINARY/VARBINARY/BLOB, GEOMETRY, UUID, INET6, INET4 | `Bytes` | bytes | bytes |
//!
//! Every field also carries `cdc.column.type` (the exact DDL type, e.g. `varchar(20)`), which
//! [`sql_type`] returns for the sink's mirror table. Records are named `<topic>.Key` and
//! `<topic>.Value` in both formats; Avro subjects are `<topic>-key` / `<topic>-value`.
//!
//! The temporal types are Debezium's MySQL connector's with `time.precision.mode` =
//! `adaptive_time_microseconds` (the default, [`TimePrecisionMode`]): same names, primitive
//! types and units, ZonedTimestamp with exactly the column's fsp fraction digits as Debezium pads
//! it. With `connect`, DATE, TIME and DATETIME value fields are Kafka Connect's `Date` (int32
//! days), `Time` (int32 ms of the day) and `Timestamp` (int64 ms, wall clock as if UTC), Avro
//! `date` / `time-millis` / `timestamp-millis`; TIMESTAMP stays ZonedTimestamp (as in Debezium)
//! and key fields keep the adaptive types. Readers also accept record format 1's
//! `cdc.MicroTime` / `cdc.MicroTimestamp` / `cdc.LocalMicroTimestamp` (Avro `time-micros` /
//! `timestamp-micros` / `local-timestamp-micros`) and Connect's types with any column.
//!
//! ## Decisions on edge cases
//!
//! * **Zero dates** (`0000-00-00`, `2024-00-00`, invalid dates, zero DATETIME and TIMESTAMP) are
//!   kept as values (the zero TIMESTAMP is `Value::Timestamp(0)`). In a value record the field is
//!   null and the record header `cdc.zero_dates` holds the exact value ([`take_inexact`],
//!   [`restore_inexact`], [`ZERO_DATES_HEADER`]); DATE, DATETIME and TIMESTAMP value fields are
//!   therefore always optional (as is TIME in `connect` mode, for values outside a day and
//!   sub-millisecond fractions). In a key, which can't be null and must stay distinct, such a
//!   date is a sentinel far below year 1 (see `temporal.rs`), decoded back exactly by this crate;
//!   a zero TIMESTAMP key is `1970-01-01T00:00:00Z`, which no real TIMESTAMP is.
//!   Debezium writes null or epoch day 0 instead, which loses the value.
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
mod inexact;
mod info_schema;
pub use info_schema::quote_ident;
mod json;
mod mysql_value;
mod registry;
mod rows;
mod sql_type;
mod temporal;
mod value;

pub use avro::{avro_schema, record_schema_from_avro, AvroSchema};
pub use collation::Collation;
pub use column::{BlobSize, Column, ColumnType, IntWidth, TableSchema};
pub use connect::{
    key_schema, key_values, value_schema, value_schema_in, Field, FieldType, Record, RecordSchema,
    TimePrecisionMode, COLUMN_TYPE_PARAM, DATE_NAME, DEBEZIUM_DATE_NAME,
    DEBEZIUM_MICRO_TIMESTAMP_NAME, DEBEZIUM_MICRO_TIME_NAME, DEBEZIUM_TIMESTAMP_NAME, DECIMAL_NAME,
    LOCAL_MICRO_TIMESTAMP_NAME, MICRO_TIMESTAMP_NAME, MICRO_TIME_NAME, PRECISION_PARAM,
    TIMESTAMP_NAME, TIME_NAME, ZONED_TIMESTAMP_NAME,
};
pub use inexact::{restore_inexact, take_inexact, ZERO_DATES_HEADER};
pub use decimal::Decimal;
pub use decode::{detect_format, Decoder, MessageId, MessageRef};
pub use encode::{Encoder, Format, Part};
pub use error::{
    CodecError, DecodeError, DecodeErrorKind, EncodeError, RegistryError, SchemaError, ValueError,
};
pub use evolve::{diff, evolve_value_schema, SchemaChange};
pub use json::{decode_json, encode_json, json_schema};
pub use mysql_value::{row_from_binlog, row_from_snapshot};
pub use rows::{RowImages, Rows, RowsDecoder};
pub use registry::{split_url_credentials, Compatibility, RegisteredSchema, Registry, RegistryAccess};
pub use sql_type::{sql_key_type, sql_type};
pub use temporal::{format_zoned, parse_zoned, Date, DateTime};
pub use value::{format_time, parse_time, Value};

#[cfg(test)]
mod roundtrip_tests;
