#!/usr/bin/env bash
# Reproduces the "Tunnel relay" figures in BENCHMARKS.md.
#
# The relay runs pinned to CPU 0 with one worker thread, the load generator pinned to CPU 1,
# so the relay is judged by its own CPU time (read from /proc/<pid>). Every measurement uses a
# fresh relay process so that RSS figures are not blurred by memory freed in an earlier run.
# Both run under SCHED_FIFO (chrt, needs root or CAP_SYS_NICE): on a shared machine, other
# processes on the same cores otherwise add milliseconds of scheduling delay to every
# wake-up. Both processes block in epoll when idle, so they never monopolise a core.
#
# Usage: tunnel-server/bench/relay-bench.sh [pairs...]   (default: 1000 9990)
# Needs release builds:
#   cargo build --release -p cable-tunnel-server -p cable-load
set -euo pipefail

bin="${CARGO_TARGET_DIR:-target}/release"
out="${OUT:-/tmp/relay-bench}"
mkdir -p "$out"
ulimit -n 20000

relay_pid=""
start_relay() {
    chrt -f 10 taskset -c 0 "$bin/cable-tunnel-server" \
        --listen 127.0.0.1:8080 --admin-listen 127.0.0.1:9090 \
        --rate-limit-per-second 0 --max-connections 40000 --max-pending-tunnels 40000 \
        --worker-threads 1 --log warn &
    relay_pid=$!
    for _ in $(seq 50); do
        curl -sf http://127.0.0.1:9090/readyz >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    echo "relay did not become ready" >&2
    return 1
}
stop_relay() {
    kill "$relay_pid" 2>/dev/null || true
    wait "$relay_pid" 2>/dev/null || true
    # Let TIME_WAIT sockets and the kernel settle between runs.
    sleep 2
}
load() {
    local name=$1
    shift
    chrt -f 10 taskset -c 1 "$bin/cable-load" --url ws://127.0.0.1:8080 --relay-pid "$relay_pid" "$@" \
        | tee "$out/$name.json"
}

if [ "$#" -gt 0 ]; then pairs_list=("$@"); else pairs_list=(1000 9990); fi
for pairs in "${pairs_list[@]}"; do
    # Setup rate, relay CPU per pair, RTT with a single round trip in flight (pairs served
    # round-robin, every pair connected).
    start_relay
    load "rtt-$pairs-inflight1" --pairs "$pairs" --messages 5 --size 256 --inflight 1
    stop_relay
    # Every pair busy: each pair has one round trip in flight all the time.
    start_relay
    load "rtt-$pairs-allbusy" --pairs "$pairs" --messages 20 --size 256 --inflight 0
    stop_relay
    # 100 round trips in flight across all pairs.
    start_relay
    load "rtt-$pairs-inflight100" --pairs "$pairs" --messages 5 --size 256 --inflight 100
    stop_relay
done

# Memory slope: pending tunnels (phones only) and joined idle pairs, in steps.
start_relay
load pending --mode pending --steps 1000,5000,9990 --settle 2
stop_relay
start_relay
load idle --mode idle --steps 1000,5000,9990 --settle 2
stop_relay
