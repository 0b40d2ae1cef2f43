//! One ceremony from a scanned QR code, for foreign callers.

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use cable_transport::RelayUrl;
use tokio_util::sync::CancellationToken;
use zeroize::Zeroizing;

use crate::advertiser::{self, Advertiser};
use crate::authenticator::{self, Authenticator};
use crate::error::SessionError;
use crate::identity::PhoneIdentity;
use crate::progress::{ProgressEvent, ProgressListener, RequestKind};
use crate::runtime;

/// How a session is set up. Only the relay has no default: the app chooses whose relay
/// carries its users' ceremonies.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct SessionConfig {
    /// The relay's base URL, `wss://host[:port]` (or `ws://` for a relay on the same
    /// machine or a test).
    pub relay_url: String,
    /// The 16-bit domain id the advert names the relay by; `None` derives it from the
    /// relay's host name (an assigned name such as `cable.ua5v.com`, or a hashed
    /// `cable.<label>.<tld>` name), and `from_qr` refuses a host that has none.
    #[uniffi(default = None)]
    pub domain_id: Option<u16>,
    /// Refuse QR codes generated longer ago than this (seconds); `None` accepts any age.
    #[uniffi(default = Some(600))]
    pub max_qr_age_secs: Option<u64>,
    /// How long the computer may take to find the advert and connect (seconds).
    #[uniffi(default = 120)]
    pub await_computer_timeout_secs: u64,
    /// How long the authenticator (and the person) may take to answer (seconds).
    #[uniffi(default = 120)]
    pub authenticate_timeout_secs: u64,
}

/// How a session ended when it did not fail.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Enum)]
pub enum Outcome {
    /// One request was answered (possibly with an error status: the person declined).
    Served {
        /// Which command.
        kind: RequestKind,
        /// The relying party it named.
        rp_id: Option<String>,
        /// The CTAP status sent (0 = success).
        status: u8,
    },
    /// The computer ended the session before asking anything (another authenticator was
    /// chosen, or the person gave up).
    ShutdownBeforeRequest,
}

/// What the computer gave the phone to start from.
enum Begin {
    /// A scanned QR code; with an identity, the phone offers the computer a link.
    Qr {
        qr_text: Zeroizing<String>,
        link: Option<(cable_phone::PhoneIdentity, Option<String>)>,
    },
    /// A push message from a linked computer, still encrypted.
    Push {
        body: Vec<u8>,
        identity: cable_phone::PhoneIdentity,
    },
}

struct Start {
    begin: Begin,
    relay: RelayUrl,
    /// What the advert names the relay by; `None` for a relay on this machine.
    domain_id: Option<u16>,
    config: SessionConfig,
    advertiser: Arc<dyn Advertiser>,
    authenticator: Arc<dyn Authenticator>,
    listener: Option<Arc<dyn ProgressListener>>,
}

/// One phone-side ceremony: made from the scanned text, run once, cancellable from any
/// thread.
#[derive(uniffi::Object)]
pub struct PhoneSession {
    start: Mutex<Option<Start>>,
    cancel: CancellationToken,
}

impl fmt::Debug for PhoneSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PhoneSession")
            .field("cancelled", &self.cancel.is_cancelled())
            .finish_non_exhaustive()
    }
}

#[uniffi::export]
impl PhoneSession {
    /// A session for the text of a scanned `FIDO:/` QR code. The text holds the QR secret:
    /// the session wipes its copy when it ends; the app should not log or keep its own.
    /// Fails at once only on a configuration that cannot work (the QR code is read by
    /// `run`, which reports a bad one as [`SessionError::InvalidQr`]).
    #[uniffi::constructor]
    pub fn from_qr(
        qr_text: String,
        config: SessionConfig,
        advertiser: Arc<dyn Advertiser>,
        authenticator: Arc<dyn Authenticator>,
        listener: Option<Arc<dyn ProgressListener>>,
    ) -> Result<Arc<Self>, SessionError> {
        let begin = Begin::Qr {
            qr_text: Zeroizing::new(qr_text),
            link: None,
        };
        Self::starting(begin, config, advertiser, authenticator, listener)
    }

    /// As [`from_qr`](Self::from_qr), and the phone offers the computer a link as `identity`
    /// (when the identity has a contact id and the QR code says the computer stores links):
    /// the computer can then reach this phone again without a QR code, through a push
    /// message ([`from_push`](Self::from_push)). `computer_name` is what the person calls
    /// the computer, kept with the link (the protocol does not name it).
    #[uniffi::constructor]
    pub fn from_qr_linking(
        qr_text: String,
        config: SessionConfig,
        identity: Arc<PhoneIdentity>,
        computer_name: Option<String>,
        advertiser: Arc<dyn Advertiser>,
        authenticator: Arc<dyn Authenticator>,
        listener: Option<Arc<dyn ProgressListener>>,
    ) -> Result<Arc<Self>, SessionError> {
        let begin = Begin::Qr {
            qr_text: Zeroizing::new(qr_text),
            link: Some((identity.inner.clone(), computer_name)),
        };
        Self::starting(begin, config, advertiser, authenticator, listener)
    }

    /// A session for a linked computer that contacted this phone: `push_body` is the Web
    /// Push message exactly as the push service delivered it (RFC 8291 `aes128gcm`,
    /// encrypted to `identity`'s subscription keys). `run` decrypts it and reports one
    /// that is not for this phone, or from a computer it no longer links to, as
    /// [`SessionError::InvalidContact`]. `config.relay_url` must be the relay the phone
    /// registered with: the computer's tunnel waits there.
    #[uniffi::constructor]
    pub fn from_push(
        push_body: Vec<u8>,
        config: SessionConfig,
        identity: Arc<PhoneIdentity>,
        advertiser: Arc<dyn Advertiser>,
        authenticator: Arc<dyn Authenticator>,
        listener: Option<Arc<dyn ProgressListener>>,
    ) -> Result<Arc<Self>, SessionError> {
        let begin = Begin::Push {
            body: push_body,
            identity: identity.inner.clone(),
        };
        Self::starting(begin, config, advertiser, authenticator, listener)
    }

    /// Runs the ceremony to its end, blocking the calling thread (not the UI thread).
    pub fn run(&self) -> Result<Outcome, SessionError> {
        if tokio::runtime::Handle::try_current().is_ok() {
            return Err(SessionError::Runtime {
                reason: "run() was called on one of the binding's threads; call it from the \
                          app's own thread, or use run_async"
                    .into(),
            });
        }
        let start = self.take()?;
        let runtime = runtime::get()?;
        let cancel = self.cancel.clone();
        runtime.block_on(serve(start, cancel))
    }

    /// As [`run`](Self::run), as a coroutine / `suspend fun` / `async` function.
    pub async fn run_async(&self) -> Result<Outcome, SessionError> {
        let start = self.take()?;
        let runtime = runtime::get()?;
        let cancel = self.cancel.clone();
        runtime
            .spawn(serve(start, cancel))
            .await
            .map_err(|e| SessionError::Runtime {
                reason: format!("the session task ended abnormally: {e}"),
            })?
    }

    /// Ends the session from any thread: the advert is withdrawn and the tunnel closed, and
    /// `run` fails with [`SessionError::Cancelled`]. A callback already running is not
    /// interrupted; its answer is dropped.
    pub fn cancel(&self) {
        self.cancel.cancel();
    }
}

/// The domain id the advert will carry. A computer finds the relay only through it, so a
/// host that has none (neither assigned nor a hashed `cable.<label>.<tld>` name) is refused
/// here rather than advertised as some other operator's relay.
fn advert_domain_id(
    relay: &RelayUrl,
    configured: Option<u16>,
) -> Result<Option<u16>, SessionError> {
    if configured.is_some() || relay.is_loopback() {
        return Ok(configured);
    }
    cable_proto::domain::find_domain_id(relay.host())
        .map(Some)
        .ok_or_else(|| SessionError::InvalidConfig {
            reason: format!(
                "the relay host {} has no caBLE domain id, so a computer could not find it from \
                 the advert: serve the relay at an assigned or hashed host name \
                 (`cable-tunnel-server domain find`), or set domain_id",
                relay.host()
            ),
        })
}

impl PhoneSession {
    fn starting(
        begin: Begin,
        config: SessionConfig,
        advertiser: Arc<dyn Advertiser>,
        authenticator: Arc<dyn Authenticator>,
        listener: Option<Arc<dyn ProgressListener>>,
    ) -> Result<Arc<Self>, SessionError> {
        let relay =
            RelayUrl::parse(&config.relay_url).map_err(|e| SessionError::InvalidConfig {
                reason: format!("relay_url {:?}: {e}", config.relay_url),
            })?;
        let domain_id = advert_domain_id(&relay, config.domain_id)?;
        Ok(Arc::new(PhoneSession {
            start: Mutex::new(Some(Start {
                begin,
                relay,
                domain_id,
                config,
                advertiser,
                authenticator,
                listener,
            })),
            cancel: CancellationToken::new(),
        }))
    }

    fn take(&self) -> Result<Start, SessionError> {
        self.start
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
            .ok_or(SessionError::AlreadyRun)
    }
}

async fn serve(start: Start, cancel: CancellationToken) -> Result<Outcome, SessionError> {
    let Start {
        begin,
        relay,
        domain_id,
        config,
        advertiser,
        authenticator,
        listener,
    } = start;
    let authenticator = authenticator::App::of(authenticator);
    let info = tokio::select! {
        info = authenticator::fetch_get_info(&authenticator) => info?,
        () = cancel.cancelled() => {
            return Err(SessionError::Cancelled {
                phase: crate::Phase::PostHandshake,
                reason: "cancelled while asking the authenticator for getInfo".into(),
            })
        }
    };
    let mut deadlines = cable_phone::Deadlines::default();
    deadlines.await_computer = Duration::from_secs(config.await_computer_timeout_secs);
    deadlines.authenticate = Duration::from_secs(config.authenticate_timeout_secs);
    let advertiser = Arc::new(advertiser::Foreign::new(advertiser));
    let authenticator = Box::new(authenticator::Foreign {
        app: authenticator,
        info,
    });
    let mut session = match begin {
        Begin::Qr { qr_text, link } => {
            let mut session =
                cable_phone::PhoneSession::with_shared(qr_text.as_str(), advertiser, authenticator);
            drop(qr_text);
            if let Some((identity, computer_name)) = link {
                session = session.identity(identity);
                if let Some(name) = computer_name {
                    session = session.link_name(name);
                }
            }
            session
        }
        Begin::Push { body, identity } => {
            let request =
                identity
                    .push_keys()
                    .open(&body)
                    .map_err(|e| SessionError::InvalidContact {
                        phase: crate::Phase::Contact,
                        reason: crate::error::chain(&e),
                    })?;
            cable_phone::PhoneSession::contact(request, identity, advertiser, authenticator)
        }
    }
    .relay(relay)
    .deadlines(deadlines)
    .max_qr_age(config.max_qr_age_secs.map(Duration::from_secs));
    if let Some(id) = domain_id {
        session = session.domain_id(id);
    }
    let reporter = listener.map(|listener| {
        let mut events = session.progress();
        tokio::task::spawn_blocking(move || {
            while let Some(progress) = events.blocking_recv() {
                if let Some(event) = ProgressEvent::from_phone(progress) {
                    listener.on_progress(event);
                }
            }
        })
    });
    let result = session.run(cancel).await;
    if let Some(reporter) = reporter {
        // The session dropped its sender: the reporter ends once it has told everything.
        let _ = reporter.await;
    }
    match result? {
        cable_phone::Outcome::Served {
            kind,
            rp_id,
            status,
        } => Ok(Outcome::Served {
            kind: kind.into(),
            rp_id,
            status,
        }),
        _ => Ok(Outcome::ShutdownBeforeRequest),
    }
}
