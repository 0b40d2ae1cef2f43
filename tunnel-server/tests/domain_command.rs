//! `cable-tunnel-server domain …`: what an operator choosing a host name runs.

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
