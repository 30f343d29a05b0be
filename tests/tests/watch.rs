//! `cdc-source watch` as a process against the real stack: the records a real cdc-source wrote
//! (insert, update, delete; both formats) printed decoded, every column as a person reads it;
//! records of other producers (garbage, unknown schema ids, truncates); bad addresses and topics;
//! following new records only.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use cdc_schema::{Encoder, Part};
use cdc_tests::process::{binary, Service};
use cdc_tests::sink::{create_topic, producer, send, users_row, users_schemas};
use cdc_tests::source::SourceSetup;
use cdc_tests::{unique_name, Stack};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde_json::{json, Value as Json};

/// What one run of the command gave.
#[derive(Debug)]
struct Run {
    code: Option<i32>,
    lines: Vec<Json>,
    stderr: String,
}

/// Runs `cdc-source watch ARGS` with the stack's variables unset (addresses come from the
/// arguments only); kills it after `timeout`.
fn watch(args: &[&str], timeout: Duration) -> Run {
    let mut child = Command::new(binary("cdc-source"))
        .arg("watch")
        .args(args)
        .env_remove("CDC_KAFKA_BOOTSTRAP")
        .env_remove("CDC_REGISTRY_URL")
        .env_remove("CDC_SOURCE_CONFIG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn cdc-source watch");
    let mut stdout = child.stdout.take().expect("stdout");
    let mut stderr = child.stderr.take().expect("stderr");
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        stdout.read_to_string(&mut s).map(|_| s)
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        stderr.read_to_string(&mut s).map(|_| s)
    });
    let deadline = Instant::now() + timeout;
    let code = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status.code();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let stdout = out.join().expect("stdout thread").expect("stdout text");
    let stderr = err.join().expect("stderr thread").expect("stderr text");
    let lines = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line ({e}): {l}\nstderr: {stderr}")))
        .collect();
    Run { code, lines, stderr }
}

/// The stack's addresses as flags.
fn addresses(stack: &Stack) -> Vec<String> {
    ["--bootstrap-servers", &stack.kafka_bootstrap, "--registry-url", &stack.registry_url].map(String::from).to_vec()
}

fn with<'a>(base: &'a [String], more: &[&'a str]) -> Vec<&'a str> {
    base.iter().map(String::as_str).chain(more.iter().copied()).collect()
}

const KINDS: &str = "create table kinds(id int primary key, price decimal(10,2), big bigint unsigned, d date, \
    t time(6), dt datetime(6), ts timestamp(3) null, f float, dbl double, flag bit(1), bits varbinary(4), \
    e enum('small','large'), note text)";
const KINDS_ROW: &str = "insert into kinds values(7, -1234.50, 18446744073709551615, '2024-01-31', '-01:02:03.5', \
    '2024-01-31 12:03:04.000001', '2024-02-29 23:59:58.125', 0.1, 2.5e-3, 1, x'00ff01', 'large', 'héllo 😀')";

/// Every column of the row above, as watch prints it.
fn kinds_value() -> Json {
    json!({"id": 7, "price": "-1234.50", "big": "18446744073709551615", "d": "2024-01-31",
        "t": "-01:02:03.500000", "dt": "2024-01-31 12:03:04.000001", "ts": "2024-02-29T23:59:58.125000Z",
        "f": 0.1, "dbl": 0.0025, "flag": true, "bits": "AP8B", "e": "large", "note": "héllo 😀"})
}

fn user(id: i64, name: &str) -> Json {
    json!({"id": id, "user_id": "u1", "pwd": "p1", "name": name, "created_at": "2021-06-01 10:00:00.000000"})
}

/// A real source writes insert, update, delete of `users` and one row of every kind of column;
/// watch prints them decoded, the same in either format.
async fn source_records_print_decoded(format: &str) {
    let src = SourceSetup::new(&format!("watch_{format}")).await;
    src.exec(&[KINDS]).await;
    let mut svc = src.start(&src.config(format, "\"delete.enabled\" = true\n\"snapshot.mode\" = \"never\""));
    svc.wait_for_log("streaming the binlog", Duration::from_secs(60));
    src.exec(&[
        "set time_zone = '+00:00'",
        "insert into users(user_id,pwd,name,created_at) values('u1','p1','First Name','2021-06-01 10:00:00')",
        "update users set name='Renamed' where id=1",
        "delete from users where id=1",
        KINDS_ROW,
    ])
    .await;
    assert_eq!(src.read("users", 3).len(), 3, "source log:\n{}", svc.log_text());
    assert_eq!(src.read("kinds", 1).len(), 1, "source log:\n{}", svc.log_text());

    let stack = addresses(&src.stack);
    let pattern = format!("{}(users|kinds)", src.prefix);
    let run = watch(&with(&stack, &[&pattern]), Duration::from_secs(60));
    assert_eq!(run.code, Some(0), "{run:?}");
    let users: Vec<&Json> = run.lines.iter().filter(|l| l["topic"] == src.topic("users")).collect();
    let kinds: Vec<&Json> = run.lines.iter().filter(|l| l["topic"] == src.topic("kinds")).collect();
    assert_eq!((users.len(), kinds.len()), (3, 1), "{run:?}");
    for (line, (op, value)) in users.iter().zip([("c", user(1, "First Name")), ("u", user(1, "Renamed")), ("d", json!(null))]) {
        assert_eq!(line["key"], json!({"id": 1}), "{line}");
        assert_eq!(line["value"], value, "{line}");
        assert_eq!(line["headers"]["cdc.op"], op, "{line}");
        assert!(line["headers"]["cdc.gtid"].as_str().is_some_and(|g| g.starts_with("0-1-")), "{line}");
        assert!(line["headers"]["cdc.binlog"].as_str().is_some_and(|b| b.contains("mysql-bin.")), "{line}");
        assert!(line["headers"]["cdc.ts_ms"].as_str().is_some_and(|t| t.parse::<u64>().is_ok()), "{line}");
        assert_eq!(line["partition"], 0, "{line}");
        assert!(line["timestamp"].as_i64().is_some_and(|t| t > 1_600_000_000_000), "{line}");
        assert!(line.get("error").is_none() && line.get("truncate").is_none(), "{line}");
    }
    assert_eq!(users[2]["tombstone"], true, "the delete is a tombstone: {}", users[2]);
    assert!(users[0].get("tombstone").is_none());
    let offsets: Vec<i64> = users.iter().map(|l| l["offset"].as_i64().expect("offset")).collect();
    assert!(offsets.windows(2).all(|w| w[0] < w[1]), "offsets {offsets:?}");
    assert_eq!(kinds[0]["key"], json!({"id": 7}));
    assert_eq!(kinds[0]["value"], kinds_value(), "every column as a person reads it");

    // --max, and addresses from a config file holding nothing but them (no connection.url).
    let dir = std::env::temp_dir().join(unique_name("watch_cfg"));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let config = dir.join("watch.toml");
    let text = format!(
        "\"schema.registry.url\" = \"{}\"\n[kafka]\n\"bootstrap.servers\" = \"{}\"\n",
        src.stack.registry_url, src.stack.kafka_bootstrap
    );
    std::fs::write(&config, text).expect("write config");
    let config_arg = config.display().to_string();
    let run = watch(&["--config", &config_arg, &src.topic("users"), "--max", "2"], Duration::from_secs(60));
    std::fs::remove_dir_all(&dir).expect("remove temp dir");
    assert_eq!(run.code, Some(0), "{run:?}");
    assert_eq!(run.lines.len(), 2, "{run:?}");
    assert_eq!(run.lines[1]["value"], user(1, "Renamed"));
    stop(svc);
}

fn stop(mut s: Service) {
    let code = s.terminate(Duration::from_secs(30));
    assert_eq!(code, Some(0), "cdc-source should exit 0 on SIGTERM; log:\n{}", s.log_text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn avro_records_of_a_real_source_print_decoded() {
    source_records_print_decoded("avro").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_records_of_a_real_source_print_decoded() {
    source_records_print_decoded("json").await;
}

async fn send_with_op(p: &FutureProducer, topic: &str, partition: i32, value: &[u8], op: &str) {
    let headers = OwnedHeaders::new().insert(Header { key: "cdc.op", value: Some(op) });
    let record: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(topic).partition(partition).payload(value).headers(headers);
    p.send(record, Duration::from_secs(10)).await.expect("delivered");
}

/// Garbage, an Avro record of an unknown schema id and a truncate each print a line and the
/// watch goes on; an unknown topic, an unreachable registry and an unreachable Kafka stop it
/// with a message that names the problem.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_producers_records_and_bad_addresses() {
    let stack = Stack::from_env();
    let topic = unique_name("watch_bad");
    create_topic(&stack.kafka_bootstrap, &topic, 2).await;
    let p = producer(&stack.kafka_bootstrap);
    let encoder = Encoder::json();
    let schemas = users_schemas(&topic, vec![]);
    let (key, value) = users_row(&schemas, 3, "u3", "p3", "Three", vec![]);
    let key = encoder.encode(&topic, Part::Key, &key).await.expect("key");
    let value = encoder.encode(&topic, Part::Value, &value).await.expect("value");
    send(&p, &topic, Some(0), Some(b"plain key"), Some(b"\x07garbage")).await;
    send(&p, &topic, Some(0), None, Some(&[0, 0x7f, 0xff, 0xff, 0xf0, 2])).await;
    send(&p, &topic, Some(0), Some(&key), Some(&value)).await;
    send_with_op(&p, &topic, 1, &value, "t").await;

    let flags = addresses(&stack);
    let run = watch(&with(&flags, &[&topic]), Duration::from_secs(60));
    assert_eq!(run.code, Some(0), "{run:?}");
    assert_eq!(run.lines.len(), 4, "{run:?}");
    let (p0, p1): (Vec<&Json>, Vec<&Json>) = run.lines.iter().partition(|l| l["partition"] == 0);
    assert_eq!((p0.len(), p1.len()), (3, 1), "{run:?}");
    assert!(p0[0]["error"].as_str().is_some_and(|e| e.contains("cannot decode key") && e.contains("first byte is 0x70")), "{}", p0[0]);
    assert_eq!(p0[0]["raw"], json!({"key": "cGxhaW4ga2V5", "value": "B2dhcmJhZ2U="}));
    assert!(p0[1]["error"].as_str().is_some_and(|e| e.contains("schema id 2147483632 is not known")), "{}", p0[1]);
    assert_eq!(p0[2]["value"], json!({"id": 3, "user_id": "u3", "pwd": "p3", "name": "Three"}));
    assert_eq!((p1[0]["truncate"].clone(), p1[0].get("tombstone")), (json!(true), None), "{}", p1[0]);

    let run = watch(&with(&flags, &[&format!("{topic}_nope")]), Duration::from_secs(60));
    assert_eq!(run.code, Some(2), "{run:?}");
    assert!(run.stderr.contains("does not exist on") && run.lines.is_empty(), "{run:?}");

    // The Avro record needs the registry: an unreachable one stops the watch after the lines
    // before it, naming the URL.
    let bad_registry = ["--bootstrap-servers", &stack.kafka_bootstrap, "--registry-url", "http://127.0.0.1:9", &topic];
    let run = watch(&bad_registry, Duration::from_secs(60));
    assert_eq!(run.code, Some(1), "{run:?}");
    assert!(run.stderr.contains("schema registry at http://127.0.0.1:9 unreachable"), "{run:?}");
    assert!(run.lines.iter().all(|l| l["offset"] == 0), "{run:?}");

    let run = watch(&["--bootstrap-servers", "127.0.0.1:9", &topic], Duration::from_secs(60));
    assert_eq!(run.code, Some(1), "{run:?}");
    assert!(run.stderr.contains("cannot reach Kafka at 127.0.0.1:9"), "{run:?}");
}

/// `--from end --follow` prints records written after it started, not the ones before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follow_from_the_end_prints_only_new_records() {
    let stack = Stack::from_env();
    let topic = unique_name("watch_follow");
    create_topic(&stack.kafka_bootstrap, &topic, 1).await;
    let p = producer(&stack.kafka_bootstrap);
    let schemas = users_schemas(&topic, vec![]);
    let encoder = Encoder::json();
    let row = |id: i64| users_row(&schemas, id, "u", "p", "n", vec![]).1;
    send(&p, &topic, Some(0), None, Some(&encoder.encode(&topic, Part::Value, &row(1)).await.expect("v"))).await;

    let flags = addresses(&stack);
    let args: Vec<String> = with(&flags, &[&topic, "--from", "end", "--follow", "--max", "2"]).into_iter().map(String::from).collect();
    let watching = std::thread::spawn(move || watch(&args.iter().map(String::as_str).collect::<Vec<_>>(), Duration::from_secs(60)));
    // Keep writing until the watch printed two records (it may start after the first few).
    let mut id = 100;
    while !watching.is_finished() {
        id += 1;
        send(&p, &topic, Some(0), None, Some(&encoder.encode(&topic, Part::Value, &row(id)).await.expect("v"))).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let run = watching.join().expect("watch thread");
    assert_eq!(run.code, Some(0), "{run:?}");
    assert_eq!(run.lines.len(), 2, "{run:?}");
    let ids: Vec<i64> = run.lines.iter().map(|l| l["value"]["id"].as_i64().expect("id")).collect();
    assert!(ids[0] > 100 && ids[1] == ids[0] + 1, "only new records, in order: {ids:?}");
}
