#![no_main]
//! The phone processing an arbitrary first handshake message (both patterns).
//! With the transcript's keys, the seed msg1 authenticates.
use cable_proto::handshake::Responder;
use cable_proto::keys;
use cable_proto_fuzz::{psk, qr_key, PatternRng, PHONE_EPHEMERAL};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (psk, qr) = (psk(), qr_key());
    let _ = Responder::respond_qr(qr.public_key(), psk, data, &mut PatternRng(PHONE_EPHEMERAL));
    let _ = Responder::respond_linked(
        qr.private_key(),
        psk,
        data,
        &mut PatternRng(PHONE_EPHEMERAL),
    );
    let _ = keys::public_key_from_sec1(data);
});
