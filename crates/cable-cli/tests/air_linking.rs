//! A phone with a contact id links to the computer during `cable register`, across two
//! processes on the loopback air: the computer verifies and keeps the linking data
//! (`cable phones list`), the phone remembers the link (`cable phone links`).
#![allow(clippy::unwrap_used)]

mod support;

use std::path::PathBuf;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use cable_tunnel_server::{Relay, RelayConfig};
use support::*;

#[test]
fn a_phone_with_a_contact_id_links_during_register() {
    let dir: PathBuf =
        std::env::temp_dir().join(format!("cable-cli-air-linking-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("air")).unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let relay = runtime
        .block_on(Relay::bind(RelayConfig::default()))
        .unwrap();
    let air = dir.join("air");
    let env = [
        ("CABLE_AIR_DIR", air.to_str().unwrap()),
        (
            "DBUS_SYSTEM_BUS_ADDRESS",
            "unix:path=/nonexistent/cable-air-test",
        ),
    ];
    let store = dir.join("phone-passkeys.json");
    let identity = dir.join("phone-identity.json");
    let phones = dir.join("linked-phones.json");
    let contact_id = URL_SAFE_NO_PAD.encode(b"an opaque contact id from the relay");
    let url = relay.url();

    let challenge = URL_SAFE_NO_PAD.encode(b"air linking: register");
    let mut computer = Cable::spawn(
        "computer",
        &[
            "register",
            "--rp-id",
            RP_ID,
            "--user",
            "alice",
            "--challenge",
            &challenge,
            "--origin",
            ORIGIN,
            "--relay",
            &url,
            "--ble",
            "air",
            "--scan-timeout",
            PROCESS_WAIT_SECS,
            "--json",
            "--phones-file",
            phones.to_str().unwrap(),
        ],
        &env,
    );
    let uri = wait_for_qr(&mut computer, reports);
    let mut phone = Cable::spawn(
        "phone",
        &[
            "phone",
            &uri,
            "--relay",
            &url,
            "--ble",
            "air",
            "--yes",
            "--store",
            store.to_str().unwrap(),
            "--contact-id",
            &contact_id,
            "--name",
            "Air phone",
            "--link-name",
            "-the computer",
            "--wait",
            PROCESS_WAIT_SECS,
        ],
        &env,
    );
    wait_for_both(
        &mut computer,
        &mut phone,
        || std::thread::sleep(POLL),
        reports,
    );
    assert!(
        phone.stderr().contains("linked"),
        "the phone says it linked: {}",
        phone.stderr()
    );
    let created: serde_json::Value = serde_json::from_str(computer.stdout().trim()).unwrap();
    check_registration_json(&created, &challenge);

    // The identity file sits next to the passkey store.
    assert!(identity.exists());
    let run = |args: &[&str]| {
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_cable"))
            .args(args)
            .env("NO_COLOR", "1")
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        serde_json::from_slice::<serde_json::Value>(&o.stdout).unwrap()
    };
    let linked = run(&[
        "phones",
        "--phones-file",
        phones.to_str().unwrap(),
        "list",
        "--json",
    ]);
    assert_eq!(linked.as_array().unwrap().len(), 1, "{linked}");
    assert_eq!(linked[0]["authenticator_name"], "Air phone");
    let links = run(&[
        "phone",
        "links",
        "--json",
        "--store",
        store.to_str().unwrap(),
    ]);
    assert_eq!(links.as_array().unwrap().len(), 1, "{links}");
    assert_eq!(links[0]["computer"], "-the computer");
    let _ = std::fs::remove_dir_all(&dir);
}
