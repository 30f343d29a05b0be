//! The snapshot copies a table in primary-key chunks whatever the key's type: every row exactly
//! once, in at least three chunks, for keys a select-list alias or a cast could shadow (TIMESTAMP
//! read as `UNIX_TIMESTAMP(ts) AS ts`, BINARY as `CAST(… AS BINARY(n))`), composite keys with a
//! case-insensitive VARCHAR, DATETIME(6), UUID, DECIMAL and BIGINT UNSIGNED — in a source whose
//! session time zone is not UTC, while a writer inserts and updates rows. The chunks each table
//! took are reported in `/metrics` and `/status`.

use std::collections::HashSet;
use std::time::Duration;

use cdc_tests::process::http_addr;
use cdc_tests::source::{payload, SourceSetup};
use mysql_async::prelude::Queryable;

const ROWS: usize = 35;

/// (table, DDL of its key columns, primary key, key values of row `i`).
type KeyedTable = (&'static str, &'static str, &'static str, fn(usize) -> String);

fn tables() -> Vec<KeyedTable> {
    vec![
        ("k_ts", "ts TIMESTAMP(6) NOT NULL", "ts", |i| format!("TIMESTAMP('2024-03-31 00:00:00') + INTERVAL {i} HOUR + INTERVAL {i} MICROSECOND")),
        ("k_dt", "dt DATETIME(6) NOT NULL", "dt", |i| format!("'2024-01-01 00:00:00' + INTERVAL {} SECOND", i * 7919)),
        ("k_uuid", "u UUID NOT NULL", "u", |i| format!("'{:08x}-0000-1000-8000-{:012x}'", (i * 2_654_435_761) % 0xffff_ffff, i)),
        ("k_bin", "b BINARY(16) NOT NULL", "b", |i| format!("UNHEX(LPAD(HEX({}), 32, '0'))", (i * 37) % 101)),
        ("k_dec", "d DECIMAL(12,3) NOT NULL", "d", |i| format!("{}.{:03}", i as i64 - 17, i)),
        ("k_ubig", "n BIGINT UNSIGNED NOT NULL", "n", |i| format!("{}", u64::MAX - i as u64 * 1_000_003)),
        ("k_pair", "a INT NOT NULL, v VARCHAR(10) COLLATE utf8mb4_general_ci NOT NULL", "a, v", |i| format!("{}, '{}'", i % 3, ["b", "A", "c", "D", "e"][i % 5].repeat(1 + i / 5))),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_key_type_is_copied_once_in_chunks() {
    let src = SourceSetup::new("snap_keys").await;
    for (table, columns, key, value) in tables() {
        let rows: Vec<String> = (0..ROWS).map(|i| format!("({}, {i})", value(i))).collect();
        let cols = columns.split(", ").filter(|c| c.contains(' ')).map(|c| c.split(' ').next().unwrap_or_default()).collect::<Vec<_>>().join(", ");
        src.exec(&[
            "SET SESSION time_zone = '+05:30'",
            &format!("CREATE TABLE {table} ({columns}, payload INT, PRIMARY KEY ({key}))"),
            &format!("INSERT INTO {table} ({cols}, payload) VALUES {}", rows.join(", ")),
        ])
        .await;
    }
    let mut svc = src.start(&src.config("json", "\"snapshot.chunk.size\" = 10"));
    // A writer inserts rows between the copied ones and updates copied ones while the snapshot
    // runs: each arrives once, as a snapshot read or as a change after it.
    let writer = {
        let src = src.clone();
        tokio::spawn(async move {
            for (table, columns, key, value) in tables() {
                let cols = columns.split(", ").filter(|c| c.contains(' ')).map(|c| c.split(' ').next().unwrap_or_default()).collect::<Vec<_>>().join(", ");
                let first_key = key.split(", ").next().unwrap_or_default().to_string();
                src.exec(&[
                    "SET SESSION time_zone = '+05:30'",
                    &format!("INSERT INTO {table} ({cols}, payload) VALUES ({}, {ROWS})", value(ROWS)),
                    &format!("UPDATE {table} SET payload = payload + 1000 ORDER BY {first_key} LIMIT 3"),
                ])
                .await;
            }
        })
    };
    svc.wait_for_log("snapshot complete", Duration::from_secs(120));
    writer.await.expect("writer");
    for (table, _, _, _) in tables() {
        // More than expected would arrive if a chunk started over; read a little past it.
        let records = src.read_for(table, ROWS + 20, Duration::from_secs(4));
        let reads: Vec<&cdc_tests::kafka::Consumed> = records.iter().filter(|r| r.header("cdc.op") == "r").collect();
        let read_keys: HashSet<String> = reads
            .iter()
            .map(|r| payload(r.key.as_deref()).expect("key").to_string())
            .collect();
        assert_eq!(read_keys.len(), reads.len(), "{table}: no row copied twice");
        // The last value of each key on the topic is the row as it is now.
        let mut last: std::collections::HashMap<String, i64> = std::collections::HashMap::new();
        for r in &records {
            let key = payload(r.key.as_deref()).expect("key").to_string();
            last.insert(key, payload(r.value.as_deref()).expect("value")["payload"].as_i64().expect("payload"));
        }
        let mut got: Vec<i64> = last.into_values().collect();
        got.sort_unstable();
        let now: Vec<i64> = src
            .stack
            .root_conn(Some(&src.database))
            .await
            .query(format!("SELECT payload FROM {table} ORDER BY payload"))
            .await
            .expect("payloads");
        assert_eq!(got, now, "{table}: the topic ends as the table is");
        assert_eq!(now.len(), ROWS + 1, "{table}: the writer's row is there");
    }
    let log = svc.log_text();
    assert!(log.matches("snapshot chunk copied").count() >= 4 * tables().len(), "at least four chunks per table:\n{log}");

    // 35 or 36 rows in chunks of 10: four chunks per table, in the metrics and in /status.
    let http = http_addr(&log);
    let metrics = reqwest::get(format!("http://{http}/metrics")).await.expect("metrics").text().await.expect("text");
    let status: serde_json::Value = reqwest::get(format!("http://{http}/status")).await.expect("status").json().await.expect("JSON");
    for (table, _, _, _) in tables() {
        for line in [
            format!("cdc_source_snapshot_chunks_total{{table=\"{table}\"}} 4"),
            format!("cdc_source_snapshot_chunks_estimate{{table=\"{table}\"}} 4"),
        ] {
            assert!(metrics.lines().any(|l| l == line), "{line} missing from /metrics:\n{metrics}");
        }
        let progress = status["snapshot"].as_array().and_then(|a| a.iter().find(|p| p["table"] == table)).unwrap_or_else(|| panic!("{table} in /status: {status}"));
        assert_eq!((progress["chunks_done"].as_u64(), progress["chunks_estimated"].as_u64(), progress["done"].as_bool()), (Some(4), Some(4), Some(true)), "{table}: {progress}");
    }
}
