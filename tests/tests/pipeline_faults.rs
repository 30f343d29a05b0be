//! The pipeline through faults of its surroundings: the MariaDB server holding both the source
//! and the mirror database restarts mid-stream (a private server, so the shared one is not
//! disturbed), and a column is added at the source mid-stream (auto.evolve adds it to the mirror).

use std::time::Duration;

use cdc_tests::pipeline::{
    logs, query_text, seed, PipelineSetup, Workload, WriterPlan, ORDERS_COLUMNS, USERS_COLUMNS,
};
use cdc_tests::private::PrivateMariadb;
use cdc_tests::process::Service;

const WAIT: Duration = Duration::from_secs(120);

fn stop(mut service: Service) {
    let code = service.terminate(Duration::from_secs(30));
    assert_eq!(
        code,
        Some(0),
        "{} exits 0 on SIGTERM:\n{}",
        service.name,
        service.log_text()
    );
}

async fn count(p: &PipelineSetup, table: &str) -> i64 {
    query_text(
        p.mirror_stack(),
        &p.mirror,
        &format!("SELECT COUNT(*) FROM `{}`", p.topic(table)),
    )
    .await
    .first()
    .and_then(|r| r[0].as_deref()?.parse().ok())
    .unwrap_or(0)
}

async fn wait_for_rows(p: &PipelineSetup, table: &str, more_than: i64, services: &[&Service]) {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while count(p, table).await <= more_than {
        assert!(
            std::time::Instant::now() < deadline,
            "no rows reach the mirror\n{}",
            logs(services)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_restart_mid_stream_both_services_recover() {
    let db = PrivateMariadb::start(cdc_tests::sink::free_port());
    let p = PipelineSetup::on(db.stack(), "pl_restart").await;
    restart_mid_stream(&p, &db, true).await;
}

/// Only the server of the mirror database restarts (the source's is the shared one): the sink
/// retries its batch until the server is back and the mirror converges.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mirror_server_restart_mid_stream_sink_recovers() {
    let db = PrivateMariadb::start(cdc_tests::sink::free_port());
    let p = PipelineSetup::split(cdc_tests::Stack::from_env(), db.stack(), "pl_mrestart").await;
    restart_mid_stream(&p, &db, false).await;
}

/// Writers keep writing while `db` restarts; afterwards both services still run and the mirror
/// equals the source. `writers_cut_off`: the writers' server is the one restarting.
async fn restart_mid_stream(p: &PipelineSetup, db: &PrivateMariadb, writers_cut_off: bool) {
    let mut source = p.start_source("json", "\"delete.enabled\" = true");
    source.wait_for_log("streaming the binlog", Duration::from_secs(60));
    let sink = p.start_sink("a", "\"delete.enabled\" = true", &[]);
    let seed = seed(5_005);
    let workload = Workload::start(
        p.stack(),
        &p.source.database,
        2,
        WriterPlan {
            seed,
            statements: u64::MAX,
            pause: Duration::from_millis(10),
        },
    );
    wait_for_rows(p, "orders", 50, &[&source, &sink]).await;
    tokio::task::block_in_place(|| db.restart());
    // Writers reconnect and go on; the services retry until the server answers again.
    let after = count(p, "orders").await;
    wait_for_rows(p, "orders", after + 50, &[&source, &sink]).await;
    let report = workload.stop().await;
    assert_eq!(
        report.errors > 0,
        writers_cut_off,
        "writers cut off by the restart: {report:?}"
    );
    p.wait_mirror_equals_source(
        &[("users", USERS_COLUMNS), ("orders", ORDERS_COLUMNS)],
        WAIT,
        &[&source, &sink],
    )
    .await;
    let log = sink.log_text();
    assert!(
        log.contains("retrying with backoff"),
        "the restart should have reached the sink:\n{log}"
    );
    println!("seed {seed}: {report:?}");
    stop(sink);
    stop(source);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn add_column_mid_stream_is_added_to_the_mirror() {
    let p = PipelineSetup::new("pl_evolve").await;
    let mut source = p.start_source("avro", "\"delete.enabled\" = true");
    source.wait_for_log("streaming the binlog", Duration::from_secs(60));
    let sink = p.start_sink("a", "\"delete.enabled\" = true", &[]);
    let services = [&source, &sink];
    let seed = seed(9_009);
    let workload = Workload::start(
        p.stack(),
        &p.source.database,
        1,
        WriterPlan {
            seed,
            statements: u64::MAX,
            pause: Duration::from_millis(10),
        },
    );
    p.exec(&["insert into users(id, user_id, pwd, name) values(1000000, 'before', 'p', 'Before')"])
        .await;
    wait_for_rows(&p, "users", 20, &services).await;
    p.exec(&[
        "alter table users add column email varchar(100) null",
        "alter table orders add column discount decimal(10,2) null",
        "insert into users(id, user_id, pwd, name, email) values(1000001, 'after', 'p', 'After', 'after@example.com')",
        "update users set email = 'before@example.com' where id = 1000000",
        "insert into orders(id, product_id, user_id, order_id, discount) values(1000000, 'p', 'u', 'o', 12.34)",
    ])
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let report = workload.stop().await;
    let mut users_columns = USERS_COLUMNS.to_vec();
    users_columns.push("email");
    let mut orders_columns = ORDERS_COLUMNS.to_vec();
    orders_columns.push("discount");
    p.wait_mirror_equals_source(
        &[("users", &users_columns), ("orders", &orders_columns)],
        WAIT,
        &services,
    )
    .await;
    let users = p.topic("users");
    let rows = p
        .mirror_rows(&format!(
            "SELECT id, email FROM `{users}` WHERE user_id IN ('before', 'after') ORDER BY id"
        ))
        .await;
    assert_eq!(
        rows,
        vec![
            vec![Some("1000000".into()), Some("before@example.com".into())],
            vec![Some("1000001".into()), Some("after@example.com".into())]
        ]
    );
    let discount = p
        .mirror_rows(&format!(
            "SELECT discount FROM `{}` WHERE id = 1000000",
            p.topic("orders")
        ))
        .await;
    assert_eq!(
        discount,
        vec![vec![Some("12.34".into())]],
        "{}",
        logs(&services)
    );
    println!("seed {seed}: {report:?}");
    stop(sink);
    stop(source);
}
