//! cdc-source killed (SIGKILL) while records wait in each of its queues: encoded and queued for
//! the publisher task, handed to librdkafka and not yet acknowledged by the broker, and in an
//! open Kafka transaction — and then restarted: every row is on the topic exactly once.
//!
//! The source publishes to a private one-node Kafka under a writer of multi-row inserts. To hold
//! records in all three stages at once the test pauses the broker (SIGSTOP: connections stay open
//! and nothing is answered, as when a broker stalls) and waits until
//! `cdc_source_records_pending` is above zero for every stage — the reader goes on reading into
//! the queue while the publisher task waits on the broker. Then the source is killed and the
//! broker resumed. This is done twice (the second kill hits a source that itself resumed after a
//! kill), then the source runs to the end of the writes.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cdc_tests::private::PrivateKafka;
use cdc_tests::process::{http_addr, Service};
use cdc_tests::source::{payload, SourceSetup};
use cdc_tests::Stack;
use mysql_async::prelude::Queryable;

const STAGES: [&str; 3] = ["queued", "unacknowledged", "uncommitted"];
/// Rows per INSERT of the writer.
const ROWS_PER_INSERT: i64 = 200;
/// The writer stops by itself after this many rows.
const MAX_ROWS: i64 = 200_000;

async fn metrics(http: &str) -> Option<String> {
    let client = reqwest::Client::builder().timeout(Duration::from_secs(2)).build().ok()?;
    client.get(format!("http://{http}/metrics")).send().await.ok()?.text().await.ok()
}

fn value(metrics: &str, series: &str) -> Option<i64> {
    let line = metrics.lines().find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))?;
    line[series.len()..].trim().parse().ok()
}

/// `cdc_source_records_pending` per stage, or `None` when /metrics does not answer.
async fn pending(http: &str) -> Option<BTreeMap<&'static str, i64>> {
    let text = metrics(http).await?;
    let mut out = BTreeMap::new();
    for stage in STAGES {
        out.insert(stage, value(&text, &format!("cdc_source_records_pending{{stage=\"{stage}\"}}"))?);
    }
    Some(out)
}

/// Kafka transactions this source process committed.
async fn committed(http: &str) -> i64 {
    let text = metrics(http).await.unwrap_or_default();
    value(&text, "cdc_source_kafka_transactions_total{outcome=\"committed\"}").unwrap_or(0)
}

/// Pauses the broker until records wait in every stage; returns the counts seen. A pause that
/// happens to fall where nothing is in flight (the publisher waiting on a commit whose records
/// were all acknowledged) is undone and tried again a moment later.
async fn pause_with_records_in_every_stage(kafka: &PrivateKafka, http: &str, source: &Service) -> BTreeMap<&'static str, i64> {
    let mut last = None;
    for _attempt in 0..10 {
        kafka.pause(1);
        let until = Instant::now() + Duration::from_secs(6);
        while Instant::now() < until {
            if let Some(p) = pending(http).await {
                if p.values().all(|v| *v > 0) {
                    return p;
                }
                last = Some(p);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        kafka.resume(1);
        tokio::time::sleep(Duration::from_millis(700)).await;
    }
    panic!("records never waited in every stage at once; last seen {last:?}; log:\n{}", source.log_text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_while_records_wait_in_every_queue_each_row_lands_once() {
    let kafka = PrivateKafka::start_single();
    let src = SourceSetup::on(kafka.on(Stack::from_env()), "kill_queued").await;
    src.exec(&["create table events(id bigint primary key, n bigint not null, pad varchar(200) not null)"]).await;
    let config = src.config("json", "\"snapshot.mode\" = \"never\"");
    let mut source = src.start(&config);
    source.wait_for_log("streaming the binlog", Duration::from_secs(90));

    // The writer: multi-row inserts as fast as MariaDB takes them, until told to stop.
    let written = Arc::new(AtomicI64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (written, stop) = (Arc::clone(&written), Arc::clone(&stop));
        let mut conn = src.stack.root_conn(Some(&src.database)).await;
        tokio::spawn(async move {
            let pad = "p".repeat(150);
            let mut next = 1;
            while !stop.load(Ordering::SeqCst) && next <= MAX_ROWS {
                let values: Vec<String> =
                    (next..next + ROWS_PER_INSERT).map(|id| format!("({id},{},'{pad}')", id * 7)).collect();
                conn.query_drop(format!("insert into events values {}", values.join(","))).await.expect("insert");
                next += ROWS_PER_INSERT;
                written.store(next - 1, Ordering::SeqCst);
            }
        })
    };

    for round in 1..=2 {
        let http = http_addr(&source.log_text());
        // This process has committed a few Kafka transactions before the broker is paused, so
        // the kill comes after commits that landed and while another is pending.
        let start = Instant::now();
        while committed(&http).await < 3 {
            assert!(start.elapsed() < Duration::from_secs(60), "round {round}: no commits; log:\n{}", source.log_text());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let seen = pause_with_records_in_every_stage(&kafka, &http, &source).await;
        eprintln!("round {round}: killing the source with records pending {seen:?}, {} rows written", written.load(Ordering::SeqCst));
        source.kill();
        kafka.resume(1);
        source = src.start(&config);
        source.wait_for_log("streaming the binlog", Duration::from_secs(90));
        let log = source.log_text();
        eprintln!("round {round}: restarted, {}", log.lines().find(|l| l.contains("resuming from")).unwrap_or("(no resume line)"));
    }

    stop.store(true, Ordering::SeqCst);
    writer.await.expect("writer");
    let rows = written.load(Ordering::SeqCst);
    assert!(rows >= 10_000, "the writer wrote only {rows} rows");

    // Every row exactly once, with its own values.
    let deadline = Instant::now() + Duration::from_secs(180);
    let records = loop {
        let records = cdc_tests::kafka::read_to_end(&src.stack.kafka_bootstrap, &src.topic("events"), Duration::from_secs(90));
        if records.len() as i64 >= rows || Instant::now() > deadline {
            break records;
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    };
    let mut seen: BTreeMap<i64, usize> = BTreeMap::new();
    for r in &records {
        let after = payload(r.value.as_deref()).expect("a change record");
        let id = after["id"].as_i64().expect("id");
        assert_eq!(after["n"].as_i64(), Some(id * 7), "row {id} carries another row's values");
        *seen.entry(id).or_default() += 1;
    }
    let twice: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).map(|(id, n)| (*id, *n)).take(10).collect();
    let missing: Vec<_> = (1..=rows).filter(|id| !seen.contains_key(id)).take(10).collect();
    assert!(
        twice.is_empty() && missing.is_empty() && records.len() as i64 == rows,
        "{} records for {rows} rows; more than once (id, times): {twice:?}; missing: {missing:?}; log:\n{}",
        records.len(),
        source.log_text()
    );
    eprintln!("{rows} rows, each on the topic once after two kills with records in every queue");
    source.terminate(Duration::from_secs(30));
}
