#![no_main]
//! The computer's parsers of what the phone sends after the handshake:
//! getInfo, authenticator data, makeCredential and getAssertion replies (for
//! several option sets, against Chrome's getInfo and against the input read as
//! getInfo), the post-handshake message and update messages as the session
//! hands them to the client, and linking data into the linked-phone store.
use std::sync::OnceLock;

use cable_client::ctap::{split_status, AuthenticatorData, AuthenticatorInfo};
use cable_client::{LinkedPhones, PreparedAuthentication, PreparedRegistration};
use cable_proto::cbor;
use cable_proto::message::{LinkingInfo, Message, PostHandshake, UpdateMessage};
use libfuzzer_sys::fuzz_target;

const RP_ID: &str = "example.com";
const ORIGIN: &str = "https://example.com";
/// Chrome-for-Android's getInfo (PROTOCOL.md §11.2).
const CHROME_GET_INFO: &[u8] = b"\xa5\x01\x82\x68FIDO_2_0\x68FIDO_2_1\x02\x81\x63prf\x03\x50\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\x04\xa2\x62rk\xf5\x62uv\xf5\x09\x83\x65cable\x66hybrid\x68internal";

const REGISTRATIONS: &[&str] = &[
    r#"{"rp": {"id": "example.com", "name": "Example"}, "user": {"id": "AQ", "name": "a", "displayName": "A"},
        "challenge": "AQID", "pubKeyCredParams": [{"type": "public-key", "alg": -7}, {"type": "public-key", "alg": -8},
        {"type": "public-key", "alg": -257}]}"#,
    r#"{"rp": {"id": "example.com", "name": "Example"}, "user": {"id": "AQ", "name": "a", "displayName": "A"},
        "challenge": "AQID", "pubKeyCredParams": [{"type": "public-key", "alg": -7}], "attestation": "direct",
        "authenticatorSelection": {"residentKey": "required", "userVerification": "required"},
        "excludeCredentials": [{"type": "public-key", "id": "AgI"}],
        "extensions": {"credProps": true, "credentialProtectionPolicy": "userVerificationRequired",
                       "enforceCredentialProtectionPolicy": true}}"#,
];

const AUTHENTICATIONS: &[&str] = &[
    r#"{"challenge": "AQID", "rpId": "example.com"}"#,
    r#"{"challenge": "AQID", "rpId": "example.com", "userVerification": "required",
        "allowCredentials": [{"type": "public-key", "id": "AQ"}]}"#,
    r#"{"challenge": "AQID", "rpId": "example.com", "userVerification": "discouraged",
        "allowCredentials": [{"type": "public-key", "id": "AQ"}, {"type": "public-key", "id": "AgI"}]}"#,
];

/// Valid replies for `example.com` (the seeds), read against the input as getInfo.
const MAKE_CREDENTIAL: &[u8] = include_bytes!("../seeds/client_replies/make_credential");
const GET_ASSERTION: &[u8] = include_bytes!("../seeds/client_replies/get_assertion");

struct Fixtures {
    chrome: AuthenticatorInfo,
    registrations: Vec<PreparedRegistration>,
    authentications: Vec<PreparedAuthentication>,
}

fn fixtures() -> &'static Fixtures {
    static F: OnceLock<Fixtures> = OnceLock::new();
    F.get_or_init(|| Fixtures {
        chrome: AuthenticatorInfo::parse(CHROME_GET_INFO).expect("Chrome's getInfo"),
        registrations: REGISTRATIONS
            .iter()
            .map(|o| PreparedRegistration::new(o, ORIGIN).expect("registration options"))
            .collect(),
        authentications: AUTHENTICATIONS
            .iter()
            .map(|o| PreparedAuthentication::new(o, ORIGIN).expect("authentication options"))
            .collect(),
    })
}

/// A CTAP reply (`status ‖ CBOR`) to each request, read with `info` as the phone's getInfo.
fn replies(f: &Fixtures, info: &AuthenticatorInfo, reply: &[u8]) {
    for reg in &f.registrations {
        // The request built from a hostile getInfo is still canonical CBOR.
        if let Ok(request) = reg.ctap_request(info) {
            assert!(cbor::decode(&request[1..]).is_ok());
        }
        if let Ok(response) = reg.finish(info, reply) {
            assert!(cbor::decode(&response.attestation_object).is_ok());
            let ad = AuthenticatorData::parse(&response.authenticator_data, RP_ID)
                .expect("finish checked the authenticator data");
            let attested = ad.attested.expect("a registration has a credential");
            assert_eq!(attested.credential_id, response.credential_id);
            let _ = response.to_json_string();
        }
    }
    for auth in &f.authentications {
        if let Ok(request) = auth.ctap_request(info) {
            assert!(cbor::decode(&request[1..]).is_ok());
        }
        if let Ok(response) = auth.finish(info, reply) {
            let allow = &auth.options().allow_credentials;
            assert!(allow.is_empty() || allow.contains(&response.credential_id));
            let ad = AuthenticatorData::parse(&response.authenticator_data, RP_ID)
                .expect("finish checked the authenticator data");
            assert_ne!(ad.flags & cable_client::ctap::flags::USER_PRESENT, 0);
            let _ = response.to_json_string();
        }
    }
}

/// Linking data as a QR session stores it once verified: twice is one phone, named.
fn store(linking: &LinkingInfo) {
    let store = LinkedPhones::in_memory();
    let first = store.add_verified(linking, 0, 1).expect("in-memory store");
    let again = store.add_verified(linking, 1, 2).expect("in-memory store");
    assert!(!first.name.trim().is_empty());
    assert_eq!(first.name, again.name);
    assert_eq!(store.list().len(), 1);
    assert_eq!(
        store.get(&first.name).map(|p| p.id()).ok(),
        Some(first.id())
    );
}

fuzz_target!(|data: &[u8]| {
    let f = fixtures();
    let _ = split_status(data);
    let _ = AuthenticatorData::parse(data, RP_ID);
    replies(f, &f.chrome, data);
    if let Ok(info) = AuthenticatorInfo::parse(data) {
        assert_eq!(info.raw(), data);
        assert_eq!(&info.local_get_info_reply()[1..], data);
        // Valid replies read against the phone's own getInfo (options, extensions).
        replies(f, &info, MAKE_CREDENTIAL);
        replies(f, &info, GET_ASSERTION);
    }
    if let Ok((post, _)) = PostHandshake::decode(data) {
        if let Some(info) = post.get_info.as_deref() {
            if let Ok(info) = AuthenticatorInfo::parse(info) {
                replies(f, &info, MAKE_CREDENTIAL);
            }
        }
        if let Some(linking) = &post.linking {
            store(linking);
        }
    }
    match Message::decode(data) {
        Ok(Message::Ctap(reply)) => replies(f, &f.chrome, &reply),
        Ok(Message::Update(update)) => {
            if let Some(linking) = &update.linking {
                store(linking);
            }
        }
        _ => {}
    }
    if let Ok(UpdateMessage {
        linking: Some(linking),
        ..
    }) = UpdateMessage::decode_payload(data)
    {
        store(&linking);
    }
});
