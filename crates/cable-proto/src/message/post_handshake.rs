//! The phone's first transport message.
//!
//! Revision 1 (current): a bare canonical CBOR map
//! `{1: getInfo response bytes, [2: linking info], 3: ["ctap", …]}`.
//! Revision 0 (old phones): the same map followed by zero padding and a
//! little-endian u16 count of the zeros (total a multiple of 512), or in
//! still older versions a single count byte (multiple of 256).

use super::linking::LinkingInfo;
use super::opt_bytes;
use crate::cbor::{self, map_get, Value};
use crate::error::{Error, Result};
use zeroize::Zeroizing;

const CONTEXT: &str = "post-handshake message";

/// Feature string for CTAP2 messages.
pub const FEATURE_CTAP: &str = "ctap";
/// Feature string for digital-credential (JSON) messages.
pub const FEATURE_DC: &str = "dc";

/// Which post-handshake format the phone used; revision 0 also means later
/// messages carry no type byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProtocolRevision {
    /// Padded map; unframed messages.
    Zero,
    /// Bare map; framed messages.
    One,
}

/// The decoded post-handshake message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostHandshake {
    /// Key 1: the authenticatorGetInfo response (CBOR, no status byte);
    /// present exactly when `"ctap"` is among the features.
    pub get_info: Option<Vec<u8>>,
    /// Key 2: linking data (legacy placement; current phones send an update message).
    pub linking: Option<LinkingInfo>,
    /// Key 3: supported features; `["ctap"]` when the key is absent.
    pub features: Vec<String>,
}

impl PostHandshake {
    /// A CTAP-only post-handshake message carrying `get_info`.
    pub fn new(get_info: Vec<u8>) -> PostHandshake {
        PostHandshake {
            get_info: Some(get_info),
            linking: None,
            features: vec![FEATURE_CTAP.to_owned()],
        }
    }

    /// Whether the phone accepts CTAP2 messages.
    pub fn supports_ctap(&self) -> bool {
        self.features.iter().any(|f| f == FEATURE_CTAP)
    }

    fn to_value(&self) -> Value {
        let mut entries = Vec::new();
        if let Some(info) = &self.get_info {
            entries.push((Value::Unsigned(1), Value::Bytes(info.clone())));
        }
        if let Some(linking) = &self.linking {
            entries.push((Value::Unsigned(2), linking.to_value().take()));
        }
        let mut features = self.features.clone();
        features.sort();
        entries.push((
            Value::Unsigned(3),
            Value::Array(features.into_iter().map(Value::Text).collect()),
        ));
        Value::map(entries)
    }

    /// Revision 1 plaintext (hand it to the crypter as is, no type byte). With linking data
    /// it holds the link secret: wipe it once encrypted.
    pub fn encode(&self) -> Vec<u8> {
        Zeroizing::new(self.to_value()).to_bytes()
    }

    /// Revision 0 plaintext: map, zeros, u16 LE zero count; multiple of 512.
    pub fn encode_revision0(&self) -> Vec<u8> {
        let mut out = Zeroizing::new(self.to_value()).to_bytes();
        let total = (out.len() + 2).div_ceil(512) * 512;
        let zeros = total - out.len() - 2;
        out.resize(total - 2, 0);
        // zeros < 512 fits in u16.
        out.extend_from_slice(&(zeros as u16).to_le_bytes());
        out
    }

    /// Decodes a decrypted plaintext: revision 1 if it is one CBOR item,
    /// otherwise revision 0 with 16-bit, then 8-bit, padding.
    pub fn decode(plaintext: &[u8]) -> Result<(PostHandshake, ProtocolRevision)> {
        if let Ok(value) = cbor::decode(plaintext) {
            return Ok((Self::from_value(&value)?, ProtocolRevision::One));
        }
        let value = unpad_u16(plaintext)
            .or_else(|| unpad_u8(plaintext))
            .ok_or(Error::PostHandshakeUndecodable)?;
        Ok((Self::from_value(&value)?, ProtocolRevision::Zero))
    }

    fn from_value(value: &Value) -> Result<PostHandshake> {
        let map = value.as_map().ok_or(Error::NotAMap { context: CONTEXT })?;
        let bad = |key, problem| Error::BadField {
            context: CONTEXT,
            key,
            problem,
        };
        let features = match map_get(map, 3) {
            None => vec![FEATURE_CTAP.to_owned()],
            Some(v) => v
                .as_array()
                .ok_or(bad(3, "must be an array"))?
                .iter()
                .map(|f| f.as_text().map(str::to_owned))
                .collect::<Option<Vec<_>>>()
                .ok_or(bad(3, "must hold text strings"))?,
        };
        let get_info = opt_bytes(map, 1, CONTEXT)?;
        let ctap = features.iter().any(|f| f == FEATURE_CTAP);
        let get_info = match (ctap, get_info) {
            (true, None) => return Err(bad(1, "is required when \"ctap\" is supported")),
            (false, Some(_)) => return Err(bad(1, "must be absent without \"ctap\"")),
            (true, Some(info)) => {
                let parsed = cbor::decode(info)?;
                if parsed.as_map().is_none() {
                    return Err(bad(1, "must hold a CBOR map"));
                }
                Some(info.to_vec())
            }
            (false, None) => None,
        };
        let linking = map_get(map, 2).map(LinkingInfo::from_value).transpose()?;
        Ok(PostHandshake {
            get_info,
            linking,
            features,
        })
    }
}

fn unpad_u16(plaintext: &[u8]) -> Option<Value> {
    let split = plaintext.len().checked_sub(2)?;
    let count = usize::from(u16::from_le_bytes([plaintext[split], plaintext[split + 1]]));
    let end = split.checked_sub(count)?;
    cbor::decode(&plaintext[..end]).ok()
}

fn unpad_u8(plaintext: &[u8]) -> Option<Value> {
    let (&count, rest) = plaintext.split_last()?;
    let end = rest.len().checked_sub(usize::from(count))?;
    cbor::decode(&rest[..end]).ok()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn revision0_forms() {
        // Empty-map examples from the protocol description.
        let mut a = vec![0xa0];
        a.extend_from_slice(&[0; 509]);
        a.extend_from_slice(&[0xfd, 0x01]);
        assert!(matches!(
            PostHandshake::decode(&a),
            Err(Error::BadField { key: 1, .. })
        ));
        let p = PostHandshake::new(vec![0xa0]);
        let r0 = p.encode_revision0();
        assert_eq!(r0.len(), 512);
        assert_eq!(
            PostHandshake::decode(&r0).unwrap(),
            (p.clone(), ProtocolRevision::Zero)
        );

        let mut old = p.encode();
        let zeros = 256 - old.len() - 1;
        old.resize(255, 0);
        old.push(zeros as u8);
        assert_eq!(
            PostHandshake::decode(&old).unwrap(),
            (p, ProtocolRevision::Zero)
        );
        assert_eq!(
            PostHandshake::decode(&[0xff, 0xff]),
            Err(Error::PostHandshakeUndecodable)
        );
    }

    #[test]
    fn feature_rules() {
        // Key 3 absent means ctap.
        let v = Value::map([(Value::Unsigned(1), Value::Bytes(vec![0xa0]))]);
        let (p, rev) = PostHandshake::decode(&v.to_bytes()).unwrap();
        assert_eq!(rev, ProtocolRevision::One);
        assert!(p.supports_ctap());
        // dc only: key 1 must be absent.
        let dc = Value::map([(
            Value::Unsigned(3),
            Value::Array(vec![Value::Text("dc".into())]),
        )]);
        assert!(!PostHandshake::decode(&dc.to_bytes())
            .unwrap()
            .0
            .supports_ctap());
        let both = Value::map([
            (Value::Unsigned(1), Value::Bytes(vec![0xa0])),
            (
                Value::Unsigned(3),
                Value::Array(vec![Value::Text("dc".into())]),
            ),
        ]);
        assert!(matches!(
            PostHandshake::decode(&both.to_bytes()),
            Err(Error::BadField { key: 1, .. })
        ));
        // Unknown keys and features are accepted.
        let extra = Value::map([
            (Value::Unsigned(1), Value::Bytes(vec![0xa0])),
            (
                Value::Unsigned(3),
                Value::Array(vec![Value::Text("ctap".into()), Value::Text("x".into())]),
            ),
            (Value::Unsigned(7), Value::Null),
        ]);
        assert!(PostHandshake::decode(&extra.to_bytes()).is_ok());
        assert!(matches!(
            PostHandshake::decode(&[0x01]),
            Err(Error::NotAMap { .. })
        ));
    }
}
