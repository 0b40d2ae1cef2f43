//! In-process TLS (rustls from PEM files) with a real WebSocket client.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use cable_tunnel_server::{server_config_from_pem, Relay, RelayConfig, RelayError, SUBPROTOCOL};
use futures_util::{SinkExt, StreamExt};
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

fn temp_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "cable-relay-tls-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A TLS client (ring, TLS 1.2/1.3) trusting exactly `roots`.
fn connector(roots: &[rustls::pki_types::CertificateDer<'static>]) -> tokio_rustls::TlsConnector {
    let mut store = rustls::RootCertStore::empty();
    for root in roots {
        store.add(root.clone()).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(store)
    .with_no_client_auth();
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

/// A self-signed certificate for `localhost`, written as PEM into `dir`: the certificate
/// and its certificate and key paths.
fn localhost_pem(dir: &Path) -> (rcgen::CertifiedKey, PathBuf, PathBuf) {
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let cert_path = dir.join("cert.pem");
    let key_path = dir.join("key.pem");
    std::fs::write(&cert_path, certified.cert.pem()).unwrap();
    std::fs::write(&key_path, certified.key_pair.serialize_pem()).unwrap();
    (certified, cert_path, key_path)
}

/// TLS to `localhost` over `tcp`, then a WebSocket upgrade on `path` offering the caBLE
/// subprotocol.
async fn upgrade(
    connector: &tokio_rustls::TlsConnector,
    tcp: TcpStream,
    port: u16,
    path: &str,
) -> Result<
    (
        WebSocketStream<tokio_rustls::client::TlsStream<TcpStream>>,
        tokio_tungstenite::tungstenite::handshake::client::Response,
    ),
    tokio_tungstenite::tungstenite::Error,
> {
    let tls = connector
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap();
    let mut req = format!("wss://localhost:{port}{path}")
        .into_client_request()
        .unwrap();
    req.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        HeaderValue::from_static(SUBPROTOCOL),
    );
    tokio_tungstenite::client_async(req, tls).await
}

#[tokio::test]
async fn relays_over_tls() {
    let dir = temp_dir();
    let (certified, cert_path, key_path) = localhost_pem(&dir);

    let relay = Relay::bind({
        let mut config = RelayConfig::default();
        config.tls = Some(server_config_from_pem(&cert_path, &key_path).unwrap());
        config
    })
    .await
    .unwrap();
    assert!(relay.url().starts_with("wss://"));

    let connector = connector(&[certified.cert.der().clone()]);

    let port = relay.local_addr().port();
    let open = |path: String| {
        let connector = connector.clone();
        async move {
            let tcp = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
            upgrade(&connector, tcp, port, &path).await.unwrap()
        }
    };
    let tunnel = "0123456789ABCDEF0123456789ABCDEF";
    let (mut phone, resp) = open(format!("/cable/new/{tunnel}")).await;
    assert_eq!(resp.headers()["x-cable-routing-id"], "000000");
    let (mut computer, _) = open(format!("/cable/connect/000000/{tunnel}")).await;
    phone.send(Message::binary(vec![1, 2, 3])).await.unwrap();
    assert_eq!(
        computer.next().await.unwrap().unwrap(),
        Message::binary(vec![1, 2, 3])
    );
    computer.send(Message::binary(vec![4])).await.unwrap();
    assert_eq!(
        phone.next().await.unwrap().unwrap(),
        Message::binary(vec![4])
    );

    // A client that does not speak TLS is refused without a tunnel.
    let plain = tokio_tungstenite::client_async(
        format!("ws://127.0.0.1:{port}/cable/new/{tunnel}"),
        TcpStream::connect(("127.0.0.1", port)).await.unwrap(),
    )
    .await;
    assert!(plain.is_err());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn pem_errors_are_typed() {
    let dir = temp_dir();
    let missing = dir.join("missing.pem");
    assert!(matches!(
        server_config_from_pem(&missing, &missing),
        Err(RelayError::ReadFile { .. })
    ));
    let empty = dir.join("empty.pem");
    std::fs::write(&empty, "").unwrap();
    assert!(matches!(
        server_config_from_pem(&empty, &empty),
        Err(RelayError::NoCertificate { .. })
    ));
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let cert = dir.join("cert.pem");
    std::fs::write(&cert, certified.cert.pem()).unwrap();
    assert!(matches!(
        server_config_from_pem(&cert, &cert),
        Err(RelayError::NoPrivateKey { .. })
    ));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A renewed certificate swapped in under a live relay: new connections get it, a tunnel
/// opened before keeps working, a pair that does not load changes nothing, and a relay
/// without TLS refuses to start serving it.
#[tokio::test]
async fn certificates_swap_under_a_live_relay() {
    let dir = temp_dir().join("swap");
    std::fs::create_dir_all(&dir).unwrap();
    let pair = |name: &str| {
        let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
        let cert = dir.join(format!("{name}-cert.pem"));
        let key = dir.join(format!("{name}-key.pem"));
        std::fs::write(&cert, certified.cert.pem()).unwrap();
        std::fs::write(&key, certified.key_pair.serialize_pem()).unwrap();
        (certified.cert.der().clone(), cert, key)
    };
    let (old_der, old_cert, old_key) = pair("old");
    let (new_der, new_cert, new_key) = pair("new");

    let relay = Relay::bind({
        let mut config = RelayConfig::default();
        config.tls = Some(server_config_from_pem(&old_cert, &old_key).unwrap());
        config
    })
    .await
    .unwrap();
    let connector = connector(&[old_der.clone(), new_der.clone()]);
    let port = relay.local_addr().port();
    // Opens a WebSocket on `path` and says which certificate the relay presented.
    let open = |path: String| {
        let connector = connector.clone();
        async move {
            let tcp = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
            let tls = connector
                .connect(ServerName::try_from("localhost").unwrap(), tcp)
                .await
                .unwrap();
            let presented = tls.get_ref().1.peer_certificates().unwrap()[0].clone();
            let mut req = format!("wss://localhost:{port}{path}")
                .into_client_request()
                .unwrap();
            req.headers_mut().insert(
                "Sec-WebSocket-Protocol",
                HeaderValue::from_static(SUBPROTOCOL),
            );
            let (ws, _) = tokio_tungstenite::client_async(req, tls).await.unwrap();
            (ws, presented)
        }
    };

    let tunnel = "00112233445566778899AABBCCDDEEFF";
    let (mut phone, presented) = open(format!("/cable/new/{tunnel}")).await;
    assert_eq!(presented, old_der);

    // The key of one pair with the certificate of the other does not load: nothing changes.
    assert!(server_config_from_pem(&new_cert, &old_key).is_err());
    relay.handle().reload_tls_refused();

    relay
        .handle()
        .reload_tls(server_config_from_pem(&new_cert, &new_key).unwrap())
        .unwrap();
    let (mut computer, presented) = open(format!("/cable/connect/000000/{tunnel}")).await;
    assert_eq!(
        presented, new_der,
        "a connection after the reload gets the new one"
    );
    phone.send(Message::binary(vec![7])).await.unwrap();
    assert_eq!(
        computer.next().await.unwrap().unwrap(),
        Message::binary(vec![7]),
        "the tunnel opened under the old certificate still relays"
    );
    assert_eq!(relay.metrics().tls_reloads(true), 1);
    assert_eq!(relay.metrics().tls_reloads(false), 1);

    let plain = Relay::bind(RelayConfig::default()).await.unwrap();
    assert!(matches!(
        plain
            .handle()
            .reload_tls(server_config_from_pem(&new_cert, &new_key).unwrap()),
        Err(RelayError::TlsNotEnabled)
    ));
    let _ = std::fs::remove_dir_all(&dir);
}

/// Behind a TCP balancer that passes TLS through (HAProxy `mode tcp` with `send-proxy-v2`),
/// the PROXY header comes before the TLS handshake: the relay reads it, then terminates
/// TLS, and the per-client rate limit keys on the address the header names.
#[tokio::test]
async fn a_proxy_header_before_the_tls_handshake_names_the_client() {
    let dir = temp_dir().join("proxied");
    std::fs::create_dir_all(&dir).unwrap();
    let (certified, cert_path, key_path) = localhost_pem(&dir);
    let relay = Relay::bind({
        let mut config = RelayConfig::default();
        config.tls = Some(server_config_from_pem(&cert_path, &key_path).unwrap());
        config.client_addresses.proxy_protocol = true;
        config.client_addresses.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
        // Two tunnels per client, then 429.
        config.limits.rate_limit_per_second = 0.001;
        config.limits.rate_limit_burst = 2;
        config
    })
    .await
    .unwrap();
    let connector = connector(&[certified.cert.der().clone()]);
    let port = relay.local_addr().port();
    // A WebSocket on `path` through a connection that starts with a PROXY header naming
    // `client`: the upgrade's status, and the socket if upgraded.
    let open = |client: &'static str, path: String| {
        let connector = connector.clone();
        async move {
            let mut tcp = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
            tokio::io::AsyncWriteExt::write_all(
                &mut tcp,
                format!("PROXY TCP4 {client} 127.0.0.1 40000 443\r\n").as_bytes(),
            )
            .await
            .unwrap();
            match upgrade(&connector, tcp, port, &path).await {
                Ok((socket, response)) => (response.status().as_u16(), Some(socket)),
                Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
                    (response.status().as_u16(), None)
                }
                Err(e) => panic!("{e}"),
            }
        }
    };
    let next = std::sync::atomic::AtomicU32::new(1);
    let new_tunnel = |client: &'static str| {
        let tunnel = format!(
            "{:032x}",
            next.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        );
        let path = format!("/cable/new/{tunnel}");
        let opened = open(client, path);
        async move {
            let (status, socket) = opened.await;
            (status, socket.map(|s| (s, tunnel)))
        }
    };
    let (status, first) = new_tunnel("192.0.2.1").await;
    assert_eq!(status, 101);
    assert_eq!(new_tunnel("192.0.2.1").await.0, 101);
    assert_eq!(new_tunnel("192.0.2.1").await.0, 429);
    // Another client behind the same balancer has its own budget.
    assert_eq!(new_tunnel("198.51.100.9").await.0, 101);

    // And a tunnel opened that way relays.
    let (mut phone, tunnel) = first.unwrap();
    let (_, computer) = open("203.0.113.5", format!("/cable/connect/000000/{tunnel}")).await;
    let mut computer = computer.unwrap();
    phone.send(Message::binary(vec![7, 7])).await.unwrap();
    assert_eq!(
        computer.next().await.unwrap().unwrap(),
        Message::binary(vec![7, 7])
    );
    let m = relay.metrics().encode();
    assert!(
        m.contains("cable_relay_client_addresses_total{source=\"proxy_protocol\"} 5"),
        "{m}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
