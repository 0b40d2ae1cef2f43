//! `cable phone listen`: the phone waiting for contacts from the computers it linked to.
//!
//! It registers the phone's Web Push subscription with the relay (once; again only when
//! the relay or the endpoint changed), runs the phone's own push endpoint, and answers
//! each pushed contact with a state-assisted session: join the tunnel the relay made,
//! advertise under the link's secret, NKpsk0 with the identity key, serve the request.

use std::net::{Ipv4Addr, SocketAddr};

use cable_phone::{register_for_contacts, PhoneError, PhoneSession, PushEndpoint};
use cable_transport::Instant;

use crate::error::CliError;
use crate::phone::ListenArgs;
use crate::phone::{serve, session_identity, Kit};
use crate::signals::cancel_on_signals;

/// Registering is one small HTTP request.
const REGISTER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(15);

pub async fn run(args: &ListenArgs) -> Result<(), CliError> {
    let identity = session_identity(&args.serving, None)?.ok_or(CliError::NoPhoneIdentity)?;
    let kit = Kit::new(&args.serving).await?;
    let previous = identity.registration();
    let listen = args
        .push_listen
        .or_else(|| {
            // Reuse the last registration's address so that its contact id stays valid.
            let endpoint = previous.as_ref()?.endpoint.strip_prefix("http://")?;
            endpoint.split('/').next()?.parse().ok()
        })
        .unwrap_or(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)));
    let mut endpoint = PushEndpoint::bind(listen, identity.push_keys())
        .await
        .map_err(|source| CliError::PushListen {
            addr: listen,
            source,
        })?;
    let url = match &args.push_url {
        Some(base) => format!("{}{}", base.trim_end_matches('/'), endpoint.path()),
        None => endpoint.url(),
    };
    let current = cable_phone::Registration {
        relay: kit.relay.to_string(),
        endpoint: url.clone(),
    };
    if args.reregister || previous.as_ref() != Some(&current) || identity.contact_id().is_none() {
        let deadline = Instant::now() + REGISTER_TIMEOUT;
        register_for_contacts(&identity, &kit.connector, &kit.relay, &url, deadline)
            .await
            .map_err(CliError::Push)?;
        eprintln!(
            "phone: registered with {} for contacts; computers that link from now on can reach this phone",
            kit.relay
        );
    } else {
        eprintln!("phone: already registered with {} for contacts", kit.relay);
    }
    eprintln!(
        "phone: {} waiting for contacts on {} ({} linked computer(s)); Ctrl-C stops",
        identity.name(),
        endpoint.local_addr(),
        identity.links().len()
    );

    let cancel = cancel_on_signals();
    let mut answered = 0u64;
    while args.count == 0 || answered < args.count {
        let request = tokio::select! {
            request = endpoint.next() => request,
            () = cancel.cancelled() => break,
        };
        let Some(request) = request else { break };
        eprintln!("phone: a linked computer asks for this phone");
        let authenticator = match kit.fresh_authenticator(&args.serving) {
            Ok(authenticator) => authenticator,
            Err(e) => {
                eprintln!("phone: cannot answer: {}", crate::error::chain(&e));
                continue;
            }
        };
        let session = kit.configure(PhoneSession::contact(
            request,
            identity.clone(),
            kit.advertiser.clone(),
            authenticator,
        ));
        // One contact failing (a computer that gave up, an unlinked one) does not stop the
        // phone listening for the next.
        match serve(session, cancel.child_token()).await {
            Ok(()) => {}
            Err(CliError::Phone(PhoneError::UnknownLink)) => eprintln!(
                "phone: refused a contact for a link this phone does not have (unlinked?)"
            ),
            Err(CliError::Phone(PhoneError::Cancelled { .. })) => break,
            Err(e) => eprintln!("phone: contact failed: {}", crate::error::chain(&e)),
        }
        answered += 1;
    }
    Ok(())
}
