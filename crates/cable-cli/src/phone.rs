//! `cable phone`: act as the phone for a QR code shown by a computer, and manage the
//! computers it linked to (`cable phone links`, `cable phone unlink`).
//!
//! Narration goes to stderr so that, with `--ble print`, stdout carries only the
//! `advert: <hex>` line another program can pick up and broadcast.

use crate::ble::BleChoice;
use crate::error::CliError;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use cable_phone::{
    AlwaysApprove, IdentityError, LinkRecord, LinkSelector, Outcome, PasskeyStore, PhoneIdentity,
    PhoneSession, Prompt, SoftwareAuthenticator, UserApproval,
};
use cable_transport::{Connector, RelayUrl};
use serde_json::json;
use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Where the phone keeps its passkeys and its identity; shared by the session and the
/// link commands.
#[derive(Debug, Clone, clap::Args)]
pub struct PhoneFiles {
    /// Passkey store: a JSON file created on first use. Without it passkeys live in memory
    /// and are gone when the command ends.
    #[arg(
        long,
        value_name = "FILE",
        env = "CABLE_PHONE_STORE",
        allow_hyphen_values = true
    )]
    pub store: Option<PathBuf>,
    /// The phone's identity (root secret, contact id, links): a JSON file created on first
    /// use [default: phone-identity.json next to --store; without either, the phone has no
    /// identity and never links].
    #[arg(
        long,
        value_name = "FILE",
        env = "CABLE_PHONE_IDENTITY",
        allow_hyphen_values = true
    )]
    pub identity: Option<PathBuf>,
}

impl PhoneFiles {
    /// The identity file: the flag, else the sibling of the passkey store.
    fn identity_path(&self) -> Option<PathBuf> {
        self.identity
            .clone()
            .or_else(|| self.store.as_deref().map(PhoneIdentity::path_next_to))
    }
}

#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct PhoneArgs {
    #[command(subcommand)]
    pub command: Option<PhoneCommand>,
    /// The scanned QR text, starting with FIDO:/ (any case).
    #[arg(allow_hyphen_values = true, required = true)]
    pub uri: Option<String>,
    #[command(flatten)]
    pub serving: Serving,
    /// The contact id this phone's relay registration gave it (base64url): saved in the
    /// identity, and what the phone hands to computers that ask to link (QR key 4) so that
    /// they can reach it later without a QR code. `cable phone listen` registers for one and
    /// saves it; without one the phone does not link.
    #[arg(long, value_name = "B64URL", allow_hyphen_values = true)]
    pub contact_id: Option<String>,
    /// What to call this computer should it link, for `cable phone links` and `unlink`.
    #[arg(long, value_name = "NAME", allow_hyphen_values = true)]
    pub link_name: Option<String>,
    /// Refuse QR codes generated longer ago than this many seconds (0 accepts any age).
    #[arg(long, default_value_t = 600, allow_hyphen_values = true)]
    pub max_qr_age: u64,
}

/// What every phone session needs, from a QR code or from a contact.
#[derive(Debug, clap::Args)]
pub struct Serving {
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
    #[command(flatten)]
    pub files: PhoneFiles,
    /// The name computers show for this phone when it links (saved in the identity)
    /// [default: the host name].
    #[arg(long, allow_hyphen_values = true)]
    pub name: Option<String>,
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
    /// Seconds to wait for the computer to connect after advertising starts.
    #[arg(long, default_value_t = 120, allow_hyphen_values = true)]
    pub wait: u64,
}

/// `cable phone listen`.
#[derive(Debug, clap::Args)]
pub struct ListenArgs {
    #[command(flatten)]
    pub serving: Serving,
    /// Address of this phone's own push endpoint, which the relay posts contacts to (plain
    /// HTTP: the relay must run with --allow-insecure-push, or a TLS proxy must front it and
    /// --push-url name it) [default: the address of the last registration, so that linked
    /// computers keep reaching the phone across restarts; else 127.0.0.1 and a free port].
    #[arg(long, value_name = "ADDR:PORT", allow_hyphen_values = true)]
    pub push_listen: Option<std::net::SocketAddr>,
    /// The base URL the relay reaches the push endpoint at, when not the listen address
    /// (a proxy, another host name); the secret path is appended.
    #[arg(long, value_name = "URL", allow_hyphen_values = true)]
    pub push_url: Option<String>,
    /// Register with the relay again even if the identity's registration matches.
    #[arg(long)]
    pub reregister: bool,
    /// Stop after answering this many contacts (0: until interrupted).
    #[arg(long, default_value_t = 0, allow_hyphen_values = true)]
    pub count: u64,
}

#[derive(Debug, clap::Subcommand)]
pub enum PhoneCommand {
    /// Be reachable by linked computers: register with the relay for a contact id (kept in
    /// the identity; QR sessions hand it to computers that ask to link), then wait for
    /// contacts on this phone's own push endpoint and answer each one as a QR session would,
    /// without a QR code.
    Listen(Box<ListenArgs>),
    /// List the computers this phone linked to: link id, the name given with --link-name
    /// and when. With --json, one JSON array (no secrets).
    Links {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        files: PhoneFiles,
    },
    /// Forget links: the computer can no longer reach this phone without a new QR code
    /// (its contact is refused; the relay learns it when the next contact fails).
    Unlink {
        /// The computer's name (from --link-name) or the link id (base64url, as `links`
        /// shows it).
        #[arg(allow_hyphen_values = true, required_unless_present = "all")]
        name: Option<String>,
        /// Forget every link.
        #[arg(long, conflicts_with = "name")]
        all: bool,
        #[command(flatten)]
        files: PhoneFiles,
    },
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

fn identity_error(path: &std::path::Path, source: IdentityError) -> CliError {
    match source {
        IdentityError::NoSuchLink { name } => CliError::NoSuchLink { name },
        IdentityError::BadName { len } => CliError::BadPhoneName { len },
        source => CliError::Identity {
            path: path.to_owned(),
            source,
        },
    }
}

/// `cable phone links` and `cable phone unlink`.
fn manage(command: &PhoneCommand) -> Result<(), CliError> {
    let files = match command {
        PhoneCommand::Links { files, .. } | PhoneCommand::Unlink { files, .. } => files,
        PhoneCommand::Listen(_) => unreachable!("listen is not a management command"),
    };
    let path = files.identity_path().ok_or(CliError::NoPhoneIdentity)?;
    // Listing and unlinking never create an identity.
    let identity = PhoneIdentity::open_existing(&path).map_err(|e| identity_error(&path, e))?;
    let text = match (command, identity) {
        (PhoneCommand::Links { json: true, .. }, identity) => {
            let links = identity.map(|i| i.links()).unwrap_or_default();
            serde_json::Value::Array(links.iter().map(link_json).collect()).to_string()
        }
        (PhoneCommand::Links { .. }, identity) => {
            let links = identity.map(|i| i.links()).unwrap_or_default();
            if links.is_empty() {
                "no links (a computer links when its QR code asks to and the phone has a \
                 --contact-id)"
                    .to_owned()
            } else {
                links_table(&links)
            }
        }
        (PhoneCommand::Unlink { all: true, .. }, None) => "unlinked 0 computer(s)".to_owned(),
        (PhoneCommand::Unlink { name, .. }, None) => {
            return Err(CliError::NoSuchLink {
                name: name.clone().unwrap_or_default(),
            })
        }
        (PhoneCommand::Listen(_), _) => unreachable!("listen is not a management command"),
        (PhoneCommand::Unlink { name, all, .. }, Some(identity)) => {
            let selector = if *all {
                LinkSelector::All
            } else {
                LinkSelector::Name(name.clone().unwrap_or_default())
            };
            let removed = identity
                .unlink(&selector)
                .map_err(|e| identity_error(&path, e))?;
            format!("unlinked {} computer(s)", removed.len())
        }
    };
    writeln!(std::io::stdout().lock(), "{text}").map_err(CliError::Stdout)
}

/// A link as `links --json` prints it (the contact id and link secret stay out).
fn link_json(link: &LinkRecord) -> serde_json::Value {
    json!({
        "link_id": URL_SAFE_NO_PAD.encode(&link.link_id),
        "computer": link.computer,
        "created": link.created,
    })
}

fn links_table(links: &[LinkRecord]) -> String {
    let names: Vec<&str> = links
        .iter()
        .map(|l| l.computer.as_deref().unwrap_or("-"))
        .collect();
    let width = names
        .iter()
        .map(|n| n.chars().count())
        .max()
        .unwrap_or(0)
        .max("COMPUTER".len());
    let mut text = format!("{:width$}  {:11}  LINKED (UTC)", "COMPUTER", "LINK ID");
    for (link, name) in links.iter().zip(names) {
        text.push_str(&format!(
            "\n{name:width$}  {:11}  {}",
            URL_SAFE_NO_PAD.encode(&link.link_id),
            crate::phones::utc(link.created)
        ));
    }
    text
}

/// Opens (or creates) the identity for a session and applies --contact-id and --name.
pub(crate) fn session_identity(
    serving: &Serving,
    contact_id: Option<&str>,
) -> Result<Option<PhoneIdentity>, CliError> {
    let contact_id = contact_id
        .map(|text| {
            URL_SAFE_NO_PAD
                .decode(text.trim_end_matches('='))
                .ok()
                .filter(|id| !id.is_empty())
                .ok_or(CliError::BadContactId)
        })
        .transpose()?;
    let Some(path) = serving.files.identity_path() else {
        if contact_id.is_some() || serving.name.is_some() {
            return Err(CliError::NoPhoneIdentity);
        }
        return Ok(None);
    };
    let identity = PhoneIdentity::open_or_create(&path, &mut rand_core::OsRng)
        .map_err(|e| identity_error(&path, e))?;
    if contact_id.is_some() && identity.contact_id() != contact_id {
        identity
            .set_contact_id(contact_id)
            .map_err(|e| identity_error(&path, e))?;
    }
    if let Some(name) = &serving.name {
        if identity.name() != *name {
            identity
                .set_name(Some(name.clone()))
                .map_err(|e| identity_error(&path, e))?;
        }
    }
    Ok(Some(identity))
}

/// What a session is built from: relay, connector, authenticator, advertiser, deadlines.
pub(crate) struct Kit {
    pub(crate) relay: RelayUrl,
    pub(crate) connector: Connector,
    pub(crate) store: PasskeyStore,
    pub(crate) approval: Arc<dyn UserApproval>,
    pub(crate) advertiser: Arc<dyn cable_ble::Advertiser>,
    pub(crate) deadlines: cable_phone::Deadlines,
    pub(crate) domain_id: Option<u16>,
}

impl Kit {
    pub(crate) async fn new(serving: &Serving) -> Result<Self, CliError> {
        let relay = RelayUrl::parse(&serving.relay).map_err(CliError::BadRelay)?;
        let mut connector = Connector::builder();
        if let Some(path) = &serving.ca_file {
            let pem = std::fs::read(path).map_err(|source| CliError::Read {
                path: path.clone(),
                source,
            })?;
            connector = connector.extra_ca_pem(&pem).map_err(CliError::BadRelay)?;
        }
        let connector = connector.build().map_err(CliError::BadRelay)?;
        let store = match &serving.files.store {
            Some(path) => PasskeyStore::open(path).map_err(|source| CliError::Store {
                path: path.clone(),
                source,
            })?,
            None => PasskeyStore::in_memory(),
        };
        let approval: Arc<dyn UserApproval> = if serving.yes {
            Arc::new(AlwaysApprove)
        } else {
            Arc::new(TerminalApproval)
        };
        let advertiser = match serving.ble {
            PhoneBle::Bluez => BleChoice::Bluez
                .advertiser(&serving.adapter)
                .await
                .map_err(CliError::Bluetooth)?,
            PhoneBle::Air => BleChoice::Air
                .advertiser(&serving.adapter)
                .await
                .map_err(CliError::Bluetooth)?,
            PhoneBle::Print => Arc::new(cable_phone::PrintAdvertiser::stdout()),
        };
        let mut deadlines = cable_phone::Deadlines::default();
        deadlines.await_computer = Duration::from_secs(serving.wait);
        Ok(Self {
            relay,
            connector,
            store,
            approval,
            advertiser,
            deadlines,
            domain_id: serving.domain_id,
        })
    }

    pub(crate) fn authenticator(&self) -> Box<dyn cable_phone::Authenticator> {
        Box::new(SoftwareAuthenticator::with_shared_approval(
            self.store.clone(),
            self.approval.clone(),
        ))
    }

    /// An authenticator over the store as it is on disk now: a listener lives for days while
    /// QR sessions in other processes add passkeys to the same file.
    pub(crate) fn fresh_authenticator(
        &self,
        serving: &Serving,
    ) -> Result<Box<dyn cable_phone::Authenticator>, CliError> {
        let store = match &serving.files.store {
            Some(path) => PasskeyStore::open(path).map_err(|source| CliError::Store {
                path: path.clone(),
                source,
            })?,
            None => self.store.clone(),
        };
        Ok(Box::new(SoftwareAuthenticator::with_shared_approval(
            store,
            self.approval.clone(),
        )))
    }

    pub(crate) fn configure(&self, mut session: PhoneSession) -> PhoneSession {
        session = session
            .relay(self.relay.clone())
            .connector(self.connector.clone())
            .deadlines(self.deadlines);
        if let Some(id) = self.domain_id {
            session = session.domain_id(id);
        }
        session
    }
}

/// Runs one session, narrating it on stderr; Ctrl-C cancels it.
pub(crate) async fn serve(
    mut session: PhoneSession,
    cancel: CancellationToken,
) -> Result<(), CliError> {
    let mut progress = session.progress();
    let narrator = tokio::spawn(async move {
        while let Some(p) = progress.recv().await {
            eprintln!("phone: {}", crate::narrate::phone(&p));
        }
    });
    let result = session.run(cancel).await;
    let _ = narrator.await;
    let result = result.map_err(|e| match e {
        cable_phone::PhoneError::NoDomainId { host } => CliError::NoDomainId { host },
        e => CliError::Phone(e),
    });
    match result? {
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

pub async fn run(args: &PhoneArgs) -> Result<(), CliError> {
    match &args.command {
        Some(PhoneCommand::Listen(listen)) => return crate::phone_listen::run(listen).await,
        Some(command) => return manage(command),
        None => {}
    }
    let uri = args.uri.as_deref().unwrap_or_default();
    // Input is checked before Bluetooth is touched.
    let identity = session_identity(&args.serving, args.contact_id.as_deref())?;
    let kit = Kit::new(&args.serving).await?;
    let mut session = kit
        .configure(PhoneSession::with_shared(
            uri,
            kit.advertiser.clone(),
            kit.authenticator(),
        ))
        .max_qr_age((args.max_qr_age > 0).then(|| Duration::from_secs(args.max_qr_age)));
    if let Some(identity) = identity {
        session = session.identity(identity);
    }
    if let Some(name) = &args.link_name {
        session = session.link_name(name);
    }
    serve(session, crate::signals::cancel_on_signals()).await
}
