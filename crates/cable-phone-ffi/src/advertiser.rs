//! The app's advertiser, seen by the session as a [`cable_ble::Advertiser`].

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use cable_ble::{AdvertGuard, BleError, ADVERT_LEN};

use crate::registry::Registry;
use crate::runtime;

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

/// [`Advertiser`] for apps whose Bluetooth code is asynchronous (Android's
/// `AdvertiseCallback` wrapped in a `suspendCancellableCoroutine`, Python's `asyncio`): the
/// same start and stop, as coroutines. Hand it to a session as
/// [`async_advertiser(app)`](async_advertiser); the notes on [`AsyncAuthenticator`]
/// (Python's event loop, cancellation) apply.
///
/// [`AsyncAuthenticator`]: crate::AsyncAuthenticator
#[uniffi::export(with_foreign)]
#[async_trait::async_trait]
pub trait AsyncAdvertiser: Send + Sync {
    /// As [`Advertiser::start`].
    async fn start(&self, service_data: Vec<u8>) -> Result<(), AdvertiserError>;

    /// As [`Advertiser::stop`].
    async fn stop(&self);
}

static ASYNC_ADAPTERS: Registry<AsyncAdapter> = Registry::new();

/// An [`AsyncAdvertiser`] as the [`Advertiser`] the session constructors take. A session
/// awaits the app's coroutines directly; called as a blocking [`Advertiser`] (by the app
/// itself), it waits for the coroutine on the calling thread.
#[uniffi::export]
pub fn async_advertiser(app: Arc<dyn AsyncAdvertiser>) -> Arc<dyn Advertiser> {
    let adapter = Arc::new(AsyncAdapter { app });
    ASYNC_ADAPTERS.insert(&adapter);
    adapter
}

struct AsyncAdapter {
    app: Arc<dyn AsyncAdvertiser>,
}

impl Drop for AsyncAdapter {
    fn drop(&mut self) {
        ASYNC_ADAPTERS.remove(self);
    }
}

impl Advertiser for AsyncAdapter {
    fn start(&self, service_data: Vec<u8>) -> Result<(), AdvertiserError> {
        let app = Arc::clone(&self.app);
        runtime::wait_for(async move { app.start(service_data).await }).unwrap_or_else(|e| {
            Err(AdvertiserError::Unexpected {
                reason: e.to_string(),
            })
        })
    }

    fn stop(&self) {
        let app = Arc::clone(&self.app);
        if let Err(e) = runtime::wait_for(async move { app.stop().await }) {
            tracing::warn!(error = %e, "the app's advertiser did not stop cleanly");
        }
    }
}

/// The app's advertiser as the session calls it: awaited when it is asynchronous, on the
/// blocking pool when it blocks.
#[derive(Clone)]
enum App {
    Blocking(Arc<dyn Advertiser>),
    Async(Arc<dyn AsyncAdvertiser>),
}

impl App {
    async fn start(&self, payload: [u8; ADVERT_LEN]) -> Result<(), BleError> {
        let started = match self {
            App::Async(app) => app.start(payload.to_vec()).await,
            App::Blocking(app) => {
                let app = Arc::clone(app);
                tokio::task::spawn_blocking(move || app.start(payload.to_vec()))
                    .await
                    .map_err(|e| {
                        BleError::backend("starting the app's advertiser", e.to_string())
                    })?
            }
        };
        started.map_err(|e| BleError::backend("starting the app's advertiser", e))
    }

    async fn stop(&self) -> Result<(), BleError> {
        match self {
            App::Async(app) => {
                app.stop().await;
                Ok(())
            }
            App::Blocking(app) => {
                let app = Arc::clone(app);
                tokio::task::spawn_blocking(move || app.stop())
                    .await
                    .map_err(|e| BleError::backend("stopping the app's advertiser", e.to_string()))
            }
        }
    }
}

/// The app's advertiser behind the session's advertiser trait.
pub(crate) struct Foreign(App);

impl Foreign {
    pub(crate) fn new(app: Arc<dyn Advertiser>) -> Foreign {
        Foreign(match ASYNC_ADAPTERS.find(&app) {
            Some(adapter) => App::Async(Arc::clone(&adapter.app)),
            None => App::Blocking(app),
        })
    }
}

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
        let app = self.0.clone();
        Box::pin(async move {
            app.start(payload).await?;
            let (guard, mut control) = AdvertGuard::new();
            tokio::spawn(async move {
                control.stop_requested().await;
                control.finish(app.stop().await);
            });
            Ok(guard)
        })
    }
}
