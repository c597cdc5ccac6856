//! `GET /api/v1/history` and `GET /api/v1/series`: the event history and the value history
//! of a rule's instances, both read from the store.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{AppState, Daemon, error};
use crate::store::HistoryQuery;
use crate::time::rfc3339_millis;

#[derive(Deserialize)]
pub(super) struct HistoryParams {
    since: Option<String>,
    until: Option<String>,
    rule: Option<String>,
    limit: Option<usize>,
}

/// An RFC 3339 time or Unix seconds.
pub(super) fn parse_time(s: &str) -> Result<i64, String> {
    if let Ok(secs) = s.parse::<f64>() {
        return Ok((secs * 1000.0) as i64);
    }
    humantime::parse_rfc3339_weak(s)
        .map(|t| {
            t.duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis() as i64)
                .unwrap_or(0)
        })
        .map_err(|e| format!("`{s}` is neither RFC 3339 nor Unix seconds: {e}"))
}

pub(super) async fn history<D: Daemon>(
    State(s): State<AppState<D>>,
    q: Result<Query<HistoryParams>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Query(q) = match q {
        Ok(q) => q,
        Err(e) => return error(StatusCode::BAD_REQUEST, e.body_text()),
    };
    let since_ms = match q.since.as_deref().map(parse_time).transpose() {
        Ok(v) => v,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    let until_ms = match q.until.as_deref().map(parse_time).transpose() {
        Ok(v) => v,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    let query = HistoryQuery {
        since_ms,
        until_ms,
        rule: q.rule,
        fingerprint: None,
        limit: q.limit.unwrap_or(0),
    };
    match s.db().history(&query) {
        Ok(rows) => {
            let rows: Vec<Value> = rows
                .into_iter()
                .map(|r| {
                    json!({
                        "at": rfc3339_millis(crate::series::Timestamp(r.at_ms)),
                        "group": r.group,
                        "rule": r.rule,
                        "fingerprint": format!("{:016x}", r.fingerprint),
                        "event": r.event,
                        "severity": r.severity,
                        "value": r.value.filter(|v| v.is_finite()),
                        "labels": r.labels,
                        "detail": r.detail,
                    })
                })
                .collect();
            axum::Json(json!({ "history": rows })).into_response()
        }
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

/// The most points one `/api/v1/series` answer holds.
pub(super) const MAX_SERIES_POINTS: usize = 500_000;

/// The range `/api/v1/series` answers without `from`.
pub(super) const DEFAULT_SERIES_RANGE_MS: i64 = 6 * 3_600_000;

#[derive(Deserialize)]
pub(super) struct SeriesParams {
    rule: Option<String>,
    from: Option<String>,
    to: Option<String>,
}

/// `GET /api/v1/series?rule=…&from=…&to=…`: the value history of a rule's instances.
pub(super) async fn series<D: Daemon>(
    State(s): State<AppState<D>>,
    q: Result<Query<SeriesParams>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Query(q) = match q {
        Ok(q) => q,
        Err(e) => return error(StatusCode::BAD_REQUEST, e.body_text()),
    };
    let Some(rule) = q.rule.filter(|r| !r.is_empty()) else {
        return error(
            StatusCode::BAD_REQUEST,
            "`rule` is required: /api/v1/series?rule=<rule name>",
        );
    };
    if !s.running(|core| core.policy.rules.rules().any(|r| r.name == rule)) {
        return error(StatusCode::NOT_FOUND, format!("no rule named `{rule}`"));
    }
    let to_ms = match q.to.as_deref().map(parse_time).transpose() {
        Ok(v) => v.unwrap_or(s.now().0),
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("`to`: {e}")),
    };
    let from_ms = match q.from.as_deref().map(parse_time).transpose() {
        Ok(v) => v.unwrap_or(to_ms.saturating_sub(DEFAULT_SERIES_RANGE_MS)),
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("`from`: {e}")),
    };
    if from_ms >= to_ms {
        return error(StatusCode::BAD_REQUEST, "`from` must be before `to`");
    }
    let found = s.db().value_history(&rule, from_ms, to_ms, MAX_SERIES_POINTS);
    match found {
        Ok(Some(list)) => {
            let finite = |v: f64| Some(v).filter(|v| v.is_finite());
            let series: Vec<Value> = list
                .iter()
                .map(|v| {
                    let points: Vec<Value> = v
                        .points
                        .iter()
                        .map(|p| json!([p.t_ms, finite(p.min), finite(p.max), finite(p.last)]))
                        .collect();
                    json!({ "labels": v.labels, "points": points })
                })
                .collect();
            axum::Json(json!({ "series": series })).into_response()
        }
        Ok(None) => error(
            StatusCode::BAD_REQUEST,
            format!("more than {MAX_SERIES_POINTS} points: narrow `from` and `to`"),
        ),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}
