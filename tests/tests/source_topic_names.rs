//! Tables whose names are not legal Kafka topic names, against the real stack:
//! - backtick, quote, semicolon/`--`, unicode and a 64-character name: each is captured (snapshot
//!   and binlog) under its sanitised topic (each illegal character → `_`, the mapping logged) and
//!   lands in a mirror table through the sink, with hostile values and no SQL injection, while a
//!   normal table flows as before;
//! - two captured tables on one topic are refused at start, naming both;
//! - a table whose topic the broker refuses (a name that collides with an existing topic in
//!   `.` versus `_`), and a table created later on a topic another table holds, fail alone
//!   (error log, `cdc_source_table_failures_total`) while another table keeps flowing; with
//!   `errors.tolerance=none` the refusal stops the source instead.

use std::time::Duration;

use cdc_tests::pipeline::{alive, logs, PipelineSetup};
use cdc_tests::process::Service;
use cdc_tests::sink::{create_topic, free_port};
use cdc_tests::source::payload;

const WAIT: Duration = Duration::from_secs(90);

/// The hostile tables: (name as created, the sanitised topic suffix).
fn hostile() -> Vec<(String, String)> {
    let long = format!("h5_{}", "l".repeat(61));
    vec![
        ("h1_back`tick".into(), "h1_back_tick".into()),
        ("h2_semi;colon--dash".into(), "h2_semi_colon--dash".into()),
        ("h3_quote'dq\"".into(), "h3_quote_dq_".into()),
        ("h4_ünïcödé_表".into(), "h4__n_c_d___".into()),
        (long.clone(), long),
    ]
}

/// A backtick-quoted identifier.
fn quoted(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

/// A source config with `extra` lines whose HTTP listens on `port`.
fn source_config(p: &PipelineSetup, format: &str, extra: &str, port: u16) -> String {
    p.source.config(format, extra).replace("\"http.listen\" = \"127.0.0.1:0\"", &format!("\"http.listen\" = \"127.0.0.1:{port}\""))
}

/// A sink reading every topic of the source's prefix.
fn start_sink(p: &PipelineSetup) -> Service {
    let config = p.sink_config(free_port(), "");
    let topics = format!("topics = \"{},{}\"", p.topic("users"), p.topic("orders"));
    assert!(config.contains(&topics));
    let config = config.replace(&topics, &format!("\"topics.regex\" = \"{}.*\"", p.source.prefix));
    Service::start("jdbc-sink", &format!("{}-sink", p.mirror), &config, "toml", &[], &[])
}

async fn metrics(port: u16) -> String {
    reqwest::get(format!("http://127.0.0.1:{port}/metrics")).await.expect("metrics").text().await.expect("text")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_table_names_are_captured_under_sanitised_topics_and_mirrored() {
    let p = PipelineSetup::new("tn").await;
    let evil = "x'); DROP TABLE canary; -- `\"";
    let mut setup = vec!["create table canary (id int primary key)".to_string(), "insert into canary values (1)".to_string()];
    for (name, _) in hostile() {
        setup.push(format!("create table {} (id int primary key, v varchar(60))", quoted(&name)));
        setup.push(format!("insert into {} values (1, {})", quoted(&name), cdc_tests::pipeline::sql_str(evil)));
    }
    let setup: Vec<&str> = setup.iter().map(String::as_str).collect();
    p.exec(&setup).await;
    let mut mirror = p.mirror_stack().root_conn(Some(&p.mirror)).await;
    mysql_async::prelude::Queryable::query_drop(&mut mirror, "create table canary (id int primary key)").await.expect("mirror canary");

    let port = free_port();
    let mut source = Service::start("cdc-source", &p.source.tag, &source_config(&p, "avro", "", port), "toml", &[], &[]);
    source.wait_for_log("streaming the binlog", WAIT);
    let sink = start_sink(&p);
    let mut changes = vec!["insert into users (id, user_id, pwd, name) values (1, 'u1', 'p', 'normal')".to_string()];
    for (name, _) in hostile() {
        changes.push(format!("insert into {} values (2, 'streamed')", quoted(&name)));
    }
    let changes: Vec<&str> = changes.iter().map(String::as_str).collect();
    p.exec(&changes).await;

    let log = source.log_text();
    for (name, suffix) in hostile() {
        let topic = format!("{}{suffix}", p.source.prefix);
        let records = cdc_tests::kafka::read_topic(&p.stack().kafka_bootstrap, &topic, 2, Duration::from_secs(60));
        assert_eq!(records.len(), 2, "{name:?}: snapshot and streamed record on {topic}\n{}", logs(&[&source]));
        assert!(records.iter().all(|r| r.value.is_some()), "{name:?}");
        if name != suffix {
            assert!(
                source.log_text().contains(&format!("topic={topic}")),
                "the mapping of {name:?} is logged:\n{log}"
            );
        }
        // The mirror table: the topic, or for the long one the topic shortened to 64 characters.
        let head: String = topic.chars().take(55).collect();
        let like = head.replace('\\', "\\\\").replace('_', "\\_");
        let table = cdc_tests::process::eventually(WAIT, &format!("mirror table of {name:?}"), || {
            let (p, like) = (p.clone(), like.clone());
            async move {
                let rows = cdc_tests::pipeline::query_text(
                    p.mirror_stack(),
                    &p.mirror,
                    &format!("SELECT table_name FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name LIKE '{like}%'"),
                )
                .await;
                rows.first().and_then(|r| r[0].clone())
            }
        })
        .await;
        assert!(table.chars().count() <= 64, "{table}");
        p.wait_mirror(
            &format!("SELECT id, v FROM {} ORDER BY id", quoted(&table)),
            &[&[Some("1"), Some(evil)], &[Some("2"), Some("streamed")]],
            WAIT,
            &[&source, &sink],
        )
        .await;
    }
    p.wait_mirror(&format!("SELECT id, name FROM {}", quoted(&p.topic("users"))), &[&[Some("1"), Some("normal")]], WAIT, &[&source, &sink])
        .await;
    // Nothing was injected: the canaries stand, nothing failed.
    assert_eq!(cdc_tests::pipeline::query_text(p.stack(), &p.source.database, "SELECT id FROM canary").await, vec![vec![Some("1".to_string())]]);
    assert_eq!(p.mirror_rows("SELECT COUNT(*) FROM canary").await, vec![vec![Some("0".to_string())]]);
    let m = metrics(port).await;
    assert!(!m.lines().any(|l| l.starts_with("cdc_source_table_failures_total{") && !l.ends_with(" 0")), "{m}");
    assert!(alive(&source) && alive(&sink), "{}", logs(&[&source, &sink]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_tables_on_one_topic_are_refused_at_start_naming_both() {
    let p = PipelineSetup::new("tncollide").await;
    p.exec(&["create table `a;b` (id int primary key)", "create table `a_b` (id int primary key)"]).await;
    let mut source = Service::start("cdc-source", &p.source.tag, &p.source.config("json", ""), "toml", &[], &[]);
    let code = source.wait(WAIT);
    let log = source.log_text();
    assert!(code.is_some_and(|c| c != 0), "the source must stop: {code:?}\n{log}");
    let db = &p.source.database;
    assert!(
        log.contains(&format!("{db}.a;b")) && log.contains(&format!("{db}.a_b")) && log.contains(&p.topic("a_b")) && log.contains("table.exclude.list"),
        "the error names both tables, the topic and the fix:\n{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_table_that_cannot_be_published_fails_alone() {
    let p = PipelineSetup::new("tnfail").await;
    // Kafka refuses a topic that differs from an existing one only in `.` versus `_`.
    create_topic(&p.stack().kafka_bootstrap, &p.topic("dot_ted"), 1).await;
    p.exec(&["create table `dot.ted` (id int primary key)"]).await;
    let port = free_port();
    let mut source = Service::start("cdc-source", &p.source.tag, &source_config(&p, "json", "\"snapshot.mode\" = \"never\"", port), "toml", &[], &[]);
    source.wait_for_log("streaming the binlog", WAIT);
    p.exec(&[
        "insert into users (id, user_id, pwd, name) values (1, 'u1', 'p', 'before')",
        "insert into `dot.ted` values (1)",
        "insert into users (id, user_id, pwd, name) values (2, 'u2', 'p', 'between')",
        // Created later: `c;d` maps to the topic `c_d` already publishes to.
        "create table `c_d` (id int primary key)",
        "create table `c;d` (id int primary key)",
        "insert into `c_d` values (1)",
        "insert into `c;d` values (1)",
        "insert into `c_d` values (2)",
        "insert into users (id, user_id, pwd, name) values (3, 'u3', 'p', 'after')",
    ])
    .await;
    let users = p.source.read_for("users", 3, WAIT);
    let names: Vec<String> = users.iter().map(|r| payload(r.value.as_deref()).expect("value")["name"].as_str().unwrap_or_default().to_string()).collect();
    assert_eq!(names, ["before", "between", "after"], "users keeps flowing:\n{}", logs(&[&source]));
    let cd = p.source.read_for("c_d", 2, Duration::from_secs(20));
    let ids: Vec<i64> = cd.iter().map(|r| payload(r.value.as_deref()).expect("value")["id"].as_i64().expect("id")).collect();
    assert_eq!(ids, [1, 2], "only c_d's rows are on its topic:\n{}", logs(&[&source]));
    let log = source.log_text();
    let db = &p.source.database;
    assert!(
        log.contains("table skipped") && log.contains(&format!("cannot publish table {db}.dot.ted")) && log.contains("InvalidTopic") && log.contains("collides"),
        "the refused topic is named with its cause:\n{log}"
    );
    assert!(
        log.contains(&format!("cannot publish table {db}.c;d")) && log.contains(&format!("is the topic of table {db}.c_d")),
        "the collision names both tables:\n{log}"
    );
    let m = metrics(port).await;
    assert!(m.contains("cdc_source_table_failures_total{table=\"dot.ted\"} 1"), "{m}");
    assert!(m.contains("cdc_source_table_failures_total{table=\"c;d\"} 1"), "{m}");
    assert_eq!(log.matches("table skipped").count(), 2, "one line per failed table:\n{log}");
    assert!(alive(&source), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_errors_tolerance_none_a_refused_topic_stops_the_source() {
    let p = PipelineSetup::new("tnstop").await;
    create_topic(&p.stack().kafka_bootstrap, &p.topic("dot_ted"), 1).await;
    p.exec(&["create table `dot.ted` (id int primary key)"]).await;
    let mut source = Service::start("cdc-source", &p.source.tag, &p.source.config("json", "\"snapshot.mode\" = \"never\"\n\"errors.tolerance\" = \"none\"\n\"http.failed.linger.ms\" = 0"), "toml", &[], &[]);
    source.wait_for_log("streaming the binlog", WAIT);
    p.exec(&["insert into `dot.ted` values (1)"]).await;
    let code = source.wait(WAIT);
    let log = source.log_text();
    assert!(code.is_some_and(|c| c != 0), "the source must stop: {code:?}\n{log}");
    assert!(log.contains("InvalidTopic") && log.contains("errors.tolerance=none"), "{log}");
}
