//! Key derivation: `Derive(secret, salt, type, L)` = HKDF-SHA256 with the
//! type as a 4-byte little-endian `info`.
//!
//! One secret (the QR secret, or a link secret) feeds every key of a session;
//! the type keeps the outputs independent.

use hkdf::Hkdf;
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::ids::TunnelId;
use crate::secret::secret_bytes;

/// The purpose of a derived value; its number is the HKDF `info`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum DerivedValueType {
    /// 64 bytes: AES-256 key ‖ HMAC-SHA256 key for the BLE advert.
    EidKey = 1,
    /// 16 bytes: the tunnel id (QR flow).
    TunnelId = 2,
    /// 32 bytes: the Noise pre-shared key, salted with the EID plaintext.
    Psk = 3,
    /// 32 bytes: a phone's per-link secret (phone-internal).
    PairedSecret = 4,
    /// 32 bytes: seed of a phone's long-term identity key (phone-internal).
    IdentityKeySeed = 5,
    /// 32 bytes: per-contact-id intermediate secret (phone-internal).
    PerContactIdSecret = 6,
}

/// Fills `out` with `HKDF-SHA256(ikm = secret, salt, info = ty as u32 LE)`.
///
/// An empty salt is the RFC 5869 default (32 zero bytes).
pub fn derive(secret: &[u8], salt: &[u8], ty: DerivedValueType, out: &mut [u8]) -> Result<()> {
    let salt = if salt.is_empty() { None } else { Some(salt) };
    Hkdf::<Sha256>::new(salt, secret)
        .expand(&(ty as u32).to_le_bytes(), out)
        .map_err(|_| Error::DeriveLength { len: out.len() })
}

/// [`derive`] for this module's fixed lengths, straight into the buffer that keeps the
/// value, so that no unwiped copy is left behind.
fn derive_into(secret: &[u8], salt: &[u8], ty: DerivedValueType, out: &mut [u8]) {
    // The lengths are this module's constants (at most 64), far below HKDF's 8160-byte limit.
    if derive(secret, salt, ty, out).is_err() {
        unreachable!("HKDF output of {} bytes is within the limit", out.len());
    }
}

fn derive_fixed<const N: usize>(
    secret: &[u8],
    salt: &[u8],
    ty: DerivedValueType,
) -> Zeroizing<[u8; N]> {
    let mut out = Zeroizing::new([0u8; N]);
    derive_into(secret, salt, ty, &mut out[..]);
    out
}

secret_bytes!(
    /// The 64-byte advert key: bytes 0..32 AES-256, bytes 32..64 HMAC-SHA256.
    EidKey,
    64
);

secret_bytes!(
    /// The 32-byte Noise pre-shared key.
    Psk,
    32
);

impl EidKey {
    /// `Derive(secret, salt, 1, 64)`: QR flow: QR secret and empty salt;
    /// state-assisted flow: link secret and the client nonce.
    pub fn derive(secret: &[u8], salt: &[u8]) -> EidKey {
        let mut key = EidKey([0; 64]);
        derive_into(secret, salt, DerivedValueType::EidKey, &mut key.0);
        key
    }

    pub(crate) fn aes_key(&self) -> Zeroizing<[u8; 32]> {
        let mut k = Zeroizing::new([0u8; 32]);
        k.copy_from_slice(&self.0[..32]);
        k
    }

    pub(crate) fn hmac_key(&self) -> &[u8] {
        &self.0[32..]
    }
}

impl Psk {
    /// `Derive(secret, eid_plaintext, 3, 32)` with the QR or link secret.
    pub fn derive(secret: &[u8], eid_plaintext: &[u8; 16]) -> Psk {
        let mut psk = Psk([0; 32]);
        derive_into(secret, eid_plaintext, DerivedValueType::Psk, &mut psk.0);
        psk
    }
}

impl TunnelId {
    /// `Derive(qr_secret, empty, 2, 16)`: the tunnel id of a QR session.
    pub fn derive(qr_secret: &[u8]) -> TunnelId {
        TunnelId::from_bytes(*derive_fixed(qr_secret, &[], DerivedValueType::TunnelId))
    }
}

/// `Derive(secret, salt, ty, 32)` for the phone-internal 32-byte values (types 4..6).
///
/// The value is a secret and is wiped when the returned buffer is dropped; copy it only into
/// something that wipes itself too.
pub fn derive_32(secret: &[u8], salt: &[u8], ty: DerivedValueType) -> Zeroizing<[u8; 32]> {
    derive_fixed(secret, salt, ty)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn info_is_little_endian_type() {
        let mut a = [0u8; 32];
        derive(b"s", b"", DerivedValueType::Psk, &mut a).unwrap();
        let expected = {
            let mut o = [0u8; 32];
            Hkdf::<Sha256>::new(None, b"s")
                .expand(&[3, 0, 0, 0], &mut o)
                .unwrap();
            o
        };
        assert_eq!(a, expected);
        let mut too_long = vec![0u8; 255 * 32 + 1];
        assert_eq!(
            derive(b"s", b"", DerivedValueType::Psk, &mut too_long),
            Err(Error::DeriveLength { len: 8161 })
        );
    }

    #[test]
    fn secrets_are_redacted() {
        let k = Psk::from_bytes([7; 32]);
        assert_eq!(format!("{k:?}"), "Psk(<redacted>)");
    }
}
