//! `bluez_advertiser()` from Python puts the service data on BlueZ (a mock BlueZ on a
//! private D-Bus) as a broadcast advertisement under 0xFFF9, and `stop()` withdraws it.
#![allow(clippy::unwrap_used)]

mod support;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

use cable_ble::testing::MockBluez;

const FFF9: &str = "0000fff9-0000-1000-8000-00805f9b34fb";

#[test]
fn python_advertises_through_the_bundled_bluez_advertiser() {
    let mock = MockBluez::start().unwrap();
    let control = mock.control().unwrap();
    control.add_adapter("hci0").unwrap();

    let dir = tempfile::tempdir().unwrap();
    support::generate("python", dir.path());
    std::fs::copy(support::cdylib(), dir.path().join(support::CDYLIB_NAME)).unwrap();
    let python = std::env::var("CABLE_TEST_PYTHON").unwrap_or_else(|_| "/usr/bin/python3".into());
    let mut child = Command::new(&python)
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/python/bluez.py"
        ))
        .env("PYTHONPATH", dir.path())
        .env("DBUS_SYSTEM_BUS_ADDRESS", mock.bus_address())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "on air", "the script failed\n{}", mock.log());

    let adverts = control.advertisements("hci0").unwrap();
    assert_eq!(adverts.len(), 1, "{adverts:?}");
    assert_eq!(adverts[0].kind, "broadcast");
    let expected: Vec<u8> = (0..20).collect();
    assert_eq!(adverts[0].service_data.get(FFF9), Some(&expected));

    child.stdin.take().unwrap().write_all(b"\n").unwrap();
    line.clear();
    stdout.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "stopped");
    assert!(child.wait().unwrap().success());
    let log = mock.log();
    assert!(
        log.contains("UnregisterAdvertisement"),
        "stop() unregisters the advert, not just its owner leaving\n{log}"
    );
    assert!(control.advertisements("hci0").unwrap().is_empty());
}
