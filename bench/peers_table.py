#!/usr/bin/env python3
"""The table of bench/peers.sh: every row's figure beside its peer's, its promise and
whether it holds, read from the JSON each row's script wrote into DIR.

Usage: peers_table.py DIR [--quick]    (Python 3.11, standard library only)
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path


def load(d: Path, name: str):
    p = d / f"{name}.json"
    return json.loads(p.read_text()) if p.exists() else None


def main(argv: list[str]) -> int:
    d = Path(argv[0])
    quick = "--quick" in argv[1:]
    rows: list[tuple[str, str, str, str, bool | None, str]] = []

    def add(work, tocsin, peer, promise, holds, name):
        load_ = load(d, f"{name}.load")
        rows.append((work, tocsin, peer, promise, holds, f"{load_['before']} -> {load_['after']}" if load_ else "?"))

    c = load(d, "check")
    if c:
        s, r = c["summary"], c["ratios"]
        for what in ("check", "test"):
            k = f"promtool {what} / tocsin {what}"
            if k in r:
                add(f"`{what}`, 1,000 rules", f"{s[f'tocsin {what}']['mean_s'] * 1000:.1f} ms",
                    f"promtool {s[f'promtool {what}']['mean_s'] * 1000:.0f} ms",
                    ">= 10x faster", r[k]["mean"] >= 10, "check")
                rows[-1] = rows[-1][:1] + (f"{rows[-1][1]} ({r[k]['mean']:.1f}x)",) + rows[-1][2:]
    i = load(d, "idle")
    if i:
        add("idle RSS, host checks every second", f"{i['tocsin_rss_max_mib']:.1f} MiB (heap {i['tocsin_anon_end_mib']:.1f})",
            f"monit {i['monit_rss_max_mib']:.1f} MiB", "<= 10 MiB", i["tocsin_rss_max_mib"] <= 10, "idle")
        add("idle CPU, host checks every second", f"{i['tocsin_cpu_pct']:.3f} %", f"monit {i['monit_cpu_pct']:.3f} %",
            "<= monit's", i["tocsin_cpu_pct"] <= i["monit_cpu_pct"], "idle")
    m = load(d, "rules")
    if m:
        peer = m["prometheus_rss_mib_per_1000_rules"]
        add("memory per 1,000 rules", f"+{m['tocsin_rss_mib_per_1000_rules']:.2f} MiB (heap +{m['tocsin_anon_mib_per_1000_rules']:.2f})",
            f"Prometheus +{peer:.1f} MiB" if peer is not None else "-", "<= +2 MiB",
            m["tocsin_rss_mib_per_1000_rules"] <= 2, "rules")
    v = load(d, "delivery")
    if v:
        t, am = v["tocsin"], v["alertmanager"]
        am_lat = am.get("latency")
        add("transition -> webhook, group_wait 0, durable",
            f"p99 {t['latency']['p99_ms']:.2f} ms (median {t['latency']['median_ms']:.2f})",
            f"Alertmanager p99 {am_lat['p99_ms']:.2f} ms (median {am_lat['median_ms']:.2f}), not durable" if am_lat else am.get("skipped", "-"),
            "p99 <= 2 ms", t["latency"]["p99_ms"] <= 2, "delivery")
        b = t["burst"]
        amb = am.get("burst")
        add(f"{b['n']:,} alerts crossing at once, durable",
            f"{b['per_s_from_evaluation']:,.0f}/s, peak RSS {b['peak_rss_mib']:.0f} MiB",
            f"Alertmanager {amb['per_s_from_post']:,.0f}/s, peak RSS {amb['peak_rss_mib']:.0f} MiB" if amb else am.get("skipped", "-"),
            ">= 10,000/s, peak RSS <= 64 MiB", b["per_s_from_evaluation"] >= 10_000 and b["peak_rss_mib"] <= 64, "delivery")
        r = t["at_rest"]
        add("memory per firing routed alert at rest", f"{r['bytes_per_alert']:,.0f} B (RssAnon, allocator included)", "-",
            "<= 1 KiB", r["bytes_per_alert"] <= 1024, "delivery")
        cap = v["sink_capacity_per_s"]
        enough = cap >= 2 * b["per_s_from_evaluation"]
        add("webhook sink's own capacity", f"{cap:,.0f} requests/s", "-", ">= 2x the fastest rate measured",
            enough, "delivery")
    h = d / "heap.log"
    if h.exists():
        text = h.read_text()
        m_alert = re.search(r"heap per firing routed alert at rest \(\d+ alerts\): (\d+) B", text)
        m_rules = re.search(r"rule set \d+ B \((\d+) B/rule\), engine .*? (\d+) B \((\d+) B/rule\)", text)
        m_series = re.search(r"heap per live series: (\d+) B; (\d+) B per series still held", text)
        if m_alert:
            b = int(m_alert.group(1))
            add("heap per firing routed alert at rest (counted)", f"{b:,} B", "-", "<= 1 KiB", b <= 1024, "heap")
        if m_rules:
            per_rule = int(m_rules.group(1)) + int(m_rules.group(3))
            add("heap per 1,000 rules with their instances (counted)", f"{per_rule * 1000 / 1048576:.2f} MiB",
                "-", "<= 2 MiB (of RSS)", per_rule * 1000 <= 2 * 1048576, "heap")
        if m_series:
            live, kept = int(m_series.group(1)), int(m_series.group(2))
            add("heap per live series in the store (counted)", f"{live:,} B ({kept:,} B kept once swept)", "-",
                "<= 1 KiB, returned", live <= 1024 and kept <= live / 10, "heap")
    s = load(d, "series")
    if s:
        t = s["tocsin"]
        pr = s.get("prometheus")
        live = t["bytes_per_series"]
        kept = t["kept_after_death_bytes_per_series"]
        # Returned: once the series are swept, at most a tenth of what they took stays.
        add("memory per live series, returned when it dies",
            f"{live:,.0f} B ({kept:,.0f} B kept once swept)",
            f"Prometheus {pr['bytes_per_series']:,.0f} B" if pr else "-",
            "<= 1 KiB, returned", live <= 1024 and kept <= live / 10, "series")

    print("== the promises, side by side with the peers" + (" (--quick: plumbing only, not figures)" if quick else ""))
    head = ("work", "tocsin", "peer, same run", "promise", "holds", "load (1/5/15) before -> after")
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for work, tocsin, peer, promise, holds, ld in rows:
        verdict = "yes" if holds else ("**no**" if holds is not None else "?")
        print(f"| {work} | {tocsin} | {peer} | {promise} | {verdict} | {ld} |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
