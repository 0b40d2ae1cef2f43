//! The whole state-assisted story through the real relay: the phone registers its Web Push
//! subscription, links during a QR registration, and then the computer signs in twice
//! without a QR code: `/cable/contact/` on the relay, a Web Push message to the phone's own
//! loopback push endpoint (which decrypts it with the subscription keys), the phone joining
//! the tunnel, the advert keyed by the link secret on the air, NKpsk0, CTAP. The independent
//! relying party verifies the registration and both assertions.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use cable_client::{Ceremony, ClientError, LinkedPhones, PreparedAuthentication};
use cable_e2e::{test_deadlines, Harness, RelyingParty};
use cable_phone::{register_for_contacts, PasskeyStore, PhoneError, PhoneIdentity, PushEndpoint};
use cable_proto::rand_core::OsRng;
use cable_transport::Instant;
use cable_tunnel_server::contact::ContactKeys;
use cable_tunnel_server::{ContactConfig, RelayConfig, VapidKey};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

const RP_ID: &str = "example.com";
const ORIGIN: &str = "https://example.com";

fn deadline() -> Instant {
    Instant::now() + Duration::from_secs(10)
}

/// Registers a passkey with a QR code; the phone links (the computer offers it, the phone
/// has a contact id). Returns the credential id.
async fn register_and_link(
    harness: &Harness,
    rp: &RelyingParty,
    computers: &LinkedPhones,
    identity: &PhoneIdentity,
    passkeys: &PasskeyStore,
) -> Vec<u8> {
    let mut config = harness.client_config(test_deadlines()).unwrap();
    config.linked_phones = Some(computers.clone());
    let options = rp.start_registration("ada", "Ada").unwrap();
    let (ceremony, _progress) = Ceremony::register(config, &options, ORIGIN).unwrap();
    let phone = harness
        .phone(&ceremony.qr_uri(), passkeys.clone())
        .identity(identity.clone())
        .link_name("work laptop");
    let (computer, phone) = tokio::join!(
        ceremony.run(CancellationToken::new()),
        phone.run(CancellationToken::new())
    );
    phone.unwrap();
    rp.finish_registration(&computer.unwrap().to_json_string())
        .unwrap()
}

/// One sign-in with the linked phone: the computer contacts it, the phone answers the push.
async fn sign_in_without_qr(
    harness: &Harness,
    rp: &RelyingParty,
    computers: &LinkedPhones,
    identity: &PhoneIdentity,
    passkeys: &PasskeyStore,
    endpoint: &mut PushEndpoint,
) -> Result<Vec<u8>, ClientError> {
    let mut config = harness.client_config(test_deadlines()).unwrap();
    config.linked_phones = Some(computers.clone());
    let phone = computers.list().pop().unwrap();
    let request = PreparedAuthentication::new(&rp.start_authentication().unwrap(), ORIGIN).unwrap();
    let (ceremony, _progress) = Ceremony::with_linked_phone(config, request, phone);
    let phone_side = async {
        let contact = endpoint.next().await.unwrap();
        harness
            .contacted_phone(contact, identity, passkeys.clone())
            .run(CancellationToken::new())
            .await
    };
    let (computer, phone) = tokio::join!(ceremony.run(CancellationToken::new()), phone_side);
    phone.unwrap();
    let assertion = computer?;
    Ok(rp
        .finish_authentication(&assertion.to_json_string())
        .unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn link_with_a_qr_code_then_sign_in_twice_without_one() {
    let harness = Harness::start_with_contacts().await.unwrap();
    let rp = RelyingParty::new(RP_ID, ORIGIN).unwrap();
    let identity = PhoneIdentity::generate(&mut OsRng).unwrap();
    let passkeys = PasskeyStore::in_memory();
    let computers = LinkedPhones::in_memory();

    let mut endpoint = harness.register_phone(&identity).await.unwrap();
    let contact_id = identity.contact_id().unwrap();
    assert_eq!(
        identity.registration().unwrap().endpoint,
        endpoint.url(),
        "the identity remembers what it registered"
    );

    let credential = register_and_link(&harness, &rp, &computers, &identity, &passkeys).await;
    let linked = computers.list();
    assert_eq!(linked.len(), 1, "the computer stored the verified link");
    assert_eq!(linked[0].contact_id, contact_id);
    assert_eq!(linked[0].identity_public_key, identity.public_key());
    assert_eq!(identity.links().len(), 1);
    assert_eq!(identity.links()[0].computer.as_deref(), Some("work laptop"));

    for _ in 0..2 {
        let signed_in = sign_in_without_qr(
            &harness,
            &rp,
            &computers,
            &identity,
            &passkeys,
            &mut endpoint,
        )
        .await
        .unwrap();
        assert_eq!(signed_in, credential);
    }
    assert_eq!(
        computers.list().len(),
        1,
        "a state-assisted session never relinks"
    );
    harness.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_phone_that_unlinked_refuses_the_contact_and_keeps_its_store() {
    let harness = Harness::start_with_contacts().await.unwrap();
    let rp = RelyingParty::new(RP_ID, ORIGIN).unwrap();
    let identity = PhoneIdentity::generate(&mut OsRng).unwrap();
    let passkeys = PasskeyStore::in_memory();
    let computers = LinkedPhones::in_memory();
    let mut endpoint = harness.register_phone(&identity).await.unwrap();
    register_and_link(&harness, &rp, &computers, &identity, &passkeys).await;
    identity.unlink(&cable_phone::LinkSelector::All).unwrap();
    let before = passkeys.list();

    let mut config = harness
        .client_config(cable_client::Deadlines {
            scan: Duration::from_secs(2),
            ..test_deadlines()
        })
        .unwrap();
    config.linked_phones = Some(computers.clone());
    let request = PreparedAuthentication::new(&rp.start_authentication().unwrap(), ORIGIN).unwrap();
    let (ceremony, _) =
        Ceremony::with_linked_phone(config, request, computers.list().pop().unwrap());
    let phone_side = async {
        let contact = endpoint.next().await.unwrap();
        harness
            .contacted_phone(contact, &identity, passkeys.clone())
            .run(CancellationToken::new())
            .await
    };
    let (computer, phone) = tokio::join!(ceremony.run(CancellationToken::new()), phone_side);
    assert!(matches!(phone, Err(PhoneError::UnknownLink)), "{phone:?}");
    assert!(
        matches!(
            computer,
            Err(ClientError::Timeout {
                phase: cable_client::Phase::Scan
            })
        ),
        "{computer:?}"
    );
    assert_eq!(passkeys.list(), before);
    assert_eq!(computers.list().len(), 1, "a silent phone is not forgotten");
}

/// A push endpoint that answers every message 410 Gone, as push services do for a dead
/// subscription.
async fn gone_endpoint() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/dead", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = vec![0; 16 * 1024];
                let _ = tcp.read(&mut buf).await;
                let _ = tcp
                    .write_all(
                        b"HTTP/1.1 410 Gone\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                    )
                    .await;
            });
        }
    });
    url
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_subscription_makes_the_computer_forget_the_phone() {
    let harness = Harness::start_with_contacts().await.unwrap();
    let rp = RelyingParty::new(RP_ID, ORIGIN).unwrap();
    let identity = PhoneIdentity::generate(&mut OsRng).unwrap();
    let passkeys = PasskeyStore::in_memory();
    let computers = LinkedPhones::in_memory();
    let loopback = cable_e2e::loopback_connector().unwrap();
    register_for_contacts(
        &identity,
        &loopback,
        harness.relay_url(),
        &gone_endpoint().await,
        deadline(),
    )
    .await
    .unwrap();
    register_and_link(&harness, &rp, &computers, &identity, &passkeys).await;
    assert_eq!(computers.list().len(), 1);

    let mut config = harness.client_config(test_deadlines()).unwrap();
    config.linked_phones = Some(computers.clone());
    let request = PreparedAuthentication::new(&rp.start_authentication().unwrap(), ORIGIN).unwrap();
    let (ceremony, _) =
        Ceremony::with_linked_phone(config, request, computers.list().pop().unwrap());
    let result = ceremony.run(CancellationToken::new()).await;
    assert!(
        matches!(
            result,
            Err(ClientError::PhoneUnlinked {
                forgotten: true,
                ..
            })
        ),
        "{result:?}"
    );
    assert!(computers.list().is_empty());
}

#[tokio::test]
async fn a_relay_without_contacts_refuses_the_registration_with_404() {
    let harness = Harness::start().await.unwrap();
    let identity = PhoneIdentity::generate(&mut OsRng).unwrap();
    let loopback = cable_e2e::loopback_connector().unwrap();
    let err = register_for_contacts(
        &identity,
        &loopback,
        harness.relay_url(),
        "http://127.0.0.1:9/push/x",
        deadline(),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(
            err,
            cable_phone::PushError::Register(
                cable_transport::TransportError::RegistrationRefused { status: 404, .. }
            )
        ),
        "{err:?}"
    );
    assert_eq!(identity.contact_id(), None);
}

#[tokio::test]
async fn an_https_only_relay_says_why_it_refuses_a_plain_endpoint() {
    let keys = ContactKeys::parse(&ContactKeys::generate_line(1, &mut OsRng)).unwrap();
    let harness = Harness::start_with({
        let mut config = RelayConfig::default();
        config.contact = Some(ContactConfig::new(keys, VapidKey::generate()));
        config
    })
    .await
    .unwrap();
    let identity = PhoneIdentity::generate(&mut OsRng).unwrap();
    let loopback = cable_e2e::loopback_connector().unwrap();
    let err = register_for_contacts(
        &identity,
        &loopback,
        harness.relay_url(),
        "http://127.0.0.1:9/push/x",
        deadline(),
    )
    .await
    .unwrap_err();
    let cable_phone::PushError::Register(cable_transport::TransportError::RegistrationRefused {
        status: 400,
        reason,
    }) = &err
    else {
        panic!("{err:?}");
    };
    assert!(!reason.is_empty(), "{err:?}");
}
