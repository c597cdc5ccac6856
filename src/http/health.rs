//! `/-/ready` and `POST /-/reload`: whether the daemon does its job, and asking it to
//! re-read its files. (`/-/healthy` is a constant answer in the router.)

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::{AppState, error};
use std::sync::atomic::Ordering;
use tokio::sync::oneshot;

pub(super) async fn ready(State(s): State<AppState>) -> Response {
    if !s.ready.load(Ordering::Relaxed) {
        return error(StatusCode::SERVICE_UNAVAILABLE, "starting");
    }
    // State that cannot be committed is kept in memory and nothing is sent for it: the
    // daemon is not doing its job until the store accepts commits again.
    let failing = s.store_error.lock().unwrap_or_else(|e| e.into_inner()).clone();
    match failing {
        Some(e) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("the state store refuses commits (state is kept and retried): {e}"),
        ),
        None => "Ready\n".into_response(),
    }
}

pub(super) async fn reload(State(s): State<AppState>) -> Response {
    let (tx, rx) = oneshot::channel();
    if s.reload_tx.send(Some(tx)).await.is_err() {
        return error(StatusCode::SERVICE_UNAVAILABLE, "shutting down");
    }
    match rx.await {
        Ok(Ok(())) => axum::Json(json!({ "status": "success" })).into_response(),
        Ok(Err(e)) => error(StatusCode::BAD_REQUEST, e),
        Err(_) => error(StatusCode::SERVICE_UNAVAILABLE, "shutting down"),
    }
}
