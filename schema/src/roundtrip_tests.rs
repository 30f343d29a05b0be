//! Round trips value → JSON → value and value → Avro → value for every column type, at the
//! extremes and with generated values.

use proptest::prelude::*;

use crate::avro::{avro_schema, record_schema_from_avro, AvroSchema};
use crate::collation::Collation;
use crate::column::{BlobSize, Column, ColumnType, IntWidth, TableSchema};
use crate::connect::{key_schema, value_schema_in, Record, RecordSchema, TimePrecisionMode};
use crate::inexact::{restore_inexact, take_inexact};
use crate::decimal::Decimal;
use crate::json::{decode_json, encode_json};
use crate::temporal::{Date, DateTime};
use crate::value::Value;

const MAX_TIME: i64 = (838 * 3600 + 59 * 60 + 59) * 1_000_000 + 999_999;

fn every_type() -> Vec<ColumnType> {
    let utf8 = Collation::UTF8MB4_GENERAL_CI;
    let mut types: Vec<ColumnType> = [
        IntWidth::Tiny,
        IntWidth::Small,
        IntWidth::Medium,
        IntWidth::Int,
        IntWidth::Big,
    ]
    .into_iter()
    .flat_map(|width| [false, true].map(|unsigned| ColumnType::Integer { width, unsigned }))
    .collect();
    types.extend([
        ColumnType::Decimal {
            precision: 65,
            scale: 30,
        },
        ColumnType::Decimal {
            precision: 10,
            scale: 0,
        },
        ColumnType::Float,
        ColumnType::Double,
        ColumnType::Bit { bits: 1 },
        ColumnType::Bit { bits: 64 },
        ColumnType::Year,
        ColumnType::Date,
        ColumnType::Time { fsp: 6 },
        ColumnType::DateTime { fsp: 6 },
        ColumnType::Timestamp { fsp: 6 },
        ColumnType::VarChar {
            length: 20,
            collation: utf8,
        },
        ColumnType::Text {
            size: BlobSize::Long,
            collation: Collation::LATIN1_SWEDISH_CI,
        },
        ColumnType::Blob {
            size: BlobSize::Long,
        },
        ColumnType::Enum {
            labels: vec!["a".into(), "b".into()],
        },
        ColumnType::Set {
            labels: vec!["x".into(), "y".into()],
        },
        ColumnType::Json,
        ColumnType::Geometry,
        ColumnType::Binary { length: 16 },
    ]);
    types
}

fn table(nullable: bool) -> TableSchema {
    let columns = every_type()
        .into_iter()
        .enumerate()
        .map(|(i, column_type)| Column {
            name: format!("c{i}"),
            column_type,
            nullable,
        })
        .collect();
    TableSchema {
        database: "db".into(),
        table: "t".into(),
        columns,
        primary_key: vec!["c0".into()],
    }
}

/// Encodes and decodes `values` of `table` as a value record in both formats and both
/// `time.precision.mode`s (through the `cdc.zero_dates` header) and checks nothing changed.
fn assert_round_trips(table: &TableSchema, values: Vec<Value>) {
    for mode in [TimePrecisionMode::AdaptiveTimeMicroseconds, TimePrecisionMode::Connect] {
        let schema = std::sync::Arc::new(value_schema_in("my_topic_t", table, mode));
        assert_record_round_trips(&schema, &values, true);
    }
}

/// One record through JSON and Avro; with `value_record`, through [`take_inexact`] and
/// [`restore_inexact`] as the source and the sink do. Returns the JSON bytes and the header.
fn assert_record_round_trips(
    schema: &std::sync::Arc<RecordSchema>,
    values: &[Value],
    value_record: bool,
) -> (String, Option<String>) {
    let record = Record {
        schema: schema.clone(),
        values: values.to_vec(),
    };
    let mut carried = values.to_vec();
    let header = if value_record {
        take_inexact(schema, &mut carried)
    } else {
        None
    };
    let wire = Record {
        schema: schema.clone(),
        values: carried,
    };
    let restore = |mut back: Record| {
        if let Some(h) = &header {
            restore_inexact(&back.schema, &mut back.values, h).expect("header restores");
        }
        back
    };
    let json = encode_json(&wire).expect("JSON encodes");
    let schema_json = serde_json::to_string(&crate::json::json_schema(schema)).expect("schema prints");
    assert_eq!(
        String::from_utf8_lossy(&json),
        String::from_utf8_lossy(&crate::json::encode_json_tree(&wire, &schema_json).expect("JSON encodes as a tree")),
        "streamed JSON equals serde_json's rendering of the value tree"
    );
    let back = restore(decode_json(&json).expect("JSON decodes"));
    assert_eq!(
        back,
        record,
        "JSON round trip of {} with header {header:?}",
        String::from_utf8_lossy(&json)
    );

    let text = avro_schema(schema);
    assert_eq!(
        record_schema_from_avro(&text).expect("schema reads back"),
        **schema
    );
    let avro = AvroSchema::parse(&text).expect("Avro schema parses");
    let body = avro.encode(&wire.values).expect("Avro encodes");
    assert_eq!(body, avro.encode_generic(&wire.values).expect("apache-avro encodes"), "the direct Avro writer equals apache-avro's");
    assert_eq!(
        restore(avro.decode(&body).expect("Avro decodes")),
        record,
        "Avro round trip with header {header:?}"
    );
    (String::from_utf8(json).expect("utf8"), header)
}

fn extremes(pick_max: bool) -> Vec<Value> {
    let nines = |n: usize| "9".repeat(n);
    let sign = if pick_max { "" } else { "-" };
    every_type()
        .iter()
        .map(|t| match t {
            ColumnType::Integer {
                width: IntWidth::Big,
                unsigned: true,
            } => Value::Decimal(Decimal::from_u64(if pick_max { u64::MAX } else { 0 })),
            ColumnType::Integer { width, unsigned } => {
                let (min, max) = width.range(*unsigned);
                Value::Int(i64::try_from(if pick_max { max } else { min }).expect("fits"))
            }
            ColumnType::Decimal { precision, scale } => {
                let int_digits = usize::from(precision - scale);
                let text = format!("{sign}{}.{}", nines(int_digits), nines(usize::from(*scale)));
                let text = text.trim_end_matches('.').to_string();
                Value::Decimal(Decimal::parse(&text).expect("decimal"))
            }
            ColumnType::Float => Value::Float(if pick_max { f32::MAX } else { f32::MIN }),
            ColumnType::Double => Value::Double(if pick_max {
                f64::MAX
            } else {
                f64::MIN_POSITIVE
            }),
            ColumnType::Bit { bits: 1 } => Value::Bool(pick_max),
            ColumnType::Bit { .. } => Value::Bytes(vec![if pick_max { 0xFF } else { 0 }; 8]),
            ColumnType::Year => Value::Int(if pick_max { 2155 } else { 0 }),
            ColumnType::Date => Value::Date(if pick_max {
                Date {
                    year: 9999,
                    month: 12,
                    day: 31,
                }
            } else {
                Date::ZERO
            }),
            ColumnType::Time { .. } => Value::Time(if pick_max { MAX_TIME } else { -MAX_TIME }),
            ColumnType::DateTime { .. } => Value::DateTime(if pick_max {
                DateTime {
                    date: Date {
                        year: 9999,
                        month: 12,
                        day: 31,
                    },
                    hour: 23,
                    minute: 59,
                    second: 59,
                    micros: 999_999,
                }
            } else {
                DateTime::ZERO
            }),
            ColumnType::Timestamp { .. } => {
                Value::Timestamp(if pick_max { 2_147_483_647_999_999 } else { 0 })
            }
            ColumnType::Binary { length } => Value::Bytes(vec![0xAB; *length as usize]),
            ColumnType::Blob { .. } | ColumnType::Geometry => {
                Value::Bytes(if pick_max { vec![0, 255, 7] } else { vec![] })
            }
            _ => Value::String(if pick_max {
                "😀한ｱ\u{10FFFF}".into()
            } else {
                String::new()
            }),
        })
        .collect()
}

#[test]
fn extremes_round_trip() {
    assert_round_trips(&table(false), extremes(true));
    assert_round_trips(&table(false), extremes(false));
    let nulls = vec![Value::Null; every_type().len()];
    assert_round_trips(&table(true), nulls);
}

#[test]
fn partial_zero_dates_round_trip() {
    let t = TableSchema {
        columns: vec![
            Column {
                name: "d".into(),
                column_type: ColumnType::Date,
                nullable: false,
            },
            Column {
                name: "dt".into(),
                column_type: ColumnType::DateTime { fsp: 6 },
                nullable: false,
            },
        ],
        ..table(false)
    };
    let date = Date {
        year: 2024,
        month: 0,
        day: 0,
    };
    let dt = DateTime {
        date: Date {
            year: 2024,
            month: 2,
            day: 0,
        },
        hour: 10,
        minute: 0,
        second: 0,
        micros: 500_000,
    };
    assert_round_trips(&t, vec![Value::Date(date), Value::DateTime(dt)]);
}

fn value_for(t: &ColumnType) -> BoxedStrategy<Value> {
    match t.clone() {
        ColumnType::Integer {
            width: IntWidth::Big,
            unsigned: true,
        } => any::<u64>()
            .prop_map(|v| Value::Decimal(Decimal::from_u64(v)))
            .boxed(),
        ColumnType::Integer { width, unsigned } => {
            let (min, max) = width.range(unsigned);
            let (min, max) = (
                i64::try_from(min).unwrap_or(i64::MIN),
                i64::try_from(max).unwrap_or(i64::MAX),
            );
            (min..=max).prop_map(Value::Int).boxed()
        }
        ColumnType::Decimal { precision, scale } => (
            any::<bool>(),
            proptest::collection::vec(0u8..10, 1..=usize::from(precision)),
        )
            .prop_map(move |(neg, digits)| {
                let s: String = digits.iter().map(|d| char::from(b'0' + d)).collect();
                let magnitude = Decimal::parse(&s).expect("digits");
                let text = format!("{}{}", if neg { "-" } else { "" }, magnitude);
                let d = Decimal::parse(&text).expect("decimal");
                Value::Decimal(Decimal::new(d.unscaled().clone(), u32::from(scale)))
            })
            .boxed(),
        ColumnType::Float => prop_oneof![
            proptest::num::f32::NORMAL,
            proptest::num::f32::ZERO,
            proptest::num::f32::SUBNORMAL
        ]
        .prop_map(Value::Float)
        .boxed(),
        ColumnType::Double => prop_oneof![proptest::num::f64::NORMAL, proptest::num::f64::ZERO]
            .prop_map(Value::Double)
            .boxed(),
        ColumnType::Bit { bits: 1 } => any::<bool>().prop_map(Value::Bool).boxed(),
        ColumnType::Bit { .. } | ColumnType::Binary { .. } => proptest::collection::vec(
            any::<u8>(),
            if matches!(t, ColumnType::Bit { .. }) {
                8
            } else {
                16
            },
        )
        .prop_map(Value::Bytes)
        .boxed(),
        ColumnType::Year => prop_oneof![Just(0i64), 1901i64..=2155]
            .prop_map(Value::Int)
            .boxed(),
        ColumnType::Date => date().prop_map(Value::Date).boxed(),
        ColumnType::Time { .. } => (-MAX_TIME..=MAX_TIME).prop_map(Value::Time).boxed(),
        ColumnType::DateTime { .. } => (date(), 0u8..24, 0u8..60, 0u8..60, 0u32..1_000_000)
            .prop_map(|(date, hour, minute, second, micros)| {
                Value::DateTime(DateTime {
                    date,
                    hour,
                    minute,
                    second,
                    micros,
                })
            })
            .boxed(),
        ColumnType::Timestamp { .. } => (0i64..=2_147_483_647_999_999)
            .prop_map(Value::Timestamp)
            .boxed(),
        ColumnType::Blob { .. } | ColumnType::Geometry => {
            proptest::collection::vec(any::<u8>(), 0..64)
                .prop_map(Value::Bytes)
                .boxed()
        }
        _ => any::<String>().prop_map(Value::String).boxed(),
    }
}

fn date() -> impl Strategy<Value = Date> {
    (0u16..=9999, 0u8..=12, 0u8..=31).prop_map(|(year, month, day)| Date { year, month, day })
}

fn row() -> impl Strategy<Value = Vec<Value>> {
    let per_column: Vec<BoxedStrategy<Value>> = every_type()
        .iter()
        .map(|t| prop_oneof![1 => Just(Value::Null), 6 => value_for(t)].boxed())
        .collect();
    per_column
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]
    #[test]
    fn generated_rows_round_trip(values in row()) {
        assert_round_trips(&table(true), values);
    }
}

fn temporal_table() -> TableSchema {
    let column = |name: &str, column_type, nullable| Column {
        name: name.into(),
        column_type,
        nullable,
    };
    TableSchema {
        database: "db".into(),
        table: "t".into(),
        columns: vec![
            column("d", ColumnType::Date, false),
            column("t", ColumnType::Time { fsp: 6 }, false),
            column("t0", ColumnType::Time { fsp: 0 }, true),
            column("dt", ColumnType::DateTime { fsp: 6 }, false),
            column("dt0", ColumnType::DateTime { fsp: 0 }, true),
            column("dt3", ColumnType::DateTime { fsp: 3 }, true),
            column("ts", ColumnType::Timestamp { fsp: 6 }, false),
            column("ts0", ColumnType::Timestamp { fsp: 0 }, true),
        ],
        primary_key: vec!["d".into(), "t".into(), "dt".into(), "dt0".into(), "ts".into()],
    }
}

fn d(year: u16, month: u8, day: u8) -> Date {
    Date { year, month, day }
}

fn dt(date: Date, hour: u8, minute: u8, second: u8, micros: u32) -> DateTime {
    DateTime {
        date,
        hour,
        minute,
        second,
        micros,
    }
}

/// Rows of every temporal edge value, in the columns of [`temporal_table`].
fn temporal_edges() -> Vec<Vec<Value>> {
    let max_dt = dt(d(9999, 12, 31), 23, 59, 59, 999_999);
    let min_dt = dt(d(1000, 1, 1), 0, 0, 0, 0);
    let ts_max = 2_147_483_647_999_999; // 2038-01-19 03:14:07.999999 UTC
    vec![
        vec![
            Value::Date(d(1000, 1, 1)),
            Value::Time(MAX_TIME),
            Value::Time(838 * 3_600_000_000 + 59 * 60_000_000 + 59_000_000),
            Value::DateTime(max_dt),
            Value::DateTime(dt(d(9999, 12, 31), 23, 59, 59, 0)),
            Value::DateTime(dt(d(9999, 12, 31), 23, 59, 59, 999_000)),
            Value::Timestamp(ts_max),
            Value::Timestamp(1_000_000),
        ],
        vec![
            Value::Date(d(9999, 12, 31)),
            Value::Time(-MAX_TIME),
            Value::Time(-838 * 3_600_000_000 - 59 * 60_000_000 - 59_000_000),
            Value::DateTime(min_dt),
            Value::DateTime(min_dt),
            Value::Null,
            Value::Timestamp(1_000_000),
            Value::Timestamp(2_147_483_647_000_000),
        ],
        vec![
            Value::Date(Date::ZERO),
            Value::Time(-1),
            Value::Time(0),
            Value::DateTime(DateTime::ZERO),
            Value::DateTime(DateTime::ZERO),
            Value::DateTime(dt(d(2024, 0, 0), 10, 0, 0, 0)),
            Value::Timestamp(0),
            Value::Timestamp(0),
        ],
        vec![
            Value::Date(d(2024, 0, 0)),
            Value::Time(86_400_000_000),
            Value::Null,
            Value::DateTime(dt(d(2024, 2, 30), 12, 0, 0, 1)),
            Value::DateTime(dt(d(2024, 5, 0), 1, 2, 3, 0)),
            Value::DateTime(dt(d(0, 1, 1), 0, 0, 0, 0)),
            Value::Timestamp(ts_max),
            Value::Null,
        ],
    ]
}

#[test]
fn temporal_edges_round_trip_as_values_and_keys() {
    let table = temporal_table();
    let key = std::sync::Arc::new(key_schema("my_topic_t", &table));
    for row in temporal_edges() {
        assert_round_trips(&table, row.clone());
        let key_values = crate::connect::key_values(&table, &row);
        assert_record_round_trips(&key, &key_values, false);
    }
}

#[test]
fn zero_dates_travel_as_null_with_the_header() {
    let table = temporal_table();
    let schema = std::sync::Arc::new(value_schema_in(
        "my_topic_t",
        &table,
        TimePrecisionMode::AdaptiveTimeMicroseconds,
    ));
    let (json, header) = assert_record_round_trips(&schema, &temporal_edges()[2], true);
    assert_eq!(
        header.as_deref(),
        Some("d=0000-00-00,dt=0000-00-00 00:00:00,dt0=0000-00-00 00:00:00,dt3=2024-00-00 10:00:00,ts=0000-00-00 00:00:00,ts0=0000-00-00 00:00:00")
    );
    assert!(
        json.contains(r#""payload":{"d":null,"t":-1,"t0":0,"dt":null,"dt0":null,"dt3":null,"ts":null,"ts0":null}"#),
        "{json}"
    );
    // Connect mode: TIME outside a day is null too, sub-millisecond fractions are truncated.
    let connect = std::sync::Arc::new(value_schema_in("my_topic_t", &table, TimePrecisionMode::Connect));
    let (json, header) = assert_record_round_trips(&connect, &temporal_edges()[0], true);
    assert_eq!(
        header.as_deref(),
        Some("t=838:59:59.999999,t0=838:59:59,dt=9999-12-31 23:59:59.999999")
    );
    assert!(json.contains(r#""t":null,"t0":null,"dt":253402300799999,"#), "{json}");
}

#[test]
fn temporal_fields_carry_debeziums_names_and_forms() {
    let table = temporal_table();
    let schema = std::sync::Arc::new(value_schema_in(
        "my_topic_t",
        &table,
        TimePrecisionMode::AdaptiveTimeMicroseconds,
    ));
    let names: Vec<_> = schema
        .fields
        .iter()
        .map(|f| f.field_type.logical_name().unwrap_or_default())
        .collect();
    assert_eq!(
        names,
        [
            "io.debezium.time.Date",
            "io.debezium.time.MicroTime",
            "io.debezium.time.MicroTime",
            "io.debezium.time.MicroTimestamp",
            "io.debezium.time.Timestamp",
            "io.debezium.time.Timestamp",
            "io.debezium.time.ZonedTimestamp",
            "io.debezium.time.ZonedTimestamp",
        ]
    );
    let optional: Vec<bool> = schema.fields.iter().map(|f| f.optional).collect();
    assert_eq!(optional, [true, false, true, true, true, true, true, true]);
    let avro = avro_schema(&schema);
    assert!(!avro.contains("logicalType"), "{avro}");
    assert!(
        avro.contains(r#"{"name":"t","type":{"type":"long","connect.version":1,"connect.name":"io.debezium.time.MicroTime"}"#),
        "{avro}"
    );
    let (json, _) = assert_record_round_trips(&schema, &temporal_edges()[0], true);
    assert!(
        json.contains(r#"{"type":"int32","optional":true,"name":"io.debezium.time.Date","version":1,"parameters":{"cdc.column.type":"date"},"field":"d"}"#),
        "{json}"
    );
    assert!(
        json.contains(r#""d":-354285,"t":3020399999999,"t0":3020399000000,"dt":253402300799999999,"dt0":253402300799000,"dt3":253402300799999,"ts":"2038-01-19T03:14:07.999999Z","ts0":"1970-01-01T00:00:01Z""#),
        "{json}"
    );
    let connect = value_schema_in("my_topic_t", &table, TimePrecisionMode::Connect);
    let names: Vec<_> = connect
        .fields
        .iter()
        .map(|f| f.field_type.logical_name().unwrap_or_default())
        .collect();
    assert_eq!(
        names,
        [
            "org.apache.kafka.connect.data.Date",
            "org.apache.kafka.connect.data.Time",
            "org.apache.kafka.connect.data.Time",
            "org.apache.kafka.connect.data.Timestamp",
            "org.apache.kafka.connect.data.Timestamp",
            "org.apache.kafka.connect.data.Timestamp",
            "io.debezium.time.ZonedTimestamp",
            "io.debezium.time.ZonedTimestamp",
        ]
    );
    let avro = avro_schema(&connect);
    assert!(avro.contains(r#""logicalType":"time-millis""#), "{avro}");
    assert!(!avro.contains("micros"), "{avro}");
}

#[test]
fn format_1_records_still_decode() {
    let old = r#"{"schema":{"type":"struct","fields":[{"type":"int32","optional":false,"name":"org.apache.kafka.connect.data.Date","version":1,"parameters":{"cdc.column.type":"date"},"field":"d"},{"type":"int64","optional":false,"name":"cdc.MicroTime","version":1,"field":"t"},{"type":"int64","optional":false,"name":"cdc.LocalMicroTimestamp","version":1,"field":"dt"},{"type":"int64","optional":false,"name":"cdc.MicroTimestamp","version":1,"field":"ts"}],"optional":false,"name":"t.Value"},"payload":{"d":-2147483648,"t":-1,"dt":-9223372036854775808,"ts":1000000}}"#;
    let record = decode_json(old.as_bytes()).expect("format 1 decodes");
    assert_eq!(
        record.values,
        vec![
            Value::Date(Date::ZERO),
            Value::Time(-1),
            Value::DateTime(DateTime::ZERO),
            Value::Timestamp(1_000_000),
        ]
    );
    let avro_old = r#"{"type":"record","name":"Value","namespace":"t","fields":[{"name":"t","type":{"type":"long","logicalType":"time-micros"}},{"name":"dt","type":{"type":"long","logicalType":"local-timestamp-micros"}},{"name":"ts","type":{"type":"long","logicalType":"timestamp-micros"}},{"name":"d","type":{"type":"int","logicalType":"date"}}]}"#;
    let schema = record_schema_from_avro(avro_old).expect("format 1 Avro schema reads");
    let kinds: Vec<_> = schema.fields.iter().map(|f| f.field_type.clone()).collect();
    use crate::connect::FieldType as F;
    assert_eq!(kinds, [F::MicroTime, F::LocalMicroTimestamp, F::MicroTimestamp, F::Date]);
}
