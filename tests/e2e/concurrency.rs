//! Fifty ceremonies at once through one relay and one air: every computer finds its own
//! phone among fifty adverts, and every registration verifies.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use cable_client::Ceremony;
use cable_e2e::{test_deadlines, Harness, RelyingParty};
use cable_phone::PasskeyStore;
use tokio_util::sync::CancellationToken;

const CEREMONIES: usize = 50;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_registrations_through_one_relay() {
    let harness = Arc::new(Harness::start().await.unwrap());
    let mut tasks = Vec::new();
    for i in 0..CEREMONIES {
        let harness = harness.clone();
        tasks.push(tokio::spawn(async move {
            let rp = RelyingParty::new("example.com", "https://example.com").unwrap();
            let options = rp
                .start_registration(&format!("user{i}"), &format!("User {i}"))
                .unwrap();
            let config = harness.client_config(test_deadlines()).unwrap();
            let (ceremony, _progress) =
                Ceremony::register(config, &options, "https://example.com").unwrap();
            let phone = harness.phone(&ceremony.qr_uri(), PasskeyStore::in_memory());
            let cancel = CancellationToken::new();
            let (computer, phone) =
                tokio::join!(ceremony.run(cancel.clone()), phone.run(cancel.clone()));
            phone.unwrap();
            let registration = computer.unwrap();
            rp.finish_registration(&registration.to_json_string())
                .unwrap();
            registration.credential_id
        }));
    }
    let mut ids = Vec::new();
    for task in tasks {
        ids.push(task.await.unwrap());
    }
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), CEREMONIES);
}
