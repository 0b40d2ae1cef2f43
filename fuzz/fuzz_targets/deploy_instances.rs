#![no_main]
//! cable-deploy's instance-list parser, and rendering every balancer
//! configuration from an accepted list.
//!
//! Invariants for an accepted list: it re-parses from its own canonical lines
//! to the same list, nothing read from it can add a character outside the
//! address alphabet to a generated file, and each generated file has one entry
//! per instance (the Kubernetes ones: one Service per instance, no two with
//! one name).
use std::collections::HashSet;

use cable_deploy::haproxy::{self, HaproxyOptions};
use cable_deploy::ingress::{self, IngressOptions};
use cable_deploy::{nginx, Instances};
use libfuzzer_sys::fuzz_target;

fn canonical(list: &Instances) -> String {
    list.iter()
        .map(|i| {
            let admin = i
                .admin_port
                .map(|p| format!(" admin={p}"))
                .unwrap_or_default();
            format!("{}={}{admin}\n", i.routing_id.to_hex(), i.address())
        })
        .collect()
}

fn ingress_options() -> IngressOptions {
    IngressOptions {
        name: "cable-relay".into(),
        host: "cable.example.com".into(),
        tls_secret: Some("cable-tls".into()),
        class: "nginx".into(),
        new_service: "cable-relay-new".into(),
        service_port: 8080,
        tunnel_timeout_secs: 130,
        limit_rps: 20,
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = core::str::from_utf8(data) else {
        return;
    };
    let list = match Instances::parse(text) {
        Ok(list) => list,
        Err(e) => {
            let _ = e.to_string();
            return;
        }
    };
    let n = list.len();
    assert!(n > 0 && !list.is_empty());
    assert_eq!(Instances::parse(&canonical(&list)).as_ref(), Ok(&list));
    let lines: Vec<String> = canonical(&list).lines().map(str::to_owned).collect();
    assert_eq!(Instances::from_specs(&lines).as_ref(), Ok(&list));

    for inst in list.iter() {
        let address = inst.address();
        assert!(
            address
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b)),
            "{address:?}"
        );
    }
    let ids: HashSet<_> = list.iter().map(|i| i.routing_id).collect();
    assert_eq!(ids.len(), n);

    let nginx = nginx::render(&list);
    assert_eq!(nginx.matches('{').count(), nginx.matches('}').count());
    assert_eq!(nginx.matches("upstream cable_rid_").count(), n);

    let map = haproxy::render_map(&list);
    assert_eq!(map.lines().count(), n + 1);
    let config = haproxy::render_config(&list, &HaproxyOptions::default())
        .expect("default HAProxy options are safe");
    assert_eq!(config.matches("\nbackend cable_rid_").count(), n);

    let opts = ingress_options();
    let ingress = ingress::render(&list, &opts);
    let services = ingress::render_pod_services(&list, "cable-relay", 8080);
    // Both refuse the same lists: whether every host names its own per-pod Service.
    assert_eq!(
        ingress.is_ok(),
        services.is_ok(),
        "{ingress:?} {services:?}"
    );
    if let Ok(yaml) = services {
        let names: Vec<&str> = yaml
            .lines()
            .filter_map(|l| l.strip_prefix("  name: "))
            .collect();
        assert_eq!(names.len(), n);
        assert_eq!(names.iter().collect::<HashSet<_>>().len(), n, "{names:?}");
    }
    if let Ok(yaml) = ingress {
        assert!(yaml.matches("- path: /cable/connect/").count() >= n);
    }
});
