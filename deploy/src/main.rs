//! `cable-lbconf`: generates nginx, HAProxy, Kubernetes Ingress and Gateway API routing for a set of
//! relay instances, or routing by rule that serves any number of them. See `cable-lbconf --help` and deploy/README.md.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use cable_deploy::by_ordinal::{self, OrdinalRouting};
use cable_deploy::gateway::{self, GatewayOptions};
use cable_deploy::haproxy::{self, ClientAddress, HaproxyOptions};
use cable_deploy::ingress::{self, IngressOptions};
use cable_deploy::{nginx, Instances};
use clap::{Args, Parser, Subcommand, ValueEnum};

/// Generate load-balancer routing for caBLE tunnel relays from a list of
/// `ROUTING_ID=HOST:PORT [admin=PORT]` entries (one instance owns one routing id), or, with
/// the `*-by-ordinal` commands, routing by rule for relays in a StatefulSet, generated once
/// for any number of them.
#[derive(Debug, Parser)]
#[command(name = "cable-lbconf", version)]
struct Cli {
    #[command(flatten)]
    input: Input,
    /// Write here (atomically, via a temporary file and rename) instead of standard output.
    #[arg(short, long, global = true, value_name = "FILE")]
    output: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

/// The instance list; every command but the `*-by-ordinal` ones needs it.
#[derive(Debug, Args)]
#[group(multiple = false)]
struct Input {
    /// File with one `ROUTING_ID=HOST:PORT [admin=PORT]` per line (`#` comments); `-` reads
    /// standard input.
    #[arg(long, value_name = "FILE", global = true)]
    instances: Option<PathBuf>,
    /// One instance, e.g. `000001=10.0.0.11:8080 admin=9090`; repeat for each.
    #[arg(long = "instance", value_name = "SPEC", global = true)]
    instance: Vec<String>,
}

/// Where a relay's routing id leads, for routing by rule.
#[derive(Debug, Args)]
struct RoutingArgs {
    /// The relays' CABLE_RELAY_ROUTING_ID_PREFIX (1-5 decimal digits): pod N owns the
    /// routing id made of it and N zero-padded to six digits in all.
    #[arg(long, default_value = "1")]
    routing_id_prefix: String,
    /// DNS name of one relay pod, `{ordinal}` where its ordinal goes (a StatefulSet's
    /// headless Service gives `<pod>.<service>.<namespace>.svc.cluster.local`).
    #[arg(long, value_name = "TEMPLATE")]
    pod_host: String,
    /// DNS name listing every ready relay, for new tunnels, contacts and registrations.
    #[arg(long, value_name = "HOST")]
    new_host: String,
    /// The relays' tunnel port.
    #[arg(long, default_value_t = 8080)]
    port: u16,
    /// DNS server, `address` or `address:port` (in Kubernetes the cluster DNS Service's
    /// ClusterIP); repeat for more. `resolv.conf` (HAProxy only) takes the name servers of
    /// the balancer's /etc/resolv.conf: in a pod, the cluster DNS.
    #[arg(long, required = true, value_name = "ADDRESS")]
    resolver: Vec<String>,
    /// Seconds a DNS answer is used: how soon an added or removed relay is seen.
    #[arg(long, default_value_t = 5, value_name = "SECONDS")]
    dns_valid: u32,
}

impl From<RoutingArgs> for OrdinalRouting {
    fn from(args: RoutingArgs) -> Self {
        OrdinalRouting {
            prefix: args.routing_id_prefix,
            pod_host_template: args.pod_host,
            new_host: args.new_host,
            port: args.port,
            resolvers: args.resolver,
            dns_valid_secs: args.dns_valid,
        }
    }
}

/// The HAProxy frontend's edge settings, shared by both ways of routing.
#[derive(Debug, Args)]
struct HaproxyEdge {
    /// Frontend `bind` line(s), e.g. `:443 ssl crt /etc/haproxy/certs/cable.pem alpn http/1.1`.
    #[arg(long, required = true)]
    bind: Vec<String>,
    /// Idle limit of an upgraded connection, seconds (relay tunnel lifetime + margin).
    #[arg(long, default_value_t = 130)]
    tunnel_timeout: u32,
    /// Requests per source address per 10 s before the edge answers 429; 0 = off.
    #[arg(long, default_value_t = 200)]
    rate_limit_per_10s: u32,
    /// How the relays learn each client's address (for their per-client rate limit):
    /// `proxy-protocol` adds `send-proxy-v2` to every server (relays: `--proxy-protocol
    /// --trusted-proxy <HAProxy address>`), `x-forwarded-for` adds `option forwardfor`
    /// (relays: `--trusted-proxy <HAProxy address>`), `none` neither.
    #[arg(long, value_enum, default_value_t = ClientAddressArg::ProxyProtocol)]
    client_address: ClientAddressArg,
}

impl HaproxyEdge {
    fn options(self, map_file: Option<String>) -> HaproxyOptions {
        let defaults = HaproxyOptions::default();
        HaproxyOptions {
            binds: self.bind,
            map_file: map_file.unwrap_or(defaults.map_file),
            tunnel_timeout_secs: self.tunnel_timeout,
            rate_limit_per_10s: self.rate_limit_per_10s,
            client_address: self.client_address.into(),
        }
    }
}

#[derive(Debug, Subcommand)]
enum Command {
    /// nginx `http`-level include that routes by rule (use with
    /// deploy/nginx/cable-locations.conf): joins go to the pod whose ordinal the routing id
    /// carries, resolved by DNS when they come. Generated once: scaling the relays changes
    /// nothing in it. Takes no instance list.
    NginxByOrdinal {
        #[command(flatten)]
        routing: RoutingArgs,
    },
    /// HAProxy frontend and backends that route by rule, as `nginx-by-ordinal` does (load
    /// with a second `-f` after your haproxy.cfg). Takes no instance list.
    HaproxyByOrdinal {
        #[command(flatten)]
        routing: RoutingArgs,
        #[command(flatten)]
        edge: HaproxyEdge,
        /// Most relays at once (the slots HAProxy fills from the new-tunnel DNS name).
        #[arg(long, default_value_t = 64)]
        max_instances: u32,
    },
    /// nginx `http`-level include: upstreams and the routing-id map (use with
    /// deploy/nginx/cable-locations.conf).
    Nginx,
    /// HAProxy map file: routing id → backend.
    HaproxyMap,
    /// HAProxy frontend and backends (load with a second `-f` after your haproxy.cfg).
    Haproxy {
        #[command(flatten)]
        edge: HaproxyEdge,
        /// Absolute path where the map from `haproxy-map` is installed.
        #[arg(long, default_value = "/etc/haproxy/cable-routing.map")]
        map_file: String,
    },
    /// Kubernetes Services, one per relay pod (each instance's host is its pod's name).
    PodServices {
        /// `app.kubernetes.io/name` label of the StatefulSet's pods.
        #[arg(long, default_value = "cable-relay")]
        app_label: String,
        /// Tunnel port of the Services.
        #[arg(long, default_value_t = 8080)]
        service_port: u16,
    },
    /// Kubernetes Ingress (networking.k8s.io/v1); each instance's host is its per-pod Service.
    Ingress {
        /// Public host name (the domain's `cable.…` name).
        #[arg(long)]
        host: String,
        /// Ingress object name.
        #[arg(long, default_value = "cable-relay")]
        name: String,
        /// TLS Secret for the host.
        #[arg(long)]
        tls_secret: Option<String>,
        /// Ingress class.
        #[arg(long, default_value = "nginx")]
        class: String,
        /// Service over all ready pods, for `/cable/new/`.
        #[arg(long, default_value = "cable-relay-new")]
        new_service: String,
        /// Tunnel port of the Services.
        #[arg(long, default_value_t = 8080)]
        service_port: u16,
        /// Idle limit of an upgraded connection at the controller, seconds.
        #[arg(long, default_value_t = 130)]
        tunnel_timeout: u32,
        /// Requests per second per client at the controller; 0 = no limit.
        #[arg(long, default_value_t = 20)]
        limit_rps: u32,
    },
    /// Kubernetes Gateway API HTTPRoutes (gateway.networking.k8s.io/v1), the same routing as
    /// `ingress` for a cluster whose edge is a Gateway; at most 16 rules to a route, so
    /// large fleets get several.
    Gateway {
        /// Public host name (the domain's `cable.…` name).
        #[arg(long)]
        host: String,
        /// The Gateway to attach to.
        #[arg(long)]
        gateway: String,
        /// The Gateway's namespace, if not the routes' own.
        #[arg(long)]
        gateway_namespace: Option<String>,
        /// Name of the first HTTPRoute (the others add `-connect-N`).
        #[arg(long, default_value = "cable-relay")]
        name: String,
        /// Service over all ready pods, for `/cable/new/`.
        #[arg(long, default_value = "cable-relay-new")]
        new_service: String,
        /// Tunnel port of the Services.
        #[arg(long, default_value_t = 8080)]
        service_port: u16,
        /// Request timeout of every rule, seconds (relay tunnel lifetime + margin).
        #[arg(long, default_value_t = 130)]
        tunnel_timeout: u32,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum ClientAddressArg {
    ProxyProtocol,
    XForwardedFor,
    #[value(name = "none")]
    NoHeader,
}

impl From<ClientAddressArg> for ClientAddress {
    fn from(arg: ClientAddressArg) -> Self {
        match arg {
            ClientAddressArg::ProxyProtocol => Self::ProxyProtocol,
            ClientAddressArg::XForwardedFor => Self::XForwardedFor,
            ClientAddressArg::NoHeader => Self::None,
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("cable-lbconf: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<(), String> {
    let by_ordinal = matches!(
        cli.command,
        Command::NginxByOrdinal { .. } | Command::HaproxyByOrdinal { .. }
    );
    if by_ordinal && (cli.input.instances.is_some() || !cli.input.instance.is_empty()) {
        return Err(
            "the *-by-ordinal commands route by rule and take no --instances or --instance".into(),
        );
    }
    let instances = || read_instances(&cli.input);
    let text = match cli.command {
        Command::NginxByOrdinal { routing } => {
            by_ordinal::render_nginx(&routing.into()).map_err(|e| e.to_string())?
        }
        Command::HaproxyByOrdinal {
            routing,
            edge,
            max_instances,
        } => by_ordinal::render_haproxy(&routing.into(), &edge.options(None), max_instances)
            .map_err(|e| e.to_string())?,
        Command::Nginx => nginx::render(&instances()?),
        Command::HaproxyMap => haproxy::render_map(&instances()?),
        Command::Haproxy { edge, map_file } => {
            haproxy::render_config(&instances()?, &edge.options(Some(map_file)))
                .map_err(|e| e.to_string())?
        }
        Command::PodServices {
            app_label,
            service_port,
        } => ingress::render_pod_services(&instances()?, &app_label, service_port)
            .map_err(|e| e.to_string())?,
        Command::Ingress {
            host,
            name,
            tls_secret,
            class,
            new_service,
            service_port,
            tunnel_timeout,
            limit_rps,
        } => ingress::render(
            &instances()?,
            &IngressOptions {
                name,
                host,
                tls_secret,
                class,
                new_service,
                service_port,
                tunnel_timeout_secs: tunnel_timeout,
                limit_rps,
            },
        )
        .map_err(|e| e.to_string())?,
        Command::Gateway {
            host,
            gateway,
            gateway_namespace,
            name,
            new_service,
            service_port,
            tunnel_timeout,
        } => gateway::render(
            &instances()?,
            &GatewayOptions {
                name,
                host,
                gateway,
                gateway_namespace,
                new_service,
                service_port,
                tunnel_timeout_secs: tunnel_timeout,
            },
        )
        .map_err(|e| e.to_string())?,
    };
    match cli.output {
        Some(path) => write_atomically(&path, &text)
            .map_err(|e| format!("cannot write {}: {e}", path.display())),
        None => std::io::stdout()
            .write_all(text.as_bytes())
            .map_err(|e| format!("cannot write standard output: {e}")),
    }
}

fn read_instances(input: &Input) -> Result<Instances, String> {
    match &input.instances {
        Some(path) => {
            let mut text = String::new();
            let result = if path == Path::new("-") {
                std::io::stdin().read_to_string(&mut text).map(|_| ())
            } else {
                std::fs::File::open(path).and_then(|mut f| f.read_to_string(&mut text).map(|_| ()))
            };
            result.map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            Instances::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
        }
        None if input.instance.is_empty() => {
            Err("give the relays with --instances FILE or --instance SPEC".into())
        }
        None => Instances::from_specs(&input.instance).map_err(|e| format!("--instance: {e}")),
    }
}

/// A balancer reloading while the file is written must see the old or the new file whole.
/// The temporary file has a fresh random name and is created exclusively, so a leftover or a
/// planted symbolic link is never written through, and two runs never share one.
fn write_atomically(path: &Path, text: &str) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".cable-lbconf-")
        .suffix(".tmp")
        .tempfile_in(dir)?;
    tmp.write_all(text.as_bytes())?;
    // Balancer configuration is not secret, and the balancer may run as another user.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        tmp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o644))?;
    }
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}
