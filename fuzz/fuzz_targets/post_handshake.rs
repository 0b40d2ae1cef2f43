#![no_main]
//! The phone's post-handshake message (revision 1 and padded revision 0) and
//! the framing of later messages.
use cable_proto::ctap::{CtapRequest, CtapResponse};
use cable_proto::message::{Message, PostHandshake};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok((post, _)) = PostHandshake::decode(data) {
        let (again, _) = PostHandshake::decode(&post.encode()).expect("re-encoded post-handshake");
        assert_eq!(again.get_info, post.get_info);
        assert_eq!(again.linking, post.linking);
    }
    if let Ok(m) = Message::decode(data) {
        if let Message::Ctap(bytes) = &m {
            let _ = CtapRequest::decode(bytes);
            let _ = CtapResponse::decode(bytes);
        }
        let _ = m.encode();
    }
});
