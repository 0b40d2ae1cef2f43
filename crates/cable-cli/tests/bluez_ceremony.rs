//! End to end through (mock) Bluetooth: `cable register` and `cable login` in one process,
//! `cable phone --ble bluez` in another, the phone's advert carried by a mock BlueZ on a
//! private D-Bus (see `cable_ble::testing`), the tunnel by a relay this test hosts on
//! 127.0.0.1. Both processes really scan and advertise through BlueZ's D-Bus API; only the
//! radio is simulated.
#![cfg(target_os = "linux")]
#![allow(clippy::unwrap_used)]

mod support;

use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use cable_ble::testing::{MockBluez, MockControl};
use cable_demo::RelyingParty;
use cable_tunnel_server::{Relay, RelayConfig, RunningRelay};
use serde_json::Value;
use support::air_watch::{hex_string, AirEvent, AirWatch, SIGNAL_TIMEOUT};
use support::{
    assert_one_stored_passkey, b64url, check_credential_json, check_registration_json,
    stored_credentials, wait_for_both, wait_for_qr, with, Cable, ORIGIN, POLL, PROCESS_WAIT_SECS,
    RP_ID,
};

const ADAPTER: &str = "hci0";

/// Everything both sides said, and the mock's log, for assertion messages.
fn reports(processes: &[&Cable], mock: &MockBluez) -> String {
    let mut out: String = processes.iter().map(|p| p.report()).collect();
    out.push_str("--- mock BlueZ log ---\n");
    out.push_str(&mock.log());
    out
}

/// A mock BlueZ with one powered adapter and a relay on 127.0.0.1, with the runtime that
/// serves it.
struct World {
    mock: MockBluez,
    control: MockControl,
    air: AirWatch,
    relay: RunningRelay,
    _runtime: tokio::runtime::Runtime,
}

impl World {
    fn start() -> World {
        let mock = MockBluez::start().expect(
            "mock BlueZ (needs dbus-daemon and python3-dbusmock, see .ci/install-system-packages)",
        );
        let control = mock.control().unwrap();
        control.add_adapter(ADAPTER).unwrap();
        let air = AirWatch::start(mock.bus_address());
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let relay = runtime
            .block_on(Relay::bind(RelayConfig::default()))
            .unwrap();
        World {
            mock,
            control,
            air,
            relay,
            _runtime: runtime,
        }
    }

    fn relay_url(&self) -> String {
        self.relay.url()
    }

    fn store(&self) -> std::path::PathBuf {
        self.mock.dir().join("phone-passkeys.json")
    }

    /// `cable phone` flags after the URI: this relay, BlueZ on hci0, approve, this store.
    fn phone_args(&self) -> Vec<String> {
        [
            "--relay",
            &self.relay_url(),
            "--ble",
            "bluez",
            "--adapter",
            ADAPTER,
            "--yes",
            "--store",
            self.store().to_str().unwrap(),
            "--wait",
            PROCESS_WAIT_SECS,
        ]
        .map(str::to_owned)
        .to_vec()
    }

    /// Flags of `cable register` and `cable login` shared by every ceremony here.
    fn computer_args(&self) -> Vec<String> {
        [
            "--origin",
            ORIGIN,
            "--relay",
            &self.relay_url(),
            "--ble",
            "bluez",
            "--adapter",
            ADAPTER,
            "--scan-timeout",
            PROCESS_WAIT_SECS,
            "--json",
        ]
        .map(str::to_owned)
        .to_vec()
    }
}

/// What one ceremony left behind.
struct Ceremony {
    /// The computer side's stdout: the response JSON.
    response: String,
    computer_stderr: String,
    phone_stderr: String,
    /// What the mock broadcast about adverts from the start of the ceremony.
    air: Vec<AirEvent>,
    /// The mock's log lines written during the ceremony.
    log: String,
}

/// Runs `cable <computer_args>` and, once it shows its QR code, `cable phone <uri>
/// <phone_args>` on the same bus; both must succeed.
fn ceremony(world: &World, computer_args: &[String]) -> Ceremony {
    let computer_args: Vec<&str> = computer_args.iter().map(String::as_str).collect();
    let phone_args = world.phone_args();
    let bus = world.mock.bus_address();
    let log_start = world.mock.log().len();
    world.air.pump(Duration::ZERO);
    let earlier = world.air.take();
    assert!(
        earlier.is_empty(),
        "advert signals before the ceremony: {earlier:?}"
    );
    let mut computer = Cable::spawn(
        "computer",
        &computer_args,
        &[("DBUS_SYSTEM_BUS_ADDRESS", bus)],
    );

    let context = |processes: &[&Cable]| reports(processes, &world.mock);
    let uri = wait_for_qr(&mut computer, context);

    let mut args = vec!["phone", uri.as_str()];
    args.extend(phone_args.iter().map(String::as_str));
    let mut phone = Cable::spawn("phone", &args, &[("DBUS_SYSTEM_BUS_ADDRESS", bus)]);

    wait_for_both(&mut computer, &mut phone, || world.air.pump(POLL), context);
    let air = world.air.settle();
    let log = world.mock.log()[log_start..].to_owned();
    Ceremony {
        response: computer.stdout(),
        computer_stderr: computer.stderr(),
        phone_stderr: phone.stderr(),
        air,
        log,
    }
}

impl Ceremony {
    /// The one line of JSON the computer side printed.
    fn response_json(&self) -> Value {
        let lines: Vec<&str> = self.response.lines().collect();
        assert_eq!(
            lines.len(),
            1,
            "--json prints exactly one line on stdout: {:?}",
            self.response
        );
        serde_json::from_str(lines[0])
            .unwrap_or_else(|e| panic!("response is not JSON ({e}): {}", lines[0]))
    }

    /// The advert went on the air through BlueZ and was taken off again: the adapter counted
    /// one registered advertisement, a scanner saw it as a device carrying 20 bytes of FFF9
    /// service data (the bytes the phone says it advertised), then the count went back to
    /// zero; the mock's log shows the phone unregistering it (not merely leaving the bus).
    fn assert_advert_registered_then_unregistered(&self, world: &World) {
        let context = || {
            format!(
                "signals: {:?}\n--- phone stderr ---\n{}\n--- computer stderr ---\n{}\n\
                 --- mock log ---\n{}",
                self.air, self.phone_stderr, self.computer_stderr, self.log
            )
        };
        let [AirEvent::ActiveAdverts(1), AirEvent::Device(data), AirEvent::ActiveAdverts(0)] =
            self.air.as_slice()
        else {
            panic!(
                "expected: advert registered, seen as a device, unregistered\n{}",
                context()
            );
        };
        assert_eq!(data.len(), 20, "{}", context());
        let narrated = format!("advertising {}", hex_string(data));
        assert!(
            self.phone_stderr.contains(&narrated),
            "the air carried other bytes than the phone advertised ({narrated})\n{}",
            context()
        );

        // "RegisterAdvertisement <path> from <owner>", then the same for Unregister.
        let calls: Vec<(usize, &str, &str)> = self
            .log
            .lines()
            .enumerate()
            .filter_map(|(i, line)| {
                let mut words = line.split_whitespace().skip(1);
                let (method, path, from) = (words.next()?, words.next()?, words.next()?);
                let tail = &line[line.find(path)?..];
                (from == "from"
                    && matches!(method, "RegisterAdvertisement" | "UnregisterAdvertisement"))
                .then_some((i, method, tail))
            })
            .collect();
        match calls.as_slice() {
            [(a, "RegisterAdvertisement", registered), (b, "UnregisterAdvertisement", unregistered)]
                if a < b && registered == unregistered => {}
            _ => panic!(
                "expected one RegisterAdvertisement, then UnregisterAdvertisement by the same \
                 owner, got {calls:?}\n{}",
                context()
            ),
        }
        assert!(
            world.control.advertisements(ADAPTER).unwrap().is_empty(),
            "an advertisement is still registered\n{}",
            context()
        );
    }
}

#[test]
fn register_and_login_from_flags_through_mock_bluez() {
    let world = World::start();
    let store = world.store();

    let register_challenge = URL_SAFE_NO_PAD.encode(b"bluez ceremony: register");
    let registration = ceremony(
        &world,
        &with(
            &[
                "register",
                "--rp-id",
                RP_ID,
                "--user",
                "alice",
                "--challenge",
                &register_challenge,
            ],
            world.computer_args(),
        ),
    );
    registration.assert_advert_registered_then_unregistered(&world);
    let created = registration.response_json();
    let credential_id = check_registration_json(&created, &register_challenge);

    let stored = assert_one_stored_passkey(&store, &credential_id);

    let login_challenge = URL_SAFE_NO_PAD.encode(b"bluez ceremony: login");
    let login = ceremony(
        &world,
        &with(
            &[
                "login",
                "--rp-id",
                RP_ID,
                "--challenge",
                &login_challenge,
                "--credential-id",
                &credential_id,
            ],
            world.computer_args(),
        ),
    );
    login.assert_advert_registered_then_unregistered(&world);
    let asserted = login.response_json();
    check_credential_json(&asserted, "webauthn.get", &login_challenge);
    assert_eq!(
        asserted["id"],
        credential_id.as_str(),
        "signed in with the new passkey"
    );
    let signature = b64url(
        asserted["response"]["signature"]
            .as_str()
            .expect("response.signature is a string"),
    );
    assert!(!signature.is_empty());
    assert_eq!(
        asserted["response"]["userHandle"], stored[0]["user_handle"],
        "the user handle given at registration"
    );
    assert_eq!(
        stored_credentials(&store).len(),
        1,
        "signing in adds no passkey"
    );
}

/// Options from an independent server-side WebAuthn library (`--options`), and its
/// verdict on the responses: attestation and signature checked against its own challenges.
#[test]
fn relying_party_accepts_register_and_login_through_mock_bluez() {
    let world = World::start();
    let rp = RelyingParty::new(RP_ID, ORIGIN).unwrap();
    let options = world.mock.dir().join("options.json");
    let options_arg = options.to_str().unwrap();

    std::fs::write(&options, rp.start_registration("bob", "Bob").unwrap()).unwrap();
    let registration = ceremony(
        &world,
        &with(
            &["register", "--options", options_arg],
            world.computer_args(),
        ),
    );
    registration.assert_advert_registered_then_unregistered(&world);
    let registered = rp
        .finish_registration(registration.response.trim())
        .unwrap_or_else(|e| {
            panic!(
                "the relying party refused: {e:?}\n{}",
                registration.response
            )
        });

    std::fs::write(&options, rp.start_authentication().unwrap()).unwrap();
    let login = ceremony(
        &world,
        &with(&["login", "--options", options_arg], world.computer_args()),
    );
    login.assert_advert_registered_then_unregistered(&world);
    let signed_in = rp
        .finish_authentication(login.response.trim())
        .unwrap_or_else(|e| panic!("the relying party refused: {e:?}\n{}", login.response));
    assert_eq!(
        signed_in, registered,
        "signed in with the passkey just made"
    );
}

/// SIGTERM while the phone advertises and waits: the phone withdraws its advert itself (the
/// mock logs the unregistration; it would also drop it when the client left the bus) and
/// exits with the status a shell reports for SIGTERM.
#[test]
fn sigterm_withdraws_the_phone_advert() {
    let world = World::start();
    let bus = world.mock.bus_address();
    let computer_args = with(
        &["register", "--rp-id", RP_ID, "--user", "carol"],
        world.computer_args(),
    );
    let computer_args: Vec<&str> = computer_args.iter().map(String::as_str).collect();
    let mut computer = Cable::spawn(
        "computer",
        &computer_args,
        &[("DBUS_SYSTEM_BUS_ADDRESS", bus)],
    );
    let context = |processes: &[&Cable]| reports(processes, &world.mock);
    let uri = wait_for_qr(&mut computer, context);
    // Nobody scans for this phone: it advertises until it is stopped.
    computer.kill();

    world.air.pump(Duration::ZERO);
    world.air.take();
    let log_start = world.mock.log().len();
    let mut args = vec!["phone", uri.as_str()];
    let phone_args = world.phone_args();
    args.extend(phone_args.iter().map(String::as_str));
    let mut phone = Cable::spawn("phone", &args, &[("DBUS_SYSTEM_BUS_ADDRESS", bus)]);
    let deadline = Instant::now() + SIGNAL_TIMEOUT;
    while !world.air.take().contains(&AirEvent::ActiveAdverts(1)) {
        assert!(
            Instant::now() < deadline && phone.exited().is_none(),
            "the phone never advertised\n{}",
            reports(&[&phone], &world.mock)
        );
        world.air.pump(POLL);
    }
    phone.signal("TERM");
    let status = phone.wait(SIGNAL_TIMEOUT);
    assert_eq!(
        status.code(),
        Some(143),
        "{}",
        reports(&[&phone], &world.mock)
    );
    let air = world.air.settle();
    assert_eq!(air.last(), Some(&AirEvent::ActiveAdverts(0)), "{air:?}");
    let log = world.mock.log()[log_start..].to_owned();
    assert!(
        log.lines().any(|l| l.contains("UnregisterAdvertisement")),
        "the phone left without unregistering its advert\n{log}"
    );
}
