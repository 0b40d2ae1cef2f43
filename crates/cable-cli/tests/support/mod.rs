//! What the end-to-end CLI tests share: running `cable` processes and checking the JSON
//! they print.
#![allow(dead_code, clippy::unwrap_used)]

pub mod air_watch;

use std::io::Read;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::Value;

pub const RP_ID: &str = "example.com";
pub const ORIGIN: &str = "https://example.com";
/// Limits for a run that normally takes a second or two; generous for a loaded CI machine.
pub const QR_TIMEOUT: Duration = Duration::from_secs(20);
pub const CEREMONY_TIMEOUT: Duration = Duration::from_secs(40);
/// Handed to both processes so that they give up on their own well before the test does.
pub const PROCESS_WAIT_SECS: &str = "30";
pub const POLL: Duration = Duration::from_millis(5);

/// A running `cable` command whose output is collected as it comes; killed when dropped, so
/// a failing assertion never leaves processes behind.
pub struct Cable {
    role: &'static str,
    child: Child,
    status: Option<ExitStatus>,
    stdout: Arc<Mutex<Vec<u8>>>,
    stderr: Arc<Mutex<Vec<u8>>>,
    readers: Vec<JoinHandle<()>>,
}

impl Cable {
    /// Starts `cable <args>` with `env` on top of an environment cleared of the settings of
    /// whoever runs the tests.
    pub fn spawn(role: &'static str, args: &[&str], env: &[(&str, &str)]) -> Cable {
        let mut child = Command::new(env!("CARGO_BIN_EXE_cable"))
            .args(args)
            .env_remove("CABLE_BLE_ADAPTER")
            .env_remove("CABLE_RELAY")
            .env_remove("CABLE_PHONE_STORE")
            .env_remove("CABLE_AIR_DIR")
            .env("NO_COLOR", "1")
            .envs(env.iter().copied())
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

    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.stdout.lock().unwrap()).into_owned()
    }

    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.stderr.lock().unwrap()).into_owned()
    }

    /// The exit status once the process has ended (and all its output has been read).
    pub fn exited(&mut self) -> Option<ExitStatus> {
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

    /// Kills the process (SIGKILL) and reaps it.
    pub fn kill(&mut self) {
        if self.exited().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
            self.exited();
        }
    }

    /// Sends a signal by name (`TERM`, `INT`) with kill(1).
    pub fn signal(&self, name: &str) {
        let sent = Command::new("kill")
            .args([format!("-{name}"), self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success(), "kill -{name} failed");
    }

    /// Waits (bounded) for the process to end; panics with its report on timeout.
    pub fn wait(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            if let Some(status) = self.exited() {
                return status;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "did not end in {timeout:?}\n{}",
                self.report()
            );
            std::thread::sleep(POLL);
        }
    }

    pub fn report(&self) -> String {
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

pub fn collect(mut pipe: impl Read + Send + 'static, into: Arc<Mutex<Vec<u8>>>) -> JoinHandle<()> {
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

pub fn reports(processes: &[&Cable]) -> String {
    processes.iter().map(|p| p.report()).collect()
}

/// The FIDO:/ URI from the first complete line of `text` that carries one.
pub fn qr_uri(text: &str) -> Option<String> {
    let complete = &text[..text.rfind('\n')? + 1];
    let start = complete.find("FIDO:/")?;
    let digits: String = complete[start + "FIDO:/".len()..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    (!digits.is_empty()).then(|| format!("FIDO:/{digits}"))
}

pub fn b64url(text: &str) -> Vec<u8> {
    URL_SAFE_NO_PAD
        .decode(text)
        .unwrap_or_else(|e| panic!("not base64url ({e}): {text}"))
}

/// Checks the fields every `PublicKeyCredential` JSON has; returns the decoded client data.
pub fn check_credential_json(json: &Value, expected_type: &str, challenge: &str) -> Value {
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
pub fn stored_credentials(store: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(store)
        .unwrap_or_else(|e| panic!("phone store {}: {e}", store.display()));
    let file: Value = serde_json::from_str(&text).expect("the store is JSON");
    file["credentials"]
        .as_array()
        .expect("the store lists credentials")
        .clone()
}

/// `args` followed by `common`, as owned strings.
pub fn with(args: &[&str], common: Vec<String>) -> Vec<String> {
    args.iter().map(|a| (*a).to_owned()).chain(common).collect()
}

/// Waits (bounded) for `computer` to print its QR code and returns the FIDO:/ URI.
/// `context` renders the processes (and whatever else helps) for the failure message.
pub fn wait_for_qr(computer: &mut Cable, context: impl Fn(&[&Cable]) -> String) -> String {
    let deadline = std::time::Instant::now() + QR_TIMEOUT;
    loop {
        if let Some(uri) = qr_uri(&computer.stderr()) {
            return uri;
        }
        if computer.exited().is_some() {
            panic!(
                "the computer ended before showing a QR code\n{}",
                context(&[computer])
            );
        }
        if std::time::Instant::now() > deadline {
            panic!(
                "the computer showed no FIDO:/ URI within {QR_TIMEOUT:?}\n{}",
                context(&[computer])
            );
        }
        std::thread::sleep(POLL);
    }
}

/// Waits (bounded) until both sides have exited successfully, calling `tick` between checks
/// (it must wait a little, e.g. one POLL). A side that fails ends the wait at once: it leaves
/// the other waiting.
pub fn wait_for_both(
    computer: &mut Cable,
    phone: &mut Cable,
    mut tick: impl FnMut(),
    context: impl Fn(&[&Cable]) -> String,
) {
    let deadline = std::time::Instant::now() + CEREMONY_TIMEOUT;
    loop {
        tick();
        let computer_done = computer.exited();
        let phone_done = phone.exited();
        if computer_done.is_some_and(|s| !s.success()) || phone_done.is_some_and(|s| !s.success()) {
            panic!(
                "a side of the ceremony failed\n{}",
                context(&[computer, phone])
            );
        }
        if computer_done.is_some() && phone_done.is_some() {
            return;
        }
        if std::time::Instant::now() > deadline {
            panic!(
                "the ceremony did not finish within {CEREMONY_TIMEOUT:?}\n{}",
                context(&[computer, phone])
            );
        }
    }
}

/// Checks a registration response (the common fields and a CBOR-map attestation object) and
/// returns the new credential's id.
pub fn check_registration_json(created: &Value, challenge: &str) -> String {
    check_credential_json(created, "webauthn.create", challenge);
    let attestation = b64url(
        created["response"]["attestationObject"]
            .as_str()
            .expect("response.attestationObject is a string"),
    );
    assert_eq!(attestation[0] >> 5, 5, "attestationObject is a CBOR map");
    created["id"].as_str().unwrap().to_owned()
}

/// The phone's store holds exactly the passkey `credential_id`, for alice at RP_ID; returns
/// the stored entries.
pub fn assert_one_stored_passkey(store: &Path, credential_id: &str) -> Vec<Value> {
    let stored = stored_credentials(store);
    assert_eq!(
        stored.len(),
        1,
        "one passkey in the phone's store: {stored:?}"
    );
    assert_eq!(stored[0]["credential_id"], credential_id);
    assert_eq!(stored[0]["rp_id"], RP_ID);
    assert_eq!(stored[0]["user_name"], "alice");
    stored
}
