//! Tunnel connections against scripted WebSocket servers on loopback.

#![allow(clippy::unwrap_used, clippy::result_large_err)]

mod support;

use std::time::Duration;

use cable_proto::ids::{RoutingId, TunnelId};
use cable_transport::{
    Connector, Operation, RelayUrl, RoutingIdProblem, TransportError, MAX_MESSAGE_SIZE,
    SIGNAL_CONNECTION_HEADER, SUBPROTOCOL,
};
use futures_util::{SinkExt, StreamExt};
use support::{cable_upgrade, refuse, serve, serve_tls, tls_fixture, Upgrade};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;

const TUNNEL: TunnelId = TunnelId::from_bytes([
    0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0, 1, 2, 3, 4, 5, 6, 0xff,
]);

fn soon() -> Instant {
    Instant::now() + Duration::from_secs(5)
}

fn relay(addr: std::net::SocketAddr) -> RelayUrl {
    RelayUrl::parse(&format!("ws://{addr}")).unwrap()
}

async fn open_new(
    upgrade: Upgrade,
) -> Result<(cable_transport::TunnelConnection, RoutingId), TransportError> {
    let server = serve(upgrade, |_ws| async {}).await;
    Connector::new()
        .unwrap()
        .open_new_tunnel(&relay(server.addr), &TUNNEL, soon())
        .await
}

#[tokio::test]
async fn phone_opens_new_tunnel_and_reads_routing_id() {
    let server = serve(cable_upgrade(&["a1B2c3"]), |mut ws| async move {
        let msg = ws.next().await.unwrap().unwrap();
        ws.send(msg).await.unwrap();
        ws.next().await; // wait for the client's close
    })
    .await;
    let connector = Connector::new().unwrap();
    let (mut conn, routing) = connector
        .open_new_tunnel(&relay(server.addr), &TUNNEL, soon())
        .await
        .unwrap();
    assert_eq!(routing.as_bytes(), &[0xa1, 0xb2, 0xc3]);
    let seen = server.seen.await.unwrap();
    assert_eq!(seen.path, "/cable/new/0123456789ABCDEF00010203040506FF");
    assert_eq!(seen.subprotocol.as_deref(), Some("fido.cable"));

    conn.send(vec![1, 2, 3], soon()).await.unwrap();
    assert_eq!(conn.recv(soon()).await.unwrap(), vec![1, 2, 3]);
    conn.close(soon()).await.unwrap();
    assert!(!conn.is_open());
    assert!(matches!(
        conn.recv(soon()).await,
        Err(TransportError::Closed)
    ));
}

#[tokio::test]
async fn computer_connects_with_upper_case_path() {
    let server = serve(cable_upgrade(&[]), |_ws| async {}).await;
    let conn = Connector::new()
        .unwrap()
        .connect_tunnel(
            &relay(server.addr),
            &RoutingId::from_bytes([0, 0xab, 0x0c]),
            &TUNNEL,
            soon(),
        )
        .await
        .unwrap();
    assert!(conn.is_open());
    let seen = server.seen.await.unwrap();
    assert_eq!(
        seen.path,
        "/cable/connect/00AB0C/0123456789ABCDEF00010203040506FF"
    );
}

#[tokio::test]
async fn routing_id_header_is_validated() {
    for (headers, problem) in [
        (&[][..], RoutingIdProblem::Missing),
        (&["010203", "010203"][..], RoutingIdProblem::Duplicate),
        (&["0102"][..], RoutingIdProblem::Malformed),
        (&["01020304"][..], RoutingIdProblem::Malformed),
        (&["xyzxyz"][..], RoutingIdProblem::Malformed),
    ] {
        match open_new(cable_upgrade(headers)).await {
            Err(TransportError::BadRoutingId(p)) => assert_eq!(p, problem, "{headers:?}"),
            other => panic!("{headers:?}: {other:?}"),
        }
    }
}

#[tokio::test]
async fn subprotocol_must_be_selected() {
    let none: Upgrade = Box::new(|_req, resp| Ok(resp));
    assert!(matches!(
        open_new(none).await,
        Err(TransportError::SubprotocolNotSelected)
    ));
    let other: Upgrade = Box::new(|_req, mut resp| {
        resp.headers_mut()
            .insert("Sec-WebSocket-Protocol", "chat".parse().unwrap());
        Ok(resp)
    });
    assert!(matches!(
        open_new(other).await,
        Err(TransportError::SubprotocolNotSelected)
    ));
}

#[tokio::test]
async fn http_status_is_reported() {
    assert!(matches!(
        open_new(refuse(404)).await,
        Err(TransportError::HttpStatus { status: 404 })
    ));
    assert!(matches!(
        open_new(refuse(410)).await,
        Err(TransportError::Gone)
    ));
}

#[tokio::test]
async fn connect_refused_and_connect_timeout() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let connector = Connector::new().unwrap();
    let err = connector
        .open_new_tunnel(&relay(addr), &TUNNEL, soon())
        .await
        .unwrap_err();
    assert!(
        matches!(err, TransportError::Connect { port, .. } if port == addr.port()),
        "{err:?}"
    );

    // A server that accepts TCP and never answers the upgrade.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = silent.local_addr().unwrap();
    let hold = tokio::spawn(async move {
        let (_tcp, _) = silent.accept().await.unwrap();
        tokio::time::sleep(Duration::from_secs(10)).await;
    });
    let err = connector
        .open_new_tunnel(
            &relay(addr),
            &TUNNEL,
            Instant::now() + Duration::from_millis(200),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, TransportError::Timeout(Operation::Connect)),
        "{err:?}"
    );
    hold.abort();
}

#[tokio::test]
async fn plaintext_to_remote_hosts_needs_opt_in() {
    let err = Connector::new()
        .unwrap()
        .open_new_tunnel(
            &RelayUrl::parse("ws://relay.example").unwrap(),
            &TUNNEL,
            soon(),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, TransportError::PlaintextNotAllowed { .. }));
}

#[tokio::test]
async fn text_frames_are_rejected() {
    let server = serve(cable_upgrade(&["000000"]), |mut ws| async move {
        ws.send(Message::text("hello")).await.unwrap();
        ws.next().await;
    })
    .await;
    let (mut conn, _) = Connector::new()
        .unwrap()
        .open_new_tunnel(&relay(server.addr), &TUNNEL, soon())
        .await
        .unwrap();
    assert!(matches!(
        conn.recv(soon()).await,
        Err(TransportError::UnexpectedText)
    ));
    assert!(!conn.is_open());
}

#[tokio::test]
async fn oversize_messages_are_rejected_both_ways() {
    let server = serve(cable_upgrade(&["000000"]), |mut ws| async move {
        ws.send(Message::binary(vec![0u8; MAX_MESSAGE_SIZE + 1]))
            .await
            .unwrap();
        ws.next().await;
    })
    .await;
    let (mut conn, _) = Connector::new()
        .unwrap()
        .open_new_tunnel(&relay(server.addr), &TUNNEL, soon())
        .await
        .unwrap();
    let err = conn
        .send(vec![0u8; MAX_MESSAGE_SIZE + 1], soon())
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        TransportError::MessageTooLarge { len: Some(n), max } if n == MAX_MESSAGE_SIZE + 1 && max == MAX_MESSAGE_SIZE
    ));
    // The limit itself is fine to send.
    assert!(conn.is_open());
    let err = conn.recv(soon()).await.unwrap_err();
    assert!(
        matches!(err, TransportError::MessageTooLarge { max, .. } if max == MAX_MESSAGE_SIZE),
        "{err:?}"
    );
}

#[tokio::test]
async fn normal_close_and_abrupt_close_are_distinguished() {
    let server = serve(cable_upgrade(&["000000"]), |mut ws| async move {
        ws.send(Message::binary(vec![9])).await.unwrap();
        ws.close(Some(CloseFrame {
            code: CloseCode::Normal,
            reason: "".into(),
        }))
        .await
        .unwrap();
    })
    .await;
    let (mut conn, _) = Connector::new()
        .unwrap()
        .open_new_tunnel(&relay(server.addr), &TUNNEL, soon())
        .await
        .unwrap();
    assert_eq!(conn.recv(soon()).await.unwrap(), vec![9]);
    let err = conn.recv(soon()).await.unwrap_err();
    assert!(
        matches!(err, TransportError::PeerClosed { code: Some(1000) }),
        "{err:?}"
    );
    assert!(err.is_closed());

    let server = serve(cable_upgrade(&["000000"]), |ws| async move {
        drop(ws); // TCP closed without a close frame
    })
    .await;
    let (mut conn, _) = Connector::new()
        .unwrap()
        .open_new_tunnel(&relay(server.addr), &TUNNEL, soon())
        .await
        .unwrap();
    let err = conn.recv(soon()).await.unwrap_err();
    assert!(matches!(err, TransportError::ConnectionLost), "{err:?}");
    assert!(matches!(
        conn.send(vec![1], soon()).await,
        Err(TransportError::Closed)
    ));
}

#[tokio::test]
async fn recv_deadline_fires_and_connection_stays_usable() {
    let (go_tx, go_rx) = tokio::sync::oneshot::channel::<()>();
    let server = serve(cable_upgrade(&["000000"]), |mut ws| async move {
        go_rx.await.unwrap();
        ws.send(Message::binary(vec![7])).await.unwrap();
        ws.next().await;
    })
    .await;
    let (mut conn, _) = Connector::new()
        .unwrap()
        .open_new_tunnel(&relay(server.addr), &TUNNEL, soon())
        .await
        .unwrap();
    let err = conn
        .recv(Instant::now() + Duration::from_millis(50))
        .await
        .unwrap_err();
    assert!(matches!(err, TransportError::Timeout(Operation::Receive)));
    go_tx.send(()).unwrap();
    assert_eq!(conn.recv(soon()).await.unwrap(), vec![7]);
}

#[tokio::test]
async fn wss_with_private_ca() {
    let (ca_pem, tls) = tls_fixture();
    let server = serve_tls(tls, cable_upgrade(&["0a0b0c"]), |mut ws| async move {
        let msg = ws.next().await.unwrap().unwrap();
        ws.send(msg).await.unwrap();
        ws.next().await;
    })
    .await;
    let url = RelayUrl::parse(&format!("wss://localhost:{}", server.addr.port())).unwrap();
    let connector = Connector::builder()
        .public_roots(false)
        .extra_ca_pem(ca_pem.as_bytes())
        .unwrap()
        .build()
        .unwrap();
    let (mut conn, routing) = connector
        .open_new_tunnel(&url, &TUNNEL, soon())
        .await
        .unwrap();
    assert_eq!(routing.as_bytes(), &[10, 11, 12]);
    conn.send(vec![42; 300], soon()).await.unwrap();
    assert_eq!(conn.recv(soon()).await.unwrap(), vec![42; 300]);
    conn.close(soon()).await.unwrap();
}

#[tokio::test]
async fn wss_with_untrusted_certificate_fails_tls() {
    let (_ca_pem, tls) = tls_fixture();
    let server = serve_tls(tls, cable_upgrade(&["0a0b0c"]), |_ws| async {}).await;
    let url = RelayUrl::parse(&format!("wss://localhost:{}", server.addr.port())).unwrap();
    let err = Connector::new()
        .unwrap()
        .open_new_tunnel(&url, &TUNNEL, soon())
        .await
        .unwrap_err();
    assert!(matches!(err, TransportError::Tls { .. }), "{err:?}");
}

#[tokio::test]
async fn encrypted_channel_round_trip_and_tamper_detection() {
    use cable_proto::crypter::Crypter;
    use cable_transport::EncryptedChannel;
    let (k1, k2) = ([1u8; 32], [2u8; 32]);
    let server = serve(cable_upgrade(&["000000"]), move |mut ws| async move {
        let mut peer = Crypter::new(&k1, &k2);
        let Some(Ok(Message::Binary(ct))) = ws.next().await else {
            panic!("expected a binary message")
        };
        // Padded to 32 bytes plus the 16-byte tag.
        assert_eq!(ct.len(), 48);
        let plain = peer.decrypt(&ct).unwrap();
        assert_eq!(plain, b"ping");
        let mut reply = peer.encrypt(b"pong").unwrap();
        ws.send(Message::binary(reply.clone())).await.unwrap();
        // Then a tampered message.
        reply = peer.encrypt(b"again").unwrap();
        reply[3] ^= 1;
        ws.send(Message::binary(reply)).await.unwrap();
        ws.next().await;
    })
    .await;
    let (conn, _) = Connector::new()
        .unwrap()
        .open_new_tunnel(&relay(server.addr), &TUNNEL, soon())
        .await
        .unwrap();
    let mut channel = EncryptedChannel::new(conn, Crypter::new(&k2, &k1));
    channel.send(b"ping", soon()).await.unwrap();
    assert_eq!(channel.recv(soon()).await.unwrap(), b"pong");
    let err = channel.recv(soon()).await.unwrap_err();
    assert!(matches!(err, TransportError::Decrypt(_)), "{err:?}");
    assert!(!channel.is_open());
}

#[tokio::test]
async fn contact_sends_payload_and_reports_the_signal_echo() {
    for echo in [true, false] {
        let upgrade: Upgrade = Box::new(move |_req, mut resp| {
            let h = resp.headers_mut();
            h.insert("Sec-WebSocket-Protocol", SUBPROTOCOL.parse().unwrap());
            if echo {
                h.insert(SIGNAL_CONNECTION_HEADER, "true".parse().unwrap());
            }
            Ok(resp)
        });
        let server = serve(upgrade, |_ws| async {}).await;
        let (conn, echoed) = Connector::new()
            .unwrap()
            .open_contact(&relay(server.addr), &[0xfb, 0xff, 0x01], "A3010203", soon())
            .await
            .unwrap();
        assert!(conn.is_open());
        assert_eq!(echoed, echo);
        let seen = server.seen.await.unwrap();
        assert_eq!(seen.path, "/cable/contact/-_8B");
        assert_eq!(seen.client_payload.as_deref(), Some("A3010203"));
        assert_eq!(seen.signal_connection.as_deref(), Some("true"));
    }
    assert!(matches!(
        Connector::new()
            .unwrap()
            .open_contact(
                &relay(serve(refuse(410), |_ws| async {}).await.addr),
                b"x",
                "00",
                soon()
            )
            .await,
        Err(TransportError::Gone)
    ));
    assert!(matches!(
        Connector::new()
            .unwrap()
            .open_contact(
                &relay(serve(refuse(410), |_ws| async {}).await.addr),
                b"x",
                "0\n0",
                soon()
            )
            .await,
        Err(TransportError::InvalidHeaderValue { .. })
    ));
}
