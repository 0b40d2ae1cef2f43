#!/usr/bin/env bash
# Reproduces the "Contacts of linked phones" figures in BENCHMARKS.md: time from a contact
# request to the push, to the phone's connect and to the computer's connect signal, and the
# relay's CPU per contact.
#
# The relay (one worker thread) is pinned to CPU 0; cable-load, which plays the computer, the
# phone and the phone's push endpoint (it decrypts every push), to CPU 1; both under
# SCHED_FIFO like relay-bench.sh. The push endpoint is plain HTTP on loopback
# (--allow-insecure-push): a real push service adds a TLS handshake per push.
#
# Usage: tunnel-server/bench/contact-bench.sh [contacts] [in-flight...]   (default: 2000 1 16)
# Needs release builds:
#   cargo build --release -p cable-tunnel-server -p cable-load
set -euo pipefail

bin="${CARGO_TARGET_DIR:-target}/release"
out="${OUT:-/tmp/contact-bench}"
contacts="${1:-2000}"
shift || true
if [ "$#" -gt 0 ]; then inflight_list=("$@"); else inflight_list=(1 16); fi
mkdir -p "$out"
keys="$(mktemp -d)"
trap 'rm -rf "$keys"' EXIT
"$bin/cable-tunnel-server" gen-contact-key --id 1 >"$keys/contact.keys"
"$bin/cable-tunnel-server" gen-vapid-key >"$keys/vapid.pem" 2>/dev/null
chmod 600 "$keys"/*

relay_pid=""
start_relay() {
    chrt -f 10 taskset -c 0 "$bin/cable-tunnel-server" \
        --listen 127.0.0.1:8080 --admin-listen 127.0.0.1:9090 \
        --rate-limit-per-second 0 --worker-threads 1 --log warn \
        --contact-key-file "$keys/contact.keys" --vapid-key-file "$keys/vapid.pem" \
        --allow-insecure-push &
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
    sleep 2
}

for inflight in "${inflight_list[@]}"; do
    start_relay
    chrt -f 10 taskset -c 1 "$bin/cable-load" --url ws://127.0.0.1:8080 --relay-pid "$relay_pid" \
        --mode contact --pairs "$contacts" --setup-concurrency "$inflight" \
        | tee "$out/contact-$contacts-inflight$inflight.json"
    stop_relay
done
