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
use cable_proto::domain::host_for_domain_id;
use cable_proto::handshake::{Initiator, MESSAGE_LEN};
use cable_proto::message::{Message, PostHandshake, ProtocolRevision, UpdateMessage};
use cable_proto::qr::{QrKey, RequestHint};
use cable_proto::rand_core::OsRng;
use cable_transport::{Connector, EncryptedChannel, Instant, RelayUrl, TunnelConnection};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::authentication::PreparedAuthentication;
use crate::ctap::{AuthenticatorInfo, CMD_GET_INFO};
use crate::error::{ClientError, Phase};
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

/// How a ceremony reaches the phone.
#[derive(Debug, Clone)]
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
}

impl CeremonyConfig {
    /// Defaults: public relays over TLS, default deadlines, a 5 s linger.
    pub fn new(scanner: Arc<dyn Scanner>) -> Result<Self, ClientError> {
        let connector = Connector::new().map_err(|source| ClientError::Transport {
            phase: Phase::Connect,
            source,
        })?;
        Ok(CeremonyConfig {
            scanner,
            connector: Arc::new(connector),
            relay_override: None,
            deadlines: Deadlines::default(),
            linger: Duration::from_secs(5),
        })
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
    AdvertFound { domain_id: u16, relay: String },
    /// The tunnel WebSocket is open.
    TunnelConnected,
    /// Handshake done; the phone speaks this post-handshake revision.
    HandshakeComplete { revision: ProtocolRevision },
    /// The CTAP request is on its way; the person decides on the phone now.
    RequestSent,
    /// The phone answered.
    ReplyReceived,
    /// The phone offered linking data; `verified` says whether its signature checked out.
    LinkingOffered {
        authenticator_name: String,
        verified: bool,
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

/// One hybrid ceremony: a fresh QR key, one request, one phone.
#[derive(Debug)]
pub struct Ceremony<R> {
    config: CeremonyConfig,
    qr: QrKey,
    request: R,
    progress: mpsc::UnboundedSender<Progress>,
    /// The relying party's overall timeout, fixed when `run` starts.
    overall: Option<Instant>,
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
    /// A ceremony for an already prepared request.
    pub fn new(config: CeremonyConfig, request: R) -> (Self, ProgressReceiver) {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        // Key 4 = false: this client does not store linked phones, so it does not ask for
        // linking data (the key is still present; see PROTOCOL.md §2.3).
        let qr = QrKey::generate(&mut OsRng, now, request.hint()).with_state_assisted(false);
        let (tx, rx) = mpsc::unbounded_channel();
        (
            Ceremony {
                config,
                qr,
                request,
                progress: tx,
                overall: None,
            },
            rx,
        )
    }

    /// The `FIDO:/…` text to show as a QR code.
    pub fn qr_uri(&self) -> String {
        self.qr.to_uri()
    }

    /// The prepared request (its client data, RP id, options).
    pub fn request(&self) -> &R {
        &self.request
    }

    fn report(&self, p: Progress) {
        // A caller that dropped its receiver does not want progress; that is not an error.
        let _ = self.progress.send(p);
    }

    /// Runs the ceremony until the phone answers, a deadline passes, or `cancel` fires.
    ///
    /// The relying party's `timeout`, when the options carry one, caps every phase's deadline.
    pub async fn run(mut self, cancel: CancellationToken) -> Result<R::Response, ClientError> {
        self.overall = self.request.timeout().map(|t| Instant::now() + t);
        let advert = self.scan(&cancel).await?;
        let eid = advert.eid();
        let relay = self.relay_for(eid.domain_id)?;
        self.report(Progress::AdvertFound {
            domain_id: eid.domain_id,
            relay: relay.to_string(),
        });

        let conn = self
            .connect(&relay, &eid.routing_id, &cancel)
            .await?;
        self.report(Progress::TunnelConnected);

        let mut session = self.handshake(conn, &advert, &cancel).await?;
        self.report(Progress::HandshakeComplete {
            revision: session.revision,
        });

        let request = match self.request.ctap_request(&session.info) {
            Ok(r) => r,
            Err(e) => {
                session
                    .shutdown(Instant::now() + Duration::from_secs(1))
                    .await;
                return Err(e);
            }
        };
        let reply = self.exchange(&mut session, request, &cancel).await?;
        self.report(Progress::ReplyReceived);
        let result = self.request.finish(&session.info, &reply);

        session
            .finish(self.config.linger, self.progress.clone(), self.qr.clone())
            .await;
        self.report(Progress::Finished);
        result
    }

    /// The deadline of a phase starting now.
    fn deadline(&self, phase: Duration) -> Instant {
        let own = Instant::now() + phase;
        self.overall.map_or(own, |overall| own.min(overall))
    }

    async fn scan(&self, cancel: &CancellationToken) -> Result<DecryptedAdvert, ClientError> {
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
        let eid_key = self.qr.secret().eid_key();
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
                        if let Ok(hit) = decrypt_advert(&eid_key, advert.service_data()) {
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
        relay: &RelayUrl,
        routing_id: &cable_proto::ids::RoutingId,
        cancel: &CancellationToken,
    ) -> Result<TunnelConnection, ClientError> {
        let deadline = self.deadline(self.config.deadlines.connect);
        let tunnel_id = self.qr.secret().tunnel_id();
        let connecting =
            self.config
                .connector
                .connect_tunnel(relay, routing_id, &tunnel_id, deadline);
        tokio::select! {
            biased;
            _ = cancel.cancelled() => Err(ClientError::Cancelled { phase: Phase::Connect }),
            r = connecting => r.map_err(|source| transport_error(Phase::Connect, source)),
        }
    }

    async fn handshake(
        &self,
        mut conn: TunnelConnection,
        advert: &DecryptedAdvert,
        cancel: &CancellationToken,
    ) -> Result<Session, ClientError> {
        const PHASE: Phase = Phase::Handshake;
        let deadline = self.deadline(self.config.deadlines.handshake);
        let psk = self.qr.secret().psk(&advert.plaintext);
        let (initiator, msg1) =
            Initiator::new_qr(&self.qr, &psk, &mut OsRng).map_err(|source| {
                ClientError::Protocol {
                    phase: PHASE,
                    source,
                }
            })?;
        let steps = async {
            conn.send(msg1.to_vec(), deadline)
                .await
                .map_err(|source| transport_error(PHASE, source))?;
            let msg2 = conn
                .recv(deadline)
                .await
                .map_err(|source| transport_error(PHASE, source))?;
            if msg2.len() != MESSAGE_LEN {
                return Err(ClientError::UnexpectedMessage {
                    phase: PHASE,
                    what: "handshake reply of the wrong length",
                });
            }
            let output = initiator
                .finish(&msg2)
                .map_err(|source| ClientError::Protocol {
                    phase: PHASE,
                    source,
                })?;
            Ok(output)
        };
        let output = tokio::select! {
            biased;
            _ = cancel.cancelled() => Err(ClientError::Cancelled { phase: PHASE }),
            r = steps => r,
        };
        let output = match output {
            Ok(o) => o,
            Err(e) => {
                let _ = conn
                    .close(Instant::now() + Duration::from_millis(200))
                    .await;
                return Err(e);
            }
        };
        // The first message is read by hand so that phones from before Chromium's current
        // transport construction (little-endian nonce, associated data 02) still work; the
        // crypter then keeps whichever construction the phone used.
        let mut crypter = output.crypter;
        let first = tokio::select! {
            biased;
            _ = cancel.cancelled() => Err(ClientError::Cancelled { phase: PHASE }),
            r = conn.recv(deadline) => r.map_err(|source| transport_error(PHASE, source)),
        }
        .and_then(|ciphertext| {
            crypter
                .decrypt_first_accepting_legacy(&ciphertext)
                .map(|(plaintext, _legacy)| plaintext)
                .map_err(|source| ClientError::Protocol {
                    phase: PHASE,
                    source,
                })
        });
        let mut channel = EncryptedChannel::new(conn, crypter);
        let parsed = first.and_then(|plaintext| {
            let (post, revision) =
                PostHandshake::decode(&plaintext).map_err(|source| ClientError::Protocol {
                    phase: PHASE,
                    source,
                })?;
            let info = match (&post.get_info, post.supports_ctap()) {
                (Some(info), true) => AuthenticatorInfo::parse(info)?,
                _ => return Err(ClientError::NoCtapSupport),
            };
            Ok((post, revision, info))
        });
        let (post, revision, info) = match parsed {
            Ok(p) => p,
            Err(e) => {
                let _ = channel
                    .close(Instant::now() + Duration::from_millis(200))
                    .await;
                return Err(e);
            }
        };
        let session = Session {
            channel,
            revision,
            info,
            handshake_hash: output.handshake_hash,
        };
        if let Some(linking) = post.linking {
            session.report_linking(&linking, &self.qr, &self.progress);
        }
        Ok(session)
    }

    async fn exchange(
        &self,
        session: &mut Session,
        request: Vec<u8>,
        cancel: &CancellationToken,
    ) -> Result<Vec<u8>, ClientError> {
        const PHASE: Phase = Phase::Reply;
        let deadline = self.deadline(self.config.deadlines.reply);
        let result = tokio::select! {
            biased;
            _ = cancel.cancelled() => Err(ClientError::Cancelled { phase: PHASE }),
            r = session.transact(request, deadline, &self.qr, &self.progress) => r,
        };
        if result.is_err() {
            // Hybrid has no CTAP cancel: shutdown and closing the socket end the phone's UI.
            session
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

/// An established, encrypted tunnel to the phone.
struct Session {
    channel: EncryptedChannel,
    revision: ProtocolRevision,
    info: AuthenticatorInfo,
    handshake_hash: [u8; 32],
}

impl Session {
    fn report_linking(
        &self,
        linking: &cable_proto::message::LinkingInfo,
        qr: &QrKey,
        progress: &mpsc::UnboundedSender<Progress>,
    ) {
        let verified = linking.verify(qr, &self.handshake_hash).is_ok();
        let _ = progress.send(Progress::LinkingOffered {
            authenticator_name: linking.name.clone(),
            verified,
        });
    }

    fn handle_update(
        &self,
        update: UpdateMessage,
        qr: &QrKey,
        progress: &mpsc::UnboundedSender<Progress>,
    ) {
        if let Some(linking) = update.linking {
            self.report_linking(&linking, qr, progress);
        }
    }

    /// Sends the request and waits for its reply, answering getInfo locally.
    async fn transact(
        &mut self,
        request: Vec<u8>,
        deadline: Instant,
        qr: &QrKey,
        progress: &mpsc::UnboundedSender<Progress>,
    ) -> Result<Vec<u8>, ClientError> {
        const PHASE: Phase = Phase::Reply;
        if request == [CMD_GET_INFO] {
            return Ok(self.info.local_get_info_reply());
        }
        let framed = match self.revision {
            ProtocolRevision::One => Message::Ctap(request).encode(),
            ProtocolRevision::Zero => request,
        };
        self.channel
            .send(&framed, deadline)
            .await
            .map_err(|source| transport_error(PHASE, source))?;
        let _ = progress.send(Progress::RequestSent);
        loop {
            let plaintext = self
                .channel
                .recv(deadline)
                .await
                .map_err(|source| transport_error(PHASE, source))?;
            if self.revision == ProtocolRevision::Zero {
                return Ok(plaintext);
            }
            match Message::decode(&plaintext).map_err(|source| ClientError::Protocol {
                phase: PHASE,
                source,
            })? {
                Message::Ctap(reply) => return Ok(reply),
                Message::Update(update) => self.handle_update(update, qr, progress),
                Message::Shutdown => {
                    return Err(ClientError::UnexpectedMessage {
                        phase: PHASE,
                        what: "shutdown from the phone",
                    })
                }
                Message::Json(_) => {
                    return Err(ClientError::UnexpectedMessage {
                        phase: PHASE,
                        what: "JSON reply to a CTAP request",
                    })
                }
            }
        }
    }

    /// Best effort: tell the phone we are done (revision 1) and close the socket.
    async fn shutdown(&mut self, deadline: Instant) {
        if self.revision == ProtocolRevision::One && self.channel.is_open() {
            let _ = self
                .channel
                .send(&Message::Shutdown.encode(), deadline)
                .await;
        }
        let _ = self.channel.close(deadline).await;
    }

    /// Sends shutdown now and then, in the background, reads late update messages until the
    /// phone closes or `linger` passes (Chromium waits up to 3 minutes).
    async fn finish(
        mut self,
        linger: Duration,
        progress: mpsc::UnboundedSender<Progress>,
        qr: QrKey,
    ) {
        let deadline = Instant::now() + linger;
        let shut_down = self.revision == ProtocolRevision::One
            && self
                .channel
                .send(&Message::Shutdown.encode(), deadline)
                .await
                .is_ok();
        tokio::spawn(async move {
            if shut_down {
                while let Ok(plaintext) = self.channel.recv(deadline).await {
                    if let Ok(Message::Update(update)) = Message::decode(&plaintext) {
                        self.handle_update(update, &qr, &progress);
                    }
                }
            }
            let _ = self
                .channel
                .close(Instant::now() + Duration::from_millis(500))
                .await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    }
}
