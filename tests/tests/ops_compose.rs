//! docker-compose.yml, the Dockerfile and the files they mount, checked without a Docker engine:
//! the compose file parses; every `depends_on` target exists, has a healthcheck and is waited for
//! until healthy; every image is pinned to a version; MariaDB runs with the binlog flags of the
//! local stack; mounted files exist; Prometheus scrapes the ports the services' configs listen
//! on; the Grafana provisioning and the dashboards agree on the datasource and every query
//! parses (promtool); the Dockerfile builds with the documented command; the compose configs of
//! both services load in the real binaries (`check`).

mod ops_support;

use std::collections::BTreeSet;
use std::process::Command;

use ops_support::{http_port, panel_queries, port_of, prometheus_jobs, read, repo, yaml};
use serde_yaml::Value as Yaml;

const COMPOSE: &str = "docker-compose.yml";
const SERVICES: [&str; 2] = ["cdc-source", "jdbc-sink"];

fn services() -> serde_yaml::Mapping {
    yaml(COMPOSE)["services"]
        .as_mapping()
        .expect("docker-compose.yml has a services mapping")
        .clone()
}

fn service<'a>(all: &'a serde_yaml::Mapping, name: &str) -> &'a Yaml {
    all.get(name).unwrap_or_else(|| panic!("docker-compose.yml has no service {name:?}"))
}

fn name(k: &Yaml) -> String {
    k.as_str().expect("service names are strings").to_string()
}

/// A service's `depends_on`, short (list) or long (mapping) form: `(target, condition, required)`.
fn depends_on(svc: &Yaml) -> Vec<(String, Option<String>, bool)> {
    match &svc["depends_on"] {
        Yaml::Sequence(list) => list.iter().map(|t| (name(t), None, true)).collect(),
        Yaml::Mapping(map) => map
            .iter()
            .map(|(t, spec)| {
                (name(t), spec["condition"].as_str().map(str::to_string), spec["required"].as_bool().unwrap_or(true))
            })
            .collect(),
        Yaml::Null => Vec::new(),
        other => panic!("depends_on must be a list or a mapping, not {other:?}"),
    }
}

fn profiles(svc: &Yaml) -> Vec<String> {
    svc["profiles"].as_sequence().into_iter().flatten().map(name).collect()
}

/// A service's command as one list of words.
fn command(svc: &Yaml) -> Vec<String> {
    match &svc["command"] {
        Yaml::Sequence(words) => words.iter().map(name).collect(),
        Yaml::String(line) => line.split_whitespace().map(str::to_string).collect(),
        _ => Vec::new(),
    }
}

/// The environment of a service as `(key, value)` pairs (mapping form).
fn env(svc: &Yaml) -> Vec<(String, String)> {
    svc["environment"]
        .as_mapping()
        .into_iter()
        .flatten()
        .map(|(k, v)| {
            let value = match v {
                Yaml::String(s) => s.clone(),
                Yaml::Number(n) => n.to_string(),
                Yaml::Bool(b) => b.to_string(),
                other => panic!("environment value {other:?} of {k:?}"),
            };
            (name(k), value)
        })
        .collect()
}

fn env_value(svc: &Yaml, key: &str) -> Option<String> {
    env(svc).into_iter().find(|(k, _)| k == key).map(|(_, v)| v)
}

#[test]
fn compose_has_the_pipeline_services() {
    let all = services();
    for s in ["mariadb", "kafka", "kafka-1", "kafka-2", "kafka-3", "registry", "cdc-source", "jdbc-sink", "prometheus", "grafana"] {
        service(&all, s);
    }
}

#[test]
fn every_service_has_a_healthcheck_and_dependencies_wait_until_healthy() {
    let all = services();
    for (k, svc) in &all {
        let n = name(k);
        let test = &svc["healthcheck"]["test"];
        assert!(
            matches!(test, Yaml::Sequence(s) if s.len() >= 2) || matches!(test, Yaml::String(s) if !s.is_empty()),
            "service {n} has no healthcheck test"
        );
        for (target, condition, _) in depends_on(svc) {
            let dep = all
                .get(target.as_str())
                .unwrap_or_else(|| panic!("service {n} depends on {target:?}, which docker-compose.yml does not define"));
            assert!(!dep["healthcheck"]["test"].is_null(), "service {n} depends on {target}, which has no healthcheck");
            assert_eq!(
                condition.as_deref(),
                Some("service_healthy"),
                "service {n} must wait for {target} with condition: service_healthy"
            );
        }
    }
}

/// Dependencies on a service of another profile must be optional (`required: false`), and each
/// profile must give the services a Kafka node to wait for.
#[test]
fn kafka_profiles_single_and_cluster() {
    let all = services();
    let in_profile = |p: &str| -> BTreeSet<String> {
        all.iter().filter(|(_, s)| profiles(s).iter().any(|x| x == p)).map(|(k, _)| name(k)).collect()
    };
    assert_eq!(in_profile("single"), BTreeSet::from(["kafka".to_string()]));
    let cluster = in_profile("cluster");
    assert_eq!(cluster, ["kafka-1", "kafka-2", "kafka-3"].map(String::from).into_iter().collect());

    // .env makes "single" the profile of a plain `docker compose up`.
    let dotenv = read(".env");
    assert!(
        dotenv.lines().any(|l| l.trim() == "COMPOSE_PROFILES=single"),
        ".env must set COMPOSE_PROFILES=single"
    );

    for (k, svc) in &all {
        for (target, _, required) in depends_on(svc) {
            if !profiles(service(&all, &target)).is_empty() {
                assert!(!required, "service {} depends on {target} of a profile: it needs required: false", name(k));
            }
        }
    }
    for s in SERVICES {
        let deps: BTreeSet<String> = depends_on(service(&all, s)).into_iter().map(|d| d.0).collect();
        for kafka in ["kafka", "kafka-1", "kafka-2", "kafka-3", "mariadb", "registry"] {
            assert!(deps.contains(kafka), "{s} must wait for {kafka}");
        }
    }

    // The services' bootstrap address is kafka:9092: the single node's name, and kafka-1's alias.
    for s in SERVICES {
        let cfg = read(&format!("deploy/config/{s}.toml"));
        assert!(cfg.contains("\"bootstrap.servers\" = \"kafka:9092\""), "deploy/config/{s}.toml must bootstrap from kafka:9092");
    }
    let aliases = &service(&all, "kafka-1")["networks"]["default"]["aliases"];
    assert!(
        aliases.as_sequence().is_some_and(|a| a.iter().any(|x| x == "kafka")),
        "kafka-1 must answer to the name kafka in the cluster profile"
    );

    // Three voters, replication factor 3, min.insync.replicas 2 on every cluster node.
    let mut ids = BTreeSet::new();
    for n in ["kafka-1", "kafka-2", "kafka-3"] {
        let svc = service(&all, n);
        let get = |key: &str| env_value(svc, key).unwrap_or_else(|| panic!("{n} does not set {key}"));
        assert_eq!(get("KAFKA_CONTROLLER_QUORUM_VOTERS"), "1@kafka-1:9093,2@kafka-2:9093,3@kafka-3:9093");
        for key in ["KAFKA_DEFAULT_REPLICATION_FACTOR", "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR", "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR"] {
            assert_eq!(get(key), "3", "{n}: {key}");
        }
        for key in ["KAFKA_MIN_INSYNC_REPLICAS", "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR"] {
            assert_eq!(get(key), "2", "{n}: {key}");
        }
        ids.insert(get("KAFKA_NODE_ID"));
        assert!(get("KAFKA_ADVERTISED_LISTENERS").contains(&format!("PLAINTEXT://{n}:9092")), "{n} advertises itself");
        assert!(!get("CLUSTER_ID").is_empty());
    }
    assert_eq!(ids.len(), 3, "cluster node ids must differ");
    let single = service(&all, "kafka");
    assert_eq!(env_value(single, "KAFKA_CONTROLLER_QUORUM_VOTERS").as_deref(), Some("1@kafka:9093"));
    assert_eq!(env_value(single, "KAFKA_DEFAULT_REPLICATION_FACTOR").as_deref(), Some("1"));
}

/// `name:tag` pinned to a version: a tag with a digit, never `latest`, or a digest.
fn assert_pinned(image: &str, whose: &str) {
    if image.contains("@sha256:") {
        return;
    }
    let last = image.rsplit('/').next().unwrap_or(image);
    let tag = last.split_once(':').map(|(_, t)| t).unwrap_or_else(|| panic!("{whose}: image {image:?} has no tag"));
    assert!(tag != "latest" && tag.chars().any(|c| c.is_ascii_digit()), "{whose}: image {image:?} is not pinned to a version");
}

#[test]
fn every_image_is_pinned() {
    let all = services();
    for (k, svc) in &all {
        let n = name(k);
        let image = svc["image"].as_str().unwrap_or_else(|| panic!("service {n} names no image (a built one needs a tag too)"));
        assert_pinned(image, &format!("service {n}"));
    }
    let dockerfile = read("Dockerfile");
    let froms: Vec<&str> = dockerfile
        .lines()
        .filter_map(|l| l.trim().strip_prefix("FROM "))
        .map(|l| l.split_whitespace().next().expect("FROM image"))
        .collect();
    assert!(froms.len() >= 2, "the Dockerfile has a build and a runtime stage");
    for image in froms {
        assert_pinned(image, "Dockerfile");
    }
}

/// The binlog flags of the local stack's mariadbd (stack/up), which the source requires.
fn stack_binlog_flags() -> Vec<String> {
    let up = read("stack/up");
    let flags: Vec<String> = up
        .split_whitespace()
        .map(|w| w.trim_matches(|c| c == '\\' || c == '"'))
        .filter(|w| {
            ["--log-bin", "--binlog-", "--gtid-", "--server-id=", "--character-set-server="].iter().any(|p| w.starts_with(p))
        })
        .map(str::to_string)
        .collect();
    for needed in ["--binlog-format=ROW", "--binlog-row-image=FULL", "--binlog-row-metadata=FULL", "--log-bin-compress=OFF"] {
        assert!(flags.iter().any(|f| f == needed), "stack/up no longer starts MariaDB with {needed}; found {flags:?}");
    }
    flags
}

#[test]
fn mariadb_runs_with_the_binlog_flags_and_the_init_scripts() {
    let all = services();
    let mariadb = service(&all, "mariadb");
    let image = mariadb["image"].as_str().expect("image");
    let version = image.rsplit_once(':').expect("tag").1;
    assert!(version.starts_with("11."), "MariaDB 11 is the compose database, not {image}");
    let cmd = command(mariadb);
    for flag in stack_binlog_flags() {
        assert!(cmd.contains(&flag), "the mariadb command lacks {flag} (stack/up uses it); command: {cmd:?}");
    }
    let volumes: Vec<String> = mariadb["volumes"].as_sequence().expect("volumes").iter().map(name).collect();
    assert!(
        volumes.iter().any(|v| v.starts_with("./sql:/docker-entrypoint-initdb.d")),
        "sql/ must be mounted as init scripts: {volumes:?}"
    );
}

#[test]
fn mounted_files_exist_in_the_repo() {
    let all = services();
    let mut checked = 0;
    for (k, svc) in &all {
        for v in svc["volumes"].as_sequence().into_iter().flatten() {
            let v = v.as_str().unwrap_or_else(|| panic!("service {}: use the short volume syntax", name(k)));
            let source = v.split(':').next().expect("volume source");
            if source.starts_with("./") {
                let path = repo().join(source);
                assert!(path.exists(), "service {} mounts {source}, which does not exist in the repository", name(k));
                checked += 1;
            }
        }
        // Config files named on the command line are mounted.
        let cmd = command(svc);
        if let Some(i) = cmd.iter().position(|w| w == "--config") {
            let target = &cmd[i + 1];
            let mounted = svc["volumes"]
                .as_sequence()
                .into_iter()
                .flatten()
                .filter_map(Yaml::as_str)
                .any(|v| v.split(':').nth(1) == Some(target.as_str()));
            assert!(mounted, "service {} reads {target}, which no volume mounts", name(k));
        }
    }
    assert!(checked >= 6, "expected the sql/, config, Prometheus and Grafana mounts, found {checked}");
}

/// Prometheus scrapes each service at the port of `http.listen` in its config; the compose
/// healthcheck and published port use it too; the local config has the same jobs on loopback.
#[test]
fn prometheus_targets_match_the_services_ports() {
    let all = services();
    let compose_jobs = prometheus_jobs("deploy/prometheus/prometheus.yml");
    let local_jobs = prometheus_jobs("deploy/prometheus/prometheus-local.yml");
    for s in SERVICES {
        let port = http_port(s);
        let job = |jobs: &[(String, Vec<String>)]| {
            jobs.iter().find(|(j, _)| j == s).map(|(_, t)| t.clone()).unwrap_or_else(|| panic!("no Prometheus job {s}"))
        };
        assert_eq!(job(&compose_jobs), vec![format!("{s}:{port}")], "deploy/prometheus/prometheus.yml job {s}");
        assert_eq!(job(&local_jobs), vec![format!("127.0.0.1:{port}")], "deploy/prometheus/prometheus-local.yml job {s}");
        let svc = service(&all, s);
        let health = format!("{:?}", svc["healthcheck"]["test"]);
        assert!(health.contains(&format!(":{port}/")), "{s} healthcheck must use port {port}: {health}");
        let published: Vec<String> = svc["ports"].as_sequence().into_iter().flatten().map(name).collect();
        assert!(
            published.iter().any(|p| port_of(p) == Some(port)),
            "{s} must publish its HTTP port {port}: {published:?}"
        );
    }
    assert_eq!(compose_jobs.len(), SERVICES.len(), "one job per service");
    let mounted = format!("{:?}", service(&all, "prometheus")["volumes"]);
    assert!(mounted.contains("./deploy/prometheus/prometheus.yml:/etc/prometheus/prometheus.yml"), "{mounted}");
    // Prometheus itself accepts both files.
    for f in ["deploy/prometheus/prometheus.yml", "deploy/prometheus/prometheus-local.yml"] {
        let out = promtool(&["check", "config", &repo().join(f).to_string_lossy()]);
        assert!(out.status.success(), "promtool check config {f}:\n{}{}", text(&out.stdout), text(&out.stderr));
    }
}

fn promtool(args: &[&str]) -> std::process::Output {
    Command::new("promtool")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run promtool ({e}); install the Debian package prometheus"))
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Grafana gets the datasource and dashboards from files; every panel uses that datasource's
/// uid and every query parses as PromQL.
#[test]
fn grafana_provisioning_and_dashboard_queries() {
    let all = services();
    let ds = yaml("deploy/grafana/provisioning/datasources/prometheus.yml");
    let source = &ds["datasources"][0];
    let uid = source["uid"].as_str().expect("the datasource has a fixed uid");
    assert_eq!(source["type"], "prometheus");
    assert_eq!(source["url"], "http://prometheus:9090", "Grafana reaches Prometheus by its compose name");

    let providers = yaml("deploy/grafana/provisioning/dashboards/cdc.yml");
    let path = providers["providers"][0]["options"]["path"].as_str().expect("provider path");
    let mounts: Vec<String> = service(&all, "grafana")["volumes"].as_sequence().expect("volumes").iter().map(name).collect();
    assert!(mounts.iter().any(|m| m.starts_with(&format!("./dashboards:{path}"))), "dashboards/ must be mounted at {path}: {mounts:?}");
    assert!(mounts.iter().any(|m| m.starts_with("./deploy/grafana/provisioning:/etc/grafana/provisioning")), "{mounts:?}");

    let titles: Vec<String> =
        ops_support::dashboards().iter().map(|(_, d)| d["title"].as_str().unwrap_or("").to_string()).collect();
    assert!(titles.iter().any(|t| t == "CDC pipeline"), "dashboards: {titles:?}");

    let queries = panel_queries();
    assert!(queries.len() >= 15, "only {} queries in the dashboards", queries.len());
    let mut rules = String::from("groups:\n  - name: dashboards\n    rules:\n");
    for (i, q) in queries.iter().enumerate() {
        assert_eq!(q.datasource_uid.as_deref(), Some(uid), "{q}: datasource uid");
        assert!(!q.expr.trim().is_empty(), "{q}: empty expression");
        rules.push_str(&format!("      - record: panel_query_{i}\n        expr: {}\n", serde_json::to_string(&q.promql("1m")).expect("json")));
    }
    let file = std::env::temp_dir().join(format!("cdc-ops-dashboard-rules-{}.yml", std::process::id()));
    std::fs::write(&file, &rules).expect("write rules");
    let out = promtool(&["check", "rules", &file.to_string_lossy()]);
    let _ = std::fs::remove_file(&file);
    if !out.status.success() {
        let report = text(&out.stdout) + &text(&out.stderr);
        let named: Vec<String> = queries
            .iter()
            .enumerate()
            .filter(|(i, _)| report.contains(&format!("panel_query_{i}\"")) || report.contains(&format!("panel_query_{i} ")))
            .map(|(_, q)| q.to_string())
            .collect();
        panic!("dashboard queries that do not parse: {named:?}\npromtool: {report}");
    }
}

/// The Dockerfile builds with the release command the docs give, installs what it built, and
/// runs as a non-root user.
#[test]
fn dockerfile_builds_with_the_documented_command() {
    let dockerfile = read("Dockerfile");
    let build_line = |text: &str| -> Vec<String> {
        text.lines()
            .filter_map(|l| l.find("cargo build --release").map(|i| l[i..].trim()))
            .map(|l| l.trim_end_matches(['\\', '`']).split_whitespace().collect::<Vec<_>>().join(" "))
            .map(|l| l.split(" &&").next().unwrap_or(&l).to_string())
            .collect()
    };
    let built = build_line(&dockerfile);
    assert_eq!(built.len(), 1, "one release build in the Dockerfile: {built:?}");
    let cmd = &built[0];
    let mut documented = Vec::new();
    for doc in ["README.md", "docs/operations.md"] {
        documented.extend(build_line(&read(doc)).into_iter().map(|l| (doc, l)));
    }
    assert!(!documented.is_empty(), "neither README.md nor docs/operations.md gives the release build command");
    for (doc, l) in &documented {
        assert_eq!(l, cmd, "{doc} documents a different release build than the Dockerfile");
    }
    for s in SERVICES {
        assert!(cmd.contains(&format!("-p {s}")), "the Dockerfile's build must build {s}: {cmd}");
        assert!(dockerfile.contains(&format!("target/release/{s}")), "the Dockerfile must install target/release/{s}");
    }
    assert!(cmd.contains("--locked"), "the release build must use Cargo.lock: {cmd}");
    let user = dockerfile
        .lines()
        .rev()
        .find_map(|l| l.trim().strip_prefix("USER "))
        .expect("the runtime stage sets USER");
    assert!(!matches!(user.split(':').next(), Some("root" | "0")), "the runtime user must not be root: {user}");
}

/// Runs `<binary> check --config deploy/config/<binary>.toml` with extra environment.
fn check(binary: &str, env: &[(&str, String)]) -> (Option<i32>, String) {
    let path = cdc_tests::process::binary(binary);
    let mut cmd = Command::new(path);
    cmd.arg("check").arg("--config").arg(repo().join(format!("deploy/config/{binary}.toml")));
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap_or_else(|e| panic!("cannot run {binary}: {e}"));
    (out.status.code(), text(&out.stdout) + &text(&out.stderr))
}

/// The compose configs load in the real binaries: as they are (no config error; the compose host
/// names do not resolve here, so only the connection checks fail), and with the addresses of
/// the local stack (and, for the sink, topics of its own) put in by environment variables,
/// where the whole `check` passes.
#[tokio::test]
async fn deploy_configs_load_in_the_binaries() {
    let stack = cdc_tests::Stack::from_env();
    for s in SERVICES {
        let (code, output) = check(s, &[]);
        assert_ne!(code, Some(2), "deploy/config/{s}.toml is rejected by {s}:\n{output}");
        assert_ne!(code, None, "{s} check was killed:\n{output}");
    }

    let db = |database: &str| format!("jdbc:mysql://{}:{}/{database}", stack.mariadb_host, stack.mariadb_port);
    let source_env = [
        ("CDC_SOURCE_CONNECTION_URL", db("mydb")),
        ("CDC_SOURCE_KAFKA_BOOTSTRAP_SERVERS", stack.kafka_bootstrap.clone()),
        ("CDC_SOURCE_SCHEMA_REGISTRY_URL", stack.registry_url.clone()),
        // Not the id of a running source, which the preflight would refuse.
        ("CDC_SOURCE_SERVER_ID", (20_000 + std::process::id() % 10_000).to_string()),
    ];
    let (code, output) = check("cdc-source", &source_env);
    assert_eq!(code, Some(0), "cdc-source check with deploy/config/cdc-source.toml against the local stack:\n{output}");

    // Topics of this test's own. In compose the sink starts together with the source, before
    // the source has created its topics: the check passes and notes that they do not exist yet.
    let topics = ["users", "orders"].map(|t| cdc_tests::unique_name(&format!("ops_check_{t}")));
    let sink_env = [
        ("CDC_SINK_TOPICS", topics.join(",")),
        ("CDC_SINK_CONNECTION_URL", db("mirror")),
        ("CDC_SINK_KAFKA_BOOTSTRAP_SERVERS", stack.kafka_bootstrap.clone()),
        ("CDC_SINK_SCHEMA_REGISTRY_URL", stack.registry_url.clone()),
    ];
    let (code, output) = check("jdbc-sink", &sink_env);
    assert_eq!(
        code,
        Some(0),
        "jdbc-sink check with deploy/config/jdbc-sink.toml against the local stack, topics not created yet:\n{output}"
    );
    assert!(
        output.contains("note  Kafka") && topics.iter().all(|t| output.contains(t.as_str())),
        "the check names the topics that do not exist yet:\n{output}"
    );

    ops_support::create_topics(&stack.kafka_bootstrap, &topics).await;
    // The broker's metadata may trail the creation briefly.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let (code, output) = loop {
        let (code, output) = check("jdbc-sink", &sink_env);
        if output.contains("2 matching topic(s)") || std::time::Instant::now() > deadline {
            break (code, output);
        }
        std::thread::sleep(std::time::Duration::from_millis(500));
    };
    assert_eq!(code, Some(0), "jdbc-sink check with deploy/config/jdbc-sink.toml against the local stack:\n{output}");
    assert!(
        output.contains("2 matching topic(s)") && !output.contains("note "),
        "once the topics exist there is nothing to note:\n{output}"
    );
}

/// Cargo loads every workspace member before it builds one, so a member folder that
/// `.dockerignore` leaves out of the build context fails `docker build` at its first step.
#[test]
fn every_workspace_member_is_in_the_docker_build_context() {
    let manifest: toml::Value = toml::from_str(&read("Cargo.toml")).expect("Cargo.toml parses");
    let members: Vec<String> = manifest["workspace"]["members"]
        .as_array()
        .expect("workspace members")
        .iter()
        .map(|m| m.as_str().expect("member path").trim_end_matches('/').to_string())
        .collect();
    let ignored: Vec<String> = read(".dockerignore")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| l.trim_end_matches('/').to_string())
        .collect();
    for m in &members {
        assert!(!ignored.contains(m), "workspace member {m}/ is excluded by .dockerignore, so `docker build` cannot load the workspace");
    }
}
