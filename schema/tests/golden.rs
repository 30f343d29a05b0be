//! Golden files: the exact bytes of records in Kafka Connect's JSON-with-schema format.

use std::sync::Arc;

use cdc_schema::{
    decode_json, encode_json, key_schema, restore_inexact, take_inexact, value_schema, Collation,
    Column, ColumnType, Date, DateTime, FieldType, IntWidth, Record, TableSchema, Value,
    ZERO_DATES_HEADER,
};

/// `create table users(id int auto_increment primary key, user_id varchar(20), pwd varchar(20),
/// name varchar(20), created_at datetime default NOW())` in a utf8mb4 database.
fn users() -> TableSchema {
    let varchar = |name: &str| Column {
        name: name.into(),
        column_type: ColumnType::VarChar {
            length: 20,
            collation: Collation::UTF8MB4_GENERAL_CI,
        },
        nullable: true,
    };
    TableSchema {
        database: "mydb".into(),
        table: "users".into(),
        columns: vec![
            Column {
                name: "id".into(),
                column_type: ColumnType::Integer {
                    width: IntWidth::Int,
                    unsigned: false,
                },
                nullable: false,
            },
            varchar("user_id"),
            varchar("pwd"),
            varchar("name"),
            Column {
                name: "created_at".into(),
                column_type: ColumnType::DateTime { fsp: 0 },
                nullable: true,
            },
        ],
        primary_key: vec!["id".into()],
    }
}

fn golden(name: &str) -> String {
    let path = format!("{}/tests/golden/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {path}: {e}"))
}

#[test]
fn users_row_matches_the_golden_file() {
    let table = users();
    let created = DateTime {
        date: Date {
            year: 2024,
            month: 5,
            day: 17,
        },
        hour: 9,
        minute: 30,
        second: 0,
        micros: 0,
    };
    let value = Record {
        schema: Arc::new(value_schema("my_topic_users", &table)),
        values: vec![
            Value::Int(1),
            Value::String("alice".into()),
            Value::String("secret".into()),
            Value::String("Alice 😀".into()),
            Value::DateTime(created),
        ],
    };
    let bytes = encode_json(&value).expect("encodes");
    if std::env::var_os("CDC_WRITE_GOLDEN").is_some() {
        let path = format!("{}/tests/golden/users.json", env!("CARGO_MANIFEST_DIR"));
        std::fs::write(&path, [&bytes[..], b"\n"].concat()).expect("write golden");
    }
    assert_eq!(
        String::from_utf8(bytes.clone()).expect("utf8"),
        golden("users.json").trim_end()
    );
    assert_eq!(decode_json(&bytes).expect("decodes"), value);

    let key = Record {
        schema: Arc::new(key_schema("my_topic_users", &table)),
        values: vec![Value::Int(1)],
    };
    let key_bytes = encode_json(&key).expect("encodes");
    assert_eq!(
        String::from_utf8(key_bytes).expect("utf8"),
        golden("users-key.json").trim_end()
    );
}

#[test]
fn accepts_the_record_a_person_types() {
    let typed = r#"{"schema":{"type":"struct","fields":[{"type":"int32","optional":false,"field":"id"},{"type":"string","optional":true,"field":"name"}],"optional":false,"name":"users"},"payload":{"id":1,"name":"x"}}"#;
    let record = decode_json(typed.as_bytes()).expect("decodes");
    assert_eq!(record.schema.name.as_deref(), Some("users"));
    assert_eq!(record.schema.fields[0].field_type, FieldType::Int32);
    assert!(!record.schema.fields[0].optional);
    assert_eq!(
        record.values,
        vec![Value::Int(1), Value::String("x".into())]
    );
    assert_eq!(cdc_schema::sql_type(&record.schema.fields[1]), "longtext");
    // Written back, it is the same bytes: our writer and JsonConverter agree on the shape.
    assert_eq!(
        String::from_utf8(encode_json(&record).expect("encodes")).expect("utf8"),
        typed
    );
}

#[test]
fn rejects_json_without_schema_and_mismatched_payloads() {
    let no_schema = br#"{"id":1}"#;
    let err = decode_json(no_schema).expect_err("no envelope");
    assert!(err.to_string().contains("schemas.enable=true"), "{err}");
    let wrong = br#"{"schema":{"type":"struct","fields":[{"type":"int32","optional":false,"field":"id"}],"optional":false},"payload":{"id":"one"}}"#;
    let err = decode_json(wrong).expect_err("string for int32");
    assert!(err.to_string().contains("`id`"), "{err}");
    let missing = br#"{"schema":{"type":"struct","fields":[{"type":"int32","optional":false,"field":"id"}],"optional":false},"payload":{}}"#;
    assert!(decode_json(missing).is_err(), "required field missing");
}

/// A table with one column per temporal type: `d date, t time(6), dt datetime(6),
/// dt0 datetime, ts timestamp(6)`, `d` the primary key.
fn temporal() -> TableSchema {
    let column = |name: &str, column_type, nullable| Column {
        name: name.into(),
        column_type,
        nullable,
    };
    TableSchema {
        database: "mydb".into(),
        table: "temporal".into(),
        columns: vec![
            column("d", ColumnType::Date, false),
            column("t", ColumnType::Time { fsp: 6 }, true),
            column("dt", ColumnType::DateTime { fsp: 6 }, true),
            column("dt0", ColumnType::DateTime { fsp: 0 }, true),
            column("ts", ColumnType::Timestamp { fsp: 6 }, true),
        ],
        primary_key: vec!["d".into()],
    }
}

/// Record format 2: Debezium's temporal types; a zero date is null in the value, named with its
/// exact text in the `cdc.zero_dates` header, and a sentinel in the key.
#[test]
fn temporal_rows_match_the_golden_files() {
    let table = temporal();
    let value_schema = Arc::new(value_schema("my_topic_temporal", &table));
    let key_schema = Arc::new(key_schema("my_topic_temporal", &table));
    let date = |year, month, day| Date { year, month, day };
    let at = |date, hour, minute, second, micros| DateTime { date, hour, minute, second, micros };
    let rows = [
        vec![
            Value::Date(date(9999, 12, 31)),
            Value::Time(-1),
            Value::DateTime(at(date(9999, 12, 31), 23, 59, 59, 999_999)),
            Value::DateTime(at(date(1000, 1, 1), 0, 0, 0, 0)),
            Value::Timestamp(2_147_483_647_999_999),
        ],
        vec![
            Value::Date(Date { year: 0, month: 0, day: 0 }),
            Value::Time(-((838 * 3600 + 59 * 60 + 59) * 1_000_000 + 999_999)),
            Value::DateTime(at(date(2024, 0, 0), 0, 0, 0, 0)),
            Value::DateTime(DateTime::ZERO),
            Value::Timestamp(0),
        ],
    ];
    let mut lines = Vec::new();
    for row in rows {
        let mut carried = row.clone();
        let header = take_inexact(&value_schema, &mut carried);
        let value = Record { schema: Arc::clone(&value_schema), values: carried };
        let key = Record { schema: Arc::clone(&key_schema), values: vec![row[0].clone()] };
        let value_bytes = encode_json(&value).expect("encodes");
        let mut back = decode_json(&value_bytes).expect("decodes");
        if let Some(h) = &header {
            restore_inexact(&back.schema, &mut back.values, h).expect("restores");
        }
        assert_eq!(back.values, row);
        let key_bytes = encode_json(&key).expect("encodes");
        assert_eq!(decode_json(&key_bytes).expect("decodes").values, vec![row[0].clone()]);
        lines.push(format!("{ZERO_DATES_HEADER}: {}", header.unwrap_or_else(|| "(absent)".into())));
        lines.push(String::from_utf8(key_bytes).expect("utf8"));
        lines.push(String::from_utf8(value_bytes).expect("utf8"));
    }
    let got = lines.join("\n");
    if std::env::var_os("CDC_WRITE_GOLDEN").is_some() {
        let path = format!("{}/tests/golden/temporal.txt", env!("CARGO_MANIFEST_DIR"));
        std::fs::write(&path, format!("{got}\n")).expect("write golden");
    }
    assert_eq!(got, golden("temporal.txt").trim_end());
}
