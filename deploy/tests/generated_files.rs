//! Generated files in the repository are exactly what `cable-lbconf` makes from their
//! inputs, so nobody edits them by hand.

#![allow(clippy::unwrap_used)] // test harness: a failed step is a failed test

use std::path::Path;
use std::process::Command;

#[test]
fn kubernetes_ingress_matches_its_instance_list() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("kubernetes");
    let out = Command::new(env!("CARGO_BIN_EXE_cable-lbconf"))
        .arg("--instances")
        .arg(dir.join("instances.txt"))
        .args([
            "ingress",
            "--host",
            "cable.wufkweyy3uaxb.com",
            "--tls-secret",
            "cable-relay-tls",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let committed = std::fs::read_to_string(dir.join("ingress.yaml")).unwrap();
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        committed,
        "deploy/kubernetes/ingress.yaml is stale: regenerate it (command in instances.txt)"
    );
}

#[test]
fn bad_input_is_reported_not_rendered() {
    let out = Command::new(env!("CARGO_BIN_EXE_cable-lbconf"))
        .args(["--instance", "000001=relay;evil:80", "nginx"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
    assert_eq!(
        String::from_utf8(out.stderr).unwrap(),
        "cable-lbconf: --instance: line 1: host \"relay;evil\" is not an IP address or a DNS name\n"
    );
}
