//! Compatibility with Kafka Connect's own `JsonConverter` (connect-json 4.3.1, schemas.enable=true),
//! run as a real Java program (tests/java, fetched and compiled by stack/install):
//!
//! 1. every record the real `cdc-source` writes for a table with one column per MariaDB type is
//!    read by `JsonConverter.toConnectData` to the values `SELECT` returns (Decimal exact, bytes
//!    exact, logical types as Connect defines them; see interop_support for the meanings), and
//!    `fromConnectData` writes back the same JSON;
//! 2. the golden files of schema/tests/golden are `JsonConverter`'s output: `users*.json` is what
//!    it writes for our `users` record, `connect_types.tsv` the records it writes for every
//!    Connect type built with the Connect API; those are applied by the real `jdbc-sink` into a
//!    mirror table with the right values.
//!
//! Regenerate the golden files (after a deliberate format change, e.g. record format 2):
//!
//! ```text
//! CDC_WRITE_GOLDEN=1 cargo test -p cdc-tests --test connect_json_compat
//! ```

mod interop_support;

use std::sync::Arc;
use std::time::Duration;

use cdc_schema::{encode_json, key_schema, value_schema, Date, DateTime, Record, TableSchema, Value};
use cdc_tests::sink::{producer, send, SinkCase};
use cdc_tests::source::SourceSetup;
use interop_support::{compare, java, java_json, EveryType, Repr};
use serde_json::Value as Json;

fn golden_path(name: &str) -> String {
    format!("{}/../schema/tests/golden/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn write_golden() -> bool {
    std::env::var_os("CDC_WRITE_GOLDEN").is_some()
}

/// Checks `fresh` (what the Java library writes now) against golden file `name`, or writes it.
fn check_golden(name: &str, fresh: &str) {
    let path = golden_path(name);
    if write_golden() {
        std::fs::write(&path, fresh).unwrap_or_else(|e| panic!("write {path}: {e}"));
        return;
    }
    let kept = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {path}: {e}"));
    assert_eq!(
        kept, fresh,
        "{path} is not what JsonConverter writes now; regenerate it: CDC_WRITE_GOLDEN=1 cargo test -p cdc-tests --test connect_json_compat"
    );
}

/// The fields of a schema as `Canon.schema` printed what JsonConverter understood.
fn reprs(schema: &Json) -> Vec<(String, Repr)> {
    schema["fields"]
        .as_array()
        .map(|fields| {
            fields
                .iter()
                .map(|f| {
                    let repr = Repr {
                        base: f["type"].as_str().unwrap_or_default().to_string(),
                        logical_type: None,
                        connect_name: f["name"].as_str().map(str::to_string),
                        column_type: f["parameters"]["cdc.column.type"].as_str().map(str::to_string),
                    };
                    (f["field"].as_str().unwrap_or_default().to_string(), repr)
                })
                .collect()
        })
        .unwrap_or_default()
}

/// `doc` with each `float` (float32) payload number replaced by the float32 a reader takes from
/// it: we write the float's exact value (`3.402820018375656e38`), JsonConverter its shortest
/// float text (`3.40282E38`); both are the same float32.
fn float32_as_read(mut doc: Json) -> Json {
    let floats: Vec<String> = doc["schema"]["fields"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|f| f["type"] == "float")
        .filter_map(|f| f["field"].as_str().map(str::to_string))
        .collect();
    for name in floats {
        let v = &mut doc["payload"][name.as_str()];
        if let Some(x) = v.as_f64() {
            *v = serde_json::json!(f64::from(x as f32));
        }
    }
    doc
}

/// One document read by JsonConverter: its understanding must equal `meant`, and what it writes
/// back must be the same JSON as ours. Differences are added to `problems`.
fn check_read(
    what: &str,
    ours: &[u8],
    read: &Json,
    meant: &[(String, Value)],
    zero_dates: Option<&str>,
    problems: &mut Vec<String>,
) {
    if read["ok"] != true {
        problems.push(format!("{what}: JsonConverter refused it: {}\n  {}", read["error"], String::from_utf8_lossy(ours)));
        return;
    }
    problems.extend(compare(what, &reprs(&read["schema"]), &read["value"], meant, zero_dates));
    let ours = float32_as_read(serde_json::from_slice(ours).expect("our record is JSON"));
    let theirs = float32_as_read(serde_json::from_str(read["json"].as_str().unwrap_or("null")).expect("JsonConverter's JSON"));
    if ours != theirs {
        problems.push(format!("{what}: JsonConverter writes back another record:\n  ours   {ours}\n  theirs {theirs}"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_record_of_the_source_reads_as_meant_in_jsonconverter() {
    let et = EveryType::written("cj_types", "json").await;
    let mut docs = Vec::new();
    for r in &et.records {
        docs.push(String::from_utf8(r.key.clone().expect("key")).expect("utf-8 key"));
        docs.push(String::from_utf8(r.value.clone().expect("value")).expect("utf-8 value"));
    }
    let read = java_json(&["connect-read"], &docs);
    assert_eq!(read.len(), docs.len(), "one answer per document");
    let mut problems = Vec::new();
    for (i, r) in et.records.iter().enumerate() {
        let (key, value) = (&read[2 * i], &read[2 * i + 1]);
        let id: i64 = value["value"]["id"]
            .as_str()
            .and_then(|s| s.strip_prefix("int32:"))
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("record {i}: no int32 id in what JsonConverter read: {value}"));
        let zero_dates = r.headers.get("cdc.zero_dates").map(String::as_str);
        check_read(&format!("row {id} key"), r.key.as_deref().unwrap_or_default(), key, &et.key_of(id), None, &mut problems);
        check_read(&format!("row {id} value"), r.value.as_deref().unwrap_or_default(), value, &et.named_row(id), zero_dates, &mut problems);
    }
    assert!(problems.is_empty(), "{} differences between what we meant and what JsonConverter read:\n{}", problems.len(), problems.join("\n"));
}

/// The tutorial's `users` row (schema loaded from the real table created from sql/), encoded by
/// us, as JsonConverter reads and writes it: the golden files users.json and users-key.json.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_goldens_are_what_jsonconverter_writes_for_our_record() {
    let src = SourceSetup::new("cj_users").await;
    let mut conn = src.stack.root_conn(Some(&src.database)).await;
    let mut table: TableSchema = TableSchema::load(&mut conn, &src.database, "users").await.expect("users schema");
    table.database = "mydb".into();
    let created = DateTime { date: Date { year: 2024, month: 5, day: 17 }, hour: 9, minute: 30, second: 0, micros: 0 };
    let meant = vec![
        Value::Int(1),
        Value::String("alice".into()),
        Value::String("secret".into()),
        Value::String("Alice 😀".into()),
        Value::DateTime(created),
    ];
    let value = Record { schema: Arc::new(value_schema("my_topic_users", &table)), values: meant.clone() };
    let key = Record { schema: Arc::new(key_schema("my_topic_users", &table)), values: vec![Value::Int(1)] };
    let ours = [encode_json(&key).expect("key"), encode_json(&value).expect("value")];
    let docs: Vec<String> = ours.iter().map(|b| String::from_utf8(b.clone()).expect("utf-8")).collect();
    let read = java_json(&["connect-read"], &docs);
    let names: Vec<String> = table.columns.iter().map(|c| c.name.clone()).collect();
    let mut problems = Vec::new();
    check_read("users key", &ours[0], &read[0], &[("id".into(), Value::Int(1))], None, &mut problems);
    check_read("users value", &ours[1], &read[1], &names.into_iter().zip(meant).collect::<Vec<_>>(), None, &mut problems);
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    for (file, answer) in [("users-key.json", &read[0]), ("users.json", &read[1])] {
        check_golden(file, &format!("{}\n", answer["json"].as_str().expect("json")));
    }
}

/// Records for every Connect type, built with the Connect API and written by JsonConverter (the
/// golden file connect_types.tsv, decoded by schema/tests/golden.rs), applied by the real
/// jdbc-sink: the mirror holds the values the Java program put in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jsonconverter_records_of_every_connect_type_land_in_the_mirror() {
    let lines = java(&["connect-build"], &[]);
    check_golden("connect_types.tsv", &(lines.join("\n") + "\n"));
    let doc = |name: &str| -> Vec<u8> {
        lines
            .iter()
            .find_map(|l| l.strip_prefix(&format!("{name}\t")))
            .unwrap_or_else(|| panic!("no {name} in connect-build's output"))
            .as_bytes()
            .to_vec()
    };
    let case = SinkCase::new("cj_sink", 1).await;
    let p = producer(&case.stack.kafka_bootstrap);
    for c in ["typical", "extremes", "nulls"] {
        send(&p, &case.topic, None, Some(&doc(&format!("{c}.key"))), Some(&doc(&format!("{c}.value")))).await;
    }
    let sink = case.start_sink(&case.toml(""), "toml", &[]);
    let sql = format!(
        "SELECT id, i8, i16, i32, i64, f32, f64, flag, text, HEX(bin), `dec`, big, day, tod, ts FROM `{}` ORDER BY id",
        case.topic
    );
    let typical_text = "Grüße, \"quoted\" 😀\n";
    case.wait_rows(
        &sql,
        &[
            &[
                Some("1"), Some("12"), Some("1234"), Some("123456"), Some("1234567890123"), Some("1.5"), Some("0.1"),
                Some("1"), Some(typical_text), Some("00FF10"), Some("12345.67"), Some("18446744073709551615"),
                Some("2024-05-17"), Some("09:30:00.123"), Some("2024-05-17 09:30:00.123"),
            ],
            &[
                Some("2"), Some("-128"), Some("-32768"), Some("-2147483648"), Some("-9223372036854775808"),
                Some("-3.40282e38"), Some("1.7976931348623157e308"), Some("0"), Some(""), Some(""),
                Some("-1234567890123456789012345678901234567890.12"), Some("0"), Some("1000-01-01"),
                Some("23:59:59.999"), Some("1969-12-31 23:59:59.999"),
            ],
            &[Some("3"), None, None, None, None, None, None, None, None, None, None, None, None, None, None],
        ],
        Duration::from_secs(60),
        &sink,
    )
    .await;
}
