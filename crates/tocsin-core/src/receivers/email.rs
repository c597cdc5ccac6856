//! The `email` receiver: subject, plain-text part and HTML part of one message.
//!
//! The subject is the `subject` template's output, or `[SEVERITY] alertname is status`
//! (plus ` (N alerts)` for a group), on one line. Both parts list every alert: status,
//! alert name, severity, value, threshold, start and end (RFC 3339 UTC), labels and
//! annotations. The HTML part is one table; every value in it is HTML-escaped, and
//! annotations that are http(s) URLs (runbooks, dashboards) become links.

use std::fmt::Write as _;
use std::time::Duration;

use super::console::format_value;
use super::{Compiler, DEFAULT_TIMEOUT, Rendered, context, dur, render_template, rfc3339_millis, status_name};
use crate::config::{EmailDef, TlsMode};
use crate::message::{AlertNote, Dispatch};
use crate::template::{TemplateError, TemplateRef, Templates};

/// Settings of an `email` receiver.
#[derive(Clone, Debug)]
pub struct Email {
    /// Recipients.
    pub to: Vec<String>,
    /// Sender.
    pub from: String,
    /// SMTP server host.
    pub host: String,
    /// SMTP server port.
    pub port: u16,
    /// Transport security.
    pub tls: TlsMode,
    /// Login, when both are set.
    pub username: Option<String>,
    /// Password (a secret: never logged).
    pub password: Option<String>,
    /// Subject template (default: `[SEVERITY] alertname is status`).
    pub subject: Option<TemplateRef>,
    /// Time limit of one SMTP transaction.
    pub timeout: Duration,
}

/// An `email` definition with its defaults (STARTTLS, 10 s) and its subject compiled.
pub fn compile(e: &EmailDef, cx: &mut Compiler<'_>) -> Email {
    Email {
        to: e.to.iter().map(|t| t.expose().to_string()).collect(),
        from: e.from.expose().to_string(),
        host: e.smtp.host.expose().to_string(),
        port: *e.smtp.port,
        tls: e.smtp.tls.unwrap_or(TlsMode::Starttls),
        username: e.smtp.username.as_ref().map(|t| t.expose().to_string()),
        password: e.smtp.password.as_ref().map(|t| t.expose().to_string()),
        subject: cx.template(e.subject.as_ref()),
        timeout: dur(&e.timeout, DEFAULT_TIMEOUT),
    }
}

/// The email of `d` for email receiver `e`.
pub fn message(d: &Dispatch, e: &Email, templates: &Templates, errors: &mut Vec<TemplateError>) -> Rendered {
    let ctx = context(d);
    let subject = render_template(templates, e.subject, &ctx, errors).unwrap_or_else(|| {
        let mut s = format!(
            "[{}] {} is {}",
            ctx.severity.to_uppercase(),
            ctx.alertname,
            super::headline(d)
        );
        if d.alerts.len() > 1 {
            let _ = write!(s, " ({} alerts)", d.alerts.len());
        }
        s
    });
    // A subject is one header line: a template's line breaks would end up folded or refused.
    let subject = subject.split_whitespace().collect::<Vec<_>>().join(" ");
    Rendered::Email {
        text: text_part(d, &subject),
        html: html_part(d, &subject),
        subject,
    }
}

fn text_part(d: &Dispatch, subject: &str) -> String {
    let mut s = format!("{subject}\n");
    for a in &d.alerts {
        let _ = write!(
            s,
            "\n[{}] {} ({})\n",
            status_name(a.status).to_uppercase(),
            a.alertname(),
            a.severity
        );
        if let Some(v) = a.value {
            let _ = writeln!(s, "  value: {}", format_value(v));
        }
        if let Some(t) = a.threshold {
            let _ = writeln!(s, "  threshold: {}", format_value(t));
        }
        let _ = writeln!(s, "  starts_at: {}", rfc3339_millis(a.starts_at));
        if let Some(end) = a.ends_at {
            let _ = writeln!(s, "  ends_at: {}", rfc3339_millis(end));
        }
        let labels: Vec<(&str, &str)> = shown_labels(a).collect();
        if !labels.is_empty() {
            s += "  labels:\n";
            for (k, v) in labels {
                let _ = writeln!(s, "    {k}: {v}");
            }
        }
        if !a.annotations.is_empty() {
            s += "  annotations:\n";
            for (k, v) in &a.annotations {
                let _ = writeln!(s, "    {k}: {v}");
            }
        }
    }
    s
}

fn html_part(d: &Dispatch, subject: &str) -> String {
    let subject = html_escape(subject);
    let mut h = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{subject}</title></head><body>\
         <h2>{subject}</h2><table border=\"1\" cellpadding=\"4\" cellspacing=\"0\" style=\"border-collapse:collapse\">\
         <tr><th>status</th><th>alert</th><th>severity</th><th>value</th><th>threshold</th>\
         <th>starts at</th><th>ends at</th><th>labels</th><th>annotations</th></tr>"
    );
    for a in &d.alerts {
        let labels: Vec<String> = shown_labels(a)
            .map(|(k, v)| format!("{}={}", html_escape(k), html_escape(v)))
            .collect();
        let annotations: Vec<String> = a
            .annotations
            .iter()
            .map(|(k, v)| format!("{}: {}", html_escape(k), html_value(v)))
            .collect();
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            status_name(a.status),
            html_escape(a.alertname()),
            html_escape(&a.severity),
            a.value.map(format_value).unwrap_or_default(),
            a.threshold.map(format_value).unwrap_or_default(),
            rfc3339_millis(a.starts_at),
            a.ends_at.map(rfc3339_millis).unwrap_or_default(),
            labels.join("<br>"),
            annotations.join("<br>"),
        );
    }
    h += "</table></body></html>\n";
    h
}

/// Labels other than `alertname` and `severity`, which each alert's heading already shows.
fn shown_labels(a: &AlertNote) -> impl Iterator<Item = (&str, &str)> {
    a.labels.iter().filter(|(k, _)| *k != "alertname" && *k != "severity")
}

/// An annotation value: a link when it is an http(s) URL, else text.
fn html_value(v: &str) -> String {
    let e = html_escape(v);
    if (v.starts_with("https://") || v.starts_with("http://")) && !v.contains(char::is_whitespace) {
        format!("<a href=\"{e}\">{e}</a>")
    } else {
        e
    }
}

/// Escapes text for HTML element content and double- or single-quoted attributes.
pub fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::TlsMode;
    use crate::receivers::testing::*;

    fn email() -> Email {
        Email {
            to: vec!["a@example.com".into()],
            from: "t@example.com".into(),
            host: "smtp".into(),
            port: 25,
            tls: TlsMode::None,
            username: None,
            password: None,
            subject: None,
            timeout: std::time::Duration::from_secs(1),
        }
    }

    fn parts(d: &Dispatch, e: &Email, t: &Templates) -> (String, String, String) {
        let mut errors = Vec::new();
        let Rendered::Email { subject, text, html } = message(d, e, t, &mut errors) else {
            panic!()
        };
        assert!(errors.is_empty(), "{errors:?}");
        (subject, text, html)
    }

    #[test]
    fn default_subject_and_text_part() {
        let d = dispatch(
            "mail",
            vec![
                firing(1, "HighCpu", "critical", &[("instance", "host-1")]),
                resolved(firing(2, "HighCpu", "warning", &[("instance", "host-2")])),
            ],
        );
        let (subject, text, _) = parts(&d, &email(), &Templates::new());
        assert_eq!(subject, "[CRITICAL] HighCpu is firing (2 alerts)");
        assert_eq!(
            text,
            "[CRITICAL] HighCpu is firing (2 alerts)

[FIRING] HighCpu (critical)
  value: 97
  threshold: 90
  starts_at: 2026-11-23T08:00:00.000Z
  labels:
    instance: host-1
  annotations:
    summary: HighCpu is bad

[RESOLVED] HighCpu (warning)
  value: 97
  threshold: 90
  starts_at: 2026-11-23T08:00:00.000Z
  ends_at: 2026-11-23T08:00:06.500Z
  labels:
    instance: host-2
  annotations:
    summary: HighCpu is bad
"
        );
        let one = dispatch("mail", vec![firing(1, "HighCpu", "critical", &[])]);
        assert_eq!(
            parts(&one, &email(), &Templates::new()).0,
            "[CRITICAL] HighCpu is firing"
        );
    }

    #[test]
    fn an_acknowledgement_says_so_in_the_default_subject() {
        let mut a = firing(1, "HighCpu", "critical", &[]);
        a.kind = crate::alert::notify::NoteKind::Acknowledged;
        let (subject, _, _) = parts(&dispatch("mail", vec![a]), &email(), &Templates::new());
        assert_eq!(subject, "[CRITICAL] HighCpu is acknowledged");
    }

    #[test]
    fn subject_template_is_one_line() {
        let mut t = Templates::new();
        let mut e = email();
        e.subject = Some(
            t.add("{{ severity | upper }}\n{{ alertname }}  ({{ alerts | length }})")
                .unwrap(),
        );
        let d = dispatch("mail", vec![firing(1, "HighCpu", "critical", &[])]);
        assert_eq!(parts(&d, &e, &t).0, "CRITICAL HighCpu (1)");
    }

    #[test]
    fn html_part_escapes_every_value() {
        let mut a = firing(1, "HighCpu", "critical", &[("host", "<script>alert(1)</script>")]);
        a.annotations
            .insert("runbook_url".into(), "https://wiki/r?a=1&b=\"2\"".into());
        a.annotations.insert("summary".into(), "x < y & z".into());
        let d = dispatch("mail", vec![a]);
        let (_, _, html) = parts(&d, &email(), &Templates::new());
        assert!(!html.contains("<script>"), "{html}");
        assert!(html.contains("host=&lt;script&gt;alert(1)&lt;/script&gt;"), "{html}");
        assert!(html.contains("summary: x &lt; y &amp; z"), "{html}");
        assert!(
            html.contains("<a href=\"https://wiki/r?a=1&amp;b=&quot;2&quot;\">"),
            "{html}"
        );
        assert!(html.contains(
            "<tr><td>firing</td><td>HighCpu</td><td>critical</td><td>97</td><td>90</td>\
             <td>2026-11-23T08:00:00.000Z</td><td></td>"
        ));
    }
}
