//! A random workload through both services: ≥ 20,000 INSERT, UPDATE and DELETE statements on
//! `users` and `orders` from several connections, in transactions of 1–20 statements (some rolled
//! back) → once caught up, both mirror tables equal the source tables over all columns.
//! `CDC_TEST_SEED=<n>` replays a workload.

use std::time::{Duration, Instant};

use cdc_tests::pipeline::{
    seed, PipelineSetup, Workload, WriterPlan, ORDERS_COLUMNS, USERS_COLUMNS,
};

const WRITERS: u64 = 4;
const STATEMENTS_PER_WRITER: u64 = 5_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_workload_leaves_mirror_equal_to_source() {
    let p = PipelineSetup::new("pl_work").await;
    let mut source = p.start_source("avro", "\"delete.enabled\" = true");
    source.wait_for_log("streaming the binlog", Duration::from_secs(60));
    let sink = p.start_sink("a", "\"delete.enabled\" = true", &[]);
    let seed = seed(20_240_605);
    let started = Instant::now();
    let plan = WriterPlan {
        seed,
        statements: STATEMENTS_PER_WRITER,
        pause: Duration::ZERO,
    };
    let report = Workload::start(p.stack(), &p.source.database, WRITERS, plan)
        .join()
        .await;
    let written = started.elapsed();
    assert!(
        report.statements >= WRITERS * STATEMENTS_PER_WRITER,
        "seed {seed}: {report:?}"
    );
    assert_eq!(
        report.errors, 0,
        "seed {seed}: no writer transaction should fail: {report:?}"
    );
    p.wait_mirror_equals_source(
        &[("users", USERS_COLUMNS), ("orders", ORDERS_COLUMNS)],
        Duration::from_secs(120),
        &[&source, &sink],
    )
    .await;
    let (users, _) = p.checksums("users", USERS_COLUMNS).await;
    let (orders, _) = p.checksums("orders", ORDERS_COLUMNS).await;
    println!(
        "seed {seed}: {report:?} written in {written:?}, mirror equal after {:?}; users {users:?}, orders {orders:?}",
        started.elapsed()
    );
    assert!(users.is_some_and(|(n, _)| n > 100) && orders.is_some_and(|(n, _)| n > 100));
}
