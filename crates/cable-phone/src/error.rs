//! The one error type of this crate, and the phases it names.

use std::fmt;

use cable_transport::TransportError;

/// A step of a phone session; every error says which one failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Phase {
    /// Reading the scanned `FIDO:/` text.
    ParseQr,
    /// Reading a contact (the push payload) and looking up the link it names.
    Contact,
    /// Opening `/cable/new/<tunnel id>` on the relay.
    OpenTunnel,
    /// Putting the advert on the air.
    Advertise,
    /// Waiting for the computer to join the tunnel and send its handshake message.
    AwaitComputer,
    /// Answering the Noise handshake.
    Handshake,
    /// Sending the post-handshake message.
    PostHandshake,
    /// Waiting for the CTAP request.
    AwaitRequest,
    /// The authenticator (and its user) handling the request.
    Authenticate,
    /// Sending the CTAP response.
    Reply,
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Phase::ParseQr => "reading the QR code",
            Phase::Contact => "answering a contact",
            Phase::OpenTunnel => "opening the tunnel",
            Phase::Advertise => "advertising",
            Phase::AwaitComputer => "waiting for the computer",
            Phase::Handshake => "handshake",
            Phase::PostHandshake => "sending the post-handshake message",
            Phase::AwaitRequest => "waiting for the request",
            Phase::Authenticate => "authenticating",
            Phase::Reply => "replying",
        })
    }
}

/// Everything that can make a phone session fail.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PhoneError {
    /// The scanned text is not a valid caBLE QR code.
    #[error("invalid QR code")]
    InvalidQr(#[source] cable_proto::Error),
    /// The contact's client payload (`{1: link id, 2: client nonce, 3: hint}`) is malformed.
    #[error("invalid client payload in the contact")]
    BadContact(#[source] cable_proto::Error),
    /// A contact named a link id this phone does not know (never made, or unlinked since);
    /// nothing was sent and nothing stored was changed.
    #[error("the computer asked for a link this phone does not have")]
    UnknownLink,
    /// The identity file could not be read again to look the link up.
    #[error("the phone's identity cannot be read")]
    Identity(#[source] IdentityError),
    /// The QR code asks for a digital credential (hint `dcp`/`dci`, CTAP 2.3); this phone
    /// answers CTAP2 (passkeys) only.
    #[error("the QR code asks for a digital credential ({hint}); this phone offers passkeys only")]
    DigitalCredentialRequest {
        /// The QR's hint as written.
        hint: &'static str,
    },
    /// The relay's host name maps to no caBLE domain id (neither an assigned name nor a
    /// hashed `cable.<hash>.<tld>` one) and none was set: an advert could only name another
    /// relay, so the computer would look for the tunnel in the wrong place. Nothing was
    /// opened or advertised.
    #[error("relay host {host} has no caBLE domain id; set the domain id computers know it by")]
    NoDomainId {
        /// The relay's host name.
        host: String,
    },
    /// The QR code's timestamp (key 3) is outside the accepted window.
    #[error("QR code is stale: generated {age_secs} s ago, accepted up to {max_age_secs} s")]
    StaleQr {
        /// Seconds between the QR's timestamp and now (negative: from the future).
        age_secs: i64,
        /// The configured window.
        max_age_secs: u64,
    },
    /// A tunnel operation failed.
    #[error("{phase}: tunnel error")]
    Transport {
        /// Where it happened.
        phase: Phase,
        /// What the transport reported.
        #[source]
        source: TransportError,
    },
    /// The phase's deadline passed.
    #[error("{phase}: timed out")]
    Timeout {
        /// The phase that ran out of time.
        phase: Phase,
    },
    /// The caller cancelled the session.
    #[error("{phase}: cancelled")]
    Cancelled {
        /// The phase that was running.
        phase: Phase,
    },
    /// The advert could not be put on the air.
    #[error("advertising failed")]
    Advertise(#[source] cable_ble::BleError),
    /// The computer's handshake message did not authenticate (wrong QR secret, tampered or
    /// malformed message).
    #[error("handshake with the computer failed")]
    Handshake(#[source] cable_proto::Error),
    /// A decrypted message could not be parsed.
    #[error("{phase}: malformed message from the computer")]
    Protocol {
        /// Where it happened.
        phase: Phase,
        /// The parser's error.
        #[source]
        source: cable_proto::Error,
    },
    /// The computer sent a message type this phone does not serve (e.g. JSON).
    #[error("{phase}: unsupported message type {message_type} from the computer")]
    UnsupportedMessage {
        /// Where it happened.
        phase: Phase,
        /// The type byte.
        message_type: u8,
    },
    /// The computer sent a CTAP command this phone does not serve.
    #[error("unsupported CTAP command {command:#04x}")]
    UnsupportedCommand {
        /// The command byte.
        command: u8,
    },
    /// The computer left (shutdown or closed tunnel) while the request was being handled.
    #[error("{phase}: the computer left")]
    ComputerLeft {
        /// Where it happened.
        phase: Phase,
    },
    /// The computer sent more getInfo requests than any real client does.
    #[error("too many getInfo requests")]
    TooManyRequests,
    /// The authenticator's getInfo response is not a canonical CBOR map (a bug in the
    /// [`crate::Authenticator`] implementation); nothing was sent to the computer.
    #[error("the authenticator's getInfo response cannot be sent")]
    BadGetInfo(#[source] cable_proto::Error),
}

impl PhoneError {
    /// The phase this error belongs to.
    pub fn phase(&self) -> Phase {
        match self {
            PhoneError::InvalidQr(_)
            | PhoneError::StaleQr { .. }
            | PhoneError::DigitalCredentialRequest { .. } => Phase::ParseQr,
            PhoneError::BadContact(_) | PhoneError::UnknownLink | PhoneError::Identity(_) => {
                Phase::Contact
            }
            PhoneError::Transport { phase, .. }
            | PhoneError::Timeout { phase }
            | PhoneError::Cancelled { phase }
            | PhoneError::Protocol { phase, .. }
            | PhoneError::UnsupportedMessage { phase, .. }
            | PhoneError::ComputerLeft { phase } => *phase,
            PhoneError::NoDomainId { .. } => Phase::OpenTunnel,
            PhoneError::Advertise(_) => Phase::Advertise,
            PhoneError::Handshake(_) => Phase::Handshake,
            PhoneError::BadGetInfo(_) => Phase::PostHandshake,
            PhoneError::UnsupportedCommand { .. } | PhoneError::TooManyRequests => {
                Phase::AwaitRequest
            }
        }
    }

    pub(crate) fn transport(phase: Phase, source: TransportError) -> Self {
        match source {
            TransportError::Timeout(_) => PhoneError::Timeout { phase },
            source => PhoneError::Transport { phase, source },
        }
    }
}

/// Why the credential store file could not be opened ([`crate::PasskeyStore::open`]) or
/// saved.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The file cannot be used as it is (other users can read it, it is a symbolic link, …)
    /// or reading, locking or writing it failed. The message names the file and, for the
    /// first kind, the fix.
    #[error(transparent)]
    File(#[from] cable_store::Error),
    /// The file is not a credential store of a supported version.
    #[error("not a valid credential store file")]
    Format(#[from] serde_json::Error),
    /// A field of a stored credential is not valid.
    #[error("stored credential {index} has an invalid {field}")]
    BadCredential {
        /// Position in the file.
        index: usize,
        /// Which field.
        field: &'static str,
    },
    /// The file has a version this code does not know.
    #[error("unsupported store version {0}")]
    UnsupportedVersion(u32),
}

/// Why the phone's identity file could not be opened or changed
/// ([`crate::PhoneIdentity`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IdentityError {
    /// The file cannot be used as it is (other users can read it, it is a symbolic link, …)
    /// or reading, locking or writing it failed. The message names the file and, for the
    /// first kind, the fix.
    #[error(transparent)]
    File(#[from] cable_store::Error),
    /// The file is not a phone identity file of a supported version.
    #[error("not a valid phone identity file")]
    Format(#[from] serde_json::Error),
    /// A field of the file is not valid.
    #[error("the phone identity file has an invalid {field}")]
    BadField {
        /// Which field.
        field: &'static str,
    },
    /// The file has a version this code does not know.
    #[error("unsupported phone identity version {0}")]
    UnsupportedVersion(u32),
    /// The file now holds another identity than the one this process opened; nothing was
    /// written.
    #[error("{path} was replaced by another phone identity")]
    Replaced {
        /// The file.
        path: std::path::PathBuf,
    },
    /// The authenticator name is empty or longer than [`crate::identity::MAX_NAME_LEN`]
    /// bytes.
    #[error("the phone's name must be 1 to 64 bytes, not {len}")]
    BadName {
        /// Its length in bytes.
        len: usize,
    },
    /// No link matches what was asked for.
    #[error("no link named {name:?}")]
    NoSuchLink {
        /// The name or link id asked for.
        name: String,
    },
}

impl IdentityError {
    /// Whether the caller asked for something that is not there (rather than the file
    /// failing).
    pub fn is_input_error(&self) -> bool {
        matches!(
            self,
            IdentityError::NoSuchLink { .. } | IdentityError::BadName { .. }
        )
    }
}
