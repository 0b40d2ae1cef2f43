#!/usr/bin/env python3
"""In the guest: python-fido2 finds the virtual key at HIDRAW and reads its getInfo.

    uhid-info.py HIDRAW AAGUID_HEX
"""
import sys

from fido2.ctap2 import Ctap2
from fido2.hid import CtapHidDevice


def main():
    path, aaguid = sys.argv[1], sys.argv[2]
    devices = list(CtapHidDevice.list_devices())
    print("python-fido2: devices", [d.descriptor.path for d in devices])
    matching = [d for d in devices if d.descriptor.path == path]
    if len(matching) != 1:
        sys.exit("python-fido2: %s is not listed" % path)
    dev = matching[0]
    print("python-fido2: descriptor", dev.descriptor)
    print("python-fido2: CTAPHID version", dev.version, "capabilities", hex(dev.capabilities))
    info = Ctap2(dev).info
    print("python-fido2: versions", info.versions)
    print("python-fido2: aaguid", bytes(info.aaguid).hex())
    print("python-fido2: options", info.options)
    print("python-fido2: max_msg_size", info.max_msg_size)
    print("python-fido2: transports", info.transports)
    print("python-fido2: pin_uv_protocols", info.pin_uv_protocols)
    expected = {
        "versions": (info.versions, ["FIDO_2_0", "FIDO_2_1"]),
        "aaguid": (bytes(info.aaguid).hex(), aaguid),
        "options": (info.options, {"rk": True, "up": True, "uv": True, "plat": False}),
        "max_msg_size": (info.max_msg_size, 7609),
        "transports": (info.transports, ["hybrid", "usb"]),
        "pin_uv_protocols": (info.pin_uv_protocols, [2, 1]),
        "report sizes": (
            (dev.descriptor.report_size_in, dev.descriptor.report_size_out),
            (64, 64),
        ),
    }
    wrong = {k: v for k, v in expected.items() if v[0] != v[1]}
    if wrong:
        sys.exit("python-fido2: unexpected %r" % wrong)
    print("python-fido2: getInfo as expected")


if __name__ == "__main__":
    main()
