//! A rough throughput figure of jdbc-sink (not a benchmark: `bench/` holds those). Ignored by
//! default; run with `cargo test -p cdc-tests --test sink_throughput -- --ignored --nocapture`.

use std::time::{Duration, Instant};

use cdc_schema::{Encoder, Part};
use cdc_tests::sink::{producer, users_row, users_schemas, SinkCase};
use rdkafka::producer::FutureRecord;

const RECORDS: i64 = 100_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "prints a figure; run explicitly"]
async fn upserts_per_second() {
    let case = SinkCase::new("sink_tput", 1).await;
    let schemas = users_schemas(&case.topic, vec![]);
    let encoder = Encoder::json();
    let p = producer(&case.stack.kafka_bootstrap);
    let mut pending = Vec::new();
    for id in 0..RECORDS {
        let (k, v) = users_row(&schemas, id, &format!("user{id}"), "pw", "A name", vec![]);
        let kb = encoder
            .encode(&case.topic, Part::Key, &k)
            .await
            .expect("key");
        let vb = encoder
            .encode(&case.topic, Part::Value, &v)
            .await
            .expect("value");
        let record = FutureRecord::to(&case.topic).key(&kb).payload(&vb);
        pending.push(p.send_result(record).expect("queued"));
        if pending.len() == 10_000 {
            futures::future::join_all(pending.drain(..)).await;
        }
    }
    futures::future::join_all(pending).await;
    let started = Instant::now();
    let sink = case.start_sink(&case.toml(""), "toml", &[]);
    let want = RECORDS.to_string();
    case.wait_rows(
        &format!("SELECT COUNT(*) FROM `{}`", case.topic),
        &[&[Some(want.as_str())]],
        Duration::from_secs(600),
        &sink,
    )
    .await;
    let secs = started.elapsed().as_secs_f64();
    let (_, metrics) = case.http("/metrics").await;
    for line in metrics.lines().filter(|l| l.starts_with("cdc_sink_batch_")) {
        println!("{line}");
    }
    println!(
        "{RECORDS} records in {secs:.1} s: {:.0} rows/s (including start-up)",
        RECORDS as f64 / secs
    );
}
