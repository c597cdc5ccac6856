//! An Alertmanager configuration into a tocsin receivers file.
//!
//! - The route tree becomes tocsin's ordered route list, depth first: each route's children
//!   (with the matchers of every route above them) before the route itself, which then
//!   catches what no child took, as Alertmanager's parent does. `match`, `match_re` and
//!   `matchers` with `=` and `=~` translate; `!=` and `!~` have no tocsin spelling and keep
//!   the route out, reported. A matcher on an alert name that the rule import merged into
//!   a tiered rule becomes that rule's name plus the tiers' severities.
//! - Receivers: webhook, Slack, email, PagerDuty (Events API v2) and MS Teams; a receiver
//!   with several configurations becomes one tocsin receiver per configuration, all named
//!   by the routes. Other kinds are reported. `global` SMTP and Slack settings apply.
//! - Templates of titles and subjects translate when they only read group labels,
//!   annotations and the status; otherwise the receiver's default text is used, reported.
//! - `inhibit_rules` and `time_intervals` (with routes' `mute_time_intervals` and
//!   `active_time_intervals`) carry over in Alertmanager's own syntax.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::Value;

use super::{Problem, q};

use super::Renames;

/// The 1-based line of the first line of `text` containing `needle` (0 when none).
fn line_of(text: &str, needle: &str) -> u64 {
    text.lines()
        .position(|l| l.contains(needle))
        .map_or(0, |i| i as u64 + 1)
}

struct Ctx<'a> {
    file: &'a str,
    text: &'a str,
    problems: &'a mut Vec<Problem>,
    renames: &'a Renames,
}

impl Ctx<'_> {
    fn problem(&mut self, needle: &str, message: String) {
        self.problems.push(Problem {
            file: self.file.into(),
            line: line_of(self.text, needle),
            rule: None,
            message,
        });
    }
}

/// Translates an Alertmanager config; returns the receivers file, or `None` (with a
/// problem) when it is not one.
pub fn translate(file: &str, bytes: &[u8], renames: &Renames, problems: &mut Vec<Problem>) -> Option<String> {
    let text = std::str::from_utf8(bytes).unwrap_or("");
    let cfg: Value = match serde_saphyr::from_str(text) {
        Ok(v @ Value::Object(_)) => v,
        Ok(_) => Value::Null,
        Err(e) => {
            problems.push(Problem {
                file: file.into(),
                line: 0,
                rule: None,
                message: format!(
                    "not an Alertmanager config: {}",
                    e.to_string().lines().next().unwrap_or("")
                ),
            });
            return None;
        }
    };
    if cfg.is_null() {
        problems.push(Problem {
            file: file.into(),
            line: 0,
            rule: None,
            message: "not an Alertmanager config: expected a mapping".into(),
        });
        return None;
    }
    let mut c = Ctx {
        file,
        text,
        problems,
        renames,
    };
    let mut y = String::from("# yaml-language-server: $schema=../schemas/receivers.schema.json\n");
    let _ = writeln!(
        y,
        "# Translated from {file} by `tocsin import prometheus`; see ../IMPORT.md."
    );
    let global = cfg.get("global").cloned().unwrap_or(Value::Null);
    let mut names: BTreeMap<String, Vec<String>> = BTreeMap::new();
    y.push_str("receivers:\n");
    let mut any = false;
    for r in cfg.get("receivers").and_then(Value::as_array).into_iter().flatten() {
        let name = r.get("name").and_then(Value::as_str).unwrap_or("").to_string();
        let parts = receiver(&mut c, &global, &name, r, &mut y);
        any |= !parts.is_empty();
        names.insert(name, parts);
    }
    if !any {
        y = y.replace("receivers:\n", "receivers: []\n");
    }
    let mut routes = String::new();
    if let Some(root) = cfg.get("route") {
        flatten(&mut c, root, &BTreeMap::new(), &names, None, &mut routes);
    }
    if routes.is_empty() {
        y.push_str("routes: []\n");
    } else {
        y.push_str("routes:\n");
        y.push_str(&routes);
    }
    inhibit_rules(&mut c, &cfg, &mut y);
    if let Some(ti) = cfg
        .get("time_intervals")
        .and_then(Value::as_array)
        .filter(|a| !a.is_empty())
    {
        y.push_str("time_intervals:\n");
        for t in ti {
            let _ = writeln!(y, "  - {}", serde_json::to_string(t).unwrap_or_default());
        }
    }
    Some(y)
}

/// One receiver's configurations as tocsin receivers; returns their names.
fn receiver(c: &mut Ctx<'_>, global: &Value, name: &str, r: &Value, y: &mut String) -> Vec<String> {
    let mut out = Vec::new();
    let Some(obj) = r.as_object() else { return out };
    for (key, configs) in obj {
        if key == "name" {
            continue;
        }
        for conf in configs.as_array().into_iter().flatten() {
            let tname = if out.is_empty() {
                name.to_string()
            } else {
                format!("{name}-{}", out.len() + 1)
            };
            let body = match key.as_str() {
                "webhook_configs" => webhook(c, name, conf),
                "slack_configs" => slack(c, global, name, conf),
                "email_configs" => email(c, global, name, conf),
                "pagerduty_configs" => pagerduty(c, name, conf),
                "msteams_configs" => msteams(c, name, conf),
                other => {
                    c.problem(
                        &format!("name: {name}"),
                        format!("receiver `{name}`: `{other}` has no tocsin receiver kind; not imported"),
                    );
                    None
                }
            };
            let Some(body) = body else { continue };
            let _ = writeln!(y, "  - name: {}", q(&tname));
            if let Some(sr) = conf.get("send_resolved").and_then(Value::as_bool) {
                let _ = writeln!(y, "    send_resolved: {sr}");
            }
            y.push_str(&body);
            out.push(tname);
        }
    }
    out
}

fn s<'a>(v: &'a Value, k: &str) -> Option<&'a str> {
    v.get(k).and_then(Value::as_str)
}

/// A URL or secret given in the file; one read from a `*_file` is reported.
fn required(c: &mut Ctx<'_>, name: &str, conf: &Value, keys: &[&str]) -> Option<String> {
    for k in keys {
        if let Some(v) = s(conf, k) {
            return Some(v.to_string());
        }
    }
    let what = keys.first().copied().unwrap_or("url");
    let message = if keys.iter().any(|k| conf.get(format!("{k}_file")).is_some()) {
        format!(
            "receiver `{name}`: `{what}_file` is read at run time by Alertmanager; give the value with ${{ENV}} instead; not imported"
        )
    } else {
        format!("receiver `{name}`: no `{what}`; not imported")
    };
    c.problem(&format!("name: {name}"), message);
    None
}

fn webhook(c: &mut Ctx<'_>, name: &str, conf: &Value) -> Option<String> {
    let url = required(c, name, conf, &["url"])?;
    Some(format!("    webhook: {{ url: {} }}\n", q(&url)))
}

fn slack(c: &mut Ctx<'_>, global: &Value, name: &str, conf: &Value) -> Option<String> {
    let url = match s(conf, "api_url").or_else(|| s(global, "slack_api_url")) {
        Some(u) => u.to_string(),
        None => required(c, name, conf, &["api_url"])?,
    };
    let mut b = format!("    slack:\n      webhook_url: {}\n", q(&url));
    if let Some(ch) = s(conf, "channel") {
        let _ = writeln!(b, "      channel: {}", q(ch));
    }
    for k in ["title", "text"] {
        if let Some(t) = s(conf, k)
            && let Some(t) = group_template(c, name, k, t)
        {
            let _ = writeln!(b, "      {k}: {}", q(&t));
        }
    }
    Some(b)
}

fn email(c: &mut Ctx<'_>, global: &Value, name: &str, conf: &Value) -> Option<String> {
    let to = required(c, name, conf, &["to"])?;
    let from = s(conf, "from").or_else(|| s(global, "smtp_from"));
    let host = s(conf, "smarthost").or_else(|| s(global, "smtp_smarthost"));
    let (Some(from), Some(host)) = (from, host) else {
        c.problem(
            &format!("name: {name}"),
            format!("receiver `{name}`: email needs `from` and `smarthost` (here or in `global`); not imported"),
        );
        return None;
    };
    let Some((h, port)) = host
        .rsplit_once(':')
        .and_then(|(h, p)| Some((h, p.parse::<u16>().ok()?)))
    else {
        c.problem(
            &format!("name: {name}"),
            format!("receiver `{name}`: smarthost `{host}` is not host:port; not imported"),
        );
        return None;
    };
    let tls = match conf
        .get("require_tls")
        .or_else(|| global.get("smtp_require_tls"))
        .and_then(Value::as_bool)
    {
        Some(false) => "none",
        _ if port == 465 => "tls",
        _ => "starttls",
    };
    let tos: Vec<String> = to.split(',').map(|t| q(t.trim())).collect();
    let mut b = format!(
        "    email:\n      to: [{}]\n      from: {}\n      smtp: {{ host: {}, port: {port}, tls: {tls}",
        tos.join(", "),
        q(from),
        q(h)
    );
    let user = s(conf, "auth_username").or_else(|| s(global, "smtp_auth_username"));
    let pass = s(conf, "auth_password").or_else(|| s(global, "smtp_auth_password"));
    if let Some(u) = user {
        let _ = write!(b, ", username: {}", q(u));
    }
    if let Some(p) = pass {
        let _ = write!(b, ", password: {}", q(p));
    }
    b.push_str(" }\n");
    if let Some(subject) = conf.get("headers").and_then(|h| s(h, "Subject"))
        && let Some(t) = group_template(c, name, "headers.Subject", subject)
    {
        let _ = writeln!(b, "      subject: {}", q(&t));
    }
    Some(b)
}

fn pagerduty(c: &mut Ctx<'_>, name: &str, conf: &Value) -> Option<String> {
    if conf.get("service_key").is_some() && conf.get("routing_key").is_none() {
        c.problem(
            &format!("name: {name}"),
            format!("receiver `{name}`: `service_key` is PagerDuty's Events API v1; tocsin sends v2 with a `routing_key`; not imported"),
        );
        return None;
    }
    let key = required(c, name, conf, &["routing_key"])?;
    let mut b = format!("    pagerduty:\n      routing_key: {}\n", q(&key));
    if let Some(u) = s(conf, "url") {
        let _ = writeln!(b, "      url: {}", q(u));
    }
    Some(b)
}

fn msteams(c: &mut Ctx<'_>, name: &str, conf: &Value) -> Option<String> {
    let url = required(c, name, conf, &["webhook_url"])?;
    Some(format!("    msteams: {{ webhook_url: {} }}\n", q(&url)))
}

/// An Alertmanager notification template that reads only what tocsin's templates have;
/// `None` (reported) otherwise, so the receiver's default text applies.
fn group_template(c: &mut Ctx<'_>, name: &str, key: &str, t: &str) -> Option<String> {
    let mut out = String::new();
    let mut rest = t;
    while let Some(open) = rest.find("{{") {
        out.push_str(&rest[..open]);
        let after = &rest[open + 2..];
        let Some(close) = after.find("}}") else { break };
        let action = after[..close].trim_matches('-').trim();
        let mapped = if action == ".Status" {
            Some("status".to_string())
        } else if action == ".Status | toUpper" {
            Some("status | upper".to_string())
        } else {
            [
                (".CommonLabels.", "labels."),
                (".GroupLabels.", "labels."),
                (".CommonAnnotations.", "annotations."),
            ]
            .iter()
            .find_map(|(p, to)| {
                action
                    .strip_prefix(p)
                    .filter(|l| l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'))
                    .map(|l| format!("{to}{l}"))
            })
        };
        match mapped {
            Some(m) => {
                let _ = write!(out, "{{{{ {m} }}}}");
            }
            None => {
                c.problem(
                    &format!("name: {name}"),
                    format!("receiver `{name}`: the `{key}` template reads `{action}`, which tocsin templates do not have; the default text is used"),
                );
                return None;
            }
        }
        rest = &after[close + 2..];
    }
    out.push_str(rest);
    Some(out)
}

/// Matchers of one route or inhibit side: label → tocsin match value (`v` or `~re`).
/// `None` (reported) when one has no tocsin spelling.
fn matchers(
    c: &mut Ctx<'_>,
    what: &str,
    v: &Value,
    exact: &str,
    re: &str,
    list: &str,
) -> Option<BTreeMap<String, String>> {
    let mut m = BTreeMap::new();
    for (k, val) in v.get(exact).and_then(Value::as_object).into_iter().flatten() {
        m.insert(k.clone(), val.as_str().unwrap_or("").to_string());
    }
    for (k, val) in v.get(re).and_then(Value::as_object).into_iter().flatten() {
        m.insert(k.clone(), format!("~{}", val.as_str().unwrap_or("")));
    }
    for one in v.get(list).and_then(Value::as_array).into_iter().flatten() {
        let text = one.as_str().unwrap_or("");
        let parsed = ["!~", "=~", "!=", "="].iter().find_map(|op| {
            text.split_once(op)
                .map(|(l, r)| (l.trim().to_string(), *op, r.trim().trim_matches('"').to_string()))
        });
        match parsed {
            Some((l, "=", r)) => {
                m.insert(l, r);
            }
            Some((l, "=~", r)) => {
                m.insert(l, format!("~{r}"));
            }
            _ => {
                c.problem(
                    text,
                    format!("{what}: the matcher `{text}` has no tocsin spelling (negative matchers are not supported); not imported"),
                );
                return None;
            }
        }
    }
    Some(m)
}

/// `alertname` matchers that name a merged alert become the merged name and its tiers.
fn renamed(c: &Ctx<'_>, m: &mut BTreeMap<String, String>) -> Option<Vec<String>> {
    let old = m.get("alertname")?.clone();
    let hits: Vec<&(String, Option<String>, usize)> = c
        .renames
        .iter()
        .filter(|((o, _), _)| *o == old)
        .map(|(_, v)| v)
        .collect();
    let (new, _, _) = hits.first()?;
    m.insert("alertname".into(), new.clone());
    let mut sev: Vec<String> = hits.iter().filter_map(|(_, s, _)| s.clone()).collect();
    sev.sort();
    sev.dedup();
    Some(sev)
}

fn match_yaml(m: &BTreeMap<String, String>, severities: Option<&[String]>) -> String {
    let mut parts: Vec<String> = m.iter().map(|(k, v)| format!("{}: {}", q(k), q(v))).collect();
    if let Some(sev) = severities.filter(|s| !s.is_empty() && !m.contains_key("severity")) {
        let list: Vec<String> = sev.iter().map(|s| q(s)).collect();
        parts.push(format!("\"severity\": [{}]", list.join(", ")));
    }
    format!("{{ {} }}", parts.join(", "))
}

fn flatten(
    c: &mut Ctx<'_>,
    route: &Value,
    above: &BTreeMap<String, String>,
    names: &BTreeMap<String, Vec<String>>,
    parent: Option<&Value>,
    y: &mut String,
) {
    let Some(mut own) = matchers(c, "route", route, "match", "match_re", "matchers") else {
        return;
    };
    let severities = renamed(c, &mut own);
    let mut all = above.clone();
    all.extend(own);
    // A route inherits its parent's receiver, grouping and timings where it sets none, as
    // in Alertmanager; the flat list spells them out on each route.
    let mut route = route.clone();
    if let (Some(obj), Some(p)) = (route.as_object_mut(), parent) {
        for k in [
            "receiver",
            "group_by",
            "group_wait",
            "group_interval",
            "repeat_interval",
        ] {
            if !obj.contains_key(k)
                && let Some(v) = p.get(k)
            {
                obj.insert(k.into(), v.clone());
            }
        }
    }
    let route = &route;
    let Some(recv) = route.get("receiver").and_then(Value::as_str) else {
        return;
    };
    for child in route.get("routes").and_then(Value::as_array).into_iter().flatten() {
        flatten(c, child, &all, names, Some(route), y);
    }
    let receivers: Vec<String> = match names.get(recv) {
        Some(r) => r.clone(),
        None => {
            c.problem(
                recv,
                format!("route: receiver `{recv}` is not defined or was not imported"),
            );
            return;
        }
    };
    if receivers.is_empty() {
        return;
    }
    let list: Vec<String> = receivers.iter().map(|r| q(r)).collect();
    let _ = writeln!(y, "  - receivers: [{}]", list.join(", "));
    if !all.is_empty() {
        let _ = writeln!(y, "    match: {}", match_yaml(&all, severities.as_deref()));
    }
    if let Some(g) = route.get("group_by").and_then(Value::as_array) {
        let labels: Vec<String> = g.iter().filter_map(Value::as_str).map(q).collect();
        let _ = writeln!(y, "    group_by: [{}]", labels.join(", "));
    }
    for k in ["group_wait", "group_interval", "repeat_interval"] {
        if let Some(d) = s(route, k) {
            let _ = writeln!(y, "    {k}: {d}");
        }
    }
    if route.get("continue").and_then(Value::as_bool) == Some(true) {
        y.push_str("    continue: true\n");
    }
    for k in ["mute_time_intervals", "active_time_intervals"] {
        if let Some(t) = route.get(k).and_then(Value::as_array).filter(|a| !a.is_empty()) {
            let list: Vec<String> = t.iter().filter_map(Value::as_str).map(q).collect();
            let _ = writeln!(y, "    {k}: [{}]", list.join(", "));
        }
    }
}

fn inhibit_rules(c: &mut Ctx<'_>, cfg: &Value, y: &mut String) {
    let mut body = String::new();
    for r in cfg.get("inhibit_rules").and_then(Value::as_array).into_iter().flatten() {
        let source = matchers(
            c,
            "inhibit rule",
            r,
            "source_match",
            "source_match_re",
            "source_matchers",
        );
        let target = matchers(
            c,
            "inhibit rule",
            r,
            "target_match",
            "target_match_re",
            "target_matchers",
        );
        let (Some(mut source), Some(mut target)) = (source, target) else {
            continue;
        };
        let ss = renamed(c, &mut source);
        let ts = renamed(c, &mut target);
        let equal: Vec<String> = r
            .get("equal")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(q)
            .collect();
        let _ = writeln!(body, "  - source: {}", match_yaml(&source, ss.as_deref()));
        let _ = writeln!(body, "    target: {}", match_yaml(&target, ts.as_deref()));
        if !equal.is_empty() {
            let _ = writeln!(body, "    equal: [{}]", equal.join(", "));
        }
    }
    if !body.is_empty() {
        y.push_str("inhibit_rules:\n");
        y.push_str(&body);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const AM: &str = r#"global:
  smtp_smarthost: smtp.example.com:587
  smtp_from: am@example.com
route:
  receiver: default
  group_by: [alertname]
  group_wait: 30s
  routes:
    - matchers: ['severity="critical"', 'team=~"db|infra"']
      receiver: pager
      continue: true
    - match: { alertname: MemCritical }
      receiver: mail
    - matchers: ['env!="dev"']
      receiver: default
receivers:
  - name: default
    webhook_configs: [{ url: "http://127.0.0.1:9/hook" }]
    slack_configs:
      - api_url: "http://127.0.0.1:9/slack"
        title: "{{ .CommonLabels.alertname }} {{ .Status }}"
        text: "{{ range .Alerts }}x{{ end }}"
  - name: pager
    pagerduty_configs: [{ routing_key: abc }]
  - name: mail
    email_configs: [{ to: "a@example.com, b@example.com", headers: { Subject: "[{{ .Status | toUpper }}] {{ .GroupLabels.alertname }}" } }]
  - name: other
    opsgenie_configs: [{ api_key: x }]
inhibit_rules:
  - source_matchers: ['severity="critical"']
    target_match: { severity: warning }
    equal: [instance]
time_intervals:
  - name: nights
    time_intervals: [{ times: [{ start_time: "00:00", end_time: "06:00" }] }]
"#;

    #[test]
    fn routes_receivers_inhibitions_and_intervals() {
        let mut renames = Renames::new();
        renames.insert(
            ("MemCritical".into(), Some("critical".into())),
            ("MemHigh".into(), Some("critical".into()), 1),
        );
        let mut problems = Vec::new();
        let y = translate("am.yml", AM.as_bytes(), &renames, &mut problems).unwrap();
        // Children inherit the parent's grouping and timings.
        assert!(y.contains("  - receivers: [\"pager\"]\n    match: { \"severity\": \"critical\", \"team\": \"~db|infra\" }\n    group_by: [\"alertname\"]\n    group_wait: 30s\n    continue: true\n"), "{y}");
        assert!(
            y.contains(r#"match: { "alertname": "MemHigh", "severity": ["critical"] }"#),
            "{y}"
        );
        // The root catches the rest, with its grouping and timings.
        assert!(
            y.contains(
                "  - receivers: [\"default\", \"default-2\"]\n    group_by: [\"alertname\"]\n    group_wait: 30s\n"
            ),
            "{y}"
        );
        assert!(
            y.contains(r#"smtp: { host: "smtp.example.com", port: 587, tls: starttls }"#),
            "{y}"
        );
        assert!(
            y.contains(r#"subject: "[{{ status | upper }}] {{ labels.alertname }}""#),
            "{y}"
        );
        assert!(y.contains(r#"title: "{{ labels.alertname }} {{ status }}""#), "{y}");
        assert!(y.contains("pagerduty:\n      routing_key: \"abc\""), "{y}");
        assert!(y.contains(r#"- source: { "severity": "critical" }"#), "{y}");
        assert!(y.contains(r#"- {"name":"nights","time_intervals":"#), "{y}");
        let messages: Vec<&str> = problems.iter().map(|p| p.message.as_str()).collect();
        assert_eq!(problems.len(), 3, "{messages:?}");
        assert!(messages[0].contains("`text` template reads `range .Alerts`"));
        assert!(messages[1].contains("`opsgenie_configs` has no tocsin receiver kind"));
        assert_eq!(problems[1].line, line_of(AM, "name: other"));
        assert!(messages[2].contains("`env!=\"dev\"`"));
    }

    #[test]
    fn not_an_alertmanager_config() {
        let mut problems = Vec::new();
        assert!(translate("x.yml", b"- a\n- b\n", &Renames::new(), &mut problems).is_none());
        assert!(translate("x.yml", b"route: [", &Renames::new(), &mut problems).is_none());
        assert_eq!(problems.len(), 2);
    }
}
