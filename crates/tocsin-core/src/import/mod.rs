//! `tocsin import prometheus`: Prometheus rule files, an Alertmanager config and promtool
//! unit tests in, tocsin files and a report out (docs/migrating.md).
//!
//! Pure: the caller hands in file names and bytes and writes the [`Output`]'s files; nothing
//! here reads a file, a clock or the environment. Expressions are parsed with promql-parser
//! and translated by [`promql`]; annotations by [`template`]; promtool tests by
//! [`promtool`]; the Alertmanager config by [`alertmanager`].
//!
//! Decisions the import makes, each reported per rule in `IMPORT.md`:
//! - Alerting rules of one group whose expressions differ only in the threshold of a
//!   top-level `x > n` (or `x < n`) and whose labels differ only in `severity` become one
//!   rule with one tier per source rule, named after the first. Alerts of one group that
//!   share a name and differ only in `severity` (and their expression) become one rule
//!   with `when:` tiers, since tocsin refuses two rules of one name in a group.
//! - What cannot be evaluated locally becomes a `query` source against `--datasource` when
//!   one is given (a record: the query's series under the record's name; an alert `x > n`
//!   whose `x` is the problem: `x` as a query and the comparison local; any other alert:
//!   the whole expression as a query and `present(series) == 1`); otherwise it is listed
//!   as not imported, with the reason.

pub mod alertmanager;
pub mod promql;
pub mod promtool;
pub mod template;

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Deserialize;

use crate::config::Sp;

/// A datasource for what cannot run locally: `--datasource NAME[=URL]`.
#[derive(Clone, Debug, PartialEq)]
pub struct Datasource {
    /// Its name in `tocsin.yaml`.
    pub name: String,
    /// Its query API's base URL.
    pub url: String,
}

impl Datasource {
    /// The URL used when `--datasource` names none: a local Prometheus.
    pub const DEFAULT_URL: &'static str = "http://127.0.0.1:9090";

    /// Parses `NAME[=URL]`.
    pub fn parse(arg: &str) -> Result<Datasource, String> {
        let (name, url) = match arg.split_once('=') {
            Some((n, u)) => (n, u),
            None => (arg, Datasource::DEFAULT_URL),
        };
        if !crate::rules::valid_name(name) {
            return Err(format!(
                "`{name}` is not a valid datasource name: use [a-zA-Z_][a-zA-Z0-9_]*"
            ));
        }
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(format!("`{url}` is not an absolute http(s) URL"));
        }
        Ok(Datasource {
            name: name.to_string(),
            url: url.to_string(),
        })
    }
}

/// What to import.
#[derive(Clone, Debug, Default)]
pub struct Input {
    /// Prometheus rule files: (name as given, contents).
    pub rules: Vec<(String, Vec<u8>)>,
    /// promtool unit-test files: (name as given, contents).
    pub tests: Vec<(String, Vec<u8>)>,
    /// An Alertmanager config: (name as given, contents).
    pub alertmanager: Option<(String, Vec<u8>)>,
    /// Where untranslatable expressions are queried, when given.
    pub datasource: Option<Datasource>,
}

/// What became of one source rule.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// A tocsin rule evaluated locally; `tier` is the severity of its tier when the source
    /// rule became one tier of a merged rule.
    Local {
        /// The tocsin rule's name.
        rule: String,
        /// The tier it became, for merged rules.
        tier: Option<String>,
    },
    /// Runs in the datasource through a `query` source.
    Query {
        /// The local series name the query's result is stored under.
        series: String,
        /// The tocsin rule reading it, for alerts.
        rule: Option<String>,
    },
    /// Not imported.
    NotImported {
        /// Why, in words.
        reason: String,
    },
}

/// One source rule and what it became.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    /// The source file, as given.
    pub file: String,
    /// The line of its `alert:` or `record:`.
    pub line: u64,
    /// The group.
    pub group: String,
    /// The alert name or recorded metric.
    pub name: String,
    /// `alert` or `record`.
    pub kind: &'static str,
    /// What it became.
    pub outcome: Outcome,
    /// Where tocsin's semantics differ for it, and what was approximated.
    pub notes: Vec<String>,
}

/// A bad input: a file that is not valid YAML of its kind, an expression promql-parser
/// rejects, a template that cannot be translated.
#[derive(Clone, Debug, PartialEq)]
pub struct Problem {
    /// The file, as given.
    pub file: String,
    /// Its line (1-based; 0 when unknown).
    pub line: u64,
    /// The source rule, when the problem belongs to one.
    pub rule: Option<String>,
    /// What is wrong.
    pub message: String,
}

/// (old alert name, its severity) → (new rule name, tier severity, tier index) of each
/// alert merged into a tiered rule.
pub type Renames = BTreeMap<(String, Option<String>), (String, Option<String>, usize)>;

/// Everything the import produced.
#[derive(Clone, Debug, Default)]
pub struct Output {
    /// Files to write, by path relative to `--out`.
    pub files: Vec<(String, String)>,
    /// One entry per source rule, in source order.
    pub entries: Vec<Entry>,
    /// Bad inputs, in the order met.
    pub problems: Vec<Problem>,
    /// (old alert name, its severity) → (new rule name, tier severity, tier index) for every
    /// merged alert, for routes and tests that named the old one.
    pub renames: Renames,
    /// (source alert, annotation key) of annotations translated exactly, whose rendered
    /// text a translated test may expect.
    pub exact_annotations: std::collections::BTreeSet<(String, String)>,
}

impl Output {
    /// How many source rules were not imported.
    pub fn not_imported(&self) -> usize {
        self.entries
            .iter()
            .filter(|e| matches!(e.outcome, Outcome::NotImported { .. }))
            .count()
    }

    /// Counts (translated locally, as a query, not imported).
    pub fn coverage(&self) -> (usize, usize, usize) {
        let mut c = (0, 0, 0);
        for e in &self.entries {
            match e.outcome {
                Outcome::Local { .. } => c.0 += 1,
                Outcome::Query { .. } => c.1 += 1,
                Outcome::NotImported { .. } => c.2 += 1,
            }
        }
        c
    }

    /// The one-paragraph summary printed on stdout.
    pub fn summary(&self) -> String {
        let (l, q, n) = self.coverage();
        let mut s = format!(
            "{} source rules: {l} translated locally, {q} as a query, {n} not imported; {} problems (see IMPORT.md)\n",
            self.entries.len(),
            self.problems.len()
        );
        for p in &self.problems {
            let rule = p.rule.as_deref().map(|r| format!(" ({r})")).unwrap_or_default();
            let _ = writeln!(s, "{}:{}{rule}: {}", p.file, p.line, p.message);
        }
        s
    }
}

#[derive(Deserialize)]
struct PromFile {
    #[serde(default)]
    groups: Vec<PromGroup>,
}

#[derive(Deserialize)]
struct PromGroup {
    name: Sp<String>,
    #[serde(default)]
    interval: Option<String>,
    #[serde(default)]
    limit: Option<u64>,
    #[serde(default)]
    query_offset: Option<String>,
    #[serde(default)]
    rules: Vec<PromRule>,
}

#[derive(Deserialize)]
struct PromRule {
    #[serde(default)]
    alert: Option<Sp<String>>,
    #[serde(default)]
    record: Option<Sp<String>>,
    expr: Sp<crate::config::ScalarString>,
    #[serde(default, rename = "for")]
    for_: Option<String>,
    #[serde(default)]
    keep_firing_for: Option<String>,
    #[serde(default)]
    labels: BTreeMap<String, crate::config::ScalarString>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
}

/// One alert on its way to becoming (part of) a tocsin rule.
struct Alert {
    entry: usize,
    name: String,
    expr: String,
    by: Option<Vec<String>>,
    threshold: Option<promql::Threshold>,
    /// Value shown for `when:` tiers: the left side of the first comparison.
    shown: Option<String>,
    for_: Option<String>,
    keep_firing_for: Option<String>,
    severity: Option<String>,
    labels: BTreeMap<String, String>,
    annotations: BTreeMap<String, String>,
}

/// A YAML double-quoted scalar (JSON's string syntax is YAML's).
fn q(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

fn stem(file: &str) -> String {
    let base = file.rsplit(['/', '\\']).next().unwrap_or(file);
    let base = base
        .strip_suffix(".yaml")
        .or_else(|| base.strip_suffix(".yml"))
        .unwrap_or(base);
    let s: String = base
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if s.is_empty() { "rules".into() } else { s }
}

/// A local metric name for a query's result, from a rule name.
fn series_name(name: &str) -> String {
    let mut out = String::new();
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 && !out.ends_with('_') {
            out.push('_');
        }
        out.push(if c.is_ascii_alphanumeric() || c == ':' {
            c.to_ascii_lowercase()
        } else {
            '_'
        });
    }
    format!("{out}_promql")
}

fn valid_duration(d: &str) -> bool {
    humantime::parse_duration(d).is_ok()
}

/// Imports everything in `input`.
pub fn prometheus(input: &Input) -> Output {
    let mut out = Output::default();
    let mut queries: Vec<(String, String)> = Vec::new();
    let mut rule_files: Vec<(String, String)> = Vec::new();
    for (file, bytes) in &input.rules {
        if let Some(text) = rules_file(file, bytes, input.datasource.as_ref(), &mut out, &mut queries) {
            // Two inputs of one base name (from two directories) get two files.
            let mut path = format!("rules/{}.yaml", stem(file));
            for n in 2.. {
                if !out.files.iter().any(|(p, _)| *p == path) {
                    break;
                }
                path = format!("rules/{}-{n}.yaml", stem(file));
            }
            rule_files.push((file.clone(), path.clone()));
            out.files.push((path, text));
        }
    }
    for (file, bytes) in &input.tests {
        let known = promtool::Known {
            rule_files: &rule_files,
            renames: &out.renames,
            entries: &out.entries,
            exact: &out.exact_annotations,
        };
        if let Some((name, text)) = promtool::translate(file, bytes, &known, &mut out.problems) {
            out.files.push((format!("tests/{name}"), text));
        }
    }
    if let Some((file, bytes)) = &input.alertmanager
        && let Some(text) = alertmanager::translate(file, bytes, &out.renames, &mut out.problems)
    {
        out.files.push(("receivers/alertmanager.yaml".into(), text));
    }
    if let Some(ds) = &input.datasource
        && !queries.is_empty()
    {
        out.files.push(("tocsin.yaml".into(), engine_config(ds, &queries)));
    }
    // The modelines of the written files point here, so editors validate them.
    for (kind, name) in [
        (crate::config::FileKind::Rules, "rules"),
        (crate::config::FileKind::Test, "test"),
        (crate::config::FileKind::Config, "config"),
        (crate::config::FileKind::Receivers, "receivers"),
    ] {
        let schema = serde_json::to_string_pretty(&crate::config::schema(kind)).unwrap_or_default();
        out.files.push((format!("schemas/{name}.schema.json"), schema + "\n"));
    }
    let report = report(&out);
    out.files.push(("IMPORT.md".into(), report));
    out
}

/// `DIR/tocsin.yaml`: the datasource and the `query` source.
fn engine_config(ds: &Datasource, queries: &[(String, String)]) -> String {
    let mut s = String::from("# yaml-language-server: $schema=schemas/config.schema.json\n");
    s.push_str("# Written by `tocsin import prometheus`: what runs in the datasource (see IMPORT.md).\n");
    s.push_str("rules: [rules/]\n");
    s.push_str("datasources:\n");
    let _ = writeln!(s, "  - {{ name: {}, url: {} }}", ds.name, q(&ds.url));
    s.push_str("sources:\n  query:\n");
    let _ = writeln!(s, "    - datasource: {}", ds.name);
    s.push_str("      series:\n");
    for (name, promql) in queries {
        let _ = writeln!(s, "        {}: {}", q(name), q(promql));
    }
    s
}

/// Translates one rule file; pushes its entries and problems; returns the tocsin file.
fn rules_file(
    file: &str,
    bytes: &[u8],
    ds: Option<&Datasource>,
    out: &mut Output,
    queries: &mut Vec<(String, String)>,
) -> Option<String> {
    let text = match std::str::from_utf8(bytes) {
        Ok(t) => t,
        Err(_) => {
            out.problems.push(Problem {
                file: file.into(),
                line: 0,
                rule: None,
                message: "not UTF-8 text".into(),
            });
            return None;
        }
    };
    let parsed: PromFile = match serde_saphyr::from_str(text) {
        Ok(p) => p,
        Err(e) => {
            let msg = e.to_string();
            let line = msg
                .split("line ")
                .nth(1)
                .and_then(|r| r.split(|c: char| !c.is_ascii_digit()).next())
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
            out.problems.push(Problem {
                file: file.into(),
                line,
                rule: None,
                message: format!("not a Prometheus rule file: {}", msg.lines().next().unwrap_or("")),
            });
            return None;
        }
    };
    let mut y = String::from("# yaml-language-server: $schema=../schemas/rules.schema.json\n");
    let _ = writeln!(
        y,
        "# Imported from {file} by `tocsin import prometheus`; see ../IMPORT.md."
    );
    y.push_str("groups:\n");
    for g in &parsed.groups {
        let _ = writeln!(y, "  - name: {}", q(&g.name.value));
        if let Some(i) = &g.interval {
            if valid_duration(i) {
                let _ = writeln!(y, "    interval: {i}");
            } else {
                out.problems.push(Problem {
                    file: file.into(),
                    line: g.name.line(),
                    rule: None,
                    message: format!("group interval `{i}` is not a duration; the engine's interval applies"),
                });
            }
        }
        for (key, set) in [("limit", g.limit.is_some()), ("query_offset", g.query_offset.is_some())] {
            if set {
                out.problems.push(Problem {
                    file: file.into(),
                    line: g.name.line(),
                    rule: None,
                    message: format!(
                        "group `{}`: `{key}` has no tocsin counterpart; not imported",
                        g.name.value
                    ),
                });
            }
        }
        let mut body = String::new();
        group(file, &g.name.value, &g.rules, ds, out, queries, &mut body);
        if body.is_empty() {
            y.push_str("    rules: []\n");
        } else {
            y.push_str("    rules:\n");
            y.push_str(&body);
        }
    }
    if parsed.groups.is_empty() {
        y = y.replace("groups:\n", "groups: []\n");
    }
    Some(y)
}

#[allow(clippy::too_many_arguments)]
fn group(
    file: &str,
    gname: &str,
    rules: &[PromRule],
    ds: Option<&Datasource>,
    out: &mut Output,
    queries: &mut Vec<(String, String)>,
    y: &mut String,
) {
    let mut alerts: Vec<Alert> = Vec::new();
    // (entry index, YAML) of each written rule, to keep the source order.
    let mut items: Vec<(usize, String)> = Vec::new();
    for r in rules {
        let (name, kind, line) = match (&r.alert, &r.record) {
            (Some(a), None) => (a.value.clone(), "alert", a.line()),
            (None, Some(rec)) => (rec.value.clone(), "record", rec.line()),
            _ => {
                out.problems.push(Problem {
                    file: file.into(),
                    line: r.expr.line(),
                    rule: None,
                    message: "a rule needs exactly one of `alert` and `record`".into(),
                });
                continue;
            }
        };
        let entry = out.entries.len();
        out.entries.push(Entry {
            file: file.into(),
            line,
            group: gname.into(),
            name: name.clone(),
            kind,
            outcome: Outcome::NotImported { reason: String::new() },
            notes: Vec::new(),
        });
        let src = r.expr.value.0.clone();
        let parsed = match promql::parse(&src) {
            Ok(p) => p,
            Err(e) => {
                let reason = format!("PromQL does not parse: {}", e.lines().next().unwrap_or(""));
                out.problems.push(Problem {
                    file: file.into(),
                    line: r.expr.line(),
                    rule: Some(name.clone()),
                    message: reason.clone(),
                });
                out.entries[entry].outcome = Outcome::NotImported { reason };
                continue;
            }
        };
        let translated = promql::translate(&parsed);
        let labels: BTreeMap<String, String> = r.labels.iter().map(|(k, v)| (k.clone(), v.0.clone())).collect();
        if kind == "record" {
            match translated {
                Ok(t) => {
                    let mut y = String::new();
                    let _ = writeln!(y, "      - record: {}", q(&name));
                    let _ = writeln!(y, "        expr: {}", q(&t.expr));
                    if let Some(by) = &t.by {
                        let _ = writeln!(y, "        by: {}", list(by));
                    }
                    if !labels.is_empty() {
                        let _ = writeln!(y, "        labels: {}", map(&labels));
                    }
                    items.push((entry, y));
                    out.entries[entry].notes = t.notes;
                    out.entries[entry].outcome = Outcome::Local { rule: name, tier: None };
                }
                Err(why) => match ds {
                    Some(_) if labels.is_empty() => {
                        queries.push((name.clone(), src.trim().to_string()));
                        out.entries[entry].outcome = Outcome::Query {
                            series: name,
                            rule: None,
                        };
                        out.entries[entry]
                            .notes
                            .push(format!("runs in the datasource: tocsin cannot evaluate {why}"));
                    }
                    Some(_) => {
                        out.entries[entry].outcome = Outcome::NotImported {
                            reason: format!(
                                "tocsin cannot evaluate {why}, and a query's series cannot carry the rule's `labels:`"
                            ),
                        };
                    }
                    None => {
                        out.entries[entry].outcome = Outcome::NotImported {
                            reason: format!("tocsin cannot evaluate {why}; with `--datasource` it would run there"),
                        };
                    }
                },
            }
            continue;
        }
        let mut notes = Vec::new();
        let (expr, by, threshold, shown) = match translated {
            Ok(t) => {
                notes.extend(t.notes.iter().cloned());
                if !t.expr.contains(['<', '>', '=']) && !t.expr.contains("!=") {
                    out.entries[entry].outcome = Outcome::NotImported {
                        reason:
                            "the expression is not a comparison: in Prometheus it fires for every series it returns"
                                .into(),
                    };
                    continue;
                }
                (t.expr, t.by, promql::threshold(&parsed), promql::shown(&parsed))
            }
            Err(why) => {
                let Some(ds) = ds else {
                    out.entries[entry].outcome = Outcome::NotImported {
                        reason: format!("tocsin cannot evaluate {why}; with `--datasource` it would run there"),
                    };
                    continue;
                };
                let _ = ds;
                let mut series = series_name(&name);
                for n in 2.. {
                    if !queries.iter().any(|(q, _)| *q == series) {
                        break;
                    }
                    series = format!("{}_{n}_promql", series_name(&name).trim_end_matches("_promql"));
                }
                let (expr, threshold) = match promql::split_threshold(&parsed) {
                    Some((lhs, above, n)) => {
                        queries.push((series.clone(), lhs));
                        let op = if above { ">" } else { "<" };
                        (
                            format!("{series} {op} {n}"),
                            Some(promql::Threshold {
                                value: series.clone(),
                                above,
                                n,
                            }),
                        )
                    }
                    None => {
                        queries.push((series.clone(), src.trim().to_string()));
                        (format!("present({series}) == 1"), None)
                    }
                };
                notes.push(format!("runs in the datasource: tocsin cannot evaluate {why}"));
                out.entries[entry].outcome = Outcome::Query {
                    series: series.clone(),
                    rule: Some(name.clone()),
                };
                (expr, None, threshold, Some(series))
            }
        };
        let mut annotations = BTreeMap::new();
        for (k, v) in &r.annotations {
            match template::translate(v) {
                Ok(t) => {
                    if t.approximate {
                        notes.push(format!(
                            "annotation `{k}`: `humanize*`/`printf` formatting became rounding"
                        ));
                    } else {
                        out.exact_annotations.insert((name.clone(), k.clone()));
                    }
                    annotations.insert(k.clone(), t.text);
                }
                Err(why) => {
                    let message = format!("annotation `{k}` not imported: tocsin cannot translate {why}");
                    out.problems.push(Problem {
                        file: file.into(),
                        line,
                        rule: Some(name.clone()),
                        message: message.clone(),
                    });
                    notes.push(message);
                }
            }
        }
        let mut labels = labels;
        // tocsin's rule labels are fixed text; Prometheus renders templated ones per alert.
        labels.retain(|k, v| {
            let templated = v.contains("{{");
            if templated {
                out.problems.push(Problem {
                    file: file.into(),
                    line,
                    rule: Some(name.clone()),
                    message: format!("label `{k}` is a template, which tocsin labels cannot be; not imported"),
                });
            }
            !templated
        });
        let severity = labels.remove("severity");
        if severity.is_none() {
            notes.push("no `severity` label: tocsin fires it at severity `warning`".into());
        }
        if let Some(s) = &severity
            && !crate::rules::valid_name(s)
        {
            out.entries[entry].outcome = Outcome::NotImported {
                reason: format!("severity `{s}` is not a valid tocsin severity name"),
            };
            continue;
        }
        for (label, d) in [("for", &r.for_), ("keep_firing_for", &r.keep_firing_for)] {
            if let Some(d) = d
                && !valid_duration(d)
            {
                out.problems.push(Problem {
                    file: file.into(),
                    line,
                    rule: Some(name.clone()),
                    message: format!("`{label}: {d}` is not a duration"),
                });
            }
        }
        out.entries[entry].notes = notes;
        alerts.push(Alert {
            entry,
            name,
            expr,
            by,
            threshold,
            shown,
            for_: r.for_.clone().filter(|d| valid_duration(d)),
            keep_firing_for: r.keep_firing_for.clone().filter(|d| valid_duration(d)),
            severity,
            labels,
            annotations,
        });
    }
    for family in families(&alerts) {
        let mut text = String::new();
        write_alert(&alerts, &family, out, &mut text);
        items.push((alerts[family[0]].entry, text));
    }
    items.sort_by_key(|(entry, _)| *entry);
    for (_, text) in items {
        y.push_str(&text);
    }
}

/// Groups alerts into families (indices into `alerts`, in source order of their first).
fn families(alerts: &[Alert]) -> Vec<Vec<usize>> {
    let mut taken = vec![false; alerts.len()];
    let mut out = Vec::new();
    for i in 0..alerts.len() {
        if taken[i] {
            continue;
        }
        taken[i] = true;
        let a = &alerts[i];
        let mut fam = vec![i];
        for j in i + 1..alerts.len() {
            if taken[j] {
                continue;
            }
            let b = &alerts[j];
            let same_rest = a.labels == b.labels
                && a.keep_firing_for == b.keep_firing_for
                && a.by == b.by
                && a.severity.is_some()
                && b.severity.is_some()
                && fam.iter().all(|&k| alerts[k].severity != b.severity);
            if !same_rest {
                continue;
            }
            let threshold_family = match (&a.threshold, &b.threshold) {
                (Some(x), Some(y)) => {
                    x.value == y.value
                        && x.above == y.above
                        && fam
                            .iter()
                            .all(|&k| alerts[k].threshold.as_ref().is_some_and(|t| t.n != y.n))
                }
                _ => false,
            };
            if threshold_family || a.name == b.name {
                fam.push(j);
                taken[j] = true;
            }
        }
        out.push(fam);
    }
    out
}

fn list(items: &[String]) -> String {
    let v: Vec<String> = items.iter().map(|s| q(s)).collect();
    format!("[{}]", v.join(", "))
}

fn map(m: &BTreeMap<String, String>) -> String {
    let v: Vec<String> = m.iter().map(|(k, v)| format!("{}: {}", q(k), q(v))).collect();
    format!("{{ {} }}", v.join(", "))
}

/// Writes one tocsin alerting rule for a family and records the outcome of its members.
fn write_alert(alerts: &[Alert], fam: &[usize], out: &mut Output, y: &mut String) {
    let first = &alerts[fam[0]];
    let name = first.name.clone();
    let _ = writeln!(y, "      - alert: {}", q(&name));
    if fam.len() == 1 {
        let _ = writeln!(y, "        expr: {}", q(&first.expr));
        if let Some(by) = &first.by {
            let _ = writeln!(y, "        by: {}", list(by));
        }
        if let Some(f) = &first.for_ {
            let _ = writeln!(y, "        for: {f}");
        }
        if let Some(s) = &first.severity {
            let _ = writeln!(y, "        severity: {}", q(s));
        }
        finish(first, &first.annotations, y);
        if !matches!(out.entries[first.entry].outcome, Outcome::Query { .. }) {
            out.entries[first.entry].outcome = Outcome::Local { rule: name, tier: None };
        }
        return;
    }
    let thresholds = fam.iter().all(|&k| alerts[k].threshold.is_some())
        && fam.windows(2).all(|w| {
            let (a, b) = (alerts[w[0]].threshold.as_ref(), alerts[w[1]].threshold.as_ref());
            a.zip(b).is_some_and(|(a, b)| a.value == b.value && a.above == b.above)
        });
    let mut members: Vec<usize> = fam.to_vec();
    if thresholds {
        let above = first.threshold.as_ref().is_some_and(|t| t.above);
        members.sort_by(|&x, &z| {
            let (tx, tz) = (
                alerts[x].threshold.as_ref().map_or(0.0, |t| t.n),
                alerts[z].threshold.as_ref().map_or(0.0, |t| t.n),
            );
            if above { tx.total_cmp(&tz) } else { tz.total_cmp(&tx) }
        });
        let value = first.threshold.as_ref().map(|t| t.value.clone()).unwrap_or_default();
        let _ = writeln!(y, "        expr: {}", q(&value));
    } else {
        members.sort_by_key(|&k| crate::alert::severity_order(alerts[k].severity.as_deref().unwrap_or("warning")));
        let shown = first.shown.clone().unwrap_or_else(|| "1".into());
        let _ = writeln!(y, "        expr: {}", q(&shown));
    }
    if let Some(by) = &first.by {
        let _ = writeln!(y, "        by: {}", list(by));
    }
    y.push_str("        tiers:\n");
    for &k in &members {
        let a = &alerts[k];
        let sev = a.severity.clone().unwrap_or_else(|| "warning".into());
        let cond = match (&a.threshold, thresholds) {
            (Some(t), true) => format!("{}: {}", if t.above { "above" } else { "below" }, t.n),
            _ => format!("when: {}", q(&a.expr)),
        };
        let f = a.for_.as_deref().map(|f| format!(", for: {f}")).unwrap_or_default();
        let _ = writeln!(y, "          - {{ severity: {}, {cond}{f} }}", q(&sev));
    }
    // One annotation template that chooses by severity where the members differ.
    let mut keys: Vec<&String> = members.iter().flat_map(|&k| alerts[k].annotations.keys()).collect();
    keys.sort();
    keys.dedup();
    let mut annotations = BTreeMap::new();
    for key in keys {
        let texts: Vec<(&str, Option<&String>)> = members
            .iter()
            .map(|&k| {
                (
                    alerts[k].severity.as_deref().unwrap_or("warning"),
                    alerts[k].annotations.get(key),
                )
            })
            .collect();
        let all_same = texts.windows(2).all(|w| w[0].1 == w[1].1);
        let t = if all_same {
            texts[0].1.cloned().unwrap_or_default()
        } else {
            let mut t = String::new();
            for (i, (sev, text)) in texts.iter().enumerate() {
                let kw = if i == 0 { "if" } else { "elif" };
                let _ = write!(
                    t,
                    "{{% {kw} severity == {} %}}{}",
                    q(sev),
                    text.map_or("", |s| s.as_str())
                );
            }
            t.push_str("{% endif %}");
            t
        };
        annotations.insert(key.clone(), t);
    }
    finish(first, &annotations, y);
    for (rank, &k) in members.iter().enumerate() {
        let a = &alerts[k];
        let tier = a.severity.clone();
        out.renames
            .insert((a.name.clone(), a.severity.clone()), (name.clone(), tier.clone(), rank));
        out.entries[a.entry].notes.push(format!(
            "merged into `{name}` as tier `{}`: one instance fires at the most severe due tier, where Prometheus fires one alert per met rule",
            tier.as_deref().unwrap_or("warning")
        ));
        if let Outcome::Query { .. } = out.entries[a.entry].outcome {
            continue;
        }
        out.entries[a.entry].outcome = Outcome::Local {
            rule: name.clone(),
            tier,
        };
    }
}

fn finish(a: &Alert, annotations: &BTreeMap<String, String>, y: &mut String) {
    if let Some(k) = &a.keep_firing_for {
        let _ = writeln!(y, "        keep_firing_for: {k}");
    }
    if !a.labels.is_empty() {
        let _ = writeln!(y, "        labels: {}", map(&a.labels));
    }
    if !annotations.is_empty() {
        y.push_str("        annotations:\n");
        for (k, v) in annotations {
            let _ = writeln!(y, "          {}: {}", q(k), q(v));
        }
    }
}

/// `IMPORT.md`: every source rule and what it became.
fn report(out: &Output) -> String {
    let (l, qn, n) = out.coverage();
    let mut s = String::from("# Imported from Prometheus\n\n");
    let _ = writeln!(
        s,
        "Written by `tocsin import prometheus`. {} source rules: {l} translated locally, {qn} as a query, {n} not imported.\n",
        out.entries.len()
    );
    s.push_str("| file:line | group | source rule | became | notes |\n|---|---|---|---|---|\n");
    for e in &out.entries {
        let became = match &e.outcome {
            Outcome::Local { rule, tier: Some(t) } => format!("`{rule}`, tier `{t}`"),
            Outcome::Local { rule, tier: None } => format!("`{rule}`"),
            Outcome::Query { series, rule: Some(r) } => format!("`{r}` over query series `{series}`"),
            Outcome::Query { series, rule: None } => format!("query series `{series}`"),
            Outcome::NotImported { reason } => format!("**not imported**: {reason}"),
        };
        let _ = writeln!(
            s,
            "| {}:{} | {} | {} `{}` | {} | {} |",
            e.file,
            e.line,
            cell(&e.group),
            e.kind,
            cell(&e.name),
            cell(&became),
            cell(&e.notes.join("; "))
        );
    }
    if !out.problems.is_empty() {
        s.push_str("\n## Problems\n\n");
        for p in &out.problems {
            let rule = p.rule.as_deref().map(|r| format!(" (`{r}`)")).unwrap_or_default();
            let _ = writeln!(s, "* {}:{}{rule}: {}", p.file, p.line, cell(&p.message));
        }
    }
    s
}

fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn import(rules: &str) -> Output {
        prometheus(&Input {
            rules: vec![("r.yml".into(), rules.as_bytes().to_vec())],
            ..Input::default()
        })
    }

    fn file<'a>(out: &'a Output, path: &str) -> &'a str {
        &out.files.iter().find(|(p, _)| p == path).unwrap().1
    }

    #[test]
    fn threshold_families_merge_into_tiers() {
        let out = import(
            r#"groups:
  - name: mem
    rules:
      - alert: MemHigh
        expr: mem_used_percent > 80
        for: 5m
        labels: { severity: warning, team: infra }
        annotations: { summary: "{{ $value }}% used" }
      - alert: MemCritical
        expr: mem_used_percent > 95
        for: 1m
        labels: { severity: critical, team: infra }
        annotations: { summary: "{{ $value }}% used, act now" }
      - alert: MemOther
        expr: mem_used_percent > 90
        labels: { severity: critical, team: other }
"#,
        );
        let y = file(&out, "rules/r.yaml");
        assert!(y.contains(r#"expr: "mem_used_percent""#), "{y}");
        assert!(y.contains(r#"- { severity: "warning", above: 80, for: 5m }"#), "{y}");
        assert!(y.contains(r#"- { severity: "critical", above: 95, for: 1m }"#), "{y}");
        assert!(
            y.contains(r#"{% if severity == \"warning\" %}{{ value | int if value is number and value == value | int else value }}% used{% elif"#),
            "{y}"
        );
        assert_eq!(
            out.entries[1].outcome,
            Outcome::Local {
                rule: "MemHigh".into(),
                tier: Some("critical".into())
            }
        );
        // A different label keeps a rule apart.
        assert_eq!(
            out.entries[2].outcome,
            Outcome::Local {
                rule: "MemOther".into(),
                tier: None
            }
        );
        assert!(file(&out, "IMPORT.md").contains("`MemHigh`, tier `critical`"));
    }

    #[test]
    fn bad_input_is_reported_and_the_rest_goes_on() {
        let out = import(
            r#"groups:
  - name: g
    rules:
      - alert: Broken
        expr: rate(x[5m) > 1
      - alert: Fine
        expr: up == 0
        annotations: { summary: "{{ range query \"up\" }}x{{ end }}" }
      - alert: Remote
        expr: absent(up)
"#,
        );
        assert_eq!(out.problems.len(), 2, "{:?}", out.problems);
        assert_eq!(out.problems[0].line, 5);
        assert_eq!(out.problems[0].rule.as_deref(), Some("Broken"));
        assert!(matches!(out.entries[1].outcome, Outcome::Local { .. }));
        assert!(matches!(&out.entries[2].outcome, Outcome::NotImported { reason } if reason.contains("absent")));
        assert_eq!(out.not_imported(), 2);
        let odd = import(
            "groups:\n  - name: g\n    limit: 10\n    rules:\n      - alert: A\n        expr: up == 0\n        labels: { owner: \"{{ $labels.team }}\" }\n",
        );
        let messages: Vec<&str> = odd.problems.iter().map(|p| p.message.as_str()).collect();
        assert_eq!(messages.len(), 2, "{messages:?}");
        assert!(messages[0].contains("`limit` has no tocsin counterpart"));
        assert!(messages[1].contains("label `owner` is a template"));
        let bad = import("groups: [ {");
        assert_eq!(bad.problems.len(), 1);
        assert!(bad.problems[0].message.contains("not a Prometheus rule file"));
    }

    #[test]
    fn a_datasource_takes_what_cannot_run_locally() {
        let out = prometheus(&Input {
            rules: vec![(
                "r.yml".into(),
                br#"groups:
  - name: g
    rules:
      - record: job:up:absent
        expr: absent(up{job="a"})
      - alert: Ratio
        expr: a / on(instance) b > 0.5
        labels: { severity: warning }
"#
                .to_vec(),
            )],
            datasource: Some(Datasource::parse("prom").unwrap()),
            ..Input::default()
        });
        let cfg = file(&out, "tocsin.yaml");
        assert!(
            cfg.contains(r#"- { name: prom, url: "http://127.0.0.1:9090" }"#),
            "{cfg}"
        );
        assert!(cfg.contains(r#""job:up:absent": "absent(up{job=\"a\"})""#), "{cfg}");
        assert!(cfg.contains(r#""ratio_promql": "a / on (instance) b""#), "{cfg}");
        let y = file(&out, "rules/r.yaml");
        assert!(y.contains(r#"expr: "ratio_promql > 0.5""#), "{y}");
        assert_eq!(out.coverage(), (0, 2, 0));
    }

    #[test]
    fn datasource_arguments() {
        assert_eq!(
            Datasource::parse("p=https://prom.example:9090").unwrap().url,
            "https://prom.example:9090"
        );
        assert!(Datasource::parse("p=ftp://x").is_err());
        assert!(Datasource::parse("1p").is_err());
    }
}
