#!/usr/bin/env bash
# Prints the path of the built libcable_phone_ffi.so, for kotlin/run.sh and swift/run.sh.
# CABLE_FFI_LIB names one already built (CI passes the one its test run made; building here
# with another package selection would recompile much of the workspace); otherwise it is
# built now (cargo's output goes to standard error).
set -euo pipefail
root="$(cd "$(dirname "$0")/../../.." && pwd)"
if [ -n "${CABLE_FFI_LIB:-}" ]; then
    lib="$CABLE_FFI_LIB"
else
    cargo build --locked -p cable-phone-ffi --lib >&2
    lib="$root/target/debug/libcable_phone_ffi.so"
fi
[ -f "$lib" ] || { echo "no library at $lib" >&2; exit 1; }
echo "$lib"
