#!/usr/bin/env bash
# Regenerates dist/link-order.txt, the functions the idle daemon runs, which build.rs hands
# to the linker to place first in `.text` (ARCHITECTURE.md, "Link order").
# Usage: bench/daemon/link-order.sh [--idle 70] [--runs 2] [--out FILE]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cd "$here/../.."
if ! command -v valgrind >/dev/null; then
    apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y valgrind
fi
cargo build --release
exec python3 "$here/link_order.py" "$@"
