#!/usr/bin/env bash
# A soak of the relay under faults (cable-load --mode soak): pairs aborted halfway by TCP
# reset or FIN, computers that stop reading, phones that write a few bytes at a time. Fails
# (exit 1) on any lost or reordered message, a close other than the documented one, or a
# relay whose connection and tunnel gauges or file descriptors do not return to baseline.
#
# Usage: tunnel-server/bench/soak.sh [pairs] [rounds] [abort fraction]   (default: 1000 3 0.2)
#   PROFILE=release for the full-size run (cargo build --release -p cable-tunnel-server -p cable-load);
#   the default, debug, builds the workspace's binaries first (after `cargo test --workspace`
#   little is left to build; that is what .ci/run does).
set -euo pipefail
cd "$(dirname "$0")/../.."

profile="${PROFILE:-debug}"
bin="${CARGO_TARGET_DIR:-target}/$profile"
pairs="${1:-1000}"
rounds="${2:-3}"
abort="${3:-0.2}"
out="${OUT:-${CARGO_TARGET_DIR:-target}/soak}"
if [ "$profile" = debug ]; then
    # --workspace: the same feature unification as `cargo test --workspace`, so that after
    # the test run only the binaries not needed by tests are linked.
    cargo build --workspace --locked --tests --bins
fi
for b in cable-tunnel-server cable-load; do
    [ -x "$bin/$b" ] || { echo "$bin/$b is missing: build it first (see the usage above)" >&2; exit 2; }
done
mkdir -p "$out"
# Two sockets per pair on each side, plus headroom.
ulimit -n $((pairs * 4 + 1024)) 2>/dev/null || ulimit -n "$(ulimit -Hn)"

port_of() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
listen="127.0.0.1:$(port_of)"
admin="127.0.0.1:$(port_of)"
"$bin/cable-tunnel-server" --listen "$listen" --admin-listen "$admin" \
    --rate-limit-per-second 0 --max-connections $((pairs * 2 + 100)) \
    --max-pending-tunnels $((pairs + 100)) --log warn 2>"$out/relay.log" &
relay_pid=$!
trap 'kill "$relay_pid" 2>/dev/null || true' EXIT
for _ in $(seq 100); do
    if (exec 3<>"/dev/tcp/${admin%:*}/${admin#*:}") 2>/dev/null; then break; fi
    sleep 0.1
done

status=0
"$bin/cable-load" --url "ws://$listen" --admin "$admin" --relay-pid "$relay_pid" \
    --mode soak --pairs "$pairs" --messages "$rounds" --size 512 \
    --abort-fraction "$abort" --stall-fraction 0.02 --slow-fraction 0.02 \
    >"$out/soak-$pairs.json" || status=$?
python3 - "$out/soak-$pairs.json" <<'PY' || true
import json, sys
r = json.load(open(sys.argv[1]))["soak"]
print(f"soak: {r['pairs_set_up']} pairs x {r['rounds']} rounds in {r['seconds']:.1f} s, "
      f"{r['messages_checked']} messages checked, lost/reordered {r['lost_or_reordered']}, "
      f"wrong closes {r['wrong_close']}; by behaviour {r['by_behaviour']}; "
      f"relay before {r['relay_before']}, after {r['relay_after']}, peak RSS {r['relay_peak_rss_kib']} KiB; "
      f"passed: {r['passed']}")
for p in r["problems"]:
    print("  problem:", p)
PY
if [ "$status" -ne 0 ]; then
    echo "soak failed (report: $out/soak-$pairs.json, relay log: $out/relay.log)" >&2
    tail -n 20 "$out/relay.log" >&2 || true
fi
exit "$status"
