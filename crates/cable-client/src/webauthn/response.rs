//! The credential a ceremony returns, and its WebAuthn Level 3 JSON form
//! (`RegistrationResponseJSON` / `AuthenticationResponseJSON`), which is what a relying
//! party's front end posts back to its server.

use serde_json::{json, Map, Value as Json};

use super::large_blob::LargeBlobOutputs;
use super::options::b64url;
use super::prf::{insert_json, PrfOutputs};

/// A new credential from a registration ceremony.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RegistrationResponse {
    /// The new credential's id.
    pub credential_id: Vec<u8>,
    /// The `clientDataJSON` the client built and the phone signed over.
    pub client_data_json: Vec<u8>,
    /// CBOR `{"fmt", "attStmt", "authData"}`.
    pub attestation_object: Vec<u8>,
    /// The authenticator data, also inside the attestation object.
    pub authenticator_data: Vec<u8>,
    /// SubjectPublicKeyInfo DER of the credential key, for the algorithms the client knows.
    pub public_key_der: Option<Vec<u8>>,
    /// The COSE algorithm id of the credential key.
    pub public_key_algorithm: i64,
    /// `credProps.rk`, when the relying party asked for `credProps`.
    pub cred_props_rk: Option<bool>,
    /// The `prf` output, when the relying party asked for `prf`.
    pub prf: Option<PrfOutputs>,
    /// The `largeBlob` output (`supported`), when the relying party asked for `largeBlob`.
    pub large_blob: Option<LargeBlobOutputs>,
    /// The `credBlob` output (whether it was stored), when the relying party gave one.
    pub cred_blob: Option<bool>,
}

/// An assertion from an authentication ceremony.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AuthenticationResponse {
    /// The id of the credential that signed.
    pub credential_id: Vec<u8>,
    /// The `clientDataJSON` the client built and the phone signed over.
    pub client_data_json: Vec<u8>,
    /// The authenticator data the signature covers.
    pub authenticator_data: Vec<u8>,
    /// The signature over the authenticator data and the hash of `clientDataJSON`.
    pub signature: Vec<u8>,
    /// The user handle, when the credential is discoverable and the phone returns it.
    pub user_handle: Option<Vec<u8>>,
    /// The `prf` output, when the relying party asked for `prf` and the phone evaluated it.
    pub prf: Option<PrfOutputs>,
    /// The `largeBlob` output (`blob` or `written`), when the relying party asked for it.
    pub large_blob: Option<LargeBlobOutputs>,
    /// The `getCredBlob` output, when asked for and the phone offers `credBlob` (empty when
    /// the credential has none).
    pub cred_blob: Option<Vec<u8>>,
}

impl RegistrationResponse {
    /// `RegistrationResponseJSON`.
    pub fn to_json(&self) -> Json {
        let mut response = Map::new();
        response.insert(
            "clientDataJSON".into(),
            b64url(&self.client_data_json).into(),
        );
        response.insert(
            "attestationObject".into(),
            b64url(&self.attestation_object).into(),
        );
        response.insert(
            "authenticatorData".into(),
            b64url(&self.authenticator_data).into(),
        );
        response.insert("transports".into(), json!(["hybrid"]));
        if let Some(der) = &self.public_key_der {
            response.insert("publicKey".into(), b64url(der).into());
        }
        response.insert(
            "publicKeyAlgorithm".into(),
            self.public_key_algorithm.into(),
        );
        let mut extensions = Map::new();
        if let Some(rk) = self.cred_props_rk {
            extensions.insert("credProps".into(), json!({ "rk": rk }));
        }
        insert_json(&mut extensions, self.prf.as_ref());
        if let Some(large_blob) = &self.large_blob {
            extensions.insert("largeBlob".into(), large_blob.to_json());
        }
        if let Some(stored) = self.cred_blob {
            extensions.insert("credBlob".into(), stored.into());
        }
        json!({
            "id": b64url(&self.credential_id),
            "rawId": b64url(&self.credential_id),
            "type": "public-key",
            "response": response,
            "authenticatorAttachment": "cross-platform",
            "clientExtensionResults": extensions,
        })
    }

    /// [`Self::to_json`] as a string.
    pub fn to_json_string(&self) -> String {
        self.to_json().to_string()
    }
}

impl AuthenticationResponse {
    /// `AuthenticationResponseJSON`.
    pub fn to_json(&self) -> Json {
        let mut response = Map::new();
        response.insert(
            "clientDataJSON".into(),
            b64url(&self.client_data_json).into(),
        );
        response.insert(
            "authenticatorData".into(),
            b64url(&self.authenticator_data).into(),
        );
        response.insert("signature".into(), b64url(&self.signature).into());
        response.insert(
            "userHandle".into(),
            self.user_handle
                .as_deref()
                .map_or(Json::Null, |h| b64url(h).into()),
        );
        let mut extensions = Map::new();
        insert_json(&mut extensions, self.prf.as_ref());
        if let Some(large_blob) = &self.large_blob {
            extensions.insert("largeBlob".into(), large_blob.to_json());
        }
        if let Some(blob) = &self.cred_blob {
            extensions.insert("getCredBlob".into(), b64url(blob).into());
        }
        json!({
            "id": b64url(&self.credential_id),
            "rawId": b64url(&self.credential_id),
            "type": "public-key",
            "response": response,
            "authenticatorAttachment": "cross-platform",
            "clientExtensionResults": extensions,
        })
    }

    /// [`Self::to_json`] as a string.
    pub fn to_json_string(&self) -> String {
        self.to_json().to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registration_json_shape() {
        let r = RegistrationResponse {
            credential_id: vec![1, 2, 3],
            client_data_json: b"{}".to_vec(),
            attestation_object: vec![0xa0],
            authenticator_data: vec![5; 37],
            public_key_der: Some(vec![0x30]),
            public_key_algorithm: -7,
            cred_props_rk: Some(true),
            prf: None,
            large_blob: None,
            cred_blob: None,
        };
        let j = r.to_json();
        assert_eq!(j["id"], "AQID");
        assert_eq!(j["rawId"], "AQID");
        assert_eq!(j["type"], "public-key");
        assert_eq!(j["authenticatorAttachment"], "cross-platform");
        assert_eq!(j["response"]["clientDataJSON"], "e30");
        assert_eq!(j["response"]["attestationObject"], "oA");
        assert_eq!(j["response"]["transports"], json!(["hybrid"]));
        assert_eq!(j["response"]["publicKey"], "MA");
        assert_eq!(j["response"]["publicKeyAlgorithm"], -7);
        assert_eq!(
            j["clientExtensionResults"],
            json!({"credProps": {"rk": true}})
        );
        let none = RegistrationResponse {
            public_key_der: None,
            cred_props_rk: None,
            ..r
        };
        let j = none.to_json();
        assert!(j["response"].get("publicKey").is_none());
        assert_eq!(j["clientExtensionResults"], json!({}));
    }

    #[test]
    fn authentication_json_shape() {
        let a = AuthenticationResponse {
            credential_id: vec![0xff],
            client_data_json: b"{}".to_vec(),
            authenticator_data: vec![1],
            signature: vec![2],
            user_handle: None,
            prf: None,
            large_blob: None,
            cred_blob: None,
        };
        let j = a.to_json();
        assert_eq!(j["id"], "_w");
        assert_eq!(j["response"]["signature"], "Ag");
        assert_eq!(j["response"]["userHandle"], Json::Null);
        assert_eq!(j["authenticatorAttachment"], "cross-platform");
        assert_eq!(j["clientExtensionResults"], json!({}));
        let with_user = AuthenticationResponse {
            user_handle: Some(vec![3]),
            ..a
        };
        assert_eq!(with_user.to_json()["response"]["userHandle"], "Aw");
    }
}
