//! Round trips value → JSON → value and value → Avro → value for every column type, at the
//! extremes and with generated values.

use proptest::prelude::*;

use crate::avro::{avro_schema, record_schema_from_avro, AvroSchema};
use crate::collation::Collation;
use crate::column::{BlobSize, Column, ColumnType, IntWidth, TableSchema};
use crate::connect::{value_schema, Record};
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

/// Encodes and decodes `values` of `table` in both formats and checks nothing changed.
fn assert_round_trips(table: &TableSchema, values: Vec<Value>) {
    let schema = std::sync::Arc::new(value_schema("my_topic_t", table));
    let record = Record {
        schema: schema.clone(),
        values,
    };
    let json = encode_json(&record).expect("JSON encodes");
    let back = decode_json(&json).expect("JSON decodes");
    assert_eq!(
        back,
        record,
        "JSON round trip of {}",
        String::from_utf8_lossy(&json)
    );

    let text = avro_schema(&schema);
    assert_eq!(
        record_schema_from_avro(&text).expect("schema reads back"),
        *schema
    );
    let avro = AvroSchema::parse(&text).expect("Avro schema parses");
    let body = avro.encode(&record.values).expect("Avro encodes");
    assert_eq!(
        avro.decode(&body).expect("Avro decodes"),
        record,
        "Avro round trip"
    );
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
