//! The bridge end to end on one machine: a fake kernel on a `SOCK_SEQPACKET` pair plays
//! `/dev/uhid` and the host's CTAPHID, the virtual key hands requests to the bridge, the
//! bridge runs real hybrid ceremonies through the loopback relay, and the software phone
//! answers when the test "scans" the QR code the presenter was given.

use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cable_ctaphid::{Command, Message, Reassembler};
use cable_demo::harness::{short_deadlines, Harness};
use cable_key::{BridgeConfig, HybridBridge, Kind, Outcome, Presenter, Start, Target};
use cable_phone::PasskeyStore;
use cable_proto::cbor::{self, Value};
use cable_uhid::{KernelEvent, KeyConfig, RequestId, UserEvent, VirtualKey};
use p256::ecdsa::signature::Verifier;
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;

mod support;
use support::*;

const WAIT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Seen {
    Started {
        kind: Kind,
        rp_id: String,
        qr: Option<String>,
    },
    Linked(String),
    Ended {
        status: u8,
        failed: bool,
    },
    Confirm,
}

/// Hands what the bridge shows to the test; confirms with `confirm` (never, if `None`).
struct TestPresenter {
    seen: Mutex<Sender<Seen>>,
    confirm: Option<bool>,
}

impl TestPresenter {
    fn seen(&self) -> std::sync::MutexGuard<'_, Sender<Seen>> {
        self.seen.lock().expect("not poisoned")
    }
}

#[async_trait::async_trait]
impl Presenter for TestPresenter {
    fn started(&self, start: &Start<'_>) {
        let qr = match start.target {
            Target::Qr(uri) => Some(uri.to_owned()),
            Target::LinkedPhone(name) => {
                let _ = self.seen().send(Seen::Linked(name.to_owned()));
                None
            }
            _ => None,
        };
        let _ = self.seen().send(Seen::Started {
            kind: start.kind,
            rp_id: start.rp_id.to_owned(),
            qr,
        });
    }

    fn ended(&self, _id: RequestId, outcome: &Outcome<'_>) {
        let (status, failed) = match outcome {
            Outcome::Answered { status } | Outcome::Confirmed { status } => (*status, false),
            Outcome::Failed { status, .. } => (*status, true),
            _ => (0xff, true),
        };
        let _ = self.seen().send(Seen::Ended { status, failed });
    }

    async fn confirm(&self, _id: RequestId) -> bool {
        let _ = self.seen().send(Seen::Confirm);
        match self.confirm {
            Some(answer) => answer,
            None => std::future::pending().await,
        }
    }
}

struct Rig {
    runtime: tokio::runtime::Runtime,
    harness: Option<Harness>,
    kernel: Kernel,
    seen: Receiver<Seen>,
    key: Option<VirtualKey>,
    store: PasskeyStore,
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

impl Rig {
    fn start(confirm: Option<bool>, scan: Duration) -> Rig {
        let runtime = runtime();
        let harness = runtime.block_on(Harness::start()).expect("relay");
        Rig::with(runtime, harness, confirm, scan, |_| {})
    }

    /// A rig on `harness`, its bridge's configuration adjusted by `adjust`.
    fn with(
        runtime: tokio::runtime::Runtime,
        harness: Harness,
        confirm: Option<bool>,
        scan: Duration,
        adjust: impl FnOnce(&mut BridgeConfig),
    ) -> Rig {
        let mut deadlines = short_deadlines();
        deadlines.scan = scan;
        let mut config = BridgeConfig::new(harness.client_config(deadlines).expect("config"));
        adjust(&mut config);
        let (tx, seen) = mpsc::channel();
        let presenter = Arc::new(TestPresenter {
            seen: Mutex::new(tx),
            confirm,
        });
        let bridge = HybridBridge::new(runtime.handle().clone(), config, presenter);
        let (key_end, kernel_end) = seqpacket_pair();
        kernel_end.set_read_timeout(Some(WAIT)).expect("timeout");
        let key = VirtualKey::create(key_end, KeyConfig::default(), bridge).expect("key");
        let kernel = Kernel {
            sock: kernel_end,
            host: Reassembler::new(),
        };
        assert!(matches!(kernel.recv(), UserEvent::Create2(_)));
        kernel.send(&KernelEvent::Start { dev_flags: 0 });
        kernel.send(&KernelEvent::Open);
        Rig {
            runtime,
            harness: Some(harness),
            kernel,
            seen,
            key: Some(key),
            store: PasskeyStore::in_memory(),
        }
    }

    fn next(&self) -> Seen {
        self.seen.recv_timeout(WAIT).expect("the presenter hears")
    }

    /// Waits for the QR code, then lets the software phone answer it.
    fn scan_qr(&self, kind: Kind, rp_id: &str) {
        let Seen::Started {
            kind: k,
            rp_id: r,
            qr: Some(uri),
        } = self.next()
        else {
            panic!("expected a QR code");
        };
        assert_eq!((k, r.as_str()), (kind, rp_id));
        let phone = self
            .harness
            .as_ref()
            .expect("relay")
            .phone(&uri, self.store.clone());
        self.runtime.spawn(phone.run(CancellationToken::new()));
    }
}

impl Drop for Rig {
    fn drop(&mut self) {
        drop(self.key.take());
        if let Some(h) = self.harness.take() {
            let _ = self.runtime.block_on(h.shutdown());
        }
    }
}

fn response_map(message: &Message) -> std::collections::BTreeMap<Value, Value> {
    assert_eq!(message.cmd, Command::Cbor);
    assert_eq!(
        message.payload[0], 0,
        "CTAP2_OK, got {:#04x}",
        message.payload[0]
    );
    cbor::decode(&message.payload[1..])
        .expect("canonical CBOR")
        .as_map()
        .expect("a map")
        .clone()
}

/// The credential id and P-256 key in a makeCredential's authenticator data.
fn attested(auth_data: &[u8]) -> (Vec<u8>, p256::ecdsa::VerifyingKey) {
    let id_len = usize::from(u16::from_be_bytes([auth_data[53], auth_data[54]]));
    let id = auth_data[55..55 + id_len].to_vec();
    let cose = cbor::decode_prefix(&auth_data[55 + id_len..])
        .expect("COSE key")
        .0;
    let cose = cose.as_map().expect("a map");
    let coord = |k: i64| {
        cose.get(&Value::integer(k))
            .and_then(Value::as_bytes)
            .expect("coordinate")
            .to_vec()
    };
    let point = p256::EncodedPoint::from_affine_coordinates(
        coord(-2).as_slice().into(),
        coord(-3).as_slice().into(),
        false,
    );
    (
        id,
        p256::ecdsa::VerifyingKey::from_encoded_point(&point).expect("a P-256 key"),
    )
}

/// Checks a getAssertion answer: it names `credential_id`, says the user was present, and
/// its signature over the authenticator data and `hash` verifies with `public_key`.
fn assert_signed(
    answer: &Message,
    credential_id: &[u8],
    public_key: &p256::ecdsa::VerifyingKey,
    hash: &[u8; 32],
) {
    let got = response_map(answer);
    let credential = cbor::map_get(&got, 1)
        .and_then(Value::as_map)
        .expect("credential");
    assert_eq!(
        credential.get(&text("id")).and_then(Value::as_bytes),
        Some(credential_id),
        "the phone signs with the credential it holds"
    );
    let mut message = cbor::map_get(&got, 2)
        .and_then(Value::as_bytes)
        .expect("authData")
        .to_vec();
    assert_eq!(message[32] & 0x01, 0x01, "user present");
    message.extend_from_slice(hash);
    let signature = cbor::map_get(&got, 3)
        .and_then(Value::as_bytes)
        .expect("signature");
    let signature = p256::ecdsa::DerSignature::try_from(signature).expect("DER signature");
    public_key
        .verify(&message, &signature)
        .expect("the phone signed the host's clientDataHash");
}

#[test]
fn register_then_sign_in_through_the_virtual_key() {
    let mut rig = Rig::start(Some(true), Duration::from_secs(5));
    let cid = rig.kernel.init();
    let rp_id = "bridge.example";

    let hash = [0x11; 32];
    let request = make_credential(&hash, rp_id);
    rig.kernel.write(cid, Command::Cbor, &request);
    rig.scan_qr(Kind::Register, rp_id);
    let (answer, keepalives) = rig.kernel.answer();
    // UP_NEEDED (2) while the person scans; PROCESSING (1) while the tunnel is set up.
    assert!(keepalives.contains(&2), "{keepalives:?}");
    let made = response_map(&answer);
    let auth_data = cbor::map_get(&made, 2)
        .and_then(Value::as_bytes)
        .expect("authData")
        .to_vec();
    assert_eq!(auth_data[..32], Sha256::digest(rp_id.as_bytes())[..]);
    assert_eq!(auth_data[32] & 0x41, 0x41, "UP and AT flags");
    let (credential_id, public_key) = attested(&auth_data);
    assert_eq!(
        rig.next(),
        Seen::Ended {
            status: 0,
            failed: false
        }
    );

    let hash = [0x22; 32];
    rig.kernel
        .write(cid, Command::Cbor, &get_assertion(&hash, rp_id, None));
    rig.scan_qr(Kind::SignIn, rp_id);
    let (answer, _) = rig.kernel.answer();
    assert_signed(&answer, &credential_id, &public_key, &hash);

    // One credential came: there is no next one.
    rig.kernel.write(cid, Command::Cbor, &[0x08]);
    let (answer, _) = rig.kernel.answer();
    assert_eq!(answer.payload, [0x30], "CTAP2_ERR_NOT_ALLOWED");
}

#[test]
fn a_silent_probe_is_answered_at_once_without_a_qr_code() {
    let mut rig = Rig::start(Some(true), Duration::from_secs(5));
    let cid = rig.kernel.init();
    rig.kernel.write(
        cid,
        Command::Cbor,
        &get_assertion(&[3; 32], "probe.example", Some(false)),
    );
    let (answer, keepalives) = rig.kernel.answer();
    assert_eq!(answer.payload, [0x2e], "CTAP2_ERR_NO_CREDENTIALS");
    assert!(keepalives.is_empty());
    assert!(rig.seen.try_recv().is_err(), "nothing shown");
}

/// What python-fido2 2.x and Firefox do with a list before the real request: ask the key
/// silently (`up: false`) which of the listed credentials it holds; the real request then
/// carries only the credential named, or python-fido2's placeholder `00` when none was.
fn preflight(rig: &mut Rig, cid: cable_ctaphid::Cid, rp_id: &str, ids: &[&[u8]]) -> Vec<u8> {
    let probe = with_list(&get_assertion(&[0; 32], rp_id, Some(false)), 3, ids);
    rig.kernel.write(cid, Command::Cbor, &probe);
    let (answer, keepalives) = rig.kernel.answer();
    assert!(keepalives.is_empty(), "answered at once");
    assert!(rig.seen.try_recv().is_err(), "no QR code for a probe");
    if answer.payload[0] != 0 {
        return vec![0];
    }
    let named = response_map(&answer);
    cbor::map_get(&named, 1)
        .and_then(Value::as_map)
        .and_then(|c| c.get(&text("id")))
        .and_then(Value::as_bytes)
        .expect("the probe's answer names a credential")
        .to_vec()
}

/// Registers a passkey on the rig's phone; its credential id and public key.
fn register(
    rig: &mut Rig,
    cid: cable_ctaphid::Cid,
    rp_id: &str,
) -> (Vec<u8>, p256::ecdsa::VerifyingKey) {
    rig.kernel
        .write(cid, Command::Cbor, &make_credential(&[0x31; 32], rp_id));
    rig.scan_qr(Kind::Register, rp_id);
    let (answer, _) = rig.kernel.answer();
    let made = response_map(&answer);
    let _ = rig.next();
    attested(
        cbor::map_get(&made, 2)
            .and_then(Value::as_bytes)
            .expect("authData"),
    )
}

#[test]
fn sign_in_with_an_allow_list_after_a_hosts_silent_probe() {
    let mut rig = Rig::start(Some(true), Duration::from_secs(5));
    let cid = rig.kernel.init();
    let rp_id = "allow.example";
    let (credential_id, public_key) = register(&mut rig, cid, rp_id);

    // The site lists a credential from another authenticator first.
    let elsewhere = [0xee; 32];
    let named = preflight(&mut rig, cid, rp_id, &[&elsewhere, &credential_id]);
    let hash = [0x42; 32];
    let request = with_list(&get_assertion(&hash, rp_id, None), 3, &[&named]);
    rig.kernel.write(cid, Command::Cbor, &request);
    rig.scan_qr(Kind::SignIn, rp_id);
    let (answer, _) = rig.kernel.answer();
    assert_eq!(answer.payload[0], 0, "status {:#04x}", answer.payload[0]);
    assert_signed(&answer, &credential_id, &public_key, &hash);
}

#[test]
fn firefox_s_options_in_field_order_are_accepted_and_made_canonical_for_the_phone() {
    let mut rig = Rig::start(Some(true), Duration::from_secs(5));
    let cid = rig.kernel.init();
    let rp_id = "firefox.example";
    let (credential_id, public_key) = register(&mut rig, cid, rp_id);
    let elsewhere = [0xee; 32];

    // The silent probe, as authenticator-rs sends it.
    let probe = with_options_in_field_order(
        &with_list(
            &get_assertion(&[0; 32], rp_id, None),
            3,
            &[&elsewhere, &credential_id],
        ),
        false,
        false,
    );
    rig.kernel.write(cid, Command::Cbor, &probe);
    let (answer, _) = rig.kernel.answer();
    assert_eq!(answer.payload[0], 0, "status {:#04x}", answer.payload[0]);
    assert!(rig.seen.try_recv().is_err(), "no QR code for a probe");

    // The real request, options still in field order; the phone decodes strictly.
    let hash = [0x44; 32];
    let request = with_options_in_field_order(
        &with_list(&get_assertion(&hash, rp_id, None), 3, &[&elsewhere]),
        false,
        true,
    );
    rig.kernel.write(cid, Command::Cbor, &request);
    rig.scan_qr(Kind::SignIn, rp_id);
    let (answer, _) = rig.kernel.answer();
    assert_signed(&answer, &credential_id, &public_key, &hash);

    assert_eq!(
        rig.next(),
        Seen::Ended {
            status: 0,
            failed: false
        }
    );

    // A passkey sign-in (no list, so nothing to widen): the request itself is re-encoded.
    let request = with_options_in_field_order(&get_assertion(&hash, rp_id, None), false, true);
    rig.kernel.write(cid, Command::Cbor, &request);
    rig.scan_qr(Kind::SignIn, rp_id);
    let (answer, _) = rig.kernel.answer();
    assert_signed(&answer, &credential_id, &public_key, &hash);
}

#[test]
fn an_exclude_list_probed_silently_still_reaches_the_phone() {
    let mut rig = Rig::start(Some(true), Duration::from_secs(5));
    let cid = rig.kernel.init();
    let rp_id = "exclude.example";
    let (credential_id, _) = register(&mut rig, cid, rp_id);

    let elsewhere = [0xee; 32];
    let named = preflight(&mut rig, cid, rp_id, &[&elsewhere, &credential_id]);
    // python-fido2 sends the exclude list only when the probe named a credential.
    let mut request = make_credential(&[0x43; 32], rp_id);
    if named != [0] {
        request = with_list(&request, 5, &[&named]);
    }
    rig.kernel.write(cid, Command::Cbor, &request);
    rig.scan_qr(Kind::Register, rp_id);
    let (answer, _) = rig.kernel.answer();
    assert_eq!(
        answer.payload,
        [0x19],
        "CTAP2_ERR_CREDENTIAL_EXCLUDED: the phone holds a listed credential"
    );
    let _ = rig.next();

    // A list of other authenticators' credentials only: the probe still names one (the key
    // cannot tell), and the phone, holding none of them, registers.
    let named = preflight(&mut rig, cid, rp_id, &[&elsewhere]);
    let request = with_list(&make_credential(&[0x45; 32], rp_id), 5, &[&named]);
    rig.kernel.write(cid, Command::Cbor, &request);
    rig.scan_qr(Kind::Register, rp_id);
    let (answer, _) = rig.kernel.answer();
    let made = response_map(&answer);
    let (second, _) = attested(
        cbor::map_get(&made, 2)
            .and_then(Value::as_bytes)
            .expect("authData"),
    );
    assert_ne!(second, credential_id);
}

#[test]
fn cancel_stops_the_ceremony_and_the_key_stays_usable() {
    let mut rig = Rig::start(Some(true), Duration::from_secs(60));
    let cid = rig.kernel.init();
    rig.kernel.write(
        cid,
        Command::Cbor,
        &make_credential(&[4; 32], "cancel.example"),
    );
    assert!(matches!(rig.next(), Seen::Started { qr: Some(_), .. }));
    rig.kernel.write(cid, Command::Cancel, &[]);
    let (answer, _) = rig.kernel.answer();
    assert_eq!(answer.payload, [0x2d], "CTAP2_ERR_KEEPALIVE_CANCEL");
    assert_eq!(
        rig.next(),
        Seen::Ended {
            status: 0x2d,
            failed: true
        }
    );
    // The next request gets a fresh ceremony, and the phone answers it.
    rig.kernel.write(
        cid,
        Command::Cbor,
        &make_credential(&[5; 32], "cancel.example"),
    );
    rig.scan_qr(Kind::Register, "cancel.example");
    let (answer, _) = rig.kernel.answer();
    response_map(&answer);
}

#[test]
fn closing_the_device_ends_the_ceremony() {
    let mut rig = Rig::start(Some(true), Duration::from_secs(60));
    let cid = rig.kernel.init();
    rig.kernel.write(
        cid,
        Command::Cbor,
        &make_credential(&[6; 32], "close.example"),
    );
    assert!(matches!(rig.next(), Seen::Started { qr: Some(_), .. }));
    rig.kernel.send(&KernelEvent::Close);
    assert_eq!(
        rig.next(),
        Seen::Ended {
            status: 0x2d,
            failed: true
        }
    );
}

#[test]
fn a_phone_that_never_comes_times_out_as_a_key_would() {
    let mut rig = Rig::start(Some(true), Duration::from_millis(300));
    let cid = rig.kernel.init();
    rig.kernel.write(
        cid,
        Command::Cbor,
        &get_assertion(&[7; 32], "late.example", None),
    );
    let (answer, keepalives) = rig.kernel.answer();
    assert_eq!(answer.payload, [0x2f], "CTAP2_ERR_USER_ACTION_TIMEOUT");
    assert!(keepalives.iter().all(|&s| s == 2), "{keepalives:?}");
}

#[test]
fn selection_is_confirmed_or_declined_at_the_bridge() {
    let mut rig = Rig::start(Some(true), Duration::from_secs(5));
    let cid = rig.kernel.init();
    rig.kernel.write(cid, Command::Cbor, &[0x0b]);
    let (answer, _) = rig.kernel.answer();
    assert_eq!(answer.payload, [0x00]);
    assert_eq!(rig.next(), Seen::Confirm);

    let mut rig = Rig::start(Some(false), Duration::from_secs(5));
    let cid = rig.kernel.init();
    rig.kernel.write(cid, Command::Cbor, &[0x0b]);
    let (answer, _) = rig.kernel.answer();
    assert_eq!(answer.payload, [0x27], "CTAP2_ERR_OPERATION_DENIED");

    // Never confirmed: the host cancels it (a browser does when another key was chosen).
    let mut rig = Rig::start(None, Duration::from_secs(5));
    let cid = rig.kernel.init();
    rig.kernel.write(cid, Command::Cbor, &[0x0b]);
    assert_eq!(rig.next(), Seen::Confirm);
    rig.kernel.write(cid, Command::Cancel, &[]);
    let (answer, _) = rig.kernel.answer();
    assert_eq!(answer.payload, [0x2d]);
}

#[test]
fn commands_a_key_without_them_refuses() {
    let mut rig = Rig::start(Some(true), Duration::from_secs(5));
    let cid = rig.kernel.init();
    for command in [0x07u8, 0x0a, 0x0c, 0x0d] {
        rig.kernel.write(cid, Command::Cbor, &[command, 0xa0]);
        let (answer, _) = rig.kernel.answer();
        assert_eq!(
            answer.payload,
            [0x01],
            "{command:#04x}: CTAP1_ERR_INVALID_COMMAND"
        );
    }
    assert!(rig.seen.try_recv().is_err(), "nothing shown");
}

#[test]
fn client_pin_gives_a_key_agreement_key_and_no_pin_or_token() {
    let mut rig = Rig::start(Some(true), Duration::from_secs(5));
    let cid = rig.kernel.init();
    let client_pin = |protocol: u64, sub_command: u64| {
        let mut request = vec![0x06];
        Value::map([
            (Value::Unsigned(1), Value::Unsigned(protocol)),
            (Value::Unsigned(2), Value::Unsigned(sub_command)),
        ])
        .encode_into(&mut request);
        request
    };
    let mut keys = Vec::new();
    for protocol in [2, 1] {
        rig.kernel
            .write(cid, Command::Cbor, &client_pin(protocol, 2));
        let (answer, _) = rig.kernel.answer();
        assert_eq!(
            answer.payload[0], 0,
            "getKeyAgreement in protocol {protocol}"
        );
        let value = cable_proto::cbor::decode(&answer.payload[1..]).expect("canonical CBOR");
        let cose = cable_proto::cbor::map_get(value.as_map().expect("map"), 1)
            .and_then(Value::as_map)
            .expect("keyAgreement")
            .clone();
        let coordinate = |k: u64| {
            cose.get(&Value::Negative(k))
                .and_then(Value::as_bytes)
                .expect("coordinate")
                .to_vec()
        };
        let point = p256::EncodedPoint::from_affine_coordinates(
            coordinate(1).as_slice().into(),
            coordinate(2).as_slice().into(),
            false,
        );
        keys.push(p256::PublicKey::from_sec1_bytes(point.as_bytes()).expect("on the curve"));
    }
    assert_eq!(keys[0], keys[1], "one key for both protocols");
    // getPinUvAuthTokenUsingUvWithPermissions, getPINToken: no token from this key.
    for sub_command in [6, 5] {
        rig.kernel
            .write(cid, Command::Cbor, &client_pin(2, sub_command));
        let (answer, _) = rig.kernel.answer();
        assert_eq!(answer.payload, [0x3e], "CTAP2_ERR_INVALID_SUBCOMMAND");
    }
    assert!(rig.seen.try_recv().is_err(), "nothing shown");
}

/// A phone that counts one more credential than it gives, as a phone offering several
/// accounts would, but refuses getNextAssertion (as every phone here does).
struct CountsTwo(cable_phone::SoftwareAuthenticator);

#[async_trait::async_trait]
impl cable_phone::Authenticator for CountsTwo {
    async fn get_info(&self) -> Value {
        self.0.get_info().await
    }
    async fn make_credential(&mut self, params: Value) -> Result<Value, cable_phone::CtapStatus> {
        self.0.make_credential(params).await
    }
    async fn get_assertion(&mut self, params: Value) -> Result<Value, cable_phone::CtapStatus> {
        let got = self.0.get_assertion(params).await?;
        let mut map = got.as_map().expect("a map").clone();
        map.insert(Value::Unsigned(5), Value::Unsigned(2));
        Ok(Value::Map(map))
    }
}

#[test]
fn a_phone_refusing_get_next_assertion_leaves_its_first_answer_standing() {
    let mut rig = Rig::start(Some(true), Duration::from_secs(5));
    let cid = rig.kernel.init();
    let rp_id = "two.example";
    rig.kernel
        .write(cid, Command::Cbor, &make_credential(&[8; 32], rp_id));
    rig.scan_qr(Kind::Register, rp_id);
    response_map(&rig.kernel.answer().0);
    assert!(matches!(rig.next(), Seen::Ended { status: 0, .. }));

    rig.kernel
        .write(cid, Command::Cbor, &get_assertion(&[9; 32], rp_id, None));
    let Seen::Started { qr: Some(uri), .. } = rig.next() else {
        panic!("expected a QR code");
    };
    let harness = rig.harness.as_ref().expect("relay");
    let authenticator = CountsTwo(cable_phone::SoftwareAuthenticator::new(
        rig.store.clone(),
        cable_phone::AlwaysApprove,
    ));
    let phone = cable_phone::PhoneSession::new(uri, harness.air().advertiser(), authenticator)
        .relay(harness.relay_url().clone())
        .domain_id(0);
    rig.runtime.spawn(phone.run(CancellationToken::new()));
    let got = response_map(&rig.kernel.answer().0);
    // The phone's answer as it gave it, count included.
    assert_eq!(cbor::map_get(&got, 5), Some(&Value::Unsigned(2)));
    rig.kernel.write(cid, Command::Cbor, &[0x08]);
    assert_eq!(rig.kernel.answer().0.payload, [0x30]);
}

#[test]
fn with_phone_a_linked_phone_answers_without_a_qr_code() {
    let runtime = runtime();
    let harness = runtime
        .block_on(Harness::start_with_contacts())
        .expect("relay with contacts");
    let identity = cable_phone::PhoneIdentity::generate(&mut rand_core::OsRng).expect("identity");
    let mut endpoint = runtime
        .block_on(harness.register_phone(&identity))
        .expect("push endpoint");
    let computers = cable_client::LinkedPhones::in_memory();
    let name = identity.name();
    let mut rig = Rig::with(
        runtime,
        harness,
        Some(true),
        Duration::from_secs(5),
        |config| {
            config.ceremony.linked_phones = Some(computers.clone());
            config.phone = Some(name.clone());
        },
    );
    let cid = rig.kernel.init();
    let rp_id = "linked.example";

    // Not linked yet: the QR code, and the phone links while answering it.
    rig.kernel
        .write(cid, Command::Cbor, &make_credential(&[1; 32], rp_id));
    let Seen::Started { qr: Some(uri), .. } = rig.next() else {
        panic!("expected a QR code before the phone is linked");
    };
    let phone = rig
        .harness
        .as_ref()
        .expect("relay")
        .phone(&uri, rig.store.clone())
        .identity(identity.clone());
    rig.runtime.spawn(phone.run(CancellationToken::new()));
    response_map(&rig.kernel.answer().0);
    assert!(matches!(rig.next(), Seen::Ended { status: 0, .. }));
    let deadline = std::time::Instant::now() + WAIT;
    while computers.list().is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "the phone never linked"
        );
        std::thread::sleep(Duration::from_millis(20));
    }

    // Linked: the relay wakes the phone; no QR code.
    rig.kernel
        .write(cid, Command::Cbor, &get_assertion(&[2; 32], rp_id, None));
    assert_eq!(rig.next(), Seen::Linked(name.clone()));
    assert!(matches!(rig.next(), Seen::Started { qr: None, .. }));
    let harness = rig.harness.as_ref().expect("relay");
    let contact = rig.runtime.block_on(endpoint.next()).expect("a push");
    let phone = harness.contacted_phone(contact, &identity, rig.store.clone());
    rig.runtime.spawn(phone.run(CancellationToken::new()));
    let got = response_map(&rig.kernel.answer().0);
    assert!(
        cbor::map_get(&got, 3).and_then(Value::as_bytes).is_some(),
        "signed"
    );
}
