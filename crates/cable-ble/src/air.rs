//! An in-memory radio: advertisers and scanners in one process, for tests and demos.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures_util::future::BoxFuture;
use tokio::sync::broadcast;
use uuid::Uuid;

use crate::{
    AdvertGuard, AdvertStream, Advertiser, BleError, CableServiceUuid, ReceivedAdvert, Scanner,
    ADVERT_LEN,
};

/// How often an advert is repeated unless configured otherwise.
pub const DEFAULT_REPEAT_INTERVAL: Duration = Duration::from_millis(100);

/// A shared in-memory "air". Clone it freely: clones share the same air.
///
/// Adverts are repeated every interval until their guard goes, like a phone's, and a scanner
/// that starts late first sees every advert currently on the air (as BlueZ reports cached
/// devices), then the repeats. Scanners apply the same acceptance rules as the real backends.
#[derive(Clone)]
pub struct Air {
    inner: Arc<AirInner>,
}

struct AirInner {
    tx: broadcast::Sender<AirFrame>,
    interval: Duration,
    active: Mutex<BTreeMap<u64, AirFrame>>,
    next_id: AtomicU64,
}

#[derive(Clone)]
struct AirFrame {
    uuid: Uuid,
    data: Vec<u8>,
    address: String,
}

/// The scanner end of an [`Air`].
#[derive(Clone, Debug)]
pub struct AirScanner {
    air: Air,
}

/// The advertiser end of an [`Air`].
#[derive(Clone, Debug)]
pub struct AirAdvertiser {
    air: Air,
}

impl Air {
    /// An air that repeats adverts every [`DEFAULT_REPEAT_INTERVAL`].
    pub fn new() -> Self {
        Self::with_interval(DEFAULT_REPEAT_INTERVAL)
    }

    /// An air that repeats adverts every `interval` (at least 1 ms).
    pub fn with_interval(interval: Duration) -> Self {
        let (tx, _) = broadcast::channel(256);
        Air {
            inner: Arc::new(AirInner {
                tx,
                interval: interval.max(Duration::from_millis(1)),
                active: Mutex::new(BTreeMap::new()),
                next_id: AtomicU64::new(1),
            }),
        }
    }

    /// A scanner listening to this air.
    pub fn scanner(&self) -> AirScanner {
        AirScanner { air: self.clone() }
    }

    /// An advertiser sending on this air.
    pub fn advertiser(&self) -> AirAdvertiser {
        AirAdvertiser { air: self.clone() }
    }

    /// Puts arbitrary service data under any UUID on the air, repeated like a real advert.
    /// Meant for tests of what scanners and clients ignore (other UUIDs, wrong lengths).
    /// Must be called within a Tokio runtime (the repeats run as a task).
    pub fn advertise_raw(&self, service_uuid: Uuid, service_data: Vec<u8>) -> AdvertGuard {
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let frame = AirFrame {
            uuid: service_uuid,
            data: service_data,
            // Locally administered, like the random addresses phones use.
            address: format!(
                "C2:00:00:{:02X}:{:02X}:{:02X}",
                id >> 16 & 0xff,
                id >> 8 & 0xff,
                id & 0xff
            ),
        };
        let (guard, mut control) = AdvertGuard::new();
        let inner = self.inner.clone();
        inner.active_lock().insert(id, frame.clone());
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(inner.interval);
            loop {
                tokio::select! {
                    _ = control.stop_requested() => break,
                    _ = ticker.tick() => {
                        // No receivers is fine: nobody is scanning right now.
                        let _ = inner.tx.send(frame.clone());
                    }
                }
            }
            inner.active_lock().remove(&id);
            control.finish(Ok(()));
        });
        guard
    }

    /// How many adverts are on the air right now.
    pub fn active_adverts(&self) -> usize {
        self.inner.active_lock().len()
    }
}

impl Default for Air {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for Air {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Air")
            .field("interval", &self.inner.interval)
            .field("active_adverts", &self.active_adverts())
            .finish()
    }
}

impl AirInner {
    fn active_lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, AirFrame>> {
        // The map stays consistent even if a holder panicked: every update is one call.
        self.active.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl AirFrame {
    fn to_advert(&self) -> Option<ReceivedAdvert> {
        ReceivedAdvert::from_service_data(&self.uuid, &self.data)
            .map(|a| a.with_peer(Some(self.address.clone()), None))
    }
}

impl Scanner for AirScanner {
    fn start_scan(&self) -> BoxFuture<'_, Result<AdvertStream, BleError>> {
        Box::pin(async move {
            let inner = self.air.inner.clone();
            // Subscribe before the snapshot so that nothing sent in between is missed.
            let mut rx = inner.tx.subscribe();
            let cached: Vec<AirFrame> = inner.active_lock().values().cloned().collect();
            let (feed, stream) = AdvertStream::channel(64);
            tokio::spawn(async move {
                for frame in cached {
                    if let Some(advert) = frame.to_advert() {
                        if feed.send(advert).await.is_err() {
                            return;
                        }
                    }
                }
                loop {
                    let frame = tokio::select! {
                        _ = feed.stopped() => return,
                        r = rx.recv() => match r {
                            Ok(frame) => frame,
                            // A slow scanner misses repeats, as on a real radio.
                            Err(broadcast::error::RecvError::Lagged(_)) => continue,
                            Err(broadcast::error::RecvError::Closed) => return,
                        },
                    };
                    if let Some(advert) = frame.to_advert() {
                        if feed.send(advert).await.is_err() {
                            return;
                        }
                    }
                }
            });
            Ok(stream)
        })
    }
}

impl Advertiser for AirAdvertiser {
    fn start_advertising(
        &self,
        payload: [u8; ADVERT_LEN],
    ) -> BoxFuture<'_, Result<AdvertGuard, BleError>> {
        Box::pin(async move {
            Ok(self
                .air
                .advertise_raw(CableServiceUuid::Fido.uuid(), payload.to_vec()))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use tokio::time::timeout;

    const T: Duration = Duration::from_secs(5);

    #[tokio::test]
    async fn scanner_sees_repeats_and_late_scanner_sees_active_advert() {
        let air = Air::with_interval(Duration::from_millis(10));
        let guard = air
            .advertiser()
            .start_advertising([7; 20])
            .await
            .expect("advertise");
        tokio::time::sleep(Duration::from_millis(50)).await;
        let mut scan = air.scanner().start_scan().await.expect("scan");
        for _ in 0..3 {
            let a = timeout(T, scan.next_advert())
                .await
                .expect("in time")
                .expect("open")
                .expect("ok");
            assert_eq!(a.payload(), [7; 20]);
            assert_eq!(a.service(), CableServiceUuid::Fido);
        }
        guard.stop().await.expect("stop");
        assert_eq!(air.active_adverts(), 0);
        scan.stop().await;
    }

    #[tokio::test]
    async fn dropping_the_guard_ends_the_advert() {
        let air = Air::with_interval(Duration::from_millis(10));
        let guard = air
            .advertiser()
            .start_advertising([1; 20])
            .await
            .expect("advertise");
        assert_eq!(air.active_adverts(), 1);
        drop(guard);
        timeout(T, async {
            while air.active_adverts() != 0 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await
        .expect("advert withdrawn");
    }

    #[tokio::test]
    async fn scanner_filters_like_the_real_backends() {
        let air = Air::with_interval(Duration::from_millis(10));
        let other = Uuid::from_u128(0x0000_180f_0000_1000_8000_0080_5f9b_34fb);
        let _a = air.advertise_raw(other, vec![1; 20]);
        let _b = air.advertise_raw(CableServiceUuid::Fido.uuid(), vec![2; 19]);
        let mut suffixed = vec![3; 20];
        suffixed.extend_from_slice(&[0xa0]);
        let _c = air.advertise_raw(CableServiceUuid::Google.uuid(), suffixed.clone());
        let mut scan = air.scanner().start_scan().await.expect("scan");
        for _ in 0..5 {
            let a = timeout(T, scan.next_advert())
                .await
                .expect("in time")
                .expect("open")
                .expect("ok");
            assert_eq!(a.service(), CableServiceUuid::Google);
            assert_eq!(a.service_data(), suffixed.as_slice());
        }
    }

    #[tokio::test]
    async fn dropping_the_stream_ends_the_scan_task() {
        let air = Air::with_interval(Duration::from_millis(5));
        let _g = air.advertise_raw(CableServiceUuid::Fido.uuid(), vec![0; 20]);
        let scan = air.scanner().start_scan().await.expect("scan");
        assert_eq!(air.inner.tx.receiver_count(), 1);
        drop(scan);
        timeout(T, async {
            while air.inner.tx.receiver_count() != 0 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await
        .expect("scan task ended");
    }
}
