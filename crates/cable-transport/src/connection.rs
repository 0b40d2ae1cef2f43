//! One open tunnel: whole binary messages in and out, with deadlines.

use std::fmt;
use std::io;

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_rustls::client::TlsStream;
use tokio_tungstenite::tungstenite::error::{CapacityError, ProtocolError};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::WebSocketStream;
use tokio_util::either::Either;

use crate::error::{Operation, TransportError, WebSocketError};

pub(crate) type TunnelStream = Either<TcpStream, TlsStream<TcpStream>>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Open,
    /// Closed locally, by the peer, or after a fatal error: every further call fails with `Closed`.
    Done,
}

/// An open tunnel connection, for either role.
///
/// Carries whole binary WebSocket messages. A text frame, an oversized message or a protocol
/// violation is fatal to the connection (the error is returned once, later calls return
/// [`TransportError::Closed`]); a timed-out `recv` is not, because waiting for a message can be
/// abandoned without losing data. Ping/pong is answered inside `recv`.
pub struct TunnelConnection {
    ws: WebSocketStream<TunnelStream>,
    state: State,
    max_message_size: usize,
}

impl fmt::Debug for TunnelConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TunnelConnection")
            .field("state", &self.state)
            .field("tls", &matches!(self.ws.get_ref(), Either::Right(_)))
            .finish_non_exhaustive()
    }
}

impl TunnelConnection {
    pub(crate) fn new(ws: WebSocketStream<TunnelStream>, max_message_size: usize) -> Self {
        Self {
            ws,
            state: State::Open,
            max_message_size,
        }
    }

    /// True until the connection was closed (by either side) or failed.
    pub fn is_open(&self) -> bool {
        self.state == State::Open
    }

    /// Sends one binary message, flushing it to the socket before `deadline`.
    pub async fn send(
        &mut self,
        message: Vec<u8>,
        deadline: Instant,
    ) -> Result<(), TransportError> {
        self.ensure_open()?;
        if message.len() > self.max_message_size {
            return Err(TransportError::MessageTooLarge {
                len: Some(message.len()),
                max: self.max_message_size,
            });
        }
        match tokio::time::timeout_at(deadline, self.ws.send(Message::binary(message))).await {
            Err(_) => {
                // A partly written frame cannot be resumed safely.
                self.state = State::Done;
                Err(TransportError::Timeout(Operation::Send))
            }
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(self.fail(e)),
        }
    }

    /// Waits for the next binary message until `deadline`.
    ///
    /// A close frame from the peer gives [`TransportError::PeerClosed`]; the end of the stream
    /// without one (1006) gives [`TransportError::ConnectionLost`]. Cancel-safe: dropping the
    /// future loses no message.
    pub async fn recv(&mut self, deadline: Instant) -> Result<Vec<u8>, TransportError> {
        self.ensure_open()?;
        loop {
            let next = match tokio::time::timeout_at(deadline, self.ws.next()).await {
                Err(_) => return Err(TransportError::Timeout(Operation::Receive)),
                Ok(next) => next,
            };
            match next {
                None => {
                    self.state = State::Done;
                    return Err(TransportError::ConnectionLost);
                }
                Some(Err(e)) => return Err(self.fail(e)),
                Some(Ok(Message::Binary(bytes))) => return Ok(bytes.into()),
                Some(Ok(Message::Text(_))) => {
                    self.abort_with(CloseCode::Unsupported).await;
                    return Err(TransportError::UnexpectedText);
                }
                Some(Ok(Message::Close(frame))) => {
                    self.state = State::Done;
                    // Sends tungstenite's queued close reply; the peer is gone either way.
                    let _ = tokio::time::timeout_at(deadline, self.ws.flush()).await;
                    return Err(TransportError::PeerClosed {
                        code: frame.map(|f| u16::from(f.code)),
                    });
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => continue,
            }
        }
    }

    /// Closes with a normal close frame (1000) and waits until `deadline` for the peer's
    /// close reply or end of stream. Closing an already closed connection succeeds.
    pub async fn close(&mut self, deadline: Instant) -> Result<(), TransportError> {
        if self.state == State::Done {
            return Ok(());
        }
        self.state = State::Done;
        let frame = CloseFrame {
            code: CloseCode::Normal,
            reason: "".into(),
        };
        let closing = async {
            match self.ws.close(Some(frame)).await {
                Ok(()) | Err(WsError::ConnectionClosed | WsError::AlreadyClosed) => {}
                Err(e) => return Err(map_error(e, self.max_message_size)),
            }
            while let Some(next) = self.ws.next().await {
                match next {
                    // The handshake is complete; waiting for the relay to drop TCP adds nothing.
                    Ok(Message::Close(_)) => break,
                    Ok(_) => continue,
                    Err(WsError::ConnectionClosed | WsError::AlreadyClosed) => break,
                    Err(e) if is_abrupt(&e) => break,
                    Err(e) => return Err(map_error(e, self.max_message_size)),
                }
            }
            Ok(())
        };
        tokio::time::timeout_at(deadline, closing)
            .await
            .map_err(|_| TransportError::Timeout(Operation::Close))?
    }

    fn ensure_open(&self) -> Result<(), TransportError> {
        match self.state {
            State::Open => Ok(()),
            State::Done => Err(TransportError::Closed),
        }
    }

    fn fail(&mut self, e: WsError) -> TransportError {
        self.state = State::Done;
        map_error(e, self.max_message_size)
    }

    async fn abort_with(&mut self, code: CloseCode) {
        self.state = State::Done;
        let frame = CloseFrame {
            code,
            reason: "".into(),
        };
        let _ = tokio::time::timeout(
            std::time::Duration::from_millis(100),
            self.ws.close(Some(frame)),
        )
        .await;
    }
}

fn is_abrupt(e: &WsError) -> bool {
    match e {
        WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake) => true,
        WsError::Io(io) => matches!(
            io.kind(),
            io::ErrorKind::UnexpectedEof
                | io::ErrorKind::ConnectionReset
                | io::ErrorKind::ConnectionAborted
                | io::ErrorKind::BrokenPipe
        ),
        _ => false,
    }
}

fn map_error(e: WsError, max: usize) -> TransportError {
    if is_abrupt(&e) {
        return TransportError::ConnectionLost;
    }
    match e {
        WsError::ConnectionClosed | WsError::AlreadyClosed => TransportError::Closed,
        WsError::Capacity(CapacityError::MessageTooLong { size, .. }) => {
            TransportError::MessageTooLarge {
                len: Some(size),
                max,
            }
        }
        WsError::Capacity(_) => TransportError::MessageTooLarge { len: None, max },
        WsError::Io(io) => TransportError::Io(io),
        other => TransportError::Protocol(WebSocketError(other)),
    }
}
