#!/usr/bin/env python3
"""Extracts the uncompressed ELF kernel from a bzImage (Debian's /boot/vmlinuz-*).

qemu boots an ELF vmlinux through its PVH note and so skips the kernel's own decompressor,
which under emulation is most of the boot time. Debian compresses its kernels with xz.
"""
import lzma
import sys

XZ_MAGIC = b"\xfd7zXZ\x00"


def extract(image: bytes) -> bytes:
    start = image.find(XZ_MAGIC)
    while start != -1:
        try:
            kernel = lzma.LZMADecompressor().decompress(image[start:])
        except lzma.LZMAError:
            kernel = b""
        if kernel.startswith(b"\x7fELF"):
            return kernel
        start = image.find(XZ_MAGIC, start + 1)
    raise SystemExit("no xz-compressed ELF kernel found in the image")


def main() -> None:
    if len(sys.argv) != 3:
        raise SystemExit("usage: extract-vmlinux.py BZIMAGE OUT")
    with open(sys.argv[1], "rb") as f:
        kernel = extract(f.read())
    with open(sys.argv[2], "wb") as f:
        f.write(kernel)


if __name__ == "__main__":
    main()
