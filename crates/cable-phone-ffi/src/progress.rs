//! Progress events for the app's listener.

use cable_phone::Progress;

/// The kind of CTAP request the computer made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum RequestKind {
    /// authenticatorMakeCredential (registration).
    MakeCredential,
    /// authenticatorGetAssertion (sign-in).
    GetAssertion,
    /// authenticatorSelection: the person picked this phone; nothing else follows.
    Selection,
}

impl From<cable_phone::RequestKind> for RequestKind {
    fn from(kind: cable_phone::RequestKind) -> Self {
        match kind {
            cable_phone::RequestKind::MakeCredential => RequestKind::MakeCredential,
            cable_phone::RequestKind::GetAssertion => RequestKind::GetAssertion,
            cable_phone::RequestKind::Selection => RequestKind::Selection,
        }
    }
}

/// What happened so far; informational only (the session's result carries every error).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Enum)]
pub enum ProgressEvent {
    /// The relay accepted the tunnel.
    TunnelOpen {
        /// The relay instance's 3-byte routing id.
        routing_id: Vec<u8>,
    },
    /// The advert is on the air (the advertiser's `start` returned).
    Advertising,
    /// The computer completed the handshake; advertising stopped.
    ComputerConnected,
    /// Linking data went to the computer: it may contact this phone later without a QR code.
    LinkOffered,
    /// The CTAP request arrived; the authenticator is asked next.
    RequestReceived {
        /// Which command.
        kind: RequestKind,
        /// The relying party it names, when it names one: show it to the person.
        rp_id: Option<String>,
    },
    /// The response was sent.
    Replied {
        /// The CTAP status byte (0 = success).
        status: u8,
    },
}

impl ProgressEvent {
    /// `None` for events a newer `cable_phone` adds before this binding knows them.
    pub(crate) fn from_phone(progress: Progress) -> Option<Self> {
        Some(match progress {
            Progress::TunnelOpen { routing_id } => ProgressEvent::TunnelOpen {
                routing_id: routing_id.as_bytes().to_vec(),
            },
            Progress::Advertising { .. } => ProgressEvent::Advertising,
            Progress::ComputerConnected => ProgressEvent::ComputerConnected,
            Progress::LinkOffered => ProgressEvent::LinkOffered,
            Progress::RequestReceived { kind, rp_id } => ProgressEvent::RequestReceived {
                kind: kind.into(),
                rp_id,
            },
            Progress::Replied { status } => ProgressEvent::Replied { status },
            _ => return None,
        })
    }
}

/// Receives [`ProgressEvent`]s in order, on one of the binding's threads; every event of a
/// session arrives before its `run` returns.
#[uniffi::export(with_foreign)]
pub trait ProgressListener: Send + Sync {
    /// One step of the session. Should return quickly (post to the UI thread).
    fn on_progress(&self, event: ProgressEvent);
}
