//! The instance list: which relay owns which routing id, and where it listens.
//!
//! One instance per line, `ROUTING_ID=HOST:PORT [admin=PORT]`, `#` starts a comment:
//!
//! ```text
//! # routing id = relay tunnel listener        health/metrics port (same host)
//! 000000=10.0.0.10:8080 admin=9090
//! 000001=10.0.0.11:8080 admin=9090
//! 000002=[2001:db8::12]:8080
//! ```
//! Every value is checked strictly so that nothing read here can inject text into the
//! generated nginx or HAProxy configuration.

use std::collections::HashMap;
use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

use crate::routing_id::map_key;
use crate::{ConfigError, RoutingId};

/// Where a relay listens: an IP address or a DNS name, and a port.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Host {
    /// An IPv4 address.
    V4(Ipv4Addr),
    /// An IPv6 address (written in brackets in a `HOST:PORT`).
    V6(Ipv6Addr),
    /// A DNS name of letters, digits, `-` and `.` (checked label by label).
    Name(String),
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::V4(a) => write!(f, "{a}"),
            Host::V6(a) => write!(f, "[{a}]"),
            Host::Name(n) => f.write_str(n),
        }
    }
}

/// One relay instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    /// The routing id this instance was started with (`--routing-id`).
    pub routing_id: RoutingId,
    /// Host of both listeners.
    pub host: Host,
    /// Port of the WebSocket tunnel listener.
    pub port: u16,
    /// Port of the `/healthz`, `/readyz` and `/metrics` listener, if health checks are wanted.
    pub admin_port: Option<u16>,
}

impl Instance {
    /// `host:port` of the tunnel listener.
    pub fn address(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    /// Name of the balancer's upstream/backend that serves this instance's `connect` routes.
    pub fn backend_name(&self) -> String {
        format!("cable_rid_{}", map_key(&self.routing_id))
    }
}

/// A validated, non-empty list of instances with unique routing ids and addresses, in the
/// order given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instances(Vec<Instance>);

impl Instances {
    /// Reads the line format described in the module documentation.
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        let mut list = Vec::new();
        let mut lines_of = Vec::new();
        for (index, raw) in text.lines().enumerate() {
            let line = index + 1;
            let content = raw.split_once('#').map_or(raw, |(c, _)| c).trim();
            if content.is_empty() {
                continue;
            }
            list.push(parse_line(line, content)?);
            lines_of.push(line);
        }
        Self::from_parsed(list, &lines_of)
    }

    /// Builds from single-line specs (e.g. repeated command-line arguments); errors name
    /// the argument's position as its "line".
    pub fn from_specs<S: AsRef<str>>(specs: &[S]) -> Result<Self, ConfigError> {
        let list = specs
            .iter()
            .enumerate()
            .map(|(i, s)| parse_line(i + 1, s.as_ref().trim()))
            .collect::<Result<Vec<_>, _>>()?;
        let lines: Vec<usize> = (1..=list.len()).collect();
        Self::from_parsed(list, &lines)
    }

    fn from_parsed(list: Vec<Instance>, lines: &[usize]) -> Result<Self, ConfigError> {
        if list.is_empty() {
            return Err(ConfigError::Empty);
        }
        let mut ids = HashMap::new();
        let mut addrs = HashMap::new();
        for (inst, &line) in list.iter().zip(lines) {
            if let Some(&first) = ids.get(&inst.routing_id) {
                return Err(ConfigError::DuplicateRoutingId {
                    line,
                    first,
                    routing_id: map_key(&inst.routing_id),
                });
            }
            ids.insert(inst.routing_id, line);
            let addr = inst.address().to_ascii_lowercase();
            if let Some(&first) = addrs.get(&addr) {
                return Err(ConfigError::DuplicateAddress {
                    line,
                    first,
                    address: addr,
                });
            }
            addrs.insert(addr, line);
        }
        Ok(Self(list))
    }

    /// The instances in the order given.
    pub fn iter(&self) -> impl Iterator<Item = &Instance> {
        self.0.iter()
    }

    /// Number of instances (never zero).
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Always false: an empty list does not parse. Present for API symmetry.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

fn parse_line(line: usize, content: &str) -> Result<Instance, ConfigError> {
    let mut words = content.split_whitespace();
    let first = words.next().ok_or(ConfigError::Empty)?;
    let syntax = || ConfigError::Syntax {
        line,
        got: content.to_owned(),
    };
    let (rid, addr) = first.split_once('=').ok_or_else(syntax)?;
    let routing_id = RoutingId::from_hex(rid).map_err(|_| ConfigError::RoutingId {
        line,
        got: rid.to_owned(),
    })?;
    let (host, port) = parse_address(line, addr)?;
    let mut admin_port = None;
    for word in words {
        match word.split_once('=') {
            Some(("admin", p)) if admin_port.is_none() => admin_port = Some(parse_port(line, p)?),
            _ => {
                return Err(ConfigError::Option {
                    line,
                    got: word.to_owned(),
                })
            }
        }
    }
    Ok(Instance {
        routing_id,
        host,
        port,
        admin_port,
    })
}

fn parse_address(line: usize, addr: &str) -> Result<(Host, u16), ConfigError> {
    let bad_host = |h: &str| ConfigError::Host {
        line,
        got: h.to_owned(),
    };
    if let Some(rest) = addr.strip_prefix('[') {
        let (v6, port) = rest.split_once("]:").ok_or_else(|| bad_host(addr))?;
        let ip: Ipv6Addr = v6.parse().map_err(|_| bad_host(v6))?;
        return Ok((Host::V6(ip), parse_port(line, port)?));
    }
    let (host, port) = addr.rsplit_once(':').ok_or_else(|| ConfigError::Port {
        line,
        got: String::new(),
    })?;
    let port = parse_port(line, port)?;
    if let Ok(ip) = host.parse::<Ipv4Addr>() {
        return Ok((Host::V4(ip), port));
    }
    if is_dns_name(host) {
        Ok((Host::Name(host.to_owned()), port))
    } else {
        Err(bad_host(host))
    }
}

fn parse_port(line: usize, p: &str) -> Result<u16, ConfigError> {
    let bad = || ConfigError::Port {
        line,
        got: p.to_owned(),
    };
    if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    match p.parse::<u16>() {
        Ok(0) | Err(_) => Err(bad()),
        Ok(n) => Ok(n),
    }
}

/// RFC 1123 host name: dot-separated labels of 1–63 letters, digits and inner hyphens,
/// at most 253 characters, not all-numeric in the last label (that would be a bad IPv4).
fn is_dns_name(s: &str) -> bool {
    if s.is_empty() || s.len() > 253 {
        return false;
    }
    let labels: Vec<&str> = s.split('.').collect();
    let label_ok = |l: &&str| {
        !l.is_empty()
            && l.len() <= 63
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    labels.iter().all(label_ok)
        && labels
            .last()
            .is_some_and(|l| !l.bytes().all(|b| b.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_list_with_comments_and_options() {
        let list = Instances::parse(
            "# relays\n\n000000=10.0.0.10:8080 admin=9090\n0A0b01=relay-1.cable.svc:8080 # lower-cased\n000002=[2001:db8::12]:443\n",
        )
        .unwrap();
        let v: Vec<_> = list.iter().collect();
        assert_eq!(v.len(), 3);
        assert_eq!(v[0].address(), "10.0.0.10:8080");
        assert_eq!(v[0].admin_port, Some(9090));
        assert_eq!(v[1].backend_name(), "cable_rid_0a0b01");
        assert_eq!(v[1].address(), "relay-1.cable.svc:8080");
        assert_eq!(v[2].address(), "[2001:db8::12]:443");
        assert_eq!(v[2].admin_port, None);
    }

    #[test]
    fn rejects_each_kind_of_mistake_with_its_line() {
        let cases: &[(&str, ConfigError)] = &[
            ("", ConfigError::Empty),
            ("# only a comment\n", ConfigError::Empty),
            (
                "000000 10.0.0.1:80",
                ConfigError::Syntax {
                    line: 1,
                    got: "000000 10.0.0.1:80".into(),
                },
            ),
            (
                "\n00000=10.0.0.1:80",
                ConfigError::RoutingId {
                    line: 2,
                    got: "00000".into(),
                },
            ),
            (
                "00000g=10.0.0.1:80",
                ConfigError::RoutingId {
                    line: 1,
                    got: "00000g".into(),
                },
            ),
            (
                "000000=10.0.0.1",
                ConfigError::Port {
                    line: 1,
                    got: "".into(),
                },
            ),
            (
                "000000=10.0.0.1:0",
                ConfigError::Port {
                    line: 1,
                    got: "0".into(),
                },
            ),
            (
                "000000=10.0.0.1:65536",
                ConfigError::Port {
                    line: 1,
                    got: "65536".into(),
                },
            ),
            (
                "000000=10.0.0.1:+80",
                ConfigError::Port {
                    line: 1,
                    got: "+80".into(),
                },
            ),
            (
                "000000=relay;evil:80",
                ConfigError::Host {
                    line: 1,
                    got: "relay;evil".into(),
                },
            ),
            (
                "000000=relay}:80",
                ConfigError::Host {
                    line: 1,
                    got: "relay}".into(),
                },
            ),
            (
                "000000=10.0.0.300:80",
                ConfigError::Host {
                    line: 1,
                    got: "10.0.0.300".into(),
                },
            ),
            (
                "000000=-relay:80",
                ConfigError::Host {
                    line: 1,
                    got: "-relay".into(),
                },
            ),
            (
                "000000=[::1:80",
                ConfigError::Host {
                    line: 1,
                    got: "[::1:80".into(),
                },
            ),
            (
                "000000=[zz::1]:80",
                ConfigError::Host {
                    line: 1,
                    got: "zz::1".into(),
                },
            ),
            (
                "000000=10.0.0.1:80 weight=3",
                ConfigError::Option {
                    line: 1,
                    got: "weight=3".into(),
                },
            ),
            (
                "000000=10.0.0.1:80 admin=1 admin=2",
                ConfigError::Option {
                    line: 1,
                    got: "admin=2".into(),
                },
            ),
            (
                "000000=10.0.0.1:80 admin=x",
                ConfigError::Port {
                    line: 1,
                    got: "x".into(),
                },
            ),
            (
                "00000a=10.0.0.1:80\n00000A=10.0.0.2:80",
                ConfigError::DuplicateRoutingId {
                    line: 2,
                    first: 1,
                    routing_id: "00000a".into(),
                },
            ),
            (
                "000001=Relay:80\n000002=relay:80",
                ConfigError::DuplicateAddress {
                    line: 2,
                    first: 1,
                    address: "relay:80".into(),
                },
            ),
        ];
        for (text, want) in cases {
            assert_eq!(Instances::parse(text).as_ref(), Err(want), "{text:?}");
        }
    }

    #[test]
    fn specs_from_arguments() {
        let list = Instances::from_specs(&["000001=127.0.0.1:1", "000002=127.0.0.1:2"]).unwrap();
        assert_eq!(list.len(), 2);
        assert_eq!(
            Instances::from_specs(&["000001=127.0.0.1:1", "bad"]),
            Err(ConfigError::Syntax {
                line: 2,
                got: "bad".into()
            })
        );
        assert_eq!(Instances::from_specs::<&str>(&[]), Err(ConfigError::Empty));
    }
}
