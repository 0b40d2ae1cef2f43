//! Shared helpers for the end-to-end tests in `e2e/` and for `cable demo`.
//!
//! - [`harness`]: an in-process tunnel relay on loopback, an in-memory BLE air, and
//!   constructors for the computer side (`cable-client`) and a phone (`cable-phone` with its
//!   software authenticator).
//! - [`scripted`]: a phone driven step by step, to misbehave on purpose.
//! - [`rp`]: a relying party on `webauthn_rp`, an independent server-side WebAuthn library,
//!   that issues the options JSON and verifies the responses.

pub mod harness;
pub mod rp;
pub mod scripted;

pub use harness::{client_config_for, loopback_connector, test_deadlines, Harness, HarnessError};
pub use rp::{RelyingParty, RpError};
