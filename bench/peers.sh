#!/usr/bin/env bash
# Every performance promise (docs: BENCHMARKS.md, "The performance promises") measured
# side by side with its peer in one run, and a table of each figure, its promise and
# whether it holds. It runs the scripts that measure each row on its own:
#
#   check, test vs promtool        bench/compare-promtool.sh
#   idle RSS/CPU vs monit          bench/daemon/idle-vs-monit.sh
#   memory per 1,000 rules         bench/daemon/memory-per-rules.sh --peer (Prometheus)
#   latency, 30,000 at once, heap  cargo bench --bench delivery (Alertmanager; the sink's
#   per firing alert at rest       own capacity measured first)
#   memory per live series         bench/daemon/series-memory.py --peer (Prometheus)
#   the same heaps, byte-exact     tests/{alert,rules,series}_alloc.rs (counted, no peer)
#
#   bash bench/peers.sh            # the real figures: ~15 min, on a quiet machine
#   bash bench/peers.sh --quick    # a few seconds a row: checks the plumbing, not the figures
#
# Environment: BENCH_NO_BUILD=1 skips `cargo build --release`; OUT (default
# bench/out/peers) is where each row's JSON and log go; ROWS (default all:
# check,idle,rules,delivery,heap,series) picks rows. Missing peers (promtool and Prometheus,
# Alertmanager, monit, GNU time) are installed from Debian's packages with apt-get.
# Exit status: 0 when every row was measured (whether or not its promise holds), 1 when a
# row failed, 2 when a peer cannot be installed.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
QUICK=0
for a in "$@"; do
    case $a in
        --quick) QUICK=1 ;;
        *) echo "usage: bench/peers.sh [--quick]" >&2; exit 2 ;;
    esac
done
OUT=${OUT:-bench/out/peers}
ROWS=${ROWS:-check,idle,rules,delivery,heap,series}
mkdir -p "$OUT"
rm -f "$OUT"/*.json

has_row() { [[ ",$ROWS," == *",$1,"* ]]; }

# ---- peers from Debian, installed when missing
missing=()
command -v promtool >/dev/null || missing+=(prometheus)
[ -x /usr/bin/prometheus ] || missing+=(prometheus)
[ -x /usr/bin/prometheus-alertmanager ] || missing+=(prometheus-alertmanager)
command -v monit >/dev/null || missing+=(monit)
[ -x /usr/bin/time ] || missing+=(time)
if [ ${#missing[@]} -gt 0 ]; then
    echo "== installing peers: ${missing[*]}"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" \
        || { echo "peers.sh: cannot install ${missing[*]}" >&2; exit 2; }
fi

echo "== machine"
echo "date:    $(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo "commit:  $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src crates Cargo.toml Cargo.lock || echo ' (dirty)')"
echo "cpu:     $(nproc) x $(lscpu | sed -n 's/^Model name:[[:space:]]*//p' | head -1)"
echo "peers:   $(promtool --version 2>&1 | head -1); $(prometheus-alertmanager --version 2>&1 | head -1); $(monit -V | head -1)"
echo "load:    $(cut -d' ' -f1-3 /proc/loadavg)"
if [ $QUICK = 1 ]; then
    echo "mode:    --quick: every row runs a few seconds; the figures check the plumbing, not the promises"
elif awk '{ exit !($1 > 0.5) }' /proc/loadavg; then
    echo "WARNING: the machine is busy (1-min load above 0.5): figures that depend on CPU are contaminated"
fi
echo

if [ "${BENCH_NO_BUILD:-0}" != 1 ]; then
    echo "== cargo build --release"
    cargo build --release --bin tocsin
    echo
fi

failed=()
# row NAME CMD...: runs one row, its output to the terminal and $OUT/NAME.log, the load
# before and after into $OUT/NAME.load.json.
row() {
    local name=$1; shift
    local before; before=$(cut -d' ' -f1-3 /proc/loadavg)
    echo "== row $name: $*"
    if "$@" 2>&1 | tee "$OUT/$name.log"; then :; else failed+=("$name"); fi
    printf '{"before": "%s", "after": "%s"}\n' "$before" "$(cut -d' ' -f1-3 /proc/loadavg)" > "$OUT/$name.load.json"
    echo
}

if has_row check; then
    if [ $QUICK = 1 ]; then runs=2 warm=0; else runs=10 warm=2; fi
    row check env RUNS=$runs WARMUP=$warm BENCH_NO_BUILD=1 REQUIRE_TOCSIN=1 OUT="$OUT/promtool" \
        bash bench/compare-promtool.sh
    [ -f "$OUT/promtool/results.json" ] && cp "$OUT/promtool/results.json" "$OUT/check.json"
fi
if has_row idle; then
    if [ $QUICK = 1 ]; then args=(--reps 1 --warmup 3 --duration 5); else args=(--reps 3 --warmup 65 --duration 40); fi
    row idle bash bench/daemon/idle-vs-monit.sh "${args[@]}" --json "$OUT/idle.json"
fi
if has_row rules; then
    if [ $QUICK = 1 ]; then args=(--reps 1 --push-seconds 3); else args=(--reps 3); fi
    row rules bash bench/daemon/memory-per-rules.sh "${args[@]}" --diag-reps 0 --peer --json "$OUT/rules.json"
fi
if has_row delivery; then
    if [ $QUICK = 1 ]; then args=(--quick); else args=(); fi
    row delivery cargo bench --bench delivery -- "${args[@]}" --json "$PWD/$OUT/delivery.json"
    # `cargo bench` leaves the bench profile's build at target/release/tocsin, whose symbol
    # names the link order does not match (BENCHMARKS.md, peers at 09904f1): the rows after
    # this one, and the next run with BENCH_NO_BUILD=1, must get the release binary back.
    cargo build --release --bin tocsin --quiet
fi
if has_row heap; then
    # The byte-exact figures (a global allocator counts them; load cannot move them).
    row heap cargo test --test alert_alloc --test rules_alloc --test series_alloc -- --nocapture
fi
if has_row series; then
    if [ $QUICK = 1 ]; then args=(--series 20000 --stale 2 --scrapes 4); else args=(--series 100000 --stale 10 --scrapes 20); fi
    row series python3 bench/daemon/series-memory.py "${args[@]}" --peer --json "$OUT/series.json"
fi

python3 bench/peers_table.py "$OUT" $([ $QUICK = 1 ] && echo --quick)
if [ ${#failed[@]} -gt 0 ]; then
    echo "peers.sh: rows that failed: ${failed[*]} (logs in $OUT)" >&2
    exit 1
fi
