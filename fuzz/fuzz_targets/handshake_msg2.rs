#![no_main]
//! The desktop processing an arbitrary reply to its first handshake message.
//! With the transcript's keys, the seed msg2 authenticates.
use cable_proto::handshake::Initiator;
use cable_proto_fuzz::{psk, qr_key, PatternRng, DESKTOP_EPHEMERAL};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (psk, qr) = (psk(), qr_key());
    if let Ok((initiator, _)) = Initiator::new_qr(qr, psk, &mut PatternRng(DESKTOP_EPHEMERAL)) {
        let _ = initiator.finish(data);
    }
    if let Ok((initiator, _)) =
        Initiator::new_linked(qr.public_key(), psk, &mut PatternRng(DESKTOP_EPHEMERAL))
    {
        let _ = initiator.finish(data);
    }
});
