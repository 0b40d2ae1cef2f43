//! The binding's own tokio runtime, shared by every session of the process.

use std::sync::OnceLock;

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
        .map_err(|message| SessionError::Runtime {
            message: message.clone(),
        })
}
