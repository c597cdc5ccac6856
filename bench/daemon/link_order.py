#!/usr/bin/env python3
"""The link order of `tocsin`'s code: which functions the idle daemon runs, first in `.text`.

Runs `target/release/tocsin run` under valgrind's callgrind on the idle benchmark's
configuration (default rules and receivers, host metrics every second, see
idle_vs_monit.py): waits until it is ready, lets it idle IDLE s (the benchmark's 10 s of
warm-up and 60 s measured), asks it one API request and one reload (`POST /-/reload`),
idles 3 s more and stops it with SIGTERM. Takes the union of RUNS such profiles (timing
changes a little which paths run) and writes the raw (mangled) name of every function of
the binary that ran, one per line, to OUT (default dist/link-order.txt), for the linker's
`--symbol-ordering-file` (build.rs).

The order is the functions' order in the profiled binary (callgrind records what ran,
not when): what ran stays together in its old relative order, ahead of all that did not.
Names not defined in the binary (glibc, the loader) are left out, as is everything the
profile did not see: the file is the run set only.
Usage: link_order.py [--idle 70] [--runs 2] [--out dist/link-order.txt]
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import dbench as d  # noqa: E402

# A function in callgrind's output (compressed strings): `fn=(id) name` or `cfn=(id) name`
# where the name first appears, whichever comes first, then `fn=(id)` / `cfn=(id)`. A
# function that ran has an `fn=` block of its own costs.
FN = re.compile(r"^(c?)fn=\((\d+)\)(?: (.*))?$")


def text_symbols(binary: Path) -> dict[str, int]:
    """Every function symbol of the binary (nm's t/T/W), name -> address."""
    out = subprocess.run(["nm", "--defined-only", str(binary)], capture_output=True, text=True,
                         check=True).stdout
    syms = {}
    for line in out.splitlines():
        parts = line.split(" ", 2)
        if len(parts) == 3 and parts[1] in "tTwW":
            syms.setdefault(parts[2], int(parts[0], 16))
    return syms


def profile(tmp: Path, idle: float) -> Path:
    """Runs the daemon under callgrind through start, idle, a request and a reload; returns
    the callgrind output file."""
    port = d.free_port()
    cfg = tmp / "tocsin.yaml"
    d.write_config(cfg, rules=[str(d.REPO / "rules")], receivers=[str(d.REPO / "receivers")],
                   data_dir=tmp / "data", port=port, sources="{ system: { interval: 1s } }")
    out = tmp / "callgrind.out"
    log = open(tmp / "tocsin.log", "wb")
    p = subprocess.Popen(
        ["valgrind", "--tool=callgrind", "--demangle=no", "--dump-instr=no", "--dump-line=no", "--compress-strings=yes",
         f"--callgrind-out-file={out}", str(d.TOCSIN), "run", "-c", str(cfg)],
        stdout=log, stderr=subprocess.STDOUT,
        env={**os.environ, "TOCSIN_LOG": os.environ.get("TOCSIN_LOG", "warn")})
    try:
        # Under valgrind the start takes tens of seconds instead of milliseconds.
        deadline = time.monotonic() + 300
        while True:
            if p.poll() is not None:
                raise RuntimeError(f"tocsin exited with {p.returncode}; see {tmp}/tocsin.log")
            try:
                d.get(port, "/-/ready", 5.0)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"tocsin not ready under valgrind after 300 s; see {tmp}/tocsin.log")
                time.sleep(0.5)
        time.sleep(idle)
        d.get(port, "/api/v1/alerts", 60.0)
        req = urllib.request.Request(f"http://127.0.0.1:{port}/-/reload", method="POST")
        with urllib.request.urlopen(req, timeout=120) as r:
            r.read()
        time.sleep(3)
        p.terminate()
        p.wait(300)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    return out


def functions_run(out: Path) -> set[str]:
    """The names of the functions with costs of their own in callgrind output file `out`."""
    names, ran = {}, set()
    for line in open(out, errors="replace"):
        m = FN.match(line)
        if m:
            if m.group(3):
                names[m.group(2)] = m.group(3).strip()
            if not m.group(1):
                ran.add(m.group(2))
    return {names[i] for i in ran}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--idle", type=float, default=70, help="seconds of idle after ready")
    ap.add_argument("--runs", type=int, default=2,
                    help="profiles to take the union of (timing changes which paths run a little)")
    ap.add_argument("--out", type=Path, default=d.REPO / "dist" / "link-order.txt")
    a = ap.parse_args()
    syms = text_symbols(d.TOCSIN)
    ran = set()
    for _ in range(a.runs):
        with tempfile.TemporaryDirectory(prefix="tocsin-order-") as tmp:
            ran |= functions_run(profile(Path(tmp), a.idle))
    kept = sorted((n for n in ran if n in syms), key=lambda n: (syms[n], n))
    a.out.write_text("".join(n + "\n" for n in kept))
    print(f"{len(ran)} functions ran in {a.runs} runs, {len(kept)} of them the binary's "
          f"({len(syms)} in all): {a.out}")


if __name__ == "__main__":
    main()
