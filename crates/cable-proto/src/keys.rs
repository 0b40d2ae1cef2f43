//! P-256 key helpers: SEC1 encodings, ECDH x-coordinates, and BoringSSL's
//! seed-to-private-key derivation (`EC_KEY_derive_from_secret`), which Chrome
//! uses for its QR key.

use p256::elliptic_curve::ops::Reduce;
use p256::elliptic_curve::sec1::ToEncodedPoint;
use p256::{FieldBytes, PublicKey, Scalar, SecretKey, U256};
use zeroize::Zeroizing;

use crate::error::{Error, Result};

/// Uncompressed SEC1 length (`04 ‖ X ‖ Y`).
pub const UNCOMPRESSED_LEN: usize = 65;
/// Compressed SEC1 length (`02/03 ‖ X`).
pub const COMPRESSED_LEN: usize = 33;

/// Parses a SEC1 public key (compressed or uncompressed); the point must be on the curve.
pub fn public_key_from_sec1(bytes: &[u8]) -> Result<PublicKey> {
    PublicKey::from_sec1_bytes(bytes).map_err(|_| Error::BadPublicKey { len: bytes.len() })
}

/// The 65-byte uncompressed encoding used in Noise and linking data.
pub fn uncompressed(key: &PublicKey) -> [u8; UNCOMPRESSED_LEN] {
    let mut out = [0u8; UNCOMPRESSED_LEN];
    out.copy_from_slice(key.to_encoded_point(false).as_bytes());
    out
}

/// The 33-byte compressed encoding used in the QR code.
pub fn compressed(key: &PublicKey) -> [u8; COMPRESSED_LEN] {
    let mut out = [0u8; COMPRESSED_LEN];
    out.copy_from_slice(key.to_encoded_point(true).as_bytes());
    out
}

/// Parses a 32-byte big-endian private scalar (must be in 1..n).
pub fn secret_key_from_bytes(bytes: &[u8]) -> Result<SecretKey> {
    SecretKey::from_slice(bytes).map_err(|_| Error::BadPrivateKey)
}

/// Draws a private key from the caller's RNG: 32 bytes at a time, read
/// big-endian, until they form a valid scalar (rejection sampling, so the
/// first draw is used with overwhelming probability).
pub fn random_secret_key(rng: &mut impl rand_core::CryptoRngCore) -> SecretKey {
    loop {
        let mut bytes = Zeroizing::new([0u8; 32]);
        rng.fill_bytes(&mut bytes[..]);
        if let Ok(key) = SecretKey::from_slice(&bytes[..]) {
            return key;
        }
    }
}

/// The x-coordinate of `private · public`.
pub fn ecdh_x(private: &SecretKey, public: &PublicKey) -> Zeroizing<[u8; 32]> {
    let shared = p256::ecdh::diffie_hellman(private.to_nonzero_scalar(), public.as_affine());
    let mut out = Zeroizing::new([0u8; 32]);
    out.copy_from_slice(shared.raw_secret_bytes());
    out
}

/// BoringSSL `EC_KEY_derive_from_secret(P-256, seed)`: 48 bytes of
/// HKDF-SHA256(ikm = seed, no salt, info = "derive EC key P-256") read as a
/// big-endian integer and reduced modulo the group order. The 128 extra bits
/// make the bias negligible.
pub fn derive_private_key_from_seed(seed: &[u8]) -> Result<SecretKey> {
    let mut okm = Zeroizing::new([0u8; 48]);
    hkdf::Hkdf::<sha2::Sha256>::new(None, seed)
        .expand(b"derive EC key P-256", &mut okm[..])
        .map_err(|_| Error::DeriveLength { len: 48 })?;
    // value = high · 2^128 + low, with high the first 32 bytes and low the last 16.
    let mut high_bytes = Zeroizing::new([0u8; 32]);
    high_bytes.copy_from_slice(&okm[..32]);
    let high = <Scalar as Reduce<U256>>::reduce_bytes(&FieldBytes::from(*high_bytes));
    let mut low_bytes = Zeroizing::new([0u8; 32]);
    low_bytes[16..].copy_from_slice(&okm[32..]);
    let low = <Scalar as Reduce<U256>>::reduce_bytes(&FieldBytes::from(*low_bytes));
    let two_128 = <Scalar as Reduce<U256>>::reduce(U256::ONE.shl_vartime(128));
    let value = high * two_128 + low;
    let bytes = Zeroizing::new(value.to_bytes());
    SecretKey::from_bytes(&bytes).map_err(|_| Error::DerivedKeyZero)
}

/// How Chrome-as-phone derives its long-term identity key from its root
/// secret: `EC_KEY_derive_from_secret(Derive(root, empty, 5, 32))`.
pub fn identity_key_from_root_secret(root_secret: &[u8]) -> Result<SecretKey> {
    let seed = crate::derive::derive_32(
        root_secret,
        &[],
        crate::derive::DerivedValueType::IdentityKeySeed,
    );
    derive_private_key_from_seed(&seed[..])
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn rejects_invalid_points() {
        let mut bad = [0u8; 33];
        bad[0] = 2;
        bad[1..].fill(0xff);
        assert_eq!(
            public_key_from_sec1(&bad),
            Err(Error::BadPublicKey { len: 33 })
        );
        assert!(public_key_from_sec1(&[]).is_err());
        assert!(secret_key_from_bytes(&[0u8; 32]).is_err());
    }

    #[test]
    fn identity_key_follows_the_seed_chain() {
        let root = [0x77u8; 32];
        let mut seed = [0u8; 32];
        crate::derive::derive(
            &root,
            &[],
            crate::derive::DerivedValueType::IdentityKeySeed,
            &mut seed,
        )
        .unwrap();
        assert_eq!(
            identity_key_from_root_secret(&root).unwrap().to_bytes(),
            derive_private_key_from_seed(&seed).unwrap().to_bytes()
        );
    }
}
