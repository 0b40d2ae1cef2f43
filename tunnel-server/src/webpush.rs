//! Sending one Web Push message: RFC 8291 `aes128gcm` encryption and RFC 8292 VAPID signing
//! (both `web-push-native`), over one HTTP/1.1 request per message (hyper, rustls).
//!
//! A contact is rare next to tunnel traffic and each one goes to a different push service
//! host, so there is no connection pool: a push is connect, TLS, one POST, close, all within
//! the push timeout.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use http_body_util::Full;
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use web_push_native::jwt_simple::algorithms::{ECDSAP256PublicKeyLike, ES256KeyPair};
use web_push_native::{Auth, WebPushBuilder};
use zeroize::Zeroizing;

use crate::contact::Subscription;
use crate::error::RelayError;

/// How long the VAPID JWT is valid (RFC 8292 allows at most 24 hours).
const VAPID_VALIDITY: Duration = Duration::from_secs(12 * 3600);

/// The relay's VAPID signing key (P-256). `Debug` shows only the public key.
pub struct VapidKey(ES256KeyPair);

impl fmt::Debug for VapidKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("VapidKey")
            .field(&self.public_key_b64url())
            .finish()
    }
}

impl VapidKey {
    /// A fresh random key.
    pub fn generate() -> Self {
        Self(ES256KeyPair::generate())
    }

    /// Parses a key file: a PEM PKCS#8 private key (`openssl genpkey -algorithm EC -pkeyopt
    /// ec_paramgen_curve:P-256`, or `cable-tunnel-server gen-vapid-key`), the base64url of the
    /// 32-byte private scalar (what Web Push tools print as the private key), or 32 raw bytes.
    pub fn from_file_contents(data: &[u8]) -> Option<Self> {
        if data.starts_with(b"-----BEGIN") {
            let mut reader = data;
            return match rustls_pemfile::private_key(&mut reader) {
                Ok(Some(rustls::pki_types::PrivateKeyDer::Pkcs8(der))) => {
                    ES256KeyPair::from_der(der.secret_pkcs8_der())
                        .ok()
                        .map(Self)
                }
                _ => None,
            };
        }
        if data.len() == 32 {
            return ES256KeyPair::from_bytes(data).ok().map(Self);
        }
        let text = std::str::from_utf8(data).ok()?.trim();
        let raw = Zeroizing::new(URL_SAFE_NO_PAD.decode(text.trim_end_matches('=')).ok()?);
        // `from_bytes` panics on any other length.
        if raw.len() != 32 {
            return None;
        }
        ES256KeyPair::from_bytes(&raw).ok().map(Self)
    }

    /// Reads a key file (formats in [`VapidKey::from_file_contents`]).
    pub fn load(path: &std::path::Path) -> Result<Self, RelayError> {
        let data = Zeroizing::new(std::fs::read(path).map_err(|source| RelayError::ReadFile {
            path: path.display().to_string(),
            source,
        })?);
        Self::from_file_contents(&data).ok_or_else(|| RelayError::VapidKey {
            path: path.display().to_string(),
        })
    }

    /// The private key as PEM PKCS#8 (for `gen-vapid-key`).
    pub fn to_pem(&self) -> Option<Zeroizing<String>> {
        self.0.to_pem().ok().map(Zeroizing::new)
    }

    /// The public key as base64url of the uncompressed point: the `applicationServerKey` a
    /// phone subscribes with, and the `k=` of the VAPID header.
    pub fn public_key_b64url(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.0.public_key().public_key().to_bytes_uncompressed())
    }
}

/// How a push failed, as counted in `cable_relay_push_failures`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PushFailure {
    /// The push service answered 404 or 410: the subscription is gone.
    Gone,
    /// The push service answered 429 (rate limited).
    Throttled,
    /// The push service answered another 4xx (a bad request or VAPID rejected).
    Rejected,
    /// The push service answered 5xx.
    ServerError,
    /// No answer within the push timeout.
    Timeout,
    /// TCP connect (or name resolution) failed.
    Connect,
    /// The TLS handshake failed.
    Tls,
    /// The HTTP exchange broke, or the answer was not a success.
    Protocol,
    /// The message could not be encrypted or signed (a bad subscription key).
    Encrypt,
}

impl PushFailure {
    pub(crate) const ALL: [PushFailure; 9] = [
        Self::Gone,
        Self::Throttled,
        Self::Rejected,
        Self::ServerError,
        Self::Timeout,
        Self::Connect,
        Self::Tls,
        Self::Protocol,
        Self::Encrypt,
    ];

    /// Label value used in metrics and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Gone => "gone",
            Self::Throttled => "throttled",
            Self::Rejected => "rejected",
            Self::ServerError => "server_error",
            Self::Timeout => "timeout",
            Self::Connect => "connect",
            Self::Tls => "tls",
            Self::Protocol => "protocol",
            Self::Encrypt => "encrypt",
        }
    }
}

/// What a push needs besides the subscription.
pub(crate) struct Pusher<'a> {
    pub(crate) vapid: &'a VapidKey,
    pub(crate) subject: &'a str,
    pub(crate) ttl: Duration,
    pub(crate) timeout: Duration,
    pub(crate) tls: &'a tokio_rustls::TlsConnector,
}

impl Pusher<'_> {
    /// Encrypts `plaintext` for `sub`, signs and sends it; returns the push service's status.
    pub(crate) async fn send(
        &self,
        sub: &Subscription,
        plaintext: Vec<u8>,
    ) -> Result<u16, PushFailure> {
        let request = self.request(sub, plaintext)?;
        match tokio::time::timeout(self.timeout, self.exchange(request)).await {
            Ok(result) => result,
            Err(_) => Err(PushFailure::Timeout),
        }
    }

    fn request(
        &self,
        sub: &Subscription,
        plaintext: Vec<u8>,
    ) -> Result<http::Request<Vec<u8>>, PushFailure> {
        let uri: http::Uri = sub.endpoint().parse().map_err(|_| PushFailure::Encrypt)?;
        let ua_public =
            p256::PublicKey::from_sec1_bytes(sub.p256dh()).map_err(|_| PushFailure::Encrypt)?;
        let auth = Auth::from(*sub.auth());
        let mut request = WebPushBuilder::new(uri.clone(), ua_public, auth)
            .with_valid_duration(VAPID_VALIDITY)
            .with_vapid(&self.vapid.0, self.subject)
            .build(plaintext)
            .map_err(|_| PushFailure::Encrypt)?;
        let headers = request.headers_mut();
        // A contact is worth delivering only while its tunnel waits for the phone.
        headers.insert("ttl", http::HeaderValue::from(self.ttl.as_secs()));
        headers.insert("urgency", http::HeaderValue::from_static("high"));
        if let Some(authority) = uri.authority() {
            if let Ok(host) = http::HeaderValue::from_str(authority.as_str()) {
                headers.insert(http::header::HOST, host);
            }
        }
        // HTTP/1.1 on a connection of our own: the request line carries the path only.
        let origin_form = uri
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .parse()
            .map_err(|_| PushFailure::Encrypt)?;
        *request.uri_mut() = origin_form;
        request.extensions_mut().insert(Target(uri));
        Ok(request)
    }

    async fn exchange(&self, request: http::Request<Vec<u8>>) -> Result<u16, PushFailure> {
        let Some(Target(uri)) = request.extensions().get::<Target>().cloned() else {
            return Err(PushFailure::Protocol);
        };
        let host = uri.host().ok_or(PushFailure::Connect)?;
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let https = uri.scheme_str() == Some("https");
        let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
        let tcp = TcpStream::connect((host.as_str(), port))
            .await
            .map_err(|_| PushFailure::Connect)?;
        let _ = tcp.set_nodelay(true);
        if https {
            let name =
                rustls::pki_types::ServerName::try_from(host).map_err(|_| PushFailure::Connect)?;
            let tls = self
                .tls
                .connect(name, tcp)
                .await
                .map_err(|_| PushFailure::Tls)?;
            post(tls, request).await
        } else {
            post(tcp, request).await
        }
    }
}

/// The absolute endpoint, carried beside the origin-form request.
#[derive(Clone)]
struct Target(http::Uri);

async fn post<S>(io: S, request: http::Request<Vec<u8>>) -> Result<u16, PushFailure>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .map_err(|_| PushFailure::Protocol)?;
    let conn = tokio::spawn(conn);
    let response = sender
        .send_request(request.map(|b| Full::new(Bytes::from(b))))
        .await;
    conn.abort();
    let status = response
        .map_err(|_| PushFailure::Protocol)?
        .status()
        .as_u16();
    match status {
        200..=299 => Ok(status),
        404 | 410 => Err(PushFailure::Gone),
        429 => Err(PushFailure::Throttled),
        400..=499 => Err(PushFailure::Rejected),
        500..=599 => Err(PushFailure::ServerError),
        _ => Err(PushFailure::Protocol),
    }
}

/// A TLS client for push services: the Mozilla root store, HTTP/1.1 only.
pub(crate) fn tls_connector() -> Result<tokio_rustls::TlsConnector, rustls::Error> {
    let roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(tokio_rustls::TlsConnector::from(Arc::new(config)))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn vapid_key_formats() {
        let key = VapidKey::generate();
        let pem = key.to_pem().unwrap();
        let from_pem = VapidKey::from_file_contents(pem.as_bytes()).unwrap();
        assert_eq!(from_pem.public_key_b64url(), key.public_key_b64url());
        let raw = key.0.to_bytes();
        assert_eq!(
            VapidKey::from_file_contents(&raw)
                .unwrap()
                .public_key_b64url(),
            key.public_key_b64url()
        );
        let text = format!("{}\n", URL_SAFE_NO_PAD.encode(&raw));
        assert_eq!(
            VapidKey::from_file_contents(text.as_bytes())
                .unwrap()
                .public_key_b64url(),
            key.public_key_b64url()
        );
        assert!(VapidKey::from_file_contents(b"nonsense").is_none());
        assert!(VapidKey::from_file_contents(b"-----BEGIN garbage").is_none());
        assert_eq!(
            URL_SAFE_NO_PAD
                .decode(key.public_key_b64url())
                .unwrap()
                .len(),
            65
        );
        // Debug shows the public key only.
        assert!(!format!("{key:?}").contains(&URL_SAFE_NO_PAD.encode(&raw)));
    }
}
