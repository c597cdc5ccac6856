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

use std::time::Duration;

use super::console::format_value;
use super::{Compiler, DEFAULT_TIMEOUT, context, dur, render_template, status_name, to_json, worst_firing_rank};
use crate::config::SlackDef;
use crate::message::{AlertNote, Dispatch, Status};
use crate::template::{TemplateError, TemplateRef, Templates};

/// Settings of a `slack` receiver.
#[derive(Clone, Debug)]
pub struct Slack {
    /// The incoming-webhook URL (a secret: never logged).
    pub webhook_url: String,
    /// Channel override.
    pub channel: Option<String>,
    /// Title template (default: alert name, status and severity).
    pub title: Option<TemplateRef>,
    /// Text template (default: a summary of the alerts).
    pub text: Option<TemplateRef>,
    /// Request time limit.
    pub timeout: Duration,
}

/// A `slack` definition with its templates compiled.
pub fn compile(s: &SlackDef, cx: &mut Compiler<'_>) -> Slack {
    Slack {
        webhook_url: s.webhook_url.expose().to_string(),
        channel: s.channel.as_ref().map(|t| t.expose().to_string()),
        title: cx.template(s.title.as_ref()),
        text: cx.template(s.text.as_ref()),
        timeout: dur(&s.timeout, DEFAULT_TIMEOUT),
    }
}

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
        let mut t = format!("{} is {} ({})", ctx.alertname, super::headline(d), ctx.severity);
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
    match worst_firing_rank(d) {
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

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::receivers::testing::*;
    use crate::template::Templates;

    fn slack(channel: Option<&str>) -> Slack {
        Slack {
            webhook_url: "http://slack".into(),
            channel: channel.map(str::to_string),
            title: None,
            text: None,
            timeout: std::time::Duration::from_secs(1),
        }
    }

    fn render(d: &Dispatch, s: &Slack, t: &Templates) -> (Value, Vec<TemplateError>) {
        let mut errors = Vec::new();
        let v = serde_json::from_str(&body(d, s, t, &mut errors)).unwrap();
        (v, errors)
    }

    #[test]
    fn an_acknowledgement_says_so_in_the_default_title() {
        let mut a = firing(1, "HighCpu", "critical", &[]);
        a.kind = crate::alert::notify::NoteKind::Acknowledged;
        let (v, _) = render(&dispatch("chat", vec![a]), &slack(None), &Templates::new());
        assert_eq!(v["text"], "HighCpu is acknowledged (critical)");
    }

    #[test]
    fn one_alert_with_labels_value_threshold_and_runbook() {
        let mut a = firing(1, "HighCpu", "critical", &[("instance", "host-1"), ("job", "node")]);
        a.annotations
            .insert("runbook_url".into(), "https://wiki/run?a=1&b=2".into());
        let d = dispatch("chat", vec![a]);
        let (v, errors) = render(&d, &slack(Some("#ops")), &Templates::new());
        assert!(errors.is_empty());
        assert_eq!(
            v,
            json!({
                "channel": "#ops",
                "text": "HighCpu is firing (critical)",
                "attachments": [{
                    "color": "#d00000",
                    "blocks": [
                        {"type": "section", "text": {"type": "mrkdwn", "text": "*HighCpu is firing (critical)*"}},
                        {
                            "type": "section",
                            "text": {"type": "mrkdwn", "text": "*HighCpu* firing (critical)\nHighCpu is bad"},
                            "fields": [
                                {"type": "mrkdwn", "text": "*Labels*\ninstance=host-1\njob=node"},
                                {"type": "mrkdwn", "text": "*Value*\n97"},
                                {"type": "mrkdwn", "text": "*Threshold*\n90"},
                                {"type": "mrkdwn", "text": "<https://wiki/run?a=1&amp;b=2|Runbook>"}
                            ]
                        }
                    ]
                }]
            })
        );
    }

    #[test]
    fn templates_render_against_the_group_and_more_than_ten_alerts_are_counted() {
        let alerts: Vec<_> = (0..12)
            .map(|i| firing(i, "DiskFull", "warning", &[("mount", &format!("/m{i}"))]))
            .collect();
        let d = dispatch("chat", alerts);
        let mut t = Templates::new();
        let mut s = slack(None);
        s.title = Some(t.add("{{ alerts | length }} × {{ alertname }}").unwrap());
        s.text = Some(t.add("first: {{ labels.mount }}").unwrap());
        let (v, errors) = render(&d, &s, &t);
        assert!(errors.is_empty());
        assert!(v.get("channel").is_none());
        assert_eq!(v["text"], "12 × DiskFull\nfirst: /m0");
        let blocks = v["attachments"][0]["blocks"].as_array().unwrap();
        assert_eq!(blocks.len(), 2 + MAX_ALERTS + 1);
        assert_eq!(blocks[0]["text"]["text"], "*12 × DiskFull*");
        assert_eq!(blocks[1]["text"]["text"], "first: /m0");
        assert_eq!(blocks.last().unwrap()["elements"][0]["text"], "and 2 more");
        assert_eq!(v["attachments"][0]["color"], "#f2c744");
    }

    #[test]
    fn colour_follows_the_worst_firing_severity() {
        let cases: &[(&[&str], &str)] = &[
            (&["info", "emergency"], "#d00000"),
            (&["critical"], "#d00000"),
            (&["warning", "high"], "#e8590c"),
            (&["error"], "#e8590c"),
            (&["warning", "info"], "#f2c744"),
            (&["info"], "#439fe0"),
            (&["page-someone"], "#439fe0"),
            (&["page"], "#d00000"),
        ];
        for (severities, want) in cases {
            let alerts = severities
                .iter()
                .enumerate()
                .map(|(i, s)| firing(i as u64, "A", s, &[]))
                .collect();
            assert_eq!(color(&dispatch("c", alerts)), *want, "{severities:?}");
        }
        // A resolved critical does not make a firing warning red; an all-resolved group is green.
        let d = dispatch(
            "c",
            vec![
                firing(1, "A", "warning", &[]),
                resolved(firing(2, "A", "critical", &[])),
            ],
        );
        assert_eq!(color(&d), "#f2c744");
        assert_eq!(
            color(&dispatch("c", vec![resolved(firing(2, "A", "critical", &[]))])),
            "#2eb67d"
        );
    }

    #[test]
    fn everything_is_escaped_template_output_included() {
        let mut a = firing(1, "Bad<Alert>", "critical", &[("who", "<!channel> & co")]);
        a.annotations.insert("summary".into(), "x > y".into());
        a.annotations.insert("runbook".into(), "see <wiki>".into());
        let d = dispatch("chat", vec![a]);
        let mut t = Templates::new();
        let mut s = slack(None);
        s.text = Some(t.add("{{ labels.who }}").unwrap());
        let (v, _) = render(&d, &s, &t);
        let text = v.to_string();
        assert!(!text.contains("<!channel>"), "{text}");
        assert_eq!(
            v["text"],
            "Bad&lt;Alert&gt; is firing (critical)\n&lt;!channel&gt; &amp; co"
        );
        let blocks = &v["attachments"][0]["blocks"];
        assert_eq!(blocks[1]["text"]["text"], "&lt;!channel&gt; &amp; co");
        assert_eq!(
            blocks[2]["text"]["text"],
            "*Bad&lt;Alert&gt;* firing (critical)\nx &gt; y"
        );
        assert_eq!(
            blocks[2]["fields"][0]["text"],
            "*Labels*\nwho=&lt;!channel&gt; &amp; co"
        );
        assert_eq!(blocks[2]["fields"][3]["text"], "*Runbook*\nsee &lt;wiki&gt;");
    }

    #[test]
    fn long_texts_are_cut_without_splitting_entities() {
        assert_eq!(escape_cut("a<b", 10), "a&lt;b");
        assert_eq!(escape_cut("abcdef", 6), "abcdef");
        assert_eq!(escape_cut("abcdefg", 6), "abcde…");
        assert_eq!(escape_cut("ab<<<<", 6), "ab…");
        assert!(escape_cut(&"&".repeat(5000), MAX_FIELD_CHARS).chars().count() <= MAX_FIELD_CHARS);
    }
}
