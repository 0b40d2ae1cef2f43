//! The `cable` binary as a user runs it: exit codes, stdout and stderr.

#![allow(clippy::unwrap_used)]

use std::process::{Command, Output};

fn cable(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cable"))
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .expect("run cable")
}

fn vectors() -> serde_json::Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/vectors/hybrid.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8(o.stderr.clone()).unwrap()
}

/// Bad input: exit code 2 and exactly one line on stderr naming the problem.
fn assert_bad_input(o: &Output, needle: &str) {
    assert_eq!(o.status.code(), Some(2), "stderr: {}", stderr(o));
    let err = stderr(o);
    assert_eq!(err.lines().count(), 1, "one line expected: {err:?}");
    assert!(err.contains(needle), "{err:?} should mention {needle:?}");
    assert!(o.stdout.is_empty());
}

#[test]
fn qr_prints_a_code_and_a_uri_that_inspects_back() {
    let o = cable(&["qr", "--hint", "mc"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    let uri = text.lines().last().unwrap();
    assert!(uri.starts_with("FIDO:/"));
    assert!(text.contains('█'));
    let o = cable(&["inspect", "qr", uri]);
    assert!(o.status.success());
    let json: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(json["hint"], "mc");
    assert_eq!(json["state_assisted"], true);
    assert_eq!(json["known_domains"], 2);
    assert_eq!(json["secret"].as_str().unwrap().len(), 32);
}

#[test]
fn qr_writes_png_and_svg_files() {
    let dir = std::env::temp_dir().join(format!("cable-cli-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for (format, magic) in [("png", &b"\x89PNG"[..]), ("svg", &b"<?xml"[..])] {
        let path = dir.join(format!("code.{format}"));
        let o = cable(&["qr", "--format", format, "--out", path.to_str().unwrap()]);
        assert!(o.status.success(), "{}", stderr(&o));
        assert!(stdout(&o).trim().starts_with("FIDO:/"));
        assert!(std::fs::read(&path).unwrap().starts_with(magic));
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The image holds the QR secret: it is written 0600 even over a world-readable file, and
/// an unwritable place is one line naming the path.
#[cfg(unix)]
#[test]
fn qr_output_files_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = std::env::temp_dir().join(format!("cable-cli-private-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("code.png");
    std::fs::write(&path, b"old").unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let o = cable(&["qr", "--format", "png", "--out", path.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the QR image is readable by others");
    let names: Vec<_> = std::fs::read_dir(&dir).unwrap().flatten().collect();
    assert_eq!(names.len(), 1, "left next to the image: {names:?}");
    let missing = dir.join("no-such-dir").join("code.png");
    let o = cable(&["qr", "--format", "png", "--out", missing.to_str().unwrap()]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("no-such-dir"), "{}", stderr(&o));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A reader that goes away (`cable demo | head -1`) ends the command quietly with the
/// SIGPIPE status, and a full disk is one line of error: never a panic.
#[cfg(unix)]
#[test]
fn closed_and_full_standard_output_are_not_panics() {
    use std::io::BufRead;
    use std::process::{Command, Stdio};
    let mut child = Command::new(env!("CARGO_BIN_EXE_cable"))
        .arg("demo")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert!(first.starts_with("cable demo"), "{first}");
    // The reader is dropped here: the demo's next line meets a closed pipe.
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(141), "{err}");
    assert!(!err.contains("panicked"), "{err}");

    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_cable"))
        .args(["inspect", "domain", "266"])
        .stdout(full)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
}

/// Ctrl-C while the computer waits for a phone ends the ceremony with the status a shell
/// reports for SIGINT, and one line saying so.
#[cfg(unix)]
#[test]
fn ctrl_c_exits_130() {
    cancelled_by_signal("INT", 130);
}

/// SIGTERM (`kill`, a service manager, a container stop) cancels the same way, with the
/// status a shell reports for it.
#[cfg(unix)]
#[test]
fn sigterm_exits_143() {
    cancelled_by_signal("TERM", 143);
}

#[cfg(unix)]
fn cancelled_by_signal(signal: &str, expected: i32) {
    use std::io::Read;
    use std::process::{Command, Stdio};
    let air =
        std::env::temp_dir().join(format!("cable-cli-signal-{signal}-{}", std::process::id()));
    std::fs::create_dir_all(&air).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_cable"))
        .args([
            "register",
            "--ble",
            "air",
            "--rp-id",
            "example.com",
            "--user",
            "ada",
        ])
        .env("CABLE_AIR_DIR", &air)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The QR code is on stderr once the computer is waiting.
    let mut stderr = child.stderr.take().unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&seen).contains("FIDO:/") {
        let n = stderr.read(&mut buf).unwrap();
        assert!(n > 0, "no QR code: {}", String::from_utf8_lossy(&seen));
        seen.extend_from_slice(&buf[..n]);
    }
    let pid = child.id().to_string();
    assert!(Command::new("kill")
        .args([format!("-{signal}").as_str(), &pid])
        .status()
        .unwrap()
        .success());
    let mut rest = String::new();
    stderr.read_to_string(&mut rest).unwrap();
    let status = child.wait().unwrap();
    let _ = std::fs::remove_dir_all(&air);
    assert_eq!(status.code(), Some(expected), "{rest}");
    assert!(rest.contains("cancelled"), "{rest}");
    assert!(!rest.contains("panicked"), "{rest}");
}

/// A QR code written into a pipe or a file carries no colour escapes.
#[test]
fn qr_text_in_pipes_is_plain() {
    let o = cable(&["qr"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!o.stdout.contains(&0x1b), "ANSI escapes in a pipe");
    assert!(stdout(&o).contains("FIDO:/"));
}

/// Bad relays and empty flags are refused at start, as bad input naming the problem, before
/// Bluetooth is touched or a QR code is shown.
#[test]
fn bad_input_is_refused_before_bluetooth() {
    let cases: [(&[&str], &str); 5] = [
        (
            &["register", "--rp-id", "co.uk", "--user", "ada"],
            "is a public suffix",
        ),
        (
            &[
                "register",
                "--relay",
                "ws://relay.example.com",
                "--rp-id",
                "example.com",
                "--user",
                "ada",
            ],
            "relay.example.com",
        ),
        (
            &["login", "--relay", "not a url", "--rp-id", "example.com"],
            "relay",
        ),
        (
            &["register", "--rp-id", "", "--user", "ada"],
            "--rp-id must not be empty",
        ),
        (
            &["register", "--rp-id", "example.com", "--user", " "],
            "--user must not be empty",
        ),
    ];
    for (args, expected) in cases {
        let o = cable(args);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(expected), "{args:?}: {err}");
        assert!(!err.contains("Bluetooth"), "{args:?}: {err}");
        assert!(o.stdout.is_empty(), "{args:?}: a QR code was shown");
    }
}

#[test]
fn inspect_qr_vector() {
    let v = vectors();
    let t = &v["transcripts"]["qr_knpsk0"];
    let o = cable(&["inspect", "qr", t["qr_uri"].as_str().unwrap()]);
    assert!(o.status.success());
    let json: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(json["tunnel_id"], t["tunnel_id"]);
    assert_eq!(json["public_key"], t["qr_public_key_compressed"]);
}

#[test]
fn inspect_advert_vector() {
    let v = vectors();
    let t = &v["transcripts"]["qr_knpsk0"];
    let o = cable(&[
        "inspect",
        "advert",
        "--qr",
        t["qr_uri"].as_str().unwrap(),
        t["advert"].as_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let json: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(json["connect_url"], t["connect_url"]);
    assert_eq!(json["routing_id"], "010203");
}

#[test]
fn inspect_domain() {
    let o = cable(&["inspect", "domain", "266"]);
    assert!(o.status.success());
    assert_eq!(stdout(&o), "cable.wufkweyy3uaxb.com\n");
}

#[test]
fn invalid_inputs_exit_2_with_one_line() {
    assert_bad_input(&cable(&["inspect", "qr", "FIDO:/1234"]), "invalid QR code");
    assert_bad_input(
        &cable(&["inspect", "qr", "https://example.com"]),
        "invalid QR code",
    );
    assert_bad_input(&cable(&["inspect", "domain", "7"]), "domain");
    assert_bad_input(&cable(&["inspect", "domain", "seven"]), "domain id");
    let v = vectors();
    let uri = v["transcripts"]["qr_knpsk0"]["qr_uri"].as_str().unwrap();
    assert_bad_input(
        &cable(&["inspect", "advert", "--qr", uri, "xyz"]),
        "not hex",
    );
    assert_bad_input(
        &cable(&["inspect", "advert", "--qr", uri, &"00".repeat(20)]),
        "invalid advert",
    );
}

#[test]
fn options_without_an_rp_id_ask_for_the_origin() {
    let dir = std::env::temp_dir().join(format!("cable-cli-origin-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("options.json");
    std::fs::write(
        &path,
        r#"{"rp": {"name": "Example"}, "user": {"id": "AQ", "name": "ada"}, "challenge": "AQ",
            "pubKeyCredParams": [{"type": "public-key", "alg": -7}]}"#,
    )
    .unwrap();
    let o = cable(&["register", "--options", path.to_str().unwrap()]);
    assert_bad_input(&o, "--origin");
    assert!(!stderr(&o).contains("https://`"), "{}", stderr(&o));
    std::fs::write(&path, r#"{"challenge": "AQ"}"#).unwrap();
    assert_bad_input(
        &cable(&["login", "--options", path.to_str().unwrap()]),
        "--origin",
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Values that start with '-' reach the command: the ceremony then refuses the origin (a
/// check made before any Bluetooth is touched), not the command line.
#[test]
fn values_may_start_with_a_hyphen() {
    let refused_origin = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend(["--origin", "https://other.example"]);
        let o = cable(&all);
        assert!(
            !stderr(&o).contains("unexpected argument"),
            "{args:?}: {}",
            stderr(&o)
        );
        assert_bad_input(&o, "relying party id");
    };
    refused_origin(&[
        "login",
        "--rp-id",
        "example.com",
        "--challenge",
        "-abcdefghijklmnopqrstuvwxyz0123456789ABCDA",
    ]);
    refused_origin(&[
        "login",
        "--rp-id",
        "example.com",
        "--credential-id",
        "-AQ",
        "--credential-id",
        "-_w",
    ]);
    refused_origin(&[
        "register",
        "--rp-id",
        "example.com",
        "--user",
        "-bob",
        "--challenge",
        "-AQ",
    ]);
}

/// A linked-phone store file with two phones, as `cable register` would have written it.
fn seeded_phones_file(dir: &std::path::Path) -> std::path::PathBuf {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine as _;
    std::fs::create_dir_all(dir).unwrap();
    let phone = |seed: u8, name: &str| {
        let key = cable_proto::keys::secret_key_from_bytes(&[seed; 32]).unwrap();
        serde_json::json!({
            "name": name,
            "authenticator_name": "Pixel 8",
            "identity_public_key":
                URL_SAFE_NO_PAD.encode(cable_proto::keys::uncompressed(&key.public_key())),
            "contact_id": URL_SAFE_NO_PAD.encode([seed; 40]),
            "link_id": URL_SAFE_NO_PAD.encode([seed; 8]),
            "link_secret": URL_SAFE_NO_PAD.encode([0x5e; 32]),
            "domain_id": 0,
            "linked_at": 1_796_223_600u64,
        })
    };
    let file = serde_json::json!({
        "version": 1,
        "phones": [phone(1, "Pixel 8"), phone(2, "Pixel 8 (2)")],
    });
    let path = dir.join("linked-phones.json");
    let _ = std::fs::remove_file(&path);
    let mut open = std::fs::OpenOptions::new();
    open.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut open, 0o600);
    std::io::Write::write_all(&mut open.open(&path).unwrap(), file.to_string().as_bytes()).unwrap();
    path
}

fn phones(file: &std::path::Path, args: &[&str]) -> Output {
    let mut all = vec!["phones", "--phones-file", file.to_str().unwrap()];
    all.extend_from_slice(args);
    cable(&all)
}

#[test]
fn phones_lists_renames_and_forgets_without_printing_secrets() {
    let dir = std::env::temp_dir().join(format!("cable-cli-phones-{}", std::process::id()));
    let file = seeded_phones_file(&dir);

    let o = phones(&file, &["list", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let list: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(list[0]["name"], "Pixel 8");
    assert_eq!(list[1]["name"], "Pixel 8 (2)");
    assert_eq!(list[0]["id"].as_str().unwrap().len(), 16);
    let text = stdout(&phones(&file, &["list"]));
    assert!(text.contains("2026-12-02 15:00"), "{text}");
    for o in [&text, &stdout(&o)] {
        // The link secret (0x5e bytes) and contact ids never appear.
        assert!(!o.contains("Xl5e"), "{o}");
        assert!(!o.contains("AQEBAQEB"), "{o}");
    }

    let o = phones(&file, &["rename", "Pixel 8 (2)", "Pixel 8"]);
    assert_bad_input(&o, "already named \"Pixel 8\"");
    let o = phones(&file, &["rename", "Pixel 8 (2)", "-work"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = phones(&file, &["forget", "nope"]);
    assert_bad_input(&o, "no linked phone is named \"nope\"");
    let o = phones(&file, &["forget", "Pixel 8"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let list: serde_json::Value =
        serde_json::from_slice(&phones(&file, &["list", "--json"]).stdout).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["name"], "-work");
    let o = phones(&file, &["forget", "--all"]);
    assert!(stdout(&o).contains("forgot 1"), "{}", stdout(&o));
    assert!(stdout(&phones(&file, &["list"])).starts_with("no linked phones"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[cfg(unix)]
#[test]
fn a_store_others_can_read_is_refused_with_the_fix() {
    use std::os::unix::fs::PermissionsExt;
    let dir = std::env::temp_dir().join(format!("cable-cli-exposed-{}", std::process::id()));
    let file = seeded_phones_file(&dir);
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let o = phones(&file, &["list"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let err = stderr(&o);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("chmod 600"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[cfg(unix)]
#[test]
fn a_passkey_store_others_can_read_is_refused_in_one_line_naming_the_fix() {
    use std::os::unix::fs::PermissionsExt;
    let dir = std::env::temp_dir().join(format!("cable-cli-store-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let store = dir.join("passkeys.json");
    std::fs::write(&store, br#"{"version":1,"credentials":[]}"#).unwrap();
    std::fs::set_permissions(&store, std::fs::Permissions::from_mode(0o644)).unwrap();
    let uri = vectors()["transcripts"]["qr_knpsk0"]["qr_uri"]
        .as_str()
        .unwrap()
        .to_owned();
    // The store is opened before anything touches the network or Bluetooth.
    // A closed loopback port makes the run fail fast should the store ever be accepted.
    let o = cable(&[
        "phone",
        &uri,
        "--store",
        store.to_str().unwrap(),
        "--ble",
        "print",
        "--relay",
        "ws://127.0.0.1:9",
    ]);
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(o.status.code(), Some(1), "stderr: {}", stderr(&o));
    let err = stderr(&o);
    assert_eq!(err.lines().count(), 1, "one line expected: {err:?}");
    assert!(
        err.contains(&format!(
            "is readable by other users (mode 0644); run `chmod 600 {}`",
            store.display()
        )),
        "{err:?}"
    );
}

#[test]
fn a_relay_without_a_domain_id_is_bad_input_before_anything_goes_out() {
    // Before, the phone advertised domain id 0 (Google's relay) for such a host.
    let o = cable(&["qr", "--hint", "ga"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let uri = stdout(&o).lines().last().unwrap().to_owned();
    let dir = std::env::temp_dir().join(format!("cable-cli-domain-id-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let store = dir.join("passkeys.json");
    let o = cable(&[
        "phone",
        &uri,
        "--store",
        store.to_str().unwrap(),
        "--ble",
        "print",
        "--relay",
        "wss://relay.invalid",
    ]);
    std::fs::remove_dir_all(&dir).unwrap();
    assert_bad_input(&o, "relay host relay.invalid has no caBLE domain id");
    // Nothing was advertised.
    assert!(!stderr(&o).contains("advert"), "{}", stderr(&o));
    assert!(stderr(&o).contains("--domain-id"), "{}", stderr(&o));
}

#[test]
fn login_with_an_unknown_linked_phone_is_bad_input_before_any_bluetooth() {
    let dir = std::env::temp_dir().join(format!("cable-cli-phone-flag-{}", std::process::id()));
    let file = seeded_phones_file(&dir);
    let o = cable(&[
        "login",
        "--rp-id",
        "example.com",
        "--phones-file",
        file.to_str().unwrap(),
        "--phone",
        "Nokia",
    ]);
    assert_bad_input(&o, "no linked phone is named \"Nokia\"");
    let o = cable(&[
        "login",
        "--rp-id",
        "example.com",
        "--phone",
        "x",
        "--no-link",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let _ = std::fs::remove_dir_all(&dir);
}

#[cfg(target_os = "linux")]
#[test]
fn key_without_uhid_says_how_to_get_it_in_one_line() {
    let o = cable(&["key", "--uhid", "/nonexistent/uhid", "--ble", "air"]);
    assert_eq!(o.status.code(), Some(1), "stderr: {}", stderr(&o));
    let err = stderr(&o);
    assert_eq!(err.lines().count(), 1, "one line expected: {err:?}");
    assert!(err.contains("/nonexistent/uhid"), "{err}");
    assert!(err.contains("sudo modprobe uhid"), "{err}");
    // Not a character device: says so rather than pretending it is uhid.
    let dir = tempfile::tempdir().unwrap();
    let plain = dir.path().join("uhid");
    std::fs::write(&plain, b"").unwrap();
    let o = cable(&["key", "--uhid", plain.to_str().unwrap(), "--ble", "air"]);
    assert_eq!(o.status.code(), Some(1), "stderr: {}", stderr(&o));
    assert!(stderr(&o).contains("not the uhid device"), "{}", stderr(&o));
}

#[cfg(target_os = "linux")]
#[test]
fn key_help_says_where_the_qr_code_appears_and_how_to_get_access() {
    let o = cable(&["key", "--help"]);
    assert!(o.status.success());
    let help = stdout(&o);
    for needle in [
        "desktop notification",
        "DBUS_SESSION_BUS_ADDRESS",
        "contrib/udev/70-cable-key.rules",
        "up=false",
        "--phone",
    ] {
        assert!(help.contains(needle), "--help should mention {needle:?}");
    }
}

#[test]
fn a_broken_ca_file_is_bad_input_before_any_qr_code() {
    let o = cable(&[
        "login",
        "--rp-id",
        "example.com",
        "--ble",
        "air",
        "--ca-file",
        "/nonexistent/ca.pem",
    ]);
    assert_bad_input(&o, "/nonexistent/ca.pem");
    let dir = tempfile::tempdir().unwrap();
    let not_pem = dir.path().join("ca.pem");
    std::fs::write(&not_pem, "no certificate here\n").unwrap();
    let o = cable(&[
        "register",
        "--rp-id",
        "example.com",
        "--user",
        "ada",
        "--ble",
        "air",
        "--ca-file",
        not_pem.to_str().unwrap(),
    ]);
    assert_bad_input(&o, "invalid --ca-file");
}

#[test]
fn log_format_json_writes_one_object_per_line() {
    let o = Command::new(env!("CARGO_BIN_EXE_cable"))
        .args(["--log-format", "json", "inspect", "domain", "266"])
        .env("RUST_LOG", "cable=nonsense=")
        .output()
        .expect("run cable");
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    let line = err
        .lines()
        .next()
        .expect("the ignored RUST_LOG is reported");
    let event: serde_json::Value = serde_json::from_str(line).expect("a JSON object");
    assert_eq!(event["level"], "WARN", "{event}");
    assert!(
        event["fields"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("RUST_LOG ignored")),
        "{event}"
    );
    assert!(!line.contains('\x1b'), "no ANSI codes in JSON");
}
