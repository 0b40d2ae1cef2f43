//! CTAP2 pieces the client needs: command bytes, the phone's getInfo, authenticator data.
//!
//! Parsing here is deliberately lenient about what CTAP lets authenticators add (unknown map
//! keys, extra fields) and strict about what the client relies on (types, lengths, the RP id
//! hash), so a phone can never make the client index out of bounds or trust the wrong RP.

use std::collections::BTreeMap;

use ciborium::Value;
use sha2::{Digest, Sha256};

use crate::cbor::{decode_exact, decode_prefix, map_get_int, map_get_text};
use crate::error::ClientError;

/// `authenticatorMakeCredential`.
pub const CMD_MAKE_CREDENTIAL: u8 = 0x01;
/// `authenticatorGetAssertion`.
pub const CMD_GET_ASSERTION: u8 = 0x02;
/// `authenticatorGetInfo` (answered locally, never sent over the tunnel).
pub const CMD_GET_INFO: u8 = 0x04;

/// Splits a CTAP reply `status ‖ CBOR` and turns a non-zero status into an error.
pub fn split_status(reply: &[u8]) -> Result<&[u8], ClientError> {
    match reply.split_first() {
        None => Err(ClientError::MalformedResponse {
            what: "CTAP reply",
            why: "empty",
        }),
        Some((0, body)) => Ok(body),
        Some((&status, _)) => Err(ClientError::Authenticator { status }),
    }
}

/// The phone's `authenticatorGetInfo` response, as far as a hybrid client uses it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AuthenticatorInfo {
    pub versions: Vec<String>,
    pub extensions: Vec<String>,
    pub aaguid: Option<[u8; 16]>,
    pub options: BTreeMap<String, bool>,
    pub transports: Vec<String>,
    /// COSE algorithm ids from key 10, if the phone lists them.
    pub algorithms: Vec<i64>,
    raw: Vec<u8>,
}

impl AuthenticatorInfo {
    /// Parses the CBOR of a getInfo response (no status byte), keeping the bytes so that a
    /// local getInfo can be answered with exactly what the phone sent.
    pub fn parse(cbor: &[u8]) -> Result<Self, ClientError> {
        const WHAT: &str = "getInfo response";
        let Value::Map(map) = decode_exact(cbor, WHAT)? else {
            return Err(ClientError::MalformedResponse {
                what: WHAT,
                why: "not a map",
            });
        };
        let strings = |key: u64, why: &'static str| -> Result<Vec<String>, ClientError> {
            match map_get_int(&map, key) {
                None => Ok(Vec::new()),
                Some(Value::Array(items)) => items
                    .iter()
                    .map(|v| match v {
                        Value::Text(t) => Ok(t.clone()),
                        _ => Err(ClientError::MalformedResponse { what: WHAT, why }),
                    })
                    .collect(),
                Some(_) => Err(ClientError::MalformedResponse { what: WHAT, why }),
            }
        };
        let versions = strings(1, "versions is not a list of strings")?;
        let extensions = strings(2, "extensions is not a list of strings")?;
        let transports = strings(9, "transports is not a list of strings")?;
        let aaguid = match map_get_int(&map, 3) {
            None => None,
            Some(Value::Bytes(b)) => Some(<[u8; 16]>::try_from(b.as_slice()).map_err(|_| {
                ClientError::MalformedResponse {
                    what: WHAT,
                    why: "aaguid is not 16 bytes",
                }
            })?),
            Some(_) => {
                return Err(ClientError::MalformedResponse {
                    what: WHAT,
                    why: "aaguid is not a byte string",
                })
            }
        };
        let mut options = BTreeMap::new();
        match map_get_int(&map, 4) {
            None => {}
            Some(Value::Map(entries)) => {
                for (k, v) in entries {
                    if let (Value::Text(k), Value::Bool(v)) = (k, v) {
                        options.insert(k.clone(), *v);
                    }
                }
            }
            Some(_) => {
                return Err(ClientError::MalformedResponse {
                    what: WHAT,
                    why: "options is not a map",
                })
            }
        }
        let mut algorithms = Vec::new();
        if let Some(Value::Array(params)) = map_get_int(&map, 10) {
            for p in params {
                if let Value::Map(p) = p {
                    if let Some(Value::Integer(alg)) = map_get_text(p, "alg") {
                        if let Ok(alg) = i64::try_from(*alg) {
                            algorithms.push(alg);
                        }
                    }
                }
            }
        }
        Ok(AuthenticatorInfo {
            versions,
            extensions,
            aaguid,
            options,
            transports,
            algorithms,
            raw: cbor.to_vec(),
        })
    }

    /// The getInfo CBOR exactly as the phone sent it.
    pub fn raw(&self) -> &[u8] {
        &self.raw
    }

    /// The value of a getInfo option (`rk`, `uv`, …), if the phone states it.
    pub fn option(&self, name: &str) -> Option<bool> {
        self.options.get(name).copied()
    }

    /// Whether the phone lists `extension` in its getInfo.
    pub fn has_extension(&self, extension: &str) -> bool {
        self.extensions.iter().any(|e| e == extension)
    }

    /// The local answer to a one-byte getInfo request: `0x00 ‖ getInfo`.
    pub fn local_get_info_reply(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.raw.len() + 1);
        out.push(0);
        out.extend_from_slice(&self.raw);
        out
    }
}

/// Flag bits of authenticator data.
pub mod flags {
    pub const USER_PRESENT: u8 = 0x01;
    pub const USER_VERIFIED: u8 = 0x04;
    pub const ATTESTED_CREDENTIAL_DATA: u8 = 0x40;
    pub const EXTENSION_DATA: u8 = 0x80;
}

/// Authenticator data, checked against the RP id, with the attested credential (if any).
#[derive(Debug, Clone, PartialEq)]
pub struct AuthenticatorData {
    pub flags: u8,
    pub sign_count: u32,
    pub attested: Option<AttestedCredential>,
}

/// The attested credential data inside authenticator data.
#[derive(Debug, Clone, PartialEq)]
pub struct AttestedCredential {
    pub aaguid: [u8; 16],
    pub credential_id: Vec<u8>,
    /// The credential public key as a COSE_Key map.
    pub public_key: Value,
}

impl AuthenticatorData {
    /// Parses `bytes` and requires its RP id hash to be SHA-256(`rp_id`).
    pub fn parse(bytes: &[u8], rp_id: &str) -> Result<Self, ClientError> {
        const WHAT: &str = "authenticator data";
        let bad = |why| ClientError::MalformedResponse { what: WHAT, why };
        if bytes.len() < 37 {
            return Err(bad("shorter than 37 bytes"));
        }
        let expected: [u8; 32] = Sha256::digest(rp_id.as_bytes()).into();
        if bytes[..32] != expected {
            return Err(bad("RP id hash does not match the relying party"));
        }
        let flags = bytes[32];
        let sign_count = u32::from_be_bytes([bytes[33], bytes[34], bytes[35], bytes[36]]);
        let mut rest = &bytes[37..];
        let attested = if flags & flags::ATTESTED_CREDENTIAL_DATA != 0 {
            if rest.len() < 18 {
                return Err(bad("attested credential data truncated"));
            }
            let mut aaguid = [0u8; 16];
            aaguid.copy_from_slice(&rest[..16]);
            let id_len = usize::from(u16::from_be_bytes([rest[16], rest[17]]));
            rest = &rest[18..];
            if rest.len() < id_len {
                return Err(bad("credential id truncated"));
            }
            let credential_id = rest[..id_len].to_vec();
            rest = &rest[id_len..];
            let (public_key, used) =
                decode_prefix(rest).map_err(|_| bad("credential public key is not CBOR"))?;
            if !matches!(public_key, Value::Map(_)) {
                return Err(bad("credential public key is not a map"));
            }
            rest = &rest[used..];
            Some(AttestedCredential {
                aaguid,
                credential_id,
                public_key,
            })
        } else {
            None
        };
        if flags & flags::EXTENSION_DATA != 0 {
            let (_, used) = decode_prefix(rest).map_err(|_| bad("extensions are not CBOR"))?;
            rest = &rest[used..];
        }
        if !rest.is_empty() {
            return Err(bad("trailing bytes"));
        }
        Ok(AuthenticatorData {
            flags,
            sign_count,
            attested,
        })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::cbor::{int, text, to_canonical_vec};

    /// Chrome-for-Android's getInfo (PROTOCOL.md §11.2).
    pub const CHROME_GET_INFO: &str = "a50182684649444f5f325f30684649444f5f325f3102816370726603500000000000000000000000000000000004a262726bf5627576f50983656361626c656668796272696468696e7465726e616c";

    #[test]
    fn parses_chrome_get_info() {
        let bytes = hex::decode(CHROME_GET_INFO).unwrap();
        let info = AuthenticatorInfo::parse(&bytes).unwrap();
        assert_eq!(info.versions, ["FIDO_2_0", "FIDO_2_1"]);
        assert_eq!(info.extensions, ["prf"]);
        assert_eq!(info.aaguid, Some([0; 16]));
        assert_eq!(info.option("rk"), Some(true));
        assert_eq!(info.option("uv"), Some(true));
        assert_eq!(info.option("clientPin"), None);
        assert_eq!(info.transports, ["cable", "hybrid", "internal"]);
        assert!(info.has_extension("prf"));
        let reply = info.local_get_info_reply();
        assert_eq!(reply[0], 0);
        assert_eq!(&reply[1..], bytes.as_slice());
    }

    #[test]
    fn rejects_malformed_get_info() {
        for bad in ["", "01", "a10101", "a1035001", "a104a0ff", "a10401"] {
            let bytes = hex::decode(bad).unwrap();
            assert!(AuthenticatorInfo::parse(&bytes).is_err(), "{bad}");
        }
    }

    #[test]
    fn split_status_maps_errors() {
        assert_eq!(split_status(&[0, 0xa0]).unwrap(), &[0xa0]);
        assert!(matches!(
            split_status(&[0x27]),
            Err(ClientError::Authenticator { status: 0x27 })
        ));
        assert!(split_status(&[]).is_err());
    }

    pub fn cose_es256(x: [u8; 32], y: [u8; 32]) -> Value {
        Value::Map(vec![
            (int(1), int(2)),
            (int(3), int(-7)),
            (int(-1), int(1)),
            (int(-2), Value::Bytes(x.to_vec())),
            (int(-3), Value::Bytes(y.to_vec())),
        ])
    }

    pub fn auth_data(rp_id: &str, flags: u8, attested: Option<(&[u8], Value)>) -> Vec<u8> {
        let mut out: Vec<u8> = Sha256::digest(rp_id.as_bytes()).to_vec();
        out.push(flags);
        out.extend_from_slice(&7u32.to_be_bytes());
        if let Some((id, key)) = attested {
            out.extend_from_slice(&[0x11; 16]);
            out.extend_from_slice(&(id.len() as u16).to_be_bytes());
            out.extend_from_slice(id);
            out.extend_from_slice(&to_canonical_vec(key));
        }
        out
    }

    #[test]
    fn parses_authenticator_data() {
        let key = cose_es256([1; 32], [2; 32]);
        let bytes = auth_data("example.com", 0x45, Some((&[9, 9, 9], key.clone())));
        let ad = AuthenticatorData::parse(&bytes, "example.com").unwrap();
        assert_eq!(ad.flags, 0x45);
        assert_eq!(ad.sign_count, 7);
        let att = ad.attested.unwrap();
        assert_eq!(att.credential_id, vec![9, 9, 9]);
        assert_eq!(att.aaguid, [0x11; 16]);
        assert_eq!(
            crate::cbor::canonicalize(att.public_key),
            crate::cbor::canonicalize(key)
        );

        let plain = auth_data("example.com", 0x05, None);
        assert!(AuthenticatorData::parse(&plain, "example.com")
            .unwrap()
            .attested
            .is_none());
        let mut with_ext = auth_data("example.com", 0x85, None);
        with_ext.extend_from_slice(&to_canonical_vec(Value::Map(vec![(text("x"), int(1))])));
        assert!(AuthenticatorData::parse(&with_ext, "example.com").is_ok());
    }

    #[test]
    fn rejects_bad_authenticator_data() {
        let good = auth_data(
            "example.com",
            0x45,
            Some((&[1], cose_es256([1; 32], [2; 32]))),
        );
        assert!(AuthenticatorData::parse(&good, "evil.com").is_err());
        for cut in [0, 10, 36, 40, 55, 56, good.len() - 1] {
            assert!(
                AuthenticatorData::parse(&good[..cut], "example.com").is_err(),
                "{cut}"
            );
        }
        let mut trailing = good.clone();
        trailing.push(0);
        assert!(AuthenticatorData::parse(&trailing, "example.com").is_err());
    }
}
