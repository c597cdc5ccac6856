#!/usr/bin/env python3
"""Idle footprint: `tocsin run` (default rules/receivers, host metrics every second) next
to `monit -I` (`set daemon 1`, system + root filesystem checks), same period.

Per repetition: start both fresh, warm up WARMUP s, then for DURATION s sample each
process's VmRSS every second and its utime+stime at start and end. CPU % is of one core.
Usage: idle_vs_monit.py [--reps 3] [--warmup 10] [--duration 60] [--json FILE]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import dbench as d  # noqa: E402

MONITRC = """\
set daemon 1
set logfile {tmp}/monit.log
set idfile {tmp}/monit.id
set statefile {tmp}/monit.state
set pidfile {tmp}/monit.pid
check system localhost
    if loadavg (1min) > 16 then alert
    if loadavg (5min) > 8 then alert
    if memory usage > 90% then alert
    if swap usage > 50% then alert
    if cpu usage > 95% for 10 cycles then alert
check filesystem root with path /
    if space usage > 90% then alert
    if inode usage > 90% then alert
"""


def one(tmp: Path, warmup: float, duration: float) -> dict:
    port = d.free_port()
    data = tmp / "data"
    cfg = tmp / "tocsin.yaml"
    d.write_config(cfg, rules=[str(d.REPO / "rules")], receivers=[str(d.REPO / "receivers")],
                   data_dir=data, port=port, sources="{ system: { interval: 1s } }")
    rc = tmp / "monitrc"
    rc.write_text(MONITRC.format(tmp=tmp))
    os.chmod(rc, 0o600)
    load_before = d.loadavg()
    t = d.start_daemon(cfg, tmp / "tocsin.log", port)
    m = subprocess.Popen(["monit", "-I", "-c", str(rc)], stdout=open(tmp / "monit.out", "wb"),
                         stderr=subprocess.STDOUT)
    try:
        time.sleep(warmup)
        for p, name in ((t, "tocsin"), (m, "monit")):
            if p.poll() is not None:
                raise RuntimeError(f"{name} exited early ({p.returncode}); see {tmp}")
        procs = {"tocsin": t.pid, "monit": m.pid}
        start_ticks = {k: d.ticks(v) for k, v in procs.items()}
        rss = {k: [] for k in procs}
        tk = {k: [] for k in procs}
        w0 = time.monotonic()
        nxt = w0
        while True:
            for k, pid in procs.items():
                rss[k].append(d.status_kib(pid))
                tk[k].append(d.ticks(pid)[0])
            nxt += 1.0
            if nxt - w0 > duration:
                break
            time.sleep(max(0.0, nxt - time.monotonic()))
        time.sleep(max(0.0, w0 + duration - time.monotonic()))
        wall = time.monotonic() - w0
        end_ticks = {k: d.ticks(v) for k, v in procs.items()}
        for k, pid in procs.items():
            rss[k].append(d.status_kib(pid))
        res = {"wall_s": wall, "load_before": load_before, "load_after": d.loadavg()}
        for k in procs:
            own = end_ticks[k][0] - start_ticks[k][0]
            kids = end_ticks[k][1] - start_ticks[k][1]
            res[k] = {
                "cpu_pct": 100.0 * own / d.CLK_TCK / wall,
                "children_cpu_pct": 100.0 * kids / d.CLK_TCK / wall,
                "rss_max_mib": max(rss[k]) / 1024,
                "rss_end_mib": rss[k][-1] / 1024,
                "hwm_mib": d.status_kib(procs[k], "VmHWM") / 1024,
                "anon_end_mib": d.status_kib(procs[k], "RssAnon") / 1024,
                # CPU % per 10 s window (ticks sampled every second)
                "cpu_10s": [100.0 * (tk[k][min(j + 10, len(tk[k]) - 1)] - tk[k][j]) / d.CLK_TCK / 10
                            for j in range(0, len(tk[k]) - 1, 10)],
            }
        return res
    finally:
        for p in (m, t):
            d.stop(p)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--warmup", type=float, default=10)
    ap.add_argument("--duration", type=float, default=60)
    ap.add_argument("--json", type=Path, help="write the figures here (for bench/peers.sh)")
    a = ap.parse_args()
    print("== idle footprint: tocsin run vs monit -I ==")
    print(d.machine())
    print(f"monit:   {d.sh('monit -V | head -1')}")
    print(f"plan:    {a.reps} reps x ({a.warmup:.0f} s warm-up + {a.duration:.0f} s measured), both at once")
    runs = []
    for i in range(a.reps):
        with tempfile.TemporaryDirectory(prefix="tocsin-idle-") as tmp:
            r = one(Path(tmp), a.warmup, a.duration)
        runs.append(r)
        print(f"rep {i + 1}: load {r['load_before']} -> {r['load_after']}  wall {r['wall_s']:.1f} s")
        for k in ("tocsin", "monit"):
            x = r[k]
            print(f"  {k:6} CPU {x['cpu_pct']:.3f} % (children {x['children_cpu_pct']:.3f} %)  "
                  f"RSS max {x['rss_max_mib']:.2f} MiB  end {x['rss_end_mib']:.2f} MiB  HWM {x['hwm_mib']:.2f} MiB")
            print(f"         CPU % per 10 s window: {' '.join(f'{c:.2f}' for c in x['cpu_10s'])}")
    print("summary: median [min .. max]")
    for k in ("tocsin", "monit"):
        for f, label in (("cpu_pct", "CPU % of one core"), ("rss_max_mib", "RSS max MiB"),
                         ("rss_end_mib", "RSS end MiB"), ("hwm_mib", "VmHWM MiB")):
            print(f"  {k:6} {label:18} {d.summary([r[k][f] for r in runs], '{:.3f}' if f == 'cpu_pct' else '{:.2f}')}")
    t_rss = max(r["tocsin"]["rss_max_mib"] for r in runs)
    t_cpu = sorted(r["tocsin"]["cpu_pct"] for r in runs)[len(runs) // 2]
    m_cpu = sorted(r["monit"]["cpu_pct"] for r in runs)[len(runs) // 2]
    print(f"target RSS <= 10 MiB (worst rep max {t_rss:.2f} MiB): {'MET' if t_rss <= 10 else 'NOT MET'}")
    print(f"target CPU <= monit (median {t_cpu:.3f} % vs {m_cpu:.3f} %): {'MET' if t_cpu <= m_cpu else 'NOT MET'}")
    print(f"load at end: {d.loadavg()}")
    if a.json:
        d.dump(a.json, {"tocsin_rss_max_mib": t_rss, "tocsin_cpu_pct": t_cpu, "monit_cpu_pct": m_cpu,
                        "monit_rss_max_mib": max(r["monit"]["rss_max_mib"] for r in runs),
                        "tocsin_anon_end_mib": max(r["tocsin"]["anon_end_mib"] for r in runs),
                        "runs": runs, "load_end": d.loadavg()})


if __name__ == "__main__":
    main()
