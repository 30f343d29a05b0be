//! The Kafka Connect REST shapes both services serve, against the real stack:
//! - a running cdc-source and jdbc-sink answer `GET /connectors`, `/connectors/<name>/status`
//!   (`RUNNING`, type `source` / `sink`, `worker_id` = the HTTP address) and `/config` with every
//!   password masked (the real one appears nowhere in the body, also not inside the URL);
//!   another name is Connect's 404, a write is a 405;
//! - a definite error leaves the service serving `FAILED` with the error as `trace` for
//!   `http.failed.linger.ms`: a jdbc-sink with `errors.tolerance=none` fed a poison record
//!   (SIGTERM then ends the wait, exit 1), and a cdc-source whose registry does not answer
//!   (exits 1 by itself after the wait).

use std::time::{Duration, Instant};

use cdc_tests::pipeline::PipelineSetup;
use cdc_tests::process::{eventually, Service};
use cdc_tests::sink::{free_port, producer, send, SinkCase};
use cdc_tests::source::SourceSetup;
use cdc_tests::unique_name;
use mysql_async::prelude::Queryable;
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(60);

/// `method path` on `base`: status code and body.
async fn call(method: reqwest::Method, base: &str, path: &str) -> (u16, String) {
    match reqwest::Client::new().request(method, format!("{base}{path}")).send().await {
        Ok(r) => (r.status().as_u16(), r.text().await.unwrap_or_default()),
        Err(_) => (0, String::new()),
    }
}

async fn get(base: &str, path: &str) -> (u16, String) {
    call(reqwest::Method::GET, base, path).await
}

fn json(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

/// Polls `/connectors/<name>/status` until the connector is in `state`; returns the document.
/// Fails at once when the service exits first.
async fn wait_state(base: &str, name: &str, state: &str, service: &mut Service) -> Value {
    let path = format!("/connectors/{name}/status");
    let started = Instant::now();
    loop {
        let (code, body) = get(base, &path).await;
        if code == 200 && json(&body)["connector"]["state"] == state {
            return json(&body);
        }
        if let Some(exit) = service.exited() {
            panic!(
                "{} exited ({exit}) before reporting {state} at {path}; last answer {code} {body}\nlog:\n{}",
                service.name,
                service.log_text()
            );
        }
        assert!(
            started.elapsed() < WAIT,
            "{} never reported {state} at {path}; last answer {code} {body}\nlog:\n{}",
            service.name,
            service.log_text()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// What both services must answer while running; `password` must not appear in any body.
async fn check_running(base: &str, name: &str, kind: &str, password: &str, service: &mut Service) {
    let worker = base.trim_start_matches("http://");
    let status = wait_state(base, name, "RUNNING", service).await;
    assert_eq!(status["name"], name, "{status}");
    assert_eq!(status["type"], kind, "{status}");
    assert_eq!(status["connector"]["worker_id"], worker, "{status}");
    assert_eq!(status["tasks"][0]["id"], 0, "{status}");
    assert_eq!(status["tasks"][0]["state"], "RUNNING", "{status}");
    assert!(status["tasks"][0].get("trace").is_none(), "{status}");

    let (code, body) = get(base, "/connectors").await;
    assert_eq!((code, json(&body)), (200, serde_json::json!([name])));
    let (code, body) = get(base, "/connectors?expand=status").await;
    assert_eq!(code, 200);
    assert_eq!(json(&body)[name]["status"]["type"], kind, "{body}");

    let (code, body) = get(base, &format!("/connectors/{name}/config")).await;
    assert_eq!(code, 200, "{body}");
    assert!(!body.contains(password), "the password is shown by /config: {body}");
    let config = json(&body);
    assert_eq!(config["connection.password"], "[hidden]", "{body}");
    assert_eq!(config["name"], name, "{body}");
    assert!(config["connection.url"].as_str().is_some_and(|u| u.starts_with("jdbc:mysql://")), "{body}");
    assert!(config["kafka.bootstrap.servers"].is_string(), "{body}");

    let (code, body) = get(base, &format!("/connectors/{name}")).await;
    assert_eq!(code, 200);
    assert!(!body.contains(password), "{body}");
    assert_eq!(json(&body)["tasks"], serde_json::json!([{"connector": name, "task": 0}]));
    let (code, body) = get(base, "/connectors/my-source-connect/status").await;
    assert_eq!(
        (code, json(&body)),
        (404, serde_json::json!({"error_code": 404, "message": "Connector my-source-connect not found"}))
    );
    let (code, body) = call(reqwest::Method::PUT, base, &format!("/connectors/{name}/pause")).await;
    assert_eq!(code, 405, "{body}");
    assert!(json(&body)["message"].as_str().is_some_and(|m| m.contains("configured by its config file")), "{body}");
    for path in ["/status", "/metrics"] {
        let (_, body) = get(base, path).await;
        assert!(!body.contains(password), "{path} shows the password: {body}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn running_services_answer_connects_status_and_config_without_passwords() {
    let p = PipelineSetup::new("ops_connect").await;
    let stack = p.stack().clone();

    // The source as the stack's replication account; its HTTP port and the registry come from
    // the environment, so /config shows overrides too.
    let source_port = free_port();
    let source_base = format!("http://127.0.0.1:{source_port}");
    let source_listen = format!("127.0.0.1:{source_port}");
    let mut source = Service::start(
        "cdc-source",
        &p.source.tag,
        &p.source.config("avro", ""),
        "toml",
        &[],
        &[("CDC_SOURCE_HTTP_LISTEN", &source_listen)],
    );
    source.wait_for_log("streaming the binlog", WAIT);
    check_running(&source_base, &p.source.name, "source", &stack.source_password, &mut source).await;
    let (_, body) = get(&source_base, &format!("/connectors/{}/config", p.source.name)).await;
    assert_eq!(json(&body)["http.listen"], source_listen.as_str(), "{body}");

    // The sink as an account of its own with a password that is in the URL as well.
    let user = unique_name("ops_cs");
    let password = format!("Pw-{user}-not-shown");
    let mut root = p.mirror_stack().root_conn(None).await;
    root.query_drop(format!("CREATE USER '{user}'@'%' IDENTIFIED BY '{password}'")).await.expect("create user");
    root.query_drop(format!("GRANT ALL ON `{}`.* TO '{user}'@'%'", p.mirror)).await.expect("grant");
    let sink_port = free_port();
    let sink_base = format!("http://127.0.0.1:{sink_port}");
    let url = format!(
        "jdbc:mysql://{user}:{password}@{}:{}/{}?password={password}",
        stack.mariadb_host, stack.mariadb_port, p.mirror
    );
    let mut sink = Service::start(
        "jdbc-sink",
        &format!("{}-connect", p.mirror),
        &p.sink_config(sink_port, ""),
        "toml",
        &[],
        &[
            ("CDC_SINK_CONNECTION_URL", &url),
            ("CDC_SINK_CONNECTION_USER", &user),
            ("CDC_SINK_CONNECTION_PASSWORD", &password),
        ],
    );
    check_running(&sink_base, &p.sink_name, "sink", &password, &mut sink).await;
    let (_, body) = get(&sink_base, &format!("/connectors/{}/config", p.sink_name)).await;
    assert_eq!(json(&body)["connection.user"], user.as_str(), "{body}");

    // The sink really works with that account.
    p.exec(&["insert into users(user_id, pwd, name) values ('u1', 'p', 'connect')"]).await;
    p.wait_mirror(
        &format!("select name from `{}`", p.topic("users")),
        &[&[Some("connect")]],
        WAIT,
        &[&source, &sink],
    )
    .await;
    let _ = root.query_drop(format!("DROP USER '{user}'@'%'")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sink_stopped_by_a_poison_record_serves_failed_with_the_error() {
    let case = SinkCase::new("ops_cs_fail", 1).await;
    let name = format!("sink-{}", case.database);
    let base = format!("http://127.0.0.1:{}", case.http_port);
    let mut sink = case.start_sink(&case.toml("\"http.failed.linger.ms\" = 60000"), "toml", &[]);
    wait_state(&base, &name, "RUNNING", &mut sink).await;
    send(&producer(&case.stack.kafka_bootstrap), &case.topic, None, Some(b"{}"), Some(b"garbage")).await;

    let status = wait_state(&base, &name, "FAILED", &mut sink).await;
    let origin = format!("{}[0]@0", case.topic);
    for part in [&status["connector"], &status["tasks"][0]] {
        assert_eq!(part["state"], "FAILED", "{status}");
        let trace = part["trace"].as_str().unwrap_or_default();
        assert!(trace.contains(&origin) && trace.contains("cannot be applied"), "{status}");
    }
    assert_eq!(status["type"], "sink");
    let (code, body) = get(&base, &format!("/connectors/{name}/tasks/0/status")).await;
    assert_eq!((code, json(&body)["state"].clone()), (200, Value::from("FAILED")), "{body}");
    let (_, body) = get(&base, "/status").await;
    assert_eq!(json(&body)["state"], "failed", "{body}");
    assert_eq!(get(&base, "/ready").await.0, 503);
    assert!(sink.exited().is_none(), "the sink exited instead of serving FAILED:\n{}", sink.log_text());

    // SIGTERM ends the wait long before the 60 s, with the failure's exit code.
    let asked = Instant::now();
    assert_eq!(sink.terminate(Duration::from_secs(20)), Some(1), "{}", sink.log_text());
    assert!(asked.elapsed() < Duration::from_secs(20));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_without_its_registry_serves_failed_then_exits() {
    let setup = SourceSetup::new("ops_cs_src").await;
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let listen = format!("127.0.0.1:{port}");
    let registry = format!("http://127.0.0.1:{}/apis/ccompat/v7", free_port());
    let mut source = Service::start(
        "cdc-source",
        &setup.tag,
        &setup.config("avro", ""),
        "toml",
        &[],
        &[
            ("CDC_SOURCE_HTTP_LISTEN", &listen),
            ("CDC_SOURCE_SCHEMA_REGISTRY_URL", &registry),
            ("CDC_SOURCE_HTTP_FAILED_LINGER_MS", "4000"),
        ],
    );
    let status = wait_state(&base, &setup.name, "FAILED", &mut source).await;
    assert_eq!(status["type"], "source");
    let trace = status["tasks"][0]["trace"].as_str().unwrap_or_default();
    assert!(trace.contains("schema registry") && trace.contains(&registry), "{status}");
    assert_eq!(status["connector"]["trace"], status["tasks"][0]["trace"]);
    // After the linger the source exits by itself with the failure's exit code.
    let code = eventually(WAIT, "cdc-source to exit after the linger", || {
        let code = source.exited();
        async move { code }
    })
    .await;
    assert_eq!(code, 1, "{}", source.log_text());
    assert_eq!(get(&base, "/health").await.0, 0, "HTTP is down after the exit");
}
