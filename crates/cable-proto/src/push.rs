//! The push message a relay sends to a linked phone when a computer contacts it.
//!
//! caBLE fixes only the computer's side of a contact (`/cable/contact/<id>` with the client
//! payload); how a relay wakes its own phones is the relay operator's choice. This project's
//! relay sends a Web Push message whose decrypted body is the canonical CBOR map
//!
//! ```text
//! {1: routing id (bstr, 3 bytes), 2: tunnel id (bstr, 16 bytes), 3: client payload (bstr)}
//! ```
//!
//! The client payload is the CBOR the computer sent in `X-caBLE-Client-Payload`, passed on as
//! bytes (parse it with [`crate::message::ClientPayload::from_cbor`]). The phone then connects
//! `/cable/connect/<routing id>/<tunnel id>` on the relay that sent the push. Unknown keys are
//! ignored so that the format can grow.

use crate::cbor::{self, map_get, Value};
use crate::error::{Error, Result};
use crate::ids::{RoutingId, TunnelId};

const CONTEXT: &str = "push payload";

/// Largest client payload a push message carries (the relay refuses larger headers first).
pub const MAX_CLIENT_PAYLOAD: usize = 512;

/// The decoded push message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushPayload {
    /// The relay instance that holds the tunnel.
    pub routing_id: RoutingId,
    /// The tunnel the computer waits on (a capability: `TunnelId`'s `Debug` is redacted).
    pub tunnel_id: TunnelId,
    /// The computer's client-payload CBOR, verbatim.
    pub client_payload: Vec<u8>,
}

impl PushPayload {
    /// The payload for a tunnel at `routing_id`, carrying the computer's client payload.
    pub fn new(routing_id: RoutingId, tunnel_id: TunnelId, client_payload: Vec<u8>) -> Self {
        PushPayload {
            routing_id,
            tunnel_id,
            client_payload,
        }
    }

    /// The canonical CBOR map.
    pub fn encode(&self) -> Vec<u8> {
        Value::map([
            (
                Value::Unsigned(1),
                Value::Bytes(self.routing_id.as_bytes().to_vec()),
            ),
            (
                Value::Unsigned(2),
                Value::Bytes(self.tunnel_id.as_bytes().to_vec()),
            ),
            (
                Value::Unsigned(3),
                Value::Bytes(self.client_payload.clone()),
            ),
        ])
        .to_bytes()
    }

    /// Parses a push message body; never panics.
    pub fn decode(bytes: &[u8]) -> Result<PushPayload> {
        let value = cbor::decode(bytes)?;
        let map = value.as_map().ok_or(Error::NotAMap { context: CONTEXT })?;
        let field = |key: u64| -> Result<&[u8]> {
            map_get(map, key)
                .ok_or(Error::BadField {
                    context: CONTEXT,
                    key,
                    problem: "is missing",
                })?
                .as_bytes()
                .ok_or(Error::BadField {
                    context: CONTEXT,
                    key,
                    problem: "must be a byte string",
                })
        };
        let bad = |key, problem| Error::BadField {
            context: CONTEXT,
            key,
            problem,
        };
        let routing_id = <[u8; 3]>::try_from(field(1)?)
            .map(RoutingId::from_bytes)
            .map_err(|_| bad(1, "must be 3 bytes"))?;
        let tunnel_id = <[u8; 16]>::try_from(field(2)?)
            .map(TunnelId::from_bytes)
            .map_err(|_| bad(2, "must be 16 bytes"))?;
        let client_payload = field(3)?;
        if client_payload.len() > MAX_CLIENT_PAYLOAD {
            return Err(bad(3, "is too long"));
        }
        Ok(PushPayload {
            routing_id,
            tunnel_id,
            client_payload: client_payload.to_vec(),
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn sample() -> PushPayload {
        PushPayload {
            routing_id: RoutingId::from_bytes([1, 2, 3]),
            tunnel_id: TunnelId::from_bytes([0xaa; 16]),
            client_payload: vec![0xa1, 0x01, 0x40],
        }
    }

    #[test]
    fn round_trip_and_pinned_bytes() {
        let bytes = sample().encode();
        let expected = format!("a3014301020302 50{} 0343a10140", "aa".repeat(16)).replace(' ', "");
        assert_eq!(hex::encode(&bytes), expected);
        assert_eq!(PushPayload::decode(&bytes).unwrap(), sample());
    }

    #[test]
    fn unknown_keys_are_ignored() {
        let p = sample();
        let bytes = Value::map([
            (Value::Unsigned(1), Value::Bytes(vec![1, 2, 3])),
            (Value::Unsigned(2), Value::Bytes(vec![0xaa; 16])),
            (Value::Unsigned(3), Value::Bytes(p.client_payload.clone())),
            (Value::Unsigned(9), Value::Null),
        ])
        .to_bytes();
        assert_eq!(PushPayload::decode(&bytes).unwrap(), p);
    }

    #[test]
    fn malformed_payloads_say_what_was_wrong() {
        let with = |entries: Vec<(u64, Value)>| {
            let bytes =
                Value::map(entries.into_iter().map(|(k, v)| (Value::Unsigned(k), v))).to_bytes();
            PushPayload::decode(&bytes).unwrap_err()
        };
        let ok1 = || (1, Value::Bytes(vec![1, 2, 3]));
        let ok2 = || (2, Value::Bytes(vec![0; 16]));
        let ok3 = || (3, Value::Bytes(vec![]));
        assert!(matches!(
            with(vec![ok2(), ok3()]),
            Error::BadField {
                key: 1,
                problem: "is missing",
                ..
            }
        ));
        assert!(matches!(
            with(vec![(1, Value::Bytes(vec![1, 2])), ok2(), ok3()]),
            Error::BadField {
                key: 1,
                problem: "must be 3 bytes",
                ..
            }
        ));
        assert!(matches!(
            with(vec![ok1(), (2, Value::Text("x".into())), ok3()]),
            Error::BadField {
                key: 2,
                problem: "must be a byte string",
                ..
            }
        ));
        assert!(matches!(
            with(vec![
                ok1(),
                ok2(),
                (3, Value::Bytes(vec![0; MAX_CLIENT_PAYLOAD + 1]))
            ]),
            Error::BadField {
                key: 3,
                problem: "is too long",
                ..
            }
        ));
        assert!(matches!(
            PushPayload::decode(&Value::Unsigned(1).to_bytes()).unwrap_err(),
            Error::NotAMap { .. }
        ));
        assert!(matches!(
            PushPayload::decode(&[0xa3, 0x01]).unwrap_err(),
            Error::Cbor { .. }
        ));
    }
}
