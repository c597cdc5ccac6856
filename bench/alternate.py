#!/usr/bin/env python3
"""Time several commands *alternately* in one run and report wall time and
peak RSS per command, plus speed-up ratios.

Round r runs every command once, starting with command r mod n (so no
command always goes first after the same other one). Each run is a plain
exec (no shell), spawned directly from here: wall time is perf_counter
around spawn..reap, CPU time the child's rusage (os.wait4). Right after it
the same command runs once more under GNU time (/usr/bin/time, Debian package
`time`) for its peak RSS only (first --rss-rounds measured rounds), see
run_rss().
Any run exiting non-zero aborts the whole benchmark with that run's output
and exit status 1: a failing command never yields a figure.

Usage:
  alternate.py [--runs N] [--warmup N] [--json FILE]
               [--ratio SLOW_LABEL:FAST_LABEL ...]
               --cmd 'LABEL::command line' [--cmd ...]

The command line is split with shlex. Python 3.11, standard library only.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shlex
import statistics
import subprocess
import sys
import tempfile
import time


GNU_TIME = "/usr/bin/time"


def _outputs(out, err) -> dict:
    out.seek(0)
    err.seek(0)
    return {"stdout": out.read().decode(errors="replace"),
            "stderr": err.read().decode(errors="replace")}


def run_timed(argv: list[str]) -> dict:
    """Direct spawn from here: wall time (perf_counter, spawn..reap) and CPU
    time (the child's rusage via os.wait4)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        try:
            p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err)
        except OSError as e:
            return {"exit": 127, "stdout": "", "stderr": f"cannot run: {e}"}
        _pid, status, ru = os.wait4(p.pid, 0)
        wall = time.perf_counter() - t0
        p.returncode = code = os.waitstatus_to_exitcode(status)  # -N: signal N
        res = {"wall_s": wall, "user_s": ru.ru_utime, "sys_s": ru.ru_stime, "exit": code}
        if code != 0:
            res.update(_outputs(out, err))
        return res


def run_rss(argv: list[str]) -> dict:
    """The same command under GNU time, for its peak RSS only. (ru_maxrss
    survives exec on Linux, so a child forked from this ~15 MiB Python
    process would report at least that; GNU time forks from ~1 MiB.)"""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, \
            tempfile.NamedTemporaryFile(mode="r", suffix=".time") as tf:
        p = subprocess.run([GNU_TIME, "-q", "-o", tf.name, "-f", "%x %M", "--"] + argv,
                           stdin=subprocess.DEVNULL, stdout=out, stderr=err)
        tf.seek(0)
        fields = tf.read().split()
        try:
            code, rss = int(fields[-2]), int(fields[-1])
        except (IndexError, ValueError):
            code, rss = (p.returncode or 127), 0
        if p.returncode != 0 and code == 0:
            code = p.returncode
        res = {"maxrss_kib": rss, "exit": code}
        if code != 0:
            res.update(_outputs(out, err))
        return res


def busy_cpu_s() -> float:
    """System-wide busy CPU seconds since boot (all cores), from /proc/stat."""
    with open("/proc/stat", encoding="ascii") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    # user nice system idle iowait irq softirq steal [guest guest_nice: in user]
    busy = v[0] + v[1] + v[2] + v[5] + v[6] + (v[7] if len(v) > 7 else 0)
    return busy / os.sysconf("SC_CLK_TCK")


def own_cpu_s() -> float:
    """CPU seconds of this process and every child it reaped (incl. those
    run under GNU time, whose children GNU time reaps)."""
    tot = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        ru = resource.getrusage(who)
        tot += ru.ru_utime + ru.ru_stime
    return tot


def fmt_s(x: float) -> str:
    return f"{x * 1000:9.1f} ms" if x < 1 else f"{x:9.3f} s "


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--rss-rounds", type=int, default=3,
                    help="measure peak RSS (one extra run under GNU time) in the first N "
                         "measured rounds only (default 3; peak RSS barely varies)")
    ap.add_argument("--json", help="write all samples and the summary here")
    ap.add_argument("--ratio", action="append", default=[],
                    help="SLOW:FAST label pair; prints mean(SLOW)/mean(FAST)")
    ap.add_argument("--cmd", action="append", required=True,
                    help="'LABEL::command line'")
    args = ap.parse_args(argv)

    if not os.access(GNU_TIME, os.X_OK):
        print(f"alternate.py: {GNU_TIME} missing (apt-get install time)", file=sys.stderr)
        return 2
    cmds = []
    for c in args.cmd:
        label, sep, line = c.partition("::")
        if not sep or not line.strip():
            ap.error(f"--cmd needs 'LABEL::command', got {c!r}")
        cmds.append((label, shlex.split(line), line))
    n = len(cmds)
    samples = {label: [] for label, _, _ in cmds}

    total_rounds = args.warmup + args.runs
    busy0, own0, t_start = busy_cpu_s(), own_cpu_s(), time.monotonic()
    for r in range(total_rounds):
        warm = r < args.warmup
        for j in range(n):
            label, argv_, line = cmds[(r + j) % n]
            res = run_timed(argv_)
            if res["exit"] == 0 and 0 <= r - args.warmup < args.rss_rounds:
                rss = run_rss(argv_)
                res = {**res, **rss} if rss["exit"] != 0 else {**res, "maxrss_kib": rss["maxrss_kib"]}
            if res["exit"] != 0:
                print(f"\nFAILED (exit {res['exit']}) in {'warm-up' if warm else 'measured'} "
                      f"round {r + 1}: {label}\n  $ {line}", file=sys.stderr)
                for stream in ("stdout", "stderr"):
                    text = res[stream].rstrip()
                    if text:
                        lines = text.splitlines()
                        shown = "\n".join(lines[:60])
                        more = f"\n  ... ({len(lines) - 60} more lines)" if len(lines) > 60 else ""
                        print(f"--- {stream} ---\n{shown}{more}", file=sys.stderr)
                return 1
            if not warm:
                samples[label].append(res)
        print(f"  round {r + 1}/{total_rounds}{' (warm-up)' if warm else ''} done",
              file=sys.stderr, flush=True)

    elapsed = time.monotonic() - t_start
    foreign = max(0.0, (busy_cpu_s() - busy0) - (own_cpu_s() - own0))
    foreign_cores = foreign / elapsed if elapsed > 0 else 0.0

    summary = {}
    print()
    print(f"{'command':<18} {'mean':>12} {'± sd':>11} {'min':>12} {'max':>12} "
          f"{'cpu (u+s)':>12} {'peak RSS':>10}")
    for label, _, line in cmds:
        w = [s["wall_s"] for s in samples[label]]
        cpu = [s["user_s"] + s["sys_s"] for s in samples[label]]
        rss = max((s["maxrss_kib"] for s in samples[label] if "maxrss_kib" in s), default=0)
        sd = statistics.stdev(w) if len(w) > 1 else 0.0
        summary[label] = {
            "command": line, "runs": len(w), "mean_s": statistics.fmean(w),
            "sd_s": sd, "min_s": min(w), "max_s": max(w),
            "median_s": statistics.median(w), "cpu_mean_s": statistics.fmean(cpu),
            "peak_rss_kib": rss,
        }
        s = summary[label]
        print(f"{label:<18} {fmt_s(s['mean_s']):>12} {fmt_s(sd):>11} {fmt_s(s['min_s']):>12} "
              f"{fmt_s(s['max_s']):>12} {fmt_s(s['cpu_mean_s']):>12} "
              + (f"{rss / 1024:7.1f} MiB" if rss else "       n/a"))

    ratios = {}
    for pair in args.ratio:
        slow, sep, fast = pair.partition(":")
        if not sep or slow not in summary or fast not in summary:
            continue
        rm = summary[slow]["mean_s"] / summary[fast]["mean_s"]
        # Conservative bound: slowest fast run against fastest slow run.
        rw = summary[slow]["min_s"] / summary[fast]["max_s"]
        ratios[f"{slow} / {fast}"] = {"mean": rm, "worst": rw}
    if ratios:
        print()
        for k, v in ratios.items():
            verdict = "meets" if v["mean"] >= 10 else "MISSES"
            print(f"speed-up {k}: {v['mean']:.1f}x on means "
                  f"(worst case min/max {v['worst']:.1f}x) -- {verdict} the >= 10x target")

    print(f"\nother processes used {foreign_cores:.2f} cores on average during the "
          f"{elapsed:.0f} s measurement ({os.cpu_count()} cores)")
    if foreign_cores > 0.1:
        print("WARNING: the machine was not idle; these figures are contaminated "
              "by other work. Re-run on an idle machine.")
    print(f"\n{args.runs} measured rounds after {args.warmup} warm-up rounds, "
          f"commands alternating; wall time from spawn to reap;\npeak RSS = max over a separate run of each under GNU time in the first "
          f"{min(args.rss_rounds, args.runs)} measured rounds.")

    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump({"summary": summary, "ratios": ratios,
                       "foreign_cores": foreign_cores, "elapsed_s": elapsed,
                       "samples": samples, "runs": args.runs, "warmup": args.warmup},
                      f, indent=2)
            f.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
