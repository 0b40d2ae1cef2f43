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

/// `cable phone listen` registers with the relay and waits; a QR registration links (the
/// identity now has a contact id); `cable login --phone` then reaches the phone with no QR
/// code: the relay pushes to the listener's endpoint, which answers on the air.
#[test]
fn a_listening_phone_answers_a_linked_login_without_a_qr_code() {
    use cable_tunnel_server::contact::ContactKeys;
    use cable_tunnel_server::{ContactConfig, VapidKey};

    let dir: PathBuf =
        std::env::temp_dir().join(format!("cable-cli-air-listen-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("air")).unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let keys = ContactKeys::parse(&ContactKeys::generate_line(1, &mut rand_core::OsRng)).unwrap();
    let mut contact = ContactConfig::new(keys, VapidKey::generate());
    contact.allow_insecure_push = true;
    let relay = runtime
        .block_on(Relay::bind({
            let mut config = RelayConfig::default();
            config.contact = Some(contact);
            config
        }))
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
    let phones = dir.join("linked-phones.json");
    let url = relay.url();
    let phone_common = [
        "--relay",
        &url,
        "--ble",
        "air",
        "--yes",
        "--store",
        store.to_str().unwrap(),
        "--wait",
        PROCESS_WAIT_SECS,
    ];

    let mut listen_args = vec!["phone", "listen", "--count", "1", "--name", "Air phone"];
    listen_args.extend_from_slice(&phone_common);
    let mut listener = Cable::spawn("listener", &listen_args, &env);
    let deadline = std::time::Instant::now() + QR_TIMEOUT;
    while !listener.stderr().contains("waiting for contacts") {
        assert!(
            listener.exited().is_none() && std::time::Instant::now() < deadline,
            "the listener never got ready\n{}",
            listener.report()
        );
        std::thread::sleep(POLL);
    }
    assert!(
        listener.stderr().contains("registered with"),
        "{}",
        listener.report()
    );

    let computer_common = [
        "--rp-id",
        RP_ID,
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
    ];
    let challenge = URL_SAFE_NO_PAD.encode(b"listen: register");
    let mut register_args = vec!["register", "--user", "alice", "--challenge", &challenge];
    register_args.extend_from_slice(&computer_common);
    let mut computer = Cable::spawn("computer", &register_args, &env);
    let uri = wait_for_qr(&mut computer, reports);
    let mut qr_args = vec!["phone", uri.as_str(), "--link-name", "laptop"];
    qr_args.extend_from_slice(&phone_common);
    let mut phone = Cable::spawn("phone", &qr_args, &env);
    wait_for_both(
        &mut computer,
        &mut phone,
        || std::thread::sleep(POLL),
        reports,
    );
    let created: serde_json::Value = serde_json::from_str(computer.stdout().trim()).unwrap();
    let credential_id = check_registration_json(&created, &challenge);

    let challenge = URL_SAFE_NO_PAD.encode(b"listen: login");
    let mut login_args = vec!["login", "--phone", "Air phone", "--challenge", &challenge];
    login_args.extend_from_slice(&computer_common);
    let mut login = Cable::spawn("login", &login_args, &env);
    wait_for_both(
        &mut login,
        &mut listener,
        || std::thread::sleep(POLL),
        reports,
    );
    let asserted: serde_json::Value = serde_json::from_str(login.stdout().trim()).unwrap();
    check_credential_json(&asserted, "webauthn.get", &challenge);
    assert_eq!(asserted["id"], credential_id.as_str());
    assert!(
        !login.stderr().contains("FIDO:/"),
        "no QR code was shown: {}",
        login.report()
    );
    let _ = std::fs::remove_dir_all(&dir);
}
