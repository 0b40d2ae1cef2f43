//! Watching BlueZ's D-Bus signals about adverts: registrations on an adapter's
//! `LEAdvertisingManager1` and devices seen carrying caBLE service data. Works against the
//! mock BlueZ and against a real bluetoothd alike.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dbus::arg::RefArg;
use dbus::blocking::stdintf::org_freedesktop_dbus::{
    ObjectManagerInterfacesAdded, PropertiesPropertiesChanged,
};
use dbus::blocking::Connection;
use dbus::channel::Channel;
use dbus::message::SignalArgs;

use super::POLL;

/// caBLE's advert service UUID (FIDO's FFF9) as BlueZ spells it.
pub const FIDO_SERVICE_UUID: &str = "0000fff9-0000-1000-8000-00805f9b34fb";
/// How long the last signals may take to arrive once both processes have ended.
pub const SIGNAL_TIMEOUT: Duration = Duration::from_secs(5);

/// What BlueZ broadcast about adverts, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AirEvent {
    /// `LEAdvertisingManager1.ActiveInstances` of the adapter changed to this count.
    ActiveAdverts(u64),
    /// An LE device appeared (as a scanner sees an advert) with this FFF9 service data.
    Device(Vec<u8>),
}

/// Subscribes to the mock's signals. A registered advert lives only milliseconds (the
/// computer connects at once), too short to catch by polling; signals queue until read.
pub struct AirWatch {
    conn: Connection,
    events: Arc<Mutex<Vec<AirEvent>>>,
}

impl AirWatch {
    pub fn start(bus: &str) -> AirWatch {
        let mut channel = Channel::open_private(bus).unwrap();
        channel.register().unwrap();
        let conn = Connection::from(channel);
        let events = Arc::new(Mutex::new(Vec::new()));
        let sink = events.clone();
        conn.add_match(
            PropertiesPropertiesChanged::match_rule(None, None).static_clone(),
            move |changed: PropertiesPropertiesChanged, _: &Connection, _: &dbus::Message| {
                if changed.interface_name == "org.bluez.LEAdvertisingManager1" {
                    if let Some(n) = changed
                        .changed_properties
                        .get("ActiveInstances")
                        .and_then(|v| v.0.as_u64())
                    {
                        sink.lock().unwrap().push(AirEvent::ActiveAdverts(n));
                    }
                }
                true
            },
        )
        .unwrap();
        let sink = events.clone();
        conn.add_match(
            ObjectManagerInterfacesAdded::match_rule(None, None).static_clone(),
            move |added: ObjectManagerInterfacesAdded, _: &Connection, _: &dbus::Message| {
                let service_data = added
                    .interfaces
                    .get("org.bluez.Device1")
                    .and_then(|device| device.get("ServiceData"))
                    .and_then(|data| data.0.as_iter());
                if let Some(mut entries) = service_data {
                    // A dict iterates as key, value, key, value, …
                    while let (Some(uuid), Some(value)) = (entries.next(), entries.next()) {
                        if uuid.as_str() == Some(FIDO_SERVICE_UUID) {
                            sink.lock()
                                .unwrap()
                                .push(AirEvent::Device(flat_bytes(value)));
                        }
                    }
                }
                true
            },
        )
        .unwrap();
        AirWatch { conn, events }
    }

    /// Reads the signals that have arrived, waiting up to `wait` for the first.
    pub fn pump(&self, wait: Duration) {
        let mut wait = wait;
        while self.conn.process(wait).unwrap() {
            wait = Duration::ZERO;
        }
    }

    /// The events so far, emptying the list.
    pub fn take(&self) -> Vec<AirEvent> {
        std::mem::take(&mut *self.events.lock().unwrap())
    }

    /// Waits (bounded) until the last advert has been withdrawn, and returns the events.
    pub fn settle(&self) -> Vec<AirEvent> {
        let deadline = Instant::now() + SIGNAL_TIMEOUT;
        while Instant::now() < deadline
            && self.events.lock().unwrap().last() != Some(&AirEvent::ActiveAdverts(0))
        {
            self.pump(POLL);
        }
        self.take()
    }
}

/// The bytes of an `ay`, however deeply wrapped in variants.
pub fn flat_bytes(arg: &dyn RefArg) -> Vec<u8> {
    match arg.as_u64() {
        Some(byte) => u8::try_from(byte).into_iter().collect(),
        None => arg
            .as_iter()
            .map(|items| items.flat_map(flat_bytes).collect())
            .unwrap_or_default(),
    }
}

pub fn hex_string(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
