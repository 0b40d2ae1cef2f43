#![no_main]
//! The strict canonical CBOR reader: whatever it accepts re-encodes byte for byte. The
//! reader that takes map keys in any order accepts everything the strict one does, gives
//! the same value, and what it gives re-encodes to bytes the strict one accepts.
use cable_proto::cbor;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let strict = cbor::decode(data);
    if let Ok(value) = &strict {
        assert_eq!(value.to_bytes(), data);
    }
    if let Ok((value, used)) = cbor::decode_prefix(data) {
        assert_eq!(value.to_bytes(), &data[..used]);
    }
    match cbor::decode_any_key_order(data) {
        Ok(value) => {
            let canonical = value.to_bytes();
            assert_eq!(cbor::decode(&canonical).as_ref().ok(), Some(&value));
            if let Ok(strict) = strict {
                assert_eq!(strict, value);
            }
        }
        Err(_) => assert!(strict.is_err(), "the lenient reader refused what the strict one took"),
    }
});
