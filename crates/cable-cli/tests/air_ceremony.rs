//! End to end without Bluetooth: `cable register` and `cable login --ble air` in one process,
//! `cable phone --ble air` in another, the phone's advert carried by the loopback air (files
//! in a private CABLE_AIR_DIR), the tunnel by a relay this test hosts on 127.0.0.1.
#![allow(clippy::unwrap_used)]

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use cable_tunnel_server::{Relay, RelayConfig, RunningRelay};
use serde_json::Value;

const RP_ID: &str = "example.com";
const ORIGIN: &str = "https://example.com";
/// Limits for a run that normally takes a second or two; generous for a loaded CI machine.
const QR_TIMEOUT: Duration = Duration::from_secs(20);
const CEREMONY_TIMEOUT: Duration = Duration::from_secs(40);
/// Handed to both processes so that they give up on their own well before the test does.
const PROCESS_WAIT_SECS: &str = "30";
const POLL: Duration = Duration::from_millis(5);

/// A running `cable` command whose output is collected as it comes; killed when dropped, so
/// a failing assertion never leaves processes behind.
struct Cable {
    role: &'static str,
    child: Child,
    status: Option<ExitStatus>,
    stdout: Arc<Mutex<Vec<u8>>>,
    stderr: Arc<Mutex<Vec<u8>>>,
    readers: Vec<JoinHandle<()>>,
}

impl Cable {
    fn spawn(role: &'static str, args: &[&str], air_dir: &Path) -> Cable {
        let mut child = Command::new(env!("CARGO_BIN_EXE_cable"))
            .args(args)
            .env("CABLE_AIR_DIR", air_dir)
            // Settings of whoever runs the tests must not leak in, and no real Bluetooth
            // service may be reached by accident.
            .env_remove("CABLE_BLE_ADAPTER")
            .env_remove("CABLE_RELAY")
            .env_remove("CABLE_PHONE_STORE")
            .env(
                "DBUS_SYSTEM_BUS_ADDRESS",
                "unix:path=/nonexistent/cable-air-test",
            )
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start `cable {}`: {e}", args[0]));
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let readers = vec![
            collect(child.stdout.take().unwrap(), stdout.clone()),
            collect(child.stderr.take().unwrap(), stderr.clone()),
        ];
        Cable {
            role,
            child,
            status: None,
            stdout,
            stderr,
            readers,
        }
    }

    fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.stdout.lock().unwrap()).into_owned()
    }

    fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.stderr.lock().unwrap()).into_owned()
    }

    /// The exit status once the process has ended (and all its output has been read).
    fn exited(&mut self) -> Option<ExitStatus> {
        if self.status.is_none() {
            self.status = self.child.try_wait().unwrap();
            if self.status.is_some() {
                for reader in self.readers.drain(..) {
                    reader.join().unwrap();
                }
            }
        }
        self.status
    }

    fn report(&self) -> String {
        format!(
            "--- {} ({}) stderr ---\n{}\n--- {} stdout ---\n{}\n",
            self.role,
            self.status
                .map_or_else(|| "still running".to_owned(), |s| s.to_string()),
            self.stderr(),
            self.role,
            self.stdout()
        )
    }
}

impl Drop for Cable {
    fn drop(&mut self) {
        if self.status.is_none() && self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn collect(mut pipe: impl Read + Send + 'static, into: Arc<Mutex<Vec<u8>>>) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = pipe.read(&mut buf) {
            if n == 0 {
                break;
            }
            into.lock().unwrap().extend_from_slice(&buf[..n]);
        }
    })
}

fn reports(processes: &[&Cable]) -> String {
    processes.iter().map(|p| p.report()).collect()
}

/// The FIDO:/ URI from the first complete line of `text` that carries one.
fn qr_uri(text: &str) -> Option<String> {
    let complete = &text[..text.rfind('\n')? + 1];
    let start = complete.find("FIDO:/")?;
    let digits: String = complete[start + "FIDO:/".len()..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    (!digits.is_empty()).then(|| format!("FIDO:/{digits}"))
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
    let mut computer = Cable::spawn("computer", &computer_args, &air);

    let deadline = Instant::now() + QR_TIMEOUT;
    let uri = loop {
        if let Some(uri) = qr_uri(&computer.stderr()) {
            break uri;
        }
        if computer.exited().is_some() {
            panic!(
                "`cable {}` ended before showing a QR code\n{}",
                computer_args[0],
                reports(&[&computer])
            );
        }
        if Instant::now() > deadline {
            panic!(
                "`cable {}` showed no FIDO:/ URI within {QR_TIMEOUT:?}\n{}",
                computer_args[0],
                reports(&[&computer])
            );
        }
        std::thread::sleep(POLL);
    };

    let phone_args = world.phone_args();
    let mut args = vec!["phone", uri.as_str()];
    args.extend(phone_args.iter().map(String::as_str));
    let mut phone = Cable::spawn("phone", &args, &air);

    let deadline = Instant::now() + CEREMONY_TIMEOUT;
    loop {
        let computer_done = computer.exited();
        let phone_done = phone.exited();
        // A side that failed leaves the other waiting: stop at once.
        if computer_done.is_some_and(|s| !s.success()) || phone_done.is_some_and(|s| !s.success()) {
            panic!(
                "a side of the ceremony failed\n{}",
                reports(&[&computer, &phone])
            );
        }
        if computer_done.is_some() && phone_done.is_some() {
            break;
        }
        if Instant::now() > deadline {
            panic!(
                "the ceremony did not finish within {CEREMONY_TIMEOUT:?}\n{}",
                reports(&[&computer, &phone])
            );
        }
        std::thread::sleep(POLL);
    }
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

fn b64url(text: &str) -> Vec<u8> {
    URL_SAFE_NO_PAD
        .decode(text)
        .unwrap_or_else(|e| panic!("not base64url ({e}): {text}"))
}

/// Checks the fields every `PublicKeyCredential` JSON has; returns the decoded client data.
fn check_credential_json(json: &Value, expected_type: &str, challenge: &str) -> Value {
    let id = json["id"].as_str().expect("id is a string");
    assert!(!b64url(id).is_empty(), "empty credential id: {json}");
    assert_eq!(json["rawId"], json["id"], "{json}");
    assert_eq!(json["type"], "public-key", "{json}");
    let client_data = b64url(
        json["response"]["clientDataJSON"]
            .as_str()
            .expect("response.clientDataJSON is a string"),
    );
    let client_data: Value = serde_json::from_slice(&client_data).expect("clientDataJSON is JSON");
    assert_eq!(client_data["type"], expected_type, "{client_data}");
    assert_eq!(client_data["origin"], ORIGIN, "{client_data}");
    assert_eq!(client_data["challenge"], challenge, "{client_data}");
    let auth_data = b64url(
        json["response"]["authenticatorData"]
            .as_str()
            .expect("response.authenticatorData is a string"),
    );
    // rpIdHash (32) + flags (1) + signCount (4) at least; UP and UV were asserted (--yes).
    assert!(auth_data.len() >= 37, "{json}");
    assert_eq!(auth_data[32] & 0b101, 0b101, "UP and UV flags: {json}");
    client_data
}

/// The credentials in the phone's store file.
fn stored_credentials(store: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(store)
        .unwrap_or_else(|e| panic!("phone store {}: {e}", store.display()));
    let file: Value = serde_json::from_str(&text).expect("the store is JSON");
    file["credentials"]
        .as_array()
        .expect("the store lists credentials")
        .clone()
}

fn with(args: &[&str], common: Vec<String>) -> Vec<String> {
    args.iter().map(|a| (*a).to_owned()).chain(common).collect()
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
    check_credential_json(&created, "webauthn.create", &register_challenge);
    let attestation = b64url(
        created["response"]["attestationObject"]
            .as_str()
            .expect("response.attestationObject is a string"),
    );
    assert_eq!(attestation[0] >> 5, 5, "attestationObject is a CBOR map");
    assert!(
        registration.phone_stderr.contains("advertising "),
        "the phone narrates its advert: {}",
        registration.phone_stderr
    );
    let credential_id = created["id"].as_str().unwrap().to_owned();

    let stored = stored_credentials(&store);
    assert_eq!(
        stored.len(),
        1,
        "one passkey in the phone's store: {stored:?}"
    );
    assert_eq!(stored[0]["credential_id"], credential_id.as_str());
    assert_eq!(stored[0]["rp_id"], RP_ID);
    assert_eq!(stored[0]["user_name"], "alice");

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
