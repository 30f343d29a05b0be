//! cdc-schema against the real schema registry (Apicurio, Confluent API): register, encode, decode
//! by id, evolve, and refuse an incompatible change.

use std::sync::Arc;

use cdc_schema::{
    evolve_value_schema, key_schema, value_schema, Collation, Column, ColumnType, Compatibility,
    Date, DateTime, DecodeErrorKind, Decoder, EncodeError, Encoder, IntWidth, MessageRef, Part,
    Record, RegistryError, TableSchema, Value,
};
use cdc_tests::{unique_name, Stack};

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

fn row() -> Vec<Value> {
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
    vec![
        Value::Int(1),
        Value::String("alice".into()),
        Value::String("secret".into()),
        Value::String("Alice 😀".into()),
        Value::DateTime(created),
    ]
}

fn schema_id(bytes: &[u8]) -> u32 {
    assert_eq!(
        bytes[0], 0,
        "Confluent wire format starts with magic byte 0"
    );
    u32::from_be_bytes([bytes[1], bytes[2], bytes[3], bytes[4]])
}

#[tokio::test(flavor = "multi_thread")]
async fn register_encode_decode_evolve_and_refuse_incompatible() {
    let stack = Stack::from_env();
    let registry = cdc_schema::Registry::new(&stack.registry_url);
    let topic = unique_name("my_topic_users");
    let at = MessageRef {
        topic: &topic,
        partition: 0,
        offset: 42,
    };
    let encoder = Encoder::avro(registry.clone());
    let decoder = Decoder::new(Some(registry.clone()));

    // Version 1: register key and value, encode, decode by id.
    let table = users();
    let key = Record {
        schema: Arc::new(key_schema(&topic, &table)),
        values: vec![Value::Int(1)],
    };
    let v1 = Record {
        schema: Arc::new(value_schema(&topic, &table)),
        values: row(),
    };
    let key_bytes = encoder
        .encode(&topic, Part::Key, &key)
        .await
        .expect("key encodes");
    let v1_bytes = encoder
        .encode(&topic, Part::Value, &v1)
        .await
        .expect("value encodes");
    let v1_id = schema_id(&v1_bytes);
    assert_ne!(
        schema_id(&key_bytes),
        v1_id,
        "key and value have their own subjects"
    );
    assert_eq!(
        decoder
            .decode(at, Part::Key, &key_bytes)
            .await
            .expect("key decodes"),
        key
    );
    assert_eq!(
        decoder
            .decode(at, Part::Value, &v1_bytes)
            .await
            .expect("value decodes"),
        v1
    );
    let value_subject = Part::Value.subject(&topic);
    registry
        .set_compatibility(&value_subject, Compatibility::Backward)
        .await
        .expect("set BACKWARD");

    // Version 2: a NOT NULL column added; it becomes optional with default null.
    let mut evolved = users();
    evolved.columns.push(Column {
        name: "email".into(),
        column_type: ColumnType::VarChar {
            length: 50,
            collation: Collation::UTF8MB4_GENERAL_CI,
        },
        nullable: false,
    });
    let v2_schema = evolve_value_schema(&v1.schema, value_schema(&topic, &evolved));
    assert!(v2_schema.field("email").expect("email field").optional);
    let mut values = row();
    values.push(Value::String("a@example.com".into()));
    let v2 = Record {
        schema: Arc::new(v2_schema),
        values,
    };
    let v2_bytes = encoder
        .encode(&topic, Part::Value, &v2)
        .await
        .expect("evolved value encodes");
    let v2_id = schema_id(&v2_bytes);
    assert_ne!(
        v2_id, v1_id,
        "the new version gets its own id from the same encoder"
    );
    assert_eq!(
        decoder
            .decode(at, Part::Value, &v2_bytes)
            .await
            .expect("decodes"),
        v2
    );
    let latest = registry
        .latest(&value_subject)
        .await
        .expect("latest")
        .expect("subject exists");
    assert_eq!(latest.id, v2_id);
    // Version 1 still encodes with its own id (cached per schema, not per subject).
    let again = encoder
        .encode(&topic, Part::Value, &v1)
        .await
        .expect("v1 again");
    assert_eq!(schema_id(&again), v1_id);

    // Incompatible: `id` retyped from int to varchar.
    let mut retyped = evolved.clone();
    retyped.columns[0].column_type = ColumnType::VarChar {
        length: 20,
        collation: Collation::UTF8MB4_GENERAL_CI,
    };
    let bad_schema = evolve_value_schema(&v2.schema, value_schema(&topic, &retyped));
    let mut bad_values = v2.values.clone();
    bad_values[0] = Value::String("one".into());
    let bad = Record {
        schema: Arc::new(bad_schema),
        values: bad_values,
    };
    let err = encoder
        .encode(&topic, Part::Value, &bad)
        .await
        .expect_err("incompatible");
    assert!(
        matches!(&err, EncodeError::Registry(RegistryError::Incompatible { subject, .. }) if *subject == value_subject),
        "expected Incompatible, got {err:?}"
    );
    assert!(err.to_string().contains("incompatible"), "{err}");
    assert!(!err.is_transient());

    // Broken messages: unknown id, truncated header, truncated body.
    let unknown = [0u8, 0x7f, 0xff, 0xff, 0xf0, 2];
    let err = decoder
        .decode(at, Part::Value, &unknown)
        .await
        .expect_err("unknown id");
    assert!(
        matches!(
            err.kind,
            DecodeErrorKind::Registry(RegistryError::UnknownSchemaId { .. })
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains(&format!("{topic}[0]@42")), "{err}");
    let err = decoder
        .decode(at, Part::Value, &[0, 0, 1])
        .await
        .expect_err("short");
    assert!(matches!(err.kind, DecodeErrorKind::Truncated(_)), "{err:?}");
    let cut = &v1_bytes[..v1_bytes.len() - 3];
    assert!(
        decoder.decode(at, Part::Value, cut).await.is_err(),
        "body cut short"
    );
}
