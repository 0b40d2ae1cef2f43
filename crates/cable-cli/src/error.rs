//! The CLI's error type: every failure maps to an exit code and one line on stderr.

use std::path::PathBuf;

/// Exit code for input the user gave that could not be used.
pub const EXIT_BAD_INPUT: u8 = 2;
/// Exit code for a failure while doing the work (I/O, network, peer).
pub const EXIT_FAILURE: u8 = 1;

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("invalid QR code: {0}")]
    BadQr(#[source] cable_proto::Error),
    #[error("invalid advert: {0}")]
    BadAdvert(#[source] cable_proto::Error),
    #[error("invalid advert: not hex ({0})")]
    AdvertNotHex(#[source] hex::FromHexError),
    #[error("invalid domain id {input:?}: expected a number from 0 to 65535")]
    DomainIdNotANumber { input: String },
    #[error("invalid domain id: {0}")]
    BadDomain(#[source] cable_proto::Error),
    #[error("cannot render the QR code: {0}")]
    Render(#[from] crate::render::RenderError),
    #[error("a {format} image is binary: pass --out FILE or redirect standard output")]
    BinaryToTerminal { format: &'static str },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write to standard output: {0}")]
    Stdout(#[source] std::io::Error),
    #[error("cannot start the async runtime: {0}")]
    Runtime(#[source] std::io::Error),
    #[error("Bluetooth is not ready (see above)")]
    BluetoothNotReady,
    #[error("Bluetooth")]
    Bluetooth(#[source] cable_ble::BleError),
    #[error("relay")]
    BadRelay(#[source] cable_transport::TransportError),
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("passkey store {path}")]
    Store {
        path: PathBuf,
        #[source]
        source: cable_phone::StoreError,
    },
    #[error("phone")]
    Phone(#[source] cable_phone::PhoneError),
    #[error(transparent)]
    Ceremony(#[from] crate::ceremony::CeremonyError),
}

/// The error and its causes on one line, each cause once: "phone: invalid QR code: …".
pub fn chain(err: &dyn std::error::Error) -> String {
    let mut line = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        // Some errors already print their cause inside their own message.
        if !line.ends_with(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
        source = cause.source();
    }
    line
}

impl CliError {
    /// Bad input exits with 2, anything else with 1.
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::BadQr(_)
            | CliError::BadAdvert(_)
            | CliError::AdvertNotHex(_)
            | CliError::DomainIdNotANumber { .. }
            | CliError::BadDomain(_)
            | CliError::BinaryToTerminal { .. }
            | CliError::BadRelay(_) => EXIT_BAD_INPUT,
            CliError::Phone(e) if e.phase() == cable_phone::Phase::ParseQr => EXIT_BAD_INPUT,
            CliError::Render(_)
            | CliError::Write { .. }
            | CliError::Stdout(_)
            | CliError::Runtime(_)
            | CliError::BluetoothNotReady
            | CliError::Bluetooth(_)
            | CliError::Read { .. }
            | CliError::Store { .. }
            | CliError::Phone(_) => EXIT_FAILURE,
            CliError::Ceremony(e) => e.exit_code(),
        }
    }
}
