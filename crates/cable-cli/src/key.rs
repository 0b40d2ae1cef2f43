//! `cable key`: the phone as a USB security key for every app on this computer. A virtual
//! FIDO HID device on `/dev/uhid` takes the apps' CTAP2 requests; each one that needs the
//! person becomes a hybrid ceremony (QR code in this terminal and as a desktop
//! notification, or a linked phone with `--phone`), and the phone's answer goes back to
//! the app unchanged.

use std::io::{BufRead, IsTerminal};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use cable_client::{CeremonyConfig, Progress};
use cable_key::{BridgeConfig, HybridBridge, Kind, Outcome, Presenter, Start, Target};
use cable_uhid::{KeyConfig, RequestId, VirtualKey};
use clap::Args;

use crate::ble::BleChoice;
use crate::error::CliError;
use crate::notify::{Image, Notifier};
use crate::render::Rendered;

/// Where the udev rule that grants access to `/dev/uhid` ships, and how to install it.
pub const UDEV_RULE: &str = "contrib/udev/70-cable-key.rules";

/// `cable key`.
#[derive(Debug, Args)]
#[command(after_long_help = KEY_HELP)]
pub struct KeyArgs {
    /// The uhid device to create the key on.
    #[arg(
        long,
        default_value = "/dev/uhid",
        value_name = "PATH",
        allow_hyphen_values = true
    )]
    pub uhid: PathBuf,
    /// Tunnel relay to use whatever the phone's advert names (private relays, tests),
    /// e.g. wss://relay.example.org or ws://127.0.0.1:8080.
    #[arg(long, allow_hyphen_values = true)]
    pub relay: Option<String>,
    /// Extra CA certificates (PEM) to trust for a private relay, besides the public roots
    /// and the system's certificate store.
    #[arg(long, value_name = "PEM", allow_hyphen_values = true)]
    pub ca_file: Option<PathBuf>,
    /// How the phone's advert is heard: bluez (the system's Bluetooth) or air (a simulation
    /// through files in CABLE_AIR_DIR, for a `cable phone` on this machine).
    #[arg(long, value_enum, default_value = "bluez", allow_hyphen_values = true)]
    pub ble: BleChoice,
    /// Bluetooth adapter (name such as hci1, or address); default: the first one.
    #[arg(long, default_value = "default", allow_hyphen_values = true)]
    pub adapter: String,
    /// Seconds to wait for the phone after the QR code is shown; the app then gets
    /// CTAP2_ERR_USER_ACTION_TIMEOUT.
    #[arg(long, default_value_t = 120, allow_hyphen_values = true)]
    pub scan_timeout: u64,
    /// Use this linked phone (see `cable phones list`) instead of a QR code. If it is no
    /// longer linked, the QR code is shown instead.
    #[arg(long, value_name = "NAME", allow_hyphen_values = true)]
    pub phone: Option<String>,
    /// Do not ask phones to link (QR key 4 false): nothing is stored.
    #[arg(long, conflicts_with = "phone")]
    pub no_link: bool,
    /// No desktop notifications, only this terminal.
    #[arg(long)]
    pub no_notify: bool,
    /// The device name apps show (HID_NAME).
    #[arg(long, default_value = "cable hybrid key", allow_hyphen_values = true)]
    pub name: String,
    #[command(flatten)]
    pub store: crate::phones::StoreArgs,
}

const KEY_HELP: &str = "\
What apps see: a USB FIDO2 security key (vendor 0x1209, product 0x0001, the name above) with
versions FIDO_2_0 and FIDO_2_1, options rk, up, uv, no PIN, transports hybrid and usb. It
answers getInfo by itself; makeCredential and getAssertion go to the phone. A silent
getAssertion (up=false, the probe hosts send to learn which listed credential a key holds)
is answered at once, without a QR code: \"the first one\", and the request that follows
takes the whole probed list to the phone, which picks the credential it holds (or refuses
an excluded registration); with no list, \"no credentials\". Reset, credential
management, large blobs and config are refused as a key without them refuses them. U2F-only sites and apps cannot use it.

Where the QR code appears: on this terminal's stderr, and, when this process has a session
bus with a notification server (DBUS_SESSION_BUS_ADDRESS), as a desktop notification with
the code as its image. The notification goes when the ceremony ends.

When an app asks which key to use (authenticatorSelection): press Enter here, or choose
\"Use this key\" in the notification. With neither a terminal nor notifications, the key
confirms by itself (the phone still decides every ceremony).

Access: /dev/uhid is root's. Install the udev rule shipped in contrib/udev/ to give the
person at the seat access:
  sudo install -m 644 contrib/udev/70-cable-key.rules /etc/udev/rules.d/
  sudo udevadm control --reload && sudo udevadm trigger --name-match=uhid
Load the module if /dev/uhid is missing: sudo modprobe uhid.

The key exists while this command runs; Ctrl-C or SIGTERM removes it.";

/// Opens `/dev/uhid`, or says in one line what to do.
fn open_uhid(path: &Path) -> Result<std::fs::File, CliError> {
    use std::os::unix::fs::FileTypeExt;
    if let Ok(meta) = std::fs::metadata(path) {
        if !meta.file_type().is_char_device() {
            return Err(CliError::Uhid {
                path: path.to_owned(),
                hint: "not the uhid device (a character device)".to_owned(),
                source: std::io::Error::from(std::io::ErrorKind::InvalidInput),
            });
        }
    }
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(|source| CliError::Uhid {
            path: path.to_owned(),
            hint: match source.kind() {
                std::io::ErrorKind::NotFound => {
                    "load the uhid kernel module: sudo modprobe uhid".to_owned()
                }
                std::io::ErrorKind::PermissionDenied => format!(
                    "install the udev rule {UDEV_RULE} (see `cable key --help`) and log in again"
                ),
                _ => "is it the uhid device?".to_owned(),
            },
            source,
        })
}

/// `cable key`.
pub fn run(args: &KeyArgs) -> Result<(), CliError> {
    let relay = crate::ceremony::parse_relay(args.relay.as_deref())?;
    let connector = crate::ceremony::connector_with_ca(args.ca_file.as_deref())?;
    if args.name.is_empty() || args.name.len() > 127 {
        return Err(CliError::EmptyFlag { flag: "--name" });
    }
    if let Some(name) = &args.phone {
        args.store.open()?.get(name)?;
    }
    // Before Bluetooth and the relay: without the device there is nothing to serve.
    let uhid = open_uhid(&args.uhid)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(CliError::Runtime)?;
    runtime.block_on(async {
        let scanner = args.ble.scanner(&args.adapter).await?;
        let mut ceremony = CeremonyConfig::new(scanner)?;
        ceremony.relay_override = relay;
        if let Some(connector) = connector {
            ceremony.connector = Arc::new(connector);
        }
        ceremony.deadlines.scan = Duration::from_secs(args.scan_timeout);
        if !args.no_link {
            ceremony.linked_phones = Some(args.store.open()?);
        }
        let mut config = BridgeConfig::new(ceremony);
        config.phone = args.phone.clone();

        let notifier = if args.no_notify {
            None
        } else {
            match Notifier::session() {
                Ok(n) => Some(n),
                Err(e) => {
                    tracing::info!(error = %crate::error::chain(&e), "no desktop notifications");
                    None
                }
            }
        };
        let presenter = Arc::new(TerminalPresenter::new(notifier));
        let bridge = HybridBridge::new(tokio::runtime::Handle::current(), config, presenter);
        let mut key_config = KeyConfig::default();
        key_config.name = args.name.clone();
        let cancel = crate::signals::cancel_on_signals();
        let key = VirtualKey::create(uhid, key_config, bridge).map_err(CliError::Key)?;
        eprintln!(
            "{:?} is ready on {}: use it from any app as a USB security key. Ctrl-C removes it.",
            args.name,
            args.uhid.display()
        );
        let mut tick = tokio::time::interval(Duration::from_millis(200));
        loop {
            tokio::select! {
                _ = cancel.cancelled() => break,
                _ = tick.tick() => if key.is_finished() { break },
            }
        }
        let stopped_by_signal = cancel.is_cancelled();
        let result = tokio::task::spawn_blocking(move || key.destroy())
            .await
            .map_err(|_| CliError::Key(cable_uhid::KeyError::Panicked))?;
        result.map_err(CliError::Key)?;
        if stopped_by_signal {
            eprintln!("The key is removed.");
            Ok(())
        } else {
            Err(CliError::KeyGone)
        }
    })
}

/// The QR code and progress on stderr, and as notifications when there is a server.
struct TerminalPresenter {
    notifier: Option<Notifier<RequestId>>,
    /// Lines typed on the terminal, for confirmations; read by one thread for the whole run.
    lines: tokio::sync::Mutex<Option<tokio::sync::mpsc::UnboundedReceiver<()>>>,
    interactive: bool,
}

impl TerminalPresenter {
    fn new(notifier: Option<Notifier<RequestId>>) -> Self {
        TerminalPresenter {
            notifier,
            lines: tokio::sync::Mutex::new(None),
            interactive: std::io::stdin().is_terminal(),
        }
    }

    async fn enter_pressed(&self) {
        let mut lines = self.lines.lock().await;
        let rx = lines.get_or_insert_with(|| {
            let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
            let _ = std::thread::Builder::new()
                .name("stdin".into())
                .spawn(move || {
                    for line in std::io::stdin().lock().lines() {
                        if line.is_err() || tx.send(()).is_err() {
                            break;
                        }
                    }
                });
            rx
        });
        // Enter pressed before the question does not answer it.
        while rx.try_recv().is_ok() {}
        if rx.recv().await.is_none() {
            std::future::pending::<()>().await;
        }
    }
}

fn what(kind: Kind) -> &'static str {
    match kind {
        Kind::Register => "create a passkey",
        Kind::SignIn => "sign in",
    }
}

/// The QR code as notification pixels: 4 pixels per module.
fn qr_image(uri: &str) -> Option<Image> {
    let (width, rgb) = Rendered::new(uri).ok()?.rgb(4);
    let width = i32::try_from(width).ok()?;
    Some(Image {
        width,
        height: width,
        rgb,
    })
}

#[async_trait::async_trait]
impl Presenter for TerminalPresenter {
    fn started(&self, start: &Start<'_>) {
        let rp = if start.rp_id.is_empty() {
            "An app"
        } else {
            start.rp_id
        };
        match start.target {
            Target::Qr(uri) => {
                eprintln!("\n{rp} asks to {} with your phone.", what(start.kind));
                if let Err(e) = crate::ceremony::show_qr(uri) {
                    eprintln!("cannot draw the QR code: {}", crate::error::chain(&e));
                }
                if let Some(n) = &self.notifier {
                    n.show(
                        start.id,
                        format!("Scan with your phone to {}", what(start.kind)),
                        format!("{rp} asks for a passkey on your phone."),
                        qr_image(uri),
                    );
                }
            }
            Target::LinkedPhone(name) => {
                eprintln!(
                    "\n{rp} asks to {}: contacting {name:?}, unlock it and keep it near…",
                    what(start.kind)
                );
                if let Some(n) = &self.notifier {
                    n.show(
                        start.id,
                        format!("Check your phone {name:?}"),
                        format!("{rp} asks to {}.", what(start.kind)),
                        None,
                    );
                }
            }
            _ => {}
        }
    }

    fn progress(&self, _id: RequestId, progress: &Progress) {
        eprintln!("  {}", crate::narrate::computer(progress));
    }

    fn ended(&self, id: RequestId, outcome: &Outcome<'_>) {
        if let Some(n) = &self.notifier {
            n.close(id);
        }
        match outcome {
            Outcome::Answered { status: 0 } => eprintln!("  the app has the phone's answer"),
            Outcome::Answered { status } => eprintln!(
                "  the phone refused: {} ({status:#04x})",
                cable_client::ctap_status_name(*status)
            ),
            Outcome::Failed { error, status } => eprintln!(
                "  no answer from the phone: {} (the app gets {})",
                cable_client::error_chain(*error),
                cable_client::ctap_status_name(*status)
            ),
            Outcome::Confirmed { status: 0 } => eprintln!("  confirmed"),
            Outcome::Confirmed { status } => {
                eprintln!(
                    "  not confirmed ({})",
                    cable_client::ctap_status_name(*status)
                )
            }
            _ => {}
        }
    }

    async fn confirm(&self, id: RequestId) -> bool {
        let summary = "Use your phone as the security key?".to_owned();
        match (self.interactive, &self.notifier) {
            (true, notifier) => {
                eprintln!("\nAn app asks which security key to use: press Enter to use this one.");
                let by_notification = async {
                    match notifier {
                        Some(n) => n.confirm(id, summary).await,
                        None => std::future::pending().await,
                    }
                };
                tokio::select! {
                    () = self.enter_pressed() => true,
                    answer = by_notification => answer,
                }
            }
            (false, Some(n)) => n.confirm(id, summary).await,
            (false, None) => {
                tracing::info!("no terminal or notifications to ask: the key confirms itself");
                true
            }
        }
    }
}
