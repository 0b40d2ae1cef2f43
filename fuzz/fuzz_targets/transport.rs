#![no_main]
//! Transport frames: decrypt + unpad of arbitrary input (the desktop reading
//! with the transcript's k2, so the seed post-handshake ciphertext opens),
//! and a round trip of the input as plaintext.
use cable_proto::crypter::{unpad, Crypter};
use cable_proto_fuzz::{K1, K2};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut desktop = Crypter::new(&K2, &K1);
    let _ = desktop.decrypt(data);
    let mut desktop = Crypter::new(&K2, &K1);
    let _ = desktop.decrypt_first_accepting_legacy(data);
    let _ = unpad(data);

    let mut desktop = Crypter::new(&K2, &K1);
    let mut phone = Crypter::new(&K1, &K2);
    let ct = desktop.encrypt(data).expect("encrypt");
    assert_eq!(phone.decrypt(&ct).expect("decrypt"), data);
});
