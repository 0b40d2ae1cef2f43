//! Relay base URLs and the tunnel paths appended to them.

use std::fmt;
use std::net::IpAddr;

use cable_proto::domain;
use cable_proto::ids::{RoutingId, TunnelId};
use http::Uri;

use crate::error::{TransportError, UrlProblem};

/// The base URL of a tunnel server: `wss://host[:port][/prefix]` or `ws://…` for loopback and tests.
///
/// Tunnel paths (`/cable/new/…`, `/cable/connect/…`) are appended to the prefix, so a relay
/// mounted under a path of a shared host works too.
#[derive(Clone, PartialEq, Eq)]
pub struct RelayUrl {
    secure: bool,
    host: String,
    port: u16,
    prefix: String,
}

impl RelayUrl {
    /// Parses `ws://` or `wss://` URLs; a trailing `/` is ignored.
    pub fn parse(url: &str) -> Result<Self, TransportError> {
        let bad = |problem| TransportError::InvalidRelayUrl { problem };
        let uri: Uri = url.parse().map_err(|_| bad(UrlProblem::Unparseable))?;
        let secure = match uri.scheme_str() {
            Some(s) if s.eq_ignore_ascii_case("wss") => true,
            Some(s) if s.eq_ignore_ascii_case("ws") => false,
            Some(_) => return Err(bad(UrlProblem::UnsupportedScheme)),
            None => return Err(bad(UrlProblem::Unparseable)),
        };
        if uri.query().is_some() || url.contains('#') {
            return Err(bad(UrlProblem::HasQueryOrFragment));
        }
        let host = uri
            .host()
            .filter(|h| !h.is_empty())
            .ok_or(bad(UrlProblem::MissingHost))?;
        let port = uri.port_u16().unwrap_or(if secure { 443 } else { 80 });
        let prefix = uri.path().trim_end_matches('/').to_owned();
        Ok(Self {
            secure,
            host: host.to_ascii_lowercase(),
            port,
            prefix,
        })
    }

    /// `wss://<host>` on the default port: what a domain name decoded from an advert becomes.
    pub fn for_host(host: &str) -> Result<Self, TransportError> {
        Self::parse(&format!("wss://{host}"))
    }

    /// True for `wss://`.
    pub fn is_secure(&self) -> bool {
        self.secure
    }

    /// The host name or IP literal (IPv6 in brackets, as in the URL).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The TCP port (443/80 when the URL names none).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// True if the host is `localhost` or a loopback IP address.
    pub fn is_loopback(&self) -> bool {
        if self.host == "localhost" {
            return true;
        }
        self.ip().is_some_and(|ip| ip.is_loopback())
    }

    pub(crate) fn ip(&self) -> Option<IpAddr> {
        self.host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse()
            .ok()
    }

    /// The host without IPv6 brackets, for name resolution and TLS server names.
    pub(crate) fn bare_host(&self) -> &str {
        self.host.trim_start_matches('[').trim_end_matches(']')
    }

    /// `<base>/cable/new/<TUNNEL_ID>` (upper-case hex, as Chromium sends it).
    pub fn new_tunnel_url(&self, tunnel_id: &TunnelId) -> String {
        format!("{self}{}", domain::new_path(tunnel_id))
    }

    /// `<base>/cable/connect/<ROUTING_ID>/<TUNNEL_ID>` (upper-case hex).
    pub fn connect_url(&self, routing_id: &RoutingId, tunnel_id: &TunnelId) -> String {
        format!("{self}{}", domain::connect_path(routing_id, tunnel_id))
    }

    /// `host[:port]` as the `Host` header names it (the port only when not the default).
    pub(crate) fn authority(&self) -> String {
        let default_port = if self.secure { 443 } else { 80 };
        if self.port == default_port {
            self.host.clone()
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// `<prefix>/cable/push/register`: the path (no scheme or host) a phone posts its push
    /// subscription to.
    pub fn push_register_path(&self) -> String {
        format!("{}{}", self.prefix, domain::PUSH_REGISTER_PATH)
    }

    /// `<base>/cable/contact/<base64url(contact_id), no padding>`.
    pub fn contact_url(&self, contact_id: &[u8]) -> String {
        format!("{self}{}", domain::contact_path(contact_id))
    }
}

impl fmt::Display for RelayUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = if self.secure { "wss" } else { "ws" };
        let default_port = if self.secure { 443 } else { 80 };
        write!(f, "{scheme}://{}", self.host)?;
        if self.port != default_port {
            write!(f, ":{}", self.port)?;
        }
        f.write_str(&self.prefix)
    }
}

impl fmt::Debug for RelayUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RelayUrl({self})")
    }
}

impl std::str::FromStr for RelayUrl {
    type Err = TransportError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_builds_paths() {
        let r = RelayUrl::parse("wss://cable.ua5v.com").unwrap();
        assert!(r.is_secure());
        assert_eq!(r.port(), 443);
        assert_eq!(
            r.new_tunnel_url(&TunnelId::from_bytes([0xab; 16])),
            format!("wss://cable.ua5v.com/cable/new/{}", "AB".repeat(16))
        );
        let r = RelayUrl::parse("ws://127.0.0.1:8080/relay/").unwrap();
        assert!(r.is_loopback());
        assert_eq!(
            r.connect_url(
                &RoutingId::from_bytes([1, 2, 0xfe]),
                &TunnelId::from_bytes([0; 16])
            ),
            format!(
                "ws://127.0.0.1:8080/relay/cable/connect/0102FE/{}",
                "00".repeat(16)
            )
        );
        // For a host on the default port, the same URLs as the protocol core's builders.
        let r = RelayUrl::for_host("cable.ua5v.com").unwrap();
        let (rid, tid) = (
            RoutingId::from_bytes([1, 2, 3]),
            TunnelId::from_bytes([0xde; 16]),
        );
        assert_eq!(
            r.new_tunnel_url(&tid),
            domain::new_url("cable.ua5v.com", &tid)
        );
        assert_eq!(
            r.connect_url(&rid, &tid),
            domain::connect_url("cable.ua5v.com", &rid, &tid)
        );
        assert_eq!(
            r.contact_url(b"contact-id-example"),
            domain::contact_url("cable.ua5v.com", b"contact-id-example")
        );
        let r = RelayUrl::parse("ws://[::1]:9/").unwrap();
        assert!(r.is_loopback());
        assert_eq!(r.bare_host(), "::1");
        assert_eq!(r.to_string(), "ws://[::1]:9");
        assert!(RelayUrl::parse("ws://localhost:1").unwrap().is_loopback());
        assert!(!RelayUrl::parse("ws://example.com").unwrap().is_loopback());
    }

    #[test]
    fn rejects_bad_urls() {
        for (url, problem) in [
            ("https://x.com", UrlProblem::UnsupportedScheme),
            ("x.com", UrlProblem::Unparseable),
            ("", UrlProblem::Unparseable),
            ("wss://x.com/?a=b", UrlProblem::HasQueryOrFragment),
            ("wss://x.com/#f", UrlProblem::HasQueryOrFragment),
        ] {
            match RelayUrl::parse(url) {
                Err(TransportError::InvalidRelayUrl { problem: p }) => {
                    assert_eq!(p, problem, "{url}")
                }
                other => panic!("{url}: {other:?}"),
            }
        }
    }
}
