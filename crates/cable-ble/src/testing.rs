//! Test support: a private D-Bus daemon with a mock BlueZ (python-dbusmock), so that the real
//! btleplug scanner and BlueZ advertiser can be tested on machines without Bluetooth.
//!
//! Needs `dbus-daemon` and python-dbusmock (Debian: `dbus`, `python3-dbusmock`). The mock
//! template, `tests/ble-mock/bluez_cable.py`, is built into this module.
//!
//! libdbus reads `DBUS_SYSTEM_BUS_ADDRESS` once per process, so the code under test must run
//! in a process whose environment points at the mock from the start: a child process (the
//! CLI binary, or the test binary itself through [`run_test_in_child`]).
//!
//! ```no_run
//! # fn main() -> std::io::Result<()> {
//! use cable_ble::testing::MockBluez;
//! let mock = MockBluez::start()?;
//! mock.control()?.add_adapter("hci0")?;
//! let status = std::process::Command::new("cable")
//!     .env("DBUS_SYSTEM_BUS_ADDRESS", mock.bus_address())
//!     .status()?;
//! # Ok(()) }
//! ```

use std::collections::HashMap;
use std::fmt;
use std::io::{self, BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use dbus::arg::{PropMap, RefArg};
use dbus::blocking::Connection;
use dbus::channel::Channel;
use uuid::Uuid;

/// The python-dbusmock template, kept with the other BLE test assets.
pub const TEMPLATE: &str = include_str!("../../../tests/ble-mock/bluez_cable.py");

/// Environment variable naming the Python that has python-dbusmock (default `/usr/bin/python3`).
pub const PYTHON_ENV: &str = "CABLE_MOCK_PYTHON";

/// Environment variable set in a child started by [`run_test_in_child`].
pub const CHILD_ENV: &str = "CABLE_BLE_TEST_CHILD";

const MOCK_INTERFACE: &str = "org.bluez.Mock";
const CALL_TIMEOUT: Duration = Duration::from_secs(5);
const START_TIMEOUT: Duration = Duration::from_secs(15);

/// A private bus, optionally with a mock BlueZ on it. Dropping it stops both.
pub struct MockBluez {
    dir: tempfile::TempDir,
    address: String,
    daemon: Child,
    mock: Option<Child>,
}

/// Options for [`MockBluez::start_with`].
#[derive(Debug, Clone)]
pub struct MockOptions {
    /// Run the mock BlueZ; `false` gives a bus without `org.bluez` ("bluetoothd not running").
    pub bluez: bool,
    /// How often registered advertisements are repeated to scanning adapters.
    pub repeat: Duration,
}

impl Default for MockOptions {
    fn default() -> Self {
        MockOptions {
            bluez: true,
            repeat: Duration::from_millis(100),
        }
    }
}

impl MockBluez {
    /// A private bus with the mock BlueZ and no adapters.
    pub fn start() -> io::Result<Self> {
        Self::start_with(MockOptions::default())
    }

    /// A private bus, with or without the mock BlueZ.
    pub fn start_with(options: MockOptions) -> io::Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("cable-ble-mock")
            .tempdir()?;
        let socket = dir.path().join("bus");
        let daemon_log = std::fs::File::create(dir.path().join("dbus-daemon.log"))?;
        let mut daemon = Command::new("dbus-daemon")
            .arg("--session")
            .arg(format!("--address=unix:path={}", socket.display()))
            .arg("--nofork")
            .arg("--print-address=1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(daemon_log)
            .spawn()
            .map_err(|e| spawn_error("dbus-daemon (Debian package `dbus`)", e))?;
        // The daemon prints its address once it listens.
        let mut line = String::new();
        if let Some(stdout) = daemon.stdout.take() {
            BufReader::new(stdout).read_line(&mut line)?;
        }
        let address = line.trim().to_owned();
        if address.is_empty() {
            let _ = daemon.kill();
            let _ = daemon.wait();
            return Err(io::Error::other("dbus-daemon did not print its address"));
        }
        let mut this = MockBluez {
            dir,
            address,
            daemon,
            mock: None,
        };
        if options.bluez {
            this.start_bluez(options.repeat)?;
        }
        Ok(this)
    }

    fn start_bluez(&mut self, repeat: Duration) -> io::Result<()> {
        let template = self.dir.path().join("bluez_cable.py");
        std::fs::write(&template, TEMPLATE)?;
        let log = std::fs::File::create(self.log_path())?;
        let python = std::env::var(PYTHON_ENV).unwrap_or_else(|_| "/usr/bin/python3".into());
        let child = Command::new(&python)
            .args(["-m", "dbusmock", "--system", "--template"])
            .arg(&template)
            .arg("--parameters")
            .arg(format!("{{\"repeat_ms\": {}}}", repeat.as_millis().max(1)))
            .env("DBUS_SYSTEM_BUS_ADDRESS", &self.address)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .map_err(|e| spawn_error("python3 with python-dbusmock", e))?;
        self.mock = Some(child);
        let control = self.control()?;
        let deadline = Instant::now() + START_TIMEOUT;
        while !control.has_owner("org.bluez")? {
            if let Some(Some(status)) = self.mock.as_mut().map(Child::try_wait).transpose()? {
                return Err(io::Error::other(format!(
                    "the mock BlueZ exited with {status} (is python3-dbusmock installed? \
                     log: {})",
                    self.log()
                )));
            }
            if Instant::now() > deadline {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "the mock BlueZ did not appear on the bus",
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }

    /// The bus address; give it to the code under test as `DBUS_SYSTEM_BUS_ADDRESS`.
    pub fn bus_address(&self) -> &str {
        &self.address
    }

    /// A new connection for driving the mock.
    pub fn control(&self) -> io::Result<MockControl> {
        MockControl::connect(&self.address)
    }

    /// Where the mock logs every call it receives.
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("mock.log")
    }

    /// The mock's log so far (handy in assertion messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// The directory holding the bus socket, the template and the log.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for MockBluez {
    fn drop(&mut self) {
        if let Some(mut mock) = self.mock.take() {
            let _ = mock.kill();
            let _ = mock.wait();
        }
        let _ = self.daemon.kill();
        let _ = self.daemon.wait();
    }
}

impl fmt::Debug for MockBluez {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MockBluez")
            .field("address", &self.address)
            .field("bluez", &self.mock.is_some())
            .finish()
    }
}

/// A registered advertisement as the mock read it back from its owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MockAdvertisement {
    /// Unique bus name of the process that registered it.
    pub owner: String,
    /// Its object path in that process.
    pub path: String,
    /// `Type` (`broadcast` or `peripheral`).
    pub kind: String,
    /// `ServiceData`, by UUID string.
    pub service_data: HashMap<String, Vec<u8>>,
    /// Names of all properties the owner exposed.
    pub properties: Vec<String>,
}

/// A connection to the mock's control interface (`org.bluez.Mock`), usable from any process.
pub struct MockControl {
    conn: Connection,
}

impl fmt::Debug for MockControl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MockControl").finish_non_exhaustive()
    }
}

impl MockControl {
    /// Connects to the bus at `address`.
    pub fn connect(address: &str) -> io::Result<Self> {
        let mut channel = Channel::open_private(address).map_err(dbus_error)?;
        channel.register().map_err(dbus_error)?;
        Ok(MockControl {
            conn: Connection::from(channel),
        })
    }

    /// Connects to the bus named by `DBUS_SYSTEM_BUS_ADDRESS` (in a child process).
    pub fn from_env() -> io::Result<Self> {
        let address = std::env::var("DBUS_SYSTEM_BUS_ADDRESS")
            .map_err(|_| io::Error::other("DBUS_SYSTEM_BUS_ADDRESS is not set"))?;
        Self::connect(&address)
    }

    /// Whether `name` (a well-known or unique bus name) is on the bus.
    pub fn has_owner(&self, name: &str) -> io::Result<bool> {
        let (owned,): (bool,) = self
            .conn
            .with_proxy(
                "org.freedesktop.DBus",
                "/org/freedesktop/DBus",
                CALL_TIMEOUT,
            )
            .method_call("org.freedesktop.DBus", "NameHasOwner", (name,))
            .map_err(dbus_error)?;
        Ok(owned)
    }

    fn mock_call<A: dbus::arg::AppendAll, R: dbus::arg::ReadAll>(
        &self,
        method: &str,
        args: A,
    ) -> io::Result<R> {
        self.conn
            .with_proxy("org.bluez", "/", CALL_TIMEOUT)
            .method_call(MOCK_INTERFACE, method, args)
            .map_err(dbus_error)
    }

    /// Adds a powered adapter (`hci0`, `hci1`, …); returns its object path.
    pub fn add_adapter(&self, name: &str) -> io::Result<String> {
        let (path,): (String,) = self.mock_call("AddAdapter", (name, "cable-test"))?;
        Ok(path)
    }

    /// Removes an adapter.
    pub fn remove_adapter(&self, name: &str) -> io::Result<()> {
        self.mock_call("RemoveAdapter", (name,))
    }

    /// Adds an LE device as if an advert with this service data had just been received.
    pub fn add_le_device(
        &self,
        adapter: &str,
        address: &str,
        service_data: &[(Uuid, Vec<u8>)],
    ) -> io::Result<String> {
        let (path,): (String,) =
            self.mock_call("AddLEDevice", (adapter, address, to_map(service_data)))?;
        Ok(path)
    }

    /// A repeated advert from a known device (PropertiesChanged on `ServiceData`).
    pub fn readvertise(
        &self,
        adapter: &str,
        address: &str,
        service_data: &[(Uuid, Vec<u8>)],
    ) -> io::Result<()> {
        self.mock_call("Readvertise", (adapter, address, to_map(service_data)))
    }

    /// Switches an adapter on or off.
    pub fn set_powered(&self, adapter: &str, powered: bool) -> io::Result<()> {
        self.mock_call("SetAdapterPowered", (adapter, powered))
    }

    /// Whether an adapter is discovering right now.
    pub fn is_discovering(&self, adapter: &str) -> io::Result<bool> {
        use dbus::blocking::stdintf::org_freedesktop_dbus::Properties;
        self.conn
            .with_proxy("org.bluez", format!("/org/bluez/{adapter}"), CALL_TIMEOUT)
            .get("org.bluez.Adapter1", "Discovering")
            .map_err(dbus_error)
    }

    /// The keys of the last discovery filter set on an adapter, and its `UUIDs` entry.
    pub fn discovery_filter(&self, adapter: &str) -> io::Result<(Vec<String>, Vec<String>)> {
        let (filter,): (PropMap,) = self.mock_call("GetDiscoveryFilter", (adapter,))?;
        let mut keys: Vec<String> = filter.keys().cloned().collect();
        keys.sort();
        let uuids = filter
            .get("UUIDs")
            .and_then(|v| v.0.as_iter())
            .map(|it| {
                it.flat_map(|inner| {
                    // A variant holding `as`, or the `as` itself.
                    match inner.as_iter() {
                        Some(strings) => strings
                            .filter_map(|s| s.as_str().map(str::to_owned))
                            .collect::<Vec<_>>(),
                        None => inner.as_str().map(str::to_owned).into_iter().collect(),
                    }
                })
                .collect()
            })
            .unwrap_or_default();
        Ok((keys, uuids))
    }

    /// The `Transport` entry of the last discovery filter set on an adapter (`le`, `auto`,
    /// `bredr`), if it had one.
    pub fn discovery_transport(&self, adapter: &str) -> io::Result<Option<String>> {
        let (filter,): (PropMap,) = self.mock_call("GetDiscoveryFilter", (adapter,))?;
        Ok(filter
            .get("Transport")
            .and_then(|v| v.0.as_str().map(str::to_owned)))
    }

    /// The advertisements registered on an adapter.
    pub fn advertisements(&self, adapter: &str) -> io::Result<Vec<MockAdvertisement>> {
        let (adverts,): (Vec<PropMap>,) = self.mock_call("ListAdvertisements", (adapter,))?;
        Ok(adverts.iter().map(parse_advertisement).collect())
    }

    /// Takes `LEAdvertisingManager1` away from an adapter, as on a controller without LE.
    pub fn disable_advertising(&self, adapter: &str) -> io::Result<()> {
        self.mock_call("DisableAdvertising", (adapter,))
    }

    /// Makes an adapter method (`StartDiscovery`, `RegisterAdvertisement`, …) fail with the
    /// given D-Bus error name; an empty name clears it.
    pub fn set_fault(&self, adapter: &str, method: &str, error_name: &str) -> io::Result<()> {
        self.mock_call("SetFault", (adapter, method, error_name))
    }
}

fn parse_advertisement(props: &PropMap) -> MockAdvertisement {
    let string = |key: &str| {
        props
            .get(key)
            .and_then(|v| v.0.as_str())
            .unwrap_or_default()
            .to_owned()
    };
    let mut service_data = HashMap::new();
    if let Some(mut entries) = props.get("ServiceData").and_then(|v| v.0.as_iter()) {
        // A dict iterates as key, value, key, value, …
        while let (Some(key), Some(value)) = (entries.next(), entries.next()) {
            let bytes: Vec<u8> = value
                .as_iter()
                .map(|it| {
                    it.flat_map(|b| match b.as_iter() {
                        Some(inner) => inner.filter_map(|x| x.as_u64()).collect::<Vec<_>>(),
                        None => b.as_u64().into_iter().collect(),
                    })
                    .filter_map(|x| u8::try_from(x).ok())
                    .collect()
                })
                .unwrap_or_default();
            if let Some(key) = key.as_str() {
                service_data.insert(key.to_owned(), bytes);
            }
        }
    }
    let mut properties: Vec<String> = props
        .keys()
        .filter(|k| *k != "Owner" && *k != "Path")
        .cloned()
        .collect();
    properties.sort();
    MockAdvertisement {
        owner: string("Owner"),
        path: string("Path"),
        kind: string("Type"),
        service_data,
        properties,
    }
}

fn to_map(service_data: &[(Uuid, Vec<u8>)]) -> HashMap<String, Vec<u8>> {
    service_data
        .iter()
        .map(|(uuid, data)| (uuid.to_string(), data.clone()))
        .collect()
}

fn dbus_error(e: dbus::Error) -> io::Error {
    io::Error::other(format!(
        "{}: {}",
        e.name().unwrap_or("D-Bus error"),
        e.message().unwrap_or("")
    ))
}

fn spawn_error(what: &str, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("cannot start {what}: {e}"))
}

/// Runs one test of the current test binary in a child process whose system bus is
/// `bus_address` (libdbus fixes the bus address per process), and waits for it. The child
/// sees [`CHILD_ENV`] set to `test_name`; see [`is_test_child`].
///
/// `test_name` is the test's path as cargo prints it (e.g. `scan::finds_new_device`). Check
/// that the output says `1 passed`: a misspelt name runs no test and still succeeds.
pub fn run_test_in_child(test_name: &str, bus_address: &str) -> io::Result<Output> {
    test_child_command(test_name, bus_address)?
        .stdin(Stdio::null())
        .output()
}

/// The command [`run_test_in_child`] runs, for callers that need to run several children at
/// once or talk to them (stdin, kill).
pub fn test_child_command(test_name: &str, bus_address: &str) -> io::Result<Command> {
    let mut command = Command::new(std::env::current_exe()?);
    command
        .args(["--exact", test_name, "--nocapture", "--test-threads=1"])
        .env("DBUS_SYSTEM_BUS_ADDRESS", bus_address)
        .env(CHILD_ENV, test_name);
    Ok(command)
}

/// Whether this process is the child started for `test_name` by [`run_test_in_child`].
pub fn is_test_child(test_name: &str) -> bool {
    std::env::var(CHILD_ENV).is_ok_and(|v| v == test_name)
}
