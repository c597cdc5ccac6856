//! Delivery policy, purely: what a send result means, when to try again, and when to stop
//! hammering a receiver. No clock, no I/O, no randomness of its own: times arrive as
//! milliseconds and the jitter fraction as an argument, so every decision is a function of
//! its inputs and is property-tested.

use std::time::Duration;

use crate::receivers::{BreakerPolicy, RetryPolicy};

/// How much of an error response body is kept in `last_error`.
pub const MAX_ERROR_BODY: usize = 1024;

/// The longest `Retry-After` honoured. A server's explicit request is honoured beyond the
/// receiver's `max_backoff` (it asked, and ignoring it would get us throttled harder), but
/// not beyond an hour: a bogus far-future date must not park a notification for days.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// Consecutive retryable failures that open a receiver's circuit breaker.
pub const BREAKER_THRESHOLD: u32 = 5;

/// What one send attempt produced, as seen by the transport.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SendResult {
    /// Printed (console) or accepted by the SMTP server.
    Accepted,
    /// An HTTP response arrived.
    Http {
        /// Status code.
        status: u16,
        /// The `Retry-After` header, verbatim, when present.
        retry_after: Option<String>,
        /// The start of the response body (at most [`MAX_ERROR_BODY`] bytes; empty for 2xx).
        body: String,
    },
    /// The SMTP server answered with a reply code other than acceptance.
    SmtpReply {
        /// The reply code (4xx transient, 5xx permanent).
        code: u16,
        /// The server's text.
        message: String,
    },
    /// No answer: connection refused or reset, timeout, TLS failure. Worth retrying.
    Transport(String),
    /// The message cannot be sent as configured (invalid address or header, payload of the
    /// wrong kind): retrying cannot help.
    Invalid(String),
}

/// What to do with an entry after an attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Done: remove it.
    Delivered,
    /// Try again later; `retry_after` is the delay the server asked for, if any.
    Retry {
        /// Server-requested delay (`Retry-After`).
        retry_after: Option<Duration>,
        /// What went wrong, for `last_error` and the log.
        error: String,
    },
    /// Give up now: the receiver rejected this message.
    Failed(String),
}

/// Classifies a send result. `now_ms` (Unix milliseconds) resolves an HTTP-date
/// `Retry-After`.
pub fn classify(result: SendResult, now_ms: i64) -> Verdict {
    match result {
        SendResult::Accepted => Verdict::Delivered,
        SendResult::Http { status, .. } if (200..300).contains(&status) => Verdict::Delivered,
        SendResult::Http {
            status,
            retry_after,
            body,
        } if status >= 500 || status == 429 => Verdict::Retry {
            retry_after: retry_after.as_deref().and_then(|v| parse_retry_after(v, now_ms)),
            error: http_error(status, &body),
        },
        SendResult::Http { status, body, .. } => Verdict::Failed(http_error(status, &body)),
        SendResult::SmtpReply { code, message } if code >= 500 => {
            Verdict::Failed(format!("SMTP {code}: {}", message.trim()))
        }
        SendResult::SmtpReply { code, message } => Verdict::Retry {
            retry_after: None,
            error: format!("SMTP {code}: {}", message.trim()),
        },
        SendResult::Transport(error) => Verdict::Retry {
            retry_after: None,
            error,
        },
        SendResult::Invalid(error) => Verdict::Failed(error),
    }
}

fn http_error(status: u16, body: &str) -> String {
    let body = truncate(body.trim(), MAX_ERROR_BODY);
    if body.is_empty() {
        format!("HTTP {status}")
    } else {
        format!("HTTP {status}: {body}")
    }
}

/// The longest prefix of `s` of at most `max` bytes that ends on a character boundary.
pub fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// A `Retry-After` value: delay seconds or an HTTP-date (relative to `now_ms`). A date in
/// the past means "now" (zero); garbage means no request at all.
pub fn parse_retry_after(value: &str, now_ms: i64) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    let at_ms = at.duration_since(std::time::UNIX_EPOCH).ok()?.as_millis();
    let at_ms = i64::try_from(at_ms).ok()?;
    Some(Duration::from_millis(at_ms.saturating_sub(now_ms).max(0) as u64))
}

/// The delay before the next attempt after `attempts` (≥ 1) failed ones:
/// `min(max_backoff, backoff × 2^(attempts−1))` with *equal jitter* — half of it fixed, half
/// scaled by `jitter` ∈ [0, 1) — so retries of many entries spread out while the delay still
/// grows. A larger `retry_after` (capped at [`MAX_RETRY_AFTER`]) replaces it.
pub fn retry_delay(policy: &RetryPolicy, attempts: u32, jitter: f64, retry_after: Option<Duration>) -> Duration {
    // Doubling until the ceiling, rather than multiplying by 2^n, cannot overflow.
    let mut base = policy.backoff.min(policy.max_backoff);
    for _ in 1..attempts {
        if base >= policy.max_backoff {
            break;
        }
        base = base.saturating_mul(2).min(policy.max_backoff);
    }
    let jitter = if jitter.is_finite() {
        jitter.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let half = base / 2;
    let delay = half + (base - half).mul_f64(jitter);
    match retry_after {
        Some(asked) => delay.max(asked.min(MAX_RETRY_AFTER)),
        None => delay,
    }
}

/// What happens to an entry whose attempt asked for a retry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Schedule {
    /// Try again at this time (ms).
    At(i64),
    /// Too old: dead-letter it.
    Dead,
}

/// Schedules the retry of an entry queued at `created_ms` after `attempts` (≥ 1) failed
/// attempts: dead once `now − created ≥ max_retry_age`, otherwise at `now + retry_delay`.
pub fn schedule_retry(
    policy: &RetryPolicy,
    created_ms: i64,
    now_ms: i64,
    attempts: u32,
    jitter: f64,
    retry_after: Option<Duration>,
) -> Schedule {
    let age = now_ms.saturating_sub(created_ms);
    if age >= 0 && age as u128 >= policy.max_retry_age.as_millis() {
        return Schedule::Dead;
    }
    let delay = retry_delay(policy, attempts, jitter, retry_after);
    let delay_ms = i64::try_from(delay.as_millis()).unwrap_or(i64::MAX);
    Schedule::At(now_ms.saturating_add(delay_ms))
}

/// Which of a receiver's due entries may start an attempt now: indices into `due`, at most
/// `free` of them, in `due`'s order.
///
/// `due` holds (id, group key) of entries whose time has come, each the oldest pending entry
/// of its group when it was read; `busy` tells whether a group has an attempt in flight or
/// awaiting settlement. One attempt per group at a time: an entry of a busy group waits
/// (whatever the queue says, e.g. an older entry re-queued through the API while a newer
/// one is being sent), and of two entries of one group only the older (smaller id) may go.
pub fn pick(due: &[(i64, &str)], busy: impl Fn(&str) -> bool, free: usize) -> Vec<usize> {
    let mut oldest: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    for (i, (id, group)) in due.iter().enumerate() {
        if busy(group) {
            continue;
        }
        let best = oldest.entry(group).or_insert(i);
        if *id < due[*best].0 {
            *best = i;
        }
    }
    let mut picked: Vec<usize> = oldest.into_values().collect();
    picked.sort_unstable();
    picked.truncate(free);
    picked
}

/// Whether a receiver may be sent to now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Permit {
    /// Closed breaker: send freely.
    Send,
    /// Half-open: send exactly one entry, as a probe, and report its outcome with
    /// `probe = true`.
    Probe,
    /// Open: nothing until `Some(time)`, or until the probe in flight reports (`None`).
    Wait(Option<i64>),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum BreakerState {
    Closed,
    Open { until_ms: i64 },
    HalfOpen { probing: bool },
}

/// One receiver's circuit breaker.
///
/// Closed, it counts consecutive retryable failures; at [`BREAKER_THRESHOLD`] it opens for a
/// cool-off of the receiver's `cool_off × 2^k` (k = reopenings since the last success, capped
/// at its `max_cool_off`; see [`cool_off`]). When the cool-off ends it lets exactly one probe through
/// (half-open): success closes it, failure reopens it with the next, longer cool-off.
/// Results of sends started before it opened are ignored: they say nothing about the
/// receiver now.
///
/// A permanent rejection (4xx, SMTP 5xx) counts as an answer, not a failure: the receiver
/// is up, it is the message it refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Breaker {
    state: BreakerState,
    failures: u32,
    reopenings: u32,
}

impl Default for Breaker {
    fn default() -> Breaker {
        Breaker {
            state: BreakerState::Closed,
            failures: 0,
            reopenings: 0,
        }
    }
}

impl Breaker {
    /// May we send at `now_ms`? Moves an open breaker whose cool-off ended to half-open and
    /// hands out its single probe.
    pub fn permit(&mut self, now_ms: i64) -> Permit {
        match self.state {
            BreakerState::Closed => Permit::Send,
            BreakerState::Open { until_ms } if now_ms < until_ms => Permit::Wait(Some(until_ms)),
            BreakerState::Open { .. } | BreakerState::HalfOpen { probing: false } => {
                self.state = BreakerState::HalfOpen { probing: true };
                Permit::Probe
            }
            BreakerState::HalfOpen { probing: true } => Permit::Wait(None),
        }
    }

    /// The granted probe was not used (nothing was due): give it back.
    pub fn return_probe(&mut self) {
        if self.state == (BreakerState::HalfOpen { probing: true }) {
            self.state = BreakerState::HalfOpen { probing: false };
        }
    }

    /// Reports an attempt's outcome: `reached` is false for retryable failures; `probe` is
    /// whether the send was the half-open probe; `policy` gives the cool-off if it opens.
    pub fn record(&mut self, reached: bool, probe: bool, policy: &BreakerPolicy, now_ms: i64) {
        match self.state {
            BreakerState::Closed if reached => self.failures = 0,
            BreakerState::Closed => {
                self.failures += 1;
                if self.failures >= BREAKER_THRESHOLD {
                    self.open(policy, now_ms);
                }
            }
            BreakerState::HalfOpen { probing: true } if probe => {
                if reached {
                    *self = Breaker::default();
                } else {
                    self.open(policy, now_ms);
                }
            }
            BreakerState::Open { .. } | BreakerState::HalfOpen { .. } => {}
        }
    }

    fn open(&mut self, policy: &BreakerPolicy, now_ms: i64) {
        let cool_off = cool_off(policy, self.reopenings);
        self.reopenings = self.reopenings.saturating_add(1);
        self.failures = 0;
        self.state = BreakerState::Open {
            until_ms: now_ms.saturating_add(cool_off.as_millis() as i64),
        };
    }

    /// Whether sends are held back (open or half-open): the `tocsin_receiver_circuit_open`
    /// gauge.
    pub fn is_open(&self) -> bool {
        self.state != BreakerState::Closed
    }
}

/// The cool-off after `k` reopenings without a success: `cool_off × 2^k`, at most
/// `max_cool_off`.
pub fn cool_off(policy: &BreakerPolicy, k: u32) -> Duration {
    policy
        .cool_off
        .checked_mul(1u32 << k.min(16))
        .map_or(policy.max_cool_off, |d| d.min(policy.max_cool_off))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    fn policy(backoff_ms: u64, max_ms: u64, age_ms: u64) -> RetryPolicy {
        RetryPolicy {
            backoff: Duration::from_millis(backoff_ms),
            max_backoff: Duration::from_millis(max_ms),
            max_retry_age: Duration::from_millis(age_ms),
        }
    }

    fn http(status: u16, retry_after: Option<&str>, body: &str) -> SendResult {
        SendResult::Http {
            status,
            retry_after: retry_after.map(str::to_owned),
            body: body.into(),
        }
    }

    #[test]
    fn http_statuses_classify() {
        assert_eq!(classify(http(200, None, ""), 0), Verdict::Delivered);
        assert_eq!(classify(http(204, None, ""), 0), Verdict::Delivered);
        assert_eq!(
            classify(http(503, None, "busy"), 0),
            Verdict::Retry {
                retry_after: None,
                error: "HTTP 503: busy".into()
            }
        );
        assert_eq!(
            classify(http(429, Some("7"), ""), 0),
            Verdict::Retry {
                retry_after: Some(Duration::from_secs(7)),
                error: "HTTP 429".into()
            }
        );
        assert_eq!(
            classify(http(400, None, " bad field \n"), 0),
            Verdict::Failed("HTTP 400: bad field".into())
        );
        assert!(matches!(classify(http(404, Some("5"), ""), 0), Verdict::Failed(_)));
        assert!(matches!(classify(http(301, None, ""), 0), Verdict::Failed(_)));
    }

    #[test]
    fn error_bodies_are_cut_on_a_char_boundary() {
        let body = "é".repeat(1000);
        let Verdict::Failed(e) = classify(http(422, None, &body), 0) else {
            panic!()
        };
        assert!(e.len() <= MAX_ERROR_BODY + "HTTP 422: ".len());
        assert!(e.ends_with('é'));
    }

    #[test]
    fn smtp_and_transport_classify() {
        let reply = |code| SendResult::SmtpReply {
            code,
            message: "no".into(),
        };
        assert_eq!(classify(reply(550), 0), Verdict::Failed("SMTP 550: no".into()));
        assert!(matches!(classify(reply(421), 0), Verdict::Retry { .. }));
        assert!(matches!(
            classify(SendResult::Transport("refused".into()), 0),
            Verdict::Retry { .. }
        ));
        assert_eq!(
            classify(SendResult::Invalid("bad address".into()), 0),
            Verdict::Failed("bad address".into())
        );
        assert_eq!(classify(SendResult::Accepted, 0), Verdict::Delivered);
    }

    #[test]
    fn retry_after_dates_and_garbage() {
        // 1994-11-06T08:49:37Z
        let at = 784_111_777_000;
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", at - 2_500),
            Some(Duration::from_millis(2_500))
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", at + 9_000),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after(" 120 ", 0), Some(Duration::from_secs(120)));
        assert_eq!(parse_retry_after("soon", 0), None);
        assert_eq!(parse_retry_after("-1", 0), None);
    }

    #[test]
    fn backoff_doubles_to_the_ceiling() {
        let p = policy(1_000, 300_000, 86_400_000);
        let d = |n, j| retry_delay(&p, n, j, None).as_millis();
        assert_eq!((d(1, 0.0), d(1, 1.0)), (500, 1_000));
        assert_eq!((d(2, 0.0), d(3, 0.0), d(4, 0.5)), (1_000, 2_000, 6_000));
        assert_eq!((d(20, 0.0), d(20, 1.0)), (150_000, 300_000));
        assert_eq!(d(u32::MAX, 1.0), 300_000);
        // Retry-After wins when larger, capped at an hour.
        let ra = |s| retry_delay(&p, 1, 1.0, Some(Duration::from_secs(s))).as_secs();
        assert_eq!((ra(0), ra(30), ra(7_200)), (1, 30, 3_600));
    }

    #[test]
    fn dead_when_too_old_at_scheduling_time() {
        let p = policy(1_000, 1_000, 10_000);
        assert_eq!(schedule_retry(&p, 0, 9_999, 3, 1.0, None), Schedule::At(10_999));
        assert_eq!(schedule_retry(&p, 0, 10_000, 3, 1.0, None), Schedule::Dead);
    }

    #[test]
    fn breaker_opens_probes_and_closes() {
        let bp = BreakerPolicy::default();
        let mut b = Breaker::default();
        for i in 0..BREAKER_THRESHOLD {
            assert_eq!(b.permit(i as i64), Permit::Send);
            b.record(false, false, &bp, 100);
        }
        assert!(b.is_open());
        assert_eq!(b.permit(500), Permit::Wait(Some(1_100)));
        // A late result of a send started before opening changes nothing.
        b.record(true, false, &bp, 600);
        assert_eq!(b.permit(1_100), Permit::Probe);
        assert_eq!(b.permit(1_101), Permit::Wait(None));
        b.record(false, true, &bp, 1_200); // probe failed: 2 s cool-off
        assert_eq!(b.permit(1_300), Permit::Wait(Some(3_200)));
        assert_eq!(b.permit(3_200), Permit::Probe);
        b.return_probe();
        assert_eq!(b.permit(3_300), Permit::Probe);
        b.record(true, true, &bp, 3_400);
        assert!(!b.is_open());
        assert_eq!(b, Breaker::default());
    }

    #[test]
    fn answers_reset_the_failure_count() {
        let bp = BreakerPolicy::default();
        let mut b = Breaker::default();
        for _ in 0..BREAKER_THRESHOLD - 1 {
            b.record(false, false, &bp, 0);
        }
        b.record(true, false, &bp, 0);
        for _ in 0..BREAKER_THRESHOLD - 1 {
            b.record(false, false, &bp, 0);
        }
        assert!(!b.is_open());
    }

    #[test]
    fn cool_off_grows_to_its_ceiling() {
        let bp = BreakerPolicy::default();
        let secs: Vec<u64> = (0..9).map(|k| cool_off(&bp, k).as_secs()).collect();
        assert_eq!(secs, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
        assert_eq!(cool_off(&bp, u32::MAX), bp.max_cool_off);
        let short = BreakerPolicy {
            cool_off: Duration::from_millis(100),
            max_cool_off: Duration::from_millis(250),
        };
        let ms: Vec<u128> = (0..4).map(|k| cool_off(&short, k).as_millis()).collect();
        assert_eq!(ms, [100, 200, 250, 250]);
    }

    #[test]
    fn pick_takes_one_per_group_and_skips_busy_groups() {
        let due = [(7, "a"), (3, "b"), (5, "a"), (9, "c"), (4, "d")];
        assert_eq!(pick(&due, |_| false, 10), [1, 2, 3, 4]);
        assert_eq!(pick(&due, |g| g == "b", 10), [2, 3, 4]);
        assert_eq!(pick(&due, |_| false, 2), [1, 2]);
        assert!(pick(&due, |_| true, 10).is_empty());
    }

    /// What happens next in the model of a receiver's queue.
    #[derive(Clone, Debug)]
    enum Step {
        /// The daemon queues a message for group `0`.
        Queue(u8),
        /// Time passes (ms).
        Tick(i64),
        /// The loop fetches what is due and starts what `pick` allows.
        Start(usize),
        /// The `0`-th running attempt ends: 0 delivered, 1 retryable failure, 2 time-out
        /// (retried too), 3 rejected; the retry is due after `1` ms.
        End(usize, u8, i64),
        /// The loop settles every ended attempt in the database.
        Settle,
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            (0u8..5).prop_map(Step::Queue),
            (0i64..50).prop_map(Step::Tick),
            (1usize..6).prop_map(Step::Start),
            (0usize..8, 0u8..4, 0i64..100).prop_map(|(i, o, d)| Step::End(i, o, d)),
            Just(Step::Settle),
        ]
    }

    proptest! {
        /// Whatever the interleaving of queueing, completions, failures, time-outs and
        /// settlements, with the database's rule that only a group's oldest pending entry is
        /// due: no two attempts of one group are ever under way at once (running or awaiting
        /// settlement), and no attempt starts for an entry older than one of its group that
        /// was already sent.
        #[test]
        fn one_attempt_per_group_and_never_older_than_sent(steps in proptest::collection::vec(step(), 1..300)) {
            // id → (group, next attempt); BTreeMap: ids in queue order.
            let mut pending: BTreeMap<i64, (String, i64)> = BTreeMap::new();
            let mut running: Vec<i64> = Vec::new();
            let mut ended: Vec<(i64, Option<i64>)> = Vec::new(); // (id, retry at) / None: gone
            let mut sent: BTreeMap<String, i64> = BTreeMap::new(); // newest id started per group
            let (mut next_id, mut now) = (1i64, 0i64);
            for s in steps {
                match s {
                    Step::Queue(g) => {
                        pending.insert(next_id, (format!("g{g}"), now));
                        next_id += 1;
                    }
                    Step::Tick(dt) => now += dt,
                    Step::Start(free) => {
                        // outbox_due: heads of their groups, due now, soonest first.
                        let mut heads: BTreeMap<&str, (i64, i64)> = BTreeMap::new();
                        for (id, (g, at)) in &pending {
                            heads.entry(g.as_str()).or_insert((*id, *at));
                        }
                        let mut due: Vec<(i64, i64, &str)> = heads
                            .iter()
                            .filter(|(_, (_, at))| *at <= now)
                            .map(|(g, (id, at))| (*at, *id, *g))
                            .collect();
                        due.sort_unstable();
                        let keys: Vec<(i64, &str)> = due.iter().map(|(_, id, g)| (*id, *g)).collect();
                        let busy_ids: Vec<i64> = running.iter().copied().chain(ended.iter().map(|e| e.0)).collect();
                        let busy = |g: &str| busy_ids.iter().any(|id| pending[id].0 == g);
                        let picked = pick(&keys, busy, free);
                        prop_assert!(picked.len() <= free);
                        for i in picked {
                            let (id, g) = keys[i];
                            prop_assert!(!busy_ids.contains(&id), "entry {} started twice", id);
                            prop_assert!(!busy(g), "group {} had an attempt under way", g);
                            if let Some(newest) = sent.get(g) {
                                prop_assert!(id >= *newest, "entry {} after {} of group {}", id, newest, g);
                            }
                            sent.insert(g.to_owned(), id);
                            running.push(id);
                        }
                    }
                    Step::End(i, outcome, delay) => {
                        if running.is_empty() {
                            continue;
                        }
                        let id = running.remove(i % running.len());
                        let retry_at = matches!(outcome, 1 | 2).then_some(now + delay);
                        ended.push((id, retry_at));
                    }
                    Step::Settle => {
                        for (id, retry_at) in ended.drain(..) {
                            match retry_at {
                                Some(at) => pending.get_mut(&id).expect("pending").1 = at,
                                None => {
                                    pending.remove(&id);
                                }
                            }
                        }
                    }
                }
            }
        }

        #[test]
        fn delay_is_bounded_and_monotone_in_attempts(
            backoff in 1u64..100_000, max in 1u64..1_000_000, n in 1u32..100, jitter in 0.0f64..1.0,
        ) {
            let p = policy(backoff, max, u64::MAX / 4);
            let d = retry_delay(&p, n, jitter, None);
            prop_assert!(d <= p.max_backoff);
            // Equal jitter: at least half of the un-jittered delay.
            let floor = retry_delay(&p, n, 0.0, None);
            let ceil = retry_delay(&p, n, 1.0, None);
            prop_assert!(floor <= d && d <= ceil);
            prop_assert!(ceil <= floor * 2 + Duration::from_nanos(1));
            prop_assert!(retry_delay(&p, n + 1, 0.0, None) >= floor);
        }

        #[test]
        fn retry_after_is_a_floor_up_to_an_hour(
            n in 1u32..50, jitter in 0.0f64..1.0, asked in 0u64..10_000,
        ) {
            let p = policy(1_000, 60_000, u64::MAX / 4);
            let d = retry_delay(&p, n, jitter, Some(Duration::from_secs(asked)));
            prop_assert!(d >= Duration::from_secs(asked).min(MAX_RETRY_AFTER));
            prop_assert!(d <= MAX_RETRY_AFTER.max(p.max_backoff));
        }

        #[test]
        fn schedule_is_dead_exactly_past_the_age(
            created in 0i64..1_000_000, age in 0i64..2_000_000, max_age in 1u64..1_000_000, n in 1u32..30,
        ) {
            let p = policy(10, 1_000, max_age);
            let s = schedule_retry(&p, created, created + age, n, 0.5, None);
            if age as u64 >= max_age {
                prop_assert_eq!(s, Schedule::Dead);
            } else {
                let Schedule::At(at) = s else { panic!() };
                prop_assert!(at > created + age - 1 && at <= created + age + 1_000);
            }
        }

        /// Whatever happens, an open breaker lets at most one probe out at a time, and a
        /// closed one never stays closed through THRESHOLD consecutive failures.
        #[test]
        fn breaker_never_lets_two_probes_out(events in proptest::collection::vec((0u8..4, 0i64..5_000), 1..200)) {
            let bp = BreakerPolicy::default();
            let mut b = Breaker::default();
            let mut now = 0i64;
            let mut probe_out = false;
            let mut run = 0u32;
            for (what, dt) in events {
                now += dt;
                match what {
                    0 | 1 => match b.permit(now) {
                        Permit::Probe => {
                            prop_assert!(!probe_out);
                            probe_out = true;
                        }
                        Permit::Send => prop_assert!(!b.is_open()),
                        Permit::Wait(until) => {
                            prop_assert!(b.is_open());
                            if let Some(t) = until {
                                prop_assert!(t > now && t - now <= 60_000);
                            }
                        }
                    },
                    2 => {
                        let was_closed = !b.is_open();
                        b.record(false, probe_out, &bp, now);
                        probe_out = false;
                        if was_closed {
                            run += 1;
                            prop_assert_eq!(b.is_open(), run >= BREAKER_THRESHOLD);
                            if b.is_open() { run = 0; }
                        }
                    }
                    _ => {
                        b.record(true, probe_out, &bp, now);
                        if probe_out || !b.is_open() { run = 0; }
                        probe_out = false;
                    }
                }
            }
        }
    }
}
