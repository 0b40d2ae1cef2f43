//! Bluetooth Low Energy for caBLE v2 (FIDO hybrid): the adverts that tell a computer a
//! phone is ready on the tunnel.
//!
//! What it is: two small traits and their implementations.
//! - [`Scanner`] (computer side) yields [`ReceivedAdvert`]s: service data under `0xFFF9` or
//!   `0xFDE2`, at least 20 bytes (a longer suffix is kept). Implementations: [`AirScanner`]
//!   and, with the `btleplug` feature, a btleplug scanner for Linux, macOS and Windows.
//! - [`Advertiser`] (phone side) sends a 20-byte payload under `0xFFF9`, non-connectable,
//!   until its [`AdvertGuard`] goes. Implementations: [`AirAdvertiser`] and, with the
//!   `bluez` feature on Linux, a BlueZ `LEAdvertisingManager1` advertiser.
//! - [`Air`] is an in-memory radio shared by both, for tests and demos.
//!
//! What it deliberately does not do: decrypt or build adverts (that is `cable-proto`), keep
//! deadlines (callers wrap calls in timeouts), or connect to devices (caBLE v2 only uses
//! adverts; everything else goes through the tunnel server).
//!
//! Errors are one enum, [`BleError`], whose variants say what a person should do.

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
mod scan;
mod system;
#[cfg(all(target_os = "linux", feature = "mock-bluez"))]
pub mod testing;

pub use adapter::{AdapterChoice, AdapterReport, Diagnosis};
pub use advert::{CableServiceUuid, ReceivedAdvert, ADVERT_LEN};
pub use advertise::{AdvertControl, AdvertGuard, Advertiser};
pub use air::{Air, AirAdvertiser, AirScanner, DEFAULT_REPEAT_INTERVAL};
pub use error::{BackendCause, BleError};
pub use scan::{AdvertStream, ScanFeed, ScanStopped, Scanner};
pub use system::{diagnose, system_advertiser, system_scanner};

#[cfg(all(target_os = "linux", feature = "bluez"))]
pub use bluez_advertiser::BluezAdvertiser;
#[cfg(feature = "btleplug")]
pub use btleplug_scanner::{scan_filter, BtleplugScanner};
