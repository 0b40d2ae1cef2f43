//! Health, readiness and Prometheus metrics on a separate listener.
//!
//! A tiny HTTP/1.1 responder instead of an HTTP framework: the listener serves three read-only
//! GET endpoints to a scraper and a kubelet, one request per connection. Request heads are
//! parsed with `httparse` (already used for tunnel requests); reads are bounded in size and
//! time, and a connection that has not sent its request yet gives way to newer ones (see
//! [`serve`]), so idle or slow clients cannot keep probes out.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

use crate::exposition::Format;
use crate::metrics::Listener;
use crate::state::{Phase, Shared};
use crate::throttle::AcceptFailures;

const MAX_HEAD: usize = 8192;
/// Time a client has to send its complete request head. Probes and scrapers send it right
/// after connecting; anything slower is holding the port, not asking something.
const HEAD_TIMEOUT: Duration = Duration::from_secs(2);
/// Time allowed to write an answer (a `/metrics` body is a few KiB).
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
/// Connections that may wait for their request head at once; a newer one evicts the oldest.
const MAX_WAITING: usize = 256;
/// Listen backlog of the admin listener. The accept loop never waits for a slot, but a burst
/// of connections must not fill the accept queue either: a probe whose SYN is dropped is
/// retried after a second, past a typical probe timeout.
pub(crate) const BACKLOG: u32 = 1024;

/// Accepts admin connections and answers each in its own task.
///
/// Fairness by eviction rather than by per-client permits: the listener binds loopback by
/// default, and a kubelet, a node-local scraper or a sidecar share one address with whatever
/// else runs there, so a per-address quota would put probes in the same bucket as the
/// connections starving them. Evicting the connection that has waited longest for its request
/// head needs no notion of who a client is: a probe sends its head within one round trip of
/// connecting, so to push it out an attacker must open `MAX_WAITING` connections within that
/// round trip, instead of merely keeping a few open. Connections that have sent their head
/// are being answered and are never evicted; `HEAD_TIMEOUT` and `WRITE_TIMEOUT` bound how
/// long any connection lives.
pub(crate) async fn serve(shared: Arc<Shared>, listener: TcpListener) {
    let waiting = Arc::new(Waiting::new(MAX_WAITING));
    let mut failures = AcceptFailures::new(Listener::Admin);
    loop {
        let tcp = match listener.accept().await {
            Ok((tcp, _)) => tcp,
            Err(e) => {
                failures.record(&shared.metrics, &e);
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
        };
        // Admitted here, in accept order, so that "oldest" means first accepted.
        let (slot, evicted) = waiting.admit();
        let shared = shared.clone();
        tokio::spawn(async move {
            let mut tcp = tcp;
            let head = tokio::select! {
                biased;
                _ = evicted => return,
                head = tokio::time::timeout(
                    HEAD_TIMEOUT,
                    read_head(&mut tcp, shared.config.admin_token.as_ref()),
                ) => head,
            };
            drop(slot);
            if let Ok(Ok(head)) = head {
                let _ = tokio::time::timeout(WRITE_TIMEOUT, respond(&shared, &mut tcp, head)).await;
            }
        });
    }
}

/// Connections still waiting for their request head, oldest first, each with the sender
/// whose drop evicts it.
#[derive(Debug)]
struct Waiting {
    max: usize,
    inner: Mutex<WaitingInner>,
}

#[derive(Debug, Default)]
struct WaitingInner {
    next_id: u64,
    conns: BTreeMap<u64, oneshot::Sender<()>>,
}

impl Waiting {
    fn new(max: usize) -> Self {
        Self {
            max,
            inner: Mutex::default(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, WaitingInner> {
        match self.inner.lock() {
            Ok(w) => w,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Takes a slot for a new connection, evicting the oldest waiting one if all are taken.
    /// The receiver completes when this connection is evicted.
    fn admit(self: &Arc<Self>) -> (Slot, oneshot::Receiver<()>) {
        let (tx, rx) = oneshot::channel();
        let mut w = self.lock();
        if w.conns.len() >= self.max {
            w.conns.pop_first();
        }
        let id = w.next_id;
        w.next_id += 1;
        w.conns.insert(id, tx);
        drop(w);
        (
            Slot {
                waiting: self.clone(),
                id,
            },
            rx,
        )
    }
}

/// A connection's place among the waiting ones; given up once its head has arrived (or it
/// timed out, or it was evicted).
#[derive(Debug)]
struct Slot {
    waiting: Arc<Waiting>,
    id: u64,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.waiting.lock().conns.remove(&self.id);
    }
}

/// Which admin endpoint a request asks for.
#[derive(Debug, PartialEq, Eq)]
enum Endpoint {
    Health,
    Ready,
    Metrics,
    NotFound,
    BadMethod,
}

fn route(method: &str, path: &str) -> Endpoint {
    let path = path.split_once('?').map_or(path, |(p, _)| p);
    if method != "GET" && method != "HEAD" {
        return Endpoint::BadMethod;
    }
    match path {
        "/healthz" => Endpoint::Health,
        "/readyz" => Endpoint::Ready,
        "/metrics" => Endpoint::Metrics,
        _ => Endpoint::NotFound,
    }
}

/// What a request head asked for, or why it cannot be answered normally.
#[derive(Debug, PartialEq, Eq)]
enum Head {
    Request {
        endpoint: Endpoint,
        head_only: bool,
        /// No token is configured, or the request carries it.
        authorized: bool,
        /// The `/metrics` format its `Accept` header asks for.
        format: Format,
    },
    TooLarge,
    Malformed,
    /// The client closed before sending a complete head.
    Closed,
}

async fn read_head(
    tcp: &mut TcpStream,
    token: Option<&crate::AdminToken>,
) -> std::io::Result<Head> {
    let mut buf = Vec::with_capacity(1024);
    loop {
        if buf.len() >= MAX_HEAD {
            return Ok(Head::TooLarge);
        }
        let start = buf.len();
        buf.resize(start + 1024, 0);
        let n = tcp.read(&mut buf[start..]).await?;
        buf.truncate(start + n);
        if n == 0 {
            return Ok(Head::Closed);
        }
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut req = httparse::Request::new(&mut headers);
        match req.parse(&buf) {
            Ok(httparse::Status::Partial) => continue,
            Ok(httparse::Status::Complete(_)) => {
                let method = req.method.unwrap_or("");
                let authorized = token.is_none_or(|token| {
                    token.accepts(
                        req.headers
                            .iter()
                            .find(|h| h.name.eq_ignore_ascii_case("authorization"))
                            .map(|h| h.value),
                    )
                });
                let accept = req
                    .headers
                    .iter()
                    .find(|h| h.name.eq_ignore_ascii_case("accept"))
                    .map(|h| h.value);
                return Ok(Head::Request {
                    endpoint: route(method, req.path.unwrap_or("")),
                    head_only: method == "HEAD",
                    authorized,
                    format: Format::from_accept(accept),
                });
            }
            Err(_) => return Ok(Head::Malformed),
        }
    }
}

async fn respond(shared: &Shared, tcp: &mut TcpStream, head: Head) -> std::io::Result<()> {
    let (endpoint, head_only, authorized, format) = match head {
        Head::Request {
            endpoint,
            head_only,
            authorized,
            format,
        } => (endpoint, head_only, authorized, format),
        Head::TooLarge => {
            return write(tcp, 431, "Request Header Fields Too Large", "", false).await
        }
        Head::Malformed => return write(tcp, 400, "Bad Request", "", false).await,
        Head::Closed => return Ok(()),
    };
    match endpoint {
        Endpoint::Health => write(tcp, 200, "OK", "ok\n", head_only).await,
        Endpoint::Ready => {
            if shared.phase_now() == Phase::Running {
                write(tcp, 200, "OK", "ready\n", head_only).await
            } else {
                write(tcp, 503, "Service Unavailable", "draining\n", head_only).await
            }
        }
        Endpoint::Metrics if !authorized => {
            shared.metrics.admin_unauthorized();
            write_unauthorized(tcp, head_only).await
        }
        Endpoint::Metrics => {
            let body = shared.metrics.encode_as(format);
            write_typed(tcp, 200, "OK", format.content_type(), &body, head_only).await
        }
        Endpoint::NotFound => write(tcp, 404, "Not Found", "", head_only).await,
        Endpoint::BadMethod => write(tcp, 405, "Method Not Allowed", "", false).await,
    }
}

/// 401 with the challenge RFC 6750 asks for; the body says nothing about the token.
async fn write_unauthorized(tcp: &mut TcpStream, head_only: bool) -> std::io::Result<()> {
    let body = "a bearer token is required\n";
    let head = format!(
        "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Bearer realm=\"cable-relay-metrics\"\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    tcp.write_all(head.as_bytes()).await?;
    if !head_only {
        tcp.write_all(body.as_bytes()).await?;
    }
    tcp.shutdown().await
}

async fn write(
    tcp: &mut TcpStream,
    code: u16,
    text: &str,
    body: &str,
    head_only: bool,
) -> std::io::Result<()> {
    write_typed(
        tcp,
        code,
        text,
        "text/plain; charset=utf-8",
        body,
        head_only,
    )
    .await
}

async fn write_typed(
    tcp: &mut TcpStream,
    code: u16,
    text: &str,
    content_type: &str,
    body: &str,
    head_only: bool,
) -> std::io::Result<()> {
    let head = format!(
        "HTTP/1.1 {code} {text}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    tcp.write_all(head.as_bytes()).await?;
    if !head_only {
        tcp.write_all(body.as_bytes()).await?;
    }
    tcp.shutdown().await
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        assert_eq!(route("GET", "/healthz"), Endpoint::Health);
        assert_eq!(route("GET", "/readyz?verbose"), Endpoint::Ready);
        assert_eq!(route("HEAD", "/metrics"), Endpoint::Metrics);
        assert_eq!(route("POST", "/metrics"), Endpoint::BadMethod);
        assert_eq!(route("GET", "/"), Endpoint::NotFound);
    }

    #[test]
    fn a_full_waiting_set_evicts_the_oldest_connection() {
        let waiting = Arc::new(Waiting::new(2));
        let (first, mut first_evicted) = waiting.admit();
        let (second, _) = waiting.admit();
        assert_eq!(
            first_evicted.try_recv(),
            Err(oneshot::error::TryRecvError::Empty)
        );
        let (_third, mut third_evicted) = waiting.admit();
        assert_eq!(
            first_evicted.try_recv(),
            Err(oneshot::error::TryRecvError::Closed)
        );
        // A connection whose head arrived gives its slot back; nobody else is evicted.
        drop(second);
        let (_fourth, _) = waiting.admit();
        assert_eq!(
            third_evicted.try_recv(),
            Err(oneshot::error::TryRecvError::Empty)
        );
        // An evicted connection's own slot is already gone.
        drop(first);
        assert_eq!(waiting.lock().conns.len(), 2);
    }
}
