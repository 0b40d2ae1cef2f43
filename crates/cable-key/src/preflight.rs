//! Hosts' pre-flight probes, answered without the phone, and the lists they probed handed
//! to the phone with the real request.
//!
//! Before a getAssertion with an allow list, or a makeCredential with an exclude list,
//! many hosts first ask the key silently (`up: false`) which of the listed credentials it
//! holds, then send the real request with only the one it named (CTAP 2.2 §6.2.2's
//! "pre-flight"; python-fido2 2.x and Firefox's authenticator-rs always do). The key
//! cannot know what the phone
//! holds without reaching it, and a silent request must never show a QR code. Answering
//! "none" breaks both lists: python-fido2 then signs in with a placeholder credential the
//! phone cannot know, Firefox gives up without asking the phone at all, and both drop the
//! exclude list, so the phone could register the same person twice.
//!
//! So the key answers every probe of a list with "I hold the first of these", and
//! remembers the whole list for that relying party. When the real request follows with
//! credentials taken from that list, the phone gets the whole list back and decides
//! itself: it signs with the credential it holds, or refuses an excluded registration.
//! The probe's answer is an assertion without user presence and without a signature (an
//! empty one), which hosts read only for the credential it names; a relying party never
//! accepts an assertion without the user-present flag.

use std::collections::VecDeque;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use cable_proto::cbor::{self, Value};
use sha2::{Digest, Sha256};

use crate::classify::Kind;
use crate::status;

/// How long a probed list is kept for the request that follows it. Hosts send the real
/// request right after their probes, or after asking the person for a PIN or a touch.
pub const PROBE_MEMORY: Duration = Duration::from_secs(120);

/// The most credentials remembered for one relying party, as many as the key's getInfo
/// lets a host send in one list ([`cable_uhid::info::MAX_CREDENTIAL_COUNT_IN_LIST`]).
pub const MAX_REMEMBERED: usize = cable_uhid::info::MAX_CREDENTIAL_COUNT_IN_LIST as usize;

/// The most relying parties remembered at once; the oldest is forgotten first.
pub const MAX_RELYING_PARTIES: usize = 8;

/// The parameter that holds the list: excludeList (0x05) of makeCredential, allowList
/// (0x03) of getAssertion.
fn list_key(kind: Kind) -> u64 {
    match kind {
        Kind::Register => 0x05,
        Kind::SignIn => 0x03,
    }
}

/// A credential list as the request carried it: PublicKeyCredentialDescriptor maps, each
/// with its id. `None` when the list is not of that form (the request is malformed).
pub fn descriptors(list: &Value) -> Option<Vec<Value>> {
    let list = list.as_array()?;
    list.iter()
        .map(|d| credential_id(d).map(|_| d.clone()))
        .collect()
}

fn credential_id(descriptor: &Value) -> Option<&[u8]> {
    descriptor.as_map()?.get(&text("id"))?.as_bytes()
}

fn text(s: &str) -> Value {
    Value::Text(s.into())
}

/// What the key remembers of one relying party's probes.
#[derive(Debug)]
struct Probed {
    rp_id: String,
    credentials: Vec<Value>,
    at: Instant,
}

impl Probed {
    fn holds(&self, id: &[u8]) -> bool {
        self.credentials
            .iter()
            .any(|d| credential_id(d) == Some(id))
    }
}

/// The probed lists, newest last.
#[derive(Debug, Default)]
pub struct Preflight {
    probed: Mutex<VecDeque<Probed>>,
}

impl Preflight {
    /// No probes yet.
    pub fn new() -> Preflight {
        Preflight::default()
    }

    fn probed(&self) -> std::sync::MutexGuard<'_, VecDeque<Probed>> {
        self.probed.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The answer to a silent getAssertion for `rp_id` listing `credentials` (not empty),
    /// which are remembered until `now` + [`PROBE_MEMORY`].
    pub fn probe(&self, rp_id: &str, credentials: &[Value], now: Instant) -> Vec<u8> {
        let Some(first) = credentials.first() else {
            return vec![status::NO_CREDENTIALS];
        };
        {
            let mut probed = self.probed();
            probed.retain(|p| now.saturating_duration_since(p.at) < PROBE_MEMORY);
            let index = match probed.iter().position(|p| p.rp_id == rp_id) {
                Some(i) => i,
                None => {
                    if probed.len() == MAX_RELYING_PARTIES {
                        probed.pop_front();
                    }
                    probed.push_back(Probed {
                        rp_id: rp_id.to_owned(),
                        credentials: Vec::new(),
                        at: now,
                    });
                    probed.len() - 1
                }
            };
            let entry = &mut probed[index];
            entry.at = now;
            for d in credentials {
                let id = credential_id(d).unwrap_or_default();
                if entry.credentials.len() < MAX_REMEMBERED && !entry.holds(id) {
                    entry.credentials.push(d.clone());
                }
            }
        }
        probe_answer(rp_id, first)
    }

    /// `params` of a request of `kind` with user presence, with its list widened to every
    /// credential probed for `rp_id`, when the list it carries was taken from those probes;
    /// `None` leaves the request as the host built it. The probes are forgotten once used.
    pub fn widen(&self, kind: Kind, rp_id: &str, params: &[u8], now: Instant) -> Option<Vec<u8>> {
        let mut probed = self.probed();
        probed.retain(|p| now.saturating_duration_since(p.at) < PROBE_MEMORY);
        let index = probed.iter().position(|p| p.rp_id == rp_id)?;
        let value = cbor::decode_any_key_order(params).ok()?;
        let mut map = value.as_map()?.clone();
        let key = Value::Unsigned(list_key(kind));
        let sent = descriptors(map.get(&key)?)?;
        // A list the host did not take from the probes is its own business.
        let from_probes = !sent.is_empty()
            && sent
                .iter()
                .all(|d| credential_id(d).is_some_and(|id| probed[index].holds(id)));
        if !from_probes {
            return None;
        }
        let entry = probed.remove(index)?;
        let mut widened = sent;
        for d in entry.credentials {
            let id = credential_id(&d).unwrap_or_default();
            if !widened.iter().any(|s| credential_id(s) == Some(id)) {
                widened.push(d);
            }
        }
        let sent_len = map
            .get(&key)
            .and_then(Value::as_array)
            .map_or(0, <[_]>::len);
        tracing::debug!(
            rp_id,
            sent = sent_len,
            widened = widened.len(),
            "the phone gets every credential the host probed"
        );
        map.insert(key, Value::Array(widened));
        Some(Value::Map(map).to_bytes())
    }
}

/// CTAP2_OK and an assertion naming `descriptor`: authenticator data with the relying
/// party's hash, no flags and a zero counter; an empty signature.
fn probe_answer(rp_id: &str, descriptor: &Value) -> Vec<u8> {
    let id = credential_id(descriptor).unwrap_or_default().to_vec();
    let kind = descriptor
        .as_map()
        .and_then(|m| m.get(&text("type")))
        .and_then(Value::as_text)
        .unwrap_or("public-key");
    let mut auth_data = Sha256::digest(rp_id.as_bytes()).to_vec();
    auth_data.push(0x00);
    auth_data.extend_from_slice(&0u32.to_be_bytes());
    let mut out = vec![status::OK];
    Value::map([
        (
            Value::Unsigned(0x01),
            Value::map([(text("id"), Value::Bytes(id)), (text("type"), text(kind))]),
        ),
        (Value::Unsigned(0x02), Value::Bytes(auth_data)),
        (Value::Unsigned(0x03), Value::Bytes(Vec::new())),
    ])
    .encode_into(&mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cred(id: u8) -> Value {
        Value::map([
            (text("id"), Value::Bytes(vec![id; 16])),
            (text("type"), text("public-key")),
        ])
    }

    fn request(kind: Kind, rp_id: &str, list: Option<Vec<Value>>) -> Vec<u8> {
        let mut entries = match kind {
            Kind::SignIn => vec![
                (Value::Unsigned(1), text(rp_id)),
                (Value::Unsigned(2), Value::Bytes(vec![5; 32])),
            ],
            Kind::Register => vec![
                (Value::Unsigned(1), Value::Bytes(vec![5; 32])),
                (Value::Unsigned(2), Value::map([(text("id"), text(rp_id))])),
            ],
        };
        if let Some(list) = list {
            entries.push((Value::Unsigned(list_key(kind)), Value::Array(list)));
        }
        Value::map(entries).to_bytes()
    }

    fn list_of(kind: Kind, params: &[u8]) -> Vec<Value> {
        let value = cbor::decode(params).expect("CBOR");
        cbor::map_get(value.as_map().expect("map"), list_key(kind))
            .and_then(Value::as_array)
            .expect("a list")
            .to_vec()
    }

    #[test]
    fn a_probe_is_answered_with_its_first_credential() {
        let preflight = Preflight::new();
        let answer = preflight.probe("example.com", &[cred(1), cred(2)], Instant::now());
        assert_eq!(answer[0], status::OK);
        let value = cbor::decode(&answer[1..]).expect("canonical CBOR");
        let map = value.as_map().expect("a map");
        assert_eq!(cbor::map_get(map, 1), Some(&cred(1)));
        let auth_data = cbor::map_get(map, 2)
            .and_then(Value::as_bytes)
            .expect("authData");
        assert_eq!(auth_data.len(), 37);
        assert_eq!(auth_data[..32], Sha256::digest(b"example.com")[..]);
        assert_eq!(auth_data[32], 0, "no user presence, no verification");
        assert_eq!(cbor::map_get(map, 3), Some(&Value::Bytes(Vec::new())));
    }

    #[test]
    fn the_real_request_carries_every_probed_credential() {
        for kind in [Kind::SignIn, Kind::Register] {
            let preflight = Preflight::new();
            let now = Instant::now();
            preflight.probe("example.com", &[cred(1), cred(2), cred(3)], now);
            let narrowed = request(kind, "example.com", Some(vec![cred(1)]));
            let widened = preflight
                .widen(kind, "example.com", &narrowed, now)
                .expect("widened");
            assert_eq!(list_of(kind, &widened), [cred(1), cred(2), cred(3)]);
            // Everything else stays as the host built it.
            let mut back = cbor::decode(&widened)
                .expect("CBOR")
                .as_map()
                .expect("map")
                .clone();
            back.insert(Value::Unsigned(list_key(kind)), Value::Array(vec![cred(1)]));
            assert_eq!(Value::Map(back).to_bytes(), narrowed);
            // Used once.
            assert_eq!(preflight.widen(kind, "example.com", &narrowed, now), None);
        }
    }

    #[test]
    fn chunked_probes_add_up() {
        let preflight = Preflight::new();
        let now = Instant::now();
        preflight.probe("example.com", &[cred(1), cred(2)], now);
        preflight.probe("example.com", &[cred(2), cred(3)], now);
        let widened = preflight
            .widen(
                Kind::SignIn,
                "example.com",
                &request(Kind::SignIn, "example.com", Some(vec![cred(3)])),
                now,
            )
            .expect("widened");
        assert_eq!(list_of(Kind::SignIn, &widened), [cred(3), cred(1), cred(2)]);
    }

    #[test]
    fn requests_not_taken_from_the_probes_go_as_they_are() {
        let preflight = Preflight::new();
        let now = Instant::now();
        preflight.probe("example.com", &[cred(1), cred(2)], now);
        for params in [
            // Another relying party.
            request(Kind::SignIn, "other.example", Some(vec![cred(1)])),
            // A credential nobody probed.
            request(Kind::SignIn, "example.com", Some(vec![cred(1), cred(9)])),
            // A passkey sign-in (no list) and an empty list.
            request(Kind::SignIn, "example.com", None),
            request(Kind::SignIn, "example.com", Some(vec![])),
            // Not a request at all.
            vec![0xff],
        ] {
            let rp = if params == request(Kind::SignIn, "other.example", Some(vec![cred(1)])) {
                "other.example"
            } else {
                "example.com"
            };
            assert_eq!(preflight.widen(Kind::SignIn, rp, &params, now), None);
        }
        // The probes are still there for the request that does follow them.
        let narrowed = request(Kind::SignIn, "example.com", Some(vec![cred(2)]));
        assert!(preflight
            .widen(Kind::SignIn, "example.com", &narrowed, now)
            .is_some());
    }

    #[test]
    fn probes_are_forgotten_after_a_while() {
        let preflight = Preflight::new();
        let then = Instant::now();
        preflight.probe("example.com", &[cred(1), cred(2)], then);
        let narrowed = request(Kind::SignIn, "example.com", Some(vec![cred(1)]));
        assert_eq!(
            preflight.widen(Kind::SignIn, "example.com", &narrowed, then + PROBE_MEMORY),
            None
        );
    }

    #[test]
    fn memory_is_bounded() {
        let preflight = Preflight::new();
        let now = Instant::now();
        let many: Vec<Value> = (0..=255).map(cred).collect();
        preflight.probe("example.com", &many, now);
        for n in 0..=MAX_RELYING_PARTIES {
            preflight.probe(&format!("rp{n}.example"), &[cred(1)], now);
        }
        let probed = preflight.probed();
        assert_eq!(probed.len(), MAX_RELYING_PARTIES);
        assert!(probed.iter().all(|p| p.credentials.len() <= MAX_REMEMBERED));
        assert!(
            !probed.iter().any(|p| p.rp_id == "example.com"),
            "the oldest went first"
        );
    }

    #[test]
    fn descriptors_must_name_an_id() {
        assert_eq!(
            descriptors(&Value::Array(vec![cred(1)])),
            Some(vec![cred(1)])
        );
        assert_eq!(descriptors(&Value::Array(vec![text("x")])), None);
        assert_eq!(
            descriptors(&Value::Array(vec![Value::map([(
                text("type"),
                text("public-key")
            )])])),
            None
        );
        assert_eq!(descriptors(&Value::Unsigned(1)), None);
    }
}
