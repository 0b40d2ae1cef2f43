//! Between `cable-proto`'s canonical CBOR values and the ciborium values passkey-rs (de)serializes.
//!
//! Requests are decoded strictly by `cable-proto` and handed to passkey-types through ciborium;
//! responses serialized by passkey-types are re-encoded through `cable-proto`, whose maps are
//! always in CTAP2 canonical order (serde emits struct fields in declaration order, which is not
//! canonical for text keys such as `{"type", "id"}`).

use cable_proto::cbor::Value;
use ciborium::value::{Integer, Value as CiboriumValue};

/// A value that the canonical CTAP subset cannot represent (floats, tags, huge integers,
/// duplicate map keys).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct NotCtapCbor;

pub(crate) fn to_ciborium(value: Value) -> CiboriumValue {
    match value {
        Value::Unsigned(n) => CiboriumValue::Integer(Integer::from(n)),
        Value::Negative(n) => {
            let v = -1 - i128::from(n);
            match Integer::try_from(v) {
                Ok(i) => CiboriumValue::Integer(i),
                // -1 - u64::MAX is exactly ciborium's lower bound, so this cannot happen.
                Err(_) => CiboriumValue::Null,
            }
        }
        Value::Bytes(b) => CiboriumValue::Bytes(b),
        Value::Text(t) => CiboriumValue::Text(t),
        Value::Array(a) => CiboriumValue::Array(a.into_iter().map(to_ciborium).collect()),
        Value::Map(m) => CiboriumValue::Map(
            m.into_iter()
                .map(|(k, v)| (to_ciborium(k), to_ciborium(v)))
                .collect(),
        ),
        Value::Bool(b) => CiboriumValue::Bool(b),
        Value::Null => CiboriumValue::Null,
    }
}

pub(crate) fn from_ciborium(value: CiboriumValue) -> Result<Value, NotCtapCbor> {
    Ok(match value {
        CiboriumValue::Integer(i) => {
            let v = i128::from(i);
            if v >= 0 {
                Value::Unsigned(u64::try_from(v).map_err(|_| NotCtapCbor)?)
            } else {
                Value::Negative(u64::try_from(-1 - v).map_err(|_| NotCtapCbor)?)
            }
        }
        CiboriumValue::Bytes(b) => Value::Bytes(b),
        CiboriumValue::Text(t) => Value::Text(t),
        CiboriumValue::Array(a) => {
            Value::Array(a.into_iter().map(from_ciborium).collect::<Result<_, _>>()?)
        }
        CiboriumValue::Map(entries) => {
            let len = entries.len();
            let map: std::collections::BTreeMap<Value, Value> = entries
                .into_iter()
                .map(|(k, v)| Ok((from_ciborium(k)?, from_ciborium(v)?)))
                .collect::<Result<_, NotCtapCbor>>()?;
            if map.len() != len {
                return Err(NotCtapCbor);
            }
            Value::Map(map)
        }
        CiboriumValue::Bool(b) => Value::Bool(b),
        CiboriumValue::Null => Value::Null,
        _ => return Err(NotCtapCbor),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_sorts() {
        let v = Value::map([
            (Value::Text("type".into()), Value::Text("public-key".into())),
            (Value::Text("id".into()), Value::Bytes(vec![1, 2])),
            (Value::Unsigned(1), Value::integer(-7)),
            (
                Value::Unsigned(2),
                Value::Array(vec![Value::Bool(true), Value::Null]),
            ),
        ]);
        assert_eq!(from_ciborium(to_ciborium(v.clone())).unwrap(), v);

        // Declaration order from serde is re-sorted canonically.
        let unsorted = CiboriumValue::Map(vec![
            (
                CiboriumValue::Text("type".into()),
                CiboriumValue::Text("x".into()),
            ),
            (
                CiboriumValue::Text("id".into()),
                CiboriumValue::Bytes(vec![]),
            ),
        ]);
        let bytes = from_ciborium(unsorted).unwrap().to_bytes();
        assert_eq!(bytes[1..4], [0x62, b'i', b'd']);
    }

    #[test]
    fn rejects_what_ctap_cannot_carry() {
        assert_eq!(from_ciborium(CiboriumValue::Float(1.0)), Err(NotCtapCbor));
        assert_eq!(
            from_ciborium(CiboriumValue::Tag(1, Box::new(CiboriumValue::Null))),
            Err(NotCtapCbor)
        );
        let dup = CiboriumValue::Map(vec![
            (CiboriumValue::Integer(1.into()), CiboriumValue::Null),
            (CiboriumValue::Integer(1.into()), CiboriumValue::Null),
        ]);
        assert_eq!(from_ciborium(dup), Err(NotCtapCbor));
    }
}
