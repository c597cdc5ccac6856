//! `tocsin test`: rule unit tests.
//!
//! Owns running one parsed test file against the rules it names: expanding input series,
//! driving the very same [`Engine`] the daemon runs on a simulated clock, and comparing
//! firing sets and notifications with what the file expects. With `receiver_files`, every
//! notification also goes through the same [`Dispatcher`] the daemon uses (routes, groups,
//! inhibition; no silences) and expectations are per receiver: the clock then also stops at
//! every instant the dispatcher has a timer for (`group_wait`, `group_interval`, repeats).
//! Pure: files come from a loader the caller passes, time is simulated, and results come
//! back as values (the CLI prints them and writes JUnit).

pub mod notation;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use regex::Regex;

use crate::alert::state::{Phase, Transition};
use crate::config::{Dur, ReceiverFile, RuleFile, Sp, TestCase, TestFile};
use crate::diag::Diagnostic;
use crate::engine::{ActionRun, Blocked, Engine, Settings};
use crate::pipeline::{Effects, Options, Pipeline};
use crate::policy::Policy;
use crate::rules::{RuleSet, compile};
use crate::series::{Labels, Sample, Timestamp, duration_ms};
use notation::{Point, parse_series, parse_values};

/// Default interval between evaluations and between input samples, as in promtool.
const DEFAULT_INTERVAL: Duration = Duration::from_secs(60);
/// Most evaluations one test may ask for; a typo like `at: 1000d` must fail, not hang.
const MAX_EVALUATIONS: u64 = 2_000_000;

/// The outcome of one test case.
#[derive(Clone, Debug, PartialEq)]
pub struct CaseResult {
    /// The test's name.
    pub name: String,
    /// Readable failure descriptions; empty when the test passed.
    pub failures: Vec<String>,
}

/// The outcome of one test file.
#[derive(Clone, Debug, Default)]
pub struct FileResult {
    /// Cases that ran (those selected by the filter).
    pub cases: Vec<CaseResult>,
    /// Problems with the file itself or the rules it loads; the cases did not run if any
    /// of these is an error.
    pub diagnostics: Vec<Diagnostic>,
}

/// Loads the files a test file names (paths already resolved against the test file).
///
/// Any `Fn(&str) -> Result<RuleFile, _>` is a loader of rule files only; a test file that
/// names receiver files needs one that implements [`Load::receivers`] too.
pub trait Load {
    /// Reads and parses a rule file.
    fn rules(&self, path: &str) -> Result<RuleFile, Vec<Diagnostic>>;

    /// Reads and parses a receivers file.
    fn receivers(&self, path: &str) -> Result<ReceiverFile, Vec<Diagnostic>> {
        Err(vec![Diagnostic::error(
            path,
            0,
            0,
            "receiver-files",
            "receiver files of test files cannot be loaded here; run `tocsin test` or `tocsin check` on the test file",
        )])
    }
}

impl<F: Fn(&str) -> Result<RuleFile, Vec<Diagnostic>>> Load for F {
    fn rules(&self, path: &str) -> Result<RuleFile, Vec<Diagnostic>> {
        self(path)
    }
}

/// The loader as the test runner and `check` take it.
pub type Loader<'a> = dyn Load + 'a;

/// The rules and receivers a test file names, loaded and compiled.
struct Loaded {
    set: Arc<RuleSet>,
    policy: Policy,
}

/// Loads and compiles the files `test` names; `None` when an error (in `diags`) stops that.
fn load_files(path: &str, test: &TestFile, load: &Loader<'_>, diags: &mut Vec<Diagnostic>) -> Option<Loaded> {
    let dir = std::path::Path::new(path).parent().unwrap_or(std::path::Path::new(""));
    let mut files = Vec::new();
    for f in &test.rule_files {
        let p = dir.join(&f.value).to_string_lossy().into_owned();
        match load.rules(&p) {
            Ok(rf) => files.push((p, rf)),
            Err(d) => diags.extend(d.into_iter().map(|d| at_entry(path, f, &p, "rule_files", d))),
        }
    }
    let mut receiver_files = Vec::new();
    for f in &test.receiver_files {
        let p = dir.join(&f.value).to_string_lossy().into_owned();
        match load.receivers(&p) {
            Ok(rf) => receiver_files.push((p, rf)),
            Err(d) => diags.extend(d.into_iter().map(|d| at_entry(path, f, &p, "receiver_files", d))),
        }
    }
    check_receiver_names(path, &files, &receiver_files, diags);
    // The policy compiler's errors (regexes, templates); unknown names are reported above,
    // worded for the test file.
    let policy = crate::policy::compile(&receiver_files, &Default::default());
    diags.extend(
        (policy.diagnostics.into_iter())
            .filter(|d| d.severity == crate::diag::Severity::Error && d.code != "unknown-receiver"),
    );
    if diags.iter().any(|d| d.severity == crate::diag::Severity::Error) {
        return None;
    }
    let (set, compiled) = compile(&files);
    diags.extend(compiled);
    Some(Loaded {
        set: Arc::new(set?),
        policy: policy.policy,
    })
}

/// A finding about a whole file a test file names (it is missing, unreadable, a directory)
/// is reported at the entry that names it: the reader must learn which test file asked for
/// it and where. Findings inside the named file keep their own place.
fn at_entry(path: &str, entry: &Sp<String>, resolved: &str, key: &str, d: Diagnostic) -> Diagnostic {
    if d.line != 0 || d.file != resolved {
        return d;
    }
    let relative = format!("`{key}` paths are relative to the test file's folder");
    let hint = match &d.hint {
        Some(h) => format!("{relative}; {h}"),
        None => relative,
    };
    Diagnostic {
        file: path.to_string(),
        line: entry.line(),
        column: entry.column(),
        message: format!("`{key}` entry `{}` ({resolved}): {}", entry.value, d.message),
        ..d
    }
    .with_hint(hint)
}

/// Warns of each input series of `case` whose metric no rule under test reads: such a test
/// passes without testing anything (a misspelt name, a renamed metric).
fn unread_inputs(path: &str, set: &RuleSet, case: &TestCase, diags: &mut Vec<Diagnostic>) {
    for input in &case.input_series {
        let Ok((name, _)) = parse_series(&input.series.value) else {
            continue;
        };
        if set.rules().any(|r| r.slots.iter().any(|s| s.metric == name)) {
            continue;
        }
        diags.push(
            Diagnostic::warning(
                path,
                input.series.line(),
                input.series.column(),
                "unread-series",
                format!(
                    "test `{}`: input series `{}` is read by no rule under test",
                    case.name.value, input.series.value
                ),
            )
            .with_hint("check the metric's spelling against the rules' expressions, or drop the series"),
        );
    }
}

/// Runs the cases of `test` (read from `path`) whose names match `filter`.
pub fn run_file(path: &str, test: &TestFile, load: &Loader<'_>, filter: Option<&Regex>) -> FileResult {
    let mut result = FileResult::default();
    let Some(Loaded { set, policy }) = load_files(path, test, load, &mut result.diagnostics) else {
        return result;
    };
    let receivers = (!test.receiver_files.is_empty()).then_some(&policy);
    let eval_interval = test
        .evaluation_interval
        .as_ref()
        .map(|d| d.value.0)
        .unwrap_or(DEFAULT_INTERVAL);
    for case in &test.tests {
        if filter.is_some_and(|re| !re.is_match(&case.name.value)) {
            continue;
        }
        unread_inputs(path, &set, case, &mut result.diagnostics);
        let start = test.start.map_or(0, |s| s.0);
        match run_case(path, &set, receivers, eval_interval, start, case) {
            Ok(failures) => result.cases.push(CaseResult {
                name: case.name.value.clone(),
                failures,
            }),
            Err(d) => result.diagnostics.extend(d),
        }
    }
    result
}

/// Every receiver a route or a rule's `notify:` names must be defined: the dispatcher skips
/// unknown receivers, which would make expectations fail for a reason the diff cannot show.
fn check_receiver_names(
    path: &str,
    rules: &[(String, RuleFile)],
    receivers: &[(String, ReceiverFile)],
    diags: &mut Vec<Diagnostic>,
) {
    if receivers.is_empty() {
        return;
    }
    let defined: Vec<&str> = receivers
        .iter()
        .flat_map(|(_, f)| f.receivers.iter().map(|r| r.name.expose()))
        .collect();
    let mut unknown = |file: &str, line: u64, column: u64, name: &str, what: &str| {
        if !defined.contains(&name) {
            diags.push(Diagnostic::error(
                file,
                line,
                column,
                "unknown-receiver",
                format!("{what} names receiver `{name}`, which no receiver file of `{path}` defines"),
            ));
        }
    };
    for (file, f) in receivers {
        for r in &f.routes {
            for name in &r.receivers {
                unknown(file, name.line(), name.column(), name.expose(), "a route");
            }
        }
    }
    for (file, f) in rules {
        for r in f.groups.iter().flat_map(|g| g.rules.iter()) {
            for n in &r.notify {
                unknown(file, n.line(), n.column(), &n.value, "`notify`");
            }
        }
    }
}

/// A notification as the test compares it.
#[derive(Clone, Debug)]
struct Got {
    at: Timestamp,
    event: &'static str,
    severity: String,
    labels: Labels,
    /// The receiver (only with receiver files).
    receiver: Option<String>,
}

const EVENTS: &[&str] = &["firing", "escalated", "deescalated", "repeat", "resolved", "flapping"];

fn located<T>(path: &str, at: &Sp<T>, code: &'static str, msg: String) -> Diagnostic {
    Diagnostic::error(path, at.line(), at.column(), code, msg)
}

/// A test case's inputs, parsed and checked.
struct Prepared {
    /// Every input sample, in time order.
    samples: Vec<(Timestamp, String, Labels, f64)>,
    /// The `notifications.expect` entries.
    expected_notes: Vec<ExpectedNote>,
    /// The `actions.expect` entries.
    expected_actions: Vec<ExpectedAction>,
}

fn prepare(path: &str, case: &TestCase, with_receivers: bool) -> Result<Prepared, Vec<Diagnostic>> {
    let mut diags = Vec::new();
    let step = case.interval.as_ref().map(|d| d.value.0).unwrap_or(DEFAULT_INTERVAL);
    if let Some(i) = case.interval.as_ref().filter(|i| i.value.0.is_zero()) {
        diags.push(located(
            path,
            i,
            "interval",
            "a test's interval must be longer than zero".into(),
        ));
    }
    let mut samples = Vec::new();
    for input in &case.input_series {
        let sel = parse_series(&input.series.value);
        let vals = parse_values(&input.values.value);
        if let Err(e) = &sel {
            let msg = format!(
                "invalid series `{}`: {} (at character {})",
                input.series.value,
                e.message,
                e.offset + 1
            );
            diags.push(located(path, &input.series, "series", msg));
        }
        if let Err(e) = &vals {
            let msg = format!("invalid values: {} (at character {})", e.message, e.offset + 1);
            diags.push(located(path, &input.values, "values", msg));
        }
        if let (Ok((name, labels)), Ok(points)) = (sel, vals) {
            for (i, p) in points.into_iter().enumerate() {
                if let Point::Value(v) = p {
                    let t = Timestamp(duration_ms(step).saturating_mul(i as i64));
                    samples.push((t, name.clone(), labels.clone(), v));
                }
            }
        }
    }
    samples.sort_by_key(|s| s.0);
    let mut expected_notes = Vec::new();
    if let Some(n) = &case.notifications {
        for e in &n.expect {
            match expected_note(e, with_receivers) {
                Ok(x) => expected_notes.push(x),
                Err(msg) => diags.push(located(path, e, "notifications", msg)),
            }
        }
        if expected_notes.windows(2).any(|w| w[0].at > w[1].at) {
            diags.push(located(
                path,
                &n.expect[0],
                "notifications",
                "`expect` must be ordered by `at`".into(),
            ));
        }
    }
    let mut expected_actions = Vec::new();
    if let Some(n) = &case.actions {
        for e in &n.expect {
            match expected_action(e) {
                Ok(x) => expected_actions.push(x),
                Err(msg) => diags.push(located(path, e, "actions", msg)),
            }
        }
        if expected_actions.windows(2).any(|w| w[0].at > w[1].at) {
            diags.push(located(
                path,
                &n.expect[0],
                "actions",
                "`expect` must be ordered by `at`".into(),
            ));
        }
    }
    if diags.is_empty() {
        Ok(Prepared {
            samples,
            expected_notes,
            expected_actions,
        })
    } else {
        Err(diags)
    }
}

/// Checks a test file without running it: the rule files it names load and compile, every
/// case's input notation and expectations parse, and every input series is read by a rule
/// (a warning otherwise).
pub fn validate(path: &str, test: &TestFile, load: &Loader<'_>) -> Vec<Diagnostic> {
    let mut diags = Vec::new();
    let loaded = load_files(path, test, load, &mut diags);
    for case in &test.tests {
        if let Some(l) = &loaded {
            unread_inputs(path, &l.set, case, &mut diags);
        }
        if let Err(d) = prepare(path, case, !test.receiver_files.is_empty()) {
            diags.extend(d);
        }
    }
    diags
}

fn run_case(
    path: &str,
    set: &Arc<RuleSet>,
    receivers: Option<&Policy>,
    eval_interval: Duration,
    start: i64,
    case: &TestCase,
) -> Result<Vec<String>, Vec<Diagnostic>> {
    let Prepared {
        samples,
        expected_notes,
        expected_actions,
    } = prepare(path, case, receivers.is_some())?;
    let until_of = |e: &Option<crate::config::TimedExpectations>, last: Option<Timestamp>| {
        e.as_ref().map(|n| match &n.until {
            Some(u) => Timestamp(duration_ms(u.value.0)),
            None => last.unwrap_or_default(),
        })
    };
    let until = until_of(&case.notifications, expected_notes.last().map(|e| e.at));
    let actions_until = until_of(&case.actions, expected_actions.last().map(|e| e.at));
    let mut checkpoints: Vec<(Timestamp, usize)> =
        case.alerts.iter().enumerate().map(|(i, a)| (at(&a.at), i)).collect();
    checkpoints.sort();
    let end = checkpoints
        .iter()
        .map(|c| c.0)
        .chain(until)
        .chain(actions_until)
        .max()
        .unwrap_or_default();

    // The schedule: every group at its interval, from 0 to `end`.
    let intervals: Vec<i64> = set
        .groups
        .iter()
        .map(|g| duration_ms(g.interval.unwrap_or(eval_interval)).max(1))
        .collect();
    let evaluations: u64 = intervals.iter().map(|i| (end.0 / i) as u64 + 1).sum();
    if evaluations > MAX_EVALUATIONS {
        return Err(vec![located(
            path,
            &case.name,
            "test-length",
            format!(
                "this test needs {evaluations} evaluations (more than {MAX_EVALUATIONS}); use a longer interval or an earlier `at`"
            ),
        )]);
    }
    let settings = Settings {
        staleness: Duration::from_secs(300),
    };
    let retention = set.longest_window().max(Duration::from_secs(3600));
    let none = Policy::default();
    let options = Options {
        settings,
        retention,
        external_url: TEST_URL.to_string(),
        history_resolution: Duration::from_secs(60),
        flush_chunk: None,
    };
    let mut pipeline = Pipeline::new(Arc::clone(set), receivers.unwrap_or(&none), options);
    // The simulated clock's 0 is the test file's `start:`, for time intervals.
    pipeline.dispatcher.set_origin(start);
    let mut seen = Seen::default();
    let mut failures = Vec::new();
    let mut next_sample = 0;
    let mut next_check = 0;
    let mut next_eval: Vec<i64> = vec![0; intervals.len()];
    loop {
        let t = next_eval.iter().copied().min().unwrap_or(i64::MAX);
        // Routing's timers (group_wait, group_interval, repeats) between evaluations; one at
        // or before the last flush would mean no progress, so never spin on one.
        let before = Timestamp(t.min(end.0.saturating_add(1)));
        while let Some(due) = pipeline
            .next_due()
            .filter(|&due| due < before && due > pipeline.dispatched_at())
        {
            let mut fx = Effects::default();
            pipeline.flush(due, &mut fx);
            seen.take(fx);
        }
        // Expectations between evaluations see the state of the last evaluation before them.
        while next_check < checkpoints.len() && (checkpoints[next_check].0.0 < t || t > end.0) {
            check_alerts(&pipeline.engine, &case.alerts[checkpoints[next_check].1], &mut failures);
            next_check += 1;
        }
        if t > end.0 {
            break;
        }
        let now = Timestamp(t);
        while next_sample < samples.len() && samples[next_sample].0 <= now {
            let (ts, name, labels, v) = &samples[next_sample];
            pipeline.series.push(name, labels, Sample { t: *ts, v: *v });
            next_sample += 1;
        }
        for g in 0..intervals.len() {
            if next_eval[g] == t {
                let mut fx = Effects::default();
                pipeline.evaluate(g, now, Timestamp(now.0 + intervals[g]), &mut fx);
                seen.take(fx);
                next_eval[g] += intervals[g];
            }
        }
        while next_check < checkpoints.len() && checkpoints[next_check].0 == now {
            check_alerts(&pipeline.engine, &case.alerts[checkpoints[next_check].1], &mut failures);
            next_check += 1;
        }
    }
    failures.append(&mut seen.template_errors);
    if let Some(until) = until {
        let got: Vec<Got> = match receivers {
            Some(_) => seen.routed.into_iter().filter(|g| g.at <= until).collect(),
            None => seen.notified.into_iter().filter(|g| g.at <= until).collect(),
        };
        compare_notifications(&expected_notes, &got, &mut failures);
    }
    if let Some(until) = actions_until {
        seen.actions.retain(|a| a.at <= until);
        compare_actions(&expected_actions, &seen.actions, &mut failures);
    }
    Ok(failures)
}

/// Where links in messages rendered under test point: the daemon's default address.
const TEST_URL: &str = "http://127.0.0.1:9470";

/// What the pipeline produced over a test, as the test compares it.
#[derive(Default)]
struct Seen {
    /// The engine's notifications (what a test without receiver files checks).
    notified: Vec<Got>,
    /// What each receiver was sent (what a test with receiver files checks).
    routed: Vec<Got>,
    /// Admitted and refused actions.
    actions: Vec<GotAction>,
    /// Failed templates, as failures: the daemon would send a fallback text.
    template_errors: Vec<String>,
}

impl Seen {
    fn take(&mut self, fx: Effects) {
        self.notified.extend(fx.notifications.iter().map(|n| Got {
            at: n.at,
            event: n.kind.name(),
            severity: n.severity.to_string(),
            labels: n.labels.clone(),
            receiver: None,
        }));
        for d in &fx.dispatches {
            for (fp, kind) in &d.news {
                let Some(a) = d.alerts.iter().find(|a| a.instance == *fp) else {
                    continue;
                };
                self.routed.push(Got {
                    at: d.at,
                    event: kind.name(),
                    severity: a.severity.clone(),
                    labels: a.labels.clone(),
                    receiver: Some(d.receiver.clone()),
                });
            }
        }
        let event = |run: &ActionRun| match run.kind.1 {
            Transition::Resolved => "resolved".to_string(),
            _ => run.severity.to_string(),
        };
        for job in &fx.actions {
            self.actions.push(GotAction {
                at: job.run.at,
                action: job.run.kind.0.clone(),
                event: event(&job.run),
                blocked: None,
                labels: job.run.labels.clone(),
            });
        }
        for r in &fx.refused {
            self.actions.push(GotAction {
                at: r.run.at,
                action: r.run.kind.0.clone(),
                event: event(&r.run),
                blocked: Some(r.blocked.name()),
                labels: r.run.labels.clone(),
            });
        }
        for (receiver, e) in &fx.template_errors {
            let msg = format!(
                "receiver `{receiver}`: a template failed (the fallback text would be sent): {}",
                e.message
            );
            if !self.template_errors.contains(&msg) {
                self.template_errors.push(msg);
            }
        }
    }
}

/// An action run or refusal as the test compares it.
#[derive(Clone, Debug)]
struct GotAction {
    at: Timestamp,
    action: String,
    /// The severity entered, or `resolved`.
    event: String,
    /// Why it did not run (`cooldown`, `max_per_hour`), if it did not.
    blocked: Option<&'static str>,
    labels: Labels,
}

fn at(d: &Sp<Dur>) -> Timestamp {
    Timestamp(duration_ms(d.value.0))
}

/// One `expect` entry.
#[derive(Debug)]
struct ExpectedNote {
    at: Timestamp,
    event: Option<String>,
    severity: Option<String>,
    receiver: Option<String>,
    labels: Vec<(String, String)>,
}

fn expected_note(e: &Sp<BTreeMap<String, String>>, with_receivers: bool) -> Result<ExpectedNote, String> {
    let mut at = None;
    let (mut event, mut severity, mut receiver, mut labels) = (None, None, None, Vec::new());
    for (k, v) in e.value.iter() {
        match k.as_str() {
            "at" => {
                at = Some(humantime::parse_duration(v).map_err(|err| format!("`at: {v}` is not a duration: {err}"))?)
            }
            "event" if EVENTS.contains(&v.as_str()) => event = Some(v.clone()),
            "event" => return Err(format!("unknown event `{v}`; events are {}", EVENTS.join(", "))),
            "severity" => severity = Some(v.clone()),
            "receiver" if with_receivers => receiver = Some(v.clone()),
            "receiver" => return Err("`receiver` needs `receiver_files:` in the test file".into()),
            _ => labels.push((k.clone(), v.clone())),
        }
    }
    let at = at.ok_or("every expected notification needs `at`")?;
    if with_receivers && receiver.is_none() {
        return Err("with `receiver_files:`, every expected notification names its `receiver`".into());
    }
    Ok(ExpectedNote {
        at: Timestamp(duration_ms(at)),
        event,
        severity,
        receiver,
        labels,
    })
}

/// One `actions.expect` entry.
#[derive(Debug)]
struct ExpectedAction {
    at: Timestamp,
    action: Option<String>,
    event: Option<String>,
    /// `None`: it ran; `Some(why)`: it was refused for that reason.
    blocked: Option<String>,
    labels: Vec<(String, String)>,
}

fn expected_action(e: &Sp<BTreeMap<String, String>>) -> Result<ExpectedAction, String> {
    let mut at = None;
    let (mut action, mut event, mut blocked, mut labels) = (None, None, None, Vec::new());
    for (k, v) in e.value.iter() {
        match k.as_str() {
            "at" => {
                at = Some(humantime::parse_duration(v).map_err(|err| format!("`at: {v}` is not a duration: {err}"))?)
            }
            "action" => action = Some(v.clone()),
            "event" => event = Some(v.clone()),
            "blocked" if BLOCKED.contains(&v.as_str()) => blocked = Some(v.clone()),
            "blocked" => {
                return Err(format!(
                    "unknown `blocked: {v}`; an action is blocked by {}",
                    BLOCKED.join(" or ")
                ));
            }
            _ => labels.push((k.clone(), v.clone())),
        }
    }
    let at = at.ok_or("every expected action needs `at`")?;
    Ok(ExpectedAction {
        at: Timestamp(duration_ms(at)),
        action,
        event,
        blocked,
        labels,
    })
}

/// Why an action may be refused, as `blocked:` names it.
const BLOCKED: &[&str] = &[Blocked::Cooldown.name(), Blocked::MaxPerHour.name()];

fn matches_action(e: &ExpectedAction, g: &GotAction) -> bool {
    e.at == g.at
        && e.action.as_deref().is_none_or(|a| a == g.action)
        && e.event.as_deref().is_none_or(|ev| ev == g.event)
        && e.blocked.as_deref() == g.blocked
        && e.labels.iter().all(|(k, v)| g.labels.get(k) == Some(v.as_str()))
}

fn compare_actions(expected: &[ExpectedAction], got: &[GotAction], failures: &mut Vec<String>) {
    let mut used = vec![false; got.len()];
    let mut missing = vec![false; expected.len()];
    for (i, e) in expected.iter().enumerate() {
        match (0..got.len()).find(|&j| !used[j] && matches_action(e, &got[j])) {
            Some(j) => used[j] = true,
            None => missing[i] = true,
        }
    }
    if !missing.contains(&true) && !used.contains(&false) {
        return;
    }
    let blocked = |b: Option<&str>| b.map(|b| format!(" blocked: {b}")).unwrap_or_default();
    let mut lines: Vec<(Timestamp, u8, String)> = Vec::new();
    for (e, m) in expected.iter().zip(&missing) {
        let mark = if *m { "-" } else { " " };
        let labels: Vec<String> = e.labels.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
        let text = format!(
            "{mark} at {:>6}  {:<16} {:<9} {{{}}}{}",
            fmt_time(e.at),
            e.action.as_deref().unwrap_or("*"),
            e.event.as_deref().unwrap_or("*"),
            labels.join(", "),
            blocked(e.blocked.as_deref())
        );
        lines.push((e.at, if *m { 0 } else { 1 }, text));
    }
    for (g, u) in got.iter().zip(&used) {
        if !u {
            let text = format!(
                "+ at {:>6}  {:<16} {:<9} {}{}",
                fmt_time(g.at),
                g.action,
                g.event,
                g.labels,
                blocked(g.blocked)
            );
            lines.push((g.at, 2, text));
        }
    }
    lines.sort_by_key(|l| (l.0, l.1));
    let mut msg = String::from("actions differ (- expected, + got):\n");
    for (_, _, l) in lines {
        msg.push_str("  ");
        msg.push_str(&l);
        msg.push('\n');
    }
    failures.push(msg.trim_end().to_string());
}

fn fmt_time(t: Timestamp) -> String {
    if t.0 == 0 {
        return "0s".into();
    }
    humantime::format_duration(Duration::from_millis(t.0.max(0) as u64))
        .to_string()
        .replace(' ', "")
}

fn check_alerts(engine: &Engine, exp: &crate::config::AlertExpectation, failures: &mut Vec<String>) {
    let firing: Vec<_> = engine
        .alerts()
        .into_iter()
        .filter(|a| matches!(a.phase, Phase::Firing { .. }))
        .collect();
    let mut unmatched: Vec<usize> = (0..firing.len()).collect();
    let mut missing = Vec::new();
    for e in &exp.firing {
        let pos = unmatched.iter().position(|&i| {
            let a = &firing[i];
            e.labels.iter().all(|(k, v)| a.labels.get(k) == Some(v.as_str()))
                && (e.annotations.is_empty() || {
                    let ann = engine.annotations(a);
                    e.annotations.iter().all(|(k, v)| ann.get(k) == Some(v))
                })
        });
        match pos {
            Some(p) => {
                unmatched.remove(p);
            }
            None => missing.push(e),
        }
    }
    if missing.is_empty() && unmatched.is_empty() {
        return;
    }
    let mut msg = format!(
        "at {}: the firing alerts differ (- expected, + got)\n",
        fmt_time(at(&exp.at))
    );
    for e in missing {
        let labels = Labels::from_pairs(e.labels.iter());
        let _ = write!(msg, "  - {labels}");
        if !e.annotations.is_empty() {
            let _ = write!(msg, " annotations {:?}", e.annotations);
        }
        msg.push('\n');
    }
    for i in unmatched {
        let a = &firing[i];
        let _ = writeln!(msg, "  + {} annotations {:?}", a.labels, engine.annotations(a));
    }
    failures.push(msg.trim_end().to_string());
}

fn matches_note(e: &ExpectedNote, g: &Got) -> bool {
    e.at == g.at
        && e.event.as_deref().is_none_or(|ev| ev == g.event)
        && e.severity.as_deref().is_none_or(|s| s == g.severity)
        && e.receiver == g.receiver
        && e.labels.iter().all(|(k, v)| g.labels.get(k) == Some(v.as_str()))
}

fn compare_notifications(expected: &[ExpectedNote], got: &[Got], failures: &mut Vec<String>) {
    // Same-time notifications may come in any order: match within each instant.
    let mut used = vec![false; got.len()];
    let mut missing = vec![false; expected.len()];
    for (i, e) in expected.iter().enumerate() {
        match (0..got.len()).find(|&j| !used[j] && matches_note(e, &got[j])) {
            Some(j) => used[j] = true,
            None => missing[i] = true,
        }
    }
    if !missing.contains(&true) && !used.contains(&false) {
        return;
    }
    // One timeline, expected and got interleaved by time, unchanged lines marked with two spaces.
    let mut lines: Vec<(Timestamp, u8, String)> = Vec::new();
    for (e, m) in expected.iter().zip(&missing) {
        let mark = if *m { "-" } else { " " };
        let labels: Vec<String> = e.labels.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
        let text = format!(
            "{mark} at {:>6}  {}{:<11} {:<9} {{{}}}",
            fmt_time(e.at),
            receiver_column(e.receiver.as_deref()),
            e.event.as_deref().unwrap_or("*"),
            e.severity.as_deref().unwrap_or("*"),
            labels.join(", ")
        );
        lines.push((e.at, if *m { 0 } else { 1 }, text));
    }
    for (g, u) in got.iter().zip(&used) {
        if !u {
            lines.push((
                g.at,
                2,
                format!(
                    "+ at {:>6}  {}{:<11} {:<9} {}",
                    fmt_time(g.at),
                    receiver_column(g.receiver.as_deref()),
                    g.event,
                    g.severity,
                    g.labels
                ),
            ));
        }
    }
    lines.sort_by_key(|l| (l.0, l.1));
    let mut msg = String::from("notifications differ (- expected, + got):\n");
    for (_, _, l) in lines {
        msg.push_str("  ");
        msg.push_str(&l);
        msg.push('\n');
    }
    failures.push(msg.trim_end().to_string());
}

/// `receiver ` for the diff of a test with receiver files, nothing without.
fn receiver_column(receiver: Option<&str>) -> String {
    receiver.map(|r| format!("{r:<12} ")).unwrap_or_default()
}
