//! Everything carried inside the transport cipher after the handshake:
//! the phone's post-handshake message, the framing of later messages, the
//! update message with linking data, and the state-assisted client payload
//! (which travels in an HTTP header instead).

mod client_payload;
mod framing;
mod linking;
mod post_handshake;

pub use client_payload::{ClientPayload, HEADER_NAME as CLIENT_PAYLOAD_HEADER};
pub use framing::{Message, MessageType};
pub use linking::{
    linking_signature, LinkSecret, LinkingInfo, UpdateMessage, UPDATE_PADDING_TARGET,
};
pub use post_handshake::{PostHandshake, ProtocolRevision, FEATURE_CTAP, FEATURE_DC};

use crate::cbor::Value;
use crate::error::{Error, Result};

/// Reads an optional byte-string field of a CBOR map.
fn opt_bytes<'a>(
    map: &'a std::collections::BTreeMap<Value, Value>,
    key: u64,
    context: &'static str,
) -> Result<Option<&'a [u8]>> {
    match crate::cbor::map_get(map, key) {
        None => Ok(None),
        Some(v) => v.as_bytes().map(Some).ok_or(Error::BadField {
            context,
            key,
            problem: "must be a byte string",
        }),
    }
}

/// Reads a required byte-string field of a CBOR map.
fn req_bytes<'a>(
    map: &'a std::collections::BTreeMap<Value, Value>,
    key: u64,
    context: &'static str,
) -> Result<&'a [u8]> {
    opt_bytes(map, key, context)?.ok_or(Error::BadField {
        context,
        key,
        problem: "is missing",
    })
}
