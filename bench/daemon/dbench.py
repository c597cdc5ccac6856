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


class MetricsTarget:
    """A scrape target on 127.0.0.1 serving `body()` at /metrics, in a thread of its own."""

    def __init__(self, body):
        import http.server
        import threading

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (the stdlib's name)
                data = body()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *_):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


PROMETHEUS = "/usr/bin/prometheus"


def start_prometheus(tmp: Path, port: int, *, target_port: int | None, rule_file: Path | None,
                     interval: str = "1s", wait: float = 60.0) -> subprocess.Popen:
    """Debian's Prometheus scraping target_port every `interval` and evaluating rule_file,
    its TSDB under tmp; returns once /-/ready answers."""
    cfg = tmp / "prometheus.yml"
    lines = ["global:", f"  scrape_interval: {interval}", f"  evaluation_interval: {interval}"]
    if rule_file is not None:
        lines += ["rule_files:", f"  - {rule_file}"]
    lines += ["scrape_configs:"]
    if target_port is not None:
        lines += ["  - job_name: synth", "    static_configs:", f"      - targets: ['127.0.0.1:{target_port}']"]
    else:
        lines[-1] = "scrape_configs: []"
    cfg.write_text("\n".join(lines) + "\n")
    log = open(tmp / "prometheus.log", "wb")
    p = subprocess.Popen([PROMETHEUS, f"--config.file={cfg}", f"--storage.tsdb.path={tmp / 'tsdb'}",
                          f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
                         stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        if p.poll() is not None:
            raise RuntimeError(f"prometheus exited with {p.returncode}; see {tmp / 'prometheus.log'}")
        try:
            if get(port, "/-/ready", 1.0):
                return p
        except OSError:
            time.sleep(0.1)
    p.kill()
    raise RuntimeError(f"prometheus not ready after {wait}s")


def wait_scraped(port: int, metric: str, want: int, timeout: float = 60.0) -> float:
    """Waits until Prometheus on `port` holds `want` series of `metric` (its first scrape
    comes seconds after start); the seconds it took."""
    import urllib.parse

    t0 = time.monotonic()
    q = urllib.parse.quote(f"count({metric})")
    while time.monotonic() - t0 < timeout:
        try:
            doc = json.loads(get(port, f"/api/v1/query?query={q}"))
            res = doc["data"]["result"]
            if res and int(float(res[0]["value"][1])) >= want:
                return time.monotonic() - t0
        except (OSError, KeyError, ValueError):
            pass
        time.sleep(0.5)
    raise RuntimeError(f"Prometheus never held {want} series of {metric} in {timeout:.0f} s")
