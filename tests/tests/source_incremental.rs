//! Incremental snapshots while streaming, end to end with the real cdc-source and jdbc-sink.
//!
//! 1. A 200,000-row `orders` the source never copied (`snapshot.mode=never`) is snapshotted
//!    incrementally on a signal-table row while four writers insert, update and delete in it —
//!    one of them changing the old rows the chunks copy — and the source is SIGKILLed twice
//!    during the snapshot. The topic and the mirror must end equal to the source, every row
//!    copied at most once (each restart continues after its last committed chunk), no change of
//!    the writers lost or repeated, and per key the versions on the topic never go back (a chunk
//!    never publishes an older row than the stream already did, nor brings a deleted row back).
//! 2. A table added to `table.include.list` at a restart gets its existing rows.
//! 3. Bad signals (malformed JSON, an unknown table, a table without a primary key, an unknown
//!    type) are rejected with a log line and a metric while streaming goes on; `POST /signals`
//!    answers with what it did or why not, and `stop-snapshot` ends a running snapshot.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cdc_tests::kafka::read_to_end;
use cdc_tests::pipeline::{logs, seed, PipelineSetup, Versions, Workload, WriterPlan, ORDERS_COLUMNS, USERS_COLUMNS};
use cdc_tests::process::{eventually, http_addr, Service};
use cdc_tests::source::payload;
use mysql_async::prelude::Queryable;

const ROWS: u64 = 200_000;

fn base(service: &Service) -> String {
    format!("http://{}", http_addr(&service.log_text()))
}

async fn status(base: &str) -> serde_json::Value {
    match reqwest::get(format!("{base}/status")).await {
        Ok(r) => r.json().await.unwrap_or_default(),
        Err(_) => serde_json::Value::Null,
    }
}

/// Chunks done of the running incremental snapshot of `table`, from `/status`.
async fn chunks_done(base: &str, table: &str) -> Option<u64> {
    let s = status(base).await;
    s["incremental_snapshots"].as_array()?.iter().find(|x| x["table"].as_str().is_some_and(|t| t.ends_with(table)))?["chunks_done"].as_u64()
}

/// Waits until the running snapshot of `orders` has `chunks` chunks done, then SIGKILLs.
async fn kill_after_chunks(service: &mut Service, chunks: u64) -> u64 {
    let base = base(service);
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Some(done) = chunks_done(&base, "orders").await {
            if done >= chunks {
                service.kill();
                return done;
            }
        }
        assert!(service.exited().is_none() && Instant::now() < deadline, "the snapshot never reached {chunks} chunks:\n{}", service.log_text());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Committed updates of old rows as (id, version), and the ids deleted.
type OldRowChanges = (Vec<(i64, i64)>, Vec<i64>);

/// Changes old rows (ids 1..=ROWS): updates set `qty` to a new version, deletes remove rows.
/// Returns every committed update as (id, version) and the ids deleted.
fn old_rows_writer(
    p: &PipelineSetup,
    versions: Versions,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<OldRowChanges> {
    let (stack, db) = (p.stack().clone(), p.source.database.clone());
    tokio::spawn(async move {
        let mut rng = cdc_tests::pipeline::Rng::new(seed(0x01d_5eed));
        let (mut updates, mut deletes) = (Vec::new(), Vec::new());
        let mut conn = mysql_async::Conn::new(stack.root_opts(Some(&db))).await.expect("writer connection");
        while !stop.load(Ordering::Relaxed) {
            let mut tx_updates = Vec::new();
            let mut tx_deletes = Vec::new();
            conn.query_drop("BEGIN").await.expect("begin");
            for _ in 0..rng.range(1, 5) {
                let id = rng.range(1, ROWS) as i64;
                if rng.chance(20) {
                    conn.query_drop(format!("DELETE FROM orders WHERE id = {id}")).await.expect("delete");
                    if conn.affected_rows() == 1 {
                        tx_deletes.push(id);
                    }
                } else {
                    let version = versions.fetch_add(1, Ordering::Relaxed) as i64 + 1;
                    conn.query_drop(format!("UPDATE orders SET qty = {version} WHERE id = {id}")).await.expect("update");
                    if conn.affected_rows() == 1 {
                        tx_updates.push((id, version));
                    }
                }
            }
            conn.query_drop("COMMIT").await.expect("commit");
            updates.extend(tx_updates);
            deletes.extend(tx_deletes);
            tokio::time::sleep(Duration::from_millis(3)).await;
        }
        (updates, deletes)
    })
}

/// (op, qty) of every record of `orders` per id, in topic order (one partition).
fn orders_on_topic(p: &PipelineSetup) -> BTreeMap<i64, Vec<(String, Option<i64>)>> {
    let mut out: BTreeMap<i64, Vec<(String, Option<i64>)>> = BTreeMap::new();
    for r in read_to_end(&p.stack().kafka_bootstrap, &p.topic("orders"), Duration::from_secs(120)) {
        let id = payload(r.key.as_deref()).and_then(|k| k["id"].as_i64()).expect("key with an id");
        let qty = payload(r.value.as_deref()).map(|v| v["qty"].as_i64().expect("qty"));
        out.entry(id).or_default().push((r.header("cdc.op").to_string(), qty));
    }
    out
}

fn signal_sql(id: &str, kind: &str, data: &str) -> String {
    format!("INSERT INTO cdc_signal (id, type, data) VALUES ('{id}', '{kind}', '{}')", data.replace('\'', "''"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_incremental_snapshot_under_writes_survives_two_kills_and_ends_equal() {
    let p = PipelineSetup::new("inc_snap").await;
    let db = p.source.database.clone();
    p.exec(&[
        &format!(
            "INSERT INTO orders(product_id, qty, unit_price, total_price, user_id, order_id) \
             SELECT CONCAT('p', seq), 0, 1, 1, CONCAT('u', seq), CONCAT('o', seq) FROM seq_1_to_{ROWS}"
        ),
        "CREATE TABLE cdc_signal (id VARCHAR(64) PRIMARY KEY, type VARCHAR(32) NOT NULL, data VARCHAR(2048))",
    ])
    .await;
    let extra = format!(
        "\"snapshot.mode\" = \"never\"\n\"delete.enabled\" = true\n\"table.include.list\" = \"users,orders\"\n\
         \"signal.data.collection\" = \"{db}.cdc_signal\"\n\"incremental.snapshot.chunk.size\" = 1000"
    );
    let sink = p.start_sink("a", "\"delete.enabled\" = true", &[]);
    let mut first = p.start_source("json", &extra);
    first.wait_for_log("streaming the binlog", Duration::from_secs(60));
    let writers = Workload::start(
        p.stack(),
        &db,
        3,
        WriterPlan { seed: seed(0x1c5a_0001), statements: u64::MAX, pause: Duration::from_millis(10) },
    );
    let stop_old = Arc::new(AtomicBool::new(false));
    let old = old_rows_writer(&p, writers.versions.clone(), stop_old.clone());

    p.exec(&[&signal_sql(
        "snap-1",
        "execute-snapshot",
        &format!(r#"{{"data-collections": ["{db}.orders"], "type": "incremental"}}"#),
    )])
    .await;
    let at_first_kill = kill_after_chunks(&mut first, 15).await;
    let mut second = p.start_source("json", &extra);
    second.wait_for_log("continuing after its last published chunk", Duration::from_secs(60));
    let at_second_kill = kill_after_chunks(&mut second, at_first_kill + 40).await;
    let mut third = p.start_source("json", &extra);
    third.wait_for_log("incremental snapshot finished", Duration::from_secs(180));

    stop_old.store(true, Ordering::Relaxed);
    let (updates, deletes) = old.await.expect("old-rows writer");
    let report = writers.stop().await;
    assert!(report.commits > 0 && updates.len() > 100 && !deletes.is_empty(), "the writers wrote during the snapshot: {report:?}, {} updates, {} deletes of old rows", updates.len(), deletes.len());
    p.wait_mirror_equals_source(&[("orders", ORDERS_COLUMNS), ("users", USERS_COLUMNS)], Duration::from_secs(180), &[&third, &sink]).await;

    let log = third.log_text();
    assert!(log.contains("continuing after its last published chunk"), "the third start resumes:\n{log}");
    let topic = orders_on_topic(&p);
    // Per key: at most one copy, versions never going back, nothing after a tombstone.
    let mut copies = 0usize;
    for (id, records) in &topic {
        let reads = records.iter().filter(|(op, _)| op == "r").count();
        assert!(reads <= 1, "id {id} copied {reads} times: {records:?}");
        copies += reads;
        let mut last = i64::MIN;
        for (i, (op, qty)) in records.iter().enumerate() {
            match qty {
                None => assert!(i + 1 == records.len(), "id {id}: a record after its tombstone: {records:?}"),
                Some(q) => {
                    assert!(*q >= last, "id {id}: version {q} after {last} ({op}): {records:?}");
                    last = *q;
                }
            }
        }
    }
    // The copies resumed after each kill: most old rows were copied once, in one pass.
    assert!(copies as u64 > ROWS / 2, "{copies} rows copied (kills at {at_first_kill} and {at_second_kill} chunks)");
    // Every committed change of an old row is on the topic once.
    let mut seen: HashMap<(i64, i64), usize> = HashMap::new();
    for (id, records) in &topic {
        for (op, qty) in records {
            if let (true, Some(q)) = (op == "u", qty) {
                *seen.entry((*id, *q)).or_default() += 1;
            }
        }
    }
    for u in &updates {
        assert_eq!(seen.get(u).copied().unwrap_or(0), 1, "update {u:?} on the topic exactly once: {:?}", topic.get(&u.0));
    }
    for id in &deletes {
        assert_eq!(topic.get(id).and_then(|r| r.last()).map(|r| r.0.as_str()), Some("d"), "id {id} ends deleted on the topic: {:?}", topic.get(id));
    }
    // The topic's last record per key is the table.
    let source: BTreeMap<i64, i64> = cdc_tests::pipeline::query_text(p.stack(), &db, "SELECT id, qty FROM orders")
        .await
        .into_iter()
        .map(|r| (r[0].as_deref().unwrap_or("0").parse().unwrap_or(0), r[1].as_deref().unwrap_or("0").parse().unwrap_or(0)))
        .collect();
    let on_topic: BTreeMap<i64, i64> = topic.iter().filter_map(|(id, r)| r.last().and_then(|(_, q)| q.map(|q| (*id, q)))).collect();
    if on_topic != source {
        let missing: Vec<_> = source.iter().filter(|(k, v)| on_topic.get(k) != Some(v)).take(10).collect();
        let extra: Vec<_> = on_topic.iter().filter(|(k, _)| !source.contains_key(k)).take(10).collect();
        panic!("the topic does not end as the table: {} keys on the topic, {} in the table; differing {missing:?}, extra {extra:?}\n{}", on_topic.len(), source.len(), logs(&[&third]));
    }
    let metrics = reqwest::get(format!("{}/metrics", base(&third))).await.expect("metrics").text().await.expect("text");
    assert!(metrics.contains("cdc_source_incremental_snapshots_ended_total{outcome=\"finished\"} 1"), "{metrics}");
    assert!(metrics.contains("cdc_source_incremental_snapshots 0"), "{metrics}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_table_added_to_the_include_list_gets_its_existing_rows() {
    let p = PipelineSetup::new("inc_new_table").await;
    p.exec(&[
        "INSERT INTO users(user_id, pwd, name) SELECT CONCAT('u', seq), 'p', 'n' FROM seq_1_to_300",
        "INSERT INTO orders(product_id, qty, unit_price, total_price, user_id, order_id) SELECT CONCAT('p', seq), seq, 1, 1, 'u', 'o' FROM seq_1_to_5000",
    ])
    .await;
    let sink = p.start_sink("a", "", &[]);
    let mut first = p.start_source("json", "\"table.include.list\" = \"users\"");
    first.wait_for_log("streaming the binlog", Duration::from_secs(60));
    p.exec(&["INSERT INTO orders(product_id, qty, unit_price, total_price, user_id, order_id) VALUES ('late', 1, 1, 1, 'u', 'o')"]).await;
    // The offset record lists the tables the position has seen.
    eventually(Duration::from_secs(30), "an offset record listing users", || async {
        let records = cdc_tests::kafka::read_topic(&p.stack().kafka_bootstrap, &p.source.offsets_topic, usize::MAX, Duration::from_secs(2));
        let last: serde_json::Value = serde_json::from_slice(records.last()?.value.as_deref()?).ok()?;
        last["tables"].as_array().filter(|t| t.iter().any(|x| x.as_str().is_some_and(|s| s.ends_with(".users")))).map(|_| ())
    })
    .await;
    first.terminate(Duration::from_secs(20));
    assert!(p.source.read_for("orders", 1, Duration::from_secs(2)).is_empty(), "orders is not captured yet");

    let mut second = p.start_source("json", "\"table.include.list\" = \"users,orders\"");
    second.wait_for_log("incremental snapshot finished", Duration::from_secs(120));
    p.exec(&["UPDATE orders SET qty = 99999 WHERE id = 7"]).await;
    p.wait_mirror_equals_source(&[("orders", ORDERS_COLUMNS), ("users", USERS_COLUMNS)], Duration::from_secs(120), &[&second, &sink]).await;
    let log = second.log_text();
    assert!(log.contains("tables newly captured since the stored position"), "{log}");
    let ops: Vec<String> = read_to_end(&p.stack().kafka_bootstrap, &p.topic("orders"), Duration::from_secs(30))
        .iter()
        .map(|r| r.header("cdc.op").to_string())
        .collect();
    assert_eq!(ops.iter().filter(|o| *o == "r").count(), 5001, "every existing row of orders copied once: {:?}", &ops[..ops.len().min(5)]);
    let users_reads = read_to_end(&p.stack().kafka_bootstrap, &p.topic("users"), Duration::from_secs(30))
        .iter()
        .filter(|r| r.header("cdc.op") == "r")
        .count();
    assert_eq!(users_reads, 300, "users, seen before, is not copied again at the restart");
    // A restart now copies nothing more.
    second.terminate(Duration::from_secs(20));
    let mut third = p.start_source("json", "\"table.include.list\" = \"users,orders\"");
    third.wait_for_log("resuming from the committed position", Duration::from_secs(60));
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(!third.log_text().contains("tables newly captured"), "{}", third.log_text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_signals_are_rejected_and_streaming_goes_on() {
    let p = PipelineSetup::new("inc_bad_signal").await;
    let db = p.source.database.clone();
    p.exec(&[
        "CREATE TABLE cdc_signal (id VARCHAR(64) PRIMARY KEY, type VARCHAR(32) NOT NULL, data VARCHAR(2048))",
        "INSERT INTO orders(product_id, qty, unit_price, total_price, user_id, order_id) SELECT CONCAT('p', seq), seq, 1, 1, 'u', 'o' FROM seq_1_to_100000",
    ])
    .await;
    let extra = "\"snapshot.mode\" = \"never\"\n\"table.include.list\" = \"users,orders,nokey\"\n\"signal.data.collection\" = \"cdc_signal\"\n\
         \"incremental.snapshot.chunk.size\" = 100";
    let mut source = p.start_source("json", extra);
    source.wait_for_log("streaming the binlog", Duration::from_secs(60));
    let base = base(&source);
    p.exec(&[
        "CREATE TABLE nokey (a INT)",
        &signal_sql("bad-json", "execute-snapshot", "{\"data-collections\": [\"orders\""),
        &signal_sql("bad-table", "execute-snapshot", &format!(r#"{{"data-collections": ["{db}.missing"]}}"#)),
        &signal_sql("bad-type", "pause-snapshot", "{}"),
        &signal_sql("no-key", "execute-snapshot", &format!(r#"{{"data-collections": ["{db}.nokey"], "additional-conditions": [{{"data-collection": "{db}.nokey", "filter": "a > 1"}}]}}"#)),
        "INSERT INTO users(user_id, pwd, name) VALUES ('after', 'signals', 'x')",
    ])
    .await;
    let users = p.source.read("users", 1);
    assert_eq!(users.len(), 1, "streaming goes on after bad signals");
    let log = eventually(Duration::from_secs(30), "the keyless table's snapshot dropped", || async {
        let log = source.log_text();
        log.contains("has no primary key: an incremental snapshot reads a table in primary-key ranges").then_some(log)
    })
    .await;
    for (signal, reason) in [
        ("bad-json", "its data is not JSON"),
        ("bad-table", "is not captured by this source"),
        ("bad-type", "unknown signal type `pause-snapshot`"),
    ] {
        assert!(log.lines().any(|l| l.contains("signal rejected") && l.contains(signal) && l.contains(reason)), "{signal}: {reason}\n{log}");
    }
    let metrics = reqwest::get(format!("{base}/metrics")).await.expect("metrics").text().await.expect("text");
    for line in [
        "cdc_source_signals_total{type=\"execute-snapshot\",outcome=\"rejected\"} 2",
        "cdc_source_signals_total{type=\"other\",outcome=\"rejected\"} 1",
        "cdc_source_signals_total{type=\"execute-snapshot\",outcome=\"accepted\"} 1",
        "cdc_source_incremental_snapshots_ended_total{outcome=\"rejected\"} 1",
    ] {
        assert!(metrics.contains(line), "{line} in\n{metrics}");
    }

    // The HTTP channel: malformed, refused, then a real snapshot, stopped while it runs.
    let client = reqwest::Client::new();
    let post = |body: String| {
        let client = client.clone();
        let url = format!("{base}/signals");
        async move {
            let r = client.post(url).body(body).send().await.expect("POST /signals");
            let code = r.status().as_u16();
            (code, r.json::<serde_json::Value>().await.unwrap_or_default())
        }
    };
    let (code, body) = post("{not json".into()).await;
    assert_eq!(code, 400, "{body}");
    let (code, body) = post(r#"{"type": "execute-snapshot", "data": {"data-collections": ["mydb_elsewhere.orders"]}}"#.into()).await;
    assert_eq!(code, 400, "{body}");
    assert!(body["error"].as_str().is_some_and(|e| e.contains("not captured")), "{body}");
    let (code, body) = post(format!(r#"{{"id": "http-1", "type": "execute-snapshot", "data": {{"data-collections": ["{db}.orders"], "type": "incremental"}}}}"#)).await;
    assert_eq!(code, 200, "{body}");
    assert!(body["message"].as_str().is_some_and(|m| m.contains("queued")), "{body}");
    eventually(Duration::from_secs(30), "a few chunks of orders", || async { chunks_done(&base, "orders").await.filter(|c| *c >= 3) }).await;
    let running = status(&base).await["incremental_snapshots"][0].clone();
    let (rows, chunks) = (running["rows_estimated"].as_u64().unwrap_or(0), running["chunks_estimated"].as_u64().unwrap_or(0));
    assert!(rows > 10_000 && chunks > running["chunks_done"].as_u64().unwrap_or(u64::MAX), "progress has its estimates: {running}");
    let (code, body) = post(format!(r#"{{"id": "http-2", "type": "stop-snapshot", "data": "{{\"data-collections\": [\"{db}.orders\"]}}"}}"#)).await;
    assert_eq!(code, 200, "{body}");
    assert!(body["message"].as_str().is_some_and(|m| m.contains("stopped")), "{body}");
    let s = status(&base).await;
    assert_eq!(s["incremental_snapshots"], serde_json::json!([]), "{s}");
    let copied = p.source.read_for("orders", usize::MAX, Duration::from_secs(3)).len();
    assert!((300..100_000).contains(&copied), "the stopped snapshot copied part of the table: {copied}");
    assert!(source.exited().is_none(), "{}", source.log_text());
}
