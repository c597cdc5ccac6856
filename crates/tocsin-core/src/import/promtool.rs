//! promtool unit tests (`promtool test rules`) into tocsin rule tests against the imported
//! rules.
//!
//! `input_series` carry over unchanged (the notation is promtool's). Each `alert_rule_test`
//! becomes an expectation at its `eval_time`; the expectations of one time are joined into
//! one `firing` set, since a tocsin expectation lists every instance firing then. An
//! expected alert of a merged family becomes the merged rule firing at the most severe
//! expected tier (one instance, as tocsin fires it). Expected annotations are kept where
//! the annotation translated exactly. `promql_expr_test` has no tocsin counterpart and is
//! reported.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use serde::Deserialize;

use super::{Entry, Outcome, Problem, q};
use crate::config::Sp;

/// What the rule import produced that tests refer to.
pub struct Known<'a> {
    /// (source file as given, output path under `--out`).
    pub rule_files: &'a [(String, String)],
    /// Merged alerts: see [`super::Output::renames`].
    pub renames: &'a super::Renames,
    /// What became of every source rule.
    pub entries: &'a [Entry],
    /// Annotations translated exactly: see [`super::Output::exact_annotations`].
    pub exact: &'a BTreeSet<(String, String)>,
}

#[derive(Deserialize)]
struct PtFile {
    #[serde(default)]
    rule_files: Vec<String>,
    #[serde(default)]
    evaluation_interval: Option<String>,
    #[serde(default)]
    tests: Vec<PtTest>,
}

#[derive(Deserialize)]
struct PtTest {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    interval: Option<String>,
    #[serde(default)]
    input_series: Vec<PtSeries>,
    #[serde(default)]
    alert_rule_test: Vec<PtAlertTest>,
    #[serde(default)]
    promql_expr_test: Vec<serde_json::Value>,
}

#[derive(Deserialize)]
struct PtSeries {
    series: String,
    values: crate::config::ScalarString,
}

#[derive(Deserialize)]
struct PtAlertTest {
    eval_time: Sp<String>,
    alertname: String,
    #[serde(default)]
    exp_alerts: Vec<PtExpected>,
}

#[derive(Deserialize)]
struct PtExpected {
    #[serde(default)]
    exp_labels: BTreeMap<String, crate::config::ScalarString>,
    #[serde(default)]
    exp_annotations: BTreeMap<String, String>,
}

fn base(path: &str) -> &str {
    let b = path.rsplit(['/', '\\']).next().unwrap_or(path);
    b.strip_suffix(".yaml").or_else(|| b.strip_suffix(".yml")).unwrap_or(b)
}

/// One expected instance: tocsin alert name, its tier rank (for merged families), labels
/// (without `alertname`/`severity`), severity, annotations.
struct Expect {
    alertname: String,
    rank: usize,
    labels: BTreeMap<String, String>,
    severity: Option<String>,
    annotations: BTreeMap<String, String>,
}

/// Translates one promtool test file; returns (output file name, text).
pub fn translate(file: &str, bytes: &[u8], known: &Known<'_>, problems: &mut Vec<Problem>) -> Option<(String, String)> {
    let mut problem = |line: u64, message: String| {
        problems.push(Problem {
            file: file.into(),
            line,
            rule: None,
            message,
        })
    };
    let parsed: PtFile = match std::str::from_utf8(bytes)
        .map_err(|e| e.to_string())
        .and_then(|t| serde_saphyr::from_str(t).map_err(|e| e.to_string()))
    {
        Ok(p) => p,
        Err(e) => {
            problem(
                0,
                format!("not a promtool test file: {}", e.lines().next().unwrap_or("")),
            );
            return None;
        }
    };
    let mut rule_files = Vec::new();
    for rf in &parsed.rule_files {
        match known.rule_files.iter().find(|(src, _)| base(src) == base(rf)) {
            Some((_, out)) => rule_files.push(format!("../{out}")),
            None => problem(
                0,
                format!("rule file `{rf}` was not imported with it; pass it to the import too"),
            ),
        }
    }
    let eval = parsed.evaluation_interval.clone().unwrap_or_else(|| "1m".into());
    let mut y = String::from("# yaml-language-server: $schema=../schemas/test.schema.json\n");
    let _ = writeln!(
        y,
        "# Translated from {file} by `tocsin import prometheus`; see ../IMPORT.md."
    );
    let files: Vec<String> = rule_files.iter().map(|f| q(f)).collect();
    let _ = writeln!(y, "rule_files: [{}]", files.join(", "));
    let _ = writeln!(y, "evaluation_interval: {eval}");
    y.push_str("tests:\n");
    for (n, t) in parsed.tests.iter().enumerate() {
        let name = t
            .name
            .clone()
            .unwrap_or_else(|| format!("{} test {}", base(file), n + 1));
        let _ = writeln!(y, "  - name: {}", q(&name));
        let _ = writeln!(y, "    interval: {}", t.interval.as_deref().unwrap_or(&eval));
        if !t.promql_expr_test.is_empty() {
            problem(
                0,
                format!(
                    "test `{name}`: {} promql_expr_test entries not translated (tocsin tests check alerts and notifications)",
                    t.promql_expr_test.len()
                ),
            );
        }
        y.push_str("    input_series:\n");
        for s in &t.input_series {
            let _ = writeln!(y, "      - series: {}", q(&s.series));
            let _ = writeln!(y, "        values: {}", q(&s.values.0));
        }
        // eval_time → expected instances.
        let mut at: BTreeMap<(u128, String), Vec<Expect>> = BTreeMap::new();
        for a in &t.alert_rule_test {
            let Ok(d) = humantime::parse_duration(&a.eval_time.value) else {
                problem(
                    a.eval_time.line(),
                    format!("eval_time `{}` is not a duration", a.eval_time.value),
                );
                continue;
            };
            let slot = at.entry((d.as_millis(), a.eval_time.value.clone())).or_default();
            let imported = known.entries.iter().any(|e| {
                e.name == a.alertname && e.kind == "alert" && !matches!(e.outcome, Outcome::NotImported { .. })
            });
            if !imported {
                problem(
                    a.eval_time.line(),
                    format!(
                        "test `{name}`: `{}` at {} not translated: the alert was not imported",
                        a.alertname, a.eval_time.value
                    ),
                );
                continue;
            }
            for e in &a.exp_alerts {
                let mut labels: BTreeMap<String, String> =
                    e.exp_labels.iter().map(|(k, v)| (k.clone(), v.0.clone())).collect();
                let severity = labels.remove("severity");
                labels.remove("alertname");
                let (alertname, severity, rank) = match known.renames.get(&(a.alertname.clone(), severity.clone())) {
                    Some((n, s, r)) => (n.clone(), s.clone(), *r),
                    None => (a.alertname.clone(), severity, 0),
                };
                let annotations = e
                    .exp_annotations
                    .iter()
                    .filter(|(k, _)| known.exact.contains(&(a.alertname.clone(), (*k).clone())))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                slot.push(Expect {
                    alertname,
                    rank,
                    labels,
                    severity,
                    annotations,
                });
            }
        }
        if at.is_empty() {
            y.push_str("    alerts: []\n");
            continue;
        }
        y.push_str("    alerts:\n");
        for ((_, when), mut expects) in at {
            // A merged family fires one instance at its most severe expected tier.
            expects.sort_by(|a, b| {
                (&a.alertname, &a.labels)
                    .cmp(&(&b.alertname, &b.labels))
                    .then(b.rank.cmp(&a.rank))
            });
            expects.dedup_by(|later, first| later.alertname == first.alertname && later.labels == first.labels);
            let _ = writeln!(y, "      - at: {when}");
            if expects.is_empty() {
                y.push_str("        firing: []\n");
                continue;
            }
            y.push_str("        firing:\n");
            for e in &expects {
                let _ = writeln!(y, "          - alertname: {}", q(&e.alertname));
                if let Some(s) = &e.severity {
                    let _ = writeln!(y, "            severity: {}", q(s));
                }
                for (k, v) in &e.labels {
                    let _ = writeln!(y, "            {}: {}", q(k), q(v));
                }
                if !e.annotations.is_empty() {
                    y.push_str("            annotations:\n");
                    for (k, v) in &e.annotations {
                        let _ = writeln!(y, "              {}: {}", q(k), q(v));
                    }
                }
            }
        }
    }
    Some((format!("{}.yaml", super::stem(file)), y))
}
