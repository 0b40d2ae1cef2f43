//! Choosing how adverts travel: real Bluetooth through BlueZ/btleplug, or the loopback air
//! between processes on one machine.

use cable_ble::{AdapterChoice, Advertiser, BleError, LoopbackAir, Scanner};
use std::sync::Arc;

/// `--ble` for commands that scan or advertise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BleChoice {
    /// The system's Bluetooth (BlueZ on Linux; btleplug elsewhere for scanning).
    Bluez,
    /// A simulation through files in CABLE_AIR_DIR, for two `cable` processes on one machine
    /// without Bluetooth.
    Air,
}

impl BleChoice {
    /// The computer side's scanner; `adapter` only matters for Bluetooth.
    pub async fn scanner(self, adapter: &str) -> Result<Arc<dyn Scanner>, BleError> {
        match self {
            BleChoice::Bluez => cable_ble::system_scanner(&AdapterChoice::parse(adapter)).await,
            BleChoice::Air => Ok(Arc::new(loopback_air()?)),
        }
    }

    /// The phone side's advertiser; `adapter` only matters for Bluetooth.
    pub async fn advertiser(self, adapter: &str) -> Result<Arc<dyn Advertiser>, BleError> {
        match self {
            BleChoice::Bluez => cable_ble::system_advertiser(&AdapterChoice::parse(adapter)).await,
            BleChoice::Air => Ok(Arc::new(loopback_air()?)),
        }
    }
}

/// The loopback air, its directory checked before anything is shown to the user.
fn loopback_air() -> Result<LoopbackAir, BleError> {
    let air = LoopbackAir::from_env();
    air.prepare()?;
    Ok(air)
}
