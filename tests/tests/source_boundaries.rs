//! cdc-source against the real stack at the edges of binlog transactions: only committed effects
//! are published (XA PREPARE then XA ROLLBACK or XA COMMIT, also across a restart), and TRUNCATE,
//! RENAME and DROP TABLE at the source. Every topic is read `read_committed`, as a sink reads it.
//!
//! ROLLBACK-terminated groups: MariaDB 10.11 with binlog_format=ROW wrote the non-transactional
//! part of every rolled-back mixed-engine transaction we tried (MyISAM rows next to InnoDB rows,
//! a trigger into MyISAM) as a group of its own ending in `COMMIT`, never a group with rows ending
//! in `ROLLBACK`. It does write a `ROLLBACK` group for a session with binlog_format=STATEMENT
//! (statements, no rows): the test below checks that such a group is discarded and the stream goes
//! on; a ROLLBACK group with rows is covered by the unit tests of `binlog/boundary.rs`.

use std::time::Duration;

use cdc_tests::kafka::Consumed;
use cdc_tests::process::Service;
use cdc_tests::source::{payload, SourceSetup};

fn names(records: &[Consumed]) -> Vec<String> {
    records
        .iter()
        .map(|r| payload(r.value.as_deref()).map(|v| v["name"].as_str().unwrap_or("").to_string()).unwrap_or_default())
        .collect()
}

async fn streaming(src: &SourceSetup, extra: &str) -> Service {
    let mut svc = src.start(&src.config("json", &format!("\"snapshot.mode\" = \"never\"\n{extra}")));
    svc.wait_for_log("streaming the binlog", Duration::from_secs(60));
    svc
}

fn stop(mut s: Service) {
    let code = s.terminate(Duration::from_secs(30));
    assert_eq!(code, Some(0), "cdc-source should exit 0 on SIGTERM; log:\n{}", s.log_text());
}

fn http_addr(log: &str) -> String {
    let at = log.find("http=").expect("http address in the log") + 5;
    log[at..].split_whitespace().next().expect("address").trim_end_matches(|c: char| !c.is_ascii_digit()).to_string()
}

async fn metrics(svc: &Service) -> String {
    let url = format!("http://{}/metrics", http_addr(&svc.log_text()));
    reqwest::get(url).await.expect("metrics").text().await.expect("text")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn xa_prepare_then_rollback_publishes_nothing() {
    let src = SourceSetup::new("bnd_xarb").await;
    let svc = streaming(&src, "").await;
    let x = &src.database;
    src.exec(&[
        &format!("XA START '{x}'"),
        "insert into users(user_id,pwd,name) values('x','p','rolled back')",
        &format!("XA END '{x}'"),
        &format!("XA PREPARE '{x}'"),
        &format!("XA ROLLBACK '{x}'"),
        "insert into users(user_id,pwd,name) values('a','p','after')",
    ])
    .await;
    // Wait for two records: the test must see a wrongly published one if there is one.
    let got = src.read_for("users", 2, Duration::from_secs(15));
    assert_eq!(names(&got), ["after"], "only the committed row; log:\n{}", svc.log_text());
    assert!(metrics(&svc).await.contains("cdc_source_binlog_groups_discarded_total{reason=\"xa_prepare\"} 1"));
    stop(svc);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn xa_prepare_then_commit_publishes_the_rows_once_at_the_commit() {
    let src = SourceSetup::new("bnd_xacm").await;
    let svc = streaming(&src, "").await;
    // The session ends after the PREPARE; the prepared transaction outlives it. XIDs are
    // server-wide, so each test uses its database name.
    let x = &src.database;
    src.exec(&[
        "insert into users(user_id,pwd,name) values('b','p','before')",
        &format!("XA START '{x}'"),
        "insert into users(user_id,pwd,name) values('x','p','prepared')",
        &format!("XA END '{x}'"),
        &format!("XA PREPARE '{x}'"),
    ])
    .await;
    let got = src.read_for("users", 2, Duration::from_secs(5));
    assert_eq!(names(&got), ["before"], "nothing of the prepared group before its commit; log:\n{}", svc.log_text());
    src.exec(&[&format!("XA COMMIT '{x}'"), "insert into users(user_id,pwd,name) values('a','p','after')"]).await;
    let got = src.read_for("users", 4, Duration::from_secs(15));
    assert_eq!(names(&got), ["before", "prepared", "after"], "exactly once, at the commit; log:\n{}", svc.log_text());
    assert_eq!(got[1].header("cdc.op"), "c");
    assert!(svc.log_text().contains("XA COMMIT: the prepared rows are published now"));
    stop(svc);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn xa_commit_after_a_restart_since_its_prepare_publishes_the_rows_once() {
    let src = SourceSetup::new("bnd_xart").await;
    let config = src.config("json", "\"snapshot.mode\" = \"never\"");
    let mut svc = src.start(&config);
    svc.wait_for_log("streaming the binlog", Duration::from_secs(60));
    let x = &src.database;
    src.exec(&[
        &format!("XA START '{x}'"),
        "insert into users(user_id,pwd,name) values('x','p','prepared')",
        &format!("XA END '{x}'"),
        &format!("XA PREPARE '{x}'"),
    ])
    .await;
    src.exec(&["insert into users(user_id,pwd,name) values('o','p','other')"]).await;
    // The stored position is past the prepare group once 'other' is committed.
    assert_eq!(names(&src.read_for("users", 1, Duration::from_secs(30))), ["other"], "log:\n{}", svc.log_text());
    stop(svc);
    let mut svc = src.start(&config);
    svc.wait_for_log("streaming the binlog", Duration::from_secs(60));
    src.exec(&[&format!("XA COMMIT '{x}'"), "insert into users(user_id,pwd,name) values('a','p','after')"]).await;
    let got = src.read_for("users", 4, Duration::from_secs(15));
    assert_eq!(names(&got), ["other", "prepared", "after"], "exactly once, at the commit; log:\n{}", svc.log_text());
    assert!(svc.log_text().contains("prepared before this source resumed: its rows are published now"));
    stop(svc);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollback_group_is_discarded_and_rows_keep_flowing() {
    let src = SourceSetup::new("bnd_rollback").await;
    src.exec(&["create table m(id int primary key) engine=MyISAM"]).await;
    let svc = streaming(&src, "").await;
    src.exec(&[
        "insert into users(user_id,pwd,name) values('b','p','before')",
        "set session binlog_format=STATEMENT",
        "begin",
        "insert into users(user_id,pwd,name) values('x','p','rolled back')",
        "insert into m values (1)",
        "rollback",
        "set session binlog_format=ROW",
        "insert into users(user_id,pwd,name) values('a','p','after')",
    ])
    .await;
    let got = src.read_for("users", 3, Duration::from_secs(15));
    assert_eq!(names(&got), ["before", "after"], "log:\n{}", svc.log_text());
    let m = metrics(&svc).await;
    assert!(m.contains("cdc_source_binlog_groups_discarded_total{reason=\"rollback\"} 1"), "{m}");
    assert!(svc.log_text().contains("binlog transaction ended with ROLLBACK"));
    stop(svc);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncate_writes_the_truncate_record_on_every_partition() {
    let src = SourceSetup::new("bnd_trunc").await;
    let svc = streaming(&src, "\"topic.partitions\" = 2").await;
    src.exec(&[
        "insert into users(user_id,pwd,name) values('a','p','one'),('b','p','two'),('c','p','three'),('d','p','four')",
        "truncate table users",
        "insert into users(user_id,pwd,name) values('e','p','after')",
    ])
    .await;
    let got = src.read_for("users", 7, Duration::from_secs(30));
    assert_eq!(got.len(), 7, "4 rows, 2 truncate records, 1 row; log:\n{}", svc.log_text());
    let truncates: Vec<&Consumed> = got.iter().filter(|r| r.header("cdc.op") == "t").collect();
    let mut parts: Vec<i32> = truncates.iter().map(|r| r.partition).collect();
    parts.sort();
    assert_eq!(parts, [0, 1], "one truncate record per partition: {got:?}");
    for t in &truncates {
        assert!(t.key.is_none() && t.value.is_none(), "key and value are null: {t:?}");
        assert!(t.header("cdc.gtid").starts_with("0-1-"), "{t:?}");
        assert!(t.header("cdc.binlog").contains("mysql-bin."), "{t:?}");
        assert!(t.header("cdc.ts_ms").parse::<u64>().expect("ts_ms") > 1_600_000_000_000);
        // In its partition, after the rows before the TRUNCATE and before the rows after it.
        for r in got.iter().filter(|r| r.partition == t.partition && r.header("cdc.op") == "c") {
            let name = payload(r.value.as_deref()).expect("value")["name"].as_str().unwrap_or("").to_string();
            assert_eq!(r.offset > t.offset, name == "after", "order in partition {}: {got:?}", t.partition);
        }
    }
    assert_eq!(truncates[0].header("cdc.gtid"), truncates[1].header("cdc.gtid"));
    assert!(metrics(&svc).await.contains("cdc_source_events_total{table=\"users\",op=\"t\"} 2"));
    stop(svc);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rename_away_and_in_follow_the_include_list() {
    let src = SourceSetup::new("bnd_rename").await;
    let db = &src.database;
    let svc = streaming(&src, &format!("\"table.include.list\" = \"{db}.users,{db}.fresh\"")).await;
    src.exec(&[
        "insert into users(user_id,pwd,name) values('a','p','captured')",
        "rename table users to users_old",
        "insert into users_old(user_id,pwd,name) values('b','p','renamed away')",
        "create table staging(id int primary key, name varchar(20))",
        "insert into staging values (1, 'not yet')",
        "alter table staging rename to fresh",
        "insert into fresh values (2, 'renamed in')",
    ])
    .await;
    let fresh = src.read_for("fresh", 1, Duration::from_secs(30));
    assert_eq!(names(&fresh), ["renamed in"], "log:\n{}", svc.log_text());
    let users = src.read_for("users", 2, Duration::from_secs(5));
    assert_eq!(names(&users), ["captured"]);
    let log = svc.log_text();
    assert!(log.contains("renamed to a name the include list leaves out") && log.contains("users_old"), "{log}");
    assert!(log.contains("table renamed to a captured name"), "{log}");
    let m = metrics(&svc).await;
    assert!(m.contains("cdc_source_table_ddl_total{table=\"users\",ddl=\"rename_away\"} 1"), "{m}");
    assert!(m.contains("cdc_source_table_ddl_total{table=\"fresh\",ddl=\"rename_in\"} 1"), "{m}");
    stop(svc);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drop_ends_capture_and_a_new_table_of_the_name_starts_fresh() {
    let src = SourceSetup::new("bnd_drop").await;
    let svc = streaming(&src, "").await;
    src.exec(&[
        "create table gone(id int primary key, name varchar(20))",
        "insert into gone values (1, 'first')",
        "drop table gone",
        "create table gone(id int primary key, name varchar(20), extra int not null)",
        "insert into gone values (2, 'second', 7)",
    ])
    .await;
    let got = src.read_for("gone", 2, Duration::from_secs(30));
    assert_eq!(names(&got), ["first", "second"], "log:\n{}", svc.log_text());
    let log = svc.log_text();
    assert!(log.contains("captured table dropped"), "{log}");
    // The new table is a new table, not a schema change of the dropped one.
    assert!(!log.contains("table schema changed"), "{log}");
    assert!(metrics(&svc).await.contains("cdc_source_table_ddl_total{table=\"gone\",ddl=\"drop\"} 1"));
    stop(svc);
}
