//! Addresses and accounts of the local stack, from the environment `stack/env` prints (each with
//! the stack's default, so a stack started with default ports needs no environment at all).

use std::collections::BTreeMap;

/// Where the stack's services listen and the accounts the bench uses.
#[derive(Debug, Clone)]
pub struct Stack {
    pub mariadb_host: String,
    pub mariadb_port: u16,
    pub root_user: String,
    pub root_password: String,
    pub source_user: String,
    pub source_password: String,
    pub kafka_bootstrap: String,
    pub registry_url: String,
}

fn var(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_string())
}

impl Stack {
    pub fn from_env() -> anyhow::Result<Self> {
        let port = var("CDC_MARIADB_PORT", "13306");
        Ok(Stack {
            mariadb_host: var("CDC_MARIADB_HOST", "127.0.0.1"),
            mariadb_port: port
                .parse()
                .map_err(|_| anyhow::anyhow!("CDC_MARIADB_PORT={port:?} is not a port number"))?,
            root_user: var("CDC_MARIADB_ROOT_USER", "root"),
            root_password: var("CDC_MARIADB_ROOT_PASSWORD", "root"),
            source_user: var("CDC_SOURCE_USER", "cdc_source"),
            source_password: var("CDC_SOURCE_PASSWORD", "cdc_source_pw"),
            kafka_bootstrap: var("CDC_KAFKA_BOOTSTRAP", "127.0.0.1:19092"),
            registry_url: var("CDC_REGISTRY_URL", "http://127.0.0.1:18081/apis/ccompat/v7"),
        })
    }

    /// Root connection options over TCP (never the unix socket), optionally with a database.
    pub fn root_opts(&self, database: Option<&str>) -> mysql_async::Opts {
        mysql_async::OptsBuilder::default()
            .ip_or_hostname(self.mariadb_host.clone())
            .tcp_port(self.mariadb_port)
            .user(Some(self.root_user.clone()))
            .pass(Some(self.root_password.clone()))
            .db_name(database.map(str::to_string))
            .prefer_socket(false)
            .into()
    }

    /// librdkafka settings for the bench's own clients.
    pub fn kafka(&self) -> BTreeMap<String, String> {
        BTreeMap::from([(
            "bootstrap.servers".to_string(),
            self.kafka_bootstrap.clone(),
        )])
    }
}
