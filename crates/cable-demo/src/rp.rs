//! A relying party backed by `webauthn_rp`, an independent server-side WebAuthn library.
//!
//! It issues options JSON exactly as its serde serialisation produces them and verifies the
//! response JSON with its strict deserialisers, so a passing ceremony means a real relying
//! party would accept what the computer side returned.

use std::sync::Mutex;

use webauthn_rp::bin::{Decode, Encode};
use webauthn_rp::request::auth::{
    AuthenticationVerificationOptions, AuthenticatorAttachmentEnforcement, PrfInput,
};
use webauthn_rp::request::register::{
    CredProtect, PublicKeyCredentialUserEntity, RegistrationVerificationOptions, UserHandle64,
};
use webauthn_rp::request::{AsciiDomain, ExtensionInfo, ExtensionReq, RpId};
use webauthn_rp::response::register::{CompressedPubKey, DynamicState, StaticState};
use webauthn_rp::{
    AggErr, AuthenticatedCredential, DiscoverableAuthentication64,
    DiscoverableAuthenticationServerState, DiscoverableCredentialRequestOptions,
    PublicKeyCredentialCreationOptions, Registration, RegistrationServerState,
};

/// Why the relying party refused.
#[derive(Debug, thiserror::Error)]
pub enum RpError {
    /// The response JSON does not deserialise (strict WebAuthn Level 3 JSON).
    #[error("response JSON rejected")]
    Json(#[from] serde_json::Error),
    /// webauthn_rp refused the options or the ceremony.
    #[error("webauthn_rp refused")]
    WebAuthn(#[from] AggErr),
    /// A stored credential could not be read back.
    #[error("stored credential key unreadable")]
    StoredKey,
    /// No ceremony was started.
    #[error("no ceremony in progress")]
    NoCeremony,
    /// The assertion names a credential this RP never registered.
    #[error("unknown credential")]
    UnknownCredential,
}

type Key = CompressedPubKey<[u8; 32], [u8; 32], [u8; 48], Vec<u8>>;

struct StoredCredential {
    id: Vec<u8>,
    user: UserHandle64,
    static_state: Vec<u8>,
    dynamic_state: DynamicState,
}

#[derive(Default)]
struct State {
    registration: Option<RegistrationServerState<64>>,
    authentication: Option<DiscoverableAuthenticationServerState>,
    credentials: Vec<StoredCredential>,
}

/// A relying party for one RP id and origin, keeping its credentials in memory.
pub struct RelyingParty {
    rp_id: RpId,
    origin: String,
    state: Mutex<State>,
}

impl std::fmt::Debug for RelyingParty {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RelyingParty")
            .field("origin", &self.origin)
            .finish_non_exhaustive()
    }
}

impl RelyingParty {
    /// A relying party for `rp_id` (a domain) at `origin` (e.g. `https://example.com`).
    pub fn new(rp_id: &str, origin: &str) -> Result<Self, RpError> {
        let domain = AsciiDomain::try_from(rp_id.to_owned()).map_err(AggErr::from)?;
        Ok(RelyingParty {
            rp_id: RpId::Domain(domain),
            origin: origin.to_owned(),
            state: Mutex::new(State::default()),
        })
    }

    /// The origin the relying party expects in client data.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Starts a passkey registration (discoverable, user verification required) and returns
    /// the `PublicKeyCredentialCreationOptionsJSON` to hand to the client.
    pub fn start_registration(
        &self,
        user_name: &str,
        display_name: &str,
    ) -> Result<String, RpError> {
        self.start_registration_with(user_name, display_name, false)
    }

    /// As [`Self::start_registration`], asking for a credential with the `prf` extension.
    /// A reported `enabled` must be true. It is not required: webauthn_rp's "required"
    /// wants `hmac-secret` in the signed authenticator data, which a hybrid phone's
    /// unsigned `prf` output (Chrome's, and the bundled authenticator's) does not give.
    pub fn start_registration_with_prf(
        &self,
        user_name: &str,
        display_name: &str,
    ) -> Result<String, RpError> {
        self.start_registration_with(user_name, display_name, true)
    }

    fn start_registration_with(
        &self,
        user_name: &str,
        display_name: &str,
        prf: bool,
    ) -> Result<String, RpError> {
        let user_id = UserHandle64::new();
        let user = PublicKeyCredentialUserEntity {
            name: user_name.try_into().map_err(AggErr::from)?,
            id: &user_id,
            display_name: Some(display_name.try_into().map_err(AggErr::from)?),
        };
        let mut options = PublicKeyCredentialCreationOptions::first_passkey(&self.rp_id, user);
        // webauthn_rp's passkey preset asks for credProtect with enforcement; the bundled
        // software authenticator has no credProtect, and a conforming client must then refuse
        // (the client's own tests cover that), so this relying party does not ask for it.
        options.extensions.cred_protect = CredProtect::None;
        if prf {
            options.extensions.prf = Some(ExtensionInfo::AllowEnforceValue);
        }
        let (server, client) = options.start_ceremony().map_err(AggErr::from)?;
        let json = serde_json::to_string(&client)?;
        self.state().registration = Some(server);
        Ok(json)
    }

    /// Verifies `RegistrationResponseJSON` and stores the credential; returns its id.
    pub fn finish_registration(&self, response_json: &str) -> Result<Vec<u8>, RpError> {
        let registration: Registration = serde_json::from_str(response_json)?;
        let server = self
            .state()
            .registration
            .take()
            .ok_or(RpError::NoCeremony)?;
        let origins = [self.origin.as_str()];
        let options = RegistrationVerificationOptions::<&str, &str> {
            allowed_origins: &origins,
            require_authenticator_attachment: true,
            ..RegistrationVerificationOptions::default()
        };
        let credential = server
            .verify(&self.rp_id, &registration, &options)
            .map_err(AggErr::from)?;
        let id = credential.id().as_ref().to_vec();
        let stored = StoredCredential {
            id: id.clone(),
            user: *credential.user_id(),
            static_state: credential
                .static_state()
                .encode()
                .map_err(|_| RpError::StoredKey)?,
            dynamic_state: credential.dynamic_state(),
        };
        self.state().credentials.push(stored);
        Ok(id)
    }

    /// Starts a discoverable sign-in and returns `PublicKeyCredentialRequestOptionsJSON`.
    pub fn start_authentication(&self) -> Result<String, RpError> {
        self.start_authentication_with(None)
    }

    /// As [`Self::start_authentication`], asking the client to evaluate the `prf` extension
    /// at `first` (and `second`). The outputs stay with the client: the response must not
    /// carry them, and this relying party refuses one that does.
    pub fn start_authentication_with_prf(
        &self,
        first: &[u8],
        second: Option<&[u8]>,
    ) -> Result<String, RpError> {
        self.start_authentication_with(Some(PrfInput {
            first,
            second,
            ext_info: ExtensionReq::Allow,
        }))
    }

    fn start_authentication_with(&self, prf: Option<PrfInput<'_>>) -> Result<String, RpError> {
        let mut options = DiscoverableCredentialRequestOptions::passkey(&self.rp_id);
        options.0.extensions.prf = prf;
        let (server, client) = options.start_ceremony().map_err(AggErr::from)?;
        let json = serde_json::to_string(&client)?;
        self.state().authentication = Some(server);
        Ok(json)
    }

    /// Verifies `AuthenticationResponseJSON` against the stored credential; returns its id.
    pub fn finish_authentication(&self, response_json: &str) -> Result<Vec<u8>, RpError> {
        let authentication: DiscoverableAuthentication64 = serde_json::from_str(response_json)?;
        let mut state = self.state();
        let server = state.authentication.take().ok_or(RpError::NoCeremony)?;
        let raw_id = authentication.raw_id();
        let index = state
            .credentials
            .iter()
            .position(|c| c.id.as_slice() == raw_id.as_ref())
            .ok_or(RpError::UnknownCredential)?;
        let stored = &state.credentials[index];
        let static_state = StaticState::<Key>::decode(stored.static_state.as_slice())
            .map_err(|_| RpError::StoredKey)?;
        let mut credential =
            AuthenticatedCredential::new(raw_id, &stored.user, static_state, stored.dynamic_state)
                .map_err(AggErr::from)?;
        let origins = [self.origin.as_str()];
        let options = AuthenticationVerificationOptions::<&str, &str> {
            allowed_origins: &origins,
            // The attachment must be sent and stay "cross-platform" from registration on.
            auth_attachment_enforcement: AuthenticatorAttachmentEnforcement::Fail(true),
            ..AuthenticationVerificationOptions::default()
        };
        server
            .verify(&self.rp_id, &authentication, &mut credential, &options)
            .map_err(AggErr::from)?;
        let dynamic = credential.dynamic_state();
        let id = raw_id.as_ref().to_vec();
        state.credentials[index].dynamic_state = dynamic;
        Ok(id)
    }
}
