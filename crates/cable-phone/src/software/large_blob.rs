//! The `largeBlob` extension as phones answer it over hybrid (the CTAP extension, not the
//! authenticatorLargeBlobs command of security keys): registration reports
//! `{"supported": true}`; sign-in reads `{"blob", "originalSize"}` or writes and reports
//! `{"written": bool}`. The data stays compressed as the client sent it, per credential.

use cable_proto::cbor::Value;
use cable_proto::ctap::status;

use super::store::{LargeBlob, PasskeyStore};
use crate::authenticator::CtapStatus;

/// The most compressed data kept per credential; a larger write reports `written: false`.
pub const MAX_COMPRESSED_LEN: usize = 16 * 1024;

/// authData flag: the user was verified.
const USER_VERIFIED: u8 = 0x04;

fn text(s: &str) -> Value {
    Value::Text(s.into())
}

/// What a sign-in asked of the extension.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Request {
    Read,
    Write(LargeBlob),
}

/// Takes the `largeBlob` member out of the extensions at `key` (passkey-types does not know
/// it), returning it.
fn take(params: &mut Value, key: u64) -> Option<Value> {
    let Value::Map(map) = params else {
        return None;
    };
    let Some(Value::Map(extensions)) = map.get_mut(&Value::Unsigned(key)) else {
        return None;
    };
    let taken = extensions.remove(&text("largeBlob"));
    if extensions.is_empty() {
        map.remove(&Value::Unsigned(key));
    }
    taken
}

/// makeCredential: whether `largeBlob.support` was asked for (any valid value).
pub(crate) fn take_registration(params: &mut Value) -> Result<bool, CtapStatus> {
    match take(params, 6) {
        None => Ok(false),
        Some(Value::Map(input)) => match input.get(&text("support")) {
            Some(Value::Text(s)) if s == "required" || s == "preferred" => Ok(true),
            _ => Err(CtapStatus(status::INVALID_PARAMETER)),
        },
        Some(_) => Err(CtapStatus(status::INVALID_PARAMETER)),
    }
}

/// getAssertion: `{"read": true}` or `{"write", "originalSize"}`, nothing else (as Chrome
/// parses it).
pub(crate) fn take_authentication(params: &mut Value) -> Result<Option<Request>, CtapStatus> {
    let invalid = Err(CtapStatus(status::INVALID_PARAMETER));
    let Some(input) = take(params, 4) else {
        return Ok(None);
    };
    let Value::Map(input) = input else {
        return invalid;
    };
    let member = |name: &str| input.get(&text(name));
    match (
        member("read"),
        member("write"),
        member("originalSize"),
        input.len(),
    ) {
        (Some(Value::Bool(true)), None, None, 1) => Ok(Some(Request::Read)),
        (None, Some(Value::Bytes(data)), Some(Value::Unsigned(size)), 2) => {
            Ok(Some(Request::Write(LargeBlob {
                compressed: data.clone(),
                original_size: *size,
            })))
        }
        _ => invalid,
    }
}

fn unsigned_outputs(
    response: &mut Value,
    key: u64,
) -> Option<&mut std::collections::BTreeMap<Value, Value>> {
    let Value::Map(map) = response else {
        return None;
    };
    let outputs = map
        .entry(Value::Unsigned(key))
        .or_insert_with(|| Value::Map(Default::default()));
    match outputs {
        Value::Map(outputs) => Some(outputs),
        _ => None,
    }
}

/// makeCredential's answer: every credential this authenticator makes can hold a blob.
pub(crate) fn answer_registration(response: &mut Value) {
    if let Some(outputs) = unsigned_outputs(response, 6) {
        outputs.insert(
            text("largeBlob"),
            Value::map([(text("supported"), Value::Bool(true))]),
        );
    }
}

/// getAssertion's answer for the credential that signed. A write needs the user verified
/// (the blob is the relying party's data, and this replaces it) and a size this store keeps.
pub(crate) fn answer_authentication(
    request: Request,
    response: &mut Value,
    store: &PasskeyStore,
) -> Result<(), CtapStatus> {
    let (id, verified) = {
        let Value::Map(map) = &*response else {
            return Ok(());
        };
        let id = map
            .get(&Value::Unsigned(1))
            .and_then(Value::as_map)
            .and_then(|c| c.get(&text("id")))
            .and_then(Value::as_bytes)
            .map(<[u8]>::to_vec);
        let flags = map
            .get(&Value::Unsigned(2))
            .and_then(Value::as_bytes)
            .and_then(|a| a.get(32).copied())
            .unwrap_or(0);
        (id, flags & USER_VERIFIED != 0)
    };
    let Some(id) = id else {
        return Ok(());
    };
    let output = match request {
        Request::Read => match store.large_blob(&id) {
            Some(blob) => Value::map([
                (text("blob"), Value::Bytes(blob.compressed)),
                (text("originalSize"), Value::Unsigned(blob.original_size)),
            ]),
            None => return Ok(()),
        },
        Request::Write(blob) => {
            let written = verified
                && blob.compressed.len() <= MAX_COMPRESSED_LEN
                && store
                    .set_large_blob(&id, blob)
                    .map_err(|e| CtapStatus(u8::from(e)))?;
            Value::map([(text("written"), Value::Bool(written))])
        }
    };
    if let Some(outputs) = unsigned_outputs(response, 8) {
        outputs.insert(text("largeBlob"), output);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get_assertion(large_blob: Value) -> Value {
        Value::map([
            (Value::Unsigned(1), text("example.com")),
            (
                Value::Unsigned(4),
                Value::map([(text("largeBlob"), large_blob)]),
            ),
        ])
    }

    #[test]
    fn only_the_shapes_chrome_sends_are_accepted() {
        let mut read = get_assertion(Value::map([(text("read"), Value::Bool(true))]));
        assert_eq!(take_authentication(&mut read), Ok(Some(Request::Read)));
        // Taken out, and the emptied extensions with it.
        assert_eq!(
            read,
            Value::map([(Value::Unsigned(1), text("example.com"))])
        );
        for bad in [
            Value::map([(text("read"), Value::Bool(false))]),
            Value::map([(text("read"), Value::Unsigned(1))]),
            Value::map([(text("write"), Value::Bytes(vec![1]))]),
            Value::map([
                (text("read"), Value::Bool(true)),
                (text("write"), Value::Bytes(vec![1])),
                (text("originalSize"), Value::Unsigned(1)),
            ]),
            Value::map([
                (text("write"), Value::Text("x".into())),
                (text("originalSize"), Value::Unsigned(1)),
            ]),
            Value::Bool(true),
        ] {
            let mut request = get_assertion(bad.clone());
            assert_eq!(
                take_authentication(&mut request),
                Err(CtapStatus(status::INVALID_PARAMETER)),
                "{bad:?}"
            );
        }
        let mut none = Value::map([(Value::Unsigned(1), text("example.com"))]);
        assert_eq!(take_authentication(&mut none), Ok(None));
    }
}
