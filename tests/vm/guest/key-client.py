#!/usr/bin/env python3
"""In the guest: python-fido2's Fido2Client registers and signs in through `cable key` at
HIDRAW (the phone answers each QR code), and python-fido2's Fido2Server, a relying party
that shares no code with this project, verifies both. Runs with the python3-fido2 of
Debian bookworm (0.9) and with python-fido2 2.x from PyPI (PYTHONPATH), whose client and
server APIs differ; 2.x asks for user verification, which the phone gives, and signs in
with the passkey (no allow list).

    key-client.py HIDRAW
"""
import sys
from importlib import metadata

from fido2.hid import CtapHidDevice
from fido2.server import Fido2Server
from fido2.webauthn import PublicKeyCredentialRpEntity, PublicKeyCredentialUserEntity

VERSION = metadata.version("fido2")
ORIGIN = "https://example.org"
USER = dict(id=b"user-ada", name="ada", display_name="Ada")


def version_0_9(device, server):
    from fido2.client import Fido2Client

    client = Fido2Client(device, ORIGIN)
    user = PublicKeyCredentialUserEntity(**USER)
    options, state = server.register_begin(user, resident_key=True,
                                           user_verification="preferred")
    made = client.make_credential(options["publicKey"])
    auth_data = server.register_complete(state, made.client_data, made.attestation_object)
    print("python-fido2 %s: registered" % VERSION,
          auth_data.credential_data.credential_id.hex())

    options, state = server.authenticate_begin([auth_data.credential_data])
    got = client.get_assertion(options["publicKey"]).get_response(0)
    server.authenticate_complete(state, [auth_data.credential_data], got.credential_id,
                                 got.client_data, got.authenticator_data, got.signature)


def version_2(device, server):
    from fido2.client import DefaultClientDataCollector, Fido2Client, UserInteraction

    class Interaction(UserInteraction):
        def request_uv(self, permissions, rp_id):
            return True

    client = Fido2Client(device, client_data_collector=DefaultClientDataCollector(ORIGIN),
                         user_interaction=Interaction())
    # What 2.x reads from getInfo to decide how to ask for user verification.
    print("python-fido2 %s: pin_uv_protocols %s, options %s"
          % (VERSION, client.info.pin_uv_protocols, dict(client.info.options)))
    user = PublicKeyCredentialUserEntity(**USER)
    options, state = server.register_begin(user, resident_key_requirement="required",
                                           user_verification="required")
    made = client.make_credential(options.public_key)
    auth_data = server.register_complete(state, made)
    if not auth_data.is_user_verified():
        sys.exit("python-fido2: registered without user verification")
    print("python-fido2 %s: registered, user verified" % VERSION,
          auth_data.credential_data.credential_id.hex())

    # A passkey sign-in (empty allow list). With an allow list, 2.x first asks the key
    # silently which of the credentials it holds; the virtual key cannot know without the
    # phone, answers "none", and 2.x then sends a placeholder the phone does not know.
    options, state = server.authenticate_begin(user_verification="required")
    got = client.get_assertion(options.public_key).get_response(0)
    server.authenticate_complete(state, [auth_data.credential_data], got)


def main():
    path = sys.argv[1]
    devices = [d for d in CtapHidDevice.list_devices() if d.descriptor.path == path]
    if len(devices) != 1:
        sys.exit("python-fido2: %s is not listed" % path)
    server = Fido2Server(PublicKeyCredentialRpEntity(id="example.org", name="Example"))
    if int(VERSION.split(".")[0]) >= 2:
        version_2(devices[0], server)
    else:
        version_0_9(devices[0], server)
    print("python-fido2 %s: signed in, verified by Fido2Server" % VERSION)


if __name__ == "__main__":
    main()
