//! One `jdbc-sink` process under test: its config (own mirror database, consumer group and
//! topics; the bench's `--sink-set` keys on top), and how the bench learns what it has applied —
//! from the sink's offsets table, the truth it commits in the same transaction as the rows.

use std::path::PathBuf;

use mysql_async::prelude::Queryable;
use mysql_async::Conn;

use crate::process::Service;
use cdc_testkit::Stack;

/// The sink's offsets table (its default `offsets.table.name`).
pub const OFFSETS_TABLE: &str = "cdc_sink_offsets";

/// Everything that identifies one sink run.
#[derive(Debug, Clone)]
pub struct SinkSpec {
    /// Sink name (consumer group `connect-<name>`).
    pub name: String,
    /// Mirror database (created by the bench, tables by the sink's `auto.create`).
    pub database: String,
    pub topics: Vec<String>,
    pub http_port: u16,
    /// Extra top-level sink keys (`key = value` TOML lines), e.g. `"flush.interval.ms" = 50`.
    pub sink_keys: Vec<(String, String)>,
    /// Extra librdkafka settings for the sink's `[kafka]` table.
    pub kafka_keys: Vec<(String, String)>,
    pub binary: PathBuf,
    pub dir: PathBuf,
}

impl SinkSpec {
    /// The sink's config file: the example config's keys, pointed at the run's mirror database
    /// and topics; `batch.size` and `flush.interval.ms` stay at their defaults unless set.
    pub fn config(&self, stack: &Stack) -> String {
        let topics: Vec<String> = self.topics.iter().map(|t| format!("\"{t}\"")).collect();
        let mut top = format!(
            r#"name = "{name}"
"connection.url" = "jdbc:mysql://{host}:{port}/{db}"
"connection.user" = "{user}"
"connection.password" = "{pw}"
topics = [{topics}]
"insert.mode" = "upsert"
"pk.mode" = "record_key"
"auto.create" = true
"auto.evolve" = true
"delete.enabled" = true
"schema.registry.url" = "{registry}"
"http.listen" = "127.0.0.1:{http}"
"#,
            name = self.name,
            host = stack.mariadb_host,
            port = stack.mariadb_port,
            db = self.database,
            user = stack.root_user,
            pw = stack.root_password,
            topics = topics.join(", "),
            registry = stack.registry_url,
            http = self.http_port,
        );
        for (k, v) in &self.sink_keys {
            top.push_str(&format!("\"{k}\" = {v}\n"));
        }
        top.push_str(&format!(
            "[kafka]\n\"bootstrap.servers\" = \"{}\"\n",
            stack.kafka_bootstrap
        ));
        for (k, v) in &self.kafka_keys {
            top.push_str(&format!("\"{k}\" = \"{v}\"\n"));
        }
        top
    }

    /// The settings that decide latency and batch size, as this run uses them.
    pub fn describe_keys(&self) -> String {
        let get = |k: &str, default: &str| {
            self.sink_keys
                .iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.clone())
                .unwrap_or_else(|| format!("{default} (default)"))
        };
        format!(
            "batch.size={}, flush.interval.ms={}",
            get("batch.size", "3000"),
            get("flush.interval.ms", "1000")
        )
    }

    /// The sink's `batch.size`, as set or its default.
    pub fn batch_size(&self) -> anyhow::Result<usize> {
        match self.sink_keys.iter().find(|(k, _)| k == "batch.size") {
            Some((_, v)) => Ok(v.trim_matches('"').parse()?),
            None => Ok(3000),
        }
    }

    pub fn start(&self, stack: &Stack) -> anyhow::Result<Service> {
        Service::spawn(
            "jdbc-sink",
            &self.binary,
            &self.config(stack),
            &self.dir,
            self.http_port,
        )
    }
}

/// The next offset to apply of `topic`'s partitions as stored in the sink's offsets table
/// (empty while the table or its rows do not exist yet).
pub async fn stored_offsets(conn: &mut Conn, topic: &str) -> Vec<(i32, i64)> {
    conn.exec(
        format!("SELECT kafka_partition, next_offset FROM {OFFSETS_TABLE} WHERE topic = ?"),
        (topic,),
    )
    .await
    .unwrap_or_default()
}
