//! The [`Application`] behind the virtual key: each request the phone must answer becomes a
//! hybrid ceremony on the Tokio runtime; everything else is answered at once.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use cable_client::{Ceremony, CeremonyConfig, ClientError, Progress, ProgressReceiver};
use cable_uhid::{AbortReason, Application, CtapRequest, KeepaliveStatus, Reply, RequestId};
use tokio::runtime::Handle;
use tokio_util::sync::CancellationToken;
use zeroize::Zeroizing;

use crate::classify::{classify, Action, Kind};
use crate::client_pin::ClientPin;
use crate::forward::{Forwarded, ForwardedRequest};
use crate::preflight::Preflight;
use crate::presenter::{Outcome, Presenter, Start, Target};
use crate::status;

/// How the bridge reaches phones.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct BridgeConfig {
    /// Scanner, relay, deadlines and the linked-phone store of every ceremony.
    pub ceremony: CeremonyConfig,
    /// Contact this linked phone (a name in [`CeremonyConfig::linked_phones`]) instead of
    /// showing a QR code. Looked up for every request; a phone that is gone, or that
    /// unlinked itself, gets the QR code instead.
    pub phone: Option<String>,
    /// How long the person has to confirm at the bridge.
    pub confirm_timeout: Duration,
}

impl BridgeConfig {
    /// QR codes for every request; 30 s to confirm a selection.
    pub fn new(ceremony: CeremonyConfig) -> BridgeConfig {
        BridgeConfig {
            ceremony,
            phone: None,
            confirm_timeout: Duration::from_secs(30),
        }
    }
}

/// The virtual key's [`Application`]: a phone over hybrid.
pub struct HybridBridge {
    shared: Arc<Shared>,
}

struct Shared {
    runtime: Handle,
    config: BridgeConfig,
    presenter: Arc<dyn Presenter>,
    /// The requests being worked on, to stop on CTAPHID_CANCEL or when the host goes.
    running: Mutex<HashMap<RequestId, CancellationToken>>,
    /// The rest of the last getAssertion's credentials, for getNextAssertion.
    next: Mutex<VecDeque<Vec<u8>>>,
    client_pin: ClientPin,
    /// The lists hosts probed silently, for the requests that follow.
    preflight: Preflight,
}

impl std::fmt::Debug for HybridBridge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HybridBridge")
            .field("config", &self.shared.config)
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl HybridBridge {
    /// A bridge whose ceremonies run on `runtime` and show themselves through `presenter`.
    pub fn new(runtime: Handle, config: BridgeConfig, presenter: Arc<dyn Presenter>) -> Self {
        HybridBridge {
            shared: Arc::new(Shared {
                runtime,
                config,
                presenter,
                running: Mutex::new(HashMap::new()),
                next: Mutex::new(VecDeque::new()),
                client_pin: ClientPin::generate(&mut cable_proto::rand_core::OsRng),
                preflight: Preflight::new(),
            }),
        }
    }

    fn stop(&self, id: RequestId) {
        if let Some(token) = lock(&self.shared.running).get(&id) {
            token.cancel();
        }
    }
}

impl Application for HybridBridge {
    fn request(&mut self, request: CtapRequest, reply: Reply) {
        let action = classify(request.command, &request.params);
        tracing::debug!(
            command = request.command,
            len = request.params.len(),
            ?action,
            "request from the host"
        );
        if action != Action::NextAssertion {
            // CTAP: any other command ends a getAssertion's list.
            lock(&self.shared.next).clear();
        }
        match action {
            Action::Answer(status) => reply.error(status),
            Action::ClientPin => reply.raw(self.shared.client_pin.answer(&request.params)),
            Action::Probe { rp_id, credentials } => {
                reply.raw(
                    self.shared
                        .preflight
                        .probe(&rp_id, &credentials, Instant::now()),
                );
            }
            Action::NextAssertion => match lock(&self.shared.next).pop_front() {
                Some(answer) => reply.raw(answer),
                None => reply.error(status::NOT_ALLOWED),
            },
            Action::Confirm { status } => {
                let token = self.shared.register(reply.id());
                let shared = Arc::clone(&self.shared);
                self.shared
                    .runtime
                    .spawn(async move { shared.confirm(reply, status, token).await });
            }
            Action::Phone { kind, rp_id } => {
                let token = self.shared.register(reply.id());
                let shared = Arc::clone(&self.shared);
                let CtapRequest {
                    command, params, ..
                } = request;
                let params = Zeroizing::new(params);
                let params =
                    match self
                        .shared
                        .preflight
                        .widen(kind, &rp_id, &params, Instant::now())
                    {
                        Some(widened) => Zeroizing::new(widened),
                        None => crate::forward::canonical(params),
                    };
                self.shared.runtime.spawn(async move {
                    shared
                        .ceremony(reply, kind, &rp_id, command, &params, token)
                        .await;
                });
            }
        }
    }

    fn cancel(&mut self, id: RequestId) {
        tracing::debug!(?id, "the host cancelled");
        self.stop(id);
    }

    fn abort(&mut self, id: RequestId, reason: AbortReason) {
        tracing::debug!(?id, ?reason, "the host went away");
        self.stop(id);
    }
}

impl Shared {
    fn register(&self, id: RequestId) -> CancellationToken {
        let token = CancellationToken::new();
        lock(&self.running).insert(id, token.clone());
        token
    }

    fn done(&self, id: RequestId) {
        lock(&self.running).remove(&id);
    }

    async fn confirm(&self, reply: Reply, confirmed: u8, token: CancellationToken) {
        let id = reply.id();
        let asked = tokio::time::timeout(self.config.confirm_timeout, self.presenter.confirm(id));
        let answer = tokio::select! {
            _ = token.cancelled() => status::KEEPALIVE_CANCEL,
            r = asked => match r {
                Ok(true) => confirmed,
                Ok(false) => status::OPERATION_DENIED,
                Err(_) => status::USER_ACTION_TIMEOUT,
            },
        };
        self.done(id);
        reply.raw(vec![answer]);
        self.presenter
            .ended(id, &Outcome::Confirmed { status: answer });
    }

    async fn ceremony(
        &self,
        reply: Reply,
        kind: Kind,
        rp_id: &str,
        command: u8,
        params: &[u8],
        token: CancellationToken,
    ) {
        let id = reply.id();
        // Until the phone is found the person has something to do (scan, unlock).
        reply.keepalive(KeepaliveStatus::UpNeeded);
        let mut result = None;
        if let Some(phone) = self.linked_phone() {
            let name = phone.name.clone();
            let request = ForwardedRequest::new(kind, command, params);
            let (ceremony, progress) =
                Ceremony::with_linked_phone(self.config.ceremony.clone(), request, phone);
            self.presenter.started(&Start {
                id,
                kind,
                rp_id,
                target: Target::LinkedPhone(&name),
            });
            match self
                .drive(ceremony.run(token.clone()), progress, &reply)
                .await
            {
                Err(ClientError::PhoneUnlinked { name, .. }) => {
                    tracing::warn!(phone = %name, "the phone unlinked itself; showing a QR code");
                }
                other => result = Some(other),
            }
        }
        let result = match result {
            Some(result) => result,
            None => {
                let request = ForwardedRequest::new(kind, command, params);
                let (ceremony, progress) = Ceremony::new(self.config.ceremony.clone(), request);
                {
                    let uri = Zeroizing::new(ceremony.qr_uri());
                    self.presenter.started(&Start {
                        id,
                        kind,
                        rp_id,
                        target: Target::Qr(&uri),
                    });
                }
                self.drive(ceremony.run(token.clone()), progress, &reply)
                    .await
            }
        };
        self.done(id);
        match result {
            Ok(Forwarded {
                reply: answer,
                next,
            }) => {
                // Before the answer: the host may ask for the next one at once.
                *lock(&self.next) = next.into();
                let status = answer.first().copied().unwrap_or(status::OTHER);
                reply.raw(answer);
                self.presenter.ended(id, &Outcome::Answered { status });
            }
            Err(error) => {
                let status = status::for_failure(&error);
                tracing::info!(error = %cable_client::error_chain(&error), status, "no answer from the phone");
                reply.error(status);
                self.presenter.ended(
                    id,
                    &Outcome::Failed {
                        error: &error,
                        status,
                    },
                );
            }
        }
    }

    /// The linked phone chosen, if it is still in the store.
    fn linked_phone(&self) -> Option<cable_client::LinkedPhone> {
        let name = self.config.phone.as_deref()?;
        let store = self.config.ceremony.linked_phones.as_ref()?;
        match store.get(name) {
            Ok(phone) => Some(phone),
            Err(e) => {
                tracing::warn!(phone = %name, error = %e, "the chosen phone is not linked; showing a QR code");
                None
            }
        }
    }

    /// Runs a ceremony while its progress sets what the keepalives say.
    async fn drive(
        &self,
        run: impl std::future::Future<Output = Result<Forwarded, ClientError>>,
        mut progress: ProgressReceiver,
        reply: &Reply,
    ) -> Result<Forwarded, ClientError> {
        tokio::pin!(run);
        loop {
            tokio::select! {
                result = &mut run => return result,
                Some(p) = progress.recv() => {
                    match p {
                        Progress::AdvertFound { .. } => reply.keepalive(KeepaliveStatus::Processing),
                        Progress::RequestSent => reply.keepalive(KeepaliveStatus::UpNeeded),
                        Progress::ReplyReceived => reply.keepalive(KeepaliveStatus::Processing),
                        _ => {}
                    }
                    self.presenter.progress(reply.id(), &p);
                }
            }
        }
    }
}
