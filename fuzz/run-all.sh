#!/usr/bin/env bash
# Runs every cargo-fuzz target of cable-proto for SECONDS seconds each.
#
#   fuzz/run-all.sh SECONDS           (default 10)
#   SANITIZER=none fuzz/run-all.sh 10 (skip AddressSanitizer)
#
# cargo-fuzz needs nightly-only compiler flags; RUSTC_BOOTSTRAP=1 lets the
# stable toolchain accept them. Exits non-zero if any target finds a crash.
set -euo pipefail
secs="${1:-10}"
sanitizer="${SANITIZER:-address}"
cd "$(dirname "$0")"

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "==> installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi

export RUSTC_BOOTSTRAP=1
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"

echo "==> building all targets (sanitizer: $sanitizer)"
cargo fuzz build --sanitizer "$sanitizer"

mkdir -p logs
failed=()
for target in $(cargo fuzz list); do
    mkdir -p "corpus/$target"
    seeds=()
    [ -d "seeds/$target" ] && seeds=("seeds/$target")
    echo "==> $target for ${secs}s"
    if ! cargo fuzz run --sanitizer "$sanitizer" "$target" "corpus/$target" "${seeds[@]}" -- \
        -max_total_time="$secs" -print_final_stats=1 2>"logs/$target.log"; then
        tail -n 40 "logs/$target.log"
        failed+=("$target")
    else
        grep -E "stat::number_of_executed_units|Done [0-9]+ runs" "logs/$target.log" | tail -n 2 || true
    fi
done

if [ "${#failed[@]}" -ne 0 ]; then
    echo "==> crashes in: ${failed[*]} (inputs under fuzz/artifacts/)"
    exit 1
fi
echo "==> all fuzz targets ran ${secs}s without a crash"
