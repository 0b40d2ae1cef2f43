//! The computer's state-assisted flow (PROTOCOL.md §10) against a stand-in contact relay with
//! the linked phone behind it: contact, advert keyed by the link secret, NKpsk0, CTAP; a dead
//! contact id forgets the phone; a phone that never wakes ends in the scan deadline.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use cable_client::{
    Ceremony, ClientError, LinkedPhone, LinkedPhones, Phase, PreparedAuthentication,
};
use cable_e2e::contact::{ContactBehavior, ContactStandIn, LinkedPhoneKeys};
use cable_e2e::{test_deadlines, Harness};
use cable_proto::cbor::Value;
use cable_proto::ctap::CtapResponse;
use cable_proto::message::{LinkSecret, LinkingInfo};
use cable_proto::qr::RequestHint;
use cable_proto::rand_core::OsRng;
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;

const ORIGIN: &str = "https://example.com";
const GET_OPTIONS: &str = r#"{"challenge": "AAECAwQFBgcICQoLDA0ODw", "rpId": "example.com"}"#;

fn get_info() -> Value {
    Value::map([
        (
            Value::Unsigned(1),
            Value::Array(vec![Value::Text("FIDO_2_0".into())]),
        ),
        (Value::Unsigned(3), Value::Bytes(vec![0; 16])),
    ])
}

/// A well-formed getAssertion reply for example.com (the client does not check signatures;
/// relying parties do).
fn assertion() -> CtapResponse {
    let mut auth_data = Sha256::digest(b"example.com").to_vec();
    auth_data.push(0x05);
    auth_data.extend_from_slice(&1u32.to_be_bytes());
    CtapResponse::ok(Value::map([
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
    ]))
}

/// A phone linked to a store, and its side of the link.
fn linked_phone() -> (LinkedPhones, LinkedPhone, LinkedPhoneKeys) {
    let identity = cable_proto::keys::random_secret_key(&mut OsRng);
    let link_secret = LinkSecret::from_bytes([0x42; 32]);
    let linking = LinkingInfo {
        contact_id: b"opaque contact id".to_vec(),
        link_id: vec![5; 8],
        link_secret: link_secret.clone(),
        identity_public_key: identity.public_key(),
        name: "Pixel".into(),
        // Only verified data reaches a store; this test builds the store directly.
        signature: [0; 32],
        from_new_implementation: false,
    };
    let store = LinkedPhones::in_memory();
    let phone = store.add_verified(&linking, 0, 0).unwrap();
    (
        store,
        phone,
        LinkedPhoneKeys {
            identity,
            link_secret,
        },
    )
}

#[tokio::test]
async fn a_linked_phone_signs_in_without_a_qr_code() {
    for signal in [true, false] {
        let harness = Harness::start().await.unwrap();
        let (store, phone, keys) = linked_phone();
        let relay = ContactStandIn::start(
            harness.air(),
            keys,
            ContactBehavior::Answer { signal },
            get_info(),
            assertion(),
        )
        .await
        .unwrap();
        let mut config = harness.client_config(test_deadlines()).unwrap();
        config.relay_override = Some(relay.relay_url());
        config.linked_phones = Some(store);
        let request = PreparedAuthentication::new(GET_OPTIONS, ORIGIN).unwrap();
        let (ceremony, _progress) = Ceremony::with_linked_phone(config, request, phone.clone());
        assert_eq!(ceremony.phone().name, "Pixel");
        let assertion = ceremony.run(CancellationToken::new()).await.unwrap();
        assert_eq!(assertion.credential_id, vec![7; 16]);

        let seen = relay.seen().await.unwrap();
        assert_eq!(
            seen.path,
            cable_proto::domain::contact_path(&phone.contact_id)
        );
        assert!(seen.asked_for_signal);
        let payload = seen.payload.unwrap();
        assert_eq!(payload.link_id, phone.link_id);
        assert_eq!(payload.hint, RequestHint::GetAssertion);
    }
}

#[tokio::test]
async fn a_dead_contact_id_forgets_the_phone() {
    let harness = Harness::start().await.unwrap();
    let (store, phone, keys) = linked_phone();
    let relay = ContactStandIn::start(
        harness.air(),
        keys,
        ContactBehavior::Gone,
        get_info(),
        assertion(),
    )
    .await
    .unwrap();
    let mut config = harness.client_config(test_deadlines()).unwrap();
    config.relay_override = Some(relay.relay_url());
    config.linked_phones = Some(store.clone());
    let request = PreparedAuthentication::new(GET_OPTIONS, ORIGIN).unwrap();
    let (ceremony, _progress) = Ceremony::with_linked_phone(config, request, phone);
    let err = ceremony.run(CancellationToken::new()).await.unwrap_err();
    assert!(
        matches!(
            &err,
            ClientError::PhoneUnlinked { name, forgotten: true } if name == "Pixel"
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("no longer linked"), "{err}");
    assert!(store.list().is_empty());
}

#[tokio::test]
async fn a_phone_that_never_wakes_ends_in_the_scan_deadline() {
    let harness = Harness::start().await.unwrap();
    let (store, phone, keys) = linked_phone();
    let relay = ContactStandIn::start(
        harness.air(),
        keys,
        ContactBehavior::Silent,
        get_info(),
        assertion(),
    )
    .await
    .unwrap();
    let mut deadlines = test_deadlines();
    deadlines.scan = Duration::from_millis(300);
    let mut config = harness.client_config(deadlines).unwrap();
    config.relay_override = Some(relay.relay_url());
    config.linked_phones = Some(store.clone());
    let request = PreparedAuthentication::new(GET_OPTIONS, ORIGIN).unwrap();
    let (ceremony, _progress) = Ceremony::with_linked_phone(config, request, phone);
    let err = ceremony.run(CancellationToken::new()).await.unwrap_err();
    assert!(
        matches!(err, ClientError::Timeout { phase: Phase::Scan }),
        "{err:?}"
    );
    // A silent phone is not an unlinked one: it stays in the store.
    assert_eq!(store.list().len(), 1);
}
