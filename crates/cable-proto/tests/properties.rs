//! Property tests: round trips of every encoder/decoder pair, and "no parser
//! panics on arbitrary bytes" (a returned error is fine, a panic is not).

#![allow(clippy::unwrap_used)]

mod common;

use cable_proto::advert::{decrypt_advert, encrypt_eid, Eid};
use cable_proto::cbor::{self, Value};
use cable_proto::crypter::{self, Crypter};
use cable_proto::ctap::{CtapRequest, CtapResponse};
use cable_proto::derive::{EidKey, Psk};
use cable_proto::domain::TunnelPath;
use cable_proto::handshake::{Initiator, Responder};
use cable_proto::ids::RoutingId;
use cable_proto::message::{ClientPayload, Message, PostHandshake, UpdateMessage};
use cable_proto::qr::{QrCode, QrKey, QrSecret, RequestHint};
use cable_proto::{digits, keys, Error};
use proptest::prelude::*;

fn value_strategy() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        any::<u64>().prop_map(Value::Unsigned),
        any::<u64>().prop_map(Value::Negative),
        proptest::collection::vec(any::<u8>(), 0..40).prop_map(Value::Bytes),
        ".{0,12}".prop_map(Value::Text),
        any::<bool>().prop_map(Value::Bool),
        Just(Value::Null),
    ];
    let key = prop_oneof![
        any::<u64>().prop_map(Value::Unsigned),
        any::<u64>().prop_map(Value::Negative),
        ".{0,6}".prop_map(Value::Text),
        proptest::collection::vec(any::<u8>(), 0..6).prop_map(Value::Bytes),
    ];
    leaf.prop_recursive(4, 48, 6, move |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            proptest::collection::vec((key.clone(), inner), 0..6).prop_map(Value::map),
        ]
    })
}

fn hint_strategy() -> impl Strategy<Value = RequestHint> {
    prop_oneof![
        Just(RequestHint::GetAssertion),
        Just(RequestHint::MakeCredential)
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn digits_round_trip(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        prop_assert_eq!(digits::decode(&digits::encode(&bytes)).unwrap(), bytes);
    }

    #[test]
    fn digits_decoding_is_canonical(text in "[0-9]{0,60}") {
        // Any accepted digit string is exactly what encode produces for its bytes.
        if let Ok(bytes) = digits::decode(&text) {
            prop_assert_eq!(digits::encode(&bytes), text);
        }
    }

    #[test]
    fn digits_never_panic(text in "\\PC{0,80}") {
        let _ = digits::decode(&text);
    }

    #[test]
    fn cbor_round_trip(value in value_strategy()) {
        let bytes = value.to_bytes();
        prop_assert_eq!(cbor::decode(&bytes).unwrap(), value);
    }

    #[test]
    fn cbor_accepts_only_canonical(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
        // The strict decoder accepts only canonical bytes, so re-encoding is the identity.
        if let Ok(value) = cbor::decode(&bytes) {
            prop_assert_eq!(value.to_bytes(), bytes);
        }
    }

    #[test]
    fn cbor_prefix_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..128)) {
        if let Ok((value, used)) = cbor::decode_prefix(&bytes) {
            prop_assert_eq!(value.to_bytes(), bytes[..used].to_vec());
        }
    }

    #[test]
    fn qr_round_trip(
        private in any::<[u8; 32]>(),
        secret in any::<[u8; 16]>(),
        known_domains in any::<u64>(),
        timestamp in any::<Option<u64>>(),
        state_assisted in any::<Option<bool>>(),
        hint in hint_strategy(),
    ) {
        let Ok(private) = keys::secret_key_from_bytes(&private) else { return Ok(()) };
        let code = QrCode {
            public_key: private.public_key(),
            secret: QrSecret::from_bytes(secret),
            known_domains,
            timestamp,
            state_assisted,
            hint,
        };
        let uri = code.to_uri();
        prop_assert_eq!(QrCode::parse(&uri).unwrap(), code.clone());
        prop_assert_eq!(QrCode::parse(&uri.to_lowercase()).unwrap(), code);
    }

    #[test]
    fn qr_generate_parses(seed in any::<[u8; 48]>(), now in any::<u64>(), hint in hint_strategy()) {
        let mut rng = common::ReplayRng::new(&[&seed]);
        let key = QrKey::generate(&mut rng, now, hint);
        let parsed = QrCode::parse(&key.to_uri()).unwrap();
        prop_assert_eq!(&parsed, key.code());
        prop_assert_eq!(parsed.state_assisted, Some(true));
    }

    #[test]
    fn qr_parse_never_panics(text in "(FIDO:/|fido:/)?[0-9]{0,120}") {
        let _ = QrCode::parse(&text);
    }

    #[test]
    fn qr_cbor_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..120)) {
        let _ = QrCode::from_cbor(&bytes);
    }

    #[test]
    fn eid_round_trip(
        secret in any::<[u8; 16]>(),
        nonce in any::<[u8; 10]>(),
        routing in any::<[u8; 3]>(),
        domain in prop_oneof![0u16..=1, 256u16..=u16::MAX],
        suffix in proptest::collection::vec(any::<u8>(), 0..8),
    ) {
        let key = EidKey::derive(&secret, &[]);
        let eid = Eid { nonce, routing_id: RoutingId::from_bytes(routing), domain_id: domain };
        let mut advert = encrypt_eid(&key, &eid.to_bytes()).to_vec();
        advert.extend_from_slice(&suffix);
        let decrypted = decrypt_advert(&key, &advert).unwrap();
        prop_assert_eq!(decrypted.eid(), eid);
        prop_assert_eq!(decrypted.suffix, suffix);
        // Another key never accepts it (4-byte tag: false accept is 2^-32).
        let other = EidKey::derive(&[!secret[0]; 16], &[]);
        prop_assert_eq!(decrypt_advert(&other, &advert), Err(Error::AdvertTagMismatch));
    }

    #[test]
    fn advert_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..40)) {
        let _ = decrypt_advert(&EidKey::derive(&[1; 16], &[]), &bytes);
    }

    #[test]
    fn framing_round_trip(payload in proptest::collection::vec(any::<u8>(), 1..200), text in ".{0,40}") {
        for m in [Message::Shutdown, Message::Ctap(payload.clone()), Message::Json(text.clone()), Message::Update(UpdateMessage::default())] {
            prop_assert_eq!(Message::decode(&m.encode()).unwrap(), m);
        }
    }

    #[test]
    fn message_parsers_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..100)) {
        let _ = Message::decode(&bytes);
        let _ = PostHandshake::decode(&bytes);
        let _ = UpdateMessage::decode_payload(&bytes);
        let _ = ClientPayload::from_cbor(&bytes);
        let _ = CtapRequest::decode(&bytes);
        let _ = CtapResponse::decode(&bytes);
        let _ = crypter::unpad(&bytes);
    }

    #[test]
    fn text_parsers_never_panic(text in "\\PC{0,80}") {
        let _ = TunnelPath::parse(&text);
        let _ = ClientPayload::from_header_value(&text);
        let _ = RoutingId::from_hex(&text);
    }

    #[test]
    fn cipher_round_trip(
        messages in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..100), 1..6),
        flip in any::<(usize, u8)>(),
    ) {
        let (k1, k2) = ([3u8; 32], [4u8; 32]);
        let mut desktop = Crypter::new(&k2, &k1);
        let mut phone = Crypter::new(&k1, &k2);
        for m in &messages {
            let ct = desktop.encrypt(m).unwrap();
            prop_assert_eq!(ct.len() % 32, 16);
            prop_assert_eq!(&phone.decrypt(&ct).unwrap(), m);
            let back = phone.encrypt(m).unwrap();
            // A flipped bit anywhere fails authentication and leaves the counter alone.
            let mut bad = back.clone();
            let i = flip.0 % bad.len();
            bad[i] ^= flip.1 | 1;
            let before = desktop.read_sequence();
            prop_assert_eq!(desktop.decrypt(&bad), Err(Error::DecryptFailed));
            prop_assert_eq!(desktop.read_sequence(), before);
            prop_assert_eq!(&desktop.decrypt(&back).unwrap(), m);
        }
    }

    #[test]
    fn crypter_decrypt_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..80)) {
        let _ = Crypter::new(&[5; 32], &[6; 32]).decrypt(&bytes);
    }
}

proptest! {
    // Handshakes cost a few P-256 multiplications each; fewer cases keep the suite fast.
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn handshake_round_trip(seed in any::<[u8; 48]>(), psk in any::<[u8; 32]>(), e in any::<[[u8; 32]; 2]>()) {
        let qr = QrKey::generate(&mut common::ReplayRng::new(&[&seed]), 0, RequestHint::GetAssertion);
        let psk = Psk::from_bytes(psk);
        let (initiator, msg1) = Initiator::new_qr(&qr, &psk, &mut common::ReplayRng::new(&[&e[0], &[7; 64]])).unwrap();
        let (msg2, mut phone) = Responder::respond_qr(qr.public_key(), &psk, &msg1, &mut common::ReplayRng::new(&[&e[1], &[8; 64]])).unwrap();
        let mut desktop = initiator.finish(&msg2).unwrap();
        prop_assert_eq!(desktop.handshake_hash, phone.handshake_hash);
        let ct = desktop.crypter.encrypt(b"x").unwrap();
        prop_assert_eq!(phone.crypter.decrypt(&ct).unwrap(), b"x".to_vec());
    }

    #[test]
    fn responder_never_panics_on_msg1(msg in proptest::collection::vec(any::<u8>(), 81..=81), first in any::<u8>()) {
        let qr = QrKey::generate(&mut common::ReplayRng::new(&[&[1u8; 48]]), 0, RequestHint::GetAssertion);
        let mut msg = msg;
        msg[0] = first % 5;
        let mut rng = common::ReplayRng::new(&[&[9u8; 32]]);
        prop_assert!(Responder::respond_qr(qr.public_key(), &Psk::from_bytes([0; 32]), &msg, &mut rng).is_err());
    }

    #[test]
    fn initiator_never_panics_on_msg2(msg in proptest::collection::vec(any::<u8>(), 0..100)) {
        let qr = QrKey::generate(&mut common::ReplayRng::new(&[&[1u8; 48]]), 0, RequestHint::GetAssertion);
        let (initiator, _) = Initiator::new_qr(&qr, &Psk::from_bytes([0; 32]), &mut common::ReplayRng::new(&[&[2u8; 32]])).unwrap();
        prop_assert!(initiator.finish(&msg).is_err());
    }
}
