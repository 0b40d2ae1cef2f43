//! Bluetooth Low Energy for caBLE v2 (FIDO hybrid): the adverts that tell a computer a
//! phone is ready on the tunnel.
//!
//! What it is: two small traits and their implementations.
//! - [`Scanner`] (computer side) yields an [`AdvertStream`] of [`ReceivedAdvert`]s: service
//!   data under `0xFFF9` or `0xFDE2`, at least 20 bytes (a longer suffix is kept). Dropping
//!   the stream ends the scan. Implementations: [`AirScanner`], [`LoopbackAir`] and, with
//!   the `btleplug` feature, [`BtleplugScanner`] (BlueZ on Linux, CoreBluetooth, WinRT). On
//!   every platform it scans without a service-UUID filter and filters in user space
//!   ([`scan_filter`]).
//! - [`Advertiser`] (phone side) sends a 20-byte payload under `0xFFF9`, non-connectable,
//!   until its [`AdvertGuard`] is stopped or dropped. Implementations: [`AirAdvertiser`],
//!   [`LoopbackAir`] and, with the `bluez` feature on Linux, [`BluezAdvertiser`]
//!   (`LEAdvertisingManager1`).
//! - [`Air`] is an in-memory radio shared by both within one process, for tests and demos.
//! - [`LoopbackAir`] is a radio between processes on one machine: adverts are small files in
//!   a shared directory (`CABLE_AIR_DIR`), for `cable register` and `cable phone` without
//!   Bluetooth.
//! - [`system_scanner`], [`system_advertiser`] and [`diagnose`] pick the platform's radio
//!   for callers that should not care (`--ble bluez`, `cable doctor`).
//! - `testing` (feature `mock-bluez`, Linux) runs a private D-Bus with a mock BlueZ so that
//!   the real backends can be tested, also across processes, without a radio.
//!
//! What it deliberately does not do: decrypt or build adverts (that is `cable-proto`), keep
//! deadlines (callers wrap calls in timeouts), switch a powered-off adapter on (that is the
//! user's call: it reports [`BleError::AdapterPoweredOff`]), or connect to devices (caBLE v2
//! only uses adverts; everything else goes through the tunnel server).
//!
//! Errors are one enum, [`BleError`], whose variants say what a person should do.
//!
//! Platform notes: on macOS a command-line program is killed by the system unless the
//! terminal application has Bluetooth permission (Privacy & Security settings); btleplug
//! cannot report that as an error. libdbus is built from source (`libdbus-sys/vendored`), so
//! Linux builds need no D-Bus headers.

mod adapter;
mod advert;
mod advertise;
mod air;
#[cfg(all(target_os = "linux", feature = "bluez"))]
mod bluez_advertiser;
#[cfg(feature = "btleplug")]
mod btleplug_scanner;
#[cfg(all(target_os = "linux", any(feature = "btleplug", feature = "bluez")))]
mod dbus_errors;
mod error;
#[cfg(all(feature = "btleplug", target_os = "linux"))]
mod le_discovery;
mod loopback_air;
mod scan;
mod system;
#[cfg(all(target_os = "linux", feature = "mock-bluez"))]
pub mod testing;

pub use adapter::{AdapterChoice, AdapterReport, Diagnosis};
pub use advert::{CableServiceUuid, ReceivedAdvert, ADVERT_LEN};
pub use advertise::{AdvertControl, AdvertGuard, Advertiser};
pub use air::{Air, AirAdvertiser, AirScanner, DEFAULT_REPEAT_INTERVAL};
pub use error::{BackendCause, BleError};
pub use loopback_air::{
    LoopbackAir, AIR_DIR_ENV, DEFAULT_POLL_INTERVAL, DEFAULT_REFRESH_INTERVAL, DEFAULT_STALE_AFTER,
};
pub use scan::{AdvertStream, ScanFeed, ScanStopped, Scanner};
pub use system::{diagnose, system_advertiser, system_scanner};

#[cfg(all(target_os = "linux", feature = "bluez"))]
pub use bluez_advertiser::BluezAdvertiser;
#[cfg(feature = "btleplug")]
pub use btleplug_scanner::{scan_filter, BtleplugScanner};
