//! The `email` receiver: subject, plain-text part and HTML part of one message.
//!
//! The subject is the `subject` template's output, or `[SEVERITY] alertname is status`
//! (plus ` (N alerts)` for a group), on one line. Both parts list every alert: status,
//! alert name, severity, value, threshold, start and end (RFC 3339 UTC), labels and
//! annotations. The HTML part is one table; every value in it is HTML-escaped, and
//! annotations that are http(s) URLs (runbooks, dashboards) become links.

use std::fmt::Write as _;

use super::console::format_value;
use super::{Email, Rendered, context, render_template, rfc3339_millis, status_name};
use crate::message::{AlertNote, Dispatch};
use crate::template::{TemplateError, Templates};

/// The email of `d` for email receiver `e`.
pub fn message(d: &Dispatch, e: &Email, templates: &Templates, errors: &mut Vec<TemplateError>) -> Rendered {
    let ctx = context(d);
    let subject = render_template(templates, e.subject, &ctx, errors).unwrap_or_else(|| {
        let mut s = format!("[{}] {} is {}", ctx.severity.to_uppercase(), ctx.alertname, ctx.status);
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
