//! An UPDATE that changes the primary key: with `delete.enabled` at both ends the source writes a
//! tombstone for the old key before the row under its new key, so the mirror never holds both.
//! (With the default `delete.enabled=false` the old row stays in the mirror, as with Kafka
//! Connect's JDBC connectors; README, "Decisions".)

use std::time::Duration;

use cdc_tests::pipeline::{PipelineSetup, USERS_COLUMNS};

const WAIT: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_primary_key_update_moves_the_row_in_the_mirror() {
    let p = PipelineSetup::new("pl_pkchg").await;
    let source = p.start_source("avro", "\"delete.enabled\" = true");
    let sink = p.start_sink("a", "\"delete.enabled\" = true", &[]);
    let services = [&source, &sink];
    let table = p.topic("users");
    p.exec(&[
        "insert into users(id,user_id,pwd,name) values (1,'u1','p','one'),(2,'u2','p','two')",
    ])
    .await;
    p.wait_mirror_equals_source(&[("users", USERS_COLUMNS)], WAIT, &services).await;
    p.exec(&[
        "update users set id = 100 where id = 1",
        // A key update and a change of the row under its new key in one transaction.
        "start transaction",
        "update users set id = 200, name = 'moved' where id = 2",
        "update users set pwd = 'q' where id = 200",
        "commit",
    ])
    .await;
    p.wait_mirror(
        &format!("SELECT id, name, pwd FROM `{table}` ORDER BY id"),
        &[&[Some("100"), Some("one"), Some("p")], &[Some("200"), Some("moved"), Some("q")]],
        WAIT,
        &services,
    )
    .await;
    p.wait_mirror_equals_source(&[("users", USERS_COLUMNS)], WAIT, &services).await;
}
