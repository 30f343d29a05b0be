//! cdc-source under concurrent writes and crashes: the snapshot hand-over and SIGKILL at many
//! points must leave every row change on the topics exactly once (read with `read_committed`).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use cdc_tests::kafka::Consumed;
use cdc_tests::source::{payload, SourceSetup};
use mysql_async::prelude::Queryable;

fn id(r: &Consumed) -> i64 {
    payload(r.key.as_deref()).expect("key")["id"].as_i64().expect("id")
}

fn qty(r: &Consumed) -> i64 {
    payload(r.value.as_deref()).expect("value")["qty"].as_i64().expect("qty")
}

/// Checks the history of `orders` on the topic against the table: for every row, after the last
/// snapshot read (`r`) the updates (`u`, qty + 1 each) follow without gap or repeat and end at the
/// table's value; rows inserted after the snapshot appear once as `c`. With `resumed` (a snapshot
/// interrupted and resumed), a row copied after the resume may be followed by the replayed
/// updates since the first attempt's read view, older than its `r`: then the updates still follow
/// one by one, but may start below the `r`'s value.
fn assert_exactly_once(records: &[Consumed], table: &BTreeMap<i64, i64>, resumed: bool) {
    let mut history: BTreeMap<i64, Vec<(String, i64)>> = BTreeMap::new();
    for r in records {
        history.entry(id(r)).or_default().push((r.header("cdc.op").to_string(), qty(r)));
    }
    assert_eq!(history.keys().collect::<BTreeSet<_>>(), table.keys().collect::<BTreeSet<_>>(), "every row is on the topic");
    for (key, events) in &history {
        let start = events.iter().rposition(|(op, _)| op == "r" || op == "c").unwrap_or_else(|| panic!("row {key} has no r/c record: {events:?}"));
        assert!(
            events[..start].iter().all(|(op, _)| op == "r"),
            "row {key}: only snapshot reads may come before the last snapshot read: {events:?}"
        );
        assert!(events.iter().filter(|(op, _)| op == "c").count() <= 1, "row {key} inserted twice: {events:?}");
        let mut expect = events[start].1;
        if let (true, Some((_, first))) = (resumed && events[start].0 == "r", events.get(start + 1)) {
            assert!(*first <= expect + 1, "row {key}: an update is missing between the snapshot read and the next update: {events:?}");
            expect = first - 1;
        }
        for (op, q) in &events[start + 1..] {
            expect += 1;
            assert_eq!((op.as_str(), *q), ("u", expect), "row {key}: updates must follow one by one: {events:?}");
        }
        assert_eq!(expect, table[key], "row {key}: the topic ends at the table's value: {events:?}");
    }
}

/// Reads the topic until, for every row, the last record carries the table's value.
fn caught_up(src: &SourceSetup, table: &BTreeMap<i64, i64>, timeout: Duration) -> Option<Vec<Consumed>> {
    let deadline = std::time::Instant::now() + timeout;
    while std::time::Instant::now() < deadline {
        let records = src.read_for("orders", usize::MAX, Duration::from_secs(3));
        let mut last: BTreeMap<i64, i64> = BTreeMap::new();
        for r in &records {
            last.insert(id(r), qty(r));
        }
        if &last == table {
            return Some(records);
        }
    }
    None
}

async fn table_qty(src: &SourceSetup) -> BTreeMap<i64, i64> {
    let mut conn = src.stack.root_conn(Some(&src.database)).await;
    let rows: Vec<(i64, i64)> = conn.query("select id, qty from orders").await.expect("select");
    rows.into_iter().collect()
}

async fn seed_orders(src: &SourceSetup, n: usize) {
    let mut conn = src.stack.root_conn(Some(&src.database)).await;
    for chunk in (0..n).collect::<Vec<_>>().chunks(500) {
        let values: Vec<String> = chunk.iter().map(|i| format!("('p{i}','u','seed{i}')")).collect();
        conn.query_drop(format!("insert into orders(product_id,user_id,order_id) values {}", values.join(","))).await.expect("seed");
    }
}

/// A writer that, `rounds` times, commits one transaction inserting an order and bumping `qty` of
/// three existing orders.
fn spawn_writer(src: &SourceSetup, rounds: usize, existing: i64, pause: Duration) -> tokio::task::JoinHandle<()> {
    let src = src.clone();
    tokio::spawn(async move {
        let mut conn = src.stack.root_conn(Some(&src.database)).await;
        for i in 0..rounds as i64 {
            let ids = [1 + (i * 7) % existing, 1 + (i * 13 + 5) % existing, 1 + (i * 31 + 11) % existing];
            let mut tx = conn.start_transaction(Default::default()).await.expect("begin");
            tx.query_drop(format!("insert into orders(product_id,user_id,order_id) values('n','u','w{i}')")).await.expect("insert");
            for id in ids {
                tx.query_drop(format!("update orders set qty = qty + 1 where id = {id}")).await.expect("update");
            }
            tx.commit().await.expect("commit");
            tokio::time::sleep(pause).await;
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_while_writes_continue_hands_over_exactly() {
    let src = SourceSetup::new("src_snapwrite").await;
    seed_orders(&src, 3000).await;
    let writer = spawn_writer(&src, 150, 3000, Duration::from_millis(5));
    tokio::time::sleep(Duration::from_millis(100)).await;
    let svc = src.start(&src.config("json", "\"snapshot.chunk.size\" = 250"));
    writer.await.expect("writer");
    let table = table_qty(&src).await;
    let records = caught_up(&src, &table, Duration::from_secs(90))
        .unwrap_or_else(|| panic!("the topic did not catch up with the table; log:\n{}", svc.log_text()));
    assert!(records.iter().any(|r| r.header("cdc.op") == "r"), "snapshot ran; log:\n{}", svc.log_text());
    assert_exactly_once(&records, &table, false);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_at_many_points_loses_and_duplicates_nothing() {
    let src = SourceSetup::new("src_kill").await;
    seed_orders(&src, 4000).await;
    let config = src.config("json", "\"snapshot.chunk.size\" = 200\n\"batch.max.rows\" = 40");
    let writer = spawn_writer(&src, 400, 4000, Duration::from_millis(15));
    // Kill at 12 points spread over snapshot, streaming and commits.
    let waits = [150u64, 400, 700, 250, 900, 1200, 350, 600, 1500, 200, 800, 1000];
    let mut logs = String::new();
    for w in waits {
        let mut svc = src.start(&config);
        tokio::time::sleep(Duration::from_millis(w)).await;
        svc.kill();
        logs.push_str(&svc.log_text());
    }
    writer.await.expect("writer");
    let svc = src.start(&config);
    let table = table_qty(&src).await;
    let records = caught_up(&src, &table, Duration::from_secs(120))
        .unwrap_or_else(|| panic!("the topic did not catch up with the table; final log:\n{}\nearlier runs:\n{logs}", svc.log_text()));
    assert_exactly_once(&records, &table, true);
    let text = svc.log_text();
    assert!(!text.contains("panicked"), "no panic in the final run:\n{text}");
}
