//! One phone-side hybrid session: QR → tunnel → advert → handshake → one CTAP request → close.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cable_ble::Advertiser;
use cable_proto::ctap::CtapResponse;
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
use crate::progress::{Progress, RequestKind};

/// The relay a phone uses unless told otherwise: Google's, domain id 0, as Chrome on Android.
pub const DEFAULT_RELAY: &str = "wss://cable.ua5v.com";

/// Time limits for each phase of a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
    /// Holds the QR secret: wiped on drop, never in `Debug`.
    qr_text: Zeroizing<String>,
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
        let relay = match RelayUrl::parse(DEFAULT_RELAY) {
            Ok(relay) => relay,
            Err(_) => unreachable!("the default relay URL is valid"),
        };
        Self {
            qr_text: Zeroizing::new(qr_text.into()),
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
    /// hashed names), falling back to 0; a computer reaching a private relay under another
    /// name needs its own relay override.
    pub fn relay(mut self, relay: RelayUrl) -> Self {
        self.relay = relay;
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
        let qr = self.parse_qr()?;
        let d = self.deadlines;

        // Open the tunnel.
        let connector = match self.connector.take() {
            Some(c) => c,
            None => Connector::new().map_err(|e| PhoneError::transport(Phase::OpenTunnel, e))?,
        };
        let tunnel_id = qr.secret.tunnel_id();
        let opened = guarded(
            cancel,
            Phase::OpenTunnel,
            connector.open_new_tunnel(&self.relay, &tunnel_id, deadline(d.open_tunnel)),
        )
        .await?;
        let (conn, routing_id) = opened.map_err(|e| PhoneError::transport(Phase::OpenTunnel, e))?;
        let conn = tunnel.insert(conn);
        self.report(Progress::TunnelOpen { routing_id });

        // Advertise.
        let domain_id = self.advert_domain_id().await;
        if domain_id < 256 && u64::from(domain_id) >= qr.known_domains {
            // QR key 2 says how many assigned domains the computer knows; it may not find us.
            tracing::warn!(
                domain_id,
                known = qr.known_domains,
                "the computer may not know this relay's domain id"
            );
        }
        let mut machine = Machine::new_qr(&qr, routing_id, domain_id, &mut OsRng);
        let advert = machine.advert();
        let advertiser = self.advertiser.clone();
        let guard = guarded(
            cancel,
            Phase::Advertise,
            timeout(
                d.advertise,
                Phase::Advertise,
                advertiser.start_advertising(advert),
            ),
        )
        .await??
        .map_err(PhoneError::Advertise)?;
        self.report(Progress::Advertising { advert });

        // Wait for the computer's handshake message; the advert stays up until it arrives.
        let msg1 = guarded(
            cancel,
            Phase::AwaitComputer,
            conn.recv(deadline(d.await_computer)),
        )
        .await?
        .map_err(|e| PhoneError::transport(Phase::AwaitComputer, e))?;
        // Wrong QR secret or tampering fails here.
        machine.handle_frame(&msg1).map_err(PhoneError::Handshake)?;
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

        // The post-handshake message: getInfo and features, no linking data.
        let get_info = guarded(
            cancel,
            Phase::PostHandshake,
            tokio::time::timeout_at(handshake_deadline, self.authenticator.get_info()),
        )
        .await?
        .map_err(|_| PhoneError::Timeout {
            phase: Phase::PostHandshake,
        })?;
        machine
            .post_handshake(&get_info, None)
            .map_err(PhoneError::BadGetInfo)?;
        flush(
            &mut machine,
            conn,
            cancel,
            Phase::PostHandshake,
            handshake_deadline,
        )
        .await?;
        self.report(Progress::ComputerConnected);

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

    fn parse_qr(&self) -> Result<QrCode, PhoneError> {
        let qr = QrCode::parse(self.qr_text.trim()).map_err(PhoneError::InvalidQr)?;
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

    async fn advert_domain_id(&self) -> u16 {
        match self.domain_id {
            Some(id) => id,
            None if self.relay.is_loopback() => 0,
            None => crate::domain_cache::find_domain_id(self.relay.host())
                .await
                .unwrap_or(0),
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
