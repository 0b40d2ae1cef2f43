//! Whatever a phone or a relying party's front end sends, the parsers return errors, never
//! panic.

use cable_client::ctap::{AuthenticatorData, AuthenticatorInfo};
use cable_client::webauthn::options::{CreationOptions, RequestOptions};
use cable_client::{PreparedAuthentication, PreparedRegistration};
use proptest::prelude::*;

const CHROME_GET_INFO: &str = "a50182684649444f5f325f30684649444f5f325f3102816370726603500000000000000000000000000000000004a262726bf5627576f50983656361626c656668796272696468696e7465726e616c";

fn info() -> AuthenticatorInfo {
    AuthenticatorInfo::parse(&hex::decode(CHROME_GET_INFO).expect("hex")).expect("getInfo")
}

proptest! {
    #[test]
    fn get_info_and_auth_data_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = AuthenticatorInfo::parse(&bytes);
        let _ = AuthenticatorData::parse(&bytes, "example.com");
    }

    #[test]
    fn replies_never_panic(status in 0u8..2, body in proptest::collection::vec(any::<u8>(), 0..300)) {
        let reg = PreparedRegistration::new(
            r#"{"rp": {"id": "example.com"}, "user": {"id": "AQ"}, "challenge": "AQ"}"#,
            "https://example.com",
        ).expect("options");
        let auth = PreparedAuthentication::new(r#"{"challenge": "AQ"}"#, "https://example.com")
            .expect("options");
        let mut reply = vec![status];
        reply.extend_from_slice(&body);
        let _ = reg.finish(&info(), &reply);
        let _ = auth.finish(&info(), &reply);
    }

    #[test]
    fn options_json_never_panics(text in ".{0,200}") {
        let _ = CreationOptions::from_json(&text);
        let _ = RequestOptions::from_json(&text);
        let _ = PreparedRegistration::new(&text, &text);
    }
}

/// Structured garbage: valid CBOR maps with the right keys holding the wrong things.
#[test]
fn wrong_types_in_replies_are_errors() {
    let reg = PreparedRegistration::new(
        r#"{"rp": {"id": "example.com"}, "user": {"id": "AQ"}, "challenge": "AQ"}"#,
        "https://example.com",
    )
    .expect("options");
    let auth = PreparedAuthentication::new(r#"{"challenge": "AQ"}"#, "https://example.com")
        .expect("options");
    for body in [
        "a3016474657374025820000000000000000000000000000000000000000000000000000000000000000003a0",
        "a30101020103a0",
        "a301a00242000003a0",
        "a2014100024100",
        "a3018002410003410004a0",
        "a4024100034100040105f5",
    ] {
        let mut reply = vec![0];
        reply.extend(hex::decode(body).expect("hex"));
        assert!(reg.finish(&info(), &reply).is_err(), "{body}");
        assert!(auth.finish(&info(), &reply).is_err(), "{body}");
    }
}
