//! The rules after the advert, as two deterministic state machines.
//!
//! A session is fed the tunnel's binary WebSocket messages as they arrive
//! (`handle_frame`) and asked for the messages to send (`poll_transmit`) and
//! for what happened (`poll_event`). It owns the Noise handshake, the
//! transport cipher and the message rules of both protocol revisions; it owns
//! no socket, no radio, no clock and no RNG (randomness is drawn once, when a
//! session is created). Deadlines, cancellation and the authenticator stay in
//! the async adapters (`cable-client`, `cable-phone`), which only move bytes
//! between the tunnel and these machines.
//!
//! | machine | role | created | ends |
//! |---|---|---|---|
//! | [`DesktopSession`] | Noise initiator (computer) | QR flow: when the advert is found; linked flow: when the contact tunnel is open | after [`DesktopSession::shutdown`] and the linger for late updates |
//! | [`PhoneSession`] | Noise responder (phone) | when the relay assigned a routing id (the advert comes with it) | after one CTAP request is answered, or on the computer's shutdown |
//!
//! After an error the machine is failed: it accepts nothing more, but what
//! [`DesktopSession::poll_transmit`] / [`PhoneSession::poll_transmit`] still
//! yields (an error reply to the peer) should be sent before closing.

mod desktop;
mod phone;

pub use desktop::{DesktopEvent, DesktopSession, DesktopState};
pub use phone::{PhoneEvent, PhoneSession, PhoneState, RequestKind, ServeRequest, MAX_GET_INFO};

#[cfg(test)]
mod tests;
