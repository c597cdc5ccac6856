//! Hostile ingestion against the real daemon on 127.0.0.1: a burst of junk series cannot
//! exhaust a source's `max_series` for good, and samples from the far future or from the
//! past of a series are refused with a reason instead of freezing it.

use crate::common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::*;

const S10: Duration = Duration::from_secs(10);

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as i64
}

#[test]
fn junk_series_go_stale_and_free_the_budget() {
    let env = Env::new(
        // Long enough that the ten pushes below end before the first one's series go stale,
        // also on a loaded machine.
        "staleness: 6s\n",
        Some("sources:\n  push: { enabled: true, max_body: 16MiB, max_series: 1000 }\n"),
        &rules_file("      - alert: LegitHigh\n        expr: legit_value > 5\n"),
    );
    let d = env.spawn(&[]);
    // 100,000 junk series in 10 pushes: 1,000 are accepted, the rest refused (budget).
    let mut refused = 0;
    for chunk in 0..10 {
        let body: String = (0..10_000).map(|i| format!("junk{{id=\"{chunk}-{i}\"}} 1\n")).collect();
        let r = d.push(&body);
        assert_eq!(r.status, 200, "{}", r.body);
        refused += r.json()["refused_by_reason"]["budget"].as_u64().unwrap();
    }
    assert_eq!(refused, 99_000);
    assert_eq!(d.metric("tocsin_series{source=\"push\"}"), Some(1000.0));
    // While the junk is fresh, a legitimate new series is refused too.
    let r = d.push("legit_value 10\n");
    assert_eq!(r.json()["refused_by_reason"]["budget"], 1, "{}", r.body);
    // Once it is stale (6 s, no rule window reads it) the sweep (every 3 s) removes it.
    let dropped = wait_for(S10 + S10, || {
        d.metric("tocsin_series{source=\"push\"}").filter(|n| *n == 0.0)
    });
    assert!(dropped.is_some(), "{}", d.get("/metrics").body);
    let r = d.push("legit_value 10\n");
    assert_eq!(
        (r.json()["accepted"].as_u64(), r.json()["refused"].as_u64()),
        (Some(1), Some(0)),
        "{}",
        r.body
    );
    d.wait_alert("LegitHigh", "firing", S10);
    assert_eq!(d.metric("tocsin_series{source=\"push\"}"), Some(1.0));
    assert_eq!(
        d.metric("tocsin_samples_refused_total{source=\"push\",reason=\"budget\"}"),
        Some(99_001.0)
    );
}

#[test]
fn future_and_out_of_order_samples_are_refused_and_the_series_keeps_updating() {
    let env = Env::new(
        "",
        Some("sources:\n  push: { enabled: true }\n"),
        &rules_file("      - alert: FrozenHigh\n        expr: frozen_value > 5\n"),
    );
    let d = env.spawn(&[]);
    let fifty_years = 50 * 365 * 24 * 3_600_000i64;
    for t in [i64::MAX, now_ms() + fifty_years] {
        let r = d.push(&format!("frozen_value 100 {t}\n"));
        assert_eq!(r.status, 200, "{}", r.body);
        let j = r.json();
        assert_eq!(
            (j["accepted"].as_u64(), j["refused"].as_u64()),
            (Some(0), Some(1)),
            "{j}"
        );
        assert_eq!(j["refused_by_reason"]["future"], 1, "{j}");
    }
    // Later normal samples of that series are stored and drive the alert both ways.
    let r = d.push("frozen_value 10\n");
    assert_eq!(r.json()["accepted"], 1, "{}", r.body);
    d.wait_alert("FrozenHigh", "firing", S10);
    let r = d.push("frozen_value 1\n");
    assert_eq!(r.json()["accepted"], 1, "{}", r.body);
    let resolved = wait_for(S10, || {
        d.alerts().iter().all(|a| a["alertname"] != "FrozenHigh").then_some(())
    });
    assert!(resolved.is_some(), "{:?}", d.alerts());
    // A sample older than the series' newest is refused too, never counted as accepted.
    let r = d.push(&format!("frozen_value 50 {}\n", now_ms() - 60_000));
    let j = r.json();
    assert_eq!(
        (j["accepted"].as_u64(), j["refused_by_reason"]["out_of_order"].as_u64()),
        (Some(0), Some(1)),
        "{j}"
    );
    assert_eq!(
        d.metric("tocsin_samples_refused_total{source=\"push\",reason=\"future\"}"),
        Some(2.0)
    );
    assert_eq!(
        d.metric("tocsin_samples_refused_total{source=\"push\",reason=\"out_of_order\"}"),
        Some(1.0)
    );
    assert_eq!(d.metric("tocsin_samples_ingested_total{source=\"push\"}"), Some(2.0));
}
