//! jdbc-sink killed with SIGKILL at twelve points while cdc-source keeps running and writers keep
//! writing: at random moments after a batch landed (small `batch.size`, so mostly mid-batch or
//! between the database commit and the Kafka group commit), and while a second sink instance joins
//! the group or leaves it (a rebalance). Afterwards the mirror equals the source, and triggers
//! added to the mirror show that nothing was applied twice or out of order:
//! - on the offsets table, every partition's moves form one unbroken, strictly increasing chain
//!   (a move starts where the previous one ended), so no record range was applied twice;
//! - on the mirror tables, the versions the writers put in every change (`users.pwd`,
//!   `orders.qty`) strictly increase per row, and nothing follows a row's delete.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use cdc_tests::pipeline::{
    logs, query_text, seed, PipelineSetup, Rng, Workload, WriterPlan, ORDERS_COLUMNS, USERS_COLUMNS,
};
use cdc_tests::process::Service;
use mysql_async::prelude::Queryable;

const SINK_EXTRA: &str = "\"delete.enabled\" = true\n\"batch.size\" = 20";

async fn offsets_sum(p: &PipelineSetup) -> i64 {
    query_text(
        p.mirror_stack(),
        &p.mirror,
        "SELECT CAST(IFNULL(SUM(next_offset), 0) AS SIGNED) FROM cdc_sink_offsets",
    )
    .await
    .first()
    .and_then(|r| r[0].as_deref()?.parse().ok())
    .unwrap_or(0)
}

/// Waits until the stored offsets moved past `before`: a batch was committed.
async fn wait_for_progress(p: &PipelineSetup, before: i64, services: &[&Service]) {
    let deadline = Instant::now() + Duration::from_secs(40);
    while offsets_sum(p).await <= before {
        assert!(
            Instant::now() < deadline,
            "the sink made no progress in 40 s\n{}",
            logs(services)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Adds the audit tables and triggers once the sink created its tables.
async fn add_audit(p: &PipelineSetup, services: &[&Service]) {
    let users = p.topic("users");
    let orders = p.topic("orders");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let n = query_text(
            p.mirror_stack(),
            &p.mirror,
            &format!(
                "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() \
                 AND TABLE_NAME IN ('{users}', '{orders}', 'cdc_sink_offsets')"
            ),
        )
        .await;
        if n == vec![vec![Some("3".to_string())]] {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "mirror tables not created\n{}",
            logs(services)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut conn = p.mirror_stack().root_conn(Some(&p.mirror)).await;
    let mut ddl = vec![
        "CREATE TABLE apply_audit (n BIGINT AUTO_INCREMENT PRIMARY KEY, tbl VARCHAR(10) NOT NULL, \
         id BIGINT NOT NULL, version BIGINT NULL)"
            .to_string(),
        "CREATE TABLE offsets_audit (n BIGINT AUTO_INCREMENT PRIMARY KEY, topic VARCHAR(255) NOT NULL, \
         kafka_partition INT NOT NULL, old_offset BIGINT NULL, new_offset BIGINT NOT NULL)"
            .to_string(),
        "CREATE TRIGGER offsets_ins AFTER INSERT ON cdc_sink_offsets FOR EACH ROW INSERT INTO offsets_audit \
         (topic, kafka_partition, old_offset, new_offset) VALUES (NEW.topic, NEW.kafka_partition, NULL, NEW.next_offset)"
            .to_string(),
        "CREATE TRIGGER offsets_upd AFTER UPDATE ON cdc_sink_offsets FOR EACH ROW INSERT INTO offsets_audit \
         (topic, kafka_partition, old_offset, new_offset) VALUES (NEW.topic, NEW.kafka_partition, OLD.next_offset, NEW.next_offset)"
            .to_string(),
    ];
    for (short, table, version) in [
        ("users", &users, "CAST(NEW.pwd AS UNSIGNED)"),
        ("orders", &orders, "NEW.qty"),
    ] {
        for event in ["INSERT", "UPDATE"] {
            ddl.push(format!(
                "CREATE TRIGGER {short}_{event} AFTER {event} ON `{table}` FOR EACH ROW \
                 INSERT INTO apply_audit (tbl, id, version) VALUES ('{short}', NEW.id, {version})"
            ));
        }
        ddl.push(format!(
            "CREATE TRIGGER {short}_DELETE AFTER DELETE ON `{table}` FOR EACH ROW \
             INSERT INTO apply_audit (tbl, id, version) VALUES ('{short}', OLD.id, NULL)"
        ));
    }
    for stmt in ddl {
        conn.query_drop(&stmt)
            .await
            .unwrap_or_else(|e| panic!("{stmt}: {e}"));
    }
}

/// Every partition's stored offset moved in one unbroken, strictly increasing chain.
async fn check_offset_chains(p: &PipelineSetup) -> usize {
    let rows = query_text(
        p.mirror_stack(),
        &p.mirror,
        "SELECT topic, kafka_partition, old_offset, new_offset FROM offsets_audit ORDER BY n",
    )
    .await;
    let mut last: BTreeMap<(String, String), i64> = BTreeMap::new();
    let mut problems = Vec::new();
    for r in &rows {
        let tp = (
            r[0].clone().unwrap_or_default(),
            r[1].clone().unwrap_or_default(),
        );
        let old: Option<i64> = r[2].as_deref().and_then(|s| s.parse().ok());
        let new: i64 = r[3].as_deref().and_then(|s| s.parse().ok()).unwrap_or(-1);
        if let Some(prev) = last.get(&tp) {
            if old != Some(*prev) {
                problems.push(format!(
                    "{tp:?}: a move from {old:?} after the previous one ended at {prev}"
                ));
            }
        }
        if old.is_some_and(|o| new <= o) {
            problems.push(format!(
                "{tp:?}: moved from {old:?} back or nowhere to {new}"
            ));
        }
        last.insert(tp, new);
    }
    let stored = query_text(
        p.mirror_stack(),
        &p.mirror,
        "SELECT topic, kafka_partition, next_offset FROM cdc_sink_offsets",
    )
    .await;
    for r in stored {
        let tp = (
            r[0].clone().unwrap_or_default(),
            r[1].clone().unwrap_or_default(),
        );
        let next: i64 = r[2].as_deref().and_then(|s| s.parse().ok()).unwrap_or(-1);
        if last.get(&tp).is_some_and(|l| *l != next) {
            problems.push(format!(
                "{tp:?}: stored {next}, last audited move ended at {:?}",
                last.get(&tp)
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "offsets table moves ({} audited):\n{}",
        rows.len(),
        problems.join("\n")
    );
    rows.len()
}

/// Per mirror row, the applied versions strictly increase and nothing follows a delete.
async fn check_apply_order(p: &PipelineSetup) -> usize {
    let rows = query_text(
        p.mirror_stack(),
        &p.mirror,
        "SELECT tbl, id, version FROM apply_audit ORDER BY n",
    )
    .await;
    let mut last: BTreeMap<(String, String), Option<i64>> = BTreeMap::new();
    let mut problems = Vec::new();
    for r in &rows {
        let key = (
            r[0].clone().unwrap_or_default(),
            r[1].clone().unwrap_or_default(),
        );
        let version: Option<i64> = r[2].as_deref().and_then(|s| s.parse().ok());
        match (last.get(&key), version) {
            (Some(None), _) => {
                problems.push(format!("{key:?}: {version:?} applied after its delete"))
            }
            (Some(Some(prev)), Some(v)) if v <= *prev => {
                problems.push(format!("{key:?}: version {v} applied after version {prev}"))
            }
            _ => {}
        }
        last.insert(key, version);
    }
    let shown = problems.len().min(30);
    assert!(
        problems.is_empty(),
        "rows applied twice or out of order ({} of {} audited changes, first {shown}):\n{}",
        problems.len(),
        rows.len(),
        problems[..shown].join("\n")
    );
    rows.len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sink_killed_at_twelve_points_applies_every_change_once_in_order() {
    let p = PipelineSetup::new("pl_kill").await;
    let mut source = p.start_source(
        "json",
        "\"delete.enabled\" = true\n\"topic.partitions\" = 2",
    );
    source.wait_for_log("streaming the binlog", Duration::from_secs(60));
    let seed = seed(7_001);
    let mut rng = Rng::new(seed);
    let workload = Workload::start(
        p.stack(),
        &p.source.database,
        2,
        WriterPlan {
            seed,
            statements: u64::MAX,
            pause: Duration::from_millis(20),
        },
    );
    // Static membership: a restarted instance takes its partitions back at once.
    let instance_a = format!("{}-a", p.mirror);
    let instance_b = format!("{}-b", p.mirror);
    let env = |instance: &str| {
        vec![
            (
                "CDC_SINK_KAFKA_SESSION_TIMEOUT_MS".to_string(),
                "6000".to_string(),
            ),
            (
                "CDC_SINK_KAFKA_GROUP_INSTANCE_ID".to_string(),
                instance.to_string(),
            ),
        ]
    };
    let start = |name: &str, instance: &str| {
        let env = env(instance);
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        p.start_sink(name, SINK_EXTRA, &env)
    };
    let mut a = start("a", &instance_a);
    add_audit(&p, &[&source, &a]).await;
    let mut b: Option<Service> = None;
    let mut kills = Vec::new();
    for i in 0..12 {
        let mut services = vec![&source, &a];
        services.extend(b.as_ref());
        let before = offsets_sum(&p).await;
        wait_for_progress(&p, before, &services).await;
        match i % 4 {
            1 => {
                // A second instance joins; kill the first while the group rebalances.
                b = Some(start("b", &instance_b));
                let delay = rng.range(100, 2500);
                tokio::time::sleep(Duration::from_millis(delay)).await;
                a.kill();
                kills.push(format!("a {delay} ms after b joined"));
                a = start("a", &instance_a);
            }
            3 => {
                // The second instance dies mid-stream; its partitions go back to the first
                // once its session times out.
                let delay = rng.range(0, 300);
                tokio::time::sleep(Duration::from_millis(delay)).await;
                let mut gone = b.take().expect("b runs");
                gone.kill();
                kills.push(format!("b {delay} ms after a batch"));
            }
            _ => {
                let delay = rng.range(0, 300);
                tokio::time::sleep(Duration::from_millis(delay)).await;
                a.kill();
                kills.push(format!("a {delay} ms after a batch"));
                a = start("a", &instance_a);
            }
        }
    }
    let report = workload.stop().await;
    assert!(report.statements > 1000, "seed {seed}: {report:?}");
    let mut services = vec![&source, &a];
    services.extend(b.as_ref());
    p.wait_mirror_equals_source(
        &[("users", USERS_COLUMNS), ("orders", ORDERS_COLUMNS)],
        Duration::from_secs(120),
        &services,
    )
    .await;
    let moves = check_offset_chains(&p).await;
    let applied = check_apply_order(&p).await;
    println!("seed {seed}: {report:?}; kills: {kills:?}; {moves} offset moves and {applied} row changes audited");
    assert!(kills.len() >= 10);
    assert_eq!(
        a.terminate(Duration::from_secs(30)),
        Some(0),
        "{}",
        a.log_text()
    );
    assert_eq!(
        source.terminate(Duration::from_secs(30)),
        Some(0),
        "{}",
        source.log_text()
    );
}
