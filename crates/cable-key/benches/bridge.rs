//! What the bridge adds to a host's CTAPHID message, through the fake kernel (a
//! `SOCK_SEQPACKET` pair as `/dev/uhid`) and the key's two threads:
//!
//! - `get_info`: a CBOR request the key answers itself (no bridge);
//! - `silent_probe`: getAssertion `up: false`, decided by the bridge and answered at once;
//! - `request_to_qr`: from the host writing makeCredential to the QR code handed to the
//!   presenter (the ceremony is then cancelled, outside the measured time).
//!
//! `cargo bench -p cable-key --bench bridge`

#![allow(clippy::unwrap_used, missing_docs)]

#[path = "../tests/support/mod.rs"]
mod support;

use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cable_ctaphid::{Command, Reassembler};
use cable_demo::harness::{short_deadlines, Harness};
use cable_key::{BridgeConfig, HybridBridge, Outcome, Presenter, Start};
use cable_uhid::{KernelEvent, KeyConfig, RequestId, UserEvent, VirtualKey};
use criterion::{criterion_group, criterion_main, Criterion};
use support::*;

struct Signal(Mutex<Sender<()>>);

#[async_trait::async_trait]
impl Presenter for Signal {
    fn started(&self, _start: &Start<'_>) {
        let _ = self.0.lock().unwrap().send(());
    }
    fn ended(&self, _id: RequestId, _outcome: &Outcome<'_>) {}
    async fn confirm(&self, _id: RequestId) -> bool {
        true
    }
}

fn bridge(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let harness = runtime.block_on(Harness::start()).unwrap();
    let mut deadlines = short_deadlines();
    deadlines.scan = Duration::from_secs(60);
    let config = harness.client_config(deadlines).unwrap();
    let (tx, started): (Sender<()>, Receiver<()>) = mpsc::channel();
    let bridge = HybridBridge::new(
        runtime.handle().clone(),
        BridgeConfig::new(config),
        Arc::new(Signal(Mutex::new(tx))),
    );
    let (key_end, kernel_end) = seqpacket_pair();
    let key = VirtualKey::create(key_end, KeyConfig::default(), bridge).unwrap();
    let mut kernel = Kernel {
        sock: kernel_end,
        host: Reassembler::new(),
    };
    assert!(matches!(kernel.recv(), UserEvent::Create2(_)));
    kernel.send(&KernelEvent::Start { dev_flags: 0 });
    kernel.send(&KernelEvent::Open);
    let cid = kernel.init();

    let mut group = c.benchmark_group("cable_key");
    group.bench_function("get_info", |b| {
        b.iter(|| {
            kernel.write(cid, Command::Cbor, &[0x04]);
            kernel.answer()
        })
    });
    let probe = get_assertion(&[1; 32], "bench.example", Some(false));
    group.bench_function("silent_probe", |b| {
        b.iter(|| {
            kernel.write(cid, Command::Cbor, &probe);
            kernel.answer()
        })
    });
    let request = make_credential(&[2; 32], "bench.example");
    group.sample_size(50);
    group.bench_function("request_to_qr", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let start = Instant::now();
                kernel.write(cid, Command::Cbor, &request);
                started.recv().unwrap();
                total += start.elapsed();
                kernel.write(cid, Command::Cancel, &[]);
                let (answer, _) = kernel.answer();
                assert_eq!(answer.payload, [0x2d]);
            }
            total
        })
    });
    group.finish();
    drop(key);
    runtime.block_on(harness.shutdown()).unwrap();
}

criterion_group!(benches, bridge);
criterion_main!(benches);
