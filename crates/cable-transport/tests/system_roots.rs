//! The operating system's certificate store is trusted: a relay whose CA only the system
//! knows (here through `SSL_CERT_FILE`, as an administrator's installed bundle would be) is
//! reached without naming the CA, and refused when the system store is turned off.
//!
//! One test in its own binary: it sets an environment variable the certificate loader reads.

mod support;

use std::time::Duration;

use cable_proto::ids::TunnelId;
use cable_transport::{Connector, RelayUrl, TransportError};
use support::{cable_upgrade, serve_tls, tls_fixture};
use tokio::time::Instant;

#[tokio::test]
async fn a_ca_in_the_system_store_is_trusted_unless_turned_off() {
    let (ca_pem, tls) = tls_fixture();
    let dir = std::env::temp_dir().join(format!("cable-system-roots-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let bundle = dir.join("ca.pem");
    std::fs::write(&bundle, ca_pem.as_bytes()).expect("bundle written");
    // Before any connector reads it; this binary has no other test.
    std::env::set_var("SSL_CERT_FILE", &bundle);
    std::env::remove_var("SSL_CERT_DIR");

    let server = serve_tls(tls.clone(), cable_upgrade(&["0a0b0c"]), |_ws| async {}).await;
    let url = RelayUrl::parse(&format!("wss://localhost:{}", server.addr.port())).expect("url");
    let tunnel = TunnelId::from_bytes([7; 16]);
    let soon = || Instant::now() + Duration::from_secs(5);

    let (_conn, routing) = Connector::new()
        .expect("connector")
        .open_new_tunnel(&url, &tunnel, soon())
        .await
        .expect("the system store's CA is trusted");
    assert_eq!(routing.as_bytes(), &[10, 11, 12]);

    let server = serve_tls(tls, cable_upgrade(&["0a0b0c"]), |_ws| async {}).await;
    let url = RelayUrl::parse(&format!("wss://localhost:{}", server.addr.port())).expect("url");
    let err = Connector::builder()
        .system_roots(false)
        .build()
        .expect("connector")
        .open_new_tunnel(&url, &tunnel, soon())
        .await
        .expect_err("without the system store the CA is unknown");
    assert!(matches!(err, TransportError::Tls { .. }), "{err:?}");
    std::fs::remove_dir_all(&dir).expect("cleanup");
}
