//! Both machines wired to each other with no socket in between: every dispatch rule of the
//! computer and the phone, in both protocol revisions and both flows.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use sha2::{Digest, Sha256};

use super::*;
use crate::advert::decrypt_advert;
use crate::cbor::Value;
use crate::crypter::Crypter;
use crate::ctap::{command, status, CtapResponse};
use crate::error::Error;
use crate::handshake::Initiator;
use crate::ids::RoutingId;
use crate::message::{
    LinkSecret, LinkingInfo, Message, PostHandshake, ProtocolRevision, UpdateMessage,
};
use crate::qr::{QrCode, QrKey, RequestHint};

/// Deterministic randomness: SHA-256 of a seed and a counter.
struct TestRng {
    seed: u8,
    counter: u64,
}

impl TestRng {
    fn new(seed: u8) -> Self {
        TestRng { seed, counter: 0 }
    }
}

impl rand_core::RngCore for TestRng {
    fn next_u32(&mut self) -> u32 {
        rand_core::impls::next_u32_via_fill(self)
    }
    fn next_u64(&mut self) -> u64 {
        rand_core::impls::next_u64_via_fill(self)
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        for chunk in dest.chunks_mut(32) {
            self.counter += 1;
            let block = Sha256::new()
                .chain_update([self.seed])
                .chain_update(self.counter.to_le_bytes())
                .finalize();
            chunk.copy_from_slice(&block[..chunk.len()]);
        }
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}

impl rand_core::CryptoRng for TestRng {}

const ROUTING: RoutingId = RoutingId::from_bytes([1, 2, 3]);

fn get_info() -> Value {
    Value::map([
        (
            Value::Unsigned(1),
            Value::Array(vec![Value::Text("FIDO_2_0".into())]),
        ),
        (Value::Unsigned(3), Value::Bytes(vec![0; 16])),
    ])
}

fn make_credential() -> Vec<u8> {
    let params = Value::map([
        (Value::Unsigned(1), Value::Bytes(vec![7; 32])),
        (
            Value::Unsigned(2),
            Value::map([(Value::Text("id".into()), Value::Text("example.com".into()))]),
        ),
    ]);
    let mut out = vec![command::MAKE_CREDENTIAL];
    params.encode_into(&mut out);
    out
}

/// Moves every queued frame from one machine to the other.
fn pump_to_phone(desktop: &mut DesktopSession, phone: &mut PhoneSession) -> Result<(), Error> {
    while let Some(frame) = desktop.poll_transmit() {
        phone.handle_frame(&frame)?;
    }
    Ok(())
}

fn pump_to_desktop(phone: &mut PhoneSession, desktop: &mut DesktopSession) -> Result<(), Error> {
    while let Some(frame) = phone.poll_transmit() {
        desktop.handle_frame(&frame)?;
    }
    Ok(())
}

fn events_of_desktop(desktop: &mut DesktopSession) -> Vec<DesktopEvent> {
    std::iter::from_fn(|| desktop.poll_event()).collect()
}

fn events_of_phone(phone: &mut PhoneSession) -> Vec<PhoneEvent> {
    std::iter::from_fn(|| phone.poll_event()).collect()
}

struct Pair {
    qr: QrKey,
    desktop: DesktopSession,
    phone: PhoneSession,
}

/// A QR session up to the point where the phone answered the handshake.
fn handshaken() -> Pair {
    let mut rng = TestRng::new(1);
    let qr = QrKey::generate(&mut rng, 1_700_000_000, RequestHint::MakeCredential);
    let code = QrCode::parse(&qr.to_uri()).unwrap();
    let mut phone = PhoneSession::new_qr(&code, ROUTING, 0, &mut rng);
    assert_eq!(phone.state(), PhoneState::AwaitHandshake);
    let advert = decrypt_advert(&qr.secret().eid_key(), &phone.advert()).unwrap();
    assert_eq!(advert.eid().routing_id, ROUTING);
    let mut desktop = DesktopSession::new_qr(&qr, &advert, &mut rng).unwrap();
    assert_eq!(desktop.state(), DesktopState::AwaitHandshake);
    pump_to_phone(&mut desktop, &mut phone).unwrap();
    assert_eq!(events_of_phone(&mut phone), vec![PhoneEvent::HandshakeDone]);
    assert_eq!(phone.state(), PhoneState::AwaitGetInfo);
    pump_to_desktop(&mut phone, &mut desktop).unwrap();
    assert_eq!(desktop.state(), DesktopState::AwaitPostHandshake);
    Pair { qr, desktop, phone }
}

/// A QR session, established on both sides.
fn established() -> Pair {
    let mut pair = handshaken();
    pair.phone.post_handshake(&get_info(), None).unwrap();
    pump_to_desktop(&mut pair.phone, &mut pair.desktop).unwrap();
    assert_eq!(
        events_of_desktop(&mut pair.desktop),
        vec![DesktopEvent::Established {
            revision: ProtocolRevision::One
        }]
    );
    assert_eq!(pair.desktop.get_info(), Some(&get_info().to_bytes()[..]));
    assert_eq!(pair.desktop.handshake_hash(), pair.phone.handshake_hash());
    pair
}

fn serve(pair: &mut Pair, request: &[u8]) -> Result<(), Error> {
    pair.desktop.send_request(request).unwrap();
    pump_to_phone(&mut pair.desktop, &mut pair.phone)
}

#[test]
fn a_registration_from_advert_to_shutdown() {
    let mut pair = established();
    serve(&mut pair, &make_credential()).unwrap();
    assert_eq!(pair.desktop.state(), DesktopState::AwaitReply);
    let events = events_of_phone(&mut pair.phone);
    assert_eq!(
        events[0],
        PhoneEvent::RequestReceived {
            kind: RequestKind::MakeCredential,
            rp_id: Some("example.com".into())
        }
    );
    assert!(matches!(
        &events[1],
        PhoneEvent::Serve(ServeRequest {
            kind: RequestKind::MakeCredential,
            ..
        })
    ));
    assert_eq!(pair.phone.state(), PhoneState::Serving);
    let answer = CtapResponse::ok(Value::map([(
        Value::Unsigned(1),
        Value::Text("none".into()),
    )]));
    pair.phone.respond(&answer).unwrap();
    assert_eq!(
        events_of_phone(&mut pair.phone),
        vec![PhoneEvent::Replied { status: 0 }]
    );
    pump_to_desktop(&mut pair.phone, &mut pair.desktop).unwrap();
    assert_eq!(
        events_of_desktop(&mut pair.desktop),
        vec![DesktopEvent::Reply(answer.encode())]
    );
    assert_eq!(pair.desktop.state(), DesktopState::Ready);

    assert!(pair.desktop.shutdown(), "revision 1 lingers after shutdown");
    assert_eq!(pair.desktop.state(), DesktopState::Lingering);
    pump_to_phone(&mut pair.desktop, &mut pair.phone).unwrap();
    assert_eq!(pair.phone.state(), PhoneState::Done);
    assert_eq!(pair.phone.poll_transmit(), None);
}

#[test]
fn get_info_is_answered_locally_by_the_desktop() {
    let mut pair = established();
    pair.desktop.send_request(&[command::GET_INFO]).unwrap();
    assert_eq!(
        pair.desktop.poll_transmit(),
        None,
        "nothing goes to the phone"
    );
    let mut expected = vec![status::OK];
    expected.extend_from_slice(&get_info().to_bytes());
    assert_eq!(
        events_of_desktop(&mut pair.desktop),
        vec![DesktopEvent::Reply(expected)]
    );
    assert_eq!(pair.desktop.state(), DesktopState::Ready);
}

/// An established QR session where the test holds the desktop's crypter, to send what a
/// well-behaved desktop never would.
fn phone_with_raw_desktop() -> (PhoneSession, Crypter) {
    let mut rng = TestRng::new(2);
    let qr = QrKey::generate(&mut rng, 1_700_000_000, RequestHint::GetAssertion);
    let code = QrCode::parse(&qr.to_uri()).unwrap();
    let mut phone = PhoneSession::new_qr(&code, ROUTING, 0, &mut rng);
    let advert = decrypt_advert(&qr.secret().eid_key(), &phone.advert()).unwrap();
    let (initiator, msg1) =
        Initiator::new_qr(&qr, &qr.secret().psk(&advert.plaintext), &mut rng).unwrap();
    phone.handle_frame(&msg1).unwrap();
    let msg2 = phone.poll_transmit().unwrap();
    let mut desktop = initiator.finish(&msg2).unwrap();
    phone.post_handshake(&get_info(), None).unwrap();
    let post = phone.poll_transmit().unwrap();
    desktop.crypter.decrypt(&post).unwrap();
    let _ = events_of_phone(&mut phone);
    (phone, desktop.crypter)
}

fn phone_reply(phone: &mut PhoneSession, crypter: &mut Crypter) -> Vec<u8> {
    let frame = phone.poll_transmit().expect("a reply is queued");
    crypter.decrypt(&frame).unwrap()
}

#[test]
fn the_phone_answers_get_info_a_bounded_number_of_times() {
    let (mut phone, mut crypter) = phone_with_raw_desktop();
    let mut expected = vec![1, status::OK];
    expected.extend_from_slice(&get_info().to_bytes());
    for _ in 0..MAX_GET_INFO {
        let frame = crypter.encrypt(&[1, command::GET_INFO]).unwrap();
        phone.handle_frame(&frame).unwrap();
        assert_eq!(phone_reply(&mut phone, &mut crypter), expected);
    }
    let frame = crypter.encrypt(&[1, command::GET_INFO]).unwrap();
    assert_eq!(
        phone.handle_frame(&frame),
        Err(Error::TooManyGetInfo {
            limit: MAX_GET_INFO
        })
    );
    assert_eq!(phone.state(), PhoneState::Failed);
}

#[test]
fn a_json_message_is_reported_as_type_3_in_every_phase() {
    let (mut phone, mut crypter) = phone_with_raw_desktop();
    let json = Message::Json("{}".into()).encode();
    let frame = crypter.encrypt(&json).unwrap();
    assert_eq!(
        phone.handle_frame(&frame),
        Err(Error::UnsupportedMessage { message_type: 3 })
    );

    // While the authenticator decides, too (this used to say type 1).
    let (mut phone, mut crypter) = phone_with_raw_desktop();
    let frame = crypter
        .encrypt(&Message::Ctap(make_credential()).encode())
        .unwrap();
    phone.handle_frame(&frame).unwrap();
    assert_eq!(phone.state(), PhoneState::Serving);
    let frame = crypter.encrypt(&json).unwrap();
    assert_eq!(
        phone.handle_frame(&frame),
        Err(Error::UnsupportedMessage { message_type: 3 })
    );
}

#[test]
fn malformed_and_unknown_requests_get_an_error_reply_before_the_session_fails() {
    let (mut phone, mut crypter) = phone_with_raw_desktop();
    // Non-canonical CBOR (unsorted keys).
    let frame = crypter
        .encrypt(&[1, command::MAKE_CREDENTIAL, 0xa2, 0x02, 0x00, 0x01, 0x00])
        .unwrap();
    assert!(matches!(
        phone.handle_frame(&frame),
        Err(Error::Cbor { .. })
    ));
    assert_eq!(
        phone_reply(&mut phone, &mut crypter),
        vec![1, status::INVALID_CBOR]
    );
    assert_eq!(phone.state(), PhoneState::Failed);

    let (mut phone, mut crypter) = phone_with_raw_desktop();
    let frame = crypter.encrypt(&[1, 0x07]).unwrap();
    assert_eq!(
        phone.handle_frame(&frame),
        Err(Error::UnsupportedCommand { command: 0x07 })
    );
    assert_eq!(
        phone_reply(&mut phone, &mut crypter),
        vec![1, status::INVALID_COMMAND]
    );

    let (mut phone, mut crypter) = phone_with_raw_desktop();
    let frame = crypter.encrypt(&[]).unwrap();
    assert_eq!(phone.handle_frame(&frame), Err(Error::EmptyMessage));
}

#[test]
fn selection_and_missing_parameters_are_answered_by_the_machine() {
    let (mut phone, mut crypter) = phone_with_raw_desktop();
    let frame = crypter.encrypt(&[1, command::SELECTION]).unwrap();
    phone.handle_frame(&frame).unwrap();
    assert_eq!(
        events_of_phone(&mut phone),
        vec![
            PhoneEvent::RequestReceived {
                kind: RequestKind::Selection,
                rp_id: None
            },
            PhoneEvent::Replied { status: 0 }
        ]
    );
    assert_eq!(phone_reply(&mut phone, &mut crypter), vec![1, status::OK]);
    assert_eq!(phone.state(), PhoneState::Done);

    let (mut phone, mut crypter) = phone_with_raw_desktop();
    let frame = crypter.encrypt(&[1, command::GET_ASSERTION]).unwrap();
    phone.handle_frame(&frame).unwrap();
    assert_eq!(
        events_of_phone(&mut phone).last(),
        Some(&PhoneEvent::Replied {
            status: status::MISSING_PARAMETER
        })
    );
    assert_eq!(
        phone_reply(&mut phone, &mut crypter),
        vec![1, status::MISSING_PARAMETER]
    );
}

#[test]
fn shutdown_before_and_during_a_request() {
    let (mut phone, mut crypter) = phone_with_raw_desktop();
    // Updates from the desktop are syntax-checked and ignored.
    let update = UpdateMessage::default().encode();
    desktop_sends_raw_to(&mut phone, &mut crypter, &update);
    desktop_sends_raw_to(&mut phone, &mut crypter, &Message::Shutdown.encode());
    assert_eq!(
        events_of_phone(&mut phone),
        vec![PhoneEvent::Shutdown {
            before_request: true
        }]
    );
    assert_eq!(phone.state(), PhoneState::Done);

    let (mut phone, mut crypter) = phone_with_raw_desktop();
    desktop_sends_raw_to(
        &mut phone,
        &mut crypter,
        &Message::Ctap(make_credential()).encode(),
    );
    let _ = events_of_phone(&mut phone);
    desktop_sends_raw_to(&mut phone, &mut crypter, &update);
    desktop_sends_raw_to(&mut phone, &mut crypter, &Message::Shutdown.encode());
    assert_eq!(
        events_of_phone(&mut phone),
        vec![PhoneEvent::Shutdown {
            before_request: false
        }]
    );
    assert!(matches!(
        phone.respond(&CtapResponse::error(status::OTHER)),
        Err(Error::WrongState { .. })
    ));
}

fn desktop_sends_raw_to(phone: &mut PhoneSession, crypter: &mut Crypter, plaintext: &[u8]) {
    let frame = crypter.encrypt(plaintext).unwrap();
    phone.handle_frame(&frame).unwrap();
}

#[test]
fn get_info_that_does_not_read_back_is_refused_not_a_panic() {
    // Encodable, but the strict decoder rejects bool keys, array keys and deep nesting.
    let mut deep = Value::map([]);
    for _ in 0..20 {
        deep = Value::Array(vec![deep]);
    }
    let bad = [
        Value::map([(Value::Bool(true), Value::Unsigned(1))]),
        Value::map([(Value::Array(vec![]), Value::Unsigned(1))]),
        Value::map([(Value::Unsigned(1), deep)]),
        Value::Array(vec![]),
    ];
    for info in bad {
        let mut pair = handshaken();
        assert_eq!(
            pair.phone.post_handshake(&info, None),
            Err(Error::BadGetInfo),
            "{info:?}"
        );
        assert_eq!(pair.phone.state(), PhoneState::Failed);
        assert_eq!(pair.phone.poll_transmit(), None);
    }
}

fn linking_for(pair: &Pair, tamper: bool) -> UpdateMessage {
    let identity = crate::keys::random_secret_key(&mut TestRng::new(9));
    let mut linking = LinkingInfo::new_signed(
        b"contact".to_vec(),
        vec![5; 8],
        LinkSecret::from_bytes([6; 32]),
        &identity,
        "Test phone".into(),
        pair.qr.public_key(),
        pair.phone.handshake_hash().unwrap(),
    );
    if tamper {
        linking.signature[0] ^= 1;
    }
    UpdateMessage {
        linking: Some(linking),
    }
}

#[test]
fn linking_data_after_the_post_handshake_message_is_verified() {
    for tamper in [false, true] {
        let mut pair = handshaken();
        let update = linking_for(&pair, tamper);
        pair.phone
            .post_handshake(&get_info(), Some(&update))
            .unwrap();
        pump_to_desktop(&mut pair.phone, &mut pair.desktop).unwrap();
        let events = events_of_desktop(&mut pair.desktop);
        assert_eq!(events.len(), 2);
        match &events[1] {
            DesktopEvent::Linking { linking, verified } => {
                assert_eq!(*verified, !tamper);
                assert_eq!(linking.name, "Test phone");
            }
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn updates_during_the_request_and_after_shutdown_are_captured() {
    let mut pair = established();
    let update = linking_for(&pair, false);
    pair.desktop.send_request(&make_credential()).unwrap();
    // While the request is outstanding.
    let frame = pair.phone.encrypt_for_test(&update.encode()).unwrap();
    pair.desktop.handle_frame(&frame).unwrap();
    assert!(matches!(
        events_of_desktop(&mut pair.desktop)[..],
        [DesktopEvent::Linking { verified: true, .. }]
    ));
    assert_eq!(pair.desktop.state(), DesktopState::AwaitReply);
    let reply = Message::Ctap(vec![0]).encode();
    pair.desktop
        .handle_frame(&pair.phone.encrypt_for_test(&reply).unwrap())
        .unwrap();
    assert!(pair.desktop.shutdown());
    // The late update (Chromium's LateLinkingDevice), and an unsolicited reply that is ignored.
    pair.desktop
        .handle_frame(&pair.phone.encrypt_for_test(&reply).unwrap())
        .unwrap();
    pair.desktop
        .handle_frame(&pair.phone.encrypt_for_test(&update.encode()).unwrap())
        .unwrap();
    let events = events_of_desktop(&mut pair.desktop);
    assert!(matches!(
        events[..],
        [
            DesktopEvent::Reply(_),
            DesktopEvent::Linking { verified: true, .. }
        ]
    ));
    assert_eq!(pair.desktop.state(), DesktopState::Lingering);
}

#[test]
fn the_desktop_refuses_what_a_phone_must_not_send() {
    let cases: [(&[u8], &str); 3] = [
        (&[0], "shutdown from the phone"),
        (&[3, b'{', b'}'], "a JSON reply to a CTAP request"),
        (&[9], ""),
    ];
    for (plaintext, what) in cases {
        let mut pair = established();
        pair.desktop.send_request(&make_credential()).unwrap();
        let frame = pair.phone.encrypt_for_test(plaintext).unwrap();
        let err = pair.desktop.handle_frame(&frame).unwrap_err();
        if what.is_empty() {
            assert_eq!(err, Error::UnknownMessageType { value: 9 });
        } else {
            assert_eq!(err, Error::UnexpectedMessage { what });
        }
        assert_eq!(pair.desktop.state(), DesktopState::Failed);
    }
    // A reply with no request outstanding.
    let mut pair = established();
    let frame = pair.phone.encrypt_for_test(&[1, 0]).unwrap();
    assert!(matches!(
        pair.desktop.handle_frame(&frame),
        Err(Error::UnexpectedMessage { .. })
    ));
}

#[test]
fn the_desktop_refuses_calls_its_state_does_not_allow() {
    let mut pair = handshaken();
    assert!(matches!(
        pair.desktop.send_request(&make_credential()),
        Err(Error::WrongState {
            operation: "send_request",
            ..
        })
    ));
    // Not established: nothing to send, close at once.
    assert!(!pair.desktop.shutdown());
    assert_eq!(pair.desktop.state(), DesktopState::Closed);
    let mut pair = established();
    pair.desktop.send_request(&make_credential()).unwrap();
    assert!(matches!(
        pair.desktop.send_request(&make_credential()),
        Err(Error::WrongState { .. })
    ));
}

#[test]
fn a_phone_without_ctap_is_refused() {
    let mut pair = handshaken();
    let post = PostHandshake {
        get_info: None,
        linking: None,
        features: vec!["dc".into()],
    };
    let frame = pair.phone.encrypt_for_test(&post.encode()).unwrap();
    assert_eq!(
        pair.desktop.handle_frame(&frame),
        Err(Error::DigitalCredentialsOnly)
    );
}

#[test]
fn a_phone_with_no_feature_at_all_is_refused_as_without_ctap() {
    let mut pair = handshaken();
    let post = PostHandshake {
        get_info: None,
        linking: None,
        features: vec![],
    };
    let frame = pair.phone.encrypt_for_test(&post.encode()).unwrap();
    assert_eq!(pair.desktop.handle_frame(&frame), Err(Error::NoCtapSupport));
}

#[test]
fn revision_0_phones_get_unframed_messages_and_no_shutdown() {
    let mut pair = handshaken();
    let post = PostHandshake::new(get_info().to_bytes()).encode_revision0();
    let frame = pair.phone.encrypt_for_test(&post).unwrap();
    pair.desktop.handle_frame(&frame).unwrap();
    assert_eq!(pair.desktop.revision(), ProtocolRevision::Zero);
    pair.desktop.send_request(&make_credential()).unwrap();
    let sent = pair.desktop.poll_transmit().unwrap();
    let plaintext = pair.phone.decrypt_for_test(&sent).unwrap();
    assert_eq!(plaintext, make_credential(), "no type byte in revision 0");
    let frame = pair.phone.encrypt_for_test(&[0, 0xa0]).unwrap();
    pair.desktop.handle_frame(&frame).unwrap();
    assert_eq!(
        events_of_desktop(&mut pair.desktop).last(),
        Some(&DesktopEvent::Reply(vec![0, 0xa0]))
    );
    assert!(
        !pair.desktop.shutdown(),
        "revision 0 has no shutdown message"
    );
    assert_eq!(pair.desktop.poll_transmit(), None);
    assert_eq!(pair.desktop.state(), DesktopState::Closed);
}

struct Linked {
    desktop: DesktopSession,
    phone: PhoneSession,
    advert: crate::advert::DecryptedAdvert,
}

fn linked(connect_signal: bool) -> Linked {
    let mut rng = TestRng::new(3);
    let identity = crate::keys::random_secret_key(&mut rng);
    let link_secret = LinkSecret::from_bytes([4; 32]);
    let nonce = [8; 16];
    let desktop = DesktopSession::new_linked(
        &identity.public_key(),
        &link_secret,
        nonce,
        connect_signal,
        &mut rng,
    );
    assert_eq!(desktop.state(), DesktopState::AwaitAdvert);
    let phone = PhoneSession::new_linked(&identity, &link_secret, &nonce, ROUTING, 0, &mut rng);
    let advert = decrypt_advert(&desktop.eid_key().unwrap(), &phone.advert()).unwrap();
    Linked {
        desktop,
        phone,
        advert,
    }
}

fn finish_linked(l: &mut Linked) {
    pump_to_phone(&mut l.desktop, &mut l.phone).unwrap();
    l.phone.post_handshake(&get_info(), None).unwrap();
    pump_to_desktop(&mut l.phone, &mut l.desktop).unwrap();
    assert_eq!(l.desktop.state(), DesktopState::Ready);
}

#[test]
fn linked_sessions_accept_the_connect_signal_before_or_after_message_1() {
    // Before the advert (and so before message 1).
    let mut l = linked(true);
    l.desktop.handle_frame(&[0]).unwrap();
    l.desktop.advert_seen(&l.advert).unwrap();
    finish_linked(&mut l);
    assert_eq!(
        events_of_desktop(&mut l.desktop),
        vec![
            DesktopEvent::PhoneConnected,
            DesktopEvent::Established {
                revision: ProtocolRevision::One
            }
        ]
    );

    // After message 1 was sent.
    let mut l = linked(true);
    l.desktop.advert_seen(&l.advert).unwrap();
    let msg1 = l.desktop.poll_transmit().unwrap();
    l.desktop.handle_frame(&[0]).unwrap();
    l.phone.handle_frame(&msg1).unwrap();
    finish_linked(&mut l);
    assert_eq!(
        events_of_desktop(&mut l.desktop)[0],
        DesktopEvent::PhoneConnected
    );

    // No signal was promised: message 2 comes first.
    let mut l = linked(false);
    l.desktop.advert_seen(&l.advert).unwrap();
    finish_linked(&mut l);
}

#[test]
fn a_bad_connect_signal_is_fatal() {
    let mut l = linked(true);
    assert_eq!(l.desktop.handle_frame(&[1]), Err(Error::BadConnectSignal));
    assert_eq!(l.desktop.state(), DesktopState::Failed);

    // Message 2 where the signal was promised.
    let mut l = linked(true);
    l.desktop.advert_seen(&l.advert).unwrap();
    let msg1 = l.desktop.poll_transmit().unwrap();
    l.phone.handle_frame(&msg1).unwrap();
    let msg2 = l.phone.poll_transmit().unwrap();
    assert_eq!(l.desktop.handle_frame(&msg2), Err(Error::BadConnectSignal));

    // A second signal is not message 2.
    let mut l = linked(true);
    l.desktop.handle_frame(&[0]).unwrap();
    l.desktop.advert_seen(&l.advert).unwrap();
    assert_eq!(
        l.desktop.handle_frame(&[0]),
        Err(Error::HandshakeLength { len: 1 })
    );

    // Without a promised signal, nothing may come before message 1.
    let mut l = linked(false);
    assert!(matches!(
        l.desktop.handle_frame(&[0]),
        Err(Error::UnexpectedMessage { .. })
    ));
}

#[test]
fn linking_data_in_a_linked_session_is_ignored() {
    let mut l = linked(false);
    l.desktop.advert_seen(&l.advert).unwrap();
    pump_to_phone(&mut l.desktop, &mut l.phone).unwrap();
    let identity = crate::keys::random_secret_key(&mut TestRng::new(5));
    let qr = QrKey::generate(&mut TestRng::new(6), 0, RequestHint::GetAssertion);
    let update = UpdateMessage {
        linking: Some(LinkingInfo::new_signed(
            vec![1],
            vec![2; 8],
            LinkSecret::from_bytes([3; 32]),
            &identity,
            "Other".into(),
            qr.public_key(),
            l.phone.handshake_hash().unwrap(),
        )),
    };
    l.phone.post_handshake(&get_info(), Some(&update)).unwrap();
    pump_to_desktop(&mut l.phone, &mut l.desktop).unwrap();
    assert_eq!(
        events_of_desktop(&mut l.desktop),
        vec![DesktopEvent::Established {
            revision: ProtocolRevision::One
        }]
    );
}

#[test]
fn a_wrong_secret_fails_the_handshake_on_the_phone() {
    let mut rng = TestRng::new(7);
    let qr = QrKey::generate(&mut rng, 0, RequestHint::GetAssertion);
    let other = QrKey::generate(&mut rng, 0, RequestHint::GetAssertion);
    let code = QrCode::parse(&qr.to_uri()).unwrap();
    let mut phone = PhoneSession::new_qr(&code, ROUTING, 0, &mut rng);
    let advert = decrypt_advert(&qr.secret().eid_key(), &phone.advert()).unwrap();
    let mut desktop = DesktopSession::new_qr(&other, &advert, &mut rng).unwrap();
    assert_eq!(
        pump_to_phone(&mut desktop, &mut phone),
        Err(Error::HandshakeFailed)
    );
    assert_eq!(phone.state(), PhoneState::Failed);
    assert!(matches!(
        phone.handle_frame(&[0; 81]),
        Err(Error::WrongState { .. })
    ));
}

#[test]
fn the_same_randomness_gives_the_same_bytes() {
    let run = || {
        let mut pair = established();
        serve(&mut pair, &make_credential()).unwrap();
        pair.phone
            .respond(&CtapResponse::error(status::OPERATION_DENIED))
            .unwrap();
        pair.phone.poll_transmit().unwrap()
    };
    assert_eq!(run(), run());
}
