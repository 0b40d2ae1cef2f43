//! `cable qr`: a fresh QR code in the terminal, or as a PNG or SVG file.

use crate::error::CliError;
use crate::out::outln;
use crate::render::{Rendered, TerminalStyle};
use cable_proto::qr::{QrKey, RequestHint};
use std::io::{IsTerminal, Write};
use std::path::PathBuf;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Hint {
    /// getAssertion: sign in with an existing passkey.
    Ga,
    /// makeCredential: create a passkey.
    Mc,
}

impl From<Hint> for RequestHint {
    fn from(h: Hint) -> Self {
        match h {
            Hint::Ga => RequestHint::GetAssertion,
            Hint::Mc => RequestHint::MakeCredential,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Unicode half blocks, black on white, with the FIDO:/ text beneath.
    Terminal,
    /// A PNG image (8 pixels per module).
    Png,
    /// An SVG document.
    Svg,
}

#[derive(Debug, clap::Args)]
pub struct QrArgs {
    /// What the QR code announces to the phone.
    #[arg(long, value_enum, default_value = "ga", allow_hyphen_values = true)]
    pub hint: Hint,
    /// Output format.
    #[arg(
        long,
        value_enum,
        default_value = "terminal",
        allow_hyphen_values = true
    )]
    pub format: Format,
    /// Write the image to this file instead of standard output; the FIDO:/ text is then
    /// printed on standard output.
    #[arg(long, value_name = "FILE", allow_hyphen_values = true)]
    pub out: Option<PathBuf>,
}

/// Whether the terminal rendering may use colour escapes: only on a terminal, and not with
/// NO_COLOR (https://no-color.org). Pipes and files get plain text.
pub fn terminal_style(to_terminal: bool) -> TerminalStyle {
    if !to_terminal || std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty()) {
        TerminalStyle::Plain
    } else {
        TerminalStyle::Ansi
    }
}

pub fn run(args: &QrArgs) -> Result<(), CliError> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    // The private key is dropped (and zeroized) on return: this command shows what a
    // computer would display, for testing scanners and phones.
    let key = QrKey::generate(&mut rand_core::OsRng, now, args.hint.into());
    let uri = key.to_uri();
    let rendered = Rendered::new(&uri)?;
    let (bytes, binary): (Vec<u8>, Option<&'static str>) = match args.format {
        Format::Terminal => (
            format!(
                "{}{uri}\n",
                rendered.terminal(terminal_style(
                    args.out.is_none() && std::io::stdout().is_terminal(),
                ))
            )
            .into_bytes(),
            None,
        ),
        Format::Png => (rendered.png(8)?, Some("PNG")),
        Format::Svg => (rendered.svg().into_bytes(), None),
    };
    match &args.out {
        Some(path) => {
            // The image carries the QR secret: private to its owner, like the stores.
            cable_store::replace_private(path, &bytes).map_err(CliError::Write)?;
            if args.format != Format::Terminal {
                outln!("{uri}")?;
            }
            Ok(())
        }
        None => {
            let mut stdout = std::io::stdout().lock();
            if let Some(format) = binary {
                if stdout.is_terminal() {
                    return Err(CliError::BinaryToTerminal { format });
                }
            }
            stdout
                .write_all(&bytes)
                .and_then(|()| stdout.flush())
                .map_err(CliError::Stdout)
        }
    }
}
