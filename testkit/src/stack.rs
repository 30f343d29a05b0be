//! Addresses and accounts of the local stack (`stack/up`), from the environment `stack/env`
//! prints; each variable falls back to the stack's default, so a stack started with default
//! ports needs no environment at all.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Addresses and credentials of the local stack.
#[derive(Debug, Clone)]
pub struct Stack {
    pub mariadb_host: String,
    pub mariadb_port: u16,
    pub root_user: String,
    pub root_password: String,
    pub source_user: String,
    pub source_password: String,
    pub sink_user: String,
    pub sink_password: String,
    pub kafka_bootstrap: String,
    pub registry_url: String,
    pub prometheus_url: String,
    /// CA of a MariaDB that accepts TLS only (a secured private server); admin connections then
    /// use TLS trusting it.
    pub mariadb_ca: Option<std::path::PathBuf>,
}

fn var(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_string())
}

impl Stack {
    /// Reads the stack's addresses from the environment (`eval "$(stack/env)"`), with the defaults of
    /// `stack/env` for anything unset.
    pub fn from_env() -> Self {
        Self::try_from_env().unwrap_or_else(|e| panic!("{e}"))
    }

    /// Like [`Stack::from_env`], with an error instead of a panic for a malformed variable.
    pub fn try_from_env() -> Result<Self, String> {
        let port = var("CDC_MARIADB_PORT", "13306");
        Ok(Stack {
            mariadb_host: var("CDC_MARIADB_HOST", "127.0.0.1"),
            mariadb_port: port.parse().map_err(|_| format!("CDC_MARIADB_PORT={port:?} is not a port number"))?,
            root_user: var("CDC_MARIADB_ROOT_USER", "root"),
            root_password: var("CDC_MARIADB_ROOT_PASSWORD", "root"),
            source_user: var("CDC_SOURCE_USER", "cdc_source"),
            source_password: var("CDC_SOURCE_PASSWORD", "cdc_source_pw"),
            sink_user: var("CDC_SINK_USER", "cdc_sink"),
            sink_password: var("CDC_SINK_PASSWORD", "cdc_sink_pw"),
            kafka_bootstrap: var("CDC_KAFKA_BOOTSTRAP", "127.0.0.1:19092"),
            registry_url: var("CDC_REGISTRY_URL", "http://127.0.0.1:18081/apis/ccompat/v7"),
            prometheus_url: var("CDC_PROMETHEUS_URL", "http://127.0.0.1:19090"),
            mariadb_ca: None,
        })
    }

    /// librdkafka settings for a client of the stack's Kafka.
    pub fn kafka(&self) -> BTreeMap<String, String> {
        BTreeMap::from([("bootstrap.servers".to_string(), self.kafka_bootstrap.clone())])
    }

    /// `mysql://` URL of the admin (root) account over TCP, optionally with a default database.
    pub fn root_url(&self, database: Option<&str>) -> String {
        format!(
            "mysql://{}:{}@{}:{}/{}",
            self.root_user,
            self.root_password,
            self.mariadb_host,
            self.mariadb_port,
            database.unwrap_or("")
        )
    }

    /// Opts for the admin account that always use TCP (never the unix socket).
    pub fn root_opts(&self, database: Option<&str>) -> mysql_async::Opts {
        let opts = mysql_async::Opts::from_url(&self.root_url(database))
            .expect("stack MariaDB URL is valid");
        let ssl = self.mariadb_ca.as_ref().map(|ca| {
            mysql_async::SslOpts::default()
                .with_root_certs(vec![ca.clone().into()])
                .with_danger_skip_domain_validation(true)
        });
        mysql_async::OptsBuilder::from_opts(opts).prefer_socket(false).ssl_opts(ssl).into()
    }

    /// Opens an admin connection, failing with a hint when the stack is not running.
    pub async fn root_conn(&self, database: Option<&str>) -> mysql_async::Conn {
        mysql_async::Conn::new(self.root_opts(database)).await.unwrap_or_else(|e| {
            panic!(
                "cannot connect to MariaDB at {}:{} ({e}); start the stack with `stack/up`",
                self.mariadb_host, self.mariadb_port
            )
        })
    }
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A number unique within this test process.
pub fn next_counter() -> u32 {
    COUNTER.fetch_add(1, Ordering::Relaxed)
}

/// A name unique to this test process and call, usable as a database, table or topic name:
/// lowercase ASCII letters, digits and `_`, starting with `prefix`.
pub fn unique_name(prefix: &str) -> String {
    let n = next_counter();
    let t = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() % 100_000_000)
        .unwrap_or(0);
    format!("{prefix}_{}_{t}_{n}", std::process::id())
}

