//! Tunnel and routing identifiers, written as upper-case hex on the wire and
//! accepted in either case.

use crate::error::{Error, Result};

macro_rules! hex_id {
    ($(#[$meta:meta])* $name:ident, $len:expr, $what:expr) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name([u8; $len]);

        impl $name {
            /// Length in bytes.
            pub const LEN: usize = $len;

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
                let mut out = [0u8; $len];
                hex::decode_to_slice(text, &mut out).map_err(|_| Error::BadHexId {
                    what: $what,
                    expected: 2 * $len,
                    input_len: text.len(),
                })?;
                Ok(Self(out))
            }

            /// Upper-case hex, as Chromium sends it.
            pub fn to_hex(&self) -> String {
                hex::encode_upper(self.0)
            }
        }

        impl core::fmt::Display for $name {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                f.write_str(&self.to_hex())
            }
        }

        impl core::fmt::Debug for $name {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                write!(f, concat!(stringify!($name), "({})"), self.to_hex())
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
    /// The 16-byte tunnel id (`/cable/new/<TUNNEL_ID>`).
    TunnelId,
    16,
    "tunnel id"
);

hex_id!(
    /// The 3-byte routing id a tunnel server returns in `X-caBLE-Routing-ID`.
    RoutingId,
    3,
    "routing id"
);

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn hex_either_case_in_upper_out() {
        let r = RoutingId::from_hex("0a0B0c").unwrap();
        assert_eq!(r.to_string(), "0A0B0C");
        assert_eq!(r.as_bytes(), &[10, 11, 12]);
        assert!(matches!(
            RoutingId::from_hex("0a0b"),
            Err(Error::BadHexId {
                expected: 6,
                input_len: 4,
                ..
            })
        ));
        assert!(RoutingId::from_hex("0a0b0g").is_err());
        assert!("00112233445566778899AABBCCDDEEFF"
            .parse::<TunnelId>()
            .is_ok());
    }
}
