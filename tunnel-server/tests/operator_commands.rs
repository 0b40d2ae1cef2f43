//! The relay binary's operator commands: `domain …` for choosing a host name, and the
//! checks made on its settings at start.

#![allow(clippy::unwrap_used)] // test harness: a failed step is a failed test

use std::process::{Command, Output};

fn relay(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cable-tunnel-server"))
        .args(args)
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn setup_find_and_list() {
    let o = relay(&["domain", "setup", "266"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let out = text(&o.stdout);
    assert!(
        out.contains("host name:   cable.wufkweyy3uaxb.com"),
        "{out}"
    );
    assert!(
        out.contains("certbot certonly -d cable.wufkweyy3uaxb.com"),
        "{out}"
    );

    let o = relay(&["domain", "find", "cable.wufkweyy3uaxb.com"]);
    assert!(o.status.success());
    assert_eq!(text(&o.stdout), "266\n");

    let o = relay(&["domain", "list", "--limit", "3", "--tld", "net"]);
    assert!(o.status.success());
    let lines: Vec<String> = text(&o.stdout).lines().map(str::to_owned).collect();
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert!(lines.iter().all(|l| l.ends_with(".net")), "{lines:?}");
}

#[test]
fn unanswerable_questions_exit_1_with_one_line() {
    for args in [
        &["domain", "setup", "42"][..],
        &["domain", "find", "relay.example.com"],
        &["domain", "list", "--tld", "io"],
    ] {
        let o = relay(args);
        assert_eq!(o.status.code(), Some(1), "{args:?}");
        let err = text(&o.stderr);
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(o.stdout.is_empty());
    }
}

/// Operator-facing start-up: a bad `--log` filter is refused (exit 2, one line naming it),
/// and logs written to a pipe carry no colour escapes.
#[test]
fn log_settings_are_checked_and_pipes_get_plain_lines() {
    let o = relay(&[
        "--listen",
        "127.0.0.1:0",
        "--admin-listen",
        "127.0.0.1:0",
        "--log",
        "nope=[[",
    ]);
    assert_eq!(o.status.code(), Some(2));
    let err = text(&o.stderr);
    assert!(err.contains("invalid --log filter \"nope=[[\""), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");

    // A certificate that does not parse is logged as an error, and stderr here is a pipe.
    let junk = std::env::temp_dir().join(format!("cable-relay-junk-{}.pem", std::process::id()));
    std::fs::write(&junk, "not a certificate\n").unwrap();
    let junk_path = junk.to_str().unwrap();
    let o = relay(&[
        "--listen",
        "127.0.0.1:0",
        "--admin-listen",
        "127.0.0.1:0",
        "--tls-cert",
        junk_path,
        "--tls-key",
        junk_path,
    ]);
    let _ = std::fs::remove_file(&junk);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    assert!(text(&o.stderr).contains("ERROR"), "{}", text(&o.stderr));
    assert!(
        !o.stderr.contains(&0x1b),
        "ANSI escapes in {}",
        text(&o.stderr)
    );
}
