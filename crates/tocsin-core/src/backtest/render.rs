//! The three renderings of a backtest report, alone or compared with a base revision's:
//! text for a terminal, JSON for scripts (docs/backtest.md documents its shape), Markdown
//! for a pull-request comment or a CI job summary.
//!
//! Formats; never decides. Counts come from [`Report`] and [`super::diff`].

use std::fmt::Write as _;

use serde_json::{Value, json};

use super::diff::{RuleDiff, compare, ms_text, plural, seconds_text};
use super::report::{Report, RuleReport};
use crate::time::rfc3339_millis;

/// How a report is printed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// For a terminal: per rule its counts, then each notification and action.
    Text,
    /// `{"rules": [{"alertname", "notifications", "firing_seconds", "episodes", …}]}`.
    Json,
    /// A table, for a pull-request comment or a CI job summary.
    Markdown,
}

/// `head` in `format`; with `base`, compared with it.
pub fn render(format: Format, head: &Report, base: Option<&Report>) -> String {
    let diffs = base.map(|b| compare(head, b));
    match format {
        Format::Text => text(head, diffs.as_deref()),
        Format::Json => {
            let mut s = serde_json::to_string_pretty(&json_value(head, diffs.as_deref())).unwrap_or_default();
            s.push('\n');
            s
        }
        Format::Markdown => markdown(head, diffs.as_deref()),
    }
}

fn by_severity(r: &RuleReport) -> String {
    let parts: Vec<String> = (r.firing_ms.iter())
        .filter(|(_, ms)| **ms > 0)
        .map(|(s, ms)| format!("{s} {}", ms_text(*ms)))
        .collect();
    if parts.is_empty() {
        String::new()
    } else {
        format!(" ({})", parts.join(", "))
    }
}

fn text(head: &Report, diffs: Option<&[RuleDiff<'_>]>) -> String {
    let mut out = format!("backtest {} → {}\n", rfc3339_millis(head.from), rfc3339_millis(head.to));
    if let Some(diffs) = diffs {
        out.push_str("\nchanges from the base revision:\n");
        for d in diffs {
            let _ = writeln!(out, "  {}", d.summary());
        }
    }
    for r in &head.rules {
        let _ = writeln!(
            out,
            "\n{}: {}, firing {}{}, {} (longest {})",
            r.alertname,
            plural(r.notifications(), "notification"),
            seconds_text(r.firing_seconds()),
            by_severity(r),
            plural(r.episodes.len(), "episode"),
            ms_text(r.longest_ms())
        );
        if let Some(why) = &r.not_replayable {
            let _ = writeln!(out, "  ! not replayable: {why}");
        }
        for g in &r.gaps {
            let _ = writeln!(out, "  ! input `{}`: {}", g.metric, g.reason);
        }
        if head.routed && !r.sent.is_empty() {
            let per: Vec<String> = (r.per_receiver().into_iter())
                .map(|(k, n)| format!("{} {n}", k.unwrap_or("-")))
                .collect();
            let _ = writeln!(out, "  receivers: {}", per.join(", "));
        }
        for s in &r.sent {
            let receiver = s.receiver.as_deref().map(|r| format!("{r:<14} ")).unwrap_or_default();
            let _ = writeln!(
                out,
                "  {}  {receiver}{:<11} {:<9} {}",
                rfc3339_millis(s.at),
                s.kind.name(),
                s.severity,
                s.labels
            );
        }
        for a in &r.actions {
            let blocked = a.blocked.map(|b| format!("  refused: {b}")).unwrap_or_default();
            let _ = writeln!(
                out,
                "  {}  action {} on {} {}{blocked}",
                rfc3339_millis(a.at),
                a.action,
                a.event,
                a.labels
            );
        }
    }
    out
}

fn side(r: Option<&RuleReport>) -> Value {
    match r {
        Some(r) => json!({
            "notifications": r.notifications(),
            "firing_seconds": r.firing_seconds(),
            "episodes": r.episodes.len(),
            "longest_episode_seconds": r.longest_ms() as f64 / 1000.0,
            "not_replayable": r.not_replayable,
        }),
        None => json!({
            "notifications": 0,
            "firing_seconds": 0.0,
            "episodes": 0,
            "longest_episode_seconds": 0.0,
            "absent": true,
        }),
    }
}

fn rule_json(r: &RuleReport) -> Value {
    let firing: serde_json::Map<String, Value> = (r.firing_ms.iter())
        .map(|(s, ms)| (s.clone(), json!(*ms as f64 / 1000.0)))
        .collect();
    let receivers: serde_json::Map<String, Value> = (r.per_receiver().into_iter())
        .filter_map(|(k, n)| Some((k?.to_string(), json!(n))))
        .collect();
    let sent: Vec<Value> = (r.sent.iter())
        .map(|s| {
            json!({
                "at": rfc3339_millis(s.at),
                "receiver": s.receiver,
                "event": s.kind.name(),
                "severity": s.severity,
                "labels": s.labels.to_map(),
            })
        })
        .collect();
    let actions: Vec<Value> = (r.actions.iter())
        .map(|a| {
            json!({
                "at": rfc3339_millis(a.at),
                "action": a.action,
                "event": a.event,
                "blocked": a.blocked,
                "labels": a.labels.to_map(),
            })
        })
        .collect();
    let episodes: Vec<Value> = (r.episodes.iter())
        .map(|e| {
            json!({
                "labels": e.instance,
                "start": rfc3339_millis(e.start),
                "end": rfc3339_millis(e.end),
                "seconds": e.duration_ms() as f64 / 1000.0,
                "open": e.open,
                "worst": e.worst,
            })
        })
        .collect();
    let gaps: Vec<Value> = (r.gaps.iter())
        .map(|g| json!({"metric": g.metric, "reason": g.reason}))
        .collect();
    json!({
        "alertname": r.alertname,
        "notifications": r.notifications(),
        "firing_seconds": r.firing_seconds(),
        "episodes": r.episodes.len(),
        "longest_episode_seconds": r.longest_ms() as f64 / 1000.0,
        "firing_seconds_by_severity": firing,
        "receivers": receivers,
        "sent": sent,
        "episode_list": episodes,
        "actions": actions,
        "gaps": gaps,
        "not_replayable": r.not_replayable,
    })
}

fn json_value(head: &Report, diffs: Option<&[RuleDiff<'_>]>) -> Value {
    let rules: Vec<Value> = match diffs {
        None => head.rules.iter().map(rule_json).collect(),
        Some(diffs) => diffs
            .iter()
            .map(|d| {
                let empty = RuleReport {
                    alertname: d.alertname.to_string(),
                    ..RuleReport::default()
                };
                let mut v = rule_json(d.head.unwrap_or(&empty));
                v["base"] = side(d.base);
                v["episodes_added"] = json!(d.added.len());
                v["episodes_removed"] = json!(d.removed.len());
                v["summary"] = json!(d.summary());
                if d.head.is_none() {
                    v["absent"] = json!(true);
                }
                v
            })
            .collect(),
    };
    json!({
        "from": rfc3339_millis(head.from),
        "to": rfc3339_millis(head.to),
        "routed": head.routed,
        "rules": rules,
    })
}

/// Markdown table cells must not break the table.
fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

fn markdown(head: &Report, diffs: Option<&[RuleDiff<'_>]>) -> String {
    let mut out = format!(
        "### tocsin backtest\n\n{} → {}\n\n",
        rfc3339_millis(head.from),
        rfc3339_millis(head.to)
    );
    let mut notes: Vec<String> = Vec::new();
    let mut note = |r: &RuleReport| {
        if let Some(why) = &r.not_replayable {
            notes.push(format!("**{}** not replayable: {}", cell(&r.alertname), cell(why)));
        }
        for g in &r.gaps {
            notes.push(format!(
                "**{}** input `{}`: {}",
                cell(&r.alertname),
                g.metric,
                cell(&g.reason)
            ));
        }
    };
    match diffs {
        None => {
            out.push_str("| rule | notifications | firing | episodes | longest |\n|---|---:|---:|---:|---:|\n");
            for r in &head.rules {
                let _ = writeln!(
                    out,
                    "| {} | {} | {} | {} | {} |",
                    cell(&r.alertname),
                    r.notifications(),
                    seconds_text(r.firing_seconds()),
                    r.episodes.len(),
                    ms_text(r.longest_ms())
                );
                note(r);
            }
        }
        Some(diffs) => {
            out.push_str(
                "| rule | notifications | firing | episodes added | episodes removed |\n|---|---:|---:|---:|---:|\n",
            );
            let mut sentences = Vec::new();
            for d in diffs {
                let (bn, bs) = d.base.map_or((0, 0.0), |r| (r.notifications(), r.firing_seconds()));
                let (hn, hs) = d.head.map_or((0, 0.0), |r| (r.notifications(), r.firing_seconds()));
                let _ = writeln!(
                    out,
                    "| {} | {bn} → {hn} | {} → {} | {} | {} |",
                    cell(d.alertname),
                    seconds_text(bs),
                    seconds_text(hs),
                    d.added.len(),
                    d.removed.len()
                );
                if d.changed() {
                    sentences.push(d.summary());
                }
                d.head.into_iter().for_each(&mut note);
            }
            if !sentences.is_empty() {
                out.push('\n');
                for s in sentences {
                    let _ = writeln!(out, "- {}", cell(&s));
                }
            }
        }
    }
    if !notes.is_empty() {
        out.push_str("\n**Not fully replayed:**\n\n");
        for n in notes {
            let _ = writeln!(out, "- {n}");
        }
    }
    out
}
