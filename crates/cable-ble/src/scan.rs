//! The computer side: a [`Scanner`] hands out an [`AdvertStream`] of caBLE adverts.

use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_util::future::BoxFuture;
use futures_util::Stream;
use tokio::sync::mpsc;

use crate::{BleError, ReceivedAdvert};

/// Something that can listen for caBLE adverts (a Bluetooth adapter, or the in-memory air).
///
/// Object safe, so clients hold it as `Arc<dyn Scanner>` and tests swap in [`crate::Air`].
pub trait Scanner: Send + Sync + fmt::Debug {
    /// Starts a scan. Adverts arrive on the returned stream until it is dropped or
    /// [`AdvertStream::stop`] is called; either one ends the scan on the adapter.
    ///
    /// Only adverts under `0xFFF9` or `0xFDE2` with at least 20 bytes of service data are
    /// delivered. The same advert may arrive many times (phones repeat it), and adverts cached
    /// by the stack before the scan may be stale: callers try each and ignore failures.
    fn start_scan(&self) -> BoxFuture<'_, Result<AdvertStream, BleError>>;
}

/// Events from a running scan: adverts, or a final error after which the stream ends.
///
/// Dropping the stream ends the scan (in the background); [`AdvertStream::stop`] ends it and
/// waits until the backend has stopped.
pub struct AdvertStream {
    rx: mpsc::Receiver<Result<ReceivedAdvert, BleError>>,
    /// Yields `None` once every [`ScanFeed`] is gone, i.e. the backend has finished.
    done: mpsc::Receiver<()>,
}

/// The backend's end of an [`AdvertStream`]: the scan runs while this is alive and the
/// consumer is listening.
#[derive(Debug, Clone)]
pub struct ScanFeed {
    tx: mpsc::Sender<Result<ReceivedAdvert, BleError>>,
    _alive: mpsc::Sender<()>,
}

/// The consumer has stopped listening; the backend should stop scanning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScanStopped;

impl AdvertStream {
    /// Creates a connected pair. A backend keeps the [`ScanFeed`] in the task that runs the
    /// scan and drops it after the adapter has stopped scanning.
    pub fn channel(capacity: usize) -> (ScanFeed, AdvertStream) {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        let (alive, done) = mpsc::channel(1);
        (ScanFeed { tx, _alive: alive }, AdvertStream { rx, done })
    }

    /// The next advert; `None` once the scan has ended. An `Err` item is the last one.
    pub async fn next_advert(&mut self) -> Option<Result<ReceivedAdvert, BleError>> {
        self.rx.recv().await
    }

    /// Ends the scan and waits until the backend has stopped it.
    pub async fn stop(mut self) {
        self.rx.close();
        // The backend drops its feed only after stopping the adapter's scan.
        while self.done.recv().await.is_some() {}
    }
}

impl fmt::Debug for AdvertStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AdvertStream").finish_non_exhaustive()
    }
}

impl Stream for AdvertStream {
    type Item = Result<ReceivedAdvert, BleError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.rx.poll_recv(cx)
    }
}

impl ScanFeed {
    /// Delivers an advert; `Err(ScanStopped)` means nobody listens any more.
    pub async fn send(&self, advert: ReceivedAdvert) -> Result<(), ScanStopped> {
        self.tx.send(Ok(advert)).await.map_err(|_| ScanStopped)
    }

    /// Delivers the error that ended the scan.
    pub async fn fail(self, error: BleError) {
        let _ = self.tx.send(Err(error)).await;
    }

    /// Resolves once the consumer has dropped or stopped the stream.
    pub async fn stopped(&self) {
        self.tx.closed().await
    }

    /// Whether the consumer has dropped or stopped the stream.
    pub fn is_stopped(&self) -> bool {
        self.tx.is_closed()
    }
}
