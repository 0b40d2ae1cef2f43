#![no_main]
//! The desktop processing an arbitrary reply to its first handshake message.
//! With the transcript's keys, the seed msg2 authenticates.
//!
//! Building an initiator costs P-256 multiplications (the static and the
//! ephemeral public keys), and snow's handshake state cannot be cloned, so
//! each initiator is built once and kept: `try_finish` hands it back after a
//! reply that fails (snow restores its state), and only a reply that
//! completes the handshake uses one up.
use std::cell::RefCell;

use cable_proto::handshake::Initiator;
use cable_proto_fuzz::{psk, qr_key, PatternRng, DESKTOP_EPHEMERAL};
use libfuzzer_sys::fuzz_target;

fn new_qr() -> Initiator {
    match Initiator::new_qr(qr_key(), psk(), &mut PatternRng(DESKTOP_EPHEMERAL)) {
        Ok((initiator, _)) => initiator,
        Err(e) => panic!("fixed keys must start a QR handshake: {e}"),
    }
}

fn new_linked() -> Initiator {
    let public = qr_key().public_key();
    match Initiator::new_linked(public, psk(), &mut PatternRng(DESKTOP_EPHEMERAL)) {
        Ok((initiator, _)) => initiator,
        Err(e) => panic!("fixed keys must start a linked handshake: {e}"),
    }
}

thread_local! {
    static QR: RefCell<Option<Box<Initiator>>> = const { RefCell::new(None) };
    static LINKED: RefCell<Option<Box<Initiator>>> = const { RefCell::new(None) };
}

fn run(
    slot: &'static std::thread::LocalKey<RefCell<Option<Box<Initiator>>>>,
    new: fn() -> Initiator,
    data: &[u8],
) {
    slot.with(|slot| {
        let mut slot = slot.borrow_mut();
        let initiator = slot.take().unwrap_or_else(|| Box::new(new()));
        if let Err((_, back)) = initiator.try_finish(data) {
            *slot = back;
        }
    });
}

fuzz_target!(|data: &[u8]| {
    run(&QR, new_qr, data);
    run(&LINKED, new_linked, data);
});
