//! After a restart the source continues each subject's schema evolution from the registry's latest
//! version: a column added at the source (optional with default null in the evolved schema) stays
//! optional, so a subject under BACKWARD compatibility accepts what the restarted source registers.

use std::time::Duration;

use cdc_tests::source::SourceSetup;

fn stop(mut svc: cdc_tests::process::Service) {
    assert_eq!(svc.terminate(Duration::from_secs(30)), Some(0), "exits 0:\n{}", svc.log_text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_keeps_an_evolved_column_optional_under_backward_compatibility() {
    let src = SourceSetup::new("src_reschema").await;
    let config = src.config("avro", "\"snapshot.mode\" = \"never\"");
    let mut svc = src.start(&config);
    svc.wait_for_log("streaming the binlog", Duration::from_secs(60));
    src.exec(&["insert into users(user_id,pwd,name) values('u1','p','before')"]).await;
    assert_eq!(src.read("users", 1).len(), 1, "log:\n{}", svc.log_text());
    src.exec(&[
        "alter table users add column extra int not null default 0",
        "insert into users(user_id,pwd,name,extra) values('u2','p','after',2)",
    ])
    .await;
    assert_eq!(src.read("users", 2).len(), 2, "log:\n{}", svc.log_text());
    stop(svc);

    // The operator protects the subject, as production registries do.
    let subject = format!("{}-value", src.topic("users"));
    let http = reqwest::Client::new();
    let put = http
        .put(format!("{}/config/{subject}", src.stack.registry_url))
        .header("Content-Type", "application/vnd.schemaregistry.v1+json")
        .body(r#"{"compatibility":"BACKWARD"}"#)
        .send()
        .await
        .expect("registry answers");
    assert!(put.status().is_success(), "set BACKWARD: {}", put.text().await.unwrap_or_default());

    src.exec(&["insert into users(user_id,pwd,name,extra) values('u3','p','restarted',3)"]).await;
    let svc = src.start(&config);
    let records = src.read("users", 3);
    assert_eq!(records.len(), 3, "the restarted source publishes under BACKWARD; log:\n{}", svc.log_text());
    assert!(svc.log_text().contains("resuming"), "{}", svc.log_text());
    stop(svc);
}
