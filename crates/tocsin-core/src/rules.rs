//! Rules: compiling parsed rule files into the one executable [`RuleSet`].
//!
//! Owns every semantic check of rule files that YAML typing cannot express (exactly one of
//! `alert`/`record`, tier order, clear thresholds, expression types, template syntax) and
//! the translation into the types the engine runs: compiled [`Expr`]s, state-machine
//! [`Policy`]s and [`NotifyPolicy`]s with `Duration`s. A parsed [`RuleDef`] and a compiled
//! [`Rule`] are different types on purpose: nothing downstream can see an unchecked rule.
//! Pure: it reads no file (callers pass parsed files) and no clock.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use regex::Regex;

use crate::alert::action::ActionTrigger;
use crate::alert::notify::{FlapPolicy, NotifyPolicy};
use crate::alert::state::{Condition, NoData, Policy, TierSpec};
use crate::config::{RuleDef, RuleFile, Sp, TierDef};
use crate::diag::Diagnostic;
use crate::expr::{Expr, Slot, Type};
use crate::series::Labels;
use crate::template::{TemplateRef, Templates};

/// Where a rule was written, for diagnostics and `/api/v1/rules`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Location {
    /// The rule file as the user named it (one string shared by every rule of the file).
    pub file: Arc<str>,
    /// 1-based line of the rule's name.
    pub line: u64,
    /// 1-based column of the rule's name.
    pub column: u64,
}

/// The compiled form of every rule file: what `run`, `check` and `test` all execute.
#[derive(Debug)]
pub struct RuleSet {
    /// Groups in file order.
    pub groups: Vec<Group>,
    /// Annotation templates of every rule.
    pub templates: Templates,
}

impl RuleSet {
    /// The longest window any expression reads: series must keep at least this much.
    pub fn longest_window(&self) -> Duration {
        self.rules()
            .flat_map(|r| r.exprs())
            .map(Expr::longest_window)
            .max()
            .unwrap_or_default()
    }

    /// Every rule of every group.
    pub fn rules(&self) -> impl Iterator<Item = &Rule> {
        self.groups.iter().flat_map(|g| g.rules.iter())
    }
}

/// A rule group: rules evaluated together, in order, at one interval.
#[derive(Debug)]
pub struct Group {
    /// The group's name, unique within its file.
    pub name: String,
    /// The file it came from.
    pub file: String,
    /// Its own interval; `None` means the engine's `evaluation_interval`.
    pub interval: Option<Duration>,
    /// Its rules, in file order.
    pub rules: Vec<Rule>,
}

/// How a rule selects series by label: an exact value or an anchored regex, or the negation
/// of either.
#[derive(Clone, Debug)]
pub enum Matcher {
    /// The label must have exactly this value.
    Exact(String),
    /// The label's value must match this regex (anchored at both ends).
    Regex(Regex),
    /// The label must not have this value.
    NotExact(String),
    /// The label's value must not match this regex (anchored at both ends).
    NotRegex(Regex),
}

impl Matcher {
    /// Parses `v`, `~regex`, `!v` or `!~regex`.
    pub fn parse(value: &str) -> Result<Matcher, regex::Error> {
        Ok(match value.strip_prefix('!') {
            Some(rest) => match rest.strip_prefix('~') {
                Some(re) => Matcher::NotRegex(crate::series::anchored_regex(re)?),
                None => Matcher::NotExact(rest.to_string()),
            },
            None => match value.strip_prefix('~') {
                Some(re) => Matcher::Regex(crate::series::anchored_regex(re)?),
                None => Matcher::Exact(value.to_string()),
            },
        })
    }

    /// Whether a label value (absent = empty string, as in Prometheus) matches.
    pub fn matches(&self, value: Option<&str>) -> bool {
        let v = value.unwrap_or("");
        match self {
            Matcher::Exact(e) => e == v,
            Matcher::Regex(r) => r.is_match(v),
            Matcher::NotExact(e) => e != v,
            Matcher::NotRegex(r) => !r.is_match(v),
        }
    }
}

/// One compiled rule.
///
/// Lists are boxed slices, not vectors, here and in [`Alert`]: a rule set lives as long as
/// the daemon runs it, a thousand rules at a time, and never grows; a slice is two words
/// and holds no spare room.
#[derive(Debug)]
pub struct Rule {
    /// The alert name or the recorded metric name.
    pub name: String,
    /// The expression as compiled.
    pub expr: Expr,
    /// Label matchers applied to the series of every input that has the label (an input
    /// without it, such as an unlabelled limit, is read unfiltered).
    pub select: Box<[(String, Matcher)]>,
    /// Grouping labels for aggregations.
    pub by: Box<[String]>,
    /// Extra labels put on every instance (and recorded series).
    pub labels: Labels,
    /// Alert or recording rule.
    pub kind: RuleKind,
    /// Where it was written.
    pub location: Location,
    /// The metrics all of its expressions read; `expr_slots` maps each expression's slot
    /// numbers into this list, so one instance binding serves every expression. A rule
    /// with one expression shares that expression's list.
    pub slots: Arc<[Slot]>,
    /// For the main expression and then each `when` tier expression (in tier order), the
    /// index into `slots` of each of its own slots.
    pub expr_slots: Box<[Box<[usize]>]>,
}

impl Rule {
    /// The main expression followed by every `when` tier expression.
    pub fn exprs(&self) -> impl Iterator<Item = &Expr> {
        let when: &[Option<Box<Expr>>] = match &self.kind {
            RuleKind::Alert(a) => &a.when,
            RuleKind::Record => &[],
        };
        std::iter::once(&self.expr).chain(when.iter().flatten().map(|e| &**e))
    }

    /// The alert part, for alert rules.
    pub fn alert(&self) -> Option<&Alert> {
        match &self.kind {
            RuleKind::Alert(a) => Some(a),
            RuleKind::Record => None,
        }
    }
}

/// Whether a rule alerts or records.
#[derive(Debug)]
pub enum RuleKind {
    /// A recording rule: writes its value as a series named after the rule.
    Record,
    /// An alerting rule.
    Alert(Box<Alert>),
}

/// The alerting half of a rule.
#[derive(Debug)]
pub struct Alert {
    /// Tiers, hysteresis-resolved clear thresholds, `keep_firing_for`, `no_data`: one copy
    /// shared by every rule of the set with the same policy.
    pub policy: Arc<Policy>,
    /// Cooldown, repeats, flapping.
    pub notify: Arc<NotifyPolicy>,
    /// Per tier: its `when` condition, for `when` tiers (boxed: most tiers have none, and
    /// an empty slot then costs a pointer instead of a whole expression).
    pub when: Box<[Option<Box<Expr>>]>,
    /// Per tier: its numeric threshold, for `above`/`below` tiers (templates show it).
    pub thresholds: Box<[Option<f64>]>,
    /// Whether the main expression is a condition (a rule without tiers).
    pub boolean: bool,
    /// Annotation name, compiled template, and source text (the one copy [`Templates`]
    /// keeps, shared by every rule with that text).
    pub annotations: Box<[(String, TemplateRef, Arc<str>)]>,
    /// Response actions.
    pub actions: Box<[Action]>,
    /// Receivers named directly with `notify:`, bypassing routes.
    pub receivers: Box<[String]>,
}

/// A response action.
#[derive(Debug, Clone)]
pub struct Action {
    /// Its name, unique within the rule.
    pub name: String,
    /// When it runs.
    pub trigger: ActionTrigger,
    /// What it runs.
    pub kind: ActionKind,
    /// How long one run may take before its process group is killed.
    pub timeout: Duration,
}

/// What an action does.
#[derive(Debug, Clone, PartialEq)]
pub enum ActionKind {
    /// Runs argv directly (no shell); alert data only in `TOCSIN_*` environment variables.
    Exec(Vec<String>),
    /// POSTs the event to a URL.
    Webhook {
        /// Where to POST.
        url: String,
        /// Extra headers.
        headers: BTreeMap<String, String>,
    },
}

const DEFAULT_ACTION_TIMEOUT: Duration = Duration::from_secs(30);
const DEFAULT_REPEAT_MAX: Duration = Duration::from_secs(24 * 3600);

/// Compiles rule files (path, parsed file) into a [`RuleSet`]. Returns the set when there
/// is no error, and every diagnostic (errors and warnings) either way.
pub fn compile(files: &[(String, RuleFile)]) -> (Option<RuleSet>, Vec<Diagnostic>) {
    let mut c = Compiler {
        diags: Vec::new(),
        templates: Templates::new(),
        severities: HashSet::new(),
        policies: Interner::default(),
        notify_policies: Interner::default(),
    };
    let mut groups = Vec::new();
    for (path, file) in files {
        let shared_path: Arc<str> = Arc::from(path.as_str());
        let mut group_names = HashSet::new();
        for g in &file.groups {
            if !group_names.insert(g.name.value.clone()) {
                c.error(
                    path,
                    &g.name,
                    "duplicate-group",
                    format!("group `{}` is defined twice in this file", g.name.value),
                );
            }
            let mut names = HashSet::new();
            let mut rules = Vec::new();
            for def in &g.rules {
                if let Some(rule) = c.rule(&shared_path, def) {
                    if !names.insert(rule.name.clone()) {
                        c.diags.push(
                            Diagnostic::error(
                                path,
                                rule.location.line,
                                rule.location.column,
                                "duplicate-rule",
                                format!("rule `{}` appears twice in group `{}`", rule.name, g.name.value),
                            )
                            .with_hint("give each rule of a group its own name"),
                        );
                    }
                    rules.push(rule);
                }
            }
            rules.shrink_to_fit();
            groups.push(Group {
                name: g.name.value.clone(),
                file: path.clone(),
                interval: g.interval.as_ref().map(|d| d.value.0),
                rules,
            });
            if let Some(i) = &g.interval
                && i.value.0.is_zero()
            {
                c.error(path, i, "interval", "a group's interval must be longer than zero");
            }
        }
    }
    let failed = c.diags.iter().any(|d| d.severity == crate::diag::Severity::Error);
    let set = (!failed).then(|| RuleSet {
        groups,
        templates: c.templates,
    });
    (set, c.diags)
}

struct Compiler {
    diags: Vec<Diagnostic>,
    templates: Templates,
    /// Every severity name seen, so that each tier's name is a reference to one string.
    severities: HashSet<Arc<str>>,
    /// Every distinct state-machine policy so far.
    policies: Interner<Policy>,
    /// Every distinct notification policy so far.
    notify_policies: Interner<NotifyPolicy>,
}

/// One shared copy of each distinct value: a thousand rules written from one pattern have
/// a few distinct policies, not a thousand. Values are bucketed by [`Interned::key`] and
/// shared only when also equal, so floats are told apart bit for bit (`0.0` and `-0.0` are
/// two values; a NaN is never shared). Keying by the `Debug` text did the same at 5 % of
/// `check`'s instructions.
struct Interner<T> {
    by_key: HashMap<u64, Vec<Arc<T>>>,
}

impl<T> Default for Interner<T> {
    fn default() -> Interner<T> {
        Interner { by_key: HashMap::new() }
    }
}

impl<T: Interned> Interner<T> {
    fn share(&mut self, value: T) -> Arc<T> {
        let mut h = std::hash::DefaultHasher::new();
        value.key(&mut h);
        let same = self.by_key.entry(std::hash::Hasher::finish(&h)).or_default();
        if let Some(shared) = same.iter().find(|v| ***v == value) {
            return Arc::clone(shared);
        }
        let shared = Arc::new(value);
        same.push(Arc::clone(&shared));
        shared
    }
}

/// A value an [`Interner`] shares: `key` feeds every field, floats by their bits, so
/// values equal bit for bit have equal keys.
trait Interned: PartialEq {
    fn key(&self, h: &mut std::hash::DefaultHasher);
}

impl Interned for f64 {
    fn key(&self, h: &mut std::hash::DefaultHasher) {
        std::hash::Hash::hash(&self.to_bits(), h);
    }
}

impl Interned for Policy {
    fn key(&self, h: &mut std::hash::DefaultHasher) {
        use std::hash::Hash;
        self.keep_firing_for.hash(h);
        std::mem::discriminant(&self.no_data).hash(h);
        for t in &self.tiers {
            t.severity.hash(h);
            t.for_.hash(h);
            std::mem::discriminant(&t.condition).hash(h);
            if let Condition::Above { threshold, clear } | Condition::Below { threshold, clear } = t.condition {
                threshold.key(h);
                clear.key(h);
            }
        }
    }
}

impl Interned for NotifyPolicy {
    fn key(&self, h: &mut std::hash::DefaultHasher) {
        use std::hash::Hash;
        self.cooldown.hash(h);
        self.cooldown_escalations.hash(h);
        self.repeat_interval.hash(h);
        self.repeat_backoff.key(h);
        self.repeat_max.hash(h);
        self.flap.as_ref().map(|f| (f.transitions, f.within)).hash(h);
    }
}

impl Compiler {
    fn error<T>(&mut self, file: &str, at: &Sp<T>, code: &'static str, msg: impl Into<String>) {
        self.diags
            .push(Diagnostic::error(file, at.line(), at.column(), code, msg));
    }

    fn error_hint<T>(
        &mut self,
        file: &str,
        at: &Sp<T>,
        code: &'static str,
        msg: impl Into<String>,
        hint: impl Into<String>,
    ) {
        self.diags
            .push(Diagnostic::error(file, at.line(), at.column(), code, msg).with_hint(hint));
    }

    fn warn<T>(&mut self, file: &str, at: &Sp<T>, code: &'static str, msg: impl Into<String>) {
        self.diags
            .push(Diagnostic::warning(file, at.line(), at.column(), code, msg));
    }

    fn expr(&mut self, file: &str, src: &Sp<String>) -> Option<Expr> {
        match Expr::compile(&src.value) {
            Ok(e) => Some(e),
            Err(e) => {
                let at = e
                    .offset
                    .map(|o| format!(" (at character {})", o + 1))
                    .unwrap_or_default();
                let mut d = Diagnostic::error(
                    file,
                    src.line(),
                    src.column(),
                    "expr",
                    format!("invalid expression `{}`: {}{at}", src.value, e.message),
                );
                d.hint = e.hint;
                // The offset is in bytes; positions in the file are counted in characters.
                if let Some(o) = e.offset.and_then(|o| src.value.get(..o)) {
                    d = d.in_value(o.chars().count());
                }
                self.diags.push(d);
                None
            }
        }
    }

    /// The one shared copy of severity name `s`.
    fn severity(&mut self, s: &str) -> Arc<str> {
        if let Some(shared) = self.severities.get(s) {
            return Arc::clone(shared);
        }
        let shared: Arc<str> = Arc::from(s);
        self.severities.insert(Arc::clone(&shared));
        shared
    }

    fn rule(&mut self, file: &Arc<str>, def: &RuleDef) -> Option<Rule> {
        let (name, is_alert) = match (&def.alert, &def.record) {
            (Some(a), None) => (a, true),
            (None, Some(r)) => (r, false),
            (Some(a), Some(_)) => {
                self.error(file, a, "rule-kind", "a rule has either `alert` or `record`, not both");
                return None;
            }
            (None, None) => {
                self.error_hint(
                    file,
                    &def.expr,
                    "rule-kind",
                    "this rule has neither `alert` nor `record`",
                    "add `alert: Name` or `record: metric_name`",
                );
                return None;
            }
        };
        // A recorded series is a metric, and metric names may hold colons
        // (`level:metric:operations`); an alert name is a label value used as a name.
        if is_alert && !valid_name(&name.value) {
            self.error(
                file,
                name,
                "name",
                format!("`{}` is not a valid name: use [a-zA-Z_][a-zA-Z0-9_]*", name.value),
            );
        } else if !is_alert && !crate::expr::is_metric_name(&name.value) {
            self.error(
                file,
                name,
                "name",
                format!(
                    "`{}` is not a valid metric name: use [a-zA-Z_:][a-zA-Z0-9_:]*",
                    name.value
                ),
            );
        }
        let location = Location {
            file: Arc::clone(file),
            line: name.line(),
            column: name.column(),
        };
        let expr = self.expr(file, &def.expr);
        let mut labels = Labels::new();
        for (k, v) in &def.labels {
            if !valid_name(k) {
                self.error(file, v, "label", format!("`{k}` is not a valid label name"));
            } else if k == "alertname" || k == "severity" {
                let hint = if k == "severity" {
                    "a rule's severity is the key `severity:` beside `expr` (or one per tier under `tiers:`), see docs/rules.md"
                } else {
                    "rename the label"
                };
                self.error_hint(file, v, "label", format!("label `{k}` is set by tocsin"), hint);
            }
            labels.set(k, &v.value);
        }
        let mut select = Vec::new();
        for (k, v) in &def.select {
            match Matcher::parse(&v.value) {
                Ok(m) => select.push((k.clone(), m)),
                Err(e) => self.error(file, v, "select", format!("invalid regex in `select.{k}`: {e}")),
            }
        }
        let kind = if is_alert {
            RuleKind::Alert(Box::new(self.alert(file, def, name, expr.as_ref())?))
        } else {
            self.record_only_keys(file, def);
            if let Some(e) = &expr
                && e.ty() != Type::Number
            {
                self.error(
                    file,
                    &def.expr,
                    "expr-type",
                    "a recording rule's expression must be numeric, not a condition",
                );
            }
            RuleKind::Record
        };
        let expr = expr?;
        let when: &[Option<Box<Expr>>] = match &kind {
            RuleKind::Alert(a) => &a.when,
            RuleKind::Record => &[],
        };
        let (slots, expr_slots) = if when.iter().all(Option::is_none) {
            // The common case: the main expression is the only one, its slots are the
            // rule's, shared rather than copied.
            let identity = (0..expr.slots().len()).collect();
            (Arc::clone(expr.shared_slots()), vec![identity].into_boxed_slice())
        } else {
            let mut slots: Vec<Slot> = Vec::new();
            let mut expr_slots = Vec::new();
            for e in std::iter::once(&expr).chain(when.iter().flatten().map(|e| &**e)) {
                let map = e
                    .slots()
                    .iter()
                    .map(|s| match slots.iter().position(|x| x == s) {
                        Some(i) => i,
                        None => {
                            slots.push(s.clone());
                            slots.len() - 1
                        }
                    })
                    .collect();
                expr_slots.push(map);
            }
            (slots.into(), expr_slots.into_boxed_slice())
        };
        Some(Rule {
            name: name.value.clone(),
            expr,
            select: select.into_boxed_slice(),
            by: def.by.iter().cloned().collect(),
            labels,
            kind,
            location,
            slots,
            expr_slots,
        })
    }

    fn record_only_keys(&mut self, file: &str, def: &RuleDef) {
        let alert_keys: [(bool, &str); 7] = [
            (def.tiers.is_some(), "tiers"),
            (def.r#for.is_some(), "for"),
            (def.severity.is_some(), "severity"),
            (def.cooldown.is_some(), "cooldown"),
            (!def.annotations.is_empty(), "annotations"),
            (!def.actions.is_empty(), "actions"),
            (!def.notify.is_empty(), "notify"),
        ];
        for (present, key) in alert_keys {
            if present {
                self.error(
                    file,
                    &def.expr,
                    "rule-kind",
                    format!("`{key}` only applies to alerting rules, and this is a recording rule"),
                );
            }
        }
    }

    fn alert(&mut self, file: &str, def: &RuleDef, name: &Sp<String>, expr: Option<&Expr>) -> Option<Alert> {
        let hysteresis = match &def.hysteresis {
            Some(h) if !(h.value.is_finite() && h.value >= 0.0) => {
                self.error(file, h, "hysteresis", "hysteresis must be a finite number ≥ 0");
                0.0
            }
            Some(h) => h.value,
            None => 0.0,
        };
        let mut tiers = Vec::new();
        let mut when = Vec::new();
        let mut thresholds = Vec::new();
        let boolean;
        match &def.tiers {
            Some(defs) => {
                boolean = false;
                if let Some(f) = &def.r#for {
                    self.error_hint(
                        file,
                        f,
                        "tiers",
                        "`for` at rule level applies only to rules without `tiers`",
                        "give each tier its own `for`",
                    );
                }
                if let Some(s) = &def.severity {
                    self.error_hint(
                        file,
                        s,
                        "tiers",
                        "`severity` at rule level applies only to rules without `tiers`",
                        "give each tier its own `severity`",
                    );
                }
                if defs.is_empty() {
                    self.error(file, name, "tiers", "`tiers` is empty: give at least one tier");
                }
                for t in defs {
                    let (spec, w, th) = self.tier(file, t, hysteresis, expr)?;
                    tiers.push(spec);
                    when.push(w.map(Box::new));
                    thresholds.push(th);
                }
                self.check_tier_order(file, defs, &tiers);
            }
            None => {
                boolean = true;
                if let Some(e) = expr
                    && e.ty() != Type::Bool
                {
                    self.error_hint(
                        file,
                        &def.expr,
                        "expr-type",
                        "a rule without `tiers` needs a condition (e.g. `cpu_percent > 90`), but this expression is numeric",
                        "compare it with a threshold, or add `tiers:` with `above:`/`below:`",
                    );
                }
                if let Some(h) = &def.hysteresis {
                    self.warn(
                        file,
                        h,
                        "hysteresis",
                        "`hysteresis` has no effect on a rule without numeric tiers",
                    );
                }
                let severity = def.severity.as_ref().map(|s| s.value.as_str()).unwrap_or("warning");
                let severity = self.severity(severity);
                tiers.push(TierSpec {
                    severity,
                    condition: Condition::When,
                    for_: def.r#for.as_ref().map(|d| d.value.0).unwrap_or_default(),
                });
                when.push(None);
                thresholds.push(None);
            }
        }
        let notify = NotifyPolicy {
            cooldown: dur(&def.cooldown),
            cooldown_escalations: def.cooldown_escalations.unwrap_or(false),
            repeat_interval: def.repeat_interval.as_ref().map(|d| d.value.0).filter(|d| !d.is_zero()),
            repeat_backoff: match &def.repeat_backoff {
                Some(b) if !(b.value.is_finite() && b.value >= 1.0) => {
                    self.error(file, b, "repeat", "repeat_backoff must be a number ≥ 1");
                    1.0
                }
                Some(b) => b.value,
                None => 1.0,
            },
            repeat_max: def.repeat_max.as_ref().map(|d| d.value.0).unwrap_or(DEFAULT_REPEAT_MAX),
            flap: def.flap.as_ref().map(|f| {
                if f.transitions.value < 2 {
                    self.error(file, &f.transitions, "flap", "flap.transitions must be at least 2");
                }
                FlapPolicy {
                    transitions: f.transitions.value,
                    within: f.within.value.0,
                }
            }),
        };
        tiers.shrink_to_fit();
        let policy = Policy {
            tiers,
            keep_firing_for: dur(&def.keep_firing_for),
            no_data: match def.no_data {
                None | Some(crate::config::NoDataDef::Keep) => NoData::Keep,
                Some(crate::config::NoDataDef::Resolve) => NoData::Resolve,
                Some(crate::config::NoDataDef::Alert) => NoData::Alert,
            },
        };
        let mut annotations = Vec::new();
        for (k, v) in &def.annotations {
            match self.templates.add_shared(&v.value) {
                Ok((t, text)) => {
                    for var in self.templates.unknown_variables(t).to_vec() {
                        self.diags.push(
                            Diagnostic::warning(
                                file,
                                v.line(),
                                v.column(),
                                "template-variable",
                                format!("annotation `{k}` reads `{var}`, which templates do not have"),
                            )
                            .with_hint(format!("known variables: {}", crate::template::VARIABLES.join(", "))),
                        );
                    }
                    annotations.push((k.clone(), t, text));
                }
                Err(e) => {
                    let line = v.line() + e.line.map(|l| l as u64 - 1).unwrap_or(0);
                    let mut d = Diagnostic::error(
                        file,
                        line,
                        v.column(),
                        "template",
                        format!("annotation `{k}` does not compile: {}", e.message),
                    );
                    if v.value.contains('$') {
                        d = d.with_hint(
                            "Prometheus' `{{ $value }}` is `{{ value }}` and `{{ $labels.x }}` is `{{ labels.x }}` (docs/rules.md, \"Annotations and labels\"); `tocsin import prometheus` translates whole rule files",
                        );
                    }
                    self.diags.push(d);
                }
            }
        }
        let actions = self.actions(file, def, &policy);
        Some(Alert {
            policy: self.policies.share(policy),
            notify: self.notify_policies.share(notify),
            when: when.into_boxed_slice(),
            thresholds: thresholds.into_boxed_slice(),
            boolean,
            annotations: annotations.into_boxed_slice(),
            actions: actions.into_boxed_slice(),
            receivers: def.notify.iter().map(|r| r.value.clone()).collect(),
        })
    }

    fn tier(
        &mut self,
        file: &str,
        t: &TierDef,
        hysteresis: f64,
        expr: Option<&Expr>,
    ) -> Option<(TierSpec, Option<Expr>, Option<f64>)> {
        let for_ = t.r#for.as_ref().map(|d| d.value.0).unwrap_or_default();
        let severity = self.severity(&t.severity.value);
        if !valid_name(&t.severity.value) {
            self.error(
                file,
                &t.severity,
                "severity",
                format!("`{}` is not a valid severity name", t.severity.value),
            );
        }
        let numeric = |c: &mut Compiler, at: &Sp<f64>| {
            if let Some(e) = expr
                && e.ty() != Type::Number
            {
                c.error_hint(
                    file,
                    at,
                    "tier-type",
                    "`above`/`below` tiers need a numeric expression, but `expr` is a condition",
                    "use `when:` tiers, or make `expr` numeric",
                );
            }
            if !at.value.is_finite() {
                c.error(file, at, "tier", "a threshold must be a finite number");
            }
        };
        let (condition, when, threshold) = match (&t.above, &t.below, &t.when) {
            (Some(a), None, None) => {
                numeric(self, a);
                let clear = t.clear.as_ref().map(|c| c.value).unwrap_or(a.value - hysteresis);
                if let Some(c) = &t.clear
                    && c.value > a.value
                {
                    self.error_hint(
                        file,
                        c,
                        "clear",
                        format!(
                            "clear {} is above the threshold {}: an `above` tier clears below its threshold",
                            c.value, a.value
                        ),
                        "use a value ≤ the threshold",
                    );
                }
                (
                    Condition::Above {
                        threshold: a.value,
                        clear,
                    },
                    None,
                    Some(a.value),
                )
            }
            (None, Some(b), None) => {
                numeric(self, b);
                let clear = t.clear.as_ref().map(|c| c.value).unwrap_or(b.value + hysteresis);
                if let Some(c) = &t.clear
                    && c.value < b.value
                {
                    self.error_hint(
                        file,
                        c,
                        "clear",
                        format!(
                            "clear {} is below the threshold {}: a `below` tier clears above its threshold",
                            c.value, b.value
                        ),
                        "use a value ≥ the threshold",
                    );
                }
                (
                    Condition::Below {
                        threshold: b.value,
                        clear,
                    },
                    None,
                    Some(b.value),
                )
            }
            (None, None, Some(w)) => {
                let e = self.expr(file, w)?;
                if e.ty() != Type::Bool {
                    self.error_hint(
                        file,
                        w,
                        "tier-type",
                        "a `when` tier needs a condition, but this expression is numeric",
                        "compare it, e.g. `x > 5`",
                    );
                }
                if let Some(c) = &t.clear {
                    self.error(file, c, "clear", "`clear` applies only to `above`/`below` tiers");
                }
                (Condition::When, Some(e), None)
            }
            _ => {
                self.error_hint(
                    file,
                    &t.severity,
                    "tier",
                    "a tier needs exactly one of `above`, `below` or `when`",
                    "e.g. `{ severity: warning, above: 70, for: 5m }`",
                );
                return None;
            }
        };
        Some((
            TierSpec {
                severity,
                condition,
                for_,
            },
            when,
            threshold,
        ))
    }

    fn check_tier_order(&mut self, file: &str, defs: &[TierDef], tiers: &[TierSpec]) {
        let mut seen = HashSet::new();
        for d in defs {
            if !seen.insert(d.severity.value.as_str()) {
                self.error(
                    file,
                    &d.severity,
                    "tier-duplicate",
                    format!("severity `{}` appears in two tiers", d.severity.value),
                );
            }
        }
        let above = tiers.iter().any(|t| matches!(t.condition, Condition::Above { .. }));
        let below = tiers.iter().any(|t| matches!(t.condition, Condition::Below { .. }));
        if above && below {
            self.error_hint(
                file,
                &defs[0].severity,
                "tier-order",
                "tiers mix `above` and `below`",
                "one rule watches one direction; split it into two rules",
            );
            return;
        }
        let mut last: Option<(f64, &str)> = None;
        for (d, t) in defs.iter().zip(tiers) {
            let th = match t.condition {
                Condition::Above { threshold, .. } => threshold,
                Condition::Below { threshold, .. } => -threshold,
                Condition::When => continue,
            };
            if let Some((prev, prev_sev)) = last
                && th <= prev
            {
                let (word, shown_prev, shown) = if above {
                    ("increase", prev, th)
                } else {
                    ("decrease", -prev, -th)
                };
                self.error_hint(
                    file,
                    &d.severity,
                    "tier-order",
                    format!("tier `{}` ({shown}) must be more severe than `{prev_sev}` ({shown_prev}): thresholds must {word} from least to most severe", d.severity.value),
                    "list tiers from least to most severe",
                );
            }
            last = Some((th, d.severity.value.as_str()));
        }
        // A `when` tier whose condition repeats a more severe one's, with no shorter `for`,
        // can never fire on its own: the more severe tier is always due first.
        for (i, (di, ti)) in defs.iter().zip(tiers).enumerate() {
            let Some(wi) = &di.when else { continue };
            for (dj, tj) in defs.iter().zip(tiers).skip(i + 1) {
                if dj.when.as_ref().is_some_and(|wj| wj.value.trim() == wi.value.trim()) && ti.for_ >= tj.for_ {
                    self.warn(
                        file,
                        &di.severity,
                        "unreachable-tier",
                        format!(
                            "tier `{}` can never fire: `{}` has the same condition and fires no later",
                            di.severity.value, dj.severity.value
                        ),
                    );
                }
            }
        }
    }

    fn actions(&mut self, file: &str, def: &RuleDef, policy: &Policy) -> Vec<Action> {
        let mut out = Vec::new();
        let mut names = HashSet::new();
        for a in &def.actions {
            if !names.insert(a.name.value.clone()) {
                self.error(
                    file,
                    &a.name,
                    "action",
                    format!("action `{}` appears twice in this rule", a.name.value),
                );
            }
            let mut trigger = ActionTrigger {
                on_tiers: Vec::new(),
                on_resolved: false,
                cooldown: dur(&a.cooldown),
                max_per_hour: a.max_per_hour.as_ref().map(|m| m.value),
            };
            if a.on.is_empty() {
                self.error_hint(
                    file,
                    &a.name,
                    "action",
                    format!("action `{}` has no `on:`, so it never runs", a.name.value),
                    "list severities and/or `resolved`",
                );
            }
            for on in &a.on {
                if on.value == "resolved" {
                    trigger.on_resolved = true;
                } else if let Some(i) = policy.tiers.iter().position(|t| *t.severity == *on.value) {
                    trigger.on_tiers.push(i);
                } else {
                    let known: Vec<&str> = policy.tiers.iter().map(|t| &*t.severity).collect();
                    self.error_hint(
                        file,
                        on,
                        "action",
                        format!("`{}` is not a severity of this rule", on.value),
                        format!("use one of: {}, resolved", known.join(", ")),
                    );
                }
            }
            let kind = match (&a.exec, &a.webhook) {
                (Some(argv), None) if !argv.is_empty() => ActionKind::Exec(argv.clone()),
                (None, Some(w)) => ActionKind::Webhook {
                    url: w.url.value.clone(),
                    headers: w.headers.clone(),
                },
                (Some(_), None) => {
                    self.error(file, &a.name, "action", "`exec` needs at least the program to run");
                    continue;
                }
                _ => {
                    self.error_hint(
                        file,
                        &a.name,
                        "action",
                        "an action needs exactly one of `exec` or `webhook`",
                        "e.g. `exec: [\"/usr/local/bin/drop-caches\"]`",
                    );
                    continue;
                }
            };
            out.push(Action {
                name: a.name.value.clone(),
                trigger,
                kind,
                timeout: a.timeout.as_ref().map(|d| d.value.0).unwrap_or(DEFAULT_ACTION_TIMEOUT),
            });
        }
        out
    }
}

fn dur(d: &Option<Sp<crate::config::Dur>>) -> Duration {
    d.as_ref().map(|d| d.value.0).unwrap_or_default()
}

/// Whether `s` is a metric, label or severity name: `[a-zA-Z_][a-zA-Z0-9_]*`.
pub fn valid_name(s: &str) -> bool {
    let mut b = s.bytes();
    matches!(b.next(), Some(c) if c.is_ascii_alphabetic() || c == b'_')
        && b.all(|c| c.is_ascii_alphanumeric() || c == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Source, parse_rules};
    use crate::diag::Severity;

    /// Compiles one rule (YAML list entry under `rules:`) and returns the diagnostics.
    fn diags(rule: &str) -> Vec<Diagnostic> {
        let yaml = format!("groups:\n  - name: g\n    rules:\n{}", indent(rule));
        let file = parse_rules(&Source::from_text("r.yaml", yaml).unwrap()).unwrap_or_else(|d| panic!("{d:?}"));
        compile(&[("r.yaml".to_string(), file)]).1
    }

    fn indent(s: &str) -> String {
        s.lines().map(|l| format!("      {l}\n")).collect()
    }

    /// The (severity, code, line) of each diagnostic, and asserts one has `code`.
    fn has(rule: &str, severity: Severity, code: &str) -> Diagnostic {
        let d = diags(rule);
        d.iter()
            .find(|d| d.code == code && d.severity == severity)
            .cloned()
            .unwrap_or_else(|| panic!("no {severity:?} `{code}` in {d:#?}"))
    }

    /// What `tests/rules_alloc.rs`'s budget relies on: what rules have in common is one
    /// allocation, and a rule with one expression reads that expression's slot list.
    #[test]
    fn rules_share_their_path_severities_policies_annotation_texts_and_slots() {
        let rule = |i: usize, sev: &str| {
            format!(
                "      - alert: A{i}\n        expr: m\n        tiers: [{{ severity: {sev}, above: 1 }}]\n        annotations: {{ summary: \"{{{{ value }}}}\" }}\n"
            )
        };
        let yaml = format!(
            "groups:\n  - name: g\n    rules:\n{}{}{}      - alert: W\n        expr: m\n        tiers:\n          - {{ severity: warning, above: 1 }}\n          - {{ severity: page, when: \"n > 1\" }}\n",
            rule(0, "warning"),
            rule(1, "page"),
            rule(2, "warning")
        );
        let file = parse_rules(&Source::from_text("r.yaml", yaml).unwrap()).unwrap_or_else(|d| panic!("{d:?}"));
        let (set, d) = compile(&[("r.yaml".into(), file)]);
        let set = set.unwrap_or_else(|| panic!("{d:?}"));
        let rules: Vec<&Rule> = set.rules().collect();
        let (first, a0) = (rules[0], rules[0].alert().unwrap());
        for r in &rules[..3] {
            let a = r.alert().unwrap();
            assert!(Arc::ptr_eq(&r.location.file, &first.location.file), "{}", r.name);
            assert!(Arc::ptr_eq(&r.slots, r.expr.shared_slots()), "{}", r.name);
            assert!(Arc::ptr_eq(&a.annotations[0].2, &a0.annotations[0].2), "{}", r.name);
            assert_eq!(&*a.annotations[0].2, "{{ value }}");
        }
        let sev = |r: usize, t: usize| Arc::clone(&rules[r].alert().unwrap().policy.tiers[t].severity);
        assert!(Arc::ptr_eq(&sev(0, 0), &sev(2, 0)) && Arc::ptr_eq(&sev(0, 0), &sev(3, 0)));
        assert!(Arc::ptr_eq(&sev(1, 0), &sev(3, 1)));
        assert!(!Arc::ptr_eq(&sev(0, 0), &sev(1, 0)));
        // Equal policies are one; a different tier is a different policy.
        let alert = |r: usize| rules[r].alert().unwrap();
        assert!(Arc::ptr_eq(&alert(0).policy, &alert(2).policy));
        assert!(!Arc::ptr_eq(&alert(0).policy, &alert(1).policy));
        assert_eq!(alert(1).policy.tiers[0].severity.as_ref(), "page");
        assert!((0..4).all(|r| Arc::ptr_eq(&alert(r).notify, &alert(0).notify)));
        // A rule with a `when` tier reads the slots of both expressions: its own list, with
        // each expression's slots mapped into it.
        let w = rules[3];
        let metrics: Vec<&str> = w.slots.iter().map(|s| s.metric.as_str()).collect();
        assert_eq!(metrics, ["m", "n"]);
        assert_eq!(&*w.expr_slots, &[Box::from([0usize]), Box::from([1usize])]);
    }

    /// The interner's key tells apart floats one step apart, and zero from minus zero.
    #[test]
    fn interned_values_are_shared_only_when_equal() {
        let mut i = Interner::default();
        let a = i.share(0.1f64);
        assert!(Arc::ptr_eq(&a, &i.share(0.1)));
        assert!(!Arc::ptr_eq(&a, &i.share(f64::from_bits(0.1f64.to_bits() + 1))));
        assert!(!Arc::ptr_eq(&i.share(0.0), &i.share(-0.0)));
    }

    #[test]
    fn a_clean_rule_compiles_with_resolved_clear_thresholds() {
        let yaml = "groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: m\n        hysteresis: 5\n        tiers:\n          - { severity: warning, above: 70, for: 5m }\n          - { severity: high, above: 80, clear: 72 }\n";
        let file = parse_rules(&Source::from_text("r.yaml", yaml).unwrap()).unwrap();
        let (set, d) = compile(&[("r.yaml".into(), file)]);
        assert!(d.is_empty(), "{d:?}");
        let set = set.unwrap();
        let a = set.groups[0].rules[0].alert().unwrap();
        assert_eq!(a.policy.tiers[0].for_, Duration::from_secs(300));
        assert!(matches!(
            a.policy.tiers[0].condition,
            Condition::Above {
                threshold: 70.0,
                clear: 65.0
            }
        ));
        assert!(matches!(
            a.policy.tiers[1].condition,
            Condition::Above {
                threshold: 80.0,
                clear: 72.0
            }
        ));
    }

    #[test]
    fn rule_kind_errors() {
        has("- alert: A\n  record: b\n  expr: m > 1", Severity::Error, "rule-kind");
        has("- expr: m > 1", Severity::Error, "rule-kind");
        has("- record: r\n  expr: m\n  severity: high", Severity::Error, "rule-kind");
        has("- record: r\n  expr: m > 1", Severity::Error, "expr-type");
        has("- alert: A-B\n  expr: m > 1", Severity::Error, "name");
    }

    #[test]
    fn expression_errors_point_at_the_expr() {
        let d = has("- alert: A\n  expr: rat(m, \"5m\") > 1", Severity::Error, "expr");
        assert_eq!((d.line, d.column), (5, 15));
        assert!(d.hint.unwrap().contains("rate"));
        has("- alert: A\n  expr: 'm >'", Severity::Error, "expr");
    }

    #[test]
    fn types_must_fit_the_tiers() {
        has("- alert: A\n  expr: m", Severity::Error, "expr-type");
        has(
            "- alert: A\n  expr: m > 1\n  tiers: [{ severity: warning, above: 1 }]",
            Severity::Error,
            "tier-type",
        );
        has(
            "- alert: A\n  expr: m\n  tiers: [{ severity: warning, when: m + 1 }]",
            Severity::Error,
            "tier-type",
        );
        has(
            "- alert: A\n  expr: m\n  for: 1m\n  tiers: [{ severity: warning, above: 1 }]",
            Severity::Error,
            "tiers",
        );
        has(
            "- alert: A\n  expr: m\n  tiers: [{ severity: warning }]",
            Severity::Error,
            "tier",
        );
        has(
            "- alert: A\n  expr: m\n  tiers: [{ severity: warning, above: 1, below: 0 }]",
            Severity::Error,
            "tier",
        );
        has("- alert: A\n  expr: m\n  tiers: []", Severity::Error, "tiers");
    }

    #[test]
    fn tiers_must_increase_in_severity() {
        has(
            "- alert: A\n  expr: m\n  tiers:\n    - { severity: warning, above: 80 }\n    - { severity: high, above: 70 }",
            Severity::Error,
            "tier-order",
        );
        has(
            "- alert: A\n  expr: m\n  tiers:\n    - { severity: warning, below: 0.5 }\n    - { severity: high, below: 0.7 }",
            Severity::Error,
            "tier-order",
        );
        has(
            "- alert: A\n  expr: m\n  tiers:\n    - { severity: warning, above: 1 }\n    - { severity: high, below: 0 }",
            Severity::Error,
            "tier-order",
        );
        has(
            "- alert: A\n  expr: m\n  tiers:\n    - { severity: warning, above: 1 }\n    - { severity: warning, above: 2 }",
            Severity::Error,
            "tier-duplicate",
        );
        // Below tiers decreasing is the right order.
        let ok = diags(
            "- alert: A\n  expr: m\n  tiers:\n    - { severity: warning, below: 0.7 }\n    - { severity: high, below: 0.5 }",
        );
        assert!(ok.is_empty(), "{ok:?}");
    }

    #[test]
    fn clear_must_be_on_the_clearing_side() {
        has(
            "- alert: A\n  expr: m\n  tiers: [{ severity: warning, above: 70, clear: 75 }]",
            Severity::Error,
            "clear",
        );
        has(
            "- alert: A\n  expr: m\n  tiers: [{ severity: warning, below: 70, clear: 65 }]",
            Severity::Error,
            "clear",
        );
        has(
            "- alert: A\n  expr: m\n  hysteresis: -1\n  tiers: [{ severity: warning, above: 70 }]",
            Severity::Error,
            "hysteresis",
        );
    }

    #[test]
    fn unreachable_tiers_and_unknown_template_variables_warn() {
        has(
            "- alert: A\n  expr: m\n  tiers:\n    - { severity: warning, when: m > 1, for: 5m }\n    - { severity: high, when: m > 1, for: 1m }",
            Severity::Warning,
            "unreachable-tier",
        );
        has(
            "- alert: A\n  expr: m > 1\n  annotations: { s: '{{ valeu }}' }",
            Severity::Warning,
            "template-variable",
        );
        has(
            "- alert: A\n  expr: m > 1\n  annotations: { s: '{{ value | }}' }",
            Severity::Error,
            "template",
        );
    }

    #[test]
    fn actions_name_real_severities_and_one_kind() {
        has(
            "- alert: A\n  expr: m\n  tiers: [{ severity: warning, above: 1 }]\n  actions: [{ name: x, on: [critical], exec: [/bin/true] }]",
            Severity::Error,
            "action",
        );
        has(
            "- alert: A\n  expr: m\n  tiers: [{ severity: warning, above: 1 }]\n  actions: [{ name: x, on: [warning] }]",
            Severity::Error,
            "action",
        );
        let ok = diags(
            "- alert: A\n  expr: m\n  tiers: [{ severity: warning, above: 1 }]\n  actions: [{ name: x, on: [warning, resolved], exec: [/bin/true] }]",
        );
        assert!(ok.is_empty(), "{ok:?}");
    }

    #[test]
    fn duplicate_rule_names_in_a_group_are_errors() {
        let d = has(
            "- alert: A\n  expr: m > 1\n- alert: A\n  expr: m > 2",
            Severity::Error,
            "duplicate-rule",
        );
        assert_eq!(d.line, 6);
    }

    #[test]
    fn reserved_labels_and_bad_selects_are_errors() {
        has(
            "- alert: A\n  expr: m > 1\n  labels: { severity: x }",
            Severity::Error,
            "label",
        );
        has(
            "- alert: A\n  expr: m > 1\n  select: { mount: '~(' }",
            Severity::Error,
            "select",
        );
    }

    #[test]
    fn matchers_are_anchored() {
        let m = Matcher::parse("~nvme.*").unwrap();
        assert!(m.matches(Some("nvme0n1")));
        assert!(!m.matches(Some("xnvme0")));
        assert!(Matcher::parse("").unwrap().matches(None));
    }

    #[test]
    fn matchers_negate_after_a_bang() {
        let not = Matcher::parse("!/boot").unwrap();
        assert!(not.matches(Some("/")));
        assert!(!not.matches(Some("/boot")));
        let not_re = Matcher::parse("!~nvme.*").unwrap();
        assert!(not_re.matches(Some("sda")));
        assert!(not_re.matches(Some("xnvme0")), "anchored");
        assert!(!not_re.matches(Some("nvme0n1")));
        assert!(Matcher::parse("!~(").is_err());
    }
}
