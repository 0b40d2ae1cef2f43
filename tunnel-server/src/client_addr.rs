//! Which address a connection is counted and logged under when a balancer stands in front:
//! trusted networks, and the client address in `X-Forwarded-For` or `Forwarded` headers.
//!
//! Sans-IO like [`crate::proxy_protocol`]. A header is believed only from a peer in a trusted
//! network, and within the header only the hops that trusted proxies added: each proxy
//! appends the address it saw, so reading from the right and skipping trusted addresses
//! finds the first address no trusted proxy can vouch for beyond, which a client cannot
//! forge by sending a header of its own.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::str::FromStr;

/// An IPv4 or IPv6 network, `10.0.0.0/8`, `::1/128`; a bare address is a single host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

/// Why text is not a network.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CidrError {
    /// The part before `/` is not an IP address.
    #[error("{0:?} is not an IP address")]
    BadAddress(String),
    /// The prefix length is not a number up to 32 (IPv4) or 128 (IPv6).
    #[error("prefix length {0:?} is not a number from 0 to 32 (IPv4) or 128 (IPv6)")]
    BadPrefix(String),
    /// Bits are set after the prefix: `10.0.0.1/8` is more likely a typo than `10.0.0.0/8`.
    #[error("{text} has bits set after the prefix; the network is {network}")]
    HostBits {
        /// What was given.
        text: String,
        /// The network it would mean.
        network: Cidr,
    },
}

impl Cidr {
    /// The network `network/prefix`; bits after the prefix are cleared.
    pub fn new(network: IpAddr, prefix: u8) -> Option<Self> {
        let max = if network.is_ipv4() { 32 } else { 128 };
        (prefix <= max).then(|| Self {
            network: mask(network, prefix),
            prefix,
        })
    }

    /// True if `ip` is in this network. An IPv4-mapped IPv6 address (how a dual-stack
    /// listener sees an IPv4 peer) matches as its IPv4 address.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = unmap(ip);
        ip.is_ipv4() == self.network.is_ipv4() && mask(ip, self.prefix) == self.network
    }
}

/// An IPv4-mapped IPv6 address as the IPv4 address it is; anything else unchanged.
pub(crate) fn unmap(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        IpAddr::V4(_) => ip,
    }
}

fn mask(ip: IpAddr, prefix: u8) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => {
            let bits = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V4(Ipv4Addr::from(u32::from(v4) & bits))
        }
        IpAddr::V6(v6) => {
            let bits = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V6(Ipv6Addr::from(u128::from(v6) & bits))
        }
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

impl FromStr for Cidr {
    type Err = CidrError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        let (addr, prefix) = match text.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (text, None),
        };
        let ip: IpAddr = addr
            .parse()
            .map_err(|_| CidrError::BadAddress(addr.to_owned()))?;
        let max = if ip.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|n| *n <= max && p.bytes().all(|b| b.is_ascii_digit()))
                .ok_or_else(|| CidrError::BadPrefix(p.to_owned()))?,
        };
        let network = Cidr::new(ip, prefix).ok_or_else(|| CidrError::BadPrefix(text.to_owned()))?;
        if network.network != ip {
            return Err(CidrError::HostBits {
                text: text.to_owned(),
                network,
            });
        }
        Ok(network)
    }
}

/// True if `ip` is in one of `networks`.
pub fn is_trusted(networks: &[Cidr], ip: IpAddr) -> bool {
    networks.iter().any(|n| n.contains(ip))
}

/// The request header a trusted proxy names the client in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ForwardedHeader {
    /// `X-Forwarded-For: client, proxy1, proxy2` (nginx `$proxy_add_x_forwarded_for`,
    /// HAProxy `option forwardfor`).
    #[default]
    XForwardedFor,
    /// RFC 7239 `Forwarded: for=client;proto=https, for=proxy1`.
    Forwarded,
    /// Neither: the socket's peer is the client.
    None,
}

impl ForwardedHeader {
    /// The header's name, `None` for [`ForwardedHeader::None`].
    pub fn name(self) -> Option<&'static str> {
        match self {
            Self::XForwardedFor => Some("x-forwarded-for"),
            Self::Forwarded => Some("forwarded"),
            Self::None => None,
        }
    }
}

/// The client address in the values of `kind`'s header (every occurrence, in order), seen
/// from a trusted peer: the rightmost address not in `trusted`. If every address is
/// trusted, the leftmost one. `None` if the header is missing or its last hop is not an
/// address: then the peer itself is the client.
///
/// An element that is not an address (`unknown`, an obfuscated `_name`, garbage) ends the
/// walk: nothing to its left can be attributed, so the address to its right is the answer.
pub fn forwarded_client<'a>(
    kind: ForwardedHeader,
    values: impl IntoIterator<Item = &'a [u8]>,
    trusted: &[Cidr],
) -> Option<IpAddr> {
    let mut hops: Vec<Option<IpAddr>> = Vec::new();
    for value in values {
        for element in value.split(|&b| b == b',') {
            let hop = match kind {
                ForwardedHeader::XForwardedFor => parse_node(element),
                ForwardedHeader::Forwarded => forwarded_for(element),
                ForwardedHeader::None => return None,
            };
            hops.push(hop);
        }
    }
    let mut client = None;
    for hop in hops.into_iter().rev() {
        let Some(ip) = hop else { break };
        client = Some(ip);
        if !is_trusted(trusted, ip) {
            break;
        }
    }
    client.map(unmap)
}

/// The `for=` parameter of one `Forwarded` element (`for=1.2.3.4;proto=https`).
fn forwarded_for(element: &[u8]) -> Option<IpAddr> {
    element.split(|&b| b == b';').find_map(|pair| {
        let pair = pair.trim_ascii();
        let eq = pair.iter().position(|&b| b == b'=')?;
        let (name, value) = (&pair[..eq], &pair[eq + 1..]);
        if !name.trim_ascii().eq_ignore_ascii_case(b"for") {
            return None;
        }
        let value = value.trim_ascii();
        // A quoted string carries no escapes that an address could need.
        let value = value
            .strip_prefix(b"\"")
            .and_then(|v| v.strip_suffix(b"\""))
            .unwrap_or(value);
        Some(parse_node(value))
    })?
}

/// `192.0.2.1`, `192.0.2.1:4711`, `2001:db8::1`, `[2001:db8::1]`, `[2001:db8::1]:4711`.
fn parse_node(text: &[u8]) -> Option<IpAddr> {
    let text = std::str::from_utf8(text).ok()?.trim();
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Ok(sa) = text.parse::<SocketAddr>() {
        return Some(sa.ip());
    }
    text.strip_prefix('[')
        .and_then(|t| t.strip_suffix(']'))
        .and_then(|t| t.parse::<Ipv6Addr>().ok())
        .map(IpAddr::V6)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn nets(list: &[&str]) -> Vec<Cidr> {
        list.iter().map(|n| n.parse().unwrap()).collect()
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn networks_parse_and_match() {
        let n: Cidr = "10.0.0.0/8".parse().unwrap();
        assert!(n.contains(ip("10.255.0.1")));
        assert!(!n.contains(ip("11.0.0.1")));
        assert!(n.contains(ip("::ffff:10.1.2.3")), "IPv4-mapped peer");
        assert!(!n.contains(ip("::a01:203")));
        let host: Cidr = "127.0.0.1".parse().unwrap();
        assert_eq!(host.to_string(), "127.0.0.1/32");
        assert!(host.contains(ip("127.0.0.1")) && !host.contains(ip("127.0.0.2")));
        let v6: Cidr = "2001:db8::/32".parse().unwrap();
        assert!(v6.contains(ip("2001:db8:ffff::1")));
        assert!(!v6.contains(ip("2001:db9::1")));
        assert!(!v6.contains(ip("10.0.0.1")));
        let all: Cidr = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains(ip("203.0.113.9")) && !all.contains(ip("::1")));
        let all6: Cidr = "::/0".parse().unwrap();
        assert!(all6.contains(ip("::1")));
        assert!("::1/128".parse::<Cidr>().unwrap().contains(ip("::1")));
    }

    #[test]
    fn bad_networks_say_why() {
        assert!(matches!(
            "10.0.0/8".parse::<Cidr>(),
            Err(CidrError::BadAddress(_))
        ));
        assert!(matches!("".parse::<Cidr>(), Err(CidrError::BadAddress(_))));
        for bad in [
            "10.0.0.0/33",
            "::/129",
            "10.0.0.0/",
            "10.0.0.0/+8",
            "10.0.0.0/x",
        ] {
            assert!(
                matches!(bad.parse::<Cidr>(), Err(CidrError::BadPrefix(_))),
                "{bad}"
            );
        }
        let e = "10.0.0.1/8".parse::<Cidr>().unwrap_err();
        assert_eq!(
            e.to_string(),
            "10.0.0.1/8 has bits set after the prefix; the network is 10.0.0.0/8"
        );
    }

    #[test]
    fn x_forwarded_for_takes_the_rightmost_untrusted_address() {
        let trusted = nets(&["10.0.0.0/8", "::1/128"]);
        let xff = |values: &[&str]| {
            forwarded_client(
                ForwardedHeader::XForwardedFor,
                values.iter().map(|v| v.as_bytes()),
                &trusted,
            )
        };
        assert_eq!(xff(&["203.0.113.7"]), Some(ip("203.0.113.7")));
        // A client's own header is on the left; the proxies' entries are on the right.
        assert_eq!(
            xff(&["198.51.100.1, 203.0.113.7, 10.0.0.5"]),
            Some(ip("203.0.113.7"))
        );
        // Several headers read as one list.
        assert_eq!(
            xff(&["198.51.100.1", "203.0.113.7,10.1.1.1"]),
            Some(ip("203.0.113.7"))
        );
        assert_eq!(xff(&["10.0.0.9, 10.0.0.5"]), Some(ip("10.0.0.9")));
        assert_eq!(xff(&["[2001:db8::7]:4711"]), Some(ip("2001:db8::7")));
        assert_eq!(xff(&["192.0.2.1:80"]), Some(ip("192.0.2.1")));
        assert_eq!(xff(&["::ffff:192.0.2.1"]), Some(ip("192.0.2.1")));
        // Nothing believable.
        assert_eq!(xff(&[]), None);
        assert_eq!(xff(&[""]), None);
        assert_eq!(xff(&["203.0.113.7, garbage"]), None);
        // Garbage further left stops the walk at the trusted hop to its right.
        assert_eq!(
            xff(&["203.0.113.7, unknown, 10.0.0.5"]),
            Some(ip("10.0.0.5"))
        );
    }

    #[test]
    fn forwarded_for_parameters() {
        let trusted = nets(&["10.0.0.0/8"]);
        let fwd = |value: &str| {
            forwarded_client(ForwardedHeader::Forwarded, [value.as_bytes()], &trusted)
        };
        assert_eq!(
            fwd("for=192.0.2.60;proto=http;by=203.0.113.43"),
            Some(ip("192.0.2.60"))
        );
        assert_eq!(
            fwd("For=\"[2001:db8:cafe::17]:4711\""),
            Some(ip("2001:db8:cafe::17"))
        );
        assert_eq!(
            fwd("proto=https; for=192.0.2.43, for=10.0.0.1"),
            Some(ip("192.0.2.43"))
        );
        assert_eq!(
            fwd("for=198.51.100.17, for=192.0.2.43"),
            Some(ip("192.0.2.43"))
        );
        assert_eq!(fwd("for=unknown"), None);
        assert_eq!(fwd("for=_hidden, for=10.0.0.1"), Some(ip("10.0.0.1")));
        assert_eq!(fwd("proto=https"), None);
        // The wrong header kind reads nothing.
        assert_eq!(
            forwarded_client(ForwardedHeader::None, [&b"1.2.3.4"[..]], &trusted),
            None
        );
    }

    proptest! {
        #[test]
        fn arbitrary_headers_never_panic(
            values in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..80), 0..4),
            forwarded in any::<bool>(),
        ) {
            let kind = if forwarded { ForwardedHeader::Forwarded } else { ForwardedHeader::XForwardedFor };
            let trusted = nets(&["10.0.0.0/8"]);
            let _ = forwarded_client(kind, values.iter().map(Vec::as_slice), &trusted);
        }

        #[test]
        fn any_text_parses_or_says_why(text in ".{0,50}") {
            let _ = text.parse::<Cidr>();
        }
    }
}
