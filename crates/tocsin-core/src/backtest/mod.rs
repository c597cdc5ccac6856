//! `tocsin backtest`: replays a policy over recorded history and reports what it would have
//! sent (docs/backtest.md).
//!
//! Owns the replay schedule (every group at its interval, or at one `step`, from `from` to
//! `to`, the clock also stopping at routing's timers, as `tocsin test` does), the tally of
//! what the [`Pipeline`] produced per rule and receiver ([`report`]), and the comparison of two
//! reports with its three renderings ([`render`]). It drives the one [`Pipeline`] `run` and
//! `test` drive, with no glue of its own between engine, routing and rendering.
//!
//! Must not touch: a clock, a file, a socket, a datasource. The shell fetches the input
//! series and says which inputs the source does not fully hold ([`Gap`]); time is the
//! simulated clock, whose milliseconds are Unix milliseconds.

pub mod diff;
pub mod render;
pub mod report;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use crate::engine::Settings;
use crate::pipeline::{Effects, Options, Pipeline};
use crate::policy::Policy;
use crate::rules::RuleSet;
use crate::series::{Labels, Sample, SeriesId, Timestamp, duration_ms};
pub use diff::{RuleDiff, compare};
pub use render::{Format, render};
pub use report::{ActionSeen, Episode, Report, RuleReport, Sent};

/// Where links in replayed messages point: nothing is sent, so the daemon's default address.
const REPLAY_URL: &str = "http://127.0.0.1:9470";

/// One input series, already fetched: a metric's samples for one label set, oldest first.
#[derive(Clone, Debug, PartialEq)]
pub struct Input {
    /// The metric name the rules read it by.
    pub metric: String,
    /// Its labels (without `__name__`).
    pub labels: Labels,
    /// Its samples, in time order.
    pub samples: Vec<Sample>,
}

/// An input the history does not fully hold, named in the report of every rule that reads
/// it (directly or through a recording rule), so a short count is never a silent zero.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Gap {
    /// The metric concerned.
    pub metric: String,
    /// What is missing, in one sentence (`no samples in the range`, `samples only from …`).
    pub reason: String,
}

/// What to replay and how.
#[derive(Clone, Debug)]
pub struct Plan {
    /// The first evaluation (Unix ms).
    pub from: Timestamp,
    /// The last evaluation is at or before this (Unix ms); episodes still open end here.
    pub to: Timestamp,
    /// One evaluation interval for every group (`--step`), instead of each group's own.
    pub step: Option<Duration>,
    /// The interval of groups without their own (the engine config's
    /// `evaluation_interval`).
    pub evaluation_interval: Duration,
    /// The engine config's `staleness`.
    pub staleness: Duration,
    /// Alert rules that cannot be replayed from these inputs, with the reason (their
    /// expression changed and the history does not hold what the new one reads).
    pub not_replayable: BTreeMap<String, String>,
}

impl Plan {
    /// The interval of each group of `rules` under this plan, in ms (at least 1).
    pub fn intervals(&self, rules: &RuleSet) -> Vec<i64> {
        (rules.groups.iter())
            .map(|g| duration_ms(self.step.or(g.interval).unwrap_or(self.evaluation_interval)).max(1))
            .collect()
    }

    /// How many group evaluations the replay runs.
    pub fn evaluations(&self, rules: &RuleSet) -> u64 {
        let span = self.to.0.saturating_sub(self.from.0).max(-1);
        (self.intervals(rules).iter())
            .map(|i| u64::try_from(span / i + 1).unwrap_or(0))
            .sum()
    }
}

/// Replays `rules` (and, with `policy`, the receivers' routes, grouping, time intervals and
/// cooldowns; without, every notification is counted once, as `tocsin test` does) over
/// `inputs` on the simulated clock of `plan`, and tallies what it produced. `gaps` are the
/// inputs the shell found the history does not fully hold.
pub fn replay(rules: &Arc<RuleSet>, policy: Option<&Policy>, plan: &Plan, inputs: &[Input], gaps: &[Gap]) -> Report {
    let intervals = plan.intervals(rules);
    let none = Policy::default();
    let options = Options {
        settings: Settings {
            staleness: plan.staleness,
        },
        retention: rules.longest_window().max(Duration::from_secs(3600)),
        external_url: REPLAY_URL.to_string(),
        history_resolution: Duration::from_secs(60),
        flush_chunk: None,
    };
    // Timestamps are Unix ms, so the dispatcher's origin (for time intervals) stays 0.
    let mut pipeline = Pipeline::new(Arc::clone(rules), policy.unwrap_or(&none), options);
    // Nothing is stored: no instance-state rows or value-history points to build.
    pipeline.set_persisting(false);
    let mut tally = report::Tally::new(rules, policy.is_some());
    // Per input: the next sample to ingest and the series it goes to, once it has one.
    let mut cursors: Vec<(usize, Option<SeriesId>)> = vec![(0, None); inputs.len()];
    let mut next_eval: Vec<i64> = vec![plan.from.0; intervals.len()];
    loop {
        let t = next_eval.iter().copied().min().unwrap_or(i64::MAX);
        // Routing's timers between evaluations; one at or before the last flush would mean
        // no progress, so never stop at one twice.
        let before = Timestamp(t.min(plan.to.0.saturating_add(1)));
        while let Some(due) = pipeline
            .next_due()
            .filter(|&due| due < before && due > pipeline.dispatched_at())
        {
            let mut fx = Effects::default();
            pipeline.flush(due, &mut fx);
            tally.take(&fx);
        }
        if t > plan.to.0 {
            break;
        }
        let now = Timestamp(t);
        for (input, (next, id)) in inputs.iter().zip(cursors.iter_mut()) {
            while let Some(s) = input.samples.get(*next).filter(|s| s.t <= now) {
                let id = *id.get_or_insert_with(|| pipeline.series.id(&input.metric, &input.labels));
                pipeline.series.push_id(id, *s);
                *next += 1;
            }
        }
        for (g, interval) in intervals.iter().enumerate() {
            if next_eval[g] == t {
                let mut fx = Effects::default();
                pipeline.evaluate(g, now, Timestamp(t.saturating_add(*interval)), &mut fx);
                tally.take(&fx);
                next_eval[g] = t.saturating_add(*interval);
            }
        }
    }
    let mut gaps: Vec<Gap> = gaps.to_vec();
    gaps.extend(missing_inputs(rules, inputs));
    gaps.sort();
    gaps.dedup();
    tally.finish(plan, &reads(rules), &gaps)
}

/// Every metric a rule reads that no input holds and no recording rule writes.
fn missing_inputs(rules: &RuleSet, inputs: &[Input]) -> Vec<Gap> {
    let held: BTreeSet<&str> = inputs
        .iter()
        .filter(|i| !i.samples.is_empty())
        .map(|i| i.metric.as_str())
        .collect();
    let recorded: BTreeSet<&str> = rules
        .rules()
        .filter(|r| r.alert().is_none())
        .map(|r| r.name.as_str())
        .collect();
    let read: BTreeSet<&str> = rules
        .rules()
        .flat_map(|r| r.slots.iter().map(|s| s.metric.as_str()))
        .collect();
    read.into_iter()
        .filter(|m| !held.contains(m) && !recorded.contains(m))
        .map(|m| Gap {
            metric: m.to_string(),
            reason: "no samples in the range".to_string(),
        })
        .collect()
}

/// Per alert name, every metric its rules read, directly or through recording rules.
fn reads(rules: &RuleSet) -> BTreeMap<String, BTreeSet<String>> {
    let mut by_record: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for r in rules.rules().filter(|r| r.alert().is_none()) {
        by_record
            .entry(r.name.as_str())
            .or_default()
            .extend(r.slots.iter().map(|s| s.metric.as_str()));
    }
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for r in rules.rules().filter(|r| r.alert().is_some()) {
        let set = out.entry(r.name.clone()).or_default();
        let mut todo: Vec<&str> = r.slots.iter().map(|s| s.metric.as_str()).collect();
        while let Some(m) = todo.pop() {
            if set.insert(m.to_string()) {
                todo.extend(by_record.get(m).into_iter().flatten());
            }
        }
    }
    out
}

#[cfg(test)]
mod tests;
