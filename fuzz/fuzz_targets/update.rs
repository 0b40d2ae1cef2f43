#![no_main]
//! Update messages, linking data and the state-assisted client payload.
use cable_proto::cbor;
use cable_proto::message::{ClientPayload, LinkingInfo, UpdateMessage};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(update) = UpdateMessage::decode_payload(data) {
        if let Some(linking) = &update.linking {
            let _ = linking.verify(cable_proto_fuzz::qr_key(), &[0; 32]);
        }
        let framed = update.encode();
        let again = UpdateMessage::decode_payload(&framed[1..]).expect("re-encoded update");
        assert_eq!(again, update);
    }
    if let Ok(value) = cbor::decode(data) {
        let _ = LinkingInfo::from_value(&value);
    }
    if let Ok(payload) = ClientPayload::from_cbor(data) {
        assert_eq!(
            ClientPayload::from_header_value(&payload.to_header_value()).as_ref(),
            Ok(&payload)
        );
    }
    if let Ok(text) = core::str::from_utf8(data) {
        let _ = ClientPayload::from_header_value(text);
    }
});
