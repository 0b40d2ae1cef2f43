//! Listener, per-connection handling and the relay's life cycle.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use cable_proto::domain::TunnelPath;
use cable_proto::ids::{RoutingId, TunnelId};
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::oneshot;
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::WebSocketStream;

use crate::client_addr::{is_trusted, unmap};
use crate::config::RelayConfig;
use crate::contact::Subscription;
use crate::error::RelayError;
use crate::handshake::{self, Forwarding, Refusal, Request, UpgradeRequest};
use crate::metrics::{
    AddressSource, ContactOutcome, Listener, Metrics, ProxyRefusal, RejectReason,
};
use crate::proxy_protocol::{self, ProxyHeader, ProxyHeaderError};
use crate::state::{ConnGuard, Peer, Phase, Shared, Ws};
use crate::stream::ClientStream;
use crate::throttle::AcceptFailures;
use crate::webpush::{PushFailure, Pusher};

/// Connections beyond `max_connections` still get a 503 as long as fewer than this many extra
/// are in flight; past that they are closed at once, so a flood cannot pin unbounded memory.
const REJECT_SLACK: usize = 1024;

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
                let l = bind_listener(addr, crate::admin::BACKLOG)?;
                let a = l
                    .local_addr()
                    .map_err(|source| RelayError::Bind { addr, source })?;
                Some((l, a))
            }
            None => None,
        };
        let push_tls = match config.contact {
            Some(_) => Some(crate::webpush::tls_connector()?),
            None => None,
        };
        let vapid_public = config.contact.as_ref().map(|c| c.vapid.public_key_b64url());
        let shared = Arc::new(Shared::new(config, push_tls));
        let admin_addr = admin.as_ref().map(|(_, a)| *a);
        let task = tokio::spawn(supervise(shared.clone(), listener, admin.map(|(l, _)| l)));
        tracing::info!(
            listen = %local_addr,
            admin = %admin_addr.map_or_else(|| "none".to_owned(), |a| a.to_string()),
            routing_id = %shared.config.routing_id,
            tls = shared.tls.is_some(),
            contact = vapid_public.is_some(),
            proxy_protocol = shared.config.client_addresses.proxy_protocol,
            trusted_proxies = shared.config.client_addresses.trusted_proxies.len(),
            "relay listening"
        );
        if let Some(key) = vapid_public {
            // Public: phones subscribe with it as their applicationServerKey.
            tracing::info!(vapid_public_key = %key, "contacts enabled");
        }
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

    /// Serves new connections with `tls` from now on (a renewed certificate); connections
    /// already open keep theirs. Fails, changing nothing, if the relay was started without
    /// TLS: switching a plain listener to TLS would break every client configured for it.
    pub fn reload_tls(&self, tls: Arc<rustls::ServerConfig>) -> Result<(), RelayError> {
        let Some(current) = &self.shared.tls else {
            self.shared.metrics.tls_reload(false);
            return Err(RelayError::TlsNotEnabled);
        };
        *current
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = TlsAcceptor::from(tls);
        self.shared.metrics.tls_reload(true);
        Ok(())
    }

    /// Counts a reload that was refused before it reached the relay (a bad new pair).
    pub fn reload_tls_refused(&self) {
        self.shared.metrics.tls_reload(false);
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
            live_tunnels = shared.live_tunnels(),
            deadline_s = shared.config.drain_timeout.as_secs_f64(),
            "draining: refusing new tunnels"
        );
        let deadline = Instant::now() + shared.config.drain_timeout;
        tokio::select! {
            () = shared.wait_no_tunnels() => {}
            () = tokio::time::sleep_until(deadline) => {}
            _ = phase.wait_for(|p| *p == Phase::Stopping) => {}
        }
        shared.phase.send_replace(Phase::Stopping);
    }
    // Tunnels now close with 1001; give them their close handshake time.
    let grace = shared.config.limits.close_timeout + Duration::from_millis(200);
    let _ = tokio::time::timeout(grace, shared.wait_no_tunnels()).await;
    tasks.shutdown().await;
    tracing::info!("relay stopped");
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
    let mut failures = AcceptFailures::new(Listener::Tunnel);
    loop {
        let (tcp, addr) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                failures.record(&shared.metrics, &e);
                // Typically EMFILE/ENFILE: back off briefly instead of spinning.
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
        };
        let (guard, n) = ConnGuard::open(&shared);
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
    /// Send `00` to the opening side when the other joins (a contact that asked for it).
    signal: bool,
}

/// What a successful request turned into: a tunnel to run, or `None` for a computer whose
/// socket went to the tunnel's task.
type Accepted = Option<NewTunnel>;

/// The address a connection is rate-limited and logged by, as far as it is known yet.
#[derive(Debug, Clone, Copy)]
struct Client {
    ip: IpAddr,
    source: AddressSource,
    /// Still reading the PROXY header: a timeout now is the header's.
    awaiting_proxy_header: bool,
}

async fn handle_connection(
    shared: Arc<Shared>,
    tcp: TcpStream,
    addr: SocketAddr,
    guard: ConnGuard,
    over_limit: bool,
) {
    let timeout = shared.config.limits.handshake_timeout;
    let mut client = Client {
        ip: unmap(addr.ip()),
        source: AddressSource::Socket,
        awaiting_proxy_header: false,
    };
    // Boxed so that the (larger) handshake state is freed before the long-lived tunnel phase.
    let handshake = Box::pin(handshake(
        &shared,
        tcp,
        addr,
        &mut client,
        guard,
        over_limit,
    ));
    let result = tokio::time::timeout(timeout, handshake).await;
    let accepted = match result {
        Ok(Ok(a)) => a,
        Ok(Err(refusal)) => {
            shared.metrics.reject(refusal.reason);
            let client = client.ip;
            if let Some(problem) = refusal.register_error {
                shared.metrics.registration(Err(problem));
                tracing::info!(%client, peer = %addr, %problem, "push registration refused");
                return;
            }
            match refusal.path_error {
                // The problem, never the path: a path can carry a tunnel id.
                Some(problem) => tracing::debug!(
                    %client,
                    peer = %addr,
                    reason = refusal.reason.as_str(),
                    %problem,
                    "request refused"
                ),
                // Logged where it was refused, with its reason.
                None if refusal.reason == RejectReason::ProxyHeader => {}
                None => tracing::debug!(
                    %client,
                    peer = %addr,
                    reason = refusal.reason.as_str(),
                    "request refused"
                ),
            }
            return;
        }
        Err(_) if client.awaiting_proxy_header => {
            shared.metrics.reject(RejectReason::ProxyHeader);
            proxy_refused(&shared, addr, ProxyRefusal::Timeout, None);
            return;
        }
        Err(_) => {
            shared.metrics.reject(RejectReason::HandshakeTimeout);
            tracing::debug!(client = %client.ip, peer = %addr, "handshake timed out");
            return;
        }
    };
    if let Some(NewTunnel {
        id,
        phone,
        rx,
        created,
        signal,
    }) = accepted
    {
        crate::tunnel::run(shared, id, phone, rx, created, signal).await;
    }
}

/// Counts (by its own reason; the caller counts the reject) and logs a connection closed for
/// its PROXY header. A peer that should not reach
/// the relay at all may connect many times a second, so the line is throttled.
fn proxy_refused(
    shared: &Shared,
    peer: SocketAddr,
    reason: ProxyRefusal,
    error: Option<ProxyHeaderError>,
) {
    shared.metrics.proxy_refused(reason);
    let log = match shared.proxy_log.lock() {
        Ok(mut l) => l.hit(Instant::now()),
        Err(poisoned) => poisoned.into_inner().hit(Instant::now()),
    };
    if let Some(suppressed) = log {
        let error = error.map(|e| e.to_string());
        tracing::warn!(
            %peer,
            reason = reason.as_str(),
            error = error.as_deref().unwrap_or(""),
            suppressed,
            "PROXY protocol header refused, connection closed"
        );
    }
}

/// Reads a PROXY header, never more than it says it is: the bytes after it (TLS or HTTP)
/// stay in the socket for the next layer. The caller's handshake timeout bounds the time.
async fn read_proxy_header(
    tcp: &mut TcpStream,
) -> Result<ProxyHeader, (ProxyRefusal, Option<ProxyHeaderError>)> {
    let mut buf = Vec::with_capacity(64);
    loop {
        match proxy_protocol::parse(&buf) {
            Ok(proxy_protocol::Progress::Done(header, _)) => return Ok(header),
            Ok(proxy_protocol::Progress::Need(n)) => {
                let start = buf.len();
                buf.resize(start + n, 0);
                match tcp.read(&mut buf[start..]).await {
                    Ok(0) | Err(_) => return Err((ProxyRefusal::Closed, None)),
                    Ok(got) => buf.truncate(start + got),
                }
            }
            Err(e) => return Err((ProxyRefusal::from(e), Some(e))),
        }
    }
}

/// Settles the connection's client address before anything else is read: from the PROXY
/// header with `--proxy-protocol` (refusing untrusted peers), else the socket's peer for
/// now (a forwarded header may still name the client).
async fn proxy_header(
    shared: &Shared,
    tcp: &mut TcpStream,
    peer: SocketAddr,
    client: &mut Client,
) -> Result<(), Refusal> {
    let addrs = &shared.config.client_addresses;
    if !is_trusted(&addrs.trusted_proxies, peer.ip()) {
        proxy_refused(shared, peer, ProxyRefusal::UntrustedPeer, None);
        return Err(RejectReason::ProxyHeader.into());
    }
    client.awaiting_proxy_header = true;
    let header = match read_proxy_header(tcp).await {
        Ok(h) => h,
        Err((reason, error)) => {
            client.awaiting_proxy_header = false;
            proxy_refused(shared, peer, reason, error);
            return Err(RejectReason::ProxyHeader.into());
        }
    };
    client.awaiting_proxy_header = false;
    if let Some(ip) = header.source() {
        client.ip = unmap(ip);
        client.source = AddressSource::ProxyProtocol;
    }
    shared.metrics.client_address(client.source);
    Ok(())
}

async fn handshake(
    shared: &Arc<Shared>,
    mut tcp: TcpStream,
    peer: SocketAddr,
    client: &mut Client,
    guard: ConnGuard,
    over_limit: bool,
) -> Result<Accepted, Refusal> {
    let addrs = &shared.config.client_addresses;
    if addrs.proxy_protocol {
        proxy_header(shared, &mut tcp, peer, client).await?;
    }
    let acceptor = shared.tls.as_ref().map(|tls| {
        tls.read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    });
    let mut stream = match acceptor {
        Some(acceptor) => match acceptor.accept(tcp).await {
            Ok(tls) => ClientStream::Tls(Box::new(tls)),
            Err(_) => return Err(RejectReason::TlsFailed.into()),
        },
        None => ClientStream::Plain(tcp),
    };
    let config = &shared.config;
    // A forwarded header counts only from a trusted proxy, and never next to a PROXY header,
    // which has said who the client is already.
    let forwarding = (!addrs.proxy_protocol && is_trusted(&addrs.trusted_proxies, peer.ip()))
        .then_some(Forwarding {
            header: addrs.forwarded_header,
            trusted: &addrs.trusted_proxies,
        });
    let request = handshake::read_request(
        &mut stream,
        config.limits.max_request_head,
        config.routing_id,
        forwarding,
    )
    .await;
    if let Ok((_, forwarded)) = &request {
        if !addrs.proxy_protocol {
            if let Some(ip) = forwarded {
                client.ip = *ip;
                client.source = AddressSource::ForwardedHeader;
            }
            shared.metrics.client_address(client.source);
        }
    }
    let ip = client.ip;
    let request = match request {
        Ok(_) if over_limit => Err(RejectReason::ConnectionLimit.into()),
        other => other.map(|(r, _)| r),
    };
    let decided = match request {
        Err(refusal) => Err(refusal),
        Ok(Request::Register(body)) => match register(shared, &body, ip) {
            Ok(contact_id) => {
                handshake::registered(&mut stream, &contact_id).await;
                return Ok(None);
            }
            Err(refusal) => Err(refusal),
        },
        Ok(Request::Upgrade(req)) => prepare(shared, req, ip).await,
    };
    let (decision, key, tail) = match decided {
        Ok(d) => d,
        Err(refusal) => {
            handshake::refuse(&mut stream, &refusal).await;
            return Err(refusal);
        }
    };
    match decision {
        Decision::New(id, rx) => {
            let created = Instant::now();
            // On a write error the tunnel still runs: it is registered (a computer may already
            // have claimed it) and its first read fails, which releases it the normal way.
            let _ = handshake::accept(&mut stream, &key, Some(config.routing_id), false).await;
            let ws = websocket(shared, stream, tail).await;
            Ok(Some(NewTunnel {
                id,
                phone: Peer { ws, _guard: guard },
                rx,
                created,
                signal: false,
            }))
        }
        Decision::Contact {
            id,
            rx,
            created,
            signal,
        } => {
            // As for `new`: the tunnel runs even if the 101 cannot be written.
            let _ = handshake::accept(&mut stream, &key, None, signal).await;
            let ws = websocket(shared, stream, tail).await;
            Ok(Some(NewTunnel {
                id,
                phone: Peer { ws, _guard: guard },
                rx,
                created,
                signal,
            }))
        }
        Decision::Connect(tx) => {
            if handshake::accept(&mut stream, &key, None, false)
                .await
                .is_err()
            {
                // Dropping `tx` tells the tunnel that the join failed.
                return Err(RejectReason::HandshakeIo.into());
            }
            let ws = websocket(shared, stream, tail).await;
            // If the phone left meanwhile, the computer's socket comes back and is dropped.
            let _ = tx.send(Peer { ws, _guard: guard });
            Ok(None)
        }
    }
}

/// `POST /cable/push/register`: seals the subscription into a contact id.
fn register(shared: &Shared, body: &[u8], ip: IpAddr) -> Result<String, Refusal> {
    let Some(contact) = &shared.config.contact else {
        return Err(RejectReason::ContactUnsupported.into());
    };
    if !shared.rate.allow(ip) {
        return Err(RejectReason::RateLimited.into());
    }
    let sub = Subscription::from_json(body, contact.allow_insecure_push)?;
    let id = contact.keys.seal_to_string(&sub, &mut rand_core::OsRng);
    shared.metrics.registration(Ok(()));
    tracing::info!(
        push_host = sub.host(),
        key_id = contact.keys.current_id(),
        "push subscription registered"
    );
    Ok(id)
}

/// Decides an upgrade request; a contact also pushes to the phone first.
async fn prepare(
    shared: &Shared,
    req: UpgradeRequest,
    ip: IpAddr,
) -> Result<(Decision, String, Vec<u8>), Refusal> {
    let UpgradeRequest {
        path,
        key,
        tail,
        client_payload,
        signal,
    } = req;
    let decision = match path {
        TunnelPath::Contact { contact_id } => {
            let result = contact(shared, &contact_id, client_payload, signal, ip).await;
            shared.metrics.contact(match &result {
                Ok(_) => ContactOutcome::Ok,
                Err(RejectReason::ContactGone) => ContactOutcome::Gone,
                Err(RejectReason::PushGone) => ContactOutcome::PushGone,
                Err(RejectReason::PushFailed | RejectReason::PushUnavailable) => {
                    ContactOutcome::PushFailed
                }
                Err(RejectReason::BadClientPayload) => ContactOutcome::BadRequest,
                Err(_) => ContactOutcome::Refused,
            });
            result?
        }
        other => decide(shared, other, ip)?,
    };
    Ok((decision, key, tail))
}

/// Frees a contact's tunnel unless the contact succeeded (also when the handshake timeout
/// cancels the push midway).
struct Provisional<'a> {
    shared: &'a Shared,
    id: TunnelId,
    armed: bool,
}

impl Drop for Provisional<'_> {
    fn drop(&mut self) {
        if self.armed {
            self.shared.abandon(&self.id);
        }
    }
}

async fn contact(
    shared: &Shared,
    contact_id: &[u8],
    client_payload: Option<Vec<u8>>,
    signal: bool,
    ip: IpAddr,
) -> Result<Decision, RejectReason> {
    let Some(contact) = &shared.config.contact else {
        return Err(RejectReason::ContactUnsupported);
    };
    let client_payload = client_payload.ok_or(RejectReason::BadClientPayload)?;
    if shared.phase_now() != Phase::Running {
        return Err(RejectReason::Draining);
    }
    if !shared.rate.allow(ip) {
        return Err(RejectReason::RateLimited);
    }
    let sub = contact.keys.open(contact_id).map_err(|e| {
        tracing::info!(client = %ip, problem = %e, "contact id refused");
        RejectReason::ContactGone
    })?;
    let Some(tls) = &shared.push_tls else {
        return Err(RejectReason::ContactUnsupported);
    };
    let mut bytes = [0u8; 16];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut bytes);
    let id = TunnelId::from_bytes(bytes);
    let created = Instant::now();
    // Registered before the push, so that a quick phone finds the tunnel.
    let rx = shared.register(id)?;
    let mut provisional = Provisional {
        shared,
        id,
        armed: true,
    };
    let message =
        cable_proto::push::PushPayload::new(shared.config.routing_id, id, client_payload).encode();
    let pusher = Pusher {
        vapid: &contact.vapid,
        subject: &contact.vapid_subject,
        ttl: contact.push_ttl,
        timeout: contact.push_timeout,
        tls,
    };
    let started = Instant::now();
    let result = pusher.send(&sub, message).await;
    let elapsed = started.elapsed();
    shared.metrics.push_duration.observe(elapsed.as_secs_f64());
    match result {
        Ok(status) => {
            provisional.armed = false;
            tracing::info!(
                tunnel = %id.short_hash(),
                push_host = sub.host(),
                push_status = status,
                push_ms = elapsed.as_millis() as u64,
                signal,
                "contact pushed"
            );
            Ok(Decision::Contact {
                id,
                rx,
                created,
                signal,
            })
        }
        Err(failure) => {
            shared.metrics.push_failed(failure);
            tracing::warn!(
                tunnel = %id.short_hash(),
                push_host = sub.host(),
                class = failure.as_str(),
                push_ms = elapsed.as_millis() as u64,
                "push failed"
            );
            Err(match failure {
                PushFailure::Gone => RejectReason::PushGone,
                PushFailure::Timeout | PushFailure::Throttled | PushFailure::ServerError => {
                    RejectReason::PushUnavailable
                }
                _ => RejectReason::PushFailed,
            })
        }
    }
}

enum Decision {
    New(TunnelId, oneshot::Receiver<Peer>),
    Contact {
        id: TunnelId,
        rx: oneshot::Receiver<Peer>,
        created: Instant,
        signal: bool,
    },
    Connect(oneshot::Sender<Peer>),
}

fn decide(shared: &Shared, path: TunnelPath, ip: IpAddr) -> Result<Decision, RejectReason> {
    Ok(match path {
        TunnelPath::New { tunnel_id: id } => {
            if shared.phase_now() != Phase::Running {
                return Err(RejectReason::Draining);
            }
            if !shared.rate.allow(ip) {
                return Err(RejectReason::RateLimited);
            }
            Decision::New(id, shared.register(id)?)
        }
        TunnelPath::Connect { tunnel_id: id, .. } => {
            if !shared.rate.allow(ip) {
                return Err(RejectReason::RateLimited);
            }
            Decision::Connect(shared.claim(&id)?)
        }
        TunnelPath::Contact { .. } => return Err(RejectReason::ContactUnsupported),
    })
}

async fn websocket(shared: &Shared, stream: ClientStream, tail: Vec<u8>) -> Box<Ws> {
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
        let (guard, _) = super::ConnGuard::open(&shared);
        let task = super::handle_connection(shared.clone(), tcp, addr, guard, false);
        let size = std::mem::size_of_val(&task);
        assert!(size <= 1536, "connection task future grew to {size} bytes");
    }
}
