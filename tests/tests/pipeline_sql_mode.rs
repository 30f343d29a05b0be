//! Values a non-strict source session stored land unchanged in the mirror, whose session stays
//! strict for everything else: an ENUM's error value `''` (index 0), an empty SET, zero dates
//! and invalid dates (`ALLOW_INVALID_DATES`). A value that really does not fit its mirror column
//! still goes to the dead letter queue as a data error, never truncated, and the rows around it
//! are applied.

use std::time::Duration;

use cdc_tests::kafka::read_topic;
use cdc_tests::pipeline::PipelineSetup;
use cdc_tests::sink::create_topic;
use mysql_async::prelude::Queryable;

const WAIT: Duration = Duration::from_secs(90);
const COLUMNS: &[&str] = &["id", "en", "st", "d", "dt", "note"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn values_a_lax_source_accepted_land_unchanged_and_misfits_go_to_the_dlq() {
    let p = PipelineSetup::new("pl_sqlmode").await;
    p.exec(&[
        "CREATE TABLE odd (id INT PRIMARY KEY, en ENUM('a','b'), st SET('x','y'), d DATE, dt DATETIME, note VARCHAR(10))",
    ])
    .await;
    let dlq = format!("{}_dlq", p.mirror);
    create_topic(&p.stack().kafka_bootstrap, &dlq, 1).await;
    let mut source = p.start_source("avro", "");
    source.wait_for_log("streaming the binlog", Duration::from_secs(60));
    let topics = format!("{},{}", p.topic("users"), p.topic("odd"));
    let sink = p.start_sink(
        "a",
        &format!("\"errors.tolerance\" = \"all\"\n\"errors.deadletterqueue.topic.name\" = \"{dlq}\""),
        &[("CDC_SINK_TOPICS", topics.as_str())],
    );
    let services = [&source, &sink];
    // A non-strict session, as many applications still run: '' for the invalid label, a zero
    // date, a date with a zero month, February 30th.
    p.exec(&[
        "SET SESSION sql_mode = 'ALLOW_INVALID_DATES'",
        "INSERT INTO odd VALUES (1, '', '', '0000-00-00', '0000-00-00 00:00:00', 'zero')",
        "INSERT INTO odd VALUES (2, 'zzz', 'x,y', '2024-02-30', '2024-00-00 10:00:00', 'invalid')",
        "INSERT INTO odd VALUES (3, 'b', 'y', '2024-05-01', '2024-05-01 10:00:00', 'plain')",
    ])
    .await;
    p.wait_mirror_equals_source(&[("odd", COLUMNS)], WAIT, &services).await;
    let mirrored = p
        .mirror_rows(&format!("SELECT id, en + 0, st + 0 FROM `{}` ORDER BY id", p.topic("odd")))
        .await;
    let strs = |v: &[[&str; 3]]| -> Vec<Vec<Option<String>>> {
        v.iter().map(|r| r.iter().map(|c| Some(c.to_string())).collect()).collect()
    };
    assert_eq!(
        mirrored,
        strs(&[["1", "0", "0"], ["2", "0", "3"], ["3", "2", "2"]]),
        "ENUM '' is stored as MariaDB's error value, index 0, as at the source"
    );

    // The mirror's note column is narrowed by hand: a value that fits at the source no longer
    // fits the mirror. It is a data error on the DLQ, the rows after it still land.
    let mut mirror = p.mirror_stack().root_conn(Some(&p.mirror)).await;
    mirror
        .query_drop(format!("ALTER TABLE `{}` MODIFY note VARCHAR(7)", p.topic("odd")))
        .await
        .expect("narrow the mirror column");
    // Row 4 holds an ENUM '' too, so it is written by the non-strict statement: its truncated
    // note must still be caught.
    p.exec(&[
        "SET SESSION sql_mode = 'ALLOW_INVALID_DATES'",
        "INSERT INTO odd VALUES (4, '', NULL, '0000-00-00', NULL, 'too long')",
        "INSERT INTO odd VALUES (5, 'a', NULL, NULL, NULL, 'ok')",
    ])
    .await;
    let topic = p.topic("odd");
    p.wait_mirror(
        &format!("SELECT id, note FROM `{topic}` WHERE id >= 4 ORDER BY id"),
        &[&[Some("5"), Some("ok")]],
        WAIT,
        &services,
    )
    .await;
    let letters = read_topic(&p.stack().kafka_bootstrap, &dlq, 1, WAIT);
    assert_eq!(letters.len(), 1, "one dead letter");
    let letter = &letters[0];
    assert_eq!(letter.header("__connect.errors.exception.class.name"), "data", "{:?}", letter.headers);
    assert_eq!(letter.header("__connect.errors.topic"), topic, "{:?}", letter.headers);
    assert!(
        letter.header("__connect.errors.exception.message").contains("note"),
        "the error names the column: {:?}",
        letter.headers
    );
}
