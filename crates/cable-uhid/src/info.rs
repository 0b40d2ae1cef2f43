//! The authenticatorGetInfo answer the key gives by itself.
//!
//! A host asks for getInfo as soon as it opens a key (libfido2 in `fido_dev_open`, browsers
//! before every ceremony), long before anyone would scan a QR code; so the key answers it
//! at once and without a phone, and says what any phone behind it can do.

use cable_ctaphid::MAX_MESSAGE_LEN;
use cable_proto::cbor::Value;

/// The key's AAGUID, `3e1d850b-9060-a1e8-8a30-15564d2ef32b`: 16 random bytes drawn once
/// for this key. Phones attest with their own AAGUID (often zero); this one only names the
/// virtual key to hosts that list authenticators.
pub const AAGUID: [u8; 16] = [
    0x3e, 0x1d, 0x85, 0x0b, 0x90, 0x60, 0xa1, 0xe8, 0x8a, 0x30, 0x15, 0x56, 0x4d, 0x2e, 0xf3, 0x2b,
];

/// `versions` (0x01).
pub const VERSIONS: [&str; 2] = ["FIDO_2_0", "FIDO_2_1"];

/// `transports` (0x09): the key is reached over USB, its credentials live on a phone
/// reached over hybrid.
pub const TRANSPORTS: [&str; 2] = ["hybrid", "usb"];

/// `maxMsgSize` (0x05): the largest CTAPHID message, so that hosts never send a request
/// the transport cannot carry.
pub const MAX_MSG_SIZE: usize = MAX_MESSAGE_LEN;

/// `options` (0x04): resident keys, user presence and user verification all happen on the
/// phone; not a platform authenticator; no `clientPin` (the phone verifies the user
/// itself, so a host never asks for a PIN).
pub const OPTIONS: [(&str, bool); 4] = [("rk", true), ("up", true), ("uv", true), ("plat", false)];

/// `pinUvAuthProtocols` (0x06): listed because some hosts (python-fido2 2.x) ask a key
/// for user verification only when it lists a protocol; the key answers getKeyAgreement
/// in both and grants no token (no `pinUvAuthToken` option), so hosts send `uv: true`.
pub const PIN_UV_AUTH_PROTOCOLS: [u64; 2] = [2, 1];

/// `maxCredentialCountInList` (0x07): enough for the lists sites send, so that hosts that
/// probe a list before using it (CTAP 2.2 §6.2.2's pre-flight) send all of it in one probe
/// and the phone gets all of it with the real request (cable-key's `preflight`). Hosts
/// that are told nothing send one credential at a time. No `maxCredentialIdLength`: the
/// phone's credential ids have no length the key could promise.
pub const MAX_CREDENTIAL_COUNT_IN_LIST: u64 = 32;

/// The authenticatorGetInfo response map.
pub fn get_info() -> Value {
    let texts =
        |items: &[&str]| Value::Array(items.iter().map(|s| Value::Text((*s).into())).collect());
    Value::map([
        (Value::Unsigned(0x01), texts(&VERSIONS)),
        (Value::Unsigned(0x03), Value::Bytes(AAGUID.to_vec())),
        (
            Value::Unsigned(0x04),
            Value::map(
                OPTIONS
                    .iter()
                    .map(|(k, v)| (Value::Text((*k).into()), Value::Bool(*v))),
            ),
        ),
        (Value::Unsigned(0x05), Value::Unsigned(MAX_MSG_SIZE as u64)),
        (
            Value::Unsigned(0x06),
            Value::Array(
                PIN_UV_AUTH_PROTOCOLS
                    .iter()
                    .map(|p| Value::Unsigned(*p))
                    .collect(),
            ),
        ),
        (
            Value::Unsigned(0x07),
            Value::Unsigned(MAX_CREDENTIAL_COUNT_IN_LIST),
        ),
        (Value::Unsigned(0x09), texts(&TRANSPORTS)),
    ])
}

/// The whole CTAP2 answer to authenticatorGetInfo: status 0 (CTAP2_OK), then the map in
/// canonical CBOR.
pub fn get_info_response() -> Vec<u8> {
    let mut out = vec![0x00];
    get_info().encode_into(&mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_and_complete() {
        let response = get_info_response();
        assert_eq!(response[0], 0);
        // The strict decoder refuses anything non-canonical.
        let value = cable_proto::cbor::decode(&response[1..]).expect("canonical CBOR");
        assert_eq!(value, get_info());
        let map = value.as_map().expect("a map");
        let get = |k| cable_proto::cbor::map_get(map, k).expect("present");
        let texts = |v: &Value| -> Vec<String> {
            v.as_array()
                .expect("array")
                .iter()
                .map(|t| t.as_text().expect("text").to_owned())
                .collect()
        };
        assert_eq!(texts(get(1)), ["FIDO_2_0", "FIDO_2_1"]);
        assert_eq!(get(3).as_bytes(), Some(&AAGUID[..]));
        assert_eq!(get(5).as_unsigned(), Some(7609));
        assert_eq!(texts(get(9)), ["hybrid", "usb"]);
        assert_eq!(
            get(6),
            &Value::Array(vec![Value::Unsigned(2), Value::Unsigned(1)])
        );
        let options = get(4).as_map().expect("options map");
        assert_eq!(options.len(), 4);
        for (k, v) in OPTIONS {
            assert_eq!(options.get(&Value::Text(k.into())), Some(&Value::Bool(v)));
        }
        assert!(options.get(&Value::Text("clientPin".into())).is_none());
        assert!(options.get(&Value::Text("pinUvAuthToken".into())).is_none());
        // All of a site's list in one probe, credential ids of any length.
        assert_eq!(get(7).as_unsigned(), Some(32));
        assert!(cable_proto::cbor::map_get(map, 8).is_none());
        assert_eq!(map.keys().count(), 7);
    }

    #[test]
    fn option_keys_in_ctap2_order() {
        // Shorter keys first, then bytewise: rk, up, uv, plat.
        let response = get_info_response();
        let at = |s: &str| {
            response
                .windows(s.len())
                .position(|w| w == s.as_bytes())
                .expect("present")
        };
        assert!(at("rk") < at("up") && at("up") < at("uv") && at("uv") < at("plat"));
    }
}
