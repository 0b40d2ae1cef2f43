//! Listener, per-connection handling, tunnel registry and the relay's life cycle.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::{oneshot, watch, Notify};
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_tungstenite::WebSocketStream;

use crate::config::RelayConfig;
use crate::error::RelayError;
use crate::handshake::{self, UpgradeRequest};
use crate::ids::{RoutingId, TunnelId};
use crate::metrics::{Metrics, RejectReason};
use crate::rate_limit::RateLimiter;
use crate::route::Route;
use crate::stream::ClientStream;
use crate::tunnel::{self, Peer};

/// Connections beyond `max_connections` still get a 503 as long as fewer than this many extra
/// are in flight; past that they are closed at once, so a flood cannot pin unbounded memory.
const REJECT_SLACK: usize = 1024;

/// Upper bound on tracked rate-limit sources.
const MAX_RATE_BUCKETS: usize = 100_000;

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

#[derive(Debug)]
enum Slot {
    /// Waiting for its computer; the sender hands the computer's socket to the tunnel task.
    Pending(oneshot::Sender<Peer>),
    /// Claimed by a `connect` (kept so duplicates and second joins are refused).
    Joined,
}

/// State shared by every task of one relay instance.
pub(crate) struct Shared {
    pub(crate) config: RelayConfig,
    pub(crate) metrics: Metrics,
    pub(crate) phase: watch::Sender<Phase>,
    ws_config: WebSocketConfig,
    tls: Option<TlsAcceptor>,
    tunnels: Mutex<HashMap<TunnelId, Slot>>,
    pending: AtomicUsize,
    /// Tunnel tasks alive (pending or joined).
    live: AtomicUsize,
    live_zero: Notify,
    connections: AtomicUsize,
    rate: RateLimiter,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("config", &self.config)
            .field("phase", &self.phase_now())
            .field("pending", &self.pending)
            .field("live", &self.live)
            .field("connections", &self.connections)
            .finish_non_exhaustive()
    }
}

/// Holds one slot of the connection limit; released when the socket is dropped.
#[derive(Debug)]
pub(crate) struct ConnGuard(Arc<Shared>);

impl Drop for ConnGuard {
    fn drop(&mut self) {
        self.0.connections.fetch_sub(1, Ordering::Relaxed);
        self.0.metrics.connections.dec();
    }
}

impl Shared {
    fn tunnels(&self) -> MutexGuard<'_, HashMap<TunnelId, Slot>> {
        // A panic while holding this lock cannot leave the map inconsistent (single inserts
        // and removals), so a poisoned lock is still usable.
        match self.tunnels.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    pub(crate) fn phase_now(&self) -> Phase {
        *self.phase.borrow()
    }

    pub(crate) fn unregister(&self, id: &TunnelId) {
        self.tunnels().remove(id);
    }

    pub(crate) fn left_pending(&self) {
        self.pending.fetch_sub(1, Ordering::Relaxed);
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

    /// Registers a new tunnel (before its 101 is sent, so that a fast `connect` finds it).
    fn register(&self, id: TunnelId) -> Result<oneshot::Receiver<Peer>, RejectReason> {
        if self.phase_now() != Phase::Running {
            return Err(RejectReason::Draining);
        }
        let mut map = self.tunnels();
        if map.contains_key(&id) {
            return Err(RejectReason::DuplicateTunnel);
        }
        if self.pending.load(Ordering::Relaxed) >= self.config.limits.max_pending_tunnels {
            return Err(RejectReason::PendingLimit);
        }
        let (tx, rx) = oneshot::channel();
        map.insert(id, Slot::Pending(tx));
        drop(map);
        self.pending.fetch_add(1, Ordering::Relaxed);
        self.live.fetch_add(1, Ordering::AcqRel);
        self.metrics.pending.inc();
        self.metrics.created.inc();
        Ok(rx)
    }

    /// Claims a pending tunnel for a joining computer.
    fn claim(&self, id: &TunnelId) -> Result<oneshot::Sender<Peer>, RejectReason> {
        let mut map = self.tunnels();
        match map.get_mut(id) {
            None => Err(RejectReason::UnknownTunnel),
            Some(Slot::Joined) => Err(RejectReason::AlreadyJoined),
            Some(slot) => match std::mem::replace(slot, Slot::Joined) {
                Slot::Pending(tx) => Ok(tx),
                Slot::Joined => Err(RejectReason::AlreadyJoined),
            },
        }
    }
}

/// The relay. See the crate documentation for an example.
#[derive(Debug)]
pub struct Relay;

impl Relay {
    /// Binds the listeners and starts serving in the current tokio runtime.
    pub async fn bind(config: RelayConfig) -> Result<RunningRelay, RelayError> {
        config.validate()?;
        let listener = bind_listener(config.listen, config.listen_backlog)?;
        let local_addr = listener.local_addr().map_err(|source| RelayError::Bind {
            addr: config.listen,
            source,
        })?;
        let admin = match config.admin_listen {
            Some(addr) => {
                let l = bind_listener(addr, 128)?;
                let a = l
                    .local_addr()
                    .map_err(|source| RelayError::Bind { addr, source })?;
                Some((l, a))
            }
            None => None,
        };
        let limits = &config.limits;
        let mut ws_config = WebSocketConfig::default();
        ws_config.read_buffer_size = config.ws_read_buffer;
        // Write each message out at once (latency); never queue more than a few messages.
        ws_config.write_buffer_size = 0;
        ws_config.max_write_buffer_size = limits.max_message_size.saturating_mul(4) + 1024;
        ws_config.max_message_size = Some(limits.max_message_size);
        ws_config.max_frame_size = Some(limits.max_message_size);
        let (phase, _) = watch::channel(Phase::Running);
        let shared = Arc::new(Shared {
            tls: config.tls.clone().map(TlsAcceptor::from),
            rate: RateLimiter::new(
                limits.rate_limit_per_second,
                limits.rate_limit_burst,
                MAX_RATE_BUCKETS,
            ),
            metrics: Metrics::new(),
            phase,
            ws_config,
            tunnels: Mutex::new(HashMap::new()),
            pending: AtomicUsize::new(0),
            live: AtomicUsize::new(0),
            live_zero: Notify::new(),
            connections: AtomicUsize::new(0),
            config,
        });
        let admin_addr = admin.as_ref().map(|(_, a)| *a);
        let task = tokio::spawn(supervise(shared.clone(), listener, admin.map(|(l, _)| l)));
        tracing::info!(
            listen = %local_addr,
            admin = %admin_addr.map_or_else(|| "none".to_owned(), |a| a.to_string()),
            routing_id = %shared.config.routing_id,
            tls = shared.tls.is_some(),
            "relay listening"
        );
        Ok(RunningRelay {
            shared,
            local_addr,
            admin_addr,
            task: Some(task),
        })
    }
}

fn bind_listener(addr: SocketAddr, backlog: u32) -> Result<TcpListener, RelayError> {
    let err = |source| RelayError::Bind { addr, source };
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()
    } else {
        TcpSocket::new_v6()
    }
    .map_err(err)?;
    socket.set_reuseaddr(true).map_err(err)?;
    socket.bind(addr).map_err(err)?;
    socket.listen(backlog).map_err(err)
}

/// A relay that is serving. Dropping it stops the relay at once (like [`RunningRelay::stop`]).
#[derive(Debug)]
pub struct RunningRelay {
    shared: Arc<Shared>,
    local_addr: SocketAddr,
    admin_addr: Option<SocketAddr>,
    task: Option<JoinHandle<()>>,
}

/// A cloneable remote control for a relay (drain or stop from another task).
#[derive(Debug, Clone)]
pub struct RelayHandle {
    shared: Arc<Shared>,
}

impl RelayHandle {
    /// Starts a graceful drain: `new` is refused (readyz 503), joins and live tunnels are served
    /// until the drain deadline, then everything left is closed with 1001 and the relay exits.
    pub fn drain(&self) {
        self.shared.phase.send_if_modified(|p| {
            if *p == Phase::Running {
                *p = Phase::Draining;
                true
            } else {
                false
            }
        });
    }

    /// Closes every tunnel now (close code 1001) and exits.
    pub fn stop(&self) {
        self.shared.phase.send_if_modified(|p| {
            if *p != Phase::Stopping {
                *p = Phase::Stopping;
                true
            } else {
                false
            }
        });
    }

    /// True once a drain or stop has begun.
    pub fn is_draining(&self) -> bool {
        self.shared.phase_now() != Phase::Running
    }

    /// The relay's metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.shared.metrics
    }
}

impl RunningRelay {
    /// Address of the tunnel listener (with the real port when bound to port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Address of the health/metrics listener, if configured.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin_addr
    }

    /// Base URL of the tunnel listener, e.g. `ws://127.0.0.1:40123` (`wss://` with TLS).
    /// Append `/cable/new/<tunnel id>` or `/cable/connect/<routing id>/<tunnel id>`.
    pub fn url(&self) -> String {
        let scheme = if self.shared.tls.is_some() {
            "wss"
        } else {
            "ws"
        };
        format!("{scheme}://{}", self.local_addr)
    }

    /// This instance's routing id.
    pub fn routing_id(&self) -> RoutingId {
        self.shared.config.routing_id
    }

    /// A cloneable handle to drain or stop the relay from elsewhere.
    pub fn handle(&self) -> RelayHandle {
        RelayHandle {
            shared: self.shared.clone(),
        }
    }

    /// The relay's metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.shared.metrics
    }

    /// Starts a graceful drain; see [`RelayHandle::drain`].
    pub fn drain(&self) {
        self.handle().drain();
    }

    /// Closes every tunnel now; see [`RelayHandle::stop`].
    pub fn stop(&self) {
        self.handle().stop();
    }

    /// Waits until the relay has exited (after a drain or stop).
    pub async fn join(mut self) -> Result<(), RelayError> {
        match self.task.take() {
            Some(task) => task.await.map_err(RelayError::from),
            None => Ok(()),
        }
    }

    /// Stops the relay and waits for it to exit.
    pub async fn shutdown(self) -> Result<(), RelayError> {
        self.stop();
        self.join().await
    }
}

impl Drop for RunningRelay {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            self.handle().stop();
            task.abort();
        }
    }
}

/// Runs the listeners and the drain sequence.
async fn supervise(shared: Arc<Shared>, listener: TcpListener, admin: Option<TcpListener>) {
    let mut tasks = JoinSet::new();
    tasks.spawn(accept_loop(shared.clone(), listener));
    if let Some(admin) = admin {
        tasks.spawn(crate::admin::serve(shared.clone(), admin));
    }
    tasks.spawn(prune_rate_limits(shared.clone()));

    let mut phase = shared.phase.subscribe();
    if phase.wait_for(|p| *p != Phase::Running).await.is_err() {
        return;
    }
    if shared.phase_now() == Phase::Draining {
        tracing::info!(
            live_tunnels = shared.live.load(Ordering::Relaxed),
            deadline_s = shared.config.drain_timeout.as_secs_f64(),
            "draining: refusing new tunnels"
        );
        let deadline = Instant::now() + shared.config.drain_timeout;
        tokio::select! {
            () = wait_no_tunnels(&shared) => {}
            () = tokio::time::sleep_until(deadline) => {}
            _ = phase.wait_for(|p| *p == Phase::Stopping) => {}
        }
        shared.phase.send_replace(Phase::Stopping);
    }
    // Tunnels now close with 1001; give them their close handshake time.
    let grace = shared.config.limits.close_timeout + Duration::from_millis(200);
    let _ = tokio::time::timeout(grace, wait_no_tunnels(&shared)).await;
    tasks.shutdown().await;
    tracing::info!("relay stopped");
}

async fn wait_no_tunnels(shared: &Shared) {
    loop {
        let notified = shared.live_zero.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        if shared.live.load(Ordering::Acquire) == 0 {
            return;
        }
        notified.await;
    }
}

async fn prune_rate_limits(shared: Arc<Shared>) {
    let mut tick = tokio::time::interval(Duration::from_secs(10));
    loop {
        tick.tick().await;
        shared.rate.prune_now();
    }
}

async fn accept_loop(shared: Arc<Shared>, listener: TcpListener) {
    let max = shared.config.limits.max_connections;
    loop {
        let (tcp, addr) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                // Typically EMFILE/ENFILE: back off briefly instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
        };
        let n = shared.connections.fetch_add(1, Ordering::Relaxed) + 1;
        shared.metrics.connections.inc();
        let guard = ConnGuard(shared.clone());
        if n > max.saturating_add(REJECT_SLACK) {
            shared.metrics.reject(RejectReason::ConnectionLimit);
            continue;
        }
        let _ = tcp.set_nodelay(true);
        tokio::spawn(handle_connection(shared.clone(), tcp, addr, guard, n > max));
    }
}

/// A new tunnel whose 101 went out; the accepting task goes on to run it.
struct NewTunnel {
    id: TunnelId,
    phone: Peer,
    rx: oneshot::Receiver<Peer>,
    created: Instant,
}

/// What a successful request turned into: a tunnel to run, or `None` for a computer whose
/// socket went to the tunnel's task.
type Accepted = Option<NewTunnel>;

async fn handle_connection(
    shared: Arc<Shared>,
    tcp: TcpStream,
    addr: SocketAddr,
    guard: ConnGuard,
    over_limit: bool,
) {
    let timeout = shared.config.limits.handshake_timeout;
    // Boxed so that the (larger) handshake state is freed before the long-lived tunnel phase.
    let handshake = Box::pin(handshake(&shared, tcp, addr.ip(), guard, over_limit));
    let accepted = match tokio::time::timeout(timeout, handshake).await {
        Ok(Ok(a)) => a,
        Ok(Err(reason)) => {
            shared.metrics.reject(reason);
            tracing::debug!(peer = %addr, reason = reason.as_str(), "request refused");
            return;
        }
        Err(_) => {
            shared.metrics.reject(RejectReason::HandshakeTimeout);
            tracing::debug!(peer = %addr, "handshake timed out");
            return;
        }
    };
    if let Some(NewTunnel {
        id,
        phone,
        rx,
        created,
    }) = accepted
    {
        tunnel::run(shared, id, phone, rx, created).await;
    }
}

async fn handshake(
    shared: &Arc<Shared>,
    tcp: TcpStream,
    ip: IpAddr,
    guard: ConnGuard,
    over_limit: bool,
) -> Result<Accepted, RejectReason> {
    let mut stream = match &shared.tls {
        Some(acceptor) => match acceptor.accept(tcp).await {
            Ok(tls) => ClientStream::Tls(Box::new(tls)),
            Err(_) => return Err(RejectReason::TlsFailed),
        },
        None => ClientStream::Plain(tcp),
    };
    let config = &shared.config;
    let decided = match handshake::read_request(
        &mut stream,
        config.limits.max_request_head,
        config.routing_id,
    )
    .await
    {
        Err(reason) => Err(reason),
        Ok(_) if over_limit => Err(RejectReason::ConnectionLimit),
        Ok(req) => decide(shared, req, ip),
    };
    let (decision, key, tail) = match decided {
        Ok(d) => d,
        Err(reason) => {
            handshake::refuse(&mut stream, reason).await;
            return Err(reason);
        }
    };
    match decision {
        Decision::New(id, rx) => {
            let created = Instant::now();
            // On a write error the tunnel still runs: it is registered (a computer may already
            // have claimed it) and its first read fails, which releases it the normal way.
            let _ = handshake::accept(&mut stream, &key, Some(config.routing_id)).await;
            let ws = websocket(shared, stream, tail).await;
            Ok(Some(NewTunnel {
                id,
                phone: Peer { ws, _guard: guard },
                rx,
                created,
            }))
        }
        Decision::Connect(tx) => {
            if handshake::accept(&mut stream, &key, None).await.is_err() {
                // Dropping `tx` tells the tunnel that the join failed.
                return Err(RejectReason::HandshakeIo);
            }
            let ws = websocket(shared, stream, tail).await;
            // If the phone left meanwhile, the computer's socket comes back and is dropped.
            let _ = tx.send(Peer { ws, _guard: guard });
            Ok(None)
        }
    }
}

enum Decision {
    New(TunnelId, oneshot::Receiver<Peer>),
    Connect(oneshot::Sender<Peer>),
}

fn decide(
    shared: &Shared,
    req: UpgradeRequest,
    ip: IpAddr,
) -> Result<(Decision, String, Vec<u8>), RejectReason> {
    let UpgradeRequest { route, key, tail } = req;
    let decision = match route {
        Route::New(id) => {
            if shared.phase_now() != Phase::Running {
                return Err(RejectReason::Draining);
            }
            if !shared.rate.allow(ip) {
                return Err(RejectReason::RateLimited);
            }
            Decision::New(id, shared.register(id)?)
        }
        Route::Connect(_, id) => {
            if !shared.rate.allow(ip) {
                return Err(RejectReason::RateLimited);
            }
            Decision::Connect(shared.claim(&id)?)
        }
        Route::Contact => return Err(RejectReason::ContactUnsupported),
    };
    Ok((decision, key, tail))
}

async fn websocket(shared: &Shared, stream: ClientStream, tail: Vec<u8>) -> Box<tunnel::Ws> {
    Box::new(
        WebSocketStream::from_partially_read(stream, tail, Role::Server, Some(shared.ws_config))
            .await,
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    /// Every pending tunnel is one task whose allocation is sized by this future; RSS per
    /// pending tunnel (BENCHMARKS.md) depends on keeping it small (sockets are boxed, the
    /// handshake and the relay phase are boxed and only allocated while they run).
    #[tokio::test]
    async fn connection_task_stays_small() {
        let relay = super::Relay::bind(crate::RelayConfig::default())
            .await
            .unwrap();
        let shared = relay.shared.clone();
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let tcp = tokio::net::TcpStream::connect(l.local_addr().unwrap())
            .await
            .unwrap();
        let addr = tcp.local_addr().unwrap();
        shared
            .connections
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let guard = super::ConnGuard(shared.clone());
        let task = super::handle_connection(shared.clone(), tcp, addr, guard, false);
        let size = std::mem::size_of_val(&task);
        assert!(size <= 1536, "connection task future grew to {size} bytes");
    }
}
