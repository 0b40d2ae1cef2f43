//! Pair-setup load through a load balancer: each pair opens `/cable/new/<id>`, reads the
//! routing id the answering instance announced, joins with `/cable/connect/<that id>/<id>`,
//! makes one round trip and closes. Unlike a load tool aimed at one relay, it follows the
//! routing id, so it works with any number of instances behind the balancer.
//!
//! Prints one JSON object: pairs/s, setup latency percentiles, pairs per routing id, and
//! the CPU time per pair of each watched process (relays, balancer) read from /proc.
//! Used by deploy/bench/lb-bench.sh.

#![allow(clippy::unwrap_used)] // benchmark driver: a broken setup aborts the run

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cable_proto::domain::{connect_path, new_path};
use cable_proto::ids::{RoutingId, TunnelId};
use cable_proto::wire::{ROUTING_ID_HEADER, SUBPROTOCOL};
use clap::Parser;
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message;

#[derive(Debug, Parser)]
struct Args {
    /// Balancer base URL.
    #[arg(long)]
    url: String,
    /// Pairs to set up in total.
    #[arg(long, default_value_t = 2000)]
    pairs: usize,
    /// Pairs in progress at once.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Bytes per message of the one round trip.
    #[arg(long, default_value_t = 256)]
    size: usize,
    /// `NAME=PID` of a process whose CPU time per pair to report; repeat.
    #[arg(long = "watch")]
    watch: Vec<String>,
}

fn cpu_ns(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    // USER_HZ is 100 on Linux.
    Some(ticks * 10_000_000)
}

async fn open(url: &str) -> Result<(Ws, Option<String>), String> {
    let mut req = url.into_client_request().map_err(|e| e.to_string())?;
    req.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        HeaderValue::from_static(SUBPROTOCOL),
    );
    let (ws, resp) = tokio_tungstenite::connect_async(req)
        .await
        .map_err(|e| e.to_string())?;
    if let tokio_tungstenite::MaybeTlsStream::Plain(tcp) = ws.get_ref() {
        let _ = tcp.set_nodelay(true);
    }
    let rid = resp
        .headers()
        .get(ROUTING_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    Ok((ws, rid))
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn pair(base: &str, tid: &TunnelId, size: usize) -> Result<String, String> {
    let (mut phone, rid) = open(&format!("{base}{}", new_path(tid))).await?;
    let rid = rid.ok_or(format!("no {ROUTING_ID_HEADER}"))?;
    let routing_id = RoutingId::from_hex(&rid).map_err(|e| e.to_string())?;
    let (mut computer, _) = open(&format!("{base}{}", connect_path(&routing_id, tid))).await?;
    let payload = vec![0x5a; size];
    phone
        .send(Message::binary(payload.clone()))
        .await
        .map_err(|e| e.to_string())?;
    match computer.next().await {
        Some(Ok(Message::Binary(b))) if b.len() == size => {}
        other => return Err(format!("computer got {other:?}")),
    }
    computer
        .send(Message::binary(payload))
        .await
        .map_err(|e| e.to_string())?;
    match phone.next().await {
        Some(Ok(Message::Binary(b))) if b.len() == size => {}
        other => return Err(format!("phone got {other:?}")),
    }
    computer.close(None).await.map_err(|e| e.to_string())?;
    // The relay closes the phone in turn; wait for it so the pair is fully torn down.
    while let Some(Ok(m)) = phone.next().await {
        if m.is_close() {
            break;
        }
    }
    Ok(rid)
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1e6
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args = Args::parse();
    let watched: Vec<(String, u32)> = args
        .watch
        .iter()
        .map(|w| {
            let (n, p) = w.split_once('=').expect("--watch NAME=PID");
            (n.to_owned(), p.parse().expect("PID"))
        })
        .collect();
    let cpu_before: Vec<u64> = watched
        .iter()
        .map(|(_, p)| cpu_ns(*p).unwrap_or(0))
        .collect();
    let self_before = cpu_ns(std::process::id()).unwrap_or(0);
    // Other work on the machine skews pairs/s (not the CPU time per pair): record it.
    let loadavg = std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split(' ').next().map(str::to_owned))
        .unwrap_or_default();
    let run_tag = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    let next = Arc::new(AtomicUsize::new(0));
    let results = Arc::new(Mutex::new((
        Vec::new(),
        BTreeMap::<String, usize>::new(),
        0usize,
        None::<String>,
    )));
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..args.concurrency {
        let (next, results, base) = (next.clone(), results.clone(), args.url.clone());
        let (pairs, size) = (args.pairs, args.size);
        workers.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= pairs {
                    break;
                }
                let mut id = [0u8; TunnelId::LEN];
                id[..8].copy_from_slice(&run_tag.to_be_bytes());
                id[8..].copy_from_slice(&(i as u64).to_be_bytes());
                let tid = TunnelId::from_bytes(id);
                let t = Instant::now();
                let r = pair(&base, &tid, size).await;
                let mut g = results.lock().unwrap();
                match r {
                    Ok(rid) => {
                        g.0.push(t.elapsed());
                        *g.1.entry(rid).or_default() += 1;
                    }
                    Err(e) => {
                        g.2 += 1;
                        g.3.get_or_insert(e);
                    }
                }
            }
        }));
    }
    for w in workers {
        w.await.unwrap();
    }
    let seconds = started.elapsed().as_secs_f64();
    let (mut lat, per_rid, errors, first_error) = std::mem::take(&mut *results.lock().unwrap());
    lat.sort();
    let ok = lat.len();
    let cpu: Vec<String> = watched
        .iter()
        .zip(&cpu_before)
        .map(|((name, pid), before)| {
            let used = cpu_ns(*pid).unwrap_or(0).saturating_sub(*before);
            format!("\"{name}\": {:.1}", used as f64 / 1000.0 / ok.max(1) as f64)
        })
        .collect();
    let self_us = cpu_ns(std::process::id())
        .unwrap_or(0)
        .saturating_sub(self_before) as f64
        / 1000.0
        / ok.max(1) as f64;
    let rids: Vec<String> = per_rid
        .iter()
        .map(|(r, n)| format!("\"{r}\": {n}"))
        .collect();
    println!(
        "{{\"pairs_ok\": {ok}, \"errors\": {errors}, \"first_error\": {:?}, \"seconds\": {seconds:.3}, \
         \"pairs_per_second\": {:.0}, \"pair_ms_p50\": {:.2}, \"pair_ms_p99\": {:.2}, \
         \"pairs_per_routing_id\": {{{}}}, \"cpu_us_per_pair\": {{{}, \"driver\": {self_us:.1}}}, \
         \"loadavg_1m_at_start\": {loadavg}}}",
        first_error.unwrap_or_default(),
        ok as f64 / seconds,
        percentile(&lat, 0.5) / 1000.0,
        percentile(&lat, 0.99) / 1000.0,
        rids.join(", "),
        cpu.join(", "),
    );
}
