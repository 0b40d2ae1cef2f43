//! Computer side of the FIDO hybrid transport (caBLE v2).
//!
//! What a browser, desktop app or credential manager embeds so a person can use a phone as
//! the authenticator: it takes the WebAuthn options JSON a relying party's front end hands
//! over, runs CTAP2 against the phone and returns the response JSON the relying party expects.
//!
//! This module tree has two layers:
//! - pure, deterministic pieces: WebAuthn options parsing ([`webauthn::options`]),
//!   `clientDataJSON` ([`webauthn::client_data`]), CTAP2 requests in canonical CBOR and the
//!   checks on the phone's replies ([`registration`], [`authentication`], [`ctap`]), and the
//!   response JSON ([`webauthn::response`]);
//! - [`session`]: the async ceremony over BLE adverts and the tunnel relay ([`Ceremony`]).
//!
//! It deliberately does not: speak PIN/UV auth protocols (hybrid phones verify the user
//! themselves), send silent pre-flight requests, or run state-assisted (linked) sessions.
//!
//! Central types: [`Ceremony`] with [`CeremonyConfig`] and [`Progress`],
//! [`PreparedRegistration`] / [`PreparedAuthentication`] (one request each),
//! [`RegistrationResponse`] / [`AuthenticationResponse`], [`ClientError`].

#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod authentication;
pub mod cbor;
pub mod ctap;
mod error;
pub mod registration;
pub mod session;
pub mod webauthn;

pub use authentication::PreparedAuthentication;
pub use ctap::AuthenticatorInfo;
pub use error::{ctap_status_name, ClientError, Phase};
pub use registration::PreparedRegistration;
pub use session::{
    Ceremony, CeremonyConfig, CeremonyRequest, Deadlines, Progress, ProgressReceiver,
};
pub use webauthn::response::{AuthenticationResponse, RegistrationResponse};
