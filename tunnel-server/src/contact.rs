//! Contact ids: a phone's Web Push subscription, sealed under a relay key.
//!
//! The relay keeps no database of linked phones. A phone registers its subscription once
//! (`POST /cable/push/register`) and gets back a contact id that is the subscription itself,
//! encrypted and authenticated with AES-256-GCM under a key every instance shares:
//!
//! ```text
//! contact id = key id (1 byte) ‖ nonce (12 random bytes) ‖ AES-256-GCM(key, nonce, plaintext)
//!              with associated data "cable contact id v1" ‖ key id
//! plaintext  = p256dh (65 bytes, uncompressed P-256 point) ‖ auth (16 bytes) ‖ endpoint (UTF-8)
//! ```
//!
//! The key id comes first so that keys can rotate: new ids are sealed under the current key,
//! and ids sealed under older keys still open until their key's `until` time (or until the
//! operator removes the key). Nothing about an id is revealed to its holder beyond its length.
//!
//! # Key file (`--contact-key-file`)
//! UTF-8 text, one key per line, the current key (which seals new ids) first; blank lines and
//! lines starting with `#` are ignored:
//!
//! ```text
//! # <key id 0-255> <64 hex digits: 32-byte AES-256 key> [until=<unix seconds>]
//! 2 6b1f…(64 hex)…
//! 1 09ac…(64 hex)… until=1767225600
//! ```
//!
//! `cable-tunnel-server gen-contact-key --id N` prints a fresh line. The current key must not
//! carry `until`; key ids must be unique.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use rand_core::CryptoRngCore;
use zeroize::Zeroizing;

use crate::error::RelayError;

const AAD_PREFIX: &[u8] = b"cable contact id v1";
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;
const P256DH_LEN: usize = 65;
const AUTH_LEN: usize = 16;
/// Longest endpoint URL accepted at registration (push services use a few hundred bytes).
pub const MAX_ENDPOINT_LEN: usize = 1024;
/// Largest registration body read (a browser's subscription JSON is well under 1 KiB).
pub const MAX_REGISTER_BODY: usize = 4096;

/// A Web Push subscription (RFC 8030 endpoint, RFC 8291 keys). The auth secret is zeroized on
/// drop and `Debug` shows the endpoint's host only: the path is the push service's capability.
#[derive(Clone, PartialEq, Eq)]
pub struct Subscription {
    endpoint: String,
    p256dh: [u8; P256DH_LEN],
    auth: Zeroizing<[u8; AUTH_LEN]>,
}

impl fmt::Debug for Subscription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subscription")
            .field("host", &self.host())
            .finish_non_exhaustive()
    }
}

/// Why a registration body was refused (answered with 400 and this text).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum RegisterError {
    /// The body is not the JSON of a push subscription.
    #[error(
        "body is not a push subscription JSON object with endpoint and keys.p256dh, keys.auth"
    )]
    NotJson,
    /// The endpoint is not an absolute URL with a host, or is too long.
    #[error("endpoint is not an absolute URL with a host (at most 1024 bytes)")]
    BadEndpoint,
    /// The endpoint is not `https://`.
    #[error("endpoint must be https")]
    InsecureEndpoint,
    /// `keys.p256dh` is not base64url of an uncompressed P-256 point.
    #[error("keys.p256dh must be base64url of a 65-byte uncompressed P-256 point")]
    BadP256dh,
    /// `keys.auth` is not base64url of 16 bytes.
    #[error("keys.auth must be base64url of 16 bytes")]
    BadAuth,
    /// The body is larger than [`MAX_REGISTER_BODY`].
    #[error("body larger than 4096 bytes")]
    TooLarge,
    /// No usable `Content-Length` (chunked bodies are not accepted).
    #[error("a Content-Length header is required")]
    NoLength,
}

impl RegisterError {
    pub(crate) const ALL: [RegisterError; 7] = [
        Self::NotJson,
        Self::BadEndpoint,
        Self::InsecureEndpoint,
        Self::BadP256dh,
        Self::BadAuth,
        Self::TooLarge,
        Self::NoLength,
    ];

    /// Label value used in metrics and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NotJson => "not_json",
            Self::BadEndpoint => "bad_endpoint",
            Self::InsecureEndpoint => "insecure_endpoint",
            Self::BadP256dh => "bad_p256dh",
            Self::BadAuth => "bad_auth",
            Self::TooLarge => "too_large",
            Self::NoLength => "no_length",
        }
    }
}

#[derive(serde::Deserialize)]
struct SubscriptionJson {
    endpoint: String,
    keys: KeysJson,
}

#[derive(serde::Deserialize)]
struct KeysJson {
    p256dh: String,
    auth: Zeroizing<String>,
}

/// Browsers emit unpadded base64url; padded input is accepted too.
fn b64url(text: &str) -> Option<Zeroizing<Vec<u8>>> {
    URL_SAFE_NO_PAD
        .decode(text.trim_end_matches('='))
        .ok()
        .map(Zeroizing::new)
}

impl Subscription {
    /// Builds a subscription from its parts, checking them as a registration does.
    pub fn new(
        endpoint: &str,
        p256dh: &[u8],
        auth: &[u8],
        allow_insecure: bool,
    ) -> Result<Self, RegisterError> {
        let uri: http::Uri = endpoint.parse().map_err(|_| RegisterError::BadEndpoint)?;
        if endpoint.len() > MAX_ENDPOINT_LEN || uri.host().is_none_or(str::is_empty) {
            return Err(RegisterError::BadEndpoint);
        }
        match uri.scheme_str() {
            Some("https") => {}
            Some("http") if allow_insecure => {}
            Some("http") => return Err(RegisterError::InsecureEndpoint),
            _ => return Err(RegisterError::BadEndpoint),
        }
        let p256dh: [u8; P256DH_LEN] = p256dh.try_into().map_err(|_| RegisterError::BadP256dh)?;
        if p256dh[0] != 4 || p256::PublicKey::from_sec1_bytes(&p256dh).is_err() {
            return Err(RegisterError::BadP256dh);
        }
        let auth: [u8; AUTH_LEN] = auth.try_into().map_err(|_| RegisterError::BadAuth)?;
        Ok(Self {
            endpoint: endpoint.to_owned(),
            p256dh,
            auth: Zeroizing::new(auth),
        })
    }

    /// Parses a registration body: the JSON of a browser's `PushSubscription`.
    pub fn from_json(body: &[u8], allow_insecure: bool) -> Result<Self, RegisterError> {
        if body.len() > MAX_REGISTER_BODY {
            return Err(RegisterError::TooLarge);
        }
        let json: SubscriptionJson =
            serde_json::from_slice(body).map_err(|_| RegisterError::NotJson)?;
        let p256dh = b64url(&json.keys.p256dh).ok_or(RegisterError::BadP256dh)?;
        let auth = b64url(&json.keys.auth).ok_or(RegisterError::BadAuth)?;
        Self::new(&json.endpoint, &p256dh, &auth, allow_insecure)
    }

    /// The push resource URL (a capability: log [`Subscription::host`] instead).
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The endpoint's host, safe to log.
    pub fn host(&self) -> &str {
        self.endpoint
            .split_once("://")
            .map_or("", |(_, rest)| rest)
            .split(['/', '?', '#'])
            .next()
            .unwrap_or("")
    }

    /// The user agent's public key (`keys.p256dh`).
    pub fn p256dh(&self) -> &[u8; 65] {
        &self.p256dh
    }

    /// The authentication secret (`keys.auth`).
    pub fn auth(&self) -> &[u8; 16] {
        &self.auth
    }

    fn to_plaintext(&self) -> Zeroizing<Vec<u8>> {
        let mut out = Zeroizing::new(Vec::with_capacity(
            P256DH_LEN + AUTH_LEN + self.endpoint.len(),
        ));
        out.extend_from_slice(&self.p256dh);
        out.extend_from_slice(&*self.auth);
        out.extend_from_slice(self.endpoint.as_bytes());
        out
    }

    fn from_plaintext(plain: &[u8]) -> Option<Self> {
        let p256dh = plain.get(..P256DH_LEN)?;
        let auth = plain.get(P256DH_LEN..P256DH_LEN + AUTH_LEN)?;
        let endpoint = std::str::from_utf8(plain.get(P256DH_LEN + AUTH_LEN..)?).ok()?;
        // Sealed ids were checked at registration; insecure ones only exist where allowed.
        Self::new(endpoint, p256dh, auth, true).ok()
    }
}

/// Why a contact id did not open (each is answered with 410 Gone).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ContactIdError {
    /// Not base64url, or too short to hold a key id, nonce and tag.
    #[error("malformed contact id")]
    Malformed,
    /// Sealed under a key this relay does not have.
    #[error("contact id sealed under unknown key {key_id}")]
    UnknownKey {
        /// The id's first byte.
        key_id: u8,
    },
    /// Sealed under a key whose grace period has ended.
    #[error("contact id sealed under expired key {key_id}")]
    ExpiredKey {
        /// The id's first byte.
        key_id: u8,
    },
    /// The tag did not verify, or the plaintext is not a subscription.
    #[error("contact id does not authenticate")]
    BadSeal,
}

/// A problem in a contact key file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {problem}")]
pub struct KeyFileError {
    /// 1-based line number (0: the file as a whole).
    pub line: usize,
    /// What was wrong.
    pub problem: &'static str,
}

struct ContactKey {
    id: u8,
    key: Zeroizing<[u8; 32]>,
    until: Option<u64>,
}

/// The relay's contact keys: the first seals, all of them open until their `until` time.
pub struct ContactKeys {
    keys: Vec<ContactKey>,
}

impl fmt::Debug for ContactKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ContactKeys")
            .field(
                "ids",
                &self
                    .keys
                    .iter()
                    .map(|k| (k.id, k.until))
                    .collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl ContactKeys {
    /// Parses a key file (format in the module documentation).
    pub fn parse(text: &str) -> Result<Self, KeyFileError> {
        let mut keys: Vec<ContactKey> = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line_no = i + 1;
            let err = |problem| KeyFileError {
                line: line_no,
                problem,
            };
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let mut fields = line.split_ascii_whitespace();
            let id: u8 = fields
                .next()
                .and_then(|f| f.parse().ok())
                .ok_or(err("key id must be a number 0-255"))?;
            let hex_key = Zeroizing::new(fields.next().unwrap_or("").to_owned());
            let mut key = Zeroizing::new([0u8; 32]);
            hex::decode_to_slice(hex_key.as_bytes(), &mut key[..])
                .map_err(|_| err("key must be 64 hex digits"))?;
            let until = match fields.next() {
                None => None,
                Some(f) => Some(
                    f.strip_prefix("until=")
                        .and_then(|t| t.parse::<u64>().ok())
                        .ok_or(err("expected until=<unix seconds>"))?,
                ),
            };
            if fields.next().is_some() {
                return Err(err("unexpected text after the key"));
            }
            if keys.is_empty() && until.is_some() {
                return Err(err("the current (first) key cannot have an until time"));
            }
            if keys.iter().any(|k| k.id == id) {
                return Err(err("duplicate key id"));
            }
            keys.push(ContactKey { id, key, until });
        }
        if keys.is_empty() {
            return Err(KeyFileError {
                line: 0,
                problem: "no key in the file",
            });
        }
        Ok(Self { keys })
    }

    /// Reads and parses a key file.
    pub fn load(path: &std::path::Path) -> Result<Self, RelayError> {
        let text = Zeroizing::new(std::fs::read_to_string(path).map_err(|source| {
            RelayError::ReadFile {
                path: path.display().to_string(),
                source,
            }
        })?);
        Self::parse(&text).map_err(|e| RelayError::ContactKeyFile {
            path: path.display().to_string(),
            line: e.line,
            problem: e.problem,
        })
    }

    /// One fresh key-file line for key id `id`.
    pub fn generate_line(id: u8, rng: &mut impl CryptoRngCore) -> Zeroizing<String> {
        let mut key = Zeroizing::new([0u8; 32]);
        rng.fill_bytes(&mut key[..]);
        Zeroizing::new(format!("{id} {}", hex::encode(&key[..])))
    }

    /// The key id new contact ids are sealed under.
    pub fn current_id(&self) -> u8 {
        self.keys.first().map_or(0, |k| k.id)
    }

    fn aad(id: u8) -> [u8; 20] {
        let mut aad = [0u8; 20];
        aad[..19].copy_from_slice(AAD_PREFIX);
        aad[19] = id;
        aad
    }

    /// Seals a subscription under the current key.
    pub fn seal(&self, sub: &Subscription, rng: &mut impl CryptoRngCore) -> Vec<u8> {
        let Some(current) = self.keys.first() else {
            return Vec::new();
        };
        let mut nonce = [0u8; NONCE_LEN];
        rng.fill_bytes(&mut nonce);
        let cipher = Aes256Gcm::new((&*current.key).into());
        let aad = Self::aad(current.id);
        let plain = sub.to_plaintext();
        let sealed = cipher
            .encrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: &plain,
                    aad: &aad,
                },
            )
            .unwrap_or_default();
        let mut out = Vec::with_capacity(1 + NONCE_LEN + sealed.len());
        out.push(current.id);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        out
    }

    /// Seals a subscription and encodes it for `/cable/contact/` (base64url, no padding).
    pub fn seal_to_string(&self, sub: &Subscription, rng: &mut impl CryptoRngCore) -> String {
        URL_SAFE_NO_PAD.encode(self.seal(sub, rng))
    }

    /// Opens a contact id at Unix time `now`.
    pub fn open_at(&self, id: &[u8], now: u64) -> Result<Subscription, ContactIdError> {
        if id.len() < 1 + NONCE_LEN + TAG_LEN + P256DH_LEN + AUTH_LEN {
            return Err(ContactIdError::Malformed);
        }
        let (key_id, rest) = (id[0], &id[1..]);
        let (nonce, sealed) = rest.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| ContactIdError::Malformed)?;
        let key = self
            .keys
            .iter()
            .find(|k| k.id == key_id)
            .ok_or(ContactIdError::UnknownKey { key_id })?;
        if key.until.is_some_and(|until| now >= until) {
            return Err(ContactIdError::ExpiredKey { key_id });
        }
        let cipher = Aes256Gcm::new((&*key.key).into());
        let aad = Self::aad(key_id);
        let plain = Zeroizing::new(
            cipher
                .decrypt(
                    &Nonce::from(nonce),
                    Payload {
                        msg: sealed,
                        aad: &aad,
                    },
                )
                .map_err(|_| ContactIdError::BadSeal)?,
        );
        Subscription::from_plaintext(&plain).ok_or(ContactIdError::BadSeal)
    }

    /// Opens a contact id now.
    pub fn open(&self, id: &[u8]) -> Result<Subscription, ContactIdError> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        self.open_at(id, now)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use rand_core::OsRng;

    fn point() -> Vec<u8> {
        use p256::elliptic_curve::sec1::ToEncodedPoint;
        p256::SecretKey::random(&mut OsRng)
            .public_key()
            .to_encoded_point(false)
            .as_bytes()
            .to_vec()
    }

    fn sub() -> Subscription {
        Subscription::new(
            "https://push.example/send/SECRET",
            &point(),
            &[7; 16],
            false,
        )
        .unwrap()
    }

    const K1: &str = "1 0101010101010101010101010101010101010101010101010101010101010101";
    const K2: &str = "2 0202020202020202020202020202020202020202020202020202020202020202";

    #[test]
    fn seal_open_and_rotation() {
        let old = ContactKeys::parse(K1).unwrap();
        let s = sub();
        let id = old.seal(&s, &mut OsRng);
        assert_eq!(id[0], 1);
        assert_eq!(old.open_at(&id, 0).unwrap(), s);
        // Random nonces: two seals differ.
        assert_ne!(old.seal(&s, &mut OsRng), id);

        let rotated =
            ContactKeys::parse(&format!("# new first\n{K2}\n\n{K1} until=1000\n")).unwrap();
        assert_eq!(rotated.current_id(), 2);
        assert_eq!(rotated.open_at(&id, 999).unwrap(), s);
        assert_eq!(
            rotated.open_at(&id, 1000).unwrap_err(),
            ContactIdError::ExpiredKey { key_id: 1 }
        );
        assert_eq!(rotated.seal(&s, &mut OsRng)[0], 2);
        let dropped = ContactKeys::parse(K2).unwrap();
        assert_eq!(
            dropped.open_at(&id, 0).unwrap_err(),
            ContactIdError::UnknownKey { key_id: 1 }
        );
    }

    #[test]
    fn tampered_and_truncated_ids_do_not_open() {
        let keys = ContactKeys::parse(K1).unwrap();
        let id = keys.seal(&sub(), &mut OsRng);
        for i in 1..id.len() {
            let mut bad = id.clone();
            bad[i] ^= 0x40;
            assert_eq!(keys.open_at(&bad, 0).unwrap_err(), ContactIdError::BadSeal);
        }
        for len in 0..id.len() {
            assert!(keys.open_at(&id[..len], 0).is_err());
        }
        // A key with the same bytes but another id does not open it (the id is authenticated).
        let renamed = ContactKeys::parse(&K1.replacen('1', "3", 1)).unwrap();
        let mut moved = id.clone();
        moved[0] = 3;
        assert_eq!(
            renamed.open_at(&moved, 0).unwrap_err(),
            ContactIdError::BadSeal
        );
    }

    #[test]
    fn key_file_problems_name_the_line() {
        let line = |text: &str| ContactKeys::parse(text).unwrap_err();
        assert_eq!(line("").problem, "no key in the file");
        assert_eq!(line("# only a comment\n").line, 0);
        assert_eq!(line("x 00").problem, "key id must be a number 0-255");
        assert_eq!(line("256 00").problem, "key id must be a number 0-255");
        assert_eq!(line("1 abcd").problem, "key must be 64 hex digits");
        assert_eq!(
            line(&format!("{K1} until=5")).problem,
            "the current (first) key cannot have an until time"
        );
        let dup = line(&format!("{K1}\n{K1} until=5"));
        assert_eq!((dup.line, dup.problem), (2, "duplicate key id"));
        assert_eq!(
            line(&format!("{K1} later")).problem,
            "expected until=<unix seconds>"
        );
        let generated = ContactKeys::generate_line(9, &mut OsRng);
        assert_eq!(ContactKeys::parse(&generated).unwrap().current_id(), 9);
        // Debug never shows key bytes.
        let shown = format!("{:?}", ContactKeys::parse(K1).unwrap());
        assert!(!shown.contains("0101"), "{shown}");
    }

    #[test]
    fn registration_bodies() {
        let p = URL_SAFE_NO_PAD.encode(point());
        let a = URL_SAFE_NO_PAD.encode([1u8; 16]);
        let body = |endpoint: &str, p: &str, a: &str| {
            format!(
                r#"{{"endpoint":"{endpoint}","expirationTime":null,"keys":{{"p256dh":"{p}","auth":"{a}"}}}}"#
            )
        };
        let ok =
            Subscription::from_json(body("https://fcm.example/wp/abc", &p, &a).as_bytes(), false)
                .unwrap();
        assert_eq!(ok.host(), "fcm.example");
        assert!(!format!("{ok:?}").contains("abc"));
        let padded = format!("{a}==");
        assert!(
            Subscription::from_json(body("https://x/y", &p, &padded).as_bytes(), false).is_ok()
        );
        let err = |b: &str, insecure| Subscription::from_json(b.as_bytes(), insecure).unwrap_err();
        assert_eq!(err("not json", false), RegisterError::NotJson);
        assert_eq!(
            err(r#"{"endpoint":"https://x/"}"#, false),
            RegisterError::NotJson
        );
        assert_eq!(
            err(&body("http://x/y", &p, &a), false),
            RegisterError::InsecureEndpoint
        );
        assert!(Subscription::from_json(body("http://x/y", &p, &a).as_bytes(), true).is_ok());
        assert_eq!(
            err(&body("ftp://x/y", &p, &a), true),
            RegisterError::BadEndpoint
        );
        assert_eq!(
            err(&body("/relative", &p, &a), false),
            RegisterError::BadEndpoint
        );
        assert_eq!(
            err(&body("https://x/y", "!!", &a), false),
            RegisterError::BadP256dh
        );
        assert_eq!(
            err(&body("https://x/y", &a, &a), false),
            RegisterError::BadP256dh
        );
        let off_curve = URL_SAFE_NO_PAD.encode([4u8; 65]);
        assert_eq!(
            err(&body("https://x/y", &off_curve, &a), false),
            RegisterError::BadP256dh
        );
        assert_eq!(
            err(&body("https://x/y", &p, &p), false),
            RegisterError::BadAuth
        );
        assert_eq!(
            err(&"x".repeat(MAX_REGISTER_BODY + 1), false),
            RegisterError::TooLarge
        );
        let long = format!("https://x/{}", "a".repeat(MAX_ENDPOINT_LEN));
        assert_eq!(err(&body(&long, &p, &a), false), RegisterError::BadEndpoint);
    }
}
