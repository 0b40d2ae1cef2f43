//! # cable-key: a phone as a USB security key
//!
//! Apps on Linux that speak to security keys (browsers without hybrid, `ssh-keygen -t
//! ecdsa-sk`, `pam_u2f`, `systemd-cryptenroll`, every libfido2 tool) reach a phone through
//! a virtual FIDO HID device: [`cable_uhid::VirtualKey`] speaks CTAPHID on `/dev/uhid`,
//! and the [`HybridBridge`] behind it carries each request to a phone over the hybrid
//! transport, byte for byte, and the phone's answer back the same way.
//!
//! What the key answers ([`classify`]):
//!
//! | request | answer |
//! |---|---|
//! | authenticatorGetInfo | at once, by the key itself ([`cable_uhid::info`]) |
//! | makeCredential, getAssertion | a hybrid ceremony: QR code (or `--phone`), keepalives until the phone answers, its answer as is; the request goes as the host built it, in canonical CBOR ([`forward::canonical`]) |
//! | getAssertion with `up: false` and an allow list | at once, "the first of these" (a host's pre-flight probe; never a QR code); the real request that follows takes the whole probed list to the phone ([`preflight`]) |
//! | getAssertion with `up: false`, no allow list | CTAP2_ERR_NO_CREDENTIALS at once |
//! | getNextAssertion | the further credentials the phone returned, else CTAP2_ERR_NOT_ALLOWED |
//! | authenticatorSelection, zero-length pinUvAuthParam | confirmed by the person at the bridge ([`Presenter::confirm`]) |
//! | clientPIN getKeyAgreement | at once, by the key ([`client_pin`]: it lists PIN/UV auth protocols 2 and 1 for hosts that want one, has no PIN and grants no token) |
//! | clientPIN's other subcommands | CTAP2_ERR_INVALID_SUBCOMMAND |
//! | reset, credential management, large blobs, config, … | CTAP1_ERR_INVALID_COMMAND |
//!
//! CTAPHID_CANCEL, or the last app closing the device, cancels the ceremony: the scan
//! stops and the tunnel closes, so the phone's screen goes back too.

mod bridge;
pub mod classify;
pub mod client_pin;
pub mod forward;
pub mod preflight;
pub mod presenter;
pub mod status;

pub use bridge::{BridgeConfig, HybridBridge};
pub use classify::Kind;
pub use presenter::{Outcome, Presenter, Start, Target};
