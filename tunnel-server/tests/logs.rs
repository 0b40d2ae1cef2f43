//! One info line per tunnel lifetime, naming the tunnel only by a short hash, never payloads.
#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::sync::{Arc, Mutex};

use cable_tunnel_server::{Relay, RelayConfig, TunnelId, SUBPROTOCOL};
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message;

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn one_info_line_per_tunnel_without_ids_or_payloads() {
    let capture = Capture::default();
    let writer = capture.clone();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_max_level(tracing::Level::INFO)
        .with_writer(move || writer.clone())
        .finish();
    // The test runtime is single-threaded, so the relay's tasks log through this subscriber.
    let _guard = tracing::subscriber::set_default(subscriber);

    let relay = Relay::bind(RelayConfig::default()).await.unwrap();
    let tunnel = "a0a1a2a3a4a5a6a7a8a9aaabacadaeaf";
    let open = |path: String| {
        let addr = relay.local_addr();
        async move {
            let mut req = format!("ws://{addr}{path}").into_client_request().unwrap();
            req.headers_mut().insert(
                "Sec-WebSocket-Protocol",
                HeaderValue::from_static(SUBPROTOCOL),
            );
            let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
            tokio_tungstenite::client_async(req, tcp).await.unwrap().0
        }
    };
    let mut phone = open(format!("/cable/new/{tunnel}")).await;
    let mut computer = open(format!("/cable/connect/000000/{tunnel}")).await;
    phone
        .send(Message::binary(b"SECRETPAYLOAD".to_vec()))
        .await
        .unwrap();
    computer.next().await.unwrap().unwrap();
    computer.close(None).await.unwrap();
    while let Some(Ok(_)) = phone.next().await {}
    relay.shutdown().await.unwrap();

    let logs = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    let lines: Vec<_> = logs
        .lines()
        .filter(|l| l.contains("tunnel closed"))
        .collect();
    assert_eq!(lines.len(), 1, "{logs}");
    let line: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
    assert_eq!(line["level"], "INFO");
    assert_eq!(line["fields"]["reason"], "peer_closed");
    assert_eq!(line["fields"]["joined"], true);
    assert_eq!(line["fields"]["bytes_new_to_connect"], 13);
    let hash = TunnelId::from_hex(tunnel).unwrap().short_hash().to_string();
    assert!(lines[0].contains(&hash));
    let lower = logs.to_lowercase();
    assert!(!lower.contains(tunnel));
    assert!(!logs.contains("SECRETPAYLOAD"));
    assert!(!logs.contains("83, 69, 67")); // the payload as a byte list
}

#[tokio::test]
async fn a_refused_path_is_logged_by_its_problem_not_its_id() {
    let capture = Capture::default();
    let writer = capture.clone();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_max_level(tracing::Level::DEBUG)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let relay = Relay::bind(RelayConfig::default()).await.unwrap();
    // One character short of a tunnel id, then one that is not hex.
    let almost = "a0a1a2a3a4a5a6a7a8a9aaabacadaea";
    let mut tcp = tokio::net::TcpStream::connect(relay.local_addr())
        .await
        .unwrap();
    let request = format!(
        "GET /cable/connect/000000/{almost}z HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Protocol: {SUBPROTOCOL}\r\n\r\n"
    );
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    tcp.read_to_end(&mut answer).await.unwrap();
    relay.shutdown().await.unwrap();

    let logs = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    let line = logs
        .lines()
        .find(|l| l.contains("request refused"))
        .unwrap_or_else(|| panic!("{logs}"));
    let line: serde_json::Value = serde_json::from_str(line).unwrap();
    assert_eq!(line["fields"]["reason"], "unknown_path");
    assert_eq!(
        line["fields"]["problem"],
        "tunnel id: invalid hex character at position 31"
    );
    assert!(!logs.to_lowercase().contains(almost), "{logs}");
}
