//! Failure paths of the computer side: each deadline, cancellation, a phone that vanishes or
//! misbehaves, a wrong QR secret, a relay that is down; plus revision 0 and linking data.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use cable_client::{
    Ceremony, CeremonyConfig, ClientError, Deadlines, LinkedPhones, Phase, Progress,
};
use cable_e2e::scripted::{advertise_only, deadline, ScriptedPhone};
use cable_e2e::{client_config_for, test_deadlines, Harness, RelyingParty};
use cable_phone::PasskeyStore;
use cable_proto::cbor::Value;
use cable_proto::message::{LinkSecret, LinkingInfo, Message, PostHandshake, UpdateMessage};
use cable_proto::rand_core::OsRng;
use cable_transport::RelayUrl;
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;

const ORIGIN: &str = "https://example.com";
const GET_OPTIONS: &str = r#"{"challenge": "AAECAwQFBgcICQoLDA0ODw", "rpId": "example.com"}"#;

fn short(scan_ms: u64, other_ms: u64) -> Deadlines {
    Deadlines {
        scan: Duration::from_millis(scan_ms),
        connect: Duration::from_millis(other_ms),
        handshake: Duration::from_millis(other_ms),
        reply: Duration::from_millis(other_ms),
    }
}

fn sign_in(config: CeremonyConfig) -> (Ceremony<cable_client::PreparedAuthentication>, String) {
    let (ceremony, _progress) = Ceremony::authenticate(config, GET_OPTIONS, ORIGIN).unwrap();
    let uri = ceremony.qr_uri();
    (ceremony, uri)
}

/// getInfo of a hybrid phone: rk and uv, no PIN protocols.
fn get_info() -> Vec<u8> {
    Value::map([
        (
            Value::Unsigned(1),
            Value::Array(vec![Value::Text("FIDO_2_0".into())]),
        ),
        (Value::Unsigned(3), Value::Bytes(vec![0; 16])),
        (
            Value::Unsigned(4),
            Value::map([
                (Value::Text("rk".into()), Value::Bool(true)),
                (Value::Text("uv".into()), Value::Bool(true)),
            ]),
        ),
    ])
    .to_bytes()
}

/// A well-formed getAssertion reply for example.com (the client does not check signatures;
/// relying parties do).
fn assertion_reply() -> Vec<u8> {
    let mut auth_data = Sha256::digest(b"example.com").to_vec();
    auth_data.push(0x05);
    auth_data.extend_from_slice(&1u32.to_be_bytes());
    let body = Value::map([
        (
            Value::Unsigned(1),
            Value::map([
                (Value::Text("id".into()), Value::Bytes(vec![7; 16])),
                (Value::Text("type".into()), Value::Text("public-key".into())),
            ]),
        ),
        (Value::Unsigned(2), Value::Bytes(auth_data)),
        (Value::Unsigned(3), Value::Bytes(vec![0x30, 0x00])),
        (
            Value::Unsigned(4),
            Value::map([(Value::Text("id".into()), Value::Bytes(vec![9; 8]))]),
        ),
    ]);
    let mut out = vec![0];
    body.encode_into(&mut out);
    out
}

#[tokio::test]
async fn scan_deadline_when_no_phone_advertises() {
    let harness = Harness::start().await.unwrap();
    let (ceremony, _) = sign_in(harness.client_config(short(150, 1000)).unwrap());
    let err = ceremony.run(CancellationToken::new()).await.unwrap_err();
    assert!(
        matches!(err, ClientError::Timeout { phase: Phase::Scan }),
        "{err:?}"
    );
}

#[tokio::test]
async fn wrong_qr_secret_advert_is_ignored() {
    // A phone that scanned another computer's QR code: its advert is encrypted under another
    // secret, so this computer never accepts it.
    let harness = Harness::start().await.unwrap();
    let (ceremony, _) = sign_in(harness.client_config(short(400, 1000)).unwrap());
    let (other, other_uri) = sign_in(harness.client_config(test_deadlines()).unwrap());
    drop(other);
    let phone = harness.phone(&other_uri, PasskeyStore::in_memory());
    let phone_cancel = CancellationToken::new();
    let phone_task = tokio::spawn(phone.run(phone_cancel.clone()));
    let err = ceremony.run(CancellationToken::new()).await.unwrap_err();
    assert!(
        matches!(err, ClientError::Timeout { phase: Phase::Scan }),
        "{err:?}"
    );
    phone_cancel.cancel();
    let _ = phone_task.await;
}

#[tokio::test]
async fn relay_down_fails_in_connect_phase() {
    let harness = Harness::start().await.unwrap();
    // A port with nothing listening.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let dead = RelayUrl::parse(&format!("ws://127.0.0.1:{port}")).unwrap();
    let config = client_config_for(harness.air(), dead, test_deadlines()).unwrap();
    let (ceremony, uri) = sign_in(config);
    let _advert = advertise_only(harness.air(), &uri, [1, 2, 3])
        .await
        .unwrap();
    let err = ceremony.run(CancellationToken::new()).await.unwrap_err();
    assert!(
        matches!(
            err,
            ClientError::Transport {
                phase: Phase::Connect,
                ..
            }
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn connect_deadline_when_the_relay_never_answers() {
    let harness = Harness::start().await.unwrap();
    // Accepts TCP and then says nothing.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let hold = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let silent = RelayUrl::parse(&format!("ws://127.0.0.1:{port}")).unwrap();
    let config = client_config_for(harness.air(), silent, short(2000, 500)).unwrap();
    let (ceremony, uri) = sign_in(config);
    let _advert = advertise_only(harness.air(), &uri, [1, 2, 3])
        .await
        .unwrap();
    let err = ceremony.run(CancellationToken::new()).await.unwrap_err();
    assert!(
        matches!(
            err,
            ClientError::Timeout {
                phase: Phase::Connect
            }
        ),
        "{err:?}"
    );
    hold.abort();
}

#[tokio::test]
async fn handshake_deadline_when_the_phone_stalls() {
    let harness = Harness::start().await.unwrap();
    let (ceremony, uri) = sign_in(harness.client_config(short(2000, 500)).unwrap());
    let mut phone = ScriptedPhone::open(harness.air(), harness.relay_url(), &uri)
        .await
        .unwrap();
    let (result, msg1) = tokio::join!(ceremony.run(CancellationToken::new()), phone.recv_msg1());
    assert_eq!(msg1.unwrap().len(), 81);
    let err = result.unwrap_err();
    assert!(
        matches!(
            err,
            ClientError::Timeout {
                phase: Phase::Handshake
            }
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn phone_vanishing_mid_handshake_is_a_handshake_failure() {
    let harness = Harness::start().await.unwrap();
    let (ceremony, uri) = sign_in(harness.client_config(test_deadlines()).unwrap());
    let mut phone = ScriptedPhone::open(harness.air(), harness.relay_url(), &uri)
        .await
        .unwrap();
    let vanish = async move {
        phone.recv_msg1().await.unwrap();
        // Gone without a close frame, like a phone losing its network.
        drop(phone);
    };
    let (result, ()) = tokio::join!(ceremony.run(CancellationToken::new()), vanish);
    let err = result.unwrap_err();
    assert!(
        matches!(
            err,
            ClientError::Transport {
                phase: Phase::Handshake,
                ..
            }
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn tampered_handshake_reply_is_rejected() {
    let harness = Harness::start().await.unwrap();
    let (ceremony, uri) = sign_in(harness.client_config(test_deadlines()).unwrap());
    let mut phone = ScriptedPhone::open(harness.air(), harness.relay_url(), &uri)
        .await
        .unwrap();
    let tamper = async move {
        let msg1 = phone.recv_msg1().await.unwrap();
        let psk = phone.qr.secret.psk(&phone.eid);
        let (mut msg2, _) = cable_proto::handshake::Responder::respond_qr(
            &phone.qr.public_key,
            &psk,
            &msg1,
            &mut OsRng,
        )
        .unwrap();
        msg2[80] ^= 1;
        phone.conn.send(msg2.to_vec(), deadline()).await.unwrap();
        phone
    };
    let (result, _phone) = tokio::join!(ceremony.run(CancellationToken::new()), tamper);
    let err = result.unwrap_err();
    assert!(
        matches!(
            err,
            ClientError::Protocol {
                phase: Phase::Handshake,
                ..
            }
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn reply_deadline_sends_shutdown_to_the_phone() {
    let harness = Harness::start().await.unwrap();
    let (ceremony, uri) = sign_in(harness.client_config(short(2000, 500)).unwrap());
    let phone = ScriptedPhone::open(harness.air(), harness.relay_url(), &uri)
        .await
        .unwrap();
    let stall = async move {
        let (mut channel, _) = phone.handshake().await.unwrap();
        channel
            .send(&PostHandshake::new(get_info()).encode(), deadline())
            .await
            .unwrap();
        let request = Message::decode(&channel.recv(deadline()).await.unwrap()).unwrap();
        assert!(matches!(request, Message::Ctap(ref r) if r[0] == 0x02));
        // Say nothing; the computer gives up and must tell us.
        Message::decode(&channel.recv(deadline()).await.unwrap()).unwrap()
    };
    let (result, after) = tokio::join!(ceremony.run(CancellationToken::new()), stall);
    let err = result.unwrap_err();
    assert!(
        matches!(
            err,
            ClientError::Timeout {
                phase: Phase::Reply
            }
        ),
        "{err:?}"
    );
    assert_eq!(after, Message::Shutdown);
}

#[tokio::test]
async fn cancel_while_scanning_returns_promptly() {
    let harness = Harness::start().await.unwrap();
    let (ceremony, _) = sign_in(harness.client_config(test_deadlines()).unwrap());
    let cancel = CancellationToken::new();
    let canceller = {
        let cancel = cancel.clone();
        async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            cancel.cancel();
        }
    };
    let (result, ()) = tokio::join!(ceremony.run(cancel), canceller);
    let err = result.unwrap_err();
    assert!(
        matches!(err, ClientError::Cancelled { phase: Phase::Scan }),
        "{err:?}"
    );
}

#[tokio::test]
async fn cancel_while_waiting_for_the_phone_sends_shutdown_and_closes() {
    let harness = Harness::start().await.unwrap();
    let (ceremony, uri) = sign_in(harness.client_config(test_deadlines()).unwrap());
    let phone = ScriptedPhone::open(harness.air(), harness.relay_url(), &uri)
        .await
        .unwrap();
    let cancel = CancellationToken::new();
    let phone_side = {
        let cancel = cancel.clone();
        async move {
            let (mut channel, _) = phone.handshake().await.unwrap();
            channel
                .send(&PostHandshake::new(get_info()).encode(), deadline())
                .await
                .unwrap();
            let _request = channel.recv(deadline()).await.unwrap();
            // The person is still deciding when the computer side is cancelled.
            cancel.cancel();
            let shutdown = Message::decode(&channel.recv(deadline()).await.unwrap()).unwrap();
            let closed = channel.recv(deadline()).await;
            (shutdown, closed)
        }
    };
    let (result, (shutdown, closed)) = tokio::join!(ceremony.run(cancel), phone_side);
    let err = result.unwrap_err();
    assert!(
        matches!(
            err,
            ClientError::Cancelled {
                phase: Phase::Reply
            }
        ),
        "{err:?}"
    );
    assert_eq!(shutdown, Message::Shutdown);
    assert!(matches!(
        closed,
        Err(cable_transport::TransportError::PeerClosed { .. })
            | Err(cable_transport::TransportError::ConnectionLost)
    ));
}

#[tokio::test]
async fn options_for_another_site_are_refused_before_any_qr() {
    let harness = Harness::start().await.unwrap();
    let rp = RelyingParty::new("example.com", ORIGIN).unwrap();
    let options = rp.start_registration("eve", "Eve").unwrap();
    let err = Ceremony::register(
        harness.client_config(test_deadlines()).unwrap(),
        &options,
        "https://evil.example.net",
    )
    .unwrap_err();
    assert!(matches!(err, ClientError::RpIdMismatch { .. }), "{err:?}");
}

#[tokio::test]
async fn relying_party_timeout_caps_the_phase_deadlines() {
    let harness = Harness::start().await.unwrap();
    let options = r#"{"challenge": "AAECAw", "rpId": "example.com", "timeout": 150}"#;
    let (ceremony, _) = Ceremony::authenticate(
        harness.client_config(test_deadlines()).unwrap(),
        options,
        ORIGIN,
    )
    .unwrap();
    let started = std::time::Instant::now();
    let err = ceremony.run(CancellationToken::new()).await.unwrap_err();
    assert!(
        matches!(err, ClientError::Timeout { phase: Phase::Scan }),
        "{err:?}"
    );
    // Without the cap the scan would run into its own 5 s deadline.
    assert!(started.elapsed() < Duration::from_secs(4));
}

/// snow's default primitives with a given ephemeral key (a valid P-256 scalar).
struct FixedEphemeral([u8; 32]);

struct OneShot(Option<[u8; 32]>);

impl snow::types::Random for OneShot {
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), snow::Error> {
        match self.0.take() {
            Some(bytes) if dest.len() == 32 => {
                dest.copy_from_slice(&bytes);
                Ok(())
            }
            _ => Err(snow::Error::Rng),
        }
    }
}

impl snow::resolvers::CryptoResolver for FixedEphemeral {
    fn resolve_rng(&self) -> Option<Box<dyn snow::types::Random>> {
        Some(Box::new(OneShot(Some(self.0))))
    }
    fn resolve_dh(&self, choice: &snow::params::DHChoice) -> Option<Box<dyn snow::types::Dh>> {
        snow::resolvers::DefaultResolver.resolve_dh(choice)
    }
    fn resolve_hash(
        &self,
        choice: &snow::params::HashChoice,
    ) -> Option<Box<dyn snow::types::Hash>> {
        snow::resolvers::DefaultResolver.resolve_hash(choice)
    }
    fn resolve_cipher(
        &self,
        choice: &snow::params::CipherChoice,
    ) -> Option<Box<dyn snow::types::Cipher>> {
        snow::resolvers::DefaultResolver.resolve_cipher(choice)
    }
}

/// A phone from before Chromium's current transport construction: the Noise handshake via
/// `snow` directly (to reach the raw keys), then AES-GCM with the counter little-endian in
/// the first nonce bytes and associated data `02`, revision 0 framing.
#[tokio::test]
async fn legacy_transport_construction_is_accepted() {
    use aes_gcm::aead::{Aead, KeyInit, Payload};
    use aes_gcm::{Aes256Gcm, Nonce};

    fn legacy_nonce(counter: u32) -> [u8; 12] {
        let mut nonce = [0u8; 12];
        nonce[..4].copy_from_slice(&counter.to_le_bytes());
        nonce
    }

    let harness = Harness::start().await.unwrap();
    let (ceremony, uri) = sign_in(harness.client_config(test_deadlines()).unwrap());
    let mut phone = ScriptedPhone::open(harness.air(), harness.relay_url(), &uri)
        .await
        .unwrap();
    let phone_side = async move {
        let msg1 = phone.recv_msg1().await.unwrap();
        let psk = phone.qr.secret.psk(&phone.eid);
        let remote = cable_proto::keys::uncompressed(&phone.qr.public_key);
        let ephemeral = cable_proto::keys::random_secret_key(&mut OsRng)
            .to_bytes()
            .into();
        let mut responder = snow::Builder::with_resolver(
            "Noise_KNpsk0_P256_AESGCM_SHA256".parse().unwrap(),
            Box::new(FixedEphemeral(ephemeral)),
        )
        .prologue(&[1])
        .unwrap()
        .psk(0, psk.as_bytes())
        .unwrap()
        .remote_public_key(&remote)
        .unwrap()
        .build_responder()
        .unwrap();
        let mut scratch = [0u8; 128];
        responder.read_message(&msg1, &mut scratch).unwrap();
        let mut msg2 = [0u8; 81];
        assert_eq!(responder.write_message(&[], &mut msg2).unwrap(), 81);
        phone.conn.send(msg2.to_vec(), deadline()).await.unwrap();
        let (k1, k2) = responder.dangerously_get_raw_split();
        let to_computer = Aes256Gcm::new_from_slice(&k2).unwrap();
        let from_computer = Aes256Gcm::new_from_slice(&k1).unwrap();
        let seal = |counter: u32, plaintext: &[u8]| {
            let padded = cable_proto::crypter::pad(plaintext);
            to_computer
                .encrypt(
                    &Nonce::from(legacy_nonce(counter)),
                    Payload {
                        msg: &padded,
                        aad: &[2],
                    },
                )
                .unwrap()
        };
        let post = PostHandshake::new(get_info()).encode_revision0();
        phone.conn.send(seal(0, &post), deadline()).await.unwrap();
        let request = phone.conn.recv(deadline()).await.unwrap();
        let request = from_computer
            .decrypt(
                &Nonce::from(legacy_nonce(0)),
                Payload {
                    msg: &request,
                    aad: &[2],
                },
            )
            .expect("the computer answers in the legacy construction");
        let request = cable_proto::crypter::unpad(&request).unwrap().to_vec();
        phone
            .conn
            .send(seal(1, &assertion_reply()), deadline())
            .await
            .unwrap();
        (request, phone)
    };
    let (result, (request, _phone)) =
        tokio::join!(ceremony.run(CancellationToken::new()), phone_side);
    let assertion = result.unwrap();
    assert_eq!(request[0], 0x02);
    assert_eq!(assertion.credential_id, vec![7; 16]);
}

#[tokio::test]
async fn phone_vanishing_before_it_answers_is_a_reply_failure() {
    let harness = Harness::start().await.unwrap();
    let (ceremony, uri) = sign_in(harness.client_config(test_deadlines()).unwrap());
    let phone = ScriptedPhone::open(harness.air(), harness.relay_url(), &uri)
        .await
        .unwrap();
    let vanish = async move {
        let (mut channel, _) = phone.handshake().await.unwrap();
        channel
            .send(&PostHandshake::new(get_info()).encode(), deadline())
            .await
            .unwrap();
        let _request = channel.recv(deadline()).await.unwrap();
        drop(channel);
    };
    let (result, ()) = tokio::join!(ceremony.run(CancellationToken::new()), vanish);
    let err = result.unwrap_err();
    assert!(
        matches!(
            err,
            ClientError::Transport {
                phase: Phase::Reply,
                ..
            }
        ),
        "{err:?}"
    );
}

/// A scripted phone that answers the request, then holds the tunnel open and reports how
/// long the computer kept it after the reply; `late_update` is sent after the shutdown.
async fn reply_then_hold(
    phone: ScriptedPhone,
    late_update: bool,
) -> (Message, Result<Vec<u8>, cable_transport::TransportError>) {
    let qr_public = phone.qr.public_key;
    let (mut channel, hash) = phone.handshake().await.unwrap();
    channel
        .send(&PostHandshake::new(get_info()).encode(), deadline())
        .await
        .unwrap();
    let _request = channel.recv(deadline()).await.unwrap();
    channel
        .send(&Message::Ctap(assertion_reply()).encode(), deadline())
        .await
        .unwrap();
    let shutdown = Message::decode(&channel.recv(deadline()).await.unwrap()).unwrap();
    if late_update {
        let identity = cable_proto::keys::random_secret_key(&mut OsRng);
        let linking = LinkingInfo::new_signed(
            b"contact".to_vec(),
            vec![1; 8],
            LinkSecret::from_bytes([2; 32]),
            &identity,
            "Late phone".to_owned(),
            &qr_public,
            &hash,
        );
        let update = Message::Update(UpdateMessage {
            linking: Some(linking),
        });
        channel.send(&update.encode(), deadline()).await.unwrap();
    }
    // The computer closes the tunnel when its linger ends (or is cancelled).
    let closed = channel.recv(deadline()).await;
    (shutdown, closed)
}

#[tokio::test]
async fn a_late_update_after_shutdown_is_captured_during_the_linger() {
    let harness = Harness::start().await.unwrap();
    let mut config = harness.client_config(test_deadlines()).unwrap();
    config.linger = Duration::from_millis(500);
    let store = LinkedPhones::in_memory();
    config.linked_phones = Some(store.clone());
    let (ceremony, mut progress) = Ceremony::authenticate(config, GET_OPTIONS, ORIGIN).unwrap();
    let uri = ceremony.qr_uri();
    let phone = ScriptedPhone::open(harness.air(), harness.relay_url(), &uri)
        .await
        .unwrap();
    let (result, (shutdown, closed)) = tokio::join!(
        ceremony.run(CancellationToken::new()),
        reply_then_hold(phone, true)
    );
    result.unwrap();
    assert_eq!(shutdown, Message::Shutdown);
    assert!(closed.is_err(), "the linger ends by closing the tunnel");
    let mut offered = None;
    while let Some(p) = progress.recv().await {
        if let Progress::LinkingOffered {
            verified,
            authenticator_name,
        } = p
        {
            offered = Some((verified, authenticator_name));
        }
    }
    assert_eq!(offered, Some((true, "Late phone".to_owned())));
    let names: Vec<_> = store.list().into_iter().map(|p| p.name).collect();
    assert_eq!(names, ["Late phone"]);
}

#[tokio::test]
async fn cancelling_after_the_reply_ends_the_linger_and_closes_the_tunnel() {
    let harness = Harness::start().await.unwrap();
    let mut config = harness.client_config(test_deadlines()).unwrap();
    // Far longer than the phone's read deadline: only the cancellation can close it in time.
    config.linger = Duration::from_secs(600);
    let (ceremony, mut progress) = Ceremony::authenticate(config, GET_OPTIONS, ORIGIN).unwrap();
    let uri = ceremony.qr_uri();
    let phone = ScriptedPhone::open(harness.air(), harness.relay_url(), &uri)
        .await
        .unwrap();
    let cancel = CancellationToken::new();
    let phone_side = tokio::spawn(reply_then_hold(phone, false));
    ceremony.run(cancel.clone()).await.unwrap();
    cancel.cancel();
    let (shutdown, closed) = phone_side.await.unwrap();
    assert_eq!(shutdown, Message::Shutdown);
    assert!(
        matches!(
            closed,
            Err(cable_transport::TransportError::PeerClosed { .. })
                | Err(cable_transport::TransportError::ConnectionLost)
        ),
        "{closed:?}"
    );
    // The linger task dropped its progress sender: the stream ends.
    while progress.recv().await.is_some() {}
}

/// One sign-in whose phone offers linking data for `identity` right after its post-handshake
/// message, as Chrome-for-Android does; `tamper` breaks the signature. Returns the progress.
async fn sign_in_offering_a_link(
    store: &LinkedPhones,
    identity: &cable_proto::SecretKey,
    link_id: u8,
    tamper: bool,
) -> Vec<Progress> {
    let harness = Harness::start().await.unwrap();
    let mut config = harness.client_config(test_deadlines()).unwrap();
    config.linked_phones = Some(store.clone());
    let (ceremony, mut progress) = Ceremony::authenticate(config, GET_OPTIONS, ORIGIN).unwrap();
    let uri = ceremony.qr_uri();
    let phone = ScriptedPhone::open(harness.air(), harness.relay_url(), &uri)
        .await
        .unwrap();
    assert_eq!(
        phone.qr.state_assisted,
        Some(true),
        "a computer with a store asks to link"
    );
    let qr_public = phone.qr.public_key;
    let identity = identity.clone();
    let phone_side = async move {
        let (mut channel, hash) = phone.handshake().await.unwrap();
        channel
            .send(&PostHandshake::new(get_info()).encode(), deadline())
            .await
            .unwrap();
        let mut linking = LinkingInfo::new_signed(
            b"contact".to_vec(),
            vec![link_id; 8],
            LinkSecret::from_bytes([link_id; 32]),
            &identity,
            "Test phone".to_owned(),
            &qr_public,
            &hash,
        );
        if tamper {
            linking.signature[0] ^= 1;
        }
        let update = Message::Update(UpdateMessage {
            linking: Some(linking),
        });
        channel.send(&update.encode(), deadline()).await.unwrap();
        let _request = channel.recv(deadline()).await.unwrap();
        channel
            .send(&Message::Ctap(assertion_reply()).encode(), deadline())
            .await
            .unwrap();
    };
    let (result, ()) = tokio::join!(ceremony.run(CancellationToken::new()), phone_side);
    result.unwrap();
    let mut seen = Vec::new();
    while let Ok(p) = progress.try_recv() {
        seen.push(p);
    }
    seen
}

#[tokio::test]
async fn verified_linking_data_is_stored_and_a_forgery_evicts_nothing() {
    let store = LinkedPhones::in_memory();
    let identity = cable_proto::keys::random_secret_key(&mut OsRng);

    let progress = sign_in_offering_a_link(&store, &identity, 1, false).await;
    assert!(
        progress.contains(&Progress::PhoneLinked {
            name: "Test phone".into()
        }),
        "{progress:?}"
    );
    let phones = store.list();
    assert_eq!(phones.len(), 1);
    assert_eq!(phones[0].identity_public_key, identity.public_key());
    assert_eq!(phones[0].link_id, vec![1; 8]);
    assert_eq!(phones[0].contact_id, b"contact");
    // The harness's phone advertises the default domain.
    assert_eq!(phones[0].domain_id, 0);

    // The same identity key with a bad signature: reported, not stored, nothing replaced.
    let progress = sign_in_offering_a_link(&store, &identity, 2, true).await;
    assert!(
        progress.contains(&Progress::LinkingOffered {
            authenticator_name: "Test phone".into(),
            verified: false
        }),
        "{progress:?}"
    );
    assert!(
        !progress
            .iter()
            .any(|p| matches!(p, Progress::PhoneLinked { .. })),
        "{progress:?}"
    );
    assert_eq!(store.list(), phones);

    // A genuine relink replaces the entry of that phone.
    sign_in_offering_a_link(&store, &identity, 3, false).await;
    let relinked = store.list();
    assert_eq!(relinked.len(), 1);
    assert_eq!(relinked[0].link_id, vec![3; 8]);
}
