//! Async WebSocket tunnel connections for the hybrid (caBLE v2) transport.
//!
//! Both roles reach each other through a tunnel server ("relay"). The phone opens
//! `/cable/new/<TUNNEL_ID>` and learns the relay's 3-byte routing id from the
//! `X-caBLE-Routing-ID` response header; the computer opens
//! `/cable/connect/<ROUTING_ID>/<TUNNEL_ID>`. Both request the `fido.cable` subprotocol and
//! fail unless the relay selects it. After the upgrade the tunnel carries whole binary
//! messages, relayed 1:1.
//!
//! What this crate is: DNS + TCP (with `TCP_NODELAY`) + TLS (rustls with the ring provider,
//! public web PKI roots plus optional private CAs) + the WebSocket upgrade and its caBLE
//! headers, then a message pipe with per-call deadlines and typed errors that tell a normal
//! close from a lost connection.
//!
//! What it deliberately does not do: the Noise handshake or any message parsing (that is
//! `cable-proto`, a sans-IO crate; [`EncryptedChannel`] only applies its `Crypter`), retries,
//! redirects, HTTP/2, or any HTTP beyond that one registration request. Plaintext `ws://` is for
//! loopback relays and tests; other hosts need an explicit opt-in.
//!
//! Central types:
//! - [`Connector`]: configured once (trust roots, limits), opens connections:
//!   [`Connector::open_new_tunnel`] (phone) and [`Connector::connect_tunnel`] (computer);
//!   [`Connector::open_contact`] for the computer's state-assisted `/cable/contact/`, and
//!   [`Connector::register_push`], the phone's one plain HTTP request: registering its Web
//!   Push subscription for a contact id.
//! - [`TunnelConnection`]: `send`/`recv`/`close` of binary messages, each with a deadline.
//! - [`EncryptedChannel`]: a connection plus `cable-proto`'s `Crypter` after the handshake:
//!   plaintext in and out.
//! - [`RelayUrl`]: a relay base URL and the tunnel paths built on it.
//! - [`TransportError`]: every failure, typed.
//!
//! Deadlines are absolute [`tokio::time::Instant`]s so a caller can give a whole protocol phase
//! one deadline. Cancellation is by dropping the future (e.g. in `tokio::select!` with a
//! `tokio_util::sync::CancellationToken`); `recv` is cancel-safe.
//!
//! # Logging: keep the WebSocket library's debug and trace output off
//!
//! A tunnel id is a capability: whoever knows it can join the tunnel while it is open, and
//! with the routing id it makes up the whole connect URL. This crate never logs it (nor keys,
//! nor payloads), but its dependencies do not know that: `tungstenite` logs the HTTP request it
//! sends, path and tunnel id included, and every frame it reads or writes at trace level, and `rustls` and `tokio-tungstenite`
//! describe connections at debug. An application that turns on `trace` for everything
//! therefore writes capabilities into its logs. Scope verbose levels to your own crates and
//! keep dependencies at `warn` unless you name them on purpose, e.g. with
//! `tracing_subscriber::EnvFilter::new("warn,my_app=trace,cable_transport=trace")` rather than
//! `EnvFilter::new("trace")`. The `cable` CLI does this: `-vvv` or `RUST_LOG=trace` reach the
//! workspace's crates only.

mod connection;
mod connector;
mod encrypted;
mod error;
mod register;
mod relay_url;

/// The subprotocol and header names, defined once in `cable-proto` for every party.
pub use cable_proto::wire::{
    CLIENT_PAYLOAD_HEADER, ROUTING_ID_HEADER, SIGNAL_CONNECTION_HEADER, SUBPROTOCOL,
};
pub use connection::TunnelConnection;
pub use connector::{Connector, ConnectorBuilder, MAX_MESSAGE_SIZE};
pub use encrypted::EncryptedChannel;
pub use error::{Operation, RoutingIdProblem, TransportError, UrlProblem, WebSocketError};
pub use relay_url::RelayUrl;
pub use tokio::time::Instant;
