//! One QR-initiated hybrid ceremony, end to end.
//!
//! ```text
//! Ceremony::register/authenticate ─▶ qr_uri() shown ─▶ run(cancel):
//!   Scan      adverts from the Scanner, trial-decrypted with the QR secret; first hit wins
//!   Connect   wss://<relay of the advert's domain id>/cable/connect/<routing>/<tunnel>
//!   Handshake KNpsk0 msg1 → msg2 → post-handshake message (revision 1 or 0) → getInfo
//!   Reply     CTAP request → CTAP reply (update messages may arrive in between)
//!   then      shutdown, and a short linger in the background for a late update message
//! ```
//!
//! Each phase has its own deadline; the cancellation token is watched in every phase. A
//! failure is returned from [`Ceremony::run`] naming the phase; progress events only report.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cable_ble::Scanner;
use cable_proto::advert::{decrypt_advert, DecryptedAdvert};
use cable_proto::derive::EidKey;
use cable_proto::domain::host_for_domain_id;
use cable_proto::ids::RoutingId;
use cable_proto::message::ProtocolRevision;
use cable_proto::message::{ClientPayload, LinkingInfo};
use cable_proto::qr::{QrKey, RequestHint};
use cable_proto::rand_core::{self, OsRng};
use cable_proto::session::{DesktopEvent, DesktopSession};
use cable_transport::{Connector, Instant, RelayUrl, TunnelConnection};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::authentication::PreparedAuthentication;
use crate::ctap::AuthenticatorInfo;
use crate::error::{ClientError, Phase};
use crate::linked::{LinkedPhone, LinkedPhones};
use crate::registration::PreparedRegistration;
use crate::webauthn::response::{AuthenticationResponse, RegistrationResponse};

/// Per-phase time limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadlines {
    /// From the start of [`Ceremony::run`] until a matching advert is seen.
    pub scan: Duration,
    /// Opening the tunnel WebSocket.
    pub connect: Duration,
    /// Noise handshake plus the phone's post-handshake message.
    pub handshake: Duration,
    /// From sending the request until the phone's reply (includes the person's decision).
    pub reply: Duration,
}

impl Default for Deadlines {
    fn default() -> Self {
        Deadlines {
            scan: Duration::from_secs(180),
            connect: Duration::from_secs(15),
            handshake: Duration::from_secs(15),
            reply: Duration::from_secs(120),
        }
    }
}

/// How a ceremony reaches the phone. Built with [`CeremonyConfig::new`] or
/// [`CeremonyConfig::with_connector`], then adjusted field by field: settings may be added.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct CeremonyConfig {
    /// Where adverts come from (a Bluetooth adapter, or the in-memory air).
    pub scanner: Arc<dyn Scanner>,
    /// Opens tunnel WebSockets (trust roots, plaintext loopback, limits).
    pub connector: Arc<Connector>,
    /// Use this relay whatever domain id the advert names (private relays and tests).
    pub relay_override: Option<RelayUrl>,
    /// Per-phase deadlines.
    pub deadlines: Deadlines,
    /// How long to keep reading after shutdown for a late update message.
    pub linger: Duration,
    /// Where to keep phones that link during a QR ceremony. With a store the QR code asks
    /// the phone for linking data (key 4); verified data is stored, anything else ignored.
    pub linked_phones: Option<LinkedPhones>,
}

impl CeremonyConfig {
    /// Defaults: public relays over TLS, default deadlines, a 5 s linger.
    pub fn new(scanner: Arc<dyn Scanner>) -> Result<Self, ClientError> {
        let connector = Connector::new().map_err(|source| ClientError::Transport {
            phase: Phase::Connect,
            source,
        })?;
        Ok(Self::with_connector(scanner, Arc::new(connector)))
    }

    /// The same defaults with a connector of the caller's (private CAs, loopback relays).
    pub fn with_connector(scanner: Arc<dyn Scanner>, connector: Arc<Connector>) -> Self {
        CeremonyConfig {
            scanner,
            connector,
            relay_override: None,
            deadlines: Deadlines::default(),
            linger: Duration::from_secs(5),
            linked_phones: None,
        }
    }
}

/// What a ceremony reports while it runs. Informational only: errors come from
/// [`Ceremony::run`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Progress {
    /// Listening for the phone's advert (the QR code should be on screen).
    Scanning,
    /// The phone's advert was decrypted; it names this relay host (domain id).
    AdvertFound {
        /// The advert's tunnel-server domain id.
        domain_id: u16,
        /// The relay host it names.
        relay: String,
    },
    /// The tunnel WebSocket is open.
    TunnelConnected,
    /// Handshake done; the phone speaks this post-handshake revision.
    HandshakeComplete {
        /// The revision the phone's post-handshake message announced.
        revision: ProtocolRevision,
    },
    /// The CTAP request is on its way; the person decides on the phone now.
    RequestSent,
    /// The phone answered.
    ReplyReceived,
    /// The phone offered linking data; `verified` says whether its signature checked out.
    LinkingOffered {
        /// The name the phone gives itself.
        authenticator_name: String,
        /// Whether the linking signature verified against the handshake.
        verified: bool,
    },
    /// Verified linking data was stored: the phone can be used without a QR code next time.
    PhoneLinked {
        /// The name it is stored under (unique in the store).
        name: String,
    },
    /// Verified linking data could not be stored; the ceremony itself is unaffected.
    LinkNotSaved {
        /// Why, as one line.
        reason: String,
    },
    /// Shutdown sent; the tunnel closes after the linger time.
    Finished,
}

/// Receives [`Progress`] events; hold it before calling [`Ceremony::run`].
pub type ProgressReceiver = mpsc::UnboundedReceiver<Progress>;

/// A request a ceremony can carry: what it asks the phone and how it reads the answer.
pub trait CeremonyRequest: Send + Sync {
    /// What the caller gets back.
    type Response: Send;
    /// QR key 5.
    fn hint(&self) -> RequestHint;
    /// `command ‖ CBOR` for the tunnel.
    fn ctap_request(&self, info: &AuthenticatorInfo) -> Result<Vec<u8>, ClientError>;
    /// Reads the phone's `status ‖ CBOR` reply.
    fn finish(&self, info: &AuthenticatorInfo, reply: &[u8])
        -> Result<Self::Response, ClientError>;
    /// The relying party's `timeout` for the whole ceremony, if it gave one.
    fn timeout(&self) -> Option<Duration> {
        None
    }
    /// Another request for the same tunnel after `reply` (the last one received), such as
    /// authenticatorGetNextAssertion when a getAssertion reply counts several credentials;
    /// `None` (the default) ends the exchange. Called before [`CeremonyRequest::finish`].
    fn follow_up(&self, reply: &[u8]) -> Option<Vec<u8>> {
        let _ = reply;
        None
    }
    /// The phone's reply to the last [`CeremonyRequest::follow_up`].
    fn follow_up_reply(&self, reply: Vec<u8>) {
        let _ = reply;
    }
}

impl CeremonyRequest for PreparedRegistration {
    type Response = RegistrationResponse;
    fn hint(&self) -> RequestHint {
        RequestHint::MakeCredential
    }
    fn ctap_request(&self, info: &AuthenticatorInfo) -> Result<Vec<u8>, ClientError> {
        PreparedRegistration::ctap_request(self, info)
    }
    fn finish(
        &self,
        info: &AuthenticatorInfo,
        reply: &[u8],
    ) -> Result<Self::Response, ClientError> {
        PreparedRegistration::finish(self, info, reply)
    }
    fn timeout(&self) -> Option<Duration> {
        self.options().timeout_ms.map(Duration::from_millis)
    }
}

impl CeremonyRequest for PreparedAuthentication {
    type Response = AuthenticationResponse;
    fn hint(&self) -> RequestHint {
        RequestHint::GetAssertion
    }
    fn ctap_request(&self, info: &AuthenticatorInfo) -> Result<Vec<u8>, ClientError> {
        PreparedAuthentication::ctap_request(self, info)
    }
    fn finish(
        &self,
        info: &AuthenticatorInfo,
        reply: &[u8],
    ) -> Result<Self::Response, ClientError> {
        PreparedAuthentication::finish(self, info, reply)
    }
    fn timeout(&self) -> Option<Duration> {
        self.options().timeout_ms.map(Duration::from_millis)
    }
}

/// The randomness a ceremony draws: the QR key and secret, the handshake's ephemeral key.
pub type CeremonyRng = Box<dyn rand_core::CryptoRngCore + Send + Sync>;

/// One hybrid ceremony: a fresh QR key, one request, one phone.
pub struct Ceremony<R> {
    config: CeremonyConfig,
    target: Target,
    request: R,
    rng: CeremonyRng,
    progress: mpsc::UnboundedSender<Progress>,
    /// The relying party's overall timeout, fixed when `run` starts.
    overall: Option<Instant>,
    /// The clock reading the ceremony was created with (QR key 3), in Unix seconds.
    now: u64,
}

/// How the ceremony reaches its phone.
enum Target {
    /// A QR code the person scans (QR-initiated flow).
    Qr(Box<QrKey>),
    /// A linked phone, contacted through its relay (state-assisted flow, PROTOCOL.md §10).
    Linked {
        phone: Box<LinkedPhone>,
        payload: ClientPayload,
    },
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Qr(qr) => f.debug_tuple("Qr").field(qr).finish(),
            Target::Linked { phone, .. } => f.debug_tuple("Linked").field(phone).finish(),
        }
    }
}

impl<R: std::fmt::Debug> std::fmt::Debug for Ceremony<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ceremony")
            .field("config", &self.config)
            .field("target", &self.target)
            .field("request", &self.request)
            .finish_non_exhaustive()
    }
}

/// A ceremony with a linked phone: no QR code; the relay wakes the phone, which proves it is
/// near with an advert keyed by the link secret. Made by [`Ceremony::with_linked_phone`].
#[derive(Debug)]
pub struct LinkedCeremony<R>(Ceremony<R>);

impl<R: CeremonyRequest> LinkedCeremony<R> {
    /// The phone this ceremony contacts.
    pub fn phone(&self) -> &LinkedPhone {
        match &self.0.target {
            Target::Linked { phone, .. } => phone,
            // Only `with_linked_phone` builds this type, always with a linked target.
            Target::Qr(_) => unreachable!("a linked ceremony has a linked target"),
        }
    }

    /// The prepared request.
    pub fn request(&self) -> &R {
        &self.0.request
    }

    /// Runs it, as [`Ceremony::run`] does. A relay answering 410 Gone means the phone unlinked:
    /// it is forgotten in [`CeremonyConfig::linked_phones`] and the error is
    /// [`ClientError::PhoneUnlinked`]. A phone that never advertises ends in
    /// [`ClientError::Timeout`] in the scan phase.
    pub async fn run(self, cancel: CancellationToken) -> Result<R::Response, ClientError> {
        self.0.run(cancel).await
    }
}

impl Ceremony<PreparedRegistration> {
    /// A registration from `PublicKeyCredentialCreationOptionsJSON`, for `origin`. The options
    /// are validated here, before any QR code is shown.
    pub fn register(
        config: CeremonyConfig,
        options_json: &str,
        origin: &str,
    ) -> Result<(Self, ProgressReceiver), ClientError> {
        Ok(Self::new(
            config,
            PreparedRegistration::new(options_json, origin)?,
        ))
    }
}

impl Ceremony<PreparedAuthentication> {
    /// An authentication from `PublicKeyCredentialRequestOptionsJSON`, for `origin`.
    pub fn authenticate(
        config: CeremonyConfig,
        options_json: &str,
        origin: &str,
    ) -> Result<(Self, ProgressReceiver), ClientError> {
        Ok(Self::new(
            config,
            PreparedAuthentication::new(options_json, origin)?,
        ))
    }
}

impl<R: CeremonyRequest> Ceremony<R> {
    /// A ceremony for an already prepared request, with the system clock and the operating
    /// system's RNG.
    pub fn new(config: CeremonyConfig, request: R) -> (Self, ProgressReceiver) {
        Self::with_entropy(config, request, SystemTime::now(), Box::new(OsRng))
    }

    /// A ceremony whose clock reading (QR key 3) and randomness are the caller's: for
    /// reproducible tests, or an embedder with its own RNG.
    pub fn with_entropy(
        config: CeremonyConfig,
        request: R,
        now: SystemTime,
        mut rng: CeremonyRng,
    ) -> (Self, ProgressReceiver) {
        let now = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        // Key 4 asks for linking data only when there is somewhere to keep it (the key is
        // present either way; see PROTOCOL.md §2.3).
        let qr = QrKey::generate(&mut rng, now, request.hint())
            .with_state_assisted(config.linked_phones.is_some());
        let (tx, rx) = mpsc::unbounded_channel();
        (
            Ceremony {
                config,
                target: Target::Qr(Box::new(qr)),
                request,
                rng,
                progress: tx,
                overall: None,
                now,
            },
            rx,
        )
    }

    /// The `FIDO:/…` text to show as a QR code. It holds the QR secret, from which every key
    /// of the session is derived: the caller owns this copy and should wipe it once the code
    /// is off the screen, e.g. by holding it in `zeroize::Zeroizing<String>` (a plain drop
    /// leaves the text in freed memory). Each call makes a new copy.
    pub fn qr_uri(&self) -> String {
        match &self.target {
            Target::Qr(qr) => qr.to_uri(),
            // `LinkedCeremony` never exposes this method.
            Target::Linked { .. } => String::new(),
        }
    }

    /// A ceremony with a phone linked earlier (no QR code), with the system clock and the
    /// operating system's RNG.
    pub fn with_linked_phone(
        config: CeremonyConfig,
        request: R,
        phone: LinkedPhone,
    ) -> (LinkedCeremony<R>, ProgressReceiver) {
        let mut rng: CeremonyRng = Box::new(OsRng);
        let payload = ClientPayload::new(&mut rng, phone.link_id.clone(), request.hint());
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let (tx, rx) = mpsc::unbounded_channel();
        let ceremony = Ceremony {
            config,
            target: Target::Linked {
                phone: Box::new(phone),
                payload,
            },
            request,
            rng,
            progress: tx,
            overall: None,
            now,
        };
        (LinkedCeremony(ceremony), rx)
    }

    /// The prepared request (its client data, RP id, options).
    pub fn request(&self) -> &R {
        &self.request
    }

    fn report(&self, p: Progress) {
        report(&self.progress, p);
    }

    /// Runs the ceremony until the phone answers, a deadline passes, or `cancel` fires.
    ///
    /// The relying party's `timeout`, when the options carry one, caps every phase's deadline.
    /// After the reply, a background task lingers for late update messages (up to
    /// [`CeremonyConfig::linger`]); cancelling `cancel` ends it too, and closes the tunnel.
    ///
    /// Everything it does happens in a `tracing` span named `ceremony` (fields `request`,
    /// the CTAP request kind, and `phone`, a linked phone's name or `qr`), with an event per
    /// step at debug level and its outcome at info level: an integrator's subscriber
    /// (`RUST_LOG=cable_client=debug`) shows the ceremony's progress. No key, secret or
    /// signed data is ever logged.
    pub async fn run(self, cancel: CancellationToken) -> Result<R::Response, ClientError> {
        let phone = match &self.target {
            Target::Qr(_) => "qr".to_owned(),
            Target::Linked { phone, .. } => phone.name.clone(),
        };
        let span = tracing::info_span!("ceremony", request = ?self.request.hint(), %phone);
        async move {
            let result = self.run_steps(cancel).await;
            match &result {
                Ok(_) => tracing::info!("the phone answered"),
                Err(e) => tracing::info!(
                    error = %crate::error_chain(e),
                    dom_exception = %e.dom_exception(),
                    retryable = e.is_retryable(),
                    "the ceremony failed"
                ),
            }
            result
        }
        .instrument(span)
        .await
    }

    async fn run_steps(mut self, cancel: CancellationToken) -> Result<R::Response, ClientError> {
        self.overall = self.request.timeout().map(|t| Instant::now() + t);
        let mut tunnel = match &self.target {
            Target::Qr(qr) => {
                let qr = qr.clone();
                self.open_qr(&qr, &cancel).await?
            }
            Target::Linked { phone, payload } => {
                let (phone, payload) = (phone.clone(), payload.clone());
                self.open_linked(&phone, &payload, &cancel).await?
            }
        };
        let info = match self.handshake(&mut tunnel, &cancel).await {
            Ok(info) => info,
            Err(e) => {
                tunnel.close().await;
                return Err(e);
            }
        };
        self.report(Progress::HandshakeComplete {
            revision: tunnel.machine.revision(),
        });

        let request = match self.request.ctap_request(&info) {
            Ok(r) => r,
            Err(e) => {
                tunnel
                    .shutdown(Instant::now() + Duration::from_secs(1))
                    .await;
                return Err(e);
            }
        };
        let reply = self.exchange(&mut tunnel, &request, &cancel).await?;
        self.report(Progress::ReplyReceived);
        let mut last = reply.clone();
        while let Some(next) = self.request.follow_up(&last) {
            // A follow-up that fails leaves the first reply standing: it is the answer asked
            // for, the rest is extra (the tunnel is shut by then, which the linger copes with).
            match self.exchange(&mut tunnel, &next, &cancel).await {
                Ok(r) => {
                    self.request.follow_up_reply(r.clone());
                    last = r;
                }
                Err(_) => break,
            }
        }
        let result = self.request.finish(&info, &reply);

        tunnel.linger(self.config.linger, cancel).await;
        self.report(Progress::Finished);
        result
    }

    /// QR flow: the advert names the relay and routing id; the computer joins the phone's
    /// tunnel and starts the KNpsk0 handshake.
    async fn open_qr(
        &mut self,
        qr: &QrKey,
        cancel: &CancellationToken,
    ) -> Result<Tunnel, ClientError> {
        let advert = self.scan(&qr.secret().eid_key(), cancel).await?;
        let eid = advert.eid();
        let relay = self.relay_for(eid.domain_id)?;
        self.report(Progress::AdvertFound {
            domain_id: eid.domain_id,
            relay: relay.to_string(),
        });

        let conn = self.connect(qr, &relay, &eid.routing_id, cancel).await?;
        self.report(Progress::TunnelConnected);

        let machine = DesktopSession::new_qr(qr, &advert, &mut self.rng).map_err(|source| {
            ClientError::Protocol {
                phase: Phase::Handshake,
                source,
            }
        })?;
        Ok(Tunnel {
            conn,
            machine,
            progress: self.progress.clone(),
            linker: self.config.linked_phones.clone().map(|store| Linker {
                store,
                domain_id: eid.domain_id,
                now: self.now,
            }),
        })
    }

    /// State-assisted flow (PROTOCOL.md §10): contact the phone through its relay first (as
    /// libwebauthn does, so a relay that answers at once works), then wait for its advert and
    /// start the NKpsk0 handshake; the connect signal, before or after message 1, is the
    /// machine's to check.
    async fn open_linked(
        &mut self,
        phone: &LinkedPhone,
        payload: &ClientPayload,
        cancel: &CancellationToken,
    ) -> Result<Tunnel, ClientError> {
        let relay = self.relay_for(phone.domain_id)?;
        let deadline = self.deadline(self.config.deadlines.connect);
        let header = payload.to_header_value();
        let contacting =
            self.config
                .connector
                .open_contact(&relay, &phone.contact_id, &header, deadline);
        let opened = tokio::select! {
            biased;
            _ = cancel.cancelled() => return Err(ClientError::Cancelled { phase: Phase::Connect }),
            r = contacting => r,
        };
        let (conn, signal) = match opened {
            Ok(opened) => opened,
            Err(cable_transport::TransportError::Gone) => {
                return Err(self.unlinked(phone));
            }
            Err(source) => return Err(transport_error(Phase::Connect, source)),
        };
        self.report(Progress::TunnelConnected);

        let machine = DesktopSession::new_linked(
            &phone.identity_public_key,
            &phone.link_secret,
            payload.client_nonce,
            signal,
            &mut self.rng,
        );
        let mut tunnel = Tunnel {
            conn,
            machine,
            progress: self.progress.clone(),
            // Linking data in a state-assisted session cannot be verified (§8.4).
            linker: None,
        };
        let Some(eid_key) = tunnel.machine.eid_key() else {
            tunnel.close().await;
            return Err(ClientError::Protocol {
                phase: Phase::Scan,
                source: cable_proto::Error::WrongState {
                    operation: "eid_key",
                    state: "past the advert",
                },
            });
        };
        let advert = match self.scan(&eid_key, cancel).await {
            Ok(advert) => advert,
            Err(e) => {
                tunnel.close().await;
                return Err(e);
            }
        };
        self.report(Progress::AdvertFound {
            domain_id: phone.domain_id,
            relay: relay.to_string(),
        });
        if let Err(source) = tunnel.machine.advert_seen(&advert) {
            tunnel.close().await;
            return Err(protocol_error(Phase::Handshake, source));
        }
        Ok(tunnel)
    }

    /// The relay says the phone's contact id is dead: forget the phone, so the next attempt
    /// offers the QR code instead.
    fn unlinked(&self, phone: &LinkedPhone) -> ClientError {
        let forgotten = match &self.config.linked_phones {
            Some(store) => store
                .forget_phone(&phone.identity_public_key)
                .map(|gone| gone.is_some())
                .unwrap_or(false),
            None => false,
        };
        ClientError::PhoneUnlinked {
            name: phone.name.clone(),
            forgotten,
        }
    }

    /// The deadline of a phase starting now.
    fn deadline(&self, phase: Duration) -> Instant {
        let own = Instant::now() + phase;
        self.overall.map_or(own, |overall| own.min(overall))
    }

    async fn scan(
        &self,
        eid_key: &EidKey,
        cancel: &CancellationToken,
    ) -> Result<DecryptedAdvert, ClientError> {
        let deadline = self.deadline(self.config.deadlines.scan);
        let start = tokio::select! {
            biased;
            _ = cancel.cancelled() => return Err(ClientError::Cancelled { phase: Phase::Scan }),
            r = tokio::time::timeout_at(deadline, self.config.scanner.start_scan()) => r,
        };
        let mut stream = match start {
            Err(_) => return Err(ClientError::Timeout { phase: Phase::Scan }),
            Ok(Err(source)) => return Err(ClientError::Ble { source }),
            Ok(Ok(s)) => s,
        };
        self.report(Progress::Scanning);
        let outcome = loop {
            tokio::select! {
                biased;
                _ = cancel.cancelled() => break Err(ClientError::Cancelled { phase: Phase::Scan }),
                _ = tokio::time::sleep_until(deadline) => break Err(ClientError::Timeout { phase: Phase::Scan }),
                item = stream.next_advert() => match item {
                    None => break Err(ClientError::ScanEnded),
                    Some(Err(source)) => break Err(ClientError::Ble { source }),
                    // Not ours, stale, or from another computer's QR: ignore and keep going.
                    Some(Ok(advert)) => {
                        if let Ok(hit) = decrypt_advert(eid_key, advert.service_data()) {
                            break Ok(hit);
                        }
                    }
                },
            }
        };
        // Commit to the first match and stop the radio; bounded so a stuck backend cannot
        // hold the ceremony.
        let _ = tokio::time::timeout(Duration::from_secs(2), stream.stop()).await;
        outcome
    }

    fn relay_for(&self, domain_id: u16) -> Result<RelayUrl, ClientError> {
        if let Some(url) = &self.config.relay_override {
            return Ok(url.clone());
        }
        let host = host_for_domain_id(domain_id).map_err(|source| ClientError::Protocol {
            phase: Phase::Connect,
            source,
        })?;
        RelayUrl::for_host(&host).map_err(|source| ClientError::Transport {
            phase: Phase::Connect,
            source,
        })
    }

    async fn connect(
        &self,
        qr: &QrKey,
        relay: &RelayUrl,
        routing_id: &RoutingId,
        cancel: &CancellationToken,
    ) -> Result<TunnelConnection, ClientError> {
        let deadline = self.deadline(self.config.deadlines.connect);
        let tunnel_id = qr.secret().tunnel_id();
        let connecting = self
            .config
            .connector
            .connect_tunnel(relay, routing_id, &tunnel_id, deadline);
        tokio::select! {
            biased;
            _ = cancel.cancelled() => Err(ClientError::Cancelled { phase: Phase::Connect }),
            r = connecting => r.map_err(|source| transport_error(Phase::Connect, source)),
        }
    }

    /// Handshake messages and the post-handshake message, until the machine is established.
    async fn handshake(
        &self,
        tunnel: &mut Tunnel,
        cancel: &CancellationToken,
    ) -> Result<AuthenticatorInfo, ClientError> {
        const PHASE: Phase = Phase::Handshake;
        let deadline = self.deadline(self.config.deadlines.handshake);
        let steps = async {
            while tunnel.machine.get_info().is_none() {
                tunnel.step(PHASE, deadline).await?;
            }
            Ok(())
        };
        tokio::select! {
            biased;
            _ = cancel.cancelled() => return Err(ClientError::Cancelled { phase: PHASE }),
            r = steps => r?,
        };
        AuthenticatorInfo::parse(tunnel.machine.get_info().unwrap_or_default())
    }

    async fn exchange(
        &self,
        tunnel: &mut Tunnel,
        request: &[u8],
        cancel: &CancellationToken,
    ) -> Result<Vec<u8>, ClientError> {
        const PHASE: Phase = Phase::Reply;
        let deadline = self.deadline(self.config.deadlines.reply);
        let result = tokio::select! {
            biased;
            _ = cancel.cancelled() => Err(ClientError::Cancelled { phase: PHASE }),
            r = tunnel.transact(request, deadline) => r,
        };
        if result.is_err() {
            // Hybrid has no CTAP cancel: shutdown and closing the socket end the phone's UI.
            tunnel
                .shutdown(Instant::now() + Duration::from_secs(1))
                .await;
        }
        result
    }
}

fn transport_error(phase: Phase, source: cable_transport::TransportError) -> ClientError {
    match source {
        cable_transport::TransportError::Timeout(_) => ClientError::Timeout { phase },
        source => ClientError::Transport { phase, source },
    }
}

fn protocol_error(phase: Phase, source: cable_proto::Error) -> ClientError {
    use cable_proto::Error as E;
    match source {
        E::NoCtapSupport => ClientError::NoCtapSupport,
        E::DigitalCredentialsOnly => ClientError::DigitalCredentialsOnly,
        E::UnexpectedMessage { what } => ClientError::UnexpectedMessage { phase, what },
        E::HandshakeLength { .. } => ClientError::UnexpectedMessage {
            phase,
            what: "handshake reply of the wrong length",
        },
        // After the first message, a frame that does not decrypt is the encrypted channel
        // failing (the counters can no longer agree), as it always was.
        source @ (E::DecryptFailed
        | E::CiphertextTooShort { .. }
        | E::EmptyPlaintext
        | E::BadPadding { .. }
        | E::CounterExhausted)
            if phase == Phase::Reply =>
        {
            ClientError::Transport {
                phase,
                source: cable_transport::TransportError::Decrypt(source),
            }
        }
        source => ClientError::Protocol { phase, source },
    }
}

/// The tunnel and the protocol core's [`DesktopSession`] it feeds: this only waits for the
/// socket; every rule is the machine's.
/// Hands `p` to the caller and to the log. Progress names hosts, revisions and the phone's
/// chosen name, never a key, the QR secret or anything the phone signed: safe for any log.
fn report(progress: &mpsc::UnboundedSender<Progress>, p: Progress) {
    tracing::debug!(progress = ?p, "ceremony progress");
    // A caller that dropped its receiver does not want progress; that is not an error.
    let _ = progress.send(p);
}

struct Tunnel {
    conn: TunnelConnection,
    machine: DesktopSession,
    progress: mpsc::UnboundedSender<Progress>,
    linker: Option<Linker>,
}

/// Where verified linking data goes, and what to store with it.
struct Linker {
    store: LinkedPhones,
    /// The domain id of the advert that led to this tunnel: where to contact the phone later.
    domain_id: u16,
    /// The ceremony's clock reading, as the link's date.
    now: u64,
}

impl Linker {
    fn store(&self, linking: &LinkingInfo) -> Progress {
        // A few hundred bytes to a local file: brief enough not to move to the blocking pool,
        // and it keeps a late update's store ordered before the tunnel closes.
        match self.store.add_verified(linking, self.domain_id, self.now) {
            Ok(phone) => Progress::PhoneLinked { name: phone.name },
            Err(e) => Progress::LinkNotSaved {
                reason: crate::error::chain(&e),
            },
        }
    }
}

impl Tunnel {
    /// Sends what the machine queued, then reads one frame into it and reports its events.
    /// Returns the reply, if that frame (or a local answer) produced one.
    async fn step(
        &mut self,
        phase: Phase,
        deadline: Instant,
    ) -> Result<Option<Vec<u8>>, ClientError> {
        self.flush(phase, deadline).await?;
        let frame = self
            .conn
            .recv(deadline)
            .await
            .map_err(|source| transport_error(phase, source))?;
        self.machine
            .handle_frame(&frame)
            .map_err(|source| protocol_error(phase, source))?;
        Ok(self.drain_events())
    }

    async fn flush(&mut self, phase: Phase, deadline: Instant) -> Result<(), ClientError> {
        while let Some(frame) = self.machine.poll_transmit() {
            self.conn
                .send(frame, deadline)
                .await
                .map_err(|source| transport_error(phase, source))?;
        }
        Ok(())
    }

    fn drain_events(&mut self) -> Option<Vec<u8>> {
        let mut reply = None;
        while let Some(event) = self.machine.poll_event() {
            match event {
                DesktopEvent::Linking { linking, verified } => {
                    report(
                        &self.progress,
                        Progress::LinkingOffered {
                            authenticator_name: linking.name.clone(),
                            verified,
                        },
                    );
                    if let (true, Some(linker)) = (verified, &self.linker) {
                        report(&self.progress, linker.store(&linking));
                    }
                }
                DesktopEvent::Reply(bytes) => reply = Some(bytes),
                _ => {}
            }
        }
        reply
    }

    /// Sends the request and waits for its reply (getInfo is answered by the machine).
    async fn transact(
        &mut self,
        request: &[u8],
        deadline: Instant,
    ) -> Result<Vec<u8>, ClientError> {
        const PHASE: Phase = Phase::Reply;
        self.machine
            .send_request(request)
            .map_err(|source| protocol_error(PHASE, source))?;
        if let Some(local) = self.drain_events() {
            return Ok(local);
        }
        self.flush(PHASE, deadline).await?;
        report(&self.progress, Progress::RequestSent);
        loop {
            if let Some(reply) = self.step(PHASE, deadline).await? {
                return Ok(reply);
            }
        }
    }

    /// Best effort: tell the phone we are done (revision 1) and close the socket.
    async fn shutdown(&mut self, deadline: Instant) {
        if self.machine.shutdown() && self.conn.is_open() {
            let _ = self.flush(Phase::Reply, deadline).await;
        }
        self.close().await;
    }

    async fn close(&mut self) {
        let _ = self
            .conn
            .close(Instant::now() + Duration::from_millis(500))
            .await;
    }

    /// Sends shutdown now and then, in the background, reads late update messages until the
    /// phone closes, `linger` passes (Chromium waits up to 3 minutes) or `cancel` fires.
    async fn linger(mut self, linger: Duration, cancel: CancellationToken) {
        let deadline = Instant::now() + linger;
        let lingering = self.machine.shutdown() && self.flush(Phase::Reply, deadline).await.is_ok();
        if !lingering || linger.is_zero() {
            self.close().await;
            return;
        }
        tokio::spawn(async move {
            loop {
                let read = tokio::select! {
                    biased;
                    _ = cancel.cancelled() => break,
                    r = self.step(Phase::Reply, deadline) => r,
                };
                if read.is_err() {
                    break;
                }
            }
            self.close().await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_phone_offering_digital_credentials_only_is_named_as_such() {
        let e = protocol_error(Phase::Handshake, cable_proto::Error::DigitalCredentialsOnly);
        assert!(matches!(e, ClientError::DigitalCredentialsOnly), "{e:?}");
        assert!(e.to_string().contains("digital credentials only"), "{e}");
        let e = protocol_error(Phase::Handshake, cable_proto::Error::NoCtapSupport);
        assert!(matches!(e, ClientError::NoCtapSupport), "{e:?}");
    }

    fn ceremony(relay_override: Option<RelayUrl>) -> Ceremony<PreparedAuthentication> {
        let mut config = CeremonyConfig::new(Arc::new(cable_ble::Air::new().scanner())).unwrap();
        config.relay_override = relay_override;
        let (c, _) =
            Ceremony::authenticate(config, r#"{"challenge": "AQ"}"#, "https://a.example").unwrap();
        c
    }

    #[test]
    fn relay_follows_the_advert_domain_id() {
        let c = ceremony(None);
        assert_eq!(c.relay_for(0).unwrap().host(), "cable.ua5v.com");
        assert_eq!(c.relay_for(1).unwrap().host(), "cable.auth.com");
        assert_eq!(c.relay_for(266).unwrap().host(), "cable.wufkweyy3uaxb.com");
        assert!(c.relay_for(0).unwrap().is_secure());
        assert!(matches!(
            c.relay_for(255),
            Err(ClientError::Protocol {
                phase: Phase::Connect,
                ..
            })
        ));
    }

    #[test]
    fn relay_override_wins() {
        let private = RelayUrl::parse("wss://relay.example.org").unwrap();
        let c = ceremony(Some(private.clone()));
        assert_eq!(c.relay_for(0).unwrap(), private);
        assert_eq!(c.relay_for(266).unwrap(), private);
    }

    /// Replays one byte value forever: enough to make every draw reproducible.
    struct ConstantRng(u8);

    impl rand_core::RngCore for ConstantRng {
        fn next_u32(&mut self) -> u32 {
            rand_core::impls::next_u32_via_fill(self)
        }
        fn next_u64(&mut self) -> u64 {
            rand_core::impls::next_u64_via_fill(self)
        }
        fn fill_bytes(&mut self, dest: &mut [u8]) {
            dest.fill(self.0);
        }
        fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
            self.fill_bytes(dest);
            Ok(())
        }
    }

    impl rand_core::CryptoRng for ConstantRng {}

    #[test]
    fn the_clock_and_the_rng_are_the_callers() {
        let at = UNIX_EPOCH + Duration::from_secs(1_700_000_123);
        let make = |byte| {
            let config = CeremonyConfig::new(Arc::new(cable_ble::Air::new().scanner())).unwrap();
            let request =
                PreparedAuthentication::new(r#"{"challenge": "AQ"}"#, "https://a.example").unwrap();
            let (c, _) = Ceremony::with_entropy(config, request, at, Box::new(ConstantRng(byte)));
            c.qr_uri()
        };
        assert_eq!(make(7), make(7));
        assert_ne!(make(7), make(8));
        let code = cable_proto::qr::QrCode::parse(&make(7)).unwrap();
        assert_eq!(code.timestamp, Some(1_700_000_123));
    }

    #[test]
    fn qr_carries_the_hint_and_key_4() {
        let c = ceremony(None);
        let code = cable_proto::qr::QrCode::parse(&c.qr_uri()).unwrap();
        assert_eq!(code.hint, RequestHint::GetAssertion);
        assert_eq!(code.state_assisted, Some(false));
        assert_eq!(code.known_domains, 2);
        let mut config = CeremonyConfig::new(Arc::new(cable_ble::Air::new().scanner())).unwrap();
        config.linger = Duration::ZERO;
        let (reg, _) = Ceremony::register(
            config,
            r#"{"rp": {"id": "a.example"}, "user": {"id": "AQ"}, "challenge": "AQ"}"#,
            "https://a.example",
        )
        .unwrap();
        let code = cable_proto::qr::QrCode::parse(&reg.qr_uri()).unwrap();
        assert_eq!(code.hint, RequestHint::MakeCredential);
        assert_eq!(code.state_assisted, Some(false));
    }

    #[test]
    fn a_store_makes_the_qr_ask_for_linking() {
        let mut config = CeremonyConfig::new(Arc::new(cable_ble::Air::new().scanner())).unwrap();
        config.linked_phones = Some(LinkedPhones::in_memory());
        let (c, _) = Ceremony::authenticate(
            config,
            r#"{"rpId": "a.example", "challenge": "AQ"}"#,
            "https://a.example",
        )
        .unwrap();
        let code = cable_proto::qr::QrCode::parse(&c.qr_uri()).unwrap();
        assert_eq!(code.state_assisted, Some(true));
    }
}
