//! A software authenticator on passkey-authenticator (1Password passkey-rs).
//!
//! ES256 only, every credential resident, `none` attestation, no PIN protocols, the `prf`
//! and `largeBlob` extensions as phones offer them over hybrid; user presence and verification come from a
//! [`UserApproval`] the embedding application answers.

mod cbor_bridge;
mod large_blob;
mod prf_wire;
mod store;

use std::fmt;
use std::sync::Arc;

use cable_proto::cbor::Value;
use cable_proto::ctap::status;
use passkey_authenticator::extensions::HmacSecretConfig;
use passkey_authenticator::{UiHint, UserCheck, UserValidationMethod};
use passkey_crypto::iana;
use passkey_crypto::rust_crypto::RustCryptoBackend;
use passkey_types::ctap2::{get_assertion, make_credential, Aaguid, Ctap2Error, StatusCode};
use passkey_types::Passkey;

use crate::authenticator::{Authenticator, CtapStatus};
use cbor_bridge::{from_ciborium, to_ciborium};

pub use store::{CredentialInfo, PasskeyStore};

/// What the user is asked to approve (or told).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Prompt {
    /// Create a passkey.
    Register {
        /// Relying party id.
        rp_id: String,
        /// Relying party name, if given.
        rp_name: Option<String>,
        /// User name, if given.
        user_name: Option<String>,
        /// User display name, if given.
        user_display_name: Option<String>,
    },
    /// Sign in with a stored passkey.
    SignIn {
        /// Relying party id.
        rp_id: String,
        /// The stored user name, if any.
        user_name: Option<String>,
    },
    /// Informational: no passkey for this request (the request fails with "no credentials").
    NoCredentials,
    /// Informational: a passkey in the exclude list already exists (registration refused).
    AlreadyRegistered {
        /// Relying party id.
        rp_id: String,
    },
}

/// The embedding application's answer to "is the user here, and is it really them?".
///
/// Returning `true` for [`Prompt::Register`] or [`Prompt::SignIn`] asserts both user presence
/// and user verification (the application did its own check: biometrics, a device PIN, a
/// terminal confirmation). The informational prompts' answers are ignored.
#[async_trait::async_trait]
pub trait UserApproval: Send + Sync + fmt::Debug {
    /// Asks the user.
    async fn approve(&self, prompt: &Prompt) -> bool;
}

#[async_trait::async_trait]
impl<T: UserApproval + ?Sized> UserApproval for Arc<T> {
    async fn approve(&self, prompt: &Prompt) -> bool {
        (**self).approve(prompt).await
    }
}

/// Approves everything (tests, demos, `--yes`).
#[derive(Debug, Clone, Copy, Default)]
pub struct AlwaysApprove;

#[async_trait::async_trait]
impl UserApproval for AlwaysApprove {
    async fn approve(&self, _prompt: &Prompt) -> bool {
        true
    }
}

/// Declines everything.
#[derive(Debug, Clone, Copy, Default)]
pub struct AlwaysDeny;

#[async_trait::async_trait]
impl UserApproval for AlwaysDeny {
    async fn approve(&self, _prompt: &Prompt) -> bool {
        false
    }
}

struct ApprovalBridge(Arc<dyn UserApproval>);

#[async_trait::async_trait]
impl UserValidationMethod for ApprovalBridge {
    type PasskeyItem = Passkey;

    async fn check_user<'a>(
        &self,
        hint: UiHint<'a, Passkey>,
        presence: bool,
        verification: bool,
    ) -> Result<UserCheck, Ctap2Error> {
        let prompt = match hint {
            UiHint::RequestNewCredential(user, rp) => Prompt::Register {
                rp_id: rp.id.clone(),
                rp_name: rp.name.clone(),
                user_name: user.name.clone(),
                user_display_name: user.display_name.clone(),
            },
            UiHint::RequestExistingCredential(passkey) => Prompt::SignIn {
                rp_id: passkey.rp_id.clone(),
                user_name: passkey.username.clone(),
            },
            UiHint::InformNoCredentialsFound => {
                self.0.approve(&Prompt::NoCredentials).await;
                return Err(Ctap2Error::NoCredentials);
            }
            UiHint::InformExcludedCredentialFound(passkey) => {
                self.0
                    .approve(&Prompt::AlreadyRegistered {
                        rp_id: passkey.rp_id.clone(),
                    })
                    .await;
                // passkey-authenticator 0.6 would go on to register; CTAP says refuse.
                return Err(Ctap2Error::CredentialExcluded);
            }
        };
        let approved = self.0.approve(&prompt).await;
        if !approved {
            return Err(Ctap2Error::OperationDenied);
        }
        Ok(UserCheck {
            presence: presence || approved,
            verification: verification || approved,
        })
    }

    fn is_presence_enabled(&self) -> bool {
        true
    }

    fn is_verification_enabled(&self) -> Option<bool> {
        Some(true)
    }
}

type Inner = passkey_authenticator::Authenticator<PasskeyStore, ApprovalBridge, RustCryptoBackend>;

/// The bundled [`Authenticator`]: passkey-authenticator with a [`PasskeyStore`] and a
/// [`UserApproval`] hook.
pub struct SoftwareAuthenticator {
    inner: Inner,
}

impl fmt::Debug for SoftwareAuthenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SoftwareAuthenticator")
            .field("store", self.inner.store())
            .finish_non_exhaustive()
    }
}

/// The AAGUID this authenticator reports: all zero, as Chrome on Android does.
pub const AAGUID: [u8; 16] = [0; 16];

impl SoftwareAuthenticator {
    /// An authenticator over `store` asking `approval`.
    pub fn new(store: PasskeyStore, approval: impl UserApproval + 'static) -> Self {
        Self::with_shared_approval(store, Arc::new(approval))
    }

    /// As [`SoftwareAuthenticator::new`] with a shared approval hook.
    pub fn with_shared_approval(store: PasskeyStore, approval: Arc<dyn UserApproval>) -> Self {
        // `prf` as phones offer it over hybrid: the client sends hashed salts and gets the
        // outputs unencrypted (the tunnel is encrypted already), at registration too. Both
        // CTAP secrets (with and without user verification) are made, so a relying party
        // that discourages verification still gets outputs.
        let mut inner = passkey_authenticator::Authenticator::new(
            Aaguid::from(AAGUID),
            store,
            ApprovalBridge(approval),
            RustCryptoBackend,
        )
        .hmac_secret(HmacSecretConfig::new_without_uv().enable_on_make_credential());
        // ES256 only: every relying party supports it and the wire format is well trodden.
        if inner.set_algorithms(&[iana::Algorithm::ES256]).is_err() {
            unreachable!("the RustCrypto backend supports ES256");
        }
        Self { inner }
    }

    /// The credential store.
    pub fn store(&self) -> &PasskeyStore {
        self.inner.store()
    }
}

fn status_of(code: StatusCode) -> CtapStatus {
    CtapStatus(u8::from(code))
}

fn decode_params<T: serde::de::DeserializeOwned>(params: Value) -> Result<T, CtapStatus> {
    let value = to_ciborium(params);
    value.deserialized().map_err(|e| {
        tracing::debug!(error = %e, "request parameters do not match the command");
        // Most mismatches are absent required members.
        CtapStatus(status::MISSING_PARAMETER)
    })
}

/// Turns the `none` attestation passkey-authenticator gives into `packed` self attestation
/// (WebAuthn §8.2: signed by the new credential's own key, no certificate): hosts that read
/// attestation themselves, such as libfido2's `fido2-cred`, need a signature, and clients
/// whose relying party asked for none replace it anyway. Left as it is if anything is
/// amiss.
fn self_attested(response: Value, client_data_hash: &[u8], store: &PasskeyStore) -> Value {
    let Value::Map(mut map) = response else {
        return response;
    };
    let signed = (|| {
        let auth_data = map.get(&Value::Unsigned(2))?.as_bytes()?;
        // rpIdHash ‖ flags ‖ signCount ‖ AAGUID ‖ length ‖ credential id ‖ …
        let len = usize::from(u16::from_be_bytes([
            *auth_data.get(53)?,
            *auth_data.get(54)?,
        ]));
        let id = auth_data.get(55..55 + len)?;
        let mut message = auth_data.to_vec();
        message.extend_from_slice(client_data_hash);
        store.sign(id, &message)
    })();
    if let Some(sig) = signed {
        map.insert(Value::Unsigned(1), Value::Text("packed".into()));
        map.insert(
            Value::Unsigned(3),
            Value::map([
                (Value::Text("alg".into()), Value::integer(-7)),
                (Value::Text("sig".into()), Value::Bytes(sig)),
            ]),
        );
    }
    Value::Map(map)
}

/// CTAP makes the user entity's `name` and `displayName` optional (libfido2 sends no
/// `displayName` unless asked to); passkey-types requires both, so an absent one becomes
/// the other, or empty, as WebAuthn allows.
fn with_user_defaults(params: Value) -> Value {
    let Value::Map(mut map) = params else {
        return params;
    };
    if let Some(Value::Map(user)) = map.get_mut(&Value::Unsigned(3)) {
        let text = |user: &std::collections::BTreeMap<Value, Value>, key: &str| {
            user.get(&Value::Text(key.into()))
                .and_then(Value::as_text)
                .map(str::to_owned)
        };
        let name = text(user, "name");
        let display_name = text(user, "displayName");
        if name.is_none() {
            user.insert(
                Value::Text("name".into()),
                Value::Text(display_name.clone().unwrap_or_default()),
            );
        }
        if display_name.is_none() {
            user.insert(
                Value::Text("displayName".into()),
                Value::Text(name.unwrap_or_default()),
            );
        }
    }
    Value::Map(map)
}

/// Adds `extension` to getInfo's list (key 2), which passkey-authenticator fills with what
/// it implements itself.
fn with_extension(info: Value, extension: &str) -> Value {
    let Value::Map(mut map) = info else {
        return info;
    };
    let list = map
        .entry(Value::Unsigned(2))
        .or_insert_with(|| Value::Array(Vec::new()));
    if let Value::Array(list) = list {
        list.push(Value::Text(extension.into()));
    }
    Value::Map(map)
}

fn encode_response<T: serde::Serialize>(response: &T) -> Result<Value, CtapStatus> {
    let value = ciborium::value::Value::serialized(response).map_err(|e| {
        tracing::error!(error = %e, "could not serialize a response");
        CtapStatus(status::OTHER)
    })?;
    from_ciborium(value).map_err(|_| CtapStatus(status::OTHER))
}

#[async_trait::async_trait]
impl Authenticator for SoftwareAuthenticator {
    async fn get_info(&self) -> Value {
        let info = self.inner.get_info().await;
        match encode_response(&*info) {
            Ok(v) => with_extension(v, "largeBlob"),
            // getInfo is built from constants; keep the session alive with the bare minimum.
            Err(_) => Value::map([
                (
                    Value::Unsigned(1),
                    Value::Array(vec![Value::Text("FIDO_2_0".into())]),
                ),
                (Value::Unsigned(3), Value::Bytes(AAGUID.to_vec())),
            ]),
        }
    }

    async fn make_credential(&mut self, params: Value) -> Result<Value, CtapStatus> {
        let mut params = prf_wire::request_salts(with_user_defaults(params), 6)?;
        let large_blob = large_blob::take_registration(&mut params)?;
        let request: make_credential::Request = decode_params(params)?;
        let client_data_hash = request.client_data_hash.to_vec();
        let response = self
            .inner
            .make_credential(request)
            .await
            .map_err(status_of)?;
        let response = prf_wire::response_outputs(encode_response(&response)?, 6);
        let mut response = prf_wire::signed_hmac_secret(response);
        if large_blob {
            large_blob::answer_registration(&mut response);
        }
        Ok(self_attested(response, &client_data_hash, self.store()))
    }

    async fn get_assertion(&mut self, params: Value) -> Result<Value, CtapStatus> {
        let mut params = prf_wire::request_salts(params, 4)?;
        let large_blob = large_blob::take_authentication(&mut params)?;
        let request: get_assertion::Request = decode_params(params)?;
        let response = self.inner.get_assertion(request).await.map_err(status_of)?;
        let mut response = prf_wire::response_outputs(encode_response(&response)?, 8);
        if let Some(large_blob) = large_blob {
            large_blob::answer_authentication(large_blob, &mut response, self.store())?;
        }
        Ok(response)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(s: &str) -> Value {
        Value::Text(s.into())
    }

    /// makeCredential as libfido2's `fido2-cred -M` builds it: no rp name, no displayName.
    fn libfido2_make_credential(user: Value) -> Value {
        Value::map([
            (Value::Unsigned(1), Value::Bytes(vec![1; 32])),
            (
                Value::Unsigned(2),
                Value::map([(text("id"), text("example.com"))]),
            ),
            (Value::Unsigned(3), user),
            (
                Value::Unsigned(4),
                Value::Array(vec![Value::map([
                    (text("alg"), Value::integer(-7)),
                    (text("type"), text("public-key")),
                ])]),
            ),
            (
                Value::Unsigned(7),
                Value::map([(text("rk"), Value::Bool(true))]),
            ),
        ])
    }

    fn prf_eval(first: u8, second: Option<u8>) -> Value {
        let mut values = vec![(text("first"), Value::Bytes(vec![first; 32]))];
        if let Some(second) = second {
            values.push((text("second"), Value::Bytes(vec![second; 32])));
        }
        Value::map([(
            text("prf"),
            Value::map([(text("eval"), Value::map(values))]),
        )])
    }

    fn prf_results(response: &Value, key: u64) -> (Vec<u8>, Option<Vec<u8>>) {
        let Value::Map(map) = response else {
            panic!("not a map: {response:?}")
        };
        let outputs = map.get(&Value::Unsigned(key)).expect("unsigned outputs");
        let Value::Map(outputs) = outputs else {
            panic!("{outputs:?}")
        };
        let Some(Value::Map(prf)) = outputs.get(&text("prf")) else {
            panic!("{outputs:?}")
        };
        let Some(Value::Map(results)) = prf.get(&text("results")) else {
            panic!("{prf:?}")
        };
        let bytes = |k: &str| {
            results
                .get(&text(k))
                .and_then(Value::as_bytes)
                .map(<[u8]>::to_vec)
        };
        (bytes("first").expect("first"), bytes("second"))
    }

    fn with_extensions(request: Value, key: u64, extensions: Value) -> Value {
        let Value::Map(mut map) = request else {
            unreachable!()
        };
        map.insert(Value::Unsigned(key), extensions);
        Value::Map(map)
    }

    fn get_assertion(extensions: Value) -> Value {
        Value::map([
            (Value::Unsigned(1), text("example.com")),
            (Value::Unsigned(2), Value::Bytes(vec![2; 32])),
            (Value::Unsigned(4), extensions),
        ])
    }

    /// The `prf` extension as Chrome sends it to a phone (salts already hashed, outputs
    /// unsigned): evaluated at registration and again, with the same result, at sign-in,
    /// also after the store was reopened from its file.
    #[tokio::test]
    async fn prf_is_evaluated_at_registration_and_sign_in_and_survives_the_file() {
        let dir = std::env::temp_dir().join(format!("cable-phone-prf-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("passkeys.json");
        let mut authenticator =
            SoftwareAuthenticator::new(PasskeyStore::open(&path).unwrap(), AlwaysApprove);
        let info = authenticator.get_info().await;
        let Value::Map(info) = info else { panic!() };
        assert_eq!(
            info.get(&Value::Unsigned(2)),
            Some(&Value::Array(vec![text("prf"), text("largeBlob")]))
        );
        let user = Value::map([
            (text("id"), Value::Bytes(vec![7; 16])),
            (text("name"), text("ada")),
        ]);
        let made = authenticator
            .make_credential(with_extensions(
                libfido2_make_credential(user),
                6,
                prf_eval(1, Some(2)),
            ))
            .await
            .unwrap();
        let (first, second) = prf_results(&made, 6);
        assert_eq!(first.len(), 32);
        // The signed authenticator data says the credential has its PRF secret.
        let Value::Map(made_map) = &made else {
            unreachable!()
        };
        let auth_data = made_map[&Value::Unsigned(2)].as_bytes().unwrap();
        assert_eq!(auth_data[32] & 0x80, 0x80);
        assert!(auth_data.ends_with(b"\xa1\x6bhmac-secret\xf5"));
        assert_ne!(Some(&first), second.as_ref());

        let mut reopened =
            SoftwareAuthenticator::new(PasskeyStore::open(&path).unwrap(), AlwaysApprove);
        let asserted = reopened
            .get_assertion(get_assertion(prf_eval(1, Some(2))))
            .await
            .unwrap();
        assert_eq!(prf_results(&asserted, 8), (first.clone(), second));
        let other = reopened
            .get_assertion(get_assertion(prf_eval(3, None)))
            .await
            .unwrap();
        let (other_first, none) = prf_results(&other, 8);
        assert_ne!(other_first, first);
        assert_eq!(none, None);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn a_user_without_display_name_or_name_is_registered() {
        for user in [
            Value::map([
                (text("id"), Value::Bytes(vec![7; 16])),
                (text("name"), text("ada")),
            ]),
            Value::map([
                (text("id"), Value::Bytes(vec![8; 16])),
                (text("displayName"), text("Ada")),
            ]),
            Value::map([(text("id"), Value::Bytes(vec![9; 16]))]),
        ] {
            let store = PasskeyStore::in_memory();
            let mut authenticator = SoftwareAuthenticator::new(store.clone(), AlwaysApprove);
            let made = authenticator
                .make_credential(libfido2_make_credential(user.clone()))
                .await;
            assert!(made.is_ok(), "{user:?}: {made:?}");
            assert_eq!(store.list().len(), 1);
        }
    }
}
