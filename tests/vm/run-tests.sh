#!/usr/bin/env bash
# The tests that need real kernel interfaces, in a VM with Debian's stock kernel: the
# Bluetooth code against the real bluetoothd with emulated LE controllers
# (crates/cable-cli/tests/real_bluez.rs) and the virtual security key on the real uhid and
# hidraw, seen by libfido2 and python-fido2 (crates/cable-uhid, tests/vm/guest/uhid-tests.sh).
#
#   tests/vm/run-tests.sh [--require] [TEST_FILTER...]
#
# Builds the guest once (tests/vm/build-guest.sh, cached under target/vm), builds the test
# executables on the host (the guest runs it unchanged: same Debian release), boots the VM and
# runs the tests there. Without what it needs (qemu-system-x86_64, debootstrap, root for
# debootstrap, the Debian archive) it prints what is missing and exits 0, or 1 with
# --require (what CI passes). Set CABLE_BLUETOOTHD_FLAGS=-E to run bluetoothd with its
# experimental interfaces (then it honours the advertising interval the phone asks for).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cd "$here/../.."
require=false
if [ "${1:-}" = --require ]; then
    require=true
    shift
fi

missing=()
for tool in qemu-system-x86_64 debootstrap dpkg-deb cpio apt-get python3; do
    command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
[ "$(id -u)" -eq 0 ] || missing+=("root (debootstrap needs it)")
if [ "${#missing[@]}" -gt 0 ]; then
    echo "VM tests skipped: missing ${missing[*]} (Debian: apt-get install qemu-system-x86 debootstrap cpio; see tests/vm/README.md)"
    if $require; then exit 1; fi
    exit 0
fi

tests/vm/build-guest.sh
exe="$(cargo test --workspace --locked --test real_bluez --no-run --message-format=json 2>/dev/null \
    | python3 -c 'import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] == "real_bluez":
        print(m["executable"])')"
if [ -z "$exe" ]; then
    echo "run-tests.sh: could not build the real_bluez test executable" >&2
    cargo test --workspace --locked --test real_bluez --no-run >&2
    exit 1
fi
cargo build --workspace --locked --example uhid_key --bin cable --bin cable-tunnel-server
# Firefox's CTAP library as a host of the virtual key: a project of its own (it needs libudev).
CARGO_TARGET_DIR="$PWD/target/vm/authenticator-rs" \
    cargo build --locked --manifest-path tests/vm/authenticator-rs/Cargo.toml
authenticator_rs="$PWD/target/vm/authenticator-rs/debug/cable-vm-authenticator-rs"
uhid_key="$PWD/target/debug/examples/uhid_key"
cable="$PWD/target/debug/cable"
relay="$PWD/target/debug/cable-tunnel-server"
tests/vm/run.sh --timeout "${CABLE_VM_TIMEOUT:-600}" -- env CABLE_BLUETOOTHD_FLAGS="${CABLE_BLUETOOTHD_FLAGS:-}" \
    CABLE_VM_LATENCY_RUNS="${CABLE_VM_LATENCY_RUNS:-3}" CABLE_VM_AUTHENTICATOR_RS="$authenticator_rs" \
    tests/vm/guest/all-tests.sh "$exe" "$uhid_key" "$cable" "$relay" "$@"
