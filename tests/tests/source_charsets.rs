//! Character sets against the real server:
//! - every byte sequence of every non-Unicode character set (each byte, each two-byte sequence
//!   with a first byte >= 0x80, each `8F xx yy` of ujis/eucjpms) decodes exactly as MariaDB
//!   converts it to utf8mb4, and a sequence the server shows as `?` or U+FFFD is an error;
//! - a table with one column per character set flows through the real cdc-source (binlog) and
//!   jdbc-sink: Kafka carries the text MariaDB returns converted to utf8mb4, and the mirror holds
//!   the same characters;
//! - a table with bytes its charset has no character for fails alone (error log naming table,
//!   column and charset, `cdc_source_table_failures_total`), while the other table keeps flowing.

use std::time::Duration;

use cdc_schema::Collation;
use cdc_tests::pipeline::{logs, query_text, PipelineSetup};
use cdc_tests::process::http_addr;
use cdc_tests::source::payload;
use mysql_async::prelude::Queryable;

/// One sample per character set (all of `SHOW CHARACTER SET` but `binary`), in characters that
/// charset has.
const SAMPLES: &[(&str, &str)] = &[
    ("big5", "中文測試，繁體"),
    ("dec8", "Ñoño Äßå ½"),
    ("cp850", "Grüße ½ ÆØ ╬"),
    ("hp8", "Ça va été ÿ"),
    ("koi8r", "Привет, мир ё"),
    ("latin1", "Grüße €™ Œ"),
    ("latin2", "Zażółć gęślą jaźń"),
    ("swe7", "Räksmörgås ÉÜ"),
    ("ascii", "plain text ~"),
    ("ujis", "日本語テキスト ｶﾅ"),
    ("sjis", "日本語テキスト ｶﾅ"),
    ("hebrew", "שלום עולם"),
    ("tis620", "ภาษาไทย"),
    ("euckr", "한국어 텍스트"),
    ("koi8u", "Україна ґЄ"),
    ("gb2312", "简体中文测试"),
    ("greek", "Καλημέρα κόσμε"),
    ("cp1250", "Příliš žluťoučký kůň"),
    ("gbk", "简体中文鍀"),
    ("latin5", "Türkçe ğışİ"),
    ("armscii8", "Հայերեն"),
    ("utf8mb3", "Grüße 日本"),
    ("ucs2", "Grüße 日本"),
    ("cp866", "Привет, ёж ░"),
    ("keybcs2", "Příliš žluťoučký"),
    ("macce", "Příliš žluťoučký"),
    ("macroman", "Café ƒ π"),
    ("cp852", "Zażółć gęślą"),
    ("latin7", "Ąžuolas ščiū"),
    ("utf8mb4", "Grüße 😀"),
    ("cp1251", "Привет, мир"),
    ("utf16", "Grüße 😀"),
    ("utf16le", "Grüße 😀"),
    ("cp1256", "مرحبا بالعالم"),
    ("cp1257", "Ąžuolas šaltinis"),
    ("utf32", "Grüße 😀"),
    ("geostd8", "ქართული"),
    ("cp932", "日本語①～"),
    ("eucjpms", "日本語①～"),
];

/// The non-Unicode character sets, with the longest sequence each has.
const TABLE_CHARSETS: &[(&str, usize)] = &[
    ("ascii", 1), ("dec8", 1), ("cp850", 1), ("cp852", 1), ("hp8", 1), ("swe7", 1),
    ("keybcs2", 1), ("armscii8", 1), ("geostd8", 1), ("macce", 1), ("latin1", 1), ("latin2", 1),
    ("latin5", 1), ("latin7", 1), ("greek", 1), ("hebrew", 1), ("tis620", 1), ("koi8r", 1),
    ("koi8u", 1), ("cp866", 1), ("cp1250", 1), ("cp1251", 1), ("cp1256", 1), ("cp1257", 1),
    ("macroman", 1), ("big5", 2), ("sjis", 2), ("cp932", 2), ("euckr", 2), ("gb2312", 2),
    ("gbk", 2), ("ujis", 3), ("eucjpms", 3),
];

fn unhex(hex: &str) -> Vec<u8> {
    (0..hex.len() / 2).map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).expect("hex")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn charset_decoding_matches_the_server() {
    let stack = cdc_tests::Stack::from_env();
    let mut conn = stack.root_conn(Some("mysql")).await;
    let mut wrong = Vec::new();
    for (charset, width) in TABLE_CHARSETS {
        let collation = Collation::default_for_charset(charset).expect("known charset");
        let mut ranges = vec![("seq_0_to_255", 2)];
        if *width >= 2 {
            ranges.push(("seq_32768_to_65535", 4));
        }
        if *width >= 3 {
            ranges.push(("seq_9371648_to_9437183", 6));
        }
        for (seq, digits) in ranges {
            let sql = format!(
                "SELECT LPAD(HEX(seq), {digits}, '0') AS s, \
                 HEX(CONVERT(CONVERT(UNHEX(LPAD(HEX(seq), {digits}, '0')) USING {charset}) USING utf8mb4)) FROM {seq}"
            );
            let rows: Vec<(String, String)> = conn.query(&sql).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
            for (input, server) in rows {
                let bytes = unhex(&input);
                let server = String::from_utf8(unhex(&server)).expect("utf8mb4 from the server");
                // The server shows a byte sequence it has no character for as `?` or U+FFFD.
                let substituted = server.contains('\u{FFFD}')
                    || server.matches('?').count() > bytes.iter().filter(|b| **b == b'?').count();
                let ours = collation.decode(&bytes).ok();
                let want = (!substituted).then_some(server);
                if ours != want {
                    wrong.push(format!("{charset}\t{input}\tserver {want:?}\tours {ours:?}"));
                }
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "{} sequences decode unlike the server (correct schema/src/charsets.tsv):\n{}",
        wrong.len(),
        wrong.iter().take(60).cloned().collect::<Vec<_>>().join("\n")
    );
}

/// `SELECT id, CONVERT(c USING utf8mb4) ...` of every sample column of `table`.
fn converted(table: &str) -> String {
    let columns: Vec<String> = SAMPLES.iter().map(|(cs, _)| format!("CONVERT(`c_{cs}` USING utf8mb4)")).collect();
    format!("SELECT id, {} FROM `{table}` ORDER BY id", columns.join(", "))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_charset_reaches_kafka_and_the_mirror_and_a_bad_table_fails_alone() {
    let p = PipelineSetup::new("charsets").await;
    let columns: Vec<String> =
        SAMPLES.iter().map(|(cs, _)| format!("`c_{cs}` varchar(40) character set {cs} null")).collect();
    let users = format!("create table users (id int primary key, {})", columns.join(", "));
    p.exec(&[
        "drop table users",
        "drop table orders",
        &users,
        "create table orders (id int primary key, note varchar(20) character set cp1250 not null)",
    ])
    .await;
    let mut source = p.start_source("json", "\"snapshot.mode\" = \"never\"");
    source.wait_for_log("streaming the binlog", Duration::from_secs(60));
    let mut sink = p.start_sink("a", "", &[]);

    let names: Vec<String> = SAMPLES.iter().map(|(cs, _)| format!("`c_{cs}`")).collect();
    let texts: Vec<String> = SAMPLES.iter().map(|(_, t)| cdc_tests::pipeline::sql_str(t)).collect();
    let reversed: Vec<String> = SAMPLES
        .iter()
        .map(|(cs, t)| format!("`c_{cs}` = {}", cdc_tests::pipeline::sql_str(&t.chars().rev().collect::<String>())))
        .collect();
    p.exec(&[
        "insert into orders values (1, 'Příliš žluťoučký')",
        &format!("insert into users (id, {}) values (1, {})", names.join(", "), texts.join(", ")),
        // 0x81 has no character in MariaDB's cp1250 (the server shows `?`): orders fails.
        "insert into orders values (2, x'4181')",
        &format!("insert into users (id, {}) values (2, {})", names.join(", "), texts.join(", ")),
        &format!("update users set {} where id = 2", reversed.join(", ")),
        "insert into orders values (3, 'after the failure')",
    ])
    .await;

    // Kafka: each column carries what MariaDB returns converted to utf8mb4.
    let source_rows = query_text(p.stack(), &p.source.database, &converted("users")).await;
    let records = p.source.read("users", 3);
    assert_eq!(records.len(), 3, "{}", logs(&[&source, &sink]));
    // Insert of 1, insert of 2 (the same texts), update of 2 (the texts reversed).
    for (record, want) in records.iter().zip([&source_rows[0], &source_rows[0], &source_rows[1]]) {
        let value = payload(record.value.as_deref()).expect("value");
        for (i, (cs, _)) in SAMPLES.iter().enumerate() {
            assert_eq!(value[format!("c_{cs}")].as_str(), want[i + 1].as_deref(), "{cs} in {value}");
        }
    }
    for (i, (cs, text)) in SAMPLES.iter().enumerate() {
        assert_eq!(source_rows[0][i + 1].as_deref(), Some(*text), "{cs}: the server keeps the sample");
    }
    assert_eq!(source_rows[1][7].as_deref(), Some("ńźaj ąlśęg ćłóżaZ"), "row 2 is reversed");

    // The mirror holds the same characters (its columns are created in the source's charsets).
    let want: Vec<Vec<Option<&str>>> = source_rows.iter().map(|r| r.iter().map(|c| c.as_deref()).collect()).collect();
    let want: Vec<&[Option<&str>]> = want.iter().map(Vec::as_slice).collect();
    p.wait_mirror(&converted(&p.topic("users")), &want, Duration::from_secs(90), &[&source, &sink]).await;

    // orders failed alone: its first row went out, nothing after the bad one.
    let orders = p.source.read_for("orders", 3, Duration::from_secs(5));
    let ids: Vec<i64> = orders.iter().map(|r| payload(r.value.as_deref()).expect("value")["id"].as_i64().expect("id")).collect();
    assert_eq!(ids, [1], "{}", logs(&[&source]));
    let log = source.log_text();
    assert!(
        log.contains("table skipped") && log.contains(".orders") && log.contains("column `note`") && log.contains("cp1250") && log.contains("0x81"),
        "the error names table, column, charset and bytes:\n{log}"
    );
    let metrics = reqwest::get(format!("http://{}/metrics", http_addr(&log))).await.expect("metrics").text().await.expect("text");
    assert!(metrics.contains("cdc_source_table_failures_total{table=\"orders\"} 1"), "{metrics}");
    assert!(cdc_tests::pipeline::alive(&source), "the source keeps running:\n{log}");
    source.terminate(Duration::from_secs(20));
    sink.terminate(Duration::from_secs(20));
}
