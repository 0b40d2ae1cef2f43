//! The session's errors as the foreign languages see them: one exception type whose cases
//! each name the phase that failed.

use std::error::Error as StdError;

use cable_phone::PhoneError;

use crate::authenticator::GetInfoError;

/// A step of a session (as `cable_phone::Phase`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum Phase {
    /// Reading the scanned `FIDO:/` text.
    ParseQr,
    /// Reading a contact from a linked computer.
    Contact,
    /// Opening the tunnel on the relay.
    OpenTunnel,
    /// Putting the advert on the air.
    Advertise,
    /// Waiting for the computer to join and send its handshake message.
    AwaitComputer,
    /// Answering the handshake.
    Handshake,
    /// Sending the post-handshake message (getInfo goes with it).
    PostHandshake,
    /// Waiting for the CTAP request.
    AwaitRequest,
    /// The app's authenticator (and its user) handling the request.
    Authenticate,
    /// Sending the CTAP response.
    Reply,
}

impl From<cable_phone::Phase> for Phase {
    fn from(phase: cable_phone::Phase) -> Self {
        use cable_phone::Phase as P;
        match phase {
            P::ParseQr => Phase::ParseQr,
            P::Contact => Phase::Contact,
            P::OpenTunnel => Phase::OpenTunnel,
            P::Advertise => Phase::Advertise,
            P::AwaitComputer => Phase::AwaitComputer,
            P::Handshake => Phase::Handshake,
            P::PostHandshake => Phase::PostHandshake,
            P::AwaitRequest => Phase::AwaitRequest,
            P::Authenticate => Phase::Authenticate,
            P::Reply => Phase::Reply,
        }
    }
}

/// Why a session failed. Every case but the first three names the [`Phase`]; `reason` is
/// a sentence for logs and people (it never holds the QR secret or key material). The field
/// is not called `message`: in Kotlin that would clash with `Throwable.message` and the
/// bindings would not compile.
#[derive(Debug, thiserror::Error, uniffi::Error)]
pub enum SessionError {
    /// The configuration cannot be used (e.g. a relay URL that is not `ws://` or `wss://`).
    #[error("invalid configuration: {reason}")]
    InvalidConfig {
        /// What is wrong.
        reason: String,
    },
    /// `run` or `run_async` was called a second time; a session serves one ceremony.
    #[error("this session has already run")]
    AlreadyRun,
    /// The binding could not start its runtime, or `run` was called on one of the binding's
    /// own threads (from inside a callback).
    #[error("{reason}")]
    Runtime {
        /// What went wrong.
        reason: String,
    },
    /// The scanned text is not a usable caBLE QR code (malformed, stale, or asking for
    /// something this phone does not offer).
    #[error("{reason}")]
    InvalidQr {
        /// Always [`Phase::ParseQr`].
        phase: Phase,
        /// What is wrong with it.
        reason: String,
    },
    /// A push message that is not a contact for this phone (another subscription's keys,
    /// tampered, not a contact), or from a computer this phone no longer links to.
    #[error("{reason}")]
    InvalidContact {
        /// Always [`Phase::Contact`].
        phase: Phase,
        /// What is wrong with it.
        reason: String,
    },
    /// The app's authenticator gave a getInfo that cannot be sent.
    #[error("{reason}")]
    Authenticator {
        /// Always [`Phase::PostHandshake`].
        phase: Phase,
        /// What is wrong with it.
        reason: String,
    },
    /// The app's advertiser could not start.
    #[error("{reason}")]
    Advertise {
        /// Always [`Phase::Advertise`].
        phase: Phase,
        /// The advertiser's reason.
        reason: String,
    },
    /// The relay could not be reached or the tunnel broke.
    #[error("{reason}")]
    Network {
        /// Where it happened.
        phase: Phase,
        /// What the transport reported.
        reason: String,
    },
    /// The computer's messages did not authenticate or could not be read (a wrong QR code,
    /// tampering, or a computer speaking something else).
    #[error("{reason}")]
    Protocol {
        /// Where it happened.
        phase: Phase,
        /// What failed.
        reason: String,
    },
    /// The computer left before the request was answered.
    #[error("{reason}")]
    ComputerLeft {
        /// Where it happened.
        phase: Phase,
        /// A sentence saying so.
        reason: String,
    },
    /// The phase's deadline passed (often: no computer scanned for the advert).
    #[error("{reason}")]
    TimedOut {
        /// The phase that ran out of time.
        phase: Phase,
        /// A sentence saying so.
        reason: String,
    },
    /// The app called [`cancel`](crate::PhoneSession::cancel).
    #[error("{reason}")]
    Cancelled {
        /// The phase that was running.
        phase: Phase,
        /// A sentence saying so.
        reason: String,
    },
}

/// The error and its causes as one line: "a: b: c".
pub(crate) fn chain(error: &dyn StdError) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

impl From<PhoneError> for SessionError {
    fn from(error: PhoneError) -> Self {
        let phase = Phase::from(error.phase());
        let reason = chain(&error);
        match error {
            PhoneError::InvalidQr(_)
            | PhoneError::StaleQr { .. }
            | PhoneError::DigitalCredentialRequest { .. } => {
                SessionError::InvalidQr { phase, reason }
            }
            PhoneError::BadContact(_) | PhoneError::UnknownLink => {
                SessionError::InvalidContact { phase, reason }
            }
            PhoneError::BadGetInfo(_) => SessionError::Authenticator { phase, reason },
            PhoneError::NoDomainId { .. } => SessionError::InvalidConfig { reason },
            PhoneError::Advertise(_) => SessionError::Advertise { phase, reason },
            PhoneError::Transport { .. } => SessionError::Network { phase, reason },
            PhoneError::Timeout { .. } => SessionError::TimedOut { phase, reason },
            PhoneError::Cancelled { .. } => SessionError::Cancelled { phase, reason },
            PhoneError::ComputerLeft { .. } => SessionError::ComputerLeft { phase, reason },
            _ => SessionError::Protocol { phase, reason },
        }
    }
}

impl From<GetInfoError> for SessionError {
    fn from(error: GetInfoError) -> Self {
        SessionError::Authenticator {
            phase: Phase::PostHandshake,
            reason: chain(&error),
        }
    }
}
