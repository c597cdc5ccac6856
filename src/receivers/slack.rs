//! The `slack` receiver: an incoming-webhook body with Block Kit blocks.
//!
//! The body is `{"channel"?, "text", "attachments": [{"color", "blocks"}]}`: `text` is the
//! plain fallback Slack shows in notifications (the title, then the `text` template's
//! output); the single attachment is coloured by severity (see [`color`]) and holds a
//! section with the title, a section with the `text` template's output when there is one,
//! and one section per alert (at most [`MAX_ALERTS`], then "and N more") whose fields list
//! the labels, value, threshold and runbook link (annotation `runbook_url`, else
//! `runbook`).
//!
//! Everything that reaches Slack's text is escaped (`&`, `<`, `>`), template output
//! included: a label value such as `<!channel>` must not ping a whole channel, and a
//! template cannot tell which of its inputs are trusted.

use serde::Serialize;
use serde_json::{Value, json};

use super::console::format_value;
use super::{Slack, context, render_template, severity_rank, status_name, to_json};
use crate::message::{AlertNote, Dispatch, Status};
use crate::template::{TemplateError, Templates};

/// Alerts listed one by one; the rest are counted. Slack allows 50 blocks per message, and
/// a page of more than ten alerts is not read anyway.
pub const MAX_ALERTS: usize = 10;

/// Slack's limit of a section's text and of a field's text are 3000 and 2000 characters;
/// staying below both keeps a huge label or annotation from getting the message refused.
const MAX_FIELD_CHARS: usize = 1900;

#[derive(Serialize)]
struct Message<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    channel: Option<&'a str>,
    text: String,
    attachments: [Attachment; 1],
}

#[derive(Serialize)]
struct Attachment {
    color: &'static str,
    blocks: Vec<Value>,
}

/// The incoming-webhook JSON body of `d` for Slack receiver `s`.
pub fn body(d: &Dispatch, s: &Slack, templates: &Templates, errors: &mut Vec<TemplateError>) -> String {
    let ctx = context(d);
    let title = render_template(templates, s.title, &ctx, errors).unwrap_or_else(|| {
        let mut t = format!("{} is {} ({})", ctx.alertname, ctx.status, ctx.severity);
        if d.alerts.len() > 1 {
            t += &format!(", {} alerts", d.alerts.len());
        }
        t
    });
    let text = render_template(templates, s.text, &ctx, errors);
    let mut blocks = vec![mrkdwn_section(format!("*{}*", escape_cut(&title, MAX_FIELD_CHARS)))];
    if let Some(text) = text.as_deref().filter(|t| !t.trim().is_empty()) {
        blocks.push(mrkdwn_section(escape_cut(text, MAX_FIELD_CHARS)));
    }
    blocks.extend(d.alerts.iter().take(MAX_ALERTS).map(alert_section));
    if d.alerts.len() > MAX_ALERTS {
        blocks.push(json!({
            "type": "context",
            "elements": [{"type": "mrkdwn", "text": format!("and {} more", d.alerts.len() - MAX_ALERTS)}],
        }));
    }
    let fallback = match &text {
        Some(t) if !t.trim().is_empty() => format!("{title}\n{t}"),
        _ => title,
    };
    to_json(&Message {
        channel: s.channel.as_deref(),
        text: escape(&fallback),
        attachments: [Attachment {
            color: color(d),
            blocks,
        }],
    })
}

/// The attachment colour: green once the whole group is resolved, else by the worst
/// severity among firing alerts: red for `emergency`/`critical`, orange for `high`/`error`,
/// yellow for `warning`, blue for anything else.
pub fn color(d: &Dispatch) -> &'static str {
    if d.status() == Status::Resolved {
        return "#2eb67d";
    }
    let worst = d
        .alerts
        .iter()
        .filter(|a| a.status == Status::Firing)
        .map(|a| severity_rank(&a.severity))
        .max()
        .unwrap_or(0);
    match worst {
        3 => "#d00000",
        2 => "#e8590c",
        1 => "#f2c744",
        _ => "#439fe0",
    }
}

fn mrkdwn_section(text: String) -> Value {
    json!({"type": "section", "text": {"type": "mrkdwn", "text": text}})
}

/// One alert: headline and summary, then fields for labels, value, threshold and runbook.
fn alert_section(a: &AlertNote) -> Value {
    let mut text = format!(
        "*{}* {} ({})",
        escape(a.alertname()),
        status_name(a.status),
        escape(&a.severity)
    );
    if let Some(summary) = a
        .annotations
        .get("summary")
        .or_else(|| a.annotations.get("description"))
    {
        text.push('\n');
        text.push_str(&escape_cut(summary, MAX_FIELD_CHARS));
    }
    let mut fields = Vec::new();
    let labels: Vec<String> = a
        .labels
        .iter()
        .filter(|(k, _)| *k != "alertname" && *k != "severity")
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    if !labels.is_empty() {
        fields.push(format!("*Labels*\n{}", escape_cut(&labels.join("\n"), MAX_FIELD_CHARS)));
    }
    if let Some(v) = a.value {
        fields.push(format!("*Value*\n{}", format_value(v)));
    }
    if let Some(t) = a.threshold {
        fields.push(format!("*Threshold*\n{}", format_value(t)));
    }
    if let Some(url) = a
        .annotations
        .get("runbook_url")
        .or_else(|| a.annotations.get("runbook"))
    {
        fields.push(runbook(url));
    }
    let mut section = mrkdwn_section(text);
    if !fields.is_empty() {
        section["fields"] = fields
            .into_iter()
            .map(|f| json!({"type": "mrkdwn", "text": f}))
            .collect();
    }
    section
}

/// A runbook as a Slack link when it is an http(s) URL, else as text: `<…|…>` around
/// anything else would make Slack guess.
fn runbook(url: &str) -> String {
    let url = url.trim();
    if url.starts_with("https://") || url.starts_with("http://") {
        // `|` ends the URL part of a Slack link; inside a URL it is the same as `%7C`.
        format!("<{}|Runbook>", escape(url).replace('|', "%7C"))
    } else {
        format!("*Runbook*\n{}", escape_cut(url, MAX_FIELD_CHARS))
    }
}

/// Slack's escaping of message text: only `&`, `<` and `>`, which start entities, links
/// and mentions.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match entity(c) {
            Some(e) => out.push_str(e),
            None => out.push(c),
        }
    }
    out
}

fn entity(c: char) -> Option<&'static str> {
    match c {
        '&' => Some("&amp;"),
        '<' => Some("&lt;"),
        '>' => Some("&gt;"),
        _ => None,
    }
}

/// [`escape`]d `s`, cut to at most `max` characters (ending in `…` when cut) without
/// splitting an entity: Slack refuses texts over its limits, and escaping can grow a text
/// fivefold.
fn escape_cut(s: &str, max: usize) -> String {
    let full = escape(s);
    if full.chars().count() <= max {
        return full;
    }
    let mut out = String::new();
    let mut len = 0;
    for c in s.chars() {
        let n = entity(c).map_or(1, str::len);
        if len + n >= max {
            break;
        }
        match entity(c) {
            Some(e) => out.push_str(e),
            None => out.push(c),
        }
        len += n;
    }
    out.push('…');
    out
}
