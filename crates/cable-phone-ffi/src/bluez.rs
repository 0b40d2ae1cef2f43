//! The bundled BlueZ advertiser, for Linux apps that have no advertiser of their own.

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use cable_ble::{AdapterChoice, AdvertGuard, Advertiser as _, BluezAdvertiser, ADVERT_LEN};

use crate::advertiser::{Advertiser, AdvertiserError};
use crate::runtime;

/// Advertises through BlueZ on the system bus (`org.bluez.LEAdvertisingManager1`), as
/// `cable phone` does: a broadcast advertisement with the service data under `0xFFF9`.
struct Bluez {
    inner: BluezAdvertiser,
    /// The advert on the air, if any; dropping it withdraws it.
    current: Mutex<Option<AdvertGuard>>,
}

impl fmt::Debug for Bluez {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BluezAdvertiser")
            .field("adapter", &self.inner.adapter().name)
            .finish_non_exhaustive()
    }
}

fn failed(error: &cable_ble::BleError) -> AdvertiserError {
    AdvertiserError::Failed {
        reason: crate::error::chain(error),
    }
}

/// The bundled BlueZ advertiser on `adapter` (`hci1`, or an address; `None` picks `hci0`
/// or the first adapter), for Linux apps. Connects to BlueZ now, so that a missing
/// service, adapter or permission is reported before a session starts. Call it from the
/// app's own thread.
#[uniffi::export]
pub fn bluez_advertiser(adapter: Option<String>) -> Result<Arc<dyn Advertiser>, AdvertiserError> {
    if tokio::runtime::Handle::try_current().is_ok() {
        return Err(AdvertiserError::Failed {
            reason: "bluez_advertiser() was called on one of the binding's threads".into(),
        });
    }
    let choice = adapter.map_or(AdapterChoice::Default, |name| AdapterChoice::parse(&name));
    let runtime = runtime::get().map_err(|e| AdvertiserError::Failed {
        reason: e.to_string(),
    })?;
    let inner = runtime
        .block_on(BluezAdvertiser::open(&choice))
        .map_err(|e| failed(&e))?;
    Ok(Arc::new(Bluez {
        inner,
        current: Mutex::new(None),
    }))
}

impl Advertiser for Bluez {
    fn start(&self, service_data: Vec<u8>) -> Result<(), AdvertiserError> {
        let payload: [u8; ADVERT_LEN] =
            service_data
                .as_slice()
                .try_into()
                .map_err(|_| AdvertiserError::Failed {
                    reason: format!(
                        "an advert is {ADVERT_LEN} bytes of service data, not {}",
                        service_data.len()
                    ),
                })?;
        // Sessions call this on the binding's blocking pool, never on a worker: blocking on
        // the runtime from here is allowed and waits for BlueZ to accept the advert.
        let handle = runtime::get()
            .map_err(|e| AdvertiserError::Failed {
                reason: e.to_string(),
            })?
            .handle()
            .clone();
        let guard = handle
            .block_on(self.inner.start_advertising(payload))
            .map_err(|e| failed(&e))?;
        let previous = self
            .current
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .replace(guard);
        if let Some(previous) = previous {
            let _ = handle.block_on(previous.stop());
        }
        Ok(())
    }

    fn stop(&self) {
        let guard = self
            .current
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let (Some(guard), Ok(runtime)) = (guard, runtime::get()) {
            if let Err(e) = runtime.handle().block_on(guard.stop()) {
                tracing::warn!(error = %e, "BlueZ did not withdraw the advert cleanly");
            }
        }
    }
}
