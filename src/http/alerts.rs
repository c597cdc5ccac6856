//! `GET /api/v1/alerts` and `POST`/`DELETE /api/v1/alerts/{fingerprint}/ack`: the alerts
//! with their muting, and acknowledging one (bodies read by `acks`).

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::{AppState, Daemon, MAX_SILENCE_BODY, Running, error};
use crate::acks;
use crate::alert::state::Phase;
use crate::series::Timestamp;
use crate::time::rfc3339_millis;

pub(super) async fn alerts<D: Daemon>(State(s): State<AppState<D>>) -> Response {
    let now = s.now();
    s.running(|core| list(core, now))
}

/// The alerts as `GET /api/v1/alerts` lists them at `now`, with what muting decides.
fn list(core: &Running<'_>, now: Timestamp) -> Response {
    let views = core.engine.alerts();
    // The dispatcher's identity of each alert (`AlertNote::instance`): the labels as sent
    // without `severity` and the external labels.
    let identities: Vec<(u64, &crate::series::Labels)> = views
        .iter()
        .map(|a| {
            let mut identity = a.local_labels.clone();
            identity.remove("severity");
            (identity.state_key(), &a.labels)
        })
        .collect();
    let muting = core.dispatcher.muting(now, &core.silences, &identities);
    let list: Vec<Value> = views
        .iter()
        .zip(muting)
        .map(|(a, (silenced, inhibited))| {
            let mut fires_at = None;
            let (state, starts_at) = match a.phase {
                Phase::Firing { starts_at, .. } => ("firing", Some(starts_at)),
                Phase::Pending { tier } => {
                    let inst = core
                        .engine
                        .instances(a.rule)
                        .iter()
                        .find(|i| i.fingerprint == a.instance);
                    let since = inst.and_then(|i| i.machine.pending_since(tier));
                    let for_ = core.policy.rules.groups[a.rule.group].rules[a.rule.rule]
                        .alert()
                        .and_then(|r| r.policy.tiers.get(tier))
                        .map(|t| t.for_);
                    fires_at = since.zip(for_).map(|(t, d)| t.plus(d));
                    ("pending", since)
                }
                Phase::Inactive => ("inactive", None),
            };
            json!({
                "alertname": a.alertname,
                "state": state,
                "severity": &*a.severity,
                "labels": a.labels.to_map(),
                "annotations": core.engine.annotations(a),
                "value": a.value.filter(|v| v.is_finite()),
                "starts_at": starts_at.map(rfc3339_millis),
                "fingerprint": format!("{:016x}", a.fingerprint),
                "fires_at": fires_at.map(rfc3339_millis),
                "silenced": silenced,
                "inhibited": inhibited,
                "nodata": a.nodata,
                "acknowledged": acks::to_json(a.acknowledged.as_ref(), rfc3339_millis),
            })
        })
        .collect();
    axum::Json(json!({ "alerts": list })).into_response()
}

/// `POST /api/v1/alerts/{fingerprint}/ack`: acknowledges a firing alert.
pub(super) async fn ack_alert<D: Daemon>(
    State(s): State<AppState<D>>,
    Path(fingerprint): Path<String>,
    body: Body,
) -> Response {
    let Ok(bytes) = axum::body::to_bytes(body, MAX_SILENCE_BODY).await else {
        return error(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("body larger than {MAX_SILENCE_BODY} bytes"),
        );
    };
    let Some(fp) = parse_fingerprint(&fingerprint) else {
        return bad_fingerprint(&fingerprint);
    };
    let ack = match acks::parse(&bytes, s.now()) {
        Ok(a) => a,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    ack_answer(s.acknowledge(fp, Some(ack)), &fingerprint)
}

/// `DELETE /api/v1/alerts/{fingerprint}/ack`: clears a firing alert's acknowledgement.
pub(super) async fn unack_alert<D: Daemon>(State(s): State<AppState<D>>, Path(fingerprint): Path<String>) -> Response {
    match parse_fingerprint(&fingerprint) {
        Some(fp) => ack_answer(s.acknowledge(fp, None), &fingerprint),
        None => bad_fingerprint(&fingerprint),
    }
}

/// A fingerprint as the API prints it: 16 hex digits.
pub(super) fn parse_fingerprint(s: &str) -> Option<u64> {
    u64::from_str_radix(s, 16).ok().filter(|_| s.len() == 16)
}

pub(super) fn bad_fingerprint(s: &str) -> Response {
    error(
        StatusCode::BAD_REQUEST,
        format!("`{s}` is not a fingerprint (16 hex digits, as `/api/v1/alerts` lists them)"),
    )
}

pub(super) fn ack_answer(view: Option<crate::engine::AlertView>, fingerprint: &str) -> Response {
    match view {
        Some(a) => axum::Json(json!({
            "fingerprint": fingerprint,
            "acknowledged": acks::to_json(a.acknowledged.as_ref(), rfc3339_millis),
        }))
        .into_response(),
        None => error(
            StatusCode::NOT_FOUND,
            format!("no firing alert has fingerprint `{fingerprint}`"),
        ),
    }
}
