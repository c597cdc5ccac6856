//! Sources: everything that produces samples.
//!
//! Owns the I/O collectors the daemon starts: host metrics and log tailing ([`host`]), HTTP
//! scraping ([`scrape`]) and PromQL results of a datasource ([`query`]), each a [`Source`]
//! (what it collects, how often) built from the config by its entry in [`KINDS`]; and
//! reading push bodies ([`push`], a source without a loop: its samples arrive through the
//! HTTP API). The parsers of the Prometheus text exposition and JSON push formats they use
//! ([`exposition`], [`push_json`]) are pure and live in the core crate. Sources only
//! produce samples and hand them to a [`Sink`]; storing them (and timestamps, cardinality,
//! staleness) is the series store's and the daemon's business.

pub mod host;
pub mod push;
pub mod query;
pub mod scrape;

pub use tocsin_core::{exposition, push_json};

pub use exposition::{LineError, ParsedSample};

use std::collections::HashSet;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use crate::config::EngineConfig;
use crate::rules::RuleSet;
use crate::series::{Refusal, Timestamp};

/// The series limit of sources whose series are fixed by configuration (host, logs).
pub const CONFIGURED_MAX_SERIES: u32 = 100_000;

/// A source of samples the daemon starts: what it collects and how often. It runs as one
/// task until the daemon drops it, and hands every collection to a [`Sink`].
pub trait Source: Send {
    /// What it collects, for log lines (`system`, `scrape:<job>`, `logs:<path>`,
    /// `query:<datasource>`).
    fn name(&self) -> String;

    /// How often it collects. After a start, rules wait for the slowest source before they
    /// read a missing series as "no data".
    fn every(&self) -> Duration;

    /// Fills in the past at start, before the daemon evaluates anything (a `query` source's
    /// backfill), and says what it filled so the daemon can replay it; most sources have no
    /// past to give (`None`).
    fn backfill<'a>(
        &'a mut self,
        _sink: Arc<dyn Sink>,
        _clock: fn() -> Timestamp,
    ) -> Pin<Box<dyn Future<Output = Option<Backfilled>> + Send + 'a>> {
        Box::pin(async { None })
    }

    /// Collects until the task is dropped, handing each collection to `sink`; `clock` is
    /// the wall clock.
    fn run(self: Box<Self>, sink: Arc<dyn Sink>, clock: fn() -> Timestamp) -> Pin<Box<dyn Future<Output = ()> + Send>>;
}

/// What a source's [`Source::backfill`] filled in: samples of `metrics` from `from` on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Backfilled {
    /// The earliest instant filled.
    pub from: Timestamp,
    /// The metric names filled.
    pub metrics: Vec<String>,
}

/// Where a source's samples go: the daemon's series store, which counts every sample and
/// holds each source to its budget.
pub trait Sink: Send + Sync {
    /// The metric names the rules read; a source that can tell may collect only these.
    fn wanted(&self) -> Arc<HashSet<String>>;

    /// Stores `samples` of `source` at `now` (or their own timestamps), creating no series
    /// beyond `max_series` alive, and says what became of them.
    fn ingest(&self, source: &str, max_series: u32, samples: &[ParsedSample], now: Timestamp) -> Ingested;
}

/// What a source is built from.
pub struct Context<'a> {
    /// The engine config (`sources`, `datasources`, intervals).
    pub cfg: &'a EngineConfig,
    /// The config file as named, for located log lines.
    pub file: &'a str,
    /// A configured path, resolved against the config's folder.
    pub path: &'a (dyn Fn(&str) -> PathBuf + Sync),
    /// The running rules (a query source's default backfill reads their windows).
    pub rules: &'a RuleSet,
    /// Where query sources report their health (`/metrics`).
    pub query_health: &'a Arc<query::Health>,
}

/// Builds the sources of one kind that the config asks for; one that cannot be built is
/// logged and left out.
pub type Kind = fn(&Context<'_>) -> Vec<Box<dyn Source>>;

/// Every kind of polled source, in the order the daemon starts them. A new source kind is
/// one entry here.
pub const KINDS: &[Kind] = &[
    host::system::configured,
    scrape::configured,
    query::configured,
    host::logs::configured,
];

/// Every source the config asks for, ready to start.
pub fn configured(ctx: &Context<'_>) -> Vec<Box<dyn Source>> {
    KINDS.iter().flat_map(|kind| kind(ctx)).collect()
}

/// What the daemon did with a batch of a source's samples (and, summed, with all of a
/// source's): how many it stored and how many the series store refused, and why.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Ingested {
    /// Samples stored.
    pub accepted: u64,
    /// Samples refused, indexed by [`Refusal`] (`Refusal::ALL` order).
    pub refused: [u64; 3],
}

impl Ingested {
    /// Samples refused for any reason.
    pub fn refused_total(&self) -> u64 {
        self.refused.iter().sum()
    }

    /// How many were refused for `why`.
    pub fn refused_for(&self, why: Refusal) -> u64 {
        self.refused[why as usize]
    }

    /// Adds `other`'s counts to these.
    pub fn add(&mut self, other: &Ingested) {
        self.accepted += other.accepted;
        for (a, b) in self.refused.iter_mut().zip(other.refused) {
            *a += b;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Source as File, parse_config, parse_rules};

    #[test]
    fn every_configured_entry_is_one_source_with_its_name_and_interval() {
        let cfg = parse_config(
            &File::from_text(
                "tocsin.yaml",
                "evaluation_interval: 7s\n\
                 datasources:\n  - { name: prom, url: http://127.0.0.1:9 }\n\
                 sources:\n  system: { interval: 3s }\n  \
                 scrape:\n    - { name: a, url: http://127.0.0.1:9/metrics }\n    - { name: b, url: http://127.0.0.1:9/metrics, interval: 20s }\n  \
                 query:\n    - { datasource: prom, interval: 30s, series: { m: up } }\n  \
                 logs:\n    - { path: app.log, patterns: { oom: Out of memory } }\n",
            )
            .unwrap(),
            &|_| None,
        )
        .unwrap();
        let rules = crate::rules::compile(&[(
            "r.yaml".to_string(),
            parse_rules(
                &File::from_text(
                    "r.yaml",
                    "groups:\n  - name: g\n    rules:\n      - record: r\n        expr: up\n",
                )
                .unwrap(),
            )
            .unwrap(),
        )])
        .0
        .unwrap();
        let path = |p: &str| PathBuf::from("/base").join(p);
        let health = Arc::default();
        let ctx = Context {
            cfg: &cfg,
            file: "tocsin.yaml",
            path: &path,
            rules: &rules,
            query_health: &health,
        };
        let got: Vec<(String, Duration)> = configured(&ctx).iter().map(|s| (s.name(), s.every())).collect();
        let s = Duration::from_secs;
        assert_eq!(
            got,
            [
                ("system".to_string(), s(3)),
                ("scrape:a".to_string(), s(7)),
                ("scrape:b".to_string(), s(20)),
                ("query:prom".to_string(), s(30)),
                ("logs:/base/app.log".to_string(), host::logs::POLL),
            ]
        );
    }
}
