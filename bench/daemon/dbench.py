"""Shared helpers for the whole-process daemon benchmarks (Python 3.11, stdlib only).

Machine description, free ports, starting/stopping `tocsin run`, /proc sampling
(VmRSS, utime+stime), load averages and median/range summaries.
"""

from __future__ import annotations

import json
import os
import platform
import socket
import statistics
import subprocess
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TOCSIN = REPO / "target" / "release" / "tocsin"
CLK_TCK = os.sysconf("SC_CLK_TCK")


def sh(cmd: str) -> str:
    try:
        return subprocess.run(cmd, shell=True, capture_output=True, text=True, cwd=REPO).stdout.strip()
    except OSError:
        return "?"


def machine() -> str:
    cpu = "?"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = "?"
    try:
        for line in open("/proc/meminfo"):
            if line.startswith("MemTotal"):
                mem = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
                break
    except OSError:
        pass
    dirty = " (+uncommitted changes)" if sh("git status --porcelain -- src Cargo.toml Cargo.lock") else ""
    return "\n".join(
        [
            f"date:    {time.strftime('%Y-%m-%d %H:%M:%S %Z')}",
            f"nproc:   {os.cpu_count()}",
            f"cpu:     {cpu}",
            f"memory:  {mem}",
            f"kernel:  {platform.release()}",
            f"commit:  {sh('git rev-parse HEAD')}{dirty}",
            f"binary:  {TOCSIN} ({sh(f'{TOCSIN} --version') or '?'})",
            f"load:    {loadavg()}",
        ]
    )


def loadavg() -> str:
    return " ".join(open("/proc/loadavg").read().split()[:3])


def load1() -> float:
    return float(open("/proc/loadavg").read().split()[0])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ticks(pid: int) -> tuple[int, int]:
    """(utime+stime, cutime+cstime) of pid, in clock ticks."""
    raw = open(f"/proc/{pid}/stat").read()
    fields = raw[raw.rindex(")") + 2 :].split()
    # fields[0] is field 3 (state); utime is field 14 -> index 11.
    return int(fields[11]) + int(fields[12]), int(fields[13]) + int(fields[14])


def status_kib(pid: int, key: str = "VmRSS") -> int:
    for line in open(f"/proc/{pid}/status"):
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def write_config(path: Path, *, rules: list[str], receivers: list[str], data_dir: Path, port: int,
                 sources: str, extra: str = "") -> None:
    lines = [
        f"rules: [{', '.join(rules)}]",
        f"receivers: [{', '.join(receivers)}]",
        f"data_dir: {data_dir}",
        f"listen: 127.0.0.1:{port}",
        f"sources: {sources}",
    ]
    if extra:
        lines.append(extra)
    path.write_text("\n".join(lines) + "\n")


def get(port: int, path: str, timeout: float = 5.0) -> bytes:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=timeout) as r:
        return r.read()


def start_daemon(cfg: Path, log: Path, port: int, wait: float = 30.0) -> subprocess.Popen:
    out = open(log, "wb")
    p = subprocess.Popen([str(TOCSIN), "run", "-c", str(cfg)], stdout=out, stderr=subprocess.STDOUT,
                         env={**os.environ, "TOCSIN_LOG": os.environ.get("TOCSIN_LOG", "warn")})
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        if p.poll() is not None:
            raise RuntimeError(f"tocsin exited with {p.returncode}; see {log}:\n{log.read_text()[-2000:]}")
        try:
            if get(port, "/-/ready", 1.0):
                return p
        except OSError:
            time.sleep(0.05)
    p.kill()
    raise RuntimeError(f"tocsin not ready after {wait}s; see {log}")


def stop(p: subprocess.Popen) -> None:
    if p.poll() is None:
        p.terminate()
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def summary(xs: list[float], fmt: str = "{:.2f}") -> str:
    """median [min .. max] (n)"""
    if not xs:
        return "n/a"
    return f"{fmt.format(statistics.median(xs))} [{fmt.format(min(xs))} .. {fmt.format(max(xs))}] (n={len(xs)})"


def pct(xs: list[float], q: float) -> float:
    s = sorted(xs)
    k = max(0, min(len(s) - 1, int(round(q * (len(s) - 1)))))
    return s[k]


def dump(path: Path, obj) -> None:
    path.write_text(json.dumps(obj, indent=1))
