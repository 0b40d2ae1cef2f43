//! One phone-side hybrid session: QR → tunnel → advert → handshake → one CTAP request → close.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cable_ble::Advertiser;
use cable_proto::advert::{encrypt_eid, Eid};
use cable_proto::cbor::{self, Value};
use cable_proto::ctap::{command, status, CtapRequest, CtapResponse};
use cable_proto::handshake::Responder;
use cable_proto::message::{Message, PostHandshake};
use cable_proto::qr::QrCode;
use cable_transport::{Connector, EncryptedChannel, RelayUrl, TunnelConnection};
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

/// How many getInfo requests a session answers before giving up on the computer.
const MAX_GET_INFO: usize = 4;

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
        let mut tunnel = Tunnel::None;
        let result = self.drive(&cancel, &mut tunnel).await;
        // After replying, on shutdown, on error and on cancel alike: close, never send shutdown.
        let close_deadline = Instant::now() + self.deadlines.close;
        match tunnel {
            Tunnel::None => {}
            Tunnel::Plain(mut conn) => {
                let _ = conn.close(close_deadline).await;
            }
            Tunnel::Encrypted(mut channel) => {
                let _ = channel.close(close_deadline).await;
            }
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

    async fn drive(
        &mut self,
        cancel: &CancellationToken,
        tunnel: &mut Tunnel,
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
        *tunnel = Tunnel::Plain(conn);
        
        self.report(Progress::TunnelOpen { routing_id });

        // Advertise.
        let domain_id = self.advert_domain_id();
        if domain_id < 256 && u64::from(domain_id) >= qr.known_domains {
            // QR key 2 says how many assigned domains the computer knows; it may not find us.
            tracing::warn!(
                domain_id,
                known = qr.known_domains,
                "the computer may not know this relay's domain id"
            );
        }
        let eid = Eid::new(&mut OsRng, routing_id, domain_id).to_bytes();
        let advert = encrypt_eid(&qr.secret.eid_key(), &eid);
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
        let conn = tunnel.plain()?;
        let msg1 = guarded(
            cancel,
            Phase::AwaitComputer,
            conn.recv(deadline(d.await_computer)),
        )
        .await?
        .map_err(|e| PhoneError::transport(Phase::AwaitComputer, e))?;

        // Answer it (wrong QR secret or tampering fails here), then stop advertising.
        let psk = qr.secret.psk(&eid);
        let (msg2, output) = Responder::respond_qr(&qr.public_key, &psk, &msg1, &mut OsRng)
            .map_err(PhoneError::Handshake)?;
        // Withdrawn in the background: the answer must not wait for the radio.
        drop(guard);
        let handshake_deadline = deadline(d.handshake);
        guarded(
            cancel,
            Phase::Handshake,
            conn.send(msg2.to_vec(), handshake_deadline),
        )
        .await?
        .map_err(|e| PhoneError::transport(Phase::Handshake, e))?;
        let conn = tunnel.take_plain()?;
        let mut channel = EncryptedChannel::new(conn, output.crypter);

        // The post-handshake message: getInfo and features, no linking data.
        let authenticator = &self.authenticator;
        let get_info = guarded(
            cancel,
            Phase::PostHandshake,
            tokio::time::timeout_at(handshake_deadline, authenticator.get_info()),
        )
        .await?
        .map_err(|_| PhoneError::Timeout {
            phase: Phase::PostHandshake,
        })?
        .to_bytes();
        let post = PostHandshake::new(get_info.clone()).encode();
        let sent = guarded(
            cancel,
            Phase::PostHandshake,
            channel.send(&post, handshake_deadline),
        )
        .await;
        *tunnel = Tunnel::Encrypted(channel);
        sent?.map_err(|e| PhoneError::transport(Phase::PostHandshake, e))?;
        self.report(Progress::ComputerConnected);

        // Serve exactly one request.
        let request_deadline = deadline(d.await_request);
        let mut get_info_count = 0;
        let channel = tunnel.encrypted()?;
        let (kind, request) = loop {
            let plaintext = guarded(cancel, Phase::AwaitRequest, channel.recv(request_deadline))
                .await?
                .map_err(|e| PhoneError::transport(Phase::AwaitRequest, e))?;
            let message = Message::decode(&plaintext).map_err(|source| PhoneError::Protocol {
                phase: Phase::AwaitRequest,
                source,
            })?;
            let bytes = match message {
                Message::Shutdown => return Ok(Outcome::ShutdownBeforeRequest),
                // A computer may send updates; only their syntax matters, and decode checked it.
                Message::Update(_) => continue,
                Message::Json(_) => {
                    return Err(PhoneError::UnsupportedMessage {
                        phase: Phase::AwaitRequest,
                        message_type: 3,
                    })
                }
                Message::Ctap(bytes) => bytes,
            };
            let request = CtapRequest::decode(&bytes).map_err(|source| PhoneError::Protocol {
                phase: Phase::AwaitRequest,
                source,
            });
            let request = match request {
                Ok(r) => r,
                Err(e) => {
                    let reply = CtapResponse::error(status::INVALID_CBOR);
                    send_reply(channel, &reply, deadline(d.reply)).await;
                    return Err(e);
                }
            };
            match request.command {
                command::GET_INFO => {
                    get_info_count += 1;
                    if get_info_count > MAX_GET_INFO {
                        return Err(PhoneError::TooManyRequests);
                    }
                    let body = match cbor::decode(&get_info) {
                        Ok(v) => v,
                        Err(_) => unreachable!("getInfo was encoded by this crate"),
                    };
                    send_reply(channel, &CtapResponse::ok(body), deadline(d.reply)).await;
                }
                command::MAKE_CREDENTIAL => break (RequestKind::MakeCredential, request),
                command::GET_ASSERTION => break (RequestKind::GetAssertion, request),
                command::SELECTION => break (RequestKind::Selection, request),
                other => {
                    let reply = CtapResponse::error(status::INVALID_COMMAND);
                    send_reply(channel, &reply, deadline(d.reply)).await;
                    return Err(PhoneError::UnsupportedCommand { command: other });
                }
            }
        };
        let rp_id = request.params.as_ref().and_then(|p| rp_id_of(kind, p));
        self.report(Progress::RequestReceived {
            kind,
            rp_id: rp_id.clone(),
        });

        // Let the authenticator (and its user) decide, noticing a computer that leaves.
        let response = match (kind, request.params) {
            (RequestKind::Selection, _) => CtapResponse {
                status: status::OK,
                body: None,
            },
            (_, None) => CtapResponse::error(status::MISSING_PARAMETER),
            (_, Some(params)) => {
                let authenticator = &mut self.authenticator;
                let work = async {
                    match kind {
                        RequestKind::MakeCredential => authenticator.make_credential(params).await,
                        _ => authenticator.get_assertion(params).await,
                    }
                };
                let answered = guarded(
                    cancel,
                    Phase::Authenticate,
                    timeout(
                        d.authenticate,
                        Phase::Authenticate,
                        while_computer_present(channel, work),
                    ),
                )
                .await???;
                match answered {
                    Ok(body) => CtapResponse::ok(body),
                    Err(status) => CtapResponse::error(status.0),
                }
            }
        };

        let status = response.status;
        let frame = Message::Ctap(response.encode()).encode();
        guarded(
            cancel,
            Phase::Reply,
            channel.send(&frame, deadline(d.reply)),
        )
        .await?
        .map_err(|e| PhoneError::transport(Phase::Reply, e))?;
        self.report(Progress::Replied { status });
        Ok(Outcome::Served {
            kind,
            rp_id,
            status,
        })
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

    fn advert_domain_id(&self) -> u16 {
        self.domain_id.unwrap_or_else(|| {
            if self.relay.is_loopback() {
                0
            } else {
                cable_proto::domain::find_domain_id(self.relay.host()).unwrap_or(0)
            }
        })
    }
}

/// The tunnel as it moves from plain to encrypted; owned outside the phases so that every
/// exit path can close it.
// One per session and never moved in a loop: boxing would buy nothing.
#[allow(clippy::large_enum_variant)]
enum Tunnel {
    None,
    Plain(TunnelConnection),
    Encrypted(EncryptedChannel),
}

impl Tunnel {
    fn plain(&mut self) -> Result<&mut TunnelConnection, PhoneError> {
        match self {
            Tunnel::Plain(conn) => Ok(conn),
            _ => Err(lost(Phase::Handshake)),
        }
    }

    fn take_plain(&mut self) -> Result<TunnelConnection, PhoneError> {
        match std::mem::replace(self, Tunnel::None) {
            Tunnel::Plain(conn) => Ok(conn),
            other => {
                *self = other;
                Err(lost(Phase::Handshake))
            }
        }
    }

    fn encrypted(&mut self) -> Result<&mut EncryptedChannel, PhoneError> {
        match self {
            Tunnel::Encrypted(channel) => Ok(channel),
            _ => Err(lost(Phase::AwaitRequest)),
        }
    }
}

fn lost(phase: Phase) -> PhoneError {
    PhoneError::Transport {
        phase,
        source: cable_transport::TransportError::Closed,
    }
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

/// Runs the authenticator while watching the tunnel: a shutdown or a closed tunnel means
/// nobody is waiting for the answer any more.
async fn while_computer_present<T>(
    channel: &mut EncryptedChannel,
    work: impl Future<Output = T>,
) -> Result<T, PhoneError> {
    tokio::pin!(work);
    // The overall deadline is applied by the caller; this one only bounds each wait.
    let far = Instant::now() + Duration::from_secs(24 * 3600);
    loop {
        tokio::select! {
            out = &mut work => return Ok(out),
            incoming = channel.recv(far) => match incoming.map(|p| Message::decode(&p)) {
                Ok(Ok(Message::Update(_))) => continue,
                Ok(Ok(Message::Shutdown)) => {
                    return Err(PhoneError::ComputerLeft { phase: Phase::Authenticate })
                }
                Err(e) if e.is_closed() => {
                    return Err(PhoneError::ComputerLeft { phase: Phase::Authenticate })
                }
                Err(e) => return Err(PhoneError::transport(Phase::Authenticate, e)),
                Ok(Ok(_)) => {
                    return Err(PhoneError::UnsupportedMessage {
                        phase: Phase::Authenticate,
                        message_type: 1,
                    })
                }
                Ok(Err(source)) => {
                    return Err(PhoneError::Protocol { phase: Phase::Authenticate, source })
                }
            },
        }
    }
}

async fn send_reply(channel: &mut EncryptedChannel, response: &CtapResponse, deadline: Instant) {
    let frame = Message::Ctap(response.encode()).encode();
    // The error that ends the session is the caller's; a failed send adds nothing to it.
    let _ = channel.send(&frame, deadline).await;
}

fn rp_id_of(kind: RequestKind, params: &Value) -> Option<String> {
    let map = params.as_map()?;
    let rp_id = match kind {
        RequestKind::MakeCredential => cbor::map_get(map, 2)?
            .as_map()?
            .get(&Value::Text("id".to_owned()))?
            .as_text()?,
        RequestKind::GetAssertion => cbor::map_get(map, 1)?.as_text()?,
        RequestKind::Selection => return None,
    };
    Some(rp_id.to_owned())
}
