//! One phone session on loopback: in-process relay, in-memory air, a computer scripted from
//! cable-proto. Measures a whole ceremony as the phone sees it (QR parse to close), so the
//! figure includes the computer's work and the relay hops, not just the phone's CPU.
//!
//! `CARGO_TARGET_DIR=… cargo bench -p cable-phone --bench session`

#![allow(clippy::unwrap_used, clippy::result_large_err, missing_docs)]

#[path = "../tests/support/mod.rs"]
mod support;

use cable_phone::{AlwaysApprove, PasskeyStore, SoftwareAuthenticator};
use cable_proto::ctap::command;
use cable_proto::qr::RequestHint;
use criterion::{criterion_group, criterion_main, Criterion};
use support::*;

fn ceremony(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let env = runtime.block_on(Env::start());
    let store = PasskeyStore::in_memory();
    let mut group = c.benchmark_group("phone_session");
    group.sample_size(30);

    group.bench_function("make_credential", |b| {
        b.iter(|| {
            runtime.block_on(async {
                let qr = qr_key(RequestHint::MakeCredential);
                let auth = SoftwareAuthenticator::new(store.clone(), AlwaysApprove);
                let phone = spawn_phone(env.phone(&qr, auth));
                let mut computer = computer_connect(&env, &qr).await;
                let resp = computer
                    .request(
                        command::MAKE_CREDENTIAL,
                        make_credential_params("example.com", &client_data_hash("b"), b"user"),
                    )
                    .await;
                assert_eq!(resp.status, 0);
                phone.result().await.unwrap();
            })
        })
    });

    group.bench_function("get_assertion", |b| {
        b.iter(|| {
            runtime.block_on(async {
                let qr = qr_key(RequestHint::GetAssertion);
                let auth = SoftwareAuthenticator::new(store.clone(), AlwaysApprove);
                let phone = spawn_phone(env.phone(&qr, auth));
                let mut computer = computer_connect(&env, &qr).await;
                let resp = computer
                    .request(
                        command::GET_ASSERTION,
                        get_assertion_params("example.com", &client_data_hash("b"), None),
                    )
                    .await;
                assert_eq!(resp.status, 0);
                phone.result().await.unwrap();
            })
        })
    });
    group.finish();
}

criterion_group!(benches, ceremony);
criterion_main!(benches);
