//! Tunnel and routing identifiers, written as upper-case hex on the wire and
//! accepted in either case.
//!
//! A tunnel id is a capability: whoever knows it can join the tunnel. So
//! [`TunnelId`] has no `Display`, and its `Debug` shows only a short hash
//! ([`TunnelId::short_hash`]); the full hex comes out only through the explicit
//! [`TunnelId::to_hex`], for building URLs. A routing id names a relay
//! instance, is public, and displays as its hex.

use core::fmt;

use sha2::{Digest, Sha256};

use crate::error::{Error, HexIdErrorKind, Result};

/// Decodes exactly `2 * N` hex characters (either case); the error says whether the
/// length or which character was wrong.
fn decode_hex<const N: usize>(text: &str) -> core::result::Result<[u8; N], HexIdErrorKind> {
    let bytes = text.as_bytes();
    if bytes.len() != 2 * N {
        return Err(HexIdErrorKind::Length {
            expected: 2 * N,
            got: bytes.len(),
        });
    }
    let mut out = [0u8; N];
    for (i, (slot, pair)) in out.iter_mut().zip(bytes.chunks_exact(2)).enumerate() {
        let nibble = |j: usize| {
            let c = pair[j];
            char::from(c)
                .to_digit(16)
                .map(|d| d as u8)
                .ok_or(HexIdErrorKind::Char {
                    position: 2 * i + j,
                })
        };
        *slot = (nibble(0)? << 4) | nibble(1)?;
    }
    Ok(out)
}

macro_rules! hex_id {
    ($(#[$meta:meta])* $name:ident, $len:expr, $what:expr) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name([u8; $len]);

        impl $name {
            /// Length in bytes.
            pub const LEN: usize = $len;

            /// What the id is called in error messages.
            pub const WHAT: &'static str = $what;

            /// Wraps raw bytes.
            pub const fn from_bytes(bytes: [u8; $len]) -> Self {
                Self(bytes)
            }

            /// The raw bytes.
            pub fn as_bytes(&self) -> &[u8; $len] {
                &self.0
            }

            /// Parses hex of exactly `2 * LEN` characters, either case.
            pub fn from_hex(text: &str) -> Result<Self> {
                Self::decode(text).map_err(|kind| Error::BadHexId {
                    what: $what,
                    kind,
                })
            }

            /// [`Self::from_hex`] with just the reason, for callers that say which
            /// part of a larger input was wrong.
            pub(crate) fn decode(text: &str) -> core::result::Result<Self, HexIdErrorKind> {
                decode_hex::<$len>(text).map(Self)
            }

            /// Upper-case hex, as Chromium sends it.
            pub fn to_hex(&self) -> String {
                hex::encode_upper(self.0)
            }
        }

        impl core::str::FromStr for $name {
            type Err = Error;
            fn from_str(s: &str) -> Result<Self> {
                Self::from_hex(s)
            }
        }
    };
}

hex_id!(
    /// The 16-byte tunnel id (`/cable/new/<TUNNEL_ID>`), derived from the QR secret.
    ///
    /// `Debug` shows `TunnelId(<short hash>)`, never the id.
    TunnelId,
    16,
    "tunnel id"
);

hex_id!(
    /// The 3-byte routing id a tunnel server returns in `X-caBLE-Routing-ID`.
    ///
    /// The default is `000000`.
    #[derive(Default)]
    RoutingId,
    3,
    "routing id"
);

impl TunnelId {
    /// A short, non-reversible name for logs: the first 4 bytes of SHA-256(id).
    pub fn short_hash(&self) -> ShortHash {
        let digest = Sha256::digest(self.0);
        ShortHash([digest[0], digest[1], digest[2], digest[3]])
    }
}

impl fmt::Debug for TunnelId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TunnelId({})", self.short_hash())
    }
}

impl fmt::Display for RoutingId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for RoutingId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RoutingId({})", self.to_hex())
    }
}

/// The first 4 bytes of SHA-256 of a tunnel id; displays as 8 lower-case hex characters.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct ShortHash([u8; 4]);

impl ShortHash {
    /// The four bytes.
    pub fn as_bytes(&self) -> &[u8; 4] {
        &self.0
    }
}

impl fmt::Display for ShortHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn hex_either_case_in_upper_out() {
        let r = RoutingId::from_hex("0a0B0c").unwrap();
        assert_eq!(r.to_string(), "0A0B0C");
        assert_eq!(r.as_bytes(), &[10, 11, 12]);
        assert_eq!(RoutingId::default().to_hex(), "000000");
        let upper: TunnelId = "00112233445566778899AABBCCDDEEFF".parse().unwrap();
        let lower: TunnelId = "00112233445566778899aabbccddeeff".parse().unwrap();
        assert_eq!(upper, lower);
        assert_eq!(upper.as_bytes()[15], 0xff);
        assert_eq!(upper.to_hex(), "00112233445566778899AABBCCDDEEFF");
    }

    #[test]
    fn errors_say_what_was_wrong() {
        assert_eq!(
            RoutingId::from_hex("0a0b"),
            Err(Error::BadHexId {
                what: "routing id",
                kind: HexIdErrorKind::Length {
                    expected: 6,
                    got: 4
                }
            })
        );
        assert_eq!(
            TunnelId::from_hex("00112233445566778899AABBCCDDEEFG"),
            Err(Error::BadHexId {
                what: "tunnel id",
                kind: HexIdErrorKind::Char { position: 31 }
            })
        );
        assert_eq!(
            RoutingId::from_hex("+a0b0c").unwrap_err(),
            Error::BadHexId {
                what: "routing id",
                kind: HexIdErrorKind::Char { position: 0 }
            }
        );
        // Multi-byte UTF-8 of the right byte length is refused, not split.
        assert_eq!(
            TunnelId::from_hex("ééééééééééééééé00").unwrap_err(),
            Error::BadHexId {
                what: "tunnel id",
                kind: HexIdErrorKind::Char { position: 0 }
            }
        );
        let shown = TunnelId::from_hex("0011").unwrap_err().to_string();
        assert!(shown.contains("32") && shown.contains('4'), "{shown}");
    }

    #[test]
    fn tunnel_id_debug_shows_only_a_short_hash() {
        let id = TunnelId::from_bytes([0xab; 16]);
        let shown = format!("{id:?}");
        assert!(!shown.to_lowercase().contains("abab"), "{shown}");
        let hash = id.short_hash().to_string();
        assert_eq!(hash.len(), 8);
        assert_eq!(hash, hash.to_lowercase());
        assert_eq!(shown, format!("TunnelId({hash})"));
        // SHA-256 of sixteen 0xab bytes starts with these four bytes.
        let digest = Sha256::digest([0xab; 16]);
        assert_eq!(id.short_hash().as_bytes(), &digest[..4]);
        assert_eq!(
            format!("{:?}", RoutingId::from_bytes([1, 2, 3])),
            "RoutingId(010203)"
        );
    }
}
