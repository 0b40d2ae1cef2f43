//! Progress events a session reports while it runs.

use cable_proto::ids::RoutingId;

/// The kind of CTAP request the computer made (the protocol core's dispatch decides it).
pub use cable_proto::session::RequestKind;

/// What happened so far. Purely informational: the session's result carries every error.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Progress {
    /// The relay accepted the tunnel and assigned a routing id.
    TunnelOpen {
        /// From `X-caBLE-Routing-ID`.
        routing_id: RoutingId,
    },
    /// The encrypted advert is on the air.
    Advertising {
        /// The 20 bytes of service data.
        advert: [u8; 20],
    },
    /// The computer completed the handshake; advertising stopped.
    ComputerConnected,
    /// Linking data went to the computer (QR key 4 asked for it): it can contact this phone
    /// later without a QR code.
    LinkOffered,
    /// The CTAP request arrived.
    RequestReceived {
        /// Which command.
        kind: RequestKind,
        /// The relying party it names, when it names one.
        rp_id: Option<String>,
    },
    /// The response was sent.
    Replied {
        /// The CTAP status byte (0 = success).
        status: u8,
    },
}
