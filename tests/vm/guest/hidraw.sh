# shellcheck shell=sh
# Sourced by the guest's key tests.
#
# wait_for_hidraw NAME PID SECONDS: prints /dev/hidrawN of the HID device named NAME once the
# kernel has made it; returns 1 if SECONDS pass or process PID (the key) ends first.
wait_for_hidraw() {
    deadline=$(($(date +%s) + $3))
    while :; do
        for uevent in /sys/class/hidraw/hidraw*/device/uevent; do
            if [ -f "$uevent" ] && grep -qx "HID_NAME=$1" "$uevent"; then
                echo "/dev/$(basename "$(dirname "$(dirname "$uevent")")")"
                return 0
            fi
        done
        if [ "$(date +%s)" -ge "$deadline" ] || ! kill -0 "$2" 2>/dev/null; then
            return 1
        fi
        sleep 0.1
    done
}
