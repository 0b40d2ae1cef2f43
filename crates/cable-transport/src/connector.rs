//! Opening tunnel connections: DNS, TCP, TLS, the WebSocket upgrade and its caBLE headers.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;

use cable_proto::ids::{RoutingId, TunnelId};
use cable_proto::wire::{
    CLIENT_PAYLOAD_HEADER, ROUTING_ID_HEADER, SIGNAL_CONNECTION_HEADER, SUBPROTOCOL,
};
use rustls::{ClientConfig, RootCertStore};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_rustls::TlsConnector;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::error::ProtocolError;
use tokio_tungstenite::tungstenite::http::{HeaderValue, Response};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Error as WsError;
use tokio_util::either::Either;

use crate::connection::{TunnelConnection, TunnelStream};
use crate::error::{Operation, RoutingIdProblem, TransportError, WebSocketError};
use crate::relay_url::RelayUrl;

/// The largest message accepted or sent, as in Chromium's WebSocket adapter (1 MiB).
pub const MAX_MESSAGE_SIZE: usize = 1 << 20;

/// caBLE messages are a few hundred bytes; large default buffers cost memory per connection.
const READ_BUFFER_SIZE: usize = 4 * 1024;

/// Opens tunnel connections. Cheap to clone; share one per process.
///
/// Trusts the public web PKI (webpki-roots), the operating system's certificate store and
/// any extra CA given to the builder, speaks
/// HTTP/1.1 WebSockets only, and refuses `ws://` to hosts that are not loopback unless
/// [`ConnectorBuilder::allow_plaintext`] says otherwise.
#[derive(Clone)]
pub struct Connector {
    tls: Arc<ClientConfig>,
    allow_plaintext: bool,
    max_message_size: usize,
}

impl fmt::Debug for Connector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connector")
            .field("allow_plaintext", &self.allow_plaintext)
            .field("max_message_size", &self.max_message_size)
            .finish_non_exhaustive()
    }
}

/// Configures a [`Connector`].
#[derive(Debug)]
pub struct ConnectorBuilder {
    public_roots: bool,
    system_roots: bool,
    extra_roots: Vec<CertificateDer<'static>>,
    allow_plaintext: bool,
    max_message_size: usize,
}

impl Default for ConnectorBuilder {
    fn default() -> Self {
        Self {
            public_roots: true,
            system_roots: true,
            extra_roots: Vec::new(),
            allow_plaintext: false,
            max_message_size: MAX_MESSAGE_SIZE,
        }
    }
}

impl ConnectorBuilder {
    /// Trust the CA certificates in `pem` (one or more `CERTIFICATE` blocks) in addition to the
    /// public roots; for private relays.
    pub fn extra_ca_pem(mut self, pem: &[u8]) -> Result<Self, TransportError> {
        let certs = CertificateDer::pem_slice_iter(pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(TransportError::InvalidCaPem)?;
        if certs.is_empty() {
            return Err(TransportError::NoCaCertificates);
        }
        self.extra_roots.extend(certs);
        Ok(self)
    }

    /// Trust one extra CA certificate given in DER.
    pub fn extra_ca_der(mut self, der: Vec<u8>) -> Self {
        self.extra_roots.push(CertificateDer::from(der));
        self
    }

    /// Whether to trust the public web PKI roots bundled with this crate (default true).
    /// Turn this and [`ConnectorBuilder::system_roots`] off to pin a private CA.
    pub fn public_roots(mut self, yes: bool) -> Self {
        self.public_roots = yes;
        self
    }

    /// Whether to trust the operating system's certificate store as well (default true):
    /// on Linux the distribution's bundle, or `SSL_CERT_FILE` / `SSL_CERT_DIR`; the
    /// keychain on macOS; the system store on Windows. Certificates it cannot parse are
    /// skipped (logged at debug level).
    pub fn system_roots(mut self, yes: bool) -> Self {
        self.system_roots = yes;
        self
    }

    /// Allow `ws://` to hosts that are not loopback (default false; loopback is always allowed).
    pub fn allow_plaintext(mut self, yes: bool) -> Self {
        self.allow_plaintext = yes;
        self
    }

    /// Lower the message size limit (default and maximum [`MAX_MESSAGE_SIZE`]).
    pub fn max_message_size(mut self, bytes: usize) -> Self {
        self.max_message_size = bytes.min(MAX_MESSAGE_SIZE);
        self
    }

    /// Builds the connector.
    pub fn build(self) -> Result<Connector, TransportError> {
        let mut roots = RootCertStore::empty();
        if self.public_roots {
            roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        }
        if self.system_roots {
            let found = rustls_native_certs::load_native_certs();
            for error in &found.errors {
                tracing::debug!(%error, "part of the system certificate store is unreadable");
            }
            let (added, ignored) = roots.add_parsable_certificates(found.certs);
            tracing::debug!(added, ignored, "system certificate store");
        }
        for cert in self.extra_roots {
            roots.add(cert).map_err(TransportError::CaRejected)?;
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut tls = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(TransportError::TlsConfig)?
            .with_root_certificates(roots)
            .with_no_client_auth();
        // The upgrade is an HTTP/1.1 request; never let a front end pick h2.
        tls.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Connector {
            tls: Arc::new(tls),
            allow_plaintext: self.allow_plaintext,
            max_message_size: self.max_message_size,
        })
    }
}

impl Connector {
    /// A connector trusting the public web PKI.
    pub fn new() -> Result<Self, TransportError> {
        Self::builder().build()
    }

    /// Starts configuring a connector.
    pub fn builder() -> ConnectorBuilder {
        ConnectorBuilder::default()
    }

    /// Phone, QR flow: opens `<relay>/cable/new/<TUNNEL_ID>` and returns the connection with the
    /// routing id the relay assigned (from `X-caBLE-Routing-ID`).
    pub async fn open_new_tunnel(
        &self,
        relay: &RelayUrl,
        tunnel_id: &TunnelId,
        deadline: Instant,
    ) -> Result<(TunnelConnection, RoutingId), TransportError> {
        let url = relay.new_tunnel_url(tunnel_id);
        let (conn, response) = self.open(relay, &url, &[], deadline).await?;
        let routing_id = routing_id_from(&response)?;
        Ok((conn, routing_id))
    }

    /// Computer, QR flow (and phone, state-assisted flow): opens
    /// `<relay>/cable/connect/<ROUTING_ID>/<TUNNEL_ID>`.
    pub async fn connect_tunnel(
        &self,
        relay: &RelayUrl,
        routing_id: &RoutingId,
        tunnel_id: &TunnelId,
        deadline: Instant,
    ) -> Result<TunnelConnection, TransportError> {
        let url = relay.connect_url(routing_id, tunnel_id);
        let (conn, _) = self.open(relay, &url, &[], deadline).await?;
        Ok(conn)
    }

    /// Computer, state-assisted flow: opens `<relay>/cable/contact/<base64url(contact_id)>`
    /// with `X-caBLE-Client-Payload` (the hex of the client-payload CBOR, as built by
    /// `cable-proto`) and `X-caBLE-Signal-Connection: true`.
    ///
    /// Returns whether the relay echoed the signal header: if it did, the first message on the
    /// connection will be the single byte `00` when the phone joins. A relay answering 410 Gone
    /// ([`TransportError::Gone`]) means the pairing is dead and should be forgotten.
    pub async fn open_contact(
        &self,
        relay: &RelayUrl,
        contact_id: &[u8],
        client_payload_hex: &str,
        deadline: Instant,
    ) -> Result<(TunnelConnection, bool), TransportError> {
        let payload = HeaderValue::from_str(client_payload_hex).map_err(|_| {
            TransportError::InvalidHeaderValue {
                header: CLIENT_PAYLOAD_HEADER,
            }
        })?;
        let url = relay.contact_url(contact_id);
        let headers = [
            (CLIENT_PAYLOAD_HEADER, payload),
            (SIGNAL_CONNECTION_HEADER, HeaderValue::from_static("true")),
        ];
        let (conn, response) = self.open(relay, &url, &headers, deadline).await?;
        let echoed = response.headers().contains_key(SIGNAL_CONNECTION_HEADER);
        Ok((conn, echoed))
    }

    async fn open(
        &self,
        relay: &RelayUrl,
        url: &str,
        headers: &[(&'static str, HeaderValue)],
        deadline: Instant,
    ) -> Result<(TunnelConnection, Response<Option<Vec<u8>>>), TransportError> {
        self.check_plaintext(relay)?;
        tokio::time::timeout_at(deadline, self.open_inner(relay, url, headers))
            .await
            .map_err(|_| TransportError::Timeout(Operation::Connect))?
    }

    /// TCP, then TLS for `wss://`: the byte stream under both the WebSocket upgrade and the
    /// registration request.
    pub(crate) async fn stream(&self, relay: &RelayUrl) -> Result<TunnelStream, TransportError> {
        let tcp = connect_tcp(relay).await?;
        Ok(if relay.is_secure() {
            let name = ServerName::try_from(relay.bare_host().to_owned()).map_err(|_| {
                TransportError::InvalidRelayUrl {
                    problem: crate::error::UrlProblem::BadServerName,
                }
            })?;
            let tls = TlsConnector::from(self.tls.clone())
                .connect(name, tcp)
                .await
                .map_err(|source| TransportError::Tls {
                    host: relay.host().to_owned(),
                    source,
                })?;
            Either::Right(tls)
        } else {
            Either::Left(tcp)
        })
    }

    /// Refuses `ws://` to a host that is not loopback unless plaintext is allowed.
    pub(crate) fn check_plaintext(&self, relay: &RelayUrl) -> Result<(), TransportError> {
        if !relay.is_secure() && !relay.is_loopback() && !self.allow_plaintext {
            return Err(TransportError::PlaintextNotAllowed {
                host: relay.host().to_owned(),
            });
        }
        Ok(())
    }

    async fn open_inner(
        &self,
        relay: &RelayUrl,
        url: &str,
        headers: &[(&'static str, HeaderValue)],
    ) -> Result<(TunnelConnection, Response<Option<Vec<u8>>>), TransportError> {
        let stream = self.stream(relay).await?;
        let mut request = url
            .into_client_request()
            .map_err(|e| TransportError::Protocol(WebSocketError(e)))?;
        request.headers_mut().insert(
            http::header::SEC_WEBSOCKET_PROTOCOL,
            HeaderValue::from_static(SUBPROTOCOL),
        );
        for (name, value) in headers {
            // `HeaderMap` lower-cases a `&'static str` name itself (unlike
            // `HeaderName::from_static`), so the wire spelling can be passed as it is.
            request.headers_mut().insert(*name, value.clone());
        }
        let config = WebSocketConfig::default()
            .read_buffer_size(READ_BUFFER_SIZE)
            .write_buffer_size(0)
            .max_write_buffer_size(self.max_message_size * 2 + 64)
            .max_message_size(Some(self.max_message_size))
            .max_frame_size(Some(self.max_message_size));
        let (ws, response) =
            tokio_tungstenite::client_async_with_config(request, stream, Some(config))
                .await
                .map_err(handshake_error)?;
        // tungstenite accepts any listed protocol; check it is exactly ours.
        let selected = response
            .headers()
            .get(http::header::SEC_WEBSOCKET_PROTOCOL)
            .and_then(|v| v.to_str().ok());
        if selected != Some(SUBPROTOCOL) {
            return Err(TransportError::SubprotocolNotSelected);
        }
        let response = response.map(|_| None);
        Ok((TunnelConnection::new(ws, self.max_message_size), response))
    }
}

async fn connect_tcp(relay: &RelayUrl) -> Result<TcpStream, TransportError> {
    let port = relay.port();
    let addrs: Vec<SocketAddr> = match relay.ip() {
        Some(ip) => vec![SocketAddr::new(ip, port)],
        None => tokio::net::lookup_host((relay.bare_host(), port))
            .await
            .map_err(|e| TransportError::Dns {
                host: relay.host().to_owned(),
                source: Some(e),
            })?
            .collect(),
    };
    let mut last_error = None;
    for addr in addrs {
        match TcpStream::connect(addr).await {
            Ok(tcp) => {
                // Tunnel messages are small and latency-bound.
                tcp.set_nodelay(true)
                    .map_err(|source| TransportError::Connect {
                        host: relay.host().to_owned(),
                        port,
                        source,
                    })?;
                return Ok(tcp);
            }
            Err(e) => last_error = Some(e),
        }
    }
    Err(match last_error {
        Some(source) => TransportError::Connect {
            host: relay.host().to_owned(),
            port,
            source,
        },
        None => TransportError::Dns {
            host: relay.host().to_owned(),
            source: None,
        },
    })
}

fn handshake_error(e: WsError) -> TransportError {
    match e {
        WsError::Http(response) if response.status().as_u16() == 410 => TransportError::Gone,
        WsError::Http(response) => TransportError::HttpStatus {
            status: response.status().as_u16(),
        },
        WsError::Protocol(ProtocolError::SecWebSocketSubProtocolError(_)) => {
            TransportError::SubprotocolNotSelected
        }
        WsError::Io(e) => TransportError::Io(e),
        WsError::ConnectionClosed | WsError::AlreadyClosed => TransportError::ConnectionLost,
        other => TransportError::Protocol(WebSocketError(other)),
    }
}

fn routing_id_from<T>(response: &Response<T>) -> Result<RoutingId, TransportError> {
    let mut values = response.headers().get_all(ROUTING_ID_HEADER).iter();
    let value = values
        .next()
        .ok_or(TransportError::BadRoutingId(RoutingIdProblem::Missing))?;
    if values.next().is_some() {
        return Err(TransportError::BadRoutingId(RoutingIdProblem::Duplicate));
    }
    value
        .to_str()
        .ok()
        .and_then(|text| RoutingId::from_hex(text).ok())
        .ok_or(TransportError::BadRoutingId(RoutingIdProblem::Malformed))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn response_with(values: &[&str]) -> Response<()> {
        let mut b = Response::builder();
        for v in values {
            b = b.header(ROUTING_ID_HEADER, *v);
        }
        b.body(()).unwrap()
    }

    #[test]
    fn routing_id_header_rules() {
        assert_eq!(
            routing_id_from(&response_with(&["0A0b0c"])).unwrap(),
            RoutingId::from_bytes([10, 11, 12])
        );
        let problem = |v: &[&str]| match routing_id_from(&response_with(v)) {
            Err(TransportError::BadRoutingId(p)) => p,
            other => panic!("{v:?}: {other:?}"),
        };
        assert_eq!(problem(&[]), RoutingIdProblem::Missing);
        assert_eq!(problem(&["000000", "000000"]), RoutingIdProblem::Duplicate);
        for bad in ["", "00000", "0000000", "00000000", "zz0000", " 000000"] {
            assert_eq!(problem(&[bad]), RoutingIdProblem::Malformed, "{bad:?}");
        }
    }

    #[test]
    fn extra_ca_pem_errors_are_typed() {
        assert!(matches!(
            Connector::builder().extra_ca_pem(b"no pem here"),
            Err(TransportError::NoCaCertificates)
        ));
        assert!(matches!(
            Connector::builder()
                .extra_ca_pem(b"-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n"),
            Err(TransportError::InvalidCaPem(_))
        ));
    }
}
