//! The `console` receiver: one human-readable line per notification.

use std::fmt::Write as _;

use super::rfc3339_millis;
use crate::alert::notify::NoteKind;
use crate::message::{AlertNote, Dispatch};
use crate::series::Labels;

/// The line printed for an alert of a dispatch, told as `kind`: its time, event, alert,
/// severity, value, labels and the `summary` annotation when there is one.
pub fn note_line(a: &AlertNote, kind: NoteKind) -> String {
    let summary = a.annotations.get("summary").map(String::as_str);
    format_line(&rfc3339_millis(a.at), kind, &a.labels, &a.severity, a.value, summary)
}

/// The console rendering of a dispatch: one [`note_line`] per item of its news, in order,
/// joined by newlines. News whose alert the dispatch does not carry is skipped: there is
/// nothing to print about it.
pub fn lines(d: &Dispatch) -> String {
    d.news
        .iter()
        .filter_map(|(fp, kind)| d.alerts.iter().find(|a| a.instance == *fp).map(|a| note_line(a, *kind)))
        .collect::<Vec<_>>()
        .join("\n")
}

fn format_line(
    at_rfc3339: &str,
    kind: NoteKind,
    labels: &Labels,
    severity: &str,
    value: Option<f64>,
    summary: Option<&str>,
) -> String {
    let mut s = format!(
        "{at_rfc3339} {:<11} {} severity={}",
        kind.name().to_uppercase(),
        labels.get("alertname").unwrap_or("?"),
        severity
    );
    if let Some(v) = value {
        let _ = write!(s, " value={}", format_value(v));
    }
    let labels: Vec<String> = labels
        .iter()
        .filter(|(k, _)| *k != "alertname" && *k != "severity")
        .map(|(k, v)| format!("{k}={v:?}"))
        .collect();
    if !labels.is_empty() {
        let _ = write!(s, " {{{}}}", labels.join(", "));
    }
    if let Some(summary) = summary.filter(|s| !s.is_empty()) {
        let _ = write!(s, " — {summary}");
    }
    s
}

/// A value with at most 3 decimals and no trailing zeros.
pub fn format_value(v: f64) -> String {
    if v.is_finite() {
        let s = format!("{v:.3}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        v.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dispatch_prints_one_line_per_news() {
        use crate::receivers::testing::*;
        let a = firing(1, "HighCpu", "critical", &[("host", "a")]);
        let b = resolved(firing(2, "HighCpu", "warning", &[("host", "b")]));
        let mut d = dispatch("con", vec![a, b]);
        // The news says what happened; an alert carried along without news is not printed.
        d.news = vec![(2, NoteKind::Resolved), (1, NoteKind::Escalated), (9, NoteKind::Firing)];
        assert_eq!(
            lines(&d),
            "2026-11-23T08:00:06.500Z RESOLVED    HighCpu severity=warning value=97 {host=\"b\"} — HighCpu is bad\n\
             2026-11-23T08:00:00.000Z ESCALATED   HighCpu severity=critical value=97 {host=\"a\"} — HighCpu is bad"
        );
        d.news.clear();
        assert_eq!(lines(&d), "");
        assert_eq!(format_value(85.0), "85");
    }
}
