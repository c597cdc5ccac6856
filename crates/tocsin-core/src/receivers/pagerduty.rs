//! The `pagerduty` receiver: PagerDuty Events API v2 events, one per alert.
//!
//! PagerDuty keys an alert by its `dedup_key`, which is the alert's fingerprint (of its
//! labels as sent, `severity` included; see ARCHITECTURE.md, "Identity"). A dispatch
//! becomes one event per alert it brings news of, POSTed in order ([`Rendered::Posts`]):
//!
//! * a firing alert is a `trigger`, sent again on every change (an escalation, a repeat);
//! * when the receiver last heard another severity (`AlertNote::ended_severity`), the
//!   label set it knew ends first: a `resolve` of that fingerprint precedes the `trigger`
//!   of the new one, so PagerDuty never holds two severities of one alert;
//! * a resolved alert is a `resolve` of the label set PagerDuty knows.
//!
//! A trigger's `payload` has the `summary` (at most 1024 characters, PagerDuty's limit),
//! `source`, `severity` (mapped by the receiver's `severity` map; unmapped → `info`),
//! `timestamp`, optional `component`/`group`/`class` and `custom_details` (labels,
//! annotations, value, threshold and the receiver's `details` templates); `links` point to
//! the rule's history under `external_url` and to the runbook. Templates render against the
//! alert's own fields, with `alerts` holding the whole group.
//!
//! [`Rendered::Posts`]: super::Rendered::Posts

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;
use serde_json::{Map, Value, json};

use super::{
    Compiler, DEFAULT_TIMEOUT, context, dur, fingerprint_hex, generator_url, note_context, render_template,
    rfc3339_millis, to_json,
};
use crate::config::{PagerdutyDef, PagerdutySeverity};
use crate::message::{AlertNote, Dispatch, Status};
use crate::template::{Context, TemplateError, TemplateRef, Templates};

/// Where events go unless the receiver says otherwise.
pub const DEFAULT_URL: &str = "https://events.pagerduty.com/v2/enqueue";

/// PagerDuty refuses a longer `summary`.
pub const MAX_SUMMARY_CHARS: usize = 1024;

/// Settings of a `pagerduty` receiver.
#[derive(Clone, Debug)]
pub struct Pagerduty {
    /// The integration's routing key (a secret: never logged).
    pub routing_key: String,
    /// The Events API v2 endpoint.
    pub url: String,
    /// tocsin severity → PagerDuty severity.
    pub severity: BTreeMap<String, PagerdutySeverity>,
    /// `payload.summary` template.
    pub summary: Option<TemplateRef>,
    /// `payload.source` template.
    pub source: Option<TemplateRef>,
    /// `payload.component` template.
    pub component: Option<TemplateRef>,
    /// `payload.group` template.
    pub group: Option<TemplateRef>,
    /// `payload.class` template.
    pub class: Option<TemplateRef>,
    /// Extra `custom_details`, by key.
    pub details: Vec<(String, TemplateRef)>,
    /// Request time limit.
    pub timeout: Duration,
}

/// The severity map used when a receiver names none: tocsin's usual tier names onto
/// PagerDuty's four.
pub fn default_severity_map() -> BTreeMap<String, PagerdutySeverity> {
    [
        ("emergency", PagerdutySeverity::Critical),
        ("critical", PagerdutySeverity::Critical),
        ("high", PagerdutySeverity::Error),
        ("warning", PagerdutySeverity::Warning),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

/// A `pagerduty` definition with its defaults and its templates compiled. An empty
/// `routing_key` (typically an unset `${PD_ROUTING_KEY:-}`) is an error: PagerDuty would
/// refuse every event.
pub fn compile(p: &PagerdutyDef, cx: &mut Compiler<'_>) -> Pagerduty {
    if p.routing_key.expose().trim().is_empty() {
        cx.error(
            p.routing_key.line(),
            p.routing_key.column(),
            "invalid-value",
            "`routing_key` is empty; PagerDuty refuses events without the integration key".to_string(),
        );
    }
    Pagerduty {
        routing_key: p.routing_key.expose().to_string(),
        url: p.url.as_ref().map_or(DEFAULT_URL, |u| u.expose()).to_string(),
        severity: p.severity.as_ref().map_or_else(default_severity_map, |m| {
            m.iter().map(|(k, v)| (k.clone(), v.value)).collect()
        }),
        summary: cx.template(p.summary.as_ref()),
        source: cx.template(p.source.as_ref()),
        component: cx.template(p.component.as_ref()),
        group: cx.template(p.group.as_ref()),
        class: cx.template(p.class.as_ref()),
        details: p
            .details
            .iter()
            .filter_map(|(k, t)| Some((k.clone(), cx.template(Some(t))?)))
            .collect(),
        timeout: dur(&p.timeout, DEFAULT_TIMEOUT),
    }
}

/// PagerDuty's name of a severity.
pub fn severity_name(s: PagerdutySeverity) -> &'static str {
    match s {
        PagerdutySeverity::Critical => "critical",
        PagerdutySeverity::Error => "error",
        PagerdutySeverity::Warning => "warning",
        PagerdutySeverity::Info => "info",
    }
}

#[derive(Serialize)]
struct Resolve<'a> {
    routing_key: &'a str,
    event_action: &'static str,
    dedup_key: String,
}

/// The events of `d` for PagerDuty receiver `p`, in the order they are to be POSTed.
pub fn events(
    d: &Dispatch,
    p: &Pagerduty,
    templates: &Templates,
    external_url: &str,
    errors: &mut Vec<TemplateError>,
) -> Vec<String> {
    let group = context(d).alerts;
    let resolve = |fingerprint: u64| {
        to_json(&Resolve {
            routing_key: &p.routing_key,
            event_action: "resolve",
            dedup_key: fingerprint_hex(fingerprint),
        })
    };
    let mut out = Vec::new();
    for a in &d.alerts {
        let ended = a.ended_labels().map(|l| l.fingerprint());
        match a.status {
            // PagerDuty knows the label set the receiver was told: the ended one if any.
            Status::Resolved => out.push(resolve(ended.unwrap_or_else(|| a.fingerprint()))),
            Status::Firing if d.news.iter().any(|(i, _)| *i == a.instance) => {
                out.extend(ended.map(resolve));
                let mut ctx = note_context(a);
                ctx.alerts.clone_from(&group);
                out.push(trigger(a, p, templates, &ctx, external_url, errors));
            }
            // Carried along in its group without news: PagerDuty already has it.
            Status::Firing => {}
        }
    }
    out
}

fn trigger(
    a: &AlertNote,
    p: &Pagerduty,
    templates: &Templates,
    ctx: &Context,
    external_url: &str,
    errors: &mut Vec<TemplateError>,
) -> String {
    let mut text = |t: Option<TemplateRef>| render_template(templates, t, ctx, errors).filter(|s| !s.trim().is_empty());
    let summary = text(p.summary).unwrap_or_else(|| default_summary(a));
    let source = text(p.source).unwrap_or_else(|| a.labels.get("instance").unwrap_or(a.alertname()).to_string());
    let component = text(p.component);
    let group = text(p.group);
    let class = text(p.class).unwrap_or_else(|| a.alertname().to_string());
    let mut details = Map::new();
    details.insert("labels".into(), json!(a.labels.to_map()));
    details.insert("annotations".into(), json!(a.annotations));
    details.insert("value".into(), json!(a.value));
    details.insert("threshold".into(), json!(a.threshold));
    details.insert("starts_at".into(), json!(rfc3339_millis(a.starts_at)));
    for (key, t) in &p.details {
        let (v, err) = templates.render_or_fallback(*t, ctx, templates.source(*t).unwrap_or(""));
        errors.extend(err);
        details.insert(key.clone(), Value::String(v));
    }
    let mut payload = Map::new();
    payload.insert("summary".into(), json!(cut(&summary, MAX_SUMMARY_CHARS)));
    payload.insert("source".into(), json!(source));
    let severity = p.severity.get(&a.severity).copied().unwrap_or(PagerdutySeverity::Info);
    payload.insert("severity".into(), json!(severity_name(severity)));
    payload.insert("timestamp".into(), json!(rfc3339_millis(a.at)));
    for (key, value) in [("component", component), ("group", group), ("class", Some(class))] {
        if let Some(v) = value {
            payload.insert(key.into(), json!(v));
        }
    }
    payload.insert("custom_details".into(), Value::Object(details));
    let mut links = vec![json!({"href": generator_url(external_url, a.fingerprint()), "text": "Alert in tocsin"})];
    if let Some(url) = a
        .annotations
        .get("runbook_url")
        .or_else(|| a.annotations.get("runbook"))
        .map(|u| u.trim())
        .filter(|u| u.starts_with("https://") || u.starts_with("http://"))
    {
        links.push(json!({"href": url, "text": "Runbook"}));
    }
    to_json(&json!({
        "routing_key": p.routing_key,
        "event_action": "trigger",
        "dedup_key": fingerprint_hex(a.fingerprint()),
        "payload": payload,
        "client": "tocsin",
        "client_url": external_url,
        "links": links,
    }))
}

/// `HighCpu (critical): the summary annotation`, or without the annotation when there is
/// none.
fn default_summary(a: &AlertNote) -> String {
    let head = format!("{} ({})", a.alertname(), a.severity);
    match a.annotations.get("summary").filter(|s| !s.trim().is_empty()) {
        Some(s) => format!("{head}: {s}"),
        None => format!("{head} is firing"),
    }
}

/// `s` cut to `max` characters, ending in `…` when cut.
fn cut(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max - 1).collect();
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::notify::NoteKind;
    use crate::receivers::testing::*;

    fn receiver() -> Pagerduty {
        Pagerduty {
            routing_key: "R0UT1NGKEY".into(),
            url: DEFAULT_URL.into(),
            severity: default_severity_map(),
            summary: None,
            source: None,
            component: None,
            group: None,
            class: None,
            details: Vec::new(),
            timeout: DEFAULT_TIMEOUT,
        }
    }

    fn events_of(d: &Dispatch) -> Vec<Value> {
        let mut errors = Vec::new();
        let out = events(d, &receiver(), &Templates::new(), "http://tocsin:9470", &mut errors);
        assert!(errors.is_empty());
        out.iter().map(|e| serde_json::from_str(e).unwrap()).collect()
    }

    #[test]
    fn a_firing_alert_is_a_trigger_keyed_by_its_fingerprint() {
        let mut a = firing(1, "HighCpu", "critical", &[("instance", "db-1")]);
        let view = format!("http://tocsin:9470/#/alert/{}", fingerprint_hex(a.fingerprint()));
        a.annotations
            .insert("runbook_url".into(), "https://runbooks/cpu".into());
        let fp = fingerprint_hex(a.fingerprint());
        let got = events_of(&dispatch("pd", vec![a]));
        assert_eq!(
            got,
            [json!({
                "routing_key": "R0UT1NGKEY",
                "event_action": "trigger",
                "dedup_key": fp,
                "payload": {
                    "summary": "HighCpu (critical): HighCpu is bad",
                    "source": "db-1",
                    "severity": "critical",
                    "timestamp": "2026-11-23T08:00:00.000Z",
                    "class": "HighCpu",
                    "custom_details": {
                        "labels": {"alertname": "HighCpu", "instance": "db-1", "severity": "critical"},
                        "annotations": {"summary": "HighCpu is bad", "runbook_url": "https://runbooks/cpu"},
                        "value": 97.0,
                        "threshold": 90.0,
                        "starts_at": "2026-11-23T08:00:00.000Z"
                    }
                },
                "client": "tocsin",
                "client_url": "http://tocsin:9470",
                "links": [
                    {"href": view, "text": "Alert in tocsin"},
                    {"href": "https://runbooks/cpu", "text": "Runbook"}
                ]
            })]
        );
    }

    #[test]
    fn a_severity_change_resolves_the_old_key_before_triggering_the_new_one() {
        let mut a = firing(1, "HighCpu", "high", &[]);
        a.kind = NoteKind::Deescalated;
        a.ended_severity = Some("critical".into());
        let old = fingerprint_hex(a.ended_labels().unwrap().fingerprint());
        let new = fingerprint_hex(a.fingerprint());
        assert_ne!(old, new);
        let got = events_of(&dispatch("pd", vec![a]));
        assert_eq!(got.len(), 2, "{got:?}");
        assert_eq!(
            got[0],
            json!({"routing_key": "R0UT1NGKEY", "event_action": "resolve", "dedup_key": old})
        );
        assert_eq!(got[1]["event_action"], "trigger");
        assert_eq!(got[1]["dedup_key"], new);
        assert_eq!(got[1]["payload"]["severity"], "error");
    }

    #[test]
    fn resolves_end_the_key_pagerduty_knows_and_quiet_alerts_send_nothing() {
        let r = resolved(firing(1, "HighCpu", "warning", &[]));
        let mut r_changed = resolved(firing(2, "HighCpu", "warning", &[("host", "b")]));
        r_changed.ended_severity = Some("critical".into());
        let quiet = firing(3, "HighCpu", "info", &[("host", "c")]);
        let mut d = dispatch("pd", vec![quiet, r.clone(), r_changed.clone()]);
        d.news.retain(|(i, _)| *i != 3);
        let got = events_of(&d);
        let keys: Vec<(&str, &str)> = got
            .iter()
            .map(|e| (e["event_action"].as_str().unwrap(), e["dedup_key"].as_str().unwrap()))
            .collect();
        let r_fp = fingerprint_hex(r.fingerprint());
        let changed_fp = fingerprint_hex(r_changed.ended_labels().unwrap().fingerprint());
        assert_eq!(keys, [("resolve", r_fp.as_str()), ("resolve", changed_fp.as_str())]);
    }

    #[test]
    fn an_empty_routing_key_is_a_located_error() {
        let yaml = "receivers:\n  - name: pd\n    pagerduty: { routing_key: \"${PD_KEY:-}\" }\n";
        let source = crate::config::Source::new("r.yaml", yaml.as_bytes().to_vec()).unwrap();
        let file = crate::config::parse_receivers(&source, &|_| None).unwrap();
        let mut diags = Vec::new();
        crate::receivers::Receivers::compile(&[("r.yaml".into(), file)], &mut diags);
        let found: Vec<(u64, u64, &str)> = diags.iter().map(|d| (d.line, d.column, d.code)).collect();
        assert_eq!(found, [(3, 31, "invalid-value")], "{diags:?}");
    }

    #[test]
    fn unmapped_severities_are_info_and_summaries_are_cut() {
        let mut a = firing(1, "Odd", "page", &[]);
        a.annotations.insert("summary".into(), "x".repeat(3000));
        let got = events_of(&dispatch("pd", vec![a]));
        assert_eq!(got[0]["payload"]["severity"], "info");
        let summary = got[0]["payload"]["summary"].as_str().unwrap();
        assert_eq!(summary.chars().count(), MAX_SUMMARY_CHARS);
        assert!(summary.ends_with('…'));
    }
}
