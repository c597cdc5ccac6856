//! `POST /api/v1/push`: samples pushed in exposition text or JSON, stored as the `push`
//! source, with what was refused and why.

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::{AppState, Daemon, error};
use crate::series::Refusal;

pub(super) async fn push<D: Daemon>(State(s): State<AppState<D>>, headers: HeaderMap, body: Body) -> Response {
    let push = &s.config().sources.push;
    if !push.enabled {
        return error(StatusCode::NOT_FOUND, "push is disabled (sources.push.enabled: false)");
    }
    let limit = usize::try_from(push.max_body.0).unwrap_or(usize::MAX);
    let bytes = match axum::body::to_bytes(body, limit).await {
        Ok(b) => b,
        Err(_) => {
            return error(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("body larger than max_body ({limit} bytes)"),
            );
        }
    };
    let ct = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
    match crate::sources::push::parse(ct, &bytes) {
        Ok(samples) => {
            let done = s.ingest("push", push.max_series, &samples, s.now());
            // Which samples were refused and why, so a client can tell a clock problem
            // (`future`), a replay (`out_of_order`) and a full budget apart.
            let reasons: serde_json::Map<String, Value> = Refusal::ALL
                .iter()
                .map(|&r| (r.as_str().to_string(), json!(done.refused_for(r))))
                .collect();
            axum::Json(json!({
                "accepted": done.accepted,
                "refused": done.refused_total(),
                "refused_by_reason": reasons,
            }))
            .into_response()
        }
        Err(e) => error(StatusCode::BAD_REQUEST, e),
    }
}
