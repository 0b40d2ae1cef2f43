#!/usr/bin/env python3
"""In the guest: python-fido2's Fido2Client registers and signs in through `cable key` at
HIDRAW (the phone answers each QR code), and python-fido2's Fido2Server, a relying party
that shares no code with this project, verifies both. Written for the python3-fido2 of
Debian bookworm (0.9).

    key-client.py HIDRAW
"""
import sys

from fido2.client import Fido2Client
from fido2.hid import CtapHidDevice
from fido2.server import Fido2Server
from fido2.webauthn import PublicKeyCredentialRpEntity, PublicKeyCredentialUserEntity

ORIGIN = "https://example.org"


def main():
    path = sys.argv[1]
    devices = [d for d in CtapHidDevice.list_devices() if d.descriptor.path == path]
    if len(devices) != 1:
        sys.exit("python-fido2: %s is not listed" % path)
    client = Fido2Client(devices[0], ORIGIN)
    server = Fido2Server(PublicKeyCredentialRpEntity("example.org", "Example"))

    user = PublicKeyCredentialUserEntity(b"user-ada", "ada", display_name="Ada")
    options, state = server.register_begin(user, resident_key=True,
                                           user_verification="preferred")
    made = client.make_credential(options["publicKey"])
    auth_data = server.register_complete(state, made.client_data, made.attestation_object)
    print("python-fido2: registered", auth_data.credential_data.credential_id.hex())

    options, state = server.authenticate_begin([auth_data.credential_data])
    got = client.get_assertion(options["publicKey"]).get_response(0)
    server.authenticate_complete(state, [auth_data.credential_data], got.credential_id,
                                 got.client_data, got.authenticator_data, got.signature)
    print("python-fido2: signed in, verified by Fido2Server")


if __name__ == "__main__":
    main()
