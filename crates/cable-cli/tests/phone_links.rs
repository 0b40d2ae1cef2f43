//! `cable phone links` and `cable phone unlink` on an identity file a phone session wrote.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use cable_phone::PhoneIdentity;
use cable_proto::qr::{QrKey, RequestHint};
use cable_proto::rand_core::OsRng;

fn cable(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cable"))
        .args(args)
        .env("NO_COLOR", "1")
        .env_remove("CABLE_PHONE_STORE")
        .env_remove("CABLE_PHONE_IDENTITY")
        .output()
        .expect("run cable")
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8(o.stderr.clone()).unwrap()
}

fn assert_bad_input(o: &Output, needle: &str) {
    assert_eq!(o.status.code(), Some(2), "stderr: {}", stderr(o));
    let err = stderr(o);
    assert_eq!(err.lines().count(), 1, "one line expected: {err:?}");
    assert!(err.contains(needle), "{err:?} should mention {needle:?}");
    assert!(o.stdout.is_empty());
}

/// An identity with two links, one named, as `cable phone --contact-id … --link-name …`
/// would have left it; returns its path and the root secret's base64url.
fn seeded_identity(dir: &Path) -> (PathBuf, String) {
    std::fs::create_dir_all(dir).unwrap();
    let path = dir.join("phone-identity.json");
    let identity = PhoneIdentity::open_or_create(&path, &mut OsRng).unwrap();
    identity.set_contact_id(Some(vec![1; 30])).unwrap();
    for name in [Some("-work laptop"), None] {
        let qr = QrKey::generate(&mut OsRng, 0, RequestHint::MakeCredential);
        identity
            .new_link(
                qr.public_key(),
                &[0; 32],
                name.map(str::to_owned),
                1_796_223_600,
                &mut OsRng,
            )
            .unwrap()
            .unwrap();
    }
    let file: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let root = file["root_secret"].as_str().unwrap().to_owned();
    (path, root)
}

fn phone(identity: &Path, args: &[&str]) -> Output {
    let mut all = vec!["phone"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--identity", identity.to_str().unwrap()]);
    cable(&all)
}

#[test]
fn links_are_listed_and_unlinked_without_printing_secrets() {
    let dir = std::env::temp_dir().join(format!("cable-cli-links-{}", std::process::id()));
    let (path, root) = seeded_identity(&dir);
    let contact = URL_SAFE_NO_PAD.encode([1u8; 30]);

    let o = phone(&path, &["links", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let list: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 2);
    assert_eq!(list[0]["computer"], "-work laptop");
    assert_eq!(list[1]["computer"], serde_json::Value::Null);
    assert_eq!(list[0]["created"], 1_796_223_600);
    let second_id = list[1]["link_id"].as_str().unwrap().to_owned();
    let text = stdout(&phone(&path, &["links"]));
    assert!(text.contains("-work laptop"), "{text}");
    assert!(text.contains("2026-12-02 15:00"), "{text}");
    for o in [&text, &stdout(&o)] {
        assert!(!o.contains(&root), "{o}");
        assert!(!o.contains(&contact), "{o}");
    }

    let before = std::fs::read(&path).unwrap();
    assert_bad_input(
        &phone(&path, &["unlink", "nope"]),
        "no link is named \"nope\"",
    );
    assert_eq!(std::fs::read(&path).unwrap(), before);
    let o = phone(&path, &["unlink", "-work laptop"]);
    assert!(stdout(&o).contains("unlinked 1"), "{}", stderr(&o));
    let o = phone(&path, &["unlink", &second_id]);
    assert!(stdout(&o).contains("unlinked 1"), "{}", stderr(&o));
    assert!(stdout(&phone(&path, &["links"])).starts_with("no links"));
    let o = phone(&path, &["unlink", "--all"]);
    assert!(stdout(&o).contains("unlinked 0"), "{}", stderr(&o));
    // The identity itself stays.
    let again = PhoneIdentity::open_existing(&path).unwrap().unwrap();
    assert!(again.links().is_empty());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_link_commands_exit_2_with_one_line() {
    assert_bad_input(
        &cable(&["phone", "links"]),
        "pass --identity FILE or --store FILE",
    );
    let dir = std::env::temp_dir().join(format!("cable-cli-links-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let missing = dir.join("none.json");
    // Listing or unlinking never creates an identity.
    let o = phone(&missing, &["links"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_bad_input(&phone(&missing, &["unlink", "x"]), "no link is named \"x\"");
    assert!(!missing.exists());
    let store = dir.join("passkeys.json");
    assert_bad_input(
        &cable(&[
            "phone",
            "FIDO:/1",
            "--store",
            store.to_str().unwrap(),
            "--contact-id",
            "not base64!",
        ]),
        "invalid --contact-id",
    );
    let long = "x".repeat(65);
    assert_bad_input(
        &cable(&[
            "phone",
            "FIDO:/1",
            "--store",
            store.to_str().unwrap(),
            "--name",
            &long,
        ]),
        "invalid --name",
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[cfg(unix)]
#[test]
fn an_identity_others_can_read_is_refused_with_the_fix() {
    use std::os::unix::fs::PermissionsExt;
    let dir = std::env::temp_dir().join(format!("cable-cli-links-mode-{}", std::process::id()));
    let (path, _) = seeded_identity(&dir);
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let o = phone(&path, &["links"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let err = stderr(&o);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("chmod 600"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}
