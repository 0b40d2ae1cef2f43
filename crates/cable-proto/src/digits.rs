//! The QR code's base-10 encoding of bytes.
//!
//! QR numeric mode stores decimal digits far more densely than byte mode, so
//! the CBOR payload is written as digits: every 7-byte chunk, read as a
//! little-endian integer, becomes 17 zero-padded digits; a final partial
//! chunk of n bytes becomes a fixed number of digits (3, 5, 8, 10, 13, 15
//! for n = 1..6). Decoding is strict: only ASCII digits, only those lengths,
//! and every group must fit in its byte count.

use crate::error::{Error, Result};

const CHUNK_BYTES: usize = 7;
const CHUNK_DIGITS: usize = 17;

/// Digits used for a partial chunk of `n` bytes (index = n).
const PARTIAL_DIGITS: [usize; 7] = [0, 3, 5, 8, 10, 13, 15];

/// Encodes bytes as decimal digits.
pub fn encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(CHUNK_BYTES) * CHUNK_DIGITS);
    for chunk in bytes.chunks(CHUNK_BYTES) {
        let mut le = [0u8; 8];
        le[..chunk.len()].copy_from_slice(chunk);
        let value = u64::from_le_bytes(le);
        let width = if chunk.len() == CHUNK_BYTES {
            CHUNK_DIGITS
        } else {
            PARTIAL_DIGITS[chunk.len()]
        };
        out.push_str(&format!("{value:0width$}"));
    }
    out
}

/// Decodes a digit string produced by [`encode`], rejecting anything that
/// `encode` could not have produced.
pub fn decode(digits: &str) -> Result<Vec<u8>> {
    let raw = digits.as_bytes();
    if let Some(position) = raw.iter().position(|b| !b.is_ascii_digit()) {
        return Err(Error::NonDigit { position });
    }
    let remainder = raw.len() % CHUNK_DIGITS;
    let partial_bytes =
        PARTIAL_DIGITS
            .iter()
            .position(|&d| d == remainder)
            .ok_or(Error::BadDigitCount {
                len: raw.len(),
                remainder,
            })?;

    let mut out = Vec::with_capacity(raw.len() / CHUNK_DIGITS * CHUNK_BYTES + partial_bytes);
    let mut position = 0;
    while position < raw.len() {
        let group_len = (raw.len() - position).min(CHUNK_DIGITS);
        let nbytes = if group_len == CHUNK_DIGITS {
            CHUNK_BYTES
        } else {
            partial_bytes
        };
        // At most 17 digits, so the value fits in a u64 (< 10^17 < 2^57).
        let value = raw[position..position + group_len]
            .iter()
            .fold(0u64, |acc, d| acc * 10 + u64::from(d - b'0'));
        if value >> (8 * nbytes) != 0 {
            return Err(Error::DigitGroupOverflow {
                position,
                bytes: nbytes,
            });
        }
        out.extend_from_slice(&value.to_le_bytes()[..nbytes]);
        position += group_len;
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn widths_per_partial_length() {
        for n in 0..=14usize {
            let bytes = vec![0xffu8; n];
            let digits = encode(&bytes);
            let expected = (n / 7) * 17 + PARTIAL_DIGITS[n % 7];
            assert_eq!(digits.len(), expected, "n = {n}");
            assert_eq!(decode(&digits).unwrap(), bytes);
        }
    }

    #[test]
    fn typed_rejections() {
        assert_eq!(decode("12a"), Err(Error::NonDigit { position: 2 }));
        assert_eq!(
            decode("1"),
            Err(Error::BadDigitCount {
                len: 1,
                remainder: 1
            })
        );
        assert_eq!(
            decode("256"),
            Err(Error::DigitGroupOverflow {
                position: 0,
                bytes: 1
            })
        );
        assert_eq!(decode("255").unwrap(), vec![255]);
        // 2^56 needs 8 bytes.
        assert_eq!(
            decode("72057594037927936"),
            Err(Error::DigitGroupOverflow {
                position: 0,
                bytes: 7
            })
        );
        assert_eq!(decode("72057594037927935").unwrap(), vec![0xff; 7]);
        assert_eq!(decode("").unwrap(), Vec::<u8>::new());
        // Non-ASCII input must be reported, not panic on a char boundary.
        assert_eq!(decode("१२३"), Err(Error::NonDigit { position: 0 }));
    }
}
