#!/usr/bin/env bash
# Builds the test VM's guest once: Debian bookworm (debootstrap) with bluetoothd, btvirt,
# dbus, libfido2's tools and python3, Debian's stock kernel as an uncompressed vmlinux, and the
# kernel modules the tests load, packed as an initramfs whose /init runs one job (tests/vm/init).
#
#   tests/vm/build-guest.sh [OUT_DIR]     default OUT_DIR: target/vm
#
# Rebuilds only what changed: the root file system when the package list or the kernel
# package changes, the initramfs when this script or tests/vm/init changes. Needs root
# (debootstrap), debootstrap, dpkg-deb, cpio, python3 and the Debian archive; tests/vm/check.sh
# says which of them a machine lacks.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
workspace="$(cd "$here/../.." && pwd)"
out="${1:-$workspace/target/vm}"
mirror="${CABLE_VM_MIRROR:-http://deb.debian.org/debian}"
suite=bookworm
# What the jobs use: bluetoothd + btmon + btmgmt (bluez), btvirt (bluez-test-tools), the
# system bus (dbus), modprobe (kmod), ip (iproute2), ps/pgrep (procps), the libfido2 tools
# and python-fido2 for the security-key tests, python3 for small helpers.
# python3-cffi-backend: python3-cryptography depends on it through virtual packages, which
# debootstrap does not resolve.
packages=(bluez bluez-test-tools dbus kmod procps iproute2 python3 python3-fido2 python3-cffi-backend
    libfido2-1 fido2-tools)
# Module folders of the kernel package the guest needs: Bluetooth and its radio emulation,
# the AF_ALG crypto btvirt opens, uhid/hid, 9p over virtio for the shared workspace,
# virtio-net for the optional network.
module_dirs=(drivers/bluetooth drivers/hid drivers/virtio drivers/net/virtio_net.ko
    drivers/net/net_failover.ko net/core net/bluetooth net/rfkill net/9p fs/9p fs/netfs
    fs/fscache crypto lib arch/x86/crypto)

log() { printf 'build-guest: %s\n' "$*" >&2; }

mkdir -p "$out"
out="$(cd "$out" && pwd)"

# The kernel: the package linux-image-amd64 points at (the same kernel Debian's users run).
kernel_pkg="$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')"
if [ -z "$kernel_pkg" ]; then
    log "apt knows no linux-image-amd64 (run apt-get update)"
    exit 1
fi
kernel_version="${kernel_pkg#linux-image-}"
kernel_deb_version="$(apt-cache show "$kernel_pkg" | awk '/^Version:/ {print $2; exit}')"

root_key="$(printf '%s\n' "$suite" "$mirror" "${packages[*]}" "$kernel_pkg=$kernel_deb_version" "${module_dirs[*]}" | sha256sum | cut -c1-16)"
root="$out/root"
if [ "$(cat "$out/root.key" 2>/dev/null || true)" != "$root_key" ]; then
    log "root file system ($suite, ${packages[*]}) from $mirror"
    rm -rf "$root" "$out/root.key" "$out/kernel"
    include="$(IFS=,; echo "${packages[*]}")"
    debootstrap --variant=minbase --include="$include" "$suite" "$root" "$mirror" >"$out/debootstrap.log" 2>&1 \
        || { tail -20 "$out/debootstrap.log" >&2; log "debootstrap failed (log: $out/debootstrap.log)"; exit 1; }

    log "kernel $kernel_pkg $kernel_deb_version"
    mkdir -p "$out/kernel/deb"
    (cd "$out/kernel/deb" && apt-get download "$kernel_pkg=$kernel_deb_version" >/dev/null 2>&1) \
        || { log "apt-get download $kernel_pkg failed"; exit 1; }
    dpkg-deb -x "$out"/kernel/deb/*.deb "$out/kernel/x"
    python3 "$here/extract-vmlinux.py" "$out/kernel/x/boot/vmlinuz-$kernel_version" "$out/kernel/vmlinux"

    modules="$root/lib/modules/$kernel_version"
    mkdir -p "$modules/kernel"
    for d in "${module_dirs[@]}"; do
        mkdir -p "$modules/kernel/$(dirname "$d")"
        cp -a "$out/kernel/x/lib/modules/$kernel_version/kernel/$d" "$modules/kernel/$d"
    done
    cp "$out"/kernel/x/lib/modules/"$kernel_version"/modules.{order,builtin,builtin.modinfo} "$modules/"
    chroot "$root" depmod "$kernel_version"
    rm -rf "$out/kernel/x" "$out/kernel/deb"

    # What a job never reads: package caches and lists, documentation, locales.
    rm -rf "$root"/var/cache/apt/* "$root"/var/lib/apt/lists/* "$root"/usr/share/doc \
        "$root"/usr/share/man "$root"/usr/share/info "$root"/usr/share/locale
    echo "$root_key" >"$out/root.key"
fi

# python-fido2 2.x for the security-key tests (bookworm ships 0.9, whose client asks for
# user verification differently): the pure-Python wheel from PyPI, checked against its
# published digest, unpacked where PYTHONPATH finds it. Its one dependency, cryptography,
# is Debian's.
fido2_wheel=fido2-2.2.1-py3-none-any.whl
fido2_url=https://files.pythonhosted.org/packages/71/84/198d99c3312557ef6121cf78c38281efe9b3bc88cba0e2c05446f38a024d/$fido2_wheel
fido2_sha256=ed397da981b9ab133da6ead7309e41f924b566b749956129efe286fae097749f
if ! echo "$fido2_sha256  $out/$fido2_wheel" | sha256sum -c --status 2>/dev/null; then
    log "python-fido2 wheel from PyPI"
    python3 - "$fido2_url" "$out/$fido2_wheel.tmp" <<'PY' || { log "downloading $fido2_url failed"; exit 1; }
import sys, urllib.request
with urllib.request.urlopen(sys.argv[1], timeout=120) as r, open(sys.argv[2], "wb") as f:
    f.write(r.read())
PY
    if ! echo "$fido2_sha256  $out/$fido2_wheel.tmp" | sha256sum -c --status; then
        log "$fido2_wheel does not have the expected sha256 $fido2_sha256"
        exit 1
    fi
    mv "$out/$fido2_wheel.tmp" "$out/$fido2_wheel"
fi

image_key="$(cat "$out/root.key" "$here/init" "$0" | sha256sum | cut -c1-16)"
if [ "$(cat "$out/initramfs.key" 2>/dev/null || true)" != "$image_key" ] || [ ! -f "$out/rootfs.cpio" ]; then
    log "initramfs"
    install -m 0755 "$here/init" "$root/init"
    rm -rf "$root/opt/python-fido2-2"
    python3 -m zipfile -e "$out/$fido2_wheel" "$root/opt/python-fido2-2"
    (cd "$root" && find . -xdev -print0 | cpio --null -o -H newc --quiet) >"$out/rootfs.cpio.tmp"
    mv "$out/rootfs.cpio.tmp" "$out/rootfs.cpio"
    cp "$out/kernel/vmlinux" "$out/vmlinux"
    echo "$image_key" >"$out/initramfs.key"
fi
log "guest ready: $out/vmlinux, $out/rootfs.cpio ($(du -h "$out/rootfs.cpio" | cut -f1))"
