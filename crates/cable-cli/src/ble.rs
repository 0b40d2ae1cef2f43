//! Choosing how adverts travel: real Bluetooth through BlueZ/btleplug, or the in-process air.

use crate::error::CliError;
use cable_ble::{AdapterChoice, Advertiser, Air};
use std::sync::Arc;

/// `--ble` for commands that scan or advertise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BleChoice {
    /// The system's Bluetooth (BlueZ on Linux; btleplug elsewhere for scanning).
    Bluez,
    /// An in-process simulation: only sides in the same program hear each other.
    Air,
}

impl BleChoice {
    pub async fn advertiser(self, adapter: &str) -> Result<Arc<dyn Advertiser>, CliError> {
        match self {
            BleChoice::Bluez => cable_ble::system_advertiser(&AdapterChoice::parse(adapter))
                .await
                .map_err(CliError::Bluetooth),
            BleChoice::Air => Ok(Arc::new(Air::new().advertiser())),
        }
    }
}
