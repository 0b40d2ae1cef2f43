//! The bundled BlueZ advertiser, for Linux apps that have no advertiser of their own.
//!
//! Every D-Bus exchange runs as a task on the binding's runtime, next to the task that
//! drives the connection; the calling thread (the app's, or the runtime's blocking pool
//! when a session calls) only waits for the task's answer, with a deadline. Nothing here
//! polls a D-Bus future on a foreign thread.

use std::fmt;
use std::future::Future;
use std::sync::{mpsc, Arc, Mutex, PoisonError};
use std::time::Duration;

use cable_ble::{
    AdapterChoice, AdvertGuard, Advertiser as _, BleError, BluezAdvertiser, ADVERT_LEN,
};

use crate::advertiser::{Advertiser, AdvertiserError};
use crate::runtime;

/// Longer than any one D-Bus call may take (cable-ble gives each 10 s): BlueZ calls back
/// for the advertisement's properties before it answers a registration.
const WAIT: Duration = Duration::from_secs(30);

/// Advertises through BlueZ on the system bus (`org.bluez.LEAdvertisingManager1`), as
/// `cable phone` does: a broadcast advertisement with the service data under `0xFFF9`.
struct Bluez {
    inner: Arc<BluezAdvertiser>,
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

fn failed(reason: impl Into<String>) -> AdvertiserError {
    AdvertiserError::Failed {
        reason: reason.into(),
    }
}

/// Runs `work` as a task on the binding's runtime and waits for its result on this thread.
fn on_runtime<T: Send + 'static>(
    what: &str,
    work: impl Future<Output = Result<T, BleError>> + Send + 'static,
) -> Result<T, AdvertiserError> {
    let rx = runtime::spawn_for_answer(work).map_err(|e| failed(e.to_string()))?;
    match rx.recv_timeout(WAIT) {
        Ok(result) => result.map_err(|e| failed(crate::error::chain(&e))),
        Err(mpsc::RecvTimeoutError::Timeout) => Err(failed(format!(
            "BlueZ did not answer within {} s while {what}",
            WAIT.as_secs()
        ))),
        Err(mpsc::RecvTimeoutError::Disconnected) => Err(failed(format!(
            "the binding's runtime stopped while {what}"
        ))),
    }
}

/// The bundled BlueZ advertiser on `adapter` (`hci1`, or an address; `None` picks `hci0`
/// or the first adapter), for Linux apps. Connects to BlueZ now, so that a missing
/// service, adapter or permission is reported before a session starts.
#[uniffi::export]
pub fn bluez_advertiser(adapter: Option<String>) -> Result<Arc<dyn Advertiser>, AdvertiserError> {
    let choice = adapter.map_or(AdapterChoice::Default, |name| AdapterChoice::parse(&name));
    let inner = on_runtime(
        "connecting",
        async move { BluezAdvertiser::open(&choice).await },
    )?;
    Ok(Arc::new(Bluez {
        inner: Arc::new(inner),
        current: Mutex::new(None),
    }))
}

impl Bluez {
    fn withdraw(&self, guard: AdvertGuard) {
        if let Err(e) = on_runtime("withdrawing the advert", guard.stop()) {
            tracing::warn!(error = %e, "BlueZ did not withdraw the advert cleanly");
        }
    }
}

impl Advertiser for Bluez {
    fn start(&self, service_data: Vec<u8>) -> Result<(), AdvertiserError> {
        let payload: [u8; ADVERT_LEN] = service_data.as_slice().try_into().map_err(|_| {
            failed(format!(
                "an advert is {ADVERT_LEN} bytes of service data, not {}",
                service_data.len()
            ))
        })?;
        let inner = Arc::clone(&self.inner);
        let guard = on_runtime("registering the advert", async move {
            inner.start_advertising(payload).await
        })?;
        let previous = self
            .current
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .replace(guard);
        if let Some(previous) = previous {
            self.withdraw(previous);
        }
        Ok(())
    }

    fn stop(&self) {
        let guard = self
            .current
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(guard) = guard {
            self.withdraw(guard);
        }
    }
}
