"""The bindings from Python: typed exceptions with their phase, before any network use.

Run by tests/python.rs with the freshly generated module on PYTHONPATH.
"""
import os
import tempfile

import cable_phone as cp


class Advertiser(cp.Advertiser):
    def __init__(self):
        self.started = 0

    def start(self, service_data):
        self.started += 1

    def stop(self):
        pass


class Authenticator(cp.Authenticator):
    def __init__(self, info):
        self.info = info

    def get_info(self):
        return self.info

    def make_credential(self, request):
        raise cp.AuthenticatorError.Status(code=0x27)

    def get_assertion(self, request):
        raise cp.AuthenticatorError.Status(code=0x2E)


# A relay nothing listens on: none of these sessions may get as far as connecting.
CONFIG = cp.SessionConfig(relay_url="ws://127.0.0.1:9")

try:
    cp.PhoneSession.from_qr(
        "FIDO:/1", cp.SessionConfig(relay_url="http://relay.example"),
        Advertiser(), Authenticator(b"\xa0"), None)
    raise AssertionError("an http:// relay was accepted")
except cp.SessionError.InvalidConfig as e:
    assert "scheme" in e.reason, e.reason

try:
    cp.PhoneSession.from_qr(
        "FIDO:/1", cp.SessionConfig(relay_url="wss://relay.example.org"),
        Advertiser(), Authenticator(b"\xa0"), None)
    raise AssertionError("a relay no advert can name was accepted")
except cp.SessionError.InvalidConfig as e:
    assert "domain id" in e.reason, e.reason

# An assigned name, and any host with the domain id given, are fine.
cp.PhoneSession.from_qr(
    "FIDO:/1", cp.SessionConfig(relay_url="wss://cable.ua5v.com"),
    Advertiser(), Authenticator(b"\xa0"), None)
cp.PhoneSession.from_qr(
    "FIDO:/1", cp.SessionConfig(relay_url="wss://relay.example.org", domain_id=266),
    Advertiser(), Authenticator(b"\xa0"), None)

# {2: 0, 1: 0}: keys out of canonical order.
advertiser = Advertiser()
session = cp.PhoneSession.from_qr(
    "FIDO:/1", CONFIG, advertiser, Authenticator(b"\xa2\x02\x00\x01\x00"), None)
try:
    session.run()
    raise AssertionError("a non-canonical getInfo was accepted")
except cp.SessionError.Authenticator as e:
    assert e.phase == cp.Phase.POST_HANDSHAKE, e.phase
    assert "canonical" in e.reason, e.reason
assert advertiser.started == 0

try:
    session.run()
    raise AssertionError("a session ran twice")
except cp.SessionError.AlreadyRun:
    pass

session = cp.PhoneSession.from_qr(
    "FIDO:/1", CONFIG, Advertiser(), Authenticator(b"\xa1\x01\x80"), None)
try:
    session.run()
    raise AssertionError("a malformed QR code was accepted")
except cp.SessionError.InvalidQr as e:
    assert e.phase == cp.Phase.PARSE_QR, e.phase

# A push message that was not encrypted to this identity: refused before any network use.
with tempfile.TemporaryDirectory() as home:
    identity = cp.PhoneIdentity.open(os.path.join(home, "identity.json"))
    assert identity.contact_id() is None
    assert identity.links() == []
    assert oct(os.stat(os.path.join(home, "identity.json")).st_mode & 0o777) == "0o600"
    advertiser = Advertiser()
    session = cp.PhoneSession.from_push(
        b"\x00" * 100, CONFIG, identity, advertiser, Authenticator(b"\xa0"), None)
    try:
        session.run()
        raise AssertionError("a push message for another phone was accepted")
    except cp.SessionError.InvalidContact as e:
        assert e.phase == cp.Phase.CONTACT, e.phase
        assert "decrypt" in e.reason, e.reason
    assert advertiser.started == 0
    try:
        identity.register_for_contacts("ws://127.0.0.1:9", "ftp://push.example")
        raise AssertionError("a non-HTTP push endpoint was accepted")
    except cp.IdentityError.InvalidArgument as e:
        assert "push endpoint" in e.reason, e.reason

print("ok")
