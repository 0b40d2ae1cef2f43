//! Tunnel-server domains and the URLs built on them.
//!
//! An advert carries a 16-bit domain id instead of a host name. Ids 0 and 1
//! index a fixed list of assigned hosts; 2..=255 are unassigned and rejected;
//! 256 and above name a host derived from a SHA-256 hash of the id, so
//! anyone can run a tunnel server under a hashed name without a registry.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use sha2::{Digest, Sha256};

use crate::error::{Error, Result, TunnelPathErrorKind};
use crate::ids::{RoutingId, TunnelId};

/// Hosts of the assigned domain ids, indexed by id.
pub const ASSIGNED_DOMAINS: [&str; 2] = ["cable.ua5v.com", "cable.auth.com"];

/// The first id whose host is derived by hashing.
pub const FIRST_HASHED_ID: u16 = 256;

/// Whether an advert's domain id names a known domain (assigned or hashed).
pub fn is_known_domain_id(id: u16) -> bool {
    usize::from(id) < ASSIGNED_DOMAINS.len() || id >= FIRST_HASHED_ID
}

/// The host for a domain id; ids 2..=255 are rejected.
pub fn host_for_domain_id(id: u16) -> Result<String> {
    if let Some(host) = ASSIGNED_DOMAINS.get(usize::from(id)) {
        return Ok((*host).to_owned());
    }
    if id < FIRST_HASHED_ID {
        return Err(Error::UnassignedDomain { id });
    }
    Ok(hashed_host(id))
}

fn hashed_host(id: u16) -> String {
    const PREFIX: &[u8] = b"caBLEv2 tunnel server domain";
    const BASE32: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
    const TLDS: [&str; 4] = ["com", "org", "net", "info"];

    let mut hasher = Sha256::new();
    hasher.update(PREFIX);
    hasher.update(id.to_le_bytes());
    hasher.update([0u8]);
    let digest = hasher.finalize();
    let mut first8 = [0u8; 8];
    first8.copy_from_slice(&digest[..8]);
    let mut v = u64::from_le_bytes(first8);

    let tld = TLDS[(v & 3) as usize];
    v >>= 2;
    let mut label = String::with_capacity(13);
    while v != 0 {
        label.push(char::from(BASE32[(v & 31) as usize]));
        v >>= 5;
    }
    format!("cable.{label}.{tld}")
}

/// The id of an assigned host (exact, lower-case match), if it is one.
pub fn assigned_domain_id(host: &str) -> Option<u16> {
    ASSIGNED_DOMAINS
        .iter()
        .position(|h| *h == host)
        .and_then(|i| u16::try_from(i).ok())
}

/// The domain id for a host: an assigned id, or the hashed id found by
/// trying all 65280 of them (a few milliseconds; cache the answer).
pub fn find_domain_id(host: &str) -> Option<u16> {
    assigned_domain_id(host)
        .or_else(|| (FIRST_HASHED_ID..=u16::MAX).find(|&id| hashed_host(id) == host))
}

/// `/cable/new/<TUNNEL_ID>` (phone, QR flow); upper-case hex, as Chromium sends it.
pub fn new_path(tunnel_id: &TunnelId) -> String {
    format!("/cable/new/{}", tunnel_id.to_hex())
}

/// `/cable/connect/<ROUTING_ID>/<TUNNEL_ID>`; upper-case hex.
pub fn connect_path(routing_id: &RoutingId, tunnel_id: &TunnelId) -> String {
    format!(
        "/cable/connect/{}/{}",
        routing_id.to_hex(),
        tunnel_id.to_hex()
    )
}

/// `/cable/contact/<base64url(contact_id), no padding>` (desktop, state-assisted flow).
pub fn contact_path(contact_id: &[u8]) -> String {
    format!("/cable/contact/{}", URL_SAFE_NO_PAD.encode(contact_id))
}

/// Where a phone registers its Web Push subscription for contacts (`POST`). Not part of
/// caBLE itself: the contact id is opaque to computers, and this path is how this project's
/// relay mints one (a sealed subscription).
pub const PUSH_REGISTER_PATH: &str = "/cable/push/register";

/// `wss://<host>` + [`new_path`].
pub fn new_url(host: &str, tunnel_id: &TunnelId) -> String {
    format!("wss://{host}{}", new_path(tunnel_id))
}

/// `wss://<host>` + [`connect_path`].
pub fn connect_url(host: &str, routing_id: &RoutingId, tunnel_id: &TunnelId) -> String {
    format!("wss://{host}{}", connect_path(routing_id, tunnel_id))
}

/// `wss://<host>` + [`contact_path`].
pub fn contact_url(host: &str, contact_id: &[u8]) -> String {
    format!("wss://{host}{}", contact_path(contact_id))
}

/// A tunnel-server request path, as a relay sees it.
///
/// `Debug` never shows a tunnel id in full (see [`TunnelId`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TunnelPath {
    /// `/cable/new/<tunnel id>`.
    New {
        /// The tunnel id.
        tunnel_id: TunnelId,
    },
    /// `/cable/connect/<routing id>/<tunnel id>`.
    Connect {
        /// The routing id.
        routing_id: RoutingId,
        /// The tunnel id.
        tunnel_id: TunnelId,
    },
    /// `/cable/contact/<base64url contact id>`.
    Contact {
        /// The decoded contact id.
        contact_id: Vec<u8>,
    },
}

impl TunnelPath {
    /// Parses a request path (without its query string); hex is accepted in either case.
    /// The error names the part that was wrong ([`TunnelPathErrorKind`]).
    pub fn parse(path: &str) -> Result<TunnelPath> {
        Self::parse_kind(path).map_err(|kind| Error::BadTunnelPath { kind })
    }

    fn parse_kind(path: &str) -> core::result::Result<TunnelPath, TunnelPathErrorKind> {
        use TunnelPathErrorKind as Kind;
        let rest = path.strip_prefix("/cable/").ok_or(Kind::NotCable)?;
        let (endpoint, args) = rest.split_once('/').unwrap_or((rest, ""));
        let (endpoint, expected) = match endpoint {
            "new" => ("new", 1),
            "connect" => ("connect", 2),
            "contact" => ("contact", 1),
            _ => return Err(Kind::UnknownEndpoint),
        };
        // "/cable/new" has no segment; "/cable/new/" has one, empty.
        let segments: Vec<&str> = if rest.len() == endpoint.len() {
            Vec::new()
        } else {
            args.split('/').collect()
        };
        if segments.len() != expected {
            return Err(Kind::SegmentCount {
                endpoint,
                expected,
                got: segments.len(),
            });
        }
        match (endpoint, segments.as_slice()) {
            ("new", [tunnel]) => Ok(TunnelPath::New {
                tunnel_id: TunnelId::decode(tunnel).map_err(Kind::TunnelId)?,
            }),
            ("connect", [routing, tunnel]) => Ok(TunnelPath::Connect {
                routing_id: RoutingId::decode(routing).map_err(Kind::RoutingId)?,
                tunnel_id: TunnelId::decode(tunnel).map_err(Kind::TunnelId)?,
            }),
            (_, [id]) if !id.is_empty() => Ok(TunnelPath::Contact {
                contact_id: URL_SAFE_NO_PAD.decode(id).map_err(|_| Kind::ContactId)?,
            }),
            _ => Err(Kind::ContactId),
        }
    }

    /// The path this value was parsed from, in canonical (upper-case hex) form.
    pub fn to_path(&self) -> String {
        match self {
            TunnelPath::New { tunnel_id } => new_path(tunnel_id),
            TunnelPath::Connect {
                routing_id,
                tunnel_id,
            } => connect_path(routing_id, tunnel_id),
            TunnelPath::Contact { contact_id } => contact_path(contact_id),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn unassigned_ids_rejected() {
        for id in 2..=255u16 {
            assert_eq!(host_for_domain_id(id), Err(Error::UnassignedDomain { id }));
            assert!(!is_known_domain_id(id));
        }
        assert!(is_known_domain_id(0) && is_known_domain_id(1) && is_known_domain_id(256));
    }

    #[test]
    fn host_lookup_round_trips() {
        assert_eq!(assigned_domain_id("cable.auth.com"), Some(1));
        assert_eq!(assigned_domain_id("example.com"), None);
        let host = host_for_domain_id(40000).unwrap();
        assert_eq!(find_domain_id(&host), Some(40000));
        assert_eq!(find_domain_id("cable.ua5v.com"), Some(0));
    }

    #[test]
    fn paths_parse_either_case() {
        let t = "de1d8150b45f03349b2b00a52e2e893e";
        let parsed = TunnelPath::parse(&format!("/cable/connect/0a0B0c/{t}")).unwrap();
        assert_eq!(
            parsed,
            TunnelPath::Connect {
                routing_id: RoutingId::from_bytes([10, 11, 12]),
                tunnel_id: TunnelId::from_hex(t).unwrap()
            }
        );
        assert_eq!(
            parsed.to_path(),
            format!("/cable/connect/0A0B0C/{}", t.to_uppercase())
        );
        assert_eq!(
            TunnelPath::parse("/cable/contact/Y29udGFjdC1pZC1leGFtcGxl").unwrap(),
            TunnelPath::Contact {
                contact_id: b"contact-id-example".to_vec()
            }
        );
    }

    #[test]
    fn path_errors_name_the_part() {
        use crate::error::HexIdErrorKind::{Char, Length};
        use TunnelPathErrorKind as K;
        let t = "DE1D8150B45F03349B2B00A52E2E893E";
        let kind = |path: &str| match TunnelPath::parse(path) {
            Err(Error::BadTunnelPath { kind }) => kind,
            other => panic!("{path}: {other:?}"),
        };
        let count = |endpoint, expected, got| K::SegmentCount {
            endpoint,
            expected,
            got,
        };
        assert_eq!(kind("/other"), K::NotCable);
        assert_eq!(kind(&format!("/CABLE/new/{t}")), K::NotCable);
        assert_eq!(kind("/cable"), K::NotCable);
        assert_eq!(kind("/cable/"), K::UnknownEndpoint);
        assert_eq!(kind("/cable/other/x"), K::UnknownEndpoint);
        assert_eq!(kind("/cable/new"), count("new", 1, 0));
        assert_eq!(kind(&format!("/cable/new/{t}/")), count("new", 1, 2));
        assert_eq!(kind(&format!("/cable/connect/{t}")), count("connect", 2, 1));
        assert_eq!(
            kind(&format!("/cable/connect/ABCDEF/{t}/x")),
            count("connect", 2, 3)
        );
        assert_eq!(kind("/cable/contact"), count("contact", 1, 0));
        assert_eq!(
            kind("/cable/new/"),
            K::TunnelId(Length {
                expected: 32,
                got: 0
            })
        );
        assert_eq!(
            kind("/cable/new/00"),
            K::TunnelId(Length {
                expected: 32,
                got: 2
            })
        );
        assert_eq!(
            kind(&format!("/cable/new/{}g", &t[..31])),
            K::TunnelId(Char { position: 31 })
        );
        assert_eq!(
            kind(&format!("/cable/connect/ABCDE/{t}")),
            K::RoutingId(Length {
                expected: 6,
                got: 5
            })
        );
        assert_eq!(
            kind(&format!("/cable/connect/ABCDEF/{}?", &t[..31])),
            K::TunnelId(Char { position: 31 })
        );
        assert_eq!(kind("/cable/contact/"), K::ContactId);
        assert_eq!(kind("/cable/contact/!!"), K::ContactId);
        // The message says what was wrong without repeating the id.
        let shown = TunnelPath::parse(&format!("/cable/new/{}g", &t[..31]))
            .unwrap_err()
            .to_string();
        assert!(
            shown.contains("tunnel id") && shown.contains("31"),
            "{shown}"
        );
        assert!(!shown.contains(&t[..8]), "{shown}");
    }
}
