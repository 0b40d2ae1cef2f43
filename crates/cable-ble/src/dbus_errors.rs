//! Turns D-Bus error names (from libdbus, the bus daemon and BlueZ) into [`BleError`]s.

use crate::BleError;

/// Classifies a D-Bus error raised while doing `operation`.
pub(crate) fn classify(operation: &'static str, error: dbus::Error) -> BleError {
    let detail = error.message().unwrap_or("").to_owned();
    match error.name().unwrap_or("") {
        // Nobody owns org.bluez: bluetoothd is not running.
        "org.freedesktop.DBus.Error.ServiceUnknown"
        | "org.freedesktop.DBus.Error.NameHasNoOwner"
        // The system bus itself is missing or unreachable.
        | "org.freedesktop.DBus.Error.NoServer"
        | "org.freedesktop.DBus.Error.FileNotFound"
        | "org.freedesktop.DBus.Error.NoSocket"
        | "org.freedesktop.DBus.Error.BadAddress"
        | "org.freedesktop.DBus.Error.Disconnected" => BleError::NoBluetoothService {
            detail: if detail.is_empty() {
                "the D-Bus system bus or org.bluez did not answer".to_owned()
            } else {
                detail
            },
        },
        "org.freedesktop.DBus.Error.AccessDenied"
        | "org.freedesktop.DBus.Error.AuthFailed"
        | "org.bluez.Error.NotPermitted"
        | "org.bluez.Error.NotAuthorized" => BleError::PermissionDenied { detail },
        // BlueZ answers NotReady when the adapter is powered off.
        "org.bluez.Error.NotReady" => BleError::AdapterPoweredOff {
            adapter: String::from("(selected adapter)"),
        },
        _ => BleError::backend(operation, error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(name: &str) -> dbus::Error {
        dbus::Error::new_custom(name, "because")
    }

    #[test]
    fn names_map_to_actionable_variants() {
        assert!(matches!(
            classify("x", err("org.freedesktop.DBus.Error.ServiceUnknown")),
            BleError::NoBluetoothService { .. }
        ));
        assert!(matches!(
            classify("x", err("org.freedesktop.DBus.Error.AccessDenied")),
            BleError::PermissionDenied { .. }
        ));
        assert!(matches!(
            classify("x", err("org.bluez.Error.NotReady")),
            BleError::AdapterPoweredOff { .. }
        ));
        assert!(matches!(
            classify("x", err("org.bluez.Error.Failed")),
            BleError::Backend { operation: "x", .. }
        ));
    }
}
