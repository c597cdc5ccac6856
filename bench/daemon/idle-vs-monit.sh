#!/usr/bin/env bash
# Idle footprint of `tocsin run` next to monit (promise: RSS <= 10 MiB, CPU <= monit's).
# Usage: bench/daemon/idle-vs-monit.sh [--reps 3] [--warmup 10] [--duration 60]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cd "$here/../.."
if ! command -v monit >/dev/null; then
    apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y monit
fi
[ -x target/release/tocsin ] || cargo build --release
exec python3 "$here/idle_vs_monit.py" "$@"
