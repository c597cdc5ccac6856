#!/usr/bin/env python3
"""Memory per live series, and whether it is returned when the series die (promise:
<= 1 KiB a series, returned), next to Prometheus' head (~3-4 KiB a series).

tocsin: `tocsin run` with no rules and no host source, `staleness: STALE`. RSS (VmRSS,
RssAnon) is read once ready, then N series `bench_series{series="s000000"..}` are pushed
(bodies of 10,000 samples, twice, one second apart) and RSS read again once
`tocsin_series` says N; then nothing is pushed until the sweep has removed them
(`tocsin_series` back to 0) and RSS is read a third time.
Prometheus: scraping a target on 127.0.0.1 that serves the same N series every
second (and, for the baseline, a Prometheus scraping nothing), RSS read SCRAPES seconds
after its head first holds all N.

Usage: series-memory.py [--series 100000] [--stale 10] [--peer] [--json FILE]
"""

from __future__ import annotations

import argparse
import http.client
import json
import re
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import dbench as d  # noqa: E402

CHUNK = 10_000


def bodies(n: int, v: int) -> list[bytes]:
    return ["".join(f'bench_series{{series="s{k:06d}"}} {v}\n' for k in range(i, min(n, i + CHUNK))).encode()
            for i in range(0, n, CHUNK)]


def series_gauge(port: int) -> float:
    """Series alive, summed over the sources (a source without series has no line)."""
    m = d.get(port, "/metrics").decode()
    return sum(float(v) for v in re.findall(r"^tocsin_series(?:\{[^}]*\})? (\S+)$", m, re.M))


def wait_series(port: int, want: float, timeout: float) -> float:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        got = series_gauge(port)
        if got == want:
            return time.monotonic() - t0
        time.sleep(0.5)
    raise RuntimeError(f"tocsin_series never reached {want} in {timeout:.0f} s (last {series_gauge(port)})")


def mem(pid: int) -> dict:
    return {k: d.status_kib(pid, k) for k in ("VmRSS", "RssAnon", "VmHWM")}


def tocsin(tmp: Path, n: int, stale: int) -> dict:
    (tmp / "rules").mkdir()
    (tmp / "receivers").mkdir()
    (tmp / "receivers" / "r.yaml").write_text("receivers:\n  - name: console\n    console: {}\nroutes: []\n")
    port = d.free_port()
    cfg = tmp / "tocsin.yaml"
    d.write_config(cfg, rules=[str(tmp / "rules")], receivers=[str(tmp / "receivers")], data_dir=tmp / "data",
                   port=port, sources=f"{{ system: ~, push: {{ enabled: true, max_body: 4MiB, max_series: {2 * n} }} }}",
                   extra=f"staleness: {stale}s")
    p = d.start_daemon(cfg, tmp / "tocsin.log", port)
    try:
        time.sleep(1.0)
        empty = mem(p.pid)
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        for v in (1, 2):
            for b in bodies(n, v):
                c.request("POST", "/api/v1/push", b, {"Content-Type": "text/plain"})
                r = c.getresponse()
                doc = json.loads(r.read())
                assert r.status == 200 and doc["accepted"] == b.count(b"\n"), doc
            time.sleep(1.0)
        c.close()
        wait_series(port, n, 30)
        live = mem(p.pid)
        # The sweep runs every staleness/2 (1-15 s) and removes series stale past it.
        took = wait_series(port, 0, 4 * stale + 30)
        time.sleep(1.0)
        dead = mem(p.pid)
        return {"empty": empty, "live": live, "dead": dead, "sweep_s": took,
                "bytes_per_series": (live["VmRSS"] - empty["VmRSS"]) * 1024 / n,
                "anon_bytes_per_series": (live["RssAnon"] - empty["RssAnon"]) * 1024 / n,
                "kept_after_death_bytes_per_series": (dead["VmRSS"] - empty["VmRSS"]) * 1024 / n}
    finally:
        d.stop(p)


def prometheus(tmp: Path, n: int, scrapes: int) -> dict:
    body = b"".join(bodies(n, 1))
    out = {}
    for label, with_target in (("empty", False), ("live", True)):
        sub = tmp / label
        sub.mkdir()
        target = d.MetricsTarget(lambda: body) if with_target else None
        port = d.free_port()
        p = d.start_prometheus(sub, port, target_port=target.port if target else None, rule_file=None)
        try:
            if with_target:
                d.wait_scraped(port, "bench_series", n)
            time.sleep(scrapes)
            out[label] = mem(p.pid)
        finally:
            d.stop(p)
            if target:
                target.close()
    out["bytes_per_series"] = (out["live"]["VmRSS"] - out["empty"]["VmRSS"]) * 1024 / n
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--series", type=int, default=100_000)
    ap.add_argument("--stale", type=int, default=10, help="tocsin's staleness, seconds")
    ap.add_argument("--scrapes", type=int, default=20, help="seconds Prometheus scrapes (every 1 s) once it holds every series, before RSS is read")
    ap.add_argument("--peer", action="store_true", help="also measure Prometheus")
    ap.add_argument("--json", type=Path)
    a = ap.parse_args()
    print(f"== memory per live series: {a.series:,} pushed series ==")
    print(d.machine())
    res = {}
    with tempfile.TemporaryDirectory(prefix="tocsin-series-") as tmp:
        t = tocsin(Path(tmp), a.series, a.stale)
    res["tocsin"] = t
    mib = lambda k: k / 1024  # noqa: E731
    print(f"tocsin: VmRSS empty {mib(t['empty']['VmRSS']):.1f} MiB, live {mib(t['live']['VmRSS']):.1f} MiB, "
          f"after the sweep ({t['sweep_s']:.0f} s) {mib(t['dead']['VmRSS']):.1f} MiB; "
          f"{t['bytes_per_series']:.0f} B per series (RssAnon {t['anon_bytes_per_series']:.0f} B), "
          f"{t['kept_after_death_bytes_per_series']:.0f} B per series still held once they died")
    if a.peer:
        with tempfile.TemporaryDirectory(prefix="tocsin-series-prom-") as tmp:
            pr = prometheus(Path(tmp), a.series, a.scrapes)
        res["prometheus"] = pr
        print(f"Prometheus: VmRSS empty {mib(pr['empty']['VmRSS']):.1f} MiB, live {mib(pr['live']['VmRSS']):.1f} MiB: "
              f"{pr['bytes_per_series']:.0f} B per series")
    res["load_end"] = d.loadavg()
    print(f"load at end: {res['load_end']}")
    if a.json:
        d.dump(a.json, res)


if __name__ == "__main__":
    main()
