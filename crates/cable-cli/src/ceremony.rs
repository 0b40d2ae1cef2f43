//! `cable register` and `cable login`: the computer side of a ceremony from a terminal.
//!
//! The options come from flags (the CLI plays the relying party's front end) or, with
//! `--options FILE`, from the JSON a real relying party produced. The QR code and a spinner
//! go to stderr; the response JSON goes to stdout, so `cable login … --json > out.json` works.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::Duration;

use crate::signals::cancel_on_signals;
use cable_client::webauthn::options::{CreationOptions, RequestOptions};
use cable_client::{
    Ceremony, CeremonyConfig, CeremonyRequest, PreparedAuthentication, PreparedRegistration,
    ProgressReceiver,
};
use cable_proto::rand_core::{OsRng, RngCore};
use cable_transport::RelayUrl;
use clap::Args;
use serde_json::json;

use crate::ble::BleChoice;
use crate::error::CliError;
use crate::render::{Rendered, TerminalStyle};

/// Flags shared by `register` and `login`.
#[derive(Debug, Args)]
pub struct CommonArgs {
    /// Web origin the ceremony is for (default: https://<rp-id>).
    #[arg(long, allow_hyphen_values = true)]
    pub origin: Option<String>,
    /// Tunnel relay to use whatever the phone's advert names (private relays, tests),
    /// e.g. wss://relay.example.org or ws://127.0.0.1:8080.
    #[arg(long, allow_hyphen_values = true)]
    pub relay: Option<String>,
    /// Extra CA certificates (PEM) to trust for a private relay, besides the public roots
    /// and the system's certificate store. Read before the QR code is shown.
    #[arg(long, value_name = "PEM", allow_hyphen_values = true)]
    pub ca_file: Option<PathBuf>,
    /// Print the response as one line of JSON and nothing else on stdout.
    #[arg(long)]
    pub json: bool,
    /// How the phone's advert is heard: bluez (the system's Bluetooth) or air (a simulation
    /// through files in CABLE_AIR_DIR, for two `cable` processes on one machine without
    /// Bluetooth).
    #[arg(long, value_enum, default_value = "bluez", allow_hyphen_values = true)]
    pub ble: BleChoice,
    /// Bluetooth adapter (name such as hci1, or address); default: the first one.
    #[arg(long, default_value = "default", allow_hyphen_values = true)]
    pub adapter: String,
    /// Seconds to wait for the phone's advert after the QR code is shown.
    #[arg(long, default_value_t = 180, allow_hyphen_values = true)]
    pub scan_timeout: u64,
    /// Do not ask the phone to link (QR key 4 false): nothing is stored, whatever it offers.
    #[arg(long, conflicts_with = "phone")]
    pub no_link: bool,
    /// Use this linked phone (see `cable phones list`) instead of showing a QR code: the relay
    /// wakes it, it proves it is near over Bluetooth as usual, and answers.
    #[arg(long, value_name = "NAME", allow_hyphen_values = true)]
    pub phone: Option<String>,
    #[command(flatten)]
    pub store: crate::phones::StoreArgs,
    #[command(flatten)]
    pub prf: PrfArgs,
}

/// The `prf` extension from the command line.
#[derive(Debug, Args, Default)]
pub struct PrfArgs {
    /// Ask for the PRF extension (WebAuthn `prf`, what password managers unlock vaults
    /// with) and evaluate it at INPUT, taken as UTF-8 bytes. Twice for a second input (key
    /// rotation). With register, the phone evaluates at once if it can; either way the new
    /// passkey is made with PRF support. Binary inputs: put `extensions.prf` in --options.
    #[arg(
        long = "prf",
        value_name = "INPUT",
        allow_hyphen_values = true,
        requires = "prf_output"
    )]
    pub inputs: Vec<String>,
    /// Where the PRF outputs go: a file created private to this user (0600) holding
    /// `{"enabled"?, "results": {"first", "second"?}}` with base64url values. They are
    /// secret keys: they never appear in the response JSON on stdout, which is meant for the
    /// relying party's server.
    #[arg(long, value_name = "FILE", allow_hyphen_values = true)]
    pub prf_output: Option<PathBuf>,
}

impl PrfArgs {
    /// `extensions.prf` for options built from flags, or `None` without `--prf`.
    fn extension(&self) -> Result<Option<serde_json::Value>, CliError> {
        let b64 = |s: &String| cable_client::webauthn::options::b64url(s.as_bytes());
        match self.inputs.as_slice() {
            [] => Ok(None),
            [first] => Ok(Some(json!({"eval": {"first": b64(first)}}))),
            [first, second] => Ok(Some(
                json!({"eval": {"first": b64(first), "second": b64(second)}}),
            )),
            _ => Err(CliError::TooManyPrfInputs),
        }
    }

    /// Adds `--prf` to options JSON, whether built from flags or read with `--options`.
    fn apply(&self, options_json: String) -> Result<String, CliError> {
        let Some(prf) = self.extension()? else {
            return Ok(options_json);
        };
        let Ok(mut json) = serde_json::from_str::<serde_json::Value>(&options_json) else {
            // The options parser reports what is wrong with it.
            return Ok(options_json);
        };
        let inner = if json.get("publicKey").is_some() {
            &mut json["publicKey"]
        } else {
            &mut json
        };
        if let Some(object) = inner.as_object_mut() {
            let extensions = object.entry("extensions").or_insert_with(|| json!({}));
            if let Some(extensions) = extensions.as_object_mut() {
                extensions.insert("prf".into(), prf);
            }
        }
        Ok(json.to_string())
    }

    /// Writes the outputs to `--prf-output`, when given; says on stderr when the phone
    /// gave none.
    fn write(
        &self,
        outputs: Option<&cable_client::webauthn::prf::PrfOutputs>,
    ) -> Result<(), CliError> {
        let Some(path) = &self.prf_output else {
            if outputs.is_some_and(|o| o.results.is_some()) {
                eprintln!("The phone returned PRF outputs; pass --prf-output FILE to keep them.");
            }
            return Ok(());
        };
        let Some(outputs) = outputs else {
            eprintln!(
                "The phone returned no PRF outputs; {} was not written.",
                path.display()
            );
            return Ok(());
        };
        if outputs.results.is_none() {
            eprintln!(
                "The phone evaluated no PRF input (PRF {}); {} holds no results.",
                if outputs.enabled == Some(true) {
                    "enabled"
                } else {
                    "not enabled"
                },
                path.display()
            );
        }
        let text = zeroize::Zeroizing::new(outputs.to_json().to_string());
        cable_store::replace_private(path, text.as_bytes()).map_err(CliError::Write)
    }
}

/// `cable register`.
#[derive(Debug, Args)]
pub struct RegisterArgs {
    /// Relying party id (a domain, e.g. example.com).
    #[arg(long, required_unless_present = "options", allow_hyphen_values = true)]
    pub rp_id: Option<String>,
    /// User name stored with the passkey.
    #[arg(long, required_unless_present = "options", allow_hyphen_values = true)]
    pub user: Option<String>,
    /// User display name (default: the user name).
    #[arg(long, allow_hyphen_values = true)]
    pub display_name: Option<String>,
    /// Challenge, base64url (default: 32 random bytes).
    #[arg(long, allow_hyphen_values = true)]
    pub challenge: Option<String>,
    /// PublicKeyCredentialCreationOptions JSON from a relying party (a file, or - for stdin)
    /// instead of the flags above.
    #[arg(long, allow_hyphen_values = true, conflicts_with_all = ["user", "display_name", "challenge"])]
    pub options: Option<PathBuf>,
    #[command(flatten)]
    pub common: CommonArgs,
}

/// `cable login`.
#[derive(Debug, Args)]
pub struct LoginArgs {
    /// Relying party id (a domain, e.g. example.com).
    #[arg(long, required_unless_present = "options", allow_hyphen_values = true)]
    pub rp_id: Option<String>,
    /// Challenge, base64url (default: 32 random bytes).
    #[arg(long, allow_hyphen_values = true)]
    pub challenge: Option<String>,
    /// Allowed credential id, base64url (repeatable; default: any passkey for the RP).
    #[arg(long = "credential-id", allow_hyphen_values = true)]
    pub credential_ids: Vec<String>,
    /// PublicKeyCredentialRequestOptions JSON from a relying party (a file, or - for stdin)
    /// instead of the flags above.
    #[arg(long, allow_hyphen_values = true, conflicts_with_all = ["challenge", "credential_ids"])]
    pub options: Option<PathBuf>,
    #[command(flatten)]
    pub common: CommonArgs,
}

fn random_b64url(len: usize) -> String {
    let mut bytes = vec![0u8; len];
    OsRng.fill_bytes(&mut bytes);
    cable_client::webauthn::options::b64url(&bytes)
}

fn read_options(path: &PathBuf) -> Result<String, CliError> {
    let read = if path.as_os_str() == "-" {
        std::io::read_to_string(std::io::stdin())
    } else {
        std::fs::read_to_string(path)
    };
    read.map_err(|source| CliError::Read {
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

/// `--origin`, or `https://<rp id>` with the RP id from the flags or the options.
fn origin_for(common: &CommonArgs, rp_id: Option<&str>) -> Result<String, CliError> {
    match (&common.origin, rp_id) {
        (Some(origin), _) => Ok(origin.clone()),
        (None, Some(rp_id)) => Ok(format!("https://{rp_id}")),
        (None, None) => Err(CliError::MissingOrigin),
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, CliError> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(CliError::Runtime)
}

/// `--relay`, checked before anything is shown: a plaintext relay is only for loopback, and
/// finding that out after the phone has scanned would waste the person's scan.
fn relay_override(common: &CommonArgs) -> Result<Option<RelayUrl>, CliError> {
    parse_relay(common.relay.as_deref())
}

/// A `--relay` value: secure, or plaintext on loopback only.
pub fn parse_relay(text: Option<&str>) -> Result<Option<RelayUrl>, CliError> {
    let Some(text) = text else {
        return Ok(None);
    };
    let relay = RelayUrl::parse(text).map_err(CliError::BadRelay)?;
    if !relay.is_secure() && !relay.is_loopback() {
        return Err(CliError::BadRelay(
            cable_transport::TransportError::PlaintextNotAllowed {
                host: relay.host().to_owned(),
            },
        ));
    }
    Ok(Some(relay))
}

/// The connector for `--ca-file`: the file read and its certificates checked before
/// anything is shown, so that a broken file is bad input rather than a TLS failure after
/// the phone has scanned. `None` without the flag.
pub fn connector_with_ca(
    path: Option<&std::path::Path>,
) -> Result<Option<cable_transport::Connector>, CliError> {
    let Some(path) = path else {
        return Ok(None);
    };
    let pem = std::fs::read(path).map_err(|source| CliError::Read {
        path: path.to_owned(),
        source,
    })?;
    let connector = cable_transport::Connector::builder()
        .extra_ca_pem(&pem)
        .and_then(cable_transport::ConnectorBuilder::build)
        .map_err(|source| CliError::BadCaFile {
            path: path.to_owned(),
            source,
        })?;
    Ok(Some(connector))
}

/// `--rp-id` and `--user` are refused empty, naming the flag.
fn non_empty(flag: &'static str, value: Option<&String>) -> Result<(), CliError> {
    match value {
        Some(v) if v.trim().is_empty() => Err(CliError::EmptyFlag { flag }),
        _ => Ok(()),
    }
}

async fn config(
    common: &CommonArgs,
    relay: Option<RelayUrl>,
    connector: Option<cable_transport::Connector>,
) -> Result<CeremonyConfig, CliError> {
    let scanner = common.ble.scanner(&common.adapter).await?;
    let mut config = CeremonyConfig::new(scanner)?;
    config.relay_override = relay;
    if let Some(connector) = connector {
        config.connector = std::sync::Arc::new(connector);
    }
    config.deadlines.scan = Duration::from_secs(common.scan_timeout);
    if !common.no_link {
        config.linked_phones = Some(common.store.open()?);
    }
    Ok(config)
}

/// Draws the QR code for `uri` on stderr.
pub fn show_qr(uri: &str) -> Result<(), CliError> {
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
                        text = crate::narrate::computer(&p);
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

fn print_json(value: &serde_json::Value, compact: bool) -> Result<(), CliError> {
    let text = if compact {
        value.to_string()
    } else {
        serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string())
    };
    let mut out = std::io::stdout().lock();
    writeln!(out, "{text}").map_err(CliError::Stdout)
}

/// `cable register`.
pub fn register(args: &RegisterArgs) -> Result<(), CliError> {
    non_empty("--rp-id", args.rp_id.as_ref())?;
    non_empty("--user", args.user.as_ref())?;
    let json = match (&args.options, &args.rp_id, &args.user) {
        (Some(path), _, _) => read_options(path)?,
        (None, Some(rp_id), Some(user)) => creation_options(
            rp_id,
            user,
            args.display_name.as_deref(),
            args.challenge.as_deref(),
        ),
        _ => return Err(CliError::MissingRpId),
    };
    // Bad options are reported before the origin is looked for and before Bluetooth.
    let json = args.common.prf.apply(json)?;
    let options = CreationOptions::from_json(&json)?;
    let rp_id = args.rp_id.as_deref().or(options.rp_id.as_deref());
    let origin = origin_for(&args.common, rp_id)?;
    let request = PreparedRegistration::from_options(options, &origin)?;
    run(&args.common, request, |r| {
        args.common.prf.write(r.prf.as_ref())?;
        Ok(r.to_json())
    })
}

/// `cable login`.
pub fn login(args: &LoginArgs) -> Result<(), CliError> {
    non_empty("--rp-id", args.rp_id.as_ref())?;
    let json = match (&args.options, &args.rp_id) {
        (Some(path), _) => read_options(path)?,
        (None, Some(rp_id)) => {
            request_options(rp_id, args.challenge.as_deref(), &args.credential_ids)
        }
        _ => return Err(CliError::MissingRpId),
    };
    let json = args.common.prf.apply(json)?;
    let options = RequestOptions::from_json(&json)?;
    let rp_id = args.rp_id.as_deref().or(options.rp_id.as_deref());
    let origin = origin_for(&args.common, rp_id)?;
    let request = PreparedAuthentication::from_options(options, &origin)?;
    run(&args.common, request, |r| {
        args.common.prf.write(r.prf.as_ref())?;
        Ok(r.to_json())
    })
}

/// With `--phone`: no QR code; a phone that stays silent gets an error naming it.
async fn run_linked<R: CeremonyRequest + 'static>(
    common: &CommonArgs,
    config: CeremonyConfig,
    request: R,
    phone: cable_client::LinkedPhone,
    to_json: impl FnOnce(&R::Response) -> Result<serde_json::Value, CliError>,
) -> Result<(), CliError> {
    let name = phone.name.clone();
    let (ceremony, progress) = Ceremony::with_linked_phone(config, request, phone);
    eprintln!("Contacting {name:?}: unlock it and keep it near this computer…");
    let cancel = cancel_on_signals();
    match with_spinner(ceremony.run(cancel), progress).await {
        Ok(response) => print_json(&to_json(&response)?, common.json),
        Err(cable_client::ClientError::Timeout {
            phase: cable_client::Phase::Scan,
        }) => Err(CliError::PhoneSilent {
            name,
            seconds: common.scan_timeout,
        }),
        Err(e) => Err(e.into()),
    }
}

/// The ceremony both commands share: QR code, spinner, response JSON on stdout.
fn run<R: CeremonyRequest + 'static>(
    common: &CommonArgs,
    request: R,
    to_json: impl FnOnce(&R::Response) -> Result<serde_json::Value, CliError>,
) -> Result<(), CliError> {
    // An unknown phone name or a bad relay is bad input: say so before Bluetooth is touched.
    let relay = relay_override(common)?;
    let connector = connector_with_ca(common.ca_file.as_deref())?;
    let linked = match &common.phone {
        Some(name) => Some(common.store.open()?.get(name)?),
        None => None,
    };
    runtime()?.block_on(async {
        let config = config(common, relay, connector).await?;
        if let Some(phone) = linked {
            return run_linked(common, config, request, phone, to_json).await;
        }
        let (ceremony, progress) = Ceremony::new(config, request);
        let cancel = cancel_on_signals();
        show_qr(&ceremony.qr_uri())?;
        let response = with_spinner(ceremony.run(cancel), progress).await?;
        print_json(&to_json(&response)?, common.json)
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

    fn common(origin: Option<&str>) -> CommonArgs {
        CommonArgs {
            origin: origin.map(str::to_owned),
            relay: None,
            ca_file: None,
            json: false,
            ble: BleChoice::Bluez,
            adapter: "default".into(),
            scan_timeout: 1,
            no_link: true,
            phone: None,
            store: crate::phones::StoreArgs { phones_file: None },
            prf: PrfArgs::default(),
        }
    }

    #[test]
    fn origin_defaults_to_the_rp_id() {
        assert_eq!(
            origin_for(&common(None), Some("a.example")).unwrap(),
            "https://a.example"
        );
        assert_eq!(
            origin_for(&common(Some("https://b.example")), Some("a.example")).unwrap(),
            "https://b.example"
        );
    }

    #[test]
    fn options_without_an_rp_id_ask_for_the_origin() {
        let dir = std::env::temp_dir().join(format!("cable-cli-origin-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("options.json");
        // A relying party may leave rp.id out; the origin then has to come from the caller.
        std::fs::write(
            &path,
            r#"{"rp": {"name": "Example"}, "user": {"id": "AQ", "name": "ada"},
                "challenge": "AQ", "pubKeyCredParams": [{"type": "public-key", "alg": -7}]}"#,
        )
        .unwrap();
        let args = RegisterArgs {
            rp_id: None,
            user: None,
            display_name: None,
            challenge: None,
            options: Some(path.clone()),
            common: common(None),
        };
        let err = register(&args).unwrap_err();
        assert!(matches!(err, CliError::MissingOrigin), "{err:?}");
        assert_eq!(err.exit_code(), crate::error::EXIT_BAD_INPUT);
        assert!(err.to_string().contains("--origin"), "{err}");

        std::fs::write(&path, r#"{"challenge": "AQ"}"#).unwrap();
        let args = LoginArgs {
            rp_id: None,
            challenge: None,
            credential_ids: Vec::new(),
            options: Some(path),
            common: common(None),
        };
        assert!(matches!(login(&args), Err(CliError::MissingOrigin)));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn broken_options_are_reported_as_such_before_the_origin() {
        let dir = std::env::temp_dir().join(format!("cable-cli-broken-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("options.json");
        std::fs::write(&path, "{").unwrap();
        let args = LoginArgs {
            rp_id: None,
            challenge: None,
            credential_ids: Vec::new(),
            options: Some(path),
            common: common(None),
        };
        let err = login(&args).unwrap_err();
        assert!(
            matches!(
                err,
                CliError::Client(cable_client::ClientError::OptionsJson { .. })
            ),
            "{err:?}"
        );
        assert_eq!(err.exit_code(), crate::error::EXIT_BAD_INPUT);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
