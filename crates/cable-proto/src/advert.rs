//! The BLE advert: a 16-byte EID, AES-256 encrypted (one ECB block) and
//! tagged with 4 bytes of HMAC-SHA256, sent as 20 bytes of service data.
//!
//! EID plaintext layout: `00 ‖ nonce (10) ‖ routing id (3) ‖ domain id (u16 LE)`.
//! In the state-assisted flow Chrome sends 16 random bytes with byte 0 zeroed;
//! the decryptor applies the same checks either way, as Chromium does.

use aes::cipher::{BlockDecrypt, BlockEncrypt, KeyInit};
use aes::Aes256;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::derive::EidKey;
use crate::domain::is_known_domain_id;
use crate::error::{Error, Result};
use crate::ids::RoutingId;

/// Length of the encrypted advert (service data).
pub const ADVERT_LEN: usize = 20;
/// Length of the EID plaintext.
pub const EID_LEN: usize = 16;
/// Length of the EID nonce.
pub const NONCE_LEN: usize = 10;

/// The structured EID a phone advertises in the QR flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Eid {
    /// Random per session.
    pub nonce: [u8; NONCE_LEN],
    /// From the tunnel server's `X-caBLE-Routing-ID`.
    pub routing_id: RoutingId,
    /// Encoded tunnel-server domain (see [`crate::domain`]).
    pub domain_id: u16,
}

impl Eid {
    /// An EID with a fresh nonce from `rng`.
    pub fn new(
        rng: &mut impl rand_core::CryptoRngCore,
        routing_id: RoutingId,
        domain_id: u16,
    ) -> Eid {
        let mut nonce = [0u8; NONCE_LEN];
        rng.fill_bytes(&mut nonce);
        Eid {
            nonce,
            routing_id,
            domain_id,
        }
    }

    /// The 16-byte plaintext (the PSK salt).
    pub fn to_bytes(&self) -> [u8; EID_LEN] {
        let mut out = [0u8; EID_LEN];
        out[1..11].copy_from_slice(&self.nonce);
        out[11..14].copy_from_slice(self.routing_id.as_bytes());
        out[14..16].copy_from_slice(&self.domain_id.to_le_bytes());
        out
    }

    /// Reads the fields of a plaintext (the reserved byte is not checked here).
    pub fn from_bytes(plaintext: &[u8; EID_LEN]) -> Eid {
        let mut nonce = [0u8; NONCE_LEN];
        nonce.copy_from_slice(&plaintext[1..11]);
        Eid {
            nonce,
            routing_id: RoutingId::from_bytes([plaintext[11], plaintext[12], plaintext[13]]),
            domain_id: u16::from_le_bytes([plaintext[14], plaintext[15]]),
        }
    }
}

/// A successfully decrypted advert.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DecryptedAdvert {
    /// The 16-byte EID plaintext, needed to derive the PSK.
    pub plaintext: [u8; EID_LEN],
    /// Bytes after the first 20 (CTAP 2.3 peers may append a CBOR suffix).
    pub suffix: Vec<u8>,
}

impl DecryptedAdvert {
    /// The plaintext's fields.
    pub fn eid(&self) -> Eid {
        Eid::from_bytes(&self.plaintext)
    }
}

fn tag(key: &EidKey, block: &[u8]) -> [u8; 4] {
    // HMAC accepts keys of any length, so construction cannot fail.
    let mut mac = match <Hmac<Sha256> as Mac>::new_from_slice(key.hmac_key()) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC takes any key length"),
    };
    mac.update(block);
    let full = mac.finalize().into_bytes();
    [full[0], full[1], full[2], full[3]]
}

/// Encrypts an EID plaintext into the 20-byte advert.
pub fn encrypt_eid(key: &EidKey, plaintext: &[u8; EID_LEN]) -> [u8; ADVERT_LEN] {
    let cipher = Aes256::new(&(*key.aes_key()).into());
    let mut block = aes::Block::from(*plaintext);
    cipher.encrypt_block(&mut block);
    let mut out = [0u8; ADVERT_LEN];
    out[..EID_LEN].copy_from_slice(&block);
    out[EID_LEN..].copy_from_slice(&tag(key, &block));
    out
}

/// Authenticates and decrypts service data of at least 20 bytes; bytes past
/// 20 are returned as the suffix. Checks the tag in constant time, then the
/// reserved byte and the domain id.
pub fn decrypt_advert(key: &EidKey, service_data: &[u8]) -> Result<DecryptedAdvert> {
    if service_data.len() < ADVERT_LEN {
        return Err(Error::AdvertTooShort {
            len: service_data.len(),
        });
    }
    let (block_bytes, rest) = service_data.split_at(EID_LEN);
    let (received_tag, suffix) = rest.split_at(ADVERT_LEN - EID_LEN);
    let expected = tag(key, block_bytes);
    if !bool::from(expected.ct_eq(received_tag)) {
        return Err(Error::AdvertTagMismatch);
    }
    let cipher = Aes256::new(&(*key.aes_key()).into());
    let mut block_array = [0u8; EID_LEN];
    block_array.copy_from_slice(block_bytes);
    let mut block = aes::Block::from(block_array);
    cipher.decrypt_block(&mut block);
    let mut plaintext = [0u8; EID_LEN];
    plaintext.copy_from_slice(&block);
    if plaintext[0] != 0 {
        return Err(Error::AdvertReservedByte {
            value: plaintext[0],
        });
    }
    let domain_id = u16::from_le_bytes([plaintext[14], plaintext[15]]);
    if !is_known_domain_id(domain_id) {
        return Err(Error::AdvertUnknownDomain { id: domain_id });
    }
    Ok(DecryptedAdvert {
        plaintext,
        suffix: suffix.to_vec(),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn key() -> EidKey {
        EidKey::derive(&[1u8; 16], &[])
    }

    #[test]
    fn checks_in_order() {
        let k = key();
        assert_eq!(
            decrypt_advert(&k, &[0u8; 19]),
            Err(Error::AdvertTooShort { len: 19 })
        );
        assert_eq!(
            decrypt_advert(&k, &[0u8; 20]),
            Err(Error::AdvertTagMismatch)
        );

        let mut reserved = [0u8; 16];
        reserved[0] = 1;
        assert_eq!(
            decrypt_advert(&k, &encrypt_eid(&k, &reserved)),
            Err(Error::AdvertReservedByte { value: 1 })
        );

        let eid = Eid {
            nonce: [9; 10],
            routing_id: RoutingId::from_bytes([1, 2, 3]),
            domain_id: 2,
        };
        assert_eq!(
            decrypt_advert(&k, &encrypt_eid(&k, &eid.to_bytes())),
            Err(Error::AdvertUnknownDomain { id: 2 })
        );

        let eid = Eid {
            domain_id: 0x0102,
            ..eid
        };
        let mut advert = encrypt_eid(&k, &eid.to_bytes()).to_vec();
        advert.extend_from_slice(&[0xa1, 0x01, 0x02]);
        let d = decrypt_advert(&k, &advert).unwrap();
        assert_eq!(d.eid(), eid);
        assert_eq!(&d.plaintext[11..], &[1, 2, 3, 2, 1]);
        assert_eq!(d.suffix, vec![0xa1, 0x01, 0x02]);

        advert[19] ^= 1;
        assert_eq!(decrypt_advert(&k, &advert), Err(Error::AdvertTagMismatch));
    }
}
