#![no_main]
//! Digit decoding is a bijection onto its accepted inputs.
use cable_proto::digits;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = core::str::from_utf8(data) {
        if let Ok(bytes) = digits::decode(text) {
            assert_eq!(digits::encode(&bytes), text);
        }
    }
    assert_eq!(
        digits::decode(&digits::encode(data)).expect("round trip"),
        data
    );
});
