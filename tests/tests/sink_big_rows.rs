//! jdbc-sink and rows near the mirror server's `max_allowed_packet`: statements are cut below it,
//! and a change whose own statement is over it is a record error (the DLQ with
//! `errors.tolerance=all`, a stop naming it with `none`) and never sent, so it cannot wedge the
//! sink in a retry of a dropped connection. A private MariaDB, since the setting is global.
//!
//! The packet is set to 64 KiB and the rows stay far below Kafka's default 1 MB message size: a
//! 40,000-byte BLOB is sent as an 80,000-byte hex literal, over the packet though the value is not.

use std::time::Duration;

use cdc_schema::{Encoder, FieldType, Part, Record, Value};
use cdc_tests::kafka::read_topic;
use cdc_tests::private::PrivateMariadb;
use cdc_tests::sink::{create_topic, free_port, producer, send, typed_field, users_row, users_schemas, SinkCase};
use mysql_async::prelude::Queryable;
use rdkafka::producer::FutureProducer;

const WAIT: Duration = Duration::from_secs(60);
const PACKET: usize = 64 * 1024;

/// A private server whose `max_allowed_packet` is [`PACKET`], and a case on it.
async fn small_packet_case(prefix: &str) -> (PrivateMariadb, SinkCase) {
    let db = PrivateMariadb::start(free_port());
    let mut conn = db.stack().root_conn(None).await;
    conn.query_drop(format!("SET GLOBAL max_allowed_packet = {PACKET}"))
        .await
        .expect("set max_allowed_packet");
    drop(conn);
    let case = SinkCase::on(db.stack(), prefix, 1).await;
    (db, case)
}

async fn json(topic: &str, part: Part, record: &Record) -> Vec<u8> {
    Encoder::json().encode(topic, part, record).await.expect("encode")
}

/// Sends `users` rows with a `photo` BLOB of `photo_bytes[i]` bytes, ids from 1.
async fn send_rows(case: &SinkCase, p: &FutureProducer, photo_bytes: &[usize]) {
    let t = case.topic.as_str();
    let users = users_schemas(t, vec![typed_field("photo", FieldType::Bytes, true, "mediumblob")]);
    for (i, &n) in photo_bytes.iter().enumerate() {
        let id = i as i64 + 1;
        let photo = (0..n).map(|b| (b * 7 + i) as u8).collect();
        let (k, v) = users_row(&users, id, &format!("user{id}"), "pw", "Name", vec![Value::Bytes(photo)]);
        send(p, t, None, Some(&json(t, Part::Key, &k).await), Some(&json(t, Part::Value, &v).await)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_row_over_the_packet_goes_to_the_dlq_and_the_rows_after_it_are_applied() {
    let (_db, case) = small_packet_case("sink_big_dlq").await;
    let dlq = format!("{}_dlq", case.topic);
    create_topic(&case.stack.kafka_bootstrap, &dlq, 1).await;
    let p = producer(&case.stack.kafka_bootstrap);
    // Sent before the sink starts, so all three share one batch.
    send_rows(&case, &p, &[10, 40_000, 10]).await;
    let config = case.toml(&format!(
        "\"errors.tolerance\" = \"all\"\n\"errors.deadletterqueue.topic.name\" = \"{dlq}\""
    ));
    let sink = case.start_sink(&config, "toml", &[]);
    let t = case.topic.as_str();
    case.wait_rows(
        &format!("SELECT id, LENGTH(photo) FROM `{t}` ORDER BY id"),
        &[&[Some("1"), Some("10")], &[Some("3"), Some("10")]],
        WAIT,
        &sink,
    )
    .await;
    let letters = read_topic(&case.stack.kafka_bootstrap, &dlq, 1, WAIT);
    assert_eq!(letters.len(), 1, "DLQ records; sink log:\n{}", sink.log_text());
    let l = &letters[0];
    assert_eq!(l.header("__connect.errors.offset"), "1");
    assert_eq!(l.header("__connect.errors.exception.class.name"), "data");
    let message = l.header("__connect.errors.exception.message");
    println!("DLQ message: {message}");
    for part in [&format!("table `{t}`"), "key 2", "max_allowed_packet", "65536", "hex"] {
        assert!(message.contains(part), "`{part}` in the message: {message}");
    }
    assert!(!sink.log_text().contains("retrying with backoff"), "{}", sink.log_text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_row_over_the_packet_stops_the_sink_naming_it_with_tolerance_none() {
    let (_db, case) = small_packet_case("sink_big_stop").await;
    let p = producer(&case.stack.kafka_bootstrap);
    send_rows(&case, &p, &[10, 40_000]).await;
    let mut sink = case.start_sink(&case.toml(""), "toml", &[]);
    assert_eq!(sink.wait(WAIT), Some(1), "the sink must stop:\n{}", sink.log_text());
    let log = sink.log_text();
    assert!(log.contains(&format!("record {}[0]@1 cannot be applied (data)", case.topic)), "{log}");
    assert!(log.contains("max_allowed_packet"), "{log}");
    assert!(!log.contains("retrying with backoff"), "{log}");
    // Nothing of the batch is committed.
    assert!(case.rows(&format!("SELECT id FROM `{}`", case.topic)).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_medium_rows_over_the_packet_together_are_cut_and_applied() {
    let (_db, case) = small_packet_case("sink_big_many").await;
    let p = producer(&case.stack.kafka_bootstrap);
    // 200 rows of 8,000 hex characters each: 1.6 MB of statement, 25 times the packet.
    let sizes = vec![4_000; 200];
    send_rows(&case, &p, &sizes).await;
    let sink = case.start_sink(&case.toml(""), "toml", &[]);
    let t = case.topic.as_str();
    case.wait_rows(
        &format!("SELECT COUNT(*), SUM(LENGTH(photo)) FROM `{t}`"),
        &[&[Some("200"), Some("800000")]],
        WAIT,
        &sink,
    )
    .await;
    assert!(!sink.log_text().contains("retrying with backoff"), "{}", sink.log_text());
}
