//! Relay configuration. Every limit has a default suitable for production; tests shrink them.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use cable_proto::ids::RoutingId;

use crate::client_addr::{Cidr, ForwardedHeader};
use crate::contact::ContactKeys;
use crate::webpush::VapidKey;

/// Limits the relay enforces. Each one has its own HTTP status or close code and metric.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Limits {
    /// Maximum lifetime of a tunnel, counted from its `new` request.
    pub tunnel_lifetime: Duration,
    /// How long a tunnel may wait for its computer to `connect`.
    pub unjoined_timeout: Duration,
    /// Maximum size of one relayed WebSocket message (and frame), in bytes.
    pub max_message_size: usize,
    /// Maximum number of messages relayed in each direction of one tunnel.
    pub max_messages_per_direction: u32,
    /// Maximum number of bytes relayed in each direction of one tunnel.
    pub max_bytes_per_direction: u64,
    /// How long a joined tunnel may relay nothing in either direction.
    pub idle_timeout: Duration,
    /// Maximum number of messages a phone may send before its computer joins.
    pub prejoin_max_messages: usize,
    /// Maximum total bytes a phone may send before its computer joins.
    pub prejoin_max_bytes: usize,
    /// Time allowed for the TLS handshake plus the HTTP request head (slowloris guard).
    pub handshake_timeout: Duration,
    /// Maximum number of open client connections (including ones still in their handshake).
    pub max_connections: usize,
    /// Maximum number of tunnels waiting for their computer.
    pub max_pending_tunnels: usize,
    /// Sustained `new`/`connect` requests per second allowed from one source address
    /// (IPv6: one /64). `0` disables the rate limit.
    pub rate_limit_per_second: f64,
    /// Burst size of the per-source rate limit.
    pub rate_limit_burst: u32,
    /// Maximum size of an HTTP request head, in bytes.
    pub max_request_head: usize,
    /// Time to wait for a client's close reply after the relay sent its close frame.
    pub close_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            tunnel_lifetime: Duration::from_secs(120),
            unjoined_timeout: Duration::from_secs(60),
            max_message_size: 16 * 1024,
            max_messages_per_direction: 1024,
            // A ceremony moves a few KiB each way (a largeBlob write a few more); a tunnel
            // used to carry other traffic runs into this long before its lifetime ends.
            max_bytes_per_direction: 1024 * 1024,
            // Between the computer's request and the phone's answer a person unlocks the
            // phone and confirms: well under a minute. Google's relay ends whole tunnels
            // about then.
            idle_timeout: Duration::from_secs(60),
            prejoin_max_messages: 16,
            prejoin_max_bytes: 32 * 1024,
            handshake_timeout: Duration::from_secs(10),
            max_connections: 50_000,
            max_pending_tunnels: 25_000,
            rate_limit_per_second: 20.0,
            rate_limit_burst: 100,
            max_request_head: 4096,
            close_timeout: Duration::from_secs(2),
        }
    }
}

/// Everything [`crate::Relay::bind`] needs.
///
/// `RelayConfig::default()` is made for in-process tests: tunnel listener and admin listener on
/// `127.0.0.1:0`, routing id `000000`, no TLS, production limits except that the per-source
/// rate limit is off (tests open many tunnels from 127.0.0.1).
#[derive(Clone)]
#[non_exhaustive]
pub struct RelayConfig {
    /// Address of the WebSocket tunnel listener.
    pub listen: SocketAddr,
    /// Address of the health/metrics listener; `None` runs without one.
    pub admin_listen: Option<SocketAddr>,
    /// This instance's routing id, returned in `X-caBLE-Routing-ID` and required in `connect`.
    pub routing_id: RoutingId,
    /// In-process TLS for the tunnel listener; `None` serves plain HTTP/1.1 (behind a TLS proxy).
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// Enforced limits.
    pub limits: Limits,
    /// How long a drain (SIGTERM) keeps serving joins and live tunnels before closing them.
    pub drain_timeout: Duration,
    /// Listen backlog of the tunnel listener (the kernel caps it at `net.core.somaxconn`).
    pub listen_backlog: u32,
    /// Per-socket WebSocket read buffer, in bytes. caBLE messages are small; a large buffer
    /// costs memory on every idle socket.
    pub ws_read_buffer: usize,
    /// Contacts of linked phones (`/cable/push/register`, `/cable/contact/`); `None` answers
    /// both with 404.
    pub contact: Option<ContactConfig>,
    /// Where client addresses come from behind a balancer; the default trusts no one and
    /// uses the socket's peer.
    pub client_addresses: ClientAddresses,
    /// When set, `/metrics` on the admin listener answers only requests carrying this bearer
    /// token (401 otherwise); `/healthz` and `/readyz` stay open for probes.
    pub admin_token: Option<crate::AdminToken>,
}

/// How the relay learns a client's real address behind a balancer, for the per-source rate
/// limit and the log lines.
///
/// With `proxy_protocol`, every connection must come from a trusted network and start with
/// a PROXY protocol header (v1 or v2); others are closed. Without it, a request from a
/// trusted network may name its client in `forwarded_header`; from anywhere else that
/// header is ignored. With no trusted network, the socket's peer is always the client.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct ClientAddresses {
    /// Require a PROXY protocol header on every tunnel-listener connection.
    pub proxy_protocol: bool,
    /// Networks of the balancers whose PROXY headers or forwarded headers are believed.
    pub trusted_proxies: Vec<Cidr>,
    /// The header a trusted balancer names the client in (ignored with `proxy_protocol`).
    pub forwarded_header: ForwardedHeader,
}

/// What the relay needs to serve linked phones: the keys every instance behind one host name
/// shares (so that a contact can land on any of them) and the push settings.
#[derive(Clone, Debug)]
pub struct ContactConfig {
    /// Keys sealing and opening contact ids.
    pub keys: Arc<ContactKeys>,
    /// The VAPID signing key.
    pub vapid: Arc<VapidKey>,
    /// The VAPID `sub` claim: a `mailto:` or `https:` contact for the push service operator.
    pub vapid_subject: String,
    /// Accept `http://` push endpoints (tests only).
    pub allow_insecure_push: bool,
    /// Time allowed for one push (connect, TLS, request, answer) before the contact gets 503.
    pub push_timeout: Duration,
    /// The push message's `TTL`: how long the push service may hold it for an offline phone.
    pub push_ttl: Duration,
}

impl ContactConfig {
    /// Production defaults around the two keys: 5 s push timeout, 60 s TTL, https only.
    pub fn new(keys: ContactKeys, vapid: VapidKey) -> Self {
        Self {
            keys: Arc::new(keys),
            vapid: Arc::new(vapid),
            vapid_subject: "mailto:relay-operator@invalid".to_owned(),
            allow_insecure_push: false,
            push_timeout: Duration::from_secs(5),
            push_ttl: Duration::from_secs(60),
        }
    }
}

impl Default for RelayConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            admin_listen: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
            routing_id: RoutingId::default(),
            tls: None,
            limits: Limits {
                rate_limit_per_second: 0.0,
                ..Limits::default()
            },
            drain_timeout: Duration::from_secs(125),
            listen_backlog: 4096,
            ws_read_buffer: 2048,
            contact: None,
            client_addresses: ClientAddresses::default(),
            admin_token: None,
        }
    }
}

impl fmt::Debug for RelayConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RelayConfig")
            .field("listen", &self.listen)
            .field("admin_listen", &self.admin_listen)
            .field("routing_id", &self.routing_id)
            .field("tls", &self.tls.is_some())
            .field("limits", &self.limits)
            .field("drain_timeout", &self.drain_timeout)
            .field("listen_backlog", &self.listen_backlog)
            .field("ws_read_buffer", &self.ws_read_buffer)
            .field("contact", &self.contact)
            .field("client_addresses", &self.client_addresses)
            .field("admin_token", &self.admin_token.is_some())
            .finish()
    }
}

impl RelayConfig {
    pub(crate) fn validate(&self) -> Result<(), crate::RelayError> {
        use crate::RelayError::InvalidConfig;
        let l = &self.limits;
        if l.max_message_size == 0 {
            return Err(InvalidConfig {
                setting: "max-message-size",
                problem: "must be at least 1",
            });
        }
        if l.max_request_head < 256 {
            return Err(InvalidConfig {
                setting: "max-request-head",
                problem: "must be at least 256 bytes",
            });
        }
        if !(l.rate_limit_per_second >= 0.0 && l.rate_limit_per_second.is_finite()) {
            return Err(InvalidConfig {
                setting: "rate-limit-per-second",
                problem: "must be a finite number >= 0",
            });
        }
        if l.rate_limit_per_second > 0.0 && l.rate_limit_burst == 0 {
            return Err(InvalidConfig {
                setting: "rate-limit-burst",
                problem: "must be at least 1 when the rate limit is on",
            });
        }
        let c = &self.client_addresses;
        if c.proxy_protocol && c.trusted_proxies.is_empty() {
            return Err(InvalidConfig {
                setting: "proxy-protocol",
                problem:
                    "needs at least one --trusted-proxy network (every connection would be refused)",
            });
        }
        if self.ws_read_buffer < 64 {
            return Err(InvalidConfig {
                setting: "ws-read-buffer",
                problem: "must be at least 64 bytes",
            });
        }
        Ok(())
    }
}
