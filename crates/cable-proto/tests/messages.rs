//! Linking data, update messages and client payloads: typed rejections.

#![allow(clippy::unwrap_used)]

use cable_proto::cbor::Value;
use cable_proto::keys;
use cable_proto::message::{
    ClientPayload, LinkSecret, LinkingInfo, Message, PostHandshake, UpdateMessage,
};
use cable_proto::qr::RequestHint;
use cable_proto::Error;

fn identity() -> cable_proto::SecretKey {
    keys::secret_key_from_bytes(&[0x31; 32]).unwrap()
}

fn sample() -> LinkingInfo {
    let qr = keys::secret_key_from_bytes(&[0x32; 32]).unwrap();
    LinkingInfo::new_signed(
        vec![1, 2, 3],
        vec![4; 8],
        LinkSecret::from_bytes([5; 32]),
        &identity(),
        "Pixel".into(),
        &qr.public_key(),
        &[6; 32],
    )
}

fn entries(info: &LinkingInfo) -> Vec<(Value, Value)> {
    info.to_value()
        .as_map()
        .unwrap()
        .clone()
        .into_iter()
        .collect()
}

fn replace(info: &LinkingInfo, key: u64, value: Option<Value>) -> Result<LinkingInfo, Error> {
    let mut e: Vec<_> = entries(info)
        .into_iter()
        .filter(|(k, _)| *k != Value::Unsigned(key))
        .collect();
    if let Some(v) = value {
        e.push((Value::Unsigned(key), v));
    }
    LinkingInfo::from_value(&Value::map(e))
}

#[test]
fn linking_round_trip_and_field_checks() {
    let info = sample();
    assert_eq!(LinkingInfo::from_value(&info.to_value()).unwrap(), info);
    let mut newer = info.clone();
    newer.from_new_implementation = true;
    assert_eq!(LinkingInfo::from_value(&newer.to_value()).unwrap(), newer);

    for key in [1, 2, 3, 4, 5, 6] {
        assert!(
            matches!(replace(&info, key, None), Err(Error::BadField { key: k, .. }) if k == key),
            "missing key {key}"
        );
    }
    let bad = |key, v| matches!(replace(&info, key, Some(v)), Err(Error::BadField { key: k, .. }) if k == key);
    assert!(bad(1, Value::Text("x".into())));
    assert!(bad(3, Value::Bytes(vec![0; 31])));
    let compressed = keys::compressed(&identity().public_key()).to_vec();
    assert!(bad(4, Value::Bytes(compressed)));
    let mut off_curve = vec![4u8];
    off_curve.extend_from_slice(&[0xff; 64]);
    assert!(bad(4, Value::Bytes(off_curve)));
    assert!(bad(5, Value::Bytes(b"name".to_vec())));
    assert!(bad(6, Value::Bytes(vec![0; 31])));
    assert!(bad(999, Value::Unsigned(1)));
    // Unknown keys are ignored.
    assert_eq!(replace(&info, 7, Some(Value::Null)).unwrap(), info);
    assert!(matches!(
        LinkingInfo::from_value(&Value::Unsigned(1)),
        Err(Error::NotAMap { .. })
    ));
    // Secrets stay out of Debug output.
    let debug = format!("{info:?}");
    assert!(debug.contains("LinkSecret(<redacted>)"));
    assert!(!debug.contains("0505050505"));
}

#[test]
fn update_message_forms() {
    let info = sample();
    // Chrome pads with key 0; it is ignored on decode whatever it holds.
    let payload = Value::map([
        (Value::Unsigned(0), Value::Text("pad".into())),
        (Value::Unsigned(1), Value::clone(&info.to_value())),
    ])
    .to_bytes();
    assert_eq!(
        UpdateMessage::decode_payload(&payload).unwrap(),
        UpdateMessage {
            linking: Some(info.clone())
        }
    );
    assert!(matches!(
        UpdateMessage::decode_payload(&[0x80]),
        Err(Error::NotAMap { .. })
    ));
    let bad_linking = Value::map([(Value::Unsigned(1), Value::Unsigned(3))]).to_bytes();
    assert!(UpdateMessage::decode_payload(&bad_linking).is_err());

    // Both padded forms encrypt to 528 bytes.
    let mut crypter = cable_proto::crypter::Crypter::new(&[1; 32], &[2; 32]);
    for update in [
        UpdateMessage::default(),
        UpdateMessage {
            linking: Some(info),
        },
    ] {
        let plaintext = Message::Update(update).encode();
        assert_eq!(crypter.encrypt(&plaintext).unwrap().len(), 528);
    }
}

#[test]
fn post_handshake_with_legacy_linking_key() {
    let mut p = PostHandshake::new(vec![0xa0]);
    p.linking = Some(sample());
    let (decoded, _) = PostHandshake::decode(&p.encode()).unwrap();
    assert_eq!(decoded, p);
    // A malformed key 2 aborts.
    let bad = Value::map([
        (Value::Unsigned(1), Value::Bytes(vec![0xa0])),
        (Value::Unsigned(2), Value::Bytes(vec![])),
    ]);
    assert!(PostHandshake::decode(&bad.to_bytes()).is_err());
    // getInfo must itself be a canonical CBOR map.
    let not_map = Value::map([(Value::Unsigned(1), Value::Bytes(vec![0x01]))]);
    assert!(matches!(
        PostHandshake::decode(&not_map.to_bytes()),
        Err(Error::BadField { key: 1, .. })
    ));
}

#[test]
fn client_payload_rules() {
    let p = ClientPayload {
        link_id: vec![0x44; 8],
        client_nonce: [0x30; 16],
        hint: RequestHint::MakeCredential,
    };
    let header = p.to_header_value();
    assert_eq!(header, header.to_uppercase());
    assert_eq!(
        ClientPayload::from_header_value(&header.to_lowercase()).unwrap(),
        p
    );
    assert_eq!(ClientPayload::from_header_value("zz"), Err(Error::BadHex));
    let short_nonce = Value::map([
        (Value::Unsigned(1), Value::Bytes(vec![1])),
        (Value::Unsigned(2), Value::Bytes(vec![0; 15])),
    ]);
    assert!(matches!(
        ClientPayload::from_cbor(&short_nonce.to_bytes()),
        Err(Error::BadField { key: 2, .. })
    ));
    let no_link = Value::map([(Value::Unsigned(2), Value::Bytes(vec![0; 16]))]);
    assert!(matches!(
        ClientPayload::from_cbor(&no_link.to_bytes()),
        Err(Error::BadField { key: 1, .. })
    ));
}

#[test]
fn chrome_style_link_secret_chain() {
    use cable_proto::derive::{derive, DerivedValueType};
    let root = [0x10u8; 32];
    let mut per_contact = [0u8; 32];
    derive(
        &root,
        b"contact",
        DerivedValueType::PerContactIdSecret,
        &mut per_contact,
    )
    .unwrap();
    let mut paired = [0u8; 32];
    derive(
        &per_contact,
        &[4; 8],
        DerivedValueType::PairedSecret,
        &mut paired,
    )
    .unwrap();
    assert_eq!(
        LinkSecret::derive_chrome_style(&root, b"contact", &[4; 8]),
        LinkSecret::from_bytes(paired)
    );
    assert_ne!(
        LinkSecret::derive_chrome_style(&root, b"contact2", &[4; 8]),
        LinkSecret::from_bytes(paired)
    );
}

#[test]
fn session_types_cross_threads() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<cable_proto::handshake::Initiator>();
    send_sync::<cable_proto::handshake::HandshakeOutput>();
    send_sync::<cable_proto::crypter::Crypter>();
    send_sync::<cable_proto::qr::QrKey>();
    send_sync::<cable_proto::Error>();
}
