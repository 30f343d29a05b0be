//! Poison records on the source's own topic while cdc-source keeps publishing real changes
//! (tests/tests/sink_errors.rs covers each kind of poison without the source):
//! - `errors.tolerance=all`: garbage bytes, an Avro record with an unknown schema id, JSON without
//!   a schema and a value too long for its mirror column go to the dead letter queue with headers
//!   naming topic, partition and offset; every real record around them is applied, so the mirror
//!   still equals the source;
//! - `errors.tolerance=none`: the sink stops at the first poison record, naming topic, partition
//!   and offset, applies nothing after it, and stops at the same record again after a restart.

use std::time::Duration;

use cdc_tests::kafka::read_topic;
use cdc_tests::pipeline::{
    logs, seed, PipelineSetup, Workload, WriterPlan, ORDERS_COLUMNS, USERS_COLUMNS,
};
use cdc_tests::sink::{create_topic, producer};
use rdkafka::producer::{FutureProducer, FutureRecord};

const WAIT: Duration = Duration::from_secs(90);

/// A Connect JSON key of the users topic.
fn json_key(id: i64) -> String {
    format!(
        r#"{{"schema":{{"type":"struct","fields":[{{"type":"int32","optional":false,"field":"id"}}],"optional":false}},"payload":{{"id":{id}}}}}"#
    )
}

/// A Connect JSON users value whose name is `name`.
fn json_user(id: i64, name: &str) -> String {
    format!(
        r#"{{"schema":{{"type":"struct","fields":[{{"type":"int32","optional":false,"field":"id"}},{{"type":"string","optional":true,"field":"user_id"}},{{"type":"string","optional":true,"field":"pwd"}},{{"type":"string","optional":true,"field":"name"}}],"optional":false}},"payload":{{"id":{id},"user_id":"poison","pwd":"p","name":"{name}"}}}}"#
    )
}

/// Produces one record with a plain producer; its partition and offset.
async fn produce(p: &FutureProducer, topic: &str, key: &[u8], value: &[u8]) -> (i32, i64) {
    let d = p
        .send(
            FutureRecord::to(topic).key(key).payload(value),
            Duration::from_secs(10),
        )
        .await
        .map_err(|(e, _)| e)
        .expect("poison record delivered");
    (d.partition, d.offset)
}

/// The four kinds of poison: (what, value).
fn poisons() -> Vec<(&'static str, Vec<u8>)> {
    let mut unknown_id = vec![0u8];
    unknown_id.extend_from_slice(&999_999u32.to_be_bytes());
    unknown_id.extend_from_slice(&[2, 0x0a, b'x']);
    vec![
        ("decode", b"\xff\x00\x13 garbage, not a record".to_vec()),
        ("decode", unknown_id),
        (
            "decode",
            br#"{"id":9000003,"user_id":"no schema","pwd":"p","name":"n"}"#.to_vec(),
        ),
        (
            "data",
            json_user(
                9_000_004,
                "a name far longer than the twenty characters of the column",
            )
            .into_bytes(),
        ),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poison_records_go_to_the_dlq_while_source_records_keep_flowing() {
    let p = PipelineSetup::new("pl_dlq").await;
    let dlq = format!("{}_dlq", p.mirror);
    create_topic(&p.stack().kafka_bootstrap, &dlq, 1).await;
    let mut source = p.start_source("avro", "\"delete.enabled\" = true");
    source.wait_for_log("streaming the binlog", Duration::from_secs(60));
    let sink = p.start_sink(
        "a",
        &format!(
            "\"delete.enabled\" = true\n\"errors.tolerance\" = \"all\"\n\"errors.deadletterqueue.topic.name\" = \"{dlq}\""
        ),
        &[],
    );
    let services = [&source, &sink];
    let seed = seed(6_006);
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
    let topic = p.topic("users");
    // The poison goes between real records: wait until the source's records are being applied.
    let deadline = std::time::Instant::now() + WAIT;
    while p
        .mirror_rows(&format!("SELECT 1 FROM `{topic}` LIMIT 1"))
        .await
        .is_empty()
    {
        assert!(
            std::time::Instant::now() < deadline,
            "no rows applied\n{}",
            logs(&services)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let kafka = producer(&p.stack().kafka_bootstrap);
    let mut sent = Vec::new();
    for (n, (class, value)) in poisons().into_iter().enumerate() {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let (partition, offset) = produce(
            &kafka,
            &topic,
            json_key(9_000_001 + n as i64).as_bytes(),
            &value,
        )
        .await;
        sent.push((partition.to_string(), offset.to_string(), class.to_string()));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let report = workload.stop().await;
    p.wait_mirror_equals_source(
        &[("users", USERS_COLUMNS), ("orders", ORDERS_COLUMNS)],
        WAIT,
        &services,
    )
    .await;

    let letters = read_topic(
        &p.stack().kafka_bootstrap,
        &dlq,
        sent.len() + 1,
        Duration::from_secs(15),
    );
    let mut got: Vec<(String, String, String)> = letters
        .iter()
        .map(|l| {
            assert_eq!(l.header("__connect.errors.topic"), topic, "{:?}", l.headers);
            assert!(
                !l.header("__connect.errors.exception.message").is_empty(),
                "{:?}",
                l.headers
            );
            (
                l.header("__connect.errors.partition").to_string(),
                l.header("__connect.errors.offset").to_string(),
                l.header("__connect.errors.exception.class.name")
                    .to_string(),
            )
        })
        .collect();
    got.sort();
    sent.sort();
    assert_eq!(
        got,
        sent,
        "exactly the poison records are dead letters\n{}",
        logs(&services)
    );
    assert!(
        cdc_tests::pipeline::alive(&sink),
        "the sink keeps running:\n{}",
        sink.log_text()
    );
    println!("seed {seed}: {report:?}; dead letters {got:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poison_record_stops_the_sink_with_tolerance_none_naming_where() {
    let p = PipelineSetup::new("pl_poison_stop").await;
    let mut source = p.start_source("json", "");
    source.wait_for_log("streaming the binlog", Duration::from_secs(60));
    let mut sink = p.start_sink("a", "", &[]);
    let table = p.topic("users");
    let select = format!("SELECT user_id FROM `{table}` ORDER BY id");
    p.exec(&["insert into users(user_id,pwd,name) values('before','p','Before')"])
        .await;
    p.wait_mirror(&select, &[&[Some("before")]], WAIT, &[&source, &sink])
        .await;

    let kafka = producer(&p.stack().kafka_bootstrap);
    let (partition, offset) = produce(
        &kafka,
        &table,
        json_key(9_000_001).as_bytes(),
        b"\xff\x00 garbage",
    )
    .await;
    p.exec(&["insert into users(user_id,pwd,name) values('after','p','After')"])
        .await;
    let place = format!("{table}[{partition}]@{offset}");
    for run in ["first", "restarted"] {
        let code = sink.wait(WAIT);
        let log = sink.log_text();
        assert!(
            matches!(code, Some(c) if c != 0),
            "{run} sink should stop with an error (exit {code:?}):\n{log}"
        );
        assert!(
            log.contains(&place),
            "{run} sink's message should name {place}:\n{log}"
        );
        assert_eq!(
            p.mirror_rows(&select).await,
            vec![vec![Some("before".to_string())]],
            "nothing after the poison"
        );
        if run == "first" {
            sink = p.start_sink("b", "", &[]);
        }
    }
    assert_eq!(
        source.terminate(Duration::from_secs(30)),
        Some(0),
        "{}",
        source.log_text()
    );
}
