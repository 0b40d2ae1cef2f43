//! Prometheus metrics. Label children are resolved once at start-up so that the relay's hot
//! path only does relaxed atomic adds (no label hashing, no locks).

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;

use crate::exposition::{Format, ProcessMetrics};

use crate::contact::RegisterError;
use crate::proxy_protocol::ProxyHeaderError;
use crate::webpush::PushFailure;

/// Why a request was refused before it became a WebSocket (or why its handshake failed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RejectReason {
    /// Path the relay does not serve, or a malformed one (404; the answer's body and the log
    /// line name the part that was wrong).
    UnknownPath,
    /// `/cable/contact/` or `/cable/push/register` on a relay without contact keys (404).
    ContactUnsupported,
    /// A contact id that does not open: malformed, unknown or expired key, bad tag (410).
    ContactGone,
    /// `X-caBLE-Client-Payload` missing, repeated, not hex or too long (400).
    BadClientPayload,
    /// The push service says the subscription is gone (410).
    PushGone,
    /// The push service refused the message or the exchange broke (502).
    PushFailed,
    /// The push service was slow, overloaded or failing (503).
    PushUnavailable,
    /// A registration body was refused (400; the body names the problem).
    BadRegistration,
    /// Method other than GET (405).
    MethodNotAllowed,
    /// Not a valid WebSocket upgrade request (400).
    NotWebSocket,
    /// `Sec-WebSocket-Protocol: fido.cable` missing (400).
    MissingSubprotocol,
    /// Unparseable HTTP request (400).
    MalformedRequest,
    /// Request head larger than the configured maximum (431).
    HeadTooLarge,
    /// `connect` names another instance's routing id (404).
    WrongRoutingId,
    /// `connect` to a tunnel id nobody opened (404).
    UnknownTunnel,
    /// `connect` to a tunnel that already has its computer (404).
    AlreadyJoined,
    /// `new` with a tunnel id that is in use (409).
    DuplicateTunnel,
    /// Per-source rate limit exceeded (429).
    RateLimited,
    /// Too many pending tunnels (503).
    PendingLimit,
    /// Too many open connections (503).
    ConnectionLimit,
    /// `new` while draining (503).
    Draining,
    /// TLS handshake plus request head not done within the handshake timeout (connection closed).
    HandshakeTimeout,
    /// TLS handshake failed (connection closed).
    TlsFailed,
    /// Client went away or broke the connection during the handshake.
    HandshakeIo,
    /// `--proxy-protocol`: a peer outside the trusted networks, or no valid PROXY header
    /// (connection closed; `proxy_headers_refused` says why).
    ProxyHeader,
}

impl RejectReason {
    const ALL: [RejectReason; 25] = [
        Self::UnknownPath,
        Self::ContactUnsupported,
        Self::ContactGone,
        Self::BadClientPayload,
        Self::PushGone,
        Self::PushFailed,
        Self::PushUnavailable,
        Self::BadRegistration,
        Self::MethodNotAllowed,
        Self::NotWebSocket,
        Self::MissingSubprotocol,
        Self::MalformedRequest,
        Self::HeadTooLarge,
        Self::WrongRoutingId,
        Self::UnknownTunnel,
        Self::AlreadyJoined,
        Self::DuplicateTunnel,
        Self::RateLimited,
        Self::PendingLimit,
        Self::ConnectionLimit,
        Self::Draining,
        Self::HandshakeTimeout,
        Self::TlsFailed,
        Self::HandshakeIo,
        Self::ProxyHeader,
    ];

    /// Label value used in metrics and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::UnknownPath => "unknown_path",
            Self::ContactUnsupported => "contact_unsupported",
            Self::ContactGone => "contact_gone",
            Self::BadClientPayload => "bad_client_payload",
            Self::PushGone => "push_gone",
            Self::PushFailed => "push_failed",
            Self::PushUnavailable => "push_unavailable",
            Self::BadRegistration => "bad_registration",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::NotWebSocket => "not_websocket",
            Self::MissingSubprotocol => "missing_subprotocol",
            Self::MalformedRequest => "malformed_request",
            Self::HeadTooLarge => "head_too_large",
            Self::WrongRoutingId => "wrong_routing_id",
            Self::UnknownTunnel => "unknown_tunnel",
            Self::AlreadyJoined => "already_joined",
            Self::DuplicateTunnel => "duplicate_tunnel",
            Self::RateLimited => "rate_limited",
            Self::PendingLimit => "pending_limit",
            Self::ConnectionLimit => "connection_limit",
            Self::Draining => "draining",
            Self::HandshakeTimeout => "handshake_timeout",
            Self::TlsFailed => "tls_failed",
            Self::HandshakeIo => "handshake_io",
            Self::ProxyHeader => "proxy_header",
        }
    }

    /// HTTP status sent for this reason, if one is sent at all.
    pub fn status(self) -> Option<(u16, &'static str)> {
        Some(match self {
            Self::UnknownPath
            | Self::ContactUnsupported
            | Self::WrongRoutingId
            | Self::UnknownTunnel
            | Self::AlreadyJoined => (404, "Not Found"),
            Self::MethodNotAllowed => (405, "Method Not Allowed"),
            Self::NotWebSocket
            | Self::MissingSubprotocol
            | Self::MalformedRequest
            | Self::BadClientPayload
            | Self::BadRegistration => (400, "Bad Request"),
            Self::ContactGone | Self::PushGone => (410, "Gone"),
            Self::PushFailed => (502, "Bad Gateway"),
            Self::HeadTooLarge => (431, "Request Header Fields Too Large"),
            Self::DuplicateTunnel => (409, "Conflict"),
            Self::RateLimited => (429, "Too Many Requests"),
            Self::PendingLimit | Self::ConnectionLimit | Self::Draining | Self::PushUnavailable => {
                (503, "Service Unavailable")
            }
            Self::HandshakeTimeout | Self::TlsFailed | Self::HandshakeIo | Self::ProxyHeader => {
                return None
            }
        })
    }
}

/// Where the address a connection is rate-limited and logged by came from, as counted in
/// `cable_relay_client_addresses`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AddressSource {
    /// The TCP peer (no balancer configured, an untrusted peer's forwarded header ignored, a
    /// trusted peer without one, or a PROXY header that names no client).
    Socket,
    /// A PROXY protocol header from a trusted peer.
    ProxyProtocol,
    /// `X-Forwarded-For` or `Forwarded` from a trusted peer.
    ForwardedHeader,
}

impl AddressSource {
    const ALL: [AddressSource; 3] = [Self::Socket, Self::ProxyProtocol, Self::ForwardedHeader];

    /// Label value used in metrics and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Socket => "socket",
            Self::ProxyProtocol => "proxy_protocol",
            Self::ForwardedHeader => "forwarded_header",
        }
    }
}

/// Why a connection's PROXY header was refused, as counted in
/// `cable_relay_proxy_headers_refused`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProxyRefusal {
    /// The peer is not in a trusted network (nothing is read from it).
    UntrustedPeer,
    /// The connection does not start with a PROXY header (a client bypassing the balancer,
    /// or a balancer not configured to send one).
    NoHeader,
    /// A header with a bad field, address, port or byte.
    Malformed,
    /// A version 1 line or a version 2 length over the limit.
    TooLong,
    /// A version, command, family or transport the relay does not take.
    Unsupported,
    /// The peer closed or broke the connection within the header.
    Closed,
    /// The header was not complete within the handshake timeout.
    Timeout,
}

impl ProxyRefusal {
    const ALL: [ProxyRefusal; 7] = [
        Self::UntrustedPeer,
        Self::NoHeader,
        Self::Malformed,
        Self::TooLong,
        Self::Unsupported,
        Self::Closed,
        Self::Timeout,
    ];

    /// Label value used in metrics and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::UntrustedPeer => "untrusted_peer",
            Self::NoHeader => "no_header",
            Self::Malformed => "malformed",
            Self::TooLong => "too_long",
            Self::Unsupported => "unsupported",
            Self::Closed => "closed",
            Self::Timeout => "timeout",
        }
    }
}

impl From<ProxyHeaderError> for ProxyRefusal {
    fn from(e: ProxyHeaderError) -> Self {
        use ProxyHeaderError as E;
        match e {
            E::BadSignature => Self::NoHeader,
            E::V1TooLong | E::V2TooLong(_) => Self::TooLong,
            E::V1BadByte
            | E::V1BadFields
            | E::V1BadAddress
            | E::V1BadPort
            | E::V1BadProtocol
            | E::V2ShortAddresses { .. } => Self::Malformed,
            E::V2BadVersion(_) | E::V2BadCommand(_) | E::V2BadFamily(_) | E::V2BadTransport(_) => {
                Self::Unsupported
            }
        }
    }
}

/// How a `/cable/contact/` request ended, as counted in `cable_relay_contacts`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ContactOutcome {
    /// The push was accepted and the computer got its 101.
    Ok,
    /// The contact id did not open (410).
    Gone,
    /// The push service said the subscription is gone (410).
    PushGone,
    /// The push failed otherwise (502/503).
    PushFailed,
    /// A bad or missing client payload (400).
    BadRequest,
    /// Refused before any push: draining, rate or pending limit, no contact keys.
    Refused,
}

impl ContactOutcome {
    const ALL: [ContactOutcome; 6] = [
        Self::Ok,
        Self::Gone,
        Self::PushGone,
        Self::PushFailed,
        Self::BadRequest,
        Self::Refused,
    ];

    /// Label value used in metrics and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Gone => "gone",
            Self::PushGone => "push_gone",
            Self::PushFailed => "push_failed",
            Self::BadRequest => "bad_request",
            Self::Refused => "refused",
        }
    }
}

/// Why a tunnel ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CloseReason {
    /// One side sent a close frame.
    PeerClosed,
    /// One side dropped its connection without a close frame.
    PeerDisconnected,
    /// The phone left before any computer joined.
    LeftBeforeJoin,
    /// A text frame was sent (policy violation).
    TextFrame,
    /// A message exceeded the size limit.
    MessageTooBig,
    /// A direction exceeded its message count limit.
    MessageLimit,
    /// A direction exceeded its byte limit.
    ByteLimit,
    /// Nothing was relayed for the idle timeout.
    IdleTimeout,
    /// The phone sent more than allowed before the computer joined.
    PrejoinBufferFull,
    /// The tunnel lifetime ran out.
    LifetimeExceeded,
    /// No computer joined in time.
    UnjoinedExpired,
    /// The drain deadline passed (relay shutting down).
    Shutdown,
    /// A side violated the WebSocket protocol.
    ProtocolError,
    /// The computer's handshake failed after it had claimed the tunnel.
    JoinFailed,
}

impl CloseReason {
    const ALL: [CloseReason; 14] = [
        Self::PeerClosed,
        Self::PeerDisconnected,
        Self::LeftBeforeJoin,
        Self::TextFrame,
        Self::MessageTooBig,
        Self::MessageLimit,
        Self::ByteLimit,
        Self::IdleTimeout,
        Self::PrejoinBufferFull,
        Self::LifetimeExceeded,
        Self::UnjoinedExpired,
        Self::Shutdown,
        Self::ProtocolError,
        Self::JoinFailed,
    ];

    /// Label value used in metrics and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PeerClosed => "peer_closed",
            Self::PeerDisconnected => "peer_disconnected",
            Self::LeftBeforeJoin => "left_before_join",
            Self::TextFrame => "text_frame",
            Self::MessageTooBig => "message_too_big",
            Self::MessageLimit => "message_limit",
            Self::ByteLimit => "byte_limit",
            Self::IdleTimeout => "idle_timeout",
            Self::PrejoinBufferFull => "prejoin_buffer_full",
            Self::LifetimeExceeded => "lifetime_exceeded",
            Self::UnjoinedExpired => "unjoined_expired",
            Self::Shutdown => "shutdown",
            Self::ProtocolError => "protocol_error",
            Self::JoinFailed => "join_failed",
        }
    }
}

/// Direction of relayed traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// From the side that opened the tunnel (`new`) to the side that joined (`connect`).
    NewToConnect = 0,
    /// From the joining side to the opening side.
    ConnectToNew = 1,
}

/// A listening socket of the relay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Listener {
    /// The WebSocket tunnel listener.
    Tunnel = 0,
    /// The health and metrics listener.
    Admin = 1,
}

impl Listener {
    /// Label value used in metrics and logs.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Tunnel => "tunnel",
            Self::Admin => "admin",
        }
    }
}

/// All metrics of one relay instance.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    process: ProcessMetrics,
    pub(crate) created: Counter,
    pub(crate) joined: Counter,
    pub(crate) expired_unjoined: Counter,
    closed: Vec<Counter>,
    rejects: Vec<Counter>,
    messages: [Counter; 2],
    bytes: [Counter; 2],
    pub(crate) duration: Histogram,
    pub(crate) pending: Gauge,
    pub(crate) active: Gauge,
    pub(crate) connections: Gauge,
    accept_failures: [Counter; 2],
    contacts: Vec<Counter>,
    pub(crate) push_duration: Histogram,
    push_failures: Vec<Counter>,
    /// `ok` first, then one per [`RegisterError`].
    registrations: Vec<Counter>,
    /// One per [`AddressSource`], in its order.
    client_addresses: Vec<Counter>,
    /// One per [`ProxyRefusal`], in its order.
    proxy_refused: Vec<Counter>,
    /// `/metrics` requests refused for a missing or wrong bearer token.
    admin_unauthorized: Counter,
    /// Certificate reloads: `ok`, then `refused`.
    tls_reloads: [Counter; 2],
}

impl Metrics {
    pub(crate) fn new() -> Self {
        let mut registry = Registry::with_prefix("cable_relay");
        registry.register(
            "build",
            "The relay's version",
            Info::new(vec![("version", env!("CARGO_PKG_VERSION"))]),
        );
        let created = Counter::default();
        let joined = Counter::default();
        let expired_unjoined = Counter::default();
        let closed_family = Family::<[(&'static str, &'static str); 1], Counter>::default();
        let rejects_family = Family::<[(&'static str, &'static str); 1], Counter>::default();
        let messages_family = Family::<[(&'static str, &'static str); 1], Counter>::default();
        let bytes_family = Family::<[(&'static str, &'static str); 1], Counter>::default();
        let accept_family = Family::<[(&'static str, &'static str); 1], Counter>::default();
        let duration = Histogram::new([
            0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
        ]);
        let pending = Gauge::default();
        let active = Gauge::default();
        let connections = Gauge::default();

        registry.register(
            "tunnels_created",
            "Tunnels opened with new (or by a contact)",
            created.clone(),
        );
        registry.register(
            "tunnels_joined",
            "Tunnels joined with connect",
            joined.clone(),
        );
        registry.register(
            "tunnels_expired_unjoined",
            "Tunnels closed because no computer joined in time",
            expired_unjoined.clone(),
        );
        registry.register(
            "tunnels_closed",
            "Tunnels ended, by reason",
            closed_family.clone(),
        );
        registry.register(
            "tunnel_duration_seconds",
            "Lifetime of tunnels from new to close",
            duration.clone(),
        );
        registry.register(
            "messages_relayed",
            "Binary WebSocket messages relayed, by direction",
            messages_family.clone(),
        );
        registry.register(
            "bytes_relayed",
            "Payload bytes relayed, by direction",
            bytes_family.clone(),
        );
        registry.register(
            "rejects",
            "Requests or connections refused, by reason",
            rejects_family.clone(),
        );
        registry.register(
            "tunnels_pending",
            "Tunnels waiting for a computer",
            pending.clone(),
        );
        registry.register("tunnels_active", "Joined tunnels relaying", active.clone());
        registry.register(
            "connections",
            "Open client connections",
            connections.clone(),
        );
        let tls_reloads_family = Family::<[(&'static str, &'static str); 1], Counter>::default();
        registry.register(
            "tls_reloads",
            "TLS certificate reloads, by outcome (refused: the new pair did not load)",
            tls_reloads_family.clone(),
        );
        let tls_reloads = ["ok", "refused"].map(|outcome| {
            tls_reloads_family
                .get_or_create(&[("outcome", outcome)])
                .clone()
        });
        let admin_unauthorized = Counter::default();
        registry.register(
            "admin_unauthorized",
            "Requests to /metrics without the admin bearer token",
            admin_unauthorized.clone(),
        );
        registry.register(
            "accept_failures",
            "Failed accepts (typically out of file descriptors), by listener",
            accept_family.clone(),
        );

        let closed = CloseReason::ALL
            .iter()
            .map(|r| {
                closed_family
                    .get_or_create(&[("reason", r.as_str())])
                    .clone()
            })
            .collect();
        let rejects = RejectReason::ALL
            .iter()
            .map(|r| {
                rejects_family
                    .get_or_create(&[("reason", r.as_str())])
                    .clone()
            })
            .collect();
        // Each guard returned by `get_or_create` must be dropped before the next call.
        let dir = |f: &Family<[(&'static str, &'static str); 1], Counter>| {
            let a = f.get_or_create(&[("direction", "new_to_connect")]).clone();
            let b = f.get_or_create(&[("direction", "connect_to_new")]).clone();
            [a, b]
        };
        let messages = dir(&messages_family);
        let bytes = dir(&bytes_family);
        let accept_failures = [Listener::Tunnel, Listener::Admin].map(|l| {
            accept_family
                .get_or_create(&[("listener", l.as_str())])
                .clone()
        });
        let contacts_family = Family::<[(&'static str, &'static str); 1], Counter>::default();
        let push_family = Family::<[(&'static str, &'static str); 1], Counter>::default();
        let registrations_family = Family::<[(&'static str, &'static str); 1], Counter>::default();
        let push_duration = Histogram::new([0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0]);
        registry.register(
            "contacts",
            "Contact requests from computers to linked phones, by outcome",
            contacts_family.clone(),
        );
        registry.register(
            "push_duration_seconds",
            "Time from sending a Web Push message to the push service's answer (or failure)",
            push_duration.clone(),
        );
        registry.register(
            "push_failures",
            "Web Push messages that failed, by class",
            push_family.clone(),
        );
        registry.register(
            "push_registrations",
            "Push subscription registrations, by outcome",
            registrations_family.clone(),
        );
        let sources_family = Family::<[(&'static str, &'static str); 1], Counter>::default();
        let proxy_family = Family::<[(&'static str, &'static str); 1], Counter>::default();
        registry.register(
            "client_addresses",
            "Client connections by where the address that rate limits and logs use came from",
            sources_family.clone(),
        );
        registry.register(
            "proxy_headers_refused",
            "Connections closed for their PROXY protocol header (or its absence), by reason",
            proxy_family.clone(),
        );
        let label = |f: &Family<[(&'static str, &'static str); 1], Counter>, key, value| {
            f.get_or_create(&[(key, value)]).clone()
        };
        let client_addresses = AddressSource::ALL
            .iter()
            .map(|s| label(&sources_family, "source", s.as_str()))
            .collect();
        let proxy_refused = ProxyRefusal::ALL
            .iter()
            .map(|r| label(&proxy_family, "reason", r.as_str()))
            .collect();
        let contacts = ContactOutcome::ALL
            .iter()
            .map(|o| label(&contacts_family, "outcome", o.as_str()))
            .collect();
        let push_failures = PushFailure::ALL
            .iter()
            .map(|c| label(&push_family, "class", c.as_str()))
            .collect();
        let registrations = std::iter::once("ok")
            .chain(RegisterError::ALL.iter().map(|e| e.as_str()))
            .map(|o| label(&registrations_family, "outcome", o))
            .collect();
        Self {
            process: ProcessMetrics::new(),
            client_addresses,
            proxy_refused,
            contacts,
            push_duration,
            push_failures,
            registrations,
            registry,
            created,
            joined,
            expired_unjoined,
            closed,
            rejects,
            messages,
            bytes,
            duration,
            pending,
            active,
            connections,
            accept_failures,
            admin_unauthorized,
            tls_reloads,
        }
    }

    pub(crate) fn tls_reload(&self, ok: bool) {
        self.tls_reloads[usize::from(!ok)].inc();
    }

    /// Certificate reloads so far that took effect (`true`) or were refused (`false`).
    pub fn tls_reloads(&self, ok: bool) -> u64 {
        self.tls_reloads[usize::from(!ok)].get()
    }

    pub(crate) fn admin_unauthorized(&self) {
        self.admin_unauthorized.inc();
    }

    /// `/metrics` requests refused for a missing or wrong bearer token so far.
    pub fn admin_unauthorized_total(&self) -> u64 {
        self.admin_unauthorized.get()
    }

    pub(crate) fn accept_failed(&self, listener: Listener) {
        self.accept_failures[listener as usize].inc();
    }

    /// Failed accepts of one listener so far.
    #[cfg(test)]
    pub(crate) fn accept_failures(&self, listener: Listener) -> u64 {
        self.accept_failures[listener as usize].get()
    }

    pub(crate) fn reject(&self, reason: RejectReason) {
        if let Some(c) = RejectReason::ALL
            .iter()
            .position(|r| *r == reason)
            .and_then(|i| self.rejects.get(i))
        {
            c.inc();
        }
    }

    pub(crate) fn closed(&self, reason: CloseReason) {
        if let Some(c) = CloseReason::ALL
            .iter()
            .position(|r| *r == reason)
            .and_then(|i| self.closed.get(i))
        {
            c.inc();
        }
    }

    #[inline]
    pub(crate) fn relayed(&self, dir: Direction, len: usize) {
        self.messages[dir as usize].inc();
        self.bytes[dir as usize].inc_by(len as u64);
    }

    pub(crate) fn client_address(&self, source: AddressSource) {
        if let Some(c) = self.client_addresses.get(source as usize) {
            c.inc();
        }
    }

    pub(crate) fn proxy_refused(&self, reason: ProxyRefusal) {
        if let Some(c) = self.proxy_refused.get(reason as usize) {
            c.inc();
        }
    }

    /// Current value of a client address counter.
    pub fn client_addresses(&self, source: AddressSource) -> u64 {
        self.client_addresses
            .get(source as usize)
            .map_or(0, Counter::get)
    }

    /// Current value of a refused PROXY header counter.
    pub fn proxy_headers_refused(&self, reason: ProxyRefusal) -> u64 {
        self.proxy_refused
            .get(reason as usize)
            .map_or(0, Counter::get)
    }

    pub(crate) fn contact(&self, outcome: ContactOutcome) {
        if let Some(c) = self.contacts.get(outcome as usize) {
            c.inc();
        }
    }

    pub(crate) fn push_failed(&self, class: PushFailure) {
        if let Some(c) = PushFailure::ALL
            .iter()
            .position(|f| *f == class)
            .and_then(|i| self.push_failures.get(i))
        {
            c.inc();
        }
    }

    pub(crate) fn registration(&self, outcome: Result<(), RegisterError>) {
        let i = match outcome {
            Ok(()) => 0,
            Err(e) => RegisterError::ALL
                .iter()
                .position(|r| *r == e)
                .map_or(0, |i| i + 1),
        };
        if let Some(c) = self.registrations.get(i) {
            c.inc();
        }
    }

    /// Current value of a contact counter.
    pub fn contacts(&self, outcome: ContactOutcome) -> u64 {
        self.contacts.get(outcome as usize).map_or(0, Counter::get)
    }

    /// Current value of a push failure counter.
    pub fn push_failures(&self, class: PushFailure) -> u64 {
        PushFailure::ALL
            .iter()
            .position(|f| *f == class)
            .and_then(|i| self.push_failures.get(i))
            .map_or(0, Counter::get)
    }

    /// Current value of a registration counter (`Ok(())` for accepted ones).
    pub fn registrations(&self, outcome: Result<(), RegisterError>) -> u64 {
        let i = match outcome {
            Ok(()) => 0,
            Err(e) => RegisterError::ALL
                .iter()
                .position(|r| *r == e)
                .map_or(0, |i| i + 1),
        };
        self.registrations.get(i).map_or(0, Counter::get)
    }

    /// Current value of a reject counter (for tests and the load tool).
    pub fn rejects(&self, reason: RejectReason) -> u64 {
        RejectReason::ALL
            .iter()
            .position(|r| *r == reason)
            .and_then(|i| self.rejects.get(i))
            .map_or(0, Counter::get)
    }

    /// Current value of a close counter.
    pub fn closes(&self, reason: CloseReason) -> u64 {
        CloseReason::ALL
            .iter()
            .position(|r| *r == reason)
            .and_then(|i| self.closed.get(i))
            .map_or(0, Counter::get)
    }

    /// Tunnels currently waiting for a computer.
    pub fn pending(&self) -> i64 {
        self.pending.get()
    }

    /// Tunnels currently joined.
    pub fn active(&self) -> i64 {
        self.active.get()
    }

    /// All metrics in OpenMetrics text, the relay's and the process's.
    pub fn encode(&self) -> String {
        self.encode_as(Format::OpenMetrics)
    }

    /// All metrics in `format`.
    pub fn encode_as(&self, format: Format) -> String {
        let mut out = String::with_capacity(8192);
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        // One exposition: the process registry's text carries the final `# EOF`.
        if out.ends_with("# EOF\n") {
            out.truncate(out.len() - "# EOF\n".len());
        }
        self.process.encode_into(&mut out);
        match format {
            Format::OpenMetrics => out,
            Format::Prometheus => crate::exposition::to_prometheus(&out),
        }
    }
}
