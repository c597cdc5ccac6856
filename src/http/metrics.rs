//! `GET /metrics`: tocsin's own metrics, recorded series and `ALERTS`, in the Prometheus text
//! exposition format (every family through `exposition::write_family`).

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};

use super::{AppState, Daemon, Running};
use crate::alert::state::Phase;
use crate::rules::RuleKind;
use crate::series::{Refusal, Timestamp};
use crate::sources::exposition::{escape_label_value, write_family};
use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::sync::atomic::Ordering;
use std::time::Duration;

pub(super) fn labels_text<'a>(pairs: impl Iterator<Item = (&'a str, &'a str)>) -> String {
    let inner: Vec<String> = pairs
        .map(|(k, v)| format!("{k}=\"{}\"", escape_label_value(v)))
        .collect();
    if inner.is_empty() {
        String::new()
    } else {
        format!("{{{}}}", inner.join(","))
    }
}

pub(super) async fn metrics<D: Daemon>(State(s): State<AppState<D>>) -> Response {
    let m = s.metrics();
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
    s.write_task_metrics(&mut out);
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
    let staleness = s.config().staleness.value.0;
    s.running(|core| write_running(&mut out, core, s.now(), staleness));
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        out,
    )
        .into_response()
}

/// The families read from the running pipeline: series per source, recorded series (their
/// value at `now`, unless older than `staleness`) and `ALERTS`.
fn write_running(out: &mut String, core: &Running<'_>, now: Timestamp, staleness: Duration) {
    write_family(
        out,
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
        write_family(out, &rule.name, "untyped", "Recorded by a tocsin recording rule.");
        for id in core.series.series_of(&rule.name) {
            if let Some(v) = core.series.window(*id).current(now, staleness) {
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
    write_family(out, "ALERTS", "untyped", "Pending and firing alert instances.");
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
}
