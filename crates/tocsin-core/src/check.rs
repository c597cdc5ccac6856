//! `tocsin check`: validation of every file kind without side effects.
//!
//! Owns the cross-file checks (rule `notify:` targets, test files' rule files and input
//! notation) on top of the per-file parsing of `config`, the rule compiler of `rules` and
//! the policy compiler of `policy` (receivers, routes, inhibit rules). It never sends,
//! runs or writes anything; callers pass file contents and a loader for rule files that
//! test files name.

use std::collections::BTreeSet;

use crate::config::{self, AnyFile, ReceiverFile, Source};
use crate::diag::Diagnostic;
use crate::policy::{self, Policy};
use crate::rules;
use crate::ruletest::{self, Loader};

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
    /// The receiver files compiled (only to be run when `diagnostics` has no error).
    pub policy: Policy,
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
            AnyFile::Config(c) => diags.extend(crate::promql::query_sources(src.path(), &c)),
            AnyFile::Test(t) => diags.extend(ruletest::validate(src.path(), &t, load)),
        });
        if let Err(d) = parsed {
            diags.extend(d);
        }
    }
    let (compiled_rules, mut rule_diags) = rules::compile(&rule_files);
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
    let compiled = policy::compile(&receiver_files, &notified);
    diags.extend(compiled.diagnostics);
    let receivers = &compiled.policy.receivers;
    if !receiver_files.is_empty() {
        for (path, file) in &rule_files {
            for g in &file.groups {
                for r in &g.rules {
                    for n in &r.notify {
                        if receivers.named(n.value.as_str()).is_none() {
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
        rules: compiled_rules,
        receivers: receiver_files,
        policy: compiled.policy,
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

    #[test]
    fn an_invalid_inhibit_regex_is_an_error_in_a_file_without_routes() {
        // It was checked only inside the loop over routes, and the dispatcher dropped it.
        let diags = check_receivers_yaml(
            "receivers:\n  - name: c\n    console: {}\ninhibit_rules:\n  - source: { alertname: '~(' }\n",
        );
        let errors: Vec<(u64, &str)> = diags
            .iter()
            .filter(|d| d.severity == crate::diag::Severity::Error)
            .map(|d| (d.line, d.code))
            .collect();
        assert_eq!(errors, [(5, "match")], "{diags:?}");
    }
}
