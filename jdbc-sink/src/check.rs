//! `jdbc-sink check`: validates the configuration and that everything it names is reachable,
//! without consuming anything. Each line says what was checked and, on failure, what to do;
//! `note` lines tell what does not stop the sink, such as topics that do not exist yet.

use std::time::Duration;

use cdc_common::kafka::{client_config, Role, DEFAULT_BOOTSTRAP};
use mysql_async::prelude::Queryable;

use crate::config::{Settings, Topics};
use crate::ident::Ident;

/// One check's outcome.
#[derive(Debug, Clone)]
pub struct CheckResult {
    pub what: String,
    pub outcome: Result<String, String>,
    /// What the operator should know that does not stop the sink from starting (e.g. a
    /// subscribed topic that does not exist yet).
    pub notes: Vec<String>,
}

/// Runs every check; the sink can start when all pass (notes do not count as failures).
pub async fn run_checks(settings: &Settings) -> Vec<CheckResult> {
    let mut results = vec![database(settings).await, kafka(settings)];
    if let Some(registry) = &settings.registry {
        results.push(check_registry(registry).await);
    }
    results
}

async fn database(settings: &Settings) -> CheckResult {
    let what = format!("mirror database {}", settings.url);
    let outcome = async {
        let connecting = tokio::time::timeout(settings.connect_timeout, mysql_async::Conn::new(settings.db_opts()))
            .await
            .map_err(|_| format!("does not answer within {:?} (connect.timeout.ms); check connection.url and the network path", settings.connect_timeout))?;
        let mut conn = connecting
            .map_err(|e| {
                let fix = settings.url.tls.hint(&e).unwrap_or_else(|| "check connection.url, connection.user and connection.password".into());
                format!("cannot connect: {e}; {fix}")
            })?;
        let table = Ident::new(&settings.offsets_table).map_err(|e| e.to_string())?;
        crate::offsets::ensure_table(&mut conn, &table)
            .await
            .map_err(|e| format!("cannot create the offsets table {table}: {e}; grant the sink user CREATE, ALTER, SELECT, INSERT, UPDATE, DELETE on the database"))?;
        let version: Option<String> = conn.query_first("SELECT VERSION()").await.map_err(|e| e.to_string())?;
        let _ = conn.disconnect().await;
        Ok(format!("reachable (server {}), offsets table {table} ready", version.unwrap_or_default()))
    }
    .await;
    CheckResult {
        what,
        outcome,
        notes: Vec::new(),
    }
}

fn kafka(settings: &Settings) -> CheckResult {
    let servers = settings
        .kafka
        .get("bootstrap.servers")
        .cloned()
        .unwrap_or_else(|| DEFAULT_BOOTSTRAP.into());
    let what = format!("Kafka {servers}");
    let mut notes = Vec::new();
    let outcome = (|| {
        let metadata = cdc_common::kafka::probe(&client_config(Role::Consumer, &settings.kafka), &settings.kafka, Duration::from_secs(10))
            .map_err(|e| e.message)?;
        let names: Vec<&str> = metadata.topics().iter().map(|t| t.name()).collect();
        let later = "the sink subscribes anyway and consumes a topic within seconds of its \
                     creation (cdc-source creates its topics with their first records)";
        let found = match &settings.topics {
            Topics::List(list) => {
                let missing: Vec<&String> = list
                    .iter()
                    .filter(|t| !names.contains(&t.as_str()))
                    .collect();
                if !missing.is_empty() {
                    notes.push(format!("topics {missing:?} do not exist yet; {later}"));
                }
                list.len() - missing.len()
            }
            Topics::Regex(re) => {
                let re = regex::Regex::new(&format!("^(?:{})$", re.trim_start_matches('^')))
                    .map_err(|e| e.to_string())?;
                let found = names.iter().filter(|n| re.is_match(n)).count();
                if found == 0 {
                    notes.push(format!("no topic matches topics.regex yet; {later}"));
                }
                found
            }
        };
        Ok(format!("reachable, {found} matching topic(s)"))
    })();
    CheckResult {
        what,
        outcome,
        notes,
    }
}

async fn check_registry(registry: &cdc_schema::Registry) -> CheckResult {
    let url = registry.url();
    let outcome = match registry.latest("__jdbc_sink_check-value").await {
        Ok(_) => Ok("reachable".to_string()),
        Err(e) => Err(e.to_string()),
    };
    CheckResult {
        what: format!("schema registry {url}"),
        outcome,
        notes: Vec::new(),
    }
}
