//! The phone side: an [`Advertiser`] sends a caBLE advert until its [`AdvertGuard`] goes.

use std::fmt;

use futures_util::future::BoxFuture;
use tokio::sync::oneshot;

use crate::{BleError, ADVERT_LEN};

/// Something that can broadcast a caBLE advert (a Bluetooth adapter, or the in-memory air).
pub trait Advertiser: Send + Sync + fmt::Debug {
    /// Starts sending `payload` as non-connectable service data under `0xFFF9`, repeated
    /// until the returned guard is stopped or dropped.
    fn start_advertising(
        &self,
        payload: [u8; ADVERT_LEN],
    ) -> BoxFuture<'_, Result<AdvertGuard, BleError>>;
}

/// Keeps an advert on the air. Dropping it withdraws the advert in the background;
/// [`AdvertGuard::stop`] withdraws it and reports how that went.
pub struct AdvertGuard {
    stop_tx: Option<oneshot::Sender<()>>,
    done_rx: Option<oneshot::Receiver<Result<(), BleError>>>,
}

/// The backend's end of an [`AdvertGuard`], held by the task that keeps the advert up.
#[derive(Debug)]
pub struct AdvertControl {
    stop_rx: oneshot::Receiver<()>,
    done_tx: oneshot::Sender<Result<(), BleError>>,
}

impl AdvertGuard {
    /// Creates a connected pair for a backend.
    pub fn new() -> (AdvertGuard, AdvertControl) {
        let (stop_tx, stop_rx) = oneshot::channel();
        let (done_tx, done_rx) = oneshot::channel();
        (
            AdvertGuard {
                stop_tx: Some(stop_tx),
                done_rx: Some(done_rx),
            },
            AdvertControl { stop_rx, done_tx },
        )
    }

    /// Withdraws the advert and waits until the backend confirms.
    pub async fn stop(mut self) -> Result<(), BleError> {
        if let Some(tx) = self.stop_tx.take() {
            let _ = tx.send(());
        }
        match self.done_rx.take() {
            Some(rx) => rx.await.unwrap_or(Ok(())),
            None => Ok(()),
        }
    }
}

impl Drop for AdvertGuard {
    fn drop(&mut self) {
        if let Some(tx) = self.stop_tx.take() {
            let _ = tx.send(());
        }
    }
}

impl fmt::Debug for AdvertGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AdvertGuard").finish_non_exhaustive()
    }
}

impl AdvertControl {
    /// Resolves when the guard was stopped or dropped.
    pub async fn stop_requested(&mut self) {
        let _ = (&mut self.stop_rx).await;
    }

    /// Reports the outcome of withdrawing the advert to [`AdvertGuard::stop`].
    pub fn finish(self, result: Result<(), BleError>) {
        let _ = self.done_tx.send(result);
    }
}
