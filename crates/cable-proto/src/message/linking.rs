//! Linking data ("pairing"): what a phone gives a desktop so that later
//! transactions can start without a QR code, and the update message that
//! carries it.
//!
//! | key | type | content |
//! |---|---|---|
//! | 1 | bstr | contact id (opaque, e.g. a push token) |
//! | 2 | bstr | link id (8 bytes from Chrome) |
//! | 3 | bstr (32) | link secret |
//! | 4 | bstr (65) | phone identity public key, uncompressed |
//! | 5 | tstr | authenticator name |
//! | 6 | bstr (32) | HMAC-SHA256(ECDH_x(identity, QR key), handshake hash) |
//! | 999 | bool | set by Google Play Services' newer implementation |

use std::collections::BTreeMap;

use hmac::{Hmac, Mac};
use p256::{PublicKey, SecretKey};
use sha2::Sha256;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use super::req_bytes;
use crate::cbor::{self, map_get, Value};
use crate::derive::{derive_32, DerivedValueType, EidKey, Psk};
use crate::error::{Error, Result};
use crate::handshake::HASH_LEN;
use crate::keys;
use crate::qr::QrKey;
use crate::secret::secret_bytes;

const CONTEXT: &str = "linking info";

/// Update plaintexts are padded so the ciphertext is always this + 16 bytes.
pub const UPDATE_PADDING_TARGET: usize = 512;

secret_bytes!(
    /// The 32-byte link secret shared by a linked desktop and phone.
    LinkSecret,
    32
);

impl LinkSecret {
    /// The advert key for a state-assisted session: `Derive(link_secret, client_nonce, 1, 64)`.
    pub fn eid_key(&self, client_nonce: &[u8; 16]) -> EidKey {
        EidKey::derive(self.as_bytes(), client_nonce)
    }

    /// The Noise PSK: `Derive(link_secret, eid_plaintext, 3, 32)`.
    pub fn psk(&self, eid_plaintext: &[u8; 16]) -> Psk {
        Psk::derive(self.as_bytes(), eid_plaintext)
    }

    /// How Chrome-as-phone makes a link secret from its root secret:
    /// `Derive(Derive(root, contact_id, 6, 32), link_id, 4, 32)`, so that
    /// rotating the contact id invalidates every link. Phones may manage
    /// link secrets any other way.
    pub fn derive_chrome_style(
        root_secret: &[u8],
        contact_id: &[u8],
        link_id: &[u8],
    ) -> LinkSecret {
        let per_contact = derive_32(
            root_secret,
            contact_id,
            DerivedValueType::PerContactIdSecret,
        );
        LinkSecret::from_bytes(*derive_32(
            &per_contact[..],
            link_id,
            DerivedValueType::PairedSecret,
        ))
    }
}

/// `HMAC-SHA256(key = ECDH_x(private, peer), message = handshake_hash)`.
///
/// The phone signs with its identity private key and the QR public key; the
/// desktop recomputes it with the QR private key and the identity public key.
pub fn linking_signature(
    private: &SecretKey,
    peer: &PublicKey,
    handshake_hash: &[u8; HASH_LEN],
) -> [u8; 32] {
    let key = keys::ecdh_x(private, peer);
    let mut mac = match <Hmac<Sha256> as Mac>::new_from_slice(&key[..]) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC takes any key length"),
    };
    mac.update(handshake_hash);
    mac.finalize().into_bytes().into()
}

/// Linking data sent by a phone.
#[derive(Clone, PartialEq, Eq)]
pub struct LinkingInfo {
    /// Key 1: opaque id the tunnel server uses to reach the phone.
    pub contact_id: Vec<u8>,
    /// Key 2: identifies this link to the phone.
    pub link_id: Vec<u8>,
    /// Key 3: the link secret.
    pub link_secret: LinkSecret,
    /// Key 4: the phone's long-term identity key (NKpsk0 responder static key).
    pub identity_public_key: PublicKey,
    /// Key 5: a name to show the user.
    pub name: String,
    /// Key 6: the handshake signature.
    pub signature: [u8; 32],
    /// Key 999.
    pub from_new_implementation: bool,
}

impl core::fmt::Debug for LinkingInfo {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("LinkingInfo")
            .field("contact_id", &hex::encode(&self.contact_id))
            .field("link_id", &hex::encode(&self.link_id))
            .field("link_secret", &self.link_secret)
            .field(
                "identity_public_key",
                &hex::encode(keys::compressed(&self.identity_public_key)),
            )
            .field("name", &self.name)
            .field("from_new_implementation", &self.from_new_implementation)
            .finish_non_exhaustive()
    }
}

impl LinkingInfo {
    /// Linking data signed for this session (phone side).
    pub fn new_signed(
        contact_id: Vec<u8>,
        link_id: Vec<u8>,
        link_secret: LinkSecret,
        identity: &SecretKey,
        name: String,
        qr_public_key: &PublicKey,
        handshake_hash: &[u8; HASH_LEN],
    ) -> LinkingInfo {
        LinkingInfo {
            contact_id,
            link_id,
            link_secret,
            identity_public_key: identity.public_key(),
            name,
            signature: linking_signature(identity, qr_public_key, handshake_hash),
            from_new_implementation: false,
        }
    }

    /// Checks the signature against this session (desktop side, QR flow
    /// only: state-assisted sessions have no QR key to verify with).
    pub fn verify(&self, qr_key: &QrKey, handshake_hash: &[u8; HASH_LEN]) -> Result<()> {
        let expected = linking_signature(
            qr_key.private_key(),
            &self.identity_public_key,
            handshake_hash,
        );
        if bool::from(expected.ct_eq(&self.signature)) {
            Ok(())
        } else {
            Err(Error::BadLinkingSignature)
        }
    }

    /// The CBOR map. It holds a copy of the link secret (key 3), so it comes wiped on drop;
    /// whatever is encoded from it holds the secret too and is the caller's to wipe.
    pub fn to_value(&self) -> Zeroizing<Value> {
        let mut entries = vec![
            (Value::Unsigned(1), Value::Bytes(self.contact_id.clone())),
            (Value::Unsigned(2), Value::Bytes(self.link_id.clone())),
            (
                Value::Unsigned(3),
                Value::Bytes(self.link_secret.as_bytes().to_vec()),
            ),
            (
                Value::Unsigned(4),
                Value::Bytes(keys::uncompressed(&self.identity_public_key).to_vec()),
            ),
            (Value::Unsigned(5), Value::Text(self.name.clone())),
            (Value::Unsigned(6), Value::Bytes(self.signature.to_vec())),
        ];
        if self.from_new_implementation {
            entries.push((Value::Unsigned(999), Value::Bool(true)));
        }
        Zeroizing::new(Value::map(entries))
    }

    /// Parses the CBOR map. Unknown keys are ignored.
    pub fn from_value(value: &Value) -> Result<LinkingInfo> {
        let map = value.as_map().ok_or(Error::NotAMap { context: CONTEXT })?;
        let bad = |key, problem| Error::BadField {
            context: CONTEXT,
            key,
            problem,
        };
        let contact_id = req_bytes(map, 1, CONTEXT)?.to_vec();
        let link_id = req_bytes(map, 2, CONTEXT)?.to_vec();
        let link_secret = LinkSecret::from_slice(req_bytes(map, 3, CONTEXT)?)
            .ok_or(bad(3, "must be 32 bytes"))?;
        let public = req_bytes(map, 4, CONTEXT)?;
        if public.len() != keys::UNCOMPRESSED_LEN {
            return Err(bad(4, "must be a 65-byte uncompressed point"));
        }
        let identity_public_key =
            keys::public_key_from_sec1(public).map_err(|_| bad(4, "is not a P-256 point"))?;
        let name = map_get(map, 5)
            .ok_or(bad(5, "is missing"))?
            .as_text()
            .ok_or(bad(5, "must be a text string"))?
            .to_owned();
        let signature = <[u8; 32]>::try_from(req_bytes(map, 6, CONTEXT)?)
            .map_err(|_| bad(6, "must be 32 bytes"))?;
        let from_new_implementation = match map_get(map, 999) {
            None => false,
            Some(v) => v.as_bool().ok_or(bad(999, "must be a boolean"))?,
        };
        Ok(LinkingInfo {
            contact_id,
            link_id,
            link_secret,
            identity_public_key,
            name,
            signature,
            from_new_implementation,
        })
    }
}

/// An update message (type 2): a CBOR map whose key 1, if present, is
/// linking data. Key 0 is padding and is ignored.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UpdateMessage {
    /// The linking data, if the phone offers it.
    pub linking: Option<LinkingInfo>,
}

impl UpdateMessage {
    /// The framed plaintext `02 ‖ CBOR{0: zeros, [1: linking]}`, padded as
    /// Chrome does so that, once encrypted, it is always 528 bytes whether or
    /// not linking data is present (as long as the linking data is under
    /// about 470 bytes; larger data is sent unpadded).
    ///
    /// With linking data the plaintext holds the link secret: wipe it once encrypted.
    pub fn encode(&self) -> Vec<u8> {
        // Aim 16 bytes short of the target and let the crypter pad the rest:
        // the type byte, the map header, key 0 and a 3-byte byte-string header
        // are the fixed overhead.
        let mut padding = UPDATE_PADDING_TARGET - 16 - 1 - 3;
        let mut linking = self.linking.as_ref().map(LinkingInfo::to_value);
        if let Some(l) = &linking {
            // Map header and key 1 are one byte each.
            let measured = 2 + Zeroizing::new(l.to_bytes()).len();
            padding = padding.saturating_sub(measured);
        }
        let mut entries = vec![(Value::Unsigned(0), Value::Bytes(vec![0u8; padding]))];
        if let Some(l) = &mut linking {
            entries.push((Value::Unsigned(1), l.take()));
        }
        let mut out = vec![super::MessageType::Update as u8];
        Zeroizing::new(Value::map(entries)).encode_into(&mut out);
        out
    }

    /// Parses the payload after the type byte.
    pub fn decode_payload(payload: &[u8]) -> Result<UpdateMessage> {
        let value = cbor::decode(payload)?;
        let map: &BTreeMap<Value, Value> = value.as_map().ok_or(Error::NotAMap {
            context: "update message",
        })?;
        // Key 0 is padding and is ignored whatever it holds.
        let linking = map_get(map, 1).map(LinkingInfo::from_value).transpose()?;
        Ok(UpdateMessage { linking })
    }
}
