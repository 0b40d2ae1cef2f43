//! The caller's origin, the relying party id it may claim, and `clientDataJSON`.
//!
//! `clientDataJSON` is produced in the exact member order of WebAuthn's JSON-compatible
//! serialisation (`type`, `challenge`, `origin`, `crossOrigin`) so that relying parties using
//! the spec's limited verification algorithm accept it. Its SHA-256 is what the phone signs.

use sha2::{Digest, Sha256};
use url::{Host, Url};

use super::options::b64url;
use crate::error::ClientError;

/// A web origin the ceremony runs for: `https://host[:port]`, or `http://localhost[:port]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    serialized: String,
    host: String,
    is_ip: bool,
}

impl Origin {
    /// Parses an origin (a URL with a path is reduced to its origin).
    pub fn parse(origin: &str) -> Result<Self, ClientError> {
        let bad = || ClientError::BadOrigin {
            origin: origin.to_owned(),
        };
        let url = Url::parse(origin).map_err(|_| bad())?;
        let host = url.host().ok_or_else(bad)?;
        let (host, is_ip) = match host {
            Host::Domain(d) => (d.to_ascii_lowercase(), false),
            Host::Ipv4(ip) => (ip.to_string(), true),
            Host::Ipv6(ip) => (ip.to_string(), true),
        };
        let secure = match url.scheme() {
            "https" => true,
            // Browsers treat loopback as a secure context.
            "http" => host == "localhost" || host.ends_with(".localhost") || host == "127.0.0.1",
            _ => false,
        };
        if !secure {
            return Err(bad());
        }
        Ok(Origin {
            serialized: url.origin().ascii_serialization(),
            host,
            is_ip,
        })
    }

    /// The serialised origin, e.g. `https://login.example.com`.
    pub fn as_str(&self) -> &str {
        &self.serialized
    }

    /// The host (lower-case domain or IP literal).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// Resolves the relying party id: the one the options name, else the origin's host.
    ///
    /// The id must equal the host or be a parent domain of it at a label boundary, and must
    /// not be a public suffix (`co.uk`, `github.io`), as browsers require: the public suffix
    /// list is the `psl` crate's copy, current as of its release (`cargo update -p psl`
    /// brings a newer list). Single-label ids are accepted only when they equal the host
    /// (`localhost`, an intranet name).
    pub fn rp_id_for(&self, requested: Option<&str>) -> Result<String, ClientError> {
        let rp = requested.map_or_else(|| self.host.clone(), str::to_ascii_lowercase);
        if !self.is_ip && rp != "localhost" && is_public_suffix(&rp) {
            return Err(ClientError::RpIdIsPublicSuffix {
                rp_id: requested.map_or_else(|| self.host.clone(), str::to_owned),
            });
        }
        let Some(rp_id) = requested else {
            return Ok(rp);
        };
        let ok = rp == self.host
            || (!self.is_ip
                && rp.contains('.')
                && !rp.starts_with('.')
                && self.host.ends_with(&format!(".{rp}")));
        if ok {
            Ok(rp)
        } else {
            Err(ClientError::RpIdMismatch {
                rp_id: rp_id.to_owned(),
                origin: self.serialized.clone(),
            })
        }
    }
}

/// The most registrable-domain labels a related-origins document may name before further
/// ones are ignored (WebAuthn Level 3 §5.11.1: at least 5; browsers use 5).
pub const MAX_RELATED_ORIGIN_LABELS: usize = 5;

impl Origin {
    /// As [`Self::rp_id_for`], and when the relying party id is not this origin's to claim,
    /// as browsers do with related origins (WebAuthn Level 3 §5.11): `well_known` is the
    /// document the caller fetched from `https://{rpId}/.well-known/webauthn`, a JSON object
    /// whose `origins` lists the origins allowed to use the id. This origin must be among
    /// them before the list names more than [`MAX_RELATED_ORIGIN_LABELS`] distinct
    /// registrable-domain labels (`example` of `login.example.co.uk`).
    pub fn rp_id_for_related(
        &self,
        requested: Option<&str>,
        well_known: &str,
    ) -> Result<String, ClientError> {
        let err = match self.rp_id_for(requested) {
            Ok(rp_id) => return Ok(rp_id),
            Err(e @ ClientError::RpIdMismatch { .. }) => e,
            Err(e) => return Err(e),
        };
        let Ok(document) = serde_json::from_str::<serde_json::Value>(well_known) else {
            return Err(err);
        };
        let Some(origins) = document
            .get("origins")
            .and_then(serde_json::Value::as_array)
        else {
            return Err(err);
        };
        let mut labels_seen: Vec<String> = Vec::new();
        for item in origins {
            let Some(item) = item.as_str() else {
                return Err(err);
            };
            let Ok(url) = Url::parse(item) else { continue };
            let Some(Host::Domain(domain)) = url.host() else {
                continue;
            };
            let Some(label) = registrable_label(&domain.to_ascii_lowercase()) else {
                continue;
            };
            if labels_seen.len() >= MAX_RELATED_ORIGIN_LABELS && !labels_seen.contains(&label) {
                continue;
            }
            if url.origin().ascii_serialization() == self.serialized {
                return Ok(requested.map_or_else(|| self.host.clone(), str::to_ascii_lowercase));
            }
            if !labels_seen.contains(&label) {
                labels_seen.push(label);
            }
        }
        Err(err)
    }
}

/// The first label of `domain`'s registrable domain (`example` for `a.example.co.uk`); none
/// for a public suffix itself or a domain under no known suffix.
fn registrable_label(domain: &str) -> Option<String> {
    let registrable = psl::domain(domain.as_bytes())?;
    if !registrable.suffix().is_known() {
        return None;
    }
    let registrable = std::str::from_utf8(registrable.as_bytes()).ok()?;
    registrable.split('.').next().map(str::to_owned)
}

/// Whether `domain` is exactly a suffix the public suffix list names (ICANN or private
/// section); the list's implicit `*` rule for unknown top-level labels does not count.
fn is_public_suffix(domain: &str) -> bool {
    let domain = domain.trim_end_matches('.');
    psl::suffix(domain.as_bytes())
        .is_some_and(|s| s.is_known() && s.as_bytes() == domain.as_bytes())
}

/// Which ceremony the client data is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CeremonyKind {
    /// `webauthn.create`
    Create,
    /// `webauthn.get`
    Get,
}

impl CeremonyKind {
    fn type_str(self) -> &'static str {
        match self {
            CeremonyKind::Create => "webauthn.create",
            CeremonyKind::Get => "webauthn.get",
        }
    }
}

/// Who asks for a ceremony, beyond its origin: what decides the relying party id check and
/// the client data, for [`prepare`].
#[derive(Debug)]
pub(crate) enum Caller<'a> {
    /// A page of the origin itself.
    SameOrigin,
    /// A frame inside a page of this top origin.
    Frame(&'a str),
    /// The origin, allowed by the relying party's `/.well-known/webauthn` document.
    Related(&'a str),
    /// A caller that serialised `clientDataJSON` itself.
    OwnClientData(Vec<u8>),
}

/// The relying party id and the client data of a ceremony of `kind` that `origin` asks for,
/// with the id the options name (if any), checked as `caller` requires.
pub(crate) fn prepare(
    kind: CeremonyKind,
    challenge: &[u8],
    requested_rp_id: Option<&str>,
    origin: &str,
    caller: Caller<'_>,
) -> Result<(String, ClientData), ClientError> {
    let origin = Origin::parse(origin)?;
    let rp_id = match &caller {
        Caller::Related(well_known) => origin.rp_id_for_related(requested_rp_id, well_known)?,
        _ => origin.rp_id_for(requested_rp_id)?,
    };
    let client_data = match caller {
        Caller::SameOrigin | Caller::Related(_) => ClientData::new(kind, challenge, &origin),
        Caller::Frame(top) => {
            ClientData::framed(kind, challenge, &origin, Some(&Origin::parse(top)?))
        }
        Caller::OwnClientData(json) => ClientData::from_caller(kind, challenge, &origin, json)?,
    };
    Ok((rp_id, client_data))
}

/// `clientDataJSON` bytes and their SHA-256.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientData {
    json: Vec<u8>,
    hash: [u8; 32],
}

impl ClientData {
    /// Builds the client data for a same-origin ceremony.
    pub fn new(kind: CeremonyKind, challenge: &[u8], origin: &Origin) -> Self {
        Self::framed(kind, challenge, origin, None)
    }

    /// Builds the client data for a ceremony that `origin` asks for from inside a page of
    /// `top_origin` (an iframe): `crossOrigin` is true and `topOrigin` names the page when
    /// the two differ, as WebAuthn Level 3 serialises it (§5.8.1.1); the same as
    /// [`Self::new`] when they do not, or when there is no top origin.
    pub fn framed(
        kind: CeremonyKind,
        challenge: &[u8],
        origin: &Origin,
        top_origin: Option<&Origin>,
    ) -> Self {
        let mut json = format!(
            "{{\"type\":{},\"challenge\":{},\"origin\":{},",
            json_string(kind.type_str()),
            json_string(&b64url(challenge)),
            json_string(origin.as_str()),
        );
        match top_origin.filter(|top| top.as_str() != origin.as_str()) {
            Some(top) => {
                json.push_str("\"crossOrigin\":true,\"topOrigin\":");
                json.push_str(&json_string(top.as_str()));
                json.push('}');
            }
            None => json.push_str("\"crossOrigin\":false}"),
        }
        let json = json.into_bytes();
        let hash = Sha256::digest(&json).into();
        ClientData { json, hash }
    }

    /// Client data the caller serialised itself (a browser, which also decides members such
    /// as `topOrigin` or extensions of its own), checked against the ceremony: it must be a
    /// JSON object whose `type`, `challenge` and `origin` are this ceremony's. The phone
    /// signs over its SHA-256 and the response carries these bytes as they are.
    pub fn from_caller(
        kind: CeremonyKind,
        challenge: &[u8],
        origin: &Origin,
        json: Vec<u8>,
    ) -> Result<Self, ClientError> {
        let parsed: serde_json::Value =
            serde_json::from_slice(&json).map_err(|_| ClientError::ClientDataMismatch {
                member: "(not JSON)",
            })?;
        let member = |name: &'static str| parsed.get(name).and_then(serde_json::Value::as_str);
        if member("type") != Some(kind.type_str()) {
            return Err(ClientError::ClientDataMismatch { member: "type" });
        }
        if member("challenge") != Some(b64url(challenge).as_str()) {
            return Err(ClientError::ClientDataMismatch {
                member: "challenge",
            });
        }
        if member("origin") != Some(origin.as_str()) {
            return Err(ClientError::ClientDataMismatch { member: "origin" });
        }
        let hash = Sha256::digest(&json).into();
        Ok(ClientData { json, hash })
    }

    /// The exact bytes handed to the relying party.
    pub fn json(&self) -> &[u8] {
        &self.json
    }

    /// SHA-256 of [`Self::json`]; the `clientDataHash` of the CTAP request.
    pub fn hash(&self) -> &[u8; 32] {
        &self.hash
    }
}

/// WebAuthn's CCDToString: quote, escape `"` and `\`, and `\uXXXX` for control characters.
fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_data_json_has_spec_member_order() {
        let origin = Origin::parse("https://example.com").unwrap();
        let cd = ClientData::new(CeremonyKind::Create, &[0xfb, 0xff], &origin);
        assert_eq!(
            std::str::from_utf8(cd.json()).unwrap(),
            r#"{"type":"webauthn.create","challenge":"-_8","origin":"https://example.com","crossOrigin":false}"#
        );
        let expected: [u8; 32] = Sha256::digest(cd.json()).into();
        assert_eq!(cd.hash(), &expected);
        let get = ClientData::new(CeremonyKind::Get, &[1], &origin);
        assert!(std::str::from_utf8(get.json())
            .unwrap()
            .starts_with(r#"{"type":"webauthn.get","challenge":"AQ","#));
    }

    #[test]
    fn a_frame_of_another_origin_says_so() {
        let origin = Origin::parse("https://pay.example").unwrap();
        let top = Origin::parse("https://shop.example:8443/cart").unwrap();
        let cd = ClientData::framed(CeremonyKind::Get, &[0xfb, 0xff], &origin, Some(&top));
        assert_eq!(
            std::str::from_utf8(cd.json()).unwrap(),
            r#"{"type":"webauthn.get","challenge":"-_8","origin":"https://pay.example","crossOrigin":true,"topOrigin":"https://shop.example:8443"}"#
        );
        // A frame of its own origin is not cross-origin.
        let same = ClientData::framed(CeremonyKind::Get, &[1], &origin, Some(&origin));
        assert_eq!(same, ClientData::new(CeremonyKind::Get, &[1], &origin));
        assert_eq!(
            ClientData::framed(CeremonyKind::Get, &[1], &origin, None),
            ClientData::new(CeremonyKind::Get, &[1], &origin)
        );
    }

    #[test]
    fn client_data_a_caller_built_is_checked_and_kept_as_it_is() {
        let origin = Origin::parse("https://example.com").unwrap();
        let own = br#"{"type":"webauthn.get","challenge":"AQ","origin":"https://example.com","crossOrigin":false,"other_keys_can_be_added_here":"x"}"#;
        let cd = ClientData::from_caller(CeremonyKind::Get, &[1], &origin, own.to_vec()).unwrap();
        assert_eq!(cd.json(), own);
        assert_eq!(cd.hash(), &<[u8; 32]>::from(Sha256::digest(own)));
        for (json, member) in [
            (&b"not json"[..], "(not JSON)"),
            (
                br#"{"type":"webauthn.create","challenge":"AQ","origin":"https://example.com"}"#,
                "type",
            ),
            (
                br#"{"type":"webauthn.get","challenge":"Ag","origin":"https://example.com"}"#,
                "challenge",
            ),
            (
                br#"{"type":"webauthn.get","challenge":"AQ","origin":"https://evil.example"}"#,
                "origin",
            ),
            (br#"["webauthn.get"]"#, "type"),
        ] {
            match ClientData::from_caller(CeremonyKind::Get, &[1], &origin, json.to_vec()) {
                Err(ClientError::ClientDataMismatch { member: m }) => assert_eq!(m, member),
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn related_origins_as_browsers_check_them() {
        let shop = Origin::parse("https://shop.example.co.uk").unwrap();
        let doc = r#"{"origins": ["https://example.com", "https://shop.example.co.uk"]}"#;
        assert_eq!(
            shop.rp_id_for_related(Some("example.com"), doc).unwrap(),
            "example.com"
        );
        // Its own id needs no document.
        assert_eq!(
            shop.rp_id_for_related(Some("example.co.uk"), "not json")
                .unwrap(),
            "example.co.uk"
        );
        // Not listed, a document of another shape, or listed too late.
        let refused = |doc: &str| {
            matches!(
                shop.rp_id_for_related(Some("example.com"), doc),
                Err(ClientError::RpIdMismatch { .. })
            )
        };
        assert!(refused(r#"{"origins": ["https://example.com"]}"#));
        assert!(refused(r#"{"origins": "https://shop.example.co.uk"}"#));
        assert!(refused(r#"{"origins": [1, "https://shop.example.co.uk"]}"#));
        assert!(refused("[]"));
        let late = r#"{"origins": ["https://a.com", "https://b.com", "https://c.net",
            "https://d.org", "https://e.io", "https://shop.example.co.uk"]}"#;
        assert!(refused(late));
        // Origins of labels already seen do not count against the limit.
        let same_labels = r#"{"origins": ["https://a.com", "https://a.net", "https://b.com",
            "https://c.net", "https://d.org", "https://e.io", "https://www.a.org",
            "https://shop.example.co.uk"]}"#;
        assert!(refused(same_labels), "example is the sixth label");
        let within = r#"{"origins": ["https://a.com", "https://a.net", "https://b.com",
            "https://c.net", "https://shop.example.co.uk"]}"#;
        assert!(!refused(within));
        // An exact origin, scheme and port included.
        assert!(refused(r#"{"origins": ["http://shop.example.co.uk"]}"#));
        assert!(refused(
            r#"{"origins": ["https://shop.example.co.uk:8443"]}"#
        ));
        // A public suffix stays refused, whatever the document says.
        assert!(matches!(
            shop.rp_id_for_related(Some("co.uk"), doc),
            Err(ClientError::RpIdIsPublicSuffix { .. })
        ));
    }

    #[test]
    fn json_string_escapes() {
        assert_eq!(json_string("a\"b\\c\n"), r#""a\"b\\c\u000a""#);
    }

    #[test]
    fn origins() {
        let o = Origin::parse("https://Login.Example.com:8443/path?q").unwrap();
        assert_eq!(o.as_str(), "https://login.example.com:8443");
        assert_eq!(o.host(), "login.example.com");
        assert!(Origin::parse("http://localhost:3000").is_ok());
        assert!(Origin::parse("http://127.0.0.1:3000").is_ok());
        for bad in [
            "http://example.com",
            "ftp://example.com",
            "not a url",
            "file:///x",
            "",
        ] {
            assert!(
                matches!(Origin::parse(bad), Err(ClientError::BadOrigin { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn rp_id_must_belong_to_origin() {
        let o = Origin::parse("https://login.example.com").unwrap();
        assert_eq!(o.rp_id_for(None).unwrap(), "login.example.com");
        assert_eq!(o.rp_id_for(Some("example.com")).unwrap(), "example.com");
        assert_eq!(
            o.rp_id_for(Some("Login.Example.COM")).unwrap(),
            "login.example.com"
        );
        for bad in [
            "ample.com",
            "evil.com",
            "other.login.example.com",
            ".example.com",
        ] {
            assert!(
                matches!(
                    o.rp_id_for(Some(bad)),
                    Err(ClientError::RpIdMismatch { .. })
                ),
                "{bad}"
            );
        }
        let local = Origin::parse("http://localhost:8080").unwrap();
        assert_eq!(local.rp_id_for(Some("localhost")).unwrap(), "localhost");
        let ip = Origin::parse("https://10.1.2.3").unwrap();
        assert!(ip.rp_id_for(Some("2.3")).is_err());
    }

    /// Public suffixes are refused as relying party ids, as browsers refuse them, whether the
    /// options name them or the origin's host is one; registrable domains under them are fine.
    #[test]
    fn public_suffixes_are_not_relying_parties() {
        let shop = Origin::parse("https://shop.example.co.uk").unwrap();
        assert_eq!(
            shop.rp_id_for(Some("example.co.uk")).unwrap(),
            "example.co.uk"
        );
        let pages = Origin::parse("https://alice.github.io").unwrap();
        assert_eq!(pages.rp_id_for(None).unwrap(), "alice.github.io");
        for (origin, rp) in [
            ("https://shop.example.co.uk", Some("co.uk")),
            ("https://co.uk", Some("co.uk")),
            ("https://co.uk", None),
            ("https://alice.github.io", Some("github.io")),
            ("https://login.example.com", Some("com")),
            ("https://login.example.com", Some("COM")),
        ] {
            let o = Origin::parse(origin).unwrap();
            assert!(
                matches!(o.rp_id_for(rp), Err(ClientError::RpIdIsPublicSuffix { .. })),
                "{origin} {rp:?}"
            );
        }
        // An unknown top-level label is no listed suffix: an intranet host is its own RP.
        let intranet = Origin::parse("https://wiki.corp").unwrap();
        assert_eq!(intranet.rp_id_for(None).unwrap(), "wiki.corp");
    }
}
