//! CTAP2 canonical CBOR encoding and small lenient readers for authenticator replies.
//!
//! Requests are built as `ciborium::Value` trees and sorted here before encoding, so the
//! bytes do not depend on the order in which the builder happened to insert keys. The CTAP2
//! rule (also enforced by Chromium's reader and Google Play Services): map keys sort by major
//! type, then by encoded length, then bytewise. ciborium already emits minimal-length heads.

use ciborium::Value;

use crate::error::ClientError;

/// Encodes `value` in CTAP2 canonical form (maps sorted recursively).
pub fn to_canonical_vec(value: Value) -> Vec<u8> {
    let mut out = Vec::new();
    // Writing into a Vec cannot fail; a Value tree has no fallible serialisation step.
    if ciborium::into_writer(&canonicalize(value), &mut out).is_err() {
        out.clear();
    }
    out
}

/// Sorts every map in `value` (recursively) by the CTAP2 canonical key order.
pub fn canonicalize(value: Value) -> Value {
    match value {
        Value::Map(entries) => {
            let mut keyed: Vec<(Vec<u8>, Value, Value)> = entries
                .into_iter()
                .map(|(k, v)| {
                    let k = canonicalize(k);
                    (encode_plain(&k), k, canonicalize(v))
                })
                .collect();
            keyed.sort_by(|a, b| canonical_key_order(&a.0, &b.0));
            Value::Map(keyed.into_iter().map(|(_, k, v)| (k, v)).collect())
        }
        Value::Array(items) => Value::Array(items.into_iter().map(canonicalize).collect()),
        Value::Tag(tag, inner) => Value::Tag(tag, Box::new(canonicalize(*inner))),
        other => other,
    }
}

fn encode_plain(value: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    if ciborium::into_writer(value, &mut out).is_err() {
        out.clear();
    }
    out
}

/// Major type (top three bits of the first byte), then length, then bytes.
fn canonical_key_order(a: &[u8], b: &[u8]) -> std::cmp::Ordering {
    let major = |x: &[u8]| x.first().map(|b| b >> 5);
    major(a)
        .cmp(&major(b))
        .then(a.len().cmp(&b.len()))
        .then(a.cmp(b))
}

/// Decodes one CBOR item from the front of `bytes`, returning it and the number of bytes it
/// used (authenticator data embeds a COSE key whose end is only known by parsing it).
pub fn decode_prefix(bytes: &[u8]) -> Result<(Value, usize), ClientError> {
    let mut reader = bytes;
    let value: Value =
        ciborium::from_reader(&mut reader).map_err(|_| ClientError::MalformedCbor {
            what: "embedded CBOR item",
        })?;
    Ok((value, bytes.len() - reader.len()))
}

/// Decodes exactly one CBOR item that must fill `bytes`.
pub fn decode_exact(bytes: &[u8], what: &'static str) -> Result<Value, ClientError> {
    let (value, used) = decode_prefix(bytes).map_err(|_| ClientError::MalformedCbor { what })?;
    if used != bytes.len() {
        return Err(ClientError::MalformedCbor { what });
    }
    Ok(value)
}

/// Looks up an unsigned-integer key in a CBOR map.
pub fn map_get_int(map: &[(Value, Value)], key: u64) -> Option<&Value> {
    map.iter().find_map(|(k, v)| match k {
        Value::Integer(i) if u64::try_from(*i).ok() == Some(key) => Some(v),
        _ => None,
    })
}

/// Looks up a text key in a CBOR map.
pub fn map_get_text<'a>(map: &'a [(Value, Value)], key: &str) -> Option<&'a Value> {
    map.iter().find_map(|(k, v)| match k {
        Value::Text(t) if t == key => Some(v),
        _ => None,
    })
}

/// Shorthand for a text value.
pub fn text(s: &str) -> Value {
    Value::Text(s.to_owned())
}

/// Shorthand for an integer value.
pub fn int(i: i64) -> Value {
    Value::Integer(i.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integer_keys_sort_by_major_type_then_value() {
        // A COSE EC2 key: 1, 3, -1, -2, -3 is the canonical order.
        let v = Value::Map(vec![
            (int(-3), int(0)),
            (int(3), int(0)),
            (int(-1), int(0)),
            (int(1), int(0)),
            (int(-2), int(0)),
        ]);
        assert_eq!(hex::encode(to_canonical_vec(v)), "a501000300200021002200");
    }

    #[test]
    fn text_keys_sort_shorter_first() {
        let v = Value::Map(vec![
            (text("displayName"), text("d")),
            (text("name"), text("n")),
            (text("id"), Value::Bytes(vec![1])),
        ]);
        // {"id": h'01', "name": "n", "displayName": "d"}
        assert_eq!(
            hex::encode(to_canonical_vec(v)),
            "a36269644101646e616d65616e6b646973706c61794e616d656164"
        );
    }

    #[test]
    fn nested_maps_are_sorted() {
        let v = Value::Array(vec![Value::Map(vec![
            (text("type"), text("public-key")),
            (text("alg"), int(-7)),
        ])]);
        // [{"alg": -7, "type": "public-key"}]
        assert_eq!(
            hex::encode(to_canonical_vec(v)),
            "81a263616c672664747970656a7075626c69632d6b6579"
        );
    }

    #[test]
    fn decode_prefix_reports_consumed_length() {
        let bytes = [0xa1, 0x01, 0x02, 0xff, 0xff];
        let (v, used) = decode_prefix(&bytes).unwrap();
        assert_eq!(used, 3);
        assert_eq!(v, Value::Map(vec![(int(1), int(2))]));
        assert!(decode_exact(&bytes, "x").is_err());
        assert!(decode_prefix(&[0x5f]).is_err());
    }
}
