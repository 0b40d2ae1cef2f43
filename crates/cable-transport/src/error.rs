//! The one error type of this crate.

use std::fmt;
use std::io;

/// Which I/O step a [`TransportError::Timeout`] interrupted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// DNS, TCP, TLS and the WebSocket upgrade together.
    Connect,
    /// Writing one message.
    Send,
    /// Waiting for one message.
    Receive,
    /// The closing handshake.
    Close,
    /// Registering a push subscription, request and answer.
    Register,
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Operation::Connect => "connecting",
            Operation::Send => "sending",
            Operation::Receive => "receiving",
            Operation::Close => "closing",
            Operation::Register => "registering for contacts",
        })
    }
}

/// What was wrong with a relay URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UrlProblem {
    /// Not parseable as an absolute URI.
    Unparseable,
    /// The scheme is not `ws` or `wss`.
    UnsupportedScheme,
    /// No host name.
    MissingHost,
    /// A query or fragment is present; tunnel paths are appended to the URL.
    HasQueryOrFragment,
    /// The host is not a valid TLS server name.
    BadServerName,
}

impl fmt::Display for UrlProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            UrlProblem::Unparseable => "not an absolute URL",
            UrlProblem::UnsupportedScheme => "scheme must be ws or wss",
            UrlProblem::MissingHost => "no host",
            UrlProblem::HasQueryOrFragment => "query and fragment are not allowed",
            UrlProblem::BadServerName => "host is not a valid TLS server name",
        })
    }
}

/// Why the `X-caBLE-Routing-ID` response header was unusable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoutingIdProblem {
    /// The relay answered `/cable/new/` without the header.
    Missing,
    /// The header appeared more than once.
    Duplicate,
    /// Not hex, or not exactly 3 bytes.
    Malformed,
}

impl fmt::Display for RoutingIdProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RoutingIdProblem::Missing => "missing",
            RoutingIdProblem::Duplicate => "present more than once",
            RoutingIdProblem::Malformed => "not 6 hex digits",
        })
    }
}

/// Everything that can go wrong with a tunnel connection.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TransportError {
    /// The relay URL could not be used.
    #[error("invalid relay URL: {problem}")]
    InvalidRelayUrl {
        /// What was wrong.
        problem: UrlProblem,
    },
    /// `ws://` to a host that is not loopback while plaintext is not allowed.
    #[error("refusing unencrypted ws:// to non-loopback host {host}")]
    PlaintextNotAllowed {
        /// The host named in the URL.
        host: String,
    },
    /// Extra trusted CA certificates were not valid PEM.
    #[error("extra CA certificates are not valid PEM")]
    InvalidCaPem(#[source] rustls_pki_types::pem::Error),
    /// The extra CA PEM held no certificate.
    #[error("extra CA PEM contains no certificate")]
    NoCaCertificates,
    /// rustls refused an extra CA certificate as a trust anchor.
    #[error("extra CA certificate rejected")]
    CaRejected(#[source] rustls::Error),
    /// The TLS configuration could not be built.
    #[error("TLS configuration failed")]
    TlsConfig(#[source] rustls::Error),
    /// The relay host name did not resolve.
    #[error("could not resolve relay host {host}")]
    Dns {
        /// The host name.
        host: String,
        /// The resolver's error; `None` if it returned no address.
        #[source]
        source: Option<io::Error>,
    },
    /// No TCP connection could be made.
    #[error("could not connect to relay {host}:{port}")]
    Connect {
        /// The host name.
        host: String,
        /// The TCP port.
        port: u16,
        /// The error of the last address tried.
        #[source]
        source: io::Error,
    },
    /// The TLS handshake failed (untrusted certificate, wrong name, protocol mismatch …).
    #[error("TLS handshake with {host} failed")]
    Tls {
        /// The host name.
        host: String,
        /// The error from rustls, wrapped in `io::Error` by tokio-rustls.
        #[source]
        source: io::Error,
    },
    /// The relay answered the upgrade request with an HTTP status other than 101 or 410.
    #[error("relay answered HTTP {status}")]
    HttpStatus {
        /// The status code.
        status: u16,
    },
    /// The relay answered 410 Gone (on `/cable/contact/`: the pairing is invalid).
    #[error("relay answered 410 Gone")]
    Gone,
    /// The relay refused a push registration (`/cable/push/register`).
    #[error("relay refused the push registration with HTTP {status}{}", reason_suffix(.reason))]
    RegistrationRefused {
        /// The status code (400 with a reason for a bad subscription; 404 from a relay that
        /// does not serve contacts).
        status: u16,
        /// The first line of the relay's explanation, printable characters only, at most 200.
        reason: String,
    },
    /// The relay's answer to a push registration was not `{"contact_id": "<base64url>"}`.
    #[error("relay's answer to the push registration is not a contact id")]
    BadRegistrationReply,
    /// The relay did not select the `fido.cable` subprotocol.
    #[error("relay did not select the fido.cable subprotocol")]
    SubprotocolNotSelected,
    /// The `X-caBLE-Routing-ID` header of a `/cable/new/` answer was unusable.
    #[error("X-caBLE-Routing-ID header {0}")]
    BadRoutingId(RoutingIdProblem),
    /// A deadline passed.
    #[error("timed out {0}")]
    Timeout(Operation),
    /// A caller-supplied header value contains characters HTTP does not allow.
    #[error("invalid value for header {header}")]
    InvalidHeaderValue {
        /// The header name.
        header: &'static str,
    },
    /// The peer (relay) closed the WebSocket with a close frame.
    #[error("tunnel closed by the relay (code {code:?})")]
    PeerClosed {
        /// The close code, if the frame carried one.
        code: Option<u16>,
    },
    /// The connection ended without a closing handshake (EOF, reset; close code 1006).
    #[error("tunnel connection lost without a close frame")]
    ConnectionLost,
    /// The connection was already closed (locally, or after an earlier error).
    #[error("tunnel connection already closed")]
    Closed,
    /// A text frame arrived; the tunnel carries only binary messages.
    #[error("unexpected text message on the tunnel")]
    UnexpectedText,
    /// A message exceeded the size limit.
    #[error("message of {len:?} bytes exceeds the limit of {max} bytes")]
    MessageTooLarge {
        /// The message length, when known.
        len: Option<usize>,
        /// The limit.
        max: usize,
    },
    /// A WebSocket protocol violation or an invalid upgrade response.
    #[error("WebSocket protocol error")]
    Protocol(#[source] WebSocketError),
    /// A received message did not decrypt (tampered, replayed, wrong key) or unpad.
    #[error("could not decrypt a tunnel message")]
    Decrypt(#[source] cable_proto::Error),
    /// A message could not be encrypted (the sequence counter is exhausted).
    #[error("could not encrypt a tunnel message")]
    Encrypt(#[source] cable_proto::Error),
    /// Any other I/O error on an established connection.
    #[error("I/O error on the tunnel")]
    Io(#[source] io::Error),
}

fn reason_suffix(reason: &str) -> String {
    if reason.is_empty() {
        String::new()
    } else {
        format!(": {reason}")
    }
}

impl TransportError {
    /// True if the relay or peer went away (any kind of close), as opposed to a local or protocol failure.
    pub fn is_closed(&self) -> bool {
        matches!(
            self,
            TransportError::PeerClosed { .. }
                | TransportError::ConnectionLost
                | TransportError::Closed
        )
    }
}

/// An opaque WebSocket library error, kept as a source for diagnostics.
#[derive(Debug)]
pub struct WebSocketError(pub(crate) tokio_tungstenite::tungstenite::Error);

impl fmt::Display for WebSocketError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl std::error::Error for WebSocketError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}
