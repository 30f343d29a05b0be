//! Compatibility with Apache Avro's Java library (org.apache.avro:avro, run by tests/java): every
//! record the real `cdc-source` writes in the Confluent wire format (magic 0, 4-byte schema id)
//! for a table with one column per MariaDB type is read by `GenericDatumReader` with the writer
//! schema fetched from the registry by id (GET /schemas/ids/{id}) and every logical type
//! converted, as a Java consumer with logical types on reads it: no exception, and the values
//! `SELECT` returns (see interop_support for what each representation means).
//!
//! Fails today for TIME columns: they are written as `long`/`time-micros`, and Avro's
//! `TimeMicrosConversion` (`LocalTime.ofNanoOfDay`) raises for the negative and ≥ 24 h values a
//! MariaDB TIME holds (`-838:59:59` … `838:59:59`), so a Java consumer with logical types on
//! cannot read any record of such a table. The fix is a TIME schema without `logicalType`
//! (`long` with `connect.name` `io.debezium.time.MicroTime`, as Debezium writes it).

mod interop_support;

use interop_support::{compare, java_json, EveryType, Repr};
use serde_json::Value as Json;

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The fields of an Avro record schema as the Java library read them: the original column name
/// (`cdc.column.name` when the Avro name had to differ), and the non-null branch's type.
fn reprs(schema: &Json) -> Vec<(String, Repr)> {
    schema["fields"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|f| {
            let t = match &f["type"] {
                Json::Array(branches) => branches.iter().find(|b| *b != "null").cloned().unwrap_or(Json::Null),
                other => other.clone(),
            };
            let (base, logical, connect_name) = match &t {
                Json::String(s) => (s.clone(), None, None),
                obj => (
                    obj["type"].as_str().unwrap_or_default().to_string(),
                    obj["logicalType"].as_str().map(str::to_string),
                    obj["connect.name"].as_str().map(str::to_string),
                ),
            };
            let name = f["cdc.column.name"].as_str().or(f["name"].as_str()).unwrap_or_default().to_string();
            let repr = Repr {
                base,
                logical_type: logical,
                connect_name,
                column_type: f["connect.parameters"]["cdc.column.type"].as_str().map(str::to_string),
            };
            (name, repr)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_record_of_the_source_reads_as_meant_in_avro_java() {
    let et = EveryType::written("aj_types", "avro").await;
    let mut lines = Vec::new();
    for r in &et.records {
        lines.push(hex(r.key.as_deref().expect("key")));
        lines.push(r.value.as_deref().map_or_else(|| "-".to_string(), hex));
    }
    let read = java_json(&["avro-read", &et.source.stack.registry_url], &lines);
    assert_eq!(read.len(), lines.len(), "one answer per message");
    let mut problems = Vec::new();
    for (i, r) in et.records.iter().enumerate() {
        let (key, value) = (&read[2 * i], &read[2 * i + 1]);
        let mut refused = false;
        for (part, answer) in [("key", key), ("value", value)] {
            if answer["ok"] != true {
                problems.push(format!("record {i} {part}: Avro's GenericDatumReader raised: {}", answer["error"]));
                refused = true;
            }
        }
        if refused {
            continue;
        }
        let id: i64 = value["value"]["id"]
            .as_str()
            .and_then(|s| s.strip_prefix("int32:"))
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("record {i}: no int id in what Avro read: {value}"));
        let zero_dates = r.headers.get("cdc.zero_dates").map(String::as_str);
        problems.extend(compare(&format!("row {id} key"), &reprs(&key["schema"]), &key["value"], &et.key_of(id), None));
        problems.extend(compare(&format!("row {id} value"), &reprs(&value["schema"]), &value["value"], &et.named_row(id), zero_dates));
    }
    assert!(problems.is_empty(), "{} differences between what we meant and what Avro's Java library read:\n{}", problems.len(), problems.join("\n"));
}
