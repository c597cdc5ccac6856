//! Routing, grouping, muting and persistence tests of the dispatcher.

use super::*;
use crate::config::{Source, parse_receivers};

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;

use crate::alert::notify::NoteKind;
use crate::message::{AlertNote, Dispatch, Silence, SilenceMatcher, Status};
use crate::series::Timestamp;

const S: i64 = 1000;

/// The routing table of a receivers file, through the policy compiler as `run` gets it.
fn files(yaml: &str) -> RoutingTable {
    let f = parse_receivers(&Source::from_text("r.yaml", yaml).unwrap(), &|_| None).unwrap();
    let compiled = crate::policy::compile(&[("r.yaml".into(), f)], &BTreeSet::new());
    let errors: Vec<_> = compiled
        .diagnostics
        .iter()
        .filter(|d| d.severity == crate::diag::Severity::Error)
        .collect();
    assert!(errors.is_empty(), "{errors:?}");
    compiled.policy.routing
}

/// A note as `Engine::alert_note` makes it: identity without `severity`.
fn note(alertname: &str, instance: &str, severity: &str, kind: NoteKind, seq: u64, at_s: i64) -> AlertNote {
    let labels = Labels::from_pairs([("alertname", alertname), ("instance", instance), ("severity", severity)]);
    let key = Labels::from_pairs([("alertname", alertname), ("instance", instance)]).state_key();
    let status = if kind == NoteKind::Resolved {
        Status::Resolved
    } else {
        Status::Firing
    };
    AlertNote {
        instance: key,
        seq,
        kind,
        status,
        severity: severity.into(),
        labels,
        annotations: BTreeMap::new(),
        value: Some(1.0),
        threshold: None,
        starts_at: Timestamp(0),
        ends_at: (kind == NoteKind::Resolved).then_some(Timestamp(at_s * S)),
        at: Timestamp(at_s * S),
        nodata: false,
        ended_severity: None,
    }
}

fn flush(d: &mut Dispatcher, at_s: i64, silences: &[Silence]) -> Vec<Dispatch> {
    let mut out = Vec::new();
    d.flush(Timestamp(at_s * S), silences, &mut out);
    out
}

/// (receiver, news as "alertname/instance kind") of each dispatch, for compact assertions.
fn summary(out: &[Dispatch]) -> Vec<(String, Vec<String>)> {
    out.iter()
        .map(|d| {
            let news = d
                .news
                .iter()
                .map(|(fp, k)| {
                    let a = d
                        .alerts
                        .iter()
                        .find(|a| a.instance == *fp)
                        .expect("news names a carried alert");
                    format!(
                        "{}/{} {}",
                        a.alertname(),
                        a.labels.get("instance").unwrap_or(""),
                        k.name()
                    )
                })
                .collect();
            (d.receiver.clone(), news)
        })
        .collect()
}

fn s(receiver: &str, news: &[&str]) -> (String, Vec<String>) {
    (receiver.into(), news.iter().map(|n| n.to_string()).collect())
}

const TWO: &str = "receivers:\n  - { name: page, console: {} }\n  - { name: chat, console: {} }\n";

#[test]
fn defaults_are_transparent() {
    let mut d = Dispatcher::new(&files(&format!("{TWO}routes:\n  - receivers: [chat]\n")));
    d.notify(note("A", "a", "warning", NoteKind::Firing, 1, 0), &[]);
    let out = flush(&mut d, 0, &[]);
    assert_eq!(summary(&out), vec![s("chat", &["A/a firing"])]);
    let key = out[0].alerts[0].instance;
    // Idempotency keys carry the fingerprint of the label set as sent (severity included).
    let fp = |sev: &str| Labels::from_pairs([("alertname", "A"), ("instance", "a"), ("severity", sev)]).fingerprint();
    assert_eq!(out[0].idempotency_key, format!("{:016x}-1", fp("warning")));
    assert_eq!(out[0].group_key, r#"{}:{alertname="A", instance="a"}"#);
    for (seq, kind, sev) in [
        (2, NoteKind::Escalated, "critical"),
        (3, NoteKind::Repeat, "critical"),
        (4, NoteKind::Deescalated, "warning"),
        (5, NoteKind::Resolved, "warning"),
    ] {
        d.notify(note("A", "a", sev, kind, seq, seq as i64 * 60), &[]);
        assert_eq!(d.next_due(), Some(Timestamp(seq as i64 * 60 * S)));
        let out = flush(&mut d, seq as i64 * 60, &[]);
        assert_eq!(out.len(), 1, "{kind:?}");
        assert_eq!(out[0].news, vec![(key, kind)]);
        assert_eq!(out[0].idempotency_key, format!("{:016x}-{seq}", fp(sev)));
    }
    assert_eq!(out_alerts_status(&flush(&mut d, 1000, &[])), Vec::<Status>::new());
    assert_eq!(d.next_due(), None);
}

fn out_alerts_status(out: &[Dispatch]) -> Vec<Status> {
    out.iter().flat_map(|d| d.alerts.iter().map(|a| a.status)).collect()
}

#[test]
fn continue_sends_down_every_matching_route_and_first_match_stops() {
    let yaml = format!(
        "{TWO}routes:\n  - match: {{ severity: [critical, emergency] }}\n    receivers: [page]\n    continue: true\n  - match: {{ alertname: '~Disk.*' }}\n    receivers: [chat]\n  - receivers: [page]\n"
    );
    let mut d = Dispatcher::new(&files(&yaml));
    d.notify(note("DiskFull", "a", "critical", NoteKind::Firing, 1, 0), &[]);
    d.notify(note("Cpu", "a", "warning", NoteKind::Firing, 1, 0), &[]);
    let out = flush(&mut d, 0, &[]);
    let mut got = summary(&out);
    got.sort();
    assert_eq!(
        got,
        vec![
            s("chat", &["DiskFull/a firing"]),
            s("page", &["Cpu/a firing"]),
            s("page", &["DiskFull/a firing"])
        ]
    );
    let keys: BTreeSet<&str> = out.iter().map(|d| d.group_key.as_str()).collect();
    assert!(
        keys.contains(r#"{}/{severity=~"critical|emergency"}:{alertname="DiskFull", instance="a"}"#),
        "{keys:?}"
    );
    assert!(
        keys.contains(r#"{}/{alertname=~"Disk.*"}:{alertname="DiskFull", instance="a"}"#),
        "{keys:?}"
    );
}

#[test]
fn notify_bypasses_routes_and_unrouted_notes_go_nowhere() {
    let yaml = format!("{TWO}routes:\n  - match: {{ team: db }}\n    receivers: [chat]\n");
    let mut d = Dispatcher::new(&files(&yaml));
    d.notify(note("A", "a", "warning", NoteKind::Firing, 1, 0), &["page".to_string()]);
    d.notify(note("B", "a", "warning", NoteKind::Firing, 1, 0), &[]);
    assert_eq!(summary(&flush(&mut d, 0, &[])), vec![s("page", &["A/a firing"])]);
}

const GROUPED: &str =
    "routes:\n  - receivers: [chat]\n    group_by: [alertname]\n    group_wait: 30s\n    group_interval: 1m\n";

#[test]
fn group_wait_coalesces_and_group_interval_spaces_later_news() {
    let mut d = Dispatcher::new(&files(&format!("{TWO}{GROUPED}")));
    d.notify(note("A", "a", "warning", NoteKind::Firing, 1, 0), &[]);
    assert!(flush(&mut d, 0, &[]).is_empty());
    d.notify(note("A", "b", "warning", NoteKind::Firing, 1, 10), &[]);
    assert_eq!(d.next_due(), Some(Timestamp(30 * S)));
    let out = flush(&mut d, 30, &[]);
    assert_eq!(summary(&out), vec![s("chat", &["A/a firing", "A/b firing"])]);
    assert_eq!(out[0].group_key, r#"{}:{alertname="A"}"#);
    assert_eq!(
        out[0].group_labels,
        BTreeMap::from([("alertname".to_string(), "A".to_string())])
    );
    assert!(out[0].idempotency_key.ends_with("-1"), "{}", out[0].idempotency_key);
    // Later news waits for group_interval after the last flush, and the message carries the
    // whole group.
    d.notify(note("A", "c", "warning", NoteKind::Firing, 1, 40), &[]);
    assert_eq!(d.next_due(), Some(Timestamp(90 * S)));
    assert!(flush(&mut d, 40, &[]).is_empty());
    let out = flush(&mut d, 90, &[]);
    assert_eq!(summary(&out), vec![s("chat", &["A/c firing"])]);
    assert_eq!(out[0].alerts.len(), 3);
    assert!(out[0].idempotency_key.ends_with("-2"));
    // Resolved alerts come last and then leave the group.
    d.notify(note("A", "a", "warning", NoteKind::Resolved, 2, 100), &[]);
    let out = flush(&mut d, 150, &[]);
    assert_eq!(summary(&out), vec![s("chat", &["A/a resolved"])]);
    assert_eq!(
        out_alerts_status(&out),
        vec![Status::Firing, Status::Firing, Status::Resolved]
    );
    assert_eq!(d.next_due(), None);
}

#[test]
fn fire_and_resolve_within_group_wait_sends_nothing() {
    let mut d = Dispatcher::new(&files(&format!("{TWO}{GROUPED}")));
    d.notify(note("A", "a", "warning", NoteKind::Firing, 1, 0), &[]);
    d.notify(note("A", "a", "warning", NoteKind::Resolved, 2, 20), &[]);
    assert!(flush(&mut d, 30, &[]).is_empty());
    assert_eq!(d.next_due(), None);
    let mut rows = Vec::new();
    d.take_changes(&mut rows);
    assert!(
        rows.iter().all(|(k, v)| !k.starts_with("g/") || v.is_none()),
        "the group is gone: {rows:?}"
    );
}

#[test]
fn route_repeat_interval_resends_unchanged_groups() {
    let yaml = format!("{TWO}routes:\n  - receivers: [chat]\n    group_by: [alertname]\n    repeat_interval: 1h\n");
    let mut d = Dispatcher::new(&files(&yaml));
    d.notify(note("A", "a", "warning", NoteKind::Firing, 1, 0), &[]);
    assert_eq!(flush(&mut d, 0, &[]).len(), 1);
    assert_eq!(d.next_due(), Some(Timestamp(3600 * S)));
    assert_eq!(summary(&flush(&mut d, 3600, &[])), vec![s("chat", &["A/a repeat"])]);
    assert_eq!(d.next_due(), Some(Timestamp(7200 * S)));
    d.notify(note("A", "a", "warning", NoteKind::Resolved, 2, 4000), &[]);
    assert_eq!(summary(&flush(&mut d, 4000, &[])), vec![s("chat", &["A/a resolved"])]);
    assert_eq!(d.next_due(), None);
}

#[test]
fn inhibition_needs_another_firing_source_with_equal_labels() {
    let yaml = format!(
        "{TWO}routes:\n  - receivers: [chat]\ninhibit_rules:\n  - source: {{ alertname: HostDown }}\n    target: {{ severity: [warning, high] }}\n    equal: [instance]\n"
    );
    let mut d = Dispatcher::new(&files(&yaml));
    // The source fires through a route nobody listens to: inhibition sees every note.
    d.notify(
        note("HostDown", "a", "critical", NoteKind::Firing, 1, 0),
        &["nobody".to_string()],
    );
    d.notify(note("Cpu", "a", "warning", NoteKind::Firing, 1, 0), &[]);
    d.notify(note("Cpu", "b", "warning", NoteKind::Firing, 1, 0), &[]);
    d.notify(note("Mem", "a", "critical", NoteKind::Firing, 1, 0), &[]);
    let mut got = summary(&flush(&mut d, 0, &[]));
    got.sort();
    assert_eq!(got, vec![s("chat", &["Cpu/b firing"]), s("chat", &["Mem/a firing"])]);
    // When the source resolves, the held-back target goes out at the next flush.
    d.notify(
        note("HostDown", "a", "critical", NoteKind::Resolved, 2, 60),
        &["nobody".to_string()],
    );
    let mut got = summary(&flush(&mut d, 60, &[]));
    got.sort();
    assert_eq!(got, vec![s("chat", &["Cpu/a firing"])]);
}

#[test]
fn an_alert_matching_source_and_target_does_not_inhibit_itself() {
    let yaml = format!(
        "{TWO}routes:\n  - receivers: [chat]\ninhibit_rules:\n  - source: {{ alertname: A }}\n    target: {{ alertname: A }}\n"
    );
    let mut d = Dispatcher::new(&files(&yaml));
    d.notify(note("A", "a", "warning", NoteKind::Firing, 1, 0), &[]);
    assert_eq!(summary(&flush(&mut d, 0, &[])), vec![s("chat", &["A/a firing"])]);
    d.notify(note("A", "b", "warning", NoteKind::Firing, 1, 5), &[]);
    assert!(flush(&mut d, 5, &[]).is_empty(), "inhibited by A/a");
}

fn silence(matchers: &[(&str, &str, bool, bool)], from_s: i64, to_s: i64) -> Silence {
    Silence {
        id: "s".into(),
        matchers: matchers
            .iter()
            .map(|(n, v, is_regex, is_equal)| SilenceMatcher {
                name: n.to_string(),
                value: v.to_string(),
                is_regex: *is_regex,
                is_equal: *is_equal,
            })
            .collect(),
        starts_at: Timestamp(from_s * S),
        ends_at: Timestamp(to_s * S),
        created_by: "t".into(),
        comment: String::new(),
    }
}

#[test]
fn silences_mute_inside_their_window_but_never_swallow_a_resolve() {
    let yaml = format!("{TWO}routes:\n  - receivers: [chat]\n");
    let mut d = Dispatcher::new(&files(&yaml));
    let sil = [silence(
        &[("instance", "a|b", true, true), ("alertname", "B", false, false)],
        10,
        20,
    )];
    d.notify(note("A", "a", "warning", NoteKind::Firing, 1, 5), &[]);
    assert_eq!(flush(&mut d, 5, &sil).len(), 1, "before the window");
    d.notify(note("A", "b", "warning", NoteKind::Firing, 1, 10), &[]);
    d.notify(note("B", "b", "warning", NoteKind::Firing, 1, 10), &[]);
    d.notify(note("A", "c", "warning", NoteKind::Firing, 1, 10), &[]);
    let mut got = summary(&flush(&mut d, 10, &sil));
    got.sort();
    assert_eq!(got, vec![s("chat", &["A/c firing"]), s("chat", &["B/b firing"])]);
    // A resolve of a delivered firing goes out although silenced.
    d.notify(note("A", "a", "warning", NoteKind::Resolved, 2, 15), &[]);
    assert_eq!(summary(&flush(&mut d, 15, &sil)), vec![s("chat", &["A/a resolved"])]);
    assert!(flush(&mut d, 19, &sil).is_empty());
    assert_eq!(d.next_due(), None, "muted news has no timer");
    // The held-back firing goes out at the first flush after the window.
    assert_eq!(summary(&flush(&mut d, 20, &sil)), vec![s("chat", &["A/b firing"])]);
    let bad = [silence(&[("instance", "(", true, false)], 0, 100)];
    d.notify(note("A", "d", "warning", NoteKind::Firing, 1, 30), &[]);
    assert_eq!(flush(&mut d, 30, &bad).len(), 1, "an invalid regex matches nothing");
}

#[test]
fn a_resolve_and_a_new_episode_before_a_flush_go_out_in_two_messages() {
    let mut d = Dispatcher::new(&files(&format!("{TWO}{GROUPED}")));
    d.notify(note("A", "a", "warning", NoteKind::Firing, 1, 0), &[]);
    assert_eq!(flush(&mut d, 30, &[]).len(), 1);
    d.notify(note("A", "a", "warning", NoteKind::Resolved, 2, 40), &[]);
    d.notify(note("A", "a", "critical", NoteKind::Firing, 3, 50), &[]);
    d.notify(note("A", "a", "critical", NoteKind::Resolved, 4, 55), &[]);
    d.notify(note("A", "a", "warning", NoteKind::Firing, 5, 60), &[]);
    let out = flush(&mut d, 90, &[]);
    assert_eq!(summary(&out), vec![s("chat", &["A/a resolved"])]);
    assert_eq!(out[0].alerts[0].seq, 2, "the resolve of the delivered episode");
    assert_eq!(d.next_due(), Some(Timestamp(150 * S)));
    let out = flush(&mut d, 150, &[]);
    assert_eq!(summary(&out), vec![s("chat", &["A/a firing"])]);
    assert_eq!(out[0].alerts[0].seq, 5);
}

#[test]
fn send_resolved_false_and_flapping_only_for_those_told() {
    let yaml = "receivers:\n  - { name: quiet, send_resolved: false, console: {} }\n  - { name: chat, console: {} }\nroutes:\n  - receivers: [quiet, chat]\n    continue: true\n";
    let mut d = Dispatcher::new(&files(yaml));
    d.notify(note("A", "a", "warning", NoteKind::Flapping, 1, 0), &[]);
    assert!(flush(&mut d, 0, &[]).is_empty(), "nobody knows it fires");
    d.notify(note("A", "a", "warning", NoteKind::Firing, 2, 10), &[]);
    assert_eq!(flush(&mut d, 10, &[]).len(), 2);
    d.notify(note("A", "a", "warning", NoteKind::Flapping, 3, 20), &[]);
    assert_eq!(
        summary(&flush(&mut d, 20, &[])),
        vec![s("quiet", &["A/a flapping"]), s("chat", &["A/a flapping"])]
    );
    d.notify(note("A", "a", "warning", NoteKind::Resolved, 4, 30), &[]);
    assert_eq!(summary(&flush(&mut d, 30, &[])), vec![s("chat", &["A/a resolved"])]);
}

#[test]
fn alertmanager_receivers_get_periodic_resends() {
    let yaml = "receivers:\n  - { name: am, alertmanager: { url: 'http://am:9093' } }\nroutes:\n  - receivers: [am]\n";
    let mut d = Dispatcher::new(&files(yaml));
    d.notify(note("A", "a", "warning", NoteKind::Firing, 1, 0), &[]);
    let first = flush(&mut d, 0, &[]);
    assert_eq!(d.next_due(), Some(Timestamp(60 * S)));
    let out = flush(&mut d, 60, &[]);
    assert_eq!(out.len(), 1);
    assert!(out[0].news.is_empty());
    assert_ne!(out[0].idempotency_key, first[0].idempotency_key);
    // A muted alert is not re-sent, and the timer moves on.
    let sil = [silence(&[("alertname", "A", false, true)], 100, 1000)];
    assert!(flush(&mut d, 120, &sil).is_empty());
    assert_eq!(d.next_due(), Some(Timestamp(180 * S)));
    d.notify(note("A", "a", "warning", NoteKind::Resolved, 2, 130), &[]);
    assert_eq!(flush(&mut d, 130, &sil)[0].news.len(), 1);
    assert_eq!(d.next_due(), None);
}

#[test]
fn a_severity_change_names_the_severity_each_receiver_knew() {
    let yaml = format!("{TWO}routes:\n  - receivers: [chat]\n");
    let mut d = Dispatcher::new(&files(&yaml));
    d.notify(note("A", "a", "warning", NoteKind::Firing, 1, 0), &[]);
    assert_eq!(flush(&mut d, 0, &[])[0].alerts[0].ended_severity, None);
    d.notify(note("A", "a", "critical", NoteKind::Escalated, 2, 10), &[]);
    let out = flush(&mut d, 10, &[]);
    assert_eq!(out[0].alerts[0].ended_severity.as_deref(), Some("warning"));
    assert_eq!(
        out[0].alerts[0].ended_labels().unwrap().get("severity"),
        Some("warning")
    );
    // The resolve ends the severity the receiver holds: the current one.
    d.notify(note("A", "a", "critical", NoteKind::Resolved, 3, 20), &[]);
    let out = flush(&mut d, 20, &[]);
    assert_eq!(out[0].alerts[0].status, Status::Resolved);
    assert_eq!(out[0].alerts[0].ended_severity, None);
}

#[test]
fn a_resolve_of_an_unheard_escalation_also_ends_the_known_severity() {
    let yaml = format!("{TWO}routes:\n  - receivers: [chat]\n    group_by: [alertname]\n    group_interval: 1m\n");
    let mut d = Dispatcher::new(&files(&yaml));
    d.notify(note("A", "a", "warning", NoteKind::Firing, 1, 0), &[]);
    flush(&mut d, 0, &[]);
    // Escalated and resolved between two flushes: the receiver only ever heard `warning`.
    d.notify(note("A", "a", "critical", NoteKind::Escalated, 2, 10), &[]);
    d.notify(note("A", "a", "critical", NoteKind::Resolved, 3, 20), &[]);
    let out = flush(&mut d, 60, &[]);
    assert_eq!(out[0].alerts[0].status, Status::Resolved);
    assert_eq!(out[0].alerts[0].ended_severity.as_deref(), Some("warning"));
}

#[test]
fn refreshed_content_rides_on_re_sends_without_news() {
    let yaml = "receivers:\n  - { name: am, alertmanager: { url: 'http://am:9093' } }\nroutes:\n  - receivers: [am]\n";
    let mut d = Dispatcher::new(&files(yaml));
    let mut first = note("A", "a", "warning", NoteKind::Firing, 1, 0);
    first.annotations.insert("summary".into(), "value 1".into());
    d.notify(first.clone(), &[]);
    flush(&mut d, 0, &[]);
    let mut rows = Vec::new();
    d.take_changes(&mut rows);
    let mut fresh = first.clone();
    fresh.value = Some(42.0);
    fresh.annotations.insert("summary".into(), "value 42".into());
    d.refresh(&fresh);
    assert_eq!(d.next_due(), Some(Timestamp(60 * S)), "a refresh is no news");
    assert!(flush(&mut d, 30, &[]).is_empty());
    // Persisted, so a restart before the re-send sends the same.
    rows.clear();
    d.take_changes(&mut rows);
    assert!(!rows.is_empty());
    // Another severity or episode is not this alert's current content.
    let mut other = fresh.clone();
    other.severity = "critical".into();
    other.annotations.insert("summary".into(), "wrong".into());
    d.refresh(&other);
    let out = flush(&mut d, 60, &[]);
    assert_eq!(out[0].alerts[0].annotations["summary"], "value 42");
    assert_eq!(out[0].alerts[0].value, Some(42.0));
}

#[test]
fn an_alert_stays_in_the_groups_it_joined_until_it_resolves_there() {
    let yaml =
        format!("{TWO}routes:\n  - match: {{ severity: critical }}\n    receivers: [page]\n  - receivers: [chat]\n");
    let mut d = Dispatcher::new(&files(&yaml));
    d.notify(note("A", "a", "warning", NoteKind::Firing, 1, 0), &[]);
    assert_eq!(summary(&flush(&mut d, 0, &[])), vec![s("chat", &["A/a firing"])]);
    d.notify(note("A", "a", "critical", NoteKind::Escalated, 2, 10), &[]);
    let mut got = summary(&flush(&mut d, 10, &[]));
    got.sort();
    assert_eq!(got, vec![s("chat", &["A/a escalated"]), s("page", &["A/a firing"])]);
    // A reload that drops every route still lets both groups finish.
    d.replace(&files(TWO));
    d.notify(note("A", "a", "critical", NoteKind::Resolved, 3, 20), &[]);
    let mut got = summary(&flush(&mut d, 20, &[]));
    got.sort();
    assert_eq!(got, vec![s("chat", &["A/a resolved"]), s("page", &["A/a resolved"])]);
}

/// One step of a scripted run: notes (with their rule's `notify:`) at a time, then a flush.
type Script = Vec<(i64, Vec<(AlertNote, Vec<String>)>)>;

/// Flushes `d` at `at`, all at once, or with `chunk` in parts of at most that many messages
/// until nothing more is due then (as the daemon does with a burst).
fn flush_in_parts(
    d: &mut Dispatcher,
    at: Timestamp,
    silences: &[Silence],
    chunk: Option<usize>,
    out: &mut Vec<Dispatch>,
) {
    let Some(k) = chunk else {
        d.flush(at, silences, out);
        assert!(d.timed_index_is_exact(), "the timed groups after a flush at {at}");
        return;
    };
    for _ in 0..10_000 {
        let before = out.len();
        d.flush_at_most(at, silences, k, out);
        assert!(d.timed_index_is_exact(), "the timed groups after a part at {at}");
        // A part ends with the group that reached `k`: at most 3 receivers, each flushed at
        // most `MAX_FLUSHES_PER_INSTANT` (4) times.
        assert!(
            out.len() - before < k + 12,
            "a part of {k} holds {} messages",
            out.len() - before
        );
        if out.len() == before || d.next_due().is_none_or(|t| t > at) {
            return;
        }
    }
    panic!("parts of {k} never flushed everything due at {at}");
}

/// Runs `script`, flushing at every step and at every `next_due` in between, up to `end`;
/// with `split`, persists after every step and continues from a fresh dispatcher restored
/// from the rows after step `split`; with `chunk`, every flush goes out in parts, and the
/// restart comes between the first part of step `split` and the rest (a crash in a burst,
/// with only the first part committed).
fn drive(
    files: &RoutingTable,
    script: &Script,
    silences: &[Silence],
    split: Option<usize>,
    chunk: Option<usize>,
    end: i64,
) -> Vec<Dispatch> {
    let mut d = Dispatcher::new(files);
    let mut rows: BTreeMap<String, String> = BTreeMap::new();
    let mut out = Vec::new();
    let mut last = i64::MIN;
    let timers = |d: &mut Dispatcher, until: i64, out: &mut Vec<Dispatch>, last: &mut i64| {
        while let Some(due) = d.next_due().filter(|t| t.0 < until) {
            assert!(due.0 > *last, "next_due {due} does not move past the last flush {last}");
            flush_in_parts(d, due, silences, chunk, out);
            *last = due.0;
        }
    };
    let persist = |d: &mut Dispatcher, rows: &mut BTreeMap<String, String>| {
        let mut changes = Vec::new();
        d.take_changes(&mut changes);
        for (k, v) in changes {
            match v {
                Some(v) => rows.insert(k, v),
                None => rows.remove(&k),
            };
        }
    };
    let restart = |rows: &BTreeMap<String, String>| {
        let mut d = Dispatcher::new(files);
        d.restore(rows.clone().into_iter().chain([("g/bad".to_string(), "{".to_string())]));
        assert!(d.timed_index_is_exact(), "the timed groups after a restore");
        d
    };
    for (i, (t, notes)) in script.iter().enumerate() {
        timers(&mut d, *t, &mut out, &mut last);
        for (n, notify) in notes {
            d.notify(n.clone(), notify);
        }
        assert!(d.timed_index_is_exact(), "the timed groups after the notes at {t}");
        if let Some(k) = chunk.filter(|_| split == Some(i)) {
            d.flush_at_most(Timestamp(*t), silences, k, &mut out);
            persist(&mut d, &mut rows);
            d = restart(&rows);
        }
        flush_in_parts(&mut d, Timestamp(*t), silences, chunk, &mut out);
        last = *t;
        persist(&mut d, &mut rows);
        if split == Some(i) && chunk.is_none() {
            d = restart(&rows);
        }
    }
    timers(&mut d, end + 1, &mut out, &mut last);
    out
}

#[test]
fn a_run_split_and_restored_anywhere_sends_the_same() {
    let yaml = format!(
        "receivers:\n  - {{ name: page, console: {{}} }}\n  - {{ name: chat, send_resolved: false, console: {{}} }}\n  - {{ name: am, alertmanager: {{ url: 'http://x' }} }}\n{GROUPED}    continue: true\n  - receivers: [page, am]\n    repeat_interval: 5m\ninhibit_rules:\n  - source: {{ alertname: B }}\n    target: {{ alertname: A }}\n    equal: [instance]\n"
    );
    let f = files(&yaml);
    let script: Script = vec![
        (0, vec![(note("A", "a", "warning", NoteKind::Firing, 1, 0), vec![])]),
        (
            10 * S,
            vec![(note("A", "b", "warning", NoteKind::Firing, 1, 10), vec![])],
        ),
        (
            70 * S,
            vec![(note("A", "a", "critical", NoteKind::Escalated, 2, 70), vec![])],
        ),
        (
            80 * S,
            vec![(note("B", "b", "critical", NoteKind::Firing, 1, 80), vec![])],
        ),
        (
            100 * S,
            vec![(note("A", "a", "critical", NoteKind::Resolved, 3, 100), vec![])],
        ),
        (
            110 * S,
            vec![(note("A", "a", "warning", NoteKind::Firing, 4, 110), vec![])],
        ),
        (
            500 * S,
            vec![(note("B", "b", "critical", NoteKind::Resolved, 2, 500), vec![])],
        ),
        (
            900 * S,
            vec![(note("A", "b", "warning", NoteKind::Repeat, 2, 900), vec![])],
        ),
        (1000 * S, vec![]),
    ];
    let sil = [silence(&[("instance", "a", false, true)], 300, 600)];
    let whole = drive(&f, &script, &sil, None, None, 2000 * S);
    assert!(whole.len() > 10, "{}", whole.len());
    for split in 0..script.len() {
        assert_eq!(
            drive(&f, &script, &sil, Some(split), None, 2000 * S),
            whole,
            "split after step {split}"
        );
    }
}

/// Checks the delivery guarantees on a run's output: per (receiver, group, alert), every
/// episode whose firing was delivered gets exactly one resolve when the receiver has
/// `send_resolved` and none otherwise, and no resolve comes without a delivered firing.
fn check_guarantees(out: &[Dispatch], send_resolved: &BTreeMap<String, bool>) -> Result<(), String> {
    let mut told: BTreeMap<(String, String, u64), bool> = BTreeMap::new();
    // What a receiver that keys on label sets (Alertmanager) holds active per alert; one
    // without `send_resolved` is never told anything ended, by its own choice.
    let mut held: BTreeMap<(String, String, u64), BTreeSet<String>> = BTreeMap::new();
    let mut keys = BTreeSet::new();
    for d in out {
        for a in d.alerts.iter().filter(|_| send_resolved[&d.receiver]) {
            let h = held
                .entry((d.receiver.clone(), d.group_key.clone(), a.instance))
                .or_default();
            if let Some(old) = &a.ended_severity {
                h.remove(old);
            }
            match a.status {
                Status::Firing => h.insert(a.severity.clone()),
                Status::Resolved => h.remove(&a.severity),
            };
            if h.len() > 1 {
                return Err(format!(
                    "a label-keyed receiver holds severities {h:?} of one alert: {d:?}"
                ));
            }
            if a.status == Status::Resolved && !h.is_empty() {
                return Err(format!("a resolve left {h:?} active: {d:?}"));
            }
        }
        // One note reaching a receiver through two routes is the same news under the same key.
        if !keys.insert((d.receiver.clone(), d.group_key.clone(), d.idempotency_key.clone())) {
            return Err(format!(
                "idempotency key {} repeated for {}",
                d.idempotency_key, d.receiver
            ));
        }
        let fps: Vec<u64> = d.alerts.iter().map(|a| a.instance).collect();
        if fps.iter().collect::<BTreeSet<_>>().len() != fps.len() {
            return Err(format!("one alert twice in a message: {d:?}"));
        }
        if d.alerts
            .windows(2)
            .any(|w| w[0].status == Status::Resolved && w[1].status == Status::Firing)
        {
            return Err("resolved before firing".into());
        }
        let sr = send_resolved[&d.receiver];
        for (fp, kind) in &d.news {
            if !fps.contains(fp) {
                return Err(format!("news of an alert the message does not carry: {d:?}"));
            }
            let t = told.entry((d.receiver.clone(), d.group_key.clone(), *fp)).or_default();
            match kind {
                NoteKind::Resolved if !*t => return Err(format!("resolve without a delivered firing: {d:?}")),
                NoteKind::Resolved if !sr => return Err(format!("resolve to a receiver without send_resolved: {d:?}")),
                NoteKind::Resolved => *t = false,
                NoteKind::Firing if *t && sr => return Err(format!("new firing before the last resolve: {d:?}")),
                NoteKind::Firing => *t = true,
                _ if !*t => return Err(format!("{kind:?} news to a receiver that was not told it fires: {d:?}")),
                _ => {}
            }
        }
    }
    for ((r, g, fp), t) in told {
        if t && send_resolved[&r] {
            return Err(format!("{r} never heard {fp:016x} of {g} resolve"));
        }
    }
    Ok(())
}

/// Random receivers, routes, silences and per-instance note sequences.
#[derive(Debug, Clone)]
struct Scenario {
    yaml: String,
    send_resolved: BTreeMap<String, bool>,
    script: Script,
    silences: Vec<Silence>,
    end: i64,
}

fn scenario() -> impl Strategy<Value = Scenario> {
    let receivers = prop::collection::vec((any::<bool>(), any::<bool>()), 3);
    let route = (
        0..3usize,
        1..8u8,
        0..3usize,
        0..3usize,
        0..3usize,
        any::<bool>(),
        any::<bool>(),
    );
    let routes = prop::collection::vec(route, 1..4);
    let steps = prop::collection::vec((0..6usize, 0..8u8, 0..90i64, any::<bool>()), 1..40);
    let silences = prop::collection::vec((0..4usize, 0..600i64, 0..600i64), 0..3);
    (receivers, routes, steps, silences).prop_map(|(receivers, routes, steps, silences)| {
        let mut yaml = String::from("receivers:\n");
        let mut send_resolved = BTreeMap::new();
        for (i, (sr, am)) in receivers.iter().enumerate() {
            let kind = if *am { "alertmanager: { url: 'http://am' }" } else { "console: {}" };
            yaml += &format!("  - {{ name: r{i}, send_resolved: {sr}, {kind} }}\n");
            send_resolved.insert(format!("r{i}"), *sr);
        }
        yaml += "routes:\n";
        for (m, recv, by, wait, interval, repeat, cont) in routes {
            yaml += "  - receivers: [";
            yaml += &(0..3).filter(|i| recv & (1 << i) != 0).map(|i| format!("r{i}")).collect::<Vec<_>>().join(", ");
            yaml += "]\n";
            yaml += ["", "    match: { alertname: A }\n", "    match: { severity: '~crit.*' }\n"][m];
            yaml += ["", "    group_by: [alertname]\n", "    group_by: [instance]\n"][by];
            yaml += ["", "    group_wait: 30s\n", "    group_wait: 2m\n"][wait];
            yaml += ["", "    group_interval: 1m\n", "    group_interval: 5m\n"][interval];
            if repeat {
                yaml += "    repeat_interval: 10m\n";
            }
            if cont {
                yaml += "    continue: true\n";
            }
        }
        yaml += "inhibit_rules:\n  - source: { alertname: A, severity: critical }\n    target: { severity: warning }\n    equal: [instance]\n";

        // Per-instance note sequences that respect the engine: a resolve only after a firing.
        let names = [("A", "a"), ("A", "b"), ("B", "a"), ("B", "b"), ("C", "a"), ("C", "c")];
        let mut state: Vec<Option<&str>> = vec![None; names.len()];
        let mut seq = vec![0u64; names.len()];
        let mut t = 0i64;
        let mut script: Script = Vec::new();
        let push = |t: i64, n: AlertNote, notify: Vec<String>, script: &mut Script| match script.last_mut() {
            Some((last, notes)) if *last == t => notes.push((n, notify)),
            _ => script.push((t, vec![(n, notify)])),
        };
        for (who, action, dt, flush_only) in steps {
            t += dt * S;
            if flush_only {
                script.push((t, Vec::new()));
                continue;
            }
            let (alert, instance) = names[who];
            let notify = if alert == "C" && instance == "c" { vec!["r2".to_string()] } else { vec![] };
            let (kind, sev) = match state[who] {
                None => (NoteKind::Firing, if action % 2 == 0 { "warning" } else { "critical" }),
                Some(sev) => match action % 4 {
                    0 | 1 => {
                        let other = if sev == "warning" { "critical" } else { "warning" };
                        (if other == "critical" { NoteKind::Escalated } else { NoteKind::Deescalated }, other)
                    }
                    2 => (NoteKind::Repeat, sev),
                    _ => (NoteKind::Resolved, sev),
                },
            };
            seq[who] += 1;
            state[who] = (kind != NoteKind::Resolved).then_some(sev);
            let mut n = note(alert, instance, sev, kind, seq[who], 0);
            n.at = Timestamp(t);
            push(t, n, notify, &mut script);
        }
        t += 10 * S;
        for (who, st) in state.iter().enumerate() {
            if let Some(sev) = st {
                let (alert, instance) = names[who];
                let notify = if alert == "C" && instance == "c" { vec!["r2".to_string()] } else { vec![] };
                let mut n = note(alert, instance, sev, NoteKind::Resolved, seq[who] + 1, 0);
                n.at = Timestamp(t);
                push(t, n, notify, &mut script);
            }
        }
        let silences = silences
            .into_iter()
            .map(|(m, from, len)| {
                let matchers: &[(&str, &str, bool, bool)] = match m {
                    0 => &[("instance", "a", false, true)],
                    1 => &[("alertname", "A|C", true, true)],
                    2 => &[("severity", "warning", false, false)],
                    _ => &[("instance", "[", true, true)],
                };
                silence(matchers, from * 10, from * 10 + len * 10)
            })
            .collect();
        Scenario {
            yaml,
            send_resolved,
            script,
            silences,
            end: t + 86_400 * S,
        }
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn every_delivered_firing_gets_exactly_its_resolve(
        sc in scenario(),
        split in any::<prop::sample::Index>(),
        chunk in 1..4usize,
    ) {
        let f = files(&sc.yaml);
        let out = drive(&f, &sc.script, &sc.silences, None, None, sc.end);
        if let Err(e) = check_guarantees(&out, &sc.send_resolved) {
            return Err(TestCaseError::fail(format!("{e}\n{}", sc.yaml)));
        }
        let split = split.index(sc.script.len());
        prop_assert_eq!(&drive(&f, &sc.script, &sc.silences, Some(split), None, sc.end), &out);
        // Flushed in parts, a run sends the same messages in the same order, also when it
        // restarts with only the first part of a flush committed.
        prop_assert_eq!(&drive(&f, &sc.script, &sc.silences, Some(split), Some(chunk), sc.end), &out);
    }
}

/// A Unix instant in ms from RFC 3339.
fn unix_ms(s: &str) -> i64 {
    s.parse::<jiff::Timestamp>().unwrap().as_millisecond()
}

const NIGHT_IN_BERLIN: &str = "time_intervals:
  - name: night
    time_intervals:
      - times: [{ start_time: '00:00', end_time: '08:00' }]
        location: Europe/Berlin
";

#[test]
fn a_muted_route_holds_news_and_sends_the_current_state_when_the_night_ends_across_dst() {
    let yaml = format!("{TWO}{NIGHT_IN_BERLIN}routes:\n  - receivers: [page]\n    mute_time_intervals: [night]\n");
    let f = files(&yaml);
    let mut d = Dispatcher::new(&f);
    // 0 is midnight in Berlin on the night clocks go forward: the night lasts 7 hours.
    let origin = unix_ms("2026-03-28T23:00:00Z");
    d.set_origin(origin);
    const H: i64 = 3600;
    d.notify(note("A", "a", "warning", NoteKind::Firing, 1, 0), &[]);
    d.notify(note("B", "b", "warning", NoteKind::Firing, 1, 0), &[]);
    assert!(flush(&mut d, 0, &[]).is_empty(), "muted");
    assert_eq!(d.next_due(), Some(Timestamp(7 * H * S)), "08:00 CEST is 06:00 UTC");
    // Persisted while held, restored: the hold survives a restart.
    let mut rows = Vec::new();
    d.take_changes(&mut rows);
    let mut d = Dispatcher::new(&f);
    d.set_origin(origin);
    d.restore(rows.into_iter().filter_map(|(k, v)| Some((k, v?))));
    assert_eq!(d.next_due(), Some(Timestamp(7 * H * S)));
    d.notify(note("B", "b", "warning", NoteKind::Resolved, 2, H), &[]);
    d.notify(note("A", "a", "critical", NoteKind::Escalated, 2, 2 * H), &[]);
    assert!(flush(&mut d, H, &[]).is_empty());
    assert!(flush(&mut d, 7 * H - 1, &[]).is_empty());
    // The state at the end of the night: A fires at critical; B resolved unseen, so nothing.
    let out = flush(&mut d, 7 * H, &[]);
    assert_eq!(summary(&out), vec![s("page", &["A/a firing"])]);
    assert_eq!(out[0].alerts[0].severity, "critical");
    assert_eq!(d.next_due(), None);
    // The next night (midnight CEST is 22:00 UTC): a resolve of a notified firing is held,
    // then sent.
    d.notify(note("A", "a", "critical", NoteKind::Resolved, 3, 23 * H + 60), &[]);
    assert!(flush(&mut d, 23 * H + 60, &[]).is_empty());
    assert_eq!(d.next_due(), Some(Timestamp(31 * H * S)));
    assert_eq!(summary(&flush(&mut d, 31 * H, &[])), vec![s("page", &["A/a resolved"])]);
}

#[test]
fn a_reload_that_unmutes_a_route_releases_what_it_held() {
    let always = "time_intervals:\n  - name: maintenance\n    time_intervals: [{}]\n";
    let muted = format!("{TWO}{always}routes:\n  - receivers: [page]\n    mute_time_intervals: [maintenance]\n");
    let mut d = Dispatcher::new(&files(&muted));
    d.notify(note("A", "a", "warning", NoteKind::Firing, 1, 0), &[]);
    d.notify(note("B", "b", "warning", NoteKind::Firing, 1, 0), &[]);
    assert!(flush(&mut d, 0, &[]).is_empty());
    assert_eq!(d.next_due(), None, "a period without end is no timer");
    d.notify(note("B", "b", "warning", NoteKind::Resolved, 2, 10), &[]);
    assert!(flush(&mut d, 10, &[]).is_empty());
    // The same route without the muting: its groups go on, and send what they hold.
    d.replace(&files(&format!("{TWO}{always}routes:\n  - receivers: [page]\n")));
    assert_eq!(d.next_due(), Some(Timestamp(0)));
    assert_eq!(summary(&flush(&mut d, 20, &[])), vec![s("page", &["A/a firing"])]);
    // An active interval that no longer contains now mutes again.
    let active = format!(
        "{TWO}time_intervals:\n  - name: never\n    time_intervals: [{{ years: ['1999'] }}]\nroutes:\n  - receivers: [page]\n    active_time_intervals: [never]\n"
    );
    d.replace(&files(&active));
    d.notify(note("A", "a", "warning", NoteKind::Resolved, 2, 30), &[]);
    assert!(flush(&mut d, 30, &[]).is_empty());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 150, ..ProptestConfig::default() })]

    /// The guarantees hold with every route muted for a while each day, nothing a muted route
    /// holds goes out while it is muted, and a run split and restored anywhere (held groups
    /// included) sends the same.
    #[test]
    fn time_muted_routes_lose_nothing_and_send_nothing_while_muted(
        sc in scenario(),
        (from, len) in (0..40i64, 1..40i64),
        active in any::<bool>(),
        split in any::<prop::sample::Index>(),
    ) {
        let (start, end) = (from, (from + len).min(59));
        prop_assume!(start < end);
        let key = if active { "active_time_intervals" } else { "mute_time_intervals" };
        let yaml = sc.yaml.replace("  - receivers: [", &format!("  - {key}: [quiet]\n    receivers: ["))
            + &format!("time_intervals:\n  - name: quiet\n    time_intervals: [{{ times: [{{ start_time: '00:{start:02}', end_time: '00:{end:02}' }}] }}]\n");
        let f = files(&yaml);
        let out = drive(&f, &sc.script, &sc.silences, None, None, sc.end);
        if let Err(e) = check_guarantees(&out, &sc.send_resolved) {
            return Err(TestCaseError::fail(format!("{e}\n{yaml}")));
        }
        for d in out.iter().filter(|d| !d.group_key.starts_with("{}/notify")) {
            let minute = d.at.0.rem_euclid(86_400 * S) / (60 * S);
            let inside = start <= minute && minute < end;
            prop_assert!(inside == active, "sent at {} while muted: {:?}\n{}", d.at, d, yaml);
        }
        let split = split.index(sc.script.len());
        prop_assert_eq!(drive(&f, &sc.script, &sc.silences, Some(split), None, sc.end), out);
    }
}

#[test]
fn an_acknowledgement_reaches_the_receivers_told_it_fires_named_on_the_copy_they_render() {
    let yaml = format!("{TWO}routes:\n  - receivers: [page]\n");
    let mut d = Dispatcher::new(&files(&yaml));
    d.notify(note("A", "a", "warning", NoteKind::Firing, 1, 0), &[]);
    flush(&mut d, 0, &[]);
    d.notify(note("A", "a", "warning", NoteKind::Acknowledged, 2, 10), &[]);
    let out = flush(&mut d, 10, &[]);
    assert_eq!(summary(&out), vec![s("page", &["A/a acknowledged"])]);
    assert_eq!(out[0].alerts[0].kind, NoteKind::Acknowledged);
    assert_eq!(out[0].alerts[0].status, Status::Firing);
    // It is no state: the next change is named against the firing receivers were told.
    d.notify(note("A", "a", "critical", NoteKind::Escalated, 3, 20), &[]);
    assert_eq!(summary(&flush(&mut d, 20, &[])), vec![s("page", &["A/a escalated"])]);
    // An alert no group holds makes no news.
    d.notify(note("B", "b", "warning", NoteKind::Acknowledged, 1, 30), &[]);
    assert!(flush(&mut d, 30, &[]).is_empty());
}
