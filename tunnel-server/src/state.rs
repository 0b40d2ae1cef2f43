//! State shared by every task of one relay instance, and the per-connection guard.
//!
//! The listener (`server`), the tunnel tasks (`tunnel`) and the admin listener (`admin`) all
//! depend on this module and on nothing of each other's, so the module graph stays acyclic.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use cable_proto::ids::TunnelId;
use tokio::sync::{oneshot, watch, Notify};
use tokio_rustls::TlsAcceptor;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::WebSocketStream;

use crate::config::RelayConfig;
use crate::metrics::{Metrics, RejectReason};
use crate::rate_limit::RateLimiter;
use crate::registry::Registry;
use crate::stream::ClientStream;
use crate::throttle::{LogThrottle, PROXY_LOG_INTERVAL};

/// Upper bound on tracked rate-limit sources.
const MAX_RATE_BUCKETS: usize = 100_000;

pub(crate) type Ws = WebSocketStream<ClientStream>;

/// A client socket together with its slot in the connection count.
///
/// The socket is boxed so that moving a `Peer` between tasks and through the tunnel's phases
/// moves a pointer: async state machines reserve space for every place a value lives, and
/// an inline socket would be reserved several times over in every tunnel task.
#[derive(Debug)]
pub(crate) struct Peer {
    pub(crate) ws: Box<Ws>,
    pub(crate) _guard: ConnGuard,
}

/// Life-cycle phase of a relay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Serving everything.
    Running,
    /// Refusing `new` (readyz 503); serving `connect` and live tunnels until the drain deadline.
    Draining,
    /// Closing every tunnel now.
    Stopping,
}

/// State shared by every task of one relay instance.
pub(crate) struct Shared {
    pub(crate) config: RelayConfig,
    pub(crate) metrics: Metrics,
    pub(crate) phase: watch::Sender<Phase>,
    pub(crate) ws_config: WebSocketConfig,
    /// Swapped whole by a certificate reload; connections take a clone when they start, so
    /// a handshake in progress finishes with the certificate it began with.
    pub(crate) tls: Option<std::sync::RwLock<TlsAcceptor>>,
    pub(crate) rate: RateLimiter,
    /// TLS client for Web Push (only when contacts are configured).
    pub(crate) push_tls: Option<tokio_rustls::TlsConnector>,
    /// Connections closed for their PROXY header: one log line per interval.
    pub(crate) proxy_log: Mutex<LogThrottle>,
    registry: Registry<Peer>,
    /// Tunnel tasks alive (pending or joined).
    live: AtomicUsize,
    live_zero: Notify,
    connections: AtomicUsize,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("config", &self.config)
            .field("phase", &self.phase_now())
            .field("pending", &self.registry.pending())
            .field("live", &self.live)
            .field("connections", &self.connections)
            .finish_non_exhaustive()
    }
}

/// Holds one slot of the connection limit; released when the socket is dropped.
#[derive(Debug)]
pub(crate) struct ConnGuard(Arc<Shared>);

impl ConnGuard {
    /// Counts a new connection; returns its guard and the number now open.
    pub(crate) fn open(shared: &Arc<Shared>) -> (Self, usize) {
        let n = shared.connections.fetch_add(1, Ordering::Relaxed) + 1;
        shared.metrics.connections.inc();
        (Self(shared.clone()), n)
    }
}

impl Drop for ConnGuard {
    fn drop(&mut self) {
        self.0.connections.fetch_sub(1, Ordering::Relaxed);
        self.0.metrics.connections.dec();
    }
}

impl Shared {
    pub(crate) fn new(config: RelayConfig, push_tls: Option<tokio_rustls::TlsConnector>) -> Self {
        let limits = &config.limits;
        let mut ws_config = WebSocketConfig::default();
        ws_config.read_buffer_size = config.ws_read_buffer;
        // Write each message out at once (latency); never queue more than a few messages.
        ws_config.write_buffer_size = 0;
        ws_config.max_write_buffer_size = limits.max_message_size.saturating_mul(4) + 1024;
        ws_config.max_message_size = Some(limits.max_message_size);
        ws_config.max_frame_size = Some(limits.max_message_size);
        let (phase, _) = watch::channel(Phase::Running);
        Self {
            tls: config
                .tls
                .clone()
                .map(|tls| std::sync::RwLock::new(TlsAcceptor::from(tls))),
            rate: RateLimiter::new(
                limits.rate_limit_per_second,
                limits.rate_limit_burst,
                MAX_RATE_BUCKETS,
            ),
            metrics: Metrics::new(),
            push_tls,
            phase,
            ws_config,
            proxy_log: Mutex::new(LogThrottle::new(PROXY_LOG_INTERVAL)),
            registry: Registry::new(),
            live: AtomicUsize::new(0),
            live_zero: Notify::new(),
            connections: AtomicUsize::new(0),
            config,
        }
    }

    pub(crate) fn phase_now(&self) -> Phase {
        *self.phase.borrow()
    }

    /// Tunnel tasks alive (pending or joined).
    pub(crate) fn live_tunnels(&self) -> usize {
        self.live.load(Ordering::Relaxed)
    }

    /// Registers a new tunnel (before its 101 is sent, so that a fast `connect` finds it).
    pub(crate) fn register(&self, id: TunnelId) -> Result<oneshot::Receiver<Peer>, RejectReason> {
        if self.phase_now() != Phase::Running {
            return Err(RejectReason::Draining);
        }
        let rx = self
            .registry
            .register(id, self.config.limits.max_pending_tunnels)?;
        self.live.fetch_add(1, Ordering::AcqRel);
        self.metrics.pending.inc();
        self.metrics.created.inc();
        Ok(rx)
    }

    /// Claims a pending tunnel for a joining computer.
    pub(crate) fn claim(&self, id: &TunnelId) -> Result<oneshot::Sender<Peer>, RejectReason> {
        self.registry.claim(id)
    }

    /// Undoes [`Shared::register`] for a tunnel that never got its task (a failed contact).
    pub(crate) fn abandon(&self, id: &TunnelId) {
        self.unregister(id);
        self.left_pending();
        self.tunnel_ended(false);
    }

    pub(crate) fn unregister(&self, id: &TunnelId) {
        self.registry.unregister(id);
    }

    pub(crate) fn left_pending(&self) {
        self.registry.left_pending();
        self.metrics.pending.dec();
    }

    pub(crate) fn joined(&self) {
        self.metrics.joined.inc();
        self.metrics.active.inc();
    }

    pub(crate) fn tunnel_ended(&self, was_joined: bool) {
        if was_joined {
            self.metrics.active.dec();
        }
        let was = self.live.fetch_sub(1, Ordering::AcqRel);
        if was == 1 {
            self.live_zero.notify_waiters();
        }
    }

    /// Returns once no tunnel task is alive.
    pub(crate) async fn wait_no_tunnels(&self) {
        loop {
            let notified = self.live_zero.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.live.load(Ordering::Acquire) == 0 {
                return;
            }
            notified.await;
        }
    }
}
