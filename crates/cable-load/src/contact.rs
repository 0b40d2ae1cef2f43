//! `contact` mode: a linked phone contacted over and over, as the relay serves it.
//!
//! One phone registers its Web Push subscription (`POST /cable/push/register`) with a push
//! endpoint in this process, which decrypts every push exactly as a phone does. Then, with
//! `--setup-concurrency` in flight, each contact is a computer opening
//! `/cable/contact/<id>` (client payload and connect signal), the push arriving, the phone
//! joining `/cable/connect/<routing id>/<tunnel id>` and the computer receiving the `00`
//! connect signal. The relay's work per contact is unsealing the contact id, encrypting and
//! VAPID-signing the push, and one HTTP exchange with the push endpoint (plain HTTP here:
//! against a real push service add a TLS handshake).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cable_phone::{ContactRequest, PhoneIdentity, PushEndpoint};
use cable_proto::domain::{connect_path, contact_path};
use cable_proto::message::ClientPayload;
use cable_proto::qr::RequestHint;
use cable_proto::wire::{CLIENT_PAYLOAD_HEADER, SIGNAL_CONNECTION_HEADER};
use cable_transport::{Connector, RelayUrl};
use futures_util::StreamExt;
use serde::Serialize;
use tokio::sync::{oneshot, Semaphore};
use tokio_tungstenite::tungstenite::Message;

use crate::{percentile, self_cpu_ns, usage, LoadError, Shared, Target};

/// How long one contact may take before it counts as failed.
const STEP: Duration = Duration::from_secs(10);

/// Percentiles of one latency, in microseconds.
#[derive(Debug, Serialize)]
pub(crate) struct Spread {
    p50_us: f64,
    p90_us: f64,
    p99_us: f64,
    max_us: f64,
}

impl Spread {
    fn of(mut ns: Vec<u64>) -> Self {
        ns.sort_unstable();
        Self {
            p50_us: percentile(&ns, 0.50),
            p90_us: percentile(&ns, 0.90),
            p99_us: percentile(&ns, 0.99),
            max_us: ns.last().map_or(0.0, |v| *v as f64 / 1000.0),
        }
    }
}

#[derive(Debug, Serialize)]
pub(crate) struct Contacts {
    pub(crate) contacts_ok: usize,
    in_flight: usize,
    seconds: f64,
    contacts_per_second: f64,
    /// From the computer's TCP connect to the push arriving at the phone's endpoint.
    contact_to_push: Spread,
    /// From the computer's TCP connect to the phone's `/cable/connect/` being answered 101.
    contact_to_phone_connect: Spread,
    /// From the computer's TCP connect to the computer reading the `00` connect signal.
    contact_to_signal: Spread,
    relay_cpu_us_per_contact: Option<f64>,
    generator_cpu_us_per_contact: f64,
}

/// Pushes waiting for their contact, by client nonce (each contact has its own).
type Waiting = Arc<Mutex<HashMap<[u8; 16], oneshot::Sender<(ContactRequest, Instant)>>>>;

struct Timing {
    push: u64,
    phone_connect: u64,
    signal: u64,
}

pub(crate) async fn run(
    target: Arc<Target>,
    shared: Arc<Shared>,
    url: &str,
    count: usize,
    in_flight: usize,
    relay_pid: Option<u32>,
) -> Result<Contacts, LoadError> {
    let mut root = [0x5au8; 32];
    root[..8].copy_from_slice(&target.run_tag.to_be_bytes());
    let phone = PhoneIdentity::from_root_secret(root)
        .map_err(|e| LoadError::Contact(format!("phone identity: {e}")))?;
    let mut endpoint = PushEndpoint::bind(([127, 0, 0, 1], 0).into(), phone.push_keys())
        .await
        .map_err(|e| LoadError::Contact(format!("push endpoint: {e}")))?;
    let subscription = phone
        .push_keys()
        .subscription_json(&endpoint.url())
        .map_err(|e| LoadError::Contact(e.to_string()))?;
    let relay = RelayUrl::parse(url).map_err(|e| LoadError::Contact(e.to_string()))?;
    let connector = Connector::new().map_err(|e| LoadError::Contact(e.to_string()))?;
    let contact_id = connector
        .register_push(
            &relay,
            &subscription,
            tokio::time::Instant::now() + STEP,
        )
        .await
        .map_err(|e| LoadError::Contact(format!("registration: {e} (is the relay started with contact keys and --allow-insecure-push?)")))?;
    let path = Arc::new(contact_path(&contact_id));

    let waiting: Waiting = Arc::default();
    let dispatch = {
        let waiting = waiting.clone();
        tokio::spawn(async move {
            while let Some(request) = endpoint.next().await {
                let arrived = Instant::now();
                let nonce = request.client_payload.client_nonce;
                let tx = match waiting.lock() {
                    Ok(mut w) => w.remove(&nonce),
                    Err(p) => p.into_inner().remove(&nonce),
                };
                if let Some(tx) = tx {
                    let _ = tx.send((request, arrived));
                }
            }
        })
    };

    let before = relay_pid.map(usage).transpose()?;
    let gen_before = self_cpu_ns();
    let started = Instant::now();
    let permits = Arc::new(Semaphore::new(in_flight.max(1)));
    let mut tasks = Vec::with_capacity(count);
    for i in 0..count {
        let Ok(permit) = permits.clone().acquire_owned().await else {
            break;
        };
        let (target, shared, waiting, path) = (
            target.clone(),
            shared.clone(),
            waiting.clone(),
            path.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let _permit = permit;
            match tokio::time::timeout(STEP, one(&target, &waiting, &path, i)).await {
                Ok(Ok(t)) => Some(t),
                Ok(Err(e)) => {
                    shared.setup_error(format!("contact #{i}: {e}"));
                    None
                }
                Err(_) => {
                    shared.setup_error(format!("contact #{i}: no connect signal within {STEP:?}"));
                    None
                }
            }
        }));
    }
    let mut timings = Vec::with_capacity(count);
    for t in tasks {
        if let Ok(Some(timing)) = t.await {
            timings.push(timing);
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    let after = relay_pid.map(usage).transpose()?;
    dispatch.abort();
    let n = timings.len().max(1) as f64;
    Ok(Contacts {
        contacts_ok: timings.len(),
        in_flight,
        seconds,
        contacts_per_second: timings.len() as f64 / seconds,
        contact_to_push: Spread::of(timings.iter().map(|t| t.push).collect()),
        contact_to_phone_connect: Spread::of(timings.iter().map(|t| t.phone_connect).collect()),
        contact_to_signal: Spread::of(timings.iter().map(|t| t.signal).collect()),
        relay_cpu_us_per_contact: before
            .zip(after)
            .map(|(b, a)| a.cpu_ns.saturating_sub(b.cpu_ns) as f64 / 1000.0 / n),
        generator_cpu_us_per_contact: self_cpu_ns().saturating_sub(gen_before) as f64 / 1000.0 / n,
    })
}

/// One contact, from the computer's request to its connect signal.
async fn one(target: &Target, waiting: &Waiting, path: &str, i: usize) -> Result<Timing, String> {
    let mut nonce = [0u8; 16];
    nonce[..8].copy_from_slice(&target.run_tag.to_be_bytes());
    nonce[8..].copy_from_slice(&(i as u64).to_be_bytes());
    let payload = ClientPayload {
        link_id: vec![0x11; 8],
        client_nonce: nonce,
        hint: RequestHint::GetAssertion,
    };
    let (tx, rx) = oneshot::channel();
    match waiting.lock() {
        Ok(mut w) => w.insert(nonce, tx),
        Err(p) => p.into_inner().insert(nonce, tx),
    };
    let source = target.sources[i % target.sources.len()];
    let started = Instant::now();
    let headers = [
        (CLIENT_PAYLOAD_HEADER, hex::encode(payload.to_cbor())),
        (SIGNAL_CONNECTION_HEADER, "true".to_owned()),
    ];
    let (mut computer, _) = target.open_with(path, source, &headers).await?;
    let (request, pushed_at) = rx.await.map_err(|_| "push endpoint stopped".to_owned())?;
    let phone_source = target.sources[(i + 1) % target.sources.len()];
    let (phone, _) = target
        .open_with(
            &connect_path(&request.routing_id, &request.tunnel_id),
            phone_source,
            &[],
        )
        .await?;
    let phone_connect = started.elapsed();
    loop {
        match computer.next().await {
            Some(Ok(Message::Binary(b))) if b.as_ref() == [0] => break,
            Some(Ok(Message::Binary(b))) => return Err(format!("expected 00, got {b:02x?}")),
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
            other => return Err(format!("no connect signal: {other:?}")),
        }
    }
    let signal = started.elapsed();
    drop(phone);
    drop(computer);
    Ok(Timing {
        push: pushed_at.saturating_duration_since(started).as_nanos() as u64,
        phone_connect: phone_connect.as_nanos() as u64,
        signal: signal.as_nanos() as u64,
    })
}
