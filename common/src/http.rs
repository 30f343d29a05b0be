//! The operations endpoints each service serves:
//!
//! | path | answer |
//! |---|---|
//! | `/metrics` | the Prometheus registry in OpenMetrics text |
//! | `/health` | `200 ok` while the process runs |
//! | `/ready` | `200 ready` when [`ServiceStatus::ready`] says so, else `503 not ready` |
//! | `/status` | [`ServiceStatus::status`] as JSON (the service keeps secrets out of it) |
//! | `/connectors…` | Kafka Connect's read-only REST shapes for the service's one connector ([`crate::connect_api`]) |
//!
//! The server stops when the shutdown token is cancelled. After a definite error a service calls
//! [`HttpServer::linger_after_failure`] before it exits, so that `FAILED` and the error can be
//! read over HTTP for a moment.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use prometheus_client::registry::Registry;
use tokio_util::sync::CancellationToken;

use crate::connect_api::{self, Connector, ConnectorState};

/// What a service tells the HTTP endpoints about itself.
pub trait ServiceStatus: Send + Sync + 'static {
    /// Connected and caught up enough to serve (drives `/ready`).
    fn ready(&self) -> bool;
    /// The `/status` document: state, positions, lag, last error. Never passwords.
    fn status(&self) -> serde_json::Value;
    /// The service's state in Kafka Connect's terms (drives `/connectors/<name>/status`).
    fn connector_state(&self) -> ConnectorState;
}

/// A running HTTP server.
#[derive(Debug)]
pub struct HttpServer {
    /// The bound address (useful with port 0).
    pub local_addr: SocketAddr,
    pub task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl HttpServer {
    /// After a definite error, keeps serving for `linger` (or until `shutdown`), so that
    /// `/status` and `/connectors/<name>/status` show the failure before the process exits.
    pub async fn linger_after_failure(&self, linger: Duration, shutdown: &CancellationToken) {
        if linger.is_zero() || shutdown.is_cancelled() {
            return;
        }
        tracing::info!(
            http = %self.local_addr,
            seconds = linger.as_secs_f64(),
            "serving the FAILED status over HTTP before exiting (http.failed.linger.ms; SIGTERM ends it)"
        );
        tokio::select! {
            _ = tokio::time::sleep(linger) => {}
            _ = shutdown.cancelled() => {}
        }
    }
}

#[derive(Clone)]
struct AppState {
    registry: Arc<Registry>,
    status: Arc<dyn ServiceStatus>,
}

/// Binds `listen` (e.g. `127.0.0.1:18084`, or port 0 for any) and serves until `shutdown`.
/// `connector` is what the Kafka Connect routes report; its `worker_id` is the bound address.
/// `extra` holds the service's own routes (the source's `POST /signals`).
pub async fn serve_http(
    listen: &str,
    registry: Arc<Registry>,
    status: Arc<dyn ServiceStatus>,
    connector: Connector,
    extra: Router,
    shutdown: CancellationToken,
) -> std::io::Result<HttpServer> {
    let listener = tokio::net::TcpListener::bind(listen).await.map_err(|e| {
        std::io::Error::new(
            e.kind(),
            format!("cannot listen on {listen} for HTTP: {e}; set http.listen to a free address"),
        )
    })?;
    let local_addr = listener.local_addr()?;
    let connect = connect_api::Api {
        connector: Arc::new(connector),
        status: status.clone(),
        worker_id: local_addr.to_string().into(),
    };
    let app = Router::new()
        .route("/metrics", get(metrics))
        .route("/health", get(|| async { "ok" }))
        .route("/ready", get(ready))
        .route("/status", get(status_doc))
        .with_state(AppState { registry, status })
        .merge(connect_api::router(connect))
        .merge(extra);
    let task = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move { shutdown.cancelled().await })
            .await
    });
    Ok(HttpServer { local_addr, task })
}

async fn metrics(State(state): State<AppState>) -> Response {
    let mut body = String::new();
    match prometheus_client::encoding::text::encode(&mut body, &state.registry) {
        Ok(()) => (
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            body,
        )
            .into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

async fn ready(State(state): State<AppState>) -> Response {
    if state.status.ready() {
        (StatusCode::OK, "ready").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready").into_response()
    }
}

async fn status_doc(State(state): State<AppState>) -> Response {
    axum::Json(state.status.status()).into_response()
}
