//! The one error type of this crate.

use std::error::Error as StdError;

/// A boxed backend error kept as the cause of [`BleError::Backend`].
pub type BackendCause = Box<dyn StdError + Send + Sync + 'static>;

/// Why a BLE operation failed, phrased so that a person can act on it.
#[derive(Debug, thiserror::Error)]
pub enum BleError {
    /// No Bluetooth service answers: on Linux, no D-Bus system bus or no `bluetoothd`
    /// owning `org.bluez` on it.
    #[error(
        "no Bluetooth service: {detail} (on Linux: is the D-Bus system bus up and bluetoothd \
         running? try `systemctl start bluetooth`)"
    )]
    NoBluetoothService {
        /// What was tried and what answered.
        detail: String,
    },

    /// The Bluetooth service runs but reports no adapter at all.
    #[error("no Bluetooth adapter found (is a controller plugged in, or blocked by `rfkill`?)")]
    NoAdapter,

    /// The adapter exists but is switched off.
    #[error(
        "Bluetooth adapter {adapter} is powered off (turn it on, e.g. `bluetoothctl power on`)"
    )]
    AdapterPoweredOff {
        /// Name of the adapter (e.g. `hci0`).
        adapter: String,
    },

    /// The operating system refused access to Bluetooth.
    #[error(
        "permission to use Bluetooth was denied: {detail} (Linux: check the D-Bus policy for \
         org.bluez / membership of the `bluetooth` group; macOS: grant the terminal Bluetooth \
         access in System Settings > Privacy & Security)"
    )]
    PermissionDenied {
        /// The refusal as reported by the system.
        detail: String,
    },

    /// An adapter was asked for by name or address and none matches.
    #[error("no Bluetooth adapter matches {wanted:?} (available: {})", available.join(", "))]
    AdapterNotFound {
        /// The name or address asked for.
        wanted: String,
        /// The adapters that do exist, for the message.
        available: Vec<String>,
    },

    /// The adapter cannot send LE advertisements (no `LEAdvertisingManager1` in BlueZ).
    #[error(
        "Bluetooth adapter {adapter} cannot advertise (needs a Bluetooth LE controller and \
         BlueZ 5.48 or later)"
    )]
    AdvertisingNotSupported {
        /// Name of the adapter.
        adapter: String,
    },

    /// A scan is still running on this scanner (its stream was neither dropped nor stopped).
    #[error("a scan is already running on Bluetooth adapter {adapter} in this process")]
    ScanAlreadyRunning {
        /// Name of the adapter.
        adapter: String,
    },

    /// The selected backend does not exist on this platform or in this build.
    #[error("the {backend} Bluetooth backend is not available on this platform or build")]
    Unsupported {
        /// Name of the backend.
        backend: &'static str,
    },

    /// Service data handed to an advertiser does not fit a legacy advertising PDU.
    #[error("advert service data must be {expected} bytes, got {got}")]
    BadAdvertLength {
        /// Length that is required.
        expected: usize,
        /// Length that was given.
        got: usize,
    },

    /// The directory that carries the loopback air ([`crate::LoopbackAir`]) cannot be
    /// created, listed or written.
    #[error(
        "the loopback air directory {} cannot be used (set CABLE_AIR_DIR to a writable \
         directory)", path.display()
    )]
    AirDirectory {
        /// The directory, or the file in it, that failed.
        path: std::path::PathBuf,
        /// What the file system reported.
        #[source]
        source: std::io::Error,
    },

    /// The Bluetooth stack (D-Bus, BlueZ, CoreBluetooth, WinRT) failed.
    #[error("Bluetooth backend failed during {operation}")]
    Backend {
        /// What was being done (e.g. `"start scan"`).
        operation: &'static str,
        /// The error the stack reported.
        #[source]
        source: BackendCause,
    },
}

impl BleError {
    /// Wraps a backend error together with the operation that failed.
    pub fn backend(operation: &'static str, source: impl Into<BackendCause>) -> Self {
        BleError::Backend {
            operation,
            source: source.into(),
        }
    }
}
