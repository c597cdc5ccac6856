//! The HTTP API: metrics, alerts, rules, history, value history, silences, the outbox,
//! push, reload, health, and the status page (static files under `page/` that read it).
//!
//! Owns request parsing, authentication of mutating endpoints (`api_token`), body limits
//! and timeouts, and the JSON shapes of docs/api.md. It reads the daemon through the
//! handle [`Daemon`] (never its state) and asks it to reload; it never evaluates rules, and writes the database only
//! to store silences (validated by `silence`) and to re-queue outbox entries.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use serde_json::json;

mod alerts;
pub mod handle;
mod health;
mod history;
mod metrics;
mod outbox;
mod page;
mod push;
mod rules;
mod silences;

pub use handle::{Daemon, Metrics, RuleStatus, Running, Unready};

use alerts::{ack_alert, alerts, unack_alert};
use health::{ready, reload};
use history::{history, series};
use metrics::metrics;
use outbox::{list_outbox, retry_outbox};
use page::{page_css, page_js, status_page};
use push::push;
use rules::rules;
use silences::{create_silence, expire_silence, list_silences};

/// How long any request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// The largest accepted silence body.
pub(super) const MAX_SILENCE_BODY: usize = 64 * 1024;

/// What every handler is given: the handle on the daemon.
type AppState<D> = Arc<D>;

/// The router of every endpoint, over the handle `daemon`.
pub fn router<D: Daemon>(daemon: Arc<D>) -> Router {
    let mutating = Router::new()
        .route("/api/v1/push", post(push::<D>))
        .route("/-/reload", post(reload::<D>))
        .route("/api/v1/silences", post(create_silence::<D>))
        .route("/api/v1/silences/{id}", delete(expire_silence::<D>))
        .route("/api/v1/outbox/{id}/retry", post(retry_outbox::<D>))
        .route(
            "/api/v1/alerts/{fingerprint}/ack",
            post(ack_alert::<D>).delete(unack_alert::<D>),
        )
        .route_layer(middleware::from_fn_with_state(Arc::clone(&daemon), require_token::<D>));
    Router::new()
        .route("/", get(status_page))
        .route("/page/page.js", get(page_js))
        .route("/page/page.css", get(page_css))
        .route("/metrics", get(metrics::<D>))
        .route("/api/v1/alerts", get(alerts::<D>))
        .route("/api/v1/rules", get(rules::<D>))
        .route("/api/v1/history", get(history::<D>))
        .route("/api/v1/series", get(series::<D>))
        .route("/api/v1/outbox", get(list_outbox::<D>))
        .route("/api/v1/silences", get(list_silences::<D>))
        .route("/-/healthy", get(|| async { "OK\n" }))
        .route("/-/ready", get(ready::<D>))
        .merge(mutating)
        .fallback(|| async { error(StatusCode::NOT_FOUND, "no such endpoint") })
        .layer(middleware::from_fn(timeout))
        .with_state(daemon)
}

/// `{"error": "..."}` with a status.
pub fn error(status: StatusCode, msg: impl Into<String>) -> Response {
    (status, axum::Json(json!({ "error": msg.into() }))).into_response()
}

async fn timeout(req: Request, next: Next) -> Response {
    match tokio::time::timeout(REQUEST_TIMEOUT, next.run(req)).await {
        Ok(r) => r,
        Err(_) => error(StatusCode::REQUEST_TIMEOUT, "request took too long"),
    }
}

async fn require_token<D: Daemon>(
    State(s): State<AppState<D>>,
    headers: HeaderMap,
    req: Request,
    next: Next,
) -> Response {
    let Some(token) = s
        .config()
        .api_token
        .as_ref()
        .map(|t| t.expose())
        .filter(|t| !t.is_empty())
    else {
        return next.run(req).await;
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    // Compare in constant time so response timing does not leak the token.
    let ok = given.is_some_and(|g| {
        g.len() == token.len() && g.bytes().zip(token.bytes()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
    });
    if ok {
        next.run(req).await
    } else {
        error(
            StatusCode::UNAUTHORIZED,
            "this endpoint needs `Authorization: Bearer <api_token>`",
        )
    }
}
