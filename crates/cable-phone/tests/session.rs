//! Phone sessions against the real relay (in-process) and a computer scripted from cable-proto.

#![allow(clippy::unwrap_used, clippy::result_large_err)]

mod support;

use std::sync::Arc;
use std::time::Duration;

use cable_phone::{
    AlwaysApprove, AlwaysDeny, Deadlines, Outcome, PasskeyStore, Phase, PhoneError, Progress,
    Prompt, RequestKind, SoftwareAuthenticator, UserApproval,
};
use cable_proto::cbor::{self, Value};
use cable_proto::ctap::{command, status};
use cable_proto::handshake::Initiator;
use cable_proto::message::Message;
use cable_proto::qr::{QrKey, RequestHint};
use cable_proto::rand_core::OsRng;
use cable_transport::TransportError;
use p256::ecdsa::signature::Verifier;
use support::*;

const RP: &str = "example.com";
const USER_ID: &[u8] = b"user-handle-0001";

fn get(map: &Value, key: u64) -> Value {
    cbor::map_get(map.as_map().unwrap(), key).unwrap().clone()
}

fn software(store: &PasskeyStore) -> SoftwareAuthenticator {
    SoftwareAuthenticator::new(store.clone(), AlwaysApprove)
}

/// Registers a passkey through a full session; returns (credential id, public key).
async fn register(env: &Env, store: &PasskeyStore) -> (Vec<u8>, p256::ecdsa::VerifyingKey) {
    let qr = qr_key(RequestHint::MakeCredential);
    let mut phone = spawn_phone(env.phone(&qr, software(store)));
    let mut computer = computer_connect(env, &qr).await;
    let cdh = client_data_hash("register");
    let resp = computer
        .request(
            command::MAKE_CREDENTIAL,
            make_credential_params(RP, &cdh, USER_ID),
        )
        .await;
    assert_eq!(resp.status, status::OK);
    let body = resp.body.unwrap();
    // Packed self attestation: signed by the new credential's own key.
    assert_eq!(get(&body, 1), Value::Text("packed".into()));
    let att_stmt = get(&body, 3);
    let att_stmt = att_stmt.as_map().unwrap();
    assert_eq!(att_stmt.len(), 2, "alg and sig, no x5c");
    assert_eq!(
        att_stmt.get(&Value::Text("alg".into())),
        Some(&Value::integer(-7))
    );
    let sig = att_stmt
        .get(&Value::Text("sig".into()))
        .and_then(Value::as_bytes)
        .unwrap();
    let raw_auth_data = get(&body, 2).as_bytes().unwrap().to_vec();
    let auth_data = parse_auth_data(&raw_auth_data);
    {
        use p256::ecdsa::signature::Verifier;
        let mut signed = raw_auth_data.clone();
        signed.extend_from_slice(&cdh);
        let sig = p256::ecdsa::DerSignature::try_from(sig).unwrap();
        auth_data
            .public_key
            .as_ref()
            .unwrap()
            .verify(&signed, &sig)
            .expect("self attestation verifies with the credential's key");
    }
    assert_eq!(auth_data.rp_id_hash, rp_id_hash(RP));
    assert_eq!(auth_data.flags & (UP | UV | AT), UP | UV | AT);
    assert_eq!(auth_data.aaguid, Some([0; 16]));
    let credential_id = auth_data.credential_id.unwrap();
    assert!(credential_id.len() >= 16);

    let outcome = phone.task.await.unwrap().unwrap();
    assert_eq!(
        outcome,
        Outcome::Served {
            kind: RequestKind::MakeCredential,
            rp_id: Some(RP.into()),
            status: 0
        }
    );
    let mut events = Vec::new();
    while let Ok(p) = phone.progress.try_recv() {
        events.push(p);
    }
    assert!(matches!(events[0], Progress::TunnelOpen { .. }));
    assert!(matches!(events[1], Progress::Advertising { .. }));
    assert_eq!(events[2], Progress::ComputerConnected);
    assert_eq!(
        events[3],
        Progress::RequestReceived {
            kind: RequestKind::MakeCredential,
            rp_id: Some(RP.into())
        }
    );
    assert_eq!(events[4], Progress::Replied { status: 0 });
    // The phone closed the tunnel after replying.
    let err = computer.channel.recv(soon()).await.unwrap_err();
    assert!(err.is_closed(), "{err:?}");
    (credential_id, auth_data.public_key.unwrap())
}

async fn sign_in(
    env: &Env,
    store: &PasskeyStore,
    allow: Option<&[u8]>,
    public_key: &p256::ecdsa::VerifyingKey,
) -> Value {
    let qr = qr_key(RequestHint::GetAssertion);
    let phone = spawn_phone(env.phone(&qr, software(store)));
    let mut computer = computer_connect(env, &qr).await;
    let cdh = client_data_hash("sign in");
    let resp = computer
        .request(
            command::GET_ASSERTION,
            get_assertion_params(RP, &cdh, allow),
        )
        .await;
    assert_eq!(resp.status, status::OK);
    let body = resp.body.unwrap();
    let auth_data_bytes = get(&body, 2).as_bytes().unwrap().to_vec();
    let auth_data = parse_auth_data(&auth_data_bytes);
    assert_eq!(auth_data.rp_id_hash, rp_id_hash(RP));
    assert_eq!(auth_data.flags & (UP | UV | AT | ED), UP | UV);
    let signature =
        p256::ecdsa::DerSignature::from_bytes(get(&body, 3).as_bytes().unwrap()).unwrap();
    let mut signed = auth_data_bytes.clone();
    signed.extend_from_slice(&cdh);
    public_key.verify(&signed, &signature).unwrap();
    // A signature over anything else must not verify.
    signed[0] ^= 1;
    assert!(public_key.verify(&signed, &signature).is_err());
    let outcome = phone.result().await.unwrap();
    assert!(matches!(
        outcome,
        Outcome::Served {
            kind: RequestKind::GetAssertion,
            status: 0,
            ..
        }
    ));
    body
}

#[tokio::test]
async fn register_then_sign_in_with_and_without_allow_list() {
    let env = Env::start().await;
    let store = PasskeyStore::in_memory();
    let (credential_id, public_key) = register(&env, &store).await;
    let listed = store.list();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].credential_id, credential_id);
    assert_eq!(listed[0].rp_id, RP);
    assert_eq!(listed[0].user_handle.as_deref(), Some(USER_ID));
    assert_eq!(listed[0].user_name.as_deref(), Some("alice"));

    let body = sign_in(&env, &store, Some(&credential_id), &public_key).await;
    let credential = get(&body, 1);
    assert_eq!(
        credential.as_map().unwrap()[&text("id")],
        Value::Bytes(credential_id.clone())
    );
    assert_eq!(
        credential.as_map().unwrap()[&text("type")],
        text("public-key")
    );

    // Discoverable: an empty allow list finds it and names the user.
    let body = sign_in(&env, &store, None, &public_key).await;
    let user = get(&body, 4);
    assert_eq!(
        user.as_map().unwrap()[&text("id")],
        Value::Bytes(USER_ID.to_vec())
    );
}

#[tokio::test]
async fn post_handshake_carries_get_info_and_advert_stops() {
    let env = Env::start().await;
    let qr = qr_key(RequestHint::GetAssertion);
    let phone = spawn_phone(env.phone(&qr, software(&PasskeyStore::in_memory())));
    let mut computer = computer_connect(&env, &qr).await;
    assert_eq!(computer.post.features, vec!["ctap".to_owned()]);
    assert!(computer.post.linking.is_none());
    let info = cbor::decode(computer.post.get_info.as_ref().unwrap()).unwrap();
    let versions = get(&info, 1);
    assert!(versions.as_array().unwrap().contains(&text("FIDO_2_0")));
    assert_eq!(get(&info, 3), Value::Bytes(vec![0; 16]));
    let options = get(&info, 4);
    let options = options.as_map().unwrap();
    assert_eq!(options[&text("rk")], Value::Bool(true));
    assert_eq!(options[&text("uv")], Value::Bool(true));
    assert!(!options.contains_key(&text("clientPin")));
    assert!(
        cbor::map_get(info.as_map().unwrap(), 6).is_none(),
        "no PIN protocols"
    );
    let transports = get(&info, 9);
    assert!(transports.as_array().unwrap().contains(&text("hybrid")));
    let algorithms = get(&info, 10);
    assert_eq!(
        algorithms.as_array().unwrap(),
        &[Value::map([
            (text("alg"), Value::integer(-7)),
            (text("type"), text("public-key"))
        ])]
    );
    // The post-handshake map and getInfo are canonical: re-encoding gives the same bytes.
    assert_eq!(&info.to_bytes(), computer.post.get_info.as_ref().unwrap());
    // Advertising stopped once the handshake completed.
    tokio::time::timeout(Duration::from_secs(2), async {
        while env.air.active_adverts() != 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .unwrap();

    // getInfo over the tunnel is answered too, with the same map.
    let frame = Message::Ctap(vec![command::GET_INFO]).encode();
    computer.channel.send(&frame, soon()).await.unwrap();
    let reply = computer.channel.recv(soon()).await.unwrap();
    let mut expected = vec![1, 0];
    expected.extend_from_slice(computer.post.get_info.as_ref().unwrap());
    assert_eq!(reply, expected);

    // Shutdown before any request ends the session quietly.
    computer
        .channel
        .send(&Message::Shutdown.encode(), soon())
        .await
        .unwrap();
    assert_eq!(
        phone.result().await.unwrap(),
        Outcome::ShutdownBeforeRequest
    );
}

#[tokio::test]
async fn wrong_qr_secret_fails_the_handshake() {
    let env = Env::start().await;
    let qr = qr_key(RequestHint::GetAssertion);
    let phone = spawn_phone(env.phone(&qr, software(&PasskeyStore::in_memory())));
    let advert = scan_advert(&env.air, &qr).await;
    let mut conn = join(&env, &qr, &advert).await;
    // Same tunnel, but the PSK from another QR secret.
    let other = qr_key(RequestHint::GetAssertion);
    let psk = other.secret().psk(&advert.plaintext);
    let (_initiator, msg1) = Initiator::new_qr(&qr, &psk, &mut OsRng).unwrap();
    conn.send(msg1.to_vec(), soon()).await.unwrap();
    let err = phone.result().await.unwrap_err();
    assert!(matches!(err, PhoneError::Handshake(_)), "{err:?}");
    assert_eq!(err.phase(), Phase::Handshake);
    // No answer was sent; the tunnel is closed.
    assert!(conn.recv(soon()).await.unwrap_err().is_closed());
}

#[tokio::test]
async fn wrong_qr_key_fails_the_handshake() {
    let env = Env::start().await;
    let qr = qr_key(RequestHint::GetAssertion);
    let phone = spawn_phone(env.phone(&qr, software(&PasskeyStore::in_memory())));
    let advert = scan_advert(&env.air, &qr).await;
    let mut conn = join(&env, &qr, &advert).await;
    // Right PSK, but a static key other than the QR's public key.
    let psk = qr.secret().psk(&advert.plaintext);
    let impostor = QrKey::generate(&mut OsRng, unix_now(), RequestHint::GetAssertion);
    let (_initiator, msg1) = Initiator::new_qr(&impostor, &psk, &mut OsRng).unwrap();
    conn.send(msg1.to_vec(), soon()).await.unwrap();
    let err = phone.result().await.unwrap_err();
    assert!(matches!(err, PhoneError::Handshake(_)), "{err:?}");
}

#[tokio::test]
async fn tampered_handshake_message_is_rejected() {
    let env = Env::start().await;
    let qr = qr_key(RequestHint::GetAssertion);
    let phone = spawn_phone(env.phone(&qr, software(&PasskeyStore::in_memory())));
    let advert = scan_advert(&env.air, &qr).await;
    let mut conn = join(&env, &qr, &advert).await;
    let psk = qr.secret().psk(&advert.plaintext);
    let (_initiator, mut msg1) = Initiator::new_qr(&qr, &psk, &mut OsRng).unwrap();
    msg1[70] ^= 0x40; // inside the tag
    conn.send(msg1.to_vec(), soon()).await.unwrap();
    let err = phone.result().await.unwrap_err();
    assert!(matches!(err, PhoneError::Handshake(_)), "{err:?}");
}

#[tokio::test]
async fn tampered_request_is_rejected() {
    let env = Env::start().await;
    let qr = qr_key(RequestHint::GetAssertion);
    let phone = spawn_phone(env.phone(&qr, software(&PasskeyStore::in_memory())));
    let computer = computer_connect(&env, &qr).await;
    let (mut conn, mut crypter) = computer.channel.into_parts();
    let cdh = client_data_hash("x");
    let frame = Message::Ctap(
        cable_proto::ctap::CtapRequest::new(
            command::GET_ASSERTION,
            get_assertion_params(RP, &cdh, None),
        )
        .encode(),
    )
    .encode();
    let mut ciphertext = crypter.encrypt(&frame).unwrap();
    let last = ciphertext.len() - 1;
    ciphertext[last] ^= 1;
    conn.send(ciphertext, soon()).await.unwrap();
    let err = phone.result().await.unwrap_err();
    assert!(
        matches!(
            err,
            PhoneError::Transport {
                phase: Phase::AwaitRequest,
                source: TransportError::Decrypt(_)
            }
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn stale_and_future_qr_codes_are_refused() {
    for offset in [-3600i64, 3600] {
        let qr = QrKey::generate(
            &mut OsRng,
            unix_now().checked_add_signed(offset).unwrap(),
            RequestHint::GetAssertion,
        );
        let air = cable_ble::Air::new();
        let err = cable_phone::PhoneSession::new(
            qr.to_uri(),
            air.advertiser(),
            software(&PasskeyStore::in_memory()),
        )
        .max_qr_age(Some(Duration::from_secs(600)))
        .run(Default::default())
        .await
        .unwrap_err();
        match err {
            PhoneError::StaleQr {
                age_secs,
                max_age_secs: 600,
            } => assert!((age_secs + offset).abs() <= 5, "{age_secs}"),
            other => panic!("{other:?}"),
        }
    }
    // Not a QR code at all.
    let air = cable_ble::Air::new();
    let err = cable_phone::PhoneSession::new(
        "FIDO:/123",
        air.advertiser(),
        software(&PasskeyStore::in_memory()),
    )
    .run(Default::default())
    .await
    .unwrap_err();
    assert!(matches!(err, PhoneError::InvalidQr(_)), "{err:?}");
    assert_eq!(err.phase(), Phase::ParseQr);
}

#[tokio::test]
async fn a_digital_credential_qr_code_is_refused_before_anything_goes_out() {
    // Refused while reading the QR code: no relay is contacted, no advert goes out.
    for (hint, text) in [
        (RequestHint::DigitalCredentialPresentation, "dcp"),
        (RequestHint::DigitalCredentialIssuance, "dci"),
    ] {
        let qr = QrKey::generate(&mut OsRng, unix_now(), hint);
        let air = cable_ble::Air::new();
        let err = cable_phone::PhoneSession::new(
            qr.to_uri(),
            air.advertiser(),
            software(&PasskeyStore::in_memory()),
        )
        .run(Default::default())
        .await
        .unwrap_err();
        assert!(
            matches!(err, PhoneError::DigitalCredentialRequest { hint } if hint == text),
            "{err:?}"
        );
        assert_eq!(err.phase(), Phase::ParseQr);
        assert!(err.to_string().contains("passkeys only"), "{err}");
    }
}

#[tokio::test]
async fn old_qr_code_is_accepted_when_the_window_is_off() {
    let env = Env::start().await;
    let qr = QrKey::generate(&mut OsRng, 1_000_000, RequestHint::GetAssertion);
    let phone = spawn_phone(
        env.phone(&qr, software(&PasskeyStore::in_memory()))
            .max_qr_age(None),
    );
    let mut computer = computer_connect(&env, &qr).await;
    computer
        .channel
        .send(&Message::Shutdown.encode(), soon())
        .await
        .unwrap();
    assert_eq!(
        phone.result().await.unwrap(),
        Outcome::ShutdownBeforeRequest
    );
}

fn with_deadlines(
    env: &Env,
    qr: &QrKey,
    auth: SoftwareAuthenticator,
    f: impl FnOnce(&mut Deadlines),
) -> cable_phone::PhoneSession {
    let mut d = test_deadlines();
    f(&mut d);
    env.phone(qr, auth).deadlines(d)
}

#[tokio::test]
async fn open_tunnel_deadline_fires() {
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}", silent.local_addr().unwrap());
    let hold = tokio::spawn(async move {
        let mut held = Vec::new();
        loop {
            let (tcp, _) = silent.accept().await.unwrap();
            held.push(tcp);
        }
    });
    let qr = qr_key(RequestHint::GetAssertion);
    let air = cable_ble::Air::new();
    let mut d = test_deadlines();
    d.open_tunnel = Duration::from_millis(200);
    let err = cable_phone::PhoneSession::new(
        qr.to_uri(),
        air.advertiser(),
        software(&PasskeyStore::in_memory()),
    )
    .relay(url.parse().unwrap())
    .deadlines(d)
    .run(Default::default())
    .await
    .unwrap_err();
    assert!(
        matches!(
            err,
            PhoneError::Timeout {
                phase: Phase::OpenTunnel
            }
        ),
        "{err:?}"
    );
    hold.abort();
}

#[tokio::test]
async fn relay_down_is_a_tunnel_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("ws://{}", listener.local_addr().unwrap());
    drop(listener);
    let qr = qr_key(RequestHint::GetAssertion);
    let air = cable_ble::Air::new();
    let err = cable_phone::PhoneSession::new(
        qr.to_uri(),
        air.advertiser(),
        software(&PasskeyStore::in_memory()),
    )
    .relay(url.parse().unwrap())
    .run(Default::default())
    .await
    .unwrap_err();
    assert!(
        matches!(
            err,
            PhoneError::Transport {
                phase: Phase::OpenTunnel,
                source: TransportError::Connect { .. }
            }
        ),
        "{err:?}"
    );
}

/// An advertiser that never finishes starting.
#[derive(Debug)]
struct StuckAdvertiser;

impl cable_ble::Advertiser for StuckAdvertiser {
    fn start_advertising(
        &self,
        _payload: [u8; 20],
    ) -> futures_util::future::BoxFuture<'_, Result<cable_ble::AdvertGuard, cable_ble::BleError>>
    {
        Box::pin(std::future::pending())
    }
}

#[tokio::test]
async fn advertise_deadline_fires() {
    let env = Env::start().await;
    let qr = qr_key(RequestHint::GetAssertion);
    let mut d = test_deadlines();
    d.advertise = Duration::from_millis(100);
    let err = cable_phone::PhoneSession::new(
        qr.to_uri(),
        StuckAdvertiser,
        software(&PasskeyStore::in_memory()),
    )
    .relay(env.relay_url())
    .deadlines(d)
    .run(Default::default())
    .await
    .unwrap_err();
    assert!(
        matches!(
            err,
            PhoneError::Timeout {
                phase: Phase::Advertise
            }
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn await_computer_deadline_fires_and_advert_is_withdrawn() {
    let env = Env::start().await;
    let qr = qr_key(RequestHint::GetAssertion);
    let session = with_deadlines(&env, &qr, software(&PasskeyStore::in_memory()), |d| {
        d.await_computer = Duration::from_millis(300)
    });
    let err = session.run(Default::default()).await.unwrap_err();
    assert!(
        matches!(
            err,
            PhoneError::Timeout {
                phase: Phase::AwaitComputer
            }
        ),
        "{err:?}"
    );
    tokio::time::timeout(Duration::from_secs(2), async {
        while env.air.active_adverts() != 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn await_request_deadline_fires() {
    let env = Env::start().await;
    let qr = qr_key(RequestHint::GetAssertion);
    let phone = spawn_phone(with_deadlines(
        &env,
        &qr,
        software(&PasskeyStore::in_memory()),
        |d| d.await_request = Duration::from_millis(300),
    ));
    let mut computer = computer_connect(&env, &qr).await;
    let err = phone.result().await.unwrap_err();
    assert!(
        matches!(
            err,
            PhoneError::Timeout {
                phase: Phase::AwaitRequest
            }
        ),
        "{err:?}"
    );
    assert!(computer.channel.recv(soon()).await.unwrap_err().is_closed());
}

/// A user who never answers.
#[derive(Debug)]
struct AbsentUser;

#[async_trait::async_trait]
impl UserApproval for AbsentUser {
    async fn approve(&self, _prompt: &Prompt) -> bool {
        std::future::pending().await
    }
}

#[tokio::test]
async fn authenticate_deadline_fires() {
    let env = Env::start().await;
    let qr = qr_key(RequestHint::MakeCredential);
    let auth = SoftwareAuthenticator::new(PasskeyStore::in_memory(), AbsentUser);
    let phone = spawn_phone(with_deadlines(&env, &qr, auth, |d| {
        d.authenticate = Duration::from_millis(300)
    }));
    let mut computer = computer_connect(&env, &qr).await;
    let frame = Message::Ctap(
        cable_proto::ctap::CtapRequest::new(
            command::MAKE_CREDENTIAL,
            make_credential_params(RP, &client_data_hash("x"), USER_ID),
        )
        .encode(),
    )
    .encode();
    computer.channel.send(&frame, soon()).await.unwrap();
    let err = phone.result().await.unwrap_err();
    assert!(
        matches!(
            err,
            PhoneError::Timeout {
                phase: Phase::Authenticate
            }
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn computer_leaving_during_authentication_ends_the_session() {
    let env = Env::start().await;
    let qr = qr_key(RequestHint::MakeCredential);
    let auth = SoftwareAuthenticator::new(PasskeyStore::in_memory(), AbsentUser);
    let phone = spawn_phone(env.phone(&qr, auth));
    let mut computer = computer_connect(&env, &qr).await;
    let frame = Message::Ctap(
        cable_proto::ctap::CtapRequest::new(
            command::MAKE_CREDENTIAL,
            make_credential_params(RP, &client_data_hash("x"), USER_ID),
        )
        .encode(),
    )
    .encode();
    computer.channel.send(&frame, soon()).await.unwrap();
    computer
        .channel
        .send(&Message::Shutdown.encode(), soon())
        .await
        .unwrap();
    let err = phone.result().await.unwrap_err();
    assert!(
        matches!(
            err,
            PhoneError::ComputerLeft {
                phase: Phase::Authenticate
            }
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn cancellation_stops_the_session_and_the_advert() {
    let env = Env::start().await;
    let qr = qr_key(RequestHint::GetAssertion);
    let mut phone = spawn_phone(env.phone(&qr, software(&PasskeyStore::in_memory())));
    // Wait until it advertises, then cancel.
    loop {
        if let Progress::Advertising { .. } = phone.progress.recv().await.unwrap() {
            break;
        }
    }
    phone.cancel.cancel();
    let err = phone.result().await.unwrap_err();
    assert!(
        matches!(
            err,
            PhoneError::Cancelled {
                phase: Phase::AwaitComputer
            }
        ),
        "{err:?}"
    );
    tokio::time::timeout(Duration::from_secs(2), async {
        while env.air.active_adverts() != 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn declined_request_is_answered_with_operation_denied() {
    let env = Env::start().await;
    let qr = qr_key(RequestHint::MakeCredential);
    let phone = spawn_phone(env.phone(
        &qr,
        SoftwareAuthenticator::new(PasskeyStore::in_memory(), AlwaysDeny),
    ));
    let mut computer = computer_connect(&env, &qr).await;
    let resp = computer
        .request(
            command::MAKE_CREDENTIAL,
            make_credential_params(RP, &client_data_hash("x"), USER_ID),
        )
        .await;
    assert_eq!(resp.status, status::OPERATION_DENIED);
    assert_eq!(resp.body, None);
    assert!(matches!(
        phone.result().await.unwrap(),
        Outcome::Served {
            status: status::OPERATION_DENIED,
            ..
        }
    ));
}

#[tokio::test]
async fn unknown_credential_gives_no_credentials() {
    let env = Env::start().await;
    let qr = qr_key(RequestHint::GetAssertion);
    let phone = spawn_phone(env.phone(&qr, software(&PasskeyStore::in_memory())));
    let mut computer = computer_connect(&env, &qr).await;
    let resp = computer
        .request(
            command::GET_ASSERTION,
            get_assertion_params(RP, &client_data_hash("x"), Some(b"unknown")),
        )
        .await;
    assert_eq!(resp.status, status::NO_CREDENTIALS);
    phone.result().await.unwrap();
}

#[tokio::test]
async fn excluded_credential_is_refused() {
    let env = Env::start().await;
    let store = PasskeyStore::in_memory();
    let (credential_id, _) = register(&env, &store).await;
    let qr = qr_key(RequestHint::MakeCredential);
    let phone = spawn_phone(env.phone(&qr, software(&store)));
    let mut computer = computer_connect(&env, &qr).await;
    let Value::Map(mut params) = make_credential_params(RP, &client_data_hash("again"), USER_ID)
    else {
        unreachable!()
    };
    params.insert(
        Value::Unsigned(5),
        Value::Array(vec![Value::map([
            (text("id"), Value::Bytes(credential_id)),
            (text("type"), text("public-key")),
        ])]),
    );
    let resp = computer
        .request(command::MAKE_CREDENTIAL, Value::Map(params))
        .await;
    assert_eq!(resp.status, status::CREDENTIAL_EXCLUDED);
    phone.result().await.unwrap();
    assert_eq!(store.list().len(), 1);
}

#[tokio::test]
async fn credentials_persist_in_a_file() {
    let dir = std::env::temp_dir().join(format!("cable-phone-store-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("store.json");
    let _ = std::fs::remove_file(&path);
    let env = Env::start().await;
    let store = PasskeyStore::open(&path).unwrap();
    let (credential_id, public_key) = register(&env, &store).await;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    drop(store);
    let reopened = PasskeyStore::open(&path).unwrap();
    assert_eq!(reopened.list()[0].credential_id, credential_id);
    sign_in(&env, &reopened, Some(&credential_id), &public_key).await;
    // Garbage is a typed error, not a panic.
    std::fs::write(&path, b"{not json").unwrap();
    assert!(matches!(
        PasskeyStore::open(&path),
        Err(cable_phone::StoreError::Format(_))
    ));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The approval hook sees what is being asked.
#[derive(Debug, Default)]
struct Recorder(std::sync::Mutex<Vec<Prompt>>);

#[async_trait::async_trait]
impl UserApproval for Recorder {
    async fn approve(&self, prompt: &Prompt) -> bool {
        self.0.lock().unwrap().push(prompt.clone());
        true
    }
}

#[tokio::test]
async fn approval_hook_is_asked_with_the_request_details() {
    let env = Env::start().await;
    let recorder = Arc::new(Recorder::default());
    let qr = qr_key(RequestHint::MakeCredential);
    let phone = spawn_phone(env.phone(
        &qr,
        SoftwareAuthenticator::new(PasskeyStore::in_memory(), recorder.clone()),
    ));
    let mut computer = computer_connect(&env, &qr).await;
    let resp = computer
        .request(
            command::MAKE_CREDENTIAL,
            make_credential_params(RP, &client_data_hash("x"), USER_ID),
        )
        .await;
    assert_eq!(resp.status, 0);
    phone.result().await.unwrap();
    assert_eq!(
        recorder.0.lock().unwrap().as_slice(),
        &[Prompt::Register {
            rp_id: RP.into(),
            rp_name: Some("Example".into()),
            user_name: Some("alice".into()),
            user_display_name: Some("Alice".into()),
        }]
    );
}

#[tokio::test]
async fn browser_style_requests_with_extras_are_accepted() {
    let env = Env::start().await;
    let store = PasskeyStore::in_memory();

    // makeCredential with an exclude list naming an unknown id, extensions, an unknown
    // algorithm type, and only {rk} in the options.
    let qr = qr_key(RequestHint::MakeCredential);
    let phone = spawn_phone(env.phone(&qr, software(&store)));
    let mut computer = computer_connect(&env, &qr).await;
    let Value::Map(mut params) = make_credential_params(RP, &client_data_hash("c"), USER_ID) else {
        unreachable!()
    };
    params.insert(
        Value::Unsigned(4),
        Value::Array(vec![
            Value::map([
                (text("alg"), Value::integer(-7)),
                (text("type"), text("future-type")),
            ]),
            Value::map([
                (text("alg"), Value::integer(-7)),
                (text("type"), text("public-key")),
            ]),
        ]),
    );
    params.insert(
        Value::Unsigned(5),
        Value::Array(vec![Value::map([
            (text("id"), Value::Bytes(vec![9; 32])),
            (text("type"), text("public-key")),
            (
                text("transports"),
                Value::Array(vec![
                    text("cable"),
                    text("hybrid"),
                    text("internal"),
                    text("nfc"),
                ]),
            ),
        ])]),
    );
    params.insert(
        Value::Unsigned(6),
        Value::map([(text("credProtect"), Value::Unsigned(2))]),
    );
    params.insert(
        Value::Unsigned(7),
        Value::map([(text("rk"), Value::Bool(true))]),
    );
    let resp = computer
        .request(command::MAKE_CREDENTIAL, Value::Map(params))
        .await;
    assert_eq!(resp.status, status::OK, "{resp:?}");
    let auth_data = parse_auth_data(get(&resp.body.unwrap(), 2).as_bytes().unwrap());
    let credential_id = auth_data.credential_id.unwrap();
    phone.result().await.unwrap();

    // getAssertion with transports in the allow list and no options at all.
    let qr = qr_key(RequestHint::GetAssertion);
    let phone = spawn_phone(env.phone(&qr, software(&store)));
    let mut computer = computer_connect(&env, &qr).await;
    let params = Value::map([
        (Value::Unsigned(1), text(RP)),
        (
            Value::Unsigned(2),
            Value::Bytes(client_data_hash("d").to_vec()),
        ),
        (
            Value::Unsigned(3),
            Value::Array(vec![Value::map([
                (text("id"), Value::Bytes(credential_id)),
                (text("type"), text("public-key")),
                (
                    text("transports"),
                    Value::Array(vec![text("hybrid"), text("internal")]),
                ),
            ])]),
        ),
    ]);
    let resp = computer.request(command::GET_ASSERTION, params).await;
    assert_eq!(resp.status, status::OK, "{resp:?}");
    let auth_data = parse_auth_data(get(&resp.body.unwrap(), 2).as_bytes().unwrap());
    assert_eq!(auth_data.flags & UP, UP);
    phone.result().await.unwrap();
}

/// An authenticator that cannot produce its getInfo.
struct SlowInfo;

#[async_trait::async_trait]
impl cable_phone::Authenticator for SlowInfo {
    async fn get_info(&self) -> Value {
        std::future::pending().await
    }
    async fn make_credential(&mut self, _: Value) -> Result<Value, cable_phone::CtapStatus> {
        Err(cable_phone::CtapStatus(status::OTHER))
    }
    async fn get_assertion(&mut self, _: Value) -> Result<Value, cable_phone::CtapStatus> {
        Err(cable_phone::CtapStatus(status::OTHER))
    }
}

#[tokio::test]
async fn handshake_deadline_covers_the_post_handshake_message() {
    let env = Env::start().await;
    let qr = qr_key(RequestHint::GetAssertion);
    let mut d = test_deadlines();
    d.handshake = Duration::from_millis(300);
    let phone = spawn_phone(env.phone(&qr, SlowInfo).deadlines(d));
    let advert = scan_advert(&env.air, &qr).await;
    let mut conn = join(&env, &qr, &advert).await;
    let psk = qr.secret().psk(&advert.plaintext);
    let (initiator, msg1) = Initiator::new_qr(&qr, &psk, &mut OsRng).unwrap();
    conn.send(msg1.to_vec(), soon()).await.unwrap();
    initiator.finish(&conn.recv(soon()).await.unwrap()).unwrap();
    let err = phone.result().await.unwrap_err();
    assert!(
        matches!(
            err,
            PhoneError::Timeout {
                phase: Phase::PostHandshake
            }
        ),
        "{err:?}"
    );
}

/// An authenticator whose getInfo encodes but does not read back (a bool map key).
struct BoolKeyInfo;

#[async_trait::async_trait]
impl cable_phone::Authenticator for BoolKeyInfo {
    async fn get_info(&self) -> Value {
        Value::map([(Value::Bool(true), Value::Unsigned(1))])
    }
    async fn make_credential(&mut self, _: Value) -> Result<Value, cable_phone::CtapStatus> {
        Err(cable_phone::CtapStatus(status::OTHER))
    }
    async fn get_assertion(&mut self, _: Value) -> Result<Value, cable_phone::CtapStatus> {
        Err(cable_phone::CtapStatus(status::OTHER))
    }
}

#[tokio::test]
async fn a_get_info_that_does_not_read_back_is_an_error_not_a_panic() {
    let env = Env::start().await;
    let qr = qr_key(RequestHint::GetAssertion);
    let phone = spawn_phone(env.phone(&qr, BoolKeyInfo));
    let advert = scan_advert(&env.air, &qr).await;
    let mut conn = join(&env, &qr, &advert).await;
    let psk = qr.secret().psk(&advert.plaintext);
    let (initiator, msg1) = Initiator::new_qr(&qr, &psk, &mut OsRng).unwrap();
    conn.send(msg1.to_vec(), soon()).await.unwrap();
    let output = initiator.finish(&conn.recv(soon()).await.unwrap()).unwrap();
    let mut channel = cable_transport::EncryptedChannel::new(conn, output.crypter);
    // Whatever the phone sent, a getInfo request must not bring it down.
    let get_info = Message::Ctap(vec![command::GET_INFO]).encode();
    let _ = channel.send(&get_info, soon()).await;
    let err = phone.result().await.unwrap_err();
    assert!(matches!(err, PhoneError::BadGetInfo(_)), "{err:?}");
    assert_eq!(err.phase(), Phase::PostHandshake);
}

#[tokio::test]
async fn a_json_message_during_authentication_is_reported_as_type_3() {
    let env = Env::start().await;
    let qr = qr_key(RequestHint::MakeCredential);
    let auth = SoftwareAuthenticator::new(PasskeyStore::in_memory(), AbsentUser);
    let phone = spawn_phone(env.phone(&qr, auth));
    let mut computer = computer_connect(&env, &qr).await;
    let frame = Message::Ctap(
        cable_proto::ctap::CtapRequest::new(
            command::MAKE_CREDENTIAL,
            make_credential_params(RP, &client_data_hash("x"), USER_ID),
        )
        .encode(),
    )
    .encode();
    computer.channel.send(&frame, soon()).await.unwrap();
    let json = Message::Json("{}".into()).encode();
    computer.channel.send(&json, soon()).await.unwrap();
    let err = phone.result().await.unwrap_err();
    assert!(
        matches!(
            err,
            PhoneError::UnsupportedMessage {
                phase: Phase::Authenticate,
                message_type: 3
            }
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_relay_without_a_domain_id_is_refused_before_anything_goes_out() {
    // Before, the advert silently named domain id 0 (Google's relay), so the computer looked
    // for the tunnel there. The host does not resolve: nothing may be opened.
    let qr = qr_key(RequestHint::GetAssertion);
    let air = cable_ble::Air::new();
    let session = |relay: &str| {
        cable_phone::PhoneSession::new(
            qr.to_uri(),
            air.advertiser(),
            software(&PasskeyStore::in_memory()),
        )
        .relay(relay.parse().unwrap())
    };
    let err = session("wss://relay.invalid")
        .run(Default::default())
        .await
        .unwrap_err();
    match &err {
        PhoneError::NoDomainId { host } => assert_eq!(host, "relay.invalid"),
        other => panic!("{other:?}"),
    }
    assert_eq!(err.phase(), Phase::OpenTunnel);
    assert_eq!(air.active_adverts(), 0, "nothing advertised");
    // With the domain id set, the session goes on to the relay (which is not there).
    let mut d = test_deadlines();
    d.open_tunnel = Duration::from_millis(200);
    let err = session("wss://relay.invalid")
        .domain_id(300)
        .deadlines(d)
        .run(Default::default())
        .await
        .unwrap_err();
    assert!(!matches!(err, PhoneError::NoDomainId { .. }), "{err:?}");
}
