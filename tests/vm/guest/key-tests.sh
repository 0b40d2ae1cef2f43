#!/bin/sh
# In the guest: `cable key` on the real /dev/uhid, used by libfido2's tools, python-fido2 and
# Firefox's CTAP library (authenticator-rs, CABLE_VM_AUTHENTICATOR_RS)
# through the kernel's hidraw, with `cable phone` (software authenticator) answering each QR
# code the key shows, through a relay on the guest's loopback and the emulated Bluetooth
# controllers bluez-up.sh started (CABLE_KEY_BLE=air uses the loopback air instead).
#
#   key-tests.sh CABLE_EXE RELAY_EXE
set -u
cable="$1"
relay_exe="$2"
here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source-path=SCRIPTDIR source=hidraw.sh
. "$here/hidraw.sh"
ble="${CABLE_KEY_BLE:-bluez}"
name='cable hybrid key'
work="$(mktemp -d)"
failures=0
relay_port=8765
relay="ws://127.0.0.1:$relay_port"
export CABLE_AIR_DIR="$work/air"
mkdir -p "$CABLE_AIR_DIR"

fail() {
    echo "key-tests: FAIL: $*"
    failures=$((failures + 1))
}
ok() {
    echo "key-tests: ok: $*"
}

modprobe -a uhid hid-generic

"$relay_exe" --listen "127.0.0.1:$relay_port" --admin-listen 127.0.0.1:8766 >"$work/relay.log" 2>&1 &
relay_pid=$!
"$cable" -v key --ble "$ble" --adapter hci0 --relay "$relay" --scan-timeout 30 --no-link \
    --no-notify </dev/null >"$work/key.out" 2>"$work/key.log" &
key_pid=$!

# The phone: answers every new QR code the key prints, once.
phone_loop() {
    answered=0
    while kill -0 "$key_pid" 2>/dev/null; do
        count="$(grep -c 'Scan this code' "$work/key.log" 2>/dev/null || true)"
        if [ "${count:-0}" -gt "$answered" ] && [ ! -e "$work/no-phone" ]; then
            answered=$((answered + 1))
            uri="$(grep -o 'FIDO:/[0-9]*' "$work/key.log" | sed -n "${answered}p")"
            "$cable" phone "$uri" --relay "$relay" --ble "$ble" --adapter hci1 --yes \
                --store "$work/passkeys.json" --wait 30 >>"$work/phone.log" 2>&1 &
        elif [ "${count:-0}" -gt "$answered" ]; then
            answered=$((answered + 1))
        fi
        sleep 0.1
    done
}
phone_loop &
phone_loop_pid=$!

cleanup() {
    kill "$phone_loop_pid" "$key_pid" "$relay_pid" 2>/dev/null
}
trap cleanup EXIT

if ! hidraw="$(wait_for_hidraw "$name" "$key_pid" 30)"; then
    echo "key-tests: FAIL: no hidraw node for cable key"
    cat "$work/key.log"
    exit 1
fi
echo "key-tests: cable key is $hidraw (Bluetooth: $ble)"

if fido2-token -L | grep -q "^$hidraw: vendor=0x1209, product=0x0001"; then
    ok "fido2-token -L lists it"
else
    fail "fido2-token -L does not list $hidraw"
fi

echo "--- fido2-cred -M (register) and -V"
hash="$(head -c 32 /dev/urandom | base64)"
printf '%s\nexample.com\nada\n%s\n' "$hash" "$(head -c 16 /dev/urandom | base64)" >"$work/cred.in"
start=$(date +%s%N)
timeout 90 fido2-cred -M -r -i "$work/cred.in" -o "$work/cred.out" "$hidraw" es256 &
app=$!
# From the app's request to the QR code on the terminal (polled every 10 ms).
until grep -q 'Scan this code' "$work/key.log" || ! kill -0 "$app" 2>/dev/null; do
    sleep 0.01
done
echo "key-tests: figure: request to QR code $((($(date +%s%N) - start) / 1000000)) ms"
if wait "$app"; then
    ok "fido2-cred -M registered in $((($(date +%s%N) - start) / 1000000)) ms"
    sed -n 3p "$work/cred.out" | sed 's/^/  attestation format: /'
    if fido2-cred -V -i "$work/cred.out" -o "$work/cred.key" es256; then
        ok "fido2-cred -V verified the attestation"
    else
        fail "fido2-cred -V exited $?"
    fi
else
    fail "fido2-cred -M exited $?"
fi

echo "--- fido2-assert -G (sign in) and -V"
if [ -s "$work/cred.key" ]; then
    sed -n 1p "$work/cred.key" | tr -d '\n' >"$work/cred.id"
    sed -n '2,$p' "$work/cred.key" >"$work/pubkey.pem"
    printf '%s\nexample.com\n%s\n' "$(head -c 32 /dev/urandom | base64)" "$(cat "$work/cred.id")" >"$work/assert.in"
    if timeout 90 fido2-assert -G -p -i "$work/assert.in" -o "$work/assert.out" "$hidraw"; then
        ok "fido2-assert -G signed"
        if fido2-assert -V -p -i "$work/assert.out" "$work/pubkey.pem" es256; then
            ok "fido2-assert -V verified the signature with the registered key"
        else
            fail "fido2-assert -V exited $?"
        fi
    else
        fail "fido2-assert -G exited $?"
    fi
fi

echo "--- a silent probe (up=false): no QR code, no credentials"
qr_before="$(grep -c 'Scan this code' "$work/key.log")"
printf '%s\nexample.com\n' "$(head -c 32 /dev/urandom | base64)" >"$work/probe.in"
timeout 10 fido2-assert -G -r -t up=false -i "$work/probe.in" "$hidraw" >"$work/probe.out" 2>&1
probe=$?
cat "$work/probe.out"
if [ "$probe" -ne 0 ] && grep -q 'FIDO_ERR_NO_CREDENTIALS' "$work/probe.out" \
    && [ "$(grep -c 'Scan this code' "$work/key.log")" = "$qr_before" ]; then
    ok "the probe got FIDO_ERR_NO_CREDENTIALS and no QR code was shown"
else
    fail "the probe: exit $probe, QR codes $qr_before -> $(grep -c 'Scan this code' "$work/key.log")"
fi

echo "--- python-fido2 0.9 (Debian's): Fido2Client register and sign in, verified by Fido2Server"
if timeout 120 python3 "$here/key-client.py" "$hidraw"; then
    ok "python-fido2 0.9 registered and signed in"
else
    fail "python-fido2 0.9 exited $?"
fi

echo "--- python-fido2 2.x (PyPI's): the same with user verification required, then an allow list and an exclude list after its silent probes"
if [ ! -d /opt/python-fido2-2/fido2 ]; then
    fail "python-fido2 2.x is not in the guest (tests/vm/build-guest.sh puts it in /opt/python-fido2-2)"
elif PYTHONPATH=/opt/python-fido2-2 timeout 240 python3 "$here/key-client.py" "$hidraw"; then
    ok "python-fido2 2.x registered and signed in with user verification, with an allow list and an exclude list"
else
    fail "python-fido2 2.x exited $?"
fi

echo "--- authenticator-rs (Firefox's CTAP library): register, allow list, passkey, exclude list"
if [ -z "${CABLE_VM_AUTHENTICATOR_RS:-}" ]; then
    fail "CABLE_VM_AUTHENTICATOR_RS is not set (tests/vm/run-tests.sh builds it)"
elif timeout 400 "$CABLE_VM_AUTHENTICATOR_RS"; then
    ok "authenticator-rs registered, signed in with an allow list and with the passkey, and was refused an excluded registration"
else
    fail "authenticator-rs exited $?"
fi

echo "--- the app goes away mid-ceremony: the ceremony ends, the key stays usable"
touch "$work/no-phone"
printf '%s\nexample.com\n' "$(head -c 32 /dev/urandom | base64)" >"$work/gone.in"
fido2-assert -G -r -p -i "$work/gone.in" "$hidraw" >/dev/null 2>&1 &
app=$!
deadline=$(($(date +%s) + 20))
until [ "$(grep -c 'Scan this code' "$work/key.log")" -gt "$qr_before" ] || [ "$(date +%s)" -ge "$deadline" ]; do
    sleep 0.1
done
qr_before="$(grep -c 'Scan this code' "$work/key.log")"
kill -9 "$app"
wait "$app" 2>/dev/null
deadline=$(($(date +%s) + 10))
until grep -q 'cancelled during' "$work/key.log" || [ "$(date +%s)" -ge "$deadline" ]; do
    sleep 0.1
done
if grep -q 'cancelled during' "$work/key.log"; then
    ok "closing the device cancelled the ceremony"
else
    fail "the ceremony was not cancelled when the app went away"
fi
if fido2-token -I "$hidraw" | grep -q '^aaguid: 3e1d850b9060a1e88a3015564d2ef32b$'; then
    ok "the key answers the next app"
else
    fail "the key does not answer after the app went away"
fi

echo "--- two apps at once: the second waits for the first one's ceremony"
# The key tells the second app its channel is busy (libfido2 keeps asking); once the phone
# has answered the first, the second is served.
rm -f "$work/no-phone"
qr_before="$(grep -c 'Scan this code' "$work/key.log")"
printf '%s\nexample.com\n' "$(head -c 32 /dev/urandom | base64)" >"$work/first.in"
timeout 60 fido2-assert -G -r -p -i "$work/first.in" -o "$work/first.out" "$hidraw" &
app=$!
deadline=$(($(date +%s) + 20))
until [ "$(grep -c 'Scan this code' "$work/key.log")" -gt "$qr_before" ] || [ "$(date +%s)" -ge "$deadline" ]; do
    sleep 0.05
done
timeout 60 fido2-token -I "$hidraw" >"$work/second.out" 2>&1 &
second=$!
if wait "$app"; then
    ok "the first app signed in"
else
    fail "the first app exited $?"
fi
if wait "$second" && grep -q '^aaguid: 3e1d850b9060a1e88a3015564d2ef32b$' "$work/second.out"; then
    ok "the second app was served after the first"
else
    fail "the second app was not served: $(cat "$work/second.out")"
fi

echo "--- SIGTERM removes the key"
kill -TERM "$key_pid"
wait "$key_pid"
rc=$?
if [ "$rc" -eq 0 ] && [ ! -e "/sys/class/hidraw/$(basename "$hidraw")" ]; then
    ok "cable key exited 0 and $hidraw is gone"
else
    fail "after SIGTERM: exit $rc, $hidraw $( [ -e "/sys/class/hidraw/$(basename "$hidraw")" ] && echo still there || echo gone)"
fi

echo "--- cable key's log"
cat "$work/key.log"
if [ "$failures" -ne 0 ]; then
    echo "--- the phones' log"
    cat "$work/phone.log"
    echo "--- the relay's log"
    tail -20 "$work/relay.log"
    echo "key-tests: $failures check(s) failed"
    exit 1
fi
echo "key-tests: all checks passed"
