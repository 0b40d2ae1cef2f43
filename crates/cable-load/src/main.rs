//! `cable-load`: a load generator for the caBLE tunnel relay.
//!
//! It plays both ends of many tunnels at once: for each pair a "phone" opens
//! `/cable/new/<id>` and a "computer" joins with `/cable/connect/<routing id>/<id>`, both with
//! the `fido.cable` subprotocol, from several loopback source addresses (127.0.0.x) so that the
//! ephemeral port range is not the limit. It prints one JSON report on stdout.
//!
//! Modes:
//! - `rtt`: set up `--pairs` pairs, then run `--messages` round trips of `--size` bytes per pair
//!   (phone sends, computer echoes), with `--inflight` round trips in flight across all pairs
//!   (each pair never has more than one). Reports setup rate, relay CPU per pair set up,
//!   latency percentiles and round trips per second.
//! - `pending`: open phones only and hold them; reports relay RSS per pending tunnel.
//! - `idle`: set up pairs and hold them idle; reports relay RSS per joined idle pair.
//! - `soak`: `--pairs` pairs at once, some aborted, stalled or slow (see the `soak` module),
//!   then a verdict: no message lost or reordered, every close as documented, the relay's
//!   gauges and file descriptors back to their baseline. Exits 1 if any check fails.
//! - `contact`: one linked phone contacted `--pairs` times, `--setup-concurrency` at once,
//!   through a push endpoint in this process (see the `contact` module); reports the time
//!   from a contact request to the push, to the phone's connect and to the connect signal,
//!   and relay CPU per contact. The relay needs contact keys and `--allow-insecure-push`.
//!
//! `--after-close SECS` (`rtt` mode) closes every pair after the round trips and samples the
//! relay's RSS for that long: whether the relay gives the memory back.
//!
//! Relay RSS and CPU time come from `/proc/<relay pid>` (`--relay-pid`), so the relay can be
//! judged by its own cost even when the generator shares the machine.
//!
//! It deliberately does not speak the caBLE handshake or encryption: the relay forwards opaque
//! bytes, so random payloads of realistic sizes exercise it the same way.

mod contact;
mod soak;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use cable_proto::domain::{connect_path, new_path};
use cable_proto::ids::{RoutingId, TunnelId};
use cable_proto::wire::SUBPROTOCOL;
use clap::{Parser, ValueEnum};
use futures_util::{SinkExt, StreamExt};
use serde::Serialize;
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::Semaphore;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

type Ws = WebSocketStream<TcpStream>;

/// Load generator for the caBLE tunnel relay; prints a JSON report.
#[derive(Debug, Parser)]
#[command(name = "cable-load", version)]
struct Args {
    /// Relay base URL (ws:// on loopback).
    #[arg(long, default_value = "ws://127.0.0.1:8080")]
    url: String,

    /// Routing id to join at when the relay's answer to a phone names none (6 hex digits).
    /// Normally each computer joins at the routing id its phone received in
    /// `X-caBLE-Routing-ID`, so several instances behind a balancer can be driven at once.
    #[arg(long, default_value = "000000")]
    routing_id: String,

    /// What to measure.
    #[arg(long, value_enum, default_value_t = Mode::Rtt)]
    mode: Mode,

    /// Number of tunnels (pairs, phones in `pending` mode, contacts in `contact` mode).
    #[arg(long, default_value_t = 1000)]
    pairs: usize,

    /// Ramp up in steps, measuring RSS after each (comma-separated totals, e.g. 1000,5000,9990);
    /// `pending` and `idle` modes only. Defaults to one step of --pairs.
    #[arg(long, value_delimiter = ',')]
    steps: Vec<usize>,

    /// Round trips per pair (`rtt` mode).
    #[arg(long, default_value_t = 10)]
    messages: usize,

    /// Message size in bytes.
    #[arg(long, default_value_t = 256)]
    size: usize,

    /// Round trips in flight across all pairs (each pair has at most one); 0 = one per pair.
    #[arg(long, default_value_t = 0)]
    inflight: usize,

    /// Number of loopback source addresses (127.0.0.2, 127.0.0.3, ...).
    #[arg(long, default_value_t = 8)]
    sources: u8,

    /// Tunnel setups (or contacts) in progress at once.
    #[arg(long, default_value_t = 64)]
    setup_concurrency: usize,

    /// PID of the relay, for RSS and CPU time from /proc.
    #[arg(long)]
    relay_pid: Option<u32>,

    /// Seconds to wait after each step before reading RSS (lets the relay settle).
    #[arg(long, default_value_t = 1.0)]
    settle: f64,

    /// `rtt` mode: after the round trips, close every pair and sample the relay's RSS for
    /// this many seconds (at 0, 1, 2, 5, 10, 20, 30, 45, 60, 90 and 120 s), to see whether
    /// the relay gives the memory back.
    #[arg(long, default_value_t = 0)]
    after_close: u64,

    /// `soak` mode: fraction of pairs that abort halfway (TCP reset or FIN, phone or computer).
    #[arg(long, default_value_t = 0.2)]
    abort_fraction: f64,

    /// `soak` mode: fraction of pairs whose computer stops reading while the phone sends.
    #[arg(long, default_value_t = 0.02)]
    stall_fraction: f64,

    /// `soak` mode: fraction of pairs whose phone writes its frames a few bytes at a time.
    #[arg(long, default_value_t = 0.02)]
    slow_fraction: f64,

    /// The relay's admin listener (host:port), for its connection and tunnel gauges.
    #[arg(long)]
    admin: Option<SocketAddr>,

    /// Runtime worker threads (1 = single-threaded runtime).
    #[arg(long, default_value_t = 1)]
    threads: usize,
}

#[derive(Debug, Clone, Copy, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
enum Mode {
    Rtt,
    Pending,
    Idle,
    Contact,
    Soak,
}

#[derive(Debug, thiserror::Error)]
enum LoadError {
    #[error("relay URL must be ws://host:port, got {0:?}")]
    BadUrl(String),
    #[error("--routing-id: {0}")]
    BadRoutingId(cable_proto::Error),
    #[error("--pairs must be at least 1 and --steps increasing")]
    BadSteps,
    #[error("cannot start the runtime: {0}")]
    Runtime(std::io::Error),
    #[error("cannot read /proc/{pid}: {source}")]
    Proc { pid: u32, source: std::io::Error },
    #[error("unexpected /proc format")]
    ProcFormat,
    #[error("contact mode: {0}")]
    Contact(String),
    #[error("cannot read the metrics of the admin listener {0}: {1}")]
    Admin(SocketAddr, std::io::Error),
}

#[derive(Debug, Clone, Copy, Default, Serialize)]
struct Usage {
    rss_kib: u64,
    cpu_ns: u64,
}

/// Reads RSS and CPU time (sum over threads, nanoseconds) of a process.
fn usage(pid: u32) -> Result<Usage, LoadError> {
    let proc_err = |source| LoadError::Proc { pid, source };
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).map_err(proc_err)?;
    let rss_kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or(LoadError::ProcFormat)?;
    let mut cpu_ns = 0u64;
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).map_err(proc_err)? {
        let task = task.map_err(proc_err)?;
        // A thread may exit between listing and reading.
        if let Ok(s) = std::fs::read_to_string(task.path().join("schedstat")) {
            cpu_ns += s
                .split_whitespace()
                .next()
                .and_then(|v| v.parse::<u64>().ok())
                .ok_or(LoadError::ProcFormat)?;
        }
    }
    Ok(Usage { rss_kib, cpu_ns })
}

fn self_cpu_ns() -> u64 {
    usage(std::process::id()).map_or(0, |u| u.cpu_ns)
}

#[derive(Debug, Clone)]
struct Target {
    addr: SocketAddr,
    host: String,
    routing_id: RoutingId,
    sources: Vec<IpAddr>,
    config: WebSocketConfig,
    pub(crate) run_tag: u64,
}

impl Target {
    /// Distinct per tunnel and per run, so that runs against one relay never collide.
    fn tunnel_id(&self, i: usize) -> TunnelId {
        let mut id = [0u8; TunnelId::LEN];
        id[..8].copy_from_slice(&self.run_tag.to_be_bytes());
        id[8..].copy_from_slice(&(i as u64).to_be_bytes());
        TunnelId::from_bytes(id)
    }

    async fn open(&self, path: &str, source: IpAddr) -> Result<Ws, String> {
        Ok(self.open_with(path, source, &[]).await?.0)
    }

    /// Opens `path` from `source` with extra request headers; returns the connection and
    /// the routing id the relay announced, if any.
    async fn open_with(
        &self,
        path: &str,
        source: IpAddr,
        headers: &[(&'static str, String)],
    ) -> Result<(Ws, Option<RoutingId>), String> {
        let req = self.request(path, headers)?;
        let tcp = self.tcp_from(source).await?;
        let (ws, response) =
            tokio_tungstenite::client_async_with_config(req, tcp, Some(self.config))
                .await
                .map_err(|e| match e {
                    tokio_tungstenite::tungstenite::Error::Http(r) => {
                        format!("HTTP {}", r.status().as_u16())
                    }
                    other => other.to_string(),
                })?;
        Ok((ws, announced_routing_id(response.headers())))
    }

    /// The upgrade request for `path`: `fido.cable` and the extra headers.
    fn request(
        &self,
        path: &str,
        headers: &[(&'static str, String)],
    ) -> Result<tokio_tungstenite::tungstenite::handshake::client::Request, String> {
        let mut req = format!("ws://{}{}", self.host, path)
            .into_client_request()
            .map_err(|e| e.to_string())?;
        req.headers_mut().insert(
            "Sec-WebSocket-Protocol",
            HeaderValue::from_static(SUBPROTOCOL),
        );
        for (name, value) in headers {
            let value = HeaderValue::from_str(value).map_err(|e| e.to_string())?;
            req.headers_mut().insert(*name, value);
        }
        Ok(req)
    }

    /// A TCP connection to the relay from the loopback address `source`.
    async fn tcp_from(&self, source: IpAddr) -> Result<TcpStream, String> {
        let socket = TcpSocket::new_v4().map_err(|e| e.to_string())?;
        socket
            .bind(SocketAddr::new(source, 0))
            .map_err(|e| format!("bind {source}: {e}"))?;
        let tcp = socket
            .connect(self.addr)
            .await
            .map_err(|e| format!("connect: {e}"))?;
        tcp.set_nodelay(true).map_err(|e| e.to_string())?;
        Ok(tcp)
    }

    /// The phone of pair `i`, and the routing id its computer must join at.
    async fn phone(&self, i: usize) -> Result<(Ws, RoutingId), String> {
        let source = self.sources[i % self.sources.len()];
        let (ws, rid) = self
            .open_with(&new_path(&self.tunnel_id(i)), source, &[])
            .await?;
        Ok((ws, rid.unwrap_or(self.routing_id)))
    }

    async fn computer(&self, i: usize, routing_id: &RoutingId) -> Result<Ws, String> {
        let source = self.sources[(i + 1) % self.sources.len()];
        self.open(&connect_path(routing_id, &self.tunnel_id(i)), source)
            .await
    }
}

/// The routing id in a relay's `X-caBLE-Routing-ID` answer header, if it names exactly one
/// valid id.
fn announced_routing_id(
    headers: &tokio_tungstenite::tungstenite::http::HeaderMap,
) -> Option<RoutingId> {
    let mut values = headers.get_all(cable_proto::wire::ROUTING_ID_HEADER).iter();
    let only = values.next()?;
    if values.next().is_some() {
        return None;
    }
    RoutingId::from_hex(only.to_str().ok()?).ok()
}

#[derive(Debug, Default, Serialize)]
struct Errors {
    setup: u64,
    traffic: u64,
    first: Option<String>,
}

#[derive(Debug, Serialize)]
struct Setup {
    pairs_ok: usize,
    seconds: f64,
    pairs_per_second: f64,
    relay_cpu_us_per_pair: Option<f64>,
    generator_cpu_us_per_pair: f64,
}

#[derive(Debug, Serialize)]
struct Latency {
    round_trips: usize,
    inflight: usize,
    message_bytes: usize,
    seconds: f64,
    round_trips_per_second: f64,
    p50_us: f64,
    p90_us: f64,
    p99_us: f64,
    p999_us: f64,
    max_us: f64,
    mean_us: f64,
    relay_cpu_us_per_round_trip: Option<f64>,
    generator_cpu_us_per_round_trip: f64,
}

#[derive(Debug, Serialize)]
struct Step {
    tunnels: usize,
    relay_rss_kib: Option<u64>,
    kib_per_tunnel_since_previous: Option<f64>,
}

#[derive(Debug, Serialize)]
struct Sample {
    seconds_after_close: u64,
    relay_rss_kib: Option<u64>,
}

#[derive(Debug, Serialize)]
struct Report {
    mode: Mode,
    url: String,
    pairs: usize,
    sources: u8,
    relay_baseline: Option<Usage>,
    setup: Option<Setup>,
    latency: Option<Latency>,
    contacts: Option<contact::Contacts>,
    soak: Option<soak::Soak>,
    steps: Vec<Step>,
    after_close: Vec<Sample>,
    relay_final: Option<Usage>,
    errors: Errors,
}

struct Shared {
    errors: std::sync::Mutex<Errors>,
    traffic_errors: AtomicU64,
}

impl Shared {
    fn setup_error(&self, e: String) {
        let mut errs = match self.errors.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        errs.setup += 1;
        errs.first.get_or_insert(e);
    }

    fn traffic_error(&self, e: String) {
        self.traffic_errors.fetch_add(1, Ordering::Relaxed);
        let mut errs = match self.errors.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        errs.first.get_or_insert(e);
    }
}

fn parse_target(args: &Args) -> Result<Target, LoadError> {
    let host = args
        .url
        .strip_prefix("ws://")
        .map(|h| h.trim_end_matches('/'))
        .ok_or_else(|| LoadError::BadUrl(args.url.clone()))?;
    let addr: SocketAddr = host
        .parse()
        .map_err(|_| LoadError::BadUrl(args.url.clone()))?;
    let routing_id = RoutingId::from_hex(&args.routing_id).map_err(LoadError::BadRoutingId)?;
    let sources = (0..args.sources.max(1))
        .map(|i| IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2u8.saturating_add(i))))
        .collect();
    let mut config = WebSocketConfig::default();
    // Small buffers: the generator holds up to ~20k sockets.
    config.read_buffer_size = 4096;
    config.write_buffer_size = 0;
    let run_tag = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    Ok(Target {
        addr,
        host: host.to_owned(),
        routing_id,
        sources,
        config,
        run_tag,
    })
}

/// Opens tunnels `from..to`: phones only, or phone+computer pairs.
async fn open_range(
    target: &Arc<Target>,
    shared: &Arc<Shared>,
    from: usize,
    to: usize,
    with_computer: bool,
    concurrency: usize,
) -> Vec<(Ws, Option<Ws>)> {
    let permits = Arc::new(Semaphore::new(concurrency.max(1)));
    let mut tasks = Vec::with_capacity(to - from);
    for i in from..to {
        let Ok(permit) = permits.clone().acquire_owned().await else {
            break;
        };
        let target = target.clone();
        let shared = shared.clone();
        tasks.push(tokio::spawn(async move {
            let _permit = permit;
            let (phone, routing_id) = match target.phone(i).await {
                Ok(p) => p,
                Err(e) => {
                    shared.setup_error(format!("new #{i}: {e}"));
                    return None;
                }
            };
            if !with_computer {
                return Some((phone, None));
            }
            match target.computer(i, &routing_id).await {
                Ok(c) => Some((phone, Some(c))),
                Err(e) => {
                    shared.setup_error(format!("connect #{i}: {e}"));
                    None
                }
            }
        }));
    }
    let mut out = Vec::with_capacity(tasks.len());
    for t in tasks {
        if let Ok(Some(pair)) = t.await {
            out.push(pair);
        }
    }
    out
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)] as f64 / 1000.0
}

async fn echo(mut computer: Ws, shared: Arc<Shared>) {
    while let Some(msg) = computer.next().await {
        match msg {
            Ok(m @ Message::Binary(_)) => {
                if let Err(e) = computer.send(m).await {
                    shared.traffic_error(format!("echo send: {e}"));
                    return;
                }
            }
            Ok(Message::Close(_)) => return,
            Ok(_) => {}
            Err(e) => {
                shared.traffic_error(format!("echo read: {e}"));
                return;
            }
        }
    }
}

/// Drives round trips over `phones` one at a time; returns latencies in ns.
async fn drive(mut phones: Vec<Ws>, rounds: usize, size: usize, shared: Arc<Shared>) -> Vec<u64> {
    let mut latencies = Vec::with_capacity(phones.len() * rounds);
    let mut payload = vec![0u8; size];
    for round in 0..rounds {
        for (i, phone) in phones.iter_mut().enumerate() {
            let tag = (round * 31 + i) as u8;
            payload.fill(tag);
            let started = Instant::now();
            if let Err(e) = phone.send(Message::binary(payload.clone())).await {
                shared.traffic_error(format!("send: {e}"));
                continue;
            }
            loop {
                match phone.next().await {
                    Some(Ok(Message::Binary(b))) => {
                        if b.len() != size || b.first() != Some(&tag) {
                            shared.traffic_error("echo mismatch".into());
                        }
                        latencies.push(started.elapsed().as_nanos() as u64);
                        break;
                    }
                    Some(Ok(Message::Close(f))) => {
                        shared.traffic_error(format!("closed by relay: {f:?}"));
                        return latencies;
                    }
                    Some(Ok(_)) => {}
                    Some(Err(e)) => {
                        shared.traffic_error(format!("read: {e}"));
                        return latencies;
                    }
                    None => {
                        shared.traffic_error("connection ended".into());
                        return latencies;
                    }
                }
            }
        }
    }
    latencies
}

async fn run(args: Args) -> Result<Report, LoadError> {
    let target = Arc::new(parse_target(&args)?);
    let shared = Arc::new(Shared {
        errors: std::sync::Mutex::new(Errors::default()),
        traffic_errors: AtomicU64::new(0),
    });
    let relay = |pid: Option<u32>| pid.map(usage).transpose();
    let baseline = relay(args.relay_pid)?;
    let mut report = Report {
        mode: args.mode,
        url: args.url.clone(),
        pairs: args.pairs,
        sources: args.sources,
        relay_baseline: baseline,
        setup: None,
        latency: None,
        contacts: None,
        soak: None,
        steps: Vec::new(),
        after_close: Vec::new(),
        relay_final: None,
        errors: Errors::default(),
    };
    let settle = Duration::from_secs_f64(args.settle.max(0.0));

    match args.mode {
        Mode::Soak => {
            let settings = soak::Settings {
                pairs: args.pairs,
                rounds: args.messages,
                size: args.size.max(8),
                abort: args.abort_fraction,
                stall: args.stall_fraction,
                slow: args.slow_fraction,
                concurrency: args.setup_concurrency,
                admin: args.admin,
                relay_pid: args.relay_pid,
            };
            report.soak = Some(soak::run(target.clone(), settings).await?);
            report.relay_final = relay(args.relay_pid)?;
        }
        Mode::Contact => {
            report.contacts = Some(
                contact::run(
                    target.clone(),
                    shared.clone(),
                    &args.url,
                    args.pairs,
                    args.setup_concurrency,
                    args.relay_pid,
                )
                .await?,
            );
            report.relay_final = relay(args.relay_pid)?;
        }
        Mode::Pending | Mode::Idle => {
            let steps = if args.steps.is_empty() {
                vec![args.pairs]
            } else {
                args.steps.clone()
            };
            if steps.windows(2).any(|w| w[0] >= w[1]) || steps.first() == Some(&0) {
                return Err(LoadError::BadSteps);
            }
            report.pairs = steps.last().copied().unwrap_or(0);
            let mut held = Vec::new();
            let mut prev = (0usize, baseline.map(|u| u.rss_kib));
            for &total in &steps {
                let opened = open_range(
                    &target,
                    &shared,
                    prev.0,
                    total,
                    matches!(args.mode, Mode::Idle),
                    args.setup_concurrency,
                )
                .await;
                held.extend(opened);
                tokio::time::sleep(settle).await;
                let rss = relay(args.relay_pid)?.map(|u| u.rss_kib);
                let slope = match (prev.1, rss) {
                    (Some(a), Some(b)) => Some((b as f64 - a as f64) / (total - prev.0) as f64),
                    _ => None,
                };
                report.steps.push(Step {
                    tunnels: held.len(),
                    relay_rss_kib: rss,
                    kib_per_tunnel_since_previous: slope,
                });
                prev = (total, rss);
            }
            report.relay_final = relay(args.relay_pid)?;
            drop(held);
        }
        Mode::Rtt => {
            let before = relay(args.relay_pid)?;
            let gen_before = self_cpu_ns();
            let started = Instant::now();
            let pairs = open_range(
                &target,
                &shared,
                0,
                args.pairs,
                true,
                args.setup_concurrency,
            )
            .await;
            let seconds = started.elapsed().as_secs_f64();
            let after = relay(args.relay_pid)?;
            let n = pairs.len().max(1) as f64;
            report.setup = Some(Setup {
                pairs_ok: pairs.len(),
                seconds,
                pairs_per_second: pairs.len() as f64 / seconds,
                relay_cpu_us_per_pair: before
                    .zip(after)
                    .map(|(b, a)| a.cpu_ns.saturating_sub(b.cpu_ns) as f64 / 1000.0 / n),
                generator_cpu_us_per_pair: self_cpu_ns().saturating_sub(gen_before) as f64
                    / 1000.0
                    / n,
            });
            tokio::time::sleep(settle).await;
            report.steps.push(Step {
                tunnels: pairs.len(),
                relay_rss_kib: relay(args.relay_pid)?.map(|u| u.rss_kib),
                kib_per_tunnel_since_previous: None,
            });

            let mut phones = Vec::with_capacity(pairs.len());
            for (phone, computer) in pairs {
                if let Some(c) = computer {
                    tokio::spawn(echo(c, shared.clone()));
                }
                phones.push(phone);
            }
            let inflight = if args.inflight == 0 {
                phones.len()
            } else {
                args.inflight.min(phones.len())
            }
            .max(1);
            let mut groups: Vec<Vec<Ws>> = (0..inflight).map(|_| Vec::new()).collect();
            for (i, p) in phones.into_iter().enumerate() {
                groups[i % inflight].push(p);
            }
            let before = relay(args.relay_pid)?;
            let gen_before = self_cpu_ns();
            let started = Instant::now();
            let drivers: Vec<_> = groups
                .into_iter()
                .map(|g| tokio::spawn(drive(g, args.messages, args.size, shared.clone())))
                .collect();
            let mut all = Vec::new();
            for d in drivers {
                if let Ok(l) = d.await {
                    all.extend(l);
                }
            }
            let seconds = started.elapsed().as_secs_f64();
            let after = relay(args.relay_pid)?;
            all.sort_unstable();
            let mean = if all.is_empty() {
                0.0
            } else {
                all.iter().sum::<u64>() as f64 / all.len() as f64 / 1000.0
            };
            report.latency = Some(Latency {
                round_trips: all.len(),
                inflight,
                message_bytes: args.size,
                seconds,
                round_trips_per_second: all.len() as f64 / seconds,
                p50_us: percentile(&all, 0.50),
                p90_us: percentile(&all, 0.90),
                p99_us: percentile(&all, 0.99),
                p999_us: percentile(&all, 0.999),
                max_us: all.last().map_or(0.0, |v| *v as f64 / 1000.0),
                mean_us: mean,
                relay_cpu_us_per_round_trip: before.zip(after).map(|(b, a)| {
                    a.cpu_ns.saturating_sub(b.cpu_ns) as f64 / 1000.0 / all.len().max(1) as f64
                }),
                generator_cpu_us_per_round_trip: self_cpu_ns().saturating_sub(gen_before) as f64
                    / 1000.0
                    / all.len().max(1) as f64,
            });
            report.relay_final = after;
            // The drivers have dropped every phone; the relay closes each computer in turn.
            let started = Instant::now();
            for at in [0u64, 1, 2, 5, 10, 20, 30, 45, 60, 90, 120] {
                if args.after_close == 0 || at > args.after_close {
                    break;
                }
                let due = started + Duration::from_secs(at);
                tokio::time::sleep_until(due.into()).await;
                report.after_close.push(Sample {
                    seconds_after_close: at,
                    relay_rss_kib: relay(args.relay_pid)?.map(|u| u.rss_kib),
                });
            }
        }
    }
    let mut errors = match shared.errors.lock() {
        Ok(mut g) => std::mem::take(&mut *g),
        Err(p) => std::mem::take(&mut *p.into_inner()),
    };
    errors.traffic = shared.traffic_errors.load(Ordering::Relaxed);
    report.errors = errors;
    Ok(report)
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let runtime = if args.threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(args.threads)
            .enable_all()
            .build()
    };
    let result = runtime
        .map_err(LoadError::Runtime)
        .and_then(|rt| rt.block_on(run(args)));
    match result {
        Ok(report) => match serde_json::to_string_pretty(&report) {
            Ok(json) => {
                println!("{json}");
                if report.soak.as_ref().is_some_and(|s| !s.passed) {
                    eprintln!("cable-load: the soak failed; see \"problems\" in the report");
                    return std::process::ExitCode::FAILURE;
                }
                std::process::ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("cable-load: {e}");
                std::process::ExitCode::FAILURE
            }
        },
        Err(e) => {
            eprintln!("cable-load: {e}");
            std::process::ExitCode::from(2)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(extra: &[&str]) -> Args {
        let mut argv = vec!["cable-load"];
        argv.extend_from_slice(extra);
        Args::try_parse_from(argv).unwrap()
    }

    #[test]
    fn percentiles_pick_nearest_rank() {
        let v: Vec<u64> = (1..=100).map(|i| i * 1000).collect();
        assert_eq!(percentile(&v, 0.50), 51.0);
        assert_eq!(percentile(&v, 0.99), 99.0);
        assert_eq!(percentile(&v, 1.0), 100.0);
        assert_eq!(percentile(&[], 0.5), 0.0);
    }

    #[test]
    fn target_from_arguments() {
        let t = parse_target(&args(&["--url", "ws://127.0.0.1:9000/", "--sources", "3"])).unwrap();
        assert_eq!(t.addr, "127.0.0.1:9000".parse().unwrap());
        assert_eq!(
            t.sources,
            vec![
                IpAddr::from([127, 0, 0, 2]),
                IpAddr::from([127, 0, 0, 3]),
                IpAddr::from([127, 0, 0, 4])
            ]
        );
        assert_ne!(t.tunnel_id(5), t.tunnel_id(6));
        assert_eq!(t.tunnel_id(5).as_bytes()[15], 5);
        assert_eq!(t.routing_id, RoutingId::default());
        assert!(matches!(
            parse_target(&args(&["--url", "wss://127.0.0.1:9000"])),
            Err(LoadError::BadUrl(_))
        ));
        assert!(matches!(
            parse_target(&args(&["--routing-id", "12345g"])),
            Err(LoadError::BadRoutingId(cable_proto::Error::BadHexId {
                kind: cable_proto::HexIdErrorKind::Char { position: 5 },
                ..
            }))
        ));
    }

    #[test]
    fn reads_own_usage_from_proc() {
        let u = usage(std::process::id()).unwrap();
        assert!(u.rss_kib > 0);
        assert!(u.cpu_ns > 0);
    }

    #[tokio::test]
    async fn drives_pairs_against_an_in_process_relay() {
        let relay = cable_tunnel_server::Relay::bind(cable_tunnel_server::RelayConfig::default())
            .await
            .unwrap();
        let url = relay.url();
        let pid = std::process::id().to_string();
        let report = run(args(&[
            "--url",
            &url,
            "--pairs",
            "6",
            "--messages",
            "3",
            "--size",
            "100",
            "--inflight",
            "2",
            "--settle",
            "0",
            "--relay-pid",
            &pid,
        ]))
        .await
        .unwrap();
        assert_eq!(report.errors.setup, 0);
        assert_eq!(report.errors.traffic, 0);
        assert_eq!(report.setup.as_ref().unwrap().pairs_ok, 6);
        let latency = report.latency.unwrap();
        assert_eq!(latency.round_trips, 18);
        assert_eq!(latency.inflight, 2);
        assert!(latency.p50_us > 0.0 && latency.p50_us <= latency.max_us);
        assert_eq!(relay.metrics().active(), 6);
        assert!(report.after_close.is_empty());

        let report = run(args(&[
            "--url",
            &url,
            "--pairs",
            "2",
            "--messages",
            "1",
            "--settle",
            "0",
            "--after-close",
            "1",
            "--relay-pid",
            &pid,
        ]))
        .await
        .unwrap();
        let at: Vec<u64> = report
            .after_close
            .iter()
            .map(|s| s.seconds_after_close)
            .collect();
        assert_eq!(at, vec![0, 1]);
        assert!(report.after_close.iter().all(|s| s.relay_rss_kib > Some(0)));

        let report = run(args(&[
            "--url", &url, "--mode", "pending", "--steps", "2,4", "--settle", "0",
        ]))
        .await
        .unwrap();
        assert_eq!(report.steps.len(), 2);
        assert_eq!(report.steps[1].tunnels, 4);
        assert_eq!(report.errors.setup, 0);
    }

    /// Computers join at the routing id their phone was given, not at `--routing-id`: what
    /// lets one run drive several instances behind a balancer.
    #[tokio::test]
    async fn follows_the_routing_id_the_relay_announces() {
        let relay = cable_tunnel_server::Relay::bind({
            let mut config = cable_tunnel_server::RelayConfig::default();
            config.routing_id = RoutingId::from_hex("0a0b0c").unwrap();
            config
        })
        .await
        .unwrap();
        let url = relay.url();
        for mode in ["rtt", "soak"] {
            let report = run(args(&[
                "--url",
                &url,
                "--mode",
                mode,
                "--pairs",
                "4",
                "--messages",
                "2",
                "--settle",
                "0",
            ]))
            .await
            .unwrap();
            assert_eq!(report.errors.setup, 0, "{mode}: {:?}", report.errors.first);
            if let Some(soak) = report.soak {
                assert!(soak.passed, "{soak:#?}");
            }
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn soaks_an_in_process_relay_and_finds_it_clean() {
        let relay = cable_tunnel_server::Relay::bind({
            let mut config = cable_tunnel_server::RelayConfig::default();
            config.admin_listen = Some("127.0.0.1:0".parse().unwrap());
            config
        })
        .await
        .unwrap();
        let admin = relay.admin_addr().unwrap().to_string();
        let url = relay.url();
        let report = run(args(&[
            "--url",
            &url,
            "--mode",
            "soak",
            "--pairs",
            "60",
            "--messages",
            "4",
            "--size",
            "300",
            "--abort-fraction",
            "0.3",
            "--stall-fraction",
            "0.1",
            "--slow-fraction",
            "0.1",
            "--admin",
            &admin,
        ]))
        .await
        .unwrap();
        let soak = report.soak.unwrap();
        assert!(soak.passed, "{soak:#?}");
        assert_eq!(soak.pairs_set_up, 60);

        // A relay that cuts every pair (messages above its limit) fails the soak.
        let mut config = cable_tunnel_server::RelayConfig::default();
        config.limits.max_message_size = 100;
        let strict = cable_tunnel_server::Relay::bind(config).await.unwrap();
        let report = run(args(&[
            "--url",
            &strict.url(),
            "--mode",
            "soak",
            "--pairs",
            "10",
            "--messages",
            "2",
            "--size",
            "300",
        ]))
        .await
        .unwrap();
        let soak = report.soak.unwrap();
        assert!(!soak.passed, "{soak:#?}");
        assert!(!soak.problems.is_empty());
    }

    #[tokio::test]
    async fn contacts_a_phone_through_an_in_process_relay() {
        use cable_tunnel_server::contact::ContactKeys;
        let keys = ContactKeys::parse(
            "1 0101010101010101010101010101010101010101010101010101010101010101\n",
        )
        .unwrap();
        let mut contact = cable_tunnel_server::ContactConfig::new(
            keys,
            cable_tunnel_server::VapidKey::generate(),
        );
        contact.allow_insecure_push = true;
        let relay = cable_tunnel_server::Relay::bind({
            let mut config = cable_tunnel_server::RelayConfig::default();
            config.contact = Some(contact);
            config
        })
        .await
        .unwrap();
        let url = relay.url();
        let pid = std::process::id().to_string();
        let report = run(args(&[
            "--url",
            &url,
            "--mode",
            "contact",
            "--pairs",
            "5",
            "--setup-concurrency",
            "2",
            "--relay-pid",
            &pid,
        ]))
        .await
        .unwrap();
        assert_eq!(report.errors.setup, 0, "{:?}", report.errors.first);
        let contacts = report.contacts.unwrap();
        assert_eq!(contacts.contacts_ok, 5);
        assert_eq!(
            relay
                .metrics()
                .contacts(cable_tunnel_server::ContactOutcome::Ok),
            5
        );

        // Without contact keys the relay refuses the registration, and the report says so.
        let plain = cable_tunnel_server::Relay::bind(cable_tunnel_server::RelayConfig::default())
            .await
            .unwrap();
        let err = run(args(&["--url", &plain.url(), "--mode", "contact"]))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("--allow-insecure-push"), "{err}");
    }
}
