//! The phone side on Linux: a non-connectable LE advertisement through BlueZ's
//! `org.bluez.LEAdvertisingManager1`.
//!
//! The advertisement is a D-Bus object exported by this process (`org.bluez.LEAdvertisement1`
//! with `Type = "broadcast"` and the caBLE payload as `ServiceData` under `0xFFF9`); BlueZ
//! reads it back when it is registered. BlueZ drops the registration by itself if this
//! process leaves the bus, so nothing stays on the air after a crash.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use dbus::arg::{PropMap, Variant};
use dbus::channel::MatchingReceiver;
use dbus::message::MatchRule;
use dbus::nonblock::stdintf::org_freedesktop_dbus::ObjectManager;
use dbus::nonblock::{Proxy, SyncConnection};
use dbus::Path;
use dbus_crossroads::{Crossroads, IfaceToken};
use futures_util::future::BoxFuture;

use crate::dbus_errors::classify;
use crate::{
    AdapterChoice, AdapterReport, AdvertControl, AdvertGuard, Advertiser, BleError,
    CableServiceUuid, ADVERT_LEN,
};

const BLUEZ: &str = "org.bluez";
const ADAPTER_INTERFACE: &str = "org.bluez.Adapter1";
const MANAGER_INTERFACE: &str = "org.bluez.LEAdvertisingManager1";
const ADVERTISEMENT_INTERFACE: &str = "org.bluez.LEAdvertisement1";
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// An [`Advertiser`] on one BlueZ adapter, with its own D-Bus connection.
pub struct BluezAdvertiser {
    bus: Arc<BusConnection>,
    crossroads: Arc<Mutex<Crossroads>>,
    token: IfaceToken<AdvertisementData>,
    adapter_path: Path<'static>,
    adapter: AdapterReport,
    next_id: AtomicU64,
}

/// The D-Bus connection and the task that drives it. The task holds the connection too, so
/// it is aborted when the advertiser and all its guards are gone; BlueZ then sees this client
/// leave and drops anything still registered.
struct BusConnection {
    conn: Arc<SyncConnection>,
    driver: tokio::task::JoinHandle<()>,
}

impl Drop for BusConnection {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

/// What the exported advertisement object serves.
struct AdvertisementData {
    service_data: Vec<u8>,
}

impl BluezAdvertiser {
    /// Connects to BlueZ on the system bus and picks an adapter that is on and can advertise.
    pub async fn open(choice: &AdapterChoice) -> Result<Self, BleError> {
        let (resource, conn) =
            dbus_tokio::connection::new_system_sync().map_err(|e| {
                match classify("connect", e) {
                    BleError::Backend { source, .. } => BleError::NoBluetoothService {
                        detail: source.to_string(),
                    },
                    other => other,
                }
            })?;
        let driver = tokio::spawn(async move {
            let lost = resource.await;
            tracing::debug!(error = %lost, "D-Bus connection for advertising closed");
        });
        let bus = Arc::new(BusConnection {
            conn: conn.clone(),
            driver,
        });

        let root = Proxy::new(BLUEZ, "/", CALL_TIMEOUT, conn.clone());
        let objects = root
            .get_managed_objects()
            .await
            .map_err(|e| classify("list adapters", e))?;
        let mut adapters: Vec<(Path<'static>, AdapterReport, bool)> = objects
            .iter()
            .filter_map(|(path, interfaces)| {
                let props = interfaces.get(ADAPTER_INTERFACE)?;
                let name = path.rsplit('/').next().unwrap_or_default().to_owned();
                let report = AdapterReport {
                    name,
                    address: dbus::arg::prop_cast::<String>(props, "Address").cloned(),
                    powered: dbus::arg::prop_cast::<bool>(props, "Powered").copied(),
                };
                Some((
                    path.clone(),
                    report,
                    interfaces.contains_key(MANAGER_INTERFACE),
                ))
            })
            .collect();
        adapters.sort_by(|a, b| a.1.name.cmp(&b.1.name));
        let reports: Vec<AdapterReport> = adapters.iter().map(|a| a.1.clone()).collect();
        let (adapter_path, adapter, can_advertise) = adapters.swap_remove(choice.pick(&reports)?);
        if adapter.powered == Some(false) {
            return Err(BleError::AdapterPoweredOff {
                adapter: adapter.name,
            });
        }
        if !can_advertise {
            return Err(BleError::AdvertisingNotSupported {
                adapter: adapter.name,
            });
        }

        let mut crossroads = Crossroads::new();
        let token = register_advertisement_interface(&mut crossroads);
        let crossroads = Arc::new(Mutex::new(crossroads));
        let dispatch = crossroads.clone();
        conn.start_receive(
            MatchRule::new_method_call(),
            Box::new(move |msg, conn| {
                let mut cr = dispatch.lock().unwrap_or_else(PoisonError::into_inner);
                // Calls to unknown objects get an error reply from crossroads itself.
                let _ = cr.handle_message(msg, conn);
                true
            }),
        );

        Ok(BluezAdvertiser {
            bus,
            crossroads,
            token,
            adapter_path,
            adapter,
            next_id: AtomicU64::new(1),
        })
    }

    /// The adapter adverts go out on.
    pub fn adapter(&self) -> &AdapterReport {
        &self.adapter
    }

    fn manager(&self) -> Proxy<'static, Arc<SyncConnection>> {
        Proxy::new(
            BLUEZ,
            self.adapter_path.clone(),
            CALL_TIMEOUT,
            self.bus.conn.clone(),
        )
    }
}

impl fmt::Debug for BluezAdvertiser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BluezAdvertiser")
            .field("adapter", &self.adapter)
            .finish_non_exhaustive()
    }
}

fn register_advertisement_interface(cr: &mut Crossroads) -> IfaceToken<AdvertisementData> {
    cr.register(ADVERTISEMENT_INTERFACE, |b| {
        // Non-connectable and not scannable: what Chrome on Android sends.
        b.property("Type")
            .get(|_, _: &mut AdvertisementData| Ok("broadcast".to_owned()));
        b.property("ServiceData")
            .get(|_, data: &mut AdvertisementData| {
                let mut map: PropMap = HashMap::new();
                map.insert(
                    CableServiceUuid::Fido.uuid().to_string(),
                    Variant(Box::new(data.service_data.clone())),
                );
                Ok(map)
            });
        // Also listed as a service UUID, as Chrome on Android does, for scanners that filter
        // on the service-UUID list. 4 + 24 bytes: fits the 31-byte legacy PDU, so nothing
        // else may be included (no name, no TX power).
        b.property("ServiceUUIDs")
            .get(|_, _: &mut AdvertisementData| {
                Ok(vec![CableServiceUuid::Fido.uuid().to_string()])
            });
        b.property("Includes")
            .get(|_, _: &mut AdvertisementData| Ok(Vec::<String>::new()));
        // Chrome advertises in low-latency mode (100 ms); BlueZ's default is far slower
        // (1.28 s). bluetoothd reads these only when started with its experimental
        // interfaces (`bluetoothd -E`, up to at least 5.66; measured in tests/vm): otherwise
        // it drops them silently and discovery takes longer. Older versions never read them.
        b.property("MinInterval")
            .get(|_, _: &mut AdvertisementData| Ok(100u32));
        b.property("MaxInterval")
            .get(|_, _: &mut AdvertisementData| Ok(150u32));
        b.method("Release", (), (), |_, _: &mut AdvertisementData, ()| {
            tracing::debug!("BlueZ released the caBLE advertisement");
            Ok(())
        });
    })
}

impl Advertiser for BluezAdvertiser {
    fn start_advertising(
        &self,
        payload: [u8; ADVERT_LEN],
    ) -> BoxFuture<'_, Result<AdvertGuard, BleError>> {
        Box::pin(async move {
            let id = self.next_id.fetch_add(1, Ordering::Relaxed);
            let path = Path::from(format!("/org/cable_hybrid/advertisement{id}"));
            self.crossroads
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(
                    path.clone(),
                    &[self.token],
                    AdvertisementData {
                        service_data: payload.to_vec(),
                    },
                );
            let options: PropMap = HashMap::new();
            let registered: Result<(), dbus::Error> = self
                .manager()
                .method_call(
                    MANAGER_INTERFACE,
                    "RegisterAdvertisement",
                    (path.clone(), options),
                )
                .await;
            if let Err(e) = registered {
                self.withdraw_object(&path);
                return Err(match classify("register advertisement", e) {
                    BleError::AdapterPoweredOff { .. } => BleError::AdapterPoweredOff {
                        adapter: self.adapter.name.clone(),
                    },
                    other => other,
                });
            }
            tracing::debug!(adapter = %self.adapter.name, %path, "caBLE advert registered");

            let (guard, control) = AdvertGuard::new();
            tokio::spawn(keep_advertising(
                self.bus.clone(),
                self.manager(),
                self.crossroads.clone(),
                path,
                control,
            ));
            Ok(guard)
        })
    }
}

impl BluezAdvertiser {
    fn withdraw_object(&self, path: &Path<'static>) {
        let mut cr = self
            .crossroads
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let _: Option<AdvertisementData> = cr.remove(path);
    }
}

/// Waits for the guard to go, then unregisters the advertisement and removes its object.
async fn keep_advertising(
    // Keeps the connection up while the advert is registered.
    _bus: Arc<BusConnection>,
    manager: Proxy<'static, Arc<SyncConnection>>,
    crossroads: Arc<Mutex<Crossroads>>,
    path: Path<'static>,
    mut control: AdvertControl,
) {
    control.stop_requested().await;
    let result: Result<(), dbus::Error> = manager
        .method_call(
            MANAGER_INTERFACE,
            "UnregisterAdvertisement",
            (path.clone(),),
        )
        .await;
    {
        let mut cr = crossroads.lock().unwrap_or_else(PoisonError::into_inner);
        let _: Option<AdvertisementData> = cr.remove(&path);
    }
    match result {
        Ok(()) => {
            tracing::debug!(%path, "caBLE advert unregistered");
            control.finish(Ok(()));
        }
        // BlueZ already dropped it (it calls Release first, e.g. when the adapter went away).
        Err(e) if e.name() == Some("org.bluez.Error.DoesNotExist") => {
            tracing::debug!(%path, "caBLE advert was already gone");
            control.finish(Ok(()));
        }
        Err(e) => control.finish(Err(classify("unregister advertisement", e))),
    }
}
