#!/usr/bin/env python3
"""In the guest: python-fido2's Fido2Client registers and signs in through `cable key` at
HIDRAW (the phone answers each QR code), and python-fido2's Fido2Server, a relying party
that shares no code with this project, verifies both. Runs with the python3-fido2 of
Debian bookworm (0.9) and with python-fido2 2.x from PyPI (PYTHONPATH), whose client and
server APIs differ. 2.x asks for user verification, which the phone gives, signs in with
the passkey (no allow list), then with an allow list and registers with an exclude list:
2.x first asks the key silently which listed credential it holds (its pre-flight), and the
sites here list a credential of another authenticator first.

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
    from fido2.client import (ClientError, DefaultClientDataCollector, Fido2Client,
                              UserInteraction)
    from fido2.ctap import CtapError
    from fido2.server import to_descriptor
    from fido2.webauthn import PublicKeyCredentialDescriptor, PublicKeyCredentialType

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

    # A passkey sign-in (empty allow list).
    options, state = server.authenticate_begin(user_verification="required")
    got = client.get_assertion(options.public_key).get_response(0)
    server.authenticate_complete(state, [auth_data.credential_data], got)
    print("python-fido2 %s: signed in with the passkey" % VERSION)

    # The site lists a credential of another authenticator before the phone's: 2.x probes
    # the list silently, sends the credential the key named, and the phone signs with its own.
    elsewhere = PublicKeyCredentialDescriptor(type=PublicKeyCredentialType.PUBLIC_KEY,
                                              id=bytes(range(32)))
    listed = [elsewhere, to_descriptor(auth_data.credential_data)]
    options, state = server.authenticate_begin(listed, user_verification="required")
    got = client.get_assertion(options.public_key).get_response(0)
    if got.raw_id != auth_data.credential_data.credential_id:
        sys.exit("python-fido2: signed in with %s, not the phone's credential" % got.raw_id.hex())
    server.authenticate_complete(state, [auth_data.credential_data], got)
    print("python-fido2 %s: signed in with an allow list after its silent probe" % VERSION)

    # Registering again while the site excludes the phone's credential: the phone refuses.
    options, state = server.register_begin(user, listed, user_verification="required")
    try:
        client.make_credential(options.public_key)
    except ClientError as e:
        cause = getattr(e.cause, "code", None)
        if e.code != ClientError.ERR.DEVICE_INELIGIBLE or cause != CtapError.ERR.CREDENTIAL_EXCLUDED:
            sys.exit("python-fido2: the excluded registration failed otherwise: %r" % e)
        print("python-fido2 %s: the exclude list reached the phone (credential excluded)" % VERSION)
    else:
        sys.exit("python-fido2: registered although the site excluded the phone's credential")


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
