//! LE-only discovery on Linux, through bluez-async (the library btleplug itself uses on Linux).
//!
//! btleplug always asks BlueZ for `Transport: auto`, and BlueZ merges the filters of all its
//! clients by OR-ing their transports, so no second client can narrow it. With `auto`,
//! bluetoothd interleaves BR/EDR inquiry with LE scanning, and a controller that cannot do both
//! at once (many laptop controllers, and BlueZ's emulated ones) stops hearing LE adverts for
//! about five seconds per cycle: measured against bluetoothd 5.66, adverts that began during
//! inquiry were decrypted 2.7–3.8 s after the phone registered them instead of 0.2–0.3 s.
//! caBLE adverts are LE only, so this scan asks for LE only.

use std::collections::HashMap;

use bluez_async::{
    AdapterEvent, AdapterId, BluetoothError, BluetoothEvent, BluetoothSession, DeviceEvent,
    DeviceId, DiscoveryFilter, Transport,
};
use futures_util::{Stream, StreamExt};
use uuid::Uuid;

use crate::BleError;

/// The discovery filter of every caBLE scan on Linux: LE only, every advert reported (not only
/// the first per device), and no UUID filter (see [`crate::scan_filter`]).
pub(crate) fn discovery_filter() -> DiscoveryFilter {
    DiscoveryFilter {
        transport: Some(Transport::Le),
        duplicate_data: Some(true),
        ..DiscoveryFilter::default()
    }
}

/// What a running discovery reports.
#[derive(Debug)]
pub(crate) enum Seen {
    /// A device's service data.
    Device(Sighting),
    /// The adapter was switched off: the scan is over.
    PoweredOff,
}

/// One device's service data as BlueZ reported it, with its address when known.
#[derive(Debug)]
pub(crate) struct Sighting {
    pub(crate) address: Option<String>,
    pub(crate) name: Option<String>,
    pub(crate) service_data: HashMap<Uuid, Vec<u8>>,
}

/// A running LE discovery on one adapter, with its own D-Bus connection.
pub(crate) struct LeDiscovery {
    session: BluetoothSession,
    adapter: AdapterId,
    connection: Connection,
}

/// The task driving this discovery's D-Bus connection, ended when the discovery goes, on every
/// path (a failed start included): the connection must not outlive its one scan.
struct Connection(tokio::task::JoinHandle<()>);

impl Drop for Connection {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl LeDiscovery {
    /// Connects, finds `adapter_name` (`hci0`), subscribes to its events, then starts the scan,
    /// so that no advert between the two is lost. The stream first yields the devices BlueZ
    /// already knows (possibly stale: callers try them and ignore failures).
    pub(crate) async fn start(
        adapter_name: &str,
    ) -> Result<(LeDiscovery, impl Stream<Item = Seen> + Send + 'static), BleError> {
        let (connection, session) = BluetoothSession::new()
            .await
            .map_err(|e| classify("connect", e))?;
        // If the connection ends, the event stream ends, and the scan reports that.
        let connection = Connection(tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "D-Bus connection for scanning closed");
            }
        }));
        let adapter = match session.get_adapters().await {
            Ok(adapters) => adapters
                .into_iter()
                .map(|a| a.id)
                .find(|id| id.to_string() == adapter_name),
            Err(e) => return Err(classify("list adapters", e)),
        };
        let Some(adapter) = adapter else {
            return Err(BleError::backend(
                "start scan",
                format!("adapter {adapter_name} is gone"),
            ));
        };
        let discovery = LeDiscovery {
            session,
            adapter,
            connection,
        };
        let events = discovery
            .session
            .adapter_event_stream(&discovery.adapter)
            .await
            .map_err(|e| classify("subscribe to adapter events", e))?;
        let known = discovery
            .session
            .get_devices_on_adapter(&discovery.adapter)
            .await
            .map_err(|e| classify("list known devices", e))?;
        discovery
            .session
            .start_discovery_on_adapter_with_filter(&discovery.adapter, &discovery_filter())
            .await
            .map_err(|e| classify("start scan", e))?;

        let known = futures_util::stream::iter(known.into_iter().map(|info| {
            Seen::Device(Sighting {
                address: Some(info.mac_address.to_string()),
                name: info.name,
                service_data: info.service_data,
            })
        }));
        let session = discovery.session.clone();
        let live = events.filter_map(move |event| {
            let session = session.clone();
            async move { sighting(&session, event).await }
        });
        Ok((discovery, known.chain(live)))
    }

    /// Stops the scan (BlueZ also stops it when this client's connection goes away).
    pub(crate) async fn stop(self) -> Result<(), BleError> {
        let outcome = self
            .session
            .stop_discovery_on_adapter(&self.adapter)
            .await
            .map_err(|e| classify("stop scan", e));
        drop(self.connection);
        outcome
    }
}

/// The service data an adapter event carries: new devices' data is only in their properties,
/// repeated adverts arrive as `ServiceData` changes.
async fn sighting(session: &BluetoothSession, event: BluetoothEvent) -> Option<Seen> {
    let (id, event) = match event {
        BluetoothEvent::Device { id, event } => (id, event),
        BluetoothEvent::Adapter {
            event: AdapterEvent::Powered { powered: false },
            ..
        } => return Some(Seen::PoweredOff),
        _ => return None,
    };
    match event {
        // A device may vanish between the event and the read.
        DeviceEvent::Discovered => session.get_device_info(&id).await.ok().map(|info| {
            Seen::Device(Sighting {
                address: Some(info.mac_address.to_string()),
                name: info.name,
                service_data: info.service_data,
            })
        }),
        DeviceEvent::ServiceData { service_data } => Some(Seen::Device(Sighting {
            address: address_of(&id),
            name: None,
            service_data,
        })),
        _ => None,
    }
}

/// `hci0/dev_C0_00_00_00_00_01` → `C0:00:00:00:00:01`.
fn address_of(id: &DeviceId) -> Option<String> {
    let path = id.to_string();
    let (_, dev) = path.rsplit_once("/dev_")?;
    let address = dev.replace('_', ":");
    (address.len() == 17).then_some(address)
}

fn classify(operation: &'static str, error: BluetoothError) -> BleError {
    match error {
        BluetoothError::DbusError(e) => crate::dbus_errors::classify(operation, e),
        BluetoothError::NoBluetoothAdapters => BleError::NoAdapter,
        other => BleError::backend(operation, other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_is_le_only_with_duplicates_and_no_uuids() {
        let filter = discovery_filter();
        assert_eq!(filter.transport, Some(Transport::Le));
        assert_eq!(filter.duplicate_data, Some(true));
        assert!(filter.service_uuids.is_empty());
    }

    #[test]
    fn address_comes_from_the_device_path() {
        let id: DeviceId = "hci0/dev_C0_00_00_00_00_01".parse().expect("device id");
        assert_eq!(address_of(&id).as_deref(), Some("C0:00:00:00:00:01"));
    }
}
