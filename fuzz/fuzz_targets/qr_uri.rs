#![no_main]
//! QR text parsing: any accepted code must re-encode to a code that parses identically.
use cable_proto::qr::QrCode;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = core::str::from_utf8(data) else {
        return;
    };
    if let Ok(code) = QrCode::parse(text) {
        let again = QrCode::parse(&code.to_uri()).expect("re-encoded QR must parse");
        assert_eq!(again, code);
    }
    // The CBOR layer on its own, without the digit encoding in front.
    let _ = QrCode::from_cbor(data);
});
