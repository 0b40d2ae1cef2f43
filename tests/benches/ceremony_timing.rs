//! Loopback timing of whole ceremonies: relay, phone and computer each on their own thread
//! (one current-thread Tokio runtime apiece), so wall time per ceremony and CPU time per side
//! can be read separately. The relying party's verification runs on the main thread and is
//! not counted.
//!
//! Run: `cargo bench -p cable-e2e --bench ceremony_timing` (optionally `-- <rounds>`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::mpsc as std_mpsc;
use std::thread;
use std::time::{Duration, Instant};

use cable_ble::Air;
use cable_client::Ceremony;
use cable_e2e::{client_config_for, test_deadlines, RelyingParty};
use cable_phone::{AlwaysApprove, PasskeyStore, PhoneSession, SoftwareAuthenticator};
use cable_transport::RelayUrl;
use cable_tunnel_server::{Relay, RelayConfig};
use tokio_util::sync::CancellationToken;

const ORIGIN: &str = "https://example.com";

/// CPU time this thread has run, from the scheduler's accounting (Linux).
fn thread_cpu() -> Duration {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .map_or(Duration::ZERO, Duration::from_nanos)
}

fn current_thread_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

enum Job {
    Register(String),
    SignIn(String),
}

struct Done {
    wall: Duration,
    response_json: String,
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn report(name: &str, mut times: Vec<Duration>) {
    times.sort();
    println!(
        "{name:<9} n={:<4} median {:>7.2} ms   p10 {:>7.2} ms   p90 {:>7.2} ms   min {:>7.2} ms",
        times.len(),
        percentile(&times, 0.5).as_secs_f64() * 1e3,
        percentile(&times, 0.1).as_secs_f64() * 1e3,
        percentile(&times, 0.9).as_secs_f64() * 1e3,
        times[0].as_secs_f64() * 1e3,
    );
}

fn main() {
    let rounds: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(200);
    let air = Air::with_interval(Duration::from_millis(20));

    // Relay thread.
    let (relay_tx, relay_rx) = std_mpsc::channel();
    let (relay_stop_tx, relay_stop_rx) = tokio::sync::oneshot::channel::<()>();
    let relay_thread = thread::spawn(move || {
        current_thread_runtime().block_on(async move {
            let relay = Relay::bind(RelayConfig::default()).await.expect("relay");
            let start = thread_cpu();
            relay_tx.send(relay.url()).unwrap();
            let _ = relay_stop_rx.await;
            let cpu = thread_cpu() - start;
            relay.shutdown().await.expect("relay shutdown");
            cpu
        })
    });
    let relay_url = RelayUrl::parse(&relay_rx.recv().unwrap()).unwrap();

    // Phone thread.
    let (phone_tx, mut phone_rx) = tokio::sync::mpsc::unbounded_channel::<(String, PasskeyStore)>();
    let phone_air = air.clone();
    let phone_relay = relay_url.clone();
    let phone_thread = thread::spawn(move || {
        current_thread_runtime().block_on(async move {
            let start = thread_cpu();
            while let Some((uri, store)) = phone_rx.recv().await {
                let authenticator = SoftwareAuthenticator::new(store, AlwaysApprove);
                PhoneSession::new(uri, phone_air.advertiser(), authenticator)
                    .relay(phone_relay.clone())
                    .domain_id(0)
                    .run(CancellationToken::new())
                    .await
                    .expect("phone");
            }
            thread_cpu() - start
        })
    });

    // Computer thread.
    let (job_tx, job_rx) = std_mpsc::channel::<Job>();
    let (done_tx, done_rx) = std_mpsc::channel::<Done>();
    let computer_air = air.clone();
    let computer_relay = relay_url.clone();
    let computer_thread = thread::spawn(move || {
        let store = PasskeyStore::in_memory();
        current_thread_runtime().block_on(async move {
            let start = thread_cpu();
            while let Ok(job) = job_rx.recv() {
                let config =
                    client_config_for(&computer_air, computer_relay.clone(), test_deadlines())
                        .unwrap();
                let began = Instant::now();
                let response_json = match job {
                    Job::Register(options) => {
                        let (c, _p) = Ceremony::register(config, &options, ORIGIN).unwrap();
                        phone_tx.send((c.qr_uri(), store.clone())).unwrap();
                        c.run(CancellationToken::new())
                            .await
                            .unwrap()
                            .to_json_string()
                    }
                    Job::SignIn(options) => {
                        let (c, _p) = Ceremony::authenticate(config, &options, ORIGIN).unwrap();
                        phone_tx.send((c.qr_uri(), store.clone())).unwrap();
                        c.run(CancellationToken::new())
                            .await
                            .unwrap()
                            .to_json_string()
                    }
                };
                let wall = began.elapsed();
                done_tx
                    .send(Done {
                        wall,
                        response_json,
                    })
                    .unwrap();
            }
            // Let the background lingers end before reading the clock.
            tokio::time::sleep(Duration::from_millis(300)).await;
            thread_cpu() - start
        })
    });

    let rp = RelyingParty::new("example.com", ORIGIN).unwrap();
    let mut register = Vec::with_capacity(rounds);
    let mut sign_in = Vec::with_capacity(rounds);
    for i in 0..rounds {
        let options = rp.start_registration(&format!("user{i}"), "User").unwrap();
        job_tx.send(Job::Register(options)).unwrap();
        let done = done_rx.recv().unwrap();
        rp.finish_registration(&done.response_json)
            .expect("registration verifies");
        register.push(done.wall);
    }
    for _ in 0..rounds {
        let options = rp.start_authentication().unwrap();
        job_tx.send(Job::SignIn(options)).unwrap();
        let done = done_rx.recv().unwrap();
        rp.finish_authentication(&done.response_json)
            .expect("assertion verifies");
        sign_in.push(done.wall);
    }
    drop(job_tx);
    let computer_cpu = computer_thread.join().unwrap();
    let phone_cpu = phone_thread.join().unwrap();
    let _ = relay_stop_tx.send(());
    let relay_cpu = relay_thread.join().unwrap();

    println!(
        "loopback ceremonies (relay, phone, computer on separate threads; RP checks excluded)"
    );
    report("register", register);
    report("sign-in", sign_in);
    let per = |d: Duration| d.as_secs_f64() * 1e6 / (2 * rounds) as f64;
    println!(
        "CPU per ceremony (mean over register + sign-in): computer {:.0} µs, phone {:.0} µs, relay {:.0} µs",
        per(computer_cpu),
        per(phone_cpu),
        per(relay_cpu)
    );
}
