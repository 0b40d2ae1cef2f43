//! Reloading the TLS certificate and key from their files: on request (SIGHUP) or when the
//! files change (a watch that polls them, for certificate managers that renew in place).
//!
//! The watch polls the files' metadata rather than subscribing to file events: renewals
//! are rare, a poll costs two `stat` calls, and it sees every way files get replaced,
//! including Kubernetes' secret volumes, which swap a symlink to a new directory.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::{server_config_from_pem, RelayHandle};

/// The certificate and key files a relay serves from.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    cert: PathBuf,
    key: PathBuf,
}

/// What a poll sees of one file, following symlinks: enough to tell a rewrite or a
/// replacement from nothing at all.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    modified: Option<SystemTime>,
    len: u64,
    inode: u64,
}

fn seen(path: &Path) -> Option<Seen> {
    let meta = std::fs::metadata(path).ok()?;
    #[cfg(unix)]
    let inode = std::os::unix::fs::MetadataExt::ino(&meta);
    #[cfg(not(unix))]
    let inode = 0;
    Some(Seen {
        modified: meta.modified().ok(),
        len: meta.len(),
        inode,
    })
}

impl TlsFiles {
    /// The PEM certificate chain at `cert` and its private key at `key`.
    pub fn new(cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> TlsFiles {
        TlsFiles {
            cert: cert.into(),
            key: key.into(),
        }
    }

    fn seen(&self) -> (Option<Seen>, Option<Seen>) {
        (seen(&self.cert), seen(&self.key))
    }

    /// Reads both files again and serves new connections with them. A pair that does not
    /// load is refused with one log line (and `tls_reloads_total{outcome="refused"}`), and
    /// the relay keeps the pair it has. `trigger` says why, for the log.
    pub fn reload(&self, handle: &RelayHandle, trigger: &'static str) -> bool {
        let outcome =
            server_config_from_pem(&self.cert, &self.key).and_then(|tls| handle.reload_tls(tls));
        match outcome {
            Ok(()) => {
                tracing::info!(cert = %self.cert.display(), trigger, "TLS certificate reloaded");
                true
            }
            Err(e) => {
                handle.reload_tls_refused();
                tracing::error!(
                    error = %e.chain(),
                    trigger,
                    "new TLS certificate refused; still serving the previous one"
                );
                false
            }
        }
    }

    /// Polls the files every `every` until the relay stops, and reloads once they have
    /// changed and then stayed as they are for one more look: a renewal that writes the
    /// certificate and then the key is read whole, not refused half-written (which would
    /// count as a refusal and raise the operator's alert). A refused pair is tried again
    /// after its next change.
    pub fn watch(self, handle: RelayHandle, every: Duration) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut last = self.seen();
            let mut settling = false;
            let mut ticks = tokio::time::interval(every);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            ticks.tick().await;
            loop {
                ticks.tick().await;
                if handle.is_draining() {
                    return;
                }
                let now = self.seen();
                if now != last {
                    last = now;
                    settling = true;
                } else if settling {
                    settling = false;
                    // Both files are there (not in the middle of a rename).
                    if last.0.is_some() && last.1.is_some() {
                        self.reload(&handle, "the files changed");
                    }
                }
            }
        })
    }
}
