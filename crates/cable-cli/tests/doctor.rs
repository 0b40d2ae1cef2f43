//! `cable doctor` against a mock BlueZ on a private D-Bus (see cable_ble::testing).
#![cfg(target_os = "linux")]
#![allow(clippy::unwrap_used)]

use cable_ble::testing::{MockBluez, MockOptions};
use std::process::{Command, Output};

fn doctor(bus: &str, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cable"))
        .arg("doctor")
        .args(extra)
        .env("DBUS_SYSTEM_BUS_ADDRESS", bus)
        .env_remove("CABLE_BLE_ADAPTER")
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn ready_adapter_is_reported_ready() {
    let mock = MockBluez::start().unwrap();
    mock.control().unwrap().add_adapter("hci0").unwrap();
    let o = doctor(mock.bus_address(), &[]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("hci0"));
    assert!(text(&o).contains("ready to scan"));
}

#[test]
fn powered_off_adapter_is_named_and_fails() {
    let mock = MockBluez::start().unwrap();
    let control = mock.control().unwrap();
    control.add_adapter("hci0").unwrap();
    control.set_powered("hci0", false).unwrap();
    let o = doctor(mock.bus_address(), &[]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).to_lowercase().contains("off"), "{}", text(&o));
}

#[test]
fn missing_adapter_and_missing_service_are_told_apart() {
    let mock = MockBluez::start().unwrap();
    let no_adapter = text(&doctor(mock.bus_address(), &[]));
    let bare = MockBluez::start_with(MockOptions {
        bluez: false,
        ..MockOptions::default()
    })
    .unwrap();
    let no_service = text(&doctor(bare.bus_address(), &[]));
    assert_ne!(no_adapter, no_service);
    assert!(
        no_adapter.to_lowercase().contains("adapter"),
        "{no_adapter}"
    );
    assert!(
        no_service.to_lowercase().contains("service") || no_service.contains("bluetoothd"),
        "{no_service}"
    );
}

#[test]
fn unknown_adapter_name_fails() {
    let mock = MockBluez::start().unwrap();
    mock.control().unwrap().add_adapter("hci0").unwrap();
    let o = doctor(mock.bus_address(), &["--adapter", "hci7"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).contains("hci7"), "{}", text(&o));
}

/// bluetoothd lists adapters in no stable order; the report lists them by name.
#[test]
fn adapters_are_listed_in_order() {
    let mock = MockBluez::start().unwrap();
    let control = mock.control().unwrap();
    for name in ["hci10", "hci2", "hci0"] {
        control.add_adapter(name).unwrap();
    }
    let o = doctor(mock.bus_address(), &["--adapter", "hci0"]);
    let t = text(&o);
    let at = |name: &str| {
        t.find(&format!("adapter {name} "))
            .unwrap_or_else(|| panic!("{t}"))
    };
    assert!(at("hci0") < at("hci2") && at("hci2") < at("hci10"), "{t}");
}
