#![no_main]
//! The relay's contact-id unsealing and registration-body parsing.
use cable_tunnel_server::contact::{ContactKeys, Subscription};
use libfuzzer_sys::fuzz_target;

const KEYS: &str = "2 0202020202020202020202020202020202020202020202020202020202020202\n\
                    1 0101010101010101010101010101010101010101010101010101010101010101 until=100\n";

fuzz_target!(|data: &[u8]| {
    let keys = ContactKeys::parse(KEYS).expect("fixed keys");
    let _ = keys.open_at(data, 50);
    let _ = keys.open_at(data, 200);
    if let Ok(sub) = Subscription::from_json(data, true) {
        let id = keys.seal(&sub, &mut cable_proto_fuzz::PatternRng([7; 32]));
        assert_eq!(keys.open_at(&id, 0).as_ref(), Ok(&sub));
    }
    if let Ok(text) = core::str::from_utf8(data) {
        let _ = ContactKeys::parse(text);
    }
});
