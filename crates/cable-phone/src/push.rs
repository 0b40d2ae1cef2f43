//! Being reachable for contacts: the phone's Web Push subscription keys, registering that
//! subscription with a relay for a contact id, and opening the pushes the relay sends.
//!
//! A relay that serves contacts (this project's does) seals the subscription into the
//! contact id, so it needs no database; when a linked computer asks for the phone it sends
//! a Web Push message (RFC 8291 `aes128gcm`) to the subscription's endpoint whose plaintext
//! is the CBOR `{1: routing id, 2: tunnel id, 3: client payload}`
//! ([`cable_proto::push::PushPayload`]). Whatever receives pushes for the phone (a platform
//! push service, or [`PushEndpoint`](crate::PushEndpoint) on a network the relay reaches)
//! hands the body to [`PushKeys::open`], and the [`ContactRequest`] it yields starts a
//! [`PhoneSession::contact`](crate::PhoneSession::contact).
//!
//! The subscription keys and the endpoint's secret path derive from the identity's root
//! secret (HKDF-SHA256 with labels of this project's own: PROTOCOL.md defines none for
//! push), so they survive restarts without more secrets on disk and a registration made
//! yesterday still decrypts today.

use std::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use cable_proto::keys;
use cable_proto::message::ClientPayload;
use cable_proto::push::PushPayload;
use cable_transport::{Connector, RelayUrl, TransportError};
use hkdf::Hkdf;
use p256::{PublicKey, SecretKey};
use serde_json::json;
use sha2::Sha256;
use tokio::time::Instant;
use zeroize::Zeroizing;

use crate::error::IdentityError;
use crate::identity::PhoneIdentity;
use crate::session::ContactRequest;

/// Length of the RFC 8291 authentication secret.
pub const AUTH_LEN: usize = 16;

const KEY_LABEL: &[u8] = b"cable-phone web push p256dh v1";
const AUTH_LABEL: &[u8] = b"cable-phone web push auth v1";
const PATH_LABEL: &[u8] = b"cable-phone web push path v1";

/// A Web Push subscription's private half: the P-256 key (`p256dh`) and the authentication
/// secret (`auth`), plus the unguessable path a [`PushEndpoint`](crate::PushEndpoint) serves
/// it under. Never printed by `Debug`.
#[derive(Clone)]
pub struct PushKeys {
    secret: SecretKey,
    auth: Zeroizing<[u8; AUTH_LEN]>,
    path_token: [u8; 16],
}

impl fmt::Debug for PushKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PushKeys")
            .field(
                "p256dh",
                &URL_SAFE_NO_PAD.encode(keys::uncompressed(&self.public_key())),
            )
            .finish_non_exhaustive()
    }
}

/// Why a push or a registration failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PushError {
    /// The body is not an `aes128gcm` message for this subscription (another key, tampered,
    /// truncated).
    #[error("the push message does not decrypt with this phone's subscription keys")]
    Decrypt,
    /// It decrypted, but is not a contact (`{1: routing id, 2: tunnel id, 3: client
    /// payload}` with a valid client payload).
    #[error("the push message is not a contact")]
    Payload(#[source] cable_proto::Error),
    /// The relay could not be reached or refused the registration.
    #[error("registering with the relay failed")]
    Register(#[source] TransportError),
    /// The endpoint URL cannot be put in a subscription.
    #[error("the push endpoint {0:?} is not an http:// or https:// URL")]
    BadEndpoint(String),
    /// The contact id could not be saved in the identity.
    #[error("the contact id could not be saved")]
    Identity(#[from] IdentityError),
}

impl PushKeys {
    /// The keys of the identity whose root secret is `root`.
    pub(crate) fn derive(root: &[u8]) -> Result<Self, IdentityError> {
        let hkdf = Hkdf::<Sha256>::new(None, root);
        let mut seed = Zeroizing::new([0u8; 32]);
        let mut auth = Zeroizing::new([0u8; AUTH_LEN]);
        let mut path_token = [0u8; 16];
        let bad = |_| IdentityError::BadField {
            field: "root_secret",
        };
        hkdf.expand(KEY_LABEL, &mut seed[..]).map_err(bad)?;
        hkdf.expand(AUTH_LABEL, &mut auth[..]).map_err(bad)?;
        hkdf.expand(PATH_LABEL, &mut path_token).map_err(bad)?;
        let secret =
            keys::derive_private_key_from_seed(&seed[..]).map_err(|_| IdentityError::BadField {
                field: "root_secret",
            })?;
        Ok(Self {
            secret,
            auth,
            path_token,
        })
    }

    /// The subscription's public key (`p256dh`).
    pub fn public_key(&self) -> PublicKey {
        self.secret.public_key()
    }

    /// The path, `/push/<token>`, that a [`PushEndpoint`](crate::PushEndpoint) answers on:
    /// only who holds the subscription can post to it.
    pub fn endpoint_path(&self) -> String {
        format!("/push/{}", URL_SAFE_NO_PAD.encode(self.path_token))
    }

    /// The subscription as browsers serialize `PushSubscription.toJSON()`, for `endpoint`.
    pub fn subscription_json(&self, endpoint: &str) -> Result<String, PushError> {
        let lower = endpoint.to_ascii_lowercase();
        if !(lower.starts_with("https://") || lower.starts_with("http://")) {
            return Err(PushError::BadEndpoint(endpoint.to_owned()));
        }
        Ok(json!({
            "endpoint": endpoint,
            "expirationTime": null,
            "keys": {
                "p256dh": URL_SAFE_NO_PAD.encode(keys::uncompressed(&self.public_key())),
                "auth": URL_SAFE_NO_PAD.encode(&self.auth[..]),
            },
        })
        .to_string())
    }

    /// Decrypts a push body (`Content-Encoding: aes128gcm`) and reads the contact in it.
    pub fn open(&self, body: &[u8]) -> Result<ContactRequest, PushError> {
        let auth = web_push_native::Auth::from(*self.auth);
        let plaintext = Zeroizing::new(
            web_push_native::decrypt(body.to_vec(), &self.secret, &auth)
                .map_err(|_| PushError::Decrypt)?,
        );
        let payload = PushPayload::decode(&plaintext).map_err(PushError::Payload)?;
        Ok(ContactRequest {
            routing_id: payload.routing_id,
            tunnel_id: payload.tunnel_id,
            client_payload: ClientPayload::from_cbor(&payload.client_payload)
                .map_err(PushError::Payload)?,
        })
    }
}

/// Registers `identity`'s subscription for pushes to `endpoint` with `relay`, saves the
/// contact id it gets (new links carry it; old links keep theirs) together with the relay
/// and endpoint, and returns it.
pub async fn register_for_contacts(
    identity: &PhoneIdentity,
    connector: &Connector,
    relay: &RelayUrl,
    endpoint: &str,
    deadline: Instant,
) -> Result<Vec<u8>, PushError> {
    let subscription = identity.push_keys().subscription_json(endpoint)?;
    let contact_id = connector
        .register_push(relay, &subscription, deadline)
        .await
        .map_err(PushError::Register)?;
    identity.set_registration(
        contact_id.clone(),
        crate::identity::Registration {
            relay: relay.to_string(),
            endpoint: endpoint.to_owned(),
        },
    )?;
    Ok(contact_id)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use cable_proto::ids::{RoutingId, TunnelId};
    use cable_proto::qr::RequestHint;

    fn keys() -> PushKeys {
        PushKeys::derive(&[9; 32]).unwrap()
    }

    /// What a relay sends: RFC 8291 encryption to the subscription's public key.
    fn push_to(keys: &PushKeys, plaintext: Vec<u8>) -> Vec<u8> {
        let auth = web_push_native::Auth::from(*keys.auth);
        let request = web_push_native::WebPushBuilder::new(
            "https://push.example/x".parse().unwrap(),
            keys.public_key(),
            auth,
        )
        .build(plaintext)
        .unwrap();
        request.into_body()
    }

    fn contact_plaintext() -> Vec<u8> {
        let client = ClientPayload {
            link_id: vec![1; 8],
            client_nonce: [2; 16],
            hint: RequestHint::GetAssertion,
        };
        PushPayload::new(
            RoutingId::from_bytes([1, 2, 3]),
            TunnelId::from_bytes([4; 16]),
            client.to_cbor(),
        )
        .encode()
    }

    #[test]
    fn keys_follow_from_the_root_secret() {
        let (a, b) = (keys(), keys());
        assert_eq!(a.public_key(), b.public_key());
        assert_eq!(a.endpoint_path(), b.endpoint_path());
        let other = PushKeys::derive(&[8; 32]).unwrap();
        assert_ne!(a.public_key(), other.public_key());
        assert_ne!(a.endpoint_path(), other.endpoint_path());
        assert!(!format!("{a:?}").contains(&URL_SAFE_NO_PAD.encode(&a.auth[..])));
    }

    #[test]
    fn a_pushed_contact_opens() {
        let keys = keys();
        let request = keys.open(&push_to(&keys, contact_plaintext())).unwrap();
        assert_eq!(request.routing_id, RoutingId::from_bytes([1, 2, 3]));
        assert_eq!(request.tunnel_id, TunnelId::from_bytes([4; 16]));
        assert_eq!(request.client_payload.link_id, vec![1; 8]);
    }

    #[test]
    fn foreign_tampered_and_junk_pushes_are_refused() {
        let keys = keys();
        let other = PushKeys::derive(&[8; 32]).unwrap();
        let body = push_to(&other, contact_plaintext());
        assert!(matches!(keys.open(&body), Err(PushError::Decrypt)));
        let mut body = push_to(&keys, contact_plaintext());
        let last = body.len() - 1;
        body[last] ^= 1;
        assert!(matches!(keys.open(&body), Err(PushError::Decrypt)));
        for junk in [&b""[..], &[0; 20], &[0xff; 200]] {
            assert!(matches!(keys.open(junk), Err(PushError::Decrypt)));
        }
        let not_a_contact = push_to(&keys, b"\xa0".to_vec());
        assert!(matches!(
            keys.open(&not_a_contact),
            Err(PushError::Payload(_))
        ));
    }

    #[test]
    fn the_subscription_is_what_browsers_send() {
        let keys = keys();
        let json: serde_json::Value =
            serde_json::from_str(&keys.subscription_json("https://push.example/a").unwrap())
                .unwrap();
        assert_eq!(json["endpoint"], "https://push.example/a");
        let p256dh = URL_SAFE_NO_PAD
            .decode(json["keys"]["p256dh"].as_str().unwrap())
            .unwrap();
        assert_eq!(p256dh.len(), 65);
        assert_eq!(p256dh[0], 4);
        let auth = URL_SAFE_NO_PAD
            .decode(json["keys"]["auth"].as_str().unwrap())
            .unwrap();
        assert_eq!(auth.len(), AUTH_LEN);
        assert!(matches!(
            keys.subscription_json("ftp://x"),
            Err(PushError::BadEndpoint(_))
        ));
    }
}
