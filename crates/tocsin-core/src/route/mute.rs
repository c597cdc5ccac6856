//! Muting at flush time: inhibit rules (Alertmanager semantics) and silences.
//!
//! Owns deciding whether an alert is muted *now*; it never decides what a muted alert means
//! for receivers (the dispatcher does: resolves still go out).

use std::collections::{BTreeMap, HashMap};

use regex::Regex;

use super::{LabelMatchers, matches_all};
use crate::config::InhibitDef;
use crate::message::{Silence, SilenceMatcher};
use crate::series::{Labels, Timestamp};

/// One compiled inhibit rule.
#[derive(Clone, Debug)]
pub(crate) struct Inhibit {
    source: LabelMatchers,
    target: LabelMatchers,
    equal: Vec<String>,
}

impl Inhibit {
    /// An `inhibit_rules` entry with its matchers compiled by the policy compiler.
    pub(crate) fn new(def: &InhibitDef, source: LabelMatchers, target: LabelMatchers) -> Inhibit {
        Inhibit {
            source,
            target,
            equal: def.equal.iter().map(|t| t.expose().to_string()).collect(),
        }
    }

    fn key(&self, labels: &Labels) -> Vec<Option<String>> {
        self.equal.iter().map(|n| labels.get(n).map(str::to_string)).collect()
    }
}

/// Firing sources of one rule by their `equal` label values: (one source's fingerprint,
/// whether there are several).
type SourceIndex = HashMap<Vec<Option<String>>, (u64, bool)>;

/// The firing sources of every inhibit rule, indexed by their `equal` label values, so that
/// checking a target is one lookup instead of a scan over every firing alert.
pub(crate) struct Sources {
    by_rule: Vec<SourceIndex>,
}

impl Sources {
    /// Indexes the firing alerts that match each rule's `source`.
    pub(crate) fn index(rules: &[Inhibit], firing: &BTreeMap<u64, Labels>) -> Sources {
        let by_rule = rules
            .iter()
            .map(|r| {
                let mut m = SourceIndex::new();
                for (fp, labels) in firing {
                    if matches_all(&r.source, labels) {
                        m.entry(r.key(labels))
                            .and_modify(|e| e.1 = true)
                            .or_insert((*fp, false));
                    }
                }
                m
            })
            .collect();
        Sources { by_rule }
    }

    /// Whether some *other* firing alert inhibits the alert `fp` with `labels` (an alert
    /// matching both sides of a rule does not inhibit itself, as in Alertmanager).
    pub(crate) fn inhibits(&self, rules: &[Inhibit], fp: u64, labels: &Labels) -> bool {
        rules.iter().zip(&self.by_rule).any(|(r, m)| {
            matches_all(&r.target, labels)
                && m.get(&r.key(labels))
                    .is_some_and(|&(source, several)| several || source != fp)
        })
    }
}

/// Silence matching, with compiled regexes kept between flushes (silences change rarely and
/// an alert is checked at every flush of its group).
#[derive(Debug, Default)]
pub(crate) struct SilenceMatcherCache {
    regexes: HashMap<String, Option<Regex>>,
}

/// Cached regexes beyond this many are dropped unless a current silence uses them.
const MAX_CACHED: usize = 256;

impl SilenceMatcherCache {
    /// Whether an active silence mutes `labels` at `now`.
    pub(crate) fn silenced(&mut self, silences: &[Silence], now: Timestamp, labels: &Labels) -> bool {
        silences
            .iter()
            .any(|s| s.starts_at <= now && now < s.ends_at && s.matchers.iter().all(|m| self.matches(m, labels)))
    }

    fn matches(&mut self, m: &SilenceMatcher, labels: &Labels) -> bool {
        let value = labels.get(&m.name).unwrap_or("");
        let hit = if m.is_regex {
            let re = self
                .regexes
                .entry(m.value.clone())
                .or_insert_with(|| crate::series::anchored_regex(&m.value).ok());
            // An invalid regex never matches: it must not silence everything.
            match re {
                Some(re) => re.is_match(value),
                None => return false,
            }
        } else {
            value == m.value
        };
        hit == m.is_equal
    }

    /// Forgets regexes no current silence uses, once there are many.
    pub(crate) fn trim(&mut self, silences: &[Silence]) {
        if self.regexes.len() > MAX_CACHED {
            self.regexes.retain(|pattern, _| {
                silences
                    .iter()
                    .any(|s| s.matchers.iter().any(|m| m.is_regex && &m.value == pattern))
            });
        }
    }
}
