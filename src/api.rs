//! The HTTP API: metrics, alerts, rules, history, value history, silences, the outbox,
//! push, reload, health, and the status page (static files under `page/` that read it).
//!
//! Owns request parsing, authentication of mutating endpoints (`api_token`), body limits
//! and timeouts, and the JSON shapes of docs/api.md. It reads the daemon's shared state
//! and asks the daemon to reload; it never evaluates rules, and writes the database only
//! to store silences (validated by `silence`) and to re-queue outbox entries.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::oneshot;

use crate::acks;
use crate::alert::state::Phase;
use crate::daemon::{Shared, now};
use crate::rules::RuleKind;
use crate::series::Refusal;
use crate::silence;
use crate::sources::exposition::{escape_label_value, write_family};
use crate::store::HistoryQuery;
use crate::time::rfc3339_millis;

/// How long any request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// The largest accepted silence body.
const MAX_SILENCE_BODY: usize = 64 * 1024;

type AppState = Arc<Shared>;

/// The router of every endpoint.
pub fn router(shared: Arc<Shared>) -> Router {
    let mutating = Router::new()
        .route("/api/v1/push", post(push))
        .route("/-/reload", post(reload))
        .route("/api/v1/silences", post(create_silence))
        .route("/api/v1/silences/{id}", delete(expire_silence))
        .route("/api/v1/outbox/{id}/retry", post(retry_outbox))
        .route("/api/v1/alerts/{fingerprint}/ack", post(ack_alert).delete(unack_alert))
        .route_layer(middleware::from_fn_with_state(Arc::clone(&shared), require_token));
    Router::new()
        .route("/", get(status_page))
        .route("/page/page.js", get(page_js))
        .route("/page/page.css", get(page_css))
        .route("/metrics", get(metrics))
        .route("/api/v1/alerts", get(alerts))
        .route("/api/v1/rules", get(rules))
        .route("/api/v1/history", get(history))
        .route("/api/v1/series", get(series))
        .route("/api/v1/outbox", get(list_outbox))
        .route("/api/v1/silences", get(list_silences))
        .route("/-/healthy", get(|| async { "OK\n" }))
        .route("/-/ready", get(ready))
        .merge(mutating)
        .fallback(|| async { error(StatusCode::NOT_FOUND, "no such endpoint") })
        .layer(middleware::from_fn(timeout))
        .with_state(shared)
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

async fn require_token(State(s): State<AppState>, headers: HeaderMap, req: Request, next: Next) -> Response {
    let Some(token) = s
        .loaded
        .cfg
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

async fn ready(State(s): State<AppState>) -> Response {
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

async fn reload(State(s): State<AppState>) -> Response {
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

async fn push(State(s): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    let push = &s.loaded.cfg.sources.push;
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
    match crate::daemon::parse_push(ct, &bytes) {
        Ok(samples) => {
            let done = s.ingest("push", push.max_series, &samples, now());
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

async fn alerts(State(s): State<AppState>) -> Response {
    let core = s.core();
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
    let muting = core.dispatcher.muting(now(), &core.silences, &identities);
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
async fn ack_alert(State(s): State<AppState>, Path(fingerprint): Path<String>, body: Body) -> Response {
    let Ok(bytes) = axum::body::to_bytes(body, MAX_SILENCE_BODY).await else {
        return error(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("body larger than {MAX_SILENCE_BODY} bytes"),
        );
    };
    let Some(fp) = parse_fingerprint(&fingerprint) else {
        return bad_fingerprint(&fingerprint);
    };
    let ack = match acks::parse(&bytes, now()) {
        Ok(a) => a,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    ack_answer(crate::daemon::acknowledge(&s, fp, Some(ack)), &fingerprint)
}

/// `DELETE /api/v1/alerts/{fingerprint}/ack`: clears a firing alert's acknowledgement.
async fn unack_alert(State(s): State<AppState>, Path(fingerprint): Path<String>) -> Response {
    match parse_fingerprint(&fingerprint) {
        Some(fp) => ack_answer(crate::daemon::acknowledge(&s, fp, None), &fingerprint),
        None => bad_fingerprint(&fingerprint),
    }
}

/// A fingerprint as the API prints it: 16 hex digits.
fn parse_fingerprint(s: &str) -> Option<u64> {
    u64::from_str_radix(s, 16).ok().filter(|_| s.len() == 16)
}

fn bad_fingerprint(s: &str) -> Response {
    error(
        StatusCode::BAD_REQUEST,
        format!("`{s}` is not a fingerprint (16 hex digits, as `/api/v1/alerts` lists them)"),
    )
}

fn ack_answer(view: Option<crate::engine::AlertView>, fingerprint: &str) -> Response {
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

async fn rules(State(s): State<AppState>) -> Response {
    let core = s.core();
    let default = s.loaded.cfg.evaluation_interval.value.0;
    let groups: Vec<Value> = core
        .policy
        .rules
        .groups
        .iter()
        .enumerate()
        .map(|(g, group)| {
            let rules: Vec<Value> = group
                .rules
                .iter()
                .enumerate()
                .map(|(r, rule)| {
                    let st = &core.status[g][r];
                    let tiers: Vec<Value> = rule
                        .alert()
                        .map_or_else(Vec::new, |a| a.policy.tiers.iter().map(tier_json).collect());
                    json!({
                        "tiers": tiers,
                        "boolean": rule.alert().is_some_and(|a| a.boolean),
                        "name": rule.name,
                        "kind": if matches!(rule.kind, RuleKind::Record) { "record" } else { "alert" },
                        "expr": rule.expr.source(),
                        "health": if st.last_error.is_some() { "err" } else { "ok" },
                        "last_error": st.last_error,
                        "last_evaluation": st.last_evaluation.map(rfc3339_millis),
                        "evaluation_seconds": st.evaluation_seconds,
                        "instances": core.engine.instances(crate::engine::RuleRef { group: g, rule: r }).len(),
                    })
                })
                .collect();
            json!({
                "name": group.name,
                "file": group.file,
                "interval": group.interval.unwrap_or(default).as_secs_f64(),
                "rules": rules,
            })
        })
        .collect();
    let m = &s.metrics;
    let last_reload = json!({
        "successful": m.reload_ok.load(Ordering::Relaxed),
        "last_success": rfc3339_millis(crate::series::Timestamp(m.reload_ok_at.load(Ordering::Relaxed) as i64 * 1000)),
        "error": core.reload_error,
    });
    axum::Json(json!({ "groups": groups, "last_reload": last_reload })).into_response()
}

/// A tier as `/api/v1/rules` shows it: severity, condition, thresholds and `for` (seconds).
fn tier_json(t: &crate::alert::state::TierSpec) -> Value {
    use crate::alert::state::Condition;
    let (condition, threshold, clear) = match t.condition {
        Condition::Above { threshold, clear } => ("above", Some(threshold), Some(clear)),
        Condition::Below { threshold, clear } => ("below", Some(threshold), Some(clear)),
        Condition::When => ("when", None, None),
    };
    json!({
        "severity": &*t.severity,
        "condition": condition,
        "threshold": threshold.filter(|v| v.is_finite()),
        "clear": clear.filter(|v| v.is_finite()),
        "for": t.for_.as_secs_f64(),
    })
}

#[derive(Deserialize)]
struct HistoryParams {
    since: Option<String>,
    until: Option<String>,
    rule: Option<String>,
    limit: Option<usize>,
}

/// An RFC 3339 time or Unix seconds.
fn parse_time(s: &str) -> Result<i64, String> {
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

async fn history(
    State(s): State<AppState>,
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
const MAX_SERIES_POINTS: usize = 500_000;
/// The range `/api/v1/series` answers without `from`.
const DEFAULT_SERIES_RANGE_MS: i64 = 6 * 3_600_000;

#[derive(Deserialize)]
struct SeriesParams {
    rule: Option<String>,
    from: Option<String>,
    to: Option<String>,
}

/// `GET /api/v1/series?rule=…&from=…&to=…`: the value history of a rule's instances.
async fn series(
    State(s): State<AppState>,
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
    if !s.core().policy.rules.rules().any(|r| r.name == rule) {
        return error(StatusCode::NOT_FOUND, format!("no rule named `{rule}`"));
    }
    let to_ms = match q.to.as_deref().map(parse_time).transpose() {
        Ok(v) => v.unwrap_or(now().0),
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

/// The most entries one `/api/v1/outbox` answer lists per status.
const MAX_OUTBOX_LIMIT: usize = 1_000;

#[derive(Deserialize)]
struct OutboxParams {
    status: Option<String>,
    limit: Option<usize>,
}

/// `GET /api/v1/outbox?status=pending|failed|dead`: queued, failed and dead notifications
/// (newest first), and each receiver's delivery state.
async fn list_outbox(
    State(s): State<AppState>,
    q: Result<Query<OutboxParams>, axum::extract::rejection::QueryRejection>,
) -> Response {
    use crate::outbox::db::{BLOCKED, EntryStatus};
    let Query(q) = match q {
        Ok(q) => q,
        Err(e) => return error(StatusCode::BAD_REQUEST, e.body_text()),
    };
    let all = [EntryStatus::Pending, EntryStatus::Failed, EntryStatus::Dead];
    let statuses: Vec<EntryStatus> = match q.status.as_deref() {
        None => all.to_vec(),
        Some(name) => match all.into_iter().find(|st| st.as_str() == name) {
            Some(st) => vec![st],
            None => {
                return error(
                    StatusCode::BAD_REQUEST,
                    format!("unknown status `{name}`: use pending, failed or dead"),
                );
            }
        },
    };
    let limit = q.limit.unwrap_or(100).clamp(1, MAX_OUTBOX_LIMIT);
    let mut entries = Vec::new();
    {
        let db = s.db();
        for st in statuses {
            match db.outbox_entries(st, limit) {
                Ok(list) => entries.extend(list),
                Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
            }
        }
    }
    entries.sort_by_key(|e| std::cmp::Reverse(e.id));
    let entries: Vec<Value> = entries
        .iter()
        .map(|e| {
            let due = e.status == EntryStatus::Pending && e.next_attempt_ms != BLOCKED;
            json!({
                "id": e.id,
                "receiver": e.receiver,
                "group": e.group_key,
                "status": e.status.as_str(),
                "attempts": e.attempts,
                "last_error": e.last_error,
                "created": rfc3339_millis(crate::series::Timestamp(e.created_ms)),
                "next_attempt": due.then(|| rfc3339_millis(crate::series::Timestamp(e.next_attempt_ms))),
            })
        })
        .collect();
    let receivers: Vec<Value> = s
        .outbox
        .receiver_states()
        .into_iter()
        .map(|(name, pending, open)| json!({ "name": name, "pending": pending, "circuit_open": open }))
        .collect();
    axum::Json(json!({ "entries": entries, "receivers": receivers })).into_response()
}

/// `POST /api/v1/outbox/{id}/retry`: puts a failed or dead notification back in the queue.
async fn retry_outbox(State(s): State<AppState>, Path(id): Path<String>) -> Response {
    use crate::outbox::db::Requeue;
    let Ok(id) = id.parse::<i64>() else {
        return error(StatusCode::BAD_REQUEST, format!("`{id}` is not an outbox entry id"));
    };
    let done = s.db().outbox_retry(id, now().0);
    match done {
        Ok(Some(Requeue::Requeued)) => {
            s.outbox.requeued();
            axum::Json(json!({ "id": id, "status": "pending" })).into_response()
        }
        Ok(Some(Requeue::NotStopped(st))) => error(
            StatusCode::CONFLICT,
            format!(
                "entry {id} is {}: only failed or dead entries are re-queued",
                st.as_str()
            ),
        ),
        Ok(None) => error(StatusCode::NOT_FOUND, format!("no outbox entry with id {id}")),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

/// `GET /api/v1/silences`: every stored silence (expired ones until pruned with the
/// history), active first, then pending, then expired, each by end time.
async fn list_silences(State(s): State<AppState>) -> Response {
    let t = now();
    let mut list = match s.db().load_silences() {
        Ok(l) => l,
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    };
    list.sort_by_key(|x| (silence::status(x, t), x.ends_at));
    let list: Vec<Value> = list
        .iter()
        .map(|x| {
            json!({
                "id": x.id,
                "matchers": x.matchers,
                "starts_at": rfc3339_millis(x.starts_at),
                "ends_at": rfc3339_millis(x.ends_at),
                "created_by": x.created_by,
                "comment": x.comment,
                "status": silence::status(x, t).as_str(),
            })
        })
        .collect();
    axum::Json(json!({ "silences": list })).into_response()
}

/// `POST /api/v1/silences`: creates a silence, or replaces the one whose `id` the body names.
async fn create_silence(State(s): State<AppState>, body: Body) -> Response {
    let Ok(bytes) = axum::body::to_bytes(body, MAX_SILENCE_BODY).await else {
        return error(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("body larger than {MAX_SILENCE_BODY} bytes"),
        );
    };
    let t = now();
    let draft = match silence::parse(&bytes, t, fastrand::u128(..)) {
        Ok(d) => d,
        Err(e) => return error(StatusCode::BAD_REQUEST, e.to_string()),
    };
    let id = draft.silence.id.clone();
    {
        let mut db = s.db();
        if draft.replaces {
            match db.silence(&id) {
                Ok(Some(_)) => {}
                Ok(None) => return error(StatusCode::NOT_FOUND, format!("no silence with id `{id}`")),
                Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
            }
        }
        if let Err(e) = db.save_silence(&draft.silence) {
            return error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string());
        }
    }
    // Stored first: a silence the daemon mutes with is always one it will still have after
    // a restart.
    silence::remember(&mut s.core().silences, draft.silence, t);
    axum::Json(json!({ "silence_id": id })).into_response()
}

/// `DELETE /api/v1/silences/{id}`: expires the silence now (it stays listed as expired).
async fn expire_silence(State(s): State<AppState>, Path(id): Path<String>) -> Response {
    let t = now();
    let expired = s.db().expire_silence(&id, t);
    match expired {
        Ok(Some(_)) => {
            s.core().silences.retain(|x| x.id != id);
            axum::Json(json!({ "silence_id": id, "status": "expired" })).into_response()
        }
        Ok(None) => error(StatusCode::NOT_FOUND, format!("no silence with id `{id}`")),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

fn labels_text<'a>(pairs: impl Iterator<Item = (&'a str, &'a str)>) -> String {
    let inner: Vec<String> = pairs
        .map(|(k, v)| format!("{k}=\"{}\"", escape_label_value(v)))
        .collect();
    if inner.is_empty() {
        String::new()
    } else {
        format!("{{{}}}", inner.join(","))
    }
}

async fn metrics(State(s): State<AppState>) -> Response {
    let m = &s.metrics;
    let mut out = String::new();
    write_family(
        &mut out,
        "tocsin_config_last_reload_successful",
        "gauge",
        "Whether the last configuration reload attempt was successful.",
    );
    let _ = writeln!(
        out,
        "tocsin_config_last_reload_successful {}",
        u8::from(m.reload_ok.load(Ordering::Relaxed))
    );
    write_family(
        &mut out,
        "tocsin_config_last_reload_success_timestamp_seconds",
        "gauge",
        "Timestamp of the last successful configuration reload.",
    );
    let _ = writeln!(
        out,
        "tocsin_config_last_reload_success_timestamp_seconds {}",
        m.reload_ok_at.load(Ordering::Relaxed)
    );
    write_family(
        &mut out,
        "tocsin_config_reloads_total",
        "counter",
        "Reload attempts (file events, SIGHUP, API, periodic re-read).",
    );
    let _ = writeln!(out, "tocsin_config_reloads_total {}", m.reloads.load(Ordering::Relaxed));
    write_family(
        &mut out,
        "tocsin_rule_group_iterations_total",
        "counter",
        "Scheduled evaluations of a rule group.",
    );
    let iterations = m.iterations.lock().unwrap_or_else(|e| e.into_inner()).clone();
    for (g, (n, _)) in &iterations {
        let _ = writeln!(
            out,
            "tocsin_rule_group_iterations_total{{rule_group=\"{}\"}} {n}",
            escape_label_value(g)
        );
    }
    write_family(
        &mut out,
        "tocsin_rule_group_iterations_missed_total",
        "counter",
        "Evaluations skipped because the previous one overran.",
    );
    for (g, (_, missed)) in &iterations {
        let _ = writeln!(
            out,
            "tocsin_rule_group_iterations_missed_total{{rule_group=\"{}\"}} {missed}",
            escape_label_value(g)
        );
    }
    write_family(
        &mut out,
        "tocsin_samples_ingested_total",
        "counter",
        "Samples accepted from sources.",
    );
    let samples = m.samples.lock().unwrap_or_else(|e| e.into_inner()).clone();
    for (src, n) in &samples {
        let _ = writeln!(
            out,
            "tocsin_samples_ingested_total{{source=\"{}\"}} {}",
            escape_label_value(src),
            n.accepted
        );
    }
    write_family(
        &mut out,
        "tocsin_samples_refused_total",
        "counter",
        "Samples refused, by reason: future (more than 10m ahead), out_of_order (older than the series' newest sample), budget (the source has max_series alive).",
    );
    for (src, n) in &samples {
        for r in Refusal::ALL {
            let _ = writeln!(
                out,
                "tocsin_samples_refused_total{{source=\"{}\",reason=\"{r}\"}} {}",
                escape_label_value(src),
                n.refused_for(r)
            );
        }
    }
    s.outbox.render_metrics(&mut out);
    s.query_health.render_metrics(&mut out);
    s.remote_write.render_metrics(&mut out);
    write_family(
        &mut out,
        "tocsin_template_errors_total",
        "counter",
        "Receiver templates that failed at run time; the message was sent with a fallback text.",
    );
    let _ = writeln!(
        out,
        "tocsin_template_errors_total {}",
        m.template_errors.load(Ordering::Relaxed)
    );
    write_family(
        &mut out,
        "tocsin_actions_total",
        "counter",
        "Finished action runs, by result (ok, failed, timeout).",
    );
    for (res, n) in m.actions.lock().unwrap_or_else(|e| e.into_inner()).iter() {
        let _ = writeln!(out, "tocsin_actions_total{{result=\"{res}\"}} {n}");
    }
    write_family(
        &mut out,
        "tocsin_state_store_errors_total",
        "counter",
        "Failed attempts to commit state (evaluations, dispatch flushes, action results); the state is kept and retried.",
    );
    let _ = writeln!(
        out,
        "tocsin_state_store_errors_total {}",
        m.store_errors.load(Ordering::Relaxed)
    );
    let core = s.core();
    write_family(
        &mut out,
        "tocsin_series",
        "gauge",
        "Series alive in memory, by the source that created them (rules: recording-rule outputs).",
    );
    let mut by_sources = 0;
    for (src, n) in core.series.per_source() {
        by_sources += n;
        let _ = writeln!(out, "tocsin_series{{source=\"{}\"}} {n}", escape_label_value(src));
    }
    let _ = writeln!(
        out,
        "tocsin_series{{source=\"rules\"}} {}",
        core.series.len() - by_sources
    );
    // Recorded series, under their own names, one family per name (two groups may record
    // the same name; a family twice is invalid exposition). `untyped`, as Prometheus'
    // federation exposes recorded series: tocsin cannot know whether a rule computes a
    // gauge, a rate or histogram buckets, and `gauge` would make a recorded bucket's `le`
    // label and `_bucket` suffix a lint error.
    let mut recorded = BTreeSet::new();
    for rule in core.policy.rules.rules().filter(|r| matches!(r.kind, RuleKind::Record)) {
        if !recorded.insert(rule.name.as_str()) {
            continue;
        }
        write_family(&mut out, &rule.name, "untyped", "Recorded by a tocsin recording rule.");
        for id in core.series.series_of(&rule.name) {
            if let Some(v) = core.series.window(*id).current(now(), s.loaded.cfg.staleness.value.0) {
                let _ = writeln!(
                    out,
                    "{}{} {}",
                    rule.name,
                    labels_text(core.series.labels(*id).iter()),
                    crate::series::float_text(v)
                );
            }
        }
    }
    // Each sample carries its alert's labels (those receivers and silences see) and
    // `alertstate`, nothing else. An alert on recorded buckets has an `le` label of its own,
    // so ALERTS is `untyped` as in Prometheus: as a gauge that label is a lint error, and
    // dropping it would merge distinct alerts into duplicate samples.
    write_family(&mut out, "ALERTS", "untyped", "Pending and firing alert instances.");
    for a in core.engine.alerts() {
        let state = if matches!(a.phase, Phase::Firing { .. }) {
            "firing"
        } else {
            "pending"
        };
        let mut l = a.local_labels.clone();
        l.set("alertstate", state);
        let _ = writeln!(out, "ALERTS{} 1", labels_text(l.iter()));
    }
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        out,
    )
        .into_response()
}

/// The status page (`/`; notifications link `/#/alert/<fingerprint>`, a route of its script): static
/// HTML whose script reads the JSON API, so everything it shows is data put into the page
/// as text, never markup.
async fn status_page() -> Response {
    page(PAGE_HTML, "text/html; charset=utf-8")
}

async fn page_js() -> Response {
    page(PAGE_JS, "text/javascript; charset=utf-8")
}

async fn page_css() -> Response {
    page(PAGE_CSS, "text/css; charset=utf-8")
}

const PAGE_HTML: &str = include_str!("page/index.html");
const PAGE_JS: &str = include_str!("page/page.js");
const PAGE_CSS: &str = include_str!("page/page.css");

/// Only the page's own script and style run: a value that slipped into markup could not
/// load or run anything.
const PAGE_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
     connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

fn page(body: &'static str, content_type: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CONTENT_SECURITY_POLICY, PAGE_CSP),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}
