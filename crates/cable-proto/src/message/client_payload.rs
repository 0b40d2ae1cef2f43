//! The state-assisted client payload: CBOR `{1: link id, 2: client nonce,
//! 3: "ga" | "mc"}`, sent hex-encoded in the `X-caBLE-Client-Payload`
//! header of `/cable/contact/` and pushed to the phone by the tunnel server.

use super::req_bytes;
use crate::cbor::{self, map_get, Value};
use crate::error::{Error, Result};
use crate::qr::RequestHint;

const CONTEXT: &str = "client payload";

/// The header's name.
pub const HEADER_NAME: &str = crate::wire::CLIENT_PAYLOAD_HEADER;

/// The decoded client payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientPayload {
    /// The link id from the linking data.
    pub link_id: Vec<u8>,
    /// 16 random bytes from the desktop (the advert key's salt).
    pub client_nonce: [u8; 16],
    /// The request hint.
    pub hint: RequestHint,
}

impl ClientPayload {
    /// A payload with a fresh nonce from `rng`.
    pub fn new(
        rng: &mut impl rand_core::CryptoRngCore,
        link_id: Vec<u8>,
        hint: RequestHint,
    ) -> ClientPayload {
        let mut client_nonce = [0u8; 16];
        rng.fill_bytes(&mut client_nonce);
        ClientPayload {
            link_id,
            client_nonce,
            hint,
        }
    }

    /// The canonical CBOR map.
    pub fn to_cbor(&self) -> Vec<u8> {
        Value::map([
            (Value::Unsigned(1), Value::Bytes(self.link_id.clone())),
            (Value::Unsigned(2), Value::Bytes(self.client_nonce.to_vec())),
            (
                Value::Unsigned(3),
                Value::Text(self.hint.as_str().to_owned()),
            ),
        ])
        .to_bytes()
    }

    /// The header value: upper-case hex of the CBOR.
    pub fn to_header_value(&self) -> String {
        hex::encode_upper(self.to_cbor())
    }

    /// Parses the CBOR map.
    pub fn from_cbor(bytes: &[u8]) -> Result<ClientPayload> {
        let value = cbor::decode(bytes)?;
        let map = value.as_map().ok_or(Error::NotAMap { context: CONTEXT })?;
        let link_id = req_bytes(map, 1, CONTEXT)?.to_vec();
        let client_nonce =
            <[u8; 16]>::try_from(req_bytes(map, 2, CONTEXT)?).map_err(|_| Error::BadField {
                context: CONTEXT,
                key: 2,
                problem: "must be 16 bytes",
            })?;
        let hint = match map_get(map, 3) {
            None => RequestHint::default(),
            Some(v) => RequestHint::from_wire(v.as_text().ok_or(Error::BadField {
                context: CONTEXT,
                key: 3,
                problem: "must be a text string",
            })?),
        };
        Ok(ClientPayload {
            link_id,
            client_nonce,
            hint,
        })
    }

    /// Parses a header value (hex in either case).
    pub fn from_header_value(text: &str) -> Result<ClientPayload> {
        let bytes = hex::decode(text.trim()).map_err(|_| Error::BadHex)?;
        ClientPayload::from_cbor(&bytes)
    }
}
