//! Shared helpers for the end-to-end tests in `e2e/`.
//!
//! - the relay + air + computer + phone harness and the independent relying party come from
//!   `cable-demo` (which `cable demo` uses too), re-exported here;
//! - [`scripted`]: a phone driven step by step, to misbehave on purpose;
//! - [`contact`]: a stand-in relay contact with a linked phone behind it.

pub mod contact;
pub mod scripted;

pub use cable_demo::{
    client_config_for, harness, loopback_connector, rp, short_deadlines as test_deadlines, Harness,
    HarnessError, RelyingParty, RpError,
};
