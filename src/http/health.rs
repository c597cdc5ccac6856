//! `/-/ready` and `POST /-/reload`: whether the daemon does its job, and asking it to
//! re-read its files. (`/-/healthy` is a constant answer in the router.)

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::{AppState, Daemon, Unready, error};

pub(super) async fn ready<D: Daemon>(State(s): State<AppState<D>>) -> Response {
    // State that cannot be committed is kept in memory and nothing is sent for it: the
    // daemon is not doing its job until the store accepts commits again.
    match s.readiness() {
        Err(Unready::Starting) => error(StatusCode::SERVICE_UNAVAILABLE, "starting"),
        Err(Unready::StoreFailing(e)) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("the state store refuses commits (state is kept and retried): {e}"),
        ),
        Ok(()) => "Ready\n".into_response(),
    }
}

pub(super) async fn reload<D: Daemon>(State(s): State<AppState<D>>) -> Response {
    match s.reload().await {
        Some(Ok(())) => axum::Json(json!({ "status": "success" })).into_response(),
        Some(Err(e)) => error(StatusCode::BAD_REQUEST, e),
        None => error(StatusCode::SERVICE_UNAVAILABLE, "shutting down"),
    }
}
