#!/bin/sh
# In the guest: every VM test in one boot: the real-BlueZ tests, then the virtual security key
# on the real uhid. Both run even if the first fails; the status is the first failure's.
#
#   all-tests.sh BLUEZ_TEST_EXE UHID_KEY_EXE CABLE_EXE RELAY_EXE [TEST_FILTER...]
set -u
here="$(cd "$(dirname "$0")" && pwd)"
bluez_exe="$1"
uhid_exe="$2"
cable_exe="$3"
relay_exe="$4"
shift 4
echo "==> real BlueZ (bluetoothd with emulated controllers)"
"$here/bluetooth-tests.sh" "$bluez_exe" "$@"
bluez=$?
echo "==> virtual security key (uhid, hidraw, libfido2, python-fido2)"
"$here/uhid-tests.sh" "$uhid_exe"
uhid=$?
echo "==> cable key: libfido2 and python-fido2 through the virtual key to the phone"
"$here/key-tests.sh" "$cable_exe" "$relay_exe"
key=$?
echo "==> VM tests: real BlueZ exit $bluez, virtual key exit $uhid, cable key exit $key"
[ "$bluez" -eq 0 ] || exit "$bluez"
[ "$uhid" -eq 0 ] || exit "$uhid"
exit "$key"
