#![no_main]
//! cable-uhid's decoding of `/dev/uhid` events, both directions, from arbitrary bytes.
//!
//! Invariants: nothing panics; an event the kernel side decodes encodes back to bytes that
//! decode to the same event; an event the user side decodes and can encode decodes back the
//! same.
use cable_uhid::event::{KernelEvent, UserEvent};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(event) = KernelEvent::decode(data) {
        let again = KernelEvent::decode(&event.encode()).expect("an encoded event decodes");
        assert_eq!(again, event);
    }
    if let Ok(event) = UserEvent::decode(data) {
        if let Ok(bytes) = event.encode() {
            let again = UserEvent::decode(&bytes).expect("an encoded event decodes");
            assert_eq!(again, event);
        }
    }
});
