#!/usr/bin/env python3
"""Memory per 1,000 rules: RSS of `tocsin run` (no host source) holding 300 pushed series
synth_cpu_percent{instance="host-000".."host-299"}, with (a) no rules and (b) the 1,000
alert rules of bench/gen_workload.py (each selects one instance, one tier; generated here
with the same scheme but `interval: 1s` so that ~20 evaluations happen in the run).

Per repetition and variant: a fresh daemon; push all 300 values every second for PUSH_S
seconds (values (k*37)%100 as in gen_workload.py, so instances bind, go pending and the
`page` tier fires); then read VmRSS, RssAnon and VmHWM. Variants alternate.
A control variant (0) "no rules, nothing pushed" shows the empty daemon; diagnostic
variants (c) (b) without annotation templates and (d) 1,000 rules, nothing pushed (no
data yet; each rule's instance is bound from its `select` all the same) split the cost
between templates and the rest; (e) one rule, 300 series pushed, shows what having rules
at all costs (the code that parses, compiles and evaluates rules, faulted in once, and
the allocator's first arenas), so that (b) - (e) is what the 999 further rules add.
RSS is read before any API call (their answers allocate).
The peer (--peer): Debian's Prometheus scraping the same 300 series every second from a
target on 127.0.0.1, (pa) without rules and (pb) with the same 1,000 rules
(bench/gen_workload.py's Prometheus file, evaluated every second), read the same way.
Usage: memory_per_rules.py [--reps 3] [--push-seconds 20] [--peer] [--json FILE]
"""

from __future__ import annotations

import argparse
import http.client
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import dbench as d  # noqa: E402
import gen_workload  # noqa: E402

N_RULES, N_HOSTS = 1000, 300
TIERS = [("info", 50, "1m"), ("warning", 70, "2m"), ("critical", 90, "1m"), ("page", 95, None)]


def synth_rules(interval: str = "1s", annotations: bool = True, n: int = N_RULES) -> str:
    """bench/gen_workload.py's tocsin_rules() with a shorter group interval (its first n rules)."""
    out = ["groups:", "  - name: synth", f"    interval: {interval}", "    rules:"]
    for i in range(n):
        sev, thr, for_ = TIERS[(i // N_HOSTS) % len(TIERS)]
        tier = f"{{ severity: {sev}, above: {thr}" + (f", for: {for_}" if for_ else "") + " }"
        out += [
            f"      - alert: SynthCpu{i:04d}",
            "        expr: synth_cpu_percent",
            f"        select: {{ instance: host-{i % N_HOSTS:03d} }}",
            f"        tiers: [{tier}]",
        ]
        if annotations:
            out.append('        annotations: { summary: "{{ labels.instance }} CPU at {{ value }}%" }')
    return "\n".join(out) + "\n"


BODY = "".join(f'synth_cpu_percent{{instance="host-{k:03d}"}} {(k * 37) % 100}\n' for k in range(N_HOSTS)).encode()


def one(variant: str, tmp: Path, push_s: float) -> dict:
    rules = tmp / "rules"
    rules.mkdir()
    if variant in ("b", "d"):
        (rules / "synth.yaml").write_text(synth_rules())
    elif variant == "c":
        (rules / "synth.yaml").write_text(synth_rules(annotations=False))
    elif variant == "e":
        (rules / "synth.yaml").write_text(synth_rules(n=1))
    recv = tmp / "receivers"
    recv.mkdir()
    # A receiver with no route target printing nothing: the console receiver would print
    # ~100 firing lines, which is not what is measured here.
    (recv / "r.yaml").write_text("receivers:\n  - name: console\n    console: {}\nroutes: []\n")
    port = d.free_port()
    cfg = tmp / "tocsin.yaml"
    d.write_config(cfg, rules=[str(rules)], receivers=[str(recv)], data_dir=tmp / "data", port=port,
                   sources="{ system: ~ }")
    load_before = d.loadavg()
    p = d.start_daemon(cfg, tmp / "tocsin.log", port)
    try:
        ready_rss = d.status_kib(p.pid) / 1024
        if variant not in ("0", "d"):
            t0 = time.monotonic()
            n = 0
            while time.monotonic() - t0 < push_s:
                # A connection per push: one keep-alive connection pushing every second
                # was, now and then, reset or left unanswered for 10 s (the listener's
                # header timeout) some 10-20 s into a run, which failed the run.
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                c.request("POST", "/api/v1/push", BODY, {"Content-Type": "text/plain", "Connection": "close"})
                r = c.getresponse()
                body = json.loads(r.read())
                c.close()
                assert r.status == 200 and body["accepted"] == N_HOSTS, body
                n += 1
                time.sleep(max(0.0, t0 + n - time.monotonic()))
            time.sleep(1.5)  # at least one more evaluation
        else:
            time.sleep(push_s + 1.5)
        # RSS first: the API answers below allocate (and glibc may keep what they free).
        rss, anon, hwm = (d.status_kib(p.pid, k) / 1024 for k in ("VmRSS", "RssAnon", "VmHWM"))
        rules_json = json.loads(d.get(port, "/api/v1/rules"))
        alerts = json.loads(d.get(port, "/api/v1/alerts"))["alerts"]
        n_rules = sum(len(g["rules"]) for g in rules_json["groups"])
        inst = sum(r["instances"] for g in rules_json["groups"] for r in g["rules"])
        return {
            "variant": variant,
            "load_before": load_before,
            "load_after": d.loadavg(),
            "ready_mib": ready_rss,
            "rss_mib": rss,
            "anon_mib": anon,
            "hwm_mib": hwm,
            "rules": n_rules,
            "instances": inst,
            "firing": sum(a["state"] == "firing" for a in alerts),
            "pending": sum(a["state"] == "pending" for a in alerts),
        }
    finally:
        d.stop(p)


def one_prometheus(variant: str, tmp: Path, push_s: float) -> dict:
    """Prometheus scraping the 300 series, (pa) without rules, (pb) with the 1,000 rules."""
    rule_file = None
    if variant == "pb":
        rule_file = tmp / "rules.yaml"
        rule_file.write_text(gen_workload.prom_rules().replace(
            f"interval: {gen_workload.EVAL_INTERVAL_S}s", "interval: 1s"))
    target = d.MetricsTarget(lambda: BODY)
    load_before = d.loadavg()
    port = d.free_port()
    p = d.start_prometheus(tmp, port, target_port=target.port, rule_file=rule_file)
    try:
        d.wait_scraped(port, "synth_cpu_percent", N_HOSTS)
        time.sleep(push_s + 1.5)
        rss, anon, hwm = (d.status_kib(p.pid, k) / 1024 for k in ("VmRSS", "RssAnon", "VmHWM"))
        return {"variant": variant, "load_before": load_before, "load_after": d.loadavg(),
                "rss_mib": rss, "anon_mib": anon, "hwm_mib": hwm}
    finally:
        d.stop(p)
        target.close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--push-seconds", type=float, default=20)
    ap.add_argument("--diag-reps", type=int, default=1, help="reps of the diagnostic variants (c), (d), (e)")
    ap.add_argument("--peer", action="store_true", help="also measure Prometheus with and without the rules")
    ap.add_argument("--json", type=Path, help="write the figures here (for bench/peers.sh)")
    a = ap.parse_args()
    print("== memory per 1,000 rules: tocsin run, 300 pushed series, no host source ==")
    print(d.machine())
    names = {"0": "(0) no rules, nothing pushed", "a": "(a) no rules, 300 series pushed",
             "b": "(b) 1,000 rules, 300 series pushed",
             "c": "(c) diag: (b) without annotations",
             "d": "(d) diag: 1,000 rules, nothing pushed",
             "e": "(e) diag: 1 rule, 300 series pushed"}
    if a.peer:
        names["pa"] = "(pa) Prometheus, no rules, 300 scraped"
        names["pb"] = "(pb) Prometheus, 1,000 rules, 300 scraped"
    runs: dict[str, list[dict]] = {k: [] for k in names}
    for i in range(a.reps):
        for v in names:
            if v in ("c", "d", "e") and i >= a.diag_reps:
                continue
            with tempfile.TemporaryDirectory(prefix="tocsin-mem-") as tmp:
                if v in ("pa", "pb"):
                    r = one_prometheus(v, Path(tmp), a.push_seconds)
                    runs[v].append(r)
                    print(f"rep {i + 1} {names[v]:36} RSS {r['rss_mib']:.2f} MiB  anon {r['anon_mib']:.2f}  "
                          f"HWM {r['hwm_mib']:.2f}  load {r['load_before']} -> {r['load_after']}")
                    continue
                r = one(v, Path(tmp), a.push_seconds)
            runs[v].append(r)
            print(f"rep {i + 1} {names[v]:36} RSS {r['rss_mib']:.2f} MiB  anon {r['anon_mib']:.2f}  "
                  f"HWM {r['hwm_mib']:.2f}  at-ready {r['ready_mib']:.2f}  rules {r['rules']}  "
                  f"instances {r['instances']}  firing {r['firing']}  pending {r['pending']}  "
                  f"load {r['load_before']} -> {r['load_after']}")
    print("summary: median [min .. max] MiB")
    for v in names:
        if not runs[v]:
            continue
        for f in ("rss_mib", "anon_mib", "hwm_mib"):
            print(f"  {names[v]:36} {f:8} {d.summary([r[f] for r in runs[v]])}")
    diffs = [b["rss_mib"] - x["rss_mib"] for x, b in zip(runs["a"], runs["b"])]
    adiffs = [b["anon_mib"] - x["anon_mib"] for x, b in zip(runs["a"], runs["b"])]
    print(f"(b) - (a), per 1,000 rules, paired by rep: VmRSS {d.summary(diffs)} MiB; RssAnon {d.summary(adiffs)} MiB")
    if runs["e"]:
        ediffs = [b["rss_mib"] - e["rss_mib"] for e, b in zip(runs["e"], runs["b"])]
        eanon = [b["anon_mib"] - e["anon_mib"] for e, b in zip(runs["e"], runs["b"])]
        print(f"(b) - (e), the 999 rules beyond the first: VmRSS {d.summary(ediffs)} MiB; RssAnon {d.summary(eanon)} MiB")
    med = statistics.median(diffs)
    print(f"target <= 2 MiB per 1,000 rules (median {med:.2f} MiB): {'MET' if med <= 2 else 'NOT MET'}")
    peer = None
    if a.peer:
        pdiffs = [b["rss_mib"] - x["rss_mib"] for x, b in zip(runs["pa"], runs["pb"])]
        peer = statistics.median(pdiffs)
        print(f"Prometheus (pb) - (pa), per 1,000 rules, paired by rep: VmRSS {d.summary(pdiffs)} MiB")
    if a.json:
        d.dump(a.json, {"tocsin_rss_mib_per_1000_rules": med, "tocsin_anon_mib_per_1000_rules": statistics.median(adiffs),
                        "prometheus_rss_mib_per_1000_rules": peer, "runs": runs, "load_end": d.loadavg()})
    print(f"load at end: {d.loadavg()}")


if __name__ == "__main__":
    main()
