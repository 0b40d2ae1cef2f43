#!/usr/bin/env python3
"""A passkey manager in Python that serves hybrid ceremonies through the cable_phone bindings.

It keeps its own vault (a JSON file readable by its owner only), makes its own P-256 keys
and signatures with the `cryptography` package, speaks CTAP2 CBOR with `cbor2`, and leaves
the transport (QR secret, relay, Noise handshake, advert contents) to the binding. The
advert goes out through the loopback air, the files `cable --ble air` listens to, so that a
computer on the same machine can find this "phone" without Bluetooth; an Android app would
hand the same 20 bytes to BluetoothLeAdvertiser instead (docs/embedding.md).

    credential_manager.py --vault VAULT --relay ws://127.0.0.1:PORT --air DIR 'FIDO:/…'

With `--identity FILE` the phone has a long-term identity and offers the computer a link;
`--listen` then registers a Web Push endpoint of its own (a small HTTP server on
127.0.0.1, standing in for the app's push service) with the relay, waits for a linked
computer to contact it, and answers that computer without any QR code.

With `--async` the manager is an asyncio program: its authenticator and advertiser are
coroutines (`cable_phone.AsyncAuthenticator`, `cable_phone.AsyncAdvertiser`) that the binding
awaits on the program's event loop, and the session runs as `await session.run_async()`.

Every request is approved without asking anybody (the `--yes` of a demo): a real manager
verifies its user (biometrics, device PIN) before it answers, and says "uv" only then.
Exits 0 when a request was answered with success, 1 otherwise; one JSON line on stdout
says what happened.
"""

import argparse
import asyncio
import base64
import hashlib
import http.server
import json
import os
import queue
import secrets
import struct
import sys
import tempfile
import threading

import cbor2
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

import cable_phone

# CTAP2 status codes this manager answers with (CTAP 2.2 §8.2).
CTAP2_ERR_INVALID_CBOR = 0x12
CTAP2_ERR_MISSING_PARAMETER = 0x14
CTAP2_ERR_CREDENTIAL_EXCLUDED = 0x19
CTAP2_ERR_UNSUPPORTED_ALGORITHM = 0x26
CTAP2_ERR_UNSUPPORTED_OPTION = 0x2B
CTAP2_ERR_NO_CREDENTIALS = 0x2E

COSE_ES256 = -7
# This manager's AAGUID (a random constant of its own; the all-zero AAGUID says "unknown").
AAGUID = bytes.fromhex("6b0e7a34c5f14f0e9a5bd2f1c7e03a41")

FLAG_UP = 0x01
FLAG_UV = 0x04
FLAG_AT = 0x40

# The service UUID of caBLE adverts (FFF9 in the Bluetooth base UUID).
CABLE_SERVICE_UUID = "0000fff9-0000-1000-8000-00805f9b34fb"


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class CtapError(Exception):
    def __init__(self, code):
        super().__init__(f"CTAP status 0x{code:02x}")
        self.code = code


class Vault:
    """Credentials in a JSON file: written whole to a temporary file, flushed, then renamed
    over the old one, so a crash leaves the old vault or the new one, never half of either.
    Mode 0600 from the start. (A real app keeps private keys in Keystore/Keychain.)"""

    def __init__(self, path):
        self.path = path
        self.lock = threading.Lock()

    def load(self):
        try:
            with open(self.path, encoding="utf-8") as f:
                return json.load(f)["credentials"]
        except FileNotFoundError:
            return []

    def save(self, credentials):
        directory = os.path.dirname(os.path.abspath(self.path))
        fd, temp = tempfile.mkstemp(prefix=".vault-", dir=directory)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                os.fchmod(f.fileno(), 0o600)
                json.dump({"version": 1, "credentials": credentials}, f, indent=1)
                f.flush()
                os.fsync(f.fileno())
            os.replace(temp, self.path)
        except BaseException:
            os.unlink(temp)
            raise


def cose_public_key(private_key):
    numbers = private_key.public_key().public_numbers()
    return cbor2.dumps(
        {1: 2, 3: COSE_ES256, -1: 1, -2: numbers.x.to_bytes(32, "big"),
         -3: numbers.y.to_bytes(32, "big")},
        canonical=True)


def request_map(request):
    try:
        params = cbor2.loads(request)
    except Exception as e:
        raise CtapError(CTAP2_ERR_INVALID_CBOR) from e
    if not isinstance(params, dict):
        raise CtapError(CTAP2_ERR_INVALID_CBOR)
    return params


def required(params, key, kind):
    value = params.get(key)
    if not isinstance(value, kind):
        raise CtapError(CTAP2_ERR_MISSING_PARAMETER)
    return value


class PasskeyManager(cable_phone.Authenticator):
    """The binding's Authenticator: CTAP2 CBOR in, CTAP2 CBOR out (or a status)."""

    def __init__(self, vault):
        self.vault = vault
        self.served = []

    def get_info(self):
        return cbor2.dumps({
            1: ["FIDO_2_0", "FIDO_2_1"],
            3: AAGUID,
            4: {"rk": True, "up": True, "uv": True, "plat": False},
            5: 7609,
            9: ["hybrid", "internal"],
            10: [{"type": "public-key", "alg": COSE_ES256}],
        }, canonical=True)

    def make_credential(self, request):
        try:
            return self._make_credential(request_map(request))
        except CtapError as e:
            raise cable_phone.AuthenticatorError.Status(code=e.code)

    def get_assertion(self, request):
        try:
            return self._get_assertion(request_map(request))
        except CtapError as e:
            raise cable_phone.AuthenticatorError.Status(code=e.code)

    def _make_credential(self, params):
        client_data_hash = required(params, 1, bytes)
        rp = required(params, 2, dict)
        user = required(params, 3, dict)
        algorithms = required(params, 4, list)
        rp_id = rp.get("id")
        user_id = user.get("id")
        if not isinstance(rp_id, str) or not isinstance(user_id, bytes):
            raise CtapError(CTAP2_ERR_MISSING_PARAMETER)
        if not any(isinstance(a, dict) and a.get("alg") == COSE_ES256 for a in algorithms):
            raise CtapError(CTAP2_ERR_UNSUPPORTED_ALGORITHM)
        options = params.get(7) or {}
        if options.get("up") is False:
            raise CtapError(CTAP2_ERR_UNSUPPORTED_OPTION)
        with self.vault.lock:
            stored = self.vault.load()
            excluded = {d.get("id") for d in params.get(5) or [] if isinstance(d, dict)}
            if any(c["rp_id"] == rp_id and unb64url(c["id"]) in excluded for c in stored):
                raise CtapError(CTAP2_ERR_CREDENTIAL_EXCLUDED)

            # Here a real manager verifies its user; this one approves.
            key = ec.generate_private_key(ec.SECP256R1())
            credential_id = secrets.token_bytes(32)
            auth_data = (hashlib.sha256(rp_id.encode()).digest()
                         + bytes([FLAG_UP | FLAG_UV | FLAG_AT])
                         + struct.pack(">I", 0)
                         + AAGUID
                         + struct.pack(">H", len(credential_id)) + credential_id
                         + cose_public_key(key))
            # One account per user handle and RP: registering again replaces the old one.
            stored = [c for c in stored
                      if not (c["rp_id"] == rp_id and c["user_id"] == b64url(user_id))]
            stored.append({
                "id": b64url(credential_id),
                "rp_id": rp_id,
                "user_id": b64url(user_id),
                "user_name": user.get("name"),
                "display_name": user.get("displayName"),
                "sign_count": 0,
                "private_key": key.private_bytes(
                    serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                    serialization.NoEncryption()).decode(),
            })
            self.vault.save(stored)
        self.served.append(("makeCredential", rp_id))
        del client_data_hash  # "none" attestation: nothing is signed at registration
        return cbor2.dumps({1: "none", 2: auth_data, 3: {}}, canonical=True)

    def _get_assertion(self, params):
        rp_id = required(params, 1, str)
        client_data_hash = required(params, 2, bytes)
        allowed = {d.get("id") for d in params.get(3) or [] if isinstance(d, dict)}
        options = params.get(5) or {}
        with self.vault.lock:
            stored = self.vault.load()
            candidates = [c for c in stored if c["rp_id"] == rp_id
                          and (not allowed or unb64url(c["id"]) in allowed)]
            if not candidates:
                raise CtapError(CTAP2_ERR_NO_CREDENTIALS)
            if options.get("up") is False:
                # A silent probe: the credential exists, nobody is asked, nothing is signed
                # with the user's consent claimed.
                flags = 0
            else:
                # Here a real manager lets its user pick an account and verifies them.
                flags = FLAG_UP | FLAG_UV
            credential = candidates[-1]
            credential["sign_count"] += 1
            self.vault.save(stored)
        key = serialization.load_pem_private_key(
            credential["private_key"].encode(), password=None)
        auth_data = (hashlib.sha256(rp_id.encode()).digest() + bytes([flags])
                     + struct.pack(">I", credential["sign_count"]))
        signature = key.sign(auth_data + client_data_hash, ec.ECDSA(hashes.SHA256()))
        user = {"id": unb64url(credential["user_id"])}
        if flags & FLAG_UV:
            # Identifying details only after user verification (CTAP 2.2 §6.2.2).
            for field, key_name in (("user_name", "name"), ("display_name", "displayName")):
                if credential.get(field):
                    user[key_name] = credential[field]
        self.served.append(("getAssertion", rp_id))
        return cbor2.dumps({
            1: {"type": "public-key", "id": unb64url(credential["id"])},
            2: auth_data,
            3: signature,
            4: user,
        }, canonical=True)


class AirAdvertiser(cable_phone.Advertiser):
    """Puts the advert on the loopback air: one `<name>.advert` file holding
    `<service uuid> <hex>`, replaced atomically every second while advertising (scanners
    ignore files older than five seconds) and removed on stop."""

    def __init__(self, directory):
        self.directory = directory
        self.path = os.path.join(directory, f"python-{os.getpid()}.advert")
        self.stopping = threading.Event()
        self.thread = None

    def _write(self, line):
        temp = os.path.join(self.directory, f".python-{os.getpid()}.tmp")
        with open(temp, "w", encoding="ascii") as f:
            f.write(line)
        os.replace(temp, self.path)

    def start(self, service_data):
        line = f"{CABLE_SERVICE_UUID} {bytes(service_data).hex()}\n"
        try:
            os.makedirs(self.directory, exist_ok=True)
            self._write(line)
        except OSError as e:
            raise cable_phone.AdvertiserError.Failed(reason=f"{self.directory}: {e}")
        self.stopping.clear()

        def refresh():
            while not self.stopping.wait(1.0):
                try:
                    self._write(line)
                except OSError:
                    pass  # the directory may come back; meanwhile the advert goes stale
        self.thread = threading.Thread(target=refresh, daemon=True)
        self.thread.start()

    def stop(self):
        self.stopping.set()
        if self.thread is not None:
            self.thread.join()
            self.thread = None
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass


class AsyncPasskeyManager(cable_phone.AsyncAuthenticator):
    """The same manager for an asyncio program: the vault and the signatures (file I/O and
    CPU) run in a worker thread, so the event loop stays free for the app's UI meanwhile."""

    def __init__(self, manager):
        self.manager = manager

    async def get_info(self):
        return self.manager.get_info()

    async def make_credential(self, request):
        return await asyncio.to_thread(self.manager.make_credential, request)

    async def get_assertion(self, request):
        return await asyncio.to_thread(self.manager.get_assertion, request)


class AsyncAirAdvertiser(cable_phone.AsyncAdvertiser):
    """The loopback-air advert from an asyncio program: refreshed by a task on the event
    loop instead of a thread."""

    def __init__(self, directory):
        self.air = AirAdvertiser(directory)
        self.refresh = None

    async def start(self, service_data):
        line = f"{CABLE_SERVICE_UUID} {bytes(service_data).hex()}\n"
        try:
            os.makedirs(self.air.directory, exist_ok=True)
            self.air._write(line)
        except OSError as e:
            raise cable_phone.AdvertiserError.Failed(reason=f"{self.air.directory}: {e}")

        async def refresh():
            while True:
                await asyncio.sleep(1.0)
                try:
                    self.air._write(line)
                except OSError:
                    pass  # as in AirAdvertiser
        self.refresh = asyncio.get_running_loop().create_task(refresh())

    async def stop(self):
        if self.refresh is not None:
            self.refresh.cancel()
            self.refresh = None
        try:
            os.unlink(self.air.path)
        except FileNotFoundError:
            pass


class Narrator(cable_phone.ProgressListener):
    """Progress on stderr, as a phone's UI would show it."""

    def on_progress(self, event):
        print(f"credential manager: {event}", file=sys.stderr, flush=True)


class PushEndpoint:
    """An HTTP endpoint on 127.0.0.1 that takes Web Push messages (the relay POSTs them) and
    queues their bodies, still encrypted: the binding decrypts them with the identity's
    subscription keys. A phone gets the same bytes from its push service (FCM, UnifiedPush)."""

    def __init__(self):
        bodies = self.bodies = queue.Queue()

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length", "0"))
                if not 0 < length <= 4096:
                    self.send_response(400)
                    self.end_headers()
                    return
                bodies.put(self.rfile.read(length))
                self.send_response(201)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self):
        return f"http://127.0.0.1:{self.server.server_address[1]}/push"


def serve(session, use_async=False):
    try:
        if use_async:
            async def run():
                # The binding calls the coroutines from its own threads: they run here.
                cable_phone.uniffi_set_event_loop(asyncio.get_running_loop())
                return await session.run_async()
            outcome = asyncio.run(run())
        else:
            outcome = session.run()
    except cable_phone.SessionError as e:
        phase = getattr(e, "phase", None)
        print(json.dumps({"error": type(e).__name__, "phase": phase.name if phase else None,
                          "message": str(e)}))
        return 1
    if isinstance(outcome, cable_phone.Outcome.SERVED):
        print(json.dumps({"served": outcome.kind.name, "rp_id": outcome.rp_id,
                          "status": outcome.status}))
        return 0 if outcome.status == 0 else 1
    print(json.dumps({"served": None}))
    return 1


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("qr", nargs="?", help="the scanned FIDO:/ text")
    parser.add_argument("--vault", required=True, help="the credential file (created 0600)")
    parser.add_argument("--relay", required=True, help="the relay, ws:// or wss://")
    parser.add_argument("--air", required=True, help="the loopback air directory")
    parser.add_argument("--wait", type=int, default=120,
                        help="seconds to wait for the computer, and for the answer")
    parser.add_argument("--identity", help="the phone's identity file: link to computers")
    parser.add_argument("--name", help="the phone's name, shown by linked computers")
    parser.add_argument("--computer-name", help="what to call the computer a QR code links")
    parser.add_argument("--listen", action="store_true",
                        help="wait for one linked computer to contact this phone")
    parser.add_argument("--async", dest="use_async", action="store_true",
                        help="run as an asyncio program with coroutine callbacks")
    args = parser.parse_args()
    if (args.qr is None) != args.listen or (args.listen and not args.identity):
        parser.error("give a QR code, or --listen with --identity")

    manager = PasskeyManager(Vault(args.vault))
    config = cable_phone.SessionConfig(
        relay_url=args.relay,
        await_computer_timeout_secs=args.wait,
        authenticate_timeout_secs=args.wait)
    advertiser = AirAdvertiser(args.air)
    if args.use_async:
        manager = cable_phone.async_authenticator(AsyncPasskeyManager(manager))
        advertiser = cable_phone.async_advertiser(AsyncAirAdvertiser(args.air))
    try:
        identity = cable_phone.PhoneIdentity.open(args.identity) if args.identity else None
        if identity and args.name:
            identity.set_name(args.name)
        if not args.listen:
            if identity:
                session = cable_phone.PhoneSession.from_qr_linking(
                    args.qr, config, identity, args.computer_name, advertiser, manager,
                    Narrator())
            else:
                session = cable_phone.PhoneSession.from_qr(
                    args.qr, config, advertiser, manager, Narrator())
            return serve(session, args.use_async)

        endpoint = PushEndpoint()
        identity.register_for_contacts(args.relay, endpoint.url)
        print("credential manager: registered with the relay; waiting for contacts",
              file=sys.stderr, flush=True)
        try:
            body = endpoint.bodies.get(timeout=args.wait)
        except queue.Empty:
            print(json.dumps({"error": "no contact came"}))
            return 1
        session = cable_phone.PhoneSession.from_push(
            body, config, identity, advertiser, manager, Narrator())
        return serve(session, args.use_async)
    except (cable_phone.SessionError, cable_phone.IdentityError) as e:
        print(json.dumps({"error": type(e).__name__, "message": str(e)}))
        return 1


if __name__ == "__main__":
    sys.exit(main())
