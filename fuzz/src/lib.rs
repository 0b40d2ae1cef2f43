//! Support for the fuzz targets: a deterministic RNG (fuzzing must be
//! reproducible) and the QR transcript's keys, so that the seed inputs
//! (taken from the shared vectors) get past authentication and the fuzzer
//! starts from deep states.

use cable_proto::derive::Psk;
use cable_proto::qr::{QrKey, QrSecret, RequestHint};
use rand_core::{CryptoRng, RngCore};

/// Desktop ephemeral private key of the QR transcript.
pub const DESKTOP_EPHEMERAL: [u8; 32] =
    hex32("7ef8db61464bb984b73ddb3ae205d06af8d66647408ccce75856fbe4c2349542");
/// Phone ephemeral private key of the QR transcript.
pub const PHONE_EPHEMERAL: [u8; 32] =
    hex32("6d264925ad9f66f87b2ec6c562c3abeea2f3547fa35022402e6f03cb40a9415f");
/// EID plaintext of the QR transcript (the PSK salt).
pub const EID_PLAINTEXT: [u8; 16] =
    *b"\x00\xa0\xa1\xa2\xa3\xa4\xa5\xa6\xa7\xa8\xa9\x01\x02\x03\x00\x00";

const fn hex32(s: &str) -> [u8; 32] {
    const fn nibble(c: u8) -> u8 {
        match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            _ => panic!("not lower-case hex"),
        }
    }
    let b = s.as_bytes();
    let mut out = [0u8; 32];
    let mut i = 0;
    while i < 32 {
        out[i] = nibble(b[2 * i]) << 4 | nibble(b[2 * i + 1]);
        i += 1;
    }
    out
}

/// Repeats a 32-byte pattern forever. Deterministic on purpose.
#[derive(Debug)]
pub struct PatternRng(pub [u8; 32]);

impl RngCore for PatternRng {
    fn next_u32(&mut self) -> u32 {
        let mut b = [0u8; 4];
        self.fill_bytes(&mut b);
        u32::from_le_bytes(b)
    }
    fn next_u64(&mut self) -> u64 {
        let mut b = [0u8; 8];
        self.fill_bytes(&mut b);
        u64::from_le_bytes(b)
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        for (d, s) in dest.iter_mut().zip(self.0.iter().cycle()) {
            *d = *s;
        }
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}

impl CryptoRng for PatternRng {}

/// The QR key of the shared QR transcript (seed 11…11, secret 00…0f),
/// derived once: a P-256 multiplication per input would slow fuzzing down.
pub fn qr_key() -> &'static QrKey {
    static KEY: std::sync::OnceLock<QrKey> = std::sync::OnceLock::new();
    KEY.get_or_init(derive_qr_key)
}

fn derive_qr_key() -> QrKey {
    let secret =
        QrSecret::from_bytes(*b"\x00\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f");
    match QrKey::from_seed(
        &[0x11; 32],
        secret,
        1_700_000_000,
        RequestHint::GetAssertion,
    ) {
        Ok(key) => key,
        Err(e) => panic!("fixed seed must derive a key: {e}"),
    }
}

/// The QR transcript's PSK.
pub fn psk() -> &'static Psk {
    static PSK: std::sync::OnceLock<Psk> = std::sync::OnceLock::new();
    PSK.get_or_init(|| qr_key().secret().psk(&EID_PLAINTEXT))
}

/// Transport key desktop → phone of the QR transcript.
pub const K1: [u8; 32] = hex32("16778d64f3f091b264908599914ff7ca9105f052a1801fc97e137547c5157952");
/// Transport key phone → desktop of the QR transcript.
pub const K2: [u8; 32] = hex32("446c9f2285f7ef93b0ca3a6afe3a2447d54d045eb5dd9d6b6e0513d9e070900f");
