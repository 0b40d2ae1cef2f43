//! `cable phone`: act as the phone for a QR code shown by a computer.
//!
//! Narration goes to stderr so that, with `--ble print`, stdout carries only the
//! `advert: <hex>` line another program can pick up and broadcast.

use crate::ble::BleChoice;
use crate::error::CliError;
use cable_phone::{
    AlwaysApprove, Outcome, PasskeyStore, PhoneSession, Prompt, SoftwareAuthenticator, UserApproval,
};
use cable_transport::{Connector, RelayUrl};
use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

#[derive(Debug, clap::Args)]
pub struct PhoneArgs {
    /// The scanned QR text, starting with FIDO:/ (any case).
    #[arg(allow_hyphen_values = true)]
    pub uri: String,
    /// Relay to open the tunnel on (ws:// is accepted for loopback only). The advert names
    /// the relay by its domain id, derived from the host name unless --domain-id is given.
    #[arg(
        long,
        env = "CABLE_RELAY",
        default_value = cable_phone::DEFAULT_RELAY,
        allow_hyphen_values = true
    )]
    pub relay: String,
    /// Domain id to announce in the advert (0 = cable.ua5v.com, 1 = cable.auth.com, 256 and
    /// above name hashed hosts; see `cable inspect domain`).
    #[arg(long, allow_hyphen_values = true)]
    pub domain_id: Option<u16>,
    /// Extra CA certificates (PEM) to trust for a private relay.
    #[arg(long, value_name = "PEM", allow_hyphen_values = true)]
    pub ca_file: Option<PathBuf>,
    /// Passkey store: a JSON file created on first use. Without it passkeys live in memory
    /// and are gone when the command ends.
    #[arg(
        long,
        value_name = "FILE",
        env = "CABLE_PHONE_STORE",
        allow_hyphen_values = true
    )]
    pub store: Option<PathBuf>,
    /// Approve every request without asking (user presence and verification are asserted).
    #[arg(long)]
    pub yes: bool,
    /// How the advert reaches the computer: bluez (Linux Bluetooth), print (an
    /// `advert: <hex>` line on stdout for another program) or air (a simulation through files
    /// in CABLE_AIR_DIR, for two `cable` processes on one machine without Bluetooth).
    #[arg(long, value_enum, default_value = "bluez", allow_hyphen_values = true)]
    pub ble: PhoneBle,
    /// Bluetooth adapter for --ble bluez (name such as hci0, address, or "default").
    #[arg(
        long,
        default_value = "default",
        env = "CABLE_BLE_ADAPTER",
        allow_hyphen_values = true
    )]
    pub adapter: String,
    /// Refuse QR codes generated longer ago than this many seconds (0 accepts any age).
    #[arg(long, default_value_t = 600, allow_hyphen_values = true)]
    pub max_qr_age: u64,
    /// Seconds to wait for the computer to connect after advertising starts.
    #[arg(long, default_value_t = 120, allow_hyphen_values = true)]
    pub wait: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PhoneBle {
    Bluez,
    Print,
    Air,
}

/// Asks on the terminal; refuses when there is no answer.
#[derive(Debug)]
struct TerminalApproval;

#[async_trait::async_trait]
impl UserApproval for TerminalApproval {
    async fn approve(&self, prompt: &Prompt) -> bool {
        let question = match prompt {
            Prompt::Register {
                rp_id,
                user_name,
                user_display_name,
                ..
            } => format!(
                "Create a passkey for {rp_id} as {}?",
                user_display_name
                    .as_deref()
                    .or(user_name.as_deref())
                    .unwrap_or("(unnamed user)")
            ),
            Prompt::SignIn { rp_id, user_name } => format!(
                "Sign in to {rp_id} as {}?",
                user_name.as_deref().unwrap_or("(unnamed user)")
            ),
            Prompt::NoCredentials => {
                eprintln!("No passkey in the store matches this request.");
                return false;
            }
            Prompt::AlreadyRegistered { rp_id } => {
                eprintln!("A passkey for {rp_id} in this store is already registered there.");
                return false;
            }
            _ => return false,
        };
        tokio::task::spawn_blocking(move || {
            eprint!("{question} [y/N] ");
            let _ = std::io::stderr().flush();
            let mut line = String::new();
            match std::io::stdin().lock().read_line(&mut line) {
                Ok(_) => matches!(line.trim(), "y" | "Y" | "yes" | "Yes" | "YES"),
                Err(_) => false,
            }
        })
        .await
        .unwrap_or(false)
    }
}

pub async fn run(args: &PhoneArgs) -> Result<(), CliError> {
    let relay = RelayUrl::parse(&args.relay).map_err(CliError::BadRelay)?;
    let mut connector = Connector::builder();
    if let Some(path) = &args.ca_file {
        let pem = std::fs::read(path).map_err(|source| CliError::Read {
            path: path.clone(),
            source,
        })?;
        connector = connector.extra_ca_pem(&pem).map_err(CliError::BadRelay)?;
    }
    let connector = connector.build().map_err(CliError::BadRelay)?;
    let store = match &args.store {
        Some(path) => PasskeyStore::open(path).map_err(|source| CliError::Store {
            path: path.clone(),
            source,
        })?,
        None => PasskeyStore::in_memory(),
    };
    let approval: Arc<dyn UserApproval> = if args.yes {
        Arc::new(AlwaysApprove)
    } else {
        Arc::new(TerminalApproval)
    };
    let authenticator = SoftwareAuthenticator::with_shared_approval(store, approval);
    let advertiser = match args.ble {
        PhoneBle::Bluez => BleChoice::Bluez
            .advertiser(&args.adapter)
            .await
            .map_err(CliError::Bluetooth)?,
        PhoneBle::Air => BleChoice::Air
            .advertiser(&args.adapter)
            .await
            .map_err(CliError::Bluetooth)?,
        PhoneBle::Print => Arc::new(cable_phone::PrintAdvertiser::stdout()),
    };
    let deadlines = cable_phone::Deadlines {
        await_computer: Duration::from_secs(args.wait),
        ..Default::default()
    };
    let mut session = PhoneSession::with_shared(&args.uri, advertiser, Box::new(authenticator))
        .relay(relay)
        .connector(connector)
        .deadlines(deadlines)
        .max_qr_age((args.max_qr_age > 0).then(|| Duration::from_secs(args.max_qr_age)));
    if let Some(id) = args.domain_id {
        session = session.domain_id(id);
    }
    let mut progress = session.progress();
    let narrator = tokio::spawn(async move {
        while let Some(p) = progress.recv().await {
            eprintln!("phone: {}", crate::narrate::phone(&p));
        }
    });
    let cancel = CancellationToken::new();
    let on_signal = cancel.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            on_signal.cancel();
        }
    });
    let result = session.run(cancel).await;
    let _ = narrator.await;
    match result.map_err(CliError::Phone)? {
        Outcome::ShutdownBeforeRequest => {
            eprintln!("phone: the computer ended the session before sending a request");
        }
        Outcome::Served { status: 0, .. } => eprintln!("phone: done"),
        Outcome::Served { status, .. } => {
            eprintln!("phone: done (the request was refused with CTAP status {status:#04x})")
        }
        _ => eprintln!("phone: done"),
    }
    Ok(())
}
