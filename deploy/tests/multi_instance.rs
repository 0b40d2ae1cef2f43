//! Three relays with distinct routing ids behind nginx, and behind HAProxy, on loopback,
//! configured by `cable-lbconf` and `deploy/nginx/cable-locations.conf` exactly as an
//! operator would deploy them, with their per-client rate limit on (HAProxy sends PROXY v2
//! headers, nginx `X-Forwarded-For`; the relays trust 127.0.0.1). The relays share one contact key and one VAPID key (made with
//! the relay's own `gen-contact-key` and `gen-vapid-key`), so a linked phone registered
//! through the balancer can be contacted through any instance.
//!
//! Then relays scaled out and in behind each balancer routing by rule (`cable-lbconf
//! nginx-by-ordinal` / `haproxy-by-ordinal`, generated before any relay exists): pods started
//! through the entrypoint on addresses of their own, found through a DNS server the test
//! runs, added and removed while pairs run, with the balancer never reloaded.
//!
//! Needs `nginx` and `haproxy` (Debian `nginx-light`, `haproxy`) and a built relay binary:
//! `CABLE_TUNNEL_SERVER_BIN`, or else `cable-tunnel-server` next to this test's target
//! directory (`cargo build -p cable-tunnel-server` with the same `CARGO_TARGET_DIR`).
//! Ignored in a plain `cargo test --workspace` because of those outside programs;
//! `.ci/run` runs it through `deploy/tests/run-multi-instance.sh`.

#![allow(clippy::unwrap_used)] // test harness: a failed step is a failed test

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr, TcpListener as StdListener};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cable_phone::{PhoneIdentity, PushEndpoint};
use cable_proto::ids::TunnelId;
use cable_proto::message::ClientPayload;
use cable_proto::qr::RequestHint;
use cable_proto::wire::{ROUTING_ID_HEADER, SUBPROTOCOL};
use cable_transport::{Connector, RelayUrl, TransportError};
use futures_util::{SinkExt, StreamExt};
use simple_dns::rdata::RData;
use simple_dns::{Packet, PacketFlag, ResourceRecord, CLASS, QTYPE, RCODE, TYPE};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::process::{Child, Command};
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Two routing ids with hex letters, so that case handling at the edge is exercised, and one
/// that the container entrypoint derives from a StatefulSet pod name (`cable-relay-3`).
const ROUTING_IDS: [&str; 3] = ["0A0001", "0B0002", "000003"];
const POD_NAME_OF_LAST: &str = "cable-relay-3";
/// Drain deadline given to the relays: long enough to prove a live tunnel survives SIGTERM,
/// short enough to keep the test quick.
const DRAIN: Duration = Duration::from_secs(4);
/// Upper bound for any single step; nothing here should come close.
const STEP: Duration = Duration::from_secs(10);
const PAIRS: usize = 48;
/// Contacts of one linked phone through the balancer: enough for round robin to reach every
/// instance more than once.
const CONTACTS: usize = 9;

/// The scaling test's relays: StatefulSet pods whose routing ids carry their ordinals, found
/// by the balancer through DNS (a headless Service's names) at one port on addresses of
/// their own.
const SCALED_PREFIX: &str = "1";
const SCALED_POD_HOST: &str = "cable-relay-{ordinal}.cable-relay.test";
const SCALED_NEW_HOST: &str = "cable-relay-new.test";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Balancer {
    Nginx,
    Haproxy,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "spawns nginx and three relays; run by deploy/tests/run-multi-instance.sh"]
async fn three_relays_behind_nginx() {
    scenario(Balancer::Nginx).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "spawns HAProxy and three relays; run by deploy/tests/run-multi-instance.sh"]
async fn three_relays_behind_haproxy() {
    scenario(Balancer::Haproxy).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs nginx; run by deploy/tests/run-multi-instance.sh"]
async fn relays_scaled_out_and_in_behind_nginx_routing_by_ordinal() {
    scaling(Balancer::Nginx).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs haproxy; run by deploy/tests/run-multi-instance.sh"]
async fn relays_scaled_out_and_in_behind_haproxy_routing_by_ordinal() {
    scaling(Balancer::Haproxy).await;
}

async fn scenario(kind: Balancer) {
    let dir = tempfile::Builder::new()
        .prefix(&format!("cable-deploy-{kind:?}-"))
        .tempdir()
        .unwrap();
    let _dump = LogsOnFailure(dir.path().to_owned());
    let keys = SharedKeys::generate(dir.path());
    let mut relays = Vec::new();
    for (i, rid) in ROUTING_IDS.into_iter().enumerate() {
        let via_entrypoint = i == ROUTING_IDS.len() - 1;
        relays.push(Relay::start(kind, rid, dir.path(), via_entrypoint, &keys).await);
    }
    // The image's HEALTHCHECK command against a real relay.
    let health = std::process::Command::new("bash")
        .arg(entrypoint())
        .arg("healthcheck")
        .env("CABLE_RELAY_ADMIN_LISTEN", relays[0].admin.to_string())
        .status()
        .unwrap();
    assert!(
        health.success(),
        "entrypoint healthcheck failed against a live relay"
    );
    alert_rules_name_real_metrics(relays[0].admin).await;
    let balancer = BalancerProcess::start(kind, &relays, dir.path()).await;
    let base = format!("ws://{}", balancer.addr);
    let ids = TunnelIds::new(kind);

    // 1. Many pairs, concurrently, spread over all instances and relayed verbatim.
    let mut tasks = Vec::new();
    for i in 0..PAIRS {
        let base = base.clone();
        let tid = ids.next();
        tasks.push(tokio::spawn(async move { run_pair(&base, &tid, i).await }));
    }
    let mut per_rid = [0usize; 3];
    for t in tasks {
        let rid = t.await.unwrap();
        per_rid[index_of(&rid)] += 1;
    }
    assert!(
        per_rid.iter().all(|&n| n > 0),
        "{kind:?}: /cable/new/ did not reach every instance: {per_rid:?}"
    );
    assert_eq!(per_rid.iter().sum::<usize>(), PAIRS);

    // 1b. A linked phone: registered through the balancer, contacted through it on every
    //     instance, joined through it at the instance that created each tunnel.
    contacts_through_the_balancer(kind, balancer.addr, &relays).await;

    // 1c. Per-client rate limits through the balancer: a client on 127.0.0.2 that floods one
    //     instance is refused there, while everyone else (127.0.0.1) is not.
    rate_limit_per_client(kind, balancer.addr, &relays[2], &ids).await;

    // 2. Rejections: unknown routing id at the edge; unknown tunnel and missing subprotocol
    //    at the owner, passed through.
    assert_eq!(
        status_of(&format!("{base}/cable/connect/ffffff/{}", ids.next()), true).await,
        404
    );
    assert_eq!(
        status_of(
            &format!("{base}/cable/connect/{}/{}", ROUTING_IDS[1], ids.next()),
            true
        )
        .await,
        404
    );
    assert_eq!(
        status_of(&format!("{base}/cable/new/{}", ids.next()), false).await,
        400
    );
    // A contact without its client payload: the instance's 400, passed on.
    assert_eq!(
        status_of(&format!("{base}/cable/contact/AAAA"), true).await,
        400
    );
    assert_eq!(
        status_of(&format!("{base}/cable/contact/AA.A"), true).await,
        404
    );
    assert_eq!(status_of(&format!("{base}/cable/new/xyz"), true).await, 404);
    // The routing-id header arrives with its usual spelling and an unchanged value.
    let (head, _raw) = raw_upgrade(balancer.addr, &format!("/cable/new/{}", ids.next())).await;
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    assert!(
        head.contains("\r\nSec-WebSocket-Protocol: fido.cable\r\n")
            || head.contains("\r\nsec-websocket-protocol: fido.cable\r\n"),
        "{head}"
    );
    let rid_line = head
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("x-cable-routing-id:"))
        .unwrap_or_else(|| panic!("no routing id header in {head}"));
    assert!(rid_line.starts_with("X-caBLE-Routing-ID: "), "{rid_line}");
    assert!(ROUTING_IDS.contains(&rid_line["X-caBLE-Routing-ID: ".len()..].trim()));

    // 3. A killed relay: its tunnels end promptly on both sides, /new keeps working on the
    //    others, joins for its routing id fail fast, other tunnels are untouched.
    let mut live = open_one_per_instance(&base, &ids).await;
    let victim = 0;
    relays[victim].kill().await;
    let (mut phone, mut computer) = live.remove(victim).1;
    for (side, ws) in [("phone", &mut phone), ("computer", &mut computer)] {
        let end = timeout(STEP, ws.next())
            .await
            .unwrap_or_else(|_| panic!("{kind:?}: {side} of a killed relay's tunnel still open"));
        assert!(
            matches!(end, None | Some(Err(_)) | Some(Ok(Message::Close(_)))),
            "{kind:?}: {side} got {end:?} after its relay was killed"
        );
    }
    for (rid, (phone, computer)) in &mut live {
        exchange(phone, computer, rid.as_bytes(), 3).await;
    }
    for _ in 0..6 {
        let tid = ids.next();
        let (_phone, rid) = open_new(&base, &tid).await;
        assert_ne!(
            rid, ROUTING_IDS[victim],
            "{kind:?}: /new reached a killed relay"
        );
    }
    let started = Instant::now();
    let status = status_of(
        &format!(
            "{base}/cable/connect/{}/{}",
            ROUTING_IDS[victim],
            ids.next()
        ),
        true,
    )
    .await;
    assert!(
        status == 502 || status == 503,
        "{kind:?}: connect to a dead instance gave {status}"
    );
    let took = started.elapsed();
    eprintln!("{kind:?}: connect to the killed instance answered {status} in {took:?}");
    assert!(took < Duration::from_secs(5), "{kind:?}: took {took:?}");

    // 4. SIGTERM drains: /new moves to the remaining instance, the draining one still serves
    //    joins and keeps its live tunnels until the deadline, then closes them with 1001 and
    //    exits.
    let drained = 1;
    let (rid, (mut phone, mut computer)) = live.remove(0);
    assert_eq!(rid, ROUTING_IDS[drained]);
    // A phone waiting on the instance about to drain (one that lands elsewhere just leaves).
    let (mut pending_phone, pending_tid) = loop {
        let tid = ids.next();
        let (p, r) = open_new(&base, &tid).await;
        if r == ROUTING_IDS[drained] {
            break (p, tid);
        }
    };
    let sigterm_at = Instant::now();
    relays[drained].signal("TERM").await;
    relays[drained].wait_not_ready().await;
    for _ in 0..6 {
        let (_p, r) = open_new(&base, &ids.next()).await;
        assert_eq!(
            r, ROUTING_IDS[2],
            "{kind:?}: /new reached an instance that is draining or dead"
        );
    }
    let mut pending_computer = open_connect(&base, ROUTING_IDS[drained], &pending_tid).await;
    exchange(
        &mut pending_phone,
        &mut pending_computer,
        b"joined while draining",
        2,
    )
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    exchange(
        &mut phone,
        &mut computer,
        b"still relayed while draining",
        2,
    )
    .await;
    assert!(
        sigterm_at.elapsed() < DRAIN,
        "test too slow to observe the drain window"
    );
    for (side, ws) in [("phone", &mut phone), ("computer", &mut computer)] {
        let code = expect_close(ws).await;
        assert_eq!(code, Some(CloseCode::Away), "{kind:?}: {side} close code");
    }
    assert!(
        sigterm_at.elapsed() >= DRAIN,
        "{kind:?}: a live tunnel was cut {:?} after SIGTERM, before the {DRAIN:?} deadline",
        sigterm_at.elapsed()
    );
    let status = relays[drained].wait_exit().await;
    assert!(
        status.success(),
        "{kind:?}: drained relay exited with {status}"
    );

    // The last instance still works end to end.
    let tid = ids.next();
    let rid = run_pair(&base, &tid, 0).await;
    assert_eq!(rid, ROUTING_IDS[2]);
    drop(balancer);
}

/// Prints the relays' and the balancer's logs when the test fails (the directory is removed).
struct LogsOnFailure(PathBuf);

impl Drop for LogsOnFailure {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            return;
        }
        let Ok(entries) = std::fs::read_dir(&self.0) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().is_some_and(|e| e == "log") {
                let text = std::fs::read_to_string(&path).unwrap_or_default();
                let tail: Vec<&str> = text.lines().rev().take(40).collect();
                eprintln!("--- {} (last {} lines)", path.display(), tail.len());
                for line in tail.iter().rev() {
                    eprintln!("{line}");
                }
            }
        }
    }
}

/// Every metric and reason label the shipped Prometheus alert rules use, and every metric the
/// Grafana dashboard queries, exists on a relay.
async fn alert_rules_name_real_metrics(admin: SocketAddr) {
    let rules = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("prometheus/cable-relay-alerts.yml"),
    )
    .unwrap();
    let body = admin_body(admin, "/metrics").await;
    let words = |text: &str, start: &str| -> Vec<String> {
        text.match_indices(start)
            .map(|(i, _)| {
                text[i..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect()
            })
            .collect()
    };
    let names = words(&rules, "cable_relay_");
    assert!(names.len() > 5);
    for name in names {
        assert!(
            body.contains(&format!("\n{name}")),
            "alert rules use unknown metric {name}"
        );
    }
    // The Grafana dashboard's queries too, the process gauges included.
    let dashboard = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("grafana/cable-relay-dashboard.json"),
    )
    .unwrap();
    let json: serde_json::Value = serde_json::from_str(&dashboard).unwrap();
    let exprs: Vec<String> = json["panels"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["targets"].as_array().unwrap().clone())
        .map(|t| t["expr"].as_str().unwrap().to_owned())
        .collect();
    assert!(exprs.len() > 15, "{exprs:?}");
    let mut used = 0;
    for expr in &exprs {
        for name in words(expr, "cable_relay_")
            .into_iter()
            .chain(words(expr, "process_"))
        {
            used += 1;
            assert!(
                body.contains(&format!("\n{name}")),
                "the dashboard uses unknown metric {name} in {expr}"
            );
        }
    }
    assert!(used > 20, "{used}");
    for (i, _) in rules.match_indices("reason=") {
        let value: String = rules[i + "reason=".len()..]
            .trim_start_matches(['"', '~'])
            .chars()
            .take_while(|c| *c != '"')
            .collect();
        for reason in value.split('|') {
            assert!(
                body.contains(&format!("reason=\"{reason}\"")),
                "alert rules use unknown reason {reason}"
            );
        }
    }
}

fn index_of(rid: &str) -> usize {
    ROUTING_IDS
        .iter()
        .position(|r| r.eq_ignore_ascii_case(rid))
        .unwrap_or_else(|| panic!("routing id {rid} is not one of ours"))
}

/// Unique 32-hex tunnel ids per test process and scenario.
struct TunnelIds {
    prefix: u64,
    counter: AtomicU64,
}

impl TunnelIds {
    fn new(kind: Balancer) -> Self {
        Self {
            prefix: (u64::from(std::process::id()) << 8) | kind as u64,
            counter: AtomicU64::new(1),
        }
    }

    fn next(&self) -> String {
        let mut id = [0u8; TunnelId::LEN];
        id[..8].copy_from_slice(&self.prefix.to_be_bytes());
        id[8..].copy_from_slice(&self.counter.fetch_add(1, Ordering::Relaxed).to_be_bytes());
        TunnelId::from_bytes(id).to_hex()
    }
}

fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn relay_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("CABLE_TUNNEL_SERVER_BIN") {
        return PathBuf::from(p);
    }
    // <target>/debug/deps/multi_instance-<hash> → <target>/debug/cable-tunnel-server
    let exe = std::env::current_exe().unwrap();
    let path = exe
        .parent()
        .and_then(Path::parent)
        .map(|d| d.join("cable-tunnel-server"))
        .unwrap();
    assert!(
        path.exists(),
        "{} is missing: run `cargo build -p cable-tunnel-server` with the same target directory or set CABLE_TUNNEL_SERVER_BIN",
        path.display()
    );
    path
}

fn program(name: &str) -> PathBuf {
    for dir in ["/usr/sbin", "/usr/local/sbin", "/usr/bin", "/usr/local/bin"] {
        let p = Path::new(dir).join(name);
        if p.exists() {
            return p;
        }
    }
    panic!("{name} is not installed (Debian: apt-get install nginx-light haproxy)");
}

struct Relay {
    routing_id: String,
    addr: SocketAddr,
    admin: SocketAddr,
    child: Child,
}

impl Relay {
    /// `via_entrypoint`: start through deploy/docker/entrypoint.sh with only a pod name, so
    /// the routing id is the one the entrypoint derives.
    async fn start(
        kind: Balancer,
        routing_id: &'static str,
        dir: &Path,
        via_entrypoint: bool,
        keys: &SharedKeys,
    ) -> Self {
        let addr: SocketAddr = ([127, 0, 0, 1], free_port()).into();
        let admin: SocketAddr = ([127, 0, 0, 1], free_port()).into();
        let cmd = if via_entrypoint {
            let mut cmd = Command::new("bash");
            cmd.arg(entrypoint())
                .arg(relay_binary())
                .args(relay_args(kind, None, addr, admin))
                .args(keys.args())
                .env("POD_NAME", POD_NAME_OF_LAST)
                .env_remove("CABLE_RELAY_ROUTING_ID");
            cmd
        } else {
            let mut cmd = Command::new(relay_binary());
            cmd.args(relay_args(kind, Some(routing_id), addr, admin))
                .args(keys.args());
            cmd
        };
        Self::spawn(cmd, routing_id.to_owned(), addr, admin, dir).await
    }

    /// StatefulSet pod `cable-relay-<ordinal>` started through the container entrypoint, which
    /// derives its routing id from the pod name and [`SCALED_PREFIX`]; listens on `addr`.
    async fn start_pod(
        kind: Balancer,
        ordinal: u32,
        addr: SocketAddr,
        dir: &Path,
        keys: &SharedKeys,
    ) -> Self {
        let admin: SocketAddr = ([127, 0, 0, 1], free_port()).into();
        let mut cmd = Command::new("bash");
        cmd.arg(entrypoint())
            .arg(relay_binary())
            .args(relay_args(kind, None, addr, admin))
            .args(keys.args())
            .env("POD_NAME", format!("cable-relay-{ordinal}"))
            .env("CABLE_RELAY_ROUTING_ID_PREFIX", SCALED_PREFIX)
            .env_remove("CABLE_RELAY_ROUTING_ID");
        let routing_id = format!("{SCALED_PREFIX}{ordinal:05}");
        Self::spawn(cmd, routing_id, addr, admin, dir).await
    }

    /// Starts `cmd` with its output in the test directory and waits until it is ready.
    async fn spawn(
        mut cmd: Command,
        routing_id: String,
        addr: SocketAddr,
        admin: SocketAddr,
        dir: &Path,
    ) -> Self {
        let log = std::fs::File::create(dir.join(format!("relay-{routing_id}.log"))).unwrap();
        let child = cmd
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let relay = Self {
            routing_id,
            addr,
            admin,
            child,
        };
        let deadline = Instant::now() + STEP;
        while admin_status(relay.admin, "/readyz").await != Some(200) {
            assert!(
                Instant::now() < deadline,
                "relay {} not ready; log in {}",
                relay.routing_id,
                dir.display()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        relay
    }

    async fn kill(&mut self) {
        self.child.kill().await.unwrap();
    }

    async fn signal(&self, name: &str) {
        let pid = self.child.id().unwrap();
        let status = Command::new("sh")
            .arg("-c")
            .arg(format!("kill -{name} {pid}"))
            .status()
            .await
            .unwrap();
        assert!(status.success());
    }

    async fn wait_not_ready(&self) {
        let deadline = Instant::now() + STEP;
        while admin_status(self.admin, "/readyz").await == Some(200) {
            assert!(
                Instant::now() < deadline,
                "{} stayed ready",
                self.routing_id
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn wait_exit(&mut self) -> std::process::ExitStatus {
        timeout(STEP, self.child.wait()).await.unwrap().unwrap()
    }
}

/// The relay's command line, with short limits for the test. The per-client rate limit stays
/// at its default: the balancer on 127.0.0.1 passes each client's address on, by PROXY
/// header (HAProxy, as `cable-lbconf haproxy` configures it) or `X-Forwarded-For` (nginx,
/// as `cable-locations.conf` sets it).
fn relay_args(
    kind: Balancer,
    routing_id: Option<&str>,
    addr: SocketAddr,
    admin: SocketAddr,
) -> Vec<String> {
    let mut args: Vec<String> = [
        "--listen".to_owned(),
        addr.to_string(),
        "--admin-listen".to_owned(),
        admin.to_string(),
        "--drain-timeout".to_owned(),
        format!("{}s", DRAIN.as_secs()),
        "--trusted-proxy".to_owned(),
        "127.0.0.1/32".to_owned(),
    ]
    .into();
    if kind == Balancer::Haproxy {
        args.push("--proxy-protocol".to_owned());
    }
    if let Some(rid) = routing_id {
        args.extend(["--routing-id".to_owned(), rid.to_owned()]);
    }
    args
}

/// The contact and VAPID keys every instance shares, made as an operator makes them.
struct SharedKeys {
    contact: PathBuf,
    vapid: PathBuf,
}

impl SharedKeys {
    fn generate(dir: &Path) -> Self {
        let run = |args: &[&str], file: &str| {
            let out = std::process::Command::new(relay_binary())
                .args(args)
                .output()
                .unwrap();
            assert!(out.status.success(), "{args:?}: {out:?}");
            let path = dir.join(file);
            std::fs::write(&path, out.stdout).unwrap();
            path
        };
        Self {
            contact: run(&["gen-contact-key", "--id", "1"], "contact.keys"),
            vapid: run(&["gen-vapid-key"], "vapid.pem"),
        }
    }

    /// The push endpoint of the test is plain http on loopback.
    fn args(&self) -> Vec<String> {
        vec![
            "--contact-key-file".to_owned(),
            self.contact.display().to_string(),
            "--vapid-key-file".to_owned(),
            self.vapid.display().to_string(),
            "--allow-insecure-push".to_owned(),
        ]
    }
}

/// One phone registers through the balancer and is contacted [`CONTACTS`] times through it:
/// each contact lands on some instance (all of them, over the run), the push names that
/// instance's routing id, and the phone's connect through the edge reaches the same tunnel.
async fn contacts_through_the_balancer(kind: Balancer, addr: SocketAddr, relays: &[Relay]) {
    let relay = RelayUrl::parse(&format!("ws://{addr}")).unwrap();
    let connector = Connector::new().unwrap();
    let phone = PhoneIdentity::from_root_secret([kind as u8 + 7; 32]).unwrap();
    let mut endpoint = PushEndpoint::bind(([127, 0, 0, 1], 0).into(), phone.push_keys())
        .await
        .unwrap();
    let subscription = phone
        .push_keys()
        .subscription_json(&endpoint.url())
        .unwrap();
    let deadline = || tokio::time::Instant::now() + STEP;
    let contact_id = connector
        .register_push(&relay, &subscription, deadline())
        .await
        .unwrap();
    // Refusals of the register path come from the relay, with its reason, through the edge.
    match connector.register_push(&relay, "{}", deadline()).await {
        Err(TransportError::RegistrationRefused { status: 400, .. }) => {}
        other => panic!("{kind:?}: a bad subscription gave {other:?}"),
    }

    let mut per_rid = [0usize; 3];
    for i in 0..CONTACTS {
        let payload = ClientPayload {
            link_id: vec![i as u8; 8],
            client_nonce: [i as u8; 16],
            hint: RequestHint::GetAssertion,
        };
        let (mut computer, echoed) = connector
            .open_contact(
                &relay,
                &contact_id,
                &hex::encode(payload.to_cbor()),
                deadline(),
            )
            .await
            .unwrap_or_else(|e| panic!("{kind:?}: contact {i}: {e}"));
        assert!(echoed, "{kind:?}: the signal header did not come back");
        let request = timeout(STEP, endpoint.next())
            .await
            .unwrap_or_else(|_| panic!("{kind:?}: contact {i} pushed nothing"))
            .unwrap();
        assert_eq!(request.client_payload, payload, "{kind:?}: contact {i}");
        let rid = request.routing_id.to_hex();
        per_rid[index_of(&rid)] += 1;
        let mut phone_side = connector
            .connect_tunnel(&relay, &request.routing_id, &request.tunnel_id, deadline())
            .await
            .unwrap_or_else(|e| panic!("{kind:?}: phone's connect to {rid}: {e}"));
        assert_eq!(computer.recv(deadline()).await.unwrap(), vec![0]);
        let hello = format!("contact {i} via {rid}").into_bytes();
        computer.send(hello.clone(), deadline()).await.unwrap();
        assert_eq!(phone_side.recv(deadline()).await.unwrap(), hello);
        phone_side
            .send(b"answer".to_vec(), deadline())
            .await
            .unwrap();
        assert_eq!(computer.recv(deadline()).await.unwrap(), b"answer");
        computer.close(deadline()).await.unwrap();
    }
    eprintln!("{kind:?}: contacts per instance {per_rid:?}");
    // A contact id no key opens: 410 Gone from whichever instance, through the edge.
    let payload = hex::encode(
        ClientPayload {
            link_id: vec![1; 8],
            client_nonce: [1; 16],
            hint: RequestHint::GetAssertion,
        }
        .to_cbor(),
    );
    for _ in 0..ROUTING_IDS.len() {
        match connector
            .open_contact(&relay, &[1; 120], &payload, deadline())
            .await
        {
            Err(TransportError::Gone) => {}
            Err(e) => panic!("{kind:?}: a forged contact id gave {e}"),
            Ok(_) => panic!("{kind:?}: a forged contact id was accepted"),
        }
    }
    assert!(
        per_rid.iter().all(|&n| n > 0),
        "{kind:?}: contacts did not reach every instance: {per_rid:?}"
    );
    for (r, &n) in relays.iter().zip(&per_rid) {
        let metrics = admin_body(r.admin, "/metrics").await;
        let counted = metrics
            .lines()
            .find_map(|l| l.strip_prefix("cable_relay_contacts_total{outcome=\"ok\"} "))
            .and_then(|v| v.trim().parse::<f64>().ok());
        assert_eq!(
            counted,
            Some(n as f64),
            "{kind:?}: {} counted other contacts than it served",
            r.routing_id
        );
    }
}

/// Status of an upgrade to `path` through the balancer from a client bound to `source`.
async fn status_from(source: [u8; 4], balancer: SocketAddr, path: &str) -> u16 {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind((source, 0).into()).unwrap();
    let mut tcp = timeout(STEP, socket.connect(balancer))
        .await
        .unwrap()
        .unwrap();
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: {balancer}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Protocol: {SUBPROTOCOL}\r\n\r\n"
    );
    tcp.write_all(req.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 512];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = timeout(STEP, tcp.read(&mut chunk)).await.unwrap().unwrap();
        assert!(n > 0, "connection closed before the response head");
        buf.extend_from_slice(&chunk[..n]);
    }
    let head = String::from_utf8_lossy(&buf);
    head.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0)
}

/// Joins for unknown tunnels go to one instance (the routing id's owner), which checks the
/// rate limit before it looks the tunnel up: 404 while the client has tokens, then 429.
async fn rate_limit_per_client(
    kind: Balancer,
    balancer: SocketAddr,
    relay: &Relay,
    ids: &TunnelIds,
) {
    let path = || format!("/cable/connect/{}/{}", relay.routing_id, ids.next());
    // The default burst is 100 requests; the limit refills 20 a second while this runs.
    let mut sent = 0;
    loop {
        sent += 1;
        match status_from([127, 0, 0, 2], balancer, &path()).await {
            404 => assert!(sent < 1000, "{kind:?}: 127.0.0.2 never rate limited"),
            429 => break,
            other => panic!("{kind:?}: join {sent} from 127.0.0.2 answered {other}"),
        }
    }
    eprintln!("{kind:?}: 127.0.0.2 rate limited after {sent} requests");
    assert!(
        sent > 50,
        "{kind:?}: limited after only {sent}: keyed on the balancer?"
    );
    assert_eq!(
        status_from([127, 0, 0, 1], balancer, &path()).await,
        404,
        "{kind:?}: another client was limited with 127.0.0.2"
    );
    let metrics = admin_body(relay.admin, "/metrics").await;
    let source = match kind {
        Balancer::Haproxy => "proxy_protocol",
        Balancer::Nginx => "forwarded_header",
    };
    let counted = metrics
        .lines()
        .find_map(|l| {
            l.strip_prefix(&format!(
                "cable_relay_client_addresses_total{{source=\"{source}\"}} "
            ))
        })
        .and_then(|v| v.trim().parse::<f64>().ok())
        .unwrap_or(0.0);
    assert!(
        counted >= sent as f64,
        "{kind:?}: {source} counted {counted}"
    );
}

fn entrypoint() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("docker/entrypoint.sh")
}

/// The body of a GET on the admin listener.
async fn admin_body(addr: SocketAddr, path: &str) -> String {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut body = String::new();
    timeout(STEP, tcp.read_to_string(&mut body))
        .await
        .unwrap()
        .unwrap();
    body
}

/// GET on the admin listener; `None` if nothing answers.
async fn admin_status(addr: SocketAddr, path: &str) -> Option<u16> {
    let mut tcp = TcpStream::connect(addr).await.ok()?;
    tcp.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
        .await
        .ok()?;
    let mut buf = Vec::new();
    timeout(STEP, tcp.read_to_end(&mut buf)).await.ok()?.ok()?;
    let text = String::from_utf8_lossy(&buf);
    text.get(9..12)?.parse().ok()
}

struct BalancerProcess {
    addr: SocketAddr,
    _child: Child,
}

impl BalancerProcess {
    /// The balancer configured from the relays' list, as `cable-lbconf nginx` / `haproxy`
    /// generate it.
    async fn start(kind: Balancer, relays: &[Relay], dir: &Path) -> Self {
        let addr: SocketAddr = ([127, 0, 0, 1], free_port()).into();
        let mut specs = Vec::new();
        for r in relays {
            specs.push("--instance".to_owned());
            specs.push(format!(
                "{}={} admin={}",
                r.routing_id,
                r.addr,
                r.admin.port()
            ));
        }
        let cmd = match kind {
            Balancer::Nginx => {
                let upstreams = dir.join("upstreams.conf");
                lbconf(&specs, &["nginx", "-o", upstreams.to_str().unwrap()]);
                nginx_command(dir, addr, &upstreams)
            }
            Balancer::Haproxy => {
                let map = dir.join("cable-routing.map");
                let cfg = dir.join("cable.cfg");
                lbconf(&specs, &["haproxy-map", "-o", map.to_str().unwrap()]);
                lbconf(
                    &specs,
                    &[
                        "haproxy",
                        "--bind",
                        &addr.to_string(),
                        "--map-file",
                        map.to_str().unwrap(),
                        "--rate-limit-per-10s",
                        "0",
                        "-o",
                        cfg.to_str().unwrap(),
                    ],
                );
                haproxy_command(dir, &cfg)
            }
        };
        Self::spawn(kind, addr, cmd, dir).await
    }

    /// The balancer routing by rule (`cable-lbconf nginx-by-ordinal` / `haproxy-by-ordinal`),
    /// generated once, before any relay runs, with `dns` as its resolver.
    async fn start_by_ordinal(
        kind: Balancer,
        dns: SocketAddr,
        relay_port: u16,
        dir: &Path,
    ) -> Self {
        let addr: SocketAddr = ([127, 0, 0, 1], free_port()).into();
        let port = relay_port.to_string();
        let dns = dns.to_string();
        let routing = [
            "--pod-host",
            SCALED_POD_HOST,
            "--new-host",
            SCALED_NEW_HOST,
            "--port",
            &port,
            "--resolver",
            &dns,
            "--dns-valid",
            "1",
        ];
        let cmd = match kind {
            Balancer::Nginx => {
                let upstreams = dir.join("upstreams.conf");
                let mut args = vec!["nginx-by-ordinal"];
                args.extend(routing);
                args.extend(["-o", upstreams.to_str().unwrap()]);
                lbconf(&[], &args);
                nginx_command(dir, addr, &upstreams)
            }
            Balancer::Haproxy => {
                let cfg = dir.join("cable.cfg");
                let bind = addr.to_string();
                let mut args = vec!["haproxy-by-ordinal"];
                args.extend(routing);
                args.extend([
                    "--bind",
                    &bind,
                    "--max-instances",
                    "8",
                    "--rate-limit-per-10s",
                    "0",
                    "-o",
                    cfg.to_str().unwrap(),
                ]);
                lbconf(&[], &args);
                haproxy_command(dir, &cfg)
            }
        };
        Self::spawn(kind, addr, cmd, dir).await
    }

    async fn spawn(kind: Balancer, addr: SocketAddr, mut cmd: Command, dir: &Path) -> Self {
        let log = std::fs::File::create(dir.join(format!("{kind:?}.log"))).unwrap();
        let child = cmd
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        // Ready when a phone can open a tunnel through it.
        let deadline = Instant::now() + STEP;
        let probe = TunnelIds::new(kind);
        loop {
            let url = format!("ws://{addr}/cable/new/FFFF{}", &probe.next()[4..]);
            if let Ok(Ok((_ws, _))) = timeout(STEP, connect(&url, true)).await {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{kind:?} did not start; logs in {}",
                dir.display()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Self {
            addr,
            _child: child,
        }
    }
}

/// Runs `cable-lbconf` with `specs` (its instance list, if any) and `args`.
fn lbconf(specs: &[String], args: &[&str]) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_cable-lbconf"))
        .args(specs)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "cable-lbconf {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// nginx on `addr` with the generated http-level include and deploy/nginx/cable-locations.conf.
fn nginx_command(dir: &Path, addr: SocketAddr, upstreams: &Path) -> Command {
    let d = dir.display();
    let locations = Path::new(env!("CARGO_MANIFEST_DIR")).join("nginx/cable-locations.conf");
    // One process (no master): killing it on drop leaves no orphaned workers.
    let conf = format!(
        "pid {d}/nginx.pid;\nerror_log {d}/nginx-error.log info;\ndaemon off;\n\
         master_process off;\n\
         events {{ worker_connections 4096; }}\n\
         http {{\n  access_log off;\n\
         \x20 client_body_temp_path {d}/client-body;\n  proxy_temp_path {d}/proxy;\n\
         \x20 fastcgi_temp_path {d}/fastcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n\
         \x20 include {up};\n\
         \x20 server {{\n    listen {addr};\n    include {loc};\n  }}\n}}\n",
        up = upstreams.display(),
        loc = locations.display(),
    );
    let path = dir.join("nginx.conf");
    std::fs::write(&path, conf).unwrap();
    let mut cmd = Command::new(program("nginx"));
    cmd.arg("-e")
        .arg(dir.join("nginx-error.log"))
        .arg("-p")
        .arg(dir)
        .arg("-c")
        .arg(&path);
    cmd
}

/// HAProxy with a minimal main configuration and the generated one.
fn haproxy_command(dir: &Path, cfg: &Path) -> Command {
    let d = dir.display();
    let main = dir.join("haproxy.cfg");
    std::fs::write(
        &main,
        format!(
            "global\n    maxconn 4096\n    pidfile {d}/haproxy.pid\n\
             defaults\n    mode http\n    timeout connect 2s\n    timeout client 30s\n    timeout server 30s\n"
        ),
    )
    .unwrap();
    let mut cmd = Command::new(program("haproxy"));
    // -db: foreground, one process.
    cmd.arg("-db").arg("-f").arg(&main).arg("-f").arg(cfg);
    cmd
}

async fn connect(
    url: &str,
    subprotocol: bool,
) -> Result<
    (
        Ws,
        tokio_tungstenite::tungstenite::handshake::client::Response,
    ),
    WsError,
> {
    let mut req = url.into_client_request()?;
    if subprotocol {
        req.headers_mut().insert(
            "Sec-WebSocket-Protocol",
            HeaderValue::from_static(SUBPROTOCOL),
        );
    }
    tokio_tungstenite::connect_async(req).await
}

/// HTTP status of a failed upgrade (or 101 on success).
async fn status_of(url: &str, subprotocol: bool) -> u16 {
    match timeout(STEP, connect(url, subprotocol)).await.unwrap() {
        Ok((_, resp)) => resp.status().as_u16(),
        Err(WsError::Http(resp)) => resp.status().as_u16(),
        Err(e) => panic!("{url}: {e}"),
    }
}

/// Phone side: opens the tunnel, returns it with the routing id the relay announced.
async fn open_new(base: &str, tid: &str) -> (Ws, String) {
    let url = format!("{base}/cable/new/{tid}");
    let (ws, resp) = timeout(STEP, connect(&url, true))
        .await
        .unwrap()
        .unwrap_or_else(|e| panic!("{url}: {e}"));
    assert_eq!(
        resp.headers().get("sec-websocket-protocol").unwrap(),
        "fido.cable"
    );
    let rids: Vec<_> = resp.headers().get_all(ROUTING_ID_HEADER).iter().collect();
    assert_eq!(rids.len(), 1, "exactly one routing id header: {rids:?}");
    let rid = rids[0].to_str().unwrap().to_owned();
    let scaled =
        rid.len() == 6 && rid.starts_with(SCALED_PREFIX) && rid.bytes().all(|b| b.is_ascii_digit());
    assert!(
        ROUTING_IDS.contains(&rid.as_str()) || scaled,
        "unexpected routing id {rid}"
    );
    (ws, rid)
}

/// Computer side: joins the tunnel through the routing id.
async fn open_connect(base: &str, rid: &str, tid: &str) -> Ws {
    let url = format!("{base}/cable/connect/{rid}/{tid}");
    let (ws, resp) = timeout(STEP, connect(&url, true))
        .await
        .unwrap()
        .unwrap_or_else(|e| panic!("{url}: {e}"));
    assert_eq!(
        resp.headers().get("sec-websocket-protocol").unwrap(),
        "fido.cable"
    );
    ws
}

/// One complete pair: a message before the join, several both ways, a close. Returns the
/// routing id the tunnel was on. Alternates upper- and lower-case ids in the `connect` URL.
async fn run_pair(base: &str, tid: &str, i: usize) -> String {
    let (mut phone, rid) = open_new(base, tid).await;
    let early = format!("before the join {i}").into_bytes();
    phone.send(Message::binary(early.clone())).await.unwrap();
    let (rid_in_url, tid_in_url) = if i.is_multiple_of(2) {
        (rid.to_ascii_lowercase(), tid.to_ascii_lowercase())
    } else {
        (rid.clone(), tid.to_owned())
    };
    let mut computer = open_connect(base, &rid_in_url, &tid_in_url).await;
    assert_eq!(recv_binary(&mut computer).await, early);
    exchange(&mut phone, &mut computer, tid.as_bytes(), 4).await;
    computer.send(Message::Close(None)).await.unwrap();
    assert_eq!(expect_close(&mut phone).await, Some(CloseCode::Normal));
    rid
}

/// `rounds` messages each way, of varying sizes, checked byte for byte and in order.
async fn exchange(phone: &mut Ws, computer: &mut Ws, tag: &[u8], rounds: usize) {
    for round in 0..rounds {
        let size = 1 + (round * 997) % 3000;
        let to_phone: Vec<u8> = tag
            .iter()
            .copied()
            .chain((0..size).map(|b| (b * 7 + round) as u8))
            .collect();
        computer
            .send(Message::binary(to_phone.clone()))
            .await
            .unwrap();
        computer
            .send(Message::binary(vec![round as u8]))
            .await
            .unwrap();
        assert_eq!(recv_binary(phone).await, to_phone);
        assert_eq!(recv_binary(phone).await, vec![round as u8]);
        let to_computer: Vec<u8> = to_phone.iter().rev().copied().collect();
        phone
            .send(Message::binary(to_computer.clone()))
            .await
            .unwrap();
        assert_eq!(recv_binary(computer).await, to_computer);
    }
}

async fn recv_binary(ws: &mut Ws) -> Vec<u8> {
    loop {
        match timeout(STEP, ws.next()).await.expect("no message in time") {
            Some(Ok(Message::Binary(b))) => return b.to_vec(),
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            other => panic!("expected a binary message, got {other:?}"),
        }
    }
}

/// Waits for the relay's close frame (answering it) and returns its code.
async fn expect_close(ws: &mut Ws) -> Option<CloseCode> {
    loop {
        match timeout(STEP, ws.next()).await.expect("no close in time") {
            Some(Ok(Message::Close(frame))) => {
                let _ = ws.close(None).await;
                return frame.map(|f| f.code);
            }
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            other => panic!("expected a close frame, got {other:?}"),
        }
    }
}

/// A joined tunnel on every instance, as (routing id, (phone, computer)), in ROUTING_IDS order.
async fn open_one_per_instance(base: &str, ids: &TunnelIds) -> Vec<(String, (Ws, Ws))> {
    let mut slots: Vec<Option<(Ws, Ws)>> = (0..ROUTING_IDS.len()).map(|_| None).collect();
    for _ in 0..30 {
        if slots.iter().all(Option::is_some) {
            break;
        }
        let tid = ids.next();
        let (phone, rid) = open_new(base, &tid).await;
        let slot = &mut slots[index_of(&rid)];
        if slot.is_none() {
            let computer = open_connect(base, &rid, &tid).await;
            *slot = Some((phone, computer));
        }
    }
    slots
        .into_iter()
        .zip(ROUTING_IDS)
        .map(|(s, rid)| {
            (
                rid.to_owned(),
                s.expect("round robin never reached an instance"),
            )
        })
        .collect()
}

/// Sends a raw upgrade request and returns the response head as text.
async fn raw_upgrade(addr: SocketAddr, path: &str) -> (String, TcpStream) {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Protocol: {SUBPROTOCOL}\r\n\r\n"
    );
    tcp.write_all(req.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 1024];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = timeout(STEP, tcp.read(&mut chunk)).await.unwrap().unwrap();
        assert!(n > 0, "connection closed before the response head");
        buf.extend_from_slice(&chunk[..n]);
    }
    (String::from_utf8_lossy(&buf).into_owned(), tcp)
}

/// The cluster DNS of the scaling test: A records by name, changed while the test runs, as
/// a headless Service's records come and go with its pods. Anything else is NXDOMAIN.
#[derive(Clone, Default)]
struct Dns {
    records: Arc<Mutex<HashMap<String, Vec<Ipv4Addr>>>>,
}

impl Dns {
    async fn start() -> (Dns, SocketAddr) {
        let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = socket.local_addr().unwrap();
        let dns = Dns::default();
        let served = dns.clone();
        tokio::spawn(async move {
            let mut buf = [0u8; 1500];
            loop {
                let Ok((n, peer)) = socket.recv_from(&mut buf).await else {
                    return;
                };
                if let Some(reply) = served.answer(&buf[..n]) {
                    let _ = socket.send_to(&reply, peer).await;
                }
            }
        });
        (dns, addr)
    }

    fn set(&self, name: &str, addresses: Vec<Ipv4Addr>) {
        self.records
            .lock()
            .unwrap()
            .insert(name.to_owned(), addresses);
    }

    fn remove(&self, name: &str) {
        self.records.lock().unwrap().remove(name);
    }

    fn answer(&self, query: &[u8]) -> Option<Vec<u8>> {
        let query = Packet::parse(query).ok()?;
        let mut reply = Packet::new_reply(query.id());
        reply.set_flags(PacketFlag::AUTHORITATIVE_ANSWER);
        let records = self.records.lock().unwrap();
        for question in &query.questions {
            reply.questions.push(question.clone());
            let name = question.qname.to_string().to_ascii_lowercase();
            match records.get(name.trim_end_matches('.')) {
                None => *reply.rcode_mut() = RCODE::NameError,
                Some(addresses) if question.qtype == QTYPE::TYPE(TYPE::A) => {
                    for address in addresses {
                        reply.answers.push(ResourceRecord::new(
                            question.qname.clone(),
                            CLASS::IN,
                            1,
                            RData::A((*address).into()),
                        ));
                    }
                }
                // The name exists with no record of that type (no IPv6 here).
                Some(_) => {}
            }
        }
        reply.build_bytes_vec().ok()
    }
}

/// A pair after pair through the balancer, on `workers` tasks, until `stop`; every pair
/// must complete. Returns how many pairs each routing id carried.
fn keep_pairing(
    base: String,
    ids: Arc<TunnelIds>,
    workers: usize,
    stop: Arc<AtomicBool>,
    carried: Arc<Mutex<HashMap<String, usize>>>,
) -> Vec<tokio::task::JoinHandle<()>> {
    (0..workers)
        .map(|w| {
            let (base, ids, stop, carried) =
                (base.clone(), ids.clone(), stop.clone(), carried.clone());
            tokio::spawn(async move {
                let mut i = w;
                while !stop.load(Ordering::Relaxed) {
                    let rid = run_pair(&base, &ids.next(), i).await;
                    *carried.lock().unwrap().entry(rid).or_default() += 1;
                    i += workers;
                }
            })
        })
        .collect()
}

/// Relays added and removed while pairs run, behind a balancer whose configuration was
/// generated once before any relay existed and is never reloaded: a new pod takes new
/// tunnels as soon as DNS lists it; a pod scaled in leaves the ready list, drains (its live
/// tunnels go on, joins still reach it by its own name) and goes.
async fn scaling(kind: Balancer) {
    let dir = tempfile::Builder::new()
        .prefix(&format!("cable-deploy-scaling-{kind:?}-"))
        .tempdir()
        .unwrap();
    let _dump = LogsOnFailure(dir.path().to_owned());
    let keys = SharedKeys::generate(dir.path());
    let (dns, dns_addr) = Dns::start().await;
    // One port on an address per pod, as pods in a cluster have.
    let port = free_port();
    let pod_addr = |ordinal: u32| -> SocketAddr { ([127, 0, 1, 1 + ordinal as u8], port).into() };
    let pod_host = |ordinal: u32| SCALED_POD_HOST.replace("{ordinal}", &ordinal.to_string());

    // Two pods: 0 and 1 start, their names resolve, and they are ready.
    let mut relays = Vec::new();
    for ordinal in 0..2 {
        relays.push(Relay::start_pod(kind, ordinal, pod_addr(ordinal), dir.path(), &keys).await);
        dns.set(&pod_host(ordinal), vec![ipv4(pod_addr(ordinal))]);
    }
    let ready = |n: u32| (0..n).map(|o| ipv4(pod_addr(o))).collect::<Vec<_>>();
    dns.set(SCALED_NEW_HOST, ready(2));
    // The balancer's configuration names no relay: it is the same for any number of them.
    let balancer = BalancerProcess::start_by_ordinal(kind, dns_addr, port, dir.path()).await;
    let base = format!("ws://{}", balancer.addr);
    let ids = Arc::new(TunnelIds::new(kind));

    let stop = Arc::new(AtomicBool::new(false));
    let carried = Arc::new(Mutex::new(HashMap::new()));
    let workers = keep_pairing(base.clone(), ids.clone(), 4, stop.clone(), carried.clone());
    let carried_by = |rid: &str| carried.lock().unwrap().get(rid).copied().unwrap_or(0);
    let wait_for_pairs_on = |rid: String| {
        let carried = carried.clone();
        async move {
            let deadline = Instant::now() + STEP;
            let before = carried.lock().unwrap().get(&rid).copied().unwrap_or(0);
            while carried.lock().unwrap().get(&rid).copied().unwrap_or(0) < before + 5 {
                assert!(
                    Instant::now() < deadline,
                    "{kind:?}: no pairs reached {rid}"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    };
    wait_for_pairs_on("100000".into()).await;
    wait_for_pairs_on("100001".into()).await;

    // Scale out to three: pod 2 starts and joins the ready list; nothing else changes.
    relays.push(Relay::start_pod(kind, 2, pod_addr(2), dir.path(), &keys).await);
    dns.set(&pod_host(2), vec![ipv4(pod_addr(2))]);
    dns.set(SCALED_NEW_HOST, ready(3));
    wait_for_pairs_on("100002".into()).await;
    eprintln!(
        "{kind:?}: pod 2 carried pairs after scale-out: {}",
        carried_by("100002")
    );

    // Scale in to two: pod 2 (the highest ordinal goes first) leaves the ready list and is
    // told to stop. It holds a joined tunnel and a phone still waiting for its computer.
    let (mut phone, mut computer, mut pending_phone, pending_tid) = {
        let joined = loop {
            let tid = ids.next();
            let (p, rid) = open_new(&base, &tid).await;
            if rid == "100002" {
                break (p, open_connect(&base, &rid, &tid).await);
            }
        };
        let pending = loop {
            let tid = ids.next();
            let (p, rid) = open_new(&base, &tid).await;
            if rid == "100002" {
                break (p, tid);
            }
        };
        (joined.0, joined.1, pending.0, pending.1)
    };
    dns.set(SCALED_NEW_HOST, ready(2));
    let sigterm_at = Instant::now();
    relays[2].signal("TERM").await;
    relays[2].wait_not_ready().await;
    // Joins still reach the draining pod by its own name (the headless Service publishes
    // pods that are not ready), and its live tunnel is relayed until the deadline.
    let mut pending_computer = open_connect(&base, "100002", &pending_tid).await;
    exchange(
        &mut pending_phone,
        &mut pending_computer,
        b"joined while draining",
        2,
    )
    .await;
    exchange(&mut phone, &mut computer, b"relayed while draining", 2).await;
    assert!(
        sigterm_at.elapsed() < DRAIN,
        "test too slow to observe the drain window"
    );
    for (side, ws) in [("phone", &mut phone), ("computer", &mut computer)] {
        assert_eq!(
            expect_close(ws).await,
            Some(CloseCode::Away),
            "{kind:?}: {side} close code"
        );
    }
    assert!(
        sigterm_at.elapsed() >= DRAIN,
        "{kind:?}: a live tunnel was cut before the drain deadline"
    );
    assert!(
        relays[2].wait_exit().await.success(),
        "{kind:?}: the drained pod failed"
    );
    dns.remove(&pod_host(2));

    // Pairs went on throughout; new ones now land on pods 0 and 1 only.
    let on_two = carried_by("100002");
    wait_for_pairs_on("100000".into()).await;
    wait_for_pairs_on("100001".into()).await;
    stop.store(true, Ordering::Relaxed);
    for worker in workers {
        worker
            .await
            .unwrap_or_else(|e| panic!("{kind:?}: a pair failed while scaling: {e}"));
    }
    assert_eq!(
        carried_by("100002"),
        on_two,
        "{kind:?}: a pair reached the removed pod"
    );
    let total: usize = carried.lock().unwrap().values().sum();
    eprintln!(
        "{kind:?}: {total} pairs while scaling 2 → 3 → 2: {:?}",
        carried.lock().unwrap()
    );

    // A join for the removed pod fails at the edge (HAProxy: 404 once its name is gone;
    // nginx: 502, it cannot tell a missing pod from a dead one).
    let status = status_of(&format!("{base}/cable/connect/100002/{}", ids.next()), true).await;
    assert!(
        matches!(status, 404 | 502),
        "{kind:?}: join for a removed pod answered {status}"
    );
    drop(balancer);
}

fn ipv4(addr: SocketAddr) -> Ipv4Addr {
    match addr.ip() {
        std::net::IpAddr::V4(ip) => ip,
        std::net::IpAddr::V6(_) => unreachable!("pods here have IPv4 addresses"),
    }
}
