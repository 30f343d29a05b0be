//! The operations endpoints each service serves:
//!
//! | path | answer |
//! |---|---|
//! | `/metrics` | the Prometheus registry in OpenMetrics text |
//! | `/health` | `200 ok` while the process runs |
//! | `/ready` | `200 ready` when [`ServiceStatus::ready`] says so, else `503 not ready` |
//! | `/status` | [`ServiceStatus::status`] as JSON (the service keeps secrets out of it) |
//!
//! The server stops when the shutdown token is cancelled.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use prometheus_client::registry::Registry;
use tokio_util::sync::CancellationToken;

/// What a service tells the HTTP endpoints about itself.
pub trait ServiceStatus: Send + Sync + 'static {
    /// Connected and caught up enough to serve (drives `/ready`).
    fn ready(&self) -> bool;
    /// The `/status` document: state, positions, lag, last error. Never passwords.
    fn status(&self) -> serde_json::Value;
}

/// A running HTTP server.
#[derive(Debug)]
pub struct HttpServer {
    /// The bound address (useful with port 0).
    pub local_addr: SocketAddr,
    pub task: tokio::task::JoinHandle<std::io::Result<()>>,
}

#[derive(Clone)]
struct AppState {
    registry: Arc<Registry>,
    status: Arc<dyn ServiceStatus>,
}

/// Binds `listen` (e.g. `127.0.0.1:18084`, or port 0 for any) and serves until `shutdown`.
pub async fn serve_http(
    listen: &str,
    registry: Arc<Registry>,
    status: Arc<dyn ServiceStatus>,
    shutdown: CancellationToken,
) -> std::io::Result<HttpServer> {
    let listener = tokio::net::TcpListener::bind(listen).await.map_err(|e| {
        std::io::Error::new(
            e.kind(),
            format!("cannot listen on {listen} for HTTP: {e}; set http.listen to a free address"),
        )
    })?;
    let local_addr = listener.local_addr()?;
    let app = Router::new()
        .route("/metrics", get(metrics))
        .route("/health", get(|| async { "ok" }))
        .route("/ready", get(ready))
        .route("/status", get(status_doc))
        .with_state(AppState { registry, status });
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
