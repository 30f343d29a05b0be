//! Golden files: the exact bytes of records in Kafka Connect's JSON-with-schema format.

use std::sync::Arc;

use cdc_schema::{
    decode_json, encode_json, key_schema, value_schema, Collation, Column, ColumnType, Date,
    DateTime, FieldType, IntWidth, Record, TableSchema, Value,
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
