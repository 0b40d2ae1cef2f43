//! `cable-tunnel-server`: runs the caBLE tunnel relay. See the library documentation for the
//! protocol behaviour, status codes and close codes.

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use cable_tunnel_server::contact::ContactKeys;
use cable_tunnel_server::{
    Cidr, ContactConfig, ForwardedHeader, Relay, RelayConfig, RelayError, RoutingId, TlsFiles,
    VapidKey,
};
use clap::{Parser, Subcommand, ValueEnum};
use tracing_subscriber::filter::{LevelFilter, ParseError};
use tracing_subscriber::EnvFilter;

/// WebSocket relay for FIDO hybrid (caBLE v2) tunnels: pairs a phone (`/cable/new/<id>`) with a
/// computer (`/cable/connect/<routing id>/<id>`) and forwards their encrypted messages.
///
/// Every setting can also be given in the environment variable named after it. Durations take
/// a unit: ms, s, m or h (e.g. `120s`, `500ms`).
#[derive(Debug, Parser)]
#[command(
    name = "cable-tunnel-server",
    version,
    max_term_width = 100,
    after_help = "Endpoints (tunnel listener): GET /cable/new/<32 hex> (101 with X-caBLE-Routing-ID), \
GET /cable/connect/<routing id>/<32 hex>; both need Sec-WebSocket-Protocol: fido.cable. \
Refusals: 400 not an upgrade or no fido.cable, 404 unknown path/tunnel/routing id or already \
joined, 405 not GET, 409 tunnel id in use, 429 rate limit, 431 head too large, 503 limits or \
draining. Close codes: 1000 peer closed, 1001 relay shutting down, 1008 policy (text frame, \
message limit, lifetime, no peer joined), 1009 message too big.\n\
Admin listener (127.0.0.1:9090 unless --admin-listen): GET /healthz, /readyz (503 while \
draining), /metrics (OpenMetrics, or Prometheus text 0.0.4 for an Accept naming only text/plain; \
the relay's metrics, cable_relay_build_info and process_*; 401 without the bearer token when \
--admin-token-file is set)."
)]
struct Args {
    #[command(subcommand)]
    command: Option<Command>,

    /// Address of the tunnel listener (HTTP/1.1 WebSocket upgrades; TLS if --tls-cert is set).
    #[arg(long, env = "CABLE_RELAY_LISTEN", default_value = "0.0.0.0:8080")]
    listen: SocketAddr,

    /// Address of the /healthz, /readyz and /metrics listener. Loopback by default: for a
    /// kubelet probe or a scraper on another host, set it to the pod or host address (e.g.
    /// 10.0.0.10:9090) or 0.0.0.0:9090, and keep the port off the public internet.
    #[arg(
        long,
        env = "CABLE_RELAY_ADMIN_LISTEN",
        default_value = "127.0.0.1:9090"
    )]
    admin_listen: SocketAddr,

    /// File holding a bearer token (one line, at least 16 visible ASCII characters, e.g. from
    /// `openssl rand -hex 32`). With it, /metrics answers 401 unless the request carries
    /// `Authorization: Bearer <token>` (Prometheus: `authorization: {credentials_file: …}`);
    /// /healthz and /readyz stay open for probes. Without it, /metrics is open to whoever
    /// reaches the admin port.
    #[arg(long, env = "CABLE_RELAY_ADMIN_TOKEN_FILE", value_name = "PATH")]
    admin_token_file: Option<PathBuf>,

    /// This instance's 3-byte routing id (6 hex digits). Sent to phones in X-caBLE-Routing-ID
    /// and required in /cable/connect/ paths; a load balancer routes connects by it. Give every
    /// instance behind one hostname its own id (e.g. from the StatefulSet ordinal).
    #[arg(long, env = "CABLE_RELAY_ROUTING_ID", default_value = "000000")]
    routing_id: RoutingId,

    /// PEM certificate chain for in-process TLS (needs --tls-key). Without it the listener
    /// speaks plain HTTP/1.1, for use behind a TLS-terminating load balancer. SIGHUP reads
    /// both files again (after a renewal), and so does --tls-watch when they change; a pair
    /// that does not load is refused and the current one kept.
    #[arg(long, env = "CABLE_RELAY_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<PathBuf>,

    /// PEM private key (PKCS#8, PKCS#1 or SEC1) for --tls-cert.
    #[arg(long, env = "CABLE_RELAY_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<PathBuf>,

    /// Also reload --tls-cert and --tls-key when either file changes, looking this often
    /// (e.g. 60s), for certificate managers that renew in place without signalling the
    /// relay (cert-manager secrets mounted in Kubernetes, certbot without a deploy hook).
    /// Off by default: SIGHUP alone reloads.
    #[arg(long, env = "CABLE_RELAY_TLS_WATCH", requires = "tls_cert", value_name = "DURATION", value_parser = parse_duration)]
    tls_watch: Option<Duration>,

    /// Maximum lifetime of a tunnel, counted from its `new` request; then both sides are
    /// closed with 1008.
    #[arg(long, env = "CABLE_RELAY_TUNNEL_LIFETIME", default_value = "120s", value_parser = parse_duration)]
    tunnel_lifetime: Duration,

    /// How long a tunnel waits for its computer to connect; then the phone is closed with 1008.
    #[arg(long, env = "CABLE_RELAY_UNJOINED_TIMEOUT", default_value = "60s", value_parser = parse_duration)]
    unjoined_timeout: Duration,

    /// Maximum size of one message in bytes; a bigger one closes the tunnel with 1009.
    #[arg(long, env = "CABLE_RELAY_MAX_MESSAGE_SIZE", default_value_t = 16384)]
    max_message_size: usize,

    /// Maximum messages relayed per direction per tunnel; one more closes it with 1008.
    #[arg(long, env = "CABLE_RELAY_MAX_MESSAGES", default_value_t = 1024)]
    max_messages_per_direction: u32,

    /// Maximum bytes relayed per direction per tunnel; a message beyond it closes the tunnel
    /// with 1008. A ceremony moves a few KiB; this keeps tunnels from carrying other traffic.
    #[arg(long, env = "CABLE_RELAY_MAX_BYTES", default_value_t = 1024 * 1024)]
    max_bytes_per_direction: u64,

    /// How long a joined tunnel may relay nothing either way; then both sides are closed
    /// with 1008. Covers a person confirming on the phone between request and answer.
    #[arg(long, env = "CABLE_RELAY_IDLE_TIMEOUT", default_value = "60s", value_parser = parse_duration)]
    idle_timeout: Duration,

    /// Messages a phone may send before its computer joins (buffered, then delivered first);
    /// one more closes the phone with 1008.
    #[arg(long, env = "CABLE_RELAY_PREJOIN_MAX_MESSAGES", default_value_t = 16)]
    prejoin_max_messages: usize,

    /// Bytes a phone may send before its computer joins.
    #[arg(long, env = "CABLE_RELAY_PREJOIN_MAX_BYTES", default_value_t = 32768)]
    prejoin_max_bytes: usize,

    /// Time allowed for the TLS handshake plus the complete HTTP request head (slowloris
    /// guard); a slower client is disconnected without an answer.
    #[arg(long, env = "CABLE_RELAY_HANDSHAKE_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    handshake_timeout: Duration,

    /// Maximum size of an HTTP request head in bytes; larger gets 431.
    #[arg(long, env = "CABLE_RELAY_MAX_REQUEST_HEAD", default_value_t = 4096)]
    max_request_head: usize,

    /// Maximum open client connections (each tunnel uses two); more get 503. Mind the
    /// process's open-file limit.
    #[arg(long, env = "CABLE_RELAY_MAX_CONNECTIONS", default_value_t = 50000)]
    max_connections: usize,

    /// Maximum tunnels waiting for their computer; more `new` requests get 503.
    #[arg(long, env = "CABLE_RELAY_MAX_PENDING", default_value_t = 25000)]
    max_pending_tunnels: usize,

    /// Sustained new+connect requests per second allowed per source address (IPv6: per /64);
    /// more get 429. 0 turns the limit off. Behind a balancer, keep it on with
    /// --trusted-proxy (and --proxy-protocol), so that the source is the client, not the
    /// balancer.
    #[arg(long, env = "CABLE_RELAY_RATE_LIMIT", default_value_t = 20.0)]
    rate_limit_per_second: f64,

    /// Burst allowance of the per-source rate limit, in requests.
    #[arg(long, env = "CABLE_RELAY_RATE_BURST", default_value_t = 100)]
    rate_limit_burst: u32,

    /// Require a PROXY protocol header (v1 or v2: HAProxy `send-proxy-v2`, nginx stream
    /// `proxy_protocol on`) at the start of every tunnel connection, and rate-limit and log
    /// by the client it names. Needs --trusted-proxy: a connection from any other network,
    /// or without a valid header within --handshake-timeout, is closed without an answer.
    #[arg(long, env = "CABLE_RELAY_PROXY_PROTOCOL", requires = "trusted_proxy")]
    proxy_protocol: bool,

    /// Network of a balancer whose PROXY header or forwarded header is believed, in CIDR
    /// notation (10.0.0.0/8, 127.0.0.1/32, ::1/128; a bare address is one host). Repeat for
    /// several; comma-separated in the environment variable. None by default: the socket's
    /// peer is then always the client.
    #[arg(
        long,
        env = "CABLE_RELAY_TRUSTED_PROXIES",
        value_name = "CIDR",
        value_delimiter = ','
    )]
    trusted_proxy: Vec<Cidr>,

    /// Without --proxy-protocol: the request header in which a trusted proxy names the
    /// client. The client is its rightmost address that is not itself in a trusted network;
    /// from a peer outside them the header is ignored. Pick the header your balancer sets
    /// (nginx `$proxy_add_x_forwarded_for`, HAProxy `option forwardfor`: x-forwarded-for),
    /// so that a client cannot slip in the other one.
    #[arg(
        long,
        env = "CABLE_RELAY_FORWARDED_HEADER",
        value_enum,
        default_value_t = ForwardedHeaderArg::XForwardedFor
    )]
    forwarded_header: ForwardedHeaderArg,

    /// On SIGTERM/SIGINT: refuse `new` (readyz 503) but keep serving joins and live tunnels for
    /// this long, then close what is left with 1001 and exit. A second signal exits at once.
    #[arg(long, env = "CABLE_RELAY_DRAIN_TIMEOUT", default_value = "125s", value_parser = parse_duration)]
    drain_timeout: Duration,

    /// Time to wait for a client's close reply after the relay sent its close frame.
    #[arg(long, env = "CABLE_RELAY_CLOSE_TIMEOUT", default_value = "2s", value_parser = parse_duration)]
    close_timeout: Duration,

    /// Listen backlog of the tunnel listener (capped by net.core.somaxconn). A small backlog
    /// drops SYNs when many clients arrive at once.
    #[arg(long, env = "CABLE_RELAY_BACKLOG", default_value_t = 4096)]
    listen_backlog: u32,

    /// WebSocket read buffer per socket, in bytes. caBLE messages are small; larger buffers
    /// cost memory on every idle connection (bigger messages still work).
    #[arg(long, env = "CABLE_RELAY_WS_READ_BUFFER", default_value_t = 2048)]
    ws_read_buffer: usize,

    /// Runtime worker threads; 0 = one per CPU the process may run on (see taskset/cpusets).
    /// With one, a single-threaded scheduler is used.
    #[arg(long, env = "CABLE_RELAY_WORKER_THREADS", default_value_t = 0)]
    worker_threads: usize,

    /// Contact keys (enables POST /cable/push/register and GET /cable/contact/; needs
    /// --vapid-key-file). One key per line, current key first: `<id 0-255> <64 hex>`, older
    /// keys may end in `until=<unix seconds>`, after which their contact ids get 410. Every
    /// instance behind one host name needs the same file. Make lines with `gen-contact-key`.
    #[arg(
        long,
        env = "CABLE_RELAY_CONTACT_KEY_FILE",
        requires = "vapid_key_file"
    )]
    contact_key_file: Option<PathBuf>,

    /// VAPID private key (P-256) signing Web Push messages: PEM PKCS#8, base64url of the
    /// 32-byte scalar, or 32 raw bytes. Shared by every instance. Make one with `gen-vapid-key`.
    #[arg(
        long,
        env = "CABLE_RELAY_VAPID_KEY_FILE",
        requires = "contact_key_file"
    )]
    vapid_key_file: Option<PathBuf>,

    /// The VAPID `sub` claim: how a push service reaches the relay's operator.
    #[arg(
        long,
        env = "CABLE_RELAY_VAPID_SUBJECT",
        default_value = "mailto:relay-operator@invalid"
    )]
    vapid_subject: String,

    /// Time allowed for one Web Push request before the contact gets 503.
    #[arg(long, env = "CABLE_RELAY_PUSH_TIMEOUT", default_value = "5s", value_parser = parse_duration)]
    push_timeout: Duration,

    /// TTL of a push message: how long a push service may keep it for an offline phone.
    #[arg(long, env = "CABLE_RELAY_PUSH_TTL", default_value = "60s", value_parser = parse_duration)]
    push_ttl: Duration,

    /// Accept http:// push endpoints at registration (tests only).
    #[arg(long, env = "CABLE_RELAY_ALLOW_INSECURE_PUSH")]
    allow_insecure_push: bool,

    /// Log format: human-readable lines or one JSON object per line.
    #[arg(long, env = "CABLE_RELAY_LOG_FORMAT", value_enum, default_value_t = LogFormat::Human)]
    log_format: LogFormat,

    /// Log filter (tracing EnvFilter syntax). One info line is logged per tunnel lifetime.
    /// A bare level (`debug`, `trace`) applies to the relay's own code; dependencies log
    /// warnings and errors only unless named (`info,tungstenite=debug`): at debug and trace
    /// they print requests and frames, and requests carry tunnel ids.
    #[arg(long, env = "CABLE_RELAY_LOG", default_value = "info")]
    log: String,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print a new contact key line (`<id> <64 hex>`) for --contact-key-file.
    GenContactKey {
        /// Key id, 0-255; use one no line in the file has.
        #[arg(long)]
        id: u8,
    },
    /// Print a new VAPID private key (PEM PKCS#8) for --vapid-key-file; the public key
    /// (the phones' applicationServerKey) goes to stderr.
    GenVapidKey,
    /// Choose the host name of a self-hosted relay. Phones name relays by a domain id, and
    /// ids from 256 up stand for hashed names (`cable.<hash>.<tld>`) that the operator must
    /// register: list candidates, find the id of a name, print what to set up.
    #[command(subcommand)]
    Domain(DomainCommand),
}

#[derive(Debug, Subcommand)]
enum DomainCommand {
    /// List domain ids and their host names, from --start upwards.
    List {
        /// First id (hashed names start at 256).
        #[arg(long, default_value_t = 256)]
        start: u16,
        /// How many to list.
        #[arg(long, default_value_t = 20)]
        limit: usize,
        /// Only names under these top-level domains (com, org, net, info); repeatable.
        #[arg(long)]
        tld: Vec<String>,
    },
    /// Print the domain id of a host name (`cable.<hash>.<tld>`, or an assigned one).
    Find {
        /// The host name.
        host: String,
    },
    /// Print the domain to register, the DNS record, the certificate name and the phone's
    /// flags for an id or a host name.
    Setup {
        /// Domain id (256–65535) or host name.
        id_or_host: String,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum ForwardedHeaderArg {
    /// `X-Forwarded-For: client, proxy, …`.
    XForwardedFor,
    /// RFC 7239 `Forwarded: for=client, for=proxy`.
    Forwarded,
    /// Read neither.
    #[value(name = "none")]
    NoHeader,
}

impl From<ForwardedHeaderArg> for ForwardedHeader {
    fn from(arg: ForwardedHeaderArg) -> Self {
        match arg {
            ForwardedHeaderArg::XForwardedFor => Self::XForwardedFor,
            ForwardedHeaderArg::Forwarded => Self::Forwarded,
            ForwardedHeaderArg::NoHeader => Self::None,
        }
    }
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum LogFormat {
    Human,
    Json,
}

fn parse_duration(text: &str) -> Result<Duration, RelayError> {
    let bad = || RelayError::BadDuration {
        text: text.to_owned(),
    };
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
    let (num, unit) = t.split_at(split);
    let n: u64 = num.parse().map_err(|_| bad())?;
    match unit.trim() {
        "ms" => Ok(Duration::from_millis(n)),
        "s" => Ok(Duration::from_secs(n)),
        "m" => n.checked_mul(60).map(Duration::from_secs).ok_or_else(bad),
        "h" => n.checked_mul(3600).map(Duration::from_secs).ok_or_else(bad),
        _ => Err(bad()),
    }
}

fn config(args: &Args) -> Result<RelayConfig, RelayError> {
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(cable_tunnel_server::server_config_from_pem(cert, key)?),
        (None, None) => None,
        _ => return Err(RelayError::TlsIncomplete),
    };
    // Field by field: the configuration types grow, so they cannot be built literally.
    let mut config = RelayConfig::default();
    config.listen = args.listen;
    config.admin_listen = Some(args.admin_listen);
    config.routing_id = args.routing_id;
    config.tls = tls;
    let limits = &mut config.limits;
    limits.tunnel_lifetime = args.tunnel_lifetime;
    limits.unjoined_timeout = args.unjoined_timeout;
    limits.max_message_size = args.max_message_size;
    limits.max_messages_per_direction = args.max_messages_per_direction;
    limits.max_bytes_per_direction = args.max_bytes_per_direction;
    limits.idle_timeout = args.idle_timeout;
    limits.prejoin_max_messages = args.prejoin_max_messages;
    limits.prejoin_max_bytes = args.prejoin_max_bytes;
    limits.handshake_timeout = args.handshake_timeout;
    limits.max_connections = args.max_connections;
    limits.max_pending_tunnels = args.max_pending_tunnels;
    limits.rate_limit_per_second = args.rate_limit_per_second;
    limits.rate_limit_burst = args.rate_limit_burst;
    limits.max_request_head = args.max_request_head;
    limits.close_timeout = args.close_timeout;
    config.drain_timeout = args.drain_timeout;
    config.listen_backlog = args.listen_backlog;
    config.ws_read_buffer = args.ws_read_buffer;
    config.contact = contact_config(args)?;
    let addresses = &mut config.client_addresses;
    addresses.proxy_protocol = args.proxy_protocol;
    addresses.trusted_proxies = args.trusted_proxy.clone();
    addresses.forwarded_header = args.forwarded_header.into();
    config.admin_token = args
        .admin_token_file
        .as_deref()
        .map(cable_tunnel_server::AdminToken::load)
        .transpose()?;
    Ok(config)
}

fn contact_config(args: &Args) -> Result<Option<ContactConfig>, RelayError> {
    let (Some(keys), Some(vapid)) = (&args.contact_key_file, &args.vapid_key_file) else {
        return Ok(None);
    };
    let mut contact = ContactConfig::new(ContactKeys::load(keys)?, VapidKey::load(vapid)?);
    contact.vapid_subject = args.vapid_subject.clone();
    contact.push_timeout = args.push_timeout;
    contact.push_ttl = args.push_ttl;
    contact.allow_insecure_push = args.allow_insecure_push;
    Ok(Some(contact))
}

/// Runs a key-generating or domain subcommand.
fn generate(command: &Command) -> ExitCode {
    match command {
        Command::Domain(query) => domain(query),
        Command::GenContactKey { id } => {
            println!(
                "{}",
                &*ContactKeys::generate_line(*id, &mut rand_core::OsRng)
            );
            ExitCode::SUCCESS
        }
        Command::GenVapidKey => {
            let key = VapidKey::generate();
            let Some(pem) = key.to_pem() else {
                eprintln!("cannot encode the key");
                return ExitCode::FAILURE;
            };
            print!("{}", &*pem);
            eprintln!(
                "VAPID public key (applicationServerKey): {}",
                key.public_key_b64url()
            );
            ExitCode::SUCCESS
        }
    }
}

/// Crates whose events a bare level in `--log` turns on.
const OWN_TARGETS: [&str; 2] = ["cable_tunnel_server", "cable_proto"];

/// Every other target logs at most this much unless `--log` names it. The tunnel id is a
/// capability (whoever knows it can join the tunnel); tungstenite logs a client's request,
/// which carries it, and every frame at trace level, and other dependencies print requests
/// or socket details at debug. So `--log trace` must not reach them.
const DEPENDENCY_LEVEL: LevelFilter = LevelFilter::WARN;

/// Rewrites a user's filter so that bare levels apply to `OWN_TARGETS` only; directives that
/// name a target or a span are kept as written.
fn domain(query: &DomainCommand) -> ExitCode {
    use cable_tunnel_server::domain_names;
    let result = match query {
        DomainCommand::List { start, limit, tld } => {
            domain_names::list(*start, *limit, tld).map(|names| {
                for n in names {
                    println!("{:>5}  {}", n.id, n.host);
                }
            })
        }
        DomainCommand::Find { host } => domain_names::resolve(host).map(|n| println!("{}", n.id)),
        DomainCommand::Setup { id_or_host } => {
            domain_names::resolve(id_or_host).map(|n| print!("{n}"))
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cable-tunnel-server: {e}");
            ExitCode::FAILURE
        }
    }
}

fn log_directives(spec: &str) -> String {
    let mut own_level = None;
    let mut named = Vec::new();
    for directive in spec.split(',').map(str::trim).filter(|d| !d.is_empty()) {
        match directive.parse::<LevelFilter>() {
            Ok(level) => own_level = Some(level),
            Err(_) => named.push(directive),
        }
    }
    // A quieter bare level than the dependencies' default quiets them too.
    let global = own_level.map_or(DEPENDENCY_LEVEL, |l| l.min(DEPENDENCY_LEVEL));
    let mut out = vec![global.to_string()];
    if let Some(level) = own_level {
        out.extend(OWN_TARGETS.iter().map(|t| format!("{t}={level}")));
    }
    out.extend(named.into_iter().map(str::to_owned));
    out.join(",")
}

fn log_filter(spec: &str) -> Result<EnvFilter, ParseError> {
    EnvFilter::builder().parse(log_directives(spec))
}

/// Installs the log subscriber. A bad `--log` filter is an error: an operator who asked for
/// a filter must not silently get another one. Colour escapes only on a terminal, so that
/// journald, `docker logs` and files get plain lines.
fn init_logging(args: &Args) -> Result<(), ParseError> {
    let filter = log_filter(&args.log)?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    match args.log_format {
        LogFormat::Human => builder.init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
    Ok(())
}

/// Returns freed memory to the system (background purge threads, jemalloc's default decay):
/// after a burst of tunnels the relay's RSS falls back near its baseline instead of staying
/// at the peak, which operators would read as a leak. BENCHMARKS.md has the figures.
#[cfg(feature = "jemalloc")]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    let args = Args::parse();
    if let Some(command) = &args.command {
        return generate(command);
    }
    if let Err(e) = init_logging(&args) {
        eprintln!(
            "cable-tunnel-server: invalid --log filter {:?}: {e}",
            args.log
        );
        return ExitCode::from(2);
    }
    let config = match config(&args) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e.chain(), "invalid configuration");
            return ExitCode::from(2);
        }
    };
    let threads = match args.worker_threads {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    };
    // With one core the single-threaded scheduler does the same work with less
    // synchronisation than a one-worker multi-threaded one.
    let mut runtime = if threads == 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        b.worker_threads(threads);
        b
    };
    runtime.enable_all();
    let runtime = match runtime.build() {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, "cannot start the runtime");
            return ExitCode::FAILURE;
        }
    };
    let tls_files = args
        .tls_cert
        .clone()
        .zip(args.tls_key.clone())
        .map(|(cert, key)| TlsFiles::new(cert, key));
    match runtime.block_on(run(config, tls_files, args.tls_watch)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e.chain(), "relay failed");
            ExitCode::FAILURE
        }
    }
}

async fn run(
    config: RelayConfig,
    tls_files: Option<TlsFiles>,
    tls_watch: Option<Duration>,
) -> Result<(), RelayError> {
    use tokio::signal::unix::{signal, SignalKind};
    let relay = Relay::bind(config).await?;
    if let Some(files) = tls_files {
        if let Some(every) = tls_watch {
            tracing::info!(every = ?every, "watching the TLS certificate and key files");
            files.clone().watch(relay.handle(), every);
        }
        reload_tls_on_sighup(relay.handle(), files);
    }
    let handle = relay.handle();
    let term = signal(SignalKind::terminate());
    let int = signal(SignalKind::interrupt());
    if let (Ok(mut term), Ok(mut int)) = (term, int) {
        tokio::spawn(async move {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
            tracing::info!("signal received: draining");
            handle.drain();
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
            tracing::info!("second signal: stopping now");
            handle.stop();
        });
    } else {
        tracing::warn!("cannot install signal handlers");
    }
    relay.join().await
}

/// SIGHUP reads the certificate and key files again (after a renewal). A pair that does not
/// load is refused with one log line and the relay keeps serving the one it has.
fn reload_tls_on_sighup(handle: cable_tunnel_server::RelayHandle, files: TlsFiles) {
    use tokio::signal::unix::{signal, SignalKind};
    let Ok(mut hup) = signal(SignalKind::hangup()) else {
        tracing::warn!("cannot install the SIGHUP handler: certificates reload only on restart");
        return;
    };
    tokio::spawn(async move {
        while hup.recv().await.is_some() {
            files.reload(&handle, "SIGHUP");
        }
    });
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("120s").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("1h").unwrap(), Duration::from_secs(3600));
        for bad in ["", "s", "12", "12x", "-1s", "1.5s"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn admin_token_comes_from_its_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("admin-token");
        let arg = path.to_str().unwrap();
        assert!(config(&Args::try_parse_from(["x"]).unwrap())
            .unwrap()
            .admin_token
            .is_none());
        std::fs::write(&path, "too-short\n").unwrap();
        let args = Args::try_parse_from(["x", "--admin-token-file", arg]).unwrap();
        assert!(matches!(
            config(&args),
            Err(RelayError::BadAdminToken { .. })
        ));
        std::fs::write(&path, "0123456789abcdef0123456789abcdef\n").unwrap();
        assert!(config(&args).unwrap().admin_token.is_some());
    }

    #[test]
    fn help_and_defaults() {
        use clap::CommandFactory;
        Args::command().debug_assert();
        let args = Args::try_parse_from(["cable-tunnel-server"]).unwrap();
        let c = config(&args).unwrap();
        assert_eq!(c.limits.tunnel_lifetime, Duration::from_secs(120));
        assert_eq!(c.limits.max_message_size, 16384);
        assert!(c.tls.is_none());
        assert!(Args::try_parse_from(["x", "--tls-cert", "a.pem"]).is_err());
        assert!(Args::try_parse_from(["x", "--routing-id", "12345"]).is_err());
        let addrs = &c.client_addresses;
        assert!(!addrs.proxy_protocol && addrs.trusted_proxies.is_empty());
        assert_eq!(addrs.forwarded_header, ForwardedHeader::XForwardedFor);
    }

    #[test]
    fn balancer_flags() {
        let args = Args::try_parse_from([
            "x",
            "--proxy-protocol",
            "--trusted-proxy",
            "10.0.0.0/8",
            "--trusted-proxy",
            "127.0.0.1/32,::1/128",
            "--forwarded-header",
            "forwarded",
        ])
        .unwrap();
        let c = config(&args).unwrap().client_addresses;
        assert!(c.proxy_protocol);
        let nets: Vec<String> = c.trusted_proxies.iter().map(ToString::to_string).collect();
        assert_eq!(nets, ["10.0.0.0/8", "127.0.0.1/32", "::1/128"]);
        assert_eq!(c.forwarded_header, ForwardedHeader::Forwarded);
        // The PROXY header is required of trusted peers only, so there must be some.
        assert!(Args::try_parse_from(["x", "--proxy-protocol"]).is_err());
        let bad = Args::try_parse_from(["x", "--trusted-proxy", "10.0.0.1/8"])
            .unwrap_err()
            .to_string();
        assert!(bad.contains("the network is 10.0.0.0/8"), "{bad}");
        let none = Args::try_parse_from(["x", "--forwarded-header", "none"]).unwrap();
        assert_eq!(
            config(&none).unwrap().client_addresses.forwarded_header,
            ForwardedHeader::None
        );
    }

    #[test]
    fn bare_levels_apply_to_the_relay_only() {
        assert_eq!(
            log_directives("trace"),
            "warn,cable_tunnel_server=trace,cable_proto=trace"
        );
        assert_eq!(
            log_directives(" debug , tungstenite=trace"),
            "warn,cable_tunnel_server=debug,cable_proto=debug,tungstenite=trace"
        );
        assert_eq!(
            log_directives("error"),
            "error,cable_tunnel_server=error,cable_proto=error"
        );
        assert_eq!(
            log_directives("OFF"),
            "off,cable_tunnel_server=off,cable_proto=off"
        );
        assert_eq!(
            log_directives("cable_tunnel_server::tunnel=debug"),
            "warn,cable_tunnel_server::tunnel=debug"
        );
        assert_eq!(log_directives(""), "warn");
        assert!(log_filter("info,[span{x=1}]=debug").is_ok());
        assert!(log_filter("tungstenite=loud").is_err());
    }

    /// The filter as installed: events of the relay and of its dependencies, at every level,
    /// through a real subscriber.
    #[test]
    fn trace_for_the_relay_keeps_dependencies_quiet() {
        use std::sync::{Arc, Mutex};
        #[derive(Clone, Default)]
        struct Capture(Arc<Mutex<Vec<u8>>>);
        impl std::io::Write for Capture {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(buf);
                Ok(buf.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let logged = |spec: &str| {
            let capture = Capture::default();
            let writer = capture.clone();
            let subscriber = tracing_subscriber::fmt()
                .with_env_filter(log_filter(spec).unwrap())
                .with_writer(move || writer.clone())
                .finish();
            tracing::subscriber::with_default(subscriber, || {
                tracing::trace!(target: "cable_tunnel_server::tunnel", "relay trace");
                tracing::debug!(target: "cable_proto::noise", "proto debug");
                tracing::trace!(target: "tungstenite::handshake::server", "GET /cable/new/a0a1");
                tracing::debug!(target: "tokio_tungstenite", "tokio-tungstenite debug");
                tracing::debug!(target: "rustls::server::hs", "rustls debug");
                tracing::warn!(target: "rustls::server::hs", "rustls warning");
            });
            let text = capture.0.lock().unwrap().clone();
            String::from_utf8(text).unwrap()
        };
        let trace = logged("trace");
        assert!(trace.contains("relay trace"), "{trace}");
        assert!(trace.contains("proto debug"), "{trace}");
        assert!(trace.contains("rustls warning"), "{trace}");
        for quiet in ["/cable/new/", "tokio-tungstenite debug", "rustls debug"] {
            assert!(!trace.contains(quiet), "{quiet} in:\n{trace}");
        }
        // Named explicitly, a dependency logs what was asked for.
        let asked = logged("info,tungstenite=trace");
        assert!(asked.contains("GET /cable/new/a0a1"), "{asked}");
        assert!(!asked.contains("relay trace"), "{asked}");
        assert!(!asked.contains("rustls debug"), "{asked}");
        // The default.
        let info = logged("info");
        assert!(
            !info.contains("relay trace") && info.contains("rustls warning"),
            "{info}"
        );
    }

    #[test]
    fn the_admin_listener_defaults_to_loopback() {
        let args = Args::try_parse_from(["cable-tunnel-server"]).unwrap();
        let admin = config(&args).unwrap().admin_listen.unwrap();
        assert!(admin.ip().is_loopback(), "{admin}");
        assert_eq!(admin.port(), 9090);
    }

    #[test]
    fn a_bad_routing_id_says_what_was_wrong() {
        let shown = |value: &str| {
            Args::try_parse_from(["x", "--routing-id", value])
                .unwrap_err()
                .to_string()
        };
        let short = shown("12345");
        assert!(
            short.contains("expected 6 hex characters, got 5"),
            "{short}"
        );
        let bad_char = shown("1234g6");
        assert!(bad_char.contains("position 4"), "{bad_char}");
        let args = Args::try_parse_from(["x", "--routing-id", "a1B2c3"]).unwrap();
        assert_eq!(args.routing_id.to_hex(), "A1B2C3");
    }
}
