//! The pipeline on a three-node Kafka cluster (a private one from `stack/up --brokers 3`:
//! replication factor 3, `min.insync.replicas=2`) through broker faults, under two writers of
//! about 500 changes/s: SIGKILL of the leader of the `users` topic's partition, then of the active
//! KRaft controller, then of two nodes at once for 15 s (no majority, so nothing can commit).
//! After each fault a marker row is inserted and the times until it is committed on the topic
//! and in the mirror are printed (for the two-node fault: from the moment the majority answers).
//!
//! At the end the mirror equals the source (every column of `users` and `orders`), and on the
//! topics each row's versions (every write sets a new, larger version) only grow: no change is
//! on a topic twice, none out of order. The data topics are created with the
//! `topic.creation.default.*` settings, read back from the cluster.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use cdc_tests::kafka::{read_to_end, Consumed};
use cdc_tests::pipeline::{query_text, seed, PipelineSetup, Workload, WriterPlan, ORDERS_COLUMNS, USERS_COLUMNS};
use cdc_tests::private::PrivateKafka;
use cdc_tests::process::{http_addr, Service};
use cdc_tests::source::payload;
use cdc_tests::Stack;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

fn consumer(bootstrap: &str) -> BaseConsumer {
    ClientConfig::new().set("bootstrap.servers", bootstrap).create().expect("metadata client")
}

/// The node leading partition 0 of `topic`, and the topic's replica count.
fn leader(bootstrap: &str, topic: &str) -> (u16, usize) {
    let md = consumer(bootstrap).fetch_metadata(Some(topic), Duration::from_secs(10)).expect("topic metadata");
    let p = &md.topics()[0].partitions()[0];
    (p.leader() as u16, p.replicas().len())
}

/// The end offset of the users topic's partition now (read before a fault, while it has a
/// leader); 0 before the topic exists (the source creates it with its first records).
fn users_end(p: &PipelineSetup) -> i64 {
    match consumer(&p.stack().kafka_bootstrap).fetch_watermarks(&p.topic("users"), 0, Duration::from_secs(30)) {
        Ok((_, end)) => end,
        Err(e) if e.rdkafka_error_code() == Some(rdkafka::types::RDKafkaErrorCode::UnknownPartition) => 0,
        Err(e) => panic!("end offset of the users topic: {e}"),
    }
}

/// Inserts a marker row and waits until it is committed on the topic (read from offset `from`)
/// and then in the mirror; the times since `since`, as "topic T, mirror M".
async fn marker_applied(p: &PipelineSetup, label: &str, from: i64, since: Instant, services: &[&Service]) -> String {
    let name = format!("marker-{label}");
    let on_topic = {
        // From an offset read before the fault (Offset::End would be resolved at the first
        // fetch, maybe after the marker is there).
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &p.stack().kafka_bootstrap)
            .set("group.id", cdc_tests::unique_name("marker"))
            .set("isolation.level", "read_committed")
            .create()
            .expect("marker consumer");
        let topic = p.topic("users");
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(&topic, 0, Offset::Offset(from)).expect("partition");
        consumer.assign(&tpl).expect("assign");
        let name = name.clone();
        tokio::task::spawn_blocking(move || {
            let deadline = Instant::now() + Duration::from_secs(180);
            while Instant::now() < deadline {
                if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
                    if payload(m.payload()).is_some_and(|v| v["name"] == name.as_str()) {
                        return Some(since.elapsed());
                    }
                }
            }
            None
        })
    };
    p.exec(&[&format!("INSERT INTO users (pwd, name) VALUES ('0', '{name}')")]).await;
    let sql = format!("SELECT COUNT(*) FROM `{}` WHERE name = '{name}'", p.topic("users"));
    let deadline = Instant::now() + Duration::from_secs(180);
    let in_mirror = loop {
        let rows = query_text(p.mirror_stack(), &p.mirror, &sql).await;
        if rows.first().and_then(|r| r[0].as_deref()) == Some("1") {
            break since.elapsed();
        }
        assert!(Instant::now() < deadline, "marker {label} never reached the mirror\n{}", cdc_tests::pipeline::logs(services));
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let on_topic = on_topic.await.expect("marker reader").expect("the marker is on the topic");
    format!("topic {:.1} s, mirror {:.1} s", on_topic.as_secs_f64(), in_mirror.as_secs_f64())
}

/// Every row's versions (`version` of the value) only grow along its topic's records; deletes
/// carry the version they delete and are skipped.
fn assert_versions_grow(records: &[Consumed], version: &str, what: &str) -> usize {
    let mut last: BTreeMap<i64, i64> = BTreeMap::new();
    let mut checked = 0;
    for r in records {
        if r.header("cdc.op") == "d" || r.value.is_none() {
            continue;
        }
        let key = payload(r.key.as_deref()).expect("key")["id"].as_i64().expect("id");
        let value = payload(r.value.as_deref()).expect("value");
        let v = match &value[version] {
            serde_json::Value::String(s) => s.parse::<i64>().unwrap_or(0),
            other => other.as_i64().unwrap_or(0),
        };
        if let Some(before) = last.insert(key, v) {
            assert!(v > before || v == 0, "{what} row {key}: version {v} after {before} (a change repeated or out of order) at offset {}", r.offset);
        }
        checked += 1;
    }
    checked
}

#[tokio::test(flavor = "multi_thread")]
async fn broker_faults_on_a_three_node_cluster() {
    let kafka = PrivateKafka::start_cluster();
    let stack = kafka.on(Stack::from_env());
    let p = PipelineSetup::on(stack.clone(), "cl_faults").await;
    let mut source = p.start_source(
        "json",
        "\"delete.enabled\" = true\n\"topic.creation.default.replication.factor\" = 3\n\
         \"topic.creation.default.min.insync.replicas\" = 2\n\"offsets.topic.replication.factor\" = 3\n",
    );
    let sink = p.start_sink("cl", "\"delete.enabled\" = true\n\"pk.mode\" = \"record_key\"\n", &[]);
    source.wait_for_log("streaming the binlog", Duration::from_secs(90));
    let writers = Workload::start(
        &stack,
        &p.source.database,
        2,
        WriterPlan { seed: seed(1313), statements: u64::MAX, pause: Duration::from_millis(30) },
    );
    let services = [&source, &sink];
    let first = marker_applied(&p, "start", users_end(&p), Instant::now(), &services).await;
    let (_, replicas) = leader(&stack.kafka_bootstrap, &p.topic("users"));
    assert_eq!(replicas, 3, "topic.creation.default.replication.factor is applied");

    let mut figures = vec![format!("before any fault: {first}")];
    // 1. The leader of the users partition.
    let (node, _) = leader(&stack.kafka_bootstrap, &p.topic("users"));
    let from = users_end(&p);
    let t = Instant::now();
    kafka.kill(node);
    figures.push(format!("partition leader (node {node}) killed: marker applied after {}", marker_applied(&p, "leader", from, t, &services).await));
    kafka.up();
    tokio::time::sleep(Duration::from_secs(3)).await;

    // 2. The active controller.
    let node = kafka.active_controller();
    let from = users_end(&p);
    let t = Instant::now();
    kafka.kill(node);
    figures.push(format!("active controller (node {node}) killed: marker applied after {}", marker_applied(&p, "controller", from, t, &services).await));
    kafka.up();
    tokio::time::sleep(Duration::from_secs(3)).await;

    // 3. Two nodes at once for 15 s: no majority, nothing commits.
    let controller = kafka.active_controller();
    let down: Vec<u16> = (1..=3).filter(|n| *n != controller).collect();
    let from = users_end(&p);
    for n in &down {
        kafka.kill(*n);
    }
    // Meanwhile the source keeps reading but can store nothing: past read.timeout.ms (5 s) it
    // is not ready and says why (a commit waiting, or reconnecting after the commit failed).
    tokio::time::sleep(Duration::from_secs(9)).await;
    let http = http_addr(&source.log_text());
    let ready = reqwest::get(format!("http://{http}/ready")).await.expect("GET /ready").status().as_u16();
    let status: serde_json::Value =
        reqwest::get(format!("http://{http}/status")).await.expect("GET /status").json().await.expect("status JSON");
    assert_eq!(ready, 503, "the source is not ready while nothing can commit: {status}");
    let why = status["stalled"].as_str().unwrap_or_default();
    assert!(
        why.contains("waiting for the Kafka transaction to commit") || status["state"] == "reconnecting",
        "/status says why: {status}"
    );
    tokio::time::sleep(Duration::from_secs(6)).await;
    kafka.up();
    let back = Instant::now();
    figures.push(format!(
        "nodes {down:?} down for 15 s: marker applied after the majority returned: {}",
        marker_applied(&p, "majority", from, back, &services).await
    ));

    let report = writers.stop().await;
    p.wait_mirror_equals_source(&[("users", USERS_COLUMNS), ("orders", ORDERS_COLUMNS)], Duration::from_secs(180), &services).await;
    let mut source = source;
    let mut sink = sink;
    assert_eq!(source.terminate(Duration::from_secs(30)), Some(0), "cdc-source exits 0:\n{}", source.log_text());
    assert_eq!(sink.terminate(Duration::from_secs(30)), Some(0), "jdbc-sink exits 0:\n{}", sink.log_text());
    let users = read_to_end(&stack.kafka_bootstrap, &p.topic("users"), Duration::from_secs(120));
    let orders = read_to_end(&stack.kafka_bootstrap, &p.topic("orders"), Duration::from_secs(120));
    let checked = assert_versions_grow(&users, "pwd", "users") + assert_versions_grow(&orders, "qty", "orders");
    eprintln!(
        "cluster faults: {} statements in {} transactions by the writers; {} records on the topics, {checked} versions checked\n  {}",
        report.statements,
        report.commits,
        users.len() + orders.len(),
        figures.join("\n  ")
    );
}
