//! `soak` mode: many pairs at once, some of them misbehaving, and a verdict.
//!
//! Every pair is set up first and held; then all of them run `--messages` numbered round
//! trips at the same time. Pairs are assigned a behaviour by their index:
//!
//! - **normal**: every round trip arrives once and in order, then the computer closes and
//!   the phone must see the relay's close with code 1000;
//! - **abort** (`--abort-fraction`): halfway through, one side (phone or computer,
//!   alternately) aborts its connection, by TCP reset or by FIN without a close frame,
//!   alternately; the other side must get the relay's close, code 1000;
//! - **stalled** (`--stall-fraction`): the computer stops reading after the first round trip
//!   while the phone keeps sending; only that pair may suffer;
//! - **slow** (`--slow-fraction`): the phone writes its frames a few bytes at a time.
//!
//! Afterwards every connection is gone, and the relay must be back where it started: its
//! connection, pending and active tunnel gauges at zero (from `--admin`), its open file
//! descriptors at the baseline (from `/proc`, `--relay-pid`). Any lost, duplicated or
//! reordered message, a wrong close, or a leak fails the run (exit status 1).

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use cable_proto::domain::{connect_path, new_path};
use cable_proto::ids::RoutingId;
use futures_util::{SinkExt, StreamExt};
use serde::Serialize;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use crate::{usage, LoadError, Target};

/// Longest wait for any single message or close.
const STEP: Duration = Duration::from_secs(10);
/// How long the relay gets to return to its baseline after the last connection is gone.
const SETTLE: Duration = Duration::from_secs(15);
/// Bytes per write of a slow writer, and the pause between writes.
const TRICKLE_BYTES: usize = 8;
const TRICKLE_PAUSE: Duration = Duration::from_millis(1);
/// Messages a stalled pair's phone tries to push at its peer that stopped reading.
const STALL_MESSAGES: usize = 256;

/// A TCP stream that, when `slow`, writes a few bytes at a time with pauses in between.
struct Trickle {
    tcp: TcpStream,
    slow: bool,
    pause: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl AsyncRead for Trickle {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.tcp).poll_read(cx, buf)
    }
}

impl AsyncWrite for Trickle {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        if !self.slow {
            return Pin::new(&mut self.tcp).poll_write(cx, buf);
        }
        if let Some(pause) = self.pause.as_mut() {
            if pause.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            self.pause = None;
        }
        let n = buf.len().min(TRICKLE_BYTES);
        let written = Pin::new(&mut self.tcp).poll_write(cx, &buf[..n]);
        if matches!(written, Poll::Ready(Ok(_))) {
            self.pause = Some(Box::pin(tokio::time::sleep(TRICKLE_PAUSE)));
        }
        written
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.tcp).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.tcp).poll_shutdown(cx)
    }
}

type Ws = WebSocketStream<Trickle>;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
enum Behaviour {
    Normal,
    AbortReset,
    AbortFin,
    Stalled,
    Slow,
}

/// The behaviour of pair `i`: spread evenly over the indices, so that every fraction is
/// honoured to within one pair and every behaviour is interleaved with the others.
fn behaviour(i: usize, abort: f64, stall: f64, slow: f64) -> Behaviour {
    // A fixed odd multiplier permutes 0..1000, so neighbours get different behaviours.
    let slot = (i * 617) % 1000;
    let at = |fraction: f64| (fraction.clamp(0.0, 1.0) * 1000.0).round() as usize;
    let (a, s, w) = (at(abort), at(stall), at(slow));
    if slot < a {
        if i.is_multiple_of(2) {
            Behaviour::AbortReset
        } else {
            Behaviour::AbortFin
        }
    } else if slot < a + s {
        Behaviour::Stalled
    } else if slot < a + s + w {
        Behaviour::Slow
    } else {
        Behaviour::Normal
    }
}

#[derive(Debug, Default, Serialize)]
struct Counts {
    normal: usize,
    abort_reset: usize,
    abort_fin: usize,
    stalled: usize,
    slow: usize,
}

impl Counts {
    fn add(&mut self, b: Behaviour) {
        match b {
            Behaviour::Normal => self.normal += 1,
            Behaviour::AbortReset => self.abort_reset += 1,
            Behaviour::AbortFin => self.abort_fin += 1,
            Behaviour::Stalled => self.stalled += 1,
            Behaviour::Slow => self.slow += 1,
        }
    }
}

/// The relay's state as an operator sees it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub(crate) struct RelayState {
    open_fds: Option<usize>,
    connections: Option<u64>,
    tunnels_pending: Option<u64>,
    tunnels_active: Option<u64>,
    rss_kib: Option<u64>,
}

#[derive(Debug, Serialize)]
pub(crate) struct Soak {
    pub(crate) pairs_set_up: usize,
    rounds: usize,
    by_behaviour: Counts,
    /// Pairs that completed as their behaviour requires.
    as_expected: Counts,
    messages_checked: u64,
    lost_or_reordered: u64,
    wrong_close: u64,
    seconds: f64,
    relay_before: RelayState,
    relay_peak_rss_kib: Option<u64>,
    relay_after: RelayState,
    /// The first few problems, one line each.
    pub(crate) problems: Vec<String>,
    pub(crate) passed: bool,
}

pub(crate) struct Settings {
    pub(crate) pairs: usize,
    pub(crate) rounds: usize,
    pub(crate) size: usize,
    pub(crate) abort: f64,
    pub(crate) stall: f64,
    pub(crate) slow: f64,
    pub(crate) concurrency: usize,
    pub(crate) admin: Option<SocketAddr>,
    pub(crate) relay_pid: Option<u32>,
}

/// What one pair did.
#[derive(Default)]
struct Outcome {
    checked: u64,
    lost_or_reordered: u64,
    wrong_close: u64,
    problem: Option<String>,
}

pub(crate) async fn run(target: Arc<Target>, settings: Settings) -> Result<Soak, LoadError> {
    let before = relay_state(settings.admin, settings.relay_pid).await?;
    let started = Instant::now();
    let mut by_behaviour = Counts::default();
    let mut problems = Vec::new();

    // Phase 1: every pair set up and held.
    let permits = Arc::new(Semaphore::new(settings.concurrency.max(1)));
    let mut setups = Vec::with_capacity(settings.pairs);
    for i in 0..settings.pairs {
        let b = behaviour(i, settings.abort, settings.stall, settings.slow);
        let Ok(permit) = permits.clone().acquire_owned().await else {
            break;
        };
        let target = target.clone();
        setups.push(tokio::spawn(async move {
            let _permit = permit;
            let (phone, announced) = open(
                &target,
                &new_path(&target.tunnel_id(i)),
                i,
                b == Behaviour::Slow,
            )
            .await
            .map_err(|e| format!("new #{i}: {e}"))?;
            let routing_id = announced.unwrap_or(target.routing_id);
            let (computer, _) = open(
                &target,
                &connect_path(&routing_id, &target.tunnel_id(i)),
                i + 1,
                false,
            )
            .await
            .map_err(|e| format!("connect #{i}: {e}"))?;
            Ok::<_, String>((i, b, phone, computer))
        }));
    }
    let mut pairs = Vec::with_capacity(setups.len());
    for s in setups {
        match s.await {
            Ok(Ok(pair)) => pairs.push(pair),
            Ok(Err(e)) => problems.push(e),
            Err(e) => problems.push(format!("setup task: {e}")),
        }
    }
    let setup_failures = settings.pairs - pairs.len();
    let peak = relay_state(settings.admin, settings.relay_pid)
        .await?
        .rss_kib;

    // Phase 2: all pairs at once.
    let tasks: Vec<_> = pairs
        .into_iter()
        .map(|(i, b, phone, computer)| {
            by_behaviour.add(b);
            let (rounds, size) = (settings.rounds, settings.size);
            tokio::spawn(async move { (b, drive(i, b, phone, computer, rounds, size).await) })
        })
        .collect();
    let mut as_expected = Counts::default();
    let (mut checked, mut lost, mut wrong_close) = (0, 0, 0);
    for t in tasks {
        match t.await {
            Ok((b, outcome)) => {
                checked += outcome.checked;
                lost += outcome.lost_or_reordered;
                wrong_close += outcome.wrong_close;
                match outcome.problem {
                    None => as_expected.add(b),
                    Some(p) => problems.push(p),
                }
            }
            Err(e) => problems.push(format!("pair task: {e}")),
        }
    }
    let seconds = started.elapsed().as_secs_f64();

    // Phase 3: back to the baseline.
    let deadline = Instant::now() + SETTLE;
    let after = loop {
        let now = relay_state(settings.admin, settings.relay_pid).await?;
        let drained = now.connections.unwrap_or(0) == 0
            && now.tunnels_pending.unwrap_or(0) == 0
            && now.tunnels_active.unwrap_or(0) == 0
            && now.open_fds <= before.open_fds;
        if drained || Instant::now() >= deadline {
            break now;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    for (what, value) in [
        ("connections", after.connections),
        ("pending tunnels", after.tunnels_pending),
        ("active tunnels", after.tunnels_active),
    ] {
        if let Some(v) = value.filter(|&v| v != 0) {
            problems.push(format!(
                "{what} gauge is {v}, not 0, {SETTLE:?} after the end"
            ));
        }
    }
    if let (Some(b), Some(a)) = (before.open_fds, after.open_fds) {
        if a > b {
            problems.push(format!("the relay holds {a} file descriptors, {b} before"));
        }
    }
    let passed = problems.is_empty() && setup_failures == 0;
    problems.truncate(20);
    Ok(Soak {
        pairs_set_up: settings.pairs - setup_failures,
        rounds: settings.rounds,
        by_behaviour,
        as_expected,
        messages_checked: checked,
        lost_or_reordered: lost,
        wrong_close,
        seconds,
        relay_before: before,
        relay_peak_rss_kib: peak,
        relay_after: after,
        problems,
        passed,
    })
}

async fn open(
    target: &Target,
    path: &str,
    source: usize,
    slow: bool,
) -> Result<(Ws, Option<RoutingId>), String> {
    let source: IpAddr = target.sources[source % target.sources.len()];
    let req = target.request(path, &[])?;
    let tcp = target.tcp_from(source).await?;
    let stream = Trickle {
        tcp,
        slow,
        pause: None,
    };
    let (ws, response) =
        tokio_tungstenite::client_async_with_config(req, stream, Some(target.config))
            .await
            .map_err(|e| e.to_string())?;
    Ok((ws, crate::announced_routing_id(response.headers())))
}

/// Message `seq` of pair `i`: its numbers first, then filler derived from both.
fn message(i: usize, seq: usize, size: usize) -> Vec<u8> {
    let mut m = Vec::with_capacity(size.max(8));
    m.extend_from_slice(&(i as u32).to_be_bytes());
    m.extend_from_slice(&(seq as u32).to_be_bytes());
    m.extend((8..size).map(|k| (k ^ i ^ seq) as u8));
    m
}

/// The next binary message, skipping pings and pongs.
async fn next_binary(ws: &mut Ws) -> Result<Vec<u8>, String> {
    loop {
        match tokio::time::timeout(STEP, ws.next()).await {
            Err(_) => return Err(format!("no message within {STEP:?}")),
            Ok(Some(Ok(Message::Binary(b)))) => return Ok(b.to_vec()),
            Ok(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => {}
            Ok(other) => return Err(format!("expected a message, got {other:?}")),
        }
    }
}

/// The close code the relay sends, answering its close frame.
async fn close_code(ws: &mut Ws) -> Result<Option<CloseCode>, String> {
    loop {
        match tokio::time::timeout(STEP, ws.next()).await {
            Err(_) => return Err(format!("no close within {STEP:?}")),
            Ok(Some(Ok(Message::Close(frame)))) => {
                let _ = ws.close(None).await;
                return Ok(frame.map(|f| f.code));
            }
            Ok(Some(Ok(_))) => {}
            Ok(other) => return Err(format!("expected a close frame, got {other:?}")),
        }
    }
}

/// Round trip `seq`: phone → computer, checked, echoed back, checked.
async fn round_trip(
    i: usize,
    seq: usize,
    size: usize,
    phone: &mut Ws,
    computer: &mut Ws,
    out: &mut Outcome,
) -> Result<(), String> {
    let sent = message(i, seq, size);
    phone
        .send(Message::binary(sent.clone()))
        .await
        .map_err(|e| format!("phone send: {e}"))?;
    let got = next_binary(computer).await?;
    out.checked += 1;
    if got != sent {
        out.lost_or_reordered += 1;
        return Err(format!(
            "computer got {:02x?}… for round {seq}",
            &got[..got.len().min(8)]
        ));
    }
    computer
        .send(Message::binary(got))
        .await
        .map_err(|e| format!("computer send: {e}"))?;
    let echoed = next_binary(phone).await?;
    out.checked += 1;
    if echoed != sent {
        out.lost_or_reordered += 1;
        return Err(format!("phone got a wrong echo in round {seq}"));
    }
    Ok(())
}

async fn drive(
    i: usize,
    b: Behaviour,
    mut phone: Ws,
    mut computer: Ws,
    rounds: usize,
    size: usize,
) -> Outcome {
    let mut out = Outcome::default();
    let result = match b {
        Behaviour::Normal | Behaviour::Slow => {
            normal(i, rounds, size, &mut phone, &mut computer, &mut out).await
        }
        Behaviour::AbortReset | Behaviour::AbortFin => {
            abort(i, b, rounds, size, phone, computer, &mut out).await
        }
        Behaviour::Stalled => stalled(i, size, phone, computer, &mut out).await,
    };
    if let Err(e) = result {
        out.problem = Some(format!("pair {i} ({b:?}): {e}"));
    }
    out
}

async fn normal(
    i: usize,
    rounds: usize,
    size: usize,
    phone: &mut Ws,
    computer: &mut Ws,
    out: &mut Outcome,
) -> Result<(), String> {
    for seq in 0..rounds {
        round_trip(i, seq, size, phone, computer, out).await?;
    }
    computer
        .close(None)
        .await
        .map_err(|e| format!("computer close: {e}"))?;
    match close_code(phone).await? {
        Some(CloseCode::Normal) => Ok(()),
        other => {
            out.wrong_close += 1;
            Err(format!("phone got close {other:?}, not 1000"))
        }
    }
}

async fn abort(
    i: usize,
    b: Behaviour,
    rounds: usize,
    size: usize,
    phone: Ws,
    computer: Ws,
    out: &mut Outcome,
) -> Result<(), String> {
    let (mut phone, mut computer) = (phone, computer);
    for seq in 0..rounds / 2 {
        round_trip(i, seq, size, &mut phone, &mut computer, out).await?;
    }
    // Alternate which side goes away: pairs 0, 1 (mod 4) lose the phone, 2, 3 the computer.
    let (gone, mut survivor) = if i % 4 < 2 {
        (phone, computer)
    } else {
        (computer, phone)
    };
    let mut tcp = gone.into_inner().tcp;
    if b == Behaviour::AbortReset {
        tcp.set_zero_linger()
            .map_err(|e| format!("SO_LINGER: {e}"))?;
    } else {
        tcp.shutdown().await.map_err(|e| format!("shutdown: {e}"))?;
        // Drain what the relay still sends, as a half-closed peer would, until it closes.
        let mut sink = [0u8; 512];
        let _ = tokio::time::timeout(STEP, async {
            while matches!(tcp.read(&mut sink).await, Ok(n) if n > 0) {}
        })
        .await;
    }
    drop(tcp);
    match close_code(&mut survivor).await? {
        Some(CloseCode::Normal) => Ok(()),
        other => {
            out.wrong_close += 1;
            Err(format!("the survivor got close {other:?}, not 1000"))
        }
    }
}

async fn stalled(
    i: usize,
    size: usize,
    mut phone: Ws,
    mut computer: Ws,
    out: &mut Outcome,
) -> Result<(), String> {
    round_trip(i, 0, size, &mut phone, &mut computer, out).await?;
    // The computer stops reading. The phone's sends may block once the buffers fill; that
    // is the relay applying backpressure, not a failure.
    for seq in 1..=STALL_MESSAGES {
        let send = phone.send(Message::binary(message(i, seq, size)));
        match tokio::time::timeout(Duration::from_millis(200), send).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(format!("phone send while stalled: {e}")),
            Err(_) => break,
        }
    }
    // Both go away without closing: the relay must clean up after them.
    drop(phone);
    drop(computer);
    Ok(())
}

async fn relay_state(admin: Option<SocketAddr>, pid: Option<u32>) -> Result<RelayState, LoadError> {
    let mut state = RelayState::default();
    if let Some(pid) = pid {
        state.rss_kib = Some(usage(pid)?.rss_kib);
        state.open_fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
            .ok()
            .map(|d| d.count());
    }
    if let Some(admin) = admin {
        let metrics = admin_metrics(admin)
            .await
            .map_err(|e| LoadError::Admin(admin, e))?;
        let gauge = |name: &str| {
            metrics.lines().find_map(|l| {
                l.strip_prefix(name)
                    .and_then(|v| v.strip_prefix(' '))
                    .and_then(|v| v.trim().parse::<f64>().ok())
                    .map(|v| v as u64)
            })
        };
        state.connections = gauge("cable_relay_connections");
        state.tunnels_pending = gauge("cable_relay_tunnels_pending");
        state.tunnels_active = gauge("cable_relay_tunnels_active");
    }
    Ok(state)
}

async fn admin_metrics(admin: SocketAddr) -> std::io::Result<String> {
    let mut tcp = tokio::time::timeout(STEP, TcpStream::connect(admin)).await??;
    tcp.write_all(b"GET /metrics HTTP/1.1\r\nHost: relay\r\n\r\n")
        .await?;
    let mut body = String::new();
    tokio::time::timeout(STEP, tcp.read_to_string(&mut body)).await??;
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn behaviours_honour_their_fractions() {
        let mut counts = Counts::default();
        for i in 0..1000 {
            counts.add(behaviour(i, 0.2, 0.05, 0.03));
        }
        assert_eq!(counts.abort_reset + counts.abort_fin, 200);
        assert_eq!(counts.stalled, 50);
        assert_eq!(counts.slow, 30);
        assert_eq!(counts.normal, 720);
        assert!(counts.abort_reset.abs_diff(counts.abort_fin) <= 2);
        assert_eq!(behaviour(7, 0.0, 0.0, 0.0), Behaviour::Normal);
    }

    #[test]
    fn messages_carry_pair_and_sequence() {
        let m = message(3, 9, 20);
        assert_eq!(m.len(), 20);
        assert_eq!(&m[..8], &[0, 0, 0, 3, 0, 0, 0, 9]);
        assert_ne!(message(3, 10, 20), m);
        assert_eq!(message(1, 1, 2).len(), 8);
    }
}
