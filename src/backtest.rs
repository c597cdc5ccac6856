//! `tocsin backtest` (docs/backtest.md): the shell around the core's replay.
//!
//! Owns what the replay needs from the world: the rule and receiver files from disk or, with
//! `--base REV`, as git shows them at a revision (`git show`, `git ls-tree`); the input
//! series from a datasource by `query_range` in bounded chunks, or from a data directory's
//! value history opened read-only; the clock, read once to resolve relative times; and
//! printing. What is replayed and how it is counted and rendered is the core's
//! `tocsin_core::backtest`; this module never writes a data directory, a file or git.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use tocsin_core::backtest::{self, Format, Gap, Input, Plan, Report};

use crate::config::{self, EngineConfig, ReceiverFile, RuleFile, Source};
use crate::datasource::{Datasource, QueryError};
use crate::diag::{self, Diagnostic, Severity};
use crate::policy::Policy;
use crate::reload::{self, Depth};
use crate::rules::RuleSet;
use crate::series::{Labels, Sample, Timestamp, duration_ms};
use crate::store::RecordedSeries;

/// Most points one `query_range` asks for per series (Prometheus refuses more than 11,000).
const MAX_POINTS: i64 = 11_000;
/// Most series one query may return.
const MAX_SERIES: usize = 100_000;
/// Most group evaluations one backtest runs: a typo like `--from -70000d` must fail, not hang.
const MAX_EVALUATIONS: u64 = 50_000_000;

/// `tocsin backtest`'s arguments.
#[derive(clap::Args, Debug)]
#[command(group(clap::ArgGroup::new("inputs").required(true).args(["datasource", "data"])))]
pub struct Args {
    /// Rule files or directories (every *.yaml / *.yml in them).
    #[arg(required = true, value_name = "RULES")]
    rules: Vec<PathBuf>,
    /// Engine config: its `datasources`, `query` sources, `evaluation_interval` and
    /// `staleness` (default: tocsin.yaml when it exists, else built-in defaults).
    #[arg(short, long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Receiver files: replay routes, grouping, time intervals and their timers too, and
    /// count per receiver.
    #[arg(long, value_name = "FILE", num_args = 1..)]
    receivers: Vec<PathBuf>,
    /// Start of the range: RFC 3339 (`2026-11-23T00:00:00Z`), or relative to now (`-7d`,
    /// `-36h`, `now`).
    #[arg(long, value_name = "T", value_parser = parse_when, allow_hyphen_values = true)]
    from: When,
    /// End of the range, as `--from`.
    #[arg(long, value_name = "T", value_parser = parse_when, allow_hyphen_values = true)]
    to: When,
    /// Evaluate every group at this interval instead of its own (`30s`, `1m`).
    #[arg(long, value_name = "D", value_parser = parse_step)]
    step: Option<Duration>,
    /// Read the inputs from this datasource of the config's `datasources:`.
    #[arg(long, value_name = "NAME")]
    datasource: Option<String>,
    /// Read the inputs from this tocsin data directory's value history (read-only).
    #[arg(long, value_name = "DIR")]
    data: Option<PathBuf>,
    /// Also replay the same files as they were at this git revision, and print the
    /// difference.
    #[arg(long, value_name = "REV")]
    base: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = OutFormat::Text)]
    format: OutFormat,
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum OutFormat {
    Text,
    Json,
    Markdown,
}

/// An instant as written on the command line, resolved against one reading of the clock.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum When {
    /// An RFC 3339 instant (Unix ms).
    At(Timestamp),
    /// This long before now (`now` is zero).
    Ago(Duration),
}

impl When {
    /// The instant, with `now` as now.
    pub fn resolve(self, now: Timestamp) -> Timestamp {
        match self {
            When::At(t) => t,
            When::Ago(d) => now.minus(d),
        }
    }
}

/// Parses `now`, `-7d`, `-36h` or an RFC 3339 instant.
pub fn parse_when(s: &str) -> Result<When, String> {
    if s == "now" {
        return Ok(When::Ago(Duration::ZERO));
    }
    if let Some(ago) = s.strip_prefix('-') {
        return humantime::parse_duration(ago)
            .map(When::Ago)
            .map_err(|e| format!("`{s}` is not a relative time such as `-7d` or `-36h`: {e}"));
    }
    crate::silence::parse_time(s)
        .map(When::At)
        .map_err(|e| format!("{e}, nor a relative time such as `-7d`, `-36h` or `now`"))
}

fn parse_step(s: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(s).map_err(|e| format!("`{s}` is not a duration (e.g. 15s, 1m): {e}"))?;
    if d < Duration::from_millis(1) {
        return Err("the step must be at least 1ms".to_string());
    }
    Ok(d)
}

/// Why a backtest could not run.
enum Failure {
    /// An unusable invocation (exit 2): the message.
    Usage(String),
    /// Files that do not compile (exit 1).
    Files(Vec<Diagnostic>),
}

impl From<String> for Failure {
    fn from(s: String) -> Failure {
        Failure::Usage(s)
    }
}

/// Runs `tocsin backtest`.
pub fn run(args: Args) -> ExitCode {
    match backtest(&args) {
        Ok(out) => {
            print!("{out}");
            ExitCode::SUCCESS
        }
        Err(Failure::Usage(msg)) => {
            eprintln!("error: {msg}");
            ExitCode::from(2)
        }
        Err(Failure::Files(diags)) => {
            let source_of = |file: &str| std::fs::read_to_string(file).ok();
            eprintln!("{}", diag::render_text(&diags, &source_of));
            ExitCode::from(1)
        }
    }
}

/// A policy as replayed: the compiled rules, and the receivers when files were given.
struct Loaded {
    /// The compiled rules.
    rules: Arc<RuleSet>,
    /// The compiled receiver policy, with `--receivers`.
    policy: Option<Policy>,
}

fn backtest(args: &Args) -> Result<String, Failure> {
    let now = crate::daemon::now();
    let (from, to) = (args.from.resolve(now), args.to.resolve(now));
    if from >= to {
        return Err(format!(
            "--from {} is not before --to {}",
            crate::time::rfc3339_millis(from),
            crate::time::rfc3339_millis(to)
        )
        .into());
    }
    let cfg = crate::daemon::load_config(args.config.as_deref())
        .map_err(Failure::Files)?
        .cfg;
    let rule_paths = reload::expand(&args.rules, Depth::Flat).map_err(|d| Failure::Files(vec![d]))?;
    if rule_paths.is_empty() {
        return Err("no rule file: the named directories hold no *.yaml or *.yml file"
            .to_string()
            .into());
    }
    let receiver_paths = reload::expand(&args.receivers, Depth::Flat).map_err(|d| Failure::Files(vec![d]))?;
    let mut sides = vec![parse(&Disk, &rule_paths, &receiver_paths)?];
    if let Some(rev) = &args.base {
        let git = Git::new(rev, &args.rules, &args.receivers)?;
        sides.push(parse(&git, &git.rules, &git.receivers)?);
    }
    let compiled: Vec<Loaded> = sides.iter().map(compile).collect::<Result<_, _>>()?;
    let plan = Plan {
        from,
        to,
        step: args.step,
        evaluation_interval: cfg.evaluation_interval.value.0,
        staleness: cfg.staleness.value.0,
        not_replayable: BTreeMap::new(),
    };
    let sets: Vec<&RuleSet> = compiled.iter().map(|l| &*l.rules).collect();
    for set in &sets {
        let n = plan.evaluations(set);
        if n > MAX_EVALUATIONS {
            return Err(format!(
                "this range needs {n} evaluations (more than {MAX_EVALUATIONS}); use a shorter range or a longer --step"
            )
            .into());
        }
    }
    // Each side: its policy, its plan and its inputs.
    let mut replays: Vec<(Loaded, Plan, Vec<Input>, Vec<Gap>)> = Vec::new();
    match (&args.datasource, &args.data) {
        (Some(name), _) => {
            let (inputs, gaps) = from_datasource(&cfg, name, &sets, &plan)?;
            for l in compiled {
                replays.push((l, plan.clone(), inputs.clone(), gaps.clone()));
            }
        }
        (None, Some(dir)) => {
            let warmup = sets.iter().map(|s| duration_ms(s.longest_window())).max().unwrap_or(0);
            let recorded = crate::store::read_values(dir, from.0.saturating_sub(warmup), to.0.saturating_add(1))
                .map_err(|e| e.to_string())?;
            for (side, l) in sides.iter().zip(&compiled) {
                let replayable = from_history(side, &l.rules, &recorded);
                let loaded = compile(&replayable.files)?;
                let plan = Plan {
                    not_replayable: replayable.not_replayable,
                    ..plan.clone()
                };
                replays.push((loaded, plan, replayable.inputs, Vec::new()));
            }
        }
        (None, None) => return Err("name the inputs: --datasource NAME or --data DIR".to_string().into()),
    }
    let mut reports = replays
        .iter()
        .map(|(l, plan, inputs, gaps)| backtest::replay(&l.rules, l.policy.as_ref(), plan, inputs, gaps));
    let head = reports.next().ok_or_else(|| "nothing to replay".to_string())?;
    let base: Option<Report> = reports.next();
    let format = match args.format {
        OutFormat::Text => Format::Text,
        OutFormat::Json => Format::Json,
        OutFormat::Markdown => Format::Markdown,
    };
    Ok(backtest::render(format, &head, base.as_ref()))
}

/// Where policy files are read from.
trait Files {
    /// The file's contents.
    fn source(&self, path: &Path) -> Result<Source, Diagnostic>;
}

/// The files as they are on disk.
struct Disk;

impl Files for Disk {
    fn source(&self, path: &Path) -> Result<Source, Diagnostic> {
        reload::read_source(path)
    }
}

/// The files as they were at a git revision.
struct Git {
    rev: String,
    /// The rule files at the revision: the named files, and the *.yaml / *.yml files the
    /// named directories held then.
    rules: Vec<PathBuf>,
    /// The receiver files, likewise.
    receivers: Vec<PathBuf>,
}

impl Git {
    fn new(rev: &str, rules: &[PathBuf], receivers: &[PathBuf]) -> Result<Git, String> {
        if rev.starts_with('-') {
            return Err(format!("`{rev}` is not a git revision"));
        }
        let (dir, _) = Git::place(rules.first().map_or(Path::new("."), PathBuf::as_path));
        let commit = format!("{rev}^{{commit}}");
        Git::git(&dir, &["rev-parse", "--verify", "--quiet", &commit]).map_err(|e| {
            format!("git cannot resolve revision `{rev}` in {}: {e}", dir.display())
                .trim_end_matches(": ")
                .to_string()
        })?;
        let git = Git {
            rev: rev.to_string(),
            rules: Vec::new(),
            receivers: Vec::new(),
        };
        let rules = git.expand(rules)?;
        let receivers = git.expand(receivers)?;
        Ok(Git {
            rules,
            receivers,
            ..git
        })
    }

    /// `git` with `args`, run in `dir`; its standard output, or why it failed.
    fn git(dir: &Path, args: &[&str]) -> Result<Vec<u8>, String> {
        let out = std::process::Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(args)
            .output()
            .map_err(|e| format!("cannot run git: {e}"))?;
        if out.status.success() {
            Ok(out.stdout)
        } else {
            Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
        }
    }

    /// The directory `path` is in (or is), and `path` relative to it.
    fn place(path: &Path) -> (PathBuf, String) {
        let dir = match path.parent() {
            _ if path.is_dir() => path.to_path_buf(),
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let name = if path.is_dir() {
            ".".to_string()
        } else {
            path.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
        };
        (dir, name)
    }

    /// Files at the revision: a named directory's *.yaml / *.yml files then, a named file as
    /// it is named.
    fn expand(&self, paths: &[PathBuf]) -> Result<Vec<PathBuf>, String> {
        let mut out = Vec::new();
        for p in paths {
            if !p.is_dir() {
                out.push(p.clone());
                continue;
            }
            // In a subdirectory, `ls-tree REV` lists that directory's entries at REV.
            let listed = Git::git(p, &["ls-tree", &self.rev]).map_err(|e| {
                format!(
                    "git cannot list directory {} at revision `{}`: {e}",
                    p.display(),
                    self.rev
                )
            })?;
            // `<mode> <type> <object>\t<name>`: files only.
            let mut names: Vec<String> = String::from_utf8_lossy(&listed)
                .lines()
                .filter_map(|l| l.split_once('\t'))
                .filter(|(meta, _)| meta.split(' ').nth(1) == Some("blob"))
                .map(|(_, n)| n)
                .filter(|n| n.ends_with(".yaml") || n.ends_with(".yml"))
                .map(str::to_string)
                .collect();
            names.sort();
            out.extend(names.into_iter().map(|n| p.join(n)));
        }
        Ok(out)
    }
}

impl Files for Git {
    fn source(&self, path: &Path) -> Result<Source, Diagnostic> {
        let (dir, name) = Git::place(path);
        let shown = path.display().to_string();
        let spec = format!("{}:./{name}", self.rev);
        let bytes = Git::git(&dir, &["show", &spec]).map_err(|e| {
            Diagnostic::error(
                &shown,
                0,
                0,
                "git",
                format!("git cannot show {shown} at revision `{}`: {e}", self.rev),
            )
            .with_hint("name a revision that holds the file (a branch, tag or commit), e.g. `--base origin/main`")
        })?;
        Source::new(&format!("{shown}@{}", self.rev), bytes)
    }
}

/// The rule and receiver files of one side, parsed.
#[derive(Clone)]
struct Parsed {
    rules: Vec<(String, RuleFile)>,
    receivers: Vec<(String, ReceiverFile)>,
}

/// Reads and parses rule and receiver files from `files`; every error is a diagnostic.
fn parse(files: &dyn Files, rules: &[PathBuf], receivers: &[PathBuf]) -> Result<Parsed, Failure> {
    let mut diags = Vec::new();
    let mut rule_files: Vec<(String, RuleFile)> = Vec::new();
    for p in rules {
        match files.source(p).map_err(|d| vec![d]).and_then(|s| {
            let name = s.path().to_string();
            config::parse_rules(&s).map(|f| (name, f))
        }) {
            Ok(f) => rule_files.push(f),
            Err(d) => diags.extend(d),
        }
    }
    let mut receiver_files: Vec<(String, ReceiverFile)> = Vec::new();
    for p in receivers {
        match files.source(p).map_err(|d| vec![d]).and_then(|s| {
            let name = s.path().to_string();
            config::parse_receivers(&s, &|v| std::env::var(v).ok()).map(|f| (name, f))
        }) {
            Ok(f) => receiver_files.push(f),
            Err(d) => diags.extend(d),
        }
    }
    if !diags.is_empty() {
        return Err(Failure::Files(diags));
    }
    Ok(Parsed {
        rules: rule_files,
        receivers: receiver_files,
    })
}

/// Compiles one side's files as `check` does; any error refuses the run.
fn compile(files: &Parsed) -> Result<Loaded, Failure> {
    let mut diags = Vec::new();
    let (set, compiled) = crate::rules::compile(&files.rules);
    diags.extend(compiled.into_iter().filter(|d| d.severity == Severity::Error));
    let notified: BTreeSet<String> = (files.rules.iter())
        .flat_map(|(_, f)| f.groups.iter().flat_map(|g| g.rules.iter()))
        .flat_map(|r| r.notify.iter().map(|n| n.value.clone()))
        .collect();
    let policy = (!files.receivers.is_empty()).then(|| crate::policy::compile(&files.receivers, &notified));
    if let Some(p) = &policy {
        diags.extend(p.diagnostics.iter().filter(|d| d.severity == Severity::Error).cloned());
    }
    match set {
        Some(set) if diags.is_empty() => Ok(Loaded {
            rules: Arc::new(set),
            policy: policy.map(|p| p.policy),
        }),
        _ => Err(Failure::Files(diags)),
    }
}

/// The metrics `set` reads that none of its recording rules writes: what must be fetched.
fn inputs_of(set: &RuleSet) -> BTreeMap<&str, Vec<&crate::expr::Slot>> {
    let recorded: BTreeSet<&str> = set
        .rules()
        .filter(|r| r.alert().is_none())
        .map(|r| r.name.as_str())
        .collect();
    let mut out: BTreeMap<&str, Vec<&crate::expr::Slot>> = BTreeMap::new();
    for slot in set.rules().flat_map(|r| r.slots.iter()) {
        if !recorded.contains(slot.metric.as_str()) {
            out.entry(slot.metric.as_str()).or_default().push(slot);
        }
    }
    out
}

/// The PromQL of a raw series read: `{__name__="m", k="v", …}`.
fn selector(slot: &crate::expr::Slot) -> String {
    let mut parts = vec![format!("__name__={:?}", slot.metric)];
    parts.extend(slot.matchers.iter().map(|m| m.to_string()));
    format!("{{{}}}", parts.join(", "))
}

/// Fetches every input of `sets` from the datasource `name` of `cfg` over the plan's range
/// (and, before it, the longest window the rules read, so windows are full from the
/// start): the metrics a `query` source defines by its PromQL, the others as raw series.
fn from_datasource(
    cfg: &EngineConfig,
    name: &str,
    sets: &[&RuleSet],
    plan: &Plan,
) -> Result<(Vec<Input>, Vec<Gap>), String> {
    let ds_cfg = (cfg.datasources.iter())
        .find(|d| d.name.expose() == name)
        .ok_or_else(|| {
            let known: Vec<&str> = cfg.datasources.iter().map(|d| d.name.expose()).collect();
            format!(
                "the config defines no datasource `{name}` (it defines: {})",
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            )
        })?;
    let ds = Datasource::new(ds_cfg)?;
    let defined: BTreeMap<&str, &str> = (cfg.sources.query.iter())
        .filter(|q| q.datasource.expose() == name)
        .flat_map(|q| q.series.iter().map(|(m, p)| (m.as_str(), p.expose())))
        .collect();
    // One step for every query: the shortest evaluation interval, so every evaluation has a
    // sample of its own.
    let step_ms = sets
        .iter()
        .flat_map(|s| plan.intervals(s))
        .min()
        .unwrap_or_else(|| duration_ms(plan.evaluation_interval))
        .max(1);
    let warmup = sets.iter().map(|s| duration_ms(s.longest_window())).max().unwrap_or(0);
    let start = Timestamp(plan.from.0 - (warmup + step_ms - 1) / step_ms * step_ms);
    let mut queries: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for set in sets {
        for (metric, slots) in inputs_of(set) {
            let q = queries.entry(metric.to_string()).or_default();
            match defined.get(metric) {
                Some(promql) => {
                    q.insert(promql.to_string());
                }
                // A read without matchers fetches every series of the metric; the others
                // are then covered.
                None if slots.iter().any(|s| s.matchers.is_empty()) => {
                    q.insert(format!("{{__name__={metric:?}}}"));
                }
                None => q.extend(slots.iter().map(|s| selector(s))),
            }
        }
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    let mut inputs = Vec::new();
    let mut gaps = Vec::new();
    for (metric, promqls) in &queries {
        let mut series: BTreeMap<Labels, Vec<Sample>> = BTreeMap::new();
        for promql in promqls {
            match rt.block_on(fetch(&ds, promql, start, plan.to, step_ms)) {
                Ok(got) => {
                    for (labels, samples) in got {
                        // One series read by two selectors is one input.
                        series.entry(labels).or_insert(samples);
                    }
                }
                Err(e @ (QueryError::Connection(_) | QueryError::Timeout)) => {
                    return Err(format!("datasource `{name}` did not answer `{promql}`: {e}"));
                }
                Err(e) => gaps.push(Gap {
                    metric: metric.clone(),
                    reason: format!("the datasource refused `{promql}`: {e}"),
                }),
            }
        }
        gaps.extend(coverage(metric, &series, plan));
        inputs.extend(series.into_iter().map(|(labels, samples)| Input {
            metric: metric.clone(),
            labels,
            samples,
        }));
    }
    Ok((inputs, gaps))
}

/// `promql` over `[start, end]` every `step_ms`, in requests of at most [`MAX_POINTS`]
/// points per series, the series' samples joined across them.
async fn fetch(
    ds: &Datasource,
    promql: &str,
    start: Timestamp,
    end: Timestamp,
    step_ms: i64,
) -> Result<BTreeMap<Labels, Vec<Sample>>, QueryError> {
    let step = Duration::from_millis(step_ms as u64);
    let span = (MAX_POINTS - 1) * step_ms;
    let mut out: BTreeMap<Labels, Vec<Sample>> = BTreeMap::new();
    let mut at = start;
    while at <= end {
        let until = Timestamp(at.0.saturating_add(span).min(end.0));
        for s in ds.range(promql, at, until, step, MAX_SERIES).await? {
            out.entry(s.labels).or_default().extend(s.samples);
        }
        at = Timestamp(until.0 + step_ms);
    }
    Ok(out)
}

/// What part of the range `metric`'s series leave uncovered, beyond the staleness at
/// either end: a source holding only part of the range is named, never counted as quiet.
fn coverage(metric: &str, series: &BTreeMap<Labels, Vec<Sample>>, plan: &Plan) -> Option<Gap> {
    let first = series.values().filter_map(|s| s.first()).map(|s| s.t).min()?;
    let last = series.values().filter_map(|s| s.last()).map(|s| s.t).max()?;
    let slack = duration_ms(plan.staleness);
    let late = first.0 > plan.from.0 + slack;
    let early = last.0 < plan.to.0 - slack;
    let t = crate::time::rfc3339_millis;
    let reason = match (late, early) {
        (true, true) => format!("the datasource holds samples only from {} until {}", t(first), t(last)),
        (true, false) => format!("the datasource holds samples only from {}", t(first)),
        (false, true) => format!("the datasource holds samples only until {}", t(last)),
        (false, false) => return None,
    };
    Some(Gap {
        metric: metric.to_string(),
        reason,
    })
}

/// One side's files rewritten to replay from a value history, its inputs, and the rules it
/// cannot replay.
struct Replayable {
    files: Parsed,
    inputs: Vec<Input>,
    not_replayable: BTreeMap<String, String>,
}

/// A recorded series as replay input: each step's last value at the step's start.
fn recorded_input(metric: &str, s: &RecordedSeries) -> Input {
    Input {
        metric: metric.to_string(),
        labels: Labels::from_pairs(s.labels.iter()),
        samples: (s.points.iter())
            .map(|p| Sample {
                t: Timestamp(p.t_ms),
                v: p.last,
            })
            .collect(),
    }
}

/// How `files` (compiled as `set`) replay from the value history `recorded`:
///
/// * a recording rule the history holds is left out, and its recorded series are inputs
///   under its name;
/// * an alert rule with a numeric expression and no `when` tiers whose history was written
///   by its current expression reads its own values instead (a metric of its own, with the
///   recorded instance labels), so thresholds, tiers, `for`, hysteresis, cooldowns and
///   receivers replay exactly;
/// * any other rule replays from its inputs when the history holds every metric it reads,
///   and is otherwise not replayable, with the reason.
fn from_history(files: &Parsed, set: &RuleSet, recorded: &[RecordedSeries]) -> Replayable {
    let mut by_rule: BTreeMap<&str, Vec<&RecordedSeries>> = BTreeMap::new();
    for s in recorded {
        by_rule.entry(s.rule.as_str()).or_default().push(s);
    }
    let mut out = Replayable {
        files: files.clone(),
        inputs: Vec::new(),
        not_replayable: BTreeMap::new(),
    };
    let mut read: BTreeSet<&str> = BTreeSet::new();
    let mut dropped: BTreeSet<(String, String)> = BTreeSet::new();
    let mut own: BTreeMap<(String, String), String> = BTreeMap::new();
    for (g, group) in set.groups.iter().enumerate() {
        for rule in &group.rules {
            let key = (group.name.clone(), rule.name.clone());
            let Some(alert) = rule.alert() else {
                if by_rule.contains_key(rule.name.as_str()) {
                    dropped.insert(key);
                } else {
                    read.extend(rule.slots.iter().map(|s| s.metric.as_str()));
                }
                continue;
            };
            let history: Vec<&RecordedSeries> = (by_rule.get(rule.name.as_str()).into_iter().flatten())
                .filter(|s| s.group == group.name)
                .copied()
                .collect();
            let same = !history.is_empty() && history.iter().all(|s| s.expr.as_deref() == Some(rule.expr.source()));
            let when = alert.when.iter().any(Option::is_some);
            if same && !alert.boolean && !when {
                let metric = format!("tocsin_backtest_value_{g}_{}", own.len());
                out.inputs.extend(history.iter().map(|s| recorded_input(&metric, s)));
                own.insert(key, metric);
                continue;
            }
            let missing: Vec<&str> = (rule.slots.iter().map(|s| s.metric.as_str()))
                .filter(|m| !by_rule.contains_key(m))
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect();
            if missing.is_empty() {
                read.extend(rule.slots.iter().map(|s| s.metric.as_str()));
                continue;
            }
            let metrics = missing.iter().map(|m| format!("`{m}`")).collect::<Vec<_>>().join(", ");
            let why = if history.is_empty() {
                "the value history holds no values of it".to_string()
            } else if !same {
                let was = (history.iter().find_map(|s| s.expr.as_deref()))
                    .map_or("an expression it did not record".to_string(), |e| format!("`{e}`"));
                format!("its expression changed (the value history's values are of {was})")
            } else if alert.boolean {
                "its value history holds a condition's left operand, not the condition".to_string()
            } else {
                "its `when` tiers read more than its own values".to_string()
            };
            out.not_replayable.insert(
                rule.name.clone(),
                format!("{why}, and the value history holds no series of {metrics}, which it reads"),
            );
        }
    }
    for (name, series) in &by_rule {
        if read.contains(name) {
            out.inputs.extend(series.iter().map(|s| recorded_input(name, s)));
        }
    }
    for (_, file) in &mut out.files.rules {
        for group in &mut file.groups {
            let gname = group.name.value.clone();
            group.rules.retain(|r| {
                let name = r.value.record.as_ref().map(|n| n.value.clone()).unwrap_or_default();
                !dropped.contains(&(gname.clone(), name))
            });
            for r in &mut group.rules {
                let Some(name) = r.value.alert.as_ref().map(|n| n.value.clone()) else {
                    continue;
                };
                if let Some(metric) = own.get(&(gname.clone(), name)) {
                    r.value.expr.value = metric.clone();
                }
            }
        }
    }
    out
}
