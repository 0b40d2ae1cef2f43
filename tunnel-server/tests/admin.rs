//! The admin listener keeps answering probes and scrapes while clients hold it open.
//!
//! Time is paused: the relay runs on tokio's clock, so a test can tell an answer that came
//! at once from one that came only after idle connections timed out.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::time::Duration;

use cable_tunnel_server::{Relay, RelayConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{timeout, Instant};

/// Far more than the admin listener serves at once.
const IDLE: usize = 600;
/// How long the listener waits for a request head (documented in the crate docs).
const HEAD_TIMEOUT: Duration = Duration::from_secs(2);

/// One request on a fresh connection; the whole answer, or what went wrong.
async fn get(admin: SocketAddr, path: &str) -> Result<String, String> {
    let mut tcp = TcpStream::connect(admin)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    tcp.write_all(format!("GET {path} HTTP/1.1\r\nHost: relay\r\n\r\n").as_bytes())
        .await
        .map_err(|e| format!("write: {e}"))?;
    let mut answer = String::new();
    match timeout(Duration::from_secs(1), tcp.read_to_string(&mut answer)).await {
        Ok(Ok(_)) => Ok(answer),
        Ok(Err(e)) => Err(format!("read: {e}")),
        Err(_) => Err("no answer within 1 s".to_owned()),
    }
}

#[tokio::test(start_paused = true)]
async fn hundreds_of_idle_connections_do_not_starve_probes() {
    let relay = Relay::bind(RelayConfig::default()).await.unwrap();
    let admin = relay.admin_addr().unwrap();
    let start = Instant::now();
    let mut idle = Vec::with_capacity(IDLE);
    for i in 0..IDLE {
        let mut tcp = TcpStream::connect(admin).await.unwrap();
        // Half say nothing, half start a request and never finish it.
        if i % 2 == 1 {
            tcp.write_all(b"GET /metrics HTTP/1.1\r\nHost: ")
                .await
                .unwrap();
        }
        idle.push(tcp);
    }
    for path in ["/healthz", "/readyz", "/metrics"] {
        let answer = get(admin, path).await.unwrap_or_else(|e| {
            panic!("{path} with {IDLE} idle connections open: {e}");
        });
        assert!(
            answer.starts_with("HTTP/1.1 200 OK\r\n"),
            "{path}: {answer}"
        );
    }
    let metrics = get(admin, "/metrics").await.unwrap();
    assert!(
        metrics.contains("cable_relay_tunnels_created_total 0"),
        "{metrics}"
    );

    // The oldest idle connection made room; the newest ones are still open.
    let mut byte = [0u8; 1];
    let oldest = timeout(Duration::from_secs(1), idle[0].read(&mut byte)).await;
    assert!(matches!(oldest, Ok(Ok(0)) | Ok(Err(_))), "{oldest:?}");
    let newest = timeout(Duration::from_millis(100), idle[IDLE - 1].read(&mut byte)).await;
    assert!(
        newest.is_err(),
        "the newest idle connection was closed: {newest:?}"
    );

    // All of that happened before any idle connection could have timed out: the probes were
    // answered because idle connections give way, not because they expired.
    assert!(
        start.elapsed() < HEAD_TIMEOUT,
        "took {:?} of relay time",
        start.elapsed()
    );
    relay.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_request_head_must_arrive_within_the_head_timeout() {
    let relay = Relay::bind(RelayConfig::default()).await.unwrap();
    let admin = relay.admin_addr().unwrap();
    let start = Instant::now();
    let mut slow = TcpStream::connect(admin).await.unwrap();
    // A byte every half second: always "sending", never done.
    let request = b"GET /healthz HTTP/1.1\r\nHost: relay\r\n\r\n";
    let mut closed_at = None;
    for byte in request {
        if slow.write_all(&[*byte]).await.is_err() {
            closed_at = Some(start.elapsed());
            break;
        }
        let mut buf = [0u8; 64];
        match timeout(Duration::from_millis(500), slow.read(&mut buf)).await {
            Err(_) => {}
            Ok(Ok(0) | Err(_)) => {
                closed_at = Some(start.elapsed());
                break;
            }
            Ok(Ok(_)) => panic!("answered a request that took too long to arrive"),
        }
    }
    let closed_at = closed_at.expect("the slow connection was never closed");
    assert!(
        closed_at >= HEAD_TIMEOUT && closed_at <= HEAD_TIMEOUT + Duration::from_millis(500),
        "closed after {closed_at:?}"
    );
    // A prompt client is still answered.
    assert!(get(admin, "/healthz")
        .await
        .unwrap()
        .starts_with("HTTP/1.1 200 OK"));
    relay.shutdown().await.unwrap();
}

#[tokio::test]
async fn metrics_count_accept_failures_per_listener() {
    let relay = Relay::bind(RelayConfig::default()).await.unwrap();
    let metrics = get(relay.admin_addr().unwrap(), "/metrics").await.unwrap();
    for listener in ["tunnel", "admin"] {
        let line = format!("cable_relay_accept_failures_total{{listener=\"{listener}\"}} 0");
        assert!(metrics.contains(&line), "{line} missing from:\n{metrics}");
    }
    assert!(metrics.contains("# TYPE cable_relay_accept_failures counter"));
    relay.shutdown().await.unwrap();
}

/// With a bearer token configured, `/metrics` answers only requests that carry it; probes
/// stay open, and refusals are counted.
#[tokio::test]
async fn metrics_need_the_bearer_token_when_one_is_set() {
    const TOKEN: &str = "5f0c8a3e9b1d47c2a6e8f0b3d5c7e9a1";
    let relay = Relay::bind({
        let mut config = RelayConfig::default();
        config.admin_token = Some(cable_tunnel_server::AdminToken::new(TOKEN).unwrap());
        config
    })
    .await
    .unwrap();
    let admin = relay.admin_addr().unwrap();
    let with_header = |header: &'static str| async move {
        let mut tcp = TcpStream::connect(admin).await.unwrap();
        tcp.write_all(format!("GET /metrics HTTP/1.1\r\nHost: relay\r\n{header}\r\n").as_bytes())
            .await
            .unwrap();
        let mut answer = String::new();
        tcp.read_to_string(&mut answer).await.unwrap();
        answer
    };

    for refused in [
        "",
        "Authorization: Bearer wrong-token-0123456789\r\n",
        "Authorization: Basic NWYwYzhhM2U5YjFkNDdjMmE2ZThmMGIzZDVjN2U5YTE=\r\n",
    ] {
        let answer = with_header(refused).await;
        assert!(answer.starts_with("HTTP/1.1 401 "), "{refused:?}: {answer}");
        assert!(answer.contains("WWW-Authenticate: Bearer"), "{answer}");
        assert!(!answer.contains("cable_relay_"), "{answer}");
        assert!(!answer.contains(TOKEN), "{answer}");
    }
    let answer = with_header("authorization: Bearer 5f0c8a3e9b1d47c2a6e8f0b3d5c7e9a1\r\n").await;
    assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
    assert!(
        answer.contains("cable_relay_admin_unauthorized_total 3"),
        "{answer}"
    );
    assert_eq!(relay.metrics().admin_unauthorized_total(), 3);

    for probe in ["/healthz", "/readyz"] {
        let answer = get(admin, probe).await.unwrap();
        assert!(
            answer.starts_with("HTTP/1.1 200 OK\r\n"),
            "{probe}: {answer}"
        );
    }
}

/// `/metrics` with an `Accept` header; the head and the body.
async fn scrape(admin: SocketAddr, accept: Option<&str>) -> (String, String) {
    let mut tcp = TcpStream::connect(admin).await.unwrap();
    let accept = accept.map_or_else(String::new, |a| format!("Accept: {a}\r\n"));
    tcp.write_all(format!("GET /metrics HTTP/1.1\r\nHost: relay\r\n{accept}\r\n").as_bytes())
        .await
        .unwrap();
    let mut answer = String::new();
    tcp.read_to_string(&mut answer).await.unwrap();
    let (head, body) = answer.split_once("\r\n\r\n").unwrap();
    (head.to_owned(), body.to_owned())
}

#[tokio::test]
async fn metrics_honour_accept_and_carry_build_and_process_gauges() {
    let relay = Relay::bind(RelayConfig::default()).await.unwrap();
    let admin = relay.admin_addr().unwrap();

    // What Prometheus asks for, and what curl does: OpenMetrics, one `# EOF` at the end.
    for accept in [
        Some("application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"),
        None,
    ] {
        let (head, body) = scrape(admin, accept).await;
        assert!(
            head.contains("Content-Type: application/openmetrics-text; version=1.0.0"),
            "{head}"
        );
        assert!(body.ends_with("# EOF\n"), "{body}");
        assert_eq!(body.matches("# EOF").count(), 1, "{body}");
        assert!(body.contains("cable_relay_build_info{version=\""), "{body}");
        assert!(body.contains("\nprocess_start_time_seconds "), "{body}");
        if cfg!(target_os = "linux") {
            assert!(body.contains("\nprocess_resident_memory_bytes "), "{body}");
            assert!(body.contains("\nprocess_open_fds "), "{body}");
        }
    }

    // A scraper that takes only the older text format gets it.
    let (head, body) = scrape(admin, Some("text/plain;version=0.0.4;q=0.3,*/*;q=0.1")).await;
    assert!(
        head.contains("Content-Type: text/plain; version=0.0.4; charset=utf-8"),
        "{head}"
    );
    assert!(!body.contains("# EOF"), "{body}");
    assert!(!body.contains("# UNIT"), "{body}");
    assert!(
        body.contains("# TYPE cable_relay_tunnels_created_total counter\n"),
        "{body}"
    );
    assert!(
        body.contains("cable_relay_tunnels_created_total 0\n"),
        "{body}"
    );
    assert!(
        body.contains("# TYPE cable_relay_build_info gauge\n"),
        "{body}"
    );
    relay.shutdown().await.unwrap();
}
