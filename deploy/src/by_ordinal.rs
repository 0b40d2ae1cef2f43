//! Routing by rule: the balancer derives the owner of a routing id from the id itself, so
//! its configuration is generated once and stays the same however many relays run.
//!
//! A relay pod of a StatefulSet takes the routing id `<prefix><ordinal>`, the ordinal
//! zero-padded to the remaining decimal digits (deploy/docker/entrypoint.sh): pod
//! `cable-relay-7` with prefix `1` owns `100007`. The balancer turns a join's routing id
//! back into the ordinal and the ordinal into the pod's DNS name (the StatefulSet's headless
//! Service: `cable-relay-7.cable-relay.<namespace>.svc.cluster.local`), resolved at request
//! time; new tunnels go to a name that lists every ready relay. Scaling the StatefulSet
//! (by hand or by an autoscaler) then changes DNS, never the balancer.

use std::fmt::Write;

use crate::haproxy::{self, HaproxyOptions};
use crate::ConfigError;

/// The placeholder for the ordinal in [`OrdinalRouting::pod_host_template`].
pub const ORDINAL: &str = "{ordinal}";

/// A resolver entry meaning "the name servers of `/etc/resolv.conf`" (HAProxy only).
pub const RESOLV_CONF: &str = "resolv.conf";

/// How routing ids, ordinals and DNS names relate, and where to ask DNS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrdinalRouting {
    /// The relays' `CABLE_RELAY_ROUTING_ID_PREFIX`: 1 to 5 decimal digits. (At least one,
    /// so that an id of all zeros never reaches a relay.)
    pub prefix: String,
    /// The DNS name of one relay pod, with [`ORDINAL`] where its ordinal goes, e.g.
    /// `cable-relay-{ordinal}.cable-relay.cable.svc.cluster.local`.
    pub pod_host_template: String,
    /// A DNS name whose addresses are every ready relay (a headless Service's name, or a
    /// ClusterIP Service's), for new tunnels, contacts and push registrations.
    pub new_host: String,
    /// The relays' tunnel port.
    pub port: u16,
    /// DNS servers, `address` or `address:port` (in Kubernetes, the cluster DNS Service's
    /// address), or [`RESOLV_CONF`] for HAProxy to use the ones in its `/etc/resolv.conf`
    /// (in a pod: the cluster DNS, whatever its address).
    pub resolvers: Vec<String>,
    /// How long an answer is used before it is asked again, in seconds: how soon a relay
    /// that was added or removed is seen.
    pub dns_valid_secs: u32,
}

impl OrdinalRouting {
    /// Checks every setting; each ends up inside a balancer configuration.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let unsafe_setting = |setting, got: &str| ConfigError::UnsafeSetting {
            setting,
            got: got.to_owned(),
        };
        if !(1..=5).contains(&self.prefix.len()) || !self.prefix.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(unsafe_setting(
                "routing id prefix (1-5 digits)",
                &self.prefix,
            ));
        }
        let (before, after) = self.pod_host_template.split_once(ORDINAL).ok_or_else(|| {
            unsafe_setting(
                "pod host template (needs {ordinal})",
                &self.pod_host_template,
            )
        })?;
        if after.contains(ORDINAL) || !is_dns_part(before) || !is_dns_part(after) {
            return Err(unsafe_setting("pod host template", &self.pod_host_template));
        }
        if self.new_host.is_empty() || !is_dns_part(&self.new_host) {
            return Err(unsafe_setting("new-tunnel host", &self.new_host));
        }
        if self.port == 0 {
            return Err(unsafe_setting("port", "0"));
        }
        if self.resolvers.is_empty() {
            return Err(unsafe_setting("resolver", ""));
        }
        for resolver in &self.resolvers {
            let ok = !resolver.is_empty()
                && resolver
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b".:[]-".contains(&b));
            if !ok {
                return Err(unsafe_setting("resolver", resolver));
            }
        }
        if self.dns_valid_secs == 0 {
            return Err(unsafe_setting("DNS validity", "0"));
        }
        Ok(())
    }

    /// Decimal digits after the prefix.
    fn width(&self) -> usize {
        6 - self.prefix.len()
    }

    /// The largest ordinal a routing id can carry.
    pub fn max_ordinal(&self) -> u32 {
        10u32.pow(self.width() as u32) - 1
    }

    /// The routing id of `ordinal`, as the entrypoint derives it.
    pub fn routing_id(&self, ordinal: u32) -> Option<String> {
        (ordinal <= self.max_ordinal())
            .then(|| format!("{}{:0width$}", self.prefix, ordinal, width = self.width()))
    }

    /// The pod host template's text before and after [`ORDINAL`].
    fn pod_host_parts(&self) -> (&str, &str) {
        self.pod_host_template
            .split_once(ORDINAL)
            .unwrap_or_default()
    }

    /// The pod's DNS name for `ordinal`.
    pub fn pod_host(&self, ordinal: u32) -> String {
        self.pod_host_template
            .replacen(ORDINAL, &ordinal.to_string(), 1)
    }
}

fn is_dns_part(s: &str) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
}

/// The nginx `http`-level include for rule routing, used with the same
/// deploy/nginx/cable-locations.conf as the generated per-instance include: it sets the two
/// variables the locations proxy to. `$cable_connect_upstream` becomes the owner's DNS
/// name, with the ordinal taken from the routing id by a regular expression (leading zeros
/// dropped, as in pod names); `$cable_new_upstream` the name of every ready relay. nginx
/// resolves both through `resolver` when a request comes, and keeps answers for
/// `dns_valid_secs`. A routing id of the right form whose pod does not exist answers 502.
pub fn render_nginx(routing: &OrdinalRouting) -> Result<String, ConfigError> {
    routing.validate()?;
    if routing.resolvers.iter().any(|r| r == RESOLV_CONF) {
        // nginx never reads resolv.conf; a name here is resolved once, at startup.
        return Err(ConfigError::UnsafeSetting {
            setting: "resolver (nginx needs an address or a name such as kube-dns.kube-system.svc.cluster.local, not resolv.conf)",
            got: RESOLV_CONF.to_owned(),
        });
    }
    let (before, after) = routing.pod_host_parts();
    let width = routing.width();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# Generated by cable-lbconf nginx-by-ordinal. Routing follows from the routing id, so\n\
         # adding or removing relays changes DNS only: nothing here is regenerated.\n\
         # Include at http level together with cable-locations.conf inside the server block.\n"
    );
    let _ = writeln!(
        out,
        "resolver {} valid={}s ipv6=off;\nresolver_timeout 2s;\n",
        routing.resolvers.join(" "),
        routing.dns_valid_secs
    );
    let _ = writeln!(
        out,
        "# /cable/new/, contacts, push registrations: every ready relay.\n\
         map $host $cable_new_upstream {{\n    default {}:{};\n}}\n",
        routing.new_host, routing.port
    );
    // The lookahead pins the length; the zeros before the first other digit are dropped,
    // and an ordinal of 0 keeps its one digit.
    let _ = writeln!(
        out,
        "# /cable/connect/<prefix><ordinal>/: the pod with that ordinal; other ids 404.\n\
         map $cable_rid $cable_connect_upstream {{\n    default \"\";\n    \
         \"~^{prefix}(?=[0-9]{{{width}}}$)0{{0,{zeros}}}(?<cable_ordinal>[1-9][0-9]*|0)$\" \
         {before}$cable_ordinal{after}:{port};\n}}",
        prefix = routing.prefix,
        zeros = width - 1,
        port = routing.port,
    );
    Ok(out)
}

/// The HAProxy frontend and backends for rule routing: a join's routing id becomes the
/// owner's DNS name (`sub` takes the prefix off the id read as a number, which also drops
/// the ordinal's leading zeros), `do-resolve` looks it up when the request comes, and the
/// request goes to that address (`set-dst`). New tunnels, contacts and registrations go to
/// the servers `server-template` keeps filled from the ready relays' DNS name. An id whose
/// pod does not exist answers 404.
pub fn render_haproxy(
    routing: &OrdinalRouting,
    opts: &HaproxyOptions,
    max_instances: u32,
) -> Result<String, ConfigError> {
    routing.validate()?;
    haproxy::check_binds(opts)?;
    if max_instances == 0 || max_instances > routing.max_ordinal() + 1 {
        return Err(ConfigError::UnsafeSetting {
            setting: "max instances",
            got: max_instances.to_string(),
        });
    }
    let (before, after) = routing.pod_host_parts();
    let first_id = routing.routing_id(0).unwrap_or_default();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# Generated by cable-lbconf haproxy-by-ordinal. Routing follows from the routing id, so\n\
         # adding or removing relays (up to {max_instances}) changes DNS only: nothing here is\n\
         # regenerated. Load after the main configuration: haproxy -f haproxy.cfg -f <this file>.\n"
    );
    out.push_str("resolvers cable_dns\n");
    for (i, resolver) in routing.resolvers.iter().enumerate() {
        if resolver == RESOLV_CONF {
            out.push_str("    parse-resolv-conf\n");
            continue;
        }
        let with_port = if resolver.contains(':') && !resolver.ends_with(']') {
            resolver.clone()
        } else {
            format!("{resolver}:53")
        };
        let _ = writeln!(out, "    nameserver dns{i} {with_port}");
    }
    let _ = writeln!(
        out,
        "    accepted_payload_size 8192\n\
         \x20   resolve_retries 3\n\
         \x20   timeout resolve 1s\n\
         \x20   timeout retry 1s\n\
         \x20   hold valid {valid}s\n\
         \x20   hold obsolete {valid}s\n\
         \x20   hold nx {valid}s\n",
        valid = routing.dns_valid_secs
    );
    haproxy::frontend_head(&mut out, opts);
    let _ = writeln!(
        out,
        "    acl cable_new path_reg -i ^/cable/new/[0-9a-f]{{32}}$\n\
         \x20   acl cable_connect path_reg -i ^/cable/connect/{prefix}[0-9]{{{width}}}/[0-9a-f]{{32}}$\n\
         \x20   acl cable_contact path_reg ^/cable/contact/[A-Za-z0-9_-]+$\n\
         \x20   acl cable_register path {register}\n\
         \x20   # The owner's name: the id read as a number, less the first id, is the ordinal.\n\
         \x20   http-request set-var(txn.cable_ordinal) path,field(4,/),sub({first}) if cable_connect\n\
         \x20   http-request set-var(txn.cable_host) str({before}),concat(,txn.cable_ordinal,{after}) if cable_connect\n\
         \x20   http-request do-resolve(txn.cable_owner,cable_dns,ipv4) var(txn.cable_host) if cable_connect\n\
         \x20   # Ids of another form, pods that do not exist, and every other path: 404 at the edge.\n\
         \x20   http-request return status 404 if cable_connect !{{ var(txn.cable_owner) -m found }}\n\
         \x20   http-request return status 404 if !cable_new !cable_connect !cable_contact !cable_register\n\
         \x20   use_backend cable_owner if cable_connect\n\
         \x20   use_backend cable_contact if cable_contact\n\
         \x20   default_backend cable_new\n",
        prefix = routing.prefix,
        width = routing.width(),
        first = first_id.trim_start_matches('0'),
        register = cable_proto::domain::PUSH_REGISTER_PATH,
    );
    let common = haproxy::backend_common(opts);
    let send_proxy = haproxy::send_proxy(opts);
    for (name, retries, comment) in [
        (
            "cable_new",
            3,
            "# Every ready relay, as DNS lists them; a 503 (draining) moves on to the next.",
        ),
        (
            "cable_contact",
            1,
            "# Contacts: every ready relay too, retried once only (each retry wakes the phone).",
        ),
    ] {
        let _ = writeln!(
            out,
            "{comment}\nbackend {name}\n{common}\
             \x20   balance roundrobin\n\
             \x20   retries {retries}\n\
             \x20   option redispatch 1\n\
             \x20   retry-on conn-failure empty-response 503\n\
             \x20   server-template relay 1-{max_instances} {host}:{port} resolvers cable_dns resolve-prefer ipv4 init-addr none{send_proxy}\n",
            host = routing.new_host,
            port = routing.port,
        );
    }
    let _ = writeln!(
        out,
        "# connect: the owner alone, at the address the frontend resolved.\n\
         backend cable_owner\n{common}\
         \x20   retries 1\n\
         \x20   http-request set-dst var(txn.cable_owner)\n\
         \x20   http-request set-dst-port int({port})\n\
         \x20   server owner 0.0.0.0:0{send_proxy}",
        port = routing.port,
    );
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn routing() -> OrdinalRouting {
        OrdinalRouting {
            prefix: "1".into(),
            pod_host_template: "cable-relay-{ordinal}.cable-relay.cable.svc.cluster.local".into(),
            new_host: "cable-relay-new.cable.svc.cluster.local".into(),
            port: 8080,
            resolvers: vec!["10.96.0.10".into()],
            dns_valid_secs: 5,
        }
    }

    #[test]
    fn ids_and_names_follow_the_entrypoint() {
        let r = routing();
        assert_eq!(r.routing_id(0).unwrap(), "100000");
        assert_eq!(r.routing_id(7).unwrap(), "100007");
        assert_eq!(r.routing_id(99_999).unwrap(), "199999");
        assert!(r.routing_id(100_000).is_none());
        assert_eq!(
            r.pod_host(7),
            "cable-relay-7.cable-relay.cable.svc.cluster.local"
        );
    }

    #[test]
    fn nginx_maps_ids_to_pod_names() {
        let text = render_nginx(&routing()).unwrap();
        assert!(text.contains("resolver 10.96.0.10 valid=5s ipv6=off;"));
        assert!(text.contains("default cable-relay-new.cable.svc.cluster.local:8080;"));
        assert!(text.contains(
            "\"~^1(?=[0-9]{5}$)0{0,4}(?<cable_ordinal>[1-9][0-9]*|0)$\" cable-relay-$cable_ordinal.cable-relay.cable.svc.cluster.local:8080;"
        ));
        assert_eq!(text.matches('{').count(), text.matches('}').count());
    }

    #[test]
    fn haproxy_resolves_the_owner_and_discovers_new_servers() {
        let text = render_haproxy(&routing(), &HaproxyOptions::default(), 64).unwrap();
        assert!(text.contains("nameserver dns0 10.96.0.10:53"));
        assert!(text.contains("path,field(4,/),sub(100000) if cable_connect"));
        assert!(text.contains(
            "str(cable-relay-),concat(,txn.cable_ordinal,.cable-relay.cable.svc.cluster.local)"
        ));
        assert!(text.contains("server-template relay 1-64 cable-relay-new.cable.svc.cluster.local:8080 resolvers cable_dns"));
        assert!(text.contains("server owner 0.0.0.0:0 send-proxy-v2"));
        assert!(render_haproxy(&routing(), &HaproxyOptions::default(), 100_001).is_err());

        let from_pod = OrdinalRouting {
            resolvers: vec![RESOLV_CONF.into()],
            ..routing()
        };
        let text = render_haproxy(&from_pod, &HaproxyOptions::default(), 8).unwrap();
        assert!(text.contains("resolvers cable_dns\n    parse-resolv-conf\n"));
        assert!(render_nginx(&from_pod).is_err());
    }

    #[test]
    fn refuses_settings_that_could_break_out() {
        let bad = [
            OrdinalRouting {
                prefix: "".into(),
                ..routing()
            },
            OrdinalRouting {
                prefix: "123456".into(),
                ..routing()
            },
            OrdinalRouting {
                prefix: "1a".into(),
                ..routing()
            },
            OrdinalRouting {
                pod_host_template: "relay.example".into(),
                ..routing()
            },
            OrdinalRouting {
                pod_host_template: "r-{ordinal}-{ordinal}".into(),
                ..routing()
            },
            OrdinalRouting {
                pod_host_template: "r-{ordinal};\n".into(),
                ..routing()
            },
            OrdinalRouting {
                new_host: "a b".into(),
                ..routing()
            },
            OrdinalRouting {
                resolvers: vec![],
                ..routing()
            },
            OrdinalRouting {
                resolvers: vec!["1.2.3.4 valid=0".into()],
                ..routing()
            },
            OrdinalRouting {
                port: 0,
                ..routing()
            },
            OrdinalRouting {
                dns_valid_secs: 0,
                ..routing()
            },
        ];
        for routing in bad {
            assert!(render_nginx(&routing).is_err(), "{routing:?}");
        }
    }
}
