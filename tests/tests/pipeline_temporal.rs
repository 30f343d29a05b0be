//! Temporal values through the real source and sink (record format 2): one column per temporal
//! type holding the edge values — TIME ±838:59:59.999999 and -00:00:00.000001, DATETIME(6)
//! 1000-01-01 and 9999-12-31 23:59:59.999999, DATE 1000-01-01 and 9999-12-31, TIMESTAMP
//! 1970-01-01 00:00:01 and 2038-01-19 03:14:07.999999 UTC — and zero and partial dates, also in a
//! primary key, written in a `+05:30` session with `sql_mode=''`, read by the snapshot and from
//! the binlog. In each format and `time.precision.mode` the mirror must equal the source
//! (ordered digests over all columns); zero dates must travel as null plus the `cdc.zero_dates`
//! header; the Avro value schema in the registry must carry Debezium's names and no
//! `time-micros`; and fastavro (Python, `pip install fastavro`) must read every Avro record of
//! the topics without raising, with the values Debezium's definitions give.

use std::time::Duration;

use cdc_tests::kafka::Consumed;
use cdc_tests::pipeline::PipelineSetup;
use cdc_tests::process::Service;
use cdc_tests::sink::free_port;
use serde_json::Value as Json;

const WAIT: Duration = Duration::from_secs(90);

const TEMPORAL_COLUMNS: &[&str] = &["id", "d", "t", "t0", "dt", "dt0", "dt3", "ts", "ts0"];
const KEYED_COLUMNS: &[&str] = &["id", "d", "dt", "t", "ts", "v"];

const DDL: &[&str] = &[
    "CREATE TABLE temporal (id INT PRIMARY KEY, d DATE NOT NULL, t TIME(6) NOT NULL, t0 TIME,
       dt DATETIME(6) NOT NULL, dt0 DATETIME, dt3 DATETIME(3),
       ts TIMESTAMP(6) NULL DEFAULT NULL, ts0 TIMESTAMP NULL DEFAULT NULL)",
    "CREATE TABLE keyed (id INT, d DATE, dt DATETIME, t TIME(6),
       ts TIMESTAMP(6) NOT NULL DEFAULT '1970-01-01 05:30:01', v VARCHAR(10),
       PRIMARY KEY (id, d, dt, t, ts))",
];

/// The session of every write: zero dates allowed, a time zone that is not UTC.
const SESSION: &str = "SET SESSION sql_mode = '', time_zone = '+05:30'";

/// Rows read by the snapshot (inserted before the source starts).
const SNAPSHOT_ROWS: &[&str] = &[
    "INSERT INTO temporal VALUES
       (1, '1000-01-01', '838:59:59.999999', '-838:59:59', '9999-12-31 23:59:59.999999',
        '1000-01-01 00:00:00', '9999-12-31 23:59:59.999', '2038-01-19 08:44:07.999999',
        '1970-01-01 05:30:01'),
       (2, '0000-00-00', '-00:00:00.000001', NULL, '0000-00-00 00:00:00', '0000-00-00 00:00:00',
        '2024-00-00 10:00:00.5', '0000-00-00 00:00:00', '0000-00-00 00:00:00')",
    "INSERT INTO keyed VALUES (1, '0000-00-00', '0000-00-00 00:00:00', '-00:00:00.000001',
       '0000-00-00 00:00:00', 'zero')",
];

/// Changes read from the binlog.
const STREAMED_ROWS: &[&str] = &[
    "INSERT INTO temporal VALUES
       (3, '9999-12-31', '-838:59:59.999999', '00:00:00', '1000-01-01 00:00:00',
        '9999-12-31 23:59:59', NULL, '1970-01-01 05:30:01', '2038-01-19 08:44:07'),
       (4, '2024-00-00', '24:00:00', '12:34:56', '2024-05-00 01:02:03.000001', NULL,
        '2024-02-00 00:00:00', '2024-05-01 15:30:00.123456', NULL),
       (5, '0000-00-00', '-00:00:00.000001', '-00:00:01', '0000-00-00 00:00:00',
        '0000-00-00 00:00:00', '0000-00-00 00:00:00', '0000-00-00 00:00:00', '0000-00-00 00:00:00')",
    "UPDATE temporal SET dt0 = '0000-00-00 00:00:00', d = '0000-00-00' WHERE id = 3",
    "INSERT INTO keyed VALUES
       (2, '2024-00-00', '2024-05-00 00:00:00', '838:59:59.999999', '2038-01-19 08:44:07.999999',
        'partial'),
       (3, '1970-01-01', '1970-01-01 00:00:00', '00:00:00', '1970-01-01 05:30:01', 'epoch'),
       (1, '1970-01-01', '0000-00-00 00:00:00', '-00:00:00.000001', '0000-00-00 00:00:00', 'near')",
    "UPDATE keyed SET v = 'zero2' WHERE id = 1 AND d = '0000-00-00'",
];

/// Records each topic ends up with: temporal 2 + 3 + 1 update, keyed 1 + 3 + 1 update.
const TEMPORAL_RECORDS: usize = 6;
const KEYED_RECORDS: usize = 5;

fn stop(mut service: Service) {
    let code = service.terminate(Duration::from_secs(30));
    assert_eq!(code, Some(0), "{} exits 0 on SIGTERM:\n{}", service.name, service.log_text());
}

async fn exec(p: &PipelineSetup, statements: &[&str]) {
    let mut all = vec![SESSION];
    all.extend_from_slice(statements);
    p.exec(&all).await;
}

/// Runs the whole pipeline in `format` and `time.precision.mode` `mode` until the mirror equals
/// the source; returns the setup and the records of both topics.
async fn run(format: &str, mode: &str) -> (PipelineSetup, Vec<Consumed>, Vec<Consumed>) {
    let p = PipelineSetup::new(&format!("pl_tmp_{format}_{}", &mode[..4])).await;
    p.exec(DDL).await;
    exec(&p, SNAPSHOT_ROWS).await;
    let mut source = p.start_source(format, &format!("\"time.precision.mode\" = \"{mode}\""));
    source.wait_for_log("streaming the binlog", Duration::from_secs(60));
    let topics = format!("topics = \"{},{}\"", p.topic("temporal"), p.topic("keyed"));
    let config = p
        .sink_config(free_port(), "")
        .replace(&format!("topics = \"{},{}\"", p.topic("users"), p.topic("orders")), &topics);
    assert!(config.contains(&topics), "sink config names the test's topics:\n{config}");
    let sink = Service::start("jdbc-sink", &format!("{}-a", p.mirror), &config, "toml", &[], &[]);
    exec(&p, STREAMED_ROWS).await;
    let services = [&source, &sink];
    p.wait_mirror_equals_source(&[("temporal", TEMPORAL_COLUMNS), ("keyed", KEYED_COLUMNS)], WAIT, &services)
        .await;
    let temporal = p.source.read("temporal", TEMPORAL_RECORDS);
    let keyed = p.source.read("keyed", KEYED_RECORDS);
    assert_eq!(temporal.len(), TEMPORAL_RECORDS, "records of temporal");
    assert_eq!(keyed.len(), KEYED_RECORDS, "records of keyed");
    // Every zero or partial date of a value field is named in the header with its exact text.
    let zero_row = temporal.iter().find(|r| r.header("cdc.op") == "r" && r.header("cdc.zero_dates").starts_with("d=")).expect("snapshot record of row 2");
    // In connect mode the negative TIME travels the same way.
    let time = if mode == "connect" { "t=-00:00:00.000001," } else { "" };
    assert_eq!(
        zero_row.header("cdc.zero_dates"),
        format!("d=0000-00-00,{time}dt=0000-00-00 00:00:00,dt0=0000-00-00 00:00:00,dt3=2024-00-00 10:00:00.500000,ts=0000-00-00 00:00:00,ts0=0000-00-00 00:00:00")
    );
    stop(sink);
    stop(source);
    (p, temporal, keyed)
}

async fn json(mode: &str) {
    let (_, temporal, _) = run("json", mode).await;
    let payloads: Vec<Json> = temporal
        .iter()
        .map(|r| cdc_tests::source::payload(r.value.as_deref()).expect("no tombstones"))
        .collect();
    let row = |id: i64| payloads.iter().rev().find(|p| p["id"] == id).unwrap_or_else(|| panic!("row {id}"));
    if mode == "connect" {
        assert_eq!(row(1)["t"], Json::Null, "TIME beyond a day is null in connect mode");
        assert_eq!(row(3)["t0"], 0);
        assert_eq!(row(1)["d"], -354_285, "Connect Date: days since 1970-01-01");
        assert_eq!(row(1)["dt"], 253_402_300_799_999i64, "Connect Timestamp: ms, truncated");
    } else {
        assert_eq!(row(1)["t"], 3_020_399_999_999i64, "MicroTime: µs");
        assert_eq!(row(2)["t"], -1, "MicroTime: -00:00:00.000001");
        assert_eq!(row(1)["dt"], 253_402_300_799_999_999i64, "MicroTimestamp: µs as if UTC");
        assert_eq!(row(1)["dt0"], -30_610_224_000_000i64, "Timestamp: ms as if UTC");
    }
    assert_eq!(row(1)["ts"], "2038-01-19T03:14:07.999999Z");
    assert_eq!(row(1)["ts0"], "1970-01-01T00:00:01Z");
    assert_eq!(row(4)["ts"], "2024-05-01T10:00:00.123456Z");
    for zero in ["d", "dt", "dt0", "ts", "ts0"] {
        assert_eq!(row(2)[zero], Json::Null, "zero date `{zero}` travels as null");
    }
}

async fn schema_text(p: &PipelineSetup, subject: &str) -> String {
    let url = format!("{}/subjects/{subject}/versions/latest", p.stack().registry_url);
    let body: Json = reqwest::get(&url).await.expect("registry").json().await.expect("JSON");
    body["schema"].as_str().unwrap_or_else(|| panic!("{url}: {body}")).to_string()
}

/// Reads the Avro records with fastavro; returns one JSON object per record.
async fn fastavro(p: &PipelineSetup, records: &[Consumed]) -> Vec<Json> {
    let mut items = Vec::new();
    for r in records {
        for (part, bytes) in [("key", r.key.as_deref()), ("value", r.value.as_deref())] {
            let bytes = bytes.expect("key and value");
            assert_eq!(bytes[0], 0, "Confluent wire format");
            let id = u32::from_be_bytes(bytes[1..5].try_into().expect("4 bytes"));
            let url = format!("{}/schemas/ids/{id}", p.stack().registry_url);
            let body: Json = reqwest::get(&url).await.expect("registry").json().await.expect("JSON");
            let hex: String = bytes[5..].iter().map(|b| format!("{b:02x}")).collect();
            items.push(serde_json::json!({"part": part, "schema": body["schema"], "body": hex}));
        }
    }
    const SCRIPT: &str = r#"
import io, json, sys
try:
    import fastavro
except ImportError:
    sys.exit("fastavro is missing: run stack/install (it installs fastavro into the stack's cache)")
out = []
for item in json.load(sys.stdin):
    schema = fastavro.parse_schema(json.loads(item["schema"]))
    record = fastavro.schemaless_reader(io.BytesIO(bytes.fromhex(item["body"])), schema)
    out.append({"part": item["part"], "record": record})
print(json.dumps(out, default=str))
"#;
    // stack/install puts fastavro into the stack's cache; stack/env names the folder.
    let libs = std::env::var("CDC_PYTHON_LIBS").unwrap_or_else(|_| {
        let cache = std::env::var("CDC_STACK_CACHE")
            .unwrap_or_else(|_| format!("{}/.cache/cdc-pipeline", std::env::var("HOME").unwrap_or_default()));
        format!("{cache}/python-1.13.1")
    });
    let mut child = std::process::Command::new("python3")
        .env("PYTHONPATH", libs)
        .args(["-c", SCRIPT])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python3 runs (stack/install installs fastavro for it)");
    use std::io::Write;
    child.stdin.take().expect("stdin").write_all(&serde_json::to_vec(&items).expect("JSON")).expect("write");
    let out = child.wait_with_output().expect("python3 finishes");
    assert!(
        out.status.success(),
        "fastavro could not read the records:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let read: Vec<Json> = serde_json::from_slice(&out.stdout).expect("script prints JSON");
    assert_eq!(read.len(), items.len(), "fastavro read every key and value");
    read
}

async fn avro(mode: &str) {
    let (p, temporal, keyed) = run("avro", mode).await;
    let schema = schema_text(&p, &format!("{}-value", p.topic("temporal"))).await;
    assert!(!schema.contains("time-micros"), "no time-micros: {schema}");
    assert!(!schema.contains("cdc.Micro") && !schema.contains("cdc.Local"), "no format-1 names: {schema}");
    let names: &[&str] = if mode == "connect" {
        &[
            "org.apache.kafka.connect.data.Date",
            "org.apache.kafka.connect.data.Time",
            "org.apache.kafka.connect.data.Timestamp",
            "io.debezium.time.ZonedTimestamp",
        ]
    } else {
        &[
            "io.debezium.time.Date",
            "io.debezium.time.MicroTime",
            "io.debezium.time.MicroTimestamp",
            "io.debezium.time.Timestamp",
            "io.debezium.time.ZonedTimestamp",
        ]
    };
    for name in names {
        assert!(schema.contains(&format!("\"connect.name\":\"{name}\"")), "{name} in {schema}");
    }
    let key_schema = schema_text(&p, &format!("{}-key", p.topic("keyed"))).await;
    assert!(key_schema.contains("io.debezium.time.Date") && !key_schema.contains("logicalType"), "{key_schema}");

    let read = fastavro(&p, &temporal).await;
    let values: Vec<&Json> = read.iter().filter(|r| r["part"] == "value").map(|r| &r["record"]).collect();
    let row = |id: i64| *values.iter().rev().find(|v| v["id"] == id).unwrap_or_else(|| panic!("row {id}"));
    if mode == "connect" {
        assert_eq!(row(2)["t"], Json::Null, "negative TIME is null in connect mode");
        assert_eq!(row(3)["d"], Json::Null, "updated to a zero date");
    } else {
        assert_eq!(row(1)["t"], 3_020_399_999_999i64, "838:59:59.999999 as µs");
        assert_eq!(row(3)["t"], -3_020_399_999_999i64, "-838:59:59.999999 as µs");
        assert_eq!(row(2)["t"], -1, "-00:00:00.000001 is -1 µs, not 00:00:00.999999");
    }
    assert_eq!(row(2)["d"], Json::Null, "zero date is null");
    assert_eq!(row(1)["ts"], "2038-01-19T03:14:07.999999Z");
    fastavro(&p, &keyed).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn json_adaptive() {
    json("adaptive_time_microseconds").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn json_connect() {
    json("connect").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn avro_adaptive() {
    avro("adaptive_time_microseconds").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn avro_connect() {
    avro("connect").await;
}
