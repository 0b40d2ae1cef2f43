//! A minimal scripted WebSocket server for transport tests: one connection, an upgrade callback
//! that decides the response headers, then a script run on the accepted socket.

#![allow(dead_code, clippy::unwrap_used, clippy::result_large_err)]

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use cable_transport::{
    CLIENT_PAYLOAD_HEADER, ROUTING_ID_HEADER, SIGNAL_CONNECTION_HEADER, SUBPROTOCOL,
};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::{HeaderValue, StatusCode};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::WebSocketStream;

pub type Upgrade = Box<dyn FnOnce(&Request, Response) -> Result<Response, ErrorResponse> + Send>;

/// What the server saw in the upgrade request.
#[derive(Debug, Clone)]
pub struct Seen {
    pub path: String,
    pub subprotocol: Option<String>,
    pub client_payload: Option<String>,
    pub signal_connection: Option<String>,
}

pub struct TestServer {
    pub addr: SocketAddr,
    pub seen: oneshot::Receiver<Seen>,
    pub task: JoinHandle<()>,
}

/// Accepts `fido.cable`, selects it and adds the given routing-id header values.
pub fn cable_upgrade(routing_ids: &'static [&'static str]) -> Upgrade {
    Box::new(move |_req, mut resp| {
        let h = resp.headers_mut();
        h.insert(
            "Sec-WebSocket-Protocol",
            HeaderValue::from_static(SUBPROTOCOL),
        );
        for v in routing_ids {
            h.append(ROUTING_ID_HEADER, HeaderValue::from_static(v));
        }
        Ok(resp)
    })
}

/// Refuses the upgrade with an HTTP status.
pub fn refuse(status: u16) -> Upgrade {
    Box::new(move |_req, _resp| {
        let mut r = ErrorResponse::new(None);
        *r.status_mut() = StatusCode::from_u16(status).unwrap();
        Err(r)
    })
}

fn server_config() -> WebSocketConfig {
    // Unlimited, so tests can push oversize messages at the client.
    WebSocketConfig::default()
        .max_message_size(None)
        .max_frame_size(None)
}

async fn accept_one<S, F, Fut>(
    stream: S,
    upgrade: Upgrade,
    seen_tx: oneshot::Sender<Seen>,
    script: F,
) where
    S: AsyncRead + AsyncWrite + Unpin,
    F: FnOnce(WebSocketStream<S>) -> Fut,
    Fut: Future<Output = ()>,
{
    let callback = move |req: &Request, resp: Response| {
        let _ = seen_tx.send(Seen {
            path: req.uri().path().to_owned(),
            subprotocol: req
                .headers()
                .get("Sec-WebSocket-Protocol")
                .map(|v| v.to_str().unwrap().to_owned()),
            client_payload: req
                .headers()
                .get(CLIENT_PAYLOAD_HEADER)
                .map(|v| v.to_str().unwrap().to_owned()),
            signal_connection: req
                .headers()
                .get(SIGNAL_CONNECTION_HEADER)
                .map(|v| v.to_str().unwrap().to_owned()),
        });
        upgrade(req, resp)
    };
    if let Ok(ws) =
        tokio_tungstenite::accept_hdr_async_with_config(stream, callback, Some(server_config()))
            .await
    {
        script(ws).await;
    }
}

/// Plain `ws://` server on 127.0.0.1 for one connection.
pub async fn serve<F, Fut>(upgrade: Upgrade, script: F) -> TestServer
where
    F: FnOnce(WebSocketStream<tokio::net::TcpStream>) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (seen_tx, seen) = oneshot::channel();
    let task = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        accept_one(tcp, upgrade, seen_tx, script).await;
    });
    TestServer { addr, seen, task }
}

/// `wss://` server for one connection, with the given certificate chain and key.
pub async fn serve_tls<F, Fut>(
    tls: Arc<rustls::ServerConfig>,
    upgrade: Upgrade,
    script: F,
) -> TestServer
where
    F: FnOnce(WebSocketStream<tokio_rustls::server::TlsStream<tokio::net::TcpStream>>) -> Fut
        + Send
        + 'static,
    Fut: Future<Output = ()> + Send,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (seen_tx, seen) = oneshot::channel();
    let task = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let Ok(stream) = tokio_rustls::TlsAcceptor::from(tls).accept(tcp).await else {
            return;
        };
        accept_one(stream, upgrade, seen_tx, script).await;
    });
    TestServer { addr, seen, task }
}

/// A CA and a leaf certificate for `localhost`, signed by it. Returns (CA PEM, server config).
pub fn tls_fixture() -> (String, Arc<rustls::ServerConfig>) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .signed_by(&leaf_key, &ca, &ca_key)
        .unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![leaf.der().clone()],
            rustls_pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into()),
        )
        .unwrap();
    (ca.pem(), Arc::new(config))
}
