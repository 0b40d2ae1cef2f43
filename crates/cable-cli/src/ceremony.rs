//! `cable register` and `cable login`: the computer side of a ceremony from a terminal.
//!
//! The options come from flags (the CLI plays the relying party's front end) or, with
//! `--options FILE`, from the JSON a real relying party produced. The QR code and a spinner
//! go to stderr; the response JSON goes to stdout, so `cable login … --json > out.json` works.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::Duration;

use cable_client::{Ceremony, CeremonyConfig, ClientError, Progress, ProgressReceiver};
use cable_proto::rand_core::{OsRng, RngCore};
use cable_transport::RelayUrl;
use clap::Args;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::ble::BleChoice;
use crate::render::{Rendered, TerminalStyle};

/// Flags shared by `register` and `login`.
#[derive(Debug, Args)]
pub struct CommonArgs {
    /// Web origin the ceremony is for (default: https://<rp-id>).
    #[arg(long)]
    pub origin: Option<String>,
    /// Tunnel relay to use whatever the phone's advert names (private relays, tests),
    /// e.g. wss://relay.example.org or ws://127.0.0.1:8080.
    #[arg(long)]
    pub relay: Option<String>,
    /// Print the response as one line of JSON and nothing else on stdout.
    #[arg(long)]
    pub json: bool,
    /// How the phone's advert is heard: bluez (the system's Bluetooth) or air (a simulation
    /// through files in CABLE_AIR_DIR, for two `cable` processes on one machine without
    /// Bluetooth).
    #[arg(long, value_enum, default_value = "bluez")]
    pub ble: BleChoice,
    /// Bluetooth adapter (name such as hci1, or address); default: the first one.
    #[arg(long, default_value = "default")]
    pub adapter: String,
    /// Seconds to wait for the phone's advert after the QR code is shown.
    #[arg(long, default_value_t = 180)]
    pub scan_timeout: u64,
}

/// `cable register`.
#[derive(Debug, Args)]
pub struct RegisterArgs {
    /// Relying party id (a domain, e.g. example.com).
    #[arg(long, required_unless_present = "options")]
    pub rp_id: Option<String>,
    /// User name stored with the passkey.
    #[arg(long, required_unless_present = "options")]
    pub user: Option<String>,
    /// User display name (default: the user name).
    #[arg(long)]
    pub display_name: Option<String>,
    /// Challenge, base64url (default: 32 random bytes).
    #[arg(long)]
    pub challenge: Option<String>,
    /// PublicKeyCredentialCreationOptions JSON from a relying party (a file, or - for stdin)
    /// instead of the flags above.
    #[arg(long, conflicts_with_all = ["user", "display_name", "challenge"])]
    pub options: Option<PathBuf>,
    #[command(flatten)]
    pub common: CommonArgs,
}

/// `cable login`.
#[derive(Debug, Args)]
pub struct LoginArgs {
    /// Relying party id (a domain, e.g. example.com).
    #[arg(long, required_unless_present = "options")]
    pub rp_id: Option<String>,
    /// Challenge, base64url (default: 32 random bytes).
    #[arg(long)]
    pub challenge: Option<String>,
    /// Allowed credential id, base64url (repeatable; default: any passkey for the RP).
    #[arg(long = "credential-id")]
    pub credential_ids: Vec<String>,
    /// PublicKeyCredentialRequestOptions JSON from a relying party (a file, or - for stdin)
    /// instead of the flags above.
    #[arg(long, conflicts_with_all = ["challenge", "credential_ids"])]
    pub options: Option<PathBuf>,
    #[command(flatten)]
    pub common: CommonArgs,
}

/// Why `register`, `login` or `demo` failed.
#[derive(Debug, thiserror::Error)]
pub enum CeremonyError {
    #[error("cannot read {path}: {source}")]
    ReadOptions {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("--options or --rp-id is required")]
    MissingRpId,
    #[error("invalid --relay: {0}")]
    Relay(#[source] cable_transport::TransportError),
    #[error("{0}")]
    Client(#[from] ClientError),
    #[error("Bluetooth: {0}")]
    Ble(#[from] cable_ble::BleError),
    #[error("cannot render the QR code: {0}")]
    Render(#[from] crate::render::RenderError),
    #[error("cannot start the async runtime: {0}")]
    Runtime(#[source] std::io::Error),
    #[error("cannot write to standard output: {0}")]
    Stdout(#[source] std::io::Error),
    #[error("demo: {0}")]
    DemoSetup(#[from] cable_e2e::HarnessError),
    #[error("demo: the phone failed: {0}")]
    DemoPhone(#[from] cable_phone::PhoneError),
    #[error("demo: the relying party refused: {0}")]
    DemoRp(#[from] cable_e2e::RpError),
}

impl CeremonyError {
    /// 2 for input that cannot be used, 1 for failures while working.
    pub fn exit_code(&self) -> u8 {
        let bad_input = match self {
            CeremonyError::ReadOptions { .. }
            | CeremonyError::MissingRpId
            | CeremonyError::Relay(_) => true,
            CeremonyError::Client(e) => matches!(
                e,
                ClientError::OptionsJson { .. }
                    | ClientError::BadBase64 { .. }
                    | ClientError::BadOrigin { .. }
                    | ClientError::RpIdMismatch { .. }
                    | ClientError::BadUserId { .. }
                    | ClientError::EmptyChallenge
                    | ClientError::NoSupportedAlgorithm
            ),
            _ => false,
        };
        if bad_input {
            crate::error::EXIT_BAD_INPUT
        } else {
            crate::error::EXIT_FAILURE
        }
    }
}

fn random_b64url(len: usize) -> String {
    let mut bytes = vec![0u8; len];
    OsRng.fill_bytes(&mut bytes);
    cable_client::webauthn::options::b64url(&bytes)
}

fn read_options(path: &PathBuf) -> Result<String, CeremonyError> {
    let read = if path.as_os_str() == "-" {
        std::io::read_to_string(std::io::stdin())
    } else {
        std::fs::read_to_string(path)
    };
    read.map_err(|source| CeremonyError::ReadOptions {
        path: path.clone(),
        source,
    })
}

/// Creation options as a relying party asking for a passkey would send them.
pub fn creation_options(
    rp_id: &str,
    user: &str,
    display_name: Option<&str>,
    challenge: Option<&str>,
) -> String {
    json!({
        "rp": {"id": rp_id, "name": rp_id},
        "user": {
            "id": random_b64url(16),
            "name": user,
            "displayName": display_name.unwrap_or(user),
        },
        "challenge": challenge.map_or_else(|| random_b64url(32), str::to_owned),
        "pubKeyCredParams": [
            {"type": "public-key", "alg": -7},
            {"type": "public-key", "alg": -8},
            {"type": "public-key", "alg": -257}
        ],
        "authenticatorSelection": {"residentKey": "required", "userVerification": "required"},
        "attestation": "none"
    })
    .to_string()
}

/// Request options for signing in.
pub fn request_options(rp_id: &str, challenge: Option<&str>, credential_ids: &[String]) -> String {
    let allow: Vec<_> = credential_ids
        .iter()
        .map(|id| json!({"type": "public-key", "id": id}))
        .collect();
    json!({
        "rpId": rp_id,
        "challenge": challenge.map_or_else(|| random_b64url(32), str::to_owned),
        "allowCredentials": allow,
        "userVerification": "required"
    })
    .to_string()
}

fn origin_for(common: &CommonArgs, rp_id: Option<&str>, options: &str) -> String {
    if let Some(origin) = &common.origin {
        return origin.clone();
    }
    // With --options and no --origin, the options' RP id names the site.
    let from_options = serde_json::from_str::<serde_json::Value>(options)
        .ok()
        .and_then(|v| {
            let v = v.get("publicKey").cloned().unwrap_or(v);
            v.get("rpId")
                .or_else(|| v.get("rp").and_then(|rp| rp.get("id")))
                .and_then(|id| id.as_str().map(str::to_owned))
        });
    format!(
        "https://{}",
        rp_id
            .map(str::to_owned)
            .or(from_options)
            .unwrap_or_default()
    )
}

fn runtime() -> Result<tokio::runtime::Runtime, CeremonyError> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(CeremonyError::Runtime)
}

async fn config(common: &CommonArgs) -> Result<CeremonyConfig, CeremonyError> {
    let scanner = common.ble.scanner(&common.adapter).await?;
    let mut config = CeremonyConfig::new(scanner)?;
    if let Some(relay) = &common.relay {
        config.relay_override = Some(RelayUrl::parse(relay).map_err(CeremonyError::Relay)?);
    }
    config.deadlines.scan = Duration::from_secs(common.scan_timeout);
    Ok(config)
}

/// Draws the QR code for `uri` on stderr.
pub fn show_qr(uri: &str) -> Result<(), CeremonyError> {
    let style = if std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none() {
        TerminalStyle::Ansi
    } else {
        TerminalStyle::Plain
    };
    let drawing = Rendered::new(uri)?.terminal(style);
    eprintln!("{drawing}");
    eprintln!("Scan this code with your phone's camera ({uri})");
    Ok(())
}

/// What the spinner says for a progress event.
pub fn describe(progress: &Progress) -> String {
    match progress {
        Progress::Scanning => "waiting for the phone's advert…".to_owned(),
        Progress::AdvertFound { relay, .. } => {
            format!("phone found, joining its tunnel at {relay}…")
        }
        Progress::TunnelConnected => "tunnel open, handshake…".to_owned(),
        Progress::HandshakeComplete { .. } => "secure channel to the phone established".to_owned(),
        Progress::RequestSent => "confirm on the phone…".to_owned(),
        Progress::ReplyReceived => "the phone answered".to_owned(),
        Progress::LinkingOffered {
            authenticator_name, ..
        } => format!("{authenticator_name} offered to stay linked (not stored)"),
        Progress::Finished => "done".to_owned(),
        _ => "working…".to_owned(),
    }
}

/// Runs `work` while a spinner on stderr shows the latest progress (only on a terminal).
async fn with_spinner<T>(
    work: impl std::future::Future<Output = T>,
    mut progress: ProgressReceiver,
) -> T {
    let animate = std::io::stderr().is_terminal();
    let spinner = tokio::spawn(async move {
        const FRAMES: [char; 10] = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];
        let mut text = "starting…".to_owned();
        let mut frame = 0usize;
        let mut tick = tokio::time::interval(Duration::from_millis(100));
        loop {
            tokio::select! {
                p = progress.recv() => match p {
                    Some(p) => {
                        text = describe(&p);
                        if !animate {
                            eprintln!("{text}");
                        }
                    }
                    None => break,
                },
                _ = tick.tick(), if animate => {
                    frame = (frame + 1) % FRAMES.len();
                    eprint!("\r\x1b[2K{} {text}", FRAMES[frame]);
                    let _ = std::io::stderr().flush();
                }
            }
        }
    });
    let out = work.await;
    spinner.abort();
    if animate {
        eprint!("\r\x1b[2K");
    }
    out
}

fn print_json(value: &serde_json::Value, compact: bool) -> Result<(), CeremonyError> {
    let text = if compact {
        value.to_string()
    } else {
        serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string())
    };
    let mut out = std::io::stdout().lock();
    writeln!(out, "{text}").map_err(CeremonyError::Stdout)
}

fn cancel_on_ctrl_c() -> CancellationToken {
    let cancel = CancellationToken::new();
    let token = cancel.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            token.cancel();
        }
    });
    cancel
}

/// `cable register`.
pub fn register(args: &RegisterArgs) -> Result<(), CeremonyError> {
    let options = match (&args.options, &args.rp_id, &args.user) {
        (Some(path), _, _) => read_options(path)?,
        (None, Some(rp_id), Some(user)) => creation_options(
            rp_id,
            user,
            args.display_name.as_deref(),
            args.challenge.as_deref(),
        ),
        _ => return Err(CeremonyError::MissingRpId),
    };
    let origin = origin_for(&args.common, args.rp_id.as_deref(), &options);
    // Bad options are reported before touching Bluetooth.
    let request = cable_client::PreparedRegistration::new(&options, &origin)?;
    runtime()?.block_on(async {
        let (ceremony, progress) = Ceremony::new(config(&args.common).await?, request);
        show_qr(&ceremony.qr_uri())?;
        let response = with_spinner(ceremony.run(cancel_on_ctrl_c()), progress).await?;
        print_json(&response.to_json(), args.common.json)
    })
}

/// `cable login`.
pub fn login(args: &LoginArgs) -> Result<(), CeremonyError> {
    let options = match (&args.options, &args.rp_id) {
        (Some(path), _) => read_options(path)?,
        (None, Some(rp_id)) => {
            request_options(rp_id, args.challenge.as_deref(), &args.credential_ids)
        }
        _ => return Err(CeremonyError::MissingRpId),
    };
    let origin = origin_for(&args.common, args.rp_id.as_deref(), &options);
    let request = cable_client::PreparedAuthentication::new(&options, &origin)?;
    runtime()?.block_on(async {
        let (ceremony, progress) = Ceremony::new(config(&args.common).await?, request);
        show_qr(&ceremony.qr_uri())?;
        let response = with_spinner(ceremony.run(cancel_on_ctrl_c()), progress).await?;
        print_json(&response.to_json(), args.common.json)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flag_options_parse_as_webauthn_json() {
        let json = creation_options("example.com", "ada", None, Some("AAEC"));
        let reg = cable_client::PreparedRegistration::new(&json, "https://example.com")
            .expect("valid options");
        assert_eq!(reg.options().user_display_name, "ada");
        assert_eq!(reg.options().challenge, vec![0, 1, 2]);
        let json = request_options("example.com", None, &["AQ".to_owned()]);
        let auth = cable_client::PreparedAuthentication::new(&json, "https://example.com")
            .expect("valid options");
        assert_eq!(auth.options().allow_credentials, vec![vec![1]]);
        assert_eq!(auth.options().challenge.len(), 32);
    }

    #[test]
    fn origin_defaults_to_the_rp_id() {
        let common = CommonArgs {
            origin: None,
            relay: None,
            json: false,
            ble: BleChoice::Bluez,
            adapter: "default".into(),
            scan_timeout: 1,
        };
        assert_eq!(
            origin_for(&common, Some("a.example"), "{}"),
            "https://a.example"
        );
        let wrapped = r#"{"publicKey": {"rp": {"id": "b.example"}}}"#;
        assert_eq!(origin_for(&common, None, wrapped), "https://b.example");
        assert_eq!(
            origin_for(&common, None, r#"{"rpId": "c.example"}"#),
            "https://c.example"
        );
    }
}
