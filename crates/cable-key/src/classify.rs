//! What the bridge does with a CTAP2 request, decided from its bytes before any phone is
//! involved: silent probes, selection and unsupported commands never show a QR code.

use cable_proto::cbor::{self, Value};

use crate::{preflight, status};

/// getAssertion's allowList (0x03).
const ALLOW_LIST: u64 = 0x03;

pub use cable_proto::ctap::command::{
    CLIENT_PIN, GET_ASSERTION, GET_NEXT_ASSERTION, MAKE_CREDENTIAL, SELECTION,
};

/// The two requests the phone answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// makeCredential: a passkey is created on the phone.
    Register,
    /// getAssertion: a passkey on the phone signs.
    SignIn,
}

/// The bridge's decision for one request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Carry it to the phone, as it is.
    Phone {
        /// Which ceremony.
        kind: Kind,
        /// The relying party id named in the request, for the person at the bridge.
        rp_id: String,
    },
    /// The person confirms at the bridge, then the key answers `status` (0 for
    /// authenticatorSelection; PIN_NOT_SET for a zero-length pinUvAuthParam, the probe
    /// hosts send to CTAP 2.0 keys to make them blink).
    Confirm {
        /// The answer once confirmed.
        status: u8,
    },
    /// A silent getAssertion listing credentials: answered at once by [`crate::preflight`].
    Probe {
        /// The relying party id named in the request.
        rp_id: String,
        /// The allow list, PublicKeyCredentialDescriptor maps (never empty).
        credentials: Vec<Value>,
    },
    /// Answer from what the last getAssertion returned.
    NextAssertion,
    /// authenticatorClientPIN: the key answers it itself ([`crate::client_pin`]).
    ClientPin,
    /// Answer this status at once.
    Answer(u8),
}

/// Decides what to do with `command ‖ params`.
pub fn classify(command: u8, params: &[u8]) -> Action {
    match command {
        MAKE_CREDENTIAL => ceremony(Kind::Register, params),
        GET_ASSERTION => ceremony(Kind::SignIn, params),
        GET_NEXT_ASSERTION if params.is_empty() => Action::NextAssertion,
        SELECTION if params.is_empty() => Action::Confirm { status: 0 },
        GET_NEXT_ASSERTION | SELECTION => Action::Answer(status::INVALID_LENGTH),
        CLIENT_PIN => Action::ClientPin,
        // reset, bioEnrollment, credentialManagement, largeBlobs, config, the
        // prototype and vendor commands: a key without them says so.
        _ => Action::Answer(status::INVALID_COMMAND),
    }
}

/// A parameter's map key and the check of its type.
type Required = (u64, fn(&Value) -> bool);

/// Map keys of the two requests (CTAP 2.2 §6.1 and §6.2).
struct Keys {
    /// Parameters that must be there, with the type they must have.
    required: &'static [Required],
    /// The parameter naming the relying party, and how its id is read from it.
    rp: u64,
    rp_id: fn(&Value) -> Option<&str>,
    options: u64,
    pin_uv_auth_param: u64,
}

fn is_bytes(v: &Value) -> bool {
    v.as_bytes().is_some()
}
fn is_text(v: &Value) -> bool {
    v.as_text().is_some()
}
fn is_map(v: &Value) -> bool {
    v.as_map().is_some()
}
fn is_array(v: &Value) -> bool {
    v.as_array().is_some()
}

const MAKE_CREDENTIAL_KEYS: Keys = Keys {
    // clientDataHash, rp, user, pubKeyCredParams.
    required: &[(1, is_bytes), (2, is_map), (3, is_map), (4, is_array)],
    rp: 2,
    rp_id: |rp| {
        rp.as_map()
            .and_then(|m| m.get(&Value::Text("id".into())))
            .and_then(Value::as_text)
    },
    options: 7,
    pin_uv_auth_param: 8,
};

const GET_ASSERTION_KEYS: Keys = Keys {
    // rpId, clientDataHash.
    required: &[(1, is_text), (2, is_bytes)],
    rp: 1,
    rp_id: Value::as_text,
    options: 5,
    pin_uv_auth_param: 6,
};

fn ceremony(kind: Kind, params: &[u8]) -> Action {
    let keys = match kind {
        Kind::Register => &MAKE_CREDENTIAL_KEYS,
        Kind::SignIn => &GET_ASSERTION_KEYS,
    };
    if params.is_empty() {
        return Action::Answer(status::MISSING_PARAMETER);
    }
    // Hosts do not all write maps in canonical order (authenticator-rs writes `uv` before
    // `up`), and security keys accept them; the request is made canonical before it goes
    // to the phone ([`crate::forward::canonical`]).
    let Ok(value) = cbor::decode_any_key_order(params) else {
        return Action::Answer(status::INVALID_CBOR);
    };
    let Some(map) = value.as_map() else {
        return Action::Answer(status::INVALID_CBOR);
    };
    for (key, has_type) in keys.required {
        match cbor::map_get(map, *key) {
            Some(v) if has_type(v) => {}
            _ => return Action::Answer(status::MISSING_PARAMETER),
        }
    }
    if cbor::map_get(map, keys.pin_uv_auth_param)
        .and_then(Value::as_bytes)
        .is_some_and(<[u8]>::is_empty)
    {
        return Action::Confirm {
            status: status::PIN_NOT_SET,
        };
    }
    let up = match cbor::map_get(map, keys.options) {
        None => true,
        Some(options) => {
            let Some(options) = options.as_map() else {
                return Action::Answer(status::INVALID_CBOR);
            };
            match options.get(&Value::Text("up".into())) {
                None => true,
                Some(Value::Bool(up)) => *up,
                Some(_) => return Action::Answer(status::INVALID_CBOR),
            }
        }
    };
    let rp_id = cbor::map_get(map, keys.rp)
        .and_then(keys.rp_id)
        .unwrap_or_default()
        .to_owned();
    match (kind, up) {
        // Hosts test exclude and allow lists this way, and ask for discoverable credentials;
        // a key answers without anybody touching it, so nobody is asked to scan a QR code.
        (Kind::SignIn, false) => match cbor::map_get(map, ALLOW_LIST).map(preflight::descriptors) {
            None => Action::Answer(status::NO_CREDENTIALS),
            Some(None) => Action::Answer(status::INVALID_CBOR),
            Some(Some(credentials)) if credentials.is_empty() => {
                Action::Answer(status::NO_CREDENTIALS)
            }
            Some(Some(credentials)) => Action::Probe { rp_id, credentials },
        },
        // makeCredential always needs presence; `up: false` is an invalid option there.
        (Kind::Register, false) => Action::Answer(status::INVALID_OPTION),
        (_, true) => Action::Phone { kind, rp_id },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(s: &str) -> Value {
        Value::Text(s.into())
    }

    fn get_assertion(options: Option<Value>, pin_uv_auth_param: Option<Vec<u8>>) -> Vec<u8> {
        let mut entries = vec![
            (Value::Unsigned(1), text("example.com")),
            (Value::Unsigned(2), Value::Bytes(vec![7; 32])),
        ];
        if let Some(o) = options {
            entries.push((Value::Unsigned(5), o));
        }
        if let Some(p) = pin_uv_auth_param {
            entries.push((Value::Unsigned(6), Value::Bytes(p)));
        }
        Value::map(entries).to_bytes()
    }

    fn make_credential(options: Option<Value>) -> Vec<u8> {
        let mut entries = vec![
            (Value::Unsigned(1), Value::Bytes(vec![7; 32])),
            (
                Value::Unsigned(2),
                Value::map([(text("id"), text("example.org"))]),
            ),
            (
                Value::Unsigned(3),
                Value::map([(text("id"), Value::Bytes(vec![1]))]),
            ),
            (Value::Unsigned(4), Value::Array(vec![])),
        ];
        if let Some(o) = options {
            entries.push((Value::Unsigned(7), o));
        }
        Value::map(entries).to_bytes()
    }

    fn up(value: bool) -> Value {
        Value::map([(text("up"), Value::Bool(value))])
    }

    #[test]
    fn ceremonies_go_to_the_phone_with_their_rp_id() {
        assert_eq!(
            classify(GET_ASSERTION, &get_assertion(None, None)),
            Action::Phone {
                kind: Kind::SignIn,
                rp_id: "example.com".into()
            }
        );
        assert_eq!(
            classify(GET_ASSERTION, &get_assertion(Some(up(true)), None)),
            Action::Phone {
                kind: Kind::SignIn,
                rp_id: "example.com".into()
            }
        );
        assert_eq!(
            classify(MAKE_CREDENTIAL, &make_credential(None)),
            Action::Phone {
                kind: Kind::Register,
                rp_id: "example.org".into()
            }
        );
    }

    #[test]
    fn silent_probes_are_answered_at_once() {
        assert_eq!(
            classify(GET_ASSERTION, &get_assertion(Some(up(false)), None)),
            Action::Answer(status::NO_CREDENTIALS)
        );
        let credential = Value::map([
            (text("id"), Value::Bytes(vec![4; 16])),
            (text("type"), text("public-key")),
        ]);
        let listing = |list: Value| {
            let mut params = cbor::decode(&get_assertion(Some(up(false)), None))
                .expect("CBOR")
                .as_map()
                .expect("map")
                .clone();
            params.insert(Value::Unsigned(3), list);
            Value::Map(params).to_bytes()
        };
        assert_eq!(
            classify(
                GET_ASSERTION,
                &listing(Value::Array(vec![credential.clone()]))
            ),
            Action::Probe {
                rp_id: "example.com".into(),
                credentials: vec![credential]
            }
        );
        assert_eq!(
            classify(GET_ASSERTION, &listing(Value::Array(vec![]))),
            Action::Answer(status::NO_CREDENTIALS)
        );
        assert_eq!(
            classify(GET_ASSERTION, &listing(Value::Array(vec![text("x")]))),
            Action::Answer(status::INVALID_CBOR)
        );
        assert_eq!(
            classify(MAKE_CREDENTIAL, &make_credential(Some(up(false)))),
            Action::Answer(status::INVALID_OPTION)
        );
    }

    #[test]
    fn a_zero_length_pin_uv_auth_param_is_a_touch_probe() {
        assert_eq!(
            classify(GET_ASSERTION, &get_assertion(None, Some(Vec::new()))),
            Action::Confirm {
                status: status::PIN_NOT_SET
            }
        );
        // A real one goes to the phone, which judges it.
        assert!(matches!(
            classify(GET_ASSERTION, &get_assertion(None, Some(vec![1; 16]))),
            Action::Phone { .. }
        ));
    }

    #[test]
    fn broken_requests_never_reach_the_phone() {
        assert_eq!(
            classify(GET_ASSERTION, &[]),
            Action::Answer(status::MISSING_PARAMETER)
        );
        assert_eq!(
            classify(GET_ASSERTION, &[0xa1]),
            Action::Answer(status::INVALID_CBOR)
        );
        assert_eq!(
            classify(GET_ASSERTION, &Value::Unsigned(1).to_bytes()),
            Action::Answer(status::INVALID_CBOR)
        );
        let no_hash = Value::map([(Value::Unsigned(1), text("example.com"))]).to_bytes();
        assert_eq!(
            classify(GET_ASSERTION, &no_hash),
            Action::Answer(status::MISSING_PARAMETER)
        );
        let bad_up = get_assertion(Some(Value::map([(text("up"), Value::Unsigned(0))])), None);
        assert_eq!(
            classify(GET_ASSERTION, &bad_up),
            Action::Answer(status::INVALID_CBOR)
        );
    }

    #[test]
    fn the_rest_is_answered_as_a_key_without_it_would() {
        for command in [0x07, 0x09, 0x0a, 0x0c, 0x0d, 0x40, 0x41, 0x50] {
            assert_eq!(
                classify(command, &[0xa0]),
                Action::Answer(status::INVALID_COMMAND),
                "{command:#04x}"
            );
        }
        assert_eq!(classify(SELECTION, &[]), Action::Confirm { status: 0 });
        assert_eq!(classify(CLIENT_PIN, &[0xa0]), Action::ClientPin);
        assert_eq!(classify(GET_NEXT_ASSERTION, &[]), Action::NextAssertion);
        assert_eq!(
            classify(GET_NEXT_ASSERTION, &[0xa0]),
            Action::Answer(status::INVALID_LENGTH)
        );
    }
}
