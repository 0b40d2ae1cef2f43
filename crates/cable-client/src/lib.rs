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
//! - [`session`]: the async ceremony over BLE adverts and the tunnel relay ([`Ceremony`]):
//!   post-handshake revisions 1 and 0, the legacy transport construction of old phones,
//!   update messages (linking signatures verified), shutdown and a short linger.
//!
//! ```no_run
//! # async fn example(scanner: std::sync::Arc<dyn cable_ble::Scanner>, options_json: &str)
//! # -> Result<(), cable_client::ClientError> {
//! use cable_client::{Ceremony, CeremonyConfig};
//! let config = CeremonyConfig::new(scanner)?;
//! let (ceremony, mut progress) =
//!     Ceremony::register(config, options_json, "https://example.com")?; // options checked here
//! println!("{}", ceremony.qr_uri()); // render it as a QR code
//! let response = ceremony.run(tokio_util::sync::CancellationToken::new()).await?;
//! let json_for_the_relying_party = response.to_json_string();
//! # Ok(()) }
//! ```
//!
//! It deliberately does not: speak PIN/UV auth protocols (hybrid phones verify the user
//! themselves), send silent pre-flight requests or getInfo over the tunnel (getInfo comes
//! from the post-handshake message and is answered locally), or act on extensions other than
//! `credProps`, `credProtect`, `prf`, `largeBlob`, `credBlob`/`getCredBlob` and
//! `minPinLength` (WebAuthn lets a client ignore the rest). An extension goes to the phone
//! only when its getInfo lists it; `largeBlob` is the CTAP extension Chrome sends phones
//! ([`webauthn::large_blob`]), with the data compressed and inflated here.
//!
//! `prf` ([`webauthn::prf`]) is spoken as Chrome speaks it to phones: hashed salts under the
//! CTAP extension `prf`, outputs from the phone's unsigned extension outputs. The outputs are
//! in [`RegistrationResponse::prf`] / [`AuthenticationResponse::prf`]; the response JSON for
//! the relying party's server carries `enabled` only, never the secret outputs.
//!
//! Linking: with a [`LinkedPhones`] store in [`CeremonyConfig::linked_phones`] the QR code asks
//! the phone to link (key 4), and linking data whose signature verifies is stored
//! ([`linked`]); without one, key 4 is `false` and whatever a phone offers is verified,
//! reported as progress and dropped. A stored phone is used again, with no QR code, through
//! [`Ceremony::with_linked_phone`] (the state-assisted flow, PROTOCOL.md §10): contact through
//! its relay, its advert keyed by the link secret, NKpsk0 with its identity key.
//!
//! Central types: [`Ceremony`] with [`CeremonyConfig`] and [`Progress`],
//! [`PreparedRegistration`] / [`PreparedAuthentication`] (one request each),
//! [`RegistrationResponse`] / [`AuthenticationResponse`], [`ClientError`].

#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod authentication;
pub mod ctap;
mod dom;
mod error;
pub mod linked;
pub mod registration;
pub mod session;
pub mod webauthn;

pub use authentication::PreparedAuthentication;
pub use ctap::AuthenticatorInfo;
pub use dom::DomException;
pub use error::{chain as error_chain, ctap_status_name, ClientError, Phase};
pub use linked::{LinkedPhone, LinkedPhones, LinkedStoreError};
pub use registration::PreparedRegistration;
pub use session::{
    Ceremony, CeremonyConfig, CeremonyRequest, Deadlines, LinkedCeremony, Progress,
    ProgressReceiver,
};
pub use webauthn::response::{AuthenticationResponse, RegistrationResponse};
