//! The phone's replies are read as canonical CTAP2 CBOR: a reply that two CBOR readers could
//! read differently (duplicate keys, unsorted keys, non-minimal lengths) is refused, so what
//! the client checked is what the relying party gets.

use cable_client::{AuthenticatorInfo, ClientError, PreparedAuthentication, PreparedRegistration};
use p256::elliptic_curve::sec1::ToEncodedPoint;
use sha2::{Digest, Sha256};

const CHROME_GET_INFO: &str = "a50182684649444f5f325f30684649444f5f325f3102816370726603500000000000000000000000000000000004a262726bf5627576f50983656361626c656668796272696468696e7465726e616c";

fn info() -> AuthenticatorInfo {
    AuthenticatorInfo::parse(&hex::decode(CHROME_GET_INFO).expect("hex")).expect("getInfo")
}

fn registration() -> PreparedRegistration {
    PreparedRegistration::new(
        r#"{"rp": {"id": "example.com"}, "user": {"id": "AQ"}, "challenge": "AQ",
            "pubKeyCredParams": [{"type": "public-key", "alg": -7}]}"#,
        "https://example.com",
    )
    .expect("options")
}

/// A CBOR byte string head for `len` bytes (lengths used here fit in two bytes).
fn bytes_head(len: usize) -> Vec<u8> {
    match len {
        0..=23 => vec![0x40 | len as u8],
        24..=255 => vec![0x58, len as u8],
        _ => vec![0x59, (len >> 8) as u8, len as u8],
    }
}

/// Authenticator data for example.com, UP+UV+AT, with a valid ES256 credential key.
fn auth_data(flags: u8) -> Vec<u8> {
    let mut out = Sha256::digest(b"example.com").to_vec();
    out.push(flags);
    out.extend_from_slice(&[0, 0, 0, 1]);
    if flags & 0x40 != 0 {
        out.extend_from_slice(&[0; 16]);
        out.extend_from_slice(&[0, 1, 0x42]);
        let key = p256::SecretKey::from_slice(&[7; 32]).expect("scalar");
        let point = key.public_key().to_encoded_point(false);
        // {1: 2, 3: -7, -1: 1, -2: x, -3: y}
        out.extend_from_slice(&[0xa5, 0x01, 0x02, 0x03, 0x26, 0x20, 0x01, 0x21, 0x58, 0x20]);
        out.extend_from_slice(&point.as_bytes()[1..33]);
        out.extend_from_slice(&[0x22, 0x58, 0x20]);
        out.extend_from_slice(&point.as_bytes()[33..65]);
    }
    out
}

/// `00 ‖ {1: "none", 2: authData, 3: {}}`, optionally with authData twice.
fn make_credential_reply(auth_data_copies: usize) -> Vec<u8> {
    let ad = auth_data(0x45);
    let mut reply = vec![0x00, 0xa2 + auth_data_copies as u8];
    reply.extend_from_slice(&[0x01, 0x64]);
    reply.extend_from_slice(b"none");
    for _ in 0..auth_data_copies {
        reply.push(0x02);
        reply.extend(bytes_head(ad.len()));
        reply.extend_from_slice(&ad);
    }
    reply.extend_from_slice(&[0x03, 0xa0]);
    reply
}

#[test]
fn a_canonical_make_credential_reply_is_accepted() {
    let response = registration()
        .finish(&info(), &make_credential_reply(1))
        .expect("canonical reply");
    assert_eq!(response.credential_id, [0x42]);
}

#[test]
fn a_make_credential_reply_with_duplicate_keys_is_refused() {
    let result = registration().finish(&info(), &make_credential_reply(2));
    assert!(
        matches!(result, Err(ClientError::MalformedCbor { .. })),
        "{result:?}"
    );
}

#[test]
fn a_get_info_with_duplicate_keys_is_refused() {
    // {1: ["FIDO_2_0"], 1: ["U2F_V2"]}
    let bytes = hex::decode("a20181684649444f5f325f300181665532465f5632").expect("hex");
    let result = AuthenticatorInfo::parse(&bytes);
    assert!(
        matches!(result, Err(ClientError::MalformedCbor { .. })),
        "{result:?}"
    );
}

#[test]
fn a_get_assertion_reply_with_unsorted_keys_is_refused() {
    let auth = PreparedAuthentication::new(
        r#"{"challenge": "AQ", "allowCredentials": [{"type": "public-key", "id": "Qg"}]}"#,
        "https://example.com",
    )
    .expect("options");
    let ad = auth_data(0x05);
    // {3: signature, 2: authData}: keys out of order.
    let mut reply = vec![0x00, 0xa2, 0x03, 0x42, 0x30, 0x00, 0x02];
    reply.extend(bytes_head(ad.len()));
    reply.extend_from_slice(&ad);
    let result = auth.finish(&info(), &reply);
    assert!(
        matches!(result, Err(ClientError::MalformedCbor { .. })),
        "{result:?}"
    );
    // The same reply in canonical order is fine.
    let mut sorted = vec![0x00, 0xa2, 0x02];
    sorted.extend(bytes_head(ad.len()));
    sorted.extend_from_slice(&ad);
    sorted.extend_from_slice(&[0x03, 0x42, 0x30, 0x00]);
    assert!(auth.finish(&info(), &sorted).is_ok());
}

#[test]
fn a_get_info_with_a_float_is_refused() {
    // {1: ["FIDO_2_0"], 5: 1.0 (half float)}: floats are not CTAP2 CBOR.
    let bytes = hex::decode("a20181684649444f5f325f3005f93c00").expect("hex");
    assert!(AuthenticatorInfo::parse(&bytes).is_err());
}
