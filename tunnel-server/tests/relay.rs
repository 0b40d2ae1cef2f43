//! In-process tests with real WebSocket clients against a relay on 127.0.0.1:0.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::time::Duration;

use cable_tunnel_server::{
    CloseReason, RejectReason, Relay, RelayConfig, RoutingId, RunningRelay, ROUTING_ID_HEADER,
    SUBPROTOCOL,
};
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::WebSocketStream;

type Client = WebSocketStream<TcpStream>;

const T1: &str = "00112233445566778899aabbccddeeff";
const T2: &str = "FFEEDDCCBBAA99887766554433221100";
const WAIT: Duration = Duration::from_secs(5);

async fn start(config: RelayConfig) -> RunningRelay {
    Relay::bind(config).await.unwrap()
}

fn cfg() -> RelayConfig {
    let mut config = RelayConfig::default();
    config.routing_id = RoutingId::from_bytes([0xab, 0xcd, 0xef]);
    config.limits.close_timeout = Duration::from_millis(300);
    config
}

/// Opens a WebSocket with the given subprotocol (or none); returns the socket and the 101 or the
/// HTTP status of the refusal.
async fn open(
    addr: SocketAddr,
    path: &str,
    protocol: Option<&str>,
) -> Result<
    (
        Client,
        tokio_tungstenite::tungstenite::handshake::client::Response,
    ),
    u16,
> {
    let mut req = format!("ws://{addr}{path}").into_client_request().unwrap();
    if let Some(p) = protocol {
        req.headers_mut()
            .insert("Sec-WebSocket-Protocol", HeaderValue::from_str(p).unwrap());
    }
    let tcp = TcpStream::connect(addr).await.unwrap();
    match tokio::time::timeout(WAIT, tokio_tungstenite::client_async(req, tcp))
        .await
        .expect("handshake timed out")
    {
        Ok(ok) => Ok(ok),
        Err(WsError::Http(resp)) => Err(resp.status().as_u16()),
        Err(e) => panic!("unexpected handshake error: {e}"),
    }
}

async fn new_tunnel(relay: &RunningRelay, tunnel: &str) -> Client {
    open(
        relay.local_addr(),
        &format!("/cable/new/{tunnel}"),
        Some(SUBPROTOCOL),
    )
    .await
    .unwrap()
    .0
}

async fn connect(relay: &RunningRelay, tunnel: &str) -> Result<Client, u16> {
    let rid = relay.routing_id().to_hex();
    open(
        relay.local_addr(),
        &format!("/cable/connect/{rid}/{tunnel}"),
        Some(SUBPROTOCOL),
    )
    .await
    .map(|(ws, _)| ws)
}

async fn pair(relay: &RunningRelay, tunnel: &str) -> (Client, Client) {
    let phone = new_tunnel(relay, tunnel).await;
    let computer = connect(relay, tunnel).await.unwrap();
    (phone, computer)
}

async fn recv(ws: &mut Client) -> Message {
    tokio::time::timeout(WAIT, ws.next())
        .await
        .expect("timed out waiting for a message")
        .expect("stream ended")
        .expect("read error")
}

async fn recv_binary(ws: &mut Client) -> Vec<u8> {
    match recv(ws).await {
        Message::Binary(b) => b.to_vec(),
        other => panic!("expected binary, got {other:?}"),
    }
}

/// Waits for the relay's close frame; returns its code and reason.
async fn expect_close(ws: &mut Client) -> (u16, String) {
    loop {
        match recv(ws).await {
            Message::Close(Some(f)) => return (u16::from(f.code), f.reason.to_string()),
            Message::Close(None) => return (1005, String::new()),
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("expected close, got {other:?}"),
        }
    }
}

/// Sends raw bytes and returns the status code of the HTTP answer (0 if the connection closed
/// without one).
async fn raw_status(addr: SocketAddr, request: &str) -> u16 {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(WAIT, tcp.read_to_end(&mut buf)).await;
    let text = String::from_utf8_lossy(&buf);
    text.split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

/// Sends a raw request; returns the whole answer.
async fn raw_response(addr: SocketAddr, request: &str) -> String {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(WAIT, tcp.read_to_end(&mut buf)).await;
    String::from_utf8_lossy(&buf).into_owned()
}

fn upgrade_request(path: &str) -> String {
    format!(
        "GET {path} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Sec-WebSocket-Protocol: {SUBPROTOCOL}\r\n\r\n"
    )
}

async fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut buf = Vec::new();
    tokio::time::timeout(WAIT, tcp.read_to_end(&mut buf))
        .await
        .unwrap()
        .unwrap();
    let text = String::from_utf8(buf).unwrap();
    let code = text.split(' ').nth(1).unwrap().parse().unwrap();
    let body = text.split_once("\r\n\r\n").unwrap().1.to_owned();
    (code, body)
}

/// Polls `cond` until true (state changes in the relay happen on its tasks).
async fn eventually(mut cond: impl FnMut() -> bool) {
    let start = tokio::time::Instant::now();
    while !cond() {
        assert!(start.elapsed() < WAIT, "condition not reached");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn new_selects_subprotocol_and_returns_routing_id() {
    let relay = start(cfg()).await;
    let (_ws, resp) = open(
        relay.local_addr(),
        &format!("/cable/new/{T1}"),
        Some(&format!("other, {SUBPROTOCOL}")),
    )
    .await
    .unwrap();
    assert_eq!(resp.status().as_u16(), 101);
    assert_eq!(resp.headers()["sec-websocket-protocol"], "fido.cable");
    let rids: Vec<_> = resp
        .headers()
        .get_all("x-cable-routing-id")
        .iter()
        .collect();
    assert_eq!(rids, vec!["ABCDEF"]);
    eventually(|| relay.metrics().pending() == 1).await;
}

#[tokio::test]
async fn relays_both_directions_in_order_either_hex_case() {
    let relay = start(cfg()).await;
    let phone = new_tunnel(&relay, T1).await;
    // Upper-case tunnel id and lower-case routing id on connect.
    let (computer, resp) = open(
        relay.local_addr(),
        &format!("/cable/connect/abcdef/{}", T1.to_uppercase()),
        Some(SUBPROTOCOL),
    )
    .await
    .unwrap();
    assert_eq!(resp.headers()["sec-websocket-protocol"], "fido.cable");
    assert!(resp.headers().get("x-cable-routing-id").is_none());
    let (mut phone, mut computer) = (phone, computer);
    for i in 0..50u32 {
        let msg: Vec<u8> = (0..(i * 37 % 3000)).map(|j| (j ^ i) as u8).collect();
        computer.send(Message::binary(msg.clone())).await.unwrap();
        phone
            .send(Message::binary(i.to_be_bytes().to_vec()))
            .await
            .unwrap();
        assert_eq!(recv_binary(&mut phone).await, msg);
        assert_eq!(recv_binary(&mut computer).await, i.to_be_bytes());
    }
    // Many in flight at once keep their order and boundaries.
    for i in 0..200u32 {
        phone
            .send(Message::binary(i.to_le_bytes().to_vec()))
            .await
            .unwrap();
    }
    for i in 0..200u32 {
        assert_eq!(recv_binary(&mut computer).await, i.to_le_bytes());
    }
    eventually(|| relay.metrics().active() == 1 && relay.metrics().pending() == 0).await;
}

#[tokio::test]
async fn refusals_have_the_right_status() {
    let relay = start(cfg()).await;
    let addr = relay.local_addr();
    // No subprotocol: 400.
    assert_eq!(
        open(addr, &format!("/cable/new/{T1}"), None)
            .await
            .unwrap_err(),
        400
    );
    // Wrong subprotocol: 400.
    assert_eq!(
        open(addr, &format!("/cable/new/{T1}"), Some("chat"))
            .await
            .unwrap_err(),
        400
    );
    // Unknown paths and contact: 404.
    for path in [
        "/".to_owned(),
        "/cable/new/1234".to_owned(),
        format!("/cable/new/{T1}/extra"),
        "/cable/contact/AAAA".to_owned(),
        format!("/cable/connect/ABCDE/{T1}"),
    ] {
        assert_eq!(
            open(addr, &path, Some(SUBPROTOCOL)).await.unwrap_err(),
            404,
            "{path}"
        );
    }
    // Wrong routing id: 404; unknown tunnel: 404.
    assert_eq!(
        open(
            addr,
            &format!("/cable/connect/ABCDEE/{T1}"),
            Some(SUBPROTOCOL)
        )
        .await
        .unwrap_err(),
        404
    );
    assert_eq!(connect(&relay, T2).await.unwrap_err(), 404);
    // Non-GET: 405.
    let post = format!(
        "POST /cable/new/{T1} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Sec-WebSocket-Protocol: {SUBPROTOCOL}\r\nContent-Length: 0\r\n\r\n"
    );
    assert_eq!(raw_status(addr, &post).await, 405);
    // A GET that is not an upgrade: 400.
    assert_eq!(
        raw_status(
            addr,
            &format!("GET /cable/new/{T1} HTTP/1.1\r\nHost: x\r\n\r\n")
        )
        .await,
        400
    );
    // Garbage: 400.
    assert_eq!(raw_status(addr, "\x01\x02 nonsense\r\n\r\n").await, 400);
    let m = relay.metrics();
    assert_eq!(m.rejects(RejectReason::MissingSubprotocol), 2);
    assert_eq!(m.rejects(RejectReason::MethodNotAllowed), 1);
    assert_eq!(m.rejects(RejectReason::WrongRoutingId), 1);
    assert_eq!(m.rejects(RejectReason::UnknownTunnel), 1);
    assert_eq!(m.rejects(RejectReason::ContactUnsupported), 1);
    assert_eq!(m.pending(), 0);
}

#[tokio::test]
async fn malformed_paths_are_answered_with_the_part_that_was_wrong() {
    let relay = start(cfg()).await;
    let addr = relay.local_addr();
    let almost = &T1[..31];
    for (path, problem) in [
        (
            format!("/cable/new/{almost}x"),
            "tunnel id: invalid hex character at position 31",
        ),
        (
            format!("/cable/connect/ABCDE/{T1}"),
            "routing id: expected 6 hex characters, got 5",
        ),
        (format!("/cable/new/{T1}/extra"), "/cable/new/ takes 1"),
        ("/cable/nope/x".to_owned(), "unknown endpoint"),
    ] {
        let answer = raw_response(addr, &upgrade_request(&path)).await;
        assert!(answer.starts_with("HTTP/1.1 404 Not Found\r\n"), "{answer}");
        let (head, body) = answer.split_once("\r\n\r\n").unwrap();
        assert!(body.contains(problem), "{path}: {body:?}");
        assert!(
            head.contains(&format!("Content-Length: {}\r\n", body.len())),
            "{head}"
        );
        assert!(!answer.to_lowercase().contains(almost), "{answer}");
    }
    // A refusal with nothing more to say than its status has no body.
    let answer = raw_response(
        addr,
        &upgrade_request(&format!("/cable/connect/ABCDEF/{T2}")),
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 404 "), "{answer}");
    assert!(answer.ends_with("\r\n\r\n"), "{answer}");
    assert_eq!(relay.metrics().rejects(RejectReason::UnknownPath), 4);
    assert_eq!(relay.metrics().rejects(RejectReason::UnknownTunnel), 1);
}

#[tokio::test]
async fn duplicate_new_is_409_and_second_connect_is_404() {
    let relay = start(cfg()).await;
    let _phone = new_tunnel(&relay, T1).await;
    // Same id in the other case is the same tunnel.
    assert_eq!(
        open(
            relay.local_addr(),
            &format!("/cable/new/{}", T1.to_uppercase()),
            Some(SUBPROTOCOL)
        )
        .await
        .unwrap_err(),
        409
    );
    let _computer = connect(&relay, T1).await.unwrap();
    assert_eq!(connect(&relay, T1).await.unwrap_err(), 404);
    // While joined, the id stays taken.
    assert_eq!(
        open(
            relay.local_addr(),
            &format!("/cable/new/{T1}"),
            Some(SUBPROTOCOL)
        )
        .await
        .unwrap_err(),
        409
    );
    assert_eq!(relay.metrics().rejects(RejectReason::DuplicateTunnel), 2);
    assert_eq!(relay.metrics().rejects(RejectReason::AlreadyJoined), 1);
}

#[tokio::test]
async fn messages_before_join_are_buffered_and_delivered_first() {
    let relay = start(cfg()).await;
    let mut phone = new_tunnel(&relay, T1).await;
    for i in 0..3u8 {
        phone.send(Message::binary(vec![i; 10])).await.unwrap();
    }
    phone.send(Message::Ping(vec![9].into())).await.unwrap();
    // The pong proves the relay has read everything sent before it.
    assert!(matches!(recv(&mut phone).await, Message::Pong(p) if p[..] == [9]));
    let mut computer = connect(&relay, T1).await.unwrap();
    phone.send(Message::binary(vec![3u8; 10])).await.unwrap();
    for i in 0..4u8 {
        assert_eq!(recv_binary(&mut computer).await, vec![i; 10]);
    }
}

#[tokio::test]
async fn prejoin_buffer_is_bounded() {
    let mut config = cfg();
    config.limits.prejoin_max_messages = 2;
    let relay = start(config).await;
    let mut phone = new_tunnel(&relay, T1).await;
    for _ in 0..3 {
        phone.send(Message::binary(vec![0u8; 4])).await.unwrap();
    }
    assert_eq!(expect_close(&mut phone).await.0, 1008);
    eventually(|| relay.metrics().closes(CloseReason::PrejoinBufferFull) == 1).await;
    assert_eq!(connect(&relay, T1).await.unwrap_err(), 404);

    // The byte bound applies as well.
    let mut config = cfg();
    config.limits.prejoin_max_bytes = 100;
    let relay = start(config).await;
    let mut phone = new_tunnel(&relay, T1).await;
    phone.send(Message::binary(vec![0u8; 60])).await.unwrap();
    phone.send(Message::binary(vec![0u8; 60])).await.unwrap();
    assert_eq!(expect_close(&mut phone).await.0, 1008);
}

#[tokio::test]
async fn pings_are_answered_not_relayed() {
    let relay = start(cfg()).await;
    let (mut phone, mut computer) = pair(&relay, T1).await;
    computer
        .send(Message::Ping(vec![1, 2].into()))
        .await
        .unwrap();
    assert!(matches!(recv(&mut computer).await, Message::Pong(p) if p[..] == [1, 2]));
    computer.send(Message::binary(vec![7])).await.unwrap();
    // The phone sees the binary message and nothing before it.
    assert_eq!(recv_binary(&mut phone).await, vec![7]);
}

#[tokio::test]
async fn text_frame_closes_tunnel_with_policy_violation() {
    let relay = start(cfg()).await;
    let (mut phone, mut computer) = pair(&relay, T1).await;
    computer.send(Message::text("hello")).await.unwrap();
    let (code, _) = expect_close(&mut computer).await;
    assert_eq!(code, u16::from(CloseCode::Policy));
    let (code, reason) = expect_close(&mut phone).await;
    assert_eq!(code, 1008);
    assert_eq!(reason, "peer sent a text frame");
    eventually(|| relay.metrics().closes(CloseReason::TextFrame) == 1).await;
    eventually(|| relay.metrics().active() == 0).await;

    // Before the join as well.
    let mut phone = new_tunnel(&relay, T2).await;
    phone.send(Message::text("x")).await.unwrap();
    assert_eq!(expect_close(&mut phone).await.0, 1008);
}

#[tokio::test]
async fn close_propagates_with_normal_code() {
    let relay = start(cfg()).await;
    let (mut phone, mut computer) = pair(&relay, T1).await;
    computer.close(None).await.unwrap();
    let (code, reason) = expect_close(&mut phone).await;
    assert_eq!((code, reason.as_str()), (1000, "peer closed"));
    // The closing side gets its close handshake completed.
    assert!(matches!(recv(&mut computer).await, Message::Close(_)));
    eventually(|| relay.metrics().closes(CloseReason::PeerClosed) == 1).await;
}

#[tokio::test]
async fn abrupt_drop_closes_the_other_side() {
    let relay = start(cfg()).await;
    let (mut phone, computer) = pair(&relay, T1).await;
    // Like libwebauthn: drop the TCP connection without a close frame.
    drop(computer);
    let (code, reason) = expect_close(&mut phone).await;
    assert_eq!((code, reason.as_str()), (1000, "peer disconnected"));

    let (phone, mut computer) = pair(&relay, T2).await;
    drop(phone);
    assert_eq!(expect_close(&mut computer).await.0, 1000);
    eventually(|| relay.metrics().closes(CloseReason::PeerDisconnected) == 2).await;
    eventually(|| relay.metrics().active() == 0).await;
}

#[tokio::test]
async fn phone_leaving_before_join_is_cleaned_up() {
    let relay = start(cfg()).await;
    let phone = new_tunnel(&relay, T1).await;
    eventually(|| relay.metrics().pending() == 1).await;
    drop(phone);
    eventually(|| relay.metrics().pending() == 0).await;
    assert_eq!(connect(&relay, T1).await.unwrap_err(), 404);
    assert_eq!(relay.metrics().closes(CloseReason::LeftBeforeJoin), 1);
    // The id can be used again.
    let _phone = new_tunnel(&relay, T1).await;
}

#[tokio::test]
async fn oversized_message_closes_with_1009() {
    let mut config = cfg();
    config.limits.max_message_size = 1000;
    let relay = start(config).await;
    let (mut phone, mut computer) = pair(&relay, T1).await;
    phone.send(Message::binary(vec![1u8; 1000])).await.unwrap();
    assert_eq!(recv_binary(&mut computer).await.len(), 1000);
    phone.send(Message::binary(vec![1u8; 1001])).await.unwrap();
    assert_eq!(expect_close(&mut phone).await.0, 1009);
    assert_eq!(expect_close(&mut computer).await.0, 1009);
    eventually(|| relay.metrics().closes(CloseReason::MessageTooBig) == 1).await;
}

#[tokio::test]
async fn message_count_per_direction_is_limited() {
    let mut config = cfg();
    config.limits.max_messages_per_direction = 3;
    let relay = start(config).await;
    let (mut phone, mut computer) = pair(&relay, T1).await;
    for i in 0..3u8 {
        phone.send(Message::binary(vec![i])).await.unwrap();
        assert_eq!(recv_binary(&mut computer).await, vec![i]);
        computer.send(Message::binary(vec![i])).await.unwrap();
        assert_eq!(recv_binary(&mut phone).await, vec![i]);
    }
    phone.send(Message::binary(vec![3])).await.unwrap();
    assert_eq!(
        expect_close(&mut phone).await,
        (1008, "message limit reached".into())
    );
    assert_eq!(expect_close(&mut computer).await.0, 1008);
    eventually(|| relay.metrics().closes(CloseReason::MessageLimit) == 1).await;
}

#[tokio::test]
async fn bytes_per_direction_are_limited() {
    let mut config = cfg();
    config.limits.max_bytes_per_direction = 1000;
    let relay = start(config).await;
    let (mut phone, mut computer) = pair(&relay, T1).await;
    // Up to the cap exactly, in each direction on its own.
    phone.send(Message::binary(vec![1u8; 600])).await.unwrap();
    assert_eq!(recv_binary(&mut computer).await.len(), 600);
    computer
        .send(Message::binary(vec![2u8; 1000]))
        .await
        .unwrap();
    assert_eq!(recv_binary(&mut phone).await.len(), 1000);
    phone.send(Message::binary(vec![1u8; 400])).await.unwrap();
    assert_eq!(recv_binary(&mut computer).await.len(), 400);
    // One byte more closes both sides.
    phone.send(Message::binary(vec![1u8])).await.unwrap();
    assert_eq!(
        expect_close(&mut phone).await,
        (1008, "byte limit reached".into())
    );
    assert_eq!(expect_close(&mut computer).await.0, 1008);
    eventually(|| relay.metrics().closes(CloseReason::ByteLimit) == 1).await;
}

#[tokio::test]
async fn idle_tunnel_is_closed_and_traffic_keeps_it_open() {
    let mut config = cfg();
    config.limits.idle_timeout = Duration::from_secs(1);
    let relay = start(config).await;
    let (mut phone, mut computer) = pair(&relay, T1).await;
    // Messages every 100 ms, either way, for well past the idle timeout.
    let started = tokio::time::Instant::now();
    for i in 0..16u8 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if i % 2 == 0 {
            phone.send(Message::binary(vec![i])).await.unwrap();
            assert_eq!(recv_binary(&mut computer).await, vec![i]);
        } else {
            computer.send(Message::binary(vec![i])).await.unwrap();
            assert_eq!(recv_binary(&mut phone).await, vec![i]);
        }
    }
    assert!(started.elapsed() > Duration::from_millis(1500));
    // Then silence.
    let silent = tokio::time::Instant::now();
    assert_eq!(expect_close(&mut phone).await, (1008, "tunnel idle".into()));
    assert_eq!(expect_close(&mut computer).await.0, 1008);
    assert!(
        silent.elapsed() >= Duration::from_millis(900),
        "{:?}",
        silent.elapsed()
    );
    eventually(|| relay.metrics().closes(CloseReason::IdleTimeout) == 1).await;
}

#[tokio::test]
async fn tunnel_lifetime_is_enforced() {
    let mut config = cfg();
    config.limits.tunnel_lifetime = Duration::from_millis(300);
    let relay = start(config).await;
    let (mut phone, mut computer) = pair(&relay, T1).await;
    phone.send(Message::binary(vec![1])).await.unwrap();
    assert_eq!(recv_binary(&mut computer).await, vec![1]);
    let started = tokio::time::Instant::now();
    assert_eq!(
        expect_close(&mut phone).await,
        (1008, "tunnel lifetime exceeded".into())
    );
    assert_eq!(expect_close(&mut computer).await.0, 1008);
    assert!(started.elapsed() < Duration::from_secs(2));
    eventually(|| relay.metrics().closes(CloseReason::LifetimeExceeded) == 1).await;
}

#[tokio::test]
async fn unjoined_tunnel_expires() {
    let mut config = cfg();
    config.limits.unjoined_timeout = Duration::from_millis(200);
    let relay = start(config).await;
    let mut phone = new_tunnel(&relay, T1).await;
    assert_eq!(
        expect_close(&mut phone).await,
        (1008, "no peer joined in time".into())
    );
    eventually(|| relay.metrics().pending() == 0).await;
    assert_eq!(connect(&relay, T1).await.unwrap_err(), 404);
    eventually(|| relay.metrics().closes(CloseReason::UnjoinedExpired) == 1).await;
}

#[tokio::test]
async fn pending_tunnels_are_limited() {
    let mut config = cfg();
    config.limits.max_pending_tunnels = 2;
    let relay = start(config).await;
    let _a = new_tunnel(&relay, T1).await;
    let _b = new_tunnel(&relay, T2).await;
    let t3 = "0123456789abcdef0123456789abcdef";
    assert_eq!(
        open(
            relay.local_addr(),
            &format!("/cable/new/{t3}"),
            Some(SUBPROTOCOL)
        )
        .await
        .unwrap_err(),
        503
    );
    // Joining frees a pending slot.
    let _c = connect(&relay, T1).await.unwrap();
    eventually(|| relay.metrics().pending() == 1).await;
    let _d = new_tunnel(&relay, t3).await;
    assert_eq!(relay.metrics().rejects(RejectReason::PendingLimit), 1);
}

#[tokio::test]
async fn connections_are_limited() {
    let mut config = cfg();
    config.limits.max_connections = 2;
    let relay = start(config).await;
    let (_p, _c) = pair(&relay, T1).await;
    assert_eq!(
        open(
            relay.local_addr(),
            &format!("/cable/new/{T2}"),
            Some(SUBPROTOCOL)
        )
        .await
        .unwrap_err(),
        503
    );
    assert_eq!(relay.metrics().rejects(RejectReason::ConnectionLimit), 1);
}

#[tokio::test]
async fn new_and_connect_are_rate_limited_per_source() {
    let mut config = cfg();
    config.limits.rate_limit_per_second = 0.001;
    config.limits.rate_limit_burst = 2;
    let relay = start(config).await;
    let _p = new_tunnel(&relay, T1).await;
    let _c = connect(&relay, T1).await.unwrap();
    assert_eq!(
        open(
            relay.local_addr(),
            &format!("/cable/new/{T2}"),
            Some(SUBPROTOCOL)
        )
        .await
        .unwrap_err(),
        429
    );
    assert_eq!(connect(&relay, T2).await.unwrap_err(), 429);
    assert_eq!(relay.metrics().rejects(RejectReason::RateLimited), 2);
}

#[tokio::test]
async fn slow_request_heads_are_cut_off() {
    let mut config = cfg();
    config.limits.handshake_timeout = Duration::from_millis(200);
    let relay = start(config).await;
    let mut tcp = TcpStream::connect(relay.local_addr()).await.unwrap();
    tcp.write_all(b"GET /cable/new/").await.unwrap();
    let started = tokio::time::Instant::now();
    let mut buf = [0u8; 64];
    // The relay closes the connection without answering.
    let n = tokio::time::timeout(WAIT, tcp.read(&mut buf))
        .await
        .unwrap()
        .unwrap_or(0);
    assert_eq!(n, 0);
    assert!(started.elapsed() >= Duration::from_millis(150));
    eventually(|| relay.metrics().rejects(RejectReason::HandshakeTimeout) == 1).await;
}

#[tokio::test]
async fn oversized_request_head_is_431() {
    let relay = start(cfg()).await;
    let big = format!(
        "GET /cable/new/{T1} HTTP/1.1\r\nX-Filler: {}\r\n\r\n",
        "a".repeat(5000)
    );
    assert_eq!(raw_status(relay.local_addr(), &big).await, 431);
}

#[tokio::test]
async fn health_ready_and_metrics() {
    let relay = start(cfg()).await;
    let admin = relay.admin_addr().unwrap();
    assert_eq!(http_get(admin, "/healthz").await.0, 200);
    assert_eq!(http_get(admin, "/readyz").await.0, 200);
    assert_eq!(http_get(admin, "/nope").await.0, 404);
    let (mut phone, mut computer) = pair(&relay, T1).await;
    phone.send(Message::binary(vec![0u8; 42])).await.unwrap();
    recv_binary(&mut computer).await;
    let _ = open(relay.local_addr(), "/x", Some(SUBPROTOCOL)).await;
    let (code, body) = http_get(admin, "/metrics").await;
    assert_eq!(code, 200);
    for line in [
        "cable_relay_tunnels_created_total 1",
        "cable_relay_tunnels_joined_total 1",
        "cable_relay_tunnels_active 1",
        "cable_relay_tunnels_pending 0",
        "cable_relay_messages_relayed_total{direction=\"new_to_connect\"} 1",
        "cable_relay_bytes_relayed_total{direction=\"new_to_connect\"} 42",
        "cable_relay_rejects_total{reason=\"unknown_path\"} 1",
        "cable_relay_tunnels_closed_total{reason=\"peer_closed\"} 0",
        "cable_relay_tunnel_duration_seconds_count 0",
    ] {
        assert!(body.contains(line), "missing {line:?} in\n{body}");
    }
    // Never payload or tunnel ids.
    assert!(!body.to_lowercase().contains(T1));
}

#[tokio::test]
async fn drain_refuses_new_keeps_joins_and_live_tunnels_until_deadline() {
    let mut config = cfg();
    config.drain_timeout = Duration::from_millis(600);
    let relay = start(config).await;
    let admin = relay.admin_addr().unwrap();
    let (mut live_phone, mut live_computer) = pair(&relay, T1).await;
    let mut waiting_phone = new_tunnel(&relay, T2).await;

    relay.drain();
    let started = tokio::time::Instant::now();
    assert_eq!(http_get(admin, "/readyz").await.0, 503);
    assert_eq!(http_get(admin, "/healthz").await.0, 200);
    let t3 = "0123456789abcdef0123456789abcdef";
    assert_eq!(
        open(
            relay.local_addr(),
            &format!("/cable/new/{t3}"),
            Some(SUBPROTOCOL)
        )
        .await
        .unwrap_err(),
        503
    );
    // A join of a tunnel opened before the drain still works, and relays.
    let mut late_computer = connect(&relay, T2).await.unwrap();
    waiting_phone.send(Message::binary(vec![5])).await.unwrap();
    assert_eq!(recv_binary(&mut late_computer).await, vec![5]);
    // The live tunnel keeps relaying.
    live_computer.send(Message::binary(vec![6])).await.unwrap();
    assert_eq!(recv_binary(&mut live_phone).await, vec![6]);

    // At the deadline everything left is closed with 1001 and the relay exits.
    for ws in [
        &mut live_phone,
        &mut live_computer,
        &mut waiting_phone,
        &mut late_computer,
    ] {
        assert_eq!(expect_close(ws).await, (1001, "relay shutting down".into()));
    }
    assert!(started.elapsed() >= Duration::from_millis(500));
    assert_eq!(relay.metrics().rejects(RejectReason::Draining), 1);
    tokio::time::timeout(WAIT, relay.join())
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn drain_ends_early_when_tunnels_are_gone() {
    let mut config = cfg();
    config.drain_timeout = Duration::from_secs(60);
    let relay = start(config).await;
    let (mut phone, computer) = pair(&relay, T1).await;
    relay.drain();
    drop(computer);
    expect_close(&mut phone).await;
    tokio::time::timeout(WAIT, relay.join())
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn many_tunnels_concurrently() {
    let relay = start(cfg()).await;
    let mut tasks = Vec::new();
    for i in 0..100u32 {
        let addr = relay.local_addr();
        let rid = relay.routing_id().to_hex();
        tasks.push(tokio::spawn(async move {
            let id = format!("{i:032x}");
            let (mut phone, _) = open(addr, &format!("/cable/new/{id}"), Some(SUBPROTOCOL))
                .await
                .unwrap();
            let (mut computer, _) = open(
                addr,
                &format!("/cable/connect/{rid}/{id}"),
                Some(SUBPROTOCOL),
            )
            .await
            .unwrap();
            for j in 0..5u32 {
                phone
                    .send(Message::binary(vec![(i + j) as u8; 64]))
                    .await
                    .unwrap();
                assert_eq!(recv_binary(&mut computer).await, vec![(i + j) as u8; 64]);
                computer.send(Message::binary(vec![j as u8])).await.unwrap();
                assert_eq!(recv_binary(&mut phone).await, vec![j as u8]);
            }
            computer.close(None).await.unwrap();
            expect_close(&mut phone).await;
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    eventually(|| relay.metrics().closes(CloseReason::PeerClosed) == 100).await;
    eventually(|| relay.metrics().active() == 0).await;
}

#[tokio::test]
async fn expired_tunnel_id_can_be_reused_while_old_one_closes() {
    let mut config = cfg();
    config.limits.unjoined_timeout = Duration::from_millis(100);
    config.limits.close_timeout = Duration::from_millis(300);
    let relay = start(config).await;
    let mut old = new_tunnel(&relay, T1).await;
    // Reading the close frame but not answering it keeps the old tunnel's task in its close
    // handshake for the close timeout.
    assert_eq!(expect_close(&mut old).await.0, 1008);
    let (mut reused, mut computer) = pair(&relay, T1).await;
    // When the old task finishes it must not release the id the new tunnel holds.
    eventually(|| relay.metrics().closes(CloseReason::UnjoinedExpired) == 1).await;
    assert_eq!(
        open(
            relay.local_addr(),
            &format!("/cable/new/{T1}"),
            Some(SUBPROTOCOL)
        )
        .await
        .unwrap_err(),
        409
    );
    reused.send(Message::binary(vec![1])).await.unwrap();
    assert_eq!(recv_binary(&mut computer).await, vec![1]);
    drop(old);
}

#[tokio::test]
async fn tunnel_is_registered_before_the_101_is_read() {
    let relay = start(cfg()).await;
    let mut phone = TcpStream::connect(relay.local_addr()).await.unwrap();
    phone
        .write_all(
            format!(
                "GET /cable/new/{T1} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\
                 Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\
                 Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Protocol: {SUBPROTOCOL}\r\n\r\n"
            )
            .as_bytes(),
        )
        .await
        .unwrap();
    // Wait until the relay has taken the request, without reading its answer.
    eventually(|| relay.metrics().pending() == 1).await;
    let mut computer = connect(&relay, T1).await.unwrap();
    let mut head = vec![0u8; 1024];
    let n = phone.read(&mut head).await.unwrap();
    let head = String::from_utf8_lossy(&head[..n]).to_string();
    assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
    assert!(head.contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"));
    assert!(head.contains(&format!("{ROUTING_ID_HEADER}: ABCDEF\r\n")));
    let mut phone = WebSocketStream::from_raw_socket(
        phone,
        tokio_tungstenite::tungstenite::protocol::Role::Client,
        None,
    )
    .await;
    computer.send(Message::binary(vec![42])).await.unwrap();
    assert_eq!(recv_binary(&mut phone).await, vec![42]);
}

#[tokio::test]
async fn phone_close_frame_before_join_cleans_up() {
    let relay = start(cfg()).await;
    let mut phone = new_tunnel(&relay, T1).await;
    phone.close(None).await.unwrap();
    assert!(matches!(recv(&mut phone).await, Message::Close(_)));
    eventually(|| relay.metrics().closes(CloseReason::LeftBeforeJoin) == 1).await;
    assert_eq!(relay.metrics().pending(), 0);
    assert_eq!(connect(&relay, T1).await.unwrap_err(), 404);
}

#[tokio::test]
async fn http_1_0_is_refused() {
    let relay = start(cfg()).await;
    let req = format!(
        "GET /cable/new/{T1} HTTP/1.0\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Sec-WebSocket-Protocol: {SUBPROTOCOL}\r\n\r\n"
    );
    assert_eq!(raw_status(relay.local_addr(), &req).await, 400);
    assert_eq!(relay.metrics().pending(), 0);
}
