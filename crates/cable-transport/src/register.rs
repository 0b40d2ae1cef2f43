//! The phone's one plain HTTP request: registering its Web Push subscription with a relay
//! (`POST <relay>/cable/push/register`), which answers with the contact id computers will
//! use to reach the phone.

use std::io;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use tokio::time::Instant;

use crate::connector::Connector;
use crate::error::{Operation, TransportError};
use crate::relay_url::RelayUrl;

/// A contact id is a sealed subscription: a few hundred bytes. Anything much larger is not
/// an answer from a relay.
const MAX_REPLY: usize = 8 * 1024;
/// How much of a refusal's explanation is kept.
const MAX_REASON: usize = 200;

#[derive(Deserialize)]
struct Registered {
    contact_id: String,
}

impl Connector {
    /// Phone: registers `subscription_json` (a Web Push subscription as browsers serialize
    /// it: `{"endpoint": …, "keys": {"p256dh": …, "auth": …}}`) with the relay and returns the
    /// contact id it minted, decoded from base64url.
    ///
    /// The request goes to the relay's host over the same TLS settings as tunnels (`wss://`
    /// becomes `https://`). A refusal is [`TransportError::RegistrationRefused`] with the
    /// relay's one-line reason; 404 means the relay does not serve contacts.
    pub async fn register_push(
        &self,
        relay: &RelayUrl,
        subscription_json: &str,
        deadline: Instant,
    ) -> Result<Vec<u8>, TransportError> {
        self.check_plaintext(relay)?;
        tokio::time::timeout_at(deadline, self.register_inner(relay, subscription_json))
            .await
            .map_err(|_| TransportError::Timeout(Operation::Register))?
    }

    async fn register_inner(
        &self,
        relay: &RelayUrl,
        subscription_json: &str,
    ) -> Result<Vec<u8>, TransportError> {
        let stream = self.stream(relay).await?;
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(http_error)?;
        // The connection future drives the socket; it ends with the request or on error.
        let driver = tokio::spawn(connection);
        let request = http::Request::post(relay.push_register_path())
            .header(http::header::HOST, relay.authority())
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::copy_from_slice(
                subscription_json.as_bytes(),
            )))
            .map_err(|_| TransportError::InvalidHeaderValue { header: "Host" })?;
        let response = sender.send_request(request).await.map_err(http_error);
        let result = match response {
            Ok(response) => read_reply(response).await,
            Err(e) => Err(e),
        };
        driver.abort();
        result
    }
}

async fn read_reply(
    response: http::Response<hyper::body::Incoming>,
) -> Result<Vec<u8>, TransportError> {
    let status = response.status().as_u16();
    let body = Limited::new(response.into_body(), MAX_REPLY)
        .collect()
        .await
        .map(|b| b.to_bytes());
    if status != 200 {
        let reason = body.map(|b| reason_of(b.as_ref())).unwrap_or_default();
        return Err(TransportError::RegistrationRefused { status, reason });
    }
    let body = body.map_err(|_| TransportError::BadRegistrationReply)?;
    parse_reply(&body)
}

/// `{"contact_id": "<base64url>"}` → the contact id's bytes.
fn parse_reply(body: &[u8]) -> Result<Vec<u8>, TransportError> {
    let reply: Registered =
        serde_json::from_slice(body).map_err(|_| TransportError::BadRegistrationReply)?;
    match URL_SAFE_NO_PAD.decode(reply.contact_id.trim_end_matches('=')) {
        Ok(id) if !id.is_empty() => Ok(id),
        _ => Err(TransportError::BadRegistrationReply),
    }
}

/// The first line of a refusal's body, printable characters only: it ends up in a terminal.
fn reason_of(body: &[u8]) -> String {
    String::from_utf8_lossy(body)
        .lines()
        .next()
        .unwrap_or_default()
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_REASON)
        .collect::<String>()
        .trim()
        .to_owned()
}

fn http_error(e: hyper::Error) -> TransportError {
    TransportError::Io(io::Error::other(e))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn replies_parse_or_are_refused() {
        assert_eq!(parse_reply(br#"{"contact_id":"AQID"}"#).unwrap(), [1, 2, 3]);
        assert_eq!(
            parse_reply(b"{\"contact_id\":\"AQID\"}\n").unwrap(),
            [1, 2, 3]
        );
        for bad in [
            &b""[..],
            b"{}",
            br#"{"contact_id":""}"#,
            br#"{"contact_id":"***"}"#,
            br#"{"contact_id":7}"#,
            b"\xff\xfe",
        ] {
            assert!(
                matches!(parse_reply(bad), Err(TransportError::BadRegistrationReply)),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn reasons_are_one_printable_line() {
        assert_eq!(
            reason_of(b"endpoint is not https\r\nsecond"),
            "endpoint is not https"
        );
        assert_eq!(reason_of(b"\x1b[31mred\x07"), "[31mred");
        assert_eq!(reason_of(&[b'a'; 500]).len(), MAX_REASON);
        assert_eq!(reason_of(b""), "");
    }
}
