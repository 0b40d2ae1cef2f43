#!/bin/sh
# In the guest: the real-BlueZ tests (crates/cable-cli/tests/real_bluez.rs) against bluetoothd
# and three emulated controllers, then what btmon saw of the caBLE adverts, so a reader can
# check the bytes on the air against the ones the tests print.
#
#   bluetooth-tests.sh TEST_EXECUTABLE [TEST_FILTER...]
set -u
here="$(cd "$(dirname "$0")" && pwd)"
logs=/tmp/cable-bluez
exe="$1"
shift
"$here/bluez-up.sh" 3 "$logs" || exit 1

RUST_BACKTRACE=1 "$exe" --ignored --test-threads=1 --nocapture "$@"
rc=$?

btmon -T -r "$logs/btmon.snoop" >"$logs/btmon.txt" 2>&1
echo "--- btmon: advertising reports carrying FFF9 service data (first 3) ---"
grep -B14 -A1 'Service Data: Unknown (0xfff9)\|Service Data (UUID 0xfff9)' "$logs/btmon.txt" \
    | awk '/^--$/ { n++ } n < 3' || echo "(none found; btmon log has $(wc -l <"$logs/btmon.txt") lines)"
echo "--- btmon: advertising intervals the controllers were given (count, value) ---"
grep -iE '(min|max) advertising interval' "$logs/btmon.txt" | sed 's/^ *//' | sort | uniq -c || true
if [ "$rc" -ne 0 ]; then
    echo "--- bluetoothd log ---"
    tail -40 "$logs/bluetoothd.log"
fi
exit "$rc"
