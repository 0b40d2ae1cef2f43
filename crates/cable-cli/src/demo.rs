//! `cable demo`: a complete hybrid ceremony on one machine, without Bluetooth or internet.
//!
//! A tunnel relay on loopback, a simulated phone (cable-phone with its software
//! authenticator, approving automatically) and the computer side (cable-client) meet over an
//! in-memory radio. A passkey is registered with a QR code, during which the phone links to
//! the computer; then the computer signs in with the linked phone and no QR code (the relay
//! wakes the phone with a Web Push message to the phone's own loopback push endpoint). A
//! relying party built on webauthn_rp (independent of this project) verifies both
//! responses. Every step is narrated.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use cable_client::{Ceremony, LinkedPhones, PreparedAuthentication};
use cable_demo::{short_deadlines, Harness, RelyingParty};
use cable_phone::{PasskeyStore, PhoneIdentity, Progress as PhoneProgress};
use clap::Args;
use tokio::sync::mpsc::UnboundedReceiver;
use tokio_util::sync::CancellationToken;

use crate::error::CliError;
use crate::narrate;
use crate::out::outln;
use crate::render::{Rendered, TerminalStyle};

const RP_ID: &str = "example.com";
const ORIGIN: &str = "https://example.com";

/// `cable demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// User name for the passkey.
    #[arg(long, default_value = "ada", allow_hyphen_values = true)]
    pub user: String,
    /// Do not draw the QR codes (the FIDO:/ text is still printed).
    #[arg(long)]
    pub no_qr: bool,
}

/// Prints both sides' progress as it happens, until both senders are gone.
async fn narrate(
    mut computer: cable_client::ProgressReceiver,
    mut phone: UnboundedReceiver<PhoneProgress>,
) {
    let (mut computer_open, mut phone_open) = (true, true);
    while computer_open || phone_open {
        tokio::select! {
            p = computer.recv(), if computer_open => match p {
                Some(p) => { let _ = outln!("    computer: {}", narrate::computer(&p)); },
                None => computer_open = false,
            },
            p = phone.recv(), if phone_open => match p {
                Some(p) => { let _ = outln!("    phone:    {}", narrate::phone(&p)); },
                None => phone_open = false,
            },
        }
    }
}

fn show(uri: &str, draw: bool) -> Result<(), CliError> {
    if draw {
        let style = if std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none() {
            TerminalStyle::Ansi
        } else {
            TerminalStyle::Plain
        };
        outln!("{}", Rendered::new(uri)?.terminal(style))?;
    }
    outln!("    QR text: {uri}")?;
    Ok(())
}

/// Runs one ceremony between `ceremony` and a simulated phone; returns the computer's result.
async fn run_pair<R: cable_client::CeremonyRequest>(
    harness: &Harness,
    ceremony: Ceremony<R>,
    computer_progress: cable_client::ProgressReceiver,
    store: &PasskeyStore,
    identity: &PhoneIdentity,
) -> Result<R::Response, CliError> {
    let mut phone = harness
        .phone(&ceremony.qr_uri(), store.clone())
        .identity(identity.clone())
        .link_name("this computer");
    let phone_progress = phone.progress();
    let narrator = tokio::spawn(narrate(computer_progress, phone_progress));
    let cancel = CancellationToken::new();
    let (computer, phone) = tokio::join!(ceremony.run(cancel.clone()), phone.run(cancel));
    // The computer keeps the tunnel a moment after shutdown for late messages; do not wait
    // for that to print the outcome.
    let _ = tokio::time::timeout(Duration::from_millis(300), narrator).await;
    phone?;
    Ok(computer?)
}

/// `cable demo`.
pub fn run(args: &DemoArgs) -> Result<(), CliError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(CliError::Runtime)?;
    runtime.block_on(demo(args))
}

async fn demo(args: &DemoArgs) -> Result<(), CliError> {
    let started = Instant::now();
    outln!("cable demo: a FIDO hybrid (caBLE v2) ceremony, all on this machine\n")?;
    outln!("Setting up")?;
    let harness = Harness::start_with_contacts().await?;
    outln!(
        "    tunnel relay listening at {} (routing id {}), serving contacts of linked phones",
        harness.relay_url(),
        harness.relay().routing_id().to_hex()
    )?;
    outln!("    simulated phone: software authenticator (ES256 passkeys), approves every request")?;
    let identity =
        PhoneIdentity::generate(&mut rand_core::OsRng).map_err(|source| CliError::Identity {
            path: "(in memory)".into(),
            source,
        })?;
    identity
        .set_name(Some("Demo phone".to_owned()))
        .map_err(|source| CliError::Identity {
            path: "(in memory)".into(),
            source,
        })?;
    let mut endpoint = harness.register_phone(&identity).await?;
    outln!(
        "    the phone registered its push subscription with the relay (push endpoint {}) and got a contact id",
        endpoint.local_addr()
    )?;
    outln!("    Bluetooth: an in-memory radio shared by phone and computer")?;
    let rp = RelyingParty::new(RP_ID, ORIGIN)?;
    outln!("    relying party: {RP_ID} at {ORIGIN}, verified with webauthn_rp\n")?;
    let store = PasskeyStore::in_memory();
    let linked = LinkedPhones::in_memory();

    outln!(
        "1. Register a passkey for {:?} with a QR code; the phone links",
        args.user
    )?;
    let options = rp.start_registration(&args.user, &args.user)?;
    outln!(
        "    relying party sent PublicKeyCredentialCreationOptions ({} bytes of JSON)",
        options.len()
    )?;
    let mut config = harness.client_config(short_deadlines())?;
    config.linked_phones = Some(linked.clone());
    let (ceremony, progress) = Ceremony::register(config, &options, ORIGIN)?;
    outln!("    computer shows this QR code (it offers linking); the phone scans it:")?;
    show(&ceremony.qr_uri(), !args.no_qr)?;
    let registration = run_pair(&harness, ceremony, progress, &store, &identity).await?;
    let credential_id = rp.finish_registration(&registration.to_json_string())?;
    outln!(
        "    computer returned a registration response; credential id {}",
        cable_client::webauthn::options::b64url(&credential_id)
    )?;
    outln!("    relying party verified the registration: OK")?;
    let phone = linked.list().pop().ok_or(CliError::DemoNotLinked)?;
    outln!(
        "    computer keeps the linked phone {:?}; the phone keeps {} link(s)\n",
        phone.name,
        identity.links().len()
    )?;

    outln!("2. Sign in with the linked phone: no QR code")?;
    let options = rp.start_authentication()?;
    outln!("    relying party sent PublicKeyCredentialRequestOptions (any passkey for {RP_ID})")?;
    let mut config = harness.client_config(short_deadlines())?;
    config.linked_phones = Some(linked.clone());
    let request = PreparedAuthentication::new(&options, ORIGIN)?;
    let (ceremony, computer_progress) = Ceremony::with_linked_phone(config, request, phone);
    outln!("    computer asks the relay to contact the phone; the relay pushes to it")?;
    let phone_side = async {
        let contact = endpoint.next().await.ok_or(CliError::DemoNotLinked)?;
        outln!("    phone:    woken by a push: a linked computer asks for it")?;
        let mut session = harness.contacted_phone(contact, &identity, store.clone());
        let phone_progress = session.progress();
        Ok::<_, CliError>((session, phone_progress))
    };
    let cancel = CancellationToken::new();
    let narrator_and_phone = async {
        let (session, phone_progress) = phone_side.await?;
        let narrator = tokio::spawn(narrate(computer_progress, phone_progress));
        let outcome = session.run(cancel.clone()).await;
        let _ = tokio::time::timeout(Duration::from_millis(300), narrator).await;
        outcome.map_err(CliError::from)
    };
    let (assertion, phone) = tokio::join!(ceremony.run(cancel.clone()), narrator_and_phone);
    phone?;
    let assertion = assertion?;
    let signed_in = rp.finish_authentication(&assertion.to_json_string())?;
    outln!(
        "    computer returned an assertion from credential {}",
        cable_client::webauthn::options::b64url(&signed_in)
    )?;
    outln!(
        "    relying party verified the signature: OK, signed in as {:?}\n",
        args.user
    )?;

    outln!("Authentication response JSON as the relying party received it:")?;
    outln!(
        "{}",
        serde_json::to_string_pretty(&assertion.to_json())
            .unwrap_or_else(|_| assertion.to_json_string())
    )?;
    outln!("\nDone in {} ms.", started.elapsed().as_millis())?;
    if let Err(e) = harness.shutdown().await {
        eprintln!(
            "cable demo: the relay did not stop cleanly: {}",
            crate::error::chain(&e)
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_demo_registers_and_signs_in() {
        let args = DemoArgs {
            user: "grace".to_owned(),
            no_qr: false,
        };
        let outcome = demo(&args).await;
        assert!(outcome.is_ok(), "{outcome:?}");
    }
}
