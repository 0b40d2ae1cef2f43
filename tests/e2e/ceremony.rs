//! Register a passkey on a phone and sign in with it, through the real relay over loopback
//! WebSockets and the in-memory air; both responses verified by webauthn_rp.
#![allow(clippy::unwrap_used)]

use cable_client::{
    Ceremony, CeremonyRequest, PreparedAuthentication, PreparedRegistration, Progress,
};
use cable_e2e::{test_deadlines, Harness, RelyingParty};
use cable_phone::PasskeyStore;
use tokio_util::sync::CancellationToken;

const RP_ID: &str = "example.com";
const ORIGIN: &str = "https://example.com";

fn drain<T>(rx: &mut tokio::sync::mpsc::UnboundedReceiver<T>) -> Vec<T> {
    let mut out = Vec::new();
    while let Ok(p) = rx.try_recv() {
        out.push(p);
    }
    out
}

/// One ceremony for `request` with a phone over `store`, through the harness's relay; the
/// computer's response.
async fn run_ceremony<R: CeremonyRequest + 'static>(
    harness: &Harness,
    request: R,
    store: PasskeyStore,
) -> R::Response {
    let config = harness.client_config(test_deadlines()).unwrap();
    let (ceremony, _progress) = Ceremony::new(config, request);
    let phone = harness.phone(&ceremony.qr_uri(), store);
    let cancel = CancellationToken::new();
    let (computer, phone) = tokio::join!(ceremony.run(cancel.clone()), phone.run(cancel));
    phone.unwrap();
    computer.unwrap()
}

#[tokio::test]
async fn register_then_sign_in_verified_by_an_independent_rp() {
    let harness = Harness::start().await.unwrap();
    let rp = RelyingParty::new(RP_ID, ORIGIN).unwrap();
    let store = PasskeyStore::in_memory();

    // Registration.
    let options = rp.start_registration("ada", "Ada Lovelace").unwrap();
    let config = harness.client_config(test_deadlines()).unwrap();
    let (ceremony, mut progress) = Ceremony::register(config, &options, ORIGIN).unwrap();
    let uri = ceremony.qr_uri();
    assert!(uri.starts_with("FIDO:/"));
    let phone = harness.phone(&uri, store.clone());
    let cancel = CancellationToken::new();
    let (computer, phone) = tokio::join!(ceremony.run(cancel.clone()), phone.run(cancel.clone()));
    let registration = computer.unwrap();
    phone.unwrap();
    let credential_id = rp
        .finish_registration(&registration.to_json_string())
        .unwrap();
    assert_eq!(credential_id, registration.credential_id);
    let json = registration.to_json();
    assert_eq!(json["authenticatorAttachment"], "cross-platform");
    assert_eq!(
        json["response"]["transports"],
        serde_json::json!(["hybrid"])
    );
    let events = drain(&mut progress);
    assert_eq!(events.first(), Some(&Progress::Scanning));
    for expected in [
        Progress::TunnelConnected,
        Progress::RequestSent,
        Progress::ReplyReceived,
        Progress::Finished,
    ] {
        assert!(
            events.contains(&expected),
            "{expected:?} missing in {events:?}"
        );
    }

    // Sign in with the passkey the phone now holds.
    let options = rp.start_authentication().unwrap();
    let config = harness.client_config(test_deadlines()).unwrap();
    let (ceremony, _progress) = Ceremony::authenticate(config, &options, ORIGIN).unwrap();
    let phone = harness.phone(&ceremony.qr_uri(), store.clone());
    let (computer, phone) = tokio::join!(ceremony.run(cancel.clone()), phone.run(cancel.clone()));
    let assertion = computer.unwrap();
    phone.unwrap();
    assert_eq!(assertion.credential_id, credential_id);
    assert!(assertion.user_handle.is_some());
    let signed_in = rp
        .finish_authentication(&assertion.to_json_string())
        .unwrap();
    assert_eq!(signed_in, credential_id);
}

#[tokio::test]
async fn rp_rejects_a_response_for_another_challenge() {
    // The verification above must be able to fail: replaying a registration against a new
    // ceremony (different challenge) is refused.
    let harness = Harness::start().await.unwrap();
    let rp = RelyingParty::new(RP_ID, ORIGIN).unwrap();
    let options = rp.start_registration("bob", "Bob").unwrap();
    let config = harness.client_config(test_deadlines()).unwrap();
    let (ceremony, _p) = Ceremony::register(config, &options, ORIGIN).unwrap();
    let phone = harness.phone(&ceremony.qr_uri(), PasskeyStore::in_memory());
    let cancel = CancellationToken::new();
    let (computer, _) = tokio::join!(ceremony.run(cancel.clone()), phone.run(cancel.clone()));
    let registration = computer.unwrap();
    rp.start_registration("bob", "Bob").unwrap();
    assert!(rp
        .finish_registration(&registration.to_json_string())
        .is_err());
}

#[tokio::test]
async fn sign_in_without_a_passkey_reports_the_phone_refusal() {
    let harness = Harness::start().await.unwrap();
    let rp = RelyingParty::new(RP_ID, ORIGIN).unwrap();
    let options = rp.start_authentication().unwrap();
    let config = harness.client_config(test_deadlines()).unwrap();
    let (ceremony, _p) = Ceremony::authenticate(config, &options, ORIGIN).unwrap();
    let phone = harness.phone(&ceremony.qr_uri(), PasskeyStore::in_memory());
    let cancel = CancellationToken::new();
    let (computer, _) = tokio::join!(ceremony.run(cancel.clone()), phone.run(cancel.clone()));
    match computer {
        Err(cable_client::ClientError::Authenticator { status }) => assert_eq!(status, 0x2e),
        other => panic!("expected CTAP2_ERR_NO_CREDENTIALS, got {other:?}"),
    }
}

#[tokio::test]
async fn declined_on_the_phone_is_operation_denied() {
    let harness = Harness::start().await.unwrap();
    let rp = RelyingParty::new(RP_ID, ORIGIN).unwrap();
    let options = rp.start_registration("carol", "Carol").unwrap();
    let config = harness.client_config(test_deadlines()).unwrap();
    let (ceremony, _p) = Ceremony::register(config, &options, ORIGIN).unwrap();
    let authenticator =
        cable_phone::SoftwareAuthenticator::new(PasskeyStore::in_memory(), cable_phone::AlwaysDeny);
    let phone = cable_phone::PhoneSession::new(
        ceremony.qr_uri(),
        harness.air().advertiser(),
        authenticator,
    )
    .relay(harness.relay_url().clone())
    .domain_id(0);
    let cancel = CancellationToken::new();
    let (computer, _) = tokio::join!(ceremony.run(cancel.clone()), phone.run(cancel.clone()));
    match computer {
        Err(cable_client::ClientError::Authenticator { status }) => assert_eq!(status, 0x27),
        other => panic!("expected CTAP2_ERR_OPERATION_DENIED, got {other:?}"),
    }
}

/// Adds `extensions.prf` to options JSON from the relying party.
fn with_prf(options: &str, prf: serde_json::Value) -> String {
    let mut json: serde_json::Value = serde_json::from_str(options).unwrap();
    let inner = if json.get("publicKey").is_some() {
        &mut json["publicKey"]
    } else {
        &mut json
    };
    let object = inner.as_object_mut().unwrap();
    let extensions = object
        .entry("extensions")
        .or_insert_with(|| serde_json::json!({}));
    extensions["prf"] = prf;
    json.to_string()
}

/// The `prf` extension end to end: evaluated at registration, then at sign-in with the same
/// input again (same output) and with another (different output); the responses still
/// verify at the independent relying party.
#[tokio::test]
async fn prf_outputs_are_stable_across_ceremonies() {
    let harness = Harness::start().await.unwrap();
    let rp = RelyingParty::new(RP_ID, ORIGIN).unwrap();
    let store = PasskeyStore::in_memory();
    let cancel = CancellationToken::new();
    let vault = cable_client::webauthn::options::b64url(b"vault key v1");

    // The relying party asks for `prf`; the page's script adds an input to evaluate at once.
    let options = rp
        .start_registration_with_prf("ada", "Ada Lovelace")
        .unwrap();
    assert!(options.contains(r#""prf":{}"#), "{options}");
    let options = with_prf(&options, serde_json::json!({"eval": {"first": vault}}));
    let config = harness.client_config(test_deadlines()).unwrap();
    let (ceremony, _p) = Ceremony::register(config, &options, ORIGIN).unwrap();
    let phone = harness.phone(&ceremony.qr_uri(), store.clone());
    let (computer, phone) = tokio::join!(ceremony.run(cancel.clone()), phone.run(cancel.clone()));
    let registration = computer.unwrap();
    phone.unwrap();
    let credential_id = rp
        .finish_registration(&registration.to_json_string())
        .unwrap();
    let made = registration
        .prf
        .clone()
        .expect("prf output at registration");
    assert_eq!(made.enabled, Some(true));
    let at_registration = made.results.expect("evaluated at registration");
    assert_eq!(at_registration.first.len(), 32);

    let sign_in = |first: &[u8], second: Option<&[u8]>| {
        let options = rp.start_authentication_with_prf(first, second).unwrap();
        let request = PreparedAuthentication::new(&options, ORIGIN).unwrap();
        run_ceremony(&harness, request, store.clone())
    };
    let signed_in = |assertion: &cable_client::AuthenticationResponse| {
        rp.finish_authentication(&assertion.to_json_string())
            .unwrap()
    };
    let first = sign_in(b"vault key v1", Some(b"vault key v2")).await;
    assert_eq!(signed_in(&first), credential_id);
    let again = sign_in(b"vault key v2", None).await;
    assert_eq!(signed_in(&again), credential_id);
    let first = first.prf.unwrap().results.unwrap();
    let again = again.prf.unwrap().results.unwrap();
    assert_eq!(first.first, at_registration.first);
    assert_ne!(first.second.as_ref(), Some(&first.first));
    assert_eq!(Some(&again.first), first.second.as_ref());
}

/// `largeBlob` end to end, as Chrome drives a phone: a credential made with support, a
/// blob written at one sign-in and read back, inflated, at the next, with the phone's store
/// reopened from its file in between.
#[tokio::test]
async fn a_large_blob_written_at_one_sign_in_is_read_at_the_next() {
    use cable_client::webauthn::options::b64url;
    let harness = Harness::start().await.unwrap();
    let dir = std::env::temp_dir().join(format!("cable-e2e-large-blob-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("passkeys.json");
    let registration = PreparedRegistration::new(
        &serde_json::json!({
            "rp": {"id": RP_ID, "name": "Example"},
            "user": {"id": "AQID", "name": "ada", "displayName": "Ada"},
            "challenge": "AAECAw",
            "pubKeyCredParams": [{"type": "public-key", "alg": -7}],
            "authenticatorSelection": {"residentKey": "required", "userVerification": "required"},
            "extensions": {"largeBlob": {"support": "required"}}
        })
        .to_string(),
        ORIGIN,
    )
    .unwrap();
    let created = run_ceremony(&harness, registration, PasskeyStore::open(&path).unwrap())
        .await
        .to_json();
    assert_eq!(
        created["clientExtensionResults"],
        serde_json::json!({"largeBlob": {"supported": true}})
    );
    let id = created["id"].as_str().unwrap().to_owned();

    let data = b"a certificate the relying party keeps with the passkey ".repeat(20);
    let (harness, path, id) = (&harness, &path, &id);
    let sign_in = |large_blob: serde_json::Value| async move {
        let options = serde_json::json!({
            "challenge": "AAECAw", "rpId": RP_ID, "userVerification": "required",
            "allowCredentials": [{"type": "public-key", "id": id}],
            "extensions": {"largeBlob": large_blob}
        });
        let request = PreparedAuthentication::new(&options.to_string(), ORIGIN).unwrap();
        // Each sign-in reopens the phone's store from its file.
        run_ceremony(harness, request, PasskeyStore::open(path).unwrap())
            .await
            .to_json()
    };
    let written = sign_in(serde_json::json!({"write": b64url(&data)})).await;
    assert_eq!(
        written["clientExtensionResults"],
        serde_json::json!({"largeBlob": {"written": true}})
    );
    let read = sign_in(serde_json::json!({"read": true})).await;
    assert_eq!(
        read["clientExtensionResults"]["largeBlob"]["blob"],
        b64url(&data)
    );
    let _ = std::fs::remove_dir_all(&dir);
}
