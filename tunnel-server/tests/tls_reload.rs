//! The relay binary reloads its certificate on SIGHUP, and with --tls-watch when the files
//! change: a renewed pair is served to new connections, and a broken one is refused with one
//! log line while the current one stays.
#![cfg(unix)]
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustls::pki_types::{CertificateDer, ServerName};
use tokio::net::TcpStream;
use tokio::time::Instant;

const WAIT: Duration = Duration::from_secs(10);

struct RelayProcess {
    child: Child,
    log: Arc<Mutex<String>>,
}

impl RelayProcess {
    fn start(cert: &Path, key: &Path, extra: &[&str]) -> RelayProcess {
        let mut child = Command::new(env!("CARGO_BIN_EXE_cable-tunnel-server"))
            .args(["--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"])
            .args(extra)
            .arg("--tls-cert")
            .arg(cert)
            .arg("--tls-key")
            .arg(key)
            .env_remove("RUST_LOG")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let sink = log.clone();
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let mut log = sink.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        RelayProcess { child, log }
    }

    fn wait_for_log(&self, text: &str) -> String {
        self.wait_for_nth_log(text, 1)
    }

    /// Waits until `text` is in the log `n` times.
    fn wait_for_nth_log(&self, text: &str, n: usize) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let log = self.log.lock().unwrap().clone();
            if log.matches(text).count() >= n {
                return log;
            }
            assert!(Instant::now() < deadline, "no {text:?} in the log:\n{log}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn port(&self) -> u16 {
        let log = self.wait_for_log("relay listening");
        let at = log.find("listen=127.0.0.1:").unwrap() + "listen=127.0.0.1:".len();
        let digits: String = log[at..].chars().take_while(char::is_ascii_digit).collect();
        digits.parse().unwrap()
    }

    fn hangup(&self) {
        let sent = Command::new("kill")
            .args(["-HUP", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success());
    }
}

impl Drop for RelayProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The certificate the relay presents to a new TLS connection.
async fn presented(port: u16, roots: &[CertificateDer<'static>]) -> CertificateDer<'static> {
    let mut store = rustls::RootCertStore::empty();
    for root in roots {
        store.add(root.clone()).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(store)
    .with_no_client_auth();
    let tcp = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let tls = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config))
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap();
    tls.get_ref().1.peer_certificates().unwrap()[0].clone()
}

fn write_pair(cert: &Path, key: &Path) -> CertificateDer<'static> {
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    std::fs::write(key, certified.key_pair.serialize_pem()).unwrap();
    std::fs::write(cert, certified.cert.pem()).unwrap();
    certified.cert.der().clone()
}

#[tokio::test]
async fn sighup_swaps_a_renewed_certificate_and_refuses_a_broken_one() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    let old = write_pair(&cert, &key);
    let relay = RelayProcess::start(&cert, &key, &[]);
    let port = relay.port();
    let roots = [old.clone()];
    assert_eq!(presented(port, &roots).await, old);

    let renewed = write_pair(&cert, &key);
    let roots = [old.clone(), renewed.clone()];
    relay.hangup();
    relay.wait_for_log("TLS certificate reloaded");
    assert_eq!(presented(port, &roots).await, renewed);

    std::fs::write(&cert, "not a certificate\n").unwrap();
    relay.hangup();
    let log = relay.wait_for_log("new TLS certificate refused");
    assert!(log.contains("no certificate found"), "{log}");
    assert_eq!(
        presented(port, &roots).await,
        renewed,
        "a refused pair leaves the current one in use"
    );
}

#[tokio::test]
async fn a_watch_reloads_files_renewed_in_place_and_refuses_a_broken_pair() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    let old = write_pair(&cert, &key);
    let relay = RelayProcess::start(&cert, &key, &["--tls-watch", "50ms"]);
    let port = relay.port();
    relay.wait_for_log("watching the TLS certificate and key files");
    assert_eq!(presented(port, std::slice::from_ref(&old)).await, old);

    // Renewed in place, no signal.
    let renewed = write_pair(&cert, &key);
    let log = relay.wait_for_log("TLS certificate reloaded");
    assert!(log.contains("the files changed"), "{log}");
    let roots = [old.clone(), renewed.clone()];
    assert_eq!(presented(port, &roots).await, renewed);

    // A broken certificate is refused and the renewed one stays in use. (A poll between
    // the two writes of a renewal may have refused a mismatched pair already.)
    let refused = "new TLS certificate refused";
    let before = relay
        .wait_for_log("relay listening")
        .matches(refused)
        .count();
    std::fs::write(&cert, "not a certificate\n").unwrap();
    let log = relay.wait_for_nth_log(refused, before + 1);
    assert!(log.contains("no certificate found"), "{log}");
    assert_eq!(presented(port, &roots).await, renewed);

    // Replaced the way Kubernetes' secret volumes do it: a new file renamed over the old.
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let (new_cert, new_key) = (dir.path().join("cert.new"), dir.path().join("key.new"));
    std::fs::write(&new_key, certified.key_pair.serialize_pem()).unwrap();
    std::fs::write(&new_cert, certified.cert.pem()).unwrap();
    std::fs::rename(&new_key, &key).unwrap();
    std::fs::rename(&new_cert, &cert).unwrap();
    let log = relay.wait_for_nth_log("TLS certificate reloaded", 2);
    assert_eq!(
        log.matches("new TLS certificate refused").count(),
        1,
        "only the broken pair was refused, never a renewal half-written:\n{log}"
    );
    let third = certified.cert.der().clone();
    let roots = [old, renewed, third.clone()];
    assert_eq!(presented(port, &roots).await, third);
}
