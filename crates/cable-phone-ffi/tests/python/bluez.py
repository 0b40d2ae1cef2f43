"""The bundled BlueZ advertiser from Python, against the mock BlueZ tests/bluez.rs runs.

Prints "on air" once the advert is registered, withdraws it when a line arrives on stdin,
then prints "stopped".
"""
import sys

import cable_phone as cp

try:
    cp.bluez_advertiser("hci7")
    raise AssertionError("an adapter that does not exist was accepted")
except cp.AdvertiserError.Failed as e:
    assert "hci7" in e.reason, e.reason

advertiser = cp.bluez_advertiser(None)
try:
    advertiser.start(bytes(19))
    raise AssertionError("19 bytes of service data were accepted")
except cp.AdvertiserError.Failed as e:
    assert "20 bytes" in e.reason, e.reason

# A second start replaces the first advert: one on the air at a time.
advertiser.start(bytes(20))
advertiser.start(bytes(range(20)))
print("on air", flush=True)
sys.stdin.readline()
advertiser.stop()
print("stopped", flush=True)
