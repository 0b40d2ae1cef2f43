"""Async callbacks from Python: coroutines the binding awaits without a thread of its own
waiting on them, cancelled with the session.

Run by tests/python.rs with the freshly generated module on PYTHONPATH.
"""
import asyncio

import cable_phone as cp

# A relay nothing listens on: none of these sessions gets as far as connecting.
CONFIG = cp.SessionConfig(relay_url="ws://127.0.0.1:9")
# {1: ["FIDO_2_0"]}
INFO = bytes.fromhex("a1018168464944 4f5f325f30".replace(" ", ""))


class Advertiser(cp.Advertiser):
    def start(self, service_data):
        raise AssertionError("no session here may advertise")

    def stop(self):
        pass


class WaitingAuthenticator(cp.AsyncAuthenticator):
    """get_info waits for the person forever; records being cancelled."""

    def __init__(self):
        self.asked = asyncio.Event()
        self.cancelled = asyncio.Event()

    async def get_info(self):
        self.asked.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.cancelled.set()
            raise

    async def make_credential(self, request):
        raise cp.AuthenticatorError.Status(code=0x27)

    async def get_assertion(self, request):
        raise cp.AuthenticatorError.Status(code=0x27)


class AnsweringAuthenticator(cp.AsyncAuthenticator):
    def __init__(self, info):
        self.info = info
        self.loop_thread_calls = 0

    async def get_info(self):
        await asyncio.sleep(0.01)
        self.loop_thread_calls += 1
        return self.info

    async def make_credential(self, request):
        raise cp.AuthenticatorError.Status(code=0x27)

    async def get_assertion(self, request):
        raise cp.AuthenticatorError.Status(code=0x2E)


async def main():
    cp.uniffi_set_event_loop(asyncio.get_running_loop())

    # Cancelling the session cancels the coroutine in flight.
    waiting = WaitingAuthenticator()
    session = cp.PhoneSession.from_qr(
        "FIDO:/1", CONFIG, Advertiser(), cp.async_authenticator(waiting), None)
    run = asyncio.ensure_future(session.run_async())
    await asyncio.wait_for(waiting.asked.wait(), 10)
    session.cancel()
    try:
        await asyncio.wait_for(run, 10)
        raise AssertionError("a cancelled session succeeded")
    except cp.SessionError.Cancelled as e:
        assert e.phase == cp.Phase.POST_HANDSHAKE, e.phase
    await asyncio.wait_for(waiting.cancelled.wait(), 10)

    # An async answer is checked like a blocking one: keys out of canonical order.
    bad = AnsweringAuthenticator(bytes.fromhex("a202000100"))
    session = cp.PhoneSession.from_qr(
        "FIDO:/1", CONFIG, Advertiser(), cp.async_authenticator(bad), None)
    try:
        await asyncio.wait_for(session.run_async(), 10)
        raise AssertionError("a non-canonical getInfo was accepted")
    except cp.SessionError.Authenticator as e:
        assert "canonical" in e.reason, e.reason
    assert bad.loop_thread_calls == 1

    # A good getInfo, then the QR code is read: the async path reaches the next phase.
    good = AnsweringAuthenticator(INFO)
    session = cp.PhoneSession.from_qr(
        "FIDO:/1", CONFIG, Advertiser(), cp.async_authenticator(good), None)
    try:
        await asyncio.wait_for(session.run_async(), 10)
        raise AssertionError("a malformed QR code was accepted")
    except cp.SessionError.InvalidQr as e:
        assert e.phase == cp.Phase.PARSE_QR, e.phase

    # The adapter is also a blocking Authenticator, callable from any thread but the loop's.
    adapter = cp.async_authenticator(AnsweringAuthenticator(INFO))
    assert await asyncio.to_thread(adapter.get_info) == INFO
    try:
        await asyncio.to_thread(adapter.make_credential, b"\xa0")
        raise AssertionError("a refusal was lost")
    except cp.AuthenticatorError.Status as e:
        assert e.code == 0x27, e.code


asyncio.run(main())
print("ok")
