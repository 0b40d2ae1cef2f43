//! Criterion benchmarks of the protocol core's hot paths.
//!
//! Run: `cargo bench -p cable-proto --bench proto -- --warm-up-time 1 --measurement-time 3`

// Benchmarks run outside the sans-IO rule: they draw keys from the OS like callers do.
#![allow(clippy::unwrap_used, clippy::disallowed_types, missing_docs)]

use std::hint::black_box;

use cable_proto::advert::{decrypt_advert, encrypt_eid, Eid};
use cable_proto::crypter::Crypter;
use cable_proto::derive::Psk;
use cable_proto::handshake::{Initiator, Responder};
use cable_proto::ids::RoutingId;
use cable_proto::keys;
use cable_proto::qr::{QrCode, QrKey, RequestHint};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use rand_core::{CryptoRng, OsRng, RngCore};

/// Replays one fixed 32-byte ephemeral so the initiator's msg1 (and hence a
/// precomputed msg2) stays valid across iterations.
struct FixedRng([u8; 32]);

impl RngCore for FixedRng {
    fn next_u32(&mut self) -> u32 {
        0
    }
    fn next_u64(&mut self) -> u64 {
        0
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        for (d, s) in dest.iter_mut().zip(self.0.iter().cycle()) {
            *d = *s;
        }
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}

impl CryptoRng for FixedRng {}

fn qr(c: &mut Criterion) {
    c.bench_function("qr/generate", |b| {
        b.iter(|| {
            QrKey::generate(
                &mut OsRng,
                black_box(1_700_000_000),
                RequestHint::GetAssertion,
            )
        })
    });
    let uri = QrKey::generate(&mut OsRng, 1_700_000_000, RequestHint::GetAssertion).to_uri();
    c.bench_function("qr/parse", |b| {
        b.iter(|| QrCode::parse(black_box(&uri)).unwrap())
    });
}

fn advert(c: &mut Criterion) {
    let key = QrKey::generate(&mut OsRng, 0, RequestHint::GetAssertion);
    let eid_key = key.secret().eid_key();
    let eid = Eid::new(&mut OsRng, RoutingId::from_bytes([1, 2, 3]), 0);
    let advert = encrypt_eid(&eid_key, &eid.to_bytes());
    c.bench_function("advert/decrypt", |b| {
        b.iter(|| decrypt_advert(&eid_key, black_box(&advert)).unwrap())
    });
    let other = QrKey::generate(&mut OsRng, 0, RequestHint::GetAssertion)
        .secret()
        .eid_key();
    c.bench_function("advert/reject_foreign", |b| {
        b.iter(|| decrypt_advert(&other, black_box(&advert)).unwrap_err())
    });
}

fn handshake(c: &mut Criterion) {
    let qr_key = QrKey::generate(&mut OsRng, 0, RequestHint::GetAssertion);
    let psk = Psk::from_bytes([7; 32]);
    let e = [0x42u8; 32];
    let (_, msg1) = Initiator::new_qr(&qr_key, &psk, &mut FixedRng(e)).unwrap();
    let (msg2, _) = Responder::respond_qr(qr_key.public_key(), &psk, &msg1, &mut OsRng).unwrap();

    c.bench_function("handshake/qr_initiator", |b| {
        b.iter(|| {
            let (init, m1) = Initiator::new_qr(&qr_key, &psk, &mut FixedRng(e)).unwrap();
            black_box(m1);
            init.finish(black_box(&msg2)).unwrap()
        })
    });
    c.bench_function("handshake/qr_responder", |b| {
        b.iter(|| {
            Responder::respond_qr(qr_key.public_key(), &psk, black_box(&msg1), &mut OsRng).unwrap()
        })
    });

    let identity = keys::random_secret_key(&mut OsRng);
    let identity_public = identity.public_key();
    let (_, nk1) = Initiator::new_linked(&identity_public, &psk, &mut FixedRng(e)).unwrap();
    let (nk2, _) = Responder::respond_linked(&identity, &psk, &nk1, &mut OsRng).unwrap();
    c.bench_function("handshake/linked_initiator", |b| {
        b.iter(|| {
            let (init, m1) =
                Initiator::new_linked(&identity_public, &psk, &mut FixedRng(e)).unwrap();
            black_box(m1);
            init.finish(black_box(&nk2)).unwrap()
        })
    });
    c.bench_function("handshake/linked_responder", |b| {
        b.iter(|| Responder::respond_linked(&identity, &psk, black_box(&nk1), &mut OsRng).unwrap())
    });
}

fn p256_floor(c: &mut Criterion) {
    let a = keys::random_secret_key(&mut OsRng);
    let b_pub = keys::random_secret_key(&mut OsRng).public_key();
    c.bench_function("p256/ecdh_variable_base", |b| {
        b.iter(|| keys::ecdh_x(black_box(&a), black_box(&b_pub)))
    });
    c.bench_function("p256/public_key_fixed_base", |b| {
        b.iter(|| black_box(&a).public_key())
    });
}

fn transport(c: &mut Criterion) {
    let frame = vec![0x5au8; 1024];
    c.bench_function("crypter/encrypt_decrypt_1KiB", |b| {
        b.iter_batched_ref(
            || {
                (
                    Crypter::new(&[2; 32], &[1; 32]),
                    Crypter::new(&[1; 32], &[2; 32]),
                )
            },
            |(desktop, phone)| {
                let ct = desktop.encrypt(black_box(&frame)).unwrap();
                phone.decrypt(&ct).unwrap()
            },
            BatchSize::SmallInput,
        )
    });
}

criterion_group!(benches, qr, advert, handshake, p256_floor, transport);
criterion_main!(benches);
