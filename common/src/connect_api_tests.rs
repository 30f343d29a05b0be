use std::io::{Read, Write};
use std::sync::{Arc, Mutex};

use serde_json::json;

use super::*;

fn given(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn connector() -> Connector {
    Connector::new(
        "my-source-connect",
        ConnectorType::Source,
        "cdc-source",
        "0.1.0",
        &given(&[
            ("connection.url", "jdbc:mysql://db:3306/mydb"),
            ("connection.password", "hunter2"),
        ]),
    )
}

#[test]
fn state_info_has_connects_shape() {
    let c = connector();
    let running = c.state_info(&ConnectorState::new(ConnectState::Running), "127.0.0.1:18083");
    assert_eq!(
        running,
        json!({
            "name": "my-source-connect",
            "connector": {"state": "RUNNING", "worker_id": "127.0.0.1:18083", "version": "0.1.0"},
            "tasks": [{"id": 0, "state": "RUNNING", "worker_id": "127.0.0.1:18083", "version": "0.1.0"}],
            "type": "source"
        })
    );
    let failed = c.state_info(&ConnectorState::failed("record t[0]@5 cannot be applied"), "w:1");
    assert_eq!(failed["connector"]["state"], "FAILED");
    assert_eq!(failed["connector"]["trace"], "record t[0]@5 cannot be applied");
    assert_eq!(failed["tasks"][0]["state"], "FAILED");
    assert_eq!(failed["tasks"][0]["trace"], "record t[0]@5 cannot be applied");
    assert_eq!(
        c.task_state_info(&ConnectorState::failed("x"), "w:1"),
        json!({"id": 0, "state": "FAILED", "worker_id": "w:1", "trace": "x", "version": "0.1.0"})
    );
}

#[test]
fn trace_only_when_failed() {
    let c = connector();
    let retrying = ConnectorState {
        state: ConnectState::Running,
        trace: Some("connection lost".into()),
    };
    let doc = c.state_info(&retrying, "w:1");
    assert!(doc["connector"].get("trace").is_none(), "{doc}");
    assert!(doc["tasks"][0].get("trace").is_none(), "{doc}");
    let doc = c.state_info(&ConnectorState::failed(""), "w:1");
    assert!(doc["connector"].get("trace").is_none(), "empty trace omitted as Connect does: {doc}");
    for (state, text) in [
        (ConnectState::Unassigned, "UNASSIGNED"),
        (ConnectState::Paused, "PAUSED"),
        (ConnectState::Restarting, "RESTARTING"),
        (ConnectState::Stopped, "STOPPED"),
    ] {
        assert_eq!(serde_json::to_value(state).unwrap(), text);
    }
    assert_eq!(serde_json::to_value(ConnectorType::Sink).unwrap(), "sink");
}

#[test]
fn info_tasks_and_list() {
    let c = connector();
    let info = c.info();
    assert_eq!(info["name"], "my-source-connect");
    assert_eq!(info["type"], "source");
    assert_eq!(info["tasks"], json!([{"connector": "my-source-connect", "task": 0}]));
    assert_eq!(info["config"]["name"], "my-source-connect");
    assert_eq!(info["config"]["connector.class"], "cdc-source");
    assert_eq!(info["config"]["connection.password"], HIDDEN);
    assert_eq!(
        c.tasks(),
        json!([{"id": {"connector": "my-source-connect", "task": 0}, "config": info["config"]}])
    );
    let running = ConnectorState::new(ConnectState::Running);
    assert_eq!(c.list(&[], &running, "w:1"), json!(["my-source-connect"]));
    assert_eq!(c.list(&["nonsense"], &running, "w:1"), json!(["my-source-connect"]));
    let both = c.list(&["status", "info"], &running, "w:1");
    assert_eq!(both["my-source-connect"]["status"], c.state_info(&running, "w:1"));
    assert_eq!(both["my-source-connect"]["info"], info);
    let status_only = c.list(&["status"], &running, "w:1");
    assert!(status_only["my-source-connect"].get("info").is_none());
}

#[test]
fn a_given_connector_class_is_kept() {
    let c = Connector::new(
        "s",
        ConnectorType::Sink,
        "jdbc-sink",
        "0.1.0",
        &given(&[("connector.class", "io.confluent.connect.jdbc.JdbcSinkConnector")]),
    );
    assert_eq!(c.config()["connector.class"], "io.confluent.connect.jdbc.JdbcSinkConnector");
}

#[test]
fn secrets_are_masked() {
    let config = given(&[
        ("connection.password", "pw1"),
        ("connection.user", "cdc"),
        ("connection.url", "jdbc:mysql://cdc:pw2@db:3306/mydb?user=cdc&password=pw3&useSSL=false"),
        ("kafka.sasl.password", "pw4"),
        ("kafka.sasl.username", "alice"),
        ("kafka.sasl.jaas.config", "PlainLoginModule required password=\"pw5\";"),
        ("kafka.ssl.key.pem", "-----BEGIN PRIVATE KEY-----pw6"),
        ("kafka.ssl.keystore.location", "/etc/ks"),
        ("kafka.sasl.oauthbearer.client.credentials.client.secret", "pw7"),
        ("basic.auth.user.info", "u:pw8"),
        ("value.converter.basic.auth.user.info", "u:pw9"),
        ("schema.registry.url", "https://u:pw10@registry:8081/apis/ccompat/v7"),
        ("key.converter", "io.confluent.connect.avro.AvroConverter"),
        ("topics", "my_topic_users"),
        ("CONNECTION.PASSWORD", "pw11"),
    ]);
    let masked = mask_config(&config);
    let text = serde_json::to_string(&masked).unwrap();
    for n in 1..=11 {
        assert!(!text.contains(&format!("pw{n}")), "pw{n} shown: {text}");
    }
    assert_eq!(masked["connection.password"], HIDDEN);
    assert_eq!(
        masked["connection.url"],
        "jdbc:mysql://cdc:[hidden]@db:3306/mydb?user=cdc&password=[hidden]&useSSL=false"
    );
    assert_eq!(masked["schema.registry.url"], "https://u:[hidden]@registry:8081/apis/ccompat/v7");
    assert_eq!(masked["connection.user"], "cdc");
    assert_eq!(masked["kafka.sasl.username"], "alice");
    assert_eq!(masked["key.converter"], "io.confluent.connect.avro.AvroConverter");
    assert_eq!(masked["topics"], "my_topic_users");
    assert_eq!(mask_config(&masked), masked, "masking twice changes nothing");
    assert_eq!(mask_url_credentials("127.0.0.1:9092"), "127.0.0.1:9092");
    assert_eq!(mask_url_credentials("mysql://cdc@db/x"), "mysql://cdc@db/x");
}

/// A status whose Connect state the test sets.
struct Fixed(Mutex<ConnectorState>);

impl ServiceStatus for Fixed {
    fn ready(&self) -> bool {
        true
    }
    fn status(&self) -> serde_json::Value {
        json!({})
    }
    fn connector_state(&self) -> ConnectorState {
        self.0.lock().unwrap().clone()
    }
}

/// One HTTP/1.1 request over a plain socket: status code and body.
async fn request(addr: std::net::SocketAddr, method: &str, path: &str) -> (u16, String) {
    let request = format!("{method} {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
    tokio::task::spawn_blocking(move || {
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        s.write_all(request.as_bytes()).unwrap();
        let mut answer = String::new();
        s.read_to_string(&mut answer).unwrap();
        let code = answer[9..12].parse().unwrap();
        let body = answer.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
        (code, body)
    })
    .await
    .unwrap()
}

fn body_json(body: &str) -> serde_json::Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

#[tokio::test]
async fn routes_answer_as_connect_does() {
    let status = Arc::new(Fixed(Mutex::new(ConnectorState::new(ConnectState::Running))));
    let stop = tokio_util::sync::CancellationToken::new();
    let http = crate::serve_http(
        "127.0.0.1:0",
        Arc::new(prometheus_client::registry::Registry::default()),
        status.clone(),
        connector(),
        axum::Router::new(),
        stop.clone(),
    )
    .await
    .unwrap();
    let addr = http.local_addr;
    let worker = addr.to_string();

    let (code, body) = request(addr, "GET", "/connectors").await;
    assert_eq!((code, body_json(&body)), (200, json!(["my-source-connect"])));
    let (code, body) = request(addr, "GET", "/connectors?expand=status&expand=info").await;
    assert_eq!(code, 200);
    let both = body_json(&body);
    assert_eq!(both["my-source-connect"]["status"]["connector"]["worker_id"], worker.as_str());
    assert_eq!(both["my-source-connect"]["info"]["type"], "source");

    let (code, body) = request(addr, "GET", "/connectors/my-source-connect/status").await;
    assert_eq!(code, 200);
    assert_eq!(body_json(&body)["tasks"][0]["state"], "RUNNING");
    *status.0.lock().unwrap() = ConnectorState::failed("boom");
    let (_, body) = request(addr, "GET", "/connectors/my-source-connect/status").await;
    assert_eq!(body_json(&body)["connector"]["trace"], "boom");
    let (code, body) = request(addr, "GET", "/connectors/my-source-connect/tasks/0/status").await;
    assert_eq!((code, body_json(&body)["state"].clone()), (200, json!("FAILED")));
    let (code, _) = request(addr, "GET", "/connectors/my-source-connect/tasks/1/status").await;
    assert_eq!(code, 404);

    let (code, body) = request(addr, "GET", "/connectors/my-source-connect/config").await;
    assert_eq!(code, 200);
    assert!(!body.contains("hunter2"), "{body}");
    assert_eq!(body_json(&body)["connection.password"], HIDDEN);
    let (code, body) = request(addr, "GET", "/connectors/my-source-connect").await;
    assert_eq!((code, body_json(&body)["tasks"][0]["task"].clone()), (200, json!(0)));
    let (code, _) = request(addr, "GET", "/connectors/my-source-connect/tasks").await;
    assert_eq!(code, 200);

    for path in ["/connectors/other/status", "/connectors/other", "/connectors/other/config", "/connectors/other/topics"] {
        let (code, body) = request(addr, "GET", path).await;
        assert_eq!(
            (code, body_json(&body)),
            (404, json!({"error_code": 404, "message": "Connector other not found"})),
            "{path}"
        );
    }
    for (method, path) in [
        ("POST", "/connectors"),
        ("PUT", "/connectors/my-source-connect/config"),
        ("DELETE", "/connectors/my-source-connect"),
        ("PUT", "/connectors/my-source-connect/pause"),
        ("PUT", "/connectors/my-source-connect/resume"),
        ("PUT", "/connectors/my-source-connect/stop"),
        ("POST", "/connectors/my-source-connect/restart"),
        ("POST", "/connectors/my-source-connect/tasks/0/restart"),
        ("PUT", "/connector-plugins/JdbcSourceConnector/config/validate"),
    ] {
        let (code, body) = request(addr, method, path).await;
        let doc = body_json(&body);
        assert_eq!((code, doc["error_code"].clone()), (405, json!(405)), "{method} {path}: {body}");
        let message = doc["message"].as_str().unwrap();
        assert!(message.contains("configured by its config file") && message.contains(path), "{message}");
    }
    for path in ["/connector-plugins", "/connectors/my-source-connect/topics", "/connectors/my-source-connect/offsets"] {
        let (code, body) = request(addr, "GET", path).await;
        assert_eq!((code, body_json(&body)["error_code"].clone()), (501, json!(501)), "{path}: {body}");
    }
    let (code, _) = request(addr, "GET", "/nothing").await;
    assert_eq!(code, 404);
    let (code, body) = request(addr, "GET", "/health").await;
    assert_eq!((code, body.as_str()), (200, "ok"));
    stop.cancel();
    http.task.await.unwrap().unwrap();
}
