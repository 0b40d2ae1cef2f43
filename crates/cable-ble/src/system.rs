//! The platform's radio behind the traits, for callers that should not care which one it is
//! (the CLI's `--ble bluez`).

use std::sync::Arc;

use crate::{AdapterChoice, Advertiser, BleError, Diagnosis, Scanner};

/// Opens the platform's scanner (btleplug) on the chosen adapter.
pub async fn system_scanner(choice: &AdapterChoice) -> Result<Arc<dyn Scanner>, BleError> {
    #[cfg(feature = "btleplug")]
    {
        Ok(Arc::new(crate::BtleplugScanner::open(choice).await?))
    }
    #[cfg(not(feature = "btleplug"))]
    {
        let _ = choice;
        Err(BleError::Unsupported {
            backend: "btleplug",
        })
    }
}

/// Opens the platform's advertiser on the chosen adapter: BlueZ on Linux; elsewhere
/// [`BleError::Unsupported`] (phones on other systems advertise through their own stack).
pub async fn system_advertiser(choice: &AdapterChoice) -> Result<Arc<dyn Advertiser>, BleError> {
    #[cfg(all(target_os = "linux", feature = "bluez"))]
    {
        Ok(Arc::new(crate::BluezAdvertiser::open(choice).await?))
    }
    #[cfg(not(all(target_os = "linux", feature = "bluez")))]
    {
        let _ = choice;
        Err(BleError::Unsupported { backend: "BlueZ" })
    }
}

/// Checks whether scanning can work, and why not: no Bluetooth service, no adapter, adapter
/// off, permission denied. Never fails; the problem is in [`Diagnosis::problem`].
pub async fn diagnose(choice: &AdapterChoice) -> Diagnosis {
    #[cfg(feature = "btleplug")]
    {
        crate::btleplug_scanner::diagnose(choice).await
    }
    #[cfg(not(feature = "btleplug"))]
    {
        let _ = choice;
        Diagnosis {
            adapters: Vec::new(),
            selected: None,
            problem: Some(BleError::Unsupported {
                backend: "btleplug",
            }),
        }
    }
}
