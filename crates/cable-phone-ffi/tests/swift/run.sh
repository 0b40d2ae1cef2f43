#!/usr/bin/env bash
# Compiles the committed Swift bindings (bindings/swift) with main.swift and runs that
# against the built library: the bindings compile with a current Swift, link the library,
# and blocking and async callbacks work.
#
# The Swift toolchain is Debian 13's `swiftlang` (Swift 6.0), installed by debootstrap into
# a root of its own, $SWIFT_ROOT or target/ci-tools/swift-trixie, so that the build
# machine's own system (Debian 12, which has no Swift) is left alone; the check is compiled
# and run inside it with chroot. Needs root, debootstrap and the Debian archive.
#
#   run.sh --prepare   only build the toolchain root (CI does this in the background)
#   run.sh             build it if missing, then compile and run the check
set -euo pipefail
crate="$(cd "$(dirname "$0")/../.." && pwd)"
root="$(cd "$crate/../.." && pwd)"
toolchain="${SWIFT_ROOT:-$root/target/ci-tools/swift-trixie}"
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"

if [ "$(id -u)" -ne 0 ]; then
    echo "run.sh needs root (debootstrap and chroot)" >&2
    exit 1
fi

if [ ! -x "$toolchain/usr/bin/swiftc" ]; then
    rm -rf "$toolchain.partial"
    mkdir -p "$(dirname "$toolchain")"
    debootstrap --variant=minbase --include=swiftlang,libc6-dev trixie \
        "$toolchain.partial" "$mirror" >"$toolchain.log" 2>&1 \
        || { tail -20 "$toolchain.log" >&2; echo "debootstrap failed (log: $toolchain.log)" >&2; exit 1; }
    mv "$toolchain.partial" "$toolchain"
fi
[ "${1:-}" = --prepare ] && exit 0

lib="$("$crate/tests/library.sh")"
work="$toolchain/check"
rm -rf "$work" && mkdir -p "$work"
cp "$crate"/bindings/swift/cable_phone.swift "$crate"/bindings/swift/cable_phoneFFI.h \
    "$crate"/tests/swift/main.swift "$lib" "$work/"
mount -t proc proc "$toolchain/proc"
trap 'umount "$toolchain/proc"' EXIT
# Swift 5 language mode: in Swift 6 mode swiftc 6.0.3 stops on an internal assertion
# (TransferNonSendable) in the generated async-callback code.
# shellcheck disable=SC2016 # expanded by the shell inside the root
chroot "$toolchain" /bin/sh -ec '
    swiftc --version
    cd /check
    swiftc -swift-version 5 -module-name check -import-objc-header cable_phoneFFI.h \
        -L . -lcable_phone_ffi cable_phone.swift main.swift -o check
    result="$(LD_LIBRARY_PATH=. ./check)"
    echo "$result"
    [ "$result" = ok ]'
