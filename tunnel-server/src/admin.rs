//! Health, readiness and Prometheus metrics on a separate listener.
//!
//! A tiny HTTP/1.1 responder instead of an HTTP framework: the listener serves three read-only
//! GET endpoints to a scraper and a kubelet, one request per connection. Request heads are
//! parsed with `httparse` (already used for tunnel requests); reads are bounded in size and
//! time, so a stuck client cannot hold resources.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::state::{Phase, Shared};

const MAX_HEAD: usize = 8192;
const IO_TIMEOUT: Duration = Duration::from_secs(5);
/// Admin connections are few (a scraper, probes); more at once are refused.
const MAX_CONCURRENT: usize = 64;

pub(crate) async fn serve(shared: Arc<Shared>, listener: TcpListener) {
    let permits = Arc::new(tokio::sync::Semaphore::new(MAX_CONCURRENT));
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            continue;
        };
        let shared = shared.clone();
        tokio::spawn(async move {
            let _ = tokio::time::timeout(IO_TIMEOUT, respond(&shared, tcp)).await;
            drop(permit);
        });
    }
}

/// Which admin endpoint a request asks for.
#[derive(Debug, PartialEq, Eq)]
enum Endpoint {
    Health,
    Ready,
    Metrics,
    NotFound,
    BadMethod,
}

fn route(method: &str, path: &str) -> Endpoint {
    let path = path.split_once('?').map_or(path, |(p, _)| p);
    if method != "GET" && method != "HEAD" {
        return Endpoint::BadMethod;
    }
    match path {
        "/healthz" => Endpoint::Health,
        "/readyz" => Endpoint::Ready,
        "/metrics" => Endpoint::Metrics,
        _ => Endpoint::NotFound,
    }
}

async fn respond(shared: &Shared, mut tcp: TcpStream) -> std::io::Result<()> {
    let mut buf = Vec::with_capacity(1024);
    let (endpoint, head_only) = loop {
        if buf.len() >= MAX_HEAD {
            return write(&mut tcp, 431, "Request Header Fields Too Large", "", false).await;
        }
        let start = buf.len();
        buf.resize(start + 1024, 0);
        let n = tcp.read(&mut buf[start..]).await?;
        buf.truncate(start + n);
        if n == 0 {
            return Ok(());
        }
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut req = httparse::Request::new(&mut headers);
        match req.parse(&buf) {
            Ok(httparse::Status::Partial) => continue,
            Ok(httparse::Status::Complete(_)) => {
                let method = req.method.unwrap_or("");
                break (route(method, req.path.unwrap_or("")), method == "HEAD");
            }
            Err(_) => return write(&mut tcp, 400, "Bad Request", "", false).await,
        }
    };
    match endpoint {
        Endpoint::Health => write(&mut tcp, 200, "OK", "ok\n", head_only).await,
        Endpoint::Ready => {
            if shared.phase_now() == Phase::Running {
                write(&mut tcp, 200, "OK", "ready\n", head_only).await
            } else {
                write(
                    &mut tcp,
                    503,
                    "Service Unavailable",
                    "draining\n",
                    head_only,
                )
                .await
            }
        }
        Endpoint::Metrics => {
            let body = shared.metrics.encode();
            write(&mut tcp, 200, "OK", &body, head_only).await
        }
        Endpoint::NotFound => write(&mut tcp, 404, "Not Found", "", head_only).await,
        Endpoint::BadMethod => write(&mut tcp, 405, "Method Not Allowed", "", false).await,
    }
}

async fn write(
    tcp: &mut TcpStream,
    code: u16,
    text: &str,
    body: &str,
    head_only: bool,
) -> std::io::Result<()> {
    // prometheus-client writes the OpenMetrics text format.
    let content_type = if body.ends_with("# EOF\n") {
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    } else {
        "text/plain; charset=utf-8"
    };
    let head = format!(
        "HTTP/1.1 {code} {text}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    tcp.write_all(head.as_bytes()).await?;
    if !head_only {
        tcp.write_all(body.as_bytes()).await?;
    }
    tcp.shutdown().await
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        assert_eq!(route("GET", "/healthz"), Endpoint::Health);
        assert_eq!(route("GET", "/readyz?verbose"), Endpoint::Ready);
        assert_eq!(route("HEAD", "/metrics"), Endpoint::Metrics);
        assert_eq!(route("POST", "/metrics"), Endpoint::BadMethod);
        assert_eq!(route("GET", "/"), Endpoint::NotFound);
    }
}
