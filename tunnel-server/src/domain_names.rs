//! Choosing the host name of a self-hosted relay (`cable-tunnel-server domain …`).
//!
//! Phones put a 16-bit domain id in their advert, and computers derive the relay's host name
//! from it: ids 0 and 1 are Google's and Apple's relays, 2–255 are unassigned, and every id
//! from 256 up names `cable.<label>.<tld>`, with label and top-level domain taken from a
//! SHA-256 hash of the id. An operator cannot pick a name, only an id whose name they can
//! register; these functions list the candidates, find the id of a name, and say exactly
//! which names to register, point at the relay and put in its certificate.

use std::fmt;

use cable_proto::domain::{self, FIRST_HASHED_ID};

/// Who runs the relays of the assigned ids.
const ASSIGNED_TO: [&str; 2] = ["Google", "Apple"];

/// The top-level domains hashed names use.
pub const TLDS: [&str; 4] = ["com", "org", "net", "info"];

/// Why a domain question has no answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DomainError {
    /// Ids 2–255 name no host: adverts carrying them are rejected.
    #[error("domain id {0} is unassigned (2–255 name no host); pick an id from 256 to 65535")]
    Unassigned(u16),
    /// The name is neither an assigned host nor the hashed name of any id.
    #[error(
        "{0:?} is not a caBLE tunnel-server name: only cable.ua5v.com, cable.auth.com and the \
         hashed names `domain list` prints can be reached by phones"
    )]
    NotAName(String),
    /// A top-level domain hashed names never use.
    #[error("hashed names end in .com, .org, .net or .info, not .{0}")]
    Tld(String),
}

/// The names belonging to one domain id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainNames {
    /// The id phones put in their adverts.
    pub id: u16,
    /// The relay's host name, as computers derive it.
    pub host: String,
    /// The domain to register (the host without its `cable.` label).
    pub registrable: String,
    /// For ids 0 and 1: whose relay it is.
    pub assigned_to: Option<&'static str>,
}

impl DomainNames {
    /// The names of `id`.
    pub fn of(id: u16) -> Result<Self, DomainError> {
        let host = domain::host_for_domain_id(id).map_err(|_| DomainError::Unassigned(id))?;
        let registrable = host.strip_prefix("cable.").unwrap_or(&host).to_owned();
        Ok(Self {
            id,
            assigned_to: ASSIGNED_TO.get(usize::from(id)).copied(),
            host,
            registrable,
        })
    }
}

/// An id, or a host name whose id is looked up.
pub fn resolve(arg: &str) -> Result<DomainNames, DomainError> {
    let arg = arg.trim();
    if let Ok(id) = arg.parse::<u16>() {
        return DomainNames::of(id);
    }
    let host = arg.trim_end_matches('.').to_ascii_lowercase();
    let id = domain::find_domain_id(&host).ok_or_else(|| DomainError::NotAName(arg.to_owned()))?;
    DomainNames::of(id)
}

/// Up to `limit` hashed names from id `start` upwards (at least 256), keeping those whose
/// top-level domain is in `tlds` (all four when empty).
pub fn list(start: u16, limit: usize, tlds: &[String]) -> Result<Vec<DomainNames>, DomainError> {
    for tld in tlds {
        if !TLDS.contains(&tld.as_str()) {
            return Err(DomainError::Tld(tld.clone()));
        }
    }
    let mut out = Vec::new();
    for id in start.max(FIRST_HASHED_ID)..=u16::MAX {
        if out.len() >= limit {
            break;
        }
        let names = DomainNames::of(id)?;
        let tld = names.host.rsplit('.').next().unwrap_or_default();
        if tlds.is_empty() || tlds.iter().any(|t| t == tld) {
            out.push(names);
        }
    }
    Ok(out)
}

impl fmt::Display for DomainNames {
    /// What to set up for this id, one step per line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "domain id:   {}", self.id)?;
        writeln!(f, "host name:   {}", self.host)?;
        if let Some(owner) = self.assigned_to {
            return writeln!(
                f,
                "\nThis is {owner}'s relay (assigned id {}); it cannot be self-hosted. \
                 Pick an id from {FIRST_HASHED_ID} up (`cable-tunnel-server domain list`).",
                self.id
            );
        }
        let host = &self.host;
        writeln!(
            f,
            "\n1. Register the domain {reg}: phones and computers derive {host} from the id, \
             so no other name can stand in for it.\n\
             2. DNS: an A and/or AAAA record (or a CNAME) for {host} pointing at the relay's \
             balancer or at the relay.\n\
             3. TLS: a certificate whose subject alternative names include DNS:{host}, e.g.\n   \
             certbot certonly -d {host}\n   \
             then give it to the balancer, or to the relay with --tls-cert and --tls-key.\n\
             4. Phones advertise the id: `cable phone --relay wss://{host} --domain-id {id}` \
             (derived from the host when --domain-id is left out); computers read the id from \
             the advert and connect to wss://{host}/.",
            reg = self.registrable,
            id = self.id,
        )?;
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_vectors() {
        let text = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/vectors/hybrid.json"),
        )
        .unwrap();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        let cases = v["tunnel_domains"].as_array().unwrap();
        assert!(cases.len() >= 4);
        for case in cases {
            let id = u16::try_from(case["id"].as_u64().unwrap()).unwrap();
            match case["host"].as_str() {
                Some(host) => {
                    let names = DomainNames::of(id).unwrap();
                    assert_eq!(names.host, host);
                    assert_eq!(resolve(host).unwrap().id, id);
                    assert_eq!(resolve(&host.to_ascii_uppercase()).unwrap().id, id);
                    assert_eq!(resolve(&id.to_string()).unwrap().host, host);
                }
                None => assert_eq!(DomainNames::of(id), Err(DomainError::Unassigned(id))),
            }
        }
    }

    #[test]
    fn setup_names_what_to_register_and_certify() {
        let names = resolve("266").unwrap();
        assert_eq!(names.registrable, "wufkweyy3uaxb.com");
        let text = names.to_string();
        assert!(
            text.contains("Register the domain wufkweyy3uaxb.com"),
            "{text}"
        );
        assert!(text.contains("DNS:cable.wufkweyy3uaxb.com"), "{text}");
        assert!(text.contains("--domain-id 266"), "{text}");
        let google = resolve("cable.ua5v.com").unwrap().to_string();
        assert!(google.contains("Google's relay"), "{google}");
        assert!(!google.contains("Register"), "{google}");
    }

    #[test]
    fn lists_filter_by_tld_and_refuse_others() {
        let all = list(0, 8, &[]).unwrap();
        assert_eq!(all.len(), 8);
        assert_eq!(all[0].id, 256);
        assert!(all.windows(2).all(|w| w[0].id < w[1].id));
        let org = list(300, 5, &["org".to_owned()]).unwrap();
        assert_eq!(org.len(), 5);
        assert!(org.iter().all(|n| n.host.ends_with(".org") && n.id >= 300));
        assert_eq!(
            list(256, 1, &["xyz".to_owned()]),
            Err(DomainError::Tld("xyz".into()))
        );
        // The last ids: the list ends instead of wrapping around.
        assert_eq!(list(u16::MAX, 10, &[]).unwrap().len(), 1);
    }

    #[test]
    fn bad_questions_are_errors() {
        assert_eq!(resolve("7"), Err(DomainError::Unassigned(7)));
        assert!(matches!(
            resolve("relay.example.com"),
            Err(DomainError::NotAName(_))
        ));
        assert!(matches!(resolve(""), Err(DomainError::NotAName(_))));
        assert!(matches!(resolve("99999"), Err(DomainError::NotAName(_))));
    }
}
