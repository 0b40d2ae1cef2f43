#![no_main]
//! The strict canonical CBOR reader: whatever it accepts re-encodes byte for byte.
use cable_proto::cbor;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(value) = cbor::decode(data) {
        assert_eq!(value.to_bytes(), data);
    }
    if let Ok((value, used)) = cbor::decode_prefix(data) {
        assert_eq!(value.to_bytes(), &data[..used]);
    }
});
