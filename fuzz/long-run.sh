#!/usr/bin/env bash
# The long run: every fuzz target for RUNS executions (default 10 million), starting from
# the kept corpus and the seeds, then the corpus minimised (cargo fuzz cmin) so that what
# is committed stays small. Prints one Markdown table row per target for fuzz/README.md.
#
#   fuzz/long-run.sh [RUNS] [TARGET…]      default: 10000000, every target
#
# Built without a sanitizer and with debug assertions: the fuzzed crates forbid unsafe
# code, so AddressSanitizer (which CI's short runs keep) finds little here and costs about
# half the speed, while overflow checks and debug_assert! are what a safe-Rust parser
# trips. Exits non-zero if any target crashes; its input is under fuzz/artifacts/.
set -euo pipefail
runs="${1:-10000000}"
shift || true
cd "$(dirname "$0")"

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "==> installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi

export RUSTC_BOOTSTRAP=1
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
flags=(--sanitizer none --debug-assertions)

targets=("$@")
[ "${#targets[@]}" -eq 0 ] && mapfile -t targets < <(cargo fuzz list)
cargo fuzz build "${flags[@]}"

mkdir -p logs
echo "| target | runs | seconds | exec/s | corpus before → after cmin | crashes |"
echo "|---|---|---|---|---|---|"
failed=()
for target in "${targets[@]}"; do
    mkdir -p "corpus/$target"
    seeds=()
    [ -d "seeds/$target" ] && seeds=("seeds/$target")
    log="logs/$target.log"
    start=$SECONDS
    if cargo fuzz run "${flags[@]}" "$target" "corpus/$target" "${seeds[@]}" -- \
        -runs="$runs" -print_final_stats=1 >"$log" 2>&1; then
        crashes=0
    else
        crashes=1
        failed+=("$target")
    fi
    secs=$((SECONDS - start))
    executed="$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -oE '[0-9]+$' | tail -1)"
    before="$(find "corpus/$target" -type f | wc -l)"
    cargo fuzz cmin "${flags[@]}" "$target" "corpus/$target" >"logs/$target.cmin.log" 2>&1 || true
    after="$(find "corpus/$target" -type f | wc -l)"
    echo "| \`$target\` | ${executed:-?} | $secs | $(( ${executed:-0} / (secs > 0 ? secs : 1) )) | $before → $after | $crashes |"
done

if [ "${#failed[@]}" -ne 0 ]; then
    echo "==> crashes in: ${failed[*]} (logs under fuzz/logs/, inputs under fuzz/artifacts/)" >&2
    exit 1
fi
