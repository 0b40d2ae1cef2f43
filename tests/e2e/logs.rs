//! What an integrator's `tracing` subscriber sees of a ceremony: a span per ceremony, an
//! event per step, the outcome with its DOMException name, and never a secret. A test binary
//! of its own, so that its subscriber is the process's only one.
#![allow(clippy::unwrap_used)]

use cable_client::Ceremony;
use cable_e2e::{test_deadlines, Harness, RelyingParty};
use cable_phone::PasskeyStore;
use tokio_util::sync::CancellationToken;

const RP_ID: &str = "example.com";
const ORIGIN: &str = "https://example.com";

/// Collects what a `tracing` subscriber writes.
#[derive(Clone, Default)]
struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Captured {
        self.clone()
    }
}

#[tokio::test]
async fn an_integrators_subscriber_sees_the_ceremony_and_no_secret() {
    let log = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(log.clone())
        .with_ansi(false)
        .with_env_filter("cable_client=debug")
        .finish();
    tracing::subscriber::set_global_default(subscriber).unwrap();

    let harness = Harness::start().await.unwrap();
    let rp = RelyingParty::new(RP_ID, ORIGIN).unwrap();
    let options = rp.start_registration("ada", "Ada Lovelace").unwrap();
    let config = harness.client_config(test_deadlines()).unwrap();
    let (ceremony, _progress) = Ceremony::register(config, &options, ORIGIN).unwrap();
    let uri = ceremony.qr_uri();
    let phone = harness.phone(&uri, PasskeyStore::in_memory());
    let cancel = CancellationToken::new();
    let (computer, phone) = tokio::join!(ceremony.run(cancel.clone()), phone.run(cancel.clone()));
    let registration = computer.unwrap();
    phone.unwrap();

    // A second one that fails: nobody scans its code.
    let options = rp.start_authentication().unwrap();
    let mut deadlines = test_deadlines();
    deadlines.scan = std::time::Duration::from_millis(50);
    let config = harness.client_config(deadlines).unwrap();
    let (ceremony, _progress) = Ceremony::authenticate(config, &options, ORIGIN).unwrap();
    let unscanned = ceremony.qr_uri();
    assert!(ceremony.run(cancel.clone()).await.is_err());

    let text = String::from_utf8(log.0.lock().unwrap().clone()).unwrap();
    for expected in [
        "ceremony{request=MakeCredential phone=qr}",
        "ceremony progress progress=Scanning",
        "ceremony progress progress=RequestSent",
        "the phone answered",
        "ceremony{request=GetAssertion phone=qr}",
        "the ceremony failed",
        "dom_exception=NotAllowedError retryable=true",
    ] {
        assert!(
            text.contains(expected),
            "{expected:?} not in the log:\n{text}"
        );
    }
    // The QR codes carry the QR secret; the attestation carries what the phone signed.
    let digits = |uri: &str| uri.trim_start_matches("FIDO:/").to_owned();
    for secret in [digits(&uri), digits(&unscanned)] {
        assert!(!text.contains(&secret), "a QR code is in the log");
    }
    let attestation = registration.to_json()["response"]["attestationObject"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(!text.contains(&attestation));
}
