//! A complete FIDO hybrid ceremony in one process, for `cable demo` and the end-to-end tests.
//!
//! It wires the real parts together without a radio or the internet: a tunnel relay
//! (`cable-tunnel-server`) on loopback, an in-memory BLE air shared by both sides, the
//! computer side (`cable-client`) and a phone (`cable-phone` with its software authenticator,
//! approving every request). A relying party built on `webauthn_rp`, a server-side WebAuthn
//! library independent of this project, issues the options and verifies the responses, so a
//! passing ceremony means a real relying party would accept it.
//!
//! It deliberately does not narrate, draw QR codes or decide deadlines for a person: the
//! binary that shows the demo does that. Nothing here is meant for production use: the
//! relying party keeps its credentials in memory and the phone approves everything.
//!
//! Central types: [`Harness`] (relay + air, with constructors for both sides) and
//! [`RelyingParty`].

pub mod harness;
pub mod rp;

pub use harness::{client_config_for, loopback_connector, short_deadlines, Harness, HarnessError};
pub use rp::{RelyingParty, RpError};
