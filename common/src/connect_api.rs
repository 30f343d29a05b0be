//! The read-only part of Kafka Connect's REST API, for the one connector each service is.
//!
//! Users of the Kafka Connect JDBC tutorial check a connector with
//! `curl localhost:8083/connectors/<name>/status | jq`. Each service answers the same requests,
//! with the shapes of Kafka Connect 4.x, for the connector named by its config's `name`:
//!
//! | request | answer |
//! |---|---|
//! | `GET /connectors` | `["<name>"]`; `?expand=status` and/or `?expand=info` give `{"<name>": {"status": …, "info": …}}` (unknown expansions are ignored, as Connect does) |
//! | `GET /connectors/<name>` | ConnectorInfo `{"name","config","tasks":[{"connector","task":0}],"type"}` |
//! | `GET /connectors/<name>/status` | ConnectorStateInfo `{"name","connector":{"state","worker_id","trace"?,"version"},"tasks":[{"id":0,…}],"type"}` |
//! | `GET /connectors/<name>/config` | the config as string key/values, secrets masked ([`mask_config`]) |
//! | `GET /connectors/<name>/tasks` | `[{"id":{"connector","task":0},"config":{…}}]` |
//! | `GET /connectors/<name>/tasks/0/status` | the task's state `{"id":0,"state","worker_id","trace"?,"version"}` |
//!
//! A service is one connector with one task (id 0); both carry the same state, which the service
//! maps from its own ([`ConnectorState`]). `trace` is present only when the state is `FAILED`
//! (Connect omits it when empty); it is the service's error text, not a Java stack trace.
//! `worker_id` is the HTTP address the service listens on.
//!
//! Errors use Connect's body `{"error_code": …, "message": …}`: another connector name is
//! `404 Connector <x> not found`; every request that would change something (POST, PUT, PATCH,
//! DELETE under `/connectors` or `/connector-plugins`: create, update, delete, pause, resume,
//! stop, restart, offsets) is `405`, because the service is configured by its file; other
//! Connect reads (`/connector-plugins`, `/connectors/<name>/topics`, `/offsets`, …) are `501`.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use axum::http::{Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;

use crate::http::ServiceStatus;

/// What a masked value shows, as Kafka Connect prints its `PASSWORD` config values.
pub const HIDDEN: &str = "[hidden]";

/// Connect's connector type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ConnectorType {
    Source,
    Sink,
}

/// The states of Connect's `AbstractStatus.State` that a REST client can see.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ConnectState {
    Unassigned,
    Running,
    Paused,
    Failed,
    Restarting,
    Stopped,
}

/// A connector's (and its task's) state, with the error text when it failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectorState {
    pub state: ConnectState,
    /// Shown only with [`ConnectState::Failed`], as Connect does.
    pub trace: Option<String>,
}

impl ConnectorState {
    pub fn new(state: ConnectState) -> Self {
        ConnectorState { state, trace: None }
    }

    /// `FAILED` with the error that stopped the service.
    pub fn failed(trace: impl Into<String>) -> Self {
        ConnectorState {
            state: ConnectState::Failed,
            trace: Some(trace.into()),
        }
    }

    /// A service's state in Connect's terms: `RUNNING` for the states in `running`, `FAILED`
    /// with `last_error` for `failed`, `UNASSIGNED` for any other (starting, stopped).
    pub fn of_service(state: &str, running: &[&str], last_error: Option<&str>) -> Self {
        match state {
            "failed" => ConnectorState::failed(last_error.unwrap_or("stopped by a definite error; see the log")),
            s if running.contains(&s) => ConnectorState::new(ConnectState::Running),
            _ => ConnectorState::new(ConnectState::Unassigned),
        }
    }

    fn shown_trace(&self) -> Option<&str> {
        match self.state {
            ConnectState::Failed => self.trace.as_deref().filter(|t| !t.is_empty()),
            _ => None,
        }
    }
}

/// The connector a service is: fixed at start.
#[derive(Debug, Clone)]
pub struct Connector {
    pub name: String,
    pub kind: ConnectorType,
    /// The binary (`cdc-source`, `jdbc-sink`): `connector.class` when the config names none,
    /// and the subject of error messages.
    pub service: &'static str,
    /// The service's version, reported as the connector's and task's `version`.
    pub version: &'static str,
    config: BTreeMap<String, String>,
}

impl Connector {
    /// `config` is the given key/values (see `Loaded::connect_config`); it is masked again here,
    /// and gets `name` and, when missing, `connector.class` as Connect's config always has them.
    pub fn new(
        name: &str,
        kind: ConnectorType,
        service: &'static str,
        version: &'static str,
        config: &BTreeMap<String, String>,
    ) -> Self {
        let mut config = mask_config(config);
        config.insert("name".into(), name.to_string());
        config
            .entry("connector.class".into())
            .or_insert_with(|| service.to_string());
        Connector {
            name: name.to_string(),
            kind,
            service,
            version,
            config,
        }
    }

    /// The masked config as `GET /connectors/<name>/config` shows it.
    pub fn config(&self) -> &BTreeMap<String, String> {
        &self.config
    }

    /// `GET /connectors/<name>`: Connect's ConnectorInfo.
    pub fn info(&self) -> serde_json::Value {
        let info = Info {
            name: &self.name,
            config: &self.config,
            tasks: vec![self.task_id()],
            kind: self.kind,
        };
        serde_json::to_value(info).unwrap_or_default()
    }

    /// `GET /connectors/<name>/status`: Connect's ConnectorStateInfo.
    pub fn state_info(&self, state: &ConnectorState, worker_id: &str) -> serde_json::Value {
        let info = StateInfo {
            name: &self.name,
            connector: self.state(state, worker_id),
            tasks: vec![self.task_state(state, worker_id)],
            kind: self.kind,
        };
        serde_json::to_value(info).unwrap_or_default()
    }

    /// `GET /connectors/<name>/tasks/0/status`.
    pub fn task_state_info(&self, state: &ConnectorState, worker_id: &str) -> serde_json::Value {
        serde_json::to_value(self.task_state(state, worker_id)).unwrap_or_default()
    }

    /// `GET /connectors/<name>/tasks`: Connect's TaskInfo list.
    pub fn tasks(&self) -> serde_json::Value {
        let tasks = [TaskInfo {
            id: self.task_id(),
            config: &self.config,
        }];
        serde_json::to_value(tasks).unwrap_or_default()
    }

    /// `GET /connectors`, with the expansions asked for (`status`, `info`; others ignored).
    pub fn list(&self, expand: &[&str], state: &ConnectorState, worker_id: &str) -> serde_json::Value {
        let mut expanded = serde_json::Map::new();
        for what in expand {
            match *what {
                "status" => {
                    expanded.insert("status".into(), self.state_info(state, worker_id));
                }
                "info" => {
                    expanded.insert("info".into(), self.info());
                }
                _ => {}
            }
        }
        if expanded.is_empty() {
            serde_json::json!([self.name])
        } else {
            serde_json::json!({ &self.name: expanded })
        }
    }

    fn task_id(&self) -> TaskId<'_> {
        TaskId {
            connector: &self.name,
            task: 0,
        }
    }

    fn state<'a>(&'a self, state: &'a ConnectorState, worker_id: &'a str) -> AbstractState<'a> {
        AbstractState {
            state: state.state,
            worker_id,
            trace: state.shown_trace(),
            version: self.version,
        }
    }

    fn task_state<'a>(&'a self, state: &'a ConnectorState, worker_id: &'a str) -> TaskState<'a> {
        TaskState {
            id: 0,
            state: self.state(state, worker_id),
        }
    }
}

#[derive(Serialize)]
struct Info<'a> {
    name: &'a str,
    config: &'a BTreeMap<String, String>,
    tasks: Vec<TaskId<'a>>,
    #[serde(rename = "type")]
    kind: ConnectorType,
}

#[derive(Serialize)]
struct TaskId<'a> {
    connector: &'a str,
    task: u32,
}

#[derive(Serialize)]
struct TaskInfo<'a> {
    id: TaskId<'a>,
    config: &'a BTreeMap<String, String>,
}

#[derive(Serialize)]
struct StateInfo<'a> {
    name: &'a str,
    connector: AbstractState<'a>,
    tasks: Vec<TaskState<'a>>,
    #[serde(rename = "type")]
    kind: ConnectorType,
}

#[derive(Serialize)]
struct AbstractState<'a> {
    state: ConnectState,
    worker_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    trace: Option<&'a str>,
    version: &'a str,
}

#[derive(Serialize)]
struct TaskState<'a> {
    id: u32,
    #[serde(flatten)]
    state: AbstractState<'a>,
}

/// Connect's error body.
fn error(code: StatusCode, message: String) -> Response {
    let body = serde_json::json!({ "error_code": code.as_u16(), "message": message });
    (code, Json(body)).into_response()
}

fn not_found(name: &str) -> Response {
    error(StatusCode::NOT_FOUND, format!("Connector {name} not found"))
}

/// Whether a config key holds a credential: its name mentions a password, secret, token,
/// credential, JAAS config, basic-auth `user.info`, key store or keytab, or has a `key` part
/// after the first (`ssl.key.pem`, `….private.key.file`; not `key.converter`).
pub fn is_secret_key(key: &str) -> bool {
    const WORDS: &[&str] = &[
        "password", "passwd", "secret", "token", "credential", "jaas", "user.info", "userinfo",
        "keystore", "keytab",
    ];
    let key = key.to_ascii_lowercase();
    WORDS.iter().any(|w| key.contains(w)) || key.split(['.', '_', '-']).skip(1).any(|part| part == "key")
}

/// A value with the credentials inside URLs masked: the password of `scheme://user:pw@host` and
/// query parameters such as `?password=`.
pub fn mask_url_credentials(value: &str) -> String {
    let Some(scheme_end) = value.find("://").map(|at| at + 3) else {
        return value.to_string();
    };
    let (head, rest) = value.split_at(scheme_end);
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let authority = match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{user}:{HIDDEN}@{host}"),
            None => authority.to_string(),
        },
        None => authority.to_string(),
    };
    let tail = match tail.split_once('?') {
        Some((path, query)) => {
            let pairs: Vec<String> = query
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some((k, _)) if is_secret_key(k) => format!("{k}={HIDDEN}"),
                    _ => pair.to_string(),
                })
                .collect();
            format!("{path}?{}", pairs.join("&"))
        }
        None => tail.to_string(),
    };
    format!("{head}{authority}{tail}")
}

/// The config with every credential masked: values of [secret keys](is_secret_key) become
/// [`HIDDEN`], credentials inside URLs too ([`mask_url_credentials`]).
pub fn mask_config(config: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    config
        .iter()
        .map(|(k, v)| {
            let shown = if is_secret_key(k) {
                HIDDEN.to_string()
            } else {
                mask_url_credentials(v)
            };
            (k.clone(), shown)
        })
        .collect()
}

/// The state the Connect routes read.
#[derive(Clone)]
pub(crate) struct Api {
    pub(crate) connector: Arc<Connector>,
    pub(crate) status: Arc<dyn ServiceStatus>,
    pub(crate) worker_id: Arc<str>,
}

impl Api {
    fn known(&self, name: &str) -> bool {
        name == self.connector.name
    }
}

/// The Connect routes, with a fallback for every other path (Connect errors under
/// `/connectors` and `/connector-plugins`, a plain 404 elsewhere).
pub(crate) fn router(api: Api) -> Router {
    Router::new()
        .route("/connectors", get(list).fallback(not_by_rest))
        .route("/connectors/{name}", get(info).fallback(not_by_rest))
        .route("/connectors/{name}/status", get(status).fallback(not_by_rest))
        .route("/connectors/{name}/config", get(config).fallback(not_by_rest))
        .route("/connectors/{name}/tasks", get(tasks).fallback(not_by_rest))
        .route(
            "/connectors/{name}/tasks/{task}/status",
            get(task_status).fallback(not_by_rest),
        )
        .fallback(not_by_rest)
        .with_state(api)
}

async fn list(State(api): State<Api>, RawQuery(query): RawQuery) -> Response {
    let query = query.unwrap_or_default();
    let expand: Vec<&str> = query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .filter(|(k, _)| *k == "expand")
        .map(|(_, v)| v)
        .collect();
    let state = api.status.connector_state();
    Json(api.connector.list(&expand, &state, &api.worker_id)).into_response()
}

async fn info(State(api): State<Api>, Path(name): Path<String>) -> Response {
    if !api.known(&name) {
        return not_found(&name);
    }
    Json(api.connector.info()).into_response()
}

async fn status(State(api): State<Api>, Path(name): Path<String>) -> Response {
    if !api.known(&name) {
        return not_found(&name);
    }
    let state = api.status.connector_state();
    Json(api.connector.state_info(&state, &api.worker_id)).into_response()
}

async fn config(State(api): State<Api>, Path(name): Path<String>) -> Response {
    if !api.known(&name) {
        return not_found(&name);
    }
    Json(api.connector.config()).into_response()
}

async fn tasks(State(api): State<Api>, Path(name): Path<String>) -> Response {
    if !api.known(&name) {
        return not_found(&name);
    }
    Json(api.connector.tasks()).into_response()
}

async fn task_status(State(api): State<Api>, Path((name, task)): Path<(String, String)>) -> Response {
    if !api.known(&name) {
        return not_found(&name);
    }
    if task != "0" {
        return error(
            StatusCode::NOT_FOUND,
            format!("Status for task {name}-{task} not found (the connector has one task, 0)"),
        );
    }
    let state = api.status.connector_state();
    Json(api.connector.task_state_info(&state, &api.worker_id)).into_response()
}

/// Everything the routes above do not serve.
async fn not_by_rest(State(api): State<Api>, method: Method, uri: Uri) -> Response {
    let path = uri.path();
    let connect_path = |root: &str| path == root || path.starts_with(&format!("{root}/"));
    if !connect_path("/connectors") && !connect_path("/connector-plugins") {
        return (StatusCode::NOT_FOUND, "not found").into_response();
    }
    let service = api.connector.service;
    if method != Method::GET && method != Method::HEAD {
        return error(
            StatusCode::METHOD_NOT_ALLOWED,
            format!(
                "{service} is configured by its config file, not through the Kafka Connect REST API: \
                 {method} {path} is not supported; change the file (or its environment overrides) \
                 and restart {service}"
            ),
        );
    }
    if let Some(name) = path.strip_prefix("/connectors/").and_then(|p| p.split('/').next()) {
        if !api.known(name) {
            return not_found(name);
        }
    }
    error(
        StatusCode::NOT_IMPLEMENTED,
        format!(
            "GET {path} is not served by {service}; it serves GET /connectors, /connectors/{name}, \
             /connectors/{name}/status, /config, /tasks and /tasks/0/status (and its own /status)",
            name = api.connector.name
        ),
    )
}

#[cfg(test)]
#[path = "connect_api_tests.rs"]
mod tests;
