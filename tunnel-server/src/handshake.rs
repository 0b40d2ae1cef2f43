//! The HTTP/1.1 side of a tunnel request: read the request head, decide, answer.
//!
//! The request head is parsed here with `httparse` rather than inside tungstenite's
//! `accept_hdr_async`: tungstenite drops a non-GET or non-upgrade request without answering,
//! while the relay must answer those with 405 and 400. Once the relay has decided to accept,
//! the socket becomes a `WebSocketStream` through `from_partially_read`, so framing is still
//! entirely tungstenite's.

use std::net::IpAddr;

use cable_proto::domain::TunnelPath;
use cable_proto::ids::RoutingId;
use cable_proto::wire::{
    CLIENT_PAYLOAD_HEADER, ROUTING_ID_HEADER, SIGNAL_CONNECTION_HEADER, SUBPROTOCOL,
};
use cable_proto::{Error as ProtoError, TunnelPathErrorKind};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;

use crate::client_addr::{forwarded_client, Cidr, ForwardedHeader};
use crate::contact::{RegisterError, MAX_REGISTER_BODY};
use crate::metrics::RejectReason;
use crate::stream::ClientStream;

const MAX_HEADERS: usize = 32;

/// The path phones register their push subscription at.
pub(crate) const REGISTER_PATH: &str = cable_proto::domain::PUSH_REGISTER_PATH;

/// Longest `X-caBLE-Client-Payload` accepted, in hex characters (Chromium's payload is
/// about 60 bytes; the push message carries at most this much).
pub(crate) const MAX_CLIENT_PAYLOAD_HEX: usize = 2 * cable_proto::push::MAX_CLIENT_PAYLOAD;

/// Why a request was refused: the reason it is counted and answered by, and for a malformed
/// path which part was wrong (shown to the client and logged; it never holds the path itself,
/// which may carry a tunnel id).
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal {
    pub(crate) reason: RejectReason,
    pub(crate) path_error: Option<TunnelPathErrorKind>,
    /// What was wrong with a registration body.
    pub(crate) register_error: Option<RegisterError>,
    /// The method a 405 names in `Allow` (the register path takes POST).
    allow_post: bool,
}

impl From<RejectReason> for Refusal {
    fn from(reason: RejectReason) -> Self {
        Self {
            reason,
            path_error: None,
            register_error: None,
            allow_post: false,
        }
    }
}

impl From<RegisterError> for Refusal {
    fn from(e: RegisterError) -> Self {
        Self {
            register_error: Some(e),
            ..RejectReason::BadRegistration.into()
        }
    }
}

impl Refusal {
    /// The reason the request is counted and answered by.
    #[doc(hidden)]
    pub fn reason(&self) -> RejectReason {
        self.reason
    }

    /// For a malformed tunnel path, which part was wrong.
    #[doc(hidden)]
    pub fn path_error(&self) -> Option<TunnelPathErrorKind> {
        self.path_error
    }

    /// For a refused registration, what was wrong with it.
    #[doc(hidden)]
    pub fn register_error(&self) -> Option<RegisterError> {
        self.register_error
    }

    /// One line for the answer's body, if there is more to say than the status.
    #[doc(hidden)]
    pub fn detail(&self) -> Option<String> {
        if let Some(e) = self.register_error {
            return Some(format!("{e}\n"));
        }
        if self.reason == RejectReason::BadClientPayload {
            return Some(format!(
                "{CLIENT_PAYLOAD_HEADER} must be one header of hex CBOR, at most {MAX_CLIENT_PAYLOAD_HEX} characters\n"
            ));
        }
        self.path_error
            .map(|kind| format!("{}\n", ProtoError::BadTunnelPath { kind }))
    }
}

/// A request the relay will act on.
#[derive(Debug)]
pub(crate) enum Request {
    /// A WebSocket upgrade to a tunnel path.
    Upgrade(UpgradeRequest),
    /// `POST /cable/push/register` with its body (at most [`MAX_REGISTER_BODY`] bytes).
    Register(Vec<u8>),
}

/// A request that passed every check that does not depend on relay state.
#[derive(Debug)]
pub(crate) struct UpgradeRequest {
    pub(crate) path: TunnelPath,
    /// `Sec-WebSocket-Key`, needed for the 101.
    pub(crate) key: String,
    /// Bytes the client sent after the request head (passed on to the WebSocket codec).
    pub(crate) tail: Vec<u8>,
    /// `contact` only: the decoded `X-caBLE-Client-Payload`; `None` if it was missing or bad
    /// (refused after the relay checked that it serves contacts at all).
    pub(crate) client_payload: Option<Vec<u8>>,
    /// `contact` only: `X-caBLE-Signal-Connection: true` was sent.
    pub(crate) signal: bool,
}

/// What `validate` found in a request head.
#[doc(hidden)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Head {
    /// A WebSocket upgrade to a tunnel path.
    Upgrade {
        /// The routed path.
        path: TunnelPath,
        /// `Sec-WebSocket-Key`.
        key: String,
        /// `contact` only: the decoded `X-caBLE-Client-Payload`.
        client_payload: Option<Vec<u8>>,
        /// `contact` only: `X-caBLE-Signal-Connection: true` was sent.
        signal: bool,
    },
    /// `POST /cable/push/register`.
    Register {
        /// The `Content-Length` (at most [`MAX_REGISTER_BODY`]).
        length: usize,
        /// `Expect: 100-continue` was sent.
        expect_continue: bool,
    },
}

/// Parses and validates a request head at the start of `buf`: `Ok(None)` while it is
/// incomplete, else what the request routes to and the head's length in bytes. What
/// [`read_request`] runs on every read; public (hidden) for the fuzz targets.
#[doc(hidden)]
pub fn parse_head(buf: &[u8], routing_id: RoutingId) -> Result<Option<(Head, usize)>, Refusal> {
    Ok(parse_head_from(buf, routing_id, None)?.map(|(head, len, _)| (head, len)))
}

/// Whose forwarded header to believe: set only when the socket's peer is a trusted proxy.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Forwarding<'a> {
    pub(crate) header: ForwardedHeader,
    pub(crate) trusted: &'a [Cidr],
}

/// [`parse_head`], and the client address a trusted proxy's forwarded header names.
fn parse_head_from(
    buf: &[u8],
    routing_id: RoutingId,
    forwarding: Option<Forwarding<'_>>,
) -> Result<Option<(Head, usize, Option<IpAddr>)>, Refusal> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(buf) {
        Ok(httparse::Status::Partial) => Ok(None),
        Ok(httparse::Status::Complete(head_len)) => {
            let head = validate(&req, routing_id)?;
            let client = forwarding.and_then(|f| {
                let name = f.header.name()?;
                forwarded_client(f.header, header(&req, name), f.trusted)
            });
            Ok(Some((head, head_len, client)))
        }
        Err(httparse::Error::TooManyHeaders) => Err(RejectReason::HeadTooLarge.into()),
        Err(_) => Err(RejectReason::MalformedRequest.into()),
    }
}

/// Reads the request head (bounded by `max_head` bytes) and validates it; for a registration
/// also reads its body (bounded by [`MAX_REGISTER_BODY`]). Also returns the client address
/// named by the forwarded header that `forwarding` allows, if any.
pub(crate) async fn read_request(
    stream: &mut ClientStream,
    max_head: usize,
    routing_id: RoutingId,
    forwarding: Option<Forwarding<'_>>,
) -> Result<(Request, Option<IpAddr>), Refusal> {
    let mut buf = Vec::with_capacity(512.min(max_head));
    loop {
        if buf.len() >= max_head {
            return Err(RejectReason::HeadTooLarge.into());
        }
        let want = (max_head - buf.len()).min(1024);
        let start = buf.len();
        buf.resize(start + want, 0);
        let n = match stream.read(&mut buf[start..]).await {
            Ok(0) | Err(_) => return Err(RejectReason::HandshakeIo.into()),
            Ok(n) => n,
        };
        buf.truncate(start + n);
        let Some((head, head_len, client)) = parse_head_from(&buf, routing_id, forwarding)? else {
            continue;
        };
        let tail = buf.get(head_len..).map(<[u8]>::to_vec).unwrap_or_default();
        let request = match head {
            Head::Upgrade {
                path,
                key,
                client_payload,
                signal,
            } => Ok(Request::Upgrade(UpgradeRequest {
                path,
                key,
                tail,
                client_payload,
                signal,
            })),
            Head::Register {
                length,
                expect_continue,
            } => read_body(stream, tail, length, expect_continue)
                .await
                .map(Request::Register),
        };
        return request.map(|r| (r, client));
    }
}

/// Reads the rest of a registration body; the caller's handshake timeout bounds the time.
async fn read_body(
    stream: &mut ClientStream,
    mut body: Vec<u8>,
    length: usize,
    expect_continue: bool,
) -> Result<Vec<u8>, Refusal> {
    if expect_continue && body.len() < length {
        stream
            .write_all(b"HTTP/1.1 100 Continue\r\n\r\n")
            .await
            .map_err(|_| Refusal::from(RejectReason::HandshakeIo))?;
    }
    // Pipelined requests are not served (every answer closes the connection).
    body.truncate(length);
    while body.len() < length {
        let start = body.len();
        body.resize(length, 0);
        match stream.read(&mut body[start..]).await {
            Ok(0) | Err(_) => return Err(RejectReason::HandshakeIo.into()),
            Ok(n) => body.truncate(start + n),
        }
    }
    Ok(body)
}

fn header<'a>(req: &'a httparse::Request<'_, '_>, name: &str) -> impl Iterator<Item = &'a [u8]> {
    let name = name.to_owned();
    req.headers
        .iter()
        .filter(move |h| h.name.eq_ignore_ascii_case(&name))
        .map(|h| h.value)
}

/// True if any header `name` holds `token` in its comma-separated list.
fn has_token(req: &httparse::Request<'_, '_>, name: &str, token: &str, ignore_case: bool) -> bool {
    header(req, name).any(|v| {
        v.split(|b| *b == b',').any(|t| {
            let t = t.trim_ascii();
            if ignore_case {
                t.eq_ignore_ascii_case(token.as_bytes())
            } else {
                t == token.as_bytes()
            }
        })
    })
}

fn validate(req: &httparse::Request<'_, '_>, routing_id: RoutingId) -> Result<Head, Refusal> {
    let target = req.path.unwrap_or("");
    // The query string is not part of the tunnel path; clients have no reason to send one.
    let path = target.split_once('?').map_or(target, |(p, _)| p);
    if path == REGISTER_PATH {
        return validate_register(req);
    }
    if req.method != Some("GET") {
        return Err(RejectReason::MethodNotAllowed.into());
    }
    let path = match TunnelPath::parse(path) {
        Ok(path) => path,
        Err(ProtoError::BadTunnelPath { kind }) => {
            return Err(Refusal {
                path_error: Some(kind),
                ..RejectReason::UnknownPath.into()
            })
        }
        Err(_) => return Err(RejectReason::UnknownPath.into()),
    };
    if req.version != Some(1)
        || !has_token(req, "upgrade", "websocket", true)
        || !has_token(req, "connection", "upgrade", true)
        || !header(req, "sec-websocket-version").any(|v| v.trim_ascii() == b"13")
    {
        return Err(RejectReason::NotWebSocket.into());
    }
    let key = header(req, "sec-websocket-key")
        .next()
        .and_then(|k| std::str::from_utf8(k.trim_ascii()).ok())
        .filter(|k| !k.is_empty() && k.len() <= 64)
        .ok_or(Refusal::from(RejectReason::NotWebSocket))?
        .to_owned();
    // Subprotocol tokens are case-sensitive (RFC 6455 §4.1).
    if !has_token(req, "sec-websocket-protocol", SUBPROTOCOL, false) {
        return Err(RejectReason::MissingSubprotocol.into());
    }
    let (mut client_payload, mut signal) = (None, false);
    match path {
        TunnelPath::Connect {
            routing_id: rid, ..
        } if rid != routing_id => return Err(RejectReason::WrongRoutingId.into()),
        TunnelPath::Contact { .. } => {
            client_payload = parse_client_payload(req);
            signal = header(req, SIGNAL_CONNECTION_HEADER)
                .any(|v| v.trim_ascii().eq_ignore_ascii_case(b"true"));
        }
        _ => {}
    }
    Ok(Head::Upgrade {
        path,
        key,
        client_payload,
        signal,
    })
}

fn parse_client_payload(req: &httparse::Request<'_, '_>) -> Option<Vec<u8>> {
    let mut values = header(req, CLIENT_PAYLOAD_HEADER);
    let value = values.next()?.trim_ascii();
    if values.next().is_some() || value.is_empty() || value.len() > MAX_CLIENT_PAYLOAD_HEX {
        return None;
    }
    // `hex` accepts either case, as both Chromium (upper) and libwebauthn (lower) send it.
    hex::decode(value).ok()
}

fn validate_register(req: &httparse::Request<'_, '_>) -> Result<Head, Refusal> {
    if req.method != Some("POST") {
        return Err(Refusal {
            allow_post: true,
            ..RejectReason::MethodNotAllowed.into()
        });
    }
    if header(req, "transfer-encoding").next().is_some() {
        return Err(RegisterError::NoLength.into());
    }
    let mut lengths = header(req, "content-length");
    let length = lengths
        .next()
        .and_then(|v| std::str::from_utf8(v.trim_ascii()).ok())
        .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
        .ok_or(RegisterError::NoLength)?;
    if lengths.next().is_some() {
        return Err(RegisterError::NoLength.into());
    }
    // Too many digits to parse is also too large.
    let length = length.parse::<usize>().unwrap_or(usize::MAX);
    if length > MAX_REGISTER_BODY {
        return Err(RegisterError::TooLarge.into());
    }
    Ok(Head::Register {
        length,
        expect_continue: has_token(req, "expect", "100-continue", true),
    })
}

/// Writes the 101 that turns the connection into a WebSocket.
pub(crate) async fn accept(
    stream: &mut ClientStream,
    key: &str,
    routing_id: Option<RoutingId>,
    signal: bool,
) -> std::io::Result<()> {
    let mut response = String::with_capacity(192);
    response.push_str(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Protocol: ",
    );
    response.push_str(SUBPROTOCOL);
    response.push_str("\r\nSec-WebSocket-Accept: ");
    response.push_str(&derive_accept_key(key.as_bytes()));
    response.push_str("\r\n");
    if let Some(rid) = routing_id {
        response.push_str(ROUTING_ID_HEADER);
        response.push_str(": ");
        response.push_str(&rid.to_hex());
        response.push_str("\r\n");
    }
    if signal {
        response.push_str(SIGNAL_CONNECTION_HEADER);
        response.push_str(": true\r\n");
    }
    response.push_str("\r\n");
    stream.write_all(response.as_bytes()).await?;
    stream.flush().await
}

/// Answers a refused request and closes the connection.
pub(crate) async fn refuse(stream: &mut ClientStream, refusal: &Refusal) {
    let Some((code, text)) = refusal.reason.status() else {
        return;
    };
    let extra = match refusal.reason {
        RejectReason::MethodNotAllowed if refusal.allow_post => "Allow: POST\r\n",
        RejectReason::MethodNotAllowed => "Allow: GET\r\n",
        RejectReason::NotWebSocket => "Sec-WebSocket-Version: 13\r\n",
        RejectReason::RateLimited => "Retry-After: 1\r\n",
        _ => "",
    };
    let body = refusal.detail().unwrap_or_default();
    let content_type = if body.is_empty() {
        ""
    } else {
        "Content-Type: text/plain; charset=utf-8\r\n"
    };
    let response = format!(
        "HTTP/1.1 {code} {text}\r\nContent-Length: {}\r\nConnection: close\r\n{content_type}{extra}\r\n{body}",
        body.len()
    );
    if stream.write_all(response.as_bytes()).await.is_ok() {
        let _ = stream.shutdown().await;
    }
}

/// Answers a registration with its contact id and closes the connection.
pub(crate) async fn registered(stream: &mut ClientStream, contact_id: &str) {
    let body = format!("{{\"contact_id\":\"{contact_id}\"}}\n");
    let response = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
         Cache-Control: no-store\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    if stream.write_all(response.as_bytes()).await.is_ok() {
        let _ = stream.shutdown().await;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
    const T: &str = "00112233445566778899AABBCCDDEEFF";

    fn head(raw: &str) -> Result<Head, Refusal> {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut req = httparse::Request::new(&mut headers);
        assert!(req.parse(raw.as_bytes()).unwrap().is_complete());
        validate(&req, RoutingId::from_bytes([1, 2, 3]))
    }

    fn refusal(raw: &str) -> Result<(TunnelPath, String), Refusal> {
        match head(raw)? {
            Head::Upgrade { path, key, .. } => Ok((path, key)),
            Head::Register { .. } => panic!("not an upgrade"),
        }
    }

    fn check(raw: &str) -> Result<(TunnelPath, String), RejectReason> {
        refusal(raw).map_err(|r| r.reason)
    }

    fn request(method: &str, path: &str, extra: &str) -> String {
        format!(
            "{method} {path} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\n\
             Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: {KEY}\r\n{extra}\r\n"
        )
    }

    #[test]
    fn accepts_new_and_connect() {
        let proto = "Sec-WebSocket-Protocol: other, fido.cable\r\n";
        assert!(
            matches!(check(&request("GET", &format!("/cable/new/{T}"), proto)), Ok((TunnelPath::New { .. }, k)) if k == KEY)
        );
        assert!(matches!(
            check(&request(
                "GET",
                &format!("/cable/connect/010203/{T}"),
                proto
            )),
            Ok((TunnelPath::Connect { .. }, _))
        ));
        // The query string is ignored.
        assert!(matches!(
            check(&request("GET", &format!("/cable/new/{T}?x=1"), proto)),
            Ok((TunnelPath::New { .. }, _))
        ));
    }

    #[test]
    fn malformed_paths_say_which_part_was_wrong() {
        use cable_proto::HexIdErrorKind::{Char, Length};
        let proto = "Sec-WebSocket-Protocol: fido.cable\r\n";
        let problem = |path: &str| {
            let r = refusal(&request("GET", path, proto)).unwrap_err();
            assert_eq!(r.reason, RejectReason::UnknownPath, "{path}");
            r.path_error
        };
        assert_eq!(problem("/other"), Some(TunnelPathErrorKind::NotCable));
        assert_eq!(
            problem("/cable/new/00"),
            Some(TunnelPathErrorKind::TunnelId(Length {
                expected: 32,
                got: 2
            }))
        );
        assert_eq!(
            problem(&format!("/cable/connect/01020g/{T}")),
            Some(TunnelPathErrorKind::RoutingId(Char { position: 5 }))
        );
        let detail = refusal(&request("GET", &format!("/cable/new/{}x", &T[..31]), proto))
            .unwrap_err()
            .detail()
            .unwrap();
        assert!(detail.contains("position 31"), "{detail}");
        assert!(!detail.contains(&T[..31]), "{detail}");
        // Refusals for other reasons add nothing to the status.
        assert_eq!(Refusal::from(RejectReason::UnknownTunnel).detail(), None);
    }

    #[test]
    fn refusals_in_order() {
        let proto = "Sec-WebSocket-Protocol: fido.cable\r\n";
        assert_eq!(
            check(&request("POST", &format!("/cable/new/{T}"), proto)).unwrap_err(),
            RejectReason::MethodNotAllowed
        );
        assert_eq!(
            check(&request("GET", "/other", proto)).unwrap_err(),
            RejectReason::UnknownPath
        );
        assert_eq!(
            check(&request("GET", &format!("/cable/new/{T}"), "")).unwrap_err(),
            RejectReason::MissingSubprotocol
        );
        assert_eq!(
            check(&request(
                "GET",
                &format!("/cable/new/{T}"),
                "Sec-WebSocket-Protocol: FIDO.CABLE\r\n"
            ))
            .unwrap_err(),
            RejectReason::MissingSubprotocol
        );
        assert_eq!(
            check(&request(
                "GET",
                &format!("/cable/connect/010204/{T}"),
                proto
            ))
            .unwrap_err(),
            RejectReason::WrongRoutingId
        );
        let plain = format!("GET /cable/new/{T} HTTP/1.1\r\nHost: x\r\n{proto}\r\n");
        assert_eq!(check(&plain).unwrap_err(), RejectReason::NotWebSocket);
    }

    #[test]
    fn contact_headers() {
        let contact = |extra: &str| {
            head(&request(
                "GET",
                "/cable/contact/AAAA",
                &format!("Sec-WebSocket-Protocol: fido.cable\r\n{extra}"),
            ))
        };
        let Ok(Head::Upgrade {
            client_payload,
            signal,
            ..
        }) = contact("X-caBLE-Client-Payload: A1010A\r\nX-caBLE-Signal-Connection: true\r\n")
        else {
            panic!("refused")
        };
        assert_eq!(client_payload.unwrap(), [0xa1, 0x01, 0x0a]);
        assert!(signal);
        let Ok(Head::Upgrade {
            client_payload,
            signal,
            ..
        }) = contact("x-cable-client-payload: a1010a\r\n")
        else {
            panic!("refused")
        };
        assert_eq!(client_payload.unwrap(), [0xa1, 0x01, 0x0a]);
        assert!(!signal);
        let long = "00".repeat(MAX_CLIENT_PAYLOAD_HEX / 2 + 1);
        for bad in [
            "X-caBLE-Client-Payload: zz\r\n".to_owned(),
            "X-caBLE-Client-Payload: abc\r\n".to_owned(),
            "X-caBLE-Client-Payload: \r\n".to_owned(),
            "X-caBLE-Client-Payload: 00\r\nX-caBLE-Client-Payload: 00\r\n".to_owned(),
            format!("X-caBLE-Client-Payload: {long}\r\n"),
        ] {
            let Ok(Head::Upgrade { client_payload, .. }) = contact(&bad) else {
                panic!("refused")
            };
            assert_eq!(client_payload, None, "{bad}");
        }
        assert!(Refusal::from(RejectReason::BadClientPayload)
            .detail()
            .unwrap()
            .contains("hex CBOR"));
    }

    #[test]
    fn register_heads() {
        let reg = |method: &str, extra: &str| {
            head(&format!(
                "{method} {REGISTER_PATH} HTTP/1.1\r\nHost: x\r\n{extra}\r\n"
            ))
        };
        assert!(matches!(
            reg("POST", "Content-Length: 10\r\n"),
            Ok(Head::Register {
                length: 10,
                expect_continue: false
            })
        ));
        assert!(matches!(
            reg("POST", "Content-Length: 10\r\nExpect: 100-continue\r\n"),
            Ok(Head::Register {
                expect_continue: true,
                ..
            })
        ));
        let refused = |method, extra| reg(method, extra).err().unwrap();
        let r = refused("GET", "");
        assert_eq!(r.reason, RejectReason::MethodNotAllowed);
        assert!(r.allow_post);
        for (extra, e) in [
            ("", RegisterError::NoLength),
            ("Content-Length: -1\r\n", RegisterError::NoLength),
            (
                "Content-Length: 1\r\nContent-Length: 1\r\n",
                RegisterError::NoLength,
            ),
            ("Transfer-Encoding: chunked\r\n", RegisterError::NoLength),
            ("Content-Length: 4097\r\n", RegisterError::TooLarge),
            (
                "Content-Length: 99999999999999999999999\r\n",
                RegisterError::TooLarge,
            ),
        ] {
            let r = refused("POST", extra);
            assert_eq!(
                (r.reason, r.register_error),
                (RejectReason::BadRegistration, Some(e)),
                "{extra}"
            );
        }
    }
}
