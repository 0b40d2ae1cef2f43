#!/usr/bin/env bash
# Runs a private D-Bus with the mock BlueZ (bluez_cable.py) for trying the real BLE backends
# by hand, e.g. `cable phone --ble bluez` and `cable login --ble bluez` in two terminals.
#
#   tests/ble-mock/mock-bluez.sh start [DIR]   start bus + mock with adapter hci0, print the export line
#   tests/ble-mock/mock-bluez.sh stop  [DIR]   stop what `start` started
#
# Needs dbus-daemon and python3-dbusmock (Debian: dbus, python3-dbusmock).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cmd="${1:-start}"
dir="${2:-${TMPDIR:-/tmp}/cable-ble-mock}"
python="${CABLE_MOCK_PYTHON:-/usr/bin/python3}"

case "$cmd" in
start)
    mkdir -p "$dir"
    address="unix:path=$dir/bus"
    dbus-daemon --session --address="$address" --fork --print-pid=1 >"$dir/dbus.pid" 2>"$dir/dbus.log"
    DBUS_SYSTEM_BUS_ADDRESS="$address" "$python" -m dbusmock --system \
        --template "$here/bluez_cable.py" >"$dir/mock.log" 2>&1 &
    echo $! >"$dir/mock.pid"
    for _ in $(seq 1 100); do
        owned="$(dbus-send --bus="$address" --print-reply --dest=org.freedesktop.DBus \
            /org/freedesktop/DBus org.freedesktop.DBus.NameHasOwner string:org.bluez 2>/dev/null || true)"
        case "$owned" in *"boolean true"*) break ;; esac
        sleep 0.05
    done
    dbus-send --bus="$address" --print-reply --dest=org.bluez / \
        org.bluez.Mock.AddAdapter string:hci0 string:cable-mock >/dev/null
    echo "export DBUS_SYSTEM_BUS_ADDRESS=$address"
    echo "# mock log: $dir/mock.log; stop with: $0 stop $dir" >&2
    ;;
stop)
    for f in mock.pid dbus.pid; do
        if [ -f "$dir/$f" ]; then
            kill "$(cat "$dir/$f")" 2>/dev/null || true
            rm -f "$dir/$f"
        fi
    done
    ;;
*)
    echo "usage: $0 start|stop [DIR]" >&2
    exit 2
    ;;
esac
