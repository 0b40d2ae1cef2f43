//! The app's authenticator, seen by the session as a [`cable_phone::Authenticator`].

use std::fmt;
use std::sync::Arc;

use cable_phone::CtapStatus;
use cable_proto::cbor::{self, Value};

use crate::registry::Registry;
use crate::runtime;

/// CTAP1_ERR_OTHER: what the computer gets when the app's answer cannot be sent as it is.
const ERR_OTHER: CtapStatus = CtapStatus(0x7F);

/// Answers the computer's CTAP2 requests from the app's own credentials.
///
/// Requests and responses are CTAP2 CBOR without the command or status byte: a request is
/// the parameter map of authenticatorMakeCredential (0x01) or authenticatorGetAssertion
/// (0x02) exactly as the computer sent it, a response the map the command returns. What the
/// app returns must be CTAP2 canonical CBOR (CTAP 2.2 §8: shortest lengths and integers, map
/// keys sorted by encoded length then bytes, no indefinite lengths, floats or tags), as every
/// authenticator sends; in Python, `cbor2.dumps(value, canonical=True)`.
///
/// The app must check user presence and, when the request's options ask for `uv`, verify the
/// user before answering (and set the UP and UV flags only when it did). A refusal is an
/// [`AuthenticatorError::Status`]: 0x27 (operation denied) when the person declines, 0x2E (no
/// credentials) when it has none for the relying party.
#[uniffi::export(with_foreign)]
pub trait Authenticator: Send + Sync {
    /// The authenticatorGetInfo response map. Asked once, before the session opens its
    /// tunnel.
    fn get_info(&self) -> Result<Vec<u8>, AuthenticatorError>;

    /// authenticatorMakeCredential: `request` is its parameter map, the result the
    /// attestation object map (`{1: fmt, 2: authData, 3: attStmt}`).
    fn make_credential(&self, request: Vec<u8>) -> Result<Vec<u8>, AuthenticatorError>;

    /// authenticatorGetAssertion: `request` is its parameter map, the result the assertion
    /// map (`{1: credential, 2: authData, 3: signature, 4: user, …}`).
    fn get_assertion(&self, request: Vec<u8>) -> Result<Vec<u8>, AuthenticatorError>;
}

/// How the app's authenticator declines a request.
#[derive(Debug, thiserror::Error, uniffi::Error)]
pub enum AuthenticatorError {
    /// A CTAP status byte for the computer (not 0, which means success).
    #[error("CTAP status {code:#04x}")]
    Status {
        /// E.g. 0x27 CTAP2_ERR_OPERATION_DENIED, 0x2E CTAP2_ERR_NO_CREDENTIALS.
        code: u8,
    },
    /// The callback threw something it does not declare; the computer gets 0x7F.
    #[error("the authenticator failed unexpectedly: {reason}")]
    Unexpected {
        /// What the foreign language reported.
        reason: String,
    },
}

impl From<uniffi::UnexpectedUniFFICallbackError> for AuthenticatorError {
    fn from(e: uniffi::UnexpectedUniFFICallbackError) -> Self {
        AuthenticatorError::Unexpected { reason: e.reason }
    }
}

/// [`Authenticator`] for apps whose credential code is asynchronous: the same three
/// requests, as coroutines (`suspend fun` in Kotlin, `async` in Swift and Python), with the
/// same duties and answers. Hand it to a session as
/// [`async_authenticator(app)`](async_authenticator).
///
/// The binding calls these from its own threads and awaits the result without blocking any
/// of them; cancelling the session cancels the coroutine in flight. In Python the coroutine
/// runs on the event loop given to `uniffi_set_event_loop` (the binding's threads have none
/// of their own), so an asyncio app calls
/// `cable_phone.uniffi_set_event_loop(asyncio.get_running_loop())` before a session starts.
#[uniffi::export(with_foreign)]
#[async_trait::async_trait]
pub trait AsyncAuthenticator: Send + Sync {
    /// As [`Authenticator::get_info`].
    async fn get_info(&self) -> Result<Vec<u8>, AuthenticatorError>;

    /// As [`Authenticator::make_credential`].
    async fn make_credential(&self, request: Vec<u8>) -> Result<Vec<u8>, AuthenticatorError>;

    /// As [`Authenticator::get_assertion`].
    async fn get_assertion(&self, request: Vec<u8>) -> Result<Vec<u8>, AuthenticatorError>;
}

static ASYNC_ADAPTERS: Registry<AsyncAdapter> = Registry::new();

/// An [`AsyncAuthenticator`] as the [`Authenticator`] the session constructors take. A
/// session awaits the app's coroutines directly; called as a blocking [`Authenticator`]
/// (by the app itself), it waits for the coroutine on the calling thread.
#[uniffi::export]
pub fn async_authenticator(app: Arc<dyn AsyncAuthenticator>) -> Arc<dyn Authenticator> {
    let adapter = Arc::new(AsyncAdapter { app });
    ASYNC_ADAPTERS.insert(&adapter);
    adapter
}

struct AsyncAdapter {
    app: Arc<dyn AsyncAuthenticator>,
}

impl fmt::Debug for AsyncAdapter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AsyncAuthenticatorAdapter")
    }
}

impl Drop for AsyncAdapter {
    fn drop(&mut self) {
        ASYNC_ADAPTERS.remove(self);
    }
}

impl AsyncAdapter {
    /// Runs one of the app's coroutines on the binding's runtime and waits for it here.
    fn wait<F>(
        &self,
        call: impl FnOnce(Arc<dyn AsyncAuthenticator>) -> F,
    ) -> Result<Vec<u8>, AuthenticatorError>
    where
        F: std::future::Future<Output = Result<Vec<u8>, AuthenticatorError>> + Send + 'static,
    {
        runtime::wait_for(call(Arc::clone(&self.app))).unwrap_or_else(|e| {
            Err(AuthenticatorError::Unexpected {
                reason: e.to_string(),
            })
        })
    }
}

impl Authenticator for AsyncAdapter {
    fn get_info(&self) -> Result<Vec<u8>, AuthenticatorError> {
        self.wait(|app| async move { app.get_info().await })
    }

    fn make_credential(&self, request: Vec<u8>) -> Result<Vec<u8>, AuthenticatorError> {
        self.wait(|app| async move { app.make_credential(request).await })
    }

    fn get_assertion(&self, request: Vec<u8>) -> Result<Vec<u8>, AuthenticatorError> {
        self.wait(|app| async move { app.get_assertion(request).await })
    }
}

/// The app's authenticator as the session calls it: awaited when it is asynchronous, on the
/// blocking pool when it blocks.
#[derive(Clone)]
pub(crate) enum App {
    Blocking(Arc<dyn Authenticator>),
    Async(Arc<dyn AsyncAuthenticator>),
}

impl App {
    pub(crate) fn of(app: Arc<dyn Authenticator>) -> App {
        match ASYNC_ADAPTERS.find(&app) {
            Some(adapter) => App::Async(Arc::clone(&adapter.app)),
            None => App::Blocking(app),
        }
    }

    /// One call; `Err` carries why the callback did not return at all.
    async fn call(
        &self,
        command: Command,
        request: Vec<u8>,
    ) -> Result<Result<Vec<u8>, AuthenticatorError>, String> {
        match self {
            App::Async(app) => Ok(match command {
                Command::GetInfo => app.get_info().await,
                Command::MakeCredential => app.make_credential(request).await,
                Command::GetAssertion => app.get_assertion(request).await,
            }),
            App::Blocking(app) => {
                let app = Arc::clone(app);
                tokio::task::spawn_blocking(move || match command {
                    Command::GetInfo => app.get_info(),
                    Command::MakeCredential => app.make_credential(request),
                    Command::GetAssertion => app.get_assertion(request),
                })
                .await
                .map_err(|e| e.to_string())
            }
        }
    }
}

/// Why the app's getInfo cannot be used; the session fails before it opens a tunnel.
#[derive(Debug, thiserror::Error)]
pub(crate) enum GetInfoError {
    #[error("the authenticator's get_info failed")]
    Failed(#[from] AuthenticatorError),
    #[error("the authenticator's get_info returned no CTAP2 canonical CBOR")]
    NotCanonical(#[source] cable_proto::Error),
    #[error("the authenticator's get_info returned a CBOR item that is not a map")]
    NotAMap,
    #[error("the authenticator's get_info callback did not return: {0}")]
    Panicked(String),
}

/// Asks the app for getInfo once and checks it is a canonical CBOR map.
pub(crate) async fn fetch_get_info(app: &App) -> Result<Value, GetInfoError> {
    let bytes = app
        .call(Command::GetInfo, Vec::new())
        .await
        .map_err(GetInfoError::Panicked)??;
    match cbor::decode(&bytes).map_err(GetInfoError::NotCanonical)? {
        info @ Value::Map(_) => Ok(info),
        _ => Err(GetInfoError::NotAMap),
    }
}

/// The app's authenticator with the getInfo it gave at the start.
pub(crate) struct Foreign {
    pub(crate) app: App,
    pub(crate) info: Value,
}

#[derive(Clone, Copy)]
enum Command {
    GetInfo,
    MakeCredential,
    GetAssertion,
}

impl Command {
    fn name(self) -> &'static str {
        match self {
            Command::GetInfo => "get_info",
            Command::MakeCredential => "make_credential",
            Command::GetAssertion => "get_assertion",
        }
    }
}

impl Foreign {
    async fn call(&self, command: Command, params: Value) -> Result<Value, CtapStatus> {
        let answer = self.app.call(command, params.to_bytes()).await;
        let bytes = match answer {
            Ok(Ok(bytes)) => bytes,
            Ok(Err(AuthenticatorError::Status { code })) if code != 0 => {
                return Err(CtapStatus(code))
            }
            Ok(Err(AuthenticatorError::Status { .. })) => {
                tracing::warn!(
                    callback = command.name(),
                    "the authenticator refused with status 0 (success); answering CTAP1_ERR_OTHER"
                );
                return Err(ERR_OTHER);
            }
            Ok(Err(e @ AuthenticatorError::Unexpected { .. })) => {
                tracing::warn!(callback = command.name(), error = %e, "answering CTAP1_ERR_OTHER");
                return Err(ERR_OTHER);
            }
            Err(e) => {
                tracing::warn!(callback = command.name(), error = %e, "the callback did not return; answering CTAP1_ERR_OTHER");
                return Err(ERR_OTHER);
            }
        };
        match cbor::decode(&bytes) {
            Ok(response @ Value::Map(_)) => Ok(response),
            Ok(_) => {
                tracing::warn!(
                    callback = command.name(),
                    "the authenticator returned a CBOR item that is not a map; answering CTAP1_ERR_OTHER"
                );
                Err(ERR_OTHER)
            }
            Err(e) => {
                tracing::warn!(
                    callback = command.name(),
                    error = %e,
                    "the authenticator returned no CTAP2 canonical CBOR; answering CTAP1_ERR_OTHER"
                );
                Err(ERR_OTHER)
            }
        }
    }
}

#[async_trait::async_trait]
impl cable_phone::Authenticator for Foreign {
    async fn get_info(&self) -> Value {
        self.info.clone()
    }

    async fn make_credential(&mut self, params: Value) -> Result<Value, CtapStatus> {
        self.call(Command::MakeCredential, params).await
    }

    async fn get_assertion(&mut self, params: Value) -> Result<Value, CtapStatus> {
        self.call(Command::GetAssertion, params).await
    }
}
