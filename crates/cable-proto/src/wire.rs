//! Names the tunnel wire shares between the phone, the computer and the relay: the
//! WebSocket subprotocol and the caBLE HTTP headers (`fido_constants.h` in Chromium).
//!
//! Header names are spelled as Chromium sends them; HTTP compares them without regard to
//! case, and libraries that need lower case (the `http` crate's `from_static`) must convert.

/// The WebSocket subprotocol every tunnel request offers and a relay must select
/// (`Sec-WebSocket-Protocol`). Compared case-sensitively, as RFC 6455 says.
pub const SUBPROTOCOL: &str = "fido.cable";

/// The response header to `/cable/new/` carrying the relay instance's routing id
/// (6 hex characters).
pub const ROUTING_ID_HEADER: &str = "X-caBLE-Routing-ID";

/// The request header to `/cable/contact/` carrying the hex of the client-payload CBOR.
pub const CLIENT_PAYLOAD_HEADER: &str = "X-caBLE-Client-Payload";

/// The request header to `/cable/contact/` asking the relay to signal the phone's arrival
/// with one `00` message; a relay that will do so echoes it in the 101.
pub const SIGNAL_CONNECTION_HEADER: &str = "X-caBLE-Signal-Connection";
