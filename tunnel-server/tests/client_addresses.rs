//! Client addresses behind a balancer: a fake proxy on 127.0.0.1 writes a PROXY header (or a
//! forwarded header) and then a normal WebSocket upgrade, and the per-source rate limit must
//! key on the address the header names, only when the proxy is trusted.
#![allow(clippy::unwrap_used)]

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use cable_tunnel_server::{
    AddressSource, ForwardedHeader, ProxyRefusal, RejectReason, Relay, RelayConfig, RunningRelay,
    SUBPROTOCOL,
};
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message;

const WAIT: Duration = Duration::from_secs(5);

/// Two requests per source, then 429 (no refill within a test).
fn limited(trusted: &[&str]) -> RelayConfig {
    let mut config = RelayConfig::default();
    config.limits.rate_limit_per_second = 0.001;
    config.limits.rate_limit_burst = 2;
    config.client_addresses.trusted_proxies = trusted.iter().map(|t| t.parse().unwrap()).collect();
    config
}

fn proxied(trusted: &[&str]) -> RelayConfig {
    let mut config = limited(trusted);
    config.client_addresses.proxy_protocol = true;
    config
}

/// A fresh tunnel id for every request of the test binary.
fn tunnel_id() -> String {
    static NEXT: AtomicU32 = AtomicU32::new(1);
    format!("{:032x}", NEXT.fetch_add(1, Ordering::Relaxed))
}

fn upgrade(extra: &str) -> String {
    format!(
        "GET /cable/new/{} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Sec-WebSocket-Protocol: {SUBPROTOCOL}\r\n{extra}\r\n",
        tunnel_id()
    )
}

fn v1(source: &str) -> Vec<u8> {
    format!("PROXY TCP4 {source} 127.0.0.1 40000 8080\r\n").into_bytes()
}

fn v2_inet(source: [u8; 4]) -> Vec<u8> {
    let mut out = b"\r\n\r\n\0\r\nQUIT\n\x21\x11\x00\x0c".to_vec();
    out.extend_from_slice(&source);
    out.extend_from_slice(&[127, 0, 0, 1, 0x9c, 0x40, 0x1f, 0x90]);
    out
}

fn v2_inet6(source: std::net::Ipv6Addr) -> Vec<u8> {
    // Addresses, ports, then a TLV (PP2_TYPE_ALPN) the relay must skip.
    let mut payload = source.octets().to_vec();
    payload.extend_from_slice(&std::net::Ipv6Addr::LOCALHOST.octets());
    payload.extend_from_slice(&[0x9c, 0x40, 0x1f, 0x90, 0x01, 0x00, 0x02, b'h', b'2']);
    let mut out = b"\r\n\r\n\0\r\nQUIT\n\x21\x21".to_vec();
    out.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    out.extend_from_slice(&payload);
    out
}

/// `v2 LOCAL`: a balancer's own connection (health check).
fn v2_local() -> Vec<u8> {
    b"\r\n\r\n\0\r\nQUIT\n\x20\x00\x00\x00".to_vec()
}

/// Sends `prefix` and `request` in one write, as a proxy forwarding a client's first bytes
/// together with its header would; returns the HTTP status (0: closed without an answer).
async fn status(relay: &RunningRelay, prefix: &[u8], request: &str) -> u16 {
    let mut tcp = TcpStream::connect(relay.local_addr()).await.unwrap();
    let mut bytes = prefix.to_vec();
    bytes.extend_from_slice(request.as_bytes());
    // The relay may close a refused connection before reading it all.
    let _ = tcp.write_all(&bytes).await;
    read_status(&mut tcp).await
}

async fn read_status(tcp: &mut TcpStream) -> u16 {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 512];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        match tokio::time::timeout(WAIT, tcp.read(&mut chunk)).await {
            Ok(Ok(n)) if n > 0 => buf.extend_from_slice(&chunk[..n]),
            Ok(_) => break,
            Err(_) => panic!("no answer and no close"),
        }
    }
    let text = String::from_utf8_lossy(&buf);
    text.split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

#[tokio::test]
async fn the_rate_limit_keys_on_the_proxy_headers_address() {
    let relay = Relay::bind(proxied(&["127.0.0.1/32"])).await.unwrap();
    let a = v2_inet([192, 0, 2, 1]);
    assert_eq!(status(&relay, &a, &upgrade("")).await, 101);
    // Version 1 naming the same client shares its bucket.
    assert_eq!(status(&relay, &v1("192.0.2.1"), &upgrade("")).await, 101);
    assert_eq!(status(&relay, &a, &upgrade("")).await, 429);
    // Another client behind the same proxy is not limited by the first.
    assert_eq!(
        status(&relay, &v2_inet([192, 0, 2, 2]), &upgrade("")).await,
        101
    );
    assert_eq!(status(&relay, &v1("198.51.100.9"), &upgrade("")).await, 101);
    let six: std::net::Ipv6Addr = "2001:db8::1".parse().unwrap();
    assert_eq!(status(&relay, &v2_inet6(six), &upgrade("")).await, 101);
    assert_eq!(status(&relay, &v2_inet6(six), &upgrade("")).await, 101);
    // The same /64.
    let neighbour: std::net::Ipv6Addr = "2001:db8::2".parse().unwrap();
    assert_eq!(
        status(&relay, &v2_inet6(neighbour), &upgrade("")).await,
        429
    );

    let m = relay.metrics();
    assert_eq!(m.rejects(RejectReason::RateLimited), 2);
    assert_eq!(m.client_addresses(AddressSource::ProxyProtocol), 8);
    assert_eq!(m.client_addresses(AddressSource::Socket), 0);
    let text = m.encode();
    assert!(
        text.contains("cable_relay_client_addresses_total{source=\"proxy_protocol\"} 8"),
        "{text}"
    );
}

/// A tunnel through a header-prefixed connection relays like any other: the WebSocket
/// bytes after the header were left for the WebSocket layer.
#[tokio::test]
async fn a_tunnel_works_through_the_proxy_header() {
    let relay = Relay::bind(proxied(&["127.0.0.0/8"])).await.unwrap();
    let tid = tunnel_id();
    let ws = |path: String, header: Vec<u8>| {
        let addr = relay.local_addr();
        async move {
            let mut tcp = TcpStream::connect(addr).await.unwrap();
            tcp.write_all(&header).await.unwrap();
            let mut req = format!("ws://{addr}{path}").into_client_request().unwrap();
            req.headers_mut().insert(
                "Sec-WebSocket-Protocol",
                HeaderValue::from_static(SUBPROTOCOL),
            );
            tokio_tungstenite::client_async(req, tcp).await.unwrap().0
        }
    };
    let mut phone = ws(format!("/cable/new/{tid}"), v1("203.0.113.5")).await;
    let rid = relay.routing_id().to_hex();
    let mut computer = ws(format!("/cable/connect/{rid}/{tid}"), v2_local()).await;
    computer
        .send(Message::binary(b"hello".to_vec()))
        .await
        .unwrap();
    let got = tokio::time::timeout(WAIT, phone.next()).await.unwrap();
    assert_eq!(got.unwrap().unwrap().into_data().as_ref(), b"hello");
    // LOCAL: the connection is the proxy's own, keyed on its socket address.
    assert_eq!(relay.metrics().client_addresses(AddressSource::Socket), 1);
    assert_eq!(
        relay
            .metrics()
            .client_addresses(AddressSource::ProxyProtocol),
        1
    );
}

#[tokio::test]
async fn an_untrusted_peers_header_is_refused() {
    let relay = Relay::bind(proxied(&["10.0.0.0/8", "::1/128"]))
        .await
        .unwrap();
    assert_eq!(
        status(&relay, &v2_inet([192, 0, 2, 1]), &upgrade("")).await,
        0
    );
    assert_eq!(status(&relay, &v1("192.0.2.1"), &upgrade("")).await, 0);
    let m = relay.metrics();
    assert_eq!(m.proxy_headers_refused(ProxyRefusal::UntrustedPeer), 2);
    assert_eq!(m.rejects(RejectReason::ProxyHeader), 2);
    assert_eq!(m.client_addresses(AddressSource::ProxyProtocol), 0);
    assert!(m
        .encode()
        .contains("cable_relay_proxy_headers_refused_total{reason=\"untrusted_peer\"} 2"));
}

#[tokio::test]
async fn a_trusted_peer_must_send_a_valid_header() {
    let relay = Relay::bind(proxied(&["127.0.0.1/32"])).await.unwrap();
    // A client that bypasses the balancer.
    assert_eq!(status(&relay, b"", &upgrade("")).await, 0);
    assert_eq!(
        status(
            &relay,
            b"PROXY TCP4 192.0.2.1 nowhere 1 2\r\n",
            &upgrade("")
        )
        .await,
        0
    );
    let mut oversized = b"\r\n\r\n\0\r\nQUIT\n\x21\x11\xff\xff".to_vec();
    oversized.resize(64, 0);
    assert_eq!(status(&relay, &oversized, &upgrade("")).await, 0);
    assert_eq!(
        status(
            &relay,
            b"\r\n\r\n\0\r\nQUIT\n\x21\x41\x00\x00",
            &upgrade("")
        )
        .await,
        0
    );
    let m = relay.metrics();
    assert_eq!(m.proxy_headers_refused(ProxyRefusal::NoHeader), 1);
    assert_eq!(m.proxy_headers_refused(ProxyRefusal::Malformed), 1);
    assert_eq!(m.proxy_headers_refused(ProxyRefusal::TooLong), 1);
    assert_eq!(m.proxy_headers_refused(ProxyRefusal::Unsupported), 1);
    assert_eq!(m.rejects(RejectReason::ProxyHeader), 4);
}

#[tokio::test]
async fn a_slow_proxy_header_is_cut_off_at_the_handshake_timeout() {
    let mut config = proxied(&["127.0.0.1/32"]);
    config.limits.handshake_timeout = Duration::from_millis(200);
    let relay = Relay::bind(config).await.unwrap();
    let mut tcp = TcpStream::connect(relay.local_addr()).await.unwrap();
    tcp.write_all(b"PROXY TCP4 192.0.2.1").await.unwrap();
    let started = tokio::time::Instant::now();
    assert_eq!(read_status(&mut tcp).await, 0);
    assert!(started.elapsed() >= Duration::from_millis(150));
    let m = relay.metrics();
    let deadline = tokio::time::Instant::now() + WAIT;
    while m.proxy_headers_refused(ProxyRefusal::Timeout) == 0 {
        assert!(tokio::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(m.rejects(RejectReason::ProxyHeader), 1);
    assert_eq!(m.rejects(RejectReason::HandshakeTimeout), 0);
}

#[tokio::test]
async fn x_forwarded_for_from_a_trusted_proxy_keys_the_rate_limit() {
    let relay = Relay::bind(limited(&["127.0.0.1/32"])).await.unwrap();
    let xff = |v: &str| upgrade(&format!("X-Forwarded-For: {v}\r\n"));
    assert_eq!(status(&relay, b"", &xff("192.0.2.1")).await, 101);
    // A client's forged entry on the left changes nothing: the proxy's is the rightmost.
    assert_eq!(status(&relay, b"", &xff("10.9.9.9, 192.0.2.1")).await, 101);
    assert_eq!(status(&relay, b"", &xff("192.0.2.1")).await, 429);
    assert_eq!(status(&relay, b"", &xff("192.0.2.2")).await, 101);
    // Trusted hops on the right are skipped.
    assert_eq!(status(&relay, b"", &xff("192.0.2.2, 127.0.0.1")).await, 101);
    assert_eq!(status(&relay, b"", &xff("192.0.2.2")).await, 429);
    // No header: the proxy itself.
    assert_eq!(status(&relay, b"", &upgrade("")).await, 101);
    let m = relay.metrics();
    assert_eq!(m.client_addresses(AddressSource::ForwardedHeader), 6);
    assert_eq!(m.client_addresses(AddressSource::Socket), 1);
    assert_eq!(m.rejects(RejectReason::RateLimited), 2);
}

#[tokio::test]
async fn an_untrusted_peers_forwarded_header_is_ignored() {
    let relay = Relay::bind(limited(&["10.0.0.0/8"])).await.unwrap();
    let xff = |v: &str| upgrade(&format!("X-Forwarded-For: {v}\r\n"));
    assert_eq!(status(&relay, b"", &xff("192.0.2.1")).await, 101);
    assert_eq!(status(&relay, b"", &xff("192.0.2.2")).await, 101);
    // Both counted against 127.0.0.1, whatever they claimed.
    assert_eq!(status(&relay, b"", &xff("192.0.2.3")).await, 429);
    let m = relay.metrics();
    assert_eq!(m.client_addresses(AddressSource::ForwardedHeader), 0);
    assert_eq!(m.client_addresses(AddressSource::Socket), 3);
}

#[tokio::test]
async fn the_forwarded_header_when_chosen_and_only_then() {
    let mut config = limited(&["127.0.0.1/32"]);
    config.client_addresses.forwarded_header = ForwardedHeader::Forwarded;
    let relay = Relay::bind(config).await.unwrap();
    let fwd = |v: &str| upgrade(&format!("Forwarded: {v}\r\n"));
    assert_eq!(
        status(&relay, b"", &fwd("for=192.0.2.1;proto=https")).await,
        101
    );
    assert_eq!(
        status(&relay, b"", &fwd("for=\"192.0.2.1:4711\"")).await,
        101
    );
    assert_eq!(status(&relay, b"", &fwd("for=192.0.2.1")).await, 429);
    // X-Forwarded-For is not the chosen header: a client could have sent it.
    let xff = upgrade("X-Forwarded-For: 192.0.2.7\r\n");
    assert_eq!(status(&relay, b"", &xff).await, 101);
    assert_eq!(status(&relay, b"", &xff).await, 101);
    assert_eq!(status(&relay, b"", &xff).await, 429);
    assert_eq!(
        relay
            .metrics()
            .client_addresses(AddressSource::ForwardedHeader),
        3
    );
}

/// With the PROXY protocol on, a forwarded header inside the connection changes nothing.
#[tokio::test]
async fn a_proxy_header_wins_over_forwarded_headers() {
    let relay = Relay::bind(proxied(&["127.0.0.1/32"])).await.unwrap();
    let a = v2_inet([192, 0, 2, 1]);
    for forged in ["198.51.100.1", "198.51.100.2"] {
        let req = upgrade(&format!("X-Forwarded-For: {forged}\r\n"));
        assert_eq!(status(&relay, &a, &req).await, 101);
    }
    assert_eq!(status(&relay, &a, &upgrade("")).await, 429);
}

#[tokio::test]
async fn proxy_protocol_needs_a_trusted_network() {
    let mut config = RelayConfig::default();
    config.client_addresses.proxy_protocol = true;
    let e = Relay::bind(config).await.unwrap_err();
    assert!(e.to_string().contains("proxy-protocol"), "{e}");
}
