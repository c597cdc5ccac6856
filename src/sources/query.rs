//! `query`: PromQL results of a datasource as local series.
//!
//! Owns one entry's schedule (ticks aligned to multiples of its interval, one instant query
//! per PromQL string per tick, at most [`CONCURRENT_QUERIES`] in flight), the backfill at
//! start (one `query_range` per string over [`QueryEntry::backfill`]), the health of each
//! query (`tocsin_query_up{datasource,series}`, with rate-limited, located log lines), and
//! `check`'s offline parse of every PromQL string ([`check`]). The HTTP and the JSON are
//! [`crate::datasource`]'s; storing is the daemon's, through the sink [`run`] is given.
//!
//! A failing query stores nothing, so its series get no fresh sample and go stale after
//! `staleness` (`no_data` applies); a series that a successful answer no longer contains
//! gets a staleness marker at once, as Prometheus' own rule evaluation does.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use std::hash::{BuildHasher, Hasher};

use super::ParsedSample;
use super::exposition::{escape_label_value, write_family};
use crate::config::{EngineConfig, QuerySource};
use crate::datasource::{Answer, Datasource, LabelPairs, QueryError, Series, decode_instant};
use crate::rules::RuleSet;
use crate::series::{KeyedHash, Timestamp, duration_ms, stale_marker};

/// Queries of one entry in flight at once: a tick of many strings finishes in a few round
/// trips without opening one connection per string to the datasource.
pub const CONCURRENT_QUERIES: usize = 8;
/// The most points one `query_range` asks for (Prometheus refuses more than 11,000).
const MAX_RANGE_POINTS: i64 = 10_000;
/// How often a query that keeps failing is logged again.
const LOG_EVERY: Duration = Duration::from_secs(60);

/// One PromQL string of an entry.
#[derive(Clone, Debug)]
pub struct Query {
    /// The local metric name its series are stored under.
    pub local: String,
    /// The PromQL.
    pub promql: String,
    /// Where it is written (`file:line:column`), for log lines.
    pub at: String,
}

/// One `query` entry, ready to run.
#[derive(Debug)]
pub struct QueryEntry {
    /// The datasource its queries go to.
    pub datasource: Arc<Datasource>,
    /// The series-store source its series are counted under (`query:<datasource>`).
    pub source: String,
    /// Its queries, in name order.
    pub queries: Vec<Query>,
    /// The tick interval.
    pub every: Duration,
    /// How far back the start fills the windows (zero: no backfill).
    pub backfill: Duration,
    /// Most series one answer may hold, and most series of the source alive.
    pub max_series: usize,
}

impl QueryEntry {
    /// The entry `q` of the config at `file`, reading from one of `datasources` (the config
    /// checked that it exists). `rules` give the default backfill.
    pub fn new(
        q: &QuerySource,
        file: &str,
        cfg: &EngineConfig,
        datasources: &[Arc<Datasource>],
        rules: &RuleSet,
    ) -> Result<QueryEntry, String> {
        let name = q.datasource.expose();
        let datasource = datasources
            .iter()
            .find(|d| d.name == name)
            .cloned()
            .ok_or_else(|| format!("no datasource is named `{name}`"))?;
        let queries = q
            .series
            .iter()
            .map(|(local, promql)| Query {
                local: local.clone(),
                promql: promql.expose().to_string(),
                at: format!("{file}:{}:{}", promql.line(), promql.column()),
            })
            .collect();
        Ok(QueryEntry {
            datasource,
            source: format!("query:{name}"),
            queries,
            every: q
                .interval
                .as_ref()
                .map_or(cfg.evaluation_interval.value.0, |d| d.value.0),
            backfill: q
                .backfill
                .as_ref()
                .map_or_else(|| default_backfill(rules), |d| d.value.0),
            max_series: q.max_series as usize,
        })
    }
}

/// The default `backfill`: the longest window, `for` and `keep_firing_for` the rules read,
/// so that after a restart every window is full and every timer can resume at once.
pub fn default_backfill(rules: &RuleSet) -> Duration {
    let timers = rules.rules().filter_map(|r| r.alert()).flat_map(|a| {
        a.policy
            .tiers
            .iter()
            .map(|t| t.for_)
            .chain(std::iter::once(a.policy.keep_firing_for))
    });
    timers.fold(rules.longest_window(), Duration::max)
}

/// The first tick strictly after `t` on the grid of `every`.
pub fn next_tick(t: Timestamp, every: Duration) -> Timestamp {
    let every = duration_ms(every).max(1);
    Timestamp((t.0.div_euclid(every) + 1) * every)
}

/// The range a backfill at `now` asks for: `(start, end, step)`, on the entry's grid so the
/// backfilled samples fall where live ticks would have, with at most
/// [`MAX_RANGE_POINTS`] points. `None` when there is nothing to fill.
pub fn backfill_range(now: Timestamp, backfill: Duration, every: Duration) -> Option<(Timestamp, Timestamp, Duration)> {
    let span = duration_ms(backfill);
    if span <= 0 {
        return None;
    }
    let mut step = duration_ms(every).max(1);
    if span / step > MAX_RANGE_POINTS {
        // Coarser, but still on a multiple of the interval.
        step *= (span / step + MAX_RANGE_POINTS - 1) / MAX_RANGE_POINTS;
    }
    let end = Timestamp(now.0.div_euclid(step) * step);
    let start = Timestamp(end.0 - span.div_euclid(step) * step);
    (start < end).then_some((start, end, Duration::from_millis(step as u64)))
}

/// The samples of an answer, under the local name (a backfill's, `tocsin eval`'s; the
/// ticks keep theirs in [`Answered`]). Each sample owns its labels, so a series' last
/// sample takes them instead of a copy.
pub fn samples_of(local: &str, series: Vec<Series>, out: &mut Vec<ParsedSample>) {
    for s in series {
        let mut labels = Some(s.labels);
        let n = s.samples.len();
        for (i, sample) in s.samples.into_iter().enumerate() {
            let labels = if i + 1 == n {
                labels.take().unwrap_or_default()
            } else {
                labels.clone().unwrap_or_default()
            };
            out.push(ParsedSample {
                name: local.to_string(),
                labels,
                value: sample.v,
                timestamp_ms: Some(sample.t.0),
            });
        }
    }
}

/// The series of one query's last answer, kept as the samples its ticks hand the sink.
///
/// A tick whose answer holds the series of the last one updates their samples in place
/// (found by their labels as decoded, borrowed from the body), so the steady state
/// allocates nothing per series; only a new series builds its name and labels. A series
/// the answer no longer holds gets a staleness marker at once, in that tick's samples,
/// and is forgotten at the next answer, as Prometheus' own rule evaluation does.
#[derive(Default)]
pub struct Answered {
    /// The series of the last answer, then those it dropped (as markers).
    samples: Vec<ParsedSample>,
    /// Per sample: the hash of its labels, and the answer that last held it.
    seen: Vec<(u64, u64)>,
    /// Positions in `samples`, by the hash of their labels.
    index: hashbrown::HashTable<usize>,
    hash: KeyedHash,
    /// Answers taken so far.
    answers: u64,
}

impl Answered {
    /// Takes a successful `answer` at `at` of the query stored as `local`: the samples to
    /// store, fresh ones stamped `at` (the instant asked for, which is what Prometheus
    /// answers with, so a datasource's clock skew cannot reorder the windows) and a marker
    /// at `at` for each series gone since the last answer.
    pub fn answer(&mut self, local: &str, answer: &Answer<'_>, at: Timestamp) -> &[ParsedSample] {
        self.forget_gone();
        self.answers += 1;
        let now = self.answers;
        for (labels, samples) in answer.iter() {
            let Some(last) = samples.last() else { continue };
            let hash = self.hash_of(labels);
            let found = self.index.find(hash, |&i| labels.equals(&self.samples[i].labels));
            match found {
                Some(&i) => {
                    self.samples[i].value = last.v;
                    self.samples[i].timestamp_ms = Some(at.0);
                    self.seen[i].1 = now;
                }
                None => {
                    let i = self.samples.len();
                    self.samples.push(ParsedSample {
                        name: local.to_string(),
                        labels: labels.to_labels(),
                        value: last.v,
                        timestamp_ms: Some(at.0),
                    });
                    self.seen.push((hash, now));
                    let seen = &self.seen;
                    self.index.insert_unique(hash, i, |&j| seen[j].0);
                }
            }
        }
        for (s, &(_, answered)) in self.samples.iter_mut().zip(&self.seen) {
            if answered != now {
                s.value = stale_marker();
                s.timestamp_ms = Some(at.0);
            }
        }
        &self.samples
    }

    /// Drops the series the last answer no longer held (their markers are stored).
    fn forget_gone(&mut self) {
        let last = self.answers;
        let mut i = self.samples.len();
        while i > 0 {
            i -= 1;
            if self.seen[i].1 == last {
                continue;
            }
            let end = self.samples.len() - 1;
            if let Ok(e) = self.index.find_entry(self.seen[i].0, |&j| j == i) {
                e.remove();
            }
            if i != end
                && let Some(moved) = self.index.find_mut(self.seen[end].0, |&j| j == end)
            {
                *moved = i;
            }
            self.samples.swap_remove(i);
            self.seen.swap_remove(i);
        }
    }

    fn hash_of(&self, labels: LabelPairs<'_, '_>) -> u64 {
        let mut h = self.hash.build_hasher();
        // Names and values are UTF-8, which never holds 0xff: the separator keeps
        // `a="bc"` and `ab="c"` apart.
        for (k, v) in labels.iter() {
            h.write(k.as_bytes());
            h.write_u8(0xff);
            h.write(v.as_bytes());
            h.write_u8(0xff);
        }
        h.finish()
    }
}

/// Rate limit of the log lines of one failing query: the first failure of a streak is
/// logged, then at most one line per [`LOG_EVERY`] (saying how many were not), and the
/// recovery once.
#[derive(Debug, Default)]
pub struct LogGate {
    failing_since: Option<Timestamp>,
    last_logged: Option<Timestamp>,
    suppressed: u64,
}

/// What to log after an outcome.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogLine {
    /// Nothing.
    Quiet,
    /// The failure, and how many failures since the last line were not logged.
    Failed {
        /// Failures not logged since the last line.
        suppressed: u64,
    },
    /// The query works again after failing since this time.
    Recovered {
        /// When the streak started.
        since: Timestamp,
    },
}

impl LogGate {
    /// Records an outcome at `now`; says what to log.
    pub fn outcome(&mut self, ok: bool, now: Timestamp) -> LogLine {
        if ok {
            self.last_logged = None;
            self.suppressed = 0;
            return match self.failing_since.take() {
                Some(since) => LogLine::Recovered { since },
                None => LogLine::Quiet,
            };
        }
        self.failing_since.get_or_insert(now);
        match self.last_logged {
            Some(last) if now.since(last) < LOG_EVERY => {
                self.suppressed += 1;
                LogLine::Quiet
            }
            _ => {
                self.last_logged = Some(now);
                LogLine::Failed {
                    suppressed: std::mem::take(&mut self.suppressed),
                }
            }
        }
    }
}

/// The health of every query, for `/metrics`: `tocsin_query_up{datasource,series}` and
/// `tocsin_query_failures_total{datasource,series}`.
#[derive(Debug, Default)]
pub struct Health {
    by_query: Mutex<BTreeMap<(String, String), (bool, u64)>>,
}

impl Health {
    fn set(&self, datasource: &str, series: &str, ok: bool) {
        let mut m = self.by_query.lock().unwrap_or_else(|e| e.into_inner());
        let e = m.entry((datasource.to_string(), series.to_string())).or_default();
        e.0 = ok;
        e.1 += u64::from(!ok);
    }

    /// Whether the last run of the query succeeded (`None` before its first run).
    pub fn up(&self, datasource: &str, series: &str) -> Option<bool> {
        let m = self.by_query.lock().unwrap_or_else(|e| e.into_inner());
        m.get(&(datasource.to_string(), series.to_string())).map(|e| e.0)
    }

    /// Appends both families in exposition format (nothing when no query source runs).
    pub fn render_metrics(&self, out: &mut String) {
        let m = self.by_query.lock().unwrap_or_else(|e| e.into_inner());
        if m.is_empty() {
            return;
        }
        write_family(
            out,
            "tocsin_query_up",
            "gauge",
            "Whether the last run of a query source's query succeeded.",
        );
        for ((ds, series), (up, _)) in m.iter() {
            let _ = writeln!(
                out,
                "tocsin_query_up{{datasource=\"{}\",series=\"{}\"}} {}",
                escape_label_value(ds),
                escape_label_value(series),
                u8::from(*up)
            );
        }
        write_family(
            out,
            "tocsin_query_failures_total",
            "counter",
            "Runs of a query source's query that failed.",
        );
        for ((ds, series), (_, failures)) in m.iter() {
            let _ = writeln!(
                out,
                "tocsin_query_failures_total{{datasource=\"{}\",series=\"{}\"}} {failures}",
                escape_label_value(ds),
                escape_label_value(series),
            );
        }
    }
}

/// Where the samples go: `(source, max_series, samples, now)`.
pub type Sink = Box<dyn Fn(&str, usize, &[ParsedSample], Timestamp) + Send + Sync>;

/// Fills `entry`'s windows at `now` with one `query_range` per string over its `backfill`,
/// handing the samples to `sink`. Returns where the ticks resume and what was filled: the
/// local names whose backfill answered, and from when (`None` without a backfill).
pub async fn backfill(entry: &Arc<QueryEntry>, sink: &Sink, now: Timestamp) -> Option<(Timestamp, super::Backfilled)> {
    let (start, end, step) = backfill_range(now, entry.backfill, entry.every)?;
    let outcomes = run_all(entry, move |e: Arc<QueryEntry>, i| async move {
        e.datasource
            .range(&e.queries[i].promql, start, end, step, e.max_series)
            .await
    })
    .await;
    let mut samples = Vec::new();
    let mut metrics = Vec::new();
    for (i, outcome) in outcomes.into_iter().enumerate() {
        let q = &entry.queries[i];
        match outcome {
            Ok(series) => {
                samples_of(&q.local, series, &mut samples);
                metrics.push(q.local.clone());
            }
            Err(e) => tracing::warn!(
                datasource = %entry.datasource.name,
                series = %q.local,
                "{}: backfill of `{}` failed: {e}; its windows fill as the ticks come",
                q.at,
                q.local
            ),
        }
    }
    let n = samples.len();
    sink(&entry.source, entry.max_series, &samples, now);
    tracing::info!(datasource = %entry.datasource.name, samples = n, "query source backfilled {:?}", entry.backfill);
    Some((end, super::Backfilled { from: start, metrics }))
}

/// The instant query of every string of `entry` at `at`: each answer's body, in query
/// order.
async fn instant_all(entry: &Arc<QueryEntry>, at: Timestamp) -> Vec<Result<Vec<u8>, QueryError>> {
    run_all(entry, move |e: Arc<QueryEntry>, i| async move {
        e.datasource.instant(&e.queries[i].promql, at).await
    })
    .await
}

/// Runs `entry` until the task is dropped: a query per string at every aligned tick after
/// `last` (the end of its backfill, or the start). `clock` is the wall clock in ms since the
/// epoch. Each answer's samples go to `sink` as soon as it is decoded, straight from the
/// query's [`Answered`].
pub async fn run(
    entry: Arc<QueryEntry>,
    health: Arc<Health>,
    sink: Sink,
    clock: fn() -> Timestamp,
    mut last: Timestamp,
) {
    let mut gates: Vec<LogGate> = entry.queries.iter().map(|_| LogGate::default()).collect();
    let mut answered: Vec<Answered> = entry.queries.iter().map(|_| Answered::default()).collect();
    loop {
        let at = next_tick(last.max(clock()), entry.every);
        let wait = at.0 - clock().0;
        if wait > 0 {
            tokio::time::sleep(Duration::from_millis(wait as u64)).await;
        }
        last = at;
        let bodies = instant_all(&entry, at).await;
        for (i, body) in bodies.into_iter().enumerate() {
            let q = &entry.queries[i];
            let outcome = body.and_then(|b| {
                let answer = Answer::vector(&b, entry.max_series)?;
                sink(
                    &entry.source,
                    entry.max_series,
                    answered[i].answer(&q.local, &answer, at),
                    clock(),
                );
                Ok(())
            });
            health.set(&entry.datasource.name, &q.local, outcome.is_ok());
            let line = gates[i].outcome(outcome.is_ok(), clock());
            if let Err(e) = outcome {
                log_failure(&entry, q, &e, line);
            }
            if let LogLine::Recovered { since } = line {
                tracing::info!(
                    datasource = %entry.datasource.name,
                    series = %q.local,
                    "{}: query `{}` works again (failing for {:?})",
                    q.at,
                    q.local,
                    clock().since(since)
                );
            }
        }
    }
}

fn log_failure(entry: &QueryEntry, q: &Query, e: &QueryError, line: LogLine) {
    if let LogLine::Failed { suppressed } = line {
        tracing::warn!(
            datasource = %entry.datasource.name,
            series = %q.local,
            suppressed,
            "{}: query `{}` failed: {e}; its series get no fresh sample (tocsin_query_up 0)",
            q.at,
            q.local
        );
    }
}

/// `ask` for every query of `entry` (by index), at most [`CONCURRENT_QUERIES`] at a time;
/// outcomes in query order.
async fn run_all<T, F, Fut>(entry: &Arc<QueryEntry>, ask: F) -> Vec<Result<T, QueryError>>
where
    T: Send + 'static,
    F: Fn(Arc<QueryEntry>, usize) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = Result<T, QueryError>> + Send,
{
    let slots = Arc::new(tokio::sync::Semaphore::new(CONCURRENT_QUERIES));
    let mut set = tokio::task::JoinSet::new();
    for i in 0..entry.queries.len() {
        let (entry, slots, ask) = (Arc::clone(entry), Arc::clone(&slots), ask.clone());
        set.spawn(async move {
            // Never closed, so acquiring cannot fail.
            let _slot = slots.acquire().await;
            (i, ask(entry, i).await)
        });
    }
    let mut outcomes: Vec<Option<Result<T, QueryError>>> = entry.queries.iter().map(|_| None).collect();
    while let Some(done) = set.join_next().await {
        match done {
            Ok((i, out)) => outcomes[i] = Some(out),
            Err(e) => tracing::error!("a query task ended abnormally: {e}"),
        }
    }
    outcomes
        .into_iter()
        .map(|o| o.unwrap_or_else(|| Err(QueryError::Connection("the query task ended abnormally".into()))))
        .collect()
}

/// A running `query` entry: its [`QueryEntry`], where it reports its health, and where its
/// ticks resume after the backfill.
pub struct Queries {
    entry: Arc<QueryEntry>,
    health: Arc<Health>,
    resume: Option<Timestamp>,
}

/// The entries of `sources.query` whose datasource can be built (the others are logged):
/// `file` names the config for located log lines, `rules` give the default backfill.
pub fn entries(cfg: &EngineConfig, file: &str, rules: &RuleSet) -> Vec<Arc<QueryEntry>> {
    let datasources: Vec<_> = cfg
        .datasources
        .iter()
        .filter_map(|d| match Datasource::new(d) {
            Ok(d) => Some(Arc::new(d)),
            Err(e) => {
                tracing::error!("datasource {}: {e}", d.name.expose());
                None
            }
        })
        .collect();
    let mut out = Vec::new();
    for q in &cfg.sources.query {
        match QueryEntry::new(q, file, cfg, &datasources, rules) {
            Ok(entry) => out.push(Arc::new(entry)),
            Err(e) => tracing::error!("query source: {e}"),
        }
    }
    out
}

/// One `query` source per `sources.query` entry whose datasource can be built.
pub fn configured(ctx: &super::Context<'_>) -> Vec<Box<dyn super::Source>> {
    entries(ctx.cfg, ctx.file, ctx.rules)
        .into_iter()
        .map(|entry| {
            Box::new(Queries {
                entry,
                health: Arc::clone(ctx.query_health),
                resume: None,
            }) as Box<dyn super::Source>
        })
        .collect()
}

/// One instant query per string of `entry` at `at` (for `tocsin eval`): the samples of
/// those that answered, and each failure with where its string is written.
pub async fn once(entry: &Arc<QueryEntry>, at: Timestamp) -> (Vec<ParsedSample>, Vec<String>) {
    let mut samples = Vec::new();
    let mut failures = Vec::new();
    for (q, body) in entry.queries.iter().zip(instant_all(entry, at).await) {
        match body.and_then(|b| decode_instant(&b, entry.max_series)) {
            Ok(series) => samples_of(&q.local, series, &mut samples),
            Err(e) => failures.push(format!("{}: query `{}` failed: {e}", q.at, q.local)),
        }
    }
    (samples, failures)
}

/// The daemon's sink as the query loop's.
fn to_sink(sink: Arc<dyn super::Sink>) -> Sink {
    Box::new(move |source, max, samples, t| {
        sink.ingest(source, max as u32, samples, t);
    })
}

impl super::Source for Queries {
    fn name(&self) -> String {
        self.entry.source.clone()
    }

    fn every(&self) -> Duration {
        self.entry.every
    }

    fn backfill<'a>(
        &'a mut self,
        sink: Arc<dyn super::Sink>,
        clock: fn() -> Timestamp,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Option<super::Backfilled>> + Send + 'a>> {
        Box::pin(async move {
            let (end, filled) = backfill(&self.entry, &to_sink(sink), clock()).await?;
            self.resume = Some(end);
            Some(filled)
        })
    }

    fn run(
        self: Box<Self>,
        sink: Arc<dyn super::Sink>,
        clock: fn() -> Timestamp,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> {
        let last = self.resume.unwrap_or_else(clock);
        Box::pin(run(self.entry, self.health, to_sink(sink), clock, last))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Source, parse_config};

    #[test]
    fn ticks_are_aligned_and_strictly_later() {
        let m = Duration::from_secs(60);
        assert_eq!(next_tick(Timestamp(0), m), Timestamp(60_000));
        assert_eq!(next_tick(Timestamp(59_999), m), Timestamp(60_000));
        assert_eq!(next_tick(Timestamp(60_000), m), Timestamp(120_000));
    }

    #[test]
    fn the_backfill_range_lies_on_the_grid_and_is_bounded() {
        let (start, end, step) =
            backfill_range(Timestamp(125_500), Duration::from_secs(60), Duration::from_secs(15)).unwrap();
        assert_eq!((start.0, end.0, step), (60_000, 120_000, Duration::from_secs(15)));
        assert!(backfill_range(Timestamp(125_500), Duration::ZERO, Duration::from_secs(15)).is_none());
        // A day at 1s would be 86,400 points: the step grows to keep under the limit.
        let (start, end, step) = backfill_range(
            Timestamp(10_000_000_000),
            Duration::from_secs(86_400),
            Duration::from_secs(1),
        )
        .unwrap();
        let points = (end.0 - start.0) / duration_ms(step);
        assert!(points <= MAX_RANGE_POINTS, "{points}");
        assert_eq!(duration_ms(step) % 1000, 0);
    }

    #[test]
    fn a_failing_query_is_logged_once_a_minute_and_its_recovery_once() {
        let mut g = LogGate::default();
        let s = |secs: i64| Timestamp(secs * 1000);
        assert_eq!(g.outcome(true, s(0)), LogLine::Quiet);
        assert_eq!(g.outcome(false, s(10)), LogLine::Failed { suppressed: 0 });
        assert_eq!(g.outcome(false, s(25)), LogLine::Quiet);
        assert_eq!(g.outcome(false, s(40)), LogLine::Quiet);
        assert_eq!(g.outcome(false, s(70)), LogLine::Failed { suppressed: 2 });
        assert_eq!(g.outcome(true, s(85)), LogLine::Recovered { since: s(10) });
        assert_eq!(g.outcome(true, s(100)), LogLine::Quiet);
        assert_eq!(g.outcome(false, s(101)), LogLine::Failed { suppressed: 0 });
    }

    #[test]
    fn health_renders_up_and_failures_per_query() {
        let h = Health::default();
        let mut out = String::new();
        h.render_metrics(&mut out);
        assert!(out.is_empty());
        h.set("prom", "mem", true);
        h.set("prom", "cpu", false);
        h.set("prom", "cpu", false);
        h.render_metrics(&mut out);
        assert!(
            out.contains("tocsin_query_up{datasource=\"prom\",series=\"cpu\"} 0\n"),
            "{out}"
        );
        assert!(
            out.contains("tocsin_query_up{datasource=\"prom\",series=\"mem\"} 1\n"),
            "{out}"
        );
        assert!(
            out.contains("tocsin_query_failures_total{datasource=\"prom\",series=\"cpu\"} 2\n"),
            "{out}"
        );
        assert_eq!(h.up("prom", "cpu"), Some(false));
    }

    #[test]
    fn an_undefined_datasource_is_refused_where_it_is_named() {
        let diags = parse_config(
            &Source::from_text(
                "tocsin.yaml",
                "datasources:\n  - { name: prom, url: http://127.0.0.1:9090 }\nsources:\n  query:\n    - datasource: thanos\n      series: { m: up }\n",
            )
            .unwrap(),
            &|_| None,
        )
        .unwrap_err();
        assert_eq!(diags.len(), 1, "{diags:?}");
        assert_eq!((diags[0].line, diags[0].column), (5, 19));
        assert_eq!(diags[0].code, "unknown-datasource");
        assert_eq!(diags[0].hint.as_deref(), Some("defined: prom"));
    }

    #[test]
    fn the_default_backfill_covers_windows_and_timers() {
        let rules = crate::rules::compile(&[(
            "r.yaml".to_string(),
            crate::config::parse_rules(
                &Source::from_text(
                    "r.yaml",
                    "groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: 'avg_over_time(m, \"2m\")'\n        tiers: [{ severity: warning, above: 1, for: 5m }]\n        keep_firing_for: 7m\n",
                )
                .unwrap(),
            )
            .unwrap(),
        )])
        .0
        .unwrap();
        assert_eq!(default_backfill(&rules), Duration::from_secs(7 * 60));
    }

    /// An instant-query answer holding `series` (label sets, in the order given) at `t`.
    fn vector(series: &[Vec<(&str, &str)>], t: i64) -> String {
        let items: Vec<serde_json::Value> = series
            .iter()
            .enumerate()
            .map(|(i, pairs)| {
                let metric: serde_json::Map<String, serde_json::Value> =
                    pairs.iter().map(|(k, v)| (k.to_string(), (*v).into())).collect();
                serde_json::json!({"metric": metric, "value": [t, format!("{i}")]})
            })
            .collect();
        serde_json::json!({"status": "success", "data": {"resultType": "vector", "result": items}}).to_string()
    }

    /// What one answer handed the sink: (labels, value or `None` for a marker), sorted.
    fn took(answered: &mut Answered, body: &str, at: i64) -> Vec<(String, Option<f64>)> {
        let answer = Answer::vector(body.as_bytes(), 100).unwrap();
        let mut out: Vec<(String, Option<f64>)> = answered
            .answer("m", &answer, Timestamp(at))
            .iter()
            .map(|s| {
                assert_eq!((s.name.as_str(), s.timestamp_ms), ("m", Some(at)));
                let v = (!crate::series::is_stale_marker(s.value)).then_some(s.value);
                (s.labels.to_string(), v)
            })
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    #[test]
    fn a_series_the_answer_drops_gets_one_marker_then_is_forgotten() {
        let mut a = Answered::default();
        let (x, y, z) = (vec![("i", "x")], vec![("i", "y")], vec![("i", "z")]);
        let got = took(&mut a, &vector(&[x.clone(), y.clone()], 10), 10_000);
        assert_eq!(
            got,
            [(r#"{i="x"}"#.into(), Some(0.0)), (r#"{i="y"}"#.into(), Some(1.0))]
        );
        let got = took(&mut a, &vector(&[z.clone(), y.clone()], 20), 20_000);
        assert_eq!(
            got,
            [
                (r#"{i="x"}"#.into(), None),
                (r#"{i="y"}"#.into(), Some(1.0)),
                (r#"{i="z"}"#.into(), Some(0.0))
            ]
        );
        let got = took(&mut a, &vector(&[y.clone(), z.clone()], 30), 30_000);
        assert_eq!(
            got,
            [(r#"{i="y"}"#.into(), Some(0.0)), (r#"{i="z"}"#.into(), Some(1.0))]
        );
        // Labels in another order in the body are the same series.
        let got = took(
            &mut a,
            &vector(&[vec![("j", "1"), ("i", "y")], vec![("i", "y"), ("j", "1")]], 40),
            40_000,
        );
        assert_eq!(
            got,
            [
                (r#"{i="y", j="1"}"#.into(), Some(1.0)),
                (r#"{i="y"}"#.into(), None),
                (r#"{i="z"}"#.into(), None)
            ]
        );
        assert_eq!(
            took(&mut a, &vector(&[], 50), 50_000),
            [(r#"{i="y", j="1"}"#.into(), None)]
        );
        assert_eq!(took(&mut a, &vector(&[], 60), 60_000), []);
    }

    proptest::proptest! {
        /// Whatever the sequence of answers, each hands the sink exactly its series, fresh,
        /// and a marker for each series of the previous answer it lacks.
        #[test]
        fn answers_hand_over_their_series_and_markers_for_the_dropped(
            answers in proptest::collection::vec(proptest::collection::btree_set(0usize..12, 0..12), 1..12),
        ) {
            let names = ["a", "b", "c"];
            let labels = |k: usize| vec![(names[k % 3], ["0", "1", "2", "3"][k / 3])];
            let mut a = Answered::default();
            let mut previous = std::collections::BTreeSet::new();
            for (n, set) in answers.iter().enumerate() {
                let series: Vec<Vec<(&str, &str)>> = set.iter().map(|&k| labels(k)).collect();
                let at = (n as i64 + 1) * 1000;
                let got = took(&mut a, &vector(&series, at / 1000), at);
                let mut want: Vec<(String, Option<f64>)> = set
                    .iter()
                    .enumerate()
                    .map(|(i, &k)| (crate::series::Labels::from_pairs(labels(k)).to_string(), Some(i as f64)))
                    .chain(previous.difference(set).map(|&k| (crate::series::Labels::from_pairs(labels(k)).to_string(), None)))
                    .collect();
                want.sort_by(|a, b| a.0.cmp(&b.0));
                proptest::prop_assert_eq!(got, want);
                previous = set.clone();
            }
        }
    }
}
