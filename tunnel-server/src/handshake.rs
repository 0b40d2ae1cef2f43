//! The HTTP/1.1 side of a tunnel request: read the request head, decide, answer.
//!
//! The request head is parsed here with `httparse` rather than inside tungstenite's
//! `accept_hdr_async`: tungstenite drops a non-GET or non-upgrade request without answering,
//! while the relay must answer those with 405 and 400. Once the relay has decided to accept,
//! the socket becomes a `WebSocketStream` through `from_partially_read`, so framing is still
//! entirely tungstenite's.

use cable_proto::domain::TunnelPath;
use cable_proto::ids::RoutingId;
use cable_proto::wire::{ROUTING_ID_HEADER, SUBPROTOCOL};
use cable_proto::{Error as ProtoError, TunnelPathErrorKind};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;

use crate::metrics::RejectReason;
use crate::stream::ClientStream;

const MAX_HEADERS: usize = 32;

/// Why a request was refused: the reason it is counted and answered by, and for a malformed
/// path which part was wrong (shown to the client and logged; it never holds the path itself,
/// which may carry a tunnel id).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Refusal {
    pub(crate) reason: RejectReason,
    pub(crate) path_error: Option<TunnelPathErrorKind>,
}

impl From<RejectReason> for Refusal {
    fn from(reason: RejectReason) -> Self {
        Self {
            reason,
            path_error: None,
        }
    }
}

impl Refusal {
    /// One line for the answer's body, if there is more to say than the status.
    fn detail(&self) -> Option<String> {
        self.path_error
            .map(|kind| format!("{}\n", ProtoError::BadTunnelPath { kind }))
    }
}

/// A request that passed every check that does not depend on relay state.
#[derive(Debug)]
pub(crate) struct UpgradeRequest {
    pub(crate) path: TunnelPath,
    /// `Sec-WebSocket-Key`, needed for the 101.
    pub(crate) key: String,
    /// Bytes the client sent after the request head (passed on to the WebSocket codec).
    pub(crate) tail: Vec<u8>,
}

/// Reads the request head (bounded by `max_head` bytes) and validates it.
pub(crate) async fn read_request(
    stream: &mut ClientStream,
    max_head: usize,
    routing_id: RoutingId,
) -> Result<UpgradeRequest, Refusal> {
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
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut req = httparse::Request::new(&mut headers);
        match req.parse(&buf) {
            Ok(httparse::Status::Partial) => continue,
            Ok(httparse::Status::Complete(head_len)) => {
                let (path, key) = validate(&req, routing_id)?;
                let tail = buf.get(head_len..).map(<[u8]>::to_vec).unwrap_or_default();
                return Ok(UpgradeRequest { path, key, tail });
            }
            Err(httparse::Error::TooManyHeaders) => return Err(RejectReason::HeadTooLarge.into()),
            Err(_) => return Err(RejectReason::MalformedRequest.into()),
        }
    }
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

fn validate(
    req: &httparse::Request<'_, '_>,
    routing_id: RoutingId,
) -> Result<(TunnelPath, String), Refusal> {
    if req.method != Some("GET") {
        return Err(RejectReason::MethodNotAllowed.into());
    }
    let target = req.path.unwrap_or("");
    // The query string is not part of the tunnel path; clients have no reason to send one.
    let path = target.split_once('?').map_or(target, |(p, _)| p);
    let path = match TunnelPath::parse(path) {
        Ok(TunnelPath::Contact { .. }) => return Err(RejectReason::ContactUnsupported.into()),
        Ok(path) => path,
        Err(ProtoError::BadTunnelPath { kind }) => {
            return Err(Refusal {
                reason: RejectReason::UnknownPath,
                path_error: Some(kind),
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
    if let TunnelPath::Connect {
        routing_id: rid, ..
    } = path
    {
        if rid != routing_id {
            return Err(RejectReason::WrongRoutingId.into());
        }
    }
    Ok((path, key))
}

/// Writes the 101 that turns the connection into a WebSocket.
pub(crate) async fn accept(
    stream: &mut ClientStream,
    key: &str,
    routing_id: Option<RoutingId>,
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
    const T: &str = "00112233445566778899AABBCCDDEEFF";

    fn refusal(raw: &str) -> Result<(TunnelPath, String), Refusal> {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut req = httparse::Request::new(&mut headers);
        assert!(req.parse(raw.as_bytes()).unwrap().is_complete());
        validate(&req, RoutingId::from_bytes([1, 2, 3]))
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
            check(&request("GET", "/cable/contact/AAAA", proto)).unwrap_err(),
            RejectReason::ContactUnsupported
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
}
