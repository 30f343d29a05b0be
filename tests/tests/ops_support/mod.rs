//! What the operations tests (`ops_compose`, `ops_dashboards`) share: the repository's files
//! (compose file, service configs, Prometheus config, dashboards) read the way Docker Compose,
//! the services, Prometheus and Grafana read them.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use serde_json::Value as Json;
use serde_yaml::Value as Yaml;

/// The repository's root folder.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ lives in the repository")
        .to_path_buf()
}

/// A repository file's text; panics naming the file.
pub fn read(relative: &str) -> String {
    let path = repo().join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// A YAML file with aliases resolved and `<<` merge keys applied, as Docker Compose reads it.
pub fn yaml(relative: &str) -> Yaml {
    let mut v: Yaml = serde_yaml::from_str(&read(relative))
        .unwrap_or_else(|e| panic!("{relative} is not valid YAML: {e}"));
    apply_merges(&mut v);
    v
}

/// Applies YAML merge keys everywhere, including merges of mappings that merge others
/// (`serde_yaml`'s `apply_merge` does one level).
fn apply_merges(v: &mut Yaml) {
    match v {
        Yaml::Mapping(m) => {
            while let Some(merged) = m.remove("<<") {
                let sources = match merged {
                    Yaml::Sequence(s) => s,
                    other => vec![other],
                };
                for source in sources {
                    let Yaml::Mapping(source) = source else {
                        panic!("a `<<` merge key must refer to a mapping");
                    };
                    for (k, val) in source {
                        m.entry(k).or_insert(val);
                    }
                }
            }
            for val in m.values_mut() {
                apply_merges(val);
            }
        }
        Yaml::Sequence(s) => s.iter_mut().for_each(apply_merges),
        _ => {}
    }
}

/// The port of a service's `http.listen` in its deploy/config file (`cdc-source`, `jdbc-sink`).
pub fn http_port(service: &str) -> u16 {
    let file = format!("deploy/config/{service}.toml");
    let table: toml::Table = toml::from_str(&read(&file)).unwrap_or_else(|e| panic!("{file}: {e}"));
    let listen = table
        .get("http.listen")
        .and_then(toml::Value::as_str)
        .unwrap_or_else(|| panic!("{file} sets no \"http.listen\"; Prometheus needs a fixed port"));
    port_of(listen).unwrap_or_else(|| panic!("{file}: http.listen {listen:?} has no port"))
}

/// The port of `host:port`.
pub fn port_of(address: &str) -> Option<u16> {
    address.rsplit_once(':').and_then(|(_, p)| p.parse().ok())
}

/// The scrape targets of each job of a Prometheus config: `(job, [host:port, …])`.
pub fn prometheus_jobs(relative: &str) -> Vec<(String, Vec<String>)> {
    let config = yaml(relative);
    let jobs = config["scrape_configs"]
        .as_sequence()
        .unwrap_or_else(|| panic!("{relative} has no scrape_configs"));
    jobs.iter()
        .map(|job| {
            let name = job["job_name"].as_str().expect("job_name").to_string();
            let targets = job["static_configs"]
                .as_sequence()
                .into_iter()
                .flatten()
                .flat_map(|c| c["targets"].as_sequence().cloned().unwrap_or_default())
                .map(|t| t.as_str().expect("target is a string").to_string())
                .collect();
            (name, targets)
        })
        .collect()
}

/// One query of a dashboard panel.
#[derive(Debug, Clone)]
pub struct PanelQuery {
    pub dashboard: String,
    pub panel: String,
    pub ref_id: String,
    /// As written in the dashboard, with Grafana's variables.
    pub expr: String,
    pub datasource_uid: Option<String>,
}

impl PanelQuery {
    /// The expression as Prometheus gets it from Grafana: built-in interval variables replaced
    /// (`$__rate_interval` by `rate_interval`). Panics on any other variable, so that a query
    /// never depends on a template variable the dashboard does not define.
    pub fn promql(&self, rate_interval: &str) -> String {
        let mut q = self.expr.clone();
        for (var, value) in [
            ("${__rate_interval}", rate_interval),
            ("$__rate_interval", rate_interval),
            ("${__interval}", "15s"),
            ("$__interval", "15s"),
            ("${__range}", "5m"),
            ("$__range", "5m"),
        ] {
            q = q.replace(var, value);
        }
        assert!(!q.contains('$'), "{self}: unknown Grafana variable in {:?}", self.expr);
        q
    }
}

impl std::fmt::Display for PanelQuery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "dashboard {:?}, panel {:?}, query {}", self.dashboard, self.panel, self.ref_id)
    }
}

/// Every dashboard JSON of dashboards/, by file name.
pub fn dashboards() -> Vec<(String, Json)> {
    let dir = repo().join("dashboards");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no dashboard JSON in {}", dir.display());
    files
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p).expect("dashboard file");
            let json: Json = serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("{} is not valid JSON: {e}", p.display()));
            (p.file_name().expect("file name").to_string_lossy().into_owned(), json)
        })
        .collect()
}

/// Every panel of a dashboard (rows' nested panels included), rows excluded.
pub fn panels(dashboard: &Json) -> Vec<&Json> {
    fn walk<'a>(list: &'a Json, out: &mut Vec<&'a Json>) {
        for p in list.as_array().into_iter().flatten() {
            if p["type"] == "row" {
                walk(&p["panels"], out);
            } else {
                out.push(p);
            }
        }
    }
    let mut out = Vec::new();
    walk(&dashboard["panels"], &mut out);
    out
}

/// Every query of every panel of every dashboard.
pub fn panel_queries() -> Vec<PanelQuery> {
    let mut out = Vec::new();
    for (_, dashboard) in dashboards() {
        let title = dashboard["title"].as_str().unwrap_or("?").to_string();
        for panel in panels(&dashboard) {
            let panel_title = panel["title"].as_str().unwrap_or("?").to_string();
            for target in panel["targets"].as_array().into_iter().flatten() {
                let uid = target["datasource"]["uid"]
                    .as_str()
                    .or_else(|| panel["datasource"]["uid"].as_str())
                    .map(str::to_string);
                out.push(PanelQuery {
                    dashboard: title.clone(),
                    panel: panel_title.clone(),
                    ref_id: target["refId"].as_str().unwrap_or("?").to_string(),
                    expr: target["expr"].as_str().unwrap_or("").to_string(),
                    datasource_uid: uid,
                });
            }
        }
    }
    out
}

/// Creates `topics` (one partition each) on the stack's Kafka; topics that exist are fine.
pub async fn create_topics(bootstrap: &str, topics: &[String]) {
    use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
    use rdkafka::client::DefaultClientContext;
    use rdkafka::types::RDKafkaErrorCode;
    let admin: AdminClient<DefaultClientContext> = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .expect("Kafka admin client");
    let new: Vec<NewTopic> = topics.iter().map(|t| NewTopic::new(t, 1, TopicReplication::Fixed(1))).collect();
    let results = admin
        .create_topics(&new, &AdminOptions::new())
        .await
        .unwrap_or_else(|e| panic!("cannot create topics at {bootstrap} ({e}); start the stack with `stack/up`"));
    for r in results {
        if let Err((topic, code)) = r {
            assert_eq!(code, RDKafkaErrorCode::TopicAlreadyExists, "creating topic {topic}: {code}");
        }
    }
}
