//! cdc-source against the real stack: snapshot, streaming of INSERT/UPDATE/DELETE, schema change
//! mid-stream, restart without loss or duplicates, crash (SIGKILL) recovery, fencing.

use std::collections::BTreeMap;
use std::time::Duration;

use cdc_tests::process::Service;
use cdc_tests::source::{payload, SourceSetup};

fn ids_and_names(records: &[cdc_tests::kafka::Consumed]) -> Vec<(i64, String, String)> {
    records
        .iter()
        .map(|r| {
            let key = payload(r.key.as_deref()).expect("key");
            let name = payload(r.value.as_deref()).map(|v| v["name"].as_str().unwrap_or("").to_string()).unwrap_or_default();
            (key["id"].as_i64().expect("id"), r.header("cdc.op").to_string(), name)
        })
        .collect()
}

fn stop(mut s: Service) {
    let code = s.terminate(Duration::from_secs(30));
    assert_eq!(code, Some(0), "cdc-source should exit 0 on SIGTERM; log:\n{}", s.log_text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_then_insert_update_delete_as_json() {
    let src = SourceSetup::new("src_crud").await;
    src.exec(&[
        "insert into users(user_id,pwd,name) values('u0','p','Before One'),('u1','p','Before Two')",
    ])
    .await;
    let svc = src.start(&src.config("json", "\"delete.enabled\" = true"));
    let snap = src.read("users", 2);
    assert_eq!(snap.len(), 2, "snapshot records; log:\n{}", svc.log_text());
    assert!(snap.iter().all(|r| r.header("cdc.op") == "r"));

    src.exec(&[
        "insert into users(user_id,pwd,name) values('user1','test1111','User name')",
        "update users set name='Renamed' where user_id='user1'",
        "delete from users where user_id='u0'",
    ])
    .await;
    let all = src.read("users", 5);
    assert_eq!(all.len(), 5, "log:\n{}", svc.log_text());
    let got = ids_and_names(&all);
    assert_eq!(got[2], (3, "c".into(), "User name".into()));
    assert_eq!(got[3], (3, "u".into(), "Renamed".into()));
    assert_eq!((got[4].0, got[4].1.as_str()), (1, "d"));
    assert!(all[4].value.is_none(), "DELETE is a tombstone");
    // Full row, exact values, and the headers.
    let v = payload(all[2].value.as_deref()).expect("value");
    assert_eq!(v["user_id"], "user1");
    assert_eq!(v["pwd"], "test1111");
    assert!(all[2].header("cdc.gtid").starts_with("0-1-"), "gtid header: {:?}", all[2].headers);
    assert!(all[2].header("cdc.binlog").contains("mysql-bin."), "binlog header: {:?}", all[2].headers);
    assert!(all[2].header("cdc.ts_ms").parse::<u64>().expect("ts_ms") > 1_600_000_000_000);
    stop(svc);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn add_column_mid_stream_carries_the_new_column() {
    let src = SourceSetup::new("src_alter").await;
    let mut svc = src.start(&src.config("avro", "\"snapshot.mode\" = \"never\""));
    svc.wait_for_log("streaming the binlog", Duration::from_secs(60));
    src.exec(&[
        "insert into users(user_id,pwd,name) values('a','p','Before')",
        "alter table users add column email varchar(100) null",
        "insert into users(user_id,pwd,name,email) values('b','p','After','b@example.com')",
        "update users set email='a@example.com' where user_id='a'",
    ])
    .await;
    let records = src.read("users", 3);
    assert_eq!(records.len(), 3, "log:\n{}", svc.log_text());
    let registry = cdc_schema::Registry::new(&src.stack.registry_url);
    let decoder = cdc_schema::Decoder::new(Some(registry));
    let topic = src.topic("users");
    let mut values = Vec::new();
    for r in &records {
        let at = cdc_schema::MessageRef { topic: &topic, partition: r.partition, offset: r.offset };
        let rec = decoder
            .decode(at, cdc_schema::Part::Value, r.value.as_deref().expect("value"))
            .await
            .expect("decodes");
        let fields: Vec<String> = rec.schema.fields.iter().map(|f| f.name.clone()).collect();
        values.push((fields, rec.values));
    }
    assert!(!values[0].0.contains(&"email".to_string()), "before ALTER: {:?}", values[0].0);
    assert!(values[1].0.contains(&"email".to_string()), "after ALTER: {:?}", values[1].0);
    let email = values[1].0.iter().position(|f| f == "email").expect("email");
    assert_eq!(values[1].1[email], cdc_schema::Value::String("b@example.com".into()));
    assert_eq!(values[2].1[email], cdc_schema::Value::String("a@example.com".into()));
    stop(svc);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_and_crash_resume_without_loss_or_duplicates() {
    let src = SourceSetup::new("src_restart").await;
    let config = src.config("json", "\"batch.max.rows\" = 50");
    let svc = src.start(&config);
    src.exec(&["insert into orders(product_id,user_id,order_id) values('p','u','o0')"]).await;
    assert_eq!(src.read("orders", 1).len(), 1, "log:\n{}", svc.log_text());
    stop(svc);

    // Changes while the source is down arrive after restart, once.
    src.exec(&["insert into orders(product_id,user_id,order_id) values('p','u','o1'),('p','u','o2')"]).await;
    let mut svc = src.start(&config);
    assert_eq!(src.read("orders", 3).len(), 3);

    // A crash in the middle of a stream of transactions: the next start resumes after the last
    // committed Kafka transaction; every row arrives exactly once.
    let writer = {
        let src = src.clone();
        tokio::spawn(async move {
            for i in 0..200 {
                src.exec(&[&format!("insert into orders(product_id,user_id,order_id) values('p','u','w{i}')")]).await;
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(700)).await;
    svc.kill();
    writer.await.expect("writer");
    let svc = src.start(&config);
    let all = src.read("orders", 203);
    let mut per_key: BTreeMap<i64, usize> = BTreeMap::new();
    for r in &all {
        *per_key.entry(payload(r.key.as_deref()).expect("key")["id"].as_i64().expect("id")).or_default() += 1;
    }
    assert_eq!(per_key.len(), 203, "every row arrives; log:\n{}", svc.log_text());
    assert!(per_key.values().all(|n| *n == 1), "no row twice: {per_key:?}");
    // Nothing more than the 203 committed records shows up later either.
    assert_eq!(src.read_for("orders", 204, Duration::from_secs(5)).len(), 203);
    stop(svc);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_instance_with_the_same_name_fences_the_first() {
    let src = SourceSetup::new("src_fence").await;
    let config = src.config("json", "");
    let mut first = src.start(&config);
    src.exec(&["insert into users(user_id,pwd,name) values('x','p','X')"]).await;
    assert_eq!(src.read("users", 1).len(), 1, "log:\n{}", first.log_text());
    let mut other = src.clone();
    other.server_id += 1;
    let second = src.start(&other.config("json", ""));
    src.exec(&["insert into users(user_id,pwd,name) values('y','p','Y')"]).await;
    let code = first.wait(Duration::from_secs(60));
    assert_eq!(code, Some(1), "the fenced instance stops with an error; log:\n{}", first.log_text());
    assert!(first.log_text().contains("same `name`"), "log names the cause:\n{}", first.log_text());
    assert_eq!(src.read("users", 2).len(), 2, "the new instance carries on; log:\n{}", second.log_text());
    stop(second);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_refuses_bad_setups_naming_the_fix() {
    let src = SourceSetup::new("src_check").await;
    src.exec(&["create table nokey(a int, b int)"]).await;
    let mut s = Service::start("cdc-source", &src.tag, &src.config("json", ""), "toml", &["check"], &[]);
    assert_eq!(s.wait(Duration::from_secs(60)), Some(1));
    assert!(s.log_text().contains("has no primary key"), "{}", s.log_text());

    let bad_id = src.config("json", "").replace(&format!("\"server.id\" = {}", src.server_id), "\"server.id\" = 1");
    let mut s = Service::start("cdc-source", &format!("{}b", src.tag), &bad_id.replace("nokey", ""), "toml", &["check"], &[("CDC_SOURCE_TABLE_EXCLUDE_LIST", "nokey")]);
    assert_eq!(s.wait(Duration::from_secs(60)), Some(1));
    assert!(s.log_text().contains("server.id"), "{}", s.log_text());

    let mut s = Service::start("cdc-source", &format!("{}c", src.tag), "format = \"xml\"", "toml", &["check"], &[]);
    assert_eq!(s.wait(Duration::from_secs(30)), Some(2));
    // The error names `format` and the values it may take (not merely some other missing key).
    assert!(s.log_text().contains("config key `format`: \"xml\" is not one of: avro, json"), "{}", s.log_text());

    let ok = src.config("json", "\"table.exclude.list\" = \"nokey\"");
    let mut s = Service::start("cdc-source", &format!("{}d", src.tag), &ok, "toml", &["check"], &[]);
    assert_eq!(s.wait(Duration::from_secs(60)), Some(0), "{}", s.log_text());
}

/// Decodes every record of `table`'s topic (either format) to (key values, value values).
async fn decode_all(src: &SourceSetup, table: &str, want: usize) -> Vec<(Vec<cdc_schema::Value>, Option<Vec<cdc_schema::Value>>, String)> {
    let decoder = cdc_schema::Decoder::new(Some(cdc_schema::Registry::new(&src.stack.registry_url)));
    let topic = src.topic(table);
    let mut out = Vec::new();
    for r in src.read(table, want) {
        let at = cdc_schema::MessageRef { topic: &topic, partition: r.partition, offset: r.offset };
        let key = decoder.decode(at, cdc_schema::Part::Key, r.key.as_deref().expect("key")).await.expect("key decodes");
        let value = match r.value.as_deref() {
            Some(v) => {
                // Zero dates travel as null with their exact value in the cdc.zero_dates header.
                let mut record = decoder.decode(at, cdc_schema::Part::Value, v).await.expect("value decodes");
                if let Some(h) = r.headers.get(cdc_schema::ZERO_DATES_HEADER) {
                    cdc_schema::restore_inexact(&record.schema, &mut record.values, h).expect("header restores");
                }
                Some(record.values)
            }
            None => None,
        };
        out.push((key.values, value, r.header("cdc.op").to_string()));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_and_orders_in_both_formats() {
    use cdc_schema::Value::{Int, String as S};
    for format in ["avro", "json"] {
        let src = SourceSetup::new(&format!("src_both_{format}")).await;
        let mut svc = src.start(&src.config(format, "\"delete.enabled\" = true"));
        svc.wait_for_log("streaming the binlog", Duration::from_secs(60));
        src.exec(&[
            "insert into users(user_id,pwd,name) values('user1','test1111','User name')",
            "insert into orders(product_id,qty,unit_price,total_price,user_id,order_id) values('p1',2,500,1000,'user1','o-1')",
            "update orders set qty=3, total_price=1500 where order_id='o-1'",
            "update users set name='New name' where id=1",
            "delete from orders where order_id='o-1'",
        ])
        .await;
        let users = decode_all(&src, "users", 2).await;
        let orders = decode_all(&src, "orders", 3).await;
        assert_eq!(users.len(), 2, "{format}; log:\n{}", svc.log_text());
        assert_eq!(orders.len(), 3, "{format}; log:\n{}", svc.log_text());
        assert_eq!(users[0].0, vec![Int(1)]);
        let u0 = users[0].1.as_ref().expect("value");
        assert_eq!(&u0[..4], &[Int(1), S("user1".into()), S("test1111".into()), S("User name".into())]);
        assert_eq!(users[1].1.as_ref().expect("value")[3], S("New name".into()));
        assert_eq!(orders.iter().map(|o| o.2.as_str()).collect::<Vec<_>>(), ["c", "u", "d"], "{format}");
        let o1 = orders[1].1.as_ref().expect("value");
        assert_eq!(&o1[..5], &[Int(1), S("p1".into()), Int(3), Int(500), Int(1500)], "{format}");
        assert_eq!(orders[2].0, vec![Int(1)]);
        assert!(orders[2].1.is_none(), "delete is a tombstone");
        stop(svc);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_type_on_the_topic_equals_what_select_returns() {
    use mysql_async::prelude::Queryable;
    let src = SourceSetup::new("src_types").await;
    let mut conn = src.stack.root_conn(Some(&src.database)).await;
    conn.query_drop("SET time_zone = '+00:00', sql_mode = ''").await.expect("session");
    conn.query_drop(cdc_tests::fixtures::EVERY_TYPE_DDL).await.expect("create");
    // Row 1 is read by the snapshot, the others by streaming.
    conn.query_drop(format!("INSERT INTO every_type VALUES {}", cdc_tests::fixtures::EVERY_TYPE_ROWS[0])).await.expect("row 1");
    let avro = src.start(&src.config("avro", ""));
    let mut json_src = src.clone();
    json_src.name = format!("{}_json", src.name);
    json_src.prefix = format!("{}json_", src.prefix);
    json_src.offsets_topic = format!("{}_json", src.offsets_topic);
    json_src.server_id += 1;
    json_src.tag = format!("{}_json", src.tag);
    let json = json_src.start(&json_src.config("json", ""));
    for row in &cdc_tests::fixtures::EVERY_TYPE_ROWS[1..] {
        conn.query_drop(format!("INSERT INTO every_type VALUES {row}")).await.expect("insert");
    }
    conn.query_drop("INSERT INTO every_type (id, k2) VALUES (4, 'nulls')").await.expect("nulls");

    let schema = cdc_schema::TableSchema::load(&mut conn, &src.database, "every_type").await.expect("schema");
    conn.query_drop("SET time_zone = '+05:30'").await.expect("tz");
    let rows: Vec<mysql_async::Row> = conn
        .query(format!("SELECT {} FROM every_type ORDER BY id", schema.select_list()))
        .await
        .expect("select");
    let expected: Vec<Vec<cdc_schema::Value>> =
        rows.iter().map(|r| cdc_schema::row_from_snapshot(&schema, r).expect("decode")).collect();
    for (s, svc) in [(&src, &avro), (&json_src, &json)] {
        let mut got = decode_all(s, "every_type", 4).await;
        assert_eq!(got.len(), 4, "log:\n{}", svc.log_text());
        assert_eq!(got[0].2, "r");
        got.sort_by_key(|(k, _, _)| format!("{k:?}"));
        let mut got_values: Vec<Vec<cdc_schema::Value>> = got.into_iter().map(|(_, v, _)| v.expect("value")).collect();
        got_values.sort_by_key(|v| format!("{:?}", v[0]));
        for (g, e) in got_values.iter().zip(&expected) {
            for ((col, gv), ev) in schema.columns.iter().zip(g).zip(e) {
                assert_eq!(gv, ev, "column {} of row {:?} ({})", col.name, e[0], s.prefix);
            }
        }
    }
}

/// The `http=` address the service logged at start.
fn http_addr(log: &str) -> String {
    let at = log.find("http=").expect("http address in the log") + 5;
    log[at..].split_whitespace().next().expect("address").trim_end_matches(|c: char| !c.is_ascii_digit()).to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filtered_traffic_advances_the_stored_position_and_http_reports_it() {
    let src = SourceSetup::new("src_idle").await;
    let mut svc = src.start(&src.config("json", "\"table.include.list\" = \"users\""));
    svc.wait_for_log("streaming the binlog", Duration::from_secs(60));
    src.exec(&["insert into users(user_id,pwd,name) values('a','p','A')"]).await;
    assert_eq!(src.read("users", 1).len(), 1);
    // Only filtered tables change from now on; the stored position must still move on.
    for i in 0..20 {
        src.exec(&[&format!("insert into orders(product_id,user_id,order_id) values('p','u','{i}')")]).await;
    }
    let mut conn = src.stack.root_conn(None).await;
    let now: String = mysql_async::prelude::Queryable::query_first(&mut conn, "select @@gtid_binlog_pos")
        .await
        .expect("gtid")
        .expect("gtid");
    let stored = cdc_tests::process::eventually(Duration::from_secs(60), "the stored position to reach the server's", || {
        let records = cdc_tests::kafka::read_topic(&src.stack.kafka_bootstrap, &src.offsets_topic, usize::MAX, Duration::from_secs(2));
        let last = records.last().and_then(|r| r.value.clone()).map(|v| serde_json::from_slice::<serde_json::Value>(&v).expect("offset json"));
        // Other tests write to the same server: the stored position must reach or pass `now`.
        let seq = |g: &str| g.rsplit('-').next().and_then(|s| s.parse::<u64>().ok()).unwrap_or(0);
        let target = seq(&now);
        async move { last.filter(|v| seq(v["gtid"].as_str().unwrap_or("")) >= target) }
    })
    .await;
    assert!(stored["binlog"]["file"].as_str().expect("file").starts_with("mysql-bin."), "{stored}");
    assert_eq!(src.read_for("orders", 1, Duration::from_secs(2)).len(), 0, "orders is not captured");

    let base = format!("http://{}", http_addr(&svc.log_text()));
    let status: serde_json::Value = reqwest::get(format!("{base}/status")).await.expect("status").json().await.expect("json");
    assert_eq!(status["state"], "streaming", "{status}");
    assert_eq!(status["committed_gtid"].as_str().map(|g| g.starts_with("0-1-")), Some(true), "{status}");
    assert!(!status.to_string().contains(&src.stack.source_password), "no password in /status");
    assert_eq!(reqwest::get(format!("{base}/ready")).await.expect("ready").status(), 200);
    let metrics = reqwest::get(format!("{base}/metrics")).await.expect("metrics").text().await.expect("text");
    for name in [
        "cdc_source_events_total{table=\"users\",op=\"c\"} 1",
        "cdc_source_kafka_transactions_total{outcome=\"committed\"}",
        "cdc_source_binlog_transactions_total",
        "cdc_source_seconds_behind_source",
        "cdc_source_last_event_timestamp_seconds",
    ] {
        assert!(metrics.contains(name), "/metrics lacks {name}:\n{metrics}");
    }
    stop(svc);
}
