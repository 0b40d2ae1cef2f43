//! End to end without Bluetooth: `cable register` and `cable login --ble air` in one process,
//! `cable phone --ble air` in another, the phone's advert carried by the loopback air (files
//! in a private CABLE_AIR_DIR), the tunnel by a relay this test hosts on 127.0.0.1.
#![allow(clippy::unwrap_used)]

mod support;

use std::path::{Path, PathBuf};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use cable_tunnel_server::{Relay, RelayConfig, RunningRelay};
use serde_json::Value;
use support::*;

/// The environment of both processes: this air, and no real Bluetooth service to reach by
/// accident.
fn air_env(air: &Path) -> [(&'static str, &str); 2] {
    [
        ("CABLE_AIR_DIR", air.to_str().unwrap()),
        (
            "DBUS_SYSTEM_BUS_ADDRESS",
            "unix:path=/nonexistent/cable-air-test",
        ),
    ]
}

/// A private directory for the air and the phone's store, and a relay on 127.0.0.1 with the
/// runtime that serves it.
struct World {
    dir: PathBuf,
    relay: RunningRelay,
    _runtime: tokio::runtime::Runtime,
}

impl World {
    fn start(tag: &str) -> World {
        let dir = std::env::temp_dir().join(format!(
            "cable-cli-air-ceremony-{tag}-{}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("air")).unwrap();
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let relay = runtime
            .block_on(Relay::bind(RelayConfig::default()))
            .unwrap();
        World {
            dir,
            relay,
            _runtime: runtime,
        }
    }

    fn air_dir(&self) -> PathBuf {
        self.dir.join("air")
    }

    fn store(&self) -> PathBuf {
        self.dir.join("phone-passkeys.json")
    }

    /// Advert files currently in the air directory.
    fn adverts_on_air(&self) -> Vec<String> {
        std::fs::read_dir(self.air_dir())
            .unwrap()
            .flatten()
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| n.ends_with(".advert"))
            .collect()
    }

    fn phone_args(&self) -> Vec<String> {
        [
            "--relay",
            &self.relay.url(),
            "--ble",
            "air",
            "--yes",
            "--store",
            self.store().to_str().unwrap(),
            "--wait",
            PROCESS_WAIT_SECS,
        ]
        .map(str::to_owned)
        .to_vec()
    }

    fn computer_args(&self) -> Vec<String> {
        [
            "--origin",
            ORIGIN,
            "--relay",
            &self.relay.url(),
            "--ble",
            "air",
            "--scan-timeout",
            PROCESS_WAIT_SECS,
            "--json",
        ]
        .map(str::to_owned)
        .to_vec()
    }
}

impl Drop for World {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// What one ceremony left behind.
struct Ceremony {
    response: String,
    phone_stderr: String,
}

/// Runs `cable <computer_args>` and, once it shows its QR code, `cable phone <uri>
/// <phone_args>` on the same air; both must succeed.
fn ceremony(world: &World, computer_args: &[String]) -> Ceremony {
    let computer_args: Vec<&str> = computer_args.iter().map(String::as_str).collect();
    let air = world.air_dir();
    let env = air_env(&air);
    let mut computer = Cable::spawn("computer", &computer_args, &env);

    let uri = wait_for_qr(&mut computer, reports);

    let phone_args = world.phone_args();
    let mut args = vec!["phone", uri.as_str()];
    args.extend(phone_args.iter().map(String::as_str));
    let mut phone = Cable::spawn("phone", &args, &env);

    wait_for_both(
        &mut computer,
        &mut phone,
        || std::thread::sleep(POLL),
        reports,
    );
    let left = world.adverts_on_air();
    assert!(
        left.is_empty(),
        "the phone left its advert on the air: {left:?}\n{}",
        reports(&[&computer, &phone])
    );
    Ceremony {
        response: computer.stdout(),
        phone_stderr: phone.stderr(),
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
}

#[test]
fn register_and_login_across_processes_through_the_loopback_air() {
    let world = World::start("flags");
    let store = world.store();

    let register_challenge = URL_SAFE_NO_PAD.encode(b"air ceremony: register");
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
    let created = registration.response_json();
    let credential_id = check_registration_json(&created, &register_challenge);
    assert!(
        registration.phone_stderr.contains("advertising "),
        "the phone narrates its advert: {}",
        registration.phone_stderr
    );

    let stored = assert_one_stored_passkey(&store, &credential_id);

    let login_challenge = URL_SAFE_NO_PAD.encode(b"air ceremony: login");
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

fn prf_file(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "PRF outputs are secret: {path:?} is {mode:o}");
    }
    serde_json::from_str(&text).unwrap()
}

/// `--prf` across processes: registration enables and evaluates it, signing in with the same
/// input gives the same output, the outputs go to `--prf-output` and never to stdout.
#[test]
fn prf_outputs_go_to_their_file_and_match_across_ceremonies() {
    let world = World::start("prf");
    let at_registration = world.dir.join("prf-register.json");
    let at_login = world.dir.join("prf-login.json");

    let registration = ceremony(
        &world,
        &with(
            &[
                "register",
                "--rp-id",
                RP_ID,
                "--user",
                "alice",
                "--prf",
                "vault",
                "--prf-output",
                at_registration.to_str().unwrap(),
            ],
            world.computer_args(),
        ),
    );
    let created = registration.response_json();
    assert_eq!(
        created["clientExtensionResults"]["prf"],
        serde_json::json!({"enabled": true})
    );
    let made = prf_file(&at_registration);
    assert_eq!(made["enabled"], true);
    let first = made["results"]["first"].as_str().unwrap().to_owned();
    assert_eq!(b64url(&first).len(), 32);
    assert!(!registration.response.contains(&first));

    let login = ceremony(
        &world,
        &with(
            &[
                "login",
                "--rp-id",
                RP_ID,
                "--prf",
                "vault",
                "--prf",
                "next vault",
                "--prf-output",
                at_login.to_str().unwrap(),
            ],
            world.computer_args(),
        ),
    );
    let asserted = login.response_json();
    assert_eq!(asserted["clientExtensionResults"], serde_json::json!({}));
    let evaluated = prf_file(&at_login);
    assert_eq!(evaluated["results"]["first"], first.as_str());
    let second = evaluated["results"]["second"].as_str().unwrap();
    assert_ne!(second, first);
    assert!(!login.response.contains(second));
}

#[test]
fn prf_without_an_output_file_or_with_three_inputs_is_bad_input() {
    let world = World::start("prf-bad");
    for args in [
        vec!["login", "--rp-id", RP_ID, "--prf", "a"],
        vec![
            "login",
            "--rp-id",
            RP_ID,
            "--prf",
            "a",
            "--prf",
            "b",
            "--prf",
            "c",
            "--prf-output",
            "/nonexistent/prf.json",
        ],
    ] {
        let args = with(&args, world.computer_args());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let air = world.air_dir();
        let mut cable = Cable::spawn("computer", &args, &air_env(&air));
        let status = cable.wait(std::time::Duration::from_secs(30));
        assert_eq!(status.code(), Some(2), "{args:?}: {}", cable.stderr());
        assert!(cable.stderr().contains("--prf"), "{}", cable.stderr());
    }
}
