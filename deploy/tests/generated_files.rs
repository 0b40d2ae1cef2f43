//! Generated files in the repository are exactly what `cable-lbconf` makes from their
//! inputs, so nobody edits them by hand.

#![allow(clippy::unwrap_used)] // test harness: a failed step is a failed test

use std::path::Path;
use std::process::Command;

/// Runs `cable-lbconf args` and checks its output is the committed file at `committed`
/// (relative to deploy/kubernetes); `stale` says how to regenerate it.
fn assert_generated(args: &[&str], committed: &str, stale: &str) {
    let out = Command::new(env!("CARGO_BIN_EXE_cable-lbconf"))
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("kubernetes");
    let committed_text = std::fs::read_to_string(dir.join(committed)).unwrap();
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        committed_text,
        "deploy/kubernetes/{committed} is stale: regenerate it ({stale})"
    );
}

/// `--instances` naming deploy/kubernetes/instances.txt.
fn instance_list() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("kubernetes/instances.txt")
        .display()
        .to_string()
}

#[test]
fn kubernetes_ingress_matches_its_instance_list() {
    let list = instance_list();
    assert_generated(
        &[
            "--instances",
            &list,
            "ingress",
            "--host",
            "cable.wufkweyy3uaxb.com",
            "--tls-secret",
            "cable-relay-tls",
        ],
        "ingress.yaml",
        "command in instances.txt",
    );
}

#[test]
fn gateway_api_routes_match_their_instance_list() {
    let list = instance_list();
    assert_generated(
        &[
            "--instances",
            &list,
            "gateway",
            "--host",
            "cable.wufkweyy3uaxb.com",
            "--gateway",
            "cable-edge",
        ],
        "gateway-api/httproute.yaml",
        "command in instances.txt",
    );
}

#[test]
fn kubernetes_pod_services_match_their_instance_list() {
    let list = instance_list();
    assert_generated(
        &["--instances", &list, "pod-services"],
        "pod-services.yaml",
        "command in instances.txt",
    );
}

/// The StatefulSet's replica count, its routing-id prefix and the instance list agree: pod
/// `cable-relay-N` gets the id the entrypoint derives, and every pod has an entry.
#[test]
fn instance_list_matches_the_statefulset() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("kubernetes");
    let sts = std::fs::read_to_string(dir.join("base/statefulset.yaml")).unwrap();
    let replicas: usize = sts
        .lines()
        .find_map(|l| l.trim().strip_prefix("replicas: "))
        .unwrap()
        .parse()
        .unwrap();
    let prefix_line = sts
        .lines()
        .skip_while(|l| !l.contains("name: CABLE_RELAY_ROUTING_ID_PREFIX"))
        .nth(1)
        .unwrap();
    let prefix = prefix_line
        .trim()
        .trim_start_matches("value: ")
        .trim_matches('"');
    let list = std::fs::read_to_string(dir.join("instances.txt")).unwrap();
    let entries: Vec<&str> = list
        .lines()
        .filter(|l| !l.trim_start().starts_with('#') && !l.trim().is_empty())
        .collect();
    assert_eq!(entries.len(), replicas);
    for (n, entry) in entries.iter().enumerate() {
        let width = 6 - prefix.len();
        assert_eq!(
            *entry,
            format!("{prefix}{n:0width$}=cable-relay-{n}:8080"),
            "instances.txt line for pod {n}"
        );
    }
}

/// The autoscaled overlay's balancer configuration is what its kustomization says to run,
/// names pods in the namespace the overlay deploys to, and has a slot for every pod the
/// autoscaler may make.
#[test]
fn autoscaled_balancer_is_generated_for_its_namespace_and_replica_limit() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("kubernetes/autoscaled");
    let kustomization = std::fs::read_to_string(dir.join("kustomization.yaml")).unwrap();
    let namespace = kustomization
        .lines()
        .find_map(|l| l.strip_prefix("namespace: "))
        .unwrap();
    let hpa = std::fs::read_to_string(dir.join("hpa.yaml")).unwrap();
    let max_replicas = hpa
        .lines()
        .find_map(|l| l.trim().strip_prefix("maxReplicas: "))
        .unwrap();
    let pod_host = format!("cable-relay-{{ordinal}}.cable-relay.{namespace}.svc.cluster.local");
    let new_host = format!("cable-relay-new.{namespace}.svc.cluster.local");
    assert_generated(
        &[
            "haproxy-by-ordinal",
            "--pod-host",
            &pod_host,
            "--new-host",
            &new_host,
            "--resolver",
            "resolv.conf",
            "--bind",
            ":8443 ssl crt /etc/haproxy/certs/cable.pem alpn http/1.1",
            "--client-address",
            "x-forwarded-for",
            "--max-instances",
            max_replicas,
        ],
        "autoscaled/cable.cfg",
        "command in its kustomization.yaml",
    );
    assert!(
        kustomization.contains(&format!("--max-instances {max_replicas}")),
        "the command in kustomization.yaml and hpa.yaml's maxReplicas disagree"
    );
}

/// Routing by rule takes no instance list, and routing by list needs one: either mistake is
/// an error that says what to give, never a half-right file.
#[test]
fn instance_lists_go_with_the_commands_that_use_them() {
    let run = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_cable-lbconf"))
            .args(args)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{args:?}");
        assert!(out.stdout.is_empty(), "{args:?}");
        String::from_utf8(out.stderr).unwrap()
    };
    let by_ordinal = [
        "nginx-by-ordinal",
        "--pod-host",
        "relay-{ordinal}.relays.test",
        "--new-host",
        "relays.test",
        "--resolver",
        "10.96.0.10",
    ];
    let mut with_list = vec!["--instance", "100000=10.0.0.1:8080"];
    with_list.extend(by_ordinal);
    assert!(run(&with_list).contains("take no --instances or --instance"));
    assert!(run(&["nginx"]).contains("give the relays with --instances FILE or --instance SPEC"));
    let mut resolv_conf = by_ordinal.to_vec();
    resolv_conf[6] = "resolv.conf";
    assert!(run(&resolv_conf).contains("nginx needs an address"));
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

/// `-o` replaces the file in one rename through a fresh temporary file: a symbolic link
/// planted where a fixed temporary name would be is never written through, and the result
/// is readable by a balancer running as another user.
#[cfg(unix)]
#[test]
fn output_never_writes_through_a_planted_temporary_file() {
    use std::os::unix::fs::{symlink, PermissionsExt};
    let dir = tempfile::tempdir().unwrap();
    let victim = dir.path().join("victim");
    std::fs::write(&victim, "keep").unwrap();
    symlink(&victim, dir.path().join(".upstreams.conf.tmp")).unwrap();
    let out = dir.path().join("upstreams.conf");
    let o = Command::new(env!("CARGO_BIN_EXE_cable-lbconf"))
        .args(["--instance", "000001=127.0.0.1:8001", "nginx", "-o"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{o:?}");
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep");
    assert!(std::fs::read_to_string(&out)
        .unwrap()
        .contains("upstream cable_new"));
    let mode = std::fs::metadata(&out).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o644);
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().into_string().unwrap())
        .filter(|n| n.starts_with(".cable-lbconf-"))
        .collect();
    assert!(left.is_empty(), "temporary files left: {left:?}");
}
