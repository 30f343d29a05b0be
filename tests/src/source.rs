//! Helpers for tests that run `cdc-source` against the stack: a private database with the
//! tutorial's tables, a config for it, and record payload access.

use std::time::Duration;

use mysql_async::prelude::Queryable;

use crate::process::Service;
use crate::{unique_name, Stack};

/// One source under test: its own database, topic prefix, offsets topic, name and server id.
#[derive(Debug, Clone)]
pub struct SourceSetup {
    pub stack: Stack,
    pub database: String,
    pub prefix: String,
    pub offsets_topic: String,
    pub name: String,
    pub server_id: u32,
    pub tag: String,
}

impl SourceSetup {
    /// Creates database `<tag>` with `users` and `orders` exactly as in `sql/01-databases.sql`.
    pub async fn new(tag: &str) -> SourceSetup {
        Self::on(Stack::from_env(), tag).await
    }

    /// Like [`SourceSetup::new`] on another MariaDB (e.g. a private one).
    pub async fn on(stack: Stack, tag: &str) -> SourceSetup {
        let unique = unique_name(tag);
        let mut conn = stack.root_conn(None).await;
        conn.query_drop(format!("CREATE DATABASE `{unique}` CHARACTER SET utf8mb4")).await.expect("create db");
        let ddl = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../sql/01-databases.sql")).expect("sql/");
        for stmt in ddl.split(';').map(str::trim).filter(|s| s.starts_with("create table")) {
            conn.query_drop(format!("USE `{unique}`")).await.expect("use");
            conn.query_drop(stmt).await.expect("create table");
        }
        let server_id = 10_000 + (std::process::id() % 1000) * 50 + (crate::next_counter() % 50);
        SourceSetup {
            stack,
            prefix: format!("{unique}_"),
            offsets_topic: format!("{unique}_offsets"),
            name: unique.clone(),
            server_id,
            tag: unique.clone(),
            database: unique,
        }
    }

    /// A TOML config for this source; `extra` lines are appended.
    pub fn config(&self, format: &str, extra: &str) -> String {
        let names = cdc_testkit::config::SourceNames {
            name: &self.name,
            database: &self.database,
            server_id: self.server_id,
            topic_prefix: &self.prefix,
            offsets_topic: &self.offsets_topic,
            format,
        };
        format!(
            r#"{head}"batch.max.ms" = 100
"heartbeat.interval.ms" = 1000
"read.timeout.ms" = 5000
"http.listen" = "127.0.0.1:0"
{extra}
[kafka]
"bootstrap.servers" = "{bootstrap}"
"#,
            head = cdc_testkit::config::source_config_head(&self.stack, &names),
            bootstrap = self.stack.kafka_bootstrap,
        )
    }

    pub fn topic(&self, table: &str) -> String {
        format!("{}{}", self.prefix, table)
    }

    /// Starts `cdc-source` with `config`.
    pub fn start(&self, config: &str) -> Service {
        Service::start("cdc-source", &self.tag, config, "toml", &[], &[])
    }

    /// Runs SQL statements as root in this source's database.
    pub async fn exec(&self, statements: &[&str]) {
        let mut conn = self.stack.root_conn(Some(&self.database)).await;
        for s in statements {
            conn.query_drop(*s).await.unwrap_or_else(|e| panic!("{s}: {e}"));
        }
    }

    /// Reads the topic of `table` until `want` records arrived (or 30 s passed).
    pub fn read(&self, table: &str, want: usize) -> Vec<crate::kafka::Consumed> {
        self.read_for(table, want, Duration::from_secs(30))
    }

    /// Like [`SourceSetup::read`] with an explicit timeout.
    pub fn read_for(&self, table: &str, want: usize, timeout: Duration) -> Vec<crate::kafka::Consumed> {
        crate::kafka::read_topic(&self.stack.kafka_bootstrap, &self.topic(table), want, timeout)
    }
}

/// The `payload` of a JSON-with-schema message, or `None` for a tombstone.
pub fn payload(bytes: Option<&[u8]>) -> Option<serde_json::Value> {
    let v: serde_json::Value = serde_json::from_slice(bytes?).expect("JSON-with-schema message");
    Some(v["payload"].clone())
}
