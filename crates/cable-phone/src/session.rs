//! One phone-side hybrid session: QR → tunnel → advert → handshake → one CTAP request → close,
//! or the same from a contact (a linked computer asking through the relay) instead of a QR.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cable_ble::Advertiser;
use cable_proto::ctap::CtapResponse;
use cable_proto::ids::{RoutingId, TunnelId};
use cable_proto::message::{ClientPayload, LinkSecret, UpdateMessage};
use cable_proto::qr::QrCode;
use cable_proto::session::{PhoneEvent, PhoneSession as Machine, ServeRequest};
use cable_transport::{Connector, RelayUrl, TunnelConnection};
use rand_core::OsRng;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use zeroize::Zeroizing;

use crate::authenticator::Authenticator;
use crate::error::{Phase, PhoneError};
use crate::identity::PhoneIdentity;
use crate::progress::{Progress, RequestKind};

/// The relay a phone uses unless told otherwise: Google's, domain id 0, as Chrome on Android.
pub const DEFAULT_RELAY: &str = "wss://cable.ua5v.com";

/// Time limits for each phase of a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Deadlines {
    /// DNS, TCP, TLS and the upgrade for `/cable/new/`.
    pub open_tunnel: Duration,
    /// Putting the advert on the air.
    pub advertise: Duration,
    /// From advertising until the computer's handshake message arrives.
    pub await_computer: Duration,
    /// Sending the handshake answer and the post-handshake message.
    pub handshake: Duration,
    /// From the post-handshake message until the CTAP request arrives.
    pub await_request: Duration,
    /// The authenticator and its user deciding.
    pub authenticate: Duration,
    /// Sending the response.
    pub reply: Duration,
    /// The closing handshake (best effort).
    pub close: Duration,
}

impl Default for Deadlines {
    fn default() -> Self {
        Self {
            open_tunnel: Duration::from_secs(10),
            advertise: Duration::from_secs(5),
            await_computer: Duration::from_secs(120),
            handshake: Duration::from_secs(5),
            await_request: Duration::from_secs(30),
            authenticate: Duration::from_secs(120),
            reply: Duration::from_secs(5),
            close: Duration::from_secs(2),
        }
    }
}

/// How a session ended when it did not fail.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Outcome {
    /// One CTAP request was answered (possibly with an error status, e.g. the user declined).
    Served {
        /// Which command.
        kind: RequestKind,
        /// The relying party it named.
        rp_id: Option<String>,
        /// The CTAP status sent back (0 = success).
        status: u8,
    },
    /// The computer sent shutdown before any request (it chose another authenticator or
    /// gave up).
    ShutdownBeforeRequest,
}

/// What the relay pushed to the phone for a contact: the tunnel it created and the
/// computer's client payload (PROTOCOL.md §1.2, §10).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ContactRequest {
    /// The relay instance that holds the tunnel.
    pub routing_id: RoutingId,
    /// The tunnel to join with `/cable/connect/<routing id>/<tunnel id>`.
    pub tunnel_id: TunnelId,
    /// The link id, client nonce and request hint the computer sent.
    pub client_payload: ClientPayload,
}

impl ContactRequest {
    /// From the push payload's fields; `client_payload` is the CBOR map (not its hex).
    pub fn from_push(
        routing_id: [u8; 3],
        tunnel_id: [u8; 16],
        client_payload: &[u8],
    ) -> Result<Self, PhoneError> {
        Ok(Self {
            routing_id: RoutingId::from_bytes(routing_id),
            tunnel_id: TunnelId::from_bytes(tunnel_id),
            client_payload: ClientPayload::from_cbor(client_payload)
                .map_err(PhoneError::BadContact)?,
        })
    }
}

/// How a session starts.
enum Start {
    /// Holds the QR secret: wiped on drop, never in `Debug`.
    Qr(Zeroizing<String>),
    Contact(ContactRequest),
}

/// A start, checked: the QR code read, or the contact's link found.
enum Prepared {
    Qr(QrCode),
    Contact {
        request: ContactRequest,
        secret: LinkSecret,
        identity: PhoneIdentity,
    },
}

/// A phone session, configured and ready to [`run`](PhoneSession::run).
///
/// ```no_run
/// # async fn demo(air: cable_ble::Air, auth: cable_phone::SoftwareAuthenticator) {
/// use cable_phone::PhoneSession;
/// let mut session = PhoneSession::new("FIDO:/…", air.advertiser(), auth)
///     .relay("ws://127.0.0.1:8080".parse().unwrap());
/// let mut progress = session.progress();
/// tokio::spawn(async move { while let Some(p) = progress.recv().await { println!("{p:?}") } });
/// let outcome = session.run(tokio_util::sync::CancellationToken::new()).await;
/// # }
/// ```
pub struct PhoneSession {
    start: Start,
    identity: Option<PhoneIdentity>,
    link_name: Option<String>,
    relay: RelayUrl,
    domain_id: Option<u16>,
    connector: Option<Connector>,
    advertiser: Arc<dyn Advertiser>,
    authenticator: Box<dyn Authenticator>,
    deadlines: Deadlines,
    max_qr_age: Option<Duration>,
    now: Option<SystemTime>,
    progress: Option<mpsc::UnboundedSender<Progress>>,
}

impl fmt::Debug for PhoneSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PhoneSession")
            .field("relay", &self.relay)
            .field("domain_id", &self.domain_id)
            .field("deadlines", &self.deadlines)
            .field("max_qr_age", &self.max_qr_age)
            .field("identity", &self.identity)
            .finish_non_exhaustive()
    }
}

impl PhoneSession {
    /// A session for the scanned QR text, advertising with `advertiser` and answering with
    /// `authenticator`. Defaults: [`DEFAULT_RELAY`], [`Deadlines::default`], QR codes older than
    /// 10 minutes refused.
    pub fn new(
        qr_text: impl Into<String>,
        advertiser: impl Advertiser + 'static,
        authenticator: impl Authenticator + 'static,
    ) -> Self {
        Self::with_shared(qr_text, Arc::new(advertiser), Box::new(authenticator))
    }

    /// As [`PhoneSession::new`] with an already shared advertiser and a boxed authenticator.
    pub fn with_shared(
        qr_text: impl Into<String>,
        advertiser: Arc<dyn Advertiser>,
        authenticator: Box<dyn Authenticator>,
    ) -> Self {
        Self::starting(
            Start::Qr(Zeroizing::new(qr_text.into())),
            advertiser,
            authenticator,
        )
    }

    /// A session answering a contact from a linked computer (state-assisted): join the
    /// tunnel the relay created, advertise under the link's secret, answer NKpsk0 with
    /// `identity`'s key, then serve one request as in the QR flow. The relay is the one
    /// set with [`relay`](Self::relay), which should be the relay that registered this
    /// phone's contact id. A link id `identity` does not know ends the session with
    /// [`PhoneError::UnknownLink`] before anything is sent or stored.
    pub fn contact(
        request: ContactRequest,
        identity: PhoneIdentity,
        advertiser: Arc<dyn Advertiser>,
        authenticator: Box<dyn Authenticator>,
    ) -> Self {
        let mut session = Self::starting(Start::Contact(request), advertiser, authenticator);
        session.identity = Some(identity);
        session
    }

    fn starting(
        start: Start,
        advertiser: Arc<dyn Advertiser>,
        authenticator: Box<dyn Authenticator>,
    ) -> Self {
        let relay = match RelayUrl::parse(DEFAULT_RELAY) {
            Ok(relay) => relay,
            Err(_) => unreachable!("the default relay URL is valid"),
        };
        Self {
            start,
            identity: None,
            link_name: None,
            relay,
            domain_id: None,
            connector: None,
            advertiser,
            authenticator,
            deadlines: Deadlines::default(),
            max_qr_age: Some(Duration::from_secs(600)),
            now: None,
            progress: None,
        }
    }

    /// The relay to open the tunnel on (private relays, tests).
    ///
    /// The advert tells the computer where the tunnel is only by a 16-bit domain id. Unless
    /// [`domain_id`](Self::domain_id) is set, it is looked up from the host name (assigned and
    /// hashed names; 0 for a loopback relay in tests). A host with no id fails the session
    /// with [`PhoneError::NoDomainId`] before anything is opened: an advert naming another
    /// relay's id would send the computer there.
    pub fn relay(mut self, relay: RelayUrl) -> Self {
        self.relay = relay;
        self
    }

    /// The phone's long-term identity. In a QR session whose code asks for linking (key 4)
    /// and with a contact id set in the identity, the phone makes a link, saves it and sends
    /// it to the computer right after the post-handshake message.
    pub fn identity(mut self, identity: PhoneIdentity) -> Self {
        self.identity = Some(identity);
        self
    }

    /// What to call the computer in the link this session may make (the protocol does not
    /// say; it is only for the user, e.g. `cable phone links`).
    pub fn link_name(mut self, name: impl Into<String>) -> Self {
        self.link_name = Some(name.into());
        self
    }

    /// The domain id to put in the advert.
    pub fn domain_id(mut self, id: u16) -> Self {
        self.domain_id = Some(id);
        self
    }

    /// The connector (trust roots, private CAs). Default: [`Connector::new`].
    pub fn connector(mut self, connector: Connector) -> Self {
        self.connector = Some(connector);
        self
    }

    /// Per-phase time limits.
    pub fn deadlines(mut self, deadlines: Deadlines) -> Self {
        self.deadlines = deadlines;
        self
    }

    /// Refuse QR codes whose timestamp (key 3) is further than this from now, either way;
    /// `None` accepts any. QR codes without a timestamp are always accepted.
    pub fn max_qr_age(mut self, max_age: Option<Duration>) -> Self {
        self.max_qr_age = max_age;
        self
    }

    /// The current time for the staleness check (default: the system clock).
    pub fn now(mut self, now: SystemTime) -> Self {
        self.now = Some(now);
        self
    }

    /// A receiver of progress events. Call before [`run`](Self::run); each call replaces the
    /// previous receiver. Events are never the only copy of an error.
    pub fn progress(&mut self) -> mpsc::UnboundedReceiver<Progress> {
        let (tx, rx) = mpsc::unbounded_channel();
        self.progress = Some(tx);
        rx
    }

    /// Runs the session to its end. Cancelling `cancel` stops advertising, closes the tunnel
    /// and returns [`PhoneError::Cancelled`] naming the phase that was running.
    pub async fn run(mut self, cancel: CancellationToken) -> Result<Outcome, PhoneError> {
        let mut tunnel = None;
        let result = self.drive(&cancel, &mut tunnel).await;
        // After replying, on shutdown, on error and on cancel alike: close, never send shutdown.
        if let Some(mut conn) = tunnel {
            let _ = conn.close(Instant::now() + self.deadlines.close).await;
        }
        result
    }

    fn report(&self, progress: Progress) {
        // Progress carries nothing secret (the advert is public once on the air).
        tracing::debug!(?progress, "phone session");
        if let Some(tx) = &self.progress {
            let _ = tx.send(progress);
        }
    }

    /// Moves the tunnel's bytes through the protocol core's [`Machine`]; every dispatch rule
    /// lives there, this only waits (with deadlines) for the socket, the radio and the
    /// authenticator.
    async fn drive(
        &mut self,
        cancel: &CancellationToken,
        tunnel: &mut Option<TunnelConnection>,
    ) -> Result<Outcome, PhoneError> {
        let prepared = self.prepare()?;
        let domain_id = self.advert_domain_id().await?;
        let d = self.deadlines;

        // Open the tunnel: a new one for a QR code, the relay's for a contact.
        let connector = match self.connector.take() {
            Some(c) => c,
            None => Connector::new().map_err(|e| PhoneError::transport(Phase::OpenTunnel, e))?,
        };
        let (conn, routing_id) = match &prepared {
            Prepared::Qr(qr) => {
                let tunnel_id = qr.secret.tunnel_id();
                guarded(
                    cancel,
                    Phase::OpenTunnel,
                    connector.open_new_tunnel(&self.relay, &tunnel_id, deadline(d.open_tunnel)),
                )
                .await?
                .map_err(|e| PhoneError::transport(Phase::OpenTunnel, e))?
            }
            Prepared::Contact { request, .. } => {
                let conn = guarded(
                    cancel,
                    Phase::OpenTunnel,
                    connector.connect_tunnel(
                        &self.relay,
                        &request.routing_id,
                        &request.tunnel_id,
                        deadline(d.open_tunnel),
                    ),
                )
                .await?
                .map_err(|e| PhoneError::transport(Phase::OpenTunnel, e))?;
                (conn, request.routing_id)
            }
        };
        let conn = tunnel.insert(conn);
        self.report(Progress::TunnelOpen { routing_id });

        // Advertise.
        let mut machine = match &prepared {
            Prepared::Qr(qr) => {
                if domain_id < 256 && u64::from(domain_id) >= qr.known_domains {
                    // QR key 2 says how many assigned domains the computer knows; it may
                    // not find us.
                    tracing::warn!(
                        domain_id,
                        known = qr.known_domains,
                        "the computer may not know this relay's domain id"
                    );
                }
                Machine::new_qr(qr, routing_id, domain_id, &mut OsRng)
            }
            Prepared::Contact {
                request,
                secret,
                identity,
            } => Machine::new_linked(
                &identity.secret_key(),
                secret,
                &request.client_payload.client_nonce,
                routing_id,
                domain_id,
                &mut OsRng,
            ),
        };
        let advert = machine.advert();
        let advertiser = self.advertiser.clone();
        // Registration is not cut short by a cancel: dropped midway, it could leave an advert
        // registered with nobody holding its guard to withdraw it. Bounded by its timeout.
        let guard = timeout(
            d.advertise,
            Phase::Advertise,
            advertiser.start_advertising(advert),
        )
        .await?
        .map_err(PhoneError::Advertise)?;
        if cancel.is_cancelled() {
            withdraw(guard).await;
            return Err(PhoneError::Cancelled {
                phase: Phase::Advertise,
            });
        }
        self.report(Progress::Advertising { advert });

        // Wait for the computer's handshake message; the advert stays up until it arrives.
        // When the session ends here (cancelled, timed out, a bad first message), the advert
        // is withdrawn before returning: a process that exits right after a Ctrl-C or SIGTERM
        // would otherwise leave the withdrawal unsent, relying on BlueZ noticing it left.
        let msg1 = match guarded(
            cancel,
            Phase::AwaitComputer,
            conn.recv(deadline(d.await_computer)),
        )
        .await
        {
            Ok(Ok(frame)) => frame,
            Ok(Err(e)) => {
                withdraw(guard).await;
                return Err(PhoneError::transport(Phase::AwaitComputer, e));
            }
            Err(e) => {
                withdraw(guard).await;
                return Err(e);
            }
        };
        // Wrong QR secret or tampering fails here.
        if let Err(e) = machine.handle_frame(&msg1) {
            withdraw(guard).await;
            return Err(PhoneError::Handshake(e));
        }
        // Withdrawn in the background: the answer must not wait for the radio.
        drop(guard);
        let handshake_deadline = deadline(d.handshake);
        flush(
            &mut machine,
            conn,
            cancel,
            Phase::Handshake,
            handshake_deadline,
        )
        .await?;

        // The post-handshake message (getInfo and features), then in a QR session the
        // update message, before anything else: libwebauthn stops listening once it has the
        // CTAP reply.
        let get_info = guarded(
            cancel,
            Phase::PostHandshake,
            tokio::time::timeout_at(handshake_deadline, self.authenticator.get_info()),
        )
        .await?
        .map_err(|_| PhoneError::Timeout {
            phase: Phase::PostHandshake,
        })?;
        let update = match &prepared {
            Prepared::Qr(qr) => Some(self.qr_update(qr, &machine)),
            // PROTOCOL.md §8.4: a computer cannot verify linking data here.
            Prepared::Contact { .. } => None,
        };
        machine
            .post_handshake(&get_info, update.as_ref())
            .map_err(PhoneError::BadGetInfo)?;
        let update_has_link = update.as_ref().is_some_and(|u| u.linking.is_some());
        drop(update);
        flush(
            &mut machine,
            conn,
            cancel,
            Phase::PostHandshake,
            handshake_deadline,
        )
        .await?;
        self.report(Progress::ComputerConnected);
        if update_has_link {
            self.report(Progress::LinkOffered);
        }

        // Serve exactly one request.
        let request_deadline = deadline(d.await_request);
        let (request, rp_id) = loop {
            let frame = guarded(cancel, Phase::AwaitRequest, conn.recv(request_deadline))
                .await?
                .map_err(|e| PhoneError::transport(Phase::AwaitRequest, e))?;
            let handled = machine.handle_frame(&frame);
            // getInfo answers and error replies (INVALID_CBOR, INVALID_COMMAND) go out even
            // when the session ends with this frame.
            let flushed = flush(&mut machine, conn, cancel, Phase::Reply, deadline(d.reply)).await;
            handled.map_err(|e| protocol_error(Phase::AwaitRequest, e))?;
            flushed?;
            match self.next_step(&mut machine) {
                Step::Continue => {}
                Step::Serve(request, rp_id) => break (request, rp_id),
                Step::Finished(outcome) => return Ok(outcome),
                Step::ComputerLeft => {
                    return Err(PhoneError::ComputerLeft {
                        phase: Phase::AwaitRequest,
                    })
                }
            }
        };

        // Let the authenticator (and its user) decide, noticing a computer that leaves.
        let authenticator = &mut self.authenticator;
        let work = async {
            match request.kind {
                RequestKind::MakeCredential => authenticator.make_credential(request.params).await,
                _ => authenticator.get_assertion(request.params).await,
            }
        };
        let answered = guarded(
            cancel,
            Phase::Authenticate,
            timeout(
                d.authenticate,
                Phase::Authenticate,
                while_computer_present(&mut machine, conn, work),
            ),
        )
        .await???;
        let response = match answered {
            Ok(body) => CtapResponse::ok(body),
            Err(status) => CtapResponse::error(status.0),
        };
        machine
            .respond(&response)
            .map_err(|e| protocol_error(Phase::Reply, e))?;
        flush(&mut machine, conn, cancel, Phase::Reply, deadline(d.reply)).await?;
        let _ = machine.poll_event();
        self.report(Progress::Replied {
            status: response.status,
        });
        Ok(Outcome::Served {
            kind: request.kind,
            rp_id,
            status: response.status,
        })
    }

    /// Reads the machine's events after a frame: progress to report, and whether the session
    /// goes on, needs the authenticator, or is over.
    fn next_step(&self, machine: &mut Machine) -> Step {
        let mut received = None;
        while let Some(event) = machine.poll_event() {
            match event {
                PhoneEvent::RequestReceived { kind, rp_id } => {
                    self.report(Progress::RequestReceived {
                        kind,
                        rp_id: rp_id.clone(),
                    });
                    received = Some((kind, rp_id));
                }
                PhoneEvent::Serve(request) => {
                    let rp_id = received.take().and_then(|(_, rp_id)| rp_id);
                    return Step::Serve(request, rp_id);
                }
                PhoneEvent::Replied { status } => {
                    self.report(Progress::Replied { status });
                    let (kind, rp_id) = received.take().unwrap_or((RequestKind::Selection, None));
                    return Step::Finished(Outcome::Served {
                        kind,
                        rp_id,
                        status,
                    });
                }
                PhoneEvent::Shutdown {
                    before_request: true,
                } => return Step::Finished(Outcome::ShutdownBeforeRequest),
                PhoneEvent::Shutdown {
                    before_request: false,
                } => return Step::ComputerLeft,
                _ => {}
            }
        }
        Step::Continue
    }

    /// Checks the start before any socket opens: the QR code, or the contact's link.
    fn prepare(&self) -> Result<Prepared, PhoneError> {
        match &self.start {
            Start::Qr(text) => self.parse_qr(text).map(Prepared::Qr),
            Start::Contact(request) => {
                let identity = self.identity.clone().ok_or(PhoneError::UnknownLink)?;
                // Another process may have linked or unlinked since this identity was opened.
                identity.reload().map_err(PhoneError::Identity)?;
                let secret = identity
                    .link_secret(&request.client_payload.link_id)
                    .ok_or(PhoneError::UnknownLink)?;
                Ok(Prepared::Contact {
                    request: request.clone(),
                    secret,
                    identity,
                })
            }
        }
    }

    /// The update message a QR session sends after the post-handshake message. Always one,
    /// padded to a 528-byte ciphertext as Chrome-for-Android does (PROTOCOL.md §8.3), so that
    /// whoever watches the tunnel cannot tell whether the phone linked; it carries linking
    /// data only when the QR code asks for it (key 4) and the identity has a contact id.
    fn qr_update(&self, qr: &QrCode, machine: &Machine) -> UpdateMessage {
        let (Some(identity), Some(true), Some(hash)) =
            (&self.identity, qr.state_assisted, machine.handshake_hash())
        else {
            return UpdateMessage::default();
        };
        let created = self
            .now
            .unwrap_or_else(SystemTime::now)
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        match identity.new_link(
            &qr.public_key,
            hash,
            self.link_name.clone(),
            created,
            &mut OsRng,
        ) {
            Ok(Some(update)) => update,
            Ok(None) => UpdateMessage::default(),
            Err(e) => {
                // A ceremony without a link beats no ceremony: the link was not saved, so
                // it must not be offered either.
                let mut error = e.to_string();
                let mut cause = std::error::Error::source(&e);
                while let Some(c) = cause {
                    error.push_str(": ");
                    error.push_str(&c.to_string());
                    cause = c.source();
                }
                tracing::warn!(%error, "could not save a new link; not offering one");
                UpdateMessage::default()
            }
        }
    }

    fn parse_qr(&self, text: &str) -> Result<QrCode, PhoneError> {
        let qr = QrCode::parse(text.trim()).map_err(PhoneError::InvalidQr)?;
        if qr.hint.is_digital_credential() {
            // Before any tunnel or advert: the computer would send JSON this phone cannot
            // answer, after the person had scanned for nothing.
            return Err(PhoneError::DigitalCredentialRequest {
                hint: qr.hint.as_str(),
            });
        }
        if let (Some(max_age), Some(timestamp)) = (self.max_qr_age, qr.timestamp) {
            let now = self
                .now
                .unwrap_or_else(SystemTime::now)
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0);
            let age = i128::from(now) - i128::from(timestamp);
            if age.unsigned_abs() > u128::from(max_age.as_secs()) {
                return Err(PhoneError::StaleQr {
                    age_secs: i64::try_from(age).unwrap_or(if age < 0 {
                        i64::MIN
                    } else {
                        i64::MAX
                    }),
                    max_age_secs: max_age.as_secs(),
                });
            }
        }
        Ok(qr)
    }

    async fn advert_domain_id(&self) -> Result<u16, PhoneError> {
        match self.domain_id {
            Some(id) => Ok(id),
            None if self.relay.is_loopback() => Ok(0),
            None => crate::domain_cache::find_domain_id(self.relay.host())
                .await
                .ok_or_else(|| PhoneError::NoDomainId {
                    host: self.relay.host().to_owned(),
                }),
        }
    }
}

/// What the session does after the machine handled a frame.
enum Step {
    Continue,
    Serve(ServeRequest, Option<String>),
    Finished(Outcome),
    ComputerLeft,
}

fn protocol_error(phase: Phase, source: cable_proto::Error) -> PhoneError {
    match source {
        cable_proto::Error::UnsupportedMessage { message_type } => PhoneError::UnsupportedMessage {
            phase,
            message_type,
        },
        cable_proto::Error::UnsupportedCommand { command } => {
            PhoneError::UnsupportedCommand { command }
        }
        cable_proto::Error::TooManyGetInfo { .. } => PhoneError::TooManyRequests,
        // A frame that does not decrypt is the encrypted channel failing, as it always was.
        source @ (cable_proto::Error::DecryptFailed
        | cable_proto::Error::CiphertextTooShort { .. }
        | cable_proto::Error::EmptyPlaintext
        | cable_proto::Error::BadPadding { .. }
        | cable_proto::Error::CounterExhausted) => PhoneError::Transport {
            phase,
            source: cable_transport::TransportError::Decrypt(source),
        },
        source => PhoneError::Protocol { phase, source },
    }
}

/// Sends everything the machine has queued.
async fn flush(
    machine: &mut Machine,
    conn: &mut TunnelConnection,
    cancel: &CancellationToken,
    phase: Phase,
    deadline: Instant,
) -> Result<(), PhoneError> {
    while let Some(frame) = machine.poll_transmit() {
        guarded(cancel, phase, conn.send(frame, deadline))
            .await?
            .map_err(|e| PhoneError::transport(phase, e))?;
    }
    Ok(())
}

fn deadline(d: Duration) -> Instant {
    Instant::now() + d
}

/// Runs `work` unless `cancel` fires first.
async fn guarded<T>(
    cancel: &CancellationToken,
    phase: Phase,
    work: impl Future<Output = T>,
) -> Result<T, PhoneError> {
    tokio::select! {
        biased;
        _ = cancel.cancelled() => Err(PhoneError::Cancelled { phase }),
        out = work => Ok(out),
    }
}

async fn timeout<T>(
    limit: Duration,
    phase: Phase,
    work: impl Future<Output = T>,
) -> Result<T, PhoneError> {
    tokio::time::timeout(limit, work)
        .await
        .map_err(|_| PhoneError::Timeout { phase })
}

/// Runs the authenticator while feeding the tunnel to the machine: a shutdown or a closed
/// tunnel means nobody is waiting for the answer any more.
async fn while_computer_present<T>(
    machine: &mut Machine,
    conn: &mut TunnelConnection,
    work: impl Future<Output = T>,
) -> Result<T, PhoneError> {
    const PHASE: Phase = Phase::Authenticate;
    tokio::pin!(work);
    // The overall deadline is applied by the caller; this one only bounds each wait.
    let far = Instant::now() + Duration::from_secs(24 * 3600);
    loop {
        tokio::select! {
            out = &mut work => return Ok(out),
            incoming = conn.recv(far) => {
                let frame = match incoming {
                    Ok(frame) => frame,
                    Err(e) if e.is_closed() => return Err(PhoneError::ComputerLeft { phase: PHASE }),
                    Err(e) => return Err(PhoneError::transport(PHASE, e)),
                };
                machine.handle_frame(&frame).map_err(|e| protocol_error(PHASE, e))?;
                while let Some(event) = machine.poll_event() {
                    if let PhoneEvent::Shutdown { .. } = event {
                        return Err(PhoneError::ComputerLeft { phase: PHASE });
                    }
                }
            }
        }
    }
}

/// How long a failing session waits for its advert to be withdrawn.
const ADVERT_WITHDRAW_WAIT: Duration = Duration::from_secs(2);

/// Withdraws an advert and waits (bounded) until the advertiser says it is gone.
async fn withdraw(guard: cable_ble::AdvertGuard) {
    match tokio::time::timeout(ADVERT_WITHDRAW_WAIT, guard.stop()).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::debug!(error = %e, "withdrawing the advert failed"),
        Err(_) => tracing::debug!("withdrawing the advert timed out"),
    }
}
