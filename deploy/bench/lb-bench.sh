#!/usr/bin/env bash
# Pair-setup rate through nginx in front of N relays, all on loopback.
#
#   deploy/bench/lb-bench.sh N [PAIRS] [CONCURRENCY]
#
# Relays and nginx (one worker) share CPU 0; the load driver runs on CPU 1, so the figure
# is bounded by one core serving the balancer and every relay. DIRECT=1 skips nginx (the
# driver talks to the one relay directly) for a baseline. CABLE_LOAD=1 also runs
# crates/cable-load against the balancer (it joins at the routing id each phone received, so
# it drives every instance; its relay CPU figures are those of the first instance only). Prints JSON lines. Ports: BASE_PORT (20000)
# upwards, below the ephemeral range. PRIO prefixes the relays, nginx and the driver (e.g.
# PRIO="chrt -f 10", as in tunnel-server/bench/relay-bench.sh, on a machine shared with
# other work).
set -euo pipefail
cd "$(dirname "$0")/../.."
n="${1:?number of relays}"
pairs="${2:-4000}"
conc="${3:-32}"
base_port="${BASE_PORT:-20000}"
target="${CARGO_TARGET_DIR:-target}"
cargo build --release -q --locked -p cable-tunnel-server -p cable-deploy --example lb_pairs --bin cable-lbconf
[ "${CABLE_LOAD:-0}" = 1 ] && cargo build --release -q --locked -p cable-load

read -ra prio <<<"${PRIO:-}"
dir="$(mktemp -d)"
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    if [ "${KEEP:-0}" = 1 ]; then echo "kept $dir" >&2; else rm -rf "$dir"; fi
}
trap cleanup EXIT

watch=()
specs=()
for ((i = 0; i < n; i++)); do
    rid="$(printf '%06d' "$i")"
    port=$((base_port + 10 + 2 * i))
    admin=$((port + 1))
    "${prio[@]}" taskset -c 0 "$target/release/cable-tunnel-server" --listen "127.0.0.1:$port" \
        --admin-listen "127.0.0.1:$admin" --routing-id "$rid" --rate-limit-per-second 0 \
        --worker-threads 1 --log warn 2>"$dir/relay-$rid.log" &
    pids+=("$!")
    watch+=(--watch "relay-$rid=$!")
    specs+=(--instance "$rid=127.0.0.1:$port admin=$admin")
    up=0
    for _ in $(seq 50); do
        if CABLE_RELAY_ADMIN_LISTEN="127.0.0.1:$admin" deploy/docker/entrypoint.sh healthcheck 2>/dev/null; then
            up=1
            break
        fi
        sleep 0.1
    done
    [ "$up" = 1 ] || { cat "$dir/relay-$rid.log" >&2; exit 1; }
done

url="ws://127.0.0.1:$base_port"
if [ "${DIRECT:-0}" = 1 ]; then
    url="ws://127.0.0.1:$((base_port + 10))"
else
    "$target/release/cable-lbconf" "${specs[@]}" nginx -o "$dir/upstreams.conf"
    cat >"$dir/nginx.conf" <<CONF
pid $dir/nginx.pid;
error_log $dir/nginx-error.log warn;
daemon off;
master_process off;
worker_rlimit_nofile 20000;
events { worker_connections 16000; }
http {
    access_log off;
    client_body_temp_path $dir/cb; proxy_temp_path $dir/p; fastcgi_temp_path $dir/f;
    uwsgi_temp_path $dir/u; scgi_temp_path $dir/s;
    include $dir/upstreams.conf;
    server {
        listen 127.0.0.1:$base_port backlog=4096;
        include $PWD/deploy/nginx/cable-locations.conf;
    }
}
CONF
    "${prio[@]}" taskset -c 0 nginx -e "$dir/nginx-error.log" -p "$dir" -c "$dir/nginx.conf" &
    pids+=("$!")
    watch+=(--watch "nginx=$!")
    sleep 0.5
fi

"${prio[@]}" taskset -c 1 "$target/release/examples/lb_pairs" --url "$url" --pairs "$pairs" \
    --concurrency "$conc" "${watch[@]}"
if [ "${CABLE_LOAD:-0}" = 1 ]; then
    "${prio[@]}" taskset -c 1 "$target/release/cable-load" --url "$url" --mode rtt \
        --pairs 1000 --messages 10 --relay-pid "${pids[0]}"
fi
