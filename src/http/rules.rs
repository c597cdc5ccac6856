//! `GET /api/v1/rules`: the groups and rules running, their evaluation health, tiers and
//! the last reload.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::{AppState, Daemon, Metrics, Running};
use crate::rules::RuleKind;
use crate::time::rfc3339_millis;
use std::sync::atomic::Ordering;
use std::time::Duration;

pub(super) async fn rules<D: Daemon>(State(s): State<AppState<D>>) -> Response {
    let default = s.config().evaluation_interval.value.0;
    s.running(|core| list(core, default, s.metrics()))
}

/// The groups as `GET /api/v1/rules` lists them (`default`: the evaluation interval of a
/// group that sets none), with the last reload of `m`.
fn list(core: &Running<'_>, default: Duration, m: &Metrics) -> Response {
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
    let last_reload = json!({
        "successful": m.reload_ok.load(Ordering::Relaxed),
        "last_success": rfc3339_millis(crate::series::Timestamp(m.reload_ok_at.load(Ordering::Relaxed) as i64 * 1000)),
        "error": core.reload_error,
    });
    axum::Json(json!({ "groups": groups, "last_reload": last_reload })).into_response()
}

/// A tier as `/api/v1/rules` shows it: severity, condition, thresholds and `for` (seconds).
pub(super) fn tier_json(t: &crate::alert::state::TierSpec) -> Value {
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
