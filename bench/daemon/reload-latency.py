#!/usr/bin/env python3
"""Hot-reload latency of `tocsin run` with 100 and 1,000 rule files (one rule each).

Each file holds one group (`interval: 1s`) with one alert on a pushed series. After the
daemon is up and has evaluated, one file is rename-saved with a changed alert name (temp
file in the same directory, not matching *.yaml, then os.replace) and
GET /api/v1/rules is polled every 10 ms until the new name is listed (t_visible) and
until it is listed with a `last_evaluation` at or after the save (t_evaluated).

t_visible  = file-watch debounce (200 ms in src/daemon.rs) + re-reading/validating every
             file + swapping the policy.
t_evaluated adds the wait for the group's next aligned tick (uniform in [0, 1 s) at
             `interval: 1s`; last_evaluation is the aligned tick time, so the first tick
             at or after the save counts).
Usage: reload-latency.py [--reps 10] [--sizes 100,1000]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import dbench as d  # noqa: E402


def rule_file(i: int, name: str) -> str:
    return (
        "groups:\n"
        f"  - name: g{i:04d}\n"
        "    interval: 1s\n"
        "    rules:\n"
        f"      - alert: {name}\n"
        "        expr: synth_cpu_percent\n"
        f"        select: {{ instance: host-{i % 300:03d} }}\n"
        "        tiers: [{ severity: warning, above: 1000 }]\n"
    )


def push(port: int) -> None:
    import http.client

    body = "".join(f'synth_cpu_percent{{instance="host-{k:03d}"}} {k % 100}\n' for k in range(300)).encode()
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.request("POST", "/api/v1/push", body, {"Content-Type": "text/plain"})
    r = c.getresponse()
    r.read()
    c.close()


def find(port: int, name: str) -> tuple[bool, float | None]:
    """(listed, last_evaluation as unix seconds or None)."""
    doc = json.loads(d.get(port, "/api/v1/rules", timeout=60))
    for g in doc["groups"]:
        for r in g["rules"]:
            if r["name"] == name:
                le = r["last_evaluation"]
                if le is None:
                    return True, None
                return True, datetime.fromisoformat(le.replace("Z", "+00:00")).timestamp()
    return False, None


def run_size(n: int, reps: int, tmp: Path) -> dict:
    rules = tmp / "rules"
    rules.mkdir()
    names = {i: f"Rule{i:04d}" for i in range(n)}
    for i in range(n):
        (rules / f"r{i:04d}.yaml").write_text(rule_file(i, names[i]))
    recv = tmp / "receivers"
    recv.mkdir()
    (recv / "r.yaml").write_text("receivers:\n  - name: console\n    console: {}\nroutes: []\n")
    port = d.free_port()
    cfg = tmp / "tocsin.yaml"
    d.write_config(cfg, rules=[str(rules)], receivers=[str(recv)], data_dir=tmp / "data", port=port,
                   sources="{ system: ~ }")
    p = d.start_daemon(cfg, tmp / "tocsin.log", port, wait=120)
    vis, ev, loads, cpu = [], [], [], []
    rng = random.Random(n)
    try:
        push(port)
        c0 = d.ticks(p.pid)[0]
        time.sleep(2.5)  # first evaluations
        print(f"  n={n:5} daemon CPU before the first save: {100.0 * (d.ticks(p.pid)[0] - c0) / d.CLK_TCK / 2.5:.1f} %")
        for rep in range(reps):
            i = rng.randrange(n)
            new = f"Renamed{i:04d}x{rep}"
            tmpf = rules / f".r{i:04d}.yaml.tmp"
            tmpf.write_text(rule_file(i, new))
            loads.append(d.loadavg())
            t_save = time.time()
            m_save = time.monotonic()
            os.replace(tmpf, rules / f"r{i:04d}.yaml")
            t_vis = t_ev = None
            deadline = m_save + 30
            while time.monotonic() < deadline:
                listed, le = find(port, new)
                now = time.monotonic() - m_save
                if listed and t_vis is None:
                    t_vis = now
                # last_evaluation has millisecond resolution; the save instant is truncated too.
                if listed and le is not None and le >= int(t_save * 1000) / 1000:
                    t_ev = now
                    break
                time.sleep(0.010)
            if t_ev is None:
                raise RuntimeError(f"n={n} rep {rep}: {new} not evaluated within 30 s (visible: {t_vis})")
            vis.append(t_vis * 1000)
            ev.append(t_ev * 1000)
            print(f"  n={n:5} rep {rep + 1:2}: visible {t_vis * 1000:7.1f} ms  evaluated {t_ev * 1000:7.1f} ms  "
                  f"load {loads[-1]}", flush=True)
            names[i] = new
            push(port)
            c0, w0 = d.ticks(p.pid)[0], time.monotonic()
            time.sleep(1.0 + rng.random())  # de-phase the next save from the 1 s ticks
            cpu.append(100.0 * (d.ticks(p.pid)[0] - c0) / d.CLK_TCK / (time.monotonic() - w0))
            print(f"           daemon CPU between saves: {cpu[-1]:.1f} %", flush=True)
        return {"n": n, "visible_ms": vis, "evaluated_ms": ev, "loads": loads, "cpu": cpu}
    finally:
        d.stop(p)


def fmt(xs: list[float]) -> str:
    return (f"median {statistics.median(xs):7.1f}  p90 {d.pct(xs, 0.9):7.1f}  max {max(xs):7.1f}  "
            f"min {min(xs):7.1f} ms (n={len(xs)})")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--sizes", default="100,1000")
    a = ap.parse_args()
    print("== reload latency: rename-save of one rule file, tocsin run ==")
    print(d.machine())
    res = []
    for n in (int(x) for x in a.sizes.split(",")):
        with tempfile.TemporaryDirectory(prefix="tocsin-reload-") as tmp:
            res.append(run_size(n, a.reps, Path(tmp)))
    print("summary (p90 = nearest rank):")
    for r in res:
        print(f"  {r['n']:5} files  new name listed:           {fmt(r['visible_ms'])}")
        print(f"  {r['n']:5} files  listed and evaluated after: {fmt(r['evaluated_ms'])}")
        print(f"  {r['n']:5} files  daemon CPU % between saves: {d.summary(r['cpu'], '{:.1f}')}")
    print(f"load at end: {d.loadavg()}")


if __name__ == "__main__":
    main()
