#![no_main]
//! Advert decryption with the QR vector's key, and with a key taken from the input.
use cable_proto::advert::{decrypt_advert, encrypt_eid};
use cable_proto::derive::EidKey;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let key = cable_proto_fuzz::qr_key().secret().eid_key();
    // The seed is the transcript advert, which this key accepts.
    let _ = decrypt_advert(&key, data);
    // Let the fuzzer reach the checks behind the tag: encrypt the input's
    // first 16 bytes as an EID and decrypt it again.
    if data.len() >= 16 {
        let mut eid = [0u8; 16];
        eid.copy_from_slice(&data[..16]);
        let key = EidKey::derive(&data[16..], &[]);
        let mut advert = encrypt_eid(&key, &eid).to_vec();
        advert.extend_from_slice(&data[16..]);
        if let Ok(d) = decrypt_advert(&key, &advert) {
            assert_eq!(d.plaintext, eid);
            assert_eq!(d.suffix, &data[16..]);
        }
    }
});
