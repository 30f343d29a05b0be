//! Truncate records (header `cdc.op=t`, key and value null) against the real stack: with
//! `truncate.enabled` the mirror table is emptied exactly at that point of the partition; without
//! it the rows stay and the record is counted. Records are typed by hand, as in `sink_apply.rs`.

use std::time::Duration;

use cdc_tests::sink::{producer, send, SinkCase};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};

const WAIT: Duration = Duration::from_secs(60);

fn key(id: i64) -> String {
    format!(r#"{{"schema":{{"type":"struct","fields":[{{"type":"int32","optional":false,"field":"id"}}],"optional":false}},"payload":{{"id":{id}}}}}"#)
}

fn value(id: i64, name: &str) -> String {
    format!(r#"{{"schema":{{"type":"struct","fields":[{{"type":"int32","optional":false,"field":"id"}},{{"type":"string","optional":true,"field":"name"}}],"optional":false,"name":"users"}},"payload":{{"id":{id},"name":"{name}"}}}}"#)
}

async fn row(p: &FutureProducer, case: &SinkCase, partition: i32, id: i64, name: &str) {
    let (k, v) = (key(id), value(id, name));
    send(p, &case.topic, Some(partition), Some(k.as_bytes()), Some(v.as_bytes())).await;
}

/// The source's truncate record: no key, no value, `cdc.op=t` and the group's GTID.
async fn truncate(p: &FutureProducer, case: &SinkCase, partition: i32, gtid: &str) {
    let headers = OwnedHeaders::new()
        .insert(Header { key: "cdc.op", value: Some("t") })
        .insert(Header { key: "cdc.gtid", value: Some(gtid) })
        .insert(Header { key: "cdc.binlog", value: Some("mariadb-bin.000001:4") })
        .insert(Header { key: "cdc.ts_ms", value: Some("1700000000000") });
    let record: FutureRecord<'_, [u8], [u8]> =
        FutureRecord::to(&case.topic).partition(partition).headers(headers);
    p.send(record, Duration::from_secs(10)).await.expect("delivered");
}

fn metric_line(metrics: &str, outcome: &str) -> Option<String> {
    metrics
        .lines()
        .find(|l| l.starts_with("cdc_sink_truncates_total{") && l.contains(&format!("outcome=\"{outcome}\"")))
        .map(str::to_string)
}

async fn wait_metric(case: &SinkCase, outcome: &str, want: &str, sink: &cdc_tests::process::Service) {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let (_, metrics) = case.http("/metrics").await;
        let line = metric_line(&metrics, outcome);
        if line.as_deref().is_some_and(|l| l.ends_with(&format!(" {want}"))) {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "metric never {want}: {line:?}\n{}", sink.log_text());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncate_enabled_empties_the_table_at_that_point() {
    let case = SinkCase::new("sink_trunc_on", 1).await;
    let p = producer(&case.stack.kafka_bootstrap);
    // Rows before, the truncate, rows after (one of them a key seen before), all read in one go.
    row(&p, &case, 0, 1, "before1").await;
    row(&p, &case, 0, 2, "before2").await;
    truncate(&p, &case, 0, "0-1-10").await;
    row(&p, &case, 0, 2, "after2").await;
    row(&p, &case, 0, 3, "after3").await;
    let sink = case.start_sink(&case.toml("\"delete.enabled\" = true\n\"truncate.enabled\" = true"), "toml", &[]);
    let table = format!("SELECT id, name FROM `{}` ORDER BY id", case.topic);
    case.wait_rows(&table, &[&[Some("2"), Some("after2")], &[Some("3"), Some("after3")]], WAIT, &sink).await;
    // A later truncate empties again; rows after it stay.
    truncate(&p, &case, 0, "0-1-11").await;
    row(&p, &case, 0, 4, "after4").await;
    case.wait_rows(&table, &[&[Some("4"), Some("after4")]], WAIT, &sink).await;
    wait_metric(&case, "applied", "2", &sink).await;
    assert!(!sink.log_text().contains("tombstone without a key"), "{}", sink.log_text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncate_disabled_keeps_the_rows_and_counts_it() {
    let case = SinkCase::new("sink_trunc_off", 1).await;
    let p = producer(&case.stack.kafka_bootstrap);
    row(&p, &case, 0, 1, "a").await;
    truncate(&p, &case, 0, "0-1-10").await;
    row(&p, &case, 0, 2, "b").await;
    // delete.enabled: a truncate record is not a keyless tombstone (which would stop the sink).
    let sink = case.start_sink(&case.toml("\"delete.enabled\" = true"), "toml", &[]);
    let table = format!("SELECT id, name FROM `{}` ORDER BY id", case.topic);
    case.wait_rows(&table, &[&[Some("1"), Some("a")], &[Some("2"), Some("b")]], WAIT, &sink).await;
    wait_metric(&case, "skipped", "1", &sink).await;
    let (_, status) = case.http("/status").await;
    assert!(status.contains("\"state\":\"running\""), "{status}\n{}", sink.log_text());
}

/// The source writes the truncate record on every partition. A partition that reaches it first
/// waits there: its later rows are not written until every partition has applied its rows from
/// before the truncate, then the table is emptied once and both partitions go on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncate_on_two_partitions_waits_for_both() {
    let case = SinkCase::new("sink_trunc_two", 2).await;
    let p = producer(&case.stack.kafka_bootstrap);
    row(&p, &case, 0, 1, "before0").await;
    truncate(&p, &case, 0, "0-1-20").await;
    row(&p, &case, 0, 3, "after0").await;
    let sink = case.start_sink(&case.toml("\"truncate.enabled\" = true"), "toml", &[]);
    let table = format!("SELECT id, name FROM `{}` ORDER BY id", case.topic);
    case.wait_rows(&table, &[&[Some("1"), Some("before0")]], WAIT, &sink).await;
    // Partition 1 is behind: partition 0 stays at its truncate record.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(case.rows(&table).await, vec![vec![Some("1".to_string()), Some("before0".to_string())]], "{}", sink.log_text());
    row(&p, &case, 1, 2, "before1").await;
    truncate(&p, &case, 1, "0-1-20").await;
    row(&p, &case, 1, 4, "after1").await;
    case.wait_rows(&table, &[&[Some("3"), Some("after0")], &[Some("4"), Some("after1")]], WAIT, &sink).await;
    wait_metric(&case, "applied", "1", &sink).await;
    // Both partitions go on after it.
    row(&p, &case, 0, 5, "later0").await;
    row(&p, &case, 1, 6, "later1").await;
    case.wait_rows(
        &table,
        &[&[Some("3"), Some("after0")], &[Some("4"), Some("after1")], &[Some("5"), Some("later0")], &[Some("6"), Some("later1")]],
        WAIT,
        &sink,
    )
    .await;
}
