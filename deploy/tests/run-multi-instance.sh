#!/usr/bin/env bash
# Three relays behind nginx and behind HAProxy on loopback (deploy/tests/multi_instance.rs),
# with their per-client rate limit on: HAProxy passes clients by PROXY header, nginx by
# X-Forwarded-For, and a second client address (127.0.0.2) must be limited on its own.
# Then relays added and removed behind both balancers routing by rule through DNS.
# Needs nginx and haproxy installed (.ci/install-system-packages). Honours CARGO_TARGET_DIR.
#
# The relay binary is the workspace's debug build made by `cargo test --workspace`: building
# with the same package selection (--workspace) keeps cargo's feature unification identical,
# so after the workspace test run nothing is rebuilt (`cargo build -p cable-tunnel-server`
# alone would resolve different tokio features and rebuild the relay's dependencies).
set -euo pipefail
cd "$(dirname "$0")/../.."
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || { echo "nginx is not installed" >&2; exit 1; }
command -v haproxy >/dev/null || [ -x /usr/sbin/haproxy ] || { echo "haproxy is not installed" >&2; exit 1; }
cargo test --workspace --locked --no-run
cargo test --workspace --locked --test multi_instance -- --include-ignored
