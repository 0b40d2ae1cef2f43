//! Relay + in-memory air + computer + phone, wired together in one process.

use std::sync::Arc;
use std::time::Duration;

use cable_ble::Air;
use cable_client::{CeremonyConfig, Deadlines};
use cable_phone::{
    register_for_contacts, AlwaysApprove, ContactRequest, PasskeyStore, PhoneIdentity,
    PhoneSession, PushEndpoint, SoftwareAuthenticator,
};
use cable_transport::{Connector, RelayUrl};
use cable_tunnel_server::contact::ContactKeys;
use cable_tunnel_server::{ContactConfig, Relay, RelayConfig, RelayError, RunningRelay, VapidKey};
use std::net::{Ipv4Addr, SocketAddr};

/// An in-process relay on 127.0.0.1 and a shared in-memory air.
#[derive(Debug)]
pub struct Harness {
    relay: RunningRelay,
    relay_url: RelayUrl,
    air: Air,
}

/// Why the harness could not start.
#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    /// The relay could not start.
    #[error("the loopback relay could not start")]
    Relay(#[from] RelayError),
    /// The relay's address or the loopback connector was refused.
    #[error("the loopback relay cannot be reached")]
    Url(#[from] cable_transport::TransportError),
    /// The generated contact key was refused.
    #[error("the relay's contact key is unusable")]
    ContactKeys(#[source] cable_tunnel_server::contact::KeyFileError),
    /// The phone's push endpoint could not listen on loopback.
    #[error("the phone's push endpoint cannot listen on loopback")]
    PushEndpoint(#[source] std::io::Error),
    /// The phone could not register for contacts.
    #[error("the phone cannot register for contacts")]
    Register(#[from] cable_phone::PushError),
}

/// Short deadlines: on loopback every phase takes milliseconds, so a failure shows up within
/// seconds instead of the minutes a person at a real phone gets.
pub fn short_deadlines() -> Deadlines {
    Deadlines {
        scan: Duration::from_secs(5),
        connect: Duration::from_secs(5),
        handshake: Duration::from_secs(5),
        reply: Duration::from_secs(10),
    }
}

impl Harness {
    /// Starts a relay with the default configuration and an air repeating adverts every 20 ms.
    pub async fn start() -> Result<Self, HarnessError> {
        Self::start_with(RelayConfig::default()).await
    }

    /// Starts a relay that also serves contacts of linked phones: fresh contact and VAPID
    /// keys, plain-HTTP push endpoints allowed (the phone's own, on loopback).
    pub async fn start_with_contacts() -> Result<Self, HarnessError> {
        let line = ContactKeys::generate_line(1, &mut rand_core::OsRng);
        let keys = ContactKeys::parse(&line).map_err(HarnessError::ContactKeys)?;
        let mut contact = ContactConfig::new(keys, VapidKey::generate());
        contact.allow_insecure_push = true;
        Self::start_with({
            let mut config = RelayConfig::default();
            config.contact = Some(contact);
            config
        })
        .await
    }

    /// Starts a relay with `config`.
    pub async fn start_with(config: RelayConfig) -> Result<Self, HarnessError> {
        let relay = Relay::bind(config).await?;
        let relay_url = RelayUrl::parse(&relay.url())?;
        Ok(Harness {
            relay,
            relay_url,
            air: Air::with_interval(Duration::from_millis(20)),
        })
    }

    /// The relay's base URL (`ws://127.0.0.1:<port>`).
    pub fn relay_url(&self) -> &RelayUrl {
        &self.relay_url
    }

    /// The relay (metrics, shutdown).
    pub fn relay(&self) -> &RunningRelay {
        &self.relay
    }

    /// The shared air.
    pub fn air(&self) -> &Air {
        &self.air
    }

    /// A computer-side configuration: scans this air, connects to this relay whatever domain
    /// the advert names, short linger.
    pub fn client_config(&self, deadlines: Deadlines) -> Result<CeremonyConfig, HarnessError> {
        client_config_for(&self.air, self.relay_url.clone(), deadlines)
    }

    /// A phone for `qr_uri` on this relay and air, answering with a software authenticator
    /// over `store` that approves everything.
    pub fn phone(&self, qr_uri: &str, store: PasskeyStore) -> PhoneSession {
        let authenticator = SoftwareAuthenticator::new(store, AlwaysApprove);
        PhoneSession::new(qr_uri, self.air.advertiser(), authenticator)
            .relay(self.relay_url.clone())
            .domain_id(0)
    }

    /// Makes `identity` reachable through this relay: a push endpoint of the phone's own on
    /// loopback, registered with the relay (the contact id lands in `identity`).
    pub async fn register_phone(
        &self,
        identity: &PhoneIdentity,
    ) -> Result<PushEndpoint, HarnessError> {
        let endpoint = PushEndpoint::bind(
            SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            identity.push_keys(),
        )
        .await
        .map_err(HarnessError::PushEndpoint)?;
        let deadline = cable_transport::Instant::now() + Duration::from_secs(10);
        register_for_contacts(
            identity,
            &loopback_connector()?,
            &self.relay_url,
            &endpoint.url(),
            deadline,
        )
        .await?;
        Ok(endpoint)
    }

    /// The phone answering a pushed `contact` on this relay and air, as `identity`, with a
    /// software authenticator over `store` that approves everything.
    pub fn contacted_phone(
        &self,
        contact: ContactRequest,
        identity: &PhoneIdentity,
        store: PasskeyStore,
    ) -> PhoneSession {
        let authenticator = SoftwareAuthenticator::new(store, AlwaysApprove);
        PhoneSession::contact(
            contact,
            identity.clone(),
            Arc::new(self.air.advertiser()),
            Box::new(authenticator),
        )
        .relay(self.relay_url.clone())
        .domain_id(0)
    }

    /// Stops the relay and waits for it.
    pub async fn shutdown(self) -> Result<(), RelayError> {
        self.relay.shutdown().await
    }
}

/// A computer-side configuration for any air and relay.
pub fn client_config_for(
    air: &Air,
    relay: RelayUrl,
    deadlines: Deadlines,
) -> Result<CeremonyConfig, HarnessError> {
    let mut config =
        CeremonyConfig::with_connector(Arc::new(air.scanner()), Arc::new(loopback_connector()?));
    config.relay_override = Some(relay);
    config.deadlines = deadlines;
    config.linger = Duration::from_millis(200);
    Ok(config)
}

/// A connector for loopback relays (plaintext `ws://` is allowed on loopback).
pub fn loopback_connector() -> Result<Connector, HarnessError> {
    Ok(Connector::builder()
        .public_roots(false)
        .system_roots(false)
        .build()?)
}
