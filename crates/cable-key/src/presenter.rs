//! What the person at the computer sees of the bridge: the QR code, the progress, the
//! confirmation authenticatorSelection asks for. The `cable key` command shows it in its
//! terminal and as desktop notifications; an embedder brings its own.

use cable_client::{ClientError, Progress};
use cable_uhid::RequestId;

use crate::classify::Kind;

/// How a ceremony reaches the phone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Target<'a> {
    /// A QR code to show: the `FIDO:/…` text. It holds the session's secret: show it, do
    /// not keep it.
    Qr(&'a str),
    /// A linked phone, contacted through its relay; no QR code.
    LinkedPhone(&'a str),
}

/// A ceremony the bridge starts for a host's request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Start<'a> {
    /// The host's request.
    pub id: RequestId,
    /// Register or sign in.
    pub kind: Kind,
    /// The relying party the host named (as the host said it: unverified).
    pub rp_id: &'a str,
    /// How the phone is reached.
    pub target: Target<'a>,
}

/// How a request that needed the person ended.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub enum Outcome<'a> {
    /// The phone answered with this CTAP status (0: success); the host has the answer.
    Answered {
        /// The status byte.
        status: u8,
    },
    /// The ceremony ended without the phone's answer; the host got `status`.
    Failed {
        /// Why.
        error: &'a ClientError,
        /// What the host was answered.
        status: u8,
    },
    /// A confirmation at the bridge ended; the host got `status`.
    Confirmed {
        /// What the host was answered.
        status: u8,
    },
}

/// Shows the bridge to the person. Methods run on the bridge's tasks and should return
/// quickly.
#[async_trait::async_trait]
pub trait Presenter: Send + Sync + 'static {
    /// A ceremony starts: show the QR code, or say which phone is being contacted.
    fn started(&self, start: &Start<'_>);

    /// A step of the ceremony for request `id`.
    fn progress(&self, id: RequestId, progress: &Progress) {
        let _ = (id, progress);
    }

    /// Request `id` is over (the QR code can go).
    fn ended(&self, id: RequestId, outcome: &Outcome<'_>);

    /// The host asks the person to choose this key (authenticatorSelection, or the touch a
    /// host asks of a CTAP 2.0 key). `true` once they confirm, `false` if they decline. The
    /// future is dropped when the host cancels or the bridge's time limit passes.
    async fn confirm(&self, id: RequestId) -> bool;
}
