//! The phone side of a FIDO hybrid ceremony for apps written in Kotlin, Swift or Python.
//!
//! [UniFFI](https://mozilla.github.io/uniffi-rs/) bindings over [`cable_phone`]: an app hands
//! a [`PhoneSession`] the scanned `FIDO:/` text, the relay it chose, and two objects of its
//! own:
//!
//! - an [`Advertiser`] that puts 20 bytes of service data under UUID `0xFFF9` on the air
//!   (Android: `BluetoothLeAdvertiser`; Linux: BlueZ) and takes them off again;
//! - an [`Authenticator`] that answers getInfo, makeCredential and getAssertion as CTAP2
//!   CBOR, so credentials stay in the app's own vault and keys in its Keystore or Keychain.
//!
//! The binding owns its tokio runtime: callers never run one. Blocking callbacks run on the
//! runtime's blocking pool, so they may block for as long as the person takes (up to the
//! session's `authenticate_timeout_secs`). An app with asynchronous code implements
//! [`AsyncAuthenticator`] and [`AsyncAdvertiser`] instead (coroutines, `suspend fun`s,
//! `async` functions) and passes them through [`async_authenticator`] and
//! [`async_advertiser`]: the session awaits them without holding a thread, and cancelling it
//! cancels the coroutine in flight. [`PhoneSession::run`] blocks; [`PhoneSession::run_async`] is a coroutine,
//! `suspend fun` or `async` function. Progress arrives at an optional [`ProgressListener`];
//! failures are [`SessionError`]s naming the [`Phase`] that failed.
//!
//! See `docs/embedding.md` in the repository for the app's duties.

mod advertiser;
mod authenticator;
#[cfg(target_os = "linux")]
mod bluez;
mod error;
mod identity;
mod progress;
mod registry;
mod runtime;
mod session;

pub use advertiser::{async_advertiser, Advertiser, AdvertiserError, AsyncAdvertiser};
pub use authenticator::{
    async_authenticator, AsyncAuthenticator, Authenticator, AuthenticatorError,
};
#[cfg(target_os = "linux")]
pub use bluez::bluez_advertiser;
pub use error::{Phase, SessionError};
pub use identity::{IdentityError, LinkedComputer, PhoneIdentity};
pub use progress::{ProgressEvent, ProgressListener, RequestKind};
pub use session::{Outcome, PhoneSession, SessionConfig};

uniffi::setup_scaffolding!("cable_phone");
