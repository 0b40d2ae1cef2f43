//! Property tests: whatever the computer sends, the phone ends with an outcome or a typed error,
//! never a panic, and never hangs past its deadlines.

#![allow(clippy::unwrap_used, clippy::result_large_err)]

mod support;

use std::sync::OnceLock;
use std::time::Duration;

use cable_phone::{PasskeyStore, PhoneError, SoftwareAuthenticator};
use cable_proto::cbor::Value;
use cable_proto::qr::RequestHint;
use proptest::prelude::*;
use support::*;
use tokio::runtime::Runtime;

struct Shared {
    runtime: Runtime,
    env: Env,
}

fn shared() -> &'static Shared {
    static SHARED: OnceLock<Shared> = OnceLock::new();
    SHARED.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let env = runtime.block_on(Env::start());
        Shared { runtime, env }
    })
}

fn quick(session: cable_phone::PhoneSession) -> cable_phone::PhoneSession {
    let mut d = test_deadlines();
    d.await_request = Duration::from_secs(2);
    d.authenticate = Duration::from_secs(2);
    session.deadlines(d)
}

/// Runs a phone, lets `computer` do its worst after (or instead of) the handshake, and returns
/// the phone's result. A panic in the phone fails the test through the join handle.
fn run_case<F, Fut>(computer: F) -> Result<cable_phone::Outcome, PhoneError>
where
    F: FnOnce(&'static Env, cable_proto::qr::QrKey) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let s = shared();
    s.runtime.block_on(async {
        let qr = qr_key(RequestHint::GetAssertion);
        let auth =
            SoftwareAuthenticator::new(PasskeyStore::in_memory(), cable_phone::AlwaysApprove);
        let phone = spawn_phone(quick(s.env.phone(&qr, auth)));
        computer(&s.env, qr).await;
        tokio::time::timeout(Duration::from_secs(20), phone.task)
            .await
            .expect("the phone hung")
            .expect("the phone panicked")
    })
}

/// CBOR values of the kinds CTAP uses, nested a little.
fn cbor_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        any::<u64>().prop_map(Value::Unsigned),
        any::<u64>().prop_map(Value::Negative),
        proptest::collection::vec(any::<u8>(), 0..40).prop_map(Value::Bytes),
        "[a-zA-Z-]{0,12}".prop_map(Value::Text),
        any::<bool>().prop_map(Value::Bool),
        Just(Value::Null),
        Just(Value::Text("id".into())),
        Just(Value::Text("public-key".into())),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::vec((inner.clone(), inner), 0..5).prop_map(Value::map),
        ]
    })
}

/// A parameter map with the integer keys CTAP requests use and values of any kind.
fn ctap_params() -> impl Strategy<Value = Value> {
    proptest::collection::vec((1u64..10, cbor_value()), 0..8)
        .prop_map(|entries| Value::map(entries.into_iter().map(|(k, v)| (Value::Unsigned(k), v))))
}

/// Plaintexts a computer could send after the handshake: random bytes, and framed CTAP
/// requests with random or structured parameters.
fn plaintext() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..200),
        (0u8..5, proptest::collection::vec(any::<u8>(), 0..100)).prop_map(|(t, rest)| {
            let mut v = vec![t];
            v.extend(rest);
            v
        }),
        (
            prop_oneof![Just(1u8), Just(2), Just(4), Just(0x0b), any::<u8>()],
            ctap_params()
        )
            .prop_map(|(cmd, params)| {
                let mut v = vec![1, cmd];
                params.encode_into(&mut v);
                v
            }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn any_first_message_fails_the_handshake_cleanly(
        msg1 in proptest::collection::vec(any::<u8>(), 0..200)
    ) {
        let result = run_case(|env, qr| async move {
            let advert = scan_advert(&env.air, &qr).await;
            let mut conn = join(env, &qr, &advert).await;
            conn.send(msg1, soon()).await.unwrap();
            let _ = conn.recv(soon()).await;
        });
        prop_assert!(matches!(result, Err(PhoneError::Handshake(_))), "{:?}", result);
    }

    #[test]
    fn any_request_plaintext_is_handled(plain in plaintext()) {
        let result = run_case(|env, qr| async move {
            let mut computer = computer_connect(env, &qr).await;
            computer.channel.send(&plain, soon()).await.unwrap();
            // Read whatever comes back until the phone closes.
            while computer.channel.recv(soon()).await.is_ok() {}
        });
        // Any outcome or typed error is fine; only panics and hangs are failures.
        let _ = result;
    }

    #[test]
    fn any_raw_ciphertext_is_rejected(raw in proptest::collection::vec(any::<u8>(), 0..300)) {
        let result = run_case(|env, qr| async move {
            let computer = computer_connect(env, &qr).await;
            let (mut conn, _) = computer.channel.into_parts();
            conn.send(raw, soon()).await.unwrap();
            let _ = conn.recv(soon()).await;
        });
        prop_assert!(
            matches!(
                result,
                Err(PhoneError::Transport { source: cable_transport::TransportError::Decrypt(_), .. })
            ),
            "{:?}",
            result
        );
    }
}
