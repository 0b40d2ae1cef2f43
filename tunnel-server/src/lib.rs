//! The caBLE v2 (FIDO hybrid) tunnel relay.
//!
//! A phone opens a tunnel with `GET /cable/new/<tunnel id>`; a computer joins it with
//! `GET /cable/connect/<routing id>/<tunnel id>`; the relay then forwards binary WebSocket
//! messages between the two, one message in, one message out, in order. Everything it relays
//! is end-to-end encrypted by the two peers: the relay never decrypts, inspects or logs payload
//! bytes, and refers to tunnels in logs only by a short hash of their id.
//!
//! With contact keys ([`ContactConfig`]) it also serves linked phones: `POST
//! /cable/push/register` turns a Web Push subscription into a contact id (the subscription
//! sealed under a relay key, see [`contact`]), and `GET /cable/contact/<id>` opens a tunnel on
//! this instance, wakes the phone with a Web Push message carrying
//! [`cable_proto::push::PushPayload`] and answers 101; the phone joins with `connect`.
//!
//! What it deliberately does not do: keep any state about phones (a contact id carries all of
//! it), routing between instances (one instance owns one routing id; a standard load
//! balancer routes `connect` by the routing id in the path), HTTP/2, and anything beyond the
//! three admin endpoints.
//!
//! # Protocol behaviour
//! - Requests must be `GET` (else 405) WebSocket upgrades (else 400) offering the subprotocol
//!   `fido.cable` (else 400); the 101 selects `fido.cable`. Unknown paths: 404.
//! - `new`: the 101 carries `X-caBLE-Routing-ID` (this instance's id, 6 upper-case hex). The
//!   tunnel is registered before the 101 is sent. A tunnel id already in use: 409.
//! - `connect`: another instance's routing id, an unknown tunnel or one already joined: 404.
//!   Hex is accepted in either case.
//! - Messages the phone sends before the computer joins are buffered (bounded) and delivered
//!   first. Pings are answered by the relay and not forwarded.
//!
//! # Close codes sent to clients
//! | code | reason text | when |
//! |---|---|---|
//! | 1000 | `peer closed` / `peer disconnected` | the other side sent a close frame / dropped its connection |
//! | 1001 | `relay shutting down` | drain deadline passed, or [`RunningRelay::stop`] |
//! | 1002 | `protocol error` | this side broke the WebSocket protocol (peer gets 1000 `peer protocol error`) |
//! | 1008 | `text frames are not allowed` | this side sent a text frame (peer: 1008 `peer sent a text frame`) |
//! | 1008 | `message limit reached` | either direction exceeded its message count (both sides) |
//! | 1008 | `tunnel lifetime exceeded` | the lifetime counted from `new` ran out (both sides) |
//! | 1008 | `no peer joined in time` | unjoined expiry (phone) |
//! | 1008 | `too many messages before peer joined` | the pre-join buffer is full (phone) |
//! | 1009 | `message too big` | this side sent a message over the size limit (peer: 1009 `peer sent a message too big`) |
//! | 1011 | `peer failed to join` | the computer's handshake broke after it claimed the tunnel |
//!
//! # HTTP statuses
//! 400 not a WebSocket upgrade / no `fido.cable` / malformed, a bad `X-caBLE-Client-Payload`
//! (hex, at most 1024 characters), a bad registration body (the reason as text); 410 a contact
//! id that does not open or a subscription the push service calls gone; 502 a push refused or
//! not delivered; 503 a push service failing or slower than the push timeout (the push is
//! sent before the 101, so that 410 can be answered); 404 `contact` or `register` on a relay
//! without contact keys, unknown path, wrong
//! routing id, unknown or already joined tunnel (a malformed path's 404 carries a one-line
//! `text/plain` body naming the part that was wrong, from [`TunnelPath::parse`]); 405 not GET; 409 duplicate tunnel id; 429
//! per-source rate limit; 431 request head too large; 503 too many pending tunnels, too many
//! connections, or draining (`new` only). A request head not complete within the handshake
//! timeout gets its connection closed without an answer.
//!
//! # Client addresses behind a balancer
//! The per-source rate limit and the log lines use the socket's peer unless
//! [`ClientAddresses`] names trusted balancer networks. With `proxy_protocol`, every tunnel
//! connection must come from one and start with a PROXY protocol header (v1 or v2,
//! [`proxy_protocol`]), read before TLS within the handshake timeout and never past its
//! end; other connections are closed without an answer. Without it, a trusted peer's
//! `X-Forwarded-For` (or `Forwarded`) names the client: its rightmost address outside the
//! trusted networks ([`client_addr`]).
//!
//! # Admin listener
//! `GET`/`HEAD` `/healthz` (200 while the process serves), `/readyz` (503 once draining) and
//! `/metrics` (OpenMetrics text), one request per connection. A client has 2 s to send its
//! request head, else it is disconnected without an answer; when 256 connections are waiting
//! for their heads, a new one evicts the oldest, so idle or slow clients cannot keep probes
//! out. The relay binary binds it to loopback unless told otherwise (`--admin-listen`).
//!
//! # Logging: keep dependencies' debug and trace output off
//! The relay logs tunnels only by [`ShortHash`] because a tunnel id is a capability: whoever
//! knows it can join the tunnel. Its dependencies do not know that: `tungstenite` logs a
//! client's HTTP request, path and tunnel id included, and every frame at trace level, and `rustls` describes
//! connections at debug. An embedder whose subscriber enables `trace` globally therefore logs
//! capabilities. Scope verbose levels to your own crates (`warn,my_app=trace,cable_tunnel_server=trace`
//! rather than `trace`), and name a dependency only when you mean to see its output. The
//! `cable-tunnel-server` binary's `--log` applies a bare level to the relay's crates only.
//!
//! # In-process use (tests of other crates)
//! ```no_run
//! # async fn example() -> Result<(), cable_tunnel_server::RelayError> {
//! use cable_tunnel_server::{Relay, RelayConfig};
//! let relay = Relay::bind(RelayConfig::default()).await?; // 127.0.0.1:0, routing id 000000
//! let base = relay.url(); // "ws://127.0.0.1:<port>"
//! let routing_id = relay.routing_id().to_hex(); // "000000"
//! // phone:    {base}/cable/new/<32 hex>                  (subprotocol fido.cable)
//! // computer: {base}/cable/connect/{routing_id}/<32 hex>
//! relay.drain(); // readyz 503, `new` refused, live tunnels kept until the drain deadline
//! relay.shutdown().await?; // or: close everything now and wait for exit
//! # Ok(()) }
//! ```
//! Central types: [`RelayConfig`] (with [`Limits`]), [`Relay::bind`] → [`RunningRelay`]
//! (addresses, [`RelayHandle`] for drain/stop, [`Metrics`]), and [`RelayError`].

mod admin;
pub mod admin_token;
pub mod client_addr;
mod config;
pub mod contact;
pub mod domain_names;
mod error;
mod exposition;
mod handshake;
mod metrics;
pub mod proxy_protocol;
mod rate_limit;
mod registry;
mod server;
mod state;
mod stream;
mod throttle;
mod tls;
mod tls_reload;
mod tunnel;
mod webpush;

pub use admin_token::AdminToken;
/// The ids and the request paths are the protocol core's, so that the relay and its clients
/// cannot disagree about them.
pub use cable_proto::domain::TunnelPath;
pub use cable_proto::ids::{RoutingId, ShortHash, TunnelId};
/// The subprotocol the relay requires and selects, and the header carrying the routing id on
/// `new`.
pub use cable_proto::wire::{ROUTING_ID_HEADER, SUBPROTOCOL};
pub use client_addr::{Cidr, ForwardedHeader};
pub use config::{ClientAddresses, ContactConfig, Limits, RelayConfig};
pub use error::RelayError;
pub use metrics::{
    AddressSource, CloseReason, ContactOutcome, Metrics, ProxyRefusal, RejectReason,
};
pub use server::{Relay, RelayHandle, RunningRelay};
pub use tls::server_config_from_pem;
pub use tls_reload::TlsFiles;
pub use webpush::{PushFailure, VapidKey};

/// The request-head parser and router, for the fuzz targets; not a supported API.
#[doc(hidden)]
pub mod fuzzing {
    pub use crate::handshake::{parse_head, Head, Refusal};
}
