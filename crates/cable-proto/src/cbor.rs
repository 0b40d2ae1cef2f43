//! Canonical CTAP2 CBOR: a small value type, an encoder that can only produce
//! canonical bytes, and a strict decoder.
//!
//! Chromium's CBOR reader and Google Play Services reject non-canonical input
//! (non-minimal integers, unsorted or duplicate map keys), and general CBOR
//! crates do not enforce that, so this module implements exactly the subset
//! CTAP uses: unsigned and negative integers, byte and text strings, arrays,
//! maps, `false`, `true` and `null`. Tags, floats and indefinite lengths are
//! rejected.
//!
//! Map keys are ordered as CTAP2 requires: major type first, then encoded
//! length, then bytewise. [`Value`]'s `Ord` implements that order, so a
//! `BTreeMap<Value, Value>` is always in canonical order and cannot hold
//! duplicate keys — which is why the encoder is infallible.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use crate::error::{CborErrorKind, Error, Result};

/// Maximum nesting of arrays and maps accepted by the decoder (as Chromium's reader).
pub const MAX_DEPTH: usize = 16;

/// A CBOR data item in the subset CTAP uses.
#[derive(Clone, PartialEq, Eq)]
pub enum Value {
    /// Major type 0.
    Unsigned(u64),
    /// Major type 1: the value is `-1 - n`.
    Negative(u64),
    /// Major type 2.
    Bytes(Vec<u8>),
    /// Major type 3.
    Text(String),
    /// Major type 4.
    Array(Vec<Value>),
    /// Major type 5, keys in canonical order.
    Map(BTreeMap<Value, Value>),
    /// Simple values 20 and 21.
    Bool(bool),
    /// Simple value 22.
    Null,
}

impl core::fmt::Debug for Value {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Value::Unsigned(n) => write!(f, "{n}"),
            Value::Negative(n) => write!(f, "-{}", u128::from(*n) + 1),
            Value::Bytes(b) => write!(f, "h'{}'", hex::encode(b)),
            Value::Text(s) => write!(f, "{s:?}"),
            Value::Array(a) => f.debug_list().entries(a).finish(),
            Value::Map(m) => f.debug_map().entries(m).finish(),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Null => write!(f, "null"),
        }
    }
}

/// Wipes every byte and text string the value holds, at any depth, and leaves `Null`: for
/// values that carry secrets (e.g. [`crate::message::LinkingInfo::to_value`]), usually
/// through [`zeroize::Zeroizing`].
impl zeroize::Zeroize for Value {
    fn zeroize(&mut self) {
        match self {
            Value::Bytes(b) => b.zeroize(),
            Value::Text(t) => t.zeroize(),
            Value::Array(items) => items.zeroize(),
            // Keys cannot be changed in place; take the entries out to wipe them.
            Value::Map(map) => {
                for (mut k, mut v) in core::mem::take(map) {
                    k.zeroize();
                    v.zeroize();
                }
            }
            Value::Unsigned(_) | Value::Negative(_) | Value::Bool(_) | Value::Null => {}
        }
        *self = Value::Null;
    }
}

impl Value {
    /// Moves the value out, leaving `Null`; how a value leaves a [`zeroize::Zeroizing`]
    /// without a copy.
    pub(crate) fn take(&mut self) -> Value {
        core::mem::replace(self, Value::Null)
    }

    /// An integer value (negative numbers use major type 1).
    pub fn integer(n: i64) -> Value {
        if n >= 0 {
            Value::Unsigned(n.unsigned_abs())
        } else {
            Value::Negative(n.unsigned_abs() - 1)
        }
    }

    /// A map from `(key, value)` pairs; a later duplicate key replaces an earlier one.
    pub fn map<I: IntoIterator<Item = (Value, Value)>>(entries: I) -> Value {
        Value::Map(entries.into_iter().collect())
    }

    /// The canonical encoding of this value.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode_into(&mut out);
        out
    }

    /// Appends the canonical encoding of this value to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        match self {
            Value::Unsigned(n) => write_head(out, 0, *n),
            Value::Negative(n) => write_head(out, 1, *n),
            Value::Bytes(b) => {
                write_head(out, 2, b.len() as u64);
                out.extend_from_slice(b);
            }
            Value::Text(s) => {
                write_head(out, 3, s.len() as u64);
                out.extend_from_slice(s.as_bytes());
            }
            Value::Array(items) => {
                write_head(out, 4, items.len() as u64);
                for item in items {
                    item.encode_into(out);
                }
            }
            Value::Map(map) => {
                write_head(out, 5, map.len() as u64);
                for (k, v) in map {
                    k.encode_into(out);
                    v.encode_into(out);
                }
            }
            Value::Bool(false) => out.push(0xf4),
            Value::Bool(true) => out.push(0xf5),
            Value::Null => out.push(0xf6),
        }
    }

    /// The map's entries, if this is a map.
    pub fn as_map(&self) -> Option<&BTreeMap<Value, Value>> {
        match self {
            Value::Map(m) => Some(m),
            _ => None,
        }
    }

    /// The bytes, if this is a byte string.
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Value::Bytes(b) => Some(b),
            _ => None,
        }
    }

    /// The text, if this is a text string.
    pub fn as_text(&self) -> Option<&str> {
        match self {
            Value::Text(s) => Some(s),
            _ => None,
        }
    }

    /// The number, if this is an unsigned integer.
    pub fn as_unsigned(&self) -> Option<u64> {
        match self {
            Value::Unsigned(n) => Some(*n),
            _ => None,
        }
    }

    /// The number, if this is an integer (of either sign) that fits in an `i64`.
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Unsigned(n) => i64::try_from(*n).ok(),
            Value::Negative(n) => i64::try_from(*n).ok().map(|n| -1 - n),
            _ => None,
        }
    }

    /// The boolean, if this is `false` or `true`.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }

    /// The items, if this is an array.
    pub fn as_array(&self) -> Option<&[Value]> {
        match self {
            Value::Array(a) => Some(a),
            _ => None,
        }
    }

    fn major_type(&self) -> u8 {
        match self {
            Value::Unsigned(_) => 0,
            Value::Negative(_) => 1,
            Value::Bytes(_) => 2,
            Value::Text(_) => 3,
            Value::Array(_) => 4,
            Value::Map(_) => 5,
            Value::Bool(_) | Value::Null => 7,
        }
    }
}

/// Looks up an unsigned-integer key in a map.
pub fn map_get(map: &BTreeMap<Value, Value>, key: u64) -> Option<&Value> {
    map.get(&Value::Unsigned(key))
}

impl Ord for Value {
    /// CTAP2 canonical order: major type, then encoded length, then bytewise.
    fn cmp(&self, other: &Self) -> Ordering {
        match (self, other) {
            // Fast paths for the common key types; equivalent to comparing encodings.
            (Value::Unsigned(a), Value::Unsigned(b)) | (Value::Negative(a), Value::Negative(b)) => {
                a.cmp(b)
            }
            _ => self.major_type().cmp(&other.major_type()).then_with(|| {
                let (a, b) = (self.to_bytes(), other.to_bytes());
                canonical_cmp(&a, &b)
            }),
        }
    }
}

impl PartialOrd for Value {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Compares two encoded items in CTAP2 canonical order.
fn canonical_cmp(a: &[u8], b: &[u8]) -> Ordering {
    let major = |x: &[u8]| x.first().map(|b| b >> 5);
    major(a)
        .cmp(&major(b))
        .then(a.len().cmp(&b.len()))
        .then_with(|| a.cmp(b))
}

fn write_head(out: &mut Vec<u8>, major: u8, n: u64) {
    let m = major << 5;
    if n < 24 {
        out.push(m | n as u8);
    } else if n <= 0xff {
        out.extend_from_slice(&[m | 24, n as u8]);
    } else if n <= 0xffff {
        out.push(m | 25);
        out.extend_from_slice(&(n as u16).to_be_bytes());
    } else if n <= 0xffff_ffff {
        out.push(m | 26);
        out.extend_from_slice(&(n as u32).to_be_bytes());
    } else {
        out.push(m | 27);
        out.extend_from_slice(&n.to_be_bytes());
    }
}

/// Decodes exactly one canonical item; anything after it is an error.
pub fn decode(input: &[u8]) -> Result<Value> {
    let (value, used) = decode_prefix(input)?;
    if used != input.len() {
        return Err(Error::cbor(used, CborErrorKind::TrailingBytes));
    }
    Ok(value)
}

/// Decodes one canonical item from the start of `input`, returning it and the
/// number of bytes it occupied.
pub fn decode_prefix(input: &[u8]) -> Result<(Value, usize)> {
    let mut reader = Reader {
        input,
        pos: 0,
        sorted_keys: true,
    };
    let value = reader.item(0)?;
    Ok((value, reader.pos))
}

/// Decodes exactly one item as [`decode`] does, except that map keys may come in any
/// order (duplicates are still refused). For requests from hosts that encode maps in the
/// order their structs declare fields (Firefox's authenticator-rs sends `{"uv", "up"}`),
/// which security keys accept; [`Value::to_bytes`] then gives the canonical form that
/// phones insist on.
pub fn decode_any_key_order(input: &[u8]) -> Result<Value> {
    let mut reader = Reader {
        input,
        pos: 0,
        sorted_keys: false,
    };
    let value = reader.item(0)?;
    if reader.pos != input.len() {
        return Err(Error::cbor(reader.pos, CborErrorKind::TrailingBytes));
    }
    Ok(value)
}

struct Reader<'a> {
    input: &'a [u8],
    pos: usize,
    /// Whether map keys must be in canonical order (else only distinct).
    sorted_keys: bool,
}

impl Reader<'_> {
    fn err(&self, offset: usize, kind: CborErrorKind) -> Error {
        Error::cbor(offset, kind)
    }

    fn take(&mut self, n: usize) -> Result<&[u8]> {
        let start = self.pos;
        let end = start
            .checked_add(n)
            .filter(|&end| end <= self.input.len())
            .ok_or(Error::cbor(start, CborErrorKind::Truncated))?;
        self.pos = end;
        Ok(&self.input[start..end])
    }

    /// Reads an initial byte and its argument, enforcing minimal encoding.
    fn head(&mut self) -> Result<(u8, u8, u64)> {
        let start = self.pos;
        let initial = self.take(1)?[0];
        let major = initial >> 5;
        let info = initial & 0x1f;
        let (value, min) = match info {
            0..=23 => (u64::from(info), 0),
            24 => (u64::from(self.take(1)?[0]), 24),
            25 => {
                let b = self.take(2)?;
                (u64::from(u16::from_be_bytes([b[0], b[1]])), 0x100)
            }
            26 => {
                let b = self.take(4)?;
                (
                    u64::from(u32::from_be_bytes([b[0], b[1], b[2], b[3]])),
                    0x1_0000,
                )
            }
            27 => {
                let b = self.take(8)?;
                let mut a = [0u8; 8];
                a.copy_from_slice(b);
                (u64::from_be_bytes(a), 0x1_0000_0000)
            }
            31 => return Err(self.err(start, CborErrorKind::IndefiniteLength)),
            _ => {
                return Err(self.err(
                    start,
                    CborErrorKind::Unsupported {
                        initial_byte: initial,
                    },
                ))
            }
        };
        if major != 7 && value < min {
            return Err(self.err(start, CborErrorKind::NonMinimal));
        }
        Ok((major, initial, value))
    }

    fn remaining(&self) -> usize {
        self.input.len() - self.pos
    }

    /// A length that must fit in the remaining input (each element needs at least one byte).
    fn length(&self, start: usize, n: u64) -> Result<usize> {
        usize::try_from(n)
            .ok()
            .filter(|&n| n <= self.remaining())
            .ok_or(Error::cbor(start, CborErrorKind::Truncated))
    }

    fn item(&mut self, depth: usize) -> Result<Value> {
        let start = self.pos;
        if depth > MAX_DEPTH {
            return Err(self.err(start, CborErrorKind::TooDeep));
        }
        let (major, initial, arg) = self.head()?;
        Ok(match major {
            0 => Value::Unsigned(arg),
            1 => Value::Negative(arg),
            2 => {
                let n = self.length(start, arg)?;
                Value::Bytes(self.take(n)?.to_vec())
            }
            3 => {
                let n = self.length(start, arg)?;
                let bytes = self.take(n)?;
                let text = core::str::from_utf8(bytes)
                    .map_err(|_| Error::cbor(start, CborErrorKind::InvalidUtf8))?;
                Value::Text(text.to_owned())
            }
            4 => {
                let n = self.length(start, arg)?;
                let mut items = Vec::with_capacity(n);
                for _ in 0..n {
                    items.push(self.item(depth + 1)?);
                }
                Value::Array(items)
            }
            5 => {
                let n = self.length(start, arg)?;
                let mut map = BTreeMap::new();
                let mut previous: Option<(usize, usize)> = None;
                for _ in 0..n {
                    let key_start = self.pos;
                    let key = self.item(depth + 1)?;
                    if !matches!(
                        key,
                        Value::Unsigned(_) | Value::Negative(_) | Value::Bytes(_) | Value::Text(_)
                    ) {
                        return Err(self.err(key_start, CborErrorKind::UnsupportedKey));
                    }
                    let key_span = (key_start, self.pos);
                    if !self.sorted_keys {
                        if map.contains_key(&key) {
                            return Err(self.err(key_start, CborErrorKind::DuplicateKey));
                        }
                    } else if let Some((ps, pe)) = previous {
                        match canonical_cmp(&self.input[ps..pe], &self.input[key_start..self.pos]) {
                            Ordering::Less => {}
                            Ordering::Equal => {
                                return Err(self.err(key_start, CborErrorKind::DuplicateKey))
                            }
                            Ordering::Greater => {
                                return Err(self.err(key_start, CborErrorKind::UnsortedKeys))
                            }
                        }
                    }
                    previous = Some(key_span);
                    let value = self.item(depth + 1)?;
                    map.insert(key, value);
                }
                Value::Map(map)
            }
            7 => match initial {
                0xf4 => Value::Bool(false),
                0xf5 => Value::Bool(true),
                0xf6 => Value::Null,
                _ => {
                    return Err(self.err(
                        start,
                        CborErrorKind::Unsupported {
                            initial_byte: initial,
                        },
                    ))
                }
            },
            // Major type 6: tags are not used by CTAP.
            _ => {
                return Err(self.err(
                    start,
                    CborErrorKind::Unsupported {
                        initial_byte: initial,
                    },
                ))
            }
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn zeroize_wipes_nested_strings_and_leaves_null() {
        use zeroize::Zeroize;
        let mut v = Value::map([
            (Value::Bytes(vec![7; 4]), Value::Text("secret".into())),
            (
                Value::Unsigned(1),
                Value::Array(vec![Value::Bytes(vec![9; 32]), Value::Bool(true)]),
            ),
        ]);
        v.zeroize();
        assert_eq!(v, Value::Null);
    }

    fn kind(bytes: &[u8]) -> CborErrorKind {
        match decode(bytes) {
            Err(Error::Cbor { kind, .. }) => kind,
            other => panic!("expected CBOR error, got {other:?}"),
        }
    }

    #[test]
    fn integers_round_trip_at_every_width() {
        for n in [
            0u64,
            23,
            24,
            255,
            256,
            65535,
            65536,
            u32::MAX as u64,
            u64::MAX,
        ] {
            let v = Value::Unsigned(n);
            assert_eq!(decode(&v.to_bytes()).unwrap(), v);
        }
        assert_eq!(Value::integer(-7).to_bytes(), vec![0x26]);
        assert_eq!(Value::integer(-1).to_bytes(), vec![0x20]);
        for n in [i64::MIN, -7, -1, 0, 1, i64::MAX] {
            assert_eq!(Value::integer(n).as_i64(), Some(n));
        }
        assert_eq!(Value::Negative(u64::MAX).as_i64(), None);
        assert_eq!(Value::Unsigned(u64::MAX).as_i64(), None);
    }

    #[test]
    fn rejects_non_minimal_encodings() {
        assert_eq!(kind(&[0x18, 0x05]), CborErrorKind::NonMinimal);
        assert_eq!(kind(&[0x19, 0x00, 0xff]), CborErrorKind::NonMinimal);
        assert_eq!(
            kind(&[0x1a, 0x00, 0x00, 0xff, 0xff]),
            CborErrorKind::NonMinimal
        );
        assert_eq!(
            kind(&[0x1b, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff]),
            CborErrorKind::NonMinimal
        );
        // Non-minimal length of a byte string.
        assert_eq!(kind(&[0x58, 0x01, 0xaa]), CborErrorKind::NonMinimal);
    }

    #[test]
    fn rejects_bad_maps() {
        assert_eq!(
            kind(&[0xa2, 0x01, 0x00, 0x00, 0x00]),
            CborErrorKind::UnsortedKeys
        );
        assert_eq!(
            kind(&[0xa2, 0x01, 0x00, 0x01, 0x00]),
            CborErrorKind::DuplicateKey
        );
        // Text key "a" (major 3) must come after integer key 24 (major 0, two bytes).
        assert_eq!(
            kind(&[0xa2, 0x61, 0x61, 0x00, 0x18, 0x18, 0x00]),
            CborErrorKind::UnsortedKeys
        );
        assert!(decode(&[0xa2, 0x18, 0x18, 0x00, 0x61, 0x61, 0x00]).is_ok());
        // Shorter text key before longer.
        assert_eq!(
            kind(&[0xa2, 0x62, 0x61, 0x61, 0x00, 0x61, 0x62, 0x00]),
            CborErrorKind::UnsortedKeys
        );
        assert_eq!(kind(&[0xa1, 0x80, 0x00]), CborErrorKind::UnsupportedKey);
    }

    #[test]
    fn keys_in_any_order_when_asked() {
        // {"uv": true, "up": false}: the order authenticator-rs writes options in.
        let uv_up = [0xa2, 0x62, b'u', b'v', 0xf5, 0x62, b'u', b'p', 0xf4];
        assert_eq!(kind(&uv_up), CborErrorKind::UnsortedKeys);
        let value = decode_any_key_order(&uv_up).unwrap();
        assert_eq!(
            value.to_bytes(),
            [0xa2, 0x62, b'u', b'p', 0xf4, 0x62, b'u', b'v', 0xf5],
            "re-encoded canonically"
        );
        // Nested maps too; everything else stays strict.
        let nested = [0xa1, 0x01, 0xa2, 0x02, 0x00, 0x01, 0x00];
        assert!(decode_any_key_order(&nested).is_ok());
        let err = |b: &[u8]| match decode_any_key_order(b) {
            Err(Error::Cbor { kind, .. }) => kind,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            err(&[0xa2, 0x01, 0x00, 0x01, 0x00]),
            CborErrorKind::DuplicateKey
        );
        assert_eq!(
            err(&[0xa2, 0x02, 0x00, 0x01, 0x02, 0x01, 0x00]),
            CborErrorKind::TrailingBytes
        );
        assert_eq!(err(&[0x18, 0x01]), CborErrorKind::NonMinimal);
        assert_eq!(err(&[0xbf, 0xff]), CborErrorKind::IndefiniteLength);
    }

    #[test]
    fn encoder_sorts_keys_canonically() {
        let v = Value::map([
            (Value::Text("a".into()), Value::Null),
            (Value::integer(-1), Value::Null),
            (Value::Unsigned(24), Value::Null),
            (Value::Unsigned(1), Value::Null),
            (Value::Text("".into()), Value::Null),
        ]);
        assert_eq!(
            hex::encode(v.to_bytes()),
            "a501f61818f620f660f66161f6",
            "1, 24, -1, \"\", \"a\""
        );
        assert_eq!(decode(&v.to_bytes()).unwrap(), v);
    }

    #[test]
    fn rejects_other_non_canonical_forms() {
        assert_eq!(kind(&[0x01, 0x02]), CborErrorKind::TrailingBytes);
        assert_eq!(kind(&[0x5f, 0xff]), CborErrorKind::IndefiniteLength);
        assert_eq!(
            kind(&[0xc0, 0x00]),
            CborErrorKind::Unsupported { initial_byte: 0xc0 }
        );
        assert_eq!(
            kind(&[0xf9, 0x00, 0x00]),
            CborErrorKind::Unsupported { initial_byte: 0xf9 }
        );
        assert_eq!(
            kind(&[0xf7]),
            CborErrorKind::Unsupported { initial_byte: 0xf7 }
        );
        assert_eq!(kind(&[0x62, 0xff, 0xfe]), CborErrorKind::InvalidUtf8);
        assert_eq!(
            kind(&[0x5a, 0xff, 0xff, 0xff, 0xff]),
            CborErrorKind::Truncated
        );
        assert_eq!(
            kind(&[0x9b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]),
            CborErrorKind::Truncated
        );
        assert_eq!(kind(&[]), CborErrorKind::Truncated);
        let deep = [0x81u8; 40];
        assert_eq!(kind(&deep), CborErrorKind::TooDeep);
    }
}
