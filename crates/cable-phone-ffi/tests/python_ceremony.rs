//! A credential manager written in Python (examples/python/credential_manager.py: its own
//! vault, keys and signatures with `cryptography`) answers real ceremonies through the
//! generated bindings: `cable register`, then `cable login`, with the advert on the loopback
//! air and the tunnel on a relay this test hosts on 127.0.0.1. An independent relying party
//! issues the options and verifies both responses; the sign-in runs the manager as an
//! asyncio program, with coroutines for callbacks. Then the same with linking: the Python
//! phone links during a QR registration, and `cable login --phone` reaches it through the
//! relay's Web Push to the manager's own endpoint, with no QR code.
#![allow(clippy::unwrap_used)]

mod support;

use std::io::{BufRead, BufReader, Read};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use cable_demo::RelyingParty;
use cable_proto::rand_core::OsRng;
use cable_tunnel_server::contact::ContactKeys;
use cable_tunnel_server::{ContactConfig, Relay, RelayConfig, VapidKey};
use serde_json::Value;

const RP_ID: &str = "example.com";
const ORIGIN: &str = "https://example.com";
/// Generous limits for a loaded machine; a ceremony here takes a second or two.
const QR_TIMEOUT: Duration = Duration::from_secs(30);
const CEREMONY_TIMEOUT: Duration = Duration::from_secs(60);
/// Handed to both processes so that they give up on their own before the test does.
const PROCESS_WAIT_SECS: &str = "40";
const POLL: Duration = Duration::from_millis(10);

/// The `cable` command: `CABLE_TEST_CABLE_BIN` when set (CI points it at the one the
/// workspace's test build made, since a nested build here recompiles much of the workspace
/// under a different feature set), else built by cargo like any other artifact.
fn cable_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("CABLE_TEST_CABLE_BIN") {
        let path = PathBuf::from(path);
        assert!(
            path.is_file(),
            "CABLE_TEST_CABLE_BIN={} is not a file",
            path.display()
        );
        return path;
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let output = Command::new(cargo)
        .args([
            "build",
            "--locked",
            "-p",
            "cable-cli",
            "--bin",
            "cable",
            "--message-format=json-render-diagnostics",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stderr(Stdio::inherit())
        .output()
        .unwrap();
    assert!(output.status.success(), "cargo build -p cable-cli failed");
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        // The command itself, not a unit-test harness of the same name.
        .filter(|m| {
            m["reason"] == "compiler-artifact"
                && m["target"]["name"] == "cable"
                && m["profile"]["test"] == false
        })
        .find_map(|m| m["executable"].as_str().map(PathBuf::from))
        .expect("cargo reported no `cable` executable")
}

/// A child process whose output is collected as it comes; killed when dropped.
struct Process {
    name: &'static str,
    child: Child,
    status: Option<ExitStatus>,
    stdout: Arc<Mutex<Vec<u8>>>,
    stderr: Arc<Mutex<Vec<u8>>>,
    readers: Vec<JoinHandle<()>>,
}

impl Process {
    fn spawn(name: &'static str, mut command: Command) -> Process {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start the {name}: {e}"));
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let readers = vec![
            collect(child.stdout.take().unwrap(), stdout.clone()),
            collect(child.stderr.take().unwrap(), stderr.clone()),
        ];
        Process {
            name,
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
            self.name,
            self.status
                .map_or_else(|| "still running".to_owned(), |s| s.to_string()),
            self.stderr(),
            self.name,
            self.stdout()
        )
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if self.exited().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn collect(pipe: impl Read + Send + 'static, into: Arc<Mutex<Vec<u8>>>) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let mut pipe = BufReader::new(pipe);
        let mut line = Vec::new();
        while pipe.read_until(b'\n', &mut line).is_ok_and(|n| n > 0) {
            into.lock().unwrap().append(&mut line);
        }
    })
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

struct World {
    dir: tempfile::TempDir,
    relay_url: String,
    cable: PathBuf,
    python: String,
    _relay: cable_tunnel_server::RunningRelay,
    _runtime: tokio::runtime::Runtime,
}

impl World {
    fn start() -> World {
        let dir = tempfile::tempdir().unwrap();
        let bindings = dir.path().join("bindings");
        std::fs::create_dir_all(&bindings).unwrap();
        support::generate("python", &bindings);
        std::fs::copy(support::cdylib(), bindings.join(support::CDYLIB_NAME)).unwrap();
        std::fs::create_dir_all(dir.path().join("air")).unwrap();
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let keys = ContactKeys::parse(&ContactKeys::generate_line(1, &mut OsRng)).unwrap();
        let mut contact = ContactConfig::new(keys, VapidKey::generate());
        // The manager's push endpoint is plain HTTP on 127.0.0.1.
        contact.allow_insecure_push = true;
        let relay = runtime
            .block_on(Relay::bind({
                let mut config = RelayConfig::default();
                config.contact = Some(contact);
                config
            }))
            .unwrap();
        World {
            relay_url: relay.url(),
            dir,
            cable: cable_binary(),
            python: std::env::var("CABLE_TEST_PYTHON")
                .unwrap_or_else(|_| "/usr/bin/python3".into()),
            _relay: relay,
            _runtime: runtime,
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn adverts_on_air(&self) -> Vec<String> {
        std::fs::read_dir(self.path("air"))
            .unwrap()
            .flatten()
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| n.ends_with(".advert"))
            .collect()
    }

    /// `cable <command> --options <options> <cable_args>`.
    fn computer(&self, command: &str, options: &str, cable_args: &[&str]) -> Process {
        let options_file = self.path(&format!("{command}-options.json"));
        std::fs::write(&options_file, options).unwrap();
        let mut cable = Command::new(&self.cable);
        cable
            .args([command, "--options"])
            .arg(&options_file)
            .args([
                "--origin",
                ORIGIN,
                "--relay",
                &self.relay_url,
                "--ble",
                "air",
            ])
            .args(["--scan-timeout", PROCESS_WAIT_SECS, "--json"])
            .args(cable_args);
        isolate(&mut cable, &self.path("air"));
        Process::spawn("computer (cable)", cable)
    }

    /// The Python manager with `args` on top of its vault, relay, air and wait.
    fn phone(&self, name: &'static str, args: &[&str]) -> Process {
        let mut python = Command::new(&self.python);
        python
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/examples/python/credential_manager.py"
            ))
            .args(args)
            .arg("--vault")
            .arg(self.path("vault.json"))
            .args(["--relay", &self.relay_url, "--air"])
            .arg(self.path("air"))
            .args(["--wait", PROCESS_WAIT_SECS])
            .env("PYTHONPATH", self.path("bindings"));
        isolate(&mut python, &self.path("air"));
        Process::spawn(name, python)
    }

    /// `cable <command> --options <options>`, then the Python manager with the QR code it
    /// shows; returns what both printed on stdout once both have succeeded.
    fn ceremony(
        &self,
        command: &str,
        options: &str,
        cable_args: &[&str],
        phone_args: &[&str],
    ) -> (String, Value) {
        let mut computer = self.computer(command, options, cable_args);
        let uri = wait_for(QR_TIMEOUT, &mut [&mut computer], |[c]| {
            match (qr_uri(&c.stderr()), c.exited()) {
                (Some(uri), _) => Ok(Some(uri)),
                (None, None) => Ok(None),
                (None, Some(_)) => Err("the computer ended before showing a QR code".into()),
            }
        });
        let mut args = vec![uri.as_str()];
        args.extend_from_slice(phone_args);
        let mut phone = self.phone("phone (Python credential manager)", &args);
        self.finish(&mut computer, &mut phone)
    }

    /// Waits for both to succeed; what both printed on stdout.
    fn finish(&self, computer: &mut Process, phone: &mut Process) -> (String, Value) {
        wait_for(CEREMONY_TIMEOUT, &mut [computer, phone], |[c, p]| {
            Ok((succeeded(c)? & succeeded(p)?).then_some(()))
        });
        let left = self.adverts_on_air();
        assert!(left.is_empty(), "the advert stayed on the air: {left:?}");
        let outcome = serde_json::from_str(phone.stdout().trim())
            .unwrap_or_else(|e| panic!("the manager's outcome ({e})\n{}", phone.report()));
        (computer.stdout().trim().to_owned(), outcome)
    }
}

/// No settings of whoever runs the tests, and no real Bluetooth service to reach by
/// accident.
fn isolate(command: &mut Command, air: &Path) {
    command
        .env_remove("CABLE_BLE_ADAPTER")
        .env_remove("CABLE_RELAY")
        .env_remove("RUST_LOG")
        .env("CABLE_AIR_DIR", air)
        .env(
            "DBUS_SYSTEM_BUS_ADDRESS",
            "unix:path=/nonexistent/cable-python-ceremony",
        )
        .env("NO_COLOR", "1");
}

/// Polls `ready` until it gives an answer, or a process it names as failed; panics with
/// every process's report then, or when time runs out.
fn wait_for<const N: usize, T>(
    timeout: Duration,
    processes: &mut [&mut Process; N],
    mut ready: impl FnMut(&mut [&mut Process; N]) -> Result<Option<T>, String>,
) -> T {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        let failure = match ready(processes) {
            Ok(Some(answer)) => return answer,
            Ok(None) if std::time::Instant::now() > deadline => format!("waited {timeout:?}"),
            Ok(None) => {
                std::thread::sleep(POLL);
                continue;
            }
            Err(failure) => failure,
        };
        let reports: String = processes.iter().map(|p| p.report()).collect();
        panic!("{failure}\n{reports}");
    }
}

/// Whether `process` has ended with success; an `Err` if it failed.
fn succeeded(process: &mut Process) -> Result<bool, String> {
    match process.exited() {
        None => Ok(false),
        Some(status) if status.success() => Ok(true),
        Some(status) => Err(format!("the {} failed ({status})", process.name)),
    }
}

#[test]
fn python_credential_manager_registers_and_signs_in_through_the_relay() {
    let world = World::start();
    let rp = RelyingParty::new(RP_ID, ORIGIN).unwrap();

    let (created, outcome) = world.ceremony(
        "register",
        &rp.start_registration("alice", "Alice").unwrap(),
        &[],
        &[],
    );
    let registered = rp
        .finish_registration(&created)
        .unwrap_or_else(|e| panic!("the relying party refused the registration: {e:?}\n{created}"));
    assert_eq!(outcome["served"], "MAKE_CREDENTIAL", "{outcome}");
    assert_eq!(outcome["rp_id"], RP_ID, "{outcome}");
    assert_eq!(outcome["status"], 0, "{outcome}");

    let vault_path = world.path("vault.json");
    let mode = std::fs::metadata(&vault_path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "the vault is its owner's alone");
    let vault: Value = serde_json::from_slice(&std::fs::read(&vault_path).unwrap()).unwrap();
    let credentials = vault["credentials"].as_array().unwrap();
    assert_eq!(credentials.len(), 1, "{vault}");
    assert_eq!(credentials[0]["rp_id"], RP_ID);
    assert_eq!(credentials[0]["user_name"], "alice");

    // The sign-in from the same manager as an asyncio program: coroutine callbacks.
    let (asserted, outcome) = world.ceremony(
        "login",
        &rp.start_authentication().unwrap(),
        &[],
        &["--async"],
    );
    let signed_in = rp
        .finish_authentication(&asserted)
        .unwrap_or_else(|e| panic!("the relying party refused the sign-in: {e:?}\n{asserted}"));
    assert_eq!(
        signed_in, registered,
        "signed in with the passkey just made"
    );
    assert_eq!(outcome["served"], "GET_ASSERTION", "{outcome}");
    assert_eq!(outcome["status"], 0, "{outcome}");

    let vault: Value = serde_json::from_slice(&std::fs::read(&vault_path).unwrap()).unwrap();
    assert_eq!(vault["credentials"][0]["sign_count"], 1, "{vault}");
}

#[test]
fn python_phone_links_and_answers_a_linked_login_without_a_qr_code() {
    let world = World::start();
    let rp = RelyingParty::new(RP_ID, ORIGIN).unwrap();
    let identity = world.path("identity.json");
    let identity = identity.to_str().unwrap();
    let phones = world.path("linked-phones.json");
    let phones = phones.to_str().unwrap();

    // Registers its push endpoint with the relay (a contact id), then waits for one contact.
    let mut listener = world.phone(
        "listening phone (Python credential manager)",
        &["--listen", "--identity", identity, "--name", "Python phone"],
    );
    wait_for(QR_TIMEOUT, &mut [&mut listener], |[l]| {
        if l.stderr().contains("waiting for contacts") {
            Ok(Some(()))
        } else if l.exited().is_some() {
            Err("the listener ended before it was ready".into())
        } else {
            Ok(None)
        }
    });

    let (created, outcome) = world.ceremony(
        "register",
        &rp.start_registration("bob", "Bob").unwrap(),
        &["--phones-file", phones],
        &["--identity", identity, "--computer-name", "laptop"],
    );
    let registered = rp
        .finish_registration(&created)
        .unwrap_or_else(|e| panic!("the relying party refused the registration: {e:?}\n{created}"));
    assert_eq!(outcome["served"], "MAKE_CREDENTIAL", "{outcome}");
    let linked: Value = serde_json::from_slice(&std::fs::read(phones).unwrap()).unwrap();
    assert!(
        linked.to_string().contains("Python phone"),
        "the computer keeps the link under the phone's name: {linked}"
    );

    let mut login = world.computer(
        "login",
        &rp.start_authentication().unwrap(),
        &["--phone", "Python phone", "--phones-file", phones],
    );
    let (asserted, outcome) = world.finish(&mut login, &mut listener);
    assert!(
        !login.stderr().contains("FIDO:/"),
        "no QR code was shown\n{}",
        login.report()
    );
    let signed_in = rp
        .finish_authentication(&asserted)
        .unwrap_or_else(|e| panic!("the relying party refused the sign-in: {e:?}\n{asserted}"));
    assert_eq!(
        signed_in, registered,
        "signed in with the passkey just made"
    );
    assert_eq!(outcome["served"], "GET_ASSERTION", "{outcome}");
    assert_eq!(outcome["status"], 0, "{outcome}");
}
