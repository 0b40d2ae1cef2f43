//! CTAP2 pieces the client needs: the phone's getInfo, authenticator data, reply status.
//!
//! Every CBOR item from the phone goes through `cable_proto::cbor`'s strict decoder: CTAP2
//! requires canonical CBOR and Chromium's reader refuses anything else, so a reply with
//! duplicate or unsorted keys is refused here too instead of being read one way by this
//! client and another way by a relying party. Within well-formed CBOR, parsing is lenient
//! about what CTAP lets authenticators add (unknown map keys, extra fields) and strict about
//! what the client relies on (types, lengths, the RP id hash), so a phone can never make the
//! client index out of bounds or trust the wrong RP.

use std::collections::BTreeMap;

use cable_proto::cbor::{self, map_get, Value};
use sha2::{Digest, Sha256};

use crate::error::ClientError;

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

/// Decodes exactly one canonical CBOR item that must fill `bytes`.
pub(crate) fn decode_exact(bytes: &[u8], what: &'static str) -> Result<Value, ClientError> {
    cbor::decode(bytes).map_err(|source| ClientError::MalformedCbor { what, source })
}

/// Decodes exactly one canonical CBOR map that must fill `bytes`.
pub(crate) fn decode_map(
    bytes: &[u8],
    what: &'static str,
) -> Result<BTreeMap<Value, Value>, ClientError> {
    match decode_exact(bytes, what)? {
        Value::Map(map) => Ok(map),
        _ => Err(ClientError::MalformedResponse {
            what,
            why: "not a map",
        }),
    }
}

/// Looks up a text key in a CBOR map.
pub(crate) fn map_get_text<'a>(map: &'a BTreeMap<Value, Value>, key: &str) -> Option<&'a Value> {
    map.get(&Value::Text(key.to_owned()))
}

/// Looks up an integer key of either sign in a CBOR map (COSE keys use negative labels).
pub(crate) fn map_get_int(map: &BTreeMap<Value, Value>, key: i64) -> Option<&Value> {
    map.get(&Value::integer(key))
}

/// The phone's `authenticatorGetInfo` response, as far as a hybrid client uses it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AuthenticatorInfo {
    /// CTAP versions the authenticator supports (key 1), e.g. `FIDO_2_0`, `FIDO_2_1`.
    pub versions: Vec<String>,
    /// Extensions the authenticator supports (key 2).
    pub extensions: Vec<String>,
    /// The authenticator's AAGUID (key 3), when it is 16 bytes as CTAP2 requires.
    pub aaguid: Option<[u8; 16]>,
    /// Options (key 4), e.g. `rk`, `uv`, `up`, `plat`; an absent option keeps its CTAP2 default.
    pub options: BTreeMap<String, bool>,
    /// Transports the authenticator says it is reachable over (key 9).
    pub transports: Vec<String>,
    /// COSE algorithm ids from key 10, if the phone lists them.
    pub algorithms: Vec<i64>,
    /// The longest `credBlob` the authenticator stores (key 15); CTAP's floor, 32, when
    /// it does not say.
    pub max_cred_blob_length: Option<u64>,
    raw: Vec<u8>,
}

impl AuthenticatorInfo {
    /// Parses the CBOR of a getInfo response (no status byte), keeping the bytes so that a
    /// local getInfo can be answered with exactly what the phone sent.
    pub fn parse(cbor: &[u8]) -> Result<Self, ClientError> {
        const WHAT: &str = "getInfo response";
        let bad = |why| ClientError::MalformedResponse { what: WHAT, why };
        let map = decode_map(cbor, WHAT)?;
        let strings = |key: u64, why: &'static str| -> Result<Vec<String>, ClientError> {
            match map_get(&map, key) {
                None => Ok(Vec::new()),
                Some(Value::Array(items)) => items
                    .iter()
                    .map(|v| v.as_text().map(str::to_owned).ok_or_else(|| bad(why)))
                    .collect(),
                Some(_) => Err(bad(why)),
            }
        };
        let versions = strings(1, "versions is not a list of strings")?;
        let extensions = strings(2, "extensions is not a list of strings")?;
        let transports = strings(9, "transports is not a list of strings")?;
        let aaguid = match map_get(&map, 3) {
            None => None,
            Some(Value::Bytes(b)) => Some(
                <[u8; 16]>::try_from(b.as_slice()).map_err(|_| bad("aaguid is not 16 bytes"))?,
            ),
            Some(_) => return Err(bad("aaguid is not a byte string")),
        };
        let mut options = BTreeMap::new();
        match map_get(&map, 4) {
            None => {}
            Some(Value::Map(entries)) => {
                for (k, v) in entries {
                    if let (Value::Text(k), Value::Bool(v)) = (k, v) {
                        options.insert(k.clone(), *v);
                    }
                }
            }
            Some(_) => return Err(bad("options is not a map")),
        }
        let mut algorithms = Vec::new();
        if let Some(Value::Array(params)) = map_get(&map, 10) {
            for p in params {
                if let Some(alg) = p
                    .as_map()
                    .and_then(|p| map_get_text(p, "alg"))
                    .and_then(Value::as_i64)
                {
                    algorithms.push(alg);
                }
            }
        }
        let max_cred_blob_length = match map_get(&map, 15) {
            None => None,
            Some(Value::Unsigned(n)) => Some(*n),
            Some(_) => return Err(bad("maxCredBlobLength is not an unsigned integer")),
        };
        Ok(AuthenticatorInfo {
            versions,
            extensions,
            aaguid,
            options,
            transports,
            algorithms,
            max_cred_blob_length,
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
    /// User present (UP): the person touched or tapped the authenticator.
    pub const USER_PRESENT: u8 = 0x01;
    /// User verified (UV): the authenticator verified the person (biometrics, PIN).
    pub const USER_VERIFIED: u8 = 0x04;
    /// Attested credential data follows the sign count (set by makeCredential).
    pub const ATTESTED_CREDENTIAL_DATA: u8 = 0x40;
    /// Extension outputs follow.
    pub const EXTENSION_DATA: u8 = 0x80;
}

/// Authenticator data, checked against the RP id, with the attested credential (if any).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct AuthenticatorData {
    /// The flag bits; see [`flags`].
    pub flags: u8,
    /// The signature counter (0 when the authenticator does not keep one, as phones usually do).
    pub sign_count: u32,
    /// The new credential, present when the `ATTESTED_CREDENTIAL_DATA` flag is set.
    pub attested: Option<AttestedCredential>,
    /// The signed extension outputs (`credBlob`, `hmac-secret`, `minPinLength`, …), by
    /// extension id; empty when the `EXTENSION_DATA` flag is clear.
    pub extensions: BTreeMap<Value, Value>,
}

impl AuthenticatorData {
    /// The signed output of extension `id`, if the authenticator gave one.
    pub fn extension(&self, id: &str) -> Option<&Value> {
        self.extensions.get(&Value::Text(id.to_owned()))
    }
}

/// The attested credential data inside authenticator data.
#[derive(Debug, Clone, PartialEq)]
pub struct AttestedCredential {
    /// The AAGUID of the authenticator model that made the credential (zeros when it hides it).
    pub aaguid: [u8; 16],
    /// The credential id the relying party stores and later lists in `allowCredentials`.
    pub credential_id: Vec<u8>,
    /// The credential public key as a COSE_Key map.
    pub public_key: BTreeMap<Value, Value>,
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
        // The COSE key and the extensions have no length prefix: their ends are only known
        // by decoding them.
        let prefix = |rest: &[u8], what: &'static str| {
            cbor::decode_prefix(rest).map_err(|source| ClientError::MalformedCbor { what, source })
        };
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
            let (public_key, used) = prefix(rest, "credential public key")?;
            let Value::Map(public_key) = public_key else {
                return Err(bad("credential public key is not a map"));
            };
            rest = &rest[used..];
            Some(AttestedCredential {
                aaguid,
                credential_id,
                public_key,
            })
        } else {
            None
        };
        let extensions = if flags & flags::EXTENSION_DATA != 0 {
            let (extensions, used) = prefix(rest, "authenticator data extensions")?;
            rest = &rest[used..];
            match extensions {
                Value::Map(map) if map.keys().all(|k| matches!(k, Value::Text(_))) => map,
                _ => return Err(bad("extensions are not a map keyed by extension id")),
            }
        } else {
            BTreeMap::new()
        };
        if !rest.is_empty() {
            return Err(bad("trailing bytes"));
        }
        Ok(AuthenticatorData {
            flags,
            sign_count,
            attested,
            extensions,
        })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use cable_proto::CborErrorKind;

    /// Chrome-for-Android's getInfo (PROTOCOL.md §11.2).
    pub const CHROME_GET_INFO: &str = "a50182684649444f5f325f30684649444f5f325f3102816370726603500000000000000000000000000000000004a262726bf5627576f50983656361626c656668796272696468696e7465726e616c";

    pub fn int(n: i64) -> Value {
        Value::integer(n)
    }

    pub fn text(s: &str) -> Value {
        Value::Text(s.to_owned())
    }

    /// The CBOR error kind inside a `MalformedCbor`, or `None` for any other result.
    pub fn cbor_kind<T: std::fmt::Debug>(result: Result<T, ClientError>) -> Option<CborErrorKind> {
        match result {
            Err(ClientError::MalformedCbor {
                source: cable_proto::Error::Cbor { kind, .. },
                ..
            }) => Some(kind),
            _ => None,
        }
    }

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
    fn reads_algorithms_of_either_sign() {
        // {10: [{"alg": -7, "type": "public-key"}, {"alg": 3}]}
        let bytes =
            hex::decode("a10a82a263616c672664747970656a7075626c69632d6b6579a163616c6703").unwrap();
        assert_eq!(
            AuthenticatorInfo::parse(&bytes).unwrap().algorithms,
            [-7, 3]
        );
    }

    #[test]
    fn rejects_malformed_get_info() {
        for bad in ["", "01", "a10101", "a1035001", "a104a0ff", "a10401"] {
            let bytes = hex::decode(bad).unwrap();
            assert!(AuthenticatorInfo::parse(&bytes).is_err(), "{bad}");
        }
    }

    #[test]
    fn get_info_with_duplicate_keys_is_refused() {
        // {1: ["FIDO_2_0"], 1: ["U2F_V2"]}: which version list counts would depend on the
        // reader, so none does.
        let bytes = hex::decode("a20181684649444f5f325f300181665532465f5632").unwrap();
        assert_eq!(
            cbor_kind(AuthenticatorInfo::parse(&bytes)),
            Some(CborErrorKind::DuplicateKey)
        );
        // {4: {"uv": false, "uv": true}}
        let bytes = hex::decode("a104a2627576f4627576f5").unwrap();
        assert_eq!(
            cbor_kind(AuthenticatorInfo::parse(&bytes)),
            Some(CborErrorKind::DuplicateKey)
        );
    }

    #[test]
    fn non_canonical_get_info_is_refused() {
        // {4: {}, 1: []}: keys out of order.
        let unsorted = hex::decode("a204a00180").unwrap();
        assert_eq!(
            cbor_kind(AuthenticatorInfo::parse(&unsorted)),
            Some(CborErrorKind::UnsortedKeys)
        );
        // {1: []} with the key in a two-byte head.
        let non_minimal = hex::decode("a1180180").unwrap();
        assert_eq!(
            cbor_kind(AuthenticatorInfo::parse(&non_minimal)),
            Some(CborErrorKind::NonMinimal)
        );
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
        Value::map([
            (int(1), int(2)),
            (int(3), int(-7)),
            (int(-1), int(1)),
            (int(-2), Value::Bytes(x.to_vec())),
            (int(-3), Value::Bytes(y.to_vec())),
        ])
    }

    /// Authenticator data with the COSE key given as encoded bytes, so tests can also embed
    /// keys that are not canonical.
    pub fn auth_data_raw(rp_id: &str, flags: u8, attested: Option<(&[u8], &[u8])>) -> Vec<u8> {
        let mut out: Vec<u8> = Sha256::digest(rp_id.as_bytes()).to_vec();
        out.push(flags);
        out.extend_from_slice(&7u32.to_be_bytes());
        if let Some((id, key)) = attested {
            out.extend_from_slice(&[0x11; 16]);
            out.extend_from_slice(&(id.len() as u16).to_be_bytes());
            out.extend_from_slice(id);
            out.extend_from_slice(key);
        }
        out
    }

    pub fn auth_data(rp_id: &str, flags: u8, attested: Option<(&[u8], Value)>) -> Vec<u8> {
        match attested {
            Some((id, key)) => auth_data_raw(rp_id, flags, Some((id, &key.to_bytes()))),
            None => auth_data_raw(rp_id, flags, None),
        }
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
        assert_eq!(Value::Map(att.public_key), key);

        let plain = auth_data("example.com", 0x05, None);
        assert!(AuthenticatorData::parse(&plain, "example.com")
            .unwrap()
            .attested
            .is_none());
        let mut with_ext = auth_data("example.com", 0x85, None);
        with_ext.extend_from_slice(&Value::map([(text("x"), int(1))]).to_bytes());
        assert!(AuthenticatorData::parse(&with_ext, "example.com").is_ok());
    }

    #[test]
    fn credential_key_with_duplicate_labels_is_refused() {
        // {1: 2, 3: -7, -1: 1, -2: x, -2: x'}: two x coordinates.
        let mut key = hex::decode("a5010203262001215820").unwrap();
        key.extend_from_slice(&[1; 32]);
        key.extend_from_slice(&hex::decode("215820").unwrap());
        key.extend_from_slice(&[3; 32]);
        let bytes = auth_data_raw("example.com", 0x45, Some((&[1], &key)));
        assert_eq!(
            cbor_kind(AuthenticatorData::parse(&bytes, "example.com")),
            Some(CborErrorKind::DuplicateKey)
        );
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
