#![no_main]
//! The push message a phone receives from the relay.
use cable_proto::push::PushPayload;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(payload) = PushPayload::decode(data) {
        assert_eq!(PushPayload::decode(&payload.encode()).as_ref(), Ok(&payload));
    }
});
