//! The alert vocabulary and its per-instance machines, below the rules that configure them
//! and the engine that drives them.
//!
//! Owns the tier state machine ([`state`]: `inactive`, `pending`, `firing`, its transitions
//! and `no_data` handling), the notification rules ([`notify`]: cooldowns, coalescing,
//! repeats, flapping, acknowledgements, the notification kinds) and the action gates
//! ([`action`]: cooldown, `max_per_hour`). Each is a plain serializable value with
//! `step`-style methods taking `now`: no rule, no series, no clock. `rules` compiles the
//! policies these take, `engine` feeds them values, and `message`, `route` and `receivers`
//! speak their vocabulary (`NoteKind`, `Transition`).

pub mod action;
pub mod notify;
pub mod state;

/// Well-known severity names from least to most severe: the one ranking of severities
/// across rules (a rule's own tiers are ordered by the file). Receivers colour a group by
/// it, and `tocsin import` orders merged `when:` tiers by it.
pub const SEVERITY_ORDER: &[&str] = &[
    "none",
    "debug",
    "info",
    "low",
    "notice",
    "warning",
    "warn",
    "medium",
    "minor",
    "high",
    "major",
    "error",
    "critical",
    "page",
    "emergency",
];

/// Where `severity` sits in [`SEVERITY_ORDER`] (any case); an unknown name sorts between
/// `warning` and `high`, where custom middle tiers usually are.
pub fn severity_order(severity: &str) -> usize {
    const UNKNOWN: usize = 8;
    SEVERITY_ORDER
        .iter()
        .position(|x| x.eq_ignore_ascii_case(severity))
        .map_or(UNKNOWN, |p| if p >= UNKNOWN { p + 1 } else { p })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severities_rank_by_the_one_order() {
        assert!(severity_order("info") < severity_order("warning"));
        assert!(severity_order("warning") < severity_order("custom"));
        assert!(severity_order("custom") < severity_order("high"));
        assert!(severity_order("critical") < severity_order("page"));
        assert!(severity_order("page") < severity_order("EMERGENCY"));
    }
}
