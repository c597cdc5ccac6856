#!/usr/bin/env python3
"""Sustained push ingestion into `tocsin run` over one HTTP keep-alive connection.

Bodies: 10,000 samples in Prometheus text format, one per series
bench_push{series="s00000".."s09999",job="bench"} (10,000 series), pre-encoded (a few
variants with different values), POSTed back to back for DURATION s. No rules, no host
source (so nothing else competes in the daemon). Reports samples/s accepted, the daemon's
CPU % (utime+stime of one core over the run), the client's own CPU % (process_time), the
daemon's RSS at the end, and tocsin_samples_ingested_total{source="push"} from /metrics,
which must equal the samples the client sent.
Usage: push-ingest.py [--reps 3] [--duration 15]
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

N = 10_000


def bodies() -> list[bytes]:
    out = []
    for v in range(4):
        out.append("".join(f'bench_push{{series="s{k:05d}",job="bench"}} {(k * 7 + v) % 1000}.5\n'
                           for k in range(N)).encode())
    return out


def one(tmp: Path, duration: float, bs: list[bytes]) -> dict:
    rules = tmp / "rules"
    rules.mkdir()
    recv = tmp / "receivers"
    recv.mkdir()
    (recv / "r.yaml").write_text("receivers:\n  - name: console\n    console: {}\nroutes: []\n")
    port = d.free_port()
    cfg = tmp / "tocsin.yaml"
    d.write_config(cfg, rules=[str(rules)], receivers=[str(recv)], data_dir=tmp / "data", port=port,
                   sources="{ system: ~, push: { enabled: true, max_body: 4MiB } }")
    load_before = d.loadavg()
    p = d.start_daemon(cfg, tmp / "tocsin.log", port)
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        sent = accepted = requests = 0
        lat = []
        d0 = d.ticks(p.pid)[0]
        c0 = time.process_time()
        t0 = time.monotonic()
        while time.monotonic() - t0 < duration:
            b = bs[requests % len(bs)]
            r0 = time.monotonic()
            c.request("POST", "/api/v1/push", b, {"Content-Type": "text/plain; version=0.0.4"})
            r = c.getresponse()
            doc = json.loads(r.read())
            lat.append(time.monotonic() - r0)
            if r.status != 200:
                raise RuntimeError(f"push answered {r.status}: {doc}")
            sent += N
            accepted += doc["accepted"]
            requests += 1
        wall = time.monotonic() - t0
        client_cpu = time.process_time() - c0
        daemon_ticks = d.ticks(p.pid)[0] - d0
        c.close()
        m = d.get(port, "/metrics").decode()
        hit = re.search(r'^tocsin_samples_ingested_total\{source="push"\} (\S+)$', m, re.M)
        ingested = float(hit.group(1)) if hit else float("nan")
        return {
            "load_before": load_before,
            "load_after": d.loadavg(),
            "wall_s": wall,
            "requests": requests,
            "sent": sent,
            "accepted": accepted,
            "ingested_metric": ingested,
            "samples_per_s": accepted / wall,
            "daemon_cpu_pct": 100.0 * daemon_ticks / d.CLK_TCK / wall,
            "client_cpu_pct": 100.0 * client_cpu / wall,
            "req_ms_median": sorted(lat)[len(lat) // 2] * 1000,
            "rss_end_mib": d.status_kib(p.pid) / 1024,
            "hwm_mib": d.status_kib(p.pid, "VmHWM") / 1024,
        }
    finally:
        d.stop(p)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--duration", type=float, default=15)
    a = ap.parse_args()
    print("== push ingestion: POST /api/v1/push, 10,000 samples/body across 10,000 series, keep-alive ==")
    print(d.machine())
    bs = bodies()
    print(f"body:    {len(bs[0])} bytes, {N} samples; {a.reps} reps x {a.duration:.0f} s, fresh daemon each")
    runs = []
    for i in range(a.reps):
        with tempfile.TemporaryDirectory(prefix="tocsin-push-") as tmp:
            r = one(Path(tmp), a.duration, bs)
        runs.append(r)
        ok = "OK" if r["ingested_metric"] == r["sent"] == r["accepted"] else "MISMATCH"
        print(f"rep {i + 1}: {r['samples_per_s']:,.0f} samples/s  ({r['requests']} requests, "
              f"median {r['req_ms_median']:.1f} ms/request)  daemon CPU {r['daemon_cpu_pct']:.1f} %  "
              f"client CPU {r['client_cpu_pct']:.1f} %  RSS end {r['rss_end_mib']:.1f} MiB  "
              f"sent {r['sent']} accepted {r['accepted']} metric {r['ingested_metric']:.0f} {ok}  "
              f"load {r['load_before']} -> {r['load_after']}")
    print("summary: median [min .. max]")
    for f, label, fm in (("samples_per_s", "samples/s", "{:,.0f}"), ("daemon_cpu_pct", "daemon CPU %", "{:.1f}"),
                         ("client_cpu_pct", "client CPU %", "{:.1f}"), ("req_ms_median", "ms/request", "{:.1f}"),
                         ("rss_end_mib", "daemon RSS end MiB", "{:.1f}")):
        print(f"  {label:20} {d.summary([r[f] for r in runs], fm)}")
    print(f"all samples accepted and counted: {all(r['ingested_metric'] == r['sent'] == r['accepted'] for r in runs)}")
    print(f"load at end: {d.loadavg()}")


if __name__ == "__main__":
    main()
