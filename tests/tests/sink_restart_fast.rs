//! A SIGKILLed sink that is restarted at once with the same config applies again within
//! seconds: with static group membership (`kafka.group.instance.id`, here the sink's
//! `name`) the restarted consumer takes its predecessor's place in the group and gets its
//! partitions back at once, instead of waiting for the dead member's session to time out.
//! `/ready` stays 503 until the partitions are actually assigned, and every record is applied
//! exactly once (no key, `insert.mode=insert`: a repeat would be a duplicate row).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cdc_schema::{Encoder, Field, FieldType, Part, Record, RecordSchema, Value};
use cdc_tests::sink::{producer, send, SinkCase};

const PARTITIONS: i32 = 2;
/// Restart to the first newly applied row; generous for a loaded CI machine (5 s is the goal).
const BOUND: Duration = Duration::from_secs(15);

async fn count(case: &SinkCase) -> i64 {
    case.rows(&format!("SELECT COUNT(*) FROM `{}`", case.topic))
        .await
        .first()
        .and_then(|r| r[0].as_deref()?.parse().ok())
        .unwrap_or(0)
}

/// Produces 20 records to each partition every 100 ms until `stop`; the number per partition.
fn produce_until(case: &SinkCase, stop: Arc<AtomicBool>) -> tokio::task::JoinHandle<i64> {
    let schema = Arc::new(RecordSchema {
        name: Some("events.Value".into()),
        fields: vec![Field::new("seq", FieldType::Int64, false), Field::new("part", FieldType::Int32, false)],
    });
    let (topic, bootstrap) = (case.topic.clone(), case.stack.kafka_bootstrap.clone());
    tokio::spawn(async move {
        let p = producer(&bootstrap);
        let encoder = Encoder::json();
        let mut per_partition = 0i64;
        while !stop.load(Ordering::Relaxed) {
            let mut sends = Vec::new();
            for i in per_partition..per_partition + 20 {
                for part in 0..PARTITIONS {
                    let record = Record {
                        schema: schema.clone(),
                        values: vec![Value::Int(i * i64::from(PARTITIONS) + i64::from(part)), Value::Int(part.into())],
                    };
                    sends.push((part, encoder.encode(&topic, Part::Value, &record).await.expect("encode")));
                }
            }
            futures::future::join_all(sends.iter().map(|(part, bytes)| send(&p, &topic, Some(*part), None, Some(bytes)))).await;
            per_partition += 20;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        per_partition
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sigkilled_sink_restarted_at_once_applies_again_within_seconds() {
    let case = SinkCase::new("sink_restart", PARTITIONS).await;
    // Static membership, as docs/operations.md recommends for a sink restarted by a supervisor;
    // no session timeout given.
    let config = format!(
        "{}\"group.instance.id\" = \"sink-{}\"\n",
        case.toml("\"pk.mode\" = \"none\"\n\"insert.mode\" = \"insert\"\n\"batch.size\" = 50"),
        case.database
    );
    let stop = Arc::new(AtomicBool::new(false));
    let writer = produce_until(&case, stop.clone());
    let mut sink = case.start_sink(&config, "toml", &[]);
    let deadline = Instant::now() + Duration::from_secs(60);
    while count(&case).await < 200 {
        assert!(Instant::now() < deadline, "the sink applied nothing in 60 s:\n{}", sink.log_text());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    sink.kill();
    let before = count(&case).await;
    let restarted = Instant::now();
    let mut sink = case.start_sink(&config, "toml", &[]);
    let (mut not_ready, mut ready, mut ready_unassigned, mut applied) = (None, None, None, None);
    while applied.is_none() && restarted.elapsed() < Duration::from_secs(70) {
        let code = case.http("/ready").await.0;
        let at = restarted.elapsed();
        // The sink logs the assignment before it reports it, so a 200 without the line in the
        // log is a 200 before the assignment.
        let assigned = sink.log_text().contains("partitions assigned");
        match code {
            503 if not_ready.is_none() => not_ready = Some((at, assigned)),
            200 if ready.is_none() => {
                ready = Some(at);
                if !assigned {
                    ready_unassigned = Some(at);
                }
            }
            _ => {}
        }
        if count(&case).await > before {
            applied = Some(at);
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    println!(
        "restart to: first 503 {not_ready:?} (assigned then: {}), first 200 {ready:?}, first newly applied row {applied:?}",
        not_ready.is_some_and(|(_, a)| a)
    );
    let applied = applied.unwrap_or_else(|| panic!("nothing applied within 70 s of the restart:\n{}", sink.log_text()));
    assert!(applied < BOUND, "the restarted sink applied its first row after {applied:?} (bound {BOUND:?}):\n{}", sink.log_text());
    assert_eq!(ready_unassigned, None, "/ready answered 200 before any partition was assigned:\n{}", sink.log_text());
    // With static membership the assignment can come before the test's first poll answers (it
    // did within 90 ms of the start), so a 503 is not always there to be seen. What must hold
    // is 200 only once assigned (above), and a 503 seen comes before the first 200.
    let ready = ready.unwrap_or_else(|| panic!("/ready never answered 200 after the restart:\n{}", sink.log_text()));
    if let Some((at, _)) = not_ready {
        assert!(at < ready, "/ready answered 200 ({ready:?}) before its first 503 ({at:?})");
    }
    let (_, status) = case.http("/status").await;
    assert!(status.contains(&format!("\"{}/0\"", case.topic)), "/status names the assigned partitions: {status}");

    // Exactly once, through the kill.
    stop.store(true, Ordering::Relaxed);
    let per_partition = writer.await.expect("producer task");
    let total = (per_partition * i64::from(PARTITIONS)).to_string();
    case.wait_rows(&format!("SELECT COUNT(*) FROM `{}`", case.topic), &[&[Some(total.as_str())]], Duration::from_secs(120), &sink)
        .await;
    let last = (per_partition * i64::from(PARTITIONS) - 1).to_string();
    assert_eq!(
        case.rows(&format!("SELECT COUNT(DISTINCT seq), MIN(seq), MAX(seq), SUM(seq % {PARTITIONS} <> part) FROM `{}`", case.topic)).await,
        vec![vec![Some(total.clone()), Some("0".into()), Some(last), Some("0".into())]],
        "each record exactly once, from its own partition"
    );
    let per = per_partition.to_string();
    assert_eq!(
        case.rows("SELECT kafka_partition, next_offset FROM cdc_sink_offsets ORDER BY kafka_partition").await,
        vec![vec![Some("0".into()), Some(per.clone())], vec![Some("1".into()), Some(per)]]
    );
    assert_eq!(sink.terminate(Duration::from_secs(20)), Some(0), "SIGTERM exits 0:\n{}", sink.log_text());
}

/// The trade-off of static membership: two live sinks with one name (so one group instance id)
/// fence each other. The broker keeps the newer one; the older one stops with an error that
/// names the id and the key to change, and the newer one goes on applying.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_sinks_with_one_name_fence_the_older_one_with_a_clear_error() {
    let case = SinkCase::new("sink_fenced", 1).await;
    let config = |case: &SinkCase| format!("{}\"group.instance.id\" = \"sink-{}\"\n", case.toml("\"http.failed.linger.ms\" = 0"), case.database);
    let p = producer(&case.stack.kafka_bootstrap);
    let row = |id: i32| format!(r#"{{"schema":{{"type":"struct","fields":[{{"type":"int32","optional":false,"field":"id"}}],"optional":false}},"payload":{{"id":{id}}}}}"#);
    let mut older = case.start_sink(&config(&case), "toml", &[]);
    older.wait_for_log("partitions assigned", Duration::from_secs(60));
    let newer_case = SinkCase { http_port: cdc_tests::sink::free_port(), ..case.clone() };
    let newer = newer_case.start_sink(&config(&newer_case), "toml", &[]);
    let code = older.wait(Duration::from_secs(60));
    let log = older.log_text();
    println!("older sink, exit {code:?}:\n{log}");
    assert_eq!(code, Some(1), "the fenced sink should stop with exit 1:\n{log}");
    let id = format!("sink-{}", case.database);
    assert!(
        log.contains("fenced out of consumer group") && log.contains(&format!("group.instance.id `{id}`")) && log.contains("kafka.group.instance.id"),
        "the error should name the fencing, the id and the key:\n{log}"
    );
    send(&p, &case.topic, None, None, Some(row(1).as_bytes())).await;
    newer_case.wait_rows(&format!("SELECT id FROM `{}`", case.topic), &[&[Some("1")]], Duration::from_secs(60), &newer).await;
}
