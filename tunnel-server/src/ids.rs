//! Tunnel ids and routing ids: parsing from URL paths (either hex case) and display.

use std::fmt;

use sha2::{Digest, Sha256};

use crate::error::RelayError;

/// A 16-byte tunnel id, as it appears (32 hex characters) in `/cable/new/` and `/cable/connect/`.
///
/// The id is chosen by the phone and derived from the QR secret; it is never logged. Use
/// [`TunnelId::short_hash`] to refer to a tunnel in logs.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TunnelId(pub [u8; 16]);

/// The 3-byte routing id that names one relay instance (6 hex characters).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
pub struct RoutingId(pub [u8; 3]);

impl TunnelId {
    /// Parses 32 hex characters, either case.
    pub fn parse_hex(text: &str) -> Result<Self, RelayError> {
        let mut out = [0u8; 16];
        decode_hex(text, &mut out).map_err(|e| match e {
            HexError::Length => RelayError::TunnelIdLength { len: text.len() },
            HexError::Char(position) => RelayError::BadHex { position },
        })?;
        Ok(Self(out))
    }

    /// A short, non-reversible name for logs: the first 4 bytes of SHA-256(id) in hex.
    pub fn short_hash(&self) -> ShortHash {
        let digest = Sha256::digest(self.0);
        ShortHash([digest[0], digest[1], digest[2], digest[3]])
    }

    /// Upper-case hex, as Chromium sends it.
    pub fn to_hex(&self) -> String {
        encode_hex_upper(&self.0)
    }
}

/// Tunnel ids are capabilities: keep them out of `Debug` output.
impl fmt::Debug for TunnelId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TunnelId({})", self.short_hash())
    }
}

impl RoutingId {
    /// Parses 6 hex characters, either case.
    pub fn parse_hex(text: &str) -> Result<Self, RelayError> {
        let mut out = [0u8; 3];
        decode_hex(text, &mut out).map_err(|e| match e {
            HexError::Length => RelayError::RoutingIdLength { len: text.len() },
            HexError::Char(position) => RelayError::BadHex { position },
        })?;
        Ok(Self(out))
    }

    /// Upper-case hex, as sent in `X-caBLE-Routing-ID`.
    pub fn to_hex(&self) -> String {
        encode_hex_upper(&self.0)
    }
}

impl fmt::Display for RoutingId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl std::str::FromStr for RoutingId {
    type Err = RelayError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse_hex(s)
    }
}

/// First 4 bytes of SHA-256 of a tunnel id, shown as 8 lower-case hex characters.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct ShortHash(pub [u8; 4]);

impl fmt::Display for ShortHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

enum HexError {
    Length,
    Char(usize),
}

fn decode_hex(text: &str, out: &mut [u8]) -> Result<(), HexError> {
    let bytes = text.as_bytes();
    if bytes.len() != out.len() * 2 {
        return Err(HexError::Length);
    }
    for (i, slot) in out.iter_mut().enumerate() {
        let hi = nibble(bytes[2 * i]).ok_or(HexError::Char(2 * i))?;
        let lo = nibble(bytes[2 * i + 1]).ok_or(HexError::Char(2 * i + 1))?;
        *slot = (hi << 4) | lo;
    }
    Ok(())
}

fn nibble(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

fn encode_hex_upper(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789ABCDEF";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 15)] as char);
    }
    s
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn tunnel_id_accepts_both_cases() {
        let upper = TunnelId::parse_hex("00112233445566778899AABBCCDDEEFF").unwrap();
        let lower = TunnelId::parse_hex("00112233445566778899aabbccddeeff").unwrap();
        assert_eq!(upper, lower);
        assert_eq!(upper.0[15], 0xff);
        assert_eq!(upper.to_hex(), "00112233445566778899AABBCCDDEEFF");
    }

    #[test]
    fn tunnel_id_rejects_bad_input() {
        assert!(matches!(
            TunnelId::parse_hex("0011"),
            Err(RelayError::TunnelIdLength { len: 4 })
        ));
        assert!(matches!(
            TunnelId::parse_hex("00112233445566778899AABBCCDDEEFG"),
            Err(RelayError::BadHex { position: 31 })
        ));
        // Multi-byte UTF-8 of the right byte length must not panic.
        assert!(TunnelId::parse_hex("ééééééééééééééé00").is_err());
    }

    #[test]
    fn routing_id_round_trip() {
        let id: RoutingId = "a1B2c3".parse().unwrap();
        assert_eq!(id.0, [0xa1, 0xb2, 0xc3]);
        assert_eq!(id.to_string(), "A1B2C3");
        assert!(matches!(
            RoutingId::parse_hex("a1b2c"),
            Err(RelayError::RoutingIdLength { len: 5 })
        ));
    }

    #[test]
    fn debug_never_shows_the_id() {
        let id = TunnelId([0xab; 16]);
        let shown = format!("{id:?}");
        assert!(!shown.to_lowercase().contains("abab"));
        assert_eq!(id.short_hash().to_string().len(), 8);
    }
}
