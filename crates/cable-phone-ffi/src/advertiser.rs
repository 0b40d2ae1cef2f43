//! The app's advertiser, seen by the session as a [`cable_ble::Advertiser`].

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use cable_ble::{AdvertGuard, BleError, ADVERT_LEN};

/// Puts the phone's advert on the air: 20 bytes of service data under the 16-bit UUID
/// `0xFFF9`, non-connectable, until [`stop`](Advertiser::stop).
///
/// On Android: `AdvertiseData.Builder().addServiceData(ParcelUuid(0000fff9-0000-1000-8000-00805f9b34fb), data)`
/// with `AdvertiseSettings` `ADVERTISE_MODE_LOW_LATENCY`, not connectable.
#[uniffi::export(with_foreign)]
pub trait Advertiser: Send + Sync {
    /// Starts advertising `service_data` (always 20 bytes). Returns once it is on the air,
    /// or fails with [`AdvertiserError::Failed`] saying why (Bluetooth off, permission
    /// missing).
    fn start(&self, service_data: Vec<u8>) -> Result<(), AdvertiserError>;

    /// Withdraws the advert started last. Called once per successful start, as soon as the
    /// computer has connected or the session ends.
    fn stop(&self);
}

/// Why the app's advertiser could not start.
#[derive(Debug, thiserror::Error, uniffi::Error)]
pub enum AdvertiserError {
    /// The app's own reason, shown to the person as the session's error.
    #[error("{reason}")]
    Failed {
        /// E.g. "Bluetooth is off".
        reason: String,
    },
    /// The callback threw something it does not declare.
    #[error("the advertiser failed unexpectedly: {reason}")]
    Unexpected {
        /// What the foreign language reported.
        reason: String,
    },
}

impl From<uniffi::UnexpectedUniFFICallbackError> for AdvertiserError {
    fn from(e: uniffi::UnexpectedUniFFICallbackError) -> Self {
        AdvertiserError::Unexpected { reason: e.reason }
    }
}

/// The app's advertiser behind the session's advertiser trait.
pub(crate) struct Foreign(pub(crate) Arc<dyn Advertiser>);

impl fmt::Debug for Foreign {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ForeignAdvertiser")
    }
}

impl cable_ble::Advertiser for Foreign {
    fn start_advertising(
        &self,
        payload: [u8; ADVERT_LEN],
    ) -> Pin<Box<dyn Future<Output = Result<AdvertGuard, BleError>> + Send + '_>> {
        let app = Arc::clone(&self.0);
        Box::pin(async move {
            let starter = Arc::clone(&app);
            tokio::task::spawn_blocking(move || starter.start(payload.to_vec()))
                .await
                .map_err(|e| BleError::backend("starting the app's advertiser", e.to_string()))?
                .map_err(|e| BleError::backend("starting the app's advertiser", e))?;
            let (guard, mut control) = AdvertGuard::new();
            tokio::spawn(async move {
                control.stop_requested().await;
                let stopped = tokio::task::spawn_blocking(move || app.stop()).await;
                control.finish(stopped.map_err(|e| {
                    BleError::backend("stopping the app's advertiser", e.to_string())
                }));
            });
            Ok(guard)
        })
    }
}
