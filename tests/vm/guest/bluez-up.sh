#!/bin/sh
# In the guest: the system bus, bluetoothd, btmon and btvirt with COUNT emulated LE
# controllers (hci0 … hci<COUNT-1>) that hear each other; returns once bluetoothd has them
# all powered. Logs go to LOG_DIR.
#
#   bluez-up.sh COUNT LOG_DIR
#
# Order matters: bluetoothd must be on the bus before btvirt creates the controllers, or it
# misses the first one's Index Added. btvirt needs the AF_ALG modules the init loads.
set -eu
count="$1"
logs="$2"
mkdir -p /run/dbus "$logs"

# Polls a command until it succeeds, for at most 30 s (dbus-send alone takes a good part of a
# second under emulation on a loaded host, so the bound is time, not tries).
wait_for() {
    what="$1"
    shift
    deadline=$(($(date +%s) + 30))
    until "$@" >/dev/null 2>&1; do
        if [ "$(date +%s)" -ge "$deadline" ]; then
            echo "bluez-up: timed out waiting for $what" >&2
            tail -n 20 "$logs"/*.log >&2 || true
            exit 1
        fi
        sleep 0.1
    done
}

bluez_owned() {
    dbus-send --system --print-reply --dest=org.freedesktop.DBus /org/freedesktop/DBus \
        org.freedesktop.DBus.NameHasOwner string:org.bluez | grep -q 'boolean true'
}

powered() {
    dbus-send --system --print-reply --dest=org.bluez "/org/bluez/$1" \
        org.freedesktop.DBus.Properties.Get string:org.bluez.Adapter1 string:Powered \
        | grep -q 'boolean true'
}

dbus-daemon --system --fork
# shellcheck disable=SC2086 # the flags are words
/usr/libexec/bluetooth/bluetoothd -n ${CABLE_BLUETOOTHD_FLAGS:-} >"$logs/bluetoothd.log" 2>&1 &
wait_for "bluetoothd on the system bus" bluez_owned
# A btsnoop capture (read it with `btmon -T -r`): btmon's text output to a file is buffered
# and lost when the guest powers off.
btmon -w "$logs/btmon.snoop" >"$logs/btmon.log" 2>&1 &
wait_for "btmon" test -s "$logs/btmon.snoop"
btvirt "-l$count" >"$logs/btvirt.log" 2>&1 &

i=0
while [ "$i" -lt "$count" ]; do
    wait_for "hci$i in bluetoothd" dbus-send --system --print-reply --dest=org.bluez "/org/bluez/hci$i" \
        org.freedesktop.DBus.Properties.Get string:org.bluez.Adapter1 string:Address
    powered "hci$i" || dbus-send --system --print-reply --dest=org.bluez "/org/bluez/hci$i" \
        org.freedesktop.DBus.Properties.Set string:org.bluez.Adapter1 string:Powered \
        variant:boolean:true >/dev/null
    wait_for "hci$i powered" powered "hci$i"
    i=$((i + 1))
done
echo "bluez-up: bluetoothd $(/usr/libexec/bluetooth/bluetoothd --version) with $count emulated controllers"
