//! A stand-in for a relay's `/cable/contact/` with the linked phone behind it, for tests of
//! the computer's state-assisted flow: it accepts one contact, checks the client payload, and
//! then plays the woken phone with the protocol core's [`PhoneSession`] (advert keyed by the
//! link secret, NKpsk0 with the identity key, one canned CTAP reply).

use std::net::SocketAddr;

use cable_ble::{Advertiser, Air};
use cable_proto::cbor::Value;
use cable_proto::ctap::CtapResponse;
use cable_proto::ids::RoutingId;
use cable_proto::message::{ClientPayload, LinkSecret};
use cable_proto::rand_core::OsRng;
use cable_proto::session::{PhoneEvent, PhoneSession};
use cable_proto::SecretKey;
use cable_transport::RelayUrl;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::Message as WsMessage;

/// How the stand-in answers the contact.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContactBehavior {
    /// 101, then the phone joins and answers; `signal` echoes `X-caBLE-Signal-Connection` and
    /// sends the `00` connect signal when the phone joins.
    Answer {
        /// Echo the header and send the signal.
        signal: bool,
    },
    /// 410 Gone: the contact id is dead.
    Gone,
    /// 101, and then the phone never shows up.
    Silent,
}

/// What the stand-in saw of the contact request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactSeen {
    /// The request path.
    pub path: String,
    /// The decoded `X-caBLE-Client-Payload`.
    pub payload: Option<ClientPayload>,
    /// Whether the computer asked for the connect signal.
    pub asked_for_signal: bool,
}

/// A running stand-in; it serves one contact.
#[derive(Debug)]
pub struct ContactStandIn {
    addr: SocketAddr,
    seen: oneshot::Receiver<ContactSeen>,
}

/// The linked phone's side of the link.
#[derive(Debug, Clone)]
pub struct LinkedPhoneKeys {
    /// Its identity key.
    pub identity: SecretKey,
    /// The link secret shared with the computer.
    pub link_secret: LinkSecret,
}

impl ContactStandIn {
    /// Listens on 127.0.0.1 (port 0) and serves one contact as `behavior` says; the phone
    /// advertises on `air`, answers with `get_info` and then `reply` (`status ‖ CBOR`).
    pub async fn start(
        air: &Air,
        phone: LinkedPhoneKeys,
        behavior: ContactBehavior,
        get_info: Value,
        reply: CtapResponse,
    ) -> std::io::Result<ContactStandIn> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (seen_tx, seen) = oneshot::channel();
        let air = air.clone();
        tokio::spawn(async move {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let mut observed = None;
            // tungstenite's callback signature returns its error response by value.
            #[allow(clippy::result_large_err)]
            let callback = |request: &Request, mut response: Response| {
                let header = |name: &str| {
                    request
                        .headers()
                        .get(name)
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_owned)
                };
                let payload = header(cable_proto::wire::CLIENT_PAYLOAD_HEADER)
                    .and_then(|h| ClientPayload::from_header_value(&h).ok());
                let asked =
                    header(cable_proto::wire::SIGNAL_CONNECTION_HEADER).as_deref() == Some("true");
                observed = Some(ContactSeen {
                    path: request.uri().path().to_owned(),
                    payload,
                    asked_for_signal: asked,
                });
                if behavior == ContactBehavior::Gone {
                    let mut gone = ErrorResponse::new(None);
                    *gone.status_mut() = http::StatusCode::GONE;
                    return Err(gone);
                }
                let headers = response.headers_mut();
                headers.insert(
                    "sec-websocket-protocol",
                    http::HeaderValue::from_static(cable_proto::wire::SUBPROTOCOL),
                );
                if asked && behavior == (ContactBehavior::Answer { signal: true }) {
                    // Header names are case-insensitive; `http` wants them in lower case.
                    headers.insert(
                        "x-cable-signal-connection",
                        http::HeaderValue::from_static("true"),
                    );
                }
                Ok(response)
            };
            let ws = tokio_tungstenite::accept_hdr_async(tcp, callback).await;
            let seen = observed.clone();
            if let Some(seen) = observed {
                let _ = seen_tx.send(seen);
            }
            let (Ok(ws), Some(seen)) = (ws, seen) else {
                return;
            };
            let (ContactBehavior::Answer { signal }, Some(payload)) = (behavior, seen.payload)
            else {
                // Silent: hold the socket open until the computer gives up.
                let mut ws = ws;
                use futures_util::StreamExt;
                while ws.next().await.is_some() {}
                return;
            };
            serve(ws, &air, &phone, &payload, signal, get_info, reply).await;
        });
        Ok(ContactStandIn { addr, seen })
    }

    /// The relay URL to configure the computer with.
    pub fn relay_url(&self) -> RelayUrl {
        // A loopback address always parses.
        RelayUrl::parse(&format!("ws://{}", self.addr)).unwrap_or_else(|_| unreachable!())
    }

    /// What the contact request carried (once it came).
    pub async fn seen(self) -> Option<ContactSeen> {
        self.seen.await.ok()
    }
}

async fn serve(
    mut ws: tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>,
    air: &Air,
    phone: &LinkedPhoneKeys,
    payload: &ClientPayload,
    signal: bool,
    get_info: Value,
    reply: CtapResponse,
) {
    use futures_util::{SinkExt, StreamExt};
    let mut machine = PhoneSession::new_linked(
        &phone.identity,
        &phone.link_secret,
        &payload.client_nonce,
        RoutingId::from_bytes([0; 3]),
        0,
        &mut OsRng,
    );
    let Ok(_advert) = air.advertiser().start_advertising(machine.advert()).await else {
        return;
    };
    if signal && ws.send(WsMessage::binary(vec![0u8])).await.is_err() {
        return;
    }
    while let Some(Ok(frame)) = ws.next().await {
        let WsMessage::Binary(frame) = frame else {
            continue;
        };
        if machine.handle_frame(&frame).is_err() {
            return;
        }
        while let Some(event) = machine.poll_event() {
            let step = match event {
                PhoneEvent::HandshakeDone => machine.post_handshake(&get_info, None),
                PhoneEvent::Serve(_) => machine.respond(&reply),
                _ => Ok(()),
            };
            if step.is_err() {
                return;
            }
        }
        while let Some(out) = machine.poll_transmit() {
            if ws.send(WsMessage::binary(out)).await.is_err() {
                return;
            }
        }
    }
}
