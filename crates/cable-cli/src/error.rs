//! The CLI's one error type: every failure maps to an exit code and one line on stderr.
//!
//! Messages follow the workspace convention: a message says what failed and never repeats
//! its source; [`chain`] joins the message and its sources into the line a person reads.

use std::path::PathBuf;

/// Exit code for input the user gave that could not be used.
pub const EXIT_BAD_INPUT: u8 = 2;
/// Exit code for a failure while doing the work (I/O, network, peer).
pub const EXIT_FAILURE: u8 = 1;
/// Ctrl-C: the status a shell reports for a process ended by SIGINT.
pub const EXIT_INTERRUPTED: u8 = 130;

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    // ----- input -----
    #[error("invalid QR code")]
    BadQr(#[source] cable_proto::Error),
    #[error("invalid advert")]
    BadAdvert(#[source] cable_proto::Error),
    #[error("invalid advert: not hex")]
    AdvertNotHex(#[source] hex::FromHexError),
    #[error("invalid domain id {input:?}: expected a number from 0 to 65535")]
    DomainIdNotANumber { input: String },
    #[error("invalid domain id")]
    BadDomain(#[source] cable_proto::Error),
    #[error("a {format} image is binary: pass --out FILE or redirect standard output")]
    BinaryToTerminal { format: &'static str },
    #[error("invalid relay settings")]
    BadRelay(#[source] cable_transport::TransportError),
    #[error("invalid --ca-file {path}")]
    BadCaFile {
        path: PathBuf,
        #[source]
        source: cable_transport::TransportError,
    },
    #[error("cannot read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid --contact-id: expected base64url")]
    BadContactId,
    #[error("the phone has no identity file: pass --identity FILE or --store FILE")]
    NoPhoneIdentity,
    #[error("no link is named {name:?} (see `cable phone links`)")]
    NoSuchLink { name: String },
    #[error("invalid --name: 1 to 64 bytes, not {len}")]
    BadPhoneName { len: usize },
    #[error("--options or --rp-id is required")]
    MissingRpId,
    #[error("{flag} must not be empty")]
    EmptyFlag { flag: &'static str },
    #[error("--prf takes at most two inputs (first and second)")]
    TooManyPrfInputs,
    /// The origin defaults to `https://<rp id>`; options without an RP id leave nothing to
    /// default to.
    #[error("the options name no relying party id: pass --origin")]
    MissingOrigin,

    // ----- work -----
    #[error("cannot render the QR code")]
    Render(#[from] crate::render::RenderError),
    /// An output file (`cable qr --out`); the store's error names the path.
    #[error("cannot write the output file")]
    Write(#[source] cable_store::Error),
    #[error("cannot write to standard output")]
    Stdout(#[source] std::io::Error),
    #[error("cannot start the async runtime")]
    Runtime(#[source] std::io::Error),
    #[error("Bluetooth is not ready (see above)")]
    BluetoothNotReady,
    #[error("Bluetooth")]
    Bluetooth(#[from] cable_ble::BleError),
    #[error("cannot use the passkey store {path}")]
    Store {
        path: PathBuf,
        #[source]
        source: cable_phone::StoreError,
    },
    #[error("cannot use the phone identity {path}")]
    Identity {
        path: PathBuf,
        #[source]
        source: cable_phone::IdentityError,
    },
    #[error("phone")]
    Phone(#[from] cable_phone::PhoneError),
    /// The phone could only advertise another relay's domain id.
    #[error("relay host {host} has no caBLE domain id, so no computer could find the tunnel: pass --domain-id (`cable inspect domain ID` names an id's host)")]
    NoDomainId { host: String },
    #[error("cannot listen for pushes on {addr}")]
    PushListen {
        addr: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("phone")]
    Push(#[source] cable_phone::PushError),
    #[error("linked phones")]
    Linked(#[from] cable_client::LinkedStoreError),
    #[error(
        "no place for the linked-phone store: set HOME or XDG_DATA_HOME, or pass --phones-file"
    )]
    NoDataDir,
    /// A linked phone was contacted but never showed up in Bluetooth range.
    #[error("{name:?} did not answer within {seconds} s: is it unlocked, near this computer, with Bluetooth on? (without --phone a QR code is shown instead)")]
    PhoneSilent { name: String, seconds: u64 },
    #[error("cannot open {path}: {hint}")]
    Uhid {
        path: PathBuf,
        hint: String,
        #[source]
        source: std::io::Error,
    },
    #[cfg(target_os = "linux")]
    #[error("the virtual key")]
    Key(#[source] cable_uhid::KeyError),
    #[error("the kernel removed the virtual key")]
    KeyGone,
    /// The ceremony's own error already says what failed.
    #[error(transparent)]
    Client(#[from] cable_client::ClientError),
    #[cfg(feature = "demo")]
    #[error("demo")]
    DemoSetup(#[from] cable_demo::HarnessError),
    #[cfg(feature = "demo")]
    #[error("the relying party refused")]
    DemoRp(#[from] cable_demo::RpError),
    #[cfg(feature = "demo")]
    #[error("the simulated phone did not link")]
    DemoNotLinked,
}

/// The error and its causes on one line: "phone: invalid QR code: …".
pub use cable_client::error_chain as chain;

impl CliError {
    /// Bad input exits with 2, Ctrl-C with 130, SIGTERM with 143, anything else with 1.
    pub fn exit_code(&self) -> u8 {
        if matches!(
            self,
            CliError::Client(cable_client::ClientError::Cancelled { .. })
                | CliError::Phone(cable_phone::PhoneError::Cancelled { .. })
        ) {
            return crate::signals::cancelled_exit_code();
        }
        let bad_input = match self {
            CliError::BadQr(_)
            | CliError::BadAdvert(_)
            | CliError::AdvertNotHex(_)
            | CliError::DomainIdNotANumber { .. }
            | CliError::BadDomain(_)
            | CliError::BinaryToTerminal { .. }
            | CliError::BadRelay(_)
            | CliError::BadCaFile { .. }
            | CliError::Read { .. }
            | CliError::MissingRpId
            | CliError::EmptyFlag { .. }
            | CliError::TooManyPrfInputs
            | CliError::MissingOrigin
            | CliError::BadContactId
            | CliError::NoPhoneIdentity
            | CliError::NoSuchLink { .. }
            | CliError::BadPhoneName { .. }
            | CliError::NoDataDir
            | CliError::NoDomainId { .. } => true,
            CliError::Linked(e) => e.is_input_error(),
            CliError::Phone(e) => e.phase() == cable_phone::Phase::ParseQr,
            CliError::Push(e) => matches!(e, cable_phone::PushError::BadEndpoint(_)),
            CliError::Client(e) => e.is_input_error(),
            CliError::Render(_)
            | CliError::Write(_)
            | CliError::Stdout(_)
            | CliError::Runtime(_)
            | CliError::BluetoothNotReady
            | CliError::Bluetooth(_)
            | CliError::Store { .. }
            | CliError::PhoneSilent { .. }
            | CliError::PushListen { .. }
            | CliError::Identity { .. }
            | CliError::Uhid { .. }
            | CliError::KeyGone => false,
            #[cfg(feature = "demo")]
            CliError::DemoSetup(_) | CliError::DemoRp(_) | CliError::DemoNotLinked => false,
            #[cfg(target_os = "linux")]
            CliError::Key(_) => false,
        };
        if bad_input {
            EXIT_BAD_INPUT
        } else {
            EXIT_FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cable_client::{ClientError, Phase};

    #[test]
    fn the_chain_names_each_cause_once() {
        let err = CliError::Phone(cable_phone::PhoneError::InvalidQr(
            cable_proto::Error::QrPrefix,
        ));
        assert_eq!(
            chain(&err),
            "phone: invalid QR code: QR: missing FIDO:/ prefix"
        );
        // A transparent wrapper adds nothing of its own.
        let err = CliError::Client(ClientError::Protocol {
            phase: Phase::Handshake,
            source: cable_proto::Error::HandshakeFailed,
        });
        assert_eq!(
            chain(&err),
            "protocol error during the handshake with the phone: \
             handshake failed: peer message did not authenticate"
        );
    }

    #[test]
    fn a_cause_that_ends_like_the_message_is_still_printed() {
        // The chain used to drop a cause whose text ended the line so far; an error and its
        // cause may well end alike.
        #[derive(Debug, thiserror::Error)]
        #[error("timed out")]
        struct Inner;
        #[derive(Debug, thiserror::Error)]
        #[error("the phone timed out")]
        struct Outer(#[source] Inner);
        assert_eq!(chain(&Outer(Inner)), "the phone timed out: timed out");
    }

    #[test]
    fn the_client_says_which_of_its_errors_are_input() {
        let input = CliError::Client(ClientError::EmptyChallenge);
        assert_eq!(input.exit_code(), EXIT_BAD_INPUT);
        let work = CliError::Client(ClientError::ScanEnded);
        assert_eq!(work.exit_code(), EXIT_FAILURE);
    }
}
