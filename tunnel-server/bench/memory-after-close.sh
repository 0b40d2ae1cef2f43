#!/usr/bin/env bash
# Reproduces the "Memory after the last tunnel closes" figures in BENCHMARKS.md: the relay's
# RSS before a load, at its peak, and for a minute after every pair has closed.
#
# Same pinning as relay-bench.sh: relay on CPU 0 with one worker thread, cable-load on CPU 1,
# both under SCHED_FIFO. RELAY selects the relay binary, so that two builds (e.g. with and
# without the jemalloc feature) can be compared.
#
# Usage: tunnel-server/bench/memory-after-close.sh [pairs] [seconds]   (default: 9990 60)
# Needs release builds:
#   cargo build --release -p cable-tunnel-server -p cable-load
set -euo pipefail

bin="${CARGO_TARGET_DIR:-target}/release"
relay="${RELAY:-$bin/cable-tunnel-server}"
out="${OUT:-/tmp/memory-after-close}"
pairs="${1:-9990}"
seconds="${2:-60}"
mkdir -p "$out"
ulimit -n 20000

chrt -f 10 taskset -c 0 "$relay" \
    --listen 127.0.0.1:8080 --admin-listen 127.0.0.1:9090 \
    --rate-limit-per-second 0 --max-connections 40000 --max-pending-tunnels 40000 \
    --worker-threads 1 --log warn &
relay_pid=$!
trap 'kill "$relay_pid" 2>/dev/null || true' EXIT
for _ in $(seq 50); do
    curl -sf http://127.0.0.1:9090/readyz >/dev/null 2>&1 && break
    sleep 0.1
done
chrt -f 10 taskset -c 1 "$bin/cable-load" --url ws://127.0.0.1:8080 --relay-pid "$relay_pid" \
    --pairs "$pairs" --messages 3 --size 256 --inflight 0 --after-close "$seconds" \
    | tee "$out/after-close-$(basename "$relay")-$pairs.json"
