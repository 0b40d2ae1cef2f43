//! The Bluetooth code against the real BlueZ stack: Debian's bluetoothd and kernel with
//! emulated LE controllers (btvirt) that really advertise to each other, in the test VM.
//!
//! Ignored in a plain `cargo test` (this machine's kernel may have no Bluetooth at all):
//! `tests/vm/run-tests.sh` boots the VM, starts dbus, bluetoothd and btvirt with three
//! controllers (hci0 scans for the computer, hci1 advertises for the phone, hci2 for a second
//! phone) and runs these tests with `--ignored` on the guest's system bus. The emulated
//! controllers are not radios: timings here are the stack's, not the air's.
#![cfg(target_os = "linux")]
#![allow(clippy::unwrap_used)]

mod support;

use std::collections::HashMap;
use std::process::Command;
use std::time::{Duration, Instant};

use cable_demo::RelyingParty;
use cable_tunnel_server::{Relay, RelayConfig, RunningRelay};
use dbus::arg::{PropMap, RefArg, Variant};
use dbus::blocking::stdintf::org_freedesktop_dbus::{ObjectManager, Properties};
use dbus::blocking::Connection;
use support::air_watch::{flat_bytes, hex_string, AirEvent, AirWatch, FIDO_SERVICE_UUID};
use support::{reports, wait_for_qr, with, Cable, ORIGIN, POLL, RP_ID};

const SYSTEM_BUS: &str = "unix:path=/run/dbus/system_bus_socket";
const COMPUTER: &str = "hci0";
const PHONE: &str = "hci1";
const OTHER_PHONE: &str = "hci2";
const CALL_TIMEOUT: Duration = Duration::from_secs(5);
/// Bound on one ceremony through the real stack under emulation.
const CEREMONY_TIMEOUT: Duration = Duration::from_secs(90);
const WAIT_SECS: &str = "60";

fn bus() -> Connection {
    Connection::new_system().expect("the guest's system bus (run through tests/vm/run-tests.sh)")
}

/// `LEAdvertisingManager1.ActiveInstances` of an adapter: adverts registered with bluetoothd.
fn active_adverts(adapter: &str) -> u8 {
    bus()
        .with_proxy("org.bluez", format!("/org/bluez/{adapter}"), CALL_TIMEOUT)
        .get("org.bluez.LEAdvertisingManager1", "ActiveInstances")
        .unwrap()
}

fn set_powered(adapter: &str, on: bool) {
    bus()
        .with_proxy("org.bluez", format!("/org/bluez/{adapter}"), CALL_TIMEOUT)
        .set("org.bluez.Adapter1", "Powered", on)
        .unwrap();
    let deadline = Instant::now() + CALL_TIMEOUT;
    loop {
        let powered: bool = bus()
            .with_proxy("org.bluez", format!("/org/bluez/{adapter}"), CALL_TIMEOUT)
            .get("org.bluez.Adapter1", "Powered")
            .unwrap();
        if powered == on {
            return;
        }
        assert!(Instant::now() < deadline, "{adapter} did not power {on}");
        std::thread::sleep(POLL);
    }
}

/// The FFF9 service data of every device bluetoothd holds under `adapter` (its cache).
fn cached_cable_adverts(adapter: &str) -> Vec<Vec<u8>> {
    let objects: HashMap<dbus::Path<'static>, HashMap<String, PropMap>> = bus()
        .with_proxy("org.bluez", "/", CALL_TIMEOUT)
        .get_managed_objects()
        .unwrap();
    let prefix = format!("/org/bluez/{adapter}/dev_");
    objects
        .iter()
        .filter(|(path, _)| path.starts_with(&prefix))
        .filter_map(|(_, interfaces)| {
            let data: &Variant<Box<dyn RefArg>> =
                interfaces.get("org.bluez.Device1")?.get("ServiceData")?;
            let mut entries = data.0.as_iter()?;
            while let (Some(uuid), Some(value)) = (entries.next(), entries.next()) {
                if uuid.as_str() == Some(FIDO_SERVICE_UUID) {
                    return Some(flat_bytes(value));
                }
            }
            None
        })
        .collect()
}

fn doctor(adapter: &str) -> (Option<i32>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_cable"))
        .args(["doctor", "--adapter", adapter])
        .env_remove("CABLE_BLE_ADAPTER")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    println!(
        "--- cable doctor --adapter {adapter} ({}) ---\n{text}",
        out.status
    );
    (out.status.code(), text)
}

/// The verdicts `tests/doctor.rs` expects from the mock, from the real bluetoothd.
#[test]
#[ignore = "needs a real bluetoothd with emulated controllers: tests/vm/run-tests.sh"]
fn doctor_gives_the_verdicts_it_gives_against_the_mock() {
    let (code, text) = doctor(COMPUTER);
    assert_eq!(code, Some(0), "{text}");
    assert!(
        text.contains(COMPUTER) && text.contains("ready to scan"),
        "{text}"
    );

    set_powered(OTHER_PHONE, false);
    let (code, text) = doctor(OTHER_PHONE);
    set_powered(OTHER_PHONE, true);
    assert_eq!(code, Some(1), "{text}");
    assert!(text.to_lowercase().contains("off"), "{text}");

    let (code, text) = doctor("hci7");
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("hci7"), "{text}");
}

/// Another program discovering on an adapter for as long as this lives (a desktop's Bluetooth
/// panel, say), LE only so as not to slow the computer's scan. While any client discovers,
/// bluetoothd keeps the devices it has seen; once discovery stops it drops the
/// non-connectable ones at once, so without another client nothing stale is left to ignore.
struct OtherDiscovery {
    _conn: Connection,
}

impl OtherDiscovery {
    fn start(adapter: &str) -> OtherDiscovery {
        let conn = bus();
        let proxy = conn.with_proxy("org.bluez", format!("/org/bluez/{adapter}"), CALL_TIMEOUT);
        let mut filter = PropMap::new();
        filter.insert("Transport".to_owned(), Variant(Box::new("le".to_owned())));
        proxy
            .method_call::<(), _, _, _>("org.bluez.Adapter1", "SetDiscoveryFilter", (filter,))
            .unwrap();
        proxy
            .method_call::<(), _, _, _>("org.bluez.Adapter1", "StartDiscovery", ())
            .unwrap();
        OtherDiscovery { _conn: conn }
    }
}

/// A relay on the guest's loopback and the runtime serving it.
struct World {
    relay: RunningRelay,
    dir: tempfile::TempDir,
    _runtime: tokio::runtime::Runtime,
}

impl World {
    fn start() -> World {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let relay = runtime
            .block_on(Relay::bind(RelayConfig::default()))
            .unwrap();
        World {
            relay,
            dir: tempfile::tempdir().unwrap(),
            _runtime: runtime,
        }
    }

    fn computer_args(&self) -> Vec<String> {
        [
            "--origin",
            ORIGIN,
            "--relay",
            &self.relay.url(),
            "--ble",
            "bluez",
            "--adapter",
            COMPUTER,
            "--scan-timeout",
            WAIT_SECS,
            "--json",
        ]
        .map(str::to_owned)
        .to_vec()
    }

    fn phone(&self, uri: &str, adapter: &str, store: &str) -> Cable {
        let store = self.dir.path().join(store);
        let relay = self.relay.url();
        Cable::spawn(
            "phone",
            &[
                "phone",
                uri,
                "--relay",
                &relay,
                "--ble",
                "bluez",
                "--adapter",
                adapter,
                "--yes",
                "--store",
                store.to_str().unwrap(),
                "--wait",
                WAIT_SECS,
            ],
            &[],
        )
    }
}

/// Starts the computer side and returns it with the URI of the QR code it shows.
fn computer(args: &[String]) -> (Cable, String) {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut computer = Cable::spawn("computer", &args, &[]);
    let uri = wait_for_qr(&mut computer, reports);
    (computer, uri)
}

/// What one ceremony showed.
struct Ceremony {
    response: String,
    /// The 20 bytes the phone said it advertised.
    advertised: Vec<u8>,
    /// FFF9 service data of the devices the computer's adapter reported meanwhile.
    seen: Vec<Vec<u8>>,
    /// From the phone saying it advertises to the computer saying it found the phone.
    advert_to_decrypted: Duration,
}

/// Runs one computer-side command against a phone on [`PHONE`], started `scan_delay` after
/// the QR code appears (a person takes seconds to scan it); both must succeed.
fn ceremony(world: &World, args: &[String], store: &str, scan_delay: Duration) -> Ceremony {
    let watch = AirWatch::start(SYSTEM_BUS);
    let (mut computer, uri) = computer(args);
    std::thread::sleep(scan_delay);
    let mut phone = world.phone(&uri, PHONE, store);
    let deadline = Instant::now() + CEREMONY_TIMEOUT;
    let (mut advertised_at, mut found_at) = (None, None);
    let mut events = Vec::new();
    while computer.exited().is_none() || phone.exited().is_none() {
        let now = Instant::now();
        if advertised_at.is_none() && phone.stderr().contains("advertising ") {
            advertised_at = Some(now);
        }
        if found_at.is_none() && computer.stderr().contains("phone found") {
            found_at = Some(now);
        }
        assert!(
            now < deadline,
            "the ceremony did not finish in {CEREMONY_TIMEOUT:?}\n{}{}",
            computer.report(),
            phone.report()
        );
        watch.pump(POLL);
        events.extend(watch.take());
    }
    let context = format!("{}{}", computer.report(), phone.report());
    assert!(
        computer.exited().unwrap().success() && phone.exited().unwrap().success(),
        "{context}"
    );
    let advertised = phone
        .stderr()
        .split("advertising ")
        .nth(1)
        .and_then(|rest| hex::decode(rest.get(..40)?).ok())
        .unwrap_or_else(|| panic!("the phone did not say what it advertised\n{context}"));
    let seen = events
        .into_iter()
        .filter_map(|e| match e {
            AirEvent::Device(data) => Some(data),
            AirEvent::ActiveAdverts(_) => None,
        })
        .collect();
    let (Some(advertised_at), Some(found_at)) = (advertised_at, found_at) else {
        panic!("no advertising/phone found lines\n{context}");
    };
    Ceremony {
        response: computer.stdout(),
        advertised,
        seen,
        advert_to_decrypted: found_at.saturating_duration_since(advertised_at),
    }
}

impl Ceremony {
    /// The phone's bytes went through bluetoothd, the controllers and back up as a device's
    /// service data, and nothing stayed registered.
    fn check_air(&self, what: &str) {
        println!(
            "{what}: the phone advertised {}; the computer's adapter reported FFF9 service data {:?}; decrypted {} ms after the phone registered it",
            hex_string(&self.advertised),
            self.seen.iter().map(|d| hex_string(d)).collect::<Vec<_>>(),
            self.advert_to_decrypted.as_millis()
        );
        assert!(
            self.seen.contains(&self.advertised),
            "{what}: the advert did not arrive as a device's service data"
        );
        assert_eq!(
            active_adverts(PHONE),
            0,
            "{what}: an advert stayed registered"
        );
    }
}

/// Register and sign in, verified by an independent relying party, with a second phone on
/// the air advertising for another QR code, and bluetoothd still holding the first
/// ceremony's advert when the second starts; then SIGTERM to that second phone.
#[test]
#[ignore = "needs a real bluetoothd with emulated controllers: tests/vm/run-tests.sh"]
fn register_and_login_through_real_bluez_among_foreign_and_stale_adverts() {
    let world = World::start();
    let rp = RelyingParty::new(RP_ID, ORIGIN).unwrap();
    let options = world.dir.path().join("options.json");
    let options_arg = options.to_str().unwrap().to_owned();
    let _other_discovery = OtherDiscovery::start(COMPUTER);

    // A second phone advertising for another computer's QR code, whose computer is gone.
    let (mut gone, other_uri) = computer(&with(
        &["register", "--rp-id", RP_ID, "--user", "mallory"],
        world.computer_args(),
    ));
    gone.kill();
    let mut other_phone = world.phone(&other_uri, OTHER_PHONE, "other-passkeys.json");
    let deadline = Instant::now() + CEREMONY_TIMEOUT;
    while active_adverts(OTHER_PHONE) == 0 {
        assert!(
            Instant::now() < deadline && other_phone.exited().is_none(),
            "the second phone never advertised\n{}",
            other_phone.report()
        );
        std::thread::sleep(POLL);
    }

    std::fs::write(&options, rp.start_registration("bob", "Bob").unwrap()).unwrap();
    let registration = ceremony(
        &world,
        &with(
            &["register", "--options", &options_arg],
            world.computer_args(),
        ),
        "passkeys.json",
        Duration::ZERO,
    );
    registration.check_air("register");
    let registered = rp
        .finish_registration(registration.response.trim())
        .unwrap_or_else(|e| {
            panic!(
                "the relying party refused: {e:?}\n{}",
                registration.response
            )
        });

    // With another client discovering, bluetoothd still holds the registration's advert when
    // the next scan starts, and hands it to the computer first: it must pass over it.
    let cached = cached_cable_adverts(COMPUTER);
    println!(
        "cached by bluetoothd before the login: {:?}",
        cached.iter().map(|d| hex_string(d)).collect::<Vec<_>>()
    );
    assert!(
        cached.contains(&registration.advertised),
        "precondition: bluetoothd no longer holds the registration's advert"
    );

    std::fs::write(&options, rp.start_authentication().unwrap()).unwrap();
    let login = ceremony(
        &world,
        &with(&["login", "--options", &options_arg], world.computer_args()),
        "passkeys.json",
        Duration::ZERO,
    );
    login.check_air("login");
    let signed_in = rp
        .finish_authentication(login.response.trim())
        .unwrap_or_else(|e| panic!("the relying party refused: {e:?}\n{}", login.response));
    assert_eq!(
        signed_in, registered,
        "signed in with the passkey just made"
    );

    // The second phone still advertises; SIGTERM makes it withdraw its advert and exit 143.
    assert!(other_phone.exited().is_none(), "{}", other_phone.report());
    assert_eq!(active_adverts(OTHER_PHONE), 1);
    other_phone.signal("TERM");
    let status = other_phone.wait(Duration::from_secs(10));
    assert_eq!(status.code(), Some(143), "{}", other_phone.report());
    assert_eq!(
        active_adverts(OTHER_PHONE),
        0,
        "the SIGTERMed phone left an advert"
    );
}

/// Time from the phone registering its advert to the computer decrypting it, through the
/// real stack, over several ceremonies (printed for BENCHMARKS.md; never asserted). The phone
/// starts 0, 3, 6 or 9 s after the QR code appears, as a person scanning it would, so that
/// adverts also begin late in the computer's discovery (where bluetoothd's scan cycles show).
#[test]
#[ignore = "needs a real bluetoothd with emulated controllers: tests/vm/run-tests.sh"]
fn advert_latency_through_the_real_stack() {
    let world = World::start();
    let runs: usize = std::env::var("CABLE_VM_LATENCY_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let mut millis = Vec::new();
    for i in 0..runs {
        let registration = ceremony(
            &world,
            &with(
                &["register", "--rp-id", RP_ID, "--user", &format!("user{i}")],
                world.computer_args(),
            ),
            "latency-passkeys.json",
            Duration::from_secs(3 * (i as u64 % 4)),
        );
        registration.check_air("latency");
        millis.push(registration.advert_to_decrypted.as_millis());
    }
    millis.sort_unstable();
    println!("advert registered → decrypted, ms, sorted ({runs} runs): {millis:?}");
}
