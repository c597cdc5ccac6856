//! `tocsin check`: validation of every file kind without side effects.
//!
//! Owns the cross-file checks (routes naming receivers that exist, receivers no route
//! reaches, rule `notify:` targets, test files' rule files and input notation) on top of
//! the per-file parsing of `config` and the rule compiler of `rules`. It never sends,
//! runs or writes anything; callers pass file contents and a loader for rule files that
//! test files name.

use std::collections::{BTreeMap, BTreeSet};

use crate::config::{self, AnyFile, ReceiverFile, Source};
use crate::diag::Diagnostic;
use crate::engine::notify::NoteKind;
use crate::message::{AlertNote, Dispatch, Status};
use crate::receivers;
use crate::rules::{self, Matcher};
use crate::ruletest::{self, Loader};
use crate::series::{Labels, Timestamp};
use crate::template::Templates;

/// Checks the given files together and returns every finding.
pub fn check(sources: &[Source], env: &dyn Fn(&str) -> Option<String>, load: &Loader<'_>) -> Vec<Diagnostic> {
    validate(sources, env, load).diagnostics
}

/// What validation found, and what it built on the way: the compiled rules (when they
/// compiled) and the parsed receiver files, so that a reload runs exactly what was checked
/// without parsing and compiling everything a second time.
pub struct Validated {
    /// Every finding, errors and warnings.
    pub diagnostics: Vec<Diagnostic>,
    /// The compiled rules, when they have no error.
    pub rules: Option<rules::RuleSet>,
    /// The parsed receiver files.
    pub receivers: Vec<(String, ReceiverFile)>,
}

/// [`check`], keeping the compiled rules and parsed receiver files.
pub fn validate(sources: &[Source], env: &dyn Fn(&str) -> Option<String>, load: &Loader<'_>) -> Validated {
    let mut diags = Vec::new();
    let mut rule_files = Vec::new();
    let mut receiver_files = Vec::new();
    for src in sources {
        // The same detection and parse functions as the daemon, so a file gets the errors
        // `run` would give it (a YAML syntax error, a misspelt key's "did you mean").
        let parsed = config::parse_any(src, env).map(|file| match file {
            AnyFile::Rules(f) => rule_files.push((src.path().to_string(), f)),
            AnyFile::Receivers(f) => receiver_files.push((src.path().to_string(), f)),
            // The PromQL of query sources is the datasource's language: parsed here, offline.
            AnyFile::Config(c) => diags.extend(crate::sources::query::check(src.path(), &c)),
            AnyFile::Test(t) => diags.extend(ruletest::validate(src.path(), &t, load)),
        });
        if let Err(d) = parsed {
            diags.extend(d);
        }
    }
    let (compiled, mut rule_diags) = rules::compile(&rule_files);
    place_in_values(&mut rule_diags, sources);
    diags.extend(rule_diags);
    let notified: BTreeSet<String> = rule_files
        .iter()
        .flat_map(|(_, f)| {
            f.groups
                .iter()
                .flat_map(|g| g.rules.iter().flat_map(|r| r.notify.iter().map(|n| n.value.clone())))
        })
        .collect();
    let receivers = check_receivers(&receiver_files, &notified, &mut diags);
    if !receiver_files.is_empty() {
        for (path, file) in &rule_files {
            for g in &file.groups {
                for r in &g.rules {
                    for n in &r.notify {
                        if !receivers.contains(n.value.as_str()) {
                            diags.push(Diagnostic::error(
                                path,
                                n.line(),
                                n.column(),
                                "unknown-receiver",
                                format!("`notify` names receiver `{}`, which no receiver file defines", n.value),
                            ));
                        }
                    }
                }
            }
        }
    }
    Validated {
        diagnostics: diags,
        rules: compiled,
        receivers: receiver_files,
    }
}

/// Moves each diagnostic about a character inside a scalar (an expression error's "at
/// character N") from the scalar's start onto that character, reading the file's text to
/// account for its quoting style.
fn place_in_values(diags: &mut [Diagnostic], sources: &[Source]) {
    for d in diags.iter_mut() {
        let Some(offset) = d.value_offset.take() else { continue };
        if let Some(src) = sources.iter().find(|s| s.path() == d.file) {
            (d.line, d.column) = config::scalar_position(src.text(), d.line, d.column, offset as usize);
        }
    }
}

/// Checks receiver files together; returns the names of every receiver defined.
fn check_receivers(
    files: &[(String, ReceiverFile)],
    notified: &BTreeSet<String>,
    diags: &mut Vec<Diagnostic>,
) -> BTreeSet<String> {
    let mut defined: BTreeMap<String, (String, u64, u64)> = BTreeMap::new();
    let mut templates = Templates::new();
    let sample = receivers::context(&sample_dispatch());
    for (path, f) in files {
        for r in &f.receivers {
            let name = r.name.expose();
            if let Some((p, l, c)) = defined.get(name) {
                diags.push(Diagnostic::error(
                    path,
                    r.name.line(),
                    r.name.column(),
                    "duplicate-receiver",
                    format!("receiver `{name}` is already defined at {p}:{l}:{c}"),
                ));
            } else {
                defined.insert(name.to_string(), (path.clone(), r.name.line(), r.name.column()));
            }
            let texts = [
                r.slack.as_ref().and_then(|s| s.title.as_ref()),
                r.slack.as_ref().and_then(|s| s.text.as_ref()),
                r.email.as_ref().and_then(|e| e.subject.as_ref()),
            ];
            for t in texts.into_iter().flatten() {
                match templates.add(t.expose()) {
                    Ok(id) => {
                        if let Err(e) = templates.render(id, &sample) {
                            diags.push(Diagnostic::error(
                                path,
                                t.line(),
                                t.column(),
                                "template",
                                format!("template fails on sample data: {}", e.message),
                            ));
                        }
                        for var in templates.unknown_variables(id) {
                            diags.push(Diagnostic::warning(
                                path,
                                t.line(),
                                t.column(),
                                "template-variable",
                                format!("template reads `{var}`, which templates do not have"),
                            ));
                        }
                    }
                    Err(e) => diags.push(Diagnostic::error(
                        path,
                        t.line() + e.line.map_or(0, |l| l as u64 - 1),
                        t.column(),
                        "template",
                        format!("template does not compile: {}", e.message),
                    )),
                }
            }
        }
    }
    let mut reached = notified.clone();
    for (path, f) in files {
        for route in &f.routes {
            for name in &route.receivers {
                let name_s = name.expose();
                if defined.contains_key(name_s) {
                    reached.insert(name_s.to_string());
                } else {
                    let hint = strsim_hint(name_s, defined.keys());
                    let mut d = Diagnostic::error(
                        path,
                        name.line(),
                        name.column(),
                        "unknown-receiver",
                        format!("route names receiver `{name_s}`, which is not defined"),
                    );
                    d.hint = hint;
                    diags.push(d);
                }
            }
            for (label, m) in route.r#match.iter().chain(
                f.inhibit_rules
                    .iter()
                    .flat_map(|i| i.source.iter().chain(i.target.iter())),
            ) {
                for v in &m.0 {
                    if let Err(e) = Matcher::parse(v.expose()) {
                        diags.push(Diagnostic::error(
                            path,
                            v.line(),
                            v.column(),
                            "match",
                            format!("invalid regex for `{label}`: {e}"),
                        ));
                    }
                }
            }
        }
    }
    for (name, (path, line, col)) in &defined {
        if !reached.contains(name) {
            diags.push(
                Diagnostic::warning(
                    path,
                    *line,
                    *col,
                    "unreached-receiver",
                    format!("no route reaches receiver `{name}`"),
                )
                .with_hint("add a route to it, or name it in a rule's `notify:`"),
            );
        }
    }
    defined.into_keys().collect()
}

/// What receiver templates are rendered against in `check`: a group of two alerts (one
/// firing with value and threshold, one resolved), turned into a template context by the
/// same [`receivers::context`] the daemon uses, so every variable (`alerts` included) has
/// the shape it has at run time.
fn sample_dispatch() -> Dispatch {
    let note = |key, instance: &str, status, severity: &str| AlertNote {
        instance: key,
        seq: 1,
        kind: match status {
            Status::Firing => NoteKind::Firing,
            Status::Resolved => NoteKind::Resolved,
        },
        status,
        severity: severity.to_string(),
        labels: Labels::from_pairs([
            ("alertname", "SampleAlert"),
            ("severity", severity),
            ("instance", instance),
        ]),
        annotations: [
            ("summary", format!("SampleAlert on {instance}")),
            ("runbook_url", "https://runbooks.example.com/sample".to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect(),
        value: Some(91.5),
        threshold: Some(90.0),
        starts_at: Timestamp(1_795_420_800_000),
        ends_at: (status == Status::Resolved).then_some(Timestamp(1_795_421_100_000)),
        at: Timestamp(1_795_421_100_000),
        nodata: false,
        ended_severity: None,
    };
    let alerts = vec![
        note(1, "host-1", Status::Firing, "critical"),
        note(2, "host-2", Status::Resolved, "warning"),
    ];
    Dispatch {
        receiver: "sample".to_string(),
        group_key: "{}:{alertname=\"SampleAlert\"}".to_string(),
        group_labels: [("alertname".to_string(), "SampleAlert".to_string())].into(),
        news: alerts.iter().map(|a| (a.instance, a.kind)).collect(),
        alerts,
        idempotency_key: "sample-1".to_string(),
        at: Timestamp(1_795_421_100_000),
    }
}

fn strsim_hint<'a>(name: &str, known: impl Iterator<Item = &'a String>) -> Option<String> {
    known
        .map(|k| (strsim::jaro_winkler(name, k), k))
        .filter(|(s, _)| *s > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, k)| format!("did you mean `{k}`?"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_receivers_yaml(yaml: &str) -> Vec<Diagnostic> {
        let src = Source::new("r.yaml", yaml.as_bytes().to_vec()).unwrap();
        check(&[src], &|_| None, &|_: &str| Err(Vec::new()))
    }

    #[test]
    fn receiver_templates_render_against_a_sample_group() {
        let diags = check_receivers_yaml(
            r#"
receivers:
  - name: chat
    slack:
      webhook_url: http://slack
      title: "{{ alerts | length }} alerts, first {{ alerts[0].labels.instance }} since {{ starts_at }}"
      text: "{% for a in alerts %}{{ a.status }} {{ a.annotations.summary }} {{ a.value }}/{{ a.threshold }}{% endfor %}"
  - name: mail
    email:
      to: [a@example.com]
      from: t@example.com
      smtp: { host: smtp, port: 25 }
      subject: "{{ (alerts | length) // 0 }}"
routes:
  - receivers: [chat, mail]
"#,
        );
        assert_eq!(diags.len(), 1, "{diags:?}");
        assert_eq!(diags[0].code, "template");
        assert_eq!(diags[0].line, 13);
        assert!(
            diags[0].message.contains("fails on sample data"),
            "{}",
            diags[0].message
        );
    }
}
