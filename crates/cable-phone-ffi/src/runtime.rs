//! The binding's own tokio runtime, shared by every session of the process.

use std::future::Future;
use std::sync::{mpsc, OnceLock};

use tokio::runtime::{Builder, Runtime};

use crate::error::SessionError;

static RUNTIME: OnceLock<Result<Runtime, String>> = OnceLock::new();

/// The runtime, started on first use: two worker threads (a session is I/O-bound; the
/// app's callbacks run on the blocking pool, not on these).
pub(crate) fn get() -> Result<&'static Runtime, SessionError> {
    RUNTIME
        .get_or_init(|| {
            Builder::new_multi_thread()
                .worker_threads(2)
                .thread_name("cable-phone")
                .enable_all()
                .build()
                .map_err(|e| format!("cannot start the binding's runtime: {e}"))
        })
        .as_ref()
        .map_err(|reason| SessionError::Runtime {
            reason: reason.clone(),
        })
}

/// Runs `work` as a task on the runtime; its result arrives on the receiver, to be waited
/// for on an app's thread or the runtime's blocking pool (never on one of its two workers,
/// which would stall).
pub(crate) fn spawn_for_answer<T: Send + 'static>(
    work: impl Future<Output = T> + Send + 'static,
) -> Result<mpsc::Receiver<T>, SessionError> {
    let (tx, rx) = mpsc::sync_channel(1);
    get()?.spawn(async move {
        let _ = tx.send(work.await);
    });
    Ok(rx)
}

/// [`spawn_for_answer`], waiting for the answer however long it takes.
pub(crate) fn wait_for<T: Send + 'static>(
    work: impl Future<Output = T> + Send + 'static,
) -> Result<T, SessionError> {
    spawn_for_answer(work)?
        .recv()
        .map_err(|_| SessionError::Runtime {
            reason: "the task ended without an answer (it panicked, or the runtime stopped)".into(),
        })
}
