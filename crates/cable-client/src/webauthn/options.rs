//! WebAuthn options JSON as a relying party's front end hands it over.
//!
//! Accepted shapes: `PublicKeyCredentialCreationOptionsJSON` / `…RequestOptionsJSON`
//! (WebAuthn Level 3), optionally wrapped as `{"publicKey": {…}}` the way many server
//! libraries return it for `navigator.credentials.create()`. Binary fields are base64url,
//! with or without padding. Unknown members are ignored, as a browser would.

use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::{DecodePaddingMode, Engine};
use serde::Deserialize;

use crate::error::ClientError;
use crate::webauthn::large_blob::{
    json::InputsJson as LargeBlobJson, LargeBlobRequest, LargeBlobSupport,
};
use crate::webauthn::prf::{json::InputsJson, PrfInputs};

/// base64url without padding on output, padding optional on input.
pub(crate) const B64URL: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::URL_SAFE,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Encodes bytes as unpadded base64url.
pub fn b64url(bytes: &[u8]) -> String {
    B64URL.encode(bytes)
}

pub(crate) fn b64_field(s: &str, field: &'static str) -> Result<Vec<u8>, ClientError> {
    B64URL
        .decode(s.as_bytes())
        .map_err(|_| ClientError::BadBase64 { field })
}

/// `PublicKeyCredentialCreationOptions`, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreationOptions {
    /// `rp.id`; `None` means the origin's effective domain.
    pub rp_id: Option<String>,
    /// `rp.name`, shown by the phone.
    pub rp_name: String,
    /// `user.id`, the user handle (1 to 64 bytes).
    pub user_id: Vec<u8>,
    /// `user.name`, shown by the phone.
    pub user_name: String,
    /// `user.displayName`, shown by the phone.
    pub user_display_name: String,
    /// The relying party's challenge, as bytes.
    pub challenge: Vec<u8>,
    /// COSE algorithm ids of the `public-key` entries, in the RP's order of preference.
    pub algorithms: Vec<i64>,
    /// `timeout` in milliseconds, if given.
    pub timeout_ms: Option<u64>,
    /// Ids of credentials the user already has, which the phone must not duplicate.
    pub exclude_credentials: Vec<Vec<u8>>,
    /// Whether a discoverable (resident) credential is wanted.
    pub resident_key: ResidentKey,
    /// Whether user verification is wanted.
    pub user_verification: UserVerification,
    /// What attestation the relying party wants.
    pub attestation: Attestation,
    /// The extensions this client acts on.
    pub extensions: RegistrationExtensions,
}

/// `PublicKeyCredentialRequestOptions`, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestOptions {
    /// `rpId`; `None` means the origin's effective domain.
    pub rp_id: Option<String>,
    /// The relying party's challenge, as bytes.
    pub challenge: Vec<u8>,
    /// `timeout` in milliseconds, if given.
    pub timeout_ms: Option<u64>,
    /// Credentials the relying party accepts; empty means any discoverable credential.
    pub allow_credentials: Vec<Vec<u8>>,
    /// Whether user verification is wanted.
    pub user_verification: UserVerification,
    /// The extensions this client acts on.
    pub extensions: AuthenticationExtensions,
}

/// `residentKey` (with the Level 1 `requireResidentKey` folded in).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResidentKey {
    /// A server-side credential is fine (the default).
    Discouraged,
    /// A discoverable credential if the authenticator can make one.
    Preferred,
    /// A discoverable credential, or the ceremony fails.
    Required,
}

/// `userVerification`; unknown strings mean the default, `preferred`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserVerification {
    /// User verification must not be performed if that would bother the person.
    Discouraged,
    /// User verification when the authenticator supports it (the default).
    Preferred,
    /// User verification, or the ceremony fails.
    Required,
}

/// `attestation` conveyance; unknown strings mean the default, `none`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attestation {
    /// No attestation (the default): the client strips it.
    None,
    /// Attestation the client may anonymize.
    Indirect,
    /// The authenticator's attestation as it produced it.
    Direct,
    /// Enterprise attestation, for managed devices.
    Enterprise,
}

/// The registration extensions this client acts on; others are ignored (WebAuthn lets a
/// client ignore any extension).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct RegistrationExtensions {
    /// `credProps`: report whether the credential is discoverable.
    pub cred_props: bool,
    /// `credentialProtectionPolicy` as the CTAP2 credProtect value (1..=3).
    pub cred_protect: Option<u8>,
    /// `enforceCredentialProtectionPolicy`.
    pub enforce_cred_protect: bool,
    /// `prf`: whether the new credential should support the PRF, and inputs to evaluate
    /// at once if the phone can.
    pub prf: Option<PrfInputs>,
    /// `largeBlob.support`: whether the credential should be able to hold a blob.
    pub large_blob: Option<LargeBlobSupport>,
    /// `credBlob`: a few bytes (32 on most authenticators) to store with the credential,
    /// read back with `getCredBlob`.
    pub cred_blob: Option<Vec<u8>>,
    /// `minPinLength`: ask the authenticator to report its minimum PIN length in the signed
    /// authenticator data (for relying parties that enforce one).
    pub min_pin_length: bool,
}

/// The sign-in extensions this client acts on.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct AuthenticationExtensions {
    /// `prf`: inputs to evaluate with the credential that signs.
    pub prf: Option<PrfInputs>,
    /// `largeBlob`: read the credential's blob, or write it.
    pub large_blob: Option<LargeBlobRequest>,
    /// `getCredBlob`: return the `credBlob` stored at registration.
    pub get_cred_blob: bool,
}

// ---- serde shapes (lenient) ----

/// Parses JSON, unwrapping `{"publicKey": …}` if present.
fn parse_maybe_wrapped<T: serde::de::DeserializeOwned>(
    json: &str,
    what: &'static str,
) -> Result<T, ClientError> {
    let mut value: serde_json::Value =
        serde_json::from_str(json).map_err(|source| ClientError::OptionsJson { what, source })?;
    if let Some(inner) = value.get_mut("publicKey") {
        value = inner.take();
    }
    serde_json::from_value(value).map_err(|source| ClientError::OptionsJson { what, source })
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreationJson {
    rp: RpJson,
    user: UserJson,
    challenge: String,
    #[serde(default)]
    pub_key_cred_params: Vec<ParamJson>,
    timeout: Option<f64>,
    #[serde(default)]
    exclude_credentials: Vec<DescriptorJson>,
    #[serde(default)]
    authenticator_selection: Option<SelectionJson>,
    #[serde(default)]
    attestation: Option<String>,
    #[serde(default)]
    extensions: Option<ExtensionsJson>,
}

#[derive(Deserialize)]
struct RpJson {
    id: Option<String>,
    name: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct UserJson {
    id: String,
    name: Option<String>,
    display_name: Option<String>,
}

#[derive(Deserialize)]
struct ParamJson {
    #[serde(rename = "type")]
    kind: String,
    alg: i64,
}

#[derive(Deserialize)]
struct DescriptorJson {
    #[serde(rename = "type", default = "public_key")]
    kind: String,
    id: String,
}

fn public_key() -> String {
    "public-key".to_owned()
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SelectionJson {
    resident_key: Option<String>,
    #[serde(default)]
    require_resident_key: bool,
    user_verification: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ExtensionsJson {
    #[serde(default)]
    cred_props: bool,
    credential_protection_policy: Option<String>,
    #[serde(default)]
    enforce_credential_protection_policy: bool,
    #[serde(default)]
    prf: Option<InputsJson>,
    #[serde(default)]
    large_blob: Option<LargeBlobJson>,
    #[serde(default)]
    cred_blob: Option<String>,
    #[serde(default)]
    min_pin_length: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RequestExtensionsJson {
    #[serde(default)]
    prf: Option<InputsJson>,
    #[serde(default)]
    large_blob: Option<LargeBlobJson>,
    #[serde(default)]
    get_cred_blob: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RequestJson {
    challenge: String,
    timeout: Option<f64>,
    rp_id: Option<String>,
    #[serde(default)]
    allow_credentials: Vec<DescriptorJson>,
    user_verification: Option<String>,
    #[serde(default)]
    extensions: Option<RequestExtensionsJson>,
}

fn uv_from(s: Option<&str>) -> UserVerification {
    match s {
        Some("required") => UserVerification::Required,
        Some("discouraged") => UserVerification::Discouraged,
        _ => UserVerification::Preferred,
    }
}

fn timeout_from(t: Option<f64>) -> Option<u64> {
    // JSON numbers; negative, NaN or absurd values mean "no hint".
    t.filter(|t| t.is_finite() && *t > 0.0 && *t < 1.0e12)
        .map(|t| t as u64)
}

fn descriptors(
    list: Vec<DescriptorJson>,
    field: &'static str,
) -> Result<Vec<Vec<u8>>, ClientError> {
    list.into_iter()
        .filter(|d| d.kind == "public-key")
        .map(|d| b64_field(&d.id, field))
        .collect()
}

impl CreationOptions {
    /// Parses `PublicKeyCredentialCreationOptionsJSON` (optionally inside `{"publicKey": …}`).
    pub fn from_json(json: &str) -> Result<Self, ClientError> {
        let raw: CreationJson = parse_maybe_wrapped(json, "credential creation options")?;
        let user_id = b64_field(&raw.user.id, "user.id")?;
        if user_id.is_empty() || user_id.len() > 64 {
            return Err(ClientError::BadUserId { len: user_id.len() });
        }
        let challenge = b64_field(&raw.challenge, "challenge")?;
        if challenge.is_empty() {
            return Err(ClientError::EmptyChallenge);
        }
        // WebAuthn: an empty list means ES256 and RS256; a non-empty list without any
        // public-key entry is NotSupportedError.
        let algorithms: Vec<i64> = if raw.pub_key_cred_params.is_empty() {
            vec![-7, -257]
        } else {
            raw.pub_key_cred_params
                .iter()
                .filter(|p| p.kind == "public-key")
                .map(|p| p.alg)
                .collect()
        };
        if algorithms.is_empty() {
            return Err(ClientError::NoSupportedAlgorithm);
        }
        let sel = raw.authenticator_selection;
        let resident_key = match sel.as_ref().and_then(|s| s.resident_key.as_deref()) {
            Some("required") => ResidentKey::Required,
            Some("preferred") => ResidentKey::Preferred,
            Some("discouraged") => ResidentKey::Discouraged,
            // Level 1 fallback.
            _ if sel.as_ref().is_some_and(|s| s.require_resident_key) => ResidentKey::Required,
            _ => ResidentKey::Discouraged,
        };
        let user_verification = uv_from(sel.as_ref().and_then(|s| s.user_verification.as_deref()));
        let attestation = match raw.attestation.as_deref() {
            Some("indirect") => Attestation::Indirect,
            Some("direct") => Attestation::Direct,
            Some("enterprise") => Attestation::Enterprise,
            _ => Attestation::None,
        };
        let extensions = raw
            .extensions
            .map(|e| -> Result<_, ClientError> {
                Ok(RegistrationExtensions {
                    cred_props: e.cred_props,
                    cred_protect: match e.credential_protection_policy.as_deref() {
                        Some("userVerificationOptional") => Some(1),
                        Some("userVerificationOptionalWithCredentialIDList") => Some(2),
                        Some("userVerificationRequired") => Some(3),
                        _ => None,
                    },
                    enforce_cred_protect: e.enforce_credential_protection_policy,
                    prf: e.prf.map(InputsJson::decode).transpose()?,
                    large_blob: e
                        .large_blob
                        .map(LargeBlobJson::for_registration)
                        .transpose()?,
                    cred_blob: e
                        .cred_blob
                        .map(|b| b64_field(&b, "extensions.credBlob"))
                        .transpose()?,
                    min_pin_length: e.min_pin_length,
                })
            })
            .transpose()?
            .unwrap_or_default();
        let rp_name = raw
            .rp
            .name
            .or_else(|| raw.rp.id.clone())
            .unwrap_or_default();
        Ok(CreationOptions {
            rp_id: raw.rp.id,
            rp_name,
            user_id,
            user_name: raw.user.name.unwrap_or_default(),
            user_display_name: raw.user.display_name.unwrap_or_default(),
            challenge,
            algorithms,
            timeout_ms: timeout_from(raw.timeout),
            exclude_credentials: descriptors(raw.exclude_credentials, "excludeCredentials.id")?,
            resident_key,
            user_verification,
            attestation,
            extensions,
        })
    }
}

impl RequestOptions {
    /// Parses `PublicKeyCredentialRequestOptionsJSON` (optionally inside `{"publicKey": …}`).
    pub fn from_json(json: &str) -> Result<Self, ClientError> {
        let raw: RequestJson = parse_maybe_wrapped(json, "credential request options")?;
        let challenge = b64_field(&raw.challenge, "challenge")?;
        if challenge.is_empty() {
            return Err(ClientError::EmptyChallenge);
        }
        Ok(RequestOptions {
            rp_id: raw.rp_id,
            challenge,
            timeout_ms: timeout_from(raw.timeout),
            allow_credentials: descriptors(raw.allow_credentials, "allowCredentials.id")?,
            user_verification: uv_from(raw.user_verification.as_deref()),
            extensions: match raw.extensions {
                None => AuthenticationExtensions::default(),
                Some(e) => AuthenticationExtensions {
                    prf: e.prf.map(InputsJson::decode).transpose()?,
                    large_blob: e
                        .large_blob
                        .map(LargeBlobJson::for_authentication)
                        .transpose()?
                        .flatten(),
                    get_cred_blob: e.get_cred_blob,
                },
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CREATE: &str = r#"{
        "rp": {"id": "example.com", "name": "Example"},
        "user": {"id": "AQID", "name": "ada", "displayName": "Ada Lovelace"},
        "challenge": "AAECAwQFBgcICQoLDA0ODw",
        "pubKeyCredParams": [{"type": "public-key", "alg": -7}, {"type": "x", "alg": -8}, {"type": "public-key", "alg": -257}],
        "timeout": 60000,
        "excludeCredentials": [{"type": "public-key", "id": "qqo", "transports": ["hybrid"]}],
        "authenticatorSelection": {"residentKey": "required", "userVerification": "required"},
        "attestation": "none",
        "extensions": {"credProps": true, "credentialProtectionPolicy": "userVerificationRequired"},
        "hints": ["hybrid"]
    }"#;

    #[test]
    fn parses_creation_options() {
        let o = CreationOptions::from_json(CREATE).unwrap();
        assert_eq!(o.rp_id.as_deref(), Some("example.com"));
        assert_eq!(o.rp_name, "Example");
        assert_eq!(o.user_id, vec![1, 2, 3]);
        assert_eq!(o.user_name, "ada");
        assert_eq!(o.user_display_name, "Ada Lovelace");
        assert_eq!(o.challenge, (0u8..16).collect::<Vec<_>>());
        assert_eq!(o.algorithms, vec![-7, -257]);
        assert_eq!(o.timeout_ms, Some(60000));
        assert_eq!(o.exclude_credentials, vec![vec![0xaa, 0xaa]]);
        assert_eq!(o.resident_key, ResidentKey::Required);
        assert_eq!(o.user_verification, UserVerification::Required);
        assert_eq!(o.attestation, Attestation::None);
        assert!(o.extensions.cred_props);
        assert_eq!(o.extensions.cred_protect, Some(3));
    }

    #[test]
    fn accepts_public_key_wrapper_and_padding() {
        let wrapped = format!(r#"{{"publicKey": {CREATE}}}"#);
        assert_eq!(
            CreationOptions::from_json(&wrapped).unwrap(),
            CreationOptions::from_json(CREATE).unwrap()
        );
        let padded = CREATE.replace("\"AQID\"", "\"AQI=\"");
        assert_eq!(
            CreationOptions::from_json(&padded).unwrap().user_id,
            vec![1, 2]
        );
    }

    #[test]
    fn defaults_when_optional_members_are_missing() {
        let o = CreationOptions::from_json(
            r#"{"rp": {"id": "example.com"}, "user": {"id": "AQ"}, "challenge": "AQ"}"#,
        )
        .unwrap();
        assert_eq!(o.rp_name, "example.com");
        assert_eq!(o.user_name, "");
        assert_eq!(o.user_display_name, "");
        assert_eq!(o.algorithms, vec![-7, -257]);
        assert_eq!(o.resident_key, ResidentKey::Discouraged);
        assert_eq!(o.user_verification, UserVerification::Preferred);
        let legacy = CreationOptions::from_json(
            r#"{"rp": {}, "user": {"id": "AQ"}, "challenge": "AQ",
                "authenticatorSelection": {"requireResidentKey": true}}"#,
        )
        .unwrap();
        assert_eq!(legacy.resident_key, ResidentKey::Required);
        assert_eq!(legacy.rp_id, None);
    }

    #[test]
    fn rejects_bad_creation_options() {
        assert!(matches!(
            CreationOptions::from_json("[]"),
            Err(ClientError::OptionsJson { .. })
        ));
        assert!(matches!(
            CreationOptions::from_json(&CREATE.replace("\"AQID\"", "\"!!\"")),
            Err(ClientError::BadBase64 { field: "user.id" })
        ));
        assert!(matches!(
            CreationOptions::from_json(&CREATE.replace("\"AQID\"", "\"\"")),
            Err(ClientError::BadUserId { len: 0 })
        ));
        let long_id = b64url(&[7u8; 65]);
        assert!(matches!(
            CreationOptions::from_json(&CREATE.replace("AQID", &long_id)),
            Err(ClientError::BadUserId { len: 65 })
        ));
        assert!(matches!(
            CreationOptions::from_json(&CREATE.replace("AAECAwQFBgcICQoLDA0ODw", "")),
            Err(ClientError::EmptyChallenge)
        ));
        let only_unknown = CREATE.replace(
            "\"type\": \"public-key\", \"alg\"",
            "\"type\": \"y\", \"alg\"",
        );
        assert!(matches!(
            CreationOptions::from_json(&only_unknown),
            Err(ClientError::NoSupportedAlgorithm)
        ));
    }

    #[test]
    fn parses_request_options() {
        let o = RequestOptions::from_json(
            r#"{"challenge": "AAEC", "rpId": "example.com", "timeout": -5,
                "allowCredentials": [{"type": "public-key", "id": "AQ"}, {"type": "other", "id": "Ag"}],
                "userVerification": "discouraged"}"#,
        )
        .unwrap();
        assert_eq!(o.challenge, vec![0, 1, 2]);
        assert_eq!(o.rp_id.as_deref(), Some("example.com"));
        assert_eq!(o.timeout_ms, None);
        assert_eq!(o.allow_credentials, vec![vec![1]]);
        assert_eq!(o.user_verification, UserVerification::Discouraged);
        assert!(matches!(
            RequestOptions::from_json(r#"{"challenge": 5}"#),
            Err(ClientError::OptionsJson { .. })
        ));
    }
}
