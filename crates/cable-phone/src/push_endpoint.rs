//! A Web Push endpoint of the phone's own: an HTTP listener that takes the relay's push
//! messages (RFC 8030 `POST` with an RFC 8291 `aes128gcm` body) and hands the contacts in
//! them to the caller.
//!
//! For phones without a platform push service (a Linux credential manager, tests, the
//! demo) on a network the relay can reach. It speaks plain HTTP, so the relay must allow
//! insecure push endpoints (`--allow-insecure-push`) or a TLS proxy must front it. The
//! secret path ([`PushKeys::endpoint_path`]) and the message encryption keep strangers out:
//! a post elsewhere gets 404, a body that does not decrypt 400. VAPID signatures are not
//! checked, as a subscription made without an application server key has nothing to check
//! them against.

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, Semaphore};
use tokio::task::JoinHandle;

use crate::push::PushKeys;
use crate::session::ContactRequest;

/// A push message is a contact of a few hundred bytes plus 86 bytes of header and tag.
const MAX_BODY: usize = 8 * 1024;
/// Contacts waiting to be answered; more are refused with 429 so the relay reports it.
const QUEUE: usize = 16;
/// Connections served at once; the relay opens one per push.
const MAX_CONNECTIONS: usize = 64;
const HEADER_TIMEOUT: Duration = Duration::from_secs(5);

/// A listening push endpoint. Dropping it stops the listener.
#[derive(Debug)]
pub struct PushEndpoint {
    local_addr: SocketAddr,
    path: String,
    contacts: mpsc::Receiver<ContactRequest>,
    listener: JoinHandle<()>,
}

impl Drop for PushEndpoint {
    fn drop(&mut self) {
        self.listener.abort();
    }
}

impl PushEndpoint {
    /// Listens on `addr` (port 0 picks one) for pushes to `keys`' subscription.
    pub async fn bind(addr: SocketAddr, keys: PushKeys) -> io::Result<Self> {
        let listener = TcpListener::bind(addr).await?;
        let local_addr = listener.local_addr()?;
        let path = keys.endpoint_path();
        let (tx, contacts) = mpsc::channel(QUEUE);
        let shared = Arc::new(Shared {
            keys,
            path: path.clone(),
            tx,
        });
        let listener = tokio::spawn(accept_loop(listener, shared));
        Ok(Self {
            local_addr,
            path,
            contacts,
            listener,
        })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// `http://<address>/push/<token>`: the endpoint URL to register, when the relay reaches
    /// this address as it is (give the relay another URL with the same path when a proxy
    /// or another name fronts it).
    pub fn url(&self) -> String {
        format!("http://{}{}", self.local_addr, self.path)
    }

    /// The secret path it answers on.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The next contact pushed to it, in arrival order; `None` once the listener failed.
    /// Cancel-safe.
    pub async fn next(&mut self) -> Option<ContactRequest> {
        self.contacts.recv().await
    }
}

struct Shared {
    keys: PushKeys,
    path: String,
    tx: mpsc::Sender<ContactRequest>,
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    let permits = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let Ok(permit) = permits.clone().acquire_owned().await else {
            return;
        };
        let tcp = match listener.accept().await {
            Ok((tcp, _)) => tcp,
            Err(e) => {
                tracing::warn!(error = %e, "push endpoint: accept failed");
                // Out of descriptors, most likely: give closing connections a moment.
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let shared = shared.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let shared = shared.clone();
                async move { Ok::<_, Infallible>(handle(&shared, req).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .serve_connection(TokioIo::new(tcp), service)
                .await;
            drop(permit);
        });
    }
}

async fn handle(shared: &Shared, req: Request<Incoming>) -> Response<Full<Bytes>> {
    if req.uri().path() != shared.path {
        return status(StatusCode::NOT_FOUND);
    }
    if req.method() != Method::POST {
        let mut response = status(StatusCode::METHOD_NOT_ALLOWED);
        response
            .headers_mut()
            .insert(http::header::ALLOW, http::HeaderValue::from_static("POST"));
        return response;
    }
    let encoding = req.headers().get(http::header::CONTENT_ENCODING);
    if encoding.is_none_or(|e| !e.as_bytes().eq_ignore_ascii_case(b"aes128gcm")) {
        return status(StatusCode::UNSUPPORTED_MEDIA_TYPE);
    }
    let body = match Limited::new(req.into_body(), MAX_BODY).collect().await {
        Ok(body) => body.to_bytes(),
        Err(_) => return status(StatusCode::PAYLOAD_TOO_LARGE),
    };
    let contact = match shared.keys.open(&body) {
        Ok(contact) => contact,
        Err(e) => {
            tracing::warn!(error = %e, "push endpoint: refused a push message");
            return status(StatusCode::BAD_REQUEST);
        }
    };
    match shared.tx.try_send(contact) {
        // 201 is what RFC 8030 push services answer for an accepted message.
        Ok(()) => status(StatusCode::CREATED),
        Err(mpsc::error::TrySendError::Full(_)) => {
            tracing::warn!("push endpoint: too many contacts waiting; refused one");
            status(StatusCode::TOO_MANY_REQUESTS)
        }
        Err(mpsc::error::TrySendError::Closed(_)) => status(StatusCode::SERVICE_UNAVAILABLE),
    }
}

fn status(code: StatusCode) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = code;
    response
}
