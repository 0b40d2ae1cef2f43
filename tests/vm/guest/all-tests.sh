#!/bin/sh
# In the guest: every VM test in one boot: the real-BlueZ tests, then the virtual security key
# on the real uhid. Both run even if the first fails; the status is the first failure's.
#
#   all-tests.sh BLUEZ_TEST_EXE UHID_KEY_EXE [TEST_FILTER...]
set -u
here="$(cd "$(dirname "$0")" && pwd)"
bluez_exe="$1"
uhid_exe="$2"
shift 2
echo "==> real BlueZ (bluetoothd with emulated controllers)"
"$here/bluetooth-tests.sh" "$bluez_exe" "$@"
bluez=$?
echo "==> virtual security key (uhid, hidraw, libfido2, python-fido2)"
"$here/uhid-tests.sh" "$uhid_exe"
uhid=$?
echo "==> VM tests: real BlueZ exit $bluez, virtual key exit $uhid"
[ "$bluez" -eq 0 ] || exit "$bluez"
exit "$uhid"
