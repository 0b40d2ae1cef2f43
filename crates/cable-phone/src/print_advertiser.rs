//! An [`Advertiser`] that writes the advert as a line of text instead of broadcasting it.

use std::fmt;
use std::io::Write;
use std::sync::{Arc, Mutex, PoisonError};

use cable_ble::{AdvertGuard, Advertiser, BleError, ADVERT_LEN};
use futures_util::future::BoxFuture;

/// Writes `advert: <40 hex digits>` (one line, flushed) for another program to put on the air,
/// or for debugging. The "advert" lasts until its guard is dropped, like a real one.
#[derive(Clone)]
pub struct PrintAdvertiser {
    out: Arc<Mutex<Box<dyn Write + Send>>>,
}

impl fmt::Debug for PrintAdvertiser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PrintAdvertiser").finish_non_exhaustive()
    }
}

impl PrintAdvertiser {
    /// Writes to standard output.
    pub fn stdout() -> Self {
        Self::to_writer(std::io::stdout())
    }

    /// Writes to `out`.
    pub fn to_writer(out: impl Write + Send + 'static) -> Self {
        Self {
            out: Arc::new(Mutex::new(Box::new(out))),
        }
    }
}

impl Advertiser for PrintAdvertiser {
    fn start_advertising(
        &self,
        payload: [u8; ADVERT_LEN],
    ) -> BoxFuture<'_, Result<AdvertGuard, BleError>> {
        Box::pin(async move {
            {
                let mut out = self.out.lock().unwrap_or_else(PoisonError::into_inner);
                // A consumer that went away is not this session's failure; it just sees nothing.
                let _ = writeln!(out, "advert: {}", hex_lower(&payload));
                let _ = out.flush();
            }
            let (guard, mut control) = AdvertGuard::new();
            tokio::spawn(async move {
                control.stop_requested().await;
                control.finish(Ok(()));
            });
            Ok(guard)
        })
    }
}

fn hex_lower(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[tokio::test]
    async fn writes_one_line_per_advert() {
        let sink = Shared::default();
        let advertiser = PrintAdvertiser::to_writer(sink.clone());
        let mut payload = [0u8; ADVERT_LEN];
        payload[0] = 0xab;
        payload[19] = 0x01;
        let guard = advertiser.start_advertising(payload).await.unwrap();
        guard.stop().await.unwrap();
        assert_eq!(
            String::from_utf8(sink.0.lock().unwrap().clone()).unwrap(),
            format!("advert: ab{}01\n", "00".repeat(18))
        );
    }
}
