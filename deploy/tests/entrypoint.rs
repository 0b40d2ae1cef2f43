//! The container entrypoint (deploy/docker/entrypoint.sh), run outside any container: routing
//! id from the StatefulSet ordinal, and the HEALTHCHECK against a real listener.

#![allow(clippy::unwrap_used)] // test harness: a failed step is a failed test

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Command, Output};

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docker/entrypoint.sh")
}

/// Runs the entrypoint with only the given environment; the "relay" is `env`, so the output
/// shows what the relay would have been started with.
fn run(env: &[(&str, &str)], args: &[&str]) -> Output {
    let mut cmd = Command::new("bash");
    cmd.arg(script()).args(args).env_clear();
    cmd.env("PATH", "/usr/bin:/bin");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

fn routing_id(env: &[(&str, &str)]) -> Result<String, (i32, String)> {
    let out = run(env, &["env"]);
    if !out.status.success() {
        return Err((
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        ));
    }
    let stdout = String::from_utf8(out.stdout).unwrap();
    Ok(stdout
        .lines()
        .find_map(|l| l.strip_prefix("CABLE_RELAY_ROUTING_ID="))
        .expect("routing id exported")
        .to_owned())
}

#[test]
fn routing_id_from_the_pod_ordinal() {
    assert_eq!(
        routing_id(&[("POD_NAME", "cable-relay-0")]).unwrap(),
        "000000"
    );
    assert_eq!(
        routing_id(&[("POD_NAME", "cable-relay-7")]).unwrap(),
        "000007"
    );
    assert_eq!(
        routing_id(&[("POD_NAME", "cable-relay-08")]).unwrap(),
        "000008"
    );
    assert_eq!(
        routing_id(&[("HOSTNAME", "relay-123456")]).unwrap(),
        "123456"
    );
    assert_eq!(
        routing_id(&[
            ("POD_NAME", "cable-relay-7"),
            ("CABLE_RELAY_ROUTING_ID_PREFIX", "1")
        ])
        .unwrap(),
        "100007"
    );
    assert_eq!(
        routing_id(&[
            ("POD_NAME", "cable-relay-9"),
            ("CABLE_RELAY_ROUTING_ID_PREFIX", "12345")
        ])
        .unwrap(),
        "123459"
    );
    // POD_NAME (downward API) wins over the host name.
    assert_eq!(
        routing_id(&[("POD_NAME", "a-3"), ("HOSTNAME", "b-4")]).unwrap(),
        "000003"
    );
}

#[test]
fn an_explicit_routing_id_is_kept() {
    assert_eq!(
        routing_id(&[
            ("POD_NAME", "cable-relay-7"),
            ("CABLE_RELAY_ROUTING_ID", "ABCDEF")
        ])
        .unwrap(),
        "ABCDEF"
    );
}

#[test]
fn refuses_what_cannot_become_a_routing_id() {
    for env in [
        vec![("POD_NAME", "relay")],
        vec![("POD_NAME", "relay-x")],
        vec![("POD_NAME", "relay-")],
        vec![("POD_NAME", "relay-1000000")],
        vec![
            ("POD_NAME", "relay-10"),
            ("CABLE_RELAY_ROUTING_ID_PREFIX", "12345"),
        ],
        vec![
            ("POD_NAME", "relay-1"),
            ("CABLE_RELAY_ROUTING_ID_PREFIX", "ab"),
        ],
        vec![
            ("POD_NAME", "relay-1"),
            ("CABLE_RELAY_ROUTING_ID_PREFIX", "123456"),
        ],
    ] {
        let (code, stderr) = routing_id(&env).unwrap_err();
        assert_eq!(code, 64, "{env:?}: {stderr}");
        assert!(stderr.starts_with("cable-entrypoint: "), "{stderr}");
    }
}

/// Serves one admin request with the given status line and returns the request it read.
fn one_shot_admin(status: &'static str) -> (String, std::thread::JoinHandle<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let server = std::thread::spawn(move || {
        let (mut tcp, _) = listener.accept().unwrap();
        let mut req = Vec::new();
        let mut buf = [0u8; 1024];
        while !req.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = tcp.read(&mut buf).unwrap();
            assert!(n > 0, "request head incomplete: {req:?}");
            req.extend_from_slice(&buf[..n]);
        }
        let req = String::from_utf8(req).unwrap();
        let body = "x\n";
        let response = format!(
            "{status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        // The healthcheck hangs up once it has the status line, so the rest of the answer
        // may meet a reset: that is the client's right, not a failure of the test server.
        let _ = tcp.write_all(response.as_bytes());
        req
    });
    (addr, server)
}

#[test]
fn healthcheck_asks_healthz_and_follows_the_status() {
    let (addr, server) = one_shot_admin("HTTP/1.1 200 OK");
    let out = run(&[("CABLE_RELAY_ADMIN_LISTEN", &addr)], &["healthcheck"]);
    assert!(out.status.success(), "{out:?}");
    assert!(server
        .join()
        .unwrap()
        .starts_with("GET /healthz HTTP/1.0\r\n"));

    let (addr, server) = one_shot_admin("HTTP/1.1 503 Service Unavailable");
    let out = run(&[("CABLE_RELAY_ADMIN_LISTEN", &addr)], &["healthcheck"]);
    assert!(!out.status.success());
    server.join().unwrap();

    // A wildcard listen address is checked on loopback.
    let (addr, server) = one_shot_admin("HTTP/1.1 200 OK");
    let port = addr.rsplit_once(':').unwrap().1;
    let out = run(
        &[("CABLE_RELAY_ADMIN_LISTEN", &format!("0.0.0.0:{port}"))],
        &["healthcheck"],
    );
    assert!(out.status.success(), "{out:?}");
    server.join().unwrap();

    // Nothing listening.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = run(
        &[("CABLE_RELAY_ADMIN_LISTEN", &format!("127.0.0.1:{port}"))],
        &["healthcheck"],
    );
    assert!(!out.status.success());
}
