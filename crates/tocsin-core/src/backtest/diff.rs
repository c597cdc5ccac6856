//! The difference between two replays of one range (the files as they are and as they were
//! at a revision): per alert name, notifications and firing time before → after, and the
//! episodes one raised that the other did not.
//!
//! Owns matching rules by alert name and episodes by instance and overlap, and the one
//! sentence that sums a rule's change up. Reads two [`Report`]s; replays nothing.

use super::report::{Episode, Report, RuleReport};

/// One alert name in two replays.
#[derive(Clone, Debug)]
pub struct RuleDiff<'a> {
    /// The alert name.
    pub alertname: &'a str,
    /// Its report now; `None` when the change removed the rule.
    pub head: Option<&'a RuleReport>,
    /// Its report at the base revision; `None` when the change added the rule.
    pub base: Option<&'a RuleReport>,
    /// Episodes now that overlap none of the same instance at the base.
    pub added: Vec<&'a Episode>,
    /// Episodes at the base that overlap none of the same instance now.
    pub removed: Vec<&'a Episode>,
}

/// Counts of one side, zero for a side without the rule.
fn counts(r: Option<&RuleReport>) -> (usize, f64) {
    r.map_or((0, 0.0), |r| (r.notifications(), r.firing_seconds()))
}

impl RuleDiff<'_> {
    /// Whether the two sides differ in what receivers got or in when it fired.
    pub fn changed(&self) -> bool {
        let (hn, hs) = counts(self.head);
        let (bn, bs) = counts(self.base);
        hn != bn
            || hs != bs
            || !self.added.is_empty()
            || !self.removed.is_empty()
            || self.head.is_none() != self.base.is_none()
    }

    /// The change in one sentence: `MemoryPressure: 41 → 6 notifications, firing 3h → 1h;
    /// 35 episodes dropped, all at most 3m long`.
    pub fn summary(&self) -> String {
        let (hn, hs) = counts(self.head);
        let (bn, bs) = counts(self.base);
        let mut s = match (self.base, self.head) {
            (None, _) => format!("{}: new rule, {hn} notifications", self.alertname),
            (_, None) => format!("{}: removed, was {bn} notifications", self.alertname),
            _ if !self.changed() => format!("{}: unchanged, {hn} notifications", self.alertname),
            _ => format!(
                "{}: {bn} → {hn} notifications, firing {} → {}",
                self.alertname,
                seconds_text(bs),
                seconds_text(hs)
            ),
        };
        let longest = |e: &[&Episode]| e.iter().map(|e| e.duration_ms()).max().unwrap_or(0);
        if !self.removed.is_empty() {
            s.push_str(&format!(
                "; {} dropped, all at most {} long",
                plural(self.removed.len(), "episode"),
                ms_text(longest(&self.removed))
            ));
        }
        if !self.added.is_empty() {
            s.push_str(&format!(
                "; {} added, the longest {}",
                plural(self.added.len(), "episode"),
                ms_text(longest(&self.added))
            ));
        }
        s
    }
}

/// `1 episode`, `3 episodes`.
pub(super) fn plural(n: usize, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

/// A length in ms as `1h 2m 3s` (whole seconds; `0s` for none).
pub fn ms_text(ms: i64) -> String {
    let secs = u64::try_from(ms.max(0) / 1000).unwrap_or(0);
    if secs == 0 {
        return "0s".to_string();
    }
    humantime::format_duration(std::time::Duration::from_secs(secs)).to_string()
}

/// A length in seconds as [`ms_text`] writes it.
pub fn seconds_text(s: f64) -> String {
    ms_text((s * 1000.0) as i64)
}

/// Every alert name of `head` (in its order), then those only `base` has.
pub fn compare<'a>(head: &'a Report, base: &'a Report) -> Vec<RuleDiff<'a>> {
    let mut names: Vec<&str> = head.rules.iter().map(|r| r.alertname.as_str()).collect();
    for r in &base.rules {
        if !names.contains(&r.alertname.as_str()) {
            names.push(&r.alertname);
        }
    }
    names
        .into_iter()
        .map(|name| {
            let h = head.rules.iter().find(|r| r.alertname == name);
            let b = base.rules.iter().find(|r| r.alertname == name);
            let unmatched = |of: Option<&'a RuleReport>, against: Option<&'a RuleReport>| -> Vec<&'a Episode> {
                let others = against.map_or(&[][..], |r| &r.episodes[..]);
                of.map_or(&[][..], |r| &r.episodes[..])
                    .iter()
                    .filter(|e| !others.iter().any(|o| e.matches(o)))
                    .collect()
            };
            RuleDiff {
                alertname: name,
                head: h,
                base: b,
                added: unmatched(h, b),
                removed: unmatched(b, h),
            }
        })
        .collect()
}
