#!/bin/sh
# In the guest: the virtual key of cable-uhid on the real /dev/uhid, seen through hidraw by
# libfido2 (fido2-token) and python-fido2.
#
#   tests/vm/run.sh -- tests/vm/guest/uhid-tests.sh target/debug/examples/uhid_key
#
# There is no udev in the guest: hid-generic, which binds the device and makes its hidraw
# node, is loaded here rather than on demand; nodes are root's, as is the job.
set -eu
exe="$1"
here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source-path=SCRIPTDIR source=hidraw.sh
. "$here/hidraw.sh"
aaguid=3e1d850b9060a1e88a3015564d2ef32b
name='cable hybrid key'
work="$(mktemp -d)"
failures=0

fail() {
    echo "uhid-tests: FAIL: $*"
    failures=$((failures + 1))
}

# Checks that FILE has a line matching the extended regular expression RE.
expect_line() {
    if grep -Eq "$2" "$1"; then
        echo "uhid-tests: ok: $3"
    else
        fail "$3 (no line matching '$2')"
    fi
}

modprobe -a uhid hid-generic

# The key lives until its standard input, a FIFO held open on descriptor 3, ends.
mkfifo "$work/ctl"
"$exe" <"$work/ctl" >"$work/key.log" 2>&1 &
key_pid=$!
exec 3>"$work/ctl"

if ! hidraw="$(wait_for_hidraw "$name" "$key_pid" 20)"; then
    echo "uhid-tests: FAIL: no hidraw node for the key"
    cat "$work/key.log"
    exit 1
fi
echo "uhid-tests: the key is $hidraw ($(tr '\n' ' ' <"/sys/class/hidraw/$(basename "$hidraw")/device/uevent"))"

echo "--- fido2-token -L"
fido2-token -L | tee "$work/list"
expect_line "$work/list" "^$hidraw: vendor=0x1209, product=0x0001" "fido2-token -L lists the key"

echo "--- fido2-token -I $hidraw"
fido2-token -I "$hidraw" | tee "$work/info" || fail "fido2-token -I exited $?"
expect_line "$work/info" '^version strings: FIDO_2_0, FIDO_2_1$' "versions"
expect_line "$work/info" "^aaguid: $aaguid\$" "AAGUID"
expect_line "$work/info" '^options: rk, up, uv, noplat$' "options"
expect_line "$work/info" '^pin protocols: 2, 1$' "PIN/UV auth protocols"
expect_line "$work/info" '^transport strings: hybrid, usb$' "transports"
expect_line "$work/info" '^maxmsgsiz: 7609$' "maxMsgSize"
if grep -q 'clientPin' "$work/info"; then
    fail "no clientPin option"
fi

echo "--- python-fido2"
python3 "$here/uhid-info.py" "$hidraw" "$aaguid" || fail "python-fido2 exited $?"

# Ending the input destroys the key: the hidraw node goes away.
exec 3>&-
wait "$key_pid" || fail "the key exited $?"
if [ -e "/sys/class/hidraw/$(basename "$hidraw")" ]; then
    fail "$hidraw still there after DESTROY"
else
    echo "uhid-tests: ok: $hidraw gone after DESTROY"
fi
echo "--- the key's log"
cat "$work/key.log"

if [ "$failures" -ne 0 ]; then
    echo "uhid-tests: $failures check(s) failed"
    exit 1
fi
echo "uhid-tests: all checks passed"
