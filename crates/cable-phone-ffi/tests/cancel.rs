//! `cancel()` from another thread ends a session that waits for its computer: `run` fails
//! with `Cancelled` in the phase it was in, and the advert the app started is stopped.
#![allow(clippy::unwrap_used)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use cable_phone_ffi::{
    Advertiser, AdvertiserError, Authenticator, AuthenticatorError, Phase, PhoneSession,
    ProgressEvent, ProgressListener, SessionConfig, SessionError,
};
use cable_proto::qr::{QrKey, RequestHint};
use cable_proto::rand_core::OsRng;
use cable_tunnel_server::{Relay, RelayConfig};

#[derive(Default)]
struct CountingAdvertiser {
    started: AtomicUsize,
    stopped: AtomicUsize,
    data: Mutex<Vec<u8>>,
}

impl Advertiser for CountingAdvertiser {
    fn start(&self, service_data: Vec<u8>) -> Result<(), AdvertiserError> {
        *self.data.lock().unwrap() = service_data;
        self.started.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    fn stop(&self) {
        self.stopped.fetch_add(1, Ordering::SeqCst);
    }
}

struct NeverAsked;

impl Authenticator for NeverAsked {
    fn get_info(&self) -> Result<Vec<u8>, AuthenticatorError> {
        // {1: ["FIDO_2_0"]}
        Ok(vec![
            0xa1, 0x01, 0x81, 0x68, b'F', b'I', b'D', b'O', b'_', b'2', b'_', b'0',
        ])
    }

    fn make_credential(&self, _request: Vec<u8>) -> Result<Vec<u8>, AuthenticatorError> {
        panic!("no computer came, so nothing can be asked");
    }

    fn get_assertion(&self, _request: Vec<u8>) -> Result<Vec<u8>, AuthenticatorError> {
        panic!("no computer came, so nothing can be asked");
    }
}

/// Tells the test when the advert is up.
struct Events(std::sync::mpsc::Sender<ProgressEvent>);

impl ProgressListener for Events {
    fn on_progress(&self, event: ProgressEvent) {
        let _ = self.0.send(event);
    }
}

#[test]
fn cancel_from_another_thread_withdraws_the_advert_and_fails_run() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let relay = runtime
        .block_on(Relay::bind(RelayConfig::default()))
        .unwrap();
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let qr = QrKey::generate(&mut OsRng, now, RequestHint::MakeCredential);
    let advertiser = Arc::new(CountingAdvertiser::default());
    let (events, received) = std::sync::mpsc::channel();
    let session = PhoneSession::from_qr(
        qr.to_uri(),
        SessionConfig {
            relay_url: relay.url(),
            domain_id: None,
            max_qr_age_secs: Some(600),
            await_computer_timeout_secs: 60,
            authenticate_timeout_secs: 60,
        },
        advertiser.clone(),
        Arc::new(NeverAsked),
        Some(Arc::new(Events(events))),
    )
    .unwrap();

    let runner = {
        let session = session.clone();
        std::thread::spawn(move || session.run())
    };
    loop {
        match received.recv_timeout(Duration::from_secs(30)).unwrap() {
            ProgressEvent::Advertising => break,
            ProgressEvent::TunnelOpen { .. } => {}
            other => panic!("unexpected before the advert: {other:?}"),
        }
    }
    assert_eq!(advertiser.started.load(Ordering::SeqCst), 1);
    assert_eq!(
        advertiser.data.lock().unwrap().len(),
        20,
        "20 bytes of service data"
    );

    session.cancel();
    let result = runner.join().unwrap();
    match result {
        Err(SessionError::Cancelled { phase, .. }) => assert_eq!(phase, Phase::AwaitComputer),
        other => panic!("expected Cancelled, got {other:?}"),
    }
    assert_eq!(
        advertiser.stopped.load(Ordering::SeqCst),
        1,
        "the advert is withdrawn once"
    );
    assert!(
        matches!(session.run(), Err(SessionError::AlreadyRun)),
        "a cancelled session does not run again"
    );
}
