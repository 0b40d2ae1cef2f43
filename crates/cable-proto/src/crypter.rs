//! The transport cipher used after the handshake ("Crypter").
//!
//! Each message is padded (zeros then a count byte, to a multiple of 32) and
//! sealed with AES-256-GCM under the direction's key, nonce
//! `8 zero bytes ‖ u32 big-endian counter`, empty associated data. Read and
//! write counters are separate and capped at 2^24 − 1, as in Chromium.
//!
//! For counters below 2^32 this is exactly Noise's transport `CipherState`,
//! but snow's transport state caps messages at Noise's 65535 bytes while
//! caBLE frames may be up to 1 MiB, so the keys from the handshake's split
//! drive the RustCrypto AES-GCM implementation directly.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};

use crate::error::{Error, Result};

/// Padding granularity of transport plaintexts.
pub const PADDING_GRANULARITY: usize = 32;
/// Highest message counter Chromium accepts per direction.
pub const MAX_SEQUENCE: u32 = (1 << 24) - 1;
/// AES-GCM tag length.
pub const TAG_LEN: usize = 16;

/// Pads a plaintext: `m ‖ zeros ‖ count`, total a multiple of 32.
pub fn pad(plaintext: &[u8]) -> Vec<u8> {
    let padded_len = (plaintext.len() + 1).div_ceil(PADDING_GRANULARITY) * PADDING_GRANULARITY;
    let zeros = padded_len - plaintext.len() - 1;
    let mut out = Vec::with_capacity(padded_len + TAG_LEN);
    out.extend_from_slice(plaintext);
    out.resize(padded_len - 1, 0);
    // zeros < 32, so it fits in a byte.
    out.push(zeros as u8);
    out
}

/// Strips padding using only the trailing count byte. Neither the zero
/// bytes nor 32-alignment are checked: some peers pad differently.
pub fn unpad(padded: &[u8]) -> Result<&[u8]> {
    let (&count, _) = padded.split_last().ok_or(Error::EmptyPlaintext)?;
    let strip = usize::from(count) + 1;
    if strip > padded.len() {
        return Err(Error::BadPadding {
            count,
            len: padded.len(),
        });
    }
    Ok(&padded[..padded.len() - strip])
}

fn nonce(counter: u32) -> [u8; 12] {
    let mut n = [0u8; 12];
    n[8..].copy_from_slice(&counter.to_be_bytes());
    n
}

fn legacy_nonce(counter: u32) -> [u8; 12] {
    let mut n = [0u8; 12];
    n[..4].copy_from_slice(&counter.to_le_bytes());
    n
}

/// Associated data of the legacy construction.
const LEGACY_AD: &[u8] = &[2];

/// Encrypts and decrypts transport messages for one side of a session.
pub struct Crypter {
    read: Aes256Gcm,
    write: Aes256Gcm,
    read_sequence: u32,
    write_sequence: u32,
    legacy: bool,
}

impl core::fmt::Debug for Crypter {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Crypter")
            .field("read_sequence", &self.read_sequence)
            .field("write_sequence", &self.write_sequence)
            .field("legacy", &self.legacy)
            .finish_non_exhaustive()
    }
}

impl Crypter {
    /// A crypter from raw direction keys. The desktop (initiator) reads with
    /// `k2` and writes with `k1`; the phone the other way round.
    pub fn new(read_key: &[u8; 32], write_key: &[u8; 32]) -> Crypter {
        Crypter {
            read: Aes256Gcm::new(read_key.into()),
            write: Aes256Gcm::new(write_key.into()),
            read_sequence: 0,
            write_sequence: 0,
            legacy: false,
        }
    }

    /// Pads and encrypts one message. An empty plaintext is allowed (it
    /// becomes 32 bytes of padding).
    pub fn encrypt(&mut self, plaintext: &[u8]) -> Result<Vec<u8>> {
        if self.write_sequence > MAX_SEQUENCE {
            return Err(Error::CounterExhausted);
        }
        let padded = zeroize::Zeroizing::new(pad(plaintext));
        let (nonce, aad) = self.nonce_and_aad(self.write_sequence);
        let ciphertext = self
            .write
            .encrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: padded.as_slice(),
                    aad,
                },
            )
            .map_err(|_| Error::EncryptFailed)?;
        self.write_sequence += 1;
        Ok(ciphertext)
    }

    /// Decrypts and unpads one message. The read counter advances only on
    /// success, so a forged message does not desynchronise the session.
    pub fn decrypt(&mut self, ciphertext: &[u8]) -> Result<Vec<u8>> {
        let (nonce, aad) = self.nonce_and_aad(self.read_sequence);
        self.open(ciphertext, nonce, aad)
    }

    /// For the first message of a session (the phone's post-handshake
    /// message): like [`Crypter::decrypt`], but if it does not authenticate
    /// it is retried with the legacy construction of old Chromium phones
    /// (counter little-endian in the first four nonce bytes, associated data
    /// `02`). If that works, this crypter uses the legacy construction for
    /// the rest of the session in both directions, and `true` is returned.
    pub fn decrypt_first_accepting_legacy(&mut self, ciphertext: &[u8]) -> Result<(Vec<u8>, bool)> {
        if self.read_sequence != 0 || self.legacy {
            return self.decrypt(ciphertext).map(|p| (p, self.legacy));
        }
        match self.decrypt(ciphertext) {
            Err(Error::DecryptFailed) => {
                let plaintext = self.open(ciphertext, legacy_nonce(0), LEGACY_AD)?;
                self.legacy = true;
                Ok((plaintext, true))
            }
            other => other.map(|p| (p, false)),
        }
    }

    /// Whether the legacy construction is in use.
    pub fn is_legacy(&self) -> bool {
        self.legacy
    }

    fn nonce_and_aad(&self, counter: u32) -> ([u8; 12], &'static [u8]) {
        if self.legacy {
            (legacy_nonce(counter), LEGACY_AD)
        } else {
            (nonce(counter), &[])
        }
    }

    fn open(&mut self, ciphertext: &[u8], nonce: [u8; 12], aad: &[u8]) -> Result<Vec<u8>> {
        if self.read_sequence > MAX_SEQUENCE {
            return Err(Error::CounterExhausted);
        }
        if ciphertext.len() < TAG_LEN {
            return Err(Error::CiphertextTooShort {
                len: ciphertext.len(),
            });
        }
        let padded = zeroize::Zeroizing::new(
            self.read
                .decrypt(
                    &Nonce::from(nonce),
                    Payload {
                        msg: ciphertext,
                        aad,
                    },
                )
                .map_err(|_| Error::DecryptFailed)?,
        );
        self.read_sequence += 1;
        Ok(unpad(&padded)?.to_vec())
    }

    /// Messages decrypted so far.
    pub fn read_sequence(&self) -> u32 {
        self.read_sequence
    }

    /// Messages encrypted so far.
    pub fn write_sequence(&self) -> u32 {
        self.write_sequence
    }

    #[cfg(test)]
    pub(crate) fn set_sequences_for_test(&mut self, read: u32, write: u32) {
        self.read_sequence = read;
        self.write_sequence = write;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn pair() -> (Crypter, Crypter) {
        let (k1, k2) = ([1u8; 32], [2u8; 32]);
        (Crypter::new(&k2, &k1), Crypter::new(&k1, &k2))
    }

    #[test]
    fn padding_sizes() {
        assert_eq!(pad(b"").len(), 32);
        assert_eq!(pad(&[1; 31]).len(), 32);
        assert_eq!(pad(&[1; 32]).len(), 64);
        assert_eq!(*pad(b"").last().unwrap(), 31);
        assert_eq!(*pad(&[1; 31]).last().unwrap(), 0);
    }

    #[test]
    fn unpad_trusts_only_the_last_byte() {
        // 17 bytes: payload 16 + count 0, not 32-aligned (libwebauthn-style frames).
        let mut m = vec![7u8; 16];
        m.push(0);
        assert_eq!(unpad(&m).unwrap(), &[7u8; 16][..]);
        assert_eq!(unpad(&[5, 5, 1]).unwrap(), &[5][..]);
        assert_eq!(unpad(&[0]).unwrap(), &[] as &[u8]);
        assert_eq!(unpad(&[5, 2]), Err(Error::BadPadding { count: 2, len: 2 }));
        assert_eq!(unpad(&[]), Err(Error::EmptyPlaintext));
    }

    #[test]
    fn counters_are_separate_and_advance_on_success_only() {
        let (mut desktop, mut phone) = pair();
        let c0 = desktop.encrypt(b"one").unwrap();
        let c1 = desktop.encrypt(b"two").unwrap();
        assert_eq!(c0.len(), 48);
        assert_eq!(phone.decrypt(&c1), Err(Error::DecryptFailed));
        assert_eq!(phone.read_sequence(), 0);
        assert_eq!(phone.decrypt(&c0).unwrap(), b"one");
        assert_eq!(phone.decrypt(&c1).unwrap(), b"two");
        assert_eq!(phone.write_sequence(), 0);
        let r = phone.encrypt(b"reply").unwrap();
        assert_eq!(desktop.decrypt(&r).unwrap(), b"reply");
        assert_eq!(
            phone.decrypt(&[0u8; 15]),
            Err(Error::CiphertextTooShort { len: 15 })
        );
    }

    #[test]
    fn empty_gcm_plaintext_is_an_error() {
        let (desktop, mut phone) = pair();
        // Seal an empty plaintext directly, bypassing padding.
        let raw = desktop
            .write
            .encrypt(&Nonce::from(nonce(0)), &[][..])
            .unwrap();
        assert_eq!(phone.decrypt(&raw), Err(Error::EmptyPlaintext));
    }

    #[test]
    fn accepts_frames_padded_before_the_type_byte() {
        // Some peers pad the CBOR and then prepend the type byte, giving
        // 32k + 1 plaintext bytes; only the trailing count byte matters.
        let (desktop, mut phone) = pair();
        let cbor = [0xa1, 0x01, 0x02];
        let mut frame = vec![1u8];
        frame.extend_from_slice(&pad(&cbor));
        assert_eq!(frame.len(), 33);
        let sealed = desktop
            .write
            .encrypt(&Nonce::from(nonce(0)), frame.as_slice())
            .unwrap();
        assert_eq!(sealed.len(), 49);
        assert_eq!(phone.decrypt(&sealed).unwrap(), vec![1, 0xa1, 0x01, 0x02]);
    }

    #[test]
    fn counter_cap() {
        let (mut desktop, mut phone) = pair();
        desktop.set_sequences_for_test(0, MAX_SEQUENCE);
        phone.set_sequences_for_test(MAX_SEQUENCE, 0);
        let last = desktop.encrypt(b"x").unwrap();
        assert_eq!(phone.decrypt(&last).unwrap(), b"x");
        assert_eq!(desktop.encrypt(b"y"), Err(Error::CounterExhausted));
        assert_eq!(phone.decrypt(&last), Err(Error::CounterExhausted));
    }

    #[test]
    fn legacy_first_message() {
        let (_, mut phone) = pair();
        let legacy = Aes256Gcm::new(&[1u8; 32].into())
            .encrypt(
                &Nonce::from(legacy_nonce(0)),
                Payload {
                    msg: &pad(b"old"),
                    aad: LEGACY_AD,
                },
            )
            .unwrap();
        assert_eq!(
            phone.decrypt_first_accepting_legacy(&legacy).unwrap(),
            (b"old".to_vec(), true)
        );
        assert_eq!(phone.read_sequence(), 1);
        assert!(phone.is_legacy());
        // Replies now use the legacy construction too.
        let reply = phone.encrypt(b"r").unwrap();
        let mut desktop_legacy = Crypter::new(&[2u8; 32], &[1u8; 32]);
        desktop_legacy.legacy = true;
        assert_eq!(desktop_legacy.decrypt(&reply).unwrap(), b"r");
        // A current-construction first message is not mistaken for legacy.
        let (mut d, mut p) = pair();
        let c = d.encrypt(b"new").unwrap();
        assert_eq!(
            p.decrypt_first_accepting_legacy(&c).unwrap(),
            (b"new".to_vec(), false)
        );
        assert!(!p.is_legacy());
    }
}
