#!/usr/bin/env bash
# Whole-process benchmark: `tocsin check` / `tocsin test` against
# `promtool check rules` / `promtool test rules` on the same 1,000-rule
# workload (bench/gen_workload.py), measured alternately in one run.
#
#   bash bench/compare-promtool.sh            # from the repository root
#
# Environment:
#   RUNS=10 WARMUP=2       measured / warm-up rounds (each round runs every command once)
#   BENCH_NO_BUILD=1       skip `cargo build --release`
#   REQUIRE_TOCSIN=1       fail (instead of skipping the tocsin side) when the
#                          tocsin binary lacks `check` or `test`; use in CI
#   BENCH_HYPERFINE=1      also run hyperfine (not alternating) as a cross-check
#   OUT=bench/out          where the workload and results.json go
#   TOCSIN_BIN=...         measure another tocsin binary (default target/release/tocsin)
#
# Exit status: 0 all measured; 1 a command failed, a correctness gate failed,
# or the build failed; 2 a tool is missing.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
RUNS=${RUNS:-10}
WARMUP=${WARMUP:-2}
OUT=${OUT:-bench/out}
BIN=${TOCSIN_BIN:-target/release/tocsin}

die() { echo "compare-promtool: $1" >&2; exit "${2:-1}"; }
need() { command -v "$1" >/dev/null 2>&1 || die "$1 not found (${2:-})" 2; }

need promtool "apt-get install prometheus"
need python3
[ -x /usr/bin/time ] || die "/usr/bin/time not found (apt-get install time)" 2

echo "== machine"
echo "date:     $(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo "commit:   $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet 2>/dev/null || echo ' (dirty)')"
echo "nproc:    $(nproc)"
echo "cpu:      $(lscpu | sed -n 's/^Model name:[[:space:]]*//p' | head -1)"
echo "memory:   $(awk '/^MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo)"
echo "kernel:   $(uname -sr)"
echo "promtool: $(promtool --version 2>&1 | head -1)"
echo "python:   $(python3 --version 2>&1)"
echo "load:     $(cut -d' ' -f1-3 /proc/loadavg) (1/5/15 min; figures are only good on an idle machine)"
echo

if [ "${BENCH_NO_BUILD:-0}" != 1 ]; then
    echo "== cargo build --release"
    cargo build --release || die "cargo build --release failed"
    echo
fi

echo "== workload"
python3 bench/gen_workload.py "$OUT"
echo

# ---- which tocsin subcommands exist
TOCSIN_CHECK=0
TOCSIN_TEST=0
if [ -x "$BIN" ]; then
    "$BIN" check --help >/dev/null 2>&1 && TOCSIN_CHECK=1
    "$BIN" test --help >/dev/null 2>&1 && TOCSIN_TEST=1
fi
if [ $TOCSIN_CHECK = 0 ] || [ $TOCSIN_TEST = 0 ]; then
    missing=()
    [ $TOCSIN_CHECK = 0 ] && missing+=("check")
    [ $TOCSIN_TEST = 0 ] && missing+=("test")
    why="$BIN has no '${missing[*]}' subcommand"
    [ -x "$BIN" ] || why="$BIN does not exist"
    echo "!! tocsin side skipped for: ${missing[*]} ($why)"
    [ "${REQUIRE_TOCSIN:-0}" = 1 ] && die "REQUIRE_TOCSIN=1 and $why"
    echo
fi

P_CHECK="promtool check rules $OUT/prometheus/rules.yaml"
P_TEST="promtool test rules $OUT/prometheus/test.yaml"
T_CHECK="$BIN check $OUT/tocsin/rules"
T_TEST="$BIN test $OUT/tocsin/tests/synth_test.yaml"

# ---- correctness gates: good files pass, planted errors fail (exit 1).
# A tool that accepts everything (or crashes) must not produce a figure.
echo "== correctness gates"
gate() {  # gate EXPECTED_EXIT LABEL CMD...
    local want=$1 label=$2; shift 2
    local log; log=$(mktemp)
    set +e; "$@" >"$log" 2>&1; local got=$?; set -e
    if [ "$got" = "$want" ]; then
        printf '  ok    %-38s exit %s\n' "$label" "$got"
        rm -f "$log"
    else
        printf '  FAIL  %-38s exit %s, expected %s\n  $ %s\n' "$label" "$got" "$want" "$*" >&2
        head -n 40 "$log" | sed 's/^/    | /' >&2
        rm -f "$log"
        exit 1
    fi
}
gate 0 "promtool check rules (workload)" $P_CHECK
gate 0 "promtool test rules (workload)" $P_TEST
gate 1 "promtool check rules (planted error)" promtool check rules "$OUT/negative/prometheus/rules.yaml"
gate 1 "promtool test rules (wrong expect.)" promtool test rules "$OUT/negative/prometheus/test.yaml"
if [ $TOCSIN_CHECK = 1 ]; then
    gate 0 "tocsin check (workload)" $T_CHECK
    gate 1 "tocsin check (planted error)" "$BIN" check "$OUT/negative/tocsin/rules"
fi
if [ $TOCSIN_TEST = 1 ]; then
    gate 0 "tocsin test (workload)" $T_TEST
    gate 1 "tocsin test (wrong expectation)" "$BIN" test "$OUT/negative/tocsin/tests/synth_test.yaml"
fi
echo

# ---- the measurement: all commands alternating in one run
args=(--runs "$RUNS" --warmup "$WARMUP" --json "$OUT/results.json"
      --cmd "promtool check::$P_CHECK")
[ $TOCSIN_CHECK = 1 ] && args+=(--cmd "tocsin check::$T_CHECK")
args+=(--cmd "promtool test::$P_TEST")
[ $TOCSIN_TEST = 1 ] && args+=(--cmd "tocsin test::$T_TEST")
args+=(--ratio "promtool check:tocsin check" --ratio "promtool test:tocsin test")

echo "== measurement ($RUNS rounds + $WARMUP warm-up, alternating)"
for a in "${args[@]}"; do case $a in *::*) echo "  \$ ${a#*::}";; esac; done
python3 -u bench/alternate.py "${args[@]}" || die "measurement aborted: a command failed (see above)"
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "results: $OUT/results.json"

if [ $TOCSIN_CHECK = 0 ] || [ $TOCSIN_TEST = 0 ]; then
    echo
    echo "!! tocsin side skipped: only the promtool figures above were measured"
fi

if [ "${BENCH_HYPERFINE:-0}" = 1 ]; then
    need hyperfine "apt-get install hyperfine"
    echo
    echo "== hyperfine cross-check (runs each command's runs back to back: not alternating)"
    hcmds=("$P_CHECK")
    [ $TOCSIN_CHECK = 1 ] && hcmds+=("$T_CHECK")
    hcmds+=("$P_TEST")
    [ $TOCSIN_TEST = 1 ] && hcmds+=("$T_TEST")
    hyperfine -N --warmup "$WARMUP" --runs "$RUNS" \
        --export-markdown "$OUT/hyperfine.md" "${hcmds[@]}"
fi
