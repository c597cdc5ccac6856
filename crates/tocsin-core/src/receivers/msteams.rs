//! The `msteams` receiver: an Adaptive Card posted to a Teams workflow webhook.
//!
//! The body is `{"type": "message", "attachments": [{"contentType":
//! "application/vnd.microsoft.card.adaptive", "content": <AdaptiveCard 1.4>}]}`, what a
//! Teams "post to a channel when a webhook request is received" workflow takes. The card
//! has a header container styled by severity (see [`style`]: the colours Slack gets, in
//! Adaptive Card's named styles), the title, the `text` template's output when there is
//! one, and one container per alert (at most [`MAX_ALERTS`], then "and N more") with its
//! summary, a fact set of labels, value and threshold, and a "Runbook" button for an
//! http(s) `runbook_url` (else `runbook`) annotation.
//!
//! Teams renders Markdown in TextBlocks and facts, so every value placed there is escaped
//! ([`escape`]), template output included: a label value such as `[x](https://evil)` must
//! stay text.

use std::time::Duration;

use serde_json::{Value, json};

use super::console::format_value;
use super::{
    Compiler, DEFAULT_TIMEOUT, context, dur, render_template, severity_rank, status_name, to_json, worst_firing_rank,
};
use crate::config::MsteamsDef;
use crate::message::{AlertNote, Dispatch, Status};
use crate::template::{TemplateError, TemplateRef, Templates};

/// Alerts listed one by one; the rest are counted. Teams refuses cards over 28 KB.
pub const MAX_ALERTS: usize = 10;

/// The longest text placed in one TextBlock or fact, so one huge annotation cannot get the
/// card refused.
const MAX_TEXT_CHARS: usize = 2000;

/// Settings of an `msteams` receiver.
#[derive(Clone, Debug)]
pub struct Msteams {
    /// The workflow's webhook URL (a secret: never logged).
    pub webhook_url: String,
    /// Title template (default: alert name, status and severity).
    pub title: Option<TemplateRef>,
    /// Text template.
    pub text: Option<TemplateRef>,
    /// Request time limit.
    pub timeout: Duration,
}

/// An `msteams` definition with its templates compiled.
pub fn compile(t: &MsteamsDef, cx: &mut Compiler<'_>) -> Msteams {
    Msteams {
        webhook_url: t.webhook_url.expose().to_string(),
        title: cx.template(t.title.as_ref()),
        text: cx.template(t.text.as_ref()),
        timeout: dur(&t.timeout, DEFAULT_TIMEOUT),
    }
}

/// The workflow webhook body of `d` for Teams receiver `t`.
pub fn body(d: &Dispatch, t: &Msteams, templates: &Templates, errors: &mut Vec<TemplateError>) -> String {
    let ctx = context(d);
    let title = render_template(templates, t.title, &ctx, errors).unwrap_or_else(|| {
        let mut s = format!("{} is {} ({})", ctx.alertname, ctx.status, ctx.severity);
        if d.alerts.len() > 1 {
            s += &format!(", {} alerts", d.alerts.len());
        }
        s
    });
    let text = render_template(templates, t.text, &ctx, errors);
    let mut header = vec![json!({
        "type": "TextBlock",
        "text": escape_cut(&title),
        "weight": "Bolder",
        "size": "Medium",
        "wrap": true,
    })];
    if let Some(text) = text.as_deref().filter(|s| !s.trim().is_empty()) {
        header.push(json!({"type": "TextBlock", "text": escape_cut(text), "wrap": true}));
    }
    let mut body = vec![json!({
        "type": "Container",
        "style": style(d),
        "bleed": true,
        "items": header,
    })];
    body.extend(d.alerts.iter().take(MAX_ALERTS).map(alert_container));
    if d.alerts.len() > MAX_ALERTS {
        body.push(json!({
            "type": "TextBlock",
            "text": format!("and {} more", d.alerts.len() - MAX_ALERTS),
            "isSubtle": true,
            "wrap": true,
        }));
    }
    to_json(&json!({
        "type": "message",
        "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive",
            "contentUrl": null,
            "content": {
                "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                "type": "AdaptiveCard",
                "version": "1.4",
                "msteams": {"width": "Full"},
                "body": body,
            },
        }],
    }))
}

/// The header's container style: `good` (green) once the whole group is resolved, else by
/// the worst severity among firing alerts: `attention` (red) for `emergency`/`critical`,
/// `warning` (orange) for `high`/`error` and `warning`, `accent` (blue) for anything else.
/// Adaptive Cards name styles rather than colours, and have one fewer than Slack's colours.
pub fn style(d: &Dispatch) -> &'static str {
    if d.status() == Status::Resolved {
        return "good";
    }
    match worst_firing_rank(d) {
        3 => "attention",
        1 | 2 => "warning",
        _ => "accent",
    }
}

/// One alert: headline, summary, facts (labels, value, threshold) and the runbook button.
fn alert_container(a: &AlertNote) -> Value {
    let color = match (a.status, severity_rank(&a.severity)) {
        (Status::Resolved, _) => "good",
        (_, 3) => "attention",
        (_, 1 | 2) => "warning",
        _ => "accent",
    };
    let mut items = vec![json!({
        "type": "TextBlock",
        "text": format!("**{}** {} ({})", escape(a.alertname()), status_name(a.status), escape(&a.severity)),
        "color": color,
        "wrap": true,
    })];
    if let Some(summary) = a
        .annotations
        .get("summary")
        .or_else(|| a.annotations.get("description"))
    {
        items.push(json!({"type": "TextBlock", "text": escape_cut(summary), "wrap": true}));
    }
    let mut facts: Vec<Value> = a
        .labels
        .iter()
        .filter(|(k, _)| *k != "alertname" && *k != "severity")
        .map(|(k, v)| json!({"title": escape(k), "value": escape_cut(v)}))
        .collect();
    if let Some(v) = a.value {
        facts.push(json!({"title": "Value", "value": escape(&format_value(v))}));
    }
    if let Some(t) = a.threshold {
        facts.push(json!({"title": "Threshold", "value": escape(&format_value(t))}));
    }
    if !facts.is_empty() {
        items.push(json!({"type": "FactSet", "facts": facts}));
    }
    let runbook = a
        .annotations
        .get("runbook_url")
        .or_else(|| a.annotations.get("runbook"))
        .map(|u| u.trim());
    match runbook {
        Some(url) if url.starts_with("https://") || url.starts_with("http://") => items.push(json!({
            "type": "ActionSet",
            "actions": [{"type": "Action.OpenUrl", "title": "Runbook", "url": url}],
        })),
        Some(other) => items.push(json!({
            "type": "TextBlock",
            "text": format!("Runbook: {}", escape_cut(other)),
            "wrap": true,
        })),
        None => {}
    }
    json!({"type": "Container", "separator": true, "items": items})
}

/// Escapes what Teams' Markdown would act on, so a value shows as written: a backslash
/// before each of `\ * _ ~ ` [ ] ( ) # < >` anywhere, and before a `-`, `+` or a number's
/// `.` that would start a list at the beginning of a line.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for line in s.split_inclusive('\n') {
        let body = line.trim_start_matches([' ', '\t']);
        out.push_str(&line[..line.len() - body.len()]);
        let digits = body.chars().take_while(char::is_ascii_digit).count();
        let list_dot = digits > 0 && body[digits..].starts_with('.');
        for (i, c) in body.char_indices() {
            let starts_list = (i == 0 && (c == '-' || c == '+')) || (list_dot && i == digits);
            if starts_list
                || matches!(
                    c,
                    '\\' | '*' | '_' | '~' | '`' | '[' | ']' | '(' | ')' | '#' | '<' | '>'
                )
            {
                out.push('\\');
            }
            out.push(c);
        }
    }
    out
}

/// [`escape`]d `s`, cut to [`MAX_TEXT_CHARS`] characters of the original (ending in `…`).
fn escape_cut(s: &str) -> String {
    if s.chars().count() <= MAX_TEXT_CHARS {
        return escape(s);
    }
    let cut: String = s.chars().take(MAX_TEXT_CHARS - 1).collect();
    escape(&cut) + "…"
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::receivers::testing::*;

    fn teams() -> Msteams {
        Msteams {
            webhook_url: "https://example.webhook.office.com/x".into(),
            title: None,
            text: None,
            timeout: DEFAULT_TIMEOUT,
        }
    }

    fn card(d: &Dispatch) -> Value {
        let mut errors = Vec::new();
        let v: Value = serde_json::from_str(&body(d, &teams(), &Templates::new(), &mut errors)).unwrap();
        assert!(errors.is_empty());
        assert_eq!(v["type"], "message");
        assert_eq!(
            v["attachments"][0]["contentType"],
            "application/vnd.microsoft.card.adaptive"
        );
        v["attachments"][0]["content"].clone()
    }

    #[test]
    fn a_card_lists_each_alert_with_facts_and_runbook() {
        let mut a = firing(1, "HighCpu", "critical", &[("host", "db_1")]);
        a.annotations
            .insert("runbook_url".into(), "https://runbooks/cpu".into());
        let c = card(&dispatch("teams", vec![a]));
        assert_eq!(c["type"], "AdaptiveCard");
        assert_eq!(c["version"], "1.4");
        assert_eq!(c["body"][0]["style"], "attention");
        assert_eq!(c["body"][0]["items"][0]["text"], "HighCpu is firing \\(critical\\)");
        let alert = &c["body"][1]["items"];
        assert_eq!(alert[0]["text"], "**HighCpu** firing (critical)");
        assert_eq!(alert[1]["text"], "HighCpu is bad");
        assert_eq!(
            alert[2]["facts"],
            json!([
                {"title": "host", "value": "db\\_1"},
                {"title": "Value", "value": "97"},
                {"title": "Threshold", "value": "90"}
            ])
        );
        assert_eq!(
            alert[3]["actions"][0],
            json!({"type": "Action.OpenUrl", "title": "Runbook", "url": "https://runbooks/cpu"})
        );
    }

    #[test]
    fn the_header_is_styled_by_the_worst_firing_severity() {
        let style_of = |alerts: Vec<AlertNote>| style(&dispatch("teams", alerts));
        assert_eq!(style_of(vec![firing(1, "A", "warning", &[])]), "warning");
        assert_eq!(style_of(vec![firing(1, "A", "info", &[])]), "accent");
        assert_eq!(
            style_of(vec![firing(1, "A", "warning", &[]), firing(2, "A", "emergency", &[])]),
            "attention"
        );
        assert_eq!(style_of(vec![resolved(firing(1, "A", "critical", &[]))]), "good");
    }

    #[test]
    fn markdown_in_values_stays_text() {
        assert_eq!(
            escape("[x](https://evil) *b* _i_"),
            "\\[x\\]\\(https://evil\\) \\*b\\* \\_i\\_"
        );
        assert_eq!(
            escape("- item\n  2. two\nhost-1 v1.2"),
            "\\- item\n  2\\. two\nhost-1 v1.2"
        );
        assert_eq!(
            escape("# h <at>x</at> `c` ~s~ \\"),
            "\\# h \\<at\\>x\\</at\\> \\`c\\` \\~s\\~ \\\\"
        );
    }
}
