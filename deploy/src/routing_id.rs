//! The 3-byte routing id as it appears in `/cable/connect/<routing id>/…` paths.

use std::fmt;

/// A relay instance's routing id. Paths may carry its hex in either case; configuration
/// files key on the lower-case form and the balancers lower-case the path's copy before
/// looking it up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RoutingId([u8; 3]);

impl RoutingId {
    /// Parses exactly 6 hex digits in either case.
    pub fn from_hex(s: &str) -> Option<Self> {
        let b = s.as_bytes();
        if b.len() != 6 {
            return None;
        }
        let mut out = [0u8; 3];
        for (i, pair) in b.chunks_exact(2).enumerate() {
            out[i] = (nibble(pair[0])? << 4) | nibble(pair[1])?;
        }
        Some(Self(out))
    }

    /// The three bytes.
    pub fn bytes(self) -> [u8; 3] {
        self.0
    }

    /// Lower-case hex, the form used as a map key.
    pub fn to_lower_hex(self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Upper-case hex, the form Chromium puts in `connect` URLs.
    pub fn to_upper_hex(self) -> String {
        self.0.iter().map(|b| format!("{b:02X}")).collect()
    }
}

impl fmt::Display for RoutingId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_lower_hex())
    }
}

fn nibble(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_either_case() {
        let a = RoutingId::from_hex("0a1B2c").unwrap();
        assert_eq!(a.bytes(), [0x0a, 0x1b, 0x2c]);
        assert_eq!(a.to_lower_hex(), "0a1b2c");
        assert_eq!(a.to_upper_hex(), "0A1B2C");
    }

    #[test]
    fn rejects_bad_hex() {
        for bad in ["", "0a1b2", "0a1b2c3", "0a1b2g", "+a1b2c", "0a 1b2", "ÿÿÿ"] {
            assert_eq!(RoutingId::from_hex(bad), None, "{bad:?}");
        }
    }
}
