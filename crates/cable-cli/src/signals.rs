//! Ctrl-C (SIGINT) and SIGTERM (`kill`, service managers, container stops) end a ceremony the
//! same way: cancelled, the advert withdrawn from BlueZ and the tunnel closed, then the exit
//! status a shell reports for that signal (130, 143). Without a SIGTERM handler the process
//! died at once and relied on bluetoothd noticing its D-Bus client was gone.

use std::sync::atomic::{AtomicU8, Ordering};

use tokio_util::sync::CancellationToken;

use crate::error::EXIT_INTERRUPTED;

/// SIGTERM's status: 128 + 15.
pub const EXIT_TERMINATED: u8 = 143;

/// The status of the signal that cancelled the work, for [`crate::error::CliError::exit_code`].
static EXIT_STATUS: AtomicU8 = AtomicU8::new(EXIT_INTERRUPTED);

/// The exit status for a cancelled ceremony: that of the signal that cancelled it.
pub fn cancelled_exit_code() -> u8 {
    EXIT_STATUS.load(Ordering::Relaxed)
}

/// A token cancelled by Ctrl-C or SIGTERM. The handlers are in place when this returns (on
/// Unix the signals are registered here, not when the task first runs), so a signal right
/// after, say, the QR code appears cancels the ceremony instead of killing the process.
pub(crate) fn cancel_on_signals() -> CancellationToken {
    let cancel = CancellationToken::new();
    let on_signal = cancel.clone();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let (Ok(mut interrupt), Ok(mut terminate)) = (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
        ) {
            tokio::spawn(async move {
                let status = tokio::select! {
                    Some(()) = interrupt.recv() => EXIT_INTERRUPTED,
                    Some(()) = terminate.recv() => EXIT_TERMINATED,
                    else => return,
                };
                EXIT_STATUS.store(status, Ordering::Relaxed);
                on_signal.cancel();
            });
            return cancel;
        }
    }
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            on_signal.cancel();
        }
    });
    cancel
}
