//! Helpers of the whole-pipeline tests: `cdc-source` on its own database and topics, `jdbc-sink`
//! writing those topics into its own mirror database, and comparisons of source and mirror tables.
//!
//! Names: the source database is `<tag>_<unique>`, its topics `my_topic_<that>_users` and
//! `…_orders` (the tutorial's `my_topic_` prefix plus the test's own name), the mirror database is
//! the source database's name with `_m` appended, and the mirror tables are named after the topics
//! (`table.name.format=${topic}`). The sink runs as root, so no grants are needed.
//!
//! Equality of source and mirror is checked with `COUNT(*)` and a sum of `CRC32` over all columns
//! of every row (NULL spelt apart from any text); on a mismatch the failure shows a full row diff.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable;

use crate::process::Service;
use crate::sink::free_port;
use crate::source::SourceSetup;
use crate::Stack;

pub use crate::writers::{seed, spawn_writer, sql_str, Rng, Versions, Workload, WriterPlan, WriterReport};

/// Columns of `users` as created from `sql/01-databases.sql`.
pub const USERS_COLUMNS: &[&str] = &["id", "user_id", "pwd", "name", "created_at"];
/// Columns of `orders` as created from `sql/01-databases.sql`.
pub const ORDERS_COLUMNS: &[&str] = &[
    "id",
    "product_id",
    "qty",
    "unit_price",
    "total_price",
    "user_id",
    "order_id",
    "created_at",
];

/// One pipeline under test: a source database and topics, and a mirror database.
#[derive(Debug, Clone)]
pub struct PipelineSetup {
    pub source: SourceSetup,
    pub mirror: String,
    /// The MariaDB server holding the mirror database (usually the source's).
    pub mirror_stack: Stack,
    /// Sink name; the consumer group is `connect-<name>`.
    pub sink_name: String,
}

impl PipelineSetup {
    /// A pipeline on the shared stack.
    pub async fn new(tag: &str) -> PipelineSetup {
        Self::on(Stack::from_env(), tag).await
    }

    /// A pipeline whose source and mirror databases live on `stack`'s MariaDB (e.g. a private one).
    pub async fn on(stack: Stack, tag: &str) -> PipelineSetup {
        Self::split(stack.clone(), stack, tag).await
    }

    /// A pipeline whose source database lives on `source_stack`'s MariaDB and whose mirror
    /// database lives on `mirror_stack`'s.
    pub async fn split(source_stack: Stack, mirror_stack: Stack, tag: &str) -> PipelineSetup {
        let mut source = SourceSetup::on(source_stack, tag).await;
        source.prefix = format!("my_topic_{}_", source.database);
        let mirror = format!("{}_m", source.database);
        let mut conn = mirror_stack.root_conn(None).await;
        conn.query_drop(format!("CREATE DATABASE `{mirror}` CHARACTER SET utf8mb4"))
            .await
            .expect("create mirror database");
        PipelineSetup {
            sink_name: format!("sink-{mirror}"),
            source,
            mirror,
            mirror_stack,
        }
    }

    /// The stack of the source (Kafka and the registry are shared by both services).
    pub fn stack(&self) -> &Stack {
        &self.source.stack
    }

    /// The stack whose MariaDB holds the mirror database.
    pub fn mirror_stack(&self) -> &Stack {
        &self.mirror_stack
    }

    /// The topic (and mirror table) of source table `table`.
    pub fn topic(&self, table: &str) -> String {
        self.source.topic(table)
    }

    /// Starts `cdc-source` in `format` (`avro` or `json`) with `extra` config lines.
    pub fn start_source(&self, format: &str, extra: &str) -> Service {
        self.source.start(&self.source.config(format, extra))
    }

    /// A sink config reading the `users` and `orders` topics into the mirror database, as root,
    /// with `auto.create`, `auto.evolve` and `extra` lines; the HTTP port is `http_port`.
    pub fn sink_config(&self, http_port: u16, extra: &str) -> String {
        let s = self.mirror_stack();
        format!(
            "name = \"{name}\"\ntopics = \"{users},{orders}\"\n\
             \"connection.url\" = \"jdbc:mysql://{host}:{port}/{db}\"\n\
             \"connection.user\" = \"{user}\"\n\"connection.password\" = \"{pw}\"\n\
             \"schema.registry.url\" = \"{registry}\"\n\
             \"http.listen\" = \"127.0.0.1:{http_port}\"\n\
             \"auto.create\" = true\n\"auto.evolve\" = true\n\"retry.backoff.ms\" = 50\n\
             \"flush.interval.ms\" = 100\n{extra}\n\
             [kafka]\n\"bootstrap.servers\" = \"{kafka}\"\n",
            name = self.sink_name,
            users = self.topic("users"),
            orders = self.topic("orders"),
            host = s.mariadb_host,
            port = s.mariadb_port,
            db = self.mirror,
            user = s.root_user,
            pw = s.root_password,
            registry = s.registry_url,
            kafka = s.kafka_bootstrap,
        )
    }

    /// Starts a `jdbc-sink` instance named `instance` (its own log and config folder) with
    /// `sink_config(free port, extra)` and environment `env`.
    pub fn start_sink(&self, instance: &str, extra: &str, env: &[(&str, &str)]) -> Service {
        let config = self.sink_config(free_port(), extra);
        Service::start(
            "jdbc-sink",
            &format!("{}-{instance}", self.mirror),
            &config,
            "toml",
            &[],
            env,
        )
    }

    /// Runs SQL statements as root in the source database.
    pub async fn exec(&self, statements: &[&str]) {
        self.source.exec(statements).await;
    }

    /// Rows of `sql` run in the mirror database, every column as text (NULL as `None`).
    pub async fn mirror_rows(&self, sql: &str) -> Vec<Vec<Option<String>>> {
        query_text(self.mirror_stack(), &self.mirror, sql).await
    }

    /// Polls `sql` in the mirror database until it returns `expected`; panics after `timeout`
    /// with what it got and the logs of `services`.
    pub async fn wait_mirror(
        &self,
        sql: &str,
        expected: &[&[Option<&str>]],
        timeout: Duration,
        services: &[&Service],
    ) {
        let want: Vec<Vec<Option<String>>> = expected
            .iter()
            .map(|r| r.iter().map(|c| c.map(str::to_string)).collect())
            .collect();
        let deadline = Instant::now() + timeout;
        loop {
            let got = self.mirror_rows(sql).await;
            if got == want {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "mirror never matched for `{sql}`:\n got  {got:?}\n want {want:?}\n{}",
                logs(services)
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Count and checksum of `table` (columns `columns`) at the source and in its mirror table.
    pub async fn checksums(&self, table: &str, columns: &[&str]) -> (Checksum, Checksum) {
        let sql_src = checksum_sql(table, columns);
        let sql_dst = checksum_sql(&self.topic(table), columns);
        let src = checksum(self.stack(), &self.source.database, &sql_src).await;
        let dst = checksum(self.mirror_stack(), &self.mirror, &sql_dst).await;
        (src, dst)
    }

    /// Waits until every `(table, columns)` has the same count and checksum in the mirror as at
    /// the source; panics after `timeout` with a row diff and the logs of `services`.
    pub async fn wait_mirror_equals_source(
        &self,
        tables: &[(&str, &[&str])],
        timeout: Duration,
        services: &[&Service],
    ) {
        let deadline = Instant::now() + timeout;
        for (table, columns) in tables {
            loop {
                let (src, dst) = self.checksums(table, columns).await;
                if src == dst && src.is_some() {
                    break;
                }
                if let Some(gone) = services.iter().find(|s| !alive(s)) {
                    let diff = self.row_diff(table, columns).await;
                    panic!(
                        "{} exited while the mirror of `{table}` was behind (source {src:?}, mirror {dst:?})\n{diff}\n{}",
                        gone.name,
                        logs(services)
                    );
                }
                if Instant::now() >= deadline {
                    let diff = self.row_diff(table, columns).await;
                    panic!(
                        "mirror of `{table}` never equalled the source within {timeout:?}: \
                         source {src:?}, mirror {dst:?}\n{diff}\n{}",
                        logs(services)
                    );
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        }
    }

    /// The rows that differ between `table` and its mirror table (by `id`), for failure messages.
    pub async fn row_diff(&self, table: &str, columns: &[&str]) -> String {
        let select = |t: &str| {
            format!(
                "SELECT {} FROM `{t}` ORDER BY id",
                text_columns(columns).join(", ")
            )
        };
        let src = by_id(query_text(self.stack(), &self.source.database, &select(table)).await);
        let dst = by_id(
            query_text(
                self.mirror_stack(),
                &self.mirror,
                &select(&self.topic(table)),
            )
            .await,
        );
        let mut out = Vec::new();
        for (id, row) in &src {
            match dst.get(id) {
                None => out.push(format!("  missing in mirror: {row:?}")),
                Some(m) if m != row => out.push(format!(
                    "  differs: source {row:?}\n           mirror {m:?}"
                )),
                _ => {}
            }
        }
        for (id, row) in &dst {
            if !src.contains_key(id) {
                out.push(format!("  only in mirror: {row:?}"));
            }
        }
        let shown = out.len().min(40);
        format!(
            "row diff of `{table}` ({} source rows, {} mirror rows, {} differences{}):\n{}",
            src.len(),
            dst.len(),
            out.len(),
            if shown < out.len() {
                ", first 40 shown"
            } else {
                ""
            },
            out[..shown].join("\n")
        )
    }
}

/// `(COUNT(*), SUM(CRC32(all columns)))`, `None` when the table does not exist (yet).
pub type Checksum = Option<(i64, i64)>;

/// Every column as text: NULL as `\N`, temporal columns with their microseconds, so a mirror
/// column of another precision or a NULL turned into `''` shows up as a difference.
fn text_columns(columns: &[&str]) -> Vec<String> {
    columns
        .iter()
        .map(|c| {
            if *c == "created_at" {
                format!("IFNULL(DATE_FORMAT(`{c}`, '%Y-%m-%d %H:%i:%s.%f'), '\\\\N')")
            } else {
                format!("IFNULL(CAST(`{c}` AS CHAR), '\\\\N')")
            }
        })
        .collect()
}

fn checksum_sql(table: &str, columns: &[&str]) -> String {
    format!(
        "SELECT COUNT(*), CAST(IFNULL(SUM(CRC32(CONCAT_WS('|', {}))), 0) AS SIGNED) FROM `{table}`",
        text_columns(columns).join(", ")
    )
}

async fn checksum(stack: &Stack, db: &str, sql: &str) -> Checksum {
    let mut conn = stack.root_conn(Some(db)).await;
    conn.query_first::<(i64, i64), _>(sql).await.ok().flatten()
}

fn by_id(rows: Vec<Vec<Option<String>>>) -> BTreeMap<String, Vec<Option<String>>> {
    rows.into_iter()
        .map(|r| (r[0].clone().unwrap_or_default(), r))
        .collect()
}

/// Rows of `sql` in database `db`, every column as text (NULL as `None`); no rows on error.
pub async fn query_text(stack: &Stack, db: &str, sql: &str) -> Vec<Vec<Option<String>>> {
    let mut conn = stack.root_conn(Some(db)).await;
    let rows: Vec<mysql_async::Row> = conn.query(sql).await.unwrap_or_default();
    rows.into_iter()
        .map(|row| {
            (0..row.len())
                .map(|i| match row.as_ref(i) {
                    Some(mysql_async::Value::NULL) | None => None,
                    Some(mysql_async::Value::Bytes(b)) => {
                        Some(String::from_utf8_lossy(b).into_owned())
                    }
                    Some(v) => Some(v.as_sql(true).trim_matches('\'').to_string()),
                })
                .collect()
        })
        .collect()
}

/// Whether the service's process still runs (not exited, not a zombie waiting to be reaped).
pub fn alive(service: &Service) -> bool {
    std::fs::read_to_string(format!("/proc/{}/stat", service.pid()))
        .ok()
        .and_then(|stat| {
            stat.rsplit_once(") ")
                .map(|(_, rest)| !rest.starts_with('Z') && !rest.starts_with('X'))
        })
        .unwrap_or(false)
}

/// The last 60 log lines of each service, for failure messages.
pub fn logs(services: &[&Service]) -> String {
    services
        .iter()
        .map(|s| {
            let text = s.log_text();
            let lines: Vec<&str> = text.lines().collect();
            let tail = lines[lines.len().saturating_sub(60)..].join("\n");
            format!("--- {} ({}), last lines:\n{tail}", s.name, s.log.display())
        })
        .collect::<Vec<_>>()
        .join("\n")
}
