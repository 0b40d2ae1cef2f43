#!/usr/bin/env bash
# Three relays behind nginx and behind HAProxy on loopback (deploy/tests/multi_instance.rs).
# Needs nginx and haproxy installed (.ci/install-system-packages). Reuses the workspace's
# debug build of the relay; honours CARGO_TARGET_DIR.
set -euo pipefail
cd "$(dirname "$0")/../.."
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || { echo "nginx is not installed" >&2; exit 1; }
command -v haproxy >/dev/null || [ -x /usr/sbin/haproxy ] || { echo "haproxy is not installed" >&2; exit 1; }
cargo build --locked -p cable-tunnel-server
cargo test --locked -p cable-deploy --test multi_instance -- --include-ignored
