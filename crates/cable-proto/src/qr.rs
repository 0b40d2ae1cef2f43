//! The QR code a desktop shows: `FIDO:/` followed by the digit encoding of a
//! canonical CBOR map.
//!
//! | key | type | meaning |
//! |---|---|---|
//! | 0 | bstr (33) | desktop's compressed P-256 public key (required) |
//! | 1 | bstr (16) | QR secret (required) |
//! | 2 | uint | number of assigned tunnel domains the desktop knows (default 0) |
//! | 3 | uint | current Unix time (not checked by readers) |
//! | 4 | bool | desktop supports state-assisted (linked) transactions |
//! | 5 | tstr | request hint `"ga"` / `"mc"` / `"dcp"` / `"dci"`; unknown strings read as `"ga"` |
//!
//! Unknown keys are ignored. Key 6 is never emitted because peers disagree on
//! its type.

use p256::{PublicKey, SecretKey};

use crate::cbor::{self, map_get, Value};
use crate::derive::EidKey;
use crate::digits;
use crate::domain::ASSIGNED_DOMAINS;
use crate::error::{Error, Result};
use crate::ids::TunnelId;
use crate::keys;
use crate::secret::secret_bytes;

/// The URI prefix; matched case-insensitively, emitted upper-case.
pub const PREFIX: &str = "FIDO:/";

secret_bytes!(
    /// The 16-byte QR secret from which the session's keys are derived.
    QrSecret,
    16
);

impl QrSecret {
    /// The advert key: `Derive(secret, empty, 1, 64)`.
    pub fn eid_key(&self) -> EidKey {
        EidKey::derive(self.as_bytes(), &[])
    }

    /// The tunnel id: `Derive(secret, empty, 2, 16)`.
    pub fn tunnel_id(&self) -> TunnelId {
        TunnelId::derive(self.as_bytes())
    }

    /// The Noise PSK for an advert: `Derive(secret, eid_plaintext, 3, 32)`.
    pub fn psk(&self, eid_plaintext: &[u8; 16]) -> crate::derive::Psk {
        crate::derive::Psk::derive(self.as_bytes(), eid_plaintext)
    }
}

/// The kind of request the desktop is about to make (QR key 5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum RequestHint {
    /// `"ga"`: getAssertion (sign in). Also what unknown strings read as.
    #[default]
    GetAssertion,
    /// `"mc"`: makeCredential (create a passkey).
    MakeCredential,
    /// `"dcp"`: a digital-credential presentation (CTAP 2.3; JSON messages, feature `"dc"`).
    DigitalCredentialPresentation,
    /// `"dci"`: a digital-credential issuance (CTAP 2.3).
    DigitalCredentialIssuance,
}

impl RequestHint {
    /// The wire string.
    pub fn as_str(self) -> &'static str {
        match self {
            RequestHint::GetAssertion => "ga",
            RequestHint::MakeCredential => "mc",
            RequestHint::DigitalCredentialPresentation => "dcp",
            RequestHint::DigitalCredentialIssuance => "dci",
        }
    }

    /// Reads a wire string; anything unknown is `"ga"`, as Chromium does.
    pub fn from_wire(text: &str) -> RequestHint {
        match text {
            "mc" => RequestHint::MakeCredential,
            "dcp" => RequestHint::DigitalCredentialPresentation,
            "dci" => RequestHint::DigitalCredentialIssuance,
            _ => RequestHint::GetAssertion,
        }
    }

    /// Whether the request will be a digital credential (JSON), not CTAP.
    pub fn is_digital_credential(self) -> bool {
        matches!(
            self,
            RequestHint::DigitalCredentialPresentation | RequestHint::DigitalCredentialIssuance
        )
    }
}

/// The contents of a QR code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QrCode {
    /// Key 0: the desktop's QR public key.
    pub public_key: PublicKey,
    /// Key 1: the QR secret.
    pub secret: QrSecret,
    /// Key 2: assigned tunnel domains known to the desktop (0 when absent).
    pub known_domains: u64,
    /// Key 3: Unix time of generation.
    pub timestamp: Option<u64>,
    /// Key 4: state-assisted support; `None` when absent.
    pub state_assisted: Option<bool>,
    /// Key 5: the request hint (`ga` when absent or unknown).
    pub hint: RequestHint,
}

impl QrCode {
    /// The canonical CBOR map. It holds the QR secret: the caller owns this copy and should
    /// wipe it (e.g. hold it in [`zeroize::Zeroizing`]).
    pub fn to_cbor(&self) -> Vec<u8> {
        let mut entries = vec![
            (
                Value::Unsigned(0),
                Value::Bytes(keys::compressed(&self.public_key).to_vec()),
            ),
            (
                Value::Unsigned(1),
                Value::Bytes(self.secret.as_bytes().to_vec()),
            ),
            (Value::Unsigned(2), Value::Unsigned(self.known_domains)),
        ];
        if let Some(t) = self.timestamp {
            entries.push((Value::Unsigned(3), Value::Unsigned(t)));
        }
        if let Some(b) = self.state_assisted {
            entries.push((Value::Unsigned(4), Value::Bool(b)));
        }
        entries.push((
            Value::Unsigned(5),
            Value::Text(self.hint.as_str().to_owned()),
        ));
        zeroize::Zeroizing::new(Value::map(entries)).to_bytes()
    }

    /// `FIDO:/` followed by the digits. It holds the QR secret: the caller owns this copy
    /// and should wipe it once the code is shown (e.g. hold it in [`zeroize::Zeroizing`]).
    pub fn to_uri(&self) -> String {
        let cbor = zeroize::Zeroizing::new(self.to_cbor());
        let digits = zeroize::Zeroizing::new(digits::encode(&cbor));
        // Sized up front so that no reallocation leaves a copy behind.
        let mut uri = String::with_capacity(PREFIX.len() + digits.len());
        uri.push_str(PREFIX);
        uri.push_str(&digits);
        uri
    }

    /// Parses a scanned QR text.
    pub fn parse(uri: &str) -> Result<QrCode> {
        let head = uri.as_bytes().get(..PREFIX.len()).ok_or(Error::QrPrefix)?;
        if !head.eq_ignore_ascii_case(PREFIX.as_bytes()) {
            return Err(Error::QrPrefix);
        }
        // The prefix is ASCII, so this index is a character boundary.
        let bytes = digits::decode(&uri[PREFIX.len()..])?;
        QrCode::from_cbor(&bytes)
    }

    /// Parses the CBOR map (strict canonical form).
    pub fn from_cbor(bytes: &[u8]) -> Result<QrCode> {
        let value = cbor::decode(bytes)?;
        let map = value.as_map().ok_or(Error::QrNotAMap)?;

        let key0 = map_get(map, 0).ok_or(Error::QrMissingKey { key: 0 })?;
        let key0 = key0.as_bytes().ok_or(Error::QrWrongType {
            key: 0,
            expected: "a byte string",
        })?;
        if key0.len() != keys::COMPRESSED_LEN || !matches!(key0[0], 2 | 3) {
            return Err(Error::QrBadPublicKey { len: key0.len() });
        }
        let public_key = keys::public_key_from_sec1(key0)
            .map_err(|_| Error::QrBadPublicKey { len: key0.len() })?;

        let key1 = map_get(map, 1).ok_or(Error::QrMissingKey { key: 1 })?;
        let key1 = key1.as_bytes().ok_or(Error::QrWrongType {
            key: 1,
            expected: "a byte string",
        })?;
        let secret =
            QrSecret::from_slice(key1).ok_or(Error::QrBadSecretLength { len: key1.len() })?;

        let known_domains = match map_get(map, 2) {
            None => 0,
            Some(v) => v.as_unsigned().ok_or(Error::QrWrongType {
                key: 2,
                expected: "an unsigned integer",
            })?,
        };
        // Key 3 is informational; Chromium does not read it, so a wrong type is not an error.
        let timestamp = map_get(map, 3).and_then(Value::as_unsigned);
        let state_assisted = match map_get(map, 4) {
            None => None,
            Some(v) => Some(v.as_bool().ok_or(Error::QrWrongType {
                key: 4,
                expected: "a boolean",
            })?),
        };
        let hint = match map_get(map, 5) {
            None => RequestHint::default(),
            Some(v) => RequestHint::from_wire(v.as_text().ok_or(Error::QrWrongType {
                key: 5,
                expected: "a text string",
            })?),
        };
        Ok(QrCode {
            public_key,
            secret,
            known_domains,
            timestamp,
            state_assisted,
            hint,
        })
    }
}

/// The desktop's side of a QR code: the private key behind key 0 and the
/// code itself.
#[derive(Clone)]
pub struct QrKey {
    private: SecretKey,
    code: QrCode,
}

impl core::fmt::Debug for QrKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("QrKey")
            .field("private", &"<redacted>")
            .field("code", &self.code)
            .finish()
    }
}

impl QrKey {
    /// A fresh QR key, as Chrome makes one: 32 random bytes of seed (turned
    /// into the private key by [`keys::derive_private_key_from_seed`]) then
    /// 16 random bytes of QR secret, both from `rng`. Key 2 is the number of
    /// assigned domains, key 4 is `true` (see [`QrKey::with_state_assisted`]).
    pub fn generate(
        rng: &mut impl rand_core::CryptoRngCore,
        now_unix: u64,
        hint: RequestHint,
    ) -> QrKey {
        loop {
            let mut seed = zeroize::Zeroizing::new([0u8; 32]);
            rng.fill_bytes(&mut seed[..]);
            // Drawn into the QrSecret itself: a local array would be a copy nothing wipes.
            let mut secret = QrSecret::from_bytes([0; 16]);
            rng.fill_bytes(&mut secret.0);
            // Only a zero scalar (probability 2^-256) fails; draw again then.
            if let Ok(key) = QrKey::from_seed(&seed[..], secret, now_unix, hint) {
                return key;
            }
        }
    }

    /// A QR key from a 32-byte seed (Chrome's "QR generator key" layout).
    pub fn from_seed(
        seed: &[u8],
        secret: QrSecret,
        now_unix: u64,
        hint: RequestHint,
    ) -> Result<QrKey> {
        let private = keys::derive_private_key_from_seed(seed)?;
        Ok(QrKey::from_private_key(private, secret, now_unix, hint))
    }

    /// A QR key from an existing private key.
    pub fn from_private_key(
        private: SecretKey,
        secret: QrSecret,
        now_unix: u64,
        hint: RequestHint,
    ) -> QrKey {
        let code = QrCode {
            public_key: private.public_key(),
            secret,
            known_domains: ASSIGNED_DOMAINS.len() as u64,
            timestamp: Some(now_unix),
            state_assisted: Some(true),
            hint,
        };
        QrKey { private, code }
    }

    /// Sets key 4 (whether this desktop will store linking data).
    pub fn with_state_assisted(mut self, supported: bool) -> QrKey {
        self.code.state_assisted = Some(supported);
        self
    }

    /// The QR contents.
    pub fn code(&self) -> &QrCode {
        &self.code
    }

    /// The QR secret.
    pub fn secret(&self) -> &QrSecret {
        &self.code.secret
    }

    /// The public key (QR key 0).
    pub fn public_key(&self) -> &PublicKey {
        &self.code.public_key
    }

    /// The private key (Noise static key of the KNpsk0 initiator).
    pub fn private_key(&self) -> &SecretKey {
        &self.private
    }

    /// `FIDO:/…` text to render; the caller owns it and should wipe it, as
    /// [`QrCode::to_uri`] says.
    pub fn to_uri(&self) -> String {
        self.code.to_uri()
    }
}
