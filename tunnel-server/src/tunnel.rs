//! One tunnel's life: wait for the computer (buffering a little), then relay both directions
//! until one side leaves or a limit is hit, then close both sides with a clear close code.
//!
//! A tunnel is driven by a single task (the one that accepted the phone); the computer's socket
//! is handed to it when the computer joins. Both directions are polled by hand in one future
//! rather than split into two tasks: no locks around the sockets, one task allocation per pair,
//! and back-pressure is per direction (a blocked writer stops reading only its own source).

use std::collections::VecDeque;
use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use cable_proto::ids::TunnelId;
use futures_util::{Sink, SinkExt, StreamExt};
use tokio::sync::{oneshot, watch};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::error::{CapacityError, ProtocolError};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{Bytes, Error as WsError, Message};

use crate::metrics::{CloseReason, Direction};
use crate::state::{Peer, Phase, Shared, Ws};

/// Which end of the tunnel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    /// Opened the tunnel (`new`, the phone in a QR transaction).
    New,
    /// Joined it (`connect`).
    Connect,
}

/// How the relay phase ended.
#[derive(Debug, Clone, Copy)]
enum End {
    Closed(Side),
    Dropped(Side),
    Text(Side),
    TooBig(Side),
    Protocol(Side),
    MessageLimit,
    ByteLimit,
    Idle,
    Lifetime,
    Shutdown,
}

/// What one direction of a tunnel may carry.
#[derive(Debug, Clone, Copy)]
struct Caps {
    messages: u32,
    bytes: u64,
}

/// Per-direction relay state.
#[derive(Debug, Default)]
struct Flow {
    queue: VecDeque<Bytes>,
    messages: u32,
    bytes: u64,
    unflushed: bool,
}

/// Summary logged once per tunnel.
#[derive(Debug, Default)]
struct Tally {
    joined: bool,
    up: (u32, u64),
    down: (u32, u64),
}

/// Runs a tunnel whose `new` side has just received its 101, until it ends.
pub(crate) async fn run(
    shared: Arc<Shared>,
    id: TunnelId,
    phone: Peer,
    join_rx: oneshot::Receiver<Peer>,
    created: Instant,
    signal: bool,
) {
    let mut tally = Tally::default();
    let reason = run_inner(&shared, &id, phone, join_rx, created, signal, &mut tally).await;
    if tally.joined {
        // An unjoined tunnel's id was freed as soon as it failed (and may already belong to a
        // new tunnel); a joined one keeps its id until both sides are closed.
        shared.unregister(&id);
    }
    let metrics = &shared.metrics;
    metrics.closed(reason);
    if reason == CloseReason::UnjoinedExpired {
        metrics.expired_unjoined.inc();
    }
    let lifetime = created.elapsed();
    metrics.duration.observe(lifetime.as_secs_f64());
    tracing::info!(
        tunnel = %id.short_hash(),
        reason = reason.as_str(),
        joined = tally.joined,
        duration_ms = lifetime.as_millis() as u64,
        msgs_new_to_connect = tally.up.0,
        bytes_new_to_connect = tally.up.1,
        msgs_connect_to_new = tally.down.0,
        bytes_connect_to_new = tally.down.1,
        "tunnel closed"
    );
    shared.tunnel_ended(tally.joined);
}

async fn run_inner(
    shared: &Shared,
    id: &TunnelId,
    mut phone: Peer,
    mut join_rx: oneshot::Receiver<Peer>,
    created: Instant,
    signal: bool,
    tally: &mut Tally,
) -> CloseReason {
    let limits = &shared.config.limits;
    let lifetime_deadline = created + limits.tunnel_lifetime;
    let unjoined_deadline = (created + limits.unjoined_timeout).min(lifetime_deadline);
    let mut stop = shared.phase.subscribe();
    let sleep = tokio::time::sleep_until(unjoined_deadline);
    tokio::pin!(sleep);

    // Waiting for the computer. The phone's socket is read all along so that a phone that
    // leaves is noticed at once, and so that what it sends early is buffered (bounded).
    let mut up = Flow::default();
    let pending = async {
        loop {
            tokio::select! {
                biased;
                joined = &mut join_rx => return Ok(joined),
                msg = phone.ws.next() => match msg {
                    Some(Ok(Message::Binary(b))) => {
                        up.messages += 1;
                        up.bytes += b.len() as u64;
                        if up.queue.len() >= limits.prejoin_max_messages
                            || up.queue.iter().map(Bytes::len).sum::<usize>() + b.len()
                                > limits.prejoin_max_bytes
                        {
                            return Err((CloseReason::PrejoinBufferFull, Some(policy("too many messages before peer joined"))));
                        }
                        up.queue.push_back(b);
                    }
                    Some(Ok(Message::Text(_))) => {
                        return Err((CloseReason::TextFrame, Some(policy("text frames are not allowed"))));
                    }
                    Some(Ok(Message::Close(_))) => return Err((CloseReason::LeftBeforeJoin, None)),
                    Some(Ok(_)) => {}
                    Some(Err(e)) => {
                        let (reason, frame) = read_error_close(&e);
                        let reason = match reason {
                            CloseReason::PeerDisconnected => CloseReason::LeftBeforeJoin,
                            other => other,
                        };
                        return Err((reason, frame));
                    }
                    None => return Err((CloseReason::LeftBeforeJoin, None)),
                },
                () = &mut sleep => {
                    let frame = if unjoined_deadline < lifetime_deadline {
                        policy("no peer joined in time")
                    } else {
                        policy("tunnel lifetime exceeded")
                    };
                    return Err((CloseReason::UnjoinedExpired, Some(frame)));
                }
                _ = stop.wait_for(|p| *p == Phase::Stopping) => {
                    return Err((CloseReason::Shutdown, Some(frame(CloseCode::Away, "relay shutting down"))));
                }
            }
        }
    };
    let joined = pending.await;
    shared.left_pending();
    let (reason, frame) = match joined {
        Ok(Ok(computer)) => {
            tally.joined = true;
            shared.joined();
            // Boxed: a pending tunnel's task does not carry the relay phase's state.
            let mut down = Flow::default();
            if signal {
                // The connect signal of a contact that asked for it: it must reach the opening
                // side (the computer) before anything the joining phone sends.
                down.queue.push_back(Bytes::from_static(&[0]));
            }
            return Box::pin(relay(
                shared,
                phone,
                computer,
                (up, down),
                lifetime_deadline,
                stop,
                tally,
            ))
            .await;
        }
        Ok(Err(_)) => (
            CloseReason::JoinFailed,
            Some(frame(CloseCode::Error, "peer failed to join")),
        ),
        Err(failed) => failed,
    };
    // Free the id before the close handshake, so that a late `connect` gets its 404 now.
    shared.unregister(id);
    tally.up = (up.messages, up.bytes);
    Box::pin(close(&mut phone.ws, frame, limits.close_timeout)).await;
    reason
}

/// Relays between the two sides until one leaves or a limit is hit, then closes both.
async fn relay(
    shared: &Shared,
    mut phone: Peer,
    mut computer: Peer,
    (mut up, mut down): (Flow, Flow),
    lifetime_deadline: Instant,
    mut stop: watch::Receiver<Phase>,
    tally: &mut Tally,
) -> CloseReason {
    let limits = &shared.config.limits;
    let caps = Caps {
        messages: limits.max_messages_per_direction,
        bytes: limits.max_bytes_per_direction,
    };
    let metrics = &shared.metrics;
    let idle_timeout = limits.idle_timeout;
    let mut last_activity = Instant::now();
    // One timer for both the lifetime and the idle timeout, set to whichever comes first (a
    // second timer would cost every tunnel its memory), boxed so that the relay phase's own
    // allocation stays in its size class.
    let mut timer = Box::pin(tokio::time::sleep_until(
        lifetime_deadline.min(last_activity + idle_timeout),
    ));
    let end = {
        let relay = poll_fn(|cx| {
            let seen = (up.messages, down.messages);
            if let Poll::Ready(end) = pump(
                cx,
                &mut phone.ws,
                &mut computer.ws,
                &mut up,
                Side::New,
                caps,
                |len| metrics.relayed(Direction::NewToConnect, len),
            ) {
                return Poll::Ready(end);
            }
            if let Poll::Ready(end) = pump(
                cx,
                &mut computer.ws,
                &mut phone.ws,
                &mut down,
                Side::Connect,
                caps,
                |len| metrics.relayed(Direction::ConnectToNew, len),
            ) {
                return Poll::Ready(end);
            }
            // A message either way restarts the idle clock. The timer itself is moved only
            // when it fires early (after traffic), not on every message: a busy tunnel costs
            // a clock read per batch, not a timer-wheel update.
            if (up.messages, down.messages) != seen {
                last_activity = Instant::now();
            }
            while timer.as_mut().poll(cx).is_ready() {
                let now = Instant::now();
                if now >= lifetime_deadline {
                    return Poll::Ready(End::Lifetime);
                }
                let idle_deadline = last_activity + idle_timeout;
                if now >= idle_deadline {
                    return Poll::Ready(End::Idle);
                }
                timer.as_mut().reset(idle_deadline.min(lifetime_deadline));
            }
            Poll::Pending
        });
        tokio::select! {
            biased;
            end = relay => end,
            _ = stop.wait_for(|p| *p == Phase::Stopping) => End::Shutdown,
        }
    };
    tally.up = (up.messages, up.bytes);
    tally.down = (down.messages, down.bytes);

    let (reason, to_new, to_connect) = close_plan(end);
    let t = limits.close_timeout;
    tokio::join!(
        close(&mut phone.ws, to_new, t),
        close(&mut computer.ws, to_connect, t)
    );
    reason
}

fn frame(code: CloseCode, reason: &'static str) -> CloseFrame {
    CloseFrame {
        code,
        reason: reason.into(),
    }
}

fn policy(reason: &'static str) -> CloseFrame {
    frame(CloseCode::Policy, reason)
}

/// Close reason and the frames for (new side, connect side). `None` means the side is gone
/// (or already closed by its own close frame, whose reply tungstenite queued).
fn close_plan(end: End) -> (CloseReason, Option<CloseFrame>, Option<CloseFrame>) {
    let both = |reason, f: CloseFrame| (reason, Some(f.clone()), Some(f));
    let one_side = |side: Side, reason, own: Option<CloseFrame>, other: CloseFrame| match side {
        Side::New => (reason, own, Some(other)),
        Side::Connect => (reason, Some(other), own),
    };
    match end {
        End::Closed(side) => one_side(
            side,
            CloseReason::PeerClosed,
            None,
            frame(CloseCode::Normal, "peer closed"),
        ),
        End::Dropped(side) => one_side(
            side,
            CloseReason::PeerDisconnected,
            None,
            frame(CloseCode::Normal, "peer disconnected"),
        ),
        End::Protocol(side) => one_side(
            side,
            CloseReason::ProtocolError,
            Some(frame(CloseCode::Protocol, "protocol error")),
            frame(CloseCode::Normal, "peer protocol error"),
        ),
        End::Text(side) => one_side(
            side,
            CloseReason::TextFrame,
            Some(policy("text frames are not allowed")),
            policy("peer sent a text frame"),
        ),
        End::TooBig(side) => one_side(
            side,
            CloseReason::MessageTooBig,
            Some(frame(CloseCode::Size, "message too big")),
            frame(CloseCode::Size, "peer sent a message too big"),
        ),
        End::MessageLimit => both(CloseReason::MessageLimit, policy("message limit reached")),
        End::ByteLimit => both(CloseReason::ByteLimit, policy("byte limit reached")),
        End::Idle => both(CloseReason::IdleTimeout, policy("tunnel idle")),
        End::Lifetime => both(
            CloseReason::LifetimeExceeded,
            policy("tunnel lifetime exceeded"),
        ),
        End::Shutdown => both(
            CloseReason::Shutdown,
            frame(CloseCode::Away, "relay shutting down"),
        ),
    }
}

/// Maps a read error to how the tunnel ends and what (if anything) the reader is sent.
fn read_error_close(e: &WsError) -> (CloseReason, Option<CloseFrame>) {
    match classify(e) {
        ReadFailure::Gone => (CloseReason::PeerDisconnected, None),
        ReadFailure::TooBig => (
            CloseReason::MessageTooBig,
            Some(frame(CloseCode::Size, "message too big")),
        ),
        ReadFailure::Protocol => (
            CloseReason::ProtocolError,
            Some(frame(CloseCode::Protocol, "protocol error")),
        ),
    }
}

enum ReadFailure {
    Gone,
    TooBig,
    Protocol,
}

fn classify(e: &WsError) -> ReadFailure {
    match e {
        WsError::ConnectionClosed
        | WsError::AlreadyClosed
        | WsError::Io(_)
        | WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake) => ReadFailure::Gone,
        WsError::Capacity(CapacityError::MessageTooLong { .. }) => ReadFailure::TooBig,
        _ => ReadFailure::Protocol,
    }
}

/// Moves messages from `src` to `dst` until neither can make progress.
fn pump(
    cx: &mut Context<'_>,
    src: &mut Ws,
    dst: &mut Ws,
    flow: &mut Flow,
    side: Side,
    caps: Caps,
    mut count: impl FnMut(usize),
) -> Poll<End> {
    let dst_side = match side {
        Side::New => Side::Connect,
        Side::Connect => Side::New,
    };
    loop {
        while !flow.queue.is_empty() {
            match Pin::new(&mut *dst).poll_ready(cx) {
                Poll::Ready(Ok(())) => {}
                Poll::Ready(Err(_)) => return Poll::Ready(End::Dropped(dst_side)),
                Poll::Pending => break,
            }
            let Some(msg) = flow.queue.pop_front() else {
                break;
            };
            let len = msg.len();
            if Pin::new(&mut *dst)
                .start_send(Message::Binary(msg))
                .is_err()
            {
                return Poll::Ready(End::Dropped(dst_side));
            }
            count(len);
            flow.unflushed = true;
        }
        if !flow.queue.is_empty() {
            // The destination is blocked: stop reading this source (back-pressure).
            break;
        }
        match src.poll_next_unpin(cx) {
            Poll::Ready(Some(Ok(Message::Binary(b)))) => {
                if flow.messages >= caps.messages {
                    return Poll::Ready(End::MessageLimit);
                }
                if flow.bytes + b.len() as u64 > caps.bytes {
                    return Poll::Ready(End::ByteLimit);
                }
                flow.messages += 1;
                flow.bytes += b.len() as u64;
                flow.queue.push_back(b);
            }
            Poll::Ready(Some(Ok(Message::Text(_)))) => return Poll::Ready(End::Text(side)),
            Poll::Ready(Some(Ok(Message::Close(_)))) => return Poll::Ready(End::Closed(side)),
            // Pings are answered by tungstenite itself; pongs and raw frames are not relayed.
            Poll::Ready(Some(Ok(_))) => {}
            Poll::Ready(Some(Err(e))) => {
                return Poll::Ready(match classify(&e) {
                    ReadFailure::Gone => End::Dropped(side),
                    ReadFailure::TooBig => End::TooBig(side),
                    ReadFailure::Protocol => End::Protocol(side),
                })
            }
            Poll::Ready(None) => return Poll::Ready(End::Dropped(side)),
            Poll::Pending => break,
        }
    }
    if flow.unflushed {
        match Pin::new(&mut *dst).poll_flush(cx) {
            Poll::Ready(Ok(())) => flow.unflushed = false,
            Poll::Ready(Err(_)) => return Poll::Ready(End::Dropped(dst_side)),
            Poll::Pending => {}
        }
    }
    Poll::Pending
}

/// Sends `frame` (if any), then waits briefly for the client's close reply so that the client
/// sees a clean close; with `None` it only flushes a close reply tungstenite has queued.
async fn close(ws: &mut Ws, frame: Option<CloseFrame>, timeout: Duration) {
    let _ = tokio::time::timeout(timeout, async {
        match frame {
            Some(frame) => {
                if ws.close(Some(frame)).await.is_err() {
                    return;
                }
                while let Some(Ok(_)) = ws.next().await {}
            }
            // `Sink::close` (unlike `WebSocketStream::close`, which sends a new close
            // message and fails after the peer's) flushes the queued close reply.
            None => {
                let _ = SinkExt::close(ws).await;
            }
        }
    })
    .await;
}
