//! cdc-source against server-side events: binlog rotation, a MariaDB restart mid-stream, purged
//! binlogs, and each preflight failure with its message. These use a private MariaDB (started by
//! stack/up with its own port) so the shared one keeps its settings.

use std::time::Duration;

use cdc_tests::private::PrivateMariadb;
use cdc_tests::process::Service;
use cdc_tests::source::{payload, SourceSetup};

fn names(src: &SourceSetup, want: usize) -> Vec<String> {
    src.read("users", want)
        .iter()
        .map(|r| payload(r.value.as_deref()).expect("value")["name"].as_str().unwrap_or("").to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_and_server_restart_mid_stream() {
    let db = PrivateMariadb::start(13411);
    let src = SourceSetup::on(db.stack(), "src_rotate").await;
    let svc = src.start(&src.config("json", ""));
    src.exec(&["insert into users(user_id,pwd,name) values('a','p','one')"]).await;
    assert_eq!(names(&src, 1), ["one"], "log:\n{}", svc.log_text());
    src.exec(&["flush binary logs", "insert into users(user_id,pwd,name) values('b','p','two')"]).await;
    assert_eq!(names(&src, 2), ["one", "two"], "after rotation; log:\n{}", svc.log_text());

    db.restart();
    src.exec(&["insert into users(user_id,pwd,name) values('c','p','three')"]).await;
    assert_eq!(names(&src, 3), ["one", "two", "three"], "after a server restart; log:\n{}", svc.log_text());
    assert!(svc.log_text().contains("resuming from the last committed position"), "{}", svc.log_text());
    // Nothing was sent twice across the rotation and the reconnect.
    assert_eq!(src.read_for("users", 4, Duration::from_secs(3)).len(), 3);
}

async fn check(src: &SourceSetup, config: &str, tag: &str) -> (Option<i32>, String) {
    let mut s = Service::start("cdc-source", &format!("{}{tag}", src.tag), config, "toml", &["check"], &[]);
    let code = s.wait(Duration::from_secs(60));
    (code, s.log_text())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_preflight_failure_names_the_setting_and_the_fix() {
    let db = PrivateMariadb::start(13412);
    let src = SourceSetup::on(db.stack(), "src_pre").await;
    let config = src.config("json", "");
    assert_eq!(check(&src, &config, "ok").await.0, Some(0));

    for (set, reset, expect) in [
        ("set global binlog_format='STATEMENT'", "set global binlog_format='ROW'", "binlog_format is STATEMENT, must be ROW"),
        ("set global binlog_row_image='MINIMAL'", "set global binlog_row_image='FULL'", "binlog_row_image is MINIMAL, must be FULL"),
        ("set global binlog_row_metadata='MINIMAL'", "set global binlog_row_metadata='FULL'", "binlog_row_metadata is MINIMAL, must be FULL"),
        ("set global log_bin_compress=ON", "set global log_bin_compress=OFF", "log_bin_compress is ON, must be OFF"),
    ] {
        src.exec(&[set]).await;
        let (code, log) = check(&src, &config, "var").await;
        src.exec(&[reset]).await;
        assert_eq!(code, Some(1), "{set}: {log}");
        assert!(log.contains(expect) && log.contains("start mariadbd with --"), "{set}: {log}");
    }

    src.exec(&["create user 'weak'@'%' identified by 'weak'", "grant select on *.* to 'weak'@'%'"]).await;
    let weak = config
        .replace(&format!("\"connection.user\" = \"{}\"", src.stack.source_user), "\"connection.user\" = \"weak\"")
        .replace(&format!("\"connection.password\" = \"{}\"", src.stack.source_password), "\"connection.password\" = \"weak\"");
    let (code, log) = check(&src, &weak, "grant").await;
    assert_eq!(code, Some(1), "{log}");
    assert!(log.contains("lacks REPLICATION SLAVE") && log.contains("GRANT REPLICATION SLAVE"), "{log}");

    let (code, log) = check(&src, &config.replace(&src.stack.kafka_bootstrap, "127.0.0.1:1"), "kafka").await;
    assert_eq!(code, Some(1), "{log}");
    assert!(log.contains("does not answer") && log.contains("kafka.bootstrap.servers"), "{log}");

    let avro = config.replace("format = \"json\"", "format = \"avro\"").replace(&src.stack.registry_url, "http://127.0.0.1:1/apis/ccompat/v7");
    let (code, log) = check(&src, &avro, "registry").await;
    assert_eq!(code, Some(1), "{log}");
    assert!(log.contains("schema.registry.url"), "{log}");

    // A stored position whose binlogs were purged.
    let mut svc = src.start(&config);
    src.exec(&["insert into users(user_id,pwd,name) values('a','p','one')"]).await;
    assert_eq!(names(&src, 1), ["one"], "log:\n{}", svc.log_text());
    assert_eq!(svc.terminate(Duration::from_secs(30)), Some(0));
    src.exec(&["insert into users(user_id,pwd,name) values('b','p','two')", "flush binary logs"]).await;
    let mut conn = src.stack.root_conn(None).await;
    let last: Option<(String, u64)> = mysql_async::prelude::Queryable::query_first(&mut conn, "show master status")
        .await
        .ok()
        .flatten()
        .map(|row: mysql_async::Row| (row.get::<String, _>(0).unwrap_or_default(), row.get::<u64, _>(1).unwrap_or(0)));
    let file = last.expect("master status").0;
    // The server keeps a file a replica's dump thread still reads; the stopped source's thread
    // may linger a moment, so purge until the oldest binlog is the current one.
    let purged = cdc_tests::process::eventually(Duration::from_secs(20), "the old binlogs to be purged", || {
        let (stack, file) = (src.stack.clone(), file.clone());
        async move {
            let mut conn = stack.root_conn(None).await;
            mysql_async::prelude::Queryable::query_drop(&mut conn, format!("purge binary logs to '{file}'")).await.expect("purge");
            let first: Option<mysql_async::Row> = mysql_async::prelude::Queryable::query_first(&mut conn, "show binary logs").await.expect("logs");
            first.and_then(|r| r.get::<String, _>(0)).filter(|f| *f == file)
        }
    })
    .await;
    assert_eq!(purged, file);
    let (code, log) = check(&src, &config, "purged").await;
    assert_eq!(code, Some(1), "{log}");
    assert!(log.contains("purged") && log.contains("snapshot.mode=when_needed"), "{log}");
    // when_needed takes a new snapshot instead.
    let svc = src.start(&src.config("json", "\"snapshot.mode\" = \"when_needed\""));
    let records = src.read("users", 3);
    assert_eq!(records.len(), 3, "one + snapshot of both rows; log:\n{}", svc.log_text());
    assert_eq!(records[1].header("cdc.op"), "r");
}
