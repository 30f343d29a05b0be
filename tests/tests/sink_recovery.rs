//! jdbc-sink exactly once across crashes: records stream in while the sink is killed with SIGKILL
//! several times mid-stream and restarted; afterwards every record is in the mirror exactly once.
//!
//! The table has no primary key and the sink runs with `pk.mode=none`, `insert.mode=insert`: a
//! record applied twice would be a duplicate row and a lost record a missing one, so the check
//! does not lean on idempotent upserts. The same check runs after a rebalance between two sinks
//! and after the sink's database connection was killed repeatedly.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cdc_schema::{Encoder, Field, FieldType, Part, Record, RecordSchema, Value};
use cdc_tests::process::Service;
use cdc_tests::sink::{producer, send, SinkCase};
use mysql_async::prelude::Queryable;

const PER_PARTITION: i64 = 3000;
const PARTITIONS: i32 = 2;

async fn count(case: &SinkCase, sql: &str) -> i64 {
    case.rows(sql)
        .await
        .first()
        .and_then(|r| r[0].as_deref()?.parse().ok())
        .unwrap_or(0)
}

/// Waits until the mirror has more rows than `before` (the sink is applying batches); `false`
/// when every record is already there.
async fn wait_for_progress(case: &SinkCase, sql: &str, before: i64) -> bool {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let now = count(case, sql).await;
        if now >= PER_PARTITION * i64::from(PARTITIONS) {
            return false;
        }
        if now > before {
            return true;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the sink made no progress in 30 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Produces `PER_PARTITION` events to each partition in the background, steadily (chunks of 100
/// per partition every 200 ms).
fn produce_events(case: &SinkCase) -> tokio::task::JoinHandle<()> {
    let schema = Arc::new(RecordSchema {
        name: Some("events.Value".into()),
        fields: vec![
            Field::new("seq", FieldType::Int64, false),
            Field::new("part", FieldType::Int32, false),
            Field::new("body", FieldType::String, true),
        ],
    });
    let topic = case.topic.clone();
    let bootstrap = case.stack.kafka_bootstrap.clone();
    tokio::spawn(async move {
        let p = producer(&bootstrap);
        let encoder = Encoder::json();
        for chunk in 0..PER_PARTITION / 100 {
            let mut sends = Vec::new();
            for i in chunk * 100..(chunk + 1) * 100 {
                for part in 0..PARTITIONS {
                    let seq = i64::from(part) * PER_PARTITION + i;
                    let record = Record {
                        schema: schema.clone(),
                        values: vec![
                            Value::Int(seq),
                            Value::Int(part.into()),
                            Value::String(format!("row {seq}")),
                        ],
                    };
                    let bytes = encoder
                        .encode(&topic, Part::Value, &record)
                        .await
                        .expect("encode");
                    sends.push((part, bytes));
                }
            }
            // Concurrent sends; the idempotent producer keeps each partition's order.
            futures::future::join_all(
                sends
                    .iter()
                    .map(|(part, bytes)| send(&p, &topic, Some(*part), None, Some(bytes))),
            )
            .await;
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
}

/// Config of the exactly-once checks: no key, plain inserts, small batches.
fn events_config(case: &SinkCase) -> String {
    case.toml("\"pk.mode\" = \"none\"\n\"insert.mode\" = \"insert\"\n\"batch.size\" = 50")
}

/// Waits for every event, then checks each is in the mirror exactly once and the offsets table
/// is at the end of every partition.
async fn assert_every_event_once(case: &SinkCase, sink: &Service) {
    let total = PER_PARTITION * i64::from(PARTITIONS);
    let want = total.to_string();
    let count_sql = format!("SELECT COUNT(*) FROM `{}`", case.topic);
    case.wait_rows(
        &count_sql,
        &[&[Some(want.as_str())]],
        Duration::from_secs(120),
        sink,
    )
    .await;
    let summary = case
        .rows(&format!(
            "SELECT COUNT(DISTINCT seq), MIN(seq), MAX(seq) FROM `{}`",
            case.topic
        ))
        .await;
    let last = (total - 1).to_string();
    assert_eq!(
        summary,
        vec![vec![Some(want.clone()), Some("0".into()), Some(last)]],
        "each record exactly once"
    );
    let offsets = case
        .rows("SELECT kafka_partition, next_offset FROM cdc_sink_offsets ORDER BY kafka_partition")
        .await;
    let per = PER_PARTITION.to_string();
    assert_eq!(
        offsets,
        vec![
            vec![Some("0".into()), Some(per.clone())],
            vec![Some("1".into()), Some(per)]
        ]
    );
    // Every partition's records came from that partition.
    for part in 0..PARTITIONS {
        let rows = case
            .rows(&format!("SELECT COUNT(*) FROM `{}` WHERE part = {part} AND seq DIV {PER_PARTITION} = {part}", case.topic))
            .await;
        assert_eq!(rows, vec![vec![Some(PER_PARTITION.to_string())]]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_stream_neither_loses_nor_repeats_a_record() {
    let case = SinkCase::new("sink_kill", PARTITIONS).await;
    let config = events_config(&case);
    let writer = produce_events(&case);
    let count_sql = format!("SELECT COUNT(*) FROM `{}`", case.topic);
    // Static membership: a restarted sink gets its partitions back at once, so every kill lands
    // while batches are being applied.
    let env = [
        ("CDC_SINK_KAFKA_SESSION_TIMEOUT_MS", "6000"),
        ("CDC_SINK_KAFKA_GROUP_INSTANCE_ID", "sink-under-test"),
    ];
    let mut sink = case.start_sink(&config, "toml", &env);
    let mut kills = 0;
    while kills < 10 {
        let before = count(&case, &count_sql).await;
        if !wait_for_progress(&case, &count_sql, before).await {
            break;
        }
        tokio::time::sleep(Duration::from_millis((kills * 37 % 150) as u64)).await;
        sink.kill();
        kills += 1;
        sink = case.start_sink(&config, "toml", &env);
    }
    assert!(
        kills >= 5,
        "only {kills} kills landed mid-stream; sink log:\n{}",
        sink.log_text()
    );
    writer.await.expect("producer task");
    assert_every_event_once(&case, &sink).await;
    assert_eq!(
        sink.terminate(Duration::from_secs(20)),
        Some(0),
        "SIGTERM exits 0:\n{}",
        sink.log_text()
    );
}

/// The partitions `/status` lists as assigned to the sink at `case`'s HTTP port.
async fn assigned(case: &SinkCase) -> BTreeSet<String> {
    let (_, body) = case.http("/status").await;
    let status: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
    status["partitions"]
        .as_array()
        .map(|ps| ps.iter().filter_map(|p| p.as_str().map(str::to_string)).collect())
        .unwrap_or_default()
}

/// Waits until the group's rebalance has given both running sinks partitions, none to both.
async fn wait_until_shared(a: &SinkCase, a_sink: &mut Service, b: &SinkCase, b_sink: &mut Service) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (mine, theirs) = (assigned(a).await, assigned(b).await);
        if !mine.is_empty() && !theirs.is_empty() && mine.is_disjoint(&theirs) {
            return;
        }
        for sink in [&mut *a_sink, &mut *b_sink] {
            assert!(sink.exited().is_none(), "a sink exited before the two shared the partitions:\n{}", sink.log_text());
        }
        assert!(
            Instant::now() < deadline,
            "the two sinks never held partitions at the same time (first {mine:?}, second {theirs:?}):\n{}",
            b_sink.log_text()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Two sinks in one group share the partitions; one is killed mid-stream and the other takes
/// its partitions over. Fencing in the offsets table keeps every record exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rebalance_between_two_sinks_keeps_every_record_once() {
    let case = SinkCase::new("sink_rebalance", PARTITIONS).await;
    let config = events_config(&case);
    // One name, so each instance needs its own group.instance.id (else the second fences the first).
    let env = |id| [("CDC_SINK_KAFKA_SESSION_TIMEOUT_MS", "6000"), ("CDC_SINK_KAFKA_GROUP_INSTANCE_ID", id)];
    let writer = produce_events(&case);
    let count_sql = format!("SELECT COUNT(*) FROM `{}`", case.topic);
    let mut first = case.start_sink(&config, "toml", &env("first"));
    wait_for_progress(&case, &count_sql, 0).await;
    let second_http = SinkCase {
        http_port: cdc_tests::sink::free_port(),
        ..case.clone()
    };
    let mut second = second_http.start_sink(
        &second_http
            .toml("\"pk.mode\" = \"none\"\n\"insert.mode\" = \"insert\"\n\"batch.size\" = 50"),
        "toml",
        &env("second"),
    );
    wait_until_shared(&case, &mut first, &second_http, &mut second).await;
    let before = count(&case, &count_sql).await;
    wait_for_progress(&case, &count_sql, before).await;
    first.kill();
    writer.await.expect("producer task");
    assert_every_event_once(&case, &second).await;
}

/// The sink's database connection is killed repeatedly mid-stream: the batch in flight is rolled
/// back and retried with backoff, nothing is skipped or applied twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_database_connections_are_retried() {
    let case = SinkCase::new("sink_connkill", PARTITIONS).await;
    let sink = case.start_sink(&events_config(&case), "toml", &[]);
    let writer = produce_events(&case);
    let count_sql = format!("SELECT COUNT(*) FROM `{}`", case.topic);
    let mut admin = case.stack.root_conn(None).await;
    let mut killed = 0;
    for _ in 0..8 {
        let before = count(&case, &count_sql).await;
        if !wait_for_progress(&case, &count_sql, before).await {
            break;
        }
        let ids: Vec<u64> = admin
            .exec(
                "SELECT ID FROM information_schema.PROCESSLIST WHERE DB = ? AND ID <> CONNECTION_ID()",
                (&case.database,),
            )
            .await
            .expect("processlist");
        for id in ids {
            if admin.query_drop(format!("KILL {id}")).await.is_ok() {
                killed += 1;
            }
        }
    }
    assert!(killed >= 3, "only {killed} connections killed");
    writer.await.expect("producer task");
    assert_every_event_once(&case, &sink).await;
    let (_, metrics) = case.http("/metrics").await;
    // The series exists at 0 from the start; the killed connections must have counted.
    let retries = metrics
        .lines()
        .find_map(|l| l.strip_prefix("cdc_sink_retries_total{class=\"database\"} "))
        .and_then(|v| v.trim().parse::<f64>().ok());
    assert!(retries.is_some_and(|n| n >= 1.0), "{metrics}");
}

/// The offsets table is the truth, not the group offsets: when it is behind (here set back by
/// hand after the rows were removed), a restarted sink moves the consumer back and applies the
/// records again from there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_continues_from_the_offsets_table_not_the_group() {
    let case = SinkCase::new("sink_seek", 1).await;
    let config = case.toml("");
    let mut sink = case.start_sink(&config, "toml", &[]);
    let schemas = cdc_tests::sink::users_schemas(&case.topic, vec![]);
    let p = producer(&case.stack.kafka_bootstrap);
    let encoder = Encoder::json();
    for id in 1..=3 {
        let (k, v) =
            cdc_tests::sink::users_row(&schemas, id, "u", "pw", &format!("user {id}"), vec![]);
        let kb = encoder
            .encode(&case.topic, Part::Key, &k)
            .await
            .expect("key");
        let vb = encoder
            .encode(&case.topic, Part::Value, &v)
            .await
            .expect("value");
        send(&p, &case.topic, None, Some(&kb), Some(&vb)).await;
    }
    let table = format!("SELECT id FROM `{}` ORDER BY id", case.topic);
    case.wait_rows(
        &table,
        &[&[Some("1")], &[Some("2")], &[Some("3")]],
        Duration::from_secs(60),
        &sink,
    )
    .await;
    assert_eq!(
        sink.terminate(Duration::from_secs(20)),
        Some(0),
        "{}",
        sink.log_text()
    );

    let mut conn = case.stack.root_conn(Some(&case.database)).await;
    conn.query_drop(format!(
        "DELETE FROM `{}`; UPDATE cdc_sink_offsets SET next_offset = 1",
        case.topic
    ))
    .await
    .expect("set the stored offset back");
    let sink = case.start_sink(&config, "toml", &[]);
    case.wait_rows(
        &table,
        &[&[Some("2")], &[Some("3")]],
        Duration::from_secs(60),
        &sink,
    )
    .await;
    let log = sink.log_text();
    assert!(log.contains("continuing from the stored offset"), "{log}");
}

/// While the mirror database cannot be reached the sink is live but not ready, says why in
/// `/status`, retries, and still stops cleanly on SIGTERM.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_database_means_not_ready_and_sigterm_still_exits_0() {
    let case = SinkCase::new("sink_nodb", 1).await;
    let dead_port = cdc_tests::sink::free_port();
    let config = case.toml("").replace(
        &format!(":{}/{}", case.stack.mariadb_port, case.database),
        &format!(":{dead_port}/{}", case.database),
    );
    let mut sink = case.start_sink(&config, "toml", &[]);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let (code, status) = case.http("/status").await;
        if code == 200 && status.contains("\"state\":\"retrying\"") {
            assert!(status.contains("connecting to"), "{status}");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never retrying: {status}\n{}",
            sink.log_text()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(case.http("/health").await.0, 200);
    assert_eq!(case.http("/ready").await.0, 503);
    assert_eq!(
        sink.terminate(Duration::from_secs(20)),
        Some(0),
        "{}",
        sink.log_text()
    );
}
