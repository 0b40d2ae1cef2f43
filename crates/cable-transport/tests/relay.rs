//! Both roles through the real relay, in-process on loopback.

#![allow(clippy::unwrap_used, clippy::result_large_err)]

use std::time::Duration;

use cable_proto::ids::{RoutingId, TunnelId};
use cable_transport::{Connector, RelayUrl, TransportError};
use cable_tunnel_server::{Relay, RelayConfig};
use tokio::time::Instant;

fn soon() -> Instant {
    Instant::now() + Duration::from_secs(5)
}

async fn relay(routing_id: RoutingId) -> (cable_tunnel_server::RunningRelay, RelayUrl) {
    let relay = Relay::bind({
        let mut config = RelayConfig::default();
        config.routing_id = routing_id;
        config
    })
    .await
    .unwrap();
    let url = RelayUrl::parse(&relay.url()).unwrap();
    (relay, url)
}

#[tokio::test]
async fn phone_and_computer_exchange_messages_through_the_relay() {
    let (_relay, url) = relay(RoutingId::from_bytes([0x12, 0xab, 0x0f])).await;
    let connector = Connector::new().unwrap();
    let tunnel = TunnelId::from_bytes([7u8; 16]);
    let (mut phone, routing) = connector
        .open_new_tunnel(&url, &tunnel, soon())
        .await
        .unwrap();
    assert_eq!(routing.as_bytes(), &[0x12, 0xab, 0x0f]);
    // Sent before the computer joins: the relay buffers it.
    phone.send(vec![1; 81], soon()).await.unwrap();
    let mut computer = connector
        .connect_tunnel(&url, &routing, &tunnel, soon())
        .await
        .unwrap();
    assert_eq!(computer.recv(soon()).await.unwrap(), vec![1; 81]);
    for n in 0..20u8 {
        computer
            .send(vec![n; 100 + usize::from(n)], soon())
            .await
            .unwrap();
        assert_eq!(
            phone.recv(soon()).await.unwrap(),
            vec![n; 100 + usize::from(n)]
        );
        phone.send(vec![n; 48], soon()).await.unwrap();
        assert_eq!(computer.recv(soon()).await.unwrap(), vec![n; 48]);
    }
    // The phone closes; the computer sees a normal close, not a lost connection.
    phone.close(soon()).await.unwrap();
    let err = computer.recv(soon()).await.unwrap_err();
    assert!(
        matches!(err, TransportError::PeerClosed { code: Some(1000) }),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_vanished_peer_is_reported_as_a_close() {
    let (_relay, url) = relay(RoutingId::from_bytes([0, 0, 1])).await;
    let connector = Connector::new().unwrap();
    let tunnel = TunnelId::from_bytes([8u8; 16]);
    let (phone, routing) = connector
        .open_new_tunnel(&url, &tunnel, soon())
        .await
        .unwrap();
    let mut computer = connector
        .connect_tunnel(&url, &routing, &tunnel, soon())
        .await
        .unwrap();
    drop(phone); // TCP gone without a close frame
    let err = computer.recv(soon()).await.unwrap_err();
    assert!(err.is_closed(), "{err:?}");
}

#[tokio::test]
async fn relay_refusals_are_typed() {
    let (_relay, url) = relay(RoutingId::from_bytes([0, 0, 2])).await;
    let connector = Connector::new().unwrap();
    // Nobody opened this tunnel.
    let err = connector
        .connect_tunnel(
            &url,
            &RoutingId::from_bytes([0, 0, 2]),
            &TunnelId::from_bytes([9; 16]),
            soon(),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, TransportError::HttpStatus { status: 404 }),
        "{err:?}"
    );
    // Another instance's routing id.
    let (_phone, _) = connector
        .open_new_tunnel(&url, &TunnelId::from_bytes([10; 16]), soon())
        .await
        .unwrap();
    let err = connector
        .connect_tunnel(
            &url,
            &RoutingId::from_bytes([9, 9, 9]),
            &TunnelId::from_bytes([10; 16]),
            soon(),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, TransportError::HttpStatus { status: 404 }),
        "{err:?}"
    );
    // The same tunnel id twice.
    let err = connector
        .open_new_tunnel(&url, &TunnelId::from_bytes([10; 16]), soon())
        .await
        .unwrap_err();
    assert!(
        matches!(err, TransportError::HttpStatus { status: 409 }),
        "{err:?}"
    );
}
