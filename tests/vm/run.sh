#!/usr/bin/env bash
# Boots the test guest (tests/vm/build-guest.sh) with this workspace shared read-write at the
# same path, runs one shell command in it as root, prints the guest's console and exits with
# the command's status.
#
#   tests/vm/run.sh [--timeout SECS] [--net] [--guest DIR] -- COMMAND...
#
# --timeout  bound on the whole VM, boot included (default 300 s); on expiry qemu is killed
#            and the exit status is 124
# --net      user-mode network: the host's loopback is 10.0.2.2 in the guest
# --guest    where build-guest.sh put vmlinux and rootfs.cpio (default target/vm)
#
# Hardware virtualisation is used only when the host really has it (kvm_intel or kvm_amd
# loaded and /dev/kvm usable); otherwise qemu emulates (TCG), which is slower but works
# everywhere. A /dev/kvm alone is not enough: nested software hypervisors provide one whose
# KVM hangs a stock kernel at boot.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
workspace="$(cd "$here/../.." && pwd)"
timeout_secs=300
net=(-nic none)
guest="$workspace/target/vm"
while [ $# -gt 0 ]; do
    case "$1" in
        --timeout) timeout_secs="$2"; shift 2 ;;
        --net) net=(-nic 'user,model=virtio-net-pci'); shift ;;
        --guest) guest="$2"; shift 2 ;;
        --) shift; break ;;
        *) echo "run.sh: unknown option $1 (see the comment at the top)" >&2; exit 2 ;;
    esac
done
if [ $# -eq 0 ]; then
    echo "run.sh: no command given" >&2
    exit 2
fi
for f in vmlinux rootfs.cpio; do
    if [ ! -f "$guest/$f" ]; then
        echo "run.sh: $guest/$f is missing: run tests/vm/build-guest.sh first" >&2
        exit 2
    fi
done

if { [ -d /sys/module/kvm_intel ] || [ -d /sys/module/kvm_amd ]; } && [ -w /dev/kvm ]; then
    accel=(-accel kvm -cpu host)
else
    accel=(-accel tcg -cpu max)
fi

# The job's folder lives in the shared workspace: the guest writes the exit status there.
mkdir -p "$workspace/target/vm/run"
jobdir="$(mktemp -d "$workspace/target/vm/run/job.XXXXXX")"
# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
    if [ -n "${qemu_pid:-}" ]; then kill -9 "$qemu_pid" 2>/dev/null || true; fi
    rm -rf "$jobdir"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
{
    printf 'cd %q || exit 1\n' "$PWD"
    printf '%q ' "$@"
    printf '\n'
} >"$jobdir/job.sh"

started=$SECONDS
qemu-system-x86_64 -M pc "${accel[@]}" -m 1024 -smp 1 \
    -nodefaults -no-user-config -display none -serial stdio -no-reboot \
    -kernel "$guest/vmlinux" -initrd "$guest/rootfs.cpio" \
    -append "console=ttyS0 quiet loglevel=3 panic=-1 cable.share=$workspace cable.job=$jobdir/job.sh" \
    -virtfs "local,path=$workspace,mount_tag=host0,security_model=none,id=host0" \
    "${net[@]}" </dev/null &
qemu_pid=$!
# Bound the VM without a second process group: poll, then kill.
while kill -0 "$qemu_pid" 2>/dev/null; do
    if [ $((SECONDS - started)) -ge "$timeout_secs" ]; then
        echo "run.sh: the VM did not finish within ${timeout_secs} s; killed" >&2
        kill -9 "$qemu_pid" 2>/dev/null || true
        wait "$qemu_pid" 2>/dev/null || true
        qemu_pid=
        exit 124
    fi
    sleep 0.2
done
wait "$qemu_pid" || true
qemu_pid=
if [ ! -f "$jobdir/rc" ]; then
    echo "run.sh: the guest ended without reporting an exit status (see its console above)" >&2
    exit 125
fi
rc="$(cat "$jobdir/rc")"
echo "run.sh: job exited $rc after $((SECONDS - started)) s" >&2
exit "$rc"
