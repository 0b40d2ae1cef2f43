//! The computer side on real hardware: scanning with btleplug (BlueZ, CoreBluetooth, WinRT).

use std::collections::HashMap;
use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use btleplug::api::{Central, CentralState, Manager as _, ScanFilter};
#[cfg(not(target_os = "linux"))]
use btleplug::api::{CentralEvent, Peripheral as _};
use btleplug::platform::{Adapter, Manager};
use futures_util::future::BoxFuture;
use futures_util::{Stream, StreamExt};
use uuid::Uuid;

use crate::{
    AdapterChoice, AdapterReport, AdvertStream, BleError, CableServiceUuid, Diagnosis,
    ReceivedAdvert, ScanFeed, Scanner,
};

/// The scan filter handed to the platform: deliberately empty.
///
/// BlueZ matches discovery-filter UUIDs only against the advertised service-UUID list, never
/// against service-data UUIDs, and iOS sends caBLE adverts as service data only, so a filtered
/// scan on Linux misses them (PROTOCOL.md §12 item 11). Windows' UUID filter is reported
/// broken too. Adverts are filtered in user space instead ([`ReceivedAdvert::from_service_data`]).
pub fn scan_filter() -> ScanFilter {
    ScanFilter::default()
}

/// A btleplug-backed [`Scanner`] bound to one adapter.
pub struct BtleplugScanner {
    adapter: Adapter,
    report: AdapterReport,
    /// Held by the running scan until the adapter has stopped it: a dropped stream stops its
    /// scan in the background, and that stop must not land after the next scan's start.
    scan_slot: Arc<tokio::sync::Mutex<()>>,
}

/// How long a new scan waits for the previous one on the same scanner to finish stopping.
const PREVIOUS_SCAN_WAIT: Duration = Duration::from_secs(5);

impl BtleplugScanner {
    /// Connects to the platform's Bluetooth service and picks an adapter, failing with a typed
    /// error when there is no service, no (matching) adapter, or the adapter is off.
    pub async fn open(choice: &AdapterChoice) -> Result<Self, BleError> {
        let adapters = list_adapters().await?;
        let (adapter, report) = select(adapters, choice)?;
        if report.powered == Some(false) {
            return Err(BleError::AdapterPoweredOff {
                adapter: report.name,
            });
        }
        Ok(BtleplugScanner {
            adapter,
            report,
            scan_slot: Arc::new(tokio::sync::Mutex::new(())),
        })
    }

    /// The adapter this scanner uses.
    pub fn adapter(&self) -> &AdapterReport {
        &self.report
    }
}

impl fmt::Debug for BtleplugScanner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BtleplugScanner")
            .field("adapter", &self.report)
            .finish()
    }
}

#[cfg(not(target_os = "linux"))]
type EventStream = Pin<Box<dyn Stream<Item = CentralEvent> + Send>>;

impl Scanner for BtleplugScanner {
    fn start_scan(&self) -> BoxFuture<'_, Result<AdvertStream, BleError>> {
        Box::pin(async move {
            let adapter = self.adapter.clone();
            let name = self.report.name.clone();
            let slot =
                tokio::time::timeout(PREVIOUS_SCAN_WAIT, self.scan_slot.clone().lock_owned())
                    .await
                    .map_err(|_| BleError::ScanAlreadyRunning {
                        adapter: name.clone(),
                    })?;
            // btleplug powers the adapter on by itself; switching the user's radio on is the
            // user's call, so refuse instead.
            if let Ok(CentralState::PoweredOff) = adapter.adapter_state().await {
                return Err(BleError::AdapterPoweredOff { adapter: name });
            }
            #[cfg(target_os = "linux")]
            {
                let (discovery, sightings) = crate::le_discovery::LeDiscovery::start(&name)
                    .await
                    .map_err(|e| with_adapter(e, &name))?;
                tracing::debug!(adapter = %name, "BLE scan started (LE only)");
                let (feed, stream) = AdvertStream::channel(64);
                tokio::spawn(async move {
                    run_le_scan(discovery, name, Box::pin(sightings), feed).await;
                    drop(slot);
                });
                Ok(stream)
            }
            #[cfg(not(target_os = "linux"))]
            {
                // Subscribe before starting so that no advert between the two is lost.
                let events = adapter
                    .events()
                    .await
                    .map_err(|e| with_adapter(classify("subscribe to adapter events", e), &name))?;
                adapter
                    .start_scan(scan_filter())
                    .await
                    .map_err(|e| with_adapter(classify("start scan", e), &name))?;
                tracing::debug!(adapter = %name, "BLE scan started");
                let (feed, stream) = AdvertStream::channel(64);
                tokio::spawn(async move {
                    run_scan(adapter, name, events, feed).await;
                    drop(slot);
                });
                Ok(stream)
            }
        })
    }
}

/// Owns a running LE-only scan (Linux): forwards adverts, then always stops the scan.
#[cfg(target_os = "linux")]
async fn run_le_scan(
    discovery: crate::le_discovery::LeDiscovery,
    name: String,
    mut sightings: Pin<Box<dyn Stream<Item = crate::le_discovery::Seen> + Send>>,
    feed: ScanFeed,
) {
    let outcome = async {
        loop {
            let sighting = tokio::select! {
                _ = feed.stopped() => return Ok(()),
                sighting = sightings.next() => sighting,
            };
            let sighting = match sighting {
                Some(crate::le_discovery::Seen::Device(sighting)) => sighting,
                Some(crate::le_discovery::Seen::PoweredOff) => {
                    return Err(BleError::AdapterPoweredOff {
                        adapter: name.clone(),
                    })
                }
                None => {
                    return Err(BleError::backend(
                        "scan",
                        "the Bluetooth service stopped sending events",
                    ))
                }
            };
            for advert in cable_adverts(&sighting.service_data, sighting.address, sighting.name) {
                tracing::trace!(?advert, "caBLE advert");
                if feed.send(advert).await.is_err() {
                    return Ok(());
                }
            }
        }
    }
    .await;
    match discovery.stop().await {
        Ok(()) => tracing::debug!(adapter = %name, "BLE scan stopped"),
        Err(e) => tracing::debug!(adapter = %name, error = %e, "stopping the BLE scan failed"),
    }
    if let Err(error) = outcome {
        feed.fail(error).await;
    }
}

/// Owns a running scan: forwards adverts, then always stops the adapter's scan.
#[cfg(not(target_os = "linux"))]
async fn run_scan(adapter: Adapter, name: String, mut events: EventStream, feed: ScanFeed) {
    let outcome = forward_adverts(&adapter, &name, &mut events, &feed).await;
    match adapter.stop_scan().await {
        Ok(()) => tracing::debug!(adapter = %name, "BLE scan stopped"),
        Err(e) => tracing::debug!(adapter = %name, error = %e, "stopping the BLE scan failed"),
    }
    if let Err(error) = outcome {
        feed.fail(error).await;
    }
}

#[cfg(not(target_os = "linux"))]
async fn forward_adverts(
    adapter: &Adapter,
    name: &str,
    events: &mut EventStream,
    feed: &ScanFeed,
) -> Result<(), BleError> {
    loop {
        let event = tokio::select! {
            _ = feed.stopped() => return Ok(()),
            event = events.next() => event,
        };
        let adverts = match event {
            None => {
                return Err(BleError::backend(
                    "scan",
                    "the Bluetooth service stopped sending events",
                ))
            }
            // New devices, and devices the stack cached before this scan (possibly stale:
            // callers try them and ignore failures). Their data is only in the properties.
            Some(CentralEvent::DeviceDiscovered(id)) => {
                let properties = match adapter.peripheral(&id).await {
                    Ok(peripheral) => peripheral.properties().await,
                    Err(e) => Err(e),
                };
                match properties {
                    Ok(Some(p)) => {
                        cable_adverts(&p.service_data, Some(p.address.to_string()), p.local_name)
                    }
                    // A cached device may vanish between the event and the read.
                    Ok(None) | Err(_) => continue,
                }
            }
            // Repeated adverts from a known device.
            Some(CentralEvent::ServiceDataAdvertisement { id, service_data }) => {
                cable_adverts(&service_data, Some(id.to_string()), None)
            }
            Some(CentralEvent::StateUpdate(CentralState::PoweredOff)) => {
                return Err(BleError::AdapterPoweredOff {
                    adapter: name.to_owned(),
                })
            }
            Some(_) => continue,
        };
        for advert in adverts {
            tracing::trace!(?advert, "caBLE advert");
            if feed.send(advert).await.is_err() {
                return Ok(());
            }
        }
    }
}

/// The caBLE adverts in one device's service data, `0xFDE2` first as Chromium looks it up.
fn cable_adverts(
    service_data: &HashMap<Uuid, Vec<u8>>,
    address: Option<String>,
    name: Option<String>,
) -> Vec<ReceivedAdvert> {
    CableServiceUuid::ALL
        .iter()
        .filter_map(|service| {
            let uuid = service.uuid();
            let data = service_data.get(&uuid)?;
            ReceivedAdvert::from_service_data(&uuid, data)
                .map(|a| a.with_peer(address.clone(), name.clone()))
        })
        .collect()
}

/// Checks what is there, the same way [`BtleplugScanner::open`] does, plus a scan that is
/// stopped at once, and reports everything it finds instead of stopping at the first problem.
pub(crate) async fn diagnose(choice: &AdapterChoice) -> Diagnosis {
    let adapters = match list_adapters().await {
        Ok(adapters) => adapters,
        Err(problem) => {
            return Diagnosis {
                adapters: Vec::new(),
                selected: None,
                problem: Some(problem),
            }
        }
    };
    let reports: Vec<AdapterReport> = adapters.iter().map(|(_, r)| r.clone()).collect();
    let (selected, problem) = match select(adapters, choice) {
        Ok((_, report)) if report.powered == Some(false) => {
            let problem = BleError::AdapterPoweredOff {
                adapter: report.name.clone(),
            };
            (Some(report.name), Some(problem))
        }
        Ok((adapter, report)) => {
            // Permission problems (D-Bus policy, macOS privacy settings) only show once a
            // scan is asked for, so ask for one and stop it at once.
            let problem = probe_scan(&adapter, &report.name).await.err();
            (Some(report.name), problem)
        }
        Err(problem) => (None, Some(problem)),
    };
    Diagnosis {
        adapters: reports,
        selected,
        problem,
    }
}

#[cfg(target_os = "linux")]
async fn probe_scan(_adapter: &Adapter, name: &str) -> Result<(), BleError> {
    // The same LE-only discovery a real scan uses, so the probe asks for what a scan will.
    let (discovery, _) = crate::le_discovery::LeDiscovery::start(name)
        .await
        .map_err(|e| with_adapter(e, name))?;
    discovery.stop().await.map_err(|e| with_adapter(e, name))
}

#[cfg(not(target_os = "linux"))]
async fn probe_scan(adapter: &Adapter, name: &str) -> Result<(), BleError> {
    adapter
        .start_scan(scan_filter())
        .await
        .map_err(|e| with_adapter(classify("start scan", e), name))?;
    adapter
        .stop_scan()
        .await
        .map_err(|e| with_adapter(classify("stop scan", e), name))
}

async fn list_adapters() -> Result<Vec<(Adapter, AdapterReport)>, BleError> {
    let manager = Manager::new()
        .await
        .map_err(|e| match classify("connect", e) {
            // Any failure to reach the system's Bluetooth service at all means there is none.
            BleError::Backend { source, .. } => BleError::NoBluetoothService {
                detail: source.to_string(),
            },
            other => other,
        })?;
    let adapters = manager
        .adapters()
        .await
        .map_err(|e| classify("list adapters", e))?;
    let mut out = Vec::with_capacity(adapters.len());
    for adapter in adapters {
        let info = adapter
            .adapter_info()
            .await
            .map_err(|e| classify("read adapter properties", e))?;
        // BlueZ reports "hci0 (usb:v1D6Bp0245d050A)".
        let name = info.split(" (").next().unwrap_or(&info).to_owned();
        let address = adapter
            .adapter_address()
            .await
            .ok()
            .flatten()
            .map(|a| a.to_string());
        let powered = match adapter.adapter_state().await {
            Ok(CentralState::PoweredOn) => Some(true),
            Ok(CentralState::PoweredOff) => Some(false),
            Ok(CentralState::Unknown) | Err(_) => None,
        };
        out.push((
            adapter,
            AdapterReport {
                name,
                address,
                powered,
            },
        ));
    }
    // bluetoothd lists its adapters in no stable order (hci2, hci1, hci0 seen): sort them
    // naturally (hci2 before hci10) so that reports read the same every time.
    out.sort_by(|a, b| (a.1.name.len(), &a.1.name).cmp(&(b.1.name.len(), &b.1.name)));
    Ok(out)
}

fn select(
    mut adapters: Vec<(Adapter, AdapterReport)>,
    choice: &AdapterChoice,
) -> Result<(Adapter, AdapterReport), BleError> {
    adapters.sort_by(|a, b| a.1.name.cmp(&b.1.name));
    let reports: Vec<AdapterReport> = adapters.iter().map(|(_, r)| r.clone()).collect();
    let index = choice.pick(&reports)?;
    Ok(adapters.swap_remove(index))
}

fn with_adapter(error: BleError, name: &str) -> BleError {
    match error {
        BleError::AdapterPoweredOff { .. } => BleError::AdapterPoweredOff {
            adapter: name.to_owned(),
        },
        other => other,
    }
}

/// Maps btleplug's errors onto [`BleError`], looking through to the D-Bus error on Linux.
fn classify(operation: &'static str, error: btleplug::Error) -> BleError {
    match error {
        btleplug::Error::PermissionDenied => BleError::PermissionDenied {
            detail: "the operating system refused Bluetooth access".to_owned(),
        },
        btleplug::Error::NoAdapterAvailable => BleError::NoAdapter,
        #[cfg(target_os = "linux")]
        btleplug::Error::Other(inner) => match inner.downcast::<bluez_async::BluetoothError>() {
            Ok(bluez) => match *bluez {
                bluez_async::BluetoothError::DbusError(e) => {
                    crate::dbus_errors::classify(operation, e)
                }
                bluez_async::BluetoothError::NoBluetoothAdapters => BleError::NoAdapter,
                other => BleError::backend(operation, other),
            },
            Err(inner) => BleError::Backend {
                operation,
                source: inner,
            },
        },
        other => BleError::backend(operation, other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scan_filter_has_no_service_uuids() {
        // A UUID filter makes BlueZ drop service-data-only adverts (iOS): see `scan_filter`.
        assert!(scan_filter().services.is_empty());
        assert_eq!(scan_filter(), ScanFilter::default());
    }

    #[test]
    fn cable_adverts_keeps_both_uuids_google_first_and_drops_the_rest() {
        let mut data = HashMap::new();
        data.insert(CableServiceUuid::Fido.uuid(), vec![1; 20]);
        data.insert(CableServiceUuid::Google.uuid(), vec![2; 22]);
        data.insert(
            Uuid::from_u128(0x0000_180f_0000_1000_8000_0080_5f9b_34fb),
            vec![3; 20],
        );
        let adverts = cable_adverts(&data, Some("AA".into()), None);
        assert_eq!(adverts.len(), 2);
        assert_eq!(adverts[0].service(), CableServiceUuid::Google);
        assert_eq!(adverts[0].suffix(), &[2, 2]);
        assert_eq!(adverts[1].service(), CableServiceUuid::Fido);
        assert_eq!(adverts[1].peer_address.as_deref(), Some("AA"));

        data.insert(CableServiceUuid::Fido.uuid(), vec![1; 19]);
        let adverts = cable_adverts(&data, None, None);
        assert_eq!(adverts.len(), 1);
    }
}
