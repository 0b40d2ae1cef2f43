//! The phone (authenticator) side of a FIDO hybrid (caBLE v2) ceremony.
//!
//! What it is: a [`PhoneSession`] that takes the text of a scanned `FIDO:/` QR code and
//! completes one ceremony with the computer that showed it:
//!
//! 1. parse the QR code (refusing stale ones), derive the tunnel id;
//! 2. open `/cable/new/<tunnel id>` on a relay and read the routing id;
//! 3. encrypt an EID naming the relay and hand the 20-byte advert to an
//!    [`Advertiser`](cable_ble::Advertiser);
//! 4. answer the computer's KNpsk0 handshake and stop advertising;
//! 5. send the post-handshake message `{1: getInfo, 3: ["ctap"]}`, then an update message
//!    padded to 528 bytes, with linking data when the QR code asks for it and the phone has
//!    a [`PhoneIdentity`] with a contact id;
//! 6. serve exactly one CTAP request through an [`Authenticator`], reply, and close the
//!    WebSocket (a phone never sends the shutdown message).
//!
//! [`PrintAdvertiser`] writes the advert as a line `advert: <hex>` instead, for another program
//! to broadcast (or for debugging); `cable_ble::Air` is the in-memory radio for tests and demos.
//!
//! Each phase has a deadline ([`Deadlines`]); the caller cancels with a
//! [`tokio_util::sync::CancellationToken`]; failures are [`PhoneError`]s naming the [`Phase`];
//! [`Progress`] events arrive on a channel taken with [`PhoneSession::progress`] before
//! running.
//!
//! It also bundles [`SoftwareAuthenticator`], an [`Authenticator`] built on
//! passkey-authenticator (1Password passkey-rs): ES256, resident credentials in a
//! [`PasskeyStore`] that can persist to a file, and a [`UserApproval`] hook for presence and
//! verification. Its getInfo lists no PIN protocols, `rk` and `uv` true, and the transports
//! `internal` and `hybrid`.
//!
//! A linked computer reaches the phone again without a QR code through a contact: the relay
//! pushes a [`ContactRequest`] and [`PhoneSession::contact`] joins that tunnel, advertises
//! under the link's secret and answers NKpsk0 with the identity key, then serves as above.
//! [`PhoneIdentity`] keeps the root secret every key and link secret derives from, and the
//! links, so that they can be listed and removed.
//!
//! To be reachable, the phone registers its Web Push subscription with a relay
//! ([`register_for_contacts`]) for the contact id it hands out; [`PushKeys::open`] turns a
//! pushed message into a [`ContactRequest`], and [`PushEndpoint`] is a minimal push
//! endpoint of its own (plain HTTP, for a relay on the same host or private network) for
//! phones that have no platform push service.
//!
//! What it deliberately does not do: digital-credential (JSON) requests, more than one request
//! per session, or any cryptography of its own (that is `cable-proto`; sockets are
//! `cable-transport`).

mod authenticator;
mod domain_cache;
mod error;
pub mod identity;
mod print_advertiser;
mod progress;
pub mod push;
mod push_endpoint;
mod session;
pub mod software;

pub use authenticator::{Authenticator, CtapStatus};
pub use error::{IdentityError, Phase, PhoneError, StoreError};
pub use identity::{LinkRecord, LinkSelector, PhoneIdentity, Registration};
pub use print_advertiser::PrintAdvertiser;
pub use progress::{Progress, RequestKind};
pub use push::{register_for_contacts, PushError, PushKeys};
pub use push_endpoint::PushEndpoint;
pub use session::{ContactRequest, Deadlines, Outcome, PhoneSession, DEFAULT_RELAY};
pub use software::{
    AlwaysApprove, AlwaysDeny, PasskeyStore, Prompt, SoftwareAuthenticator, UserApproval,
};
pub use tokio_util::sync::CancellationToken;
