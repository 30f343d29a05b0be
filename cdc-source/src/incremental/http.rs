//! `POST /signals`: a signal as JSON, `{"id": "…", "type": "execute-snapshot", "data": {…}}`
//! (`data` as an object or as JSON text, as the signal table's column holds it).
//!
//! | answer | when |
//! |---|---|
//! | `200 {"accepted": true, "message": …}` | the stream took the signal in; it is stored with the next Kafka commit (within `batch.max.ms`) |
//! | `400 {"accepted": false, "error": …}` | the request or the signal is malformed or names something this source cannot do |
//! | `503 {"accepted": false, "error": …}` | the source is not streaming (starting, in its initial snapshot, reconnecting) |

use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Json;
use serde_json::{json, Value};
use tokio::sync::{mpsc, oneshot};

use super::PostedSignal;
use crate::metrics::{SignalLabel, SourceMetrics};

/// How long a posted signal waits for the stream to take it.
const WAIT: Duration = Duration::from_secs(10);

#[derive(Clone)]
struct Posting {
    tx: mpsc::Sender<PostedSignal>,
    metrics: SourceMetrics,
}

/// The route, and the receiving end the stream reads the signals from.
pub fn routes(metrics: SourceMetrics) -> (cdc_common::HttpRoutes, mpsc::Receiver<PostedSignal>) {
    let (tx, rx) = mpsc::channel(16);
    let router = cdc_common::HttpRoutes::new().route("/signals", post(post_signal)).with_state(Posting { tx, metrics });
    (router, rx)
}

fn answer(code: StatusCode, accepted: bool, text: String) -> Response {
    let body = if accepted { json!({"accepted": true, "message": text}) } else { json!({"accepted": false, "error": text}) };
    (code, Json(body)).into_response()
}

async fn post_signal(State(p): State<Posting>, body: axum::body::Bytes) -> Response {
    let reject = |why: String| {
        p.metrics.signals.get_or_create(&SignalLabel { r#type: "other", outcome: "rejected" }).inc();
        tracing::warn!(reason = %why, "signal posted to /signals rejected");
        answer(StatusCode::BAD_REQUEST, false, why)
    };
    let doc: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => return reject(format!("the body is not JSON ({e}); post {{\"id\": \"…\", \"type\": \"execute-snapshot\", \"data\": {{\"data-collections\": [\"mydb.orders\"]}}}}")),
    };
    let Some(kind) = doc.get("type").and_then(Value::as_str) else {
        return reject("the body needs a `type` string (execute-snapshot, stop-snapshot, log)".into());
    };
    let id = match doc.get("id") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => format!("http-{}", std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis()).unwrap_or(0)),
    };
    let data = match doc.get("data") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(text)) => text.clone(),
        Some(other) => other.to_string(),
    };
    let (reply, answered) = oneshot::channel();
    let signal = PostedSignal { id, kind: kind.to_string(), data, reply };
    let not_streaming = || answer(StatusCode::SERVICE_UNAVAILABLE, false, "the source is not streaming now (starting, in its initial snapshot or reconnecting); post the signal again later".into());
    if tokio::time::timeout(WAIT, p.tx.send(signal)).await.map_or(true, |r| r.is_err()) {
        return not_streaming();
    }
    match tokio::time::timeout(WAIT, answered).await {
        Ok(Ok(Ok(message))) => answer(StatusCode::OK, true, message),
        Ok(Ok(Err(why))) => answer(StatusCode::BAD_REQUEST, false, why),
        _ => not_streaming(),
    }
}
