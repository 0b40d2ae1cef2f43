//! The `prf` extension's salts and outputs between CTAP's byte strings and passkey-types.
//!
//! passkey-types holds each salt and output as `[u8; 32]`, which serde reads and writes as
//! an array of 32 integers; on the wire (Chrome, Play Services) they are 32-byte byte
//! strings. Requests are rewritten before they are handed to passkey-types and responses
//! after, touching nothing outside the `prf` member.

use std::collections::BTreeMap;

use cable_proto::cbor::Value;
use cable_proto::ctap::status;

use crate::authenticator::CtapStatus;

const SALT_LEN: usize = 32;

fn text(s: &str) -> Value {
    Value::Text(s.into())
}

fn prf_of(map: &mut BTreeMap<Value, Value>, key: u64) -> Option<&mut BTreeMap<Value, Value>> {
    match map.get_mut(&Value::Unsigned(key))? {
        Value::Map(extensions) => match extensions.get_mut(&text("prf"))? {
            Value::Map(prf) => Some(prf),
            _ => None,
        },
        _ => None,
    }
}

/// `{first, second?}` with byte-string salts made into integer arrays; a salt that is not
/// 32 bytes is refused, as Chrome refuses it.
fn salts_to_arrays(values: &mut Value) -> Result<(), CtapStatus> {
    let Value::Map(values) = values else {
        return Err(CtapStatus(status::INVALID_PARAMETER));
    };
    for name in ["first", "second"] {
        match values.get_mut(&text(name)) {
            None if name == "second" => {}
            Some(salt @ Value::Bytes(_)) => {
                let Value::Bytes(bytes) = &*salt else {
                    unreachable!()
                };
                if bytes.len() != SALT_LEN {
                    return Err(CtapStatus(status::INVALID_PARAMETER));
                }
                *salt = Value::Array(bytes.iter().map(|&b| Value::Unsigned(b.into())).collect());
            }
            _ => return Err(CtapStatus(status::INVALID_PARAMETER)),
        }
    }
    Ok(())
}

/// Rewrites the `prf` inputs of a request whose extensions are at `key` (6 for
/// makeCredential, 4 for getAssertion).
pub(crate) fn request_salts(params: Value, key: u64) -> Result<Value, CtapStatus> {
    let Value::Map(mut map) = params else {
        return Ok(params);
    };
    if let Some(prf) = prf_of(&mut map, key) {
        if let Some(eval) = prf.get_mut(&text("eval")) {
            salts_to_arrays(eval)?;
        }
        match prf.get_mut(&text("evalByCredential")) {
            None => {}
            Some(Value::Map(by_credential)) => {
                for (id, values) in by_credential.iter_mut() {
                    if !matches!(id, Value::Bytes(b) if !b.is_empty()) {
                        return Err(CtapStatus(status::INVALID_PARAMETER));
                    }
                    salts_to_arrays(values)?;
                }
            }
            Some(_) => return Err(CtapStatus(status::INVALID_PARAMETER)),
        }
    }
    Ok(Value::Map(map))
}

/// Rewrites the `prf` results of a response whose unsigned extension outputs are at `key`
/// (6 for makeCredential, 8 for getAssertion) back into byte strings.
pub(crate) fn response_outputs(response: Value, key: u64) -> Value {
    let Value::Map(mut map) = response else {
        return response;
    };
    if let Some(Value::Map(results)) =
        prf_of(&mut map, key).and_then(|p| p.get_mut(&text("results")))
    {
        for output in results.values_mut() {
            if let Value::Array(items) = output {
                let bytes: Option<Vec<u8>> = items
                    .iter()
                    .map(|v| v.as_unsigned().and_then(|n| u8::try_from(n).ok()))
                    .collect();
                if let Some(bytes) = bytes {
                    *output = Value::Bytes(bytes);
                }
            }
        }
    }
    Value::Map(map)
}

/// authData flag: extension data follows the attested credential data.
const EXTENSION_DATA: u8 = 0x80;

/// A credential made with its PRF secret says so in the signed authenticator data too,
/// `{"hmac-secret": true}` as CTAP's hmac-secret prescribes, so that a relying party can
/// check the unsigned `prf: {enabled: true}` against something the credential signed
/// (strict relying parties refuse one without the other). Runs before the attestation
/// signature is made; left as it is when authData already carries extensions.
pub(crate) fn signed_hmac_secret(response: Value) -> Value {
    let Value::Map(mut map) = response else {
        return response;
    };
    let enabled = prf_of(&mut map, 6)
        .and_then(|prf| prf.get(&text("enabled")))
        .and_then(Value::as_bool)
        == Some(true);
    if let (true, Some(Value::Bytes(auth_data))) = (enabled, map.get_mut(&Value::Unsigned(2))) {
        if auth_data.len() > 32 && auth_data[32] & EXTENSION_DATA == 0 {
            auth_data[32] |= EXTENSION_DATA;
            Value::map([(text("hmac-secret"), Value::Bool(true))]).encode_into(auth_data);
        }
    }
    Value::Map(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(prf: Value) -> Value {
        Value::map([(Value::Unsigned(4), Value::map([(text("prf"), prf)]))])
    }

    #[test]
    fn malformed_salts_are_refused() {
        for prf in [
            Value::map([(
                text("eval"),
                Value::map([(text("first"), Value::Bytes(vec![1; 31]))]),
            )]),
            Value::map([(
                text("eval"),
                Value::map([(text("second"), Value::Bytes(vec![1; 32]))]),
            )]),
            Value::map([(text("eval"), Value::Bytes(vec![1; 32]))]),
            Value::map([(
                text("evalByCredential"),
                Value::map([(
                    Value::Bytes(vec![]),
                    Value::map([(text("first"), Value::Bytes(vec![1; 32]))]),
                )]),
            )]),
            Value::map([(text("evalByCredential"), Value::Array(vec![]))]),
        ] {
            assert_eq!(
                request_salts(request(prf.clone()), 4),
                Err(CtapStatus(status::INVALID_PARAMETER)),
                "{prf:?}"
            );
        }
    }

    #[test]
    fn other_members_are_left_alone() {
        let other = Value::map([
            (Value::Unsigned(1), text("example.com")),
            (
                Value::Unsigned(4),
                Value::map([(text("credProtect"), Value::Unsigned(2))]),
            ),
        ]);
        assert_eq!(request_salts(other.clone(), 4), Ok(other.clone()));
        assert_eq!(response_outputs(other.clone(), 8), other);
    }
}
