//! Linking in QR sessions and answering contacts from linked computers, against the real
//! relay (in-process) and a computer scripted from cable-proto.

#![allow(clippy::unwrap_used, clippy::result_large_err)]

mod support;

use std::path::PathBuf;

use cable_phone::{
    AlwaysApprove, ContactRequest, Outcome, PasskeyStore, Phase, PhoneError, PhoneIdentity,
    PhoneSession, Progress, RequestKind, SoftwareAuthenticator,
};
use cable_proto::cbor::{self, Value};
use cable_proto::ctap::{command, status};
use cable_proto::message::{ClientPayload, LinkingInfo};
use cable_proto::qr::{QrKey, RequestHint};
use cable_proto::rand_core::OsRng;
use p256::ecdsa::signature::Verifier;
use support::*;

const RP: &str = "example.com";
const USER_ID: &[u8] = b"user-handle-0001";
const CONTACT_ID: &[u8] = b"sealed push subscription, opaque to the phone";

fn get(map: &Value, key: u64) -> Value {
    cbor::map_get(map.as_map().unwrap(), key).unwrap().clone()
}

fn software(store: &PasskeyStore) -> SoftwareAuthenticator {
    SoftwareAuthenticator::new(store.clone(), AlwaysApprove)
}

fn linked_identity() -> PhoneIdentity {
    let identity = PhoneIdentity::generate(&mut OsRng).unwrap();
    identity.set_contact_id(Some(CONTACT_ID.to_vec())).unwrap();
    identity.set_name(Some("Test phone".into())).unwrap();
    identity
}

struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let mut suffix = [0u8; 8];
        cable_proto::rand_core::RngCore::fill_bytes(&mut OsRng, &mut suffix);
        let hex: String = suffix.iter().map(|b| format!("{b:02x}")).collect();
        let dir = std::env::temp_dir().join(format!("cable-phone-linking-{tag}-{hex}"));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Registers through a QR session with `qr`; returns the computer (after the reply), the
/// credential's public key and the phone's progress events.
async fn register(
    env: &Env,
    qr: &QrKey,
    store: &PasskeyStore,
    identity: Option<&PhoneIdentity>,
) -> (Computer, p256::ecdsa::VerifyingKey, Vec<Progress>) {
    let mut session = env.phone(qr, software(store)).link_name("test laptop");
    if let Some(identity) = identity {
        session = session.identity(identity.clone());
    }
    let mut phone = spawn_phone(session);
    // The update is read before the request is even sent, so it came before the reply.
    let mut computer = computer_connect(env, qr).await;
    let cdh = client_data_hash("register");
    let resp = computer
        .request(
            command::MAKE_CREDENTIAL,
            make_credential_params(RP, &cdh, USER_ID),
        )
        .await;
    assert_eq!(resp.status, status::OK);
    let auth_data = parse_auth_data(get(&resp.body.unwrap(), 2).as_bytes().unwrap());
    let outcome = phone.task.await.unwrap().unwrap();
    assert!(matches!(outcome, Outcome::Served { status: 0, .. }));
    let mut events = Vec::new();
    while let Ok(p) = phone.progress.try_recv() {
        events.push(p);
    }
    (computer, auth_data.public_key.unwrap(), events)
}

#[tokio::test]
async fn a_qr_asking_for_linking_gets_signed_linking_data_before_the_reply() {
    let env = Env::start().await;
    let identity = linked_identity();
    let qr = qr_key(RequestHint::MakeCredential).with_state_assisted(true);
    let store = PasskeyStore::in_memory();
    let (computer, _, events) = register(&env, &qr, &store, Some(&identity)).await;

    assert_eq!(computer.update_len, 528);
    let linking: LinkingInfo = computer.update.unwrap().linking.expect("linking data");
    linking.verify(&qr, &computer.handshake_hash).unwrap();
    assert_eq!(linking.contact_id, CONTACT_ID);
    assert_eq!(linking.link_id.len(), 8);
    assert_eq!(linking.identity_public_key, identity.public_key());
    assert_eq!(linking.name, "Test phone");
    assert!(!linking.from_new_implementation);
    // The phone remembers the link, and derives the same secret from its root.
    let links = identity.links();
    assert_eq!(links.len(), 1);
    assert_eq!(links[0].link_id, linking.link_id);
    assert_eq!(links[0].computer.as_deref(), Some("test laptop"));
    assert_eq!(
        identity.link_secret(&linking.link_id),
        Some(linking.link_secret.clone())
    );
    assert!(events.contains(&Progress::LinkOffered), "{events:?}");

    // Another hash (another session) does not verify.
    let mut other = computer.handshake_hash;
    other[0] ^= 1;
    assert!(linking.verify(&qr, &other).is_err());
}

#[tokio::test]
async fn no_linking_data_without_key_4_or_without_a_contact_id() {
    let env = Env::start().await;
    let store = PasskeyStore::in_memory();

    // Key 4 false: the padding-only update, the same 528 bytes.
    let identity = linked_identity();
    let qr = qr_key(RequestHint::MakeCredential).with_state_assisted(false);
    let (computer, _, events) = register(&env, &qr, &store, Some(&identity)).await;
    assert_eq!(computer.update_len, 528);
    assert_eq!(computer.update.unwrap().linking, None);
    assert!(identity.links().is_empty());
    assert!(!events.contains(&Progress::LinkOffered));

    // Key 4 true, but the phone has no contact id: nothing a computer could use.
    let identity = PhoneIdentity::generate(&mut OsRng).unwrap();
    let qr = qr_key(RequestHint::MakeCredential).with_state_assisted(true);
    let (computer, _, _) = register(&env, &qr, &store, Some(&identity)).await;
    assert_eq!(computer.update_len, 528);
    assert_eq!(computer.update.unwrap().linking, None);
    assert!(identity.links().is_empty());

    // No identity at all.
    let qr = qr_key(RequestHint::MakeCredential).with_state_assisted(true);
    let (computer, _, _) = register(&env, &qr, &store, None).await;
    assert_eq!(computer.update_len, 528);
    assert_eq!(computer.update.unwrap().linking, None);
}

fn contact_session(
    env: &Env,
    request: ContactRequest,
    identity: &PhoneIdentity,
    store: &PasskeyStore,
) -> PhoneSession {
    PhoneSession::contact(
        request,
        identity.clone(),
        std::sync::Arc::new(env.air.advertiser()),
        Box::new(software(store)),
    )
    .relay(env.relay_url())
    .deadlines(test_deadlines())
}

#[tokio::test]
async fn a_linked_computer_signs_in_through_a_contact() {
    let env = Env::start().await;
    let dir = TempDir::new("contact");
    let path = dir.0.join("phone-identity.json");
    let identity = PhoneIdentity::open_or_create(&path, &mut OsRng).unwrap();
    identity.set_contact_id(Some(CONTACT_ID.to_vec())).unwrap();
    let store = PasskeyStore::in_memory();
    let qr = qr_key(RequestHint::MakeCredential).with_state_assisted(true);
    let (computer, credential_key, _) = register(&env, &qr, &store, Some(&identity)).await;
    let linking = computer.update.unwrap().linking.unwrap();
    linking.verify(&qr, &computer.handshake_hash).unwrap();

    // Later, in another process: the phone knows the link only from its file.
    let identity = PhoneIdentity::open_existing(&path).unwrap().unwrap();
    for _ in 0..2 {
        let tunnel = LinkedComputer::open(&env).await;
        let payload = ClientPayload::new(
            &mut OsRng,
            linking.link_id.clone(),
            RequestHint::GetAssertion,
        );
        let request = ContactRequest::from_push(
            *tunnel.routing_id.as_bytes(),
            *tunnel.tunnel_id.as_bytes(),
            &payload.to_cbor(),
        )
        .unwrap();
        let mut phone = spawn_phone(contact_session(&env, request, &identity, &store));
        let mut computer = tunnel
            .handshake(
                &env,
                &linking.link_secret,
                &payload.client_nonce,
                &linking.identity_public_key,
            )
            .await;
        assert!(computer.post.get_info.is_some());
        // No update in a linked session: the next message is the CTAP reply.
        let cdh = client_data_hash("sign in without a QR code");
        let resp = computer
            .request(command::GET_ASSERTION, get_assertion_params(RP, &cdh, None))
            .await;
        assert_eq!(resp.status, status::OK);
        let body = resp.body.unwrap();
        let auth_data = get(&body, 2).as_bytes().unwrap().to_vec();
        let signature =
            p256::ecdsa::DerSignature::from_bytes(get(&body, 3).as_bytes().unwrap()).unwrap();
        let mut signed = auth_data.clone();
        signed.extend_from_slice(&cdh);
        credential_key.verify(&signed, &signature).unwrap();
        let outcome = phone.task.await.unwrap().unwrap();
        assert!(matches!(
            outcome,
            Outcome::Served {
                kind: RequestKind::GetAssertion,
                status: 0,
                ..
            }
        ));
        let mut events = Vec::new();
        while let Ok(p) = phone.progress.try_recv() {
            events.push(p);
        }
        assert!(!events.contains(&Progress::LinkOffered));
    }
}

#[tokio::test]
async fn an_unknown_link_is_refused_and_the_file_left_alone() {
    let env = Env::start().await;
    let dir = TempDir::new("unknown");
    let path = dir.0.join("phone-identity.json");
    let identity = PhoneIdentity::open_or_create(&path, &mut OsRng).unwrap();
    identity.set_contact_id(Some(CONTACT_ID.to_vec())).unwrap();
    let store = PasskeyStore::in_memory();
    let qr = qr_key(RequestHint::MakeCredential).with_state_assisted(true);
    let (computer, _, _) = register(&env, &qr, &store, Some(&identity)).await;
    let known = computer.update.unwrap().linking.unwrap().link_id;
    let before = std::fs::read(&path).unwrap();

    let mut unknown = known.clone();
    unknown[0] ^= 1;
    let tunnel = LinkedComputer::open(&env).await;
    let payload = ClientPayload::new(&mut OsRng, unknown, RequestHint::GetAssertion);
    let request = ContactRequest::from_push(
        *tunnel.routing_id.as_bytes(),
        *tunnel.tunnel_id.as_bytes(),
        &payload.to_cbor(),
    )
    .unwrap();
    let phone = spawn_phone(contact_session(&env, request, &identity, &store));
    let err = phone.result().await.unwrap_err();
    assert!(matches!(err, PhoneError::UnknownLink), "{err:?}");
    assert_eq!(err.phase(), Phase::Contact);
    assert_eq!(std::fs::read(&path).unwrap(), before);
    assert_eq!(env.air.active_adverts(), 0);

    // An unlinked computer is refused the same way.
    identity
        .unlink(&cable_phone::LinkSelector::Id(known.clone()))
        .unwrap();
    let before = std::fs::read(&path).unwrap();
    let payload = ClientPayload::new(&mut OsRng, known, RequestHint::GetAssertion);
    let request = ContactRequest::from_push(
        *tunnel.routing_id.as_bytes(),
        *tunnel.tunnel_id.as_bytes(),
        &payload.to_cbor(),
    )
    .unwrap();
    let err = spawn_phone(contact_session(&env, request, &identity, &store))
        .result()
        .await
        .unwrap_err();
    assert!(matches!(err, PhoneError::UnknownLink), "{err:?}");
    assert_eq!(std::fs::read(&path).unwrap(), before);
}

#[tokio::test]
async fn a_link_removed_by_another_process_is_refused() {
    let env = Env::start().await;
    let dir = TempDir::new("unlinked-elsewhere");
    let path = dir.0.join("phone-identity.json");
    // The long-running listener's handle, opened before the link was removed elsewhere.
    let identity = PhoneIdentity::open_or_create(&path, &mut OsRng).unwrap();
    identity.set_contact_id(Some(CONTACT_ID.to_vec())).unwrap();
    let store = PasskeyStore::in_memory();
    let qr = qr_key(RequestHint::MakeCredential).with_state_assisted(true);
    let (computer, _, _) = register(&env, &qr, &store, Some(&identity)).await;
    let known = computer.update.unwrap().linking.unwrap().link_id;

    // `cable phone unlink` in another process.
    let other = PhoneIdentity::open_existing(&path).unwrap().unwrap();
    other.unlink(&cable_phone::LinkSelector::All).unwrap();

    let tunnel = LinkedComputer::open(&env).await;
    let payload = ClientPayload::new(&mut OsRng, known, RequestHint::GetAssertion);
    let request = ContactRequest::from_push(
        *tunnel.routing_id.as_bytes(),
        *tunnel.tunnel_id.as_bytes(),
        &payload.to_cbor(),
    )
    .unwrap();
    let err = spawn_phone(contact_session(&env, request, &identity, &store))
        .result()
        .await
        .unwrap_err();
    assert!(matches!(err, PhoneError::UnknownLink), "{err:?}");
    assert_eq!(env.air.active_adverts(), 0);
    assert!(
        identity.links().is_empty(),
        "the handle sees the file as it is now"
    );
}

#[test]
fn a_malformed_client_payload_is_a_typed_error() {
    for bytes in [&[][..], &[0xa0], &[0x80], &[0xa1, 0x01, 0x41, 0x00]] {
        let err = ContactRequest::from_push([0; 3], [0; 16], bytes).unwrap_err();
        assert!(matches!(err, PhoneError::BadContact(_)), "{err:?}");
        assert_eq!(err.phase(), Phase::Contact);
    }
}
