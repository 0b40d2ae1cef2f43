//! Tunnel-server domains and the URLs built on them.
//!
//! An advert carries a 16-bit domain id instead of a host name. Ids 0 and 1
//! index a fixed list of assigned hosts; 2..=255 are unassigned and rejected;
//! 256 and above name a host derived from a SHA-256 hash of the id, so
//! anyone can run a tunnel server under a hashed name without a registry.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
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

/// `wss://<host>/cable/new/<TUNNEL_ID>` (phone, QR flow).
pub fn new_url(host: &str, tunnel_id: &TunnelId) -> String {
    format!("wss://{host}/cable/new/{tunnel_id}")
}

/// `wss://<host>/cable/connect/<ROUTING_ID>/<TUNNEL_ID>`.
pub fn connect_url(host: &str, routing_id: &RoutingId, tunnel_id: &TunnelId) -> String {
    format!("wss://{host}/cable/connect/{routing_id}/{tunnel_id}")
}

/// `wss://<host>/cable/contact/<base64url(contact_id)>` (desktop, state-assisted flow).
pub fn contact_url(host: &str, contact_id: &[u8]) -> String {
    format!(
        "wss://{host}/cable/contact/{}",
        URL_SAFE_NO_PAD.encode(contact_id)
    )
}

/// A tunnel-server request path, as a relay sees it.
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
    /// Parses a request path (no query string); hex is accepted in either case.
    pub fn parse(path: &str) -> Result<TunnelPath> {
        let rest = path.strip_prefix("/cable/").ok_or(Error::BadTunnelPath)?;
        let parts: Vec<&str> = rest.split('/').collect();
        match parts.as_slice() {
            ["new", tunnel] => Ok(TunnelPath::New {
                tunnel_id: TunnelId::from_hex(tunnel)?,
            }),
            ["connect", routing, tunnel] => Ok(TunnelPath::Connect {
                routing_id: RoutingId::from_hex(routing)?,
                tunnel_id: TunnelId::from_hex(tunnel)?,
            }),
            ["contact", id] if !id.is_empty() => Ok(TunnelPath::Contact {
                contact_id: URL_SAFE_NO_PAD
                    .decode(id)
                    .map_err(|_| Error::BadTunnelPath)?,
            }),
            _ => Err(Error::BadTunnelPath),
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
        assert_eq!(
            TunnelPath::parse(&format!("/cable/connect/0a0B0c/{t}")).unwrap(),
            TunnelPath::Connect {
                routing_id: RoutingId::from_bytes([10, 11, 12]),
                tunnel_id: TunnelId::from_hex(t).unwrap()
            }
        );
        assert!(TunnelPath::parse(&format!("/cable/new/{t}/")).is_err());
        assert!(TunnelPath::parse("/cable/new/00").is_err());
        assert!(TunnelPath::parse("/cable/contact/").is_err());
        assert!(TunnelPath::parse("/cable/contact/!!").is_err());
        assert!(TunnelPath::parse("/other").is_err());
        assert_eq!(
            TunnelPath::parse("/cable/contact/Y29udGFjdC1pZC1leGFtcGxl").unwrap(),
            TunnelPath::Contact {
                contact_id: b"contact-id-example".to_vec()
            }
        );
    }
}
