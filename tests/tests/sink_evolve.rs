//! The mirror follows the source's DDL, through the real cdc-source and jdbc-sink
//! (`auto.create`, `auto.evolve`): `ALTER TABLE … MODIFY` widenings reach the mirror columns, a
//! change that is not a widening is refused naming table, column and both types (never rounded
//! or cut), and a NOT NULL column dropped at the source becomes NULLable in the mirror.

use std::time::Duration;

use cdc_tests::pipeline::{logs, query_text, PipelineSetup, USERS_COLUMNS};
use cdc_tests::process::Service;

const WAIT: Duration = Duration::from_secs(90);

/// Columns added to `users` before the services start, and what each becomes.
const WIDENINGS: &[(&str, &str, &str)] = &[
    ("c_vc", "varchar(20)", "varchar(50)"),
    ("c_int", "int(11)", "bigint(20)"),
    ("c_ti", "tinyint(3) unsigned", "smallint(6)"),
    ("c_dec", "decimal(10,2)", "decimal(12,2)"),
    ("c_dt", "datetime", "datetime(6)"),
    ("c_tm", "time", "time(3)"),
    ("c_ts", "timestamp", "timestamp(3)"),
    ("c_fl", "float", "double"),
    ("c_ch", "char(10)", "varchar(30)"),
    ("c_tx", "text", "mediumtext"),
    ("c_bl", "blob", "longblob"),
    ("c_en", "enum('a','b')", "enum('a','b','c')"),
    ("c_st", "set('a','b')", "set('a','b','c')"),
];

fn columns() -> Vec<&'static str> {
    let mut c: Vec<&str> = USERS_COLUMNS.to_vec();
    c.extend(WIDENINGS.iter().map(|w| w.0));
    c
}

async fn column_types(p: &PipelineSetup, db: &str, table: &str) -> Vec<(String, String, String)> {
    query_text(
        p.stack(),
        "information_schema",
        &format!(
            "SELECT COLUMN_NAME, COLUMN_TYPE, IS_NULLABLE FROM COLUMNS WHERE TABLE_SCHEMA = '{db}' \
             AND TABLE_NAME = '{table}' ORDER BY COLUMN_NAME"
        ),
    )
    .await
    .into_iter()
    .map(|r| (r[0].clone().unwrap_or_default(), r[1].clone().unwrap_or_default(), r[2].clone().unwrap_or_default()))
    .collect()
}

async fn start(p: &PipelineSetup, sink_extra: &str) -> (Service, Service) {
    let mut source = p.start_source("avro", "");
    source.wait_for_log("streaming the binlog", Duration::from_secs(60));
    let sink = p.start_sink("a", sink_extra, &[]);
    (source, sink)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn widening_modify_reaches_the_mirror() {
    let p = PipelineSetup::new("ev_widen").await;
    let adds: Vec<String> = WIDENINGS.iter().map(|(c, t, _)| format!("ADD COLUMN {c} {t} NULL")).collect();
    p.exec(&[&format!("ALTER TABLE users {}", adds.join(", "))]).await;
    p.exec(&["INSERT INTO users (user_id, pwd, name, c_vc, c_int, c_ti, c_dec, c_dt, c_tm, c_ts, c_fl, c_ch, c_tx, c_bl, c_en, c_st) \
              VALUES ('u1', 'p', 'n', 'twenty-chars-exactly', 2147483647, 255, 12345678.12, '2024-01-02 03:04:05', '10:11:12', '2024-01-02 03:04:05', 1.5, 'ten chars!', 'text', x'00ff', 'b', 'a,b')"]).await;
    let (source, sink) = start(&p, "").await;
    let cols = columns();
    p.wait_mirror_equals_source(&[("users", &cols)], WAIT, &[&source, &sink]).await;

    let modifies: Vec<String> = WIDENINGS.iter().map(|(c, _, t)| format!("MODIFY {c} {t} NULL")).collect();
    p.exec(&[&format!("ALTER TABLE users {}", modifies.join(", "))]).await;
    p.exec(&["INSERT INTO users (user_id, pwd, name, c_vc, c_int, c_ti, c_dec, c_dt, c_tm, c_ts, c_fl, c_ch, c_tx, c_bl, c_en, c_st) \
              VALUES ('u2', 'p', 'n', 'a value of forty characters, wider now.', 1099511627776, 1000, 1234567890.12, '2024-01-02 03:04:05.123456', '10:11:12.345', '2024-01-02 03:04:05.678', 1.0000000001, 'twenty-five characters!!!', REPEAT('m', 70000), x'00ff', 'c', 'a,c')",
             "UPDATE users SET c_en = 'c', c_vc = 'also forty characters wide, updated now.' WHERE user_id = 'u1'"]).await;
    p.wait_mirror_equals_source(&[("users", &cols)], WAIT, &[&source, &sink]).await;

    let mirror = column_types(&p, &p.mirror, &p.topic("users")).await;
    for (c, _, wider) in WIDENINGS {
        let got = mirror.iter().find(|m| m.0 == *c).map(|m| m.1.as_str());
        assert_eq!(got, Some(*wider), "mirror column {c}: {mirror:?}\n{}", logs(&[&source, &sink]));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_that_is_not_a_widening_stops_the_sink_naming_it() {
    let p = PipelineSetup::new("ev_refuse").await;
    p.exec(&["ALTER TABLE users ADD COLUMN amount DECIMAL(10,2) NULL",
             "INSERT INTO users (user_id, amount) VALUES ('u1', 12.34)"]).await;
    let (source, mut sink) = start(&p, "").await;
    let cols = { let mut c = USERS_COLUMNS.to_vec(); c.push("amount"); c };
    p.wait_mirror_equals_source(&[("users", &cols)], WAIT, &[&source, &sink]).await;

    // Narrower at the source: the wider mirror column holds every value and is kept.
    p.exec(&["ALTER TABLE users MODIFY user_id VARCHAR(10)",
             "INSERT INTO users (user_id, amount) VALUES ('u2', 1.5)"]).await;
    p.wait_mirror_equals_source(&[("users", &cols)], WAIT, &[&source, &sink]).await;
    let mirror = column_types(&p, &p.mirror, &p.topic("users")).await;
    assert!(mirror.iter().any(|m| m.0 == "user_id" && m.1 == "varchar(20)"), "{mirror:?}");

    // More scale, fewer integer digits: DECIMAL(10,2) holds neither way; rounding is refused.
    p.exec(&["ALTER TABLE users MODIFY amount DECIMAL(10,4)",
             "INSERT INTO users (user_id, amount) VALUES ('u3', 1.2345)"]).await;
    let code = sink.wait(WAIT);
    let log = sink.log_text();
    assert!(code.is_some_and(|c| c != 0), "the sink stops (errors.tolerance=none): {code:?}\n{log}");
    let table = p.topic("users");
    for needle in [table.as_str(), "`amount`", "decimal(10,2)", "decimal(10,4)"] {
        assert!(log.contains(needle), "the refusal names {needle}:\n{log}");
    }
    let rows = p.mirror_rows(&format!("SELECT amount FROM `{table}` WHERE user_id = 'u3'")).await;
    assert!(rows.is_empty(), "no rounded value written: {rows:?}");
    let mirror = column_types(&p, &p.mirror, &table).await;
    assert!(mirror.iter().any(|m| m.0 == "amount" && m.1 == "decimal(10,2)"), "{mirror:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enum_gaining_a_label_reaches_the_mirror() {
    let p = PipelineSetup::new("ev_enum").await;
    p.exec(&["ALTER TABLE users ADD COLUMN state ENUM('new','active') NULL",
             "INSERT INTO users (user_id, state) VALUES ('u1', 'active')"]).await;
    let (source, sink) = start(&p, "").await;
    let cols = { let mut c = USERS_COLUMNS.to_vec(); c.push("state"); c };
    p.wait_mirror_equals_source(&[("users", &cols)], WAIT, &[&source, &sink]).await;
    p.exec(&["ALTER TABLE users MODIFY state ENUM('new','active','closed') NULL",
             "INSERT INTO users (user_id, state) VALUES ('u2', 'closed')"]).await;
    p.wait_mirror_equals_source(&[("users", &cols)], WAIT, &[&source, &sink]).await;
    let mirror = column_types(&p, &p.mirror, &p.topic("users")).await;
    assert!(mirror.iter().any(|m| m.0 == "state" && m.1 == "enum('new','active','closed')"), "{mirror:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_a_not_null_column_makes_the_mirror_column_nullable() {
    let p = PipelineSetup::new("ev_dropnn").await;
    p.exec(&["ALTER TABLE users ADD COLUMN code VARCHAR(10) NOT NULL DEFAULT 'x'",
             "INSERT INTO users (user_id, code) VALUES ('u1', 'c1')"]).await;
    let (source, sink) = start(&p, "").await;
    let cols = { let mut c = USERS_COLUMNS.to_vec(); c.push("code"); c };
    p.wait_mirror_equals_source(&[("users", &cols)], WAIT, &[&source, &sink]).await;
    let table = p.topic("users");
    let before = column_types(&p, &p.mirror, &table).await;
    assert!(before.iter().any(|m| m.0 == "code" && m.2 == "NO"), "created NOT NULL as at the source: {before:?}");

    p.exec(&["ALTER TABLE users DROP COLUMN code",
             "INSERT INTO users (user_id) VALUES ('u2')"]).await;
    p.wait_mirror_equals_source(&[("users", USERS_COLUMNS)], WAIT, &[&source, &sink]).await;
    let rows = p.mirror_rows(&format!("SELECT user_id, code FROM `{table}` ORDER BY id")).await;
    assert_eq!(rows, vec![vec![Some("u1".into()), Some("c1".into())], vec![Some("u2".into()), None]]);
    let after = column_types(&p, &p.mirror, &table).await;
    assert!(after.iter().any(|m| m.0 == "code" && m.2 == "YES"), "{after:?}");
}

/// Records typed like the source's, produced by hand (`auto.evolve` off): `users` rows whose
/// `name` field has column type `name_type`, or no `name` field at all (`None`).
async fn send_users(case: &cdc_tests::sink::SinkCase, id: i64, name_type: Option<(&str, bool)>, name: &str) {
    use cdc_schema::{Encoder, FieldType, Part, Record, RecordSchema, Value};
    let base = cdc_tests::sink::users_schemas(&case.topic, vec![]);
    let mut fields: Vec<_> = base.1.fields.iter().filter(|f| f.name != "name").cloned().collect();
    let mut values = vec![Value::Int(id), Value::String("u".into()), Value::String("p".into())];
    if let Some((t, optional)) = name_type {
        fields.push(cdc_tests::sink::typed_field("name", FieldType::String, optional, t));
        values.push(Value::String(name.into()));
    }
    let value = Record { schema: std::sync::Arc::new(RecordSchema { name: base.1.name.clone(), fields }), values };
    let key = Record { schema: base.0.clone(), values: vec![Value::Int(id)] };
    let json = Encoder::json();
    let p = cdc_tests::sink::producer(&case.stack.kafka_bootstrap);
    cdc_tests::sink::send(
        &p,
        &case.topic,
        None,
        Some(&json.encode(&case.topic, Part::Key, &key).await.expect("k")),
        Some(&json.encode(&case.topic, Part::Value, &value).await.expect("v")),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_auto_evolve_a_wider_type_is_refused_not_written() {
    let case = cdc_tests::sink::SinkCase::new("ev_noevolve", 1).await;
    let mut sink = case.start_sink(&case.toml(""), "toml", &[]);
    send_users(&case, 1, Some(("varchar(20)", true)), "short").await;
    let table = format!("SELECT id, name FROM `{}` ORDER BY id", case.topic);
    case.wait_rows(&table, &[&[Some("1"), Some("short")]], WAIT, &sink).await;
    send_users(&case, 2, Some(("varchar(50)", true)), "a name of forty characters, too wide....").await;
    let code = sink.wait(WAIT);
    let log = sink.log_text();
    assert_eq!(code, Some(1), "the sink stops:\n{log}");
    let expected = format!("table `{}` column `name` has type varchar(20) but the record's field has type varchar(50), which is wider", case.topic);
    assert!(log.contains(&expected) && log.contains("auto.evolve=true"), "{log}");
    assert_eq!(case.rows(&table).await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_auto_evolve_a_missing_not_null_column_is_refused_by_name() {
    let case = cdc_tests::sink::SinkCase::new("ev_nonull", 1).await;
    let mut sink = case.start_sink(&case.toml(""), "toml", &[]);
    send_users(&case, 1, Some(("varchar(20)", false)), "kept").await;
    let table = format!("SELECT id, name FROM `{}` ORDER BY id", case.topic);
    case.wait_rows(&table, &[&[Some("1"), Some("kept")]], WAIT, &sink).await;
    send_users(&case, 2, None, "").await;
    let code = sink.wait(WAIT);
    let log = sink.log_text();
    assert_eq!(code, Some(1), "the sink stops:\n{log}");
    let expected = format!("table `{}` column `name` (varchar(20)) is NOT NULL without a default, but the records carry no field for it", case.topic);
    assert!(log.contains(&expected), "{log}");
}
