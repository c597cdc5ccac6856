#!/usr/bin/env bash
# RSS per 1,000 rules (promise: <= +2 MiB). Usage: bench/daemon/memory-per-rules.sh [--reps 3]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cd "$here/../.."
[ -x target/release/tocsin ] || cargo build --release
exec python3 "$here/memory_per_rules.py" "$@"
