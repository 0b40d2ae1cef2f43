//! Log lines for events that can repeat many times a second, and failed accepts.
//!
//! Out of file descriptors, every `accept` fails at once and keeps failing until sockets are
//! closed; with the accept loops' short back-off that is ~50 warnings a second, which buries
//! the lines that say why. The metric counts every failure; the log says it once in a while.

use std::io;
use std::time::Duration;

use tokio::time::Instant;

use crate::metrics::{Listener, Metrics};

/// Shortest time between two "accept failed" lines of one listener.
pub(crate) const ACCEPT_LOG_INTERVAL: Duration = Duration::from_secs(10);

/// Shortest time between two "PROXY protocol header refused" lines: a misconfigured
/// balancer, or something scanning the port, repeats it for every connection.
pub(crate) const PROXY_LOG_INTERVAL: Duration = Duration::from_secs(10);

/// Lets one occurrence of an event through per interval and counts the rest.
#[derive(Debug)]
pub(crate) struct LogThrottle {
    interval: Duration,
    quiet_until: Option<Instant>,
    suppressed: u64,
}

impl LogThrottle {
    pub(crate) const fn new(interval: Duration) -> Self {
        Self {
            interval,
            quiet_until: None,
            suppressed: 0,
        }
    }

    /// Records one occurrence at `now`. `Some(n)`: log this one, and say that `n` occurrences
    /// since the previous line were not logged. `None`: stay quiet.
    pub(crate) fn hit(&mut self, now: Instant) -> Option<u64> {
        match self.quiet_until {
            Some(until) if now < until => {
                self.suppressed += 1;
                None
            }
            _ => {
                self.quiet_until = Some(now + self.interval);
                Some(std::mem::take(&mut self.suppressed))
            }
        }
    }
}

/// Counts and logs the failed accepts of one listener.
#[derive(Debug)]
pub(crate) struct AcceptFailures {
    listener: Listener,
    log: LogThrottle,
}

impl AcceptFailures {
    pub(crate) const fn new(listener: Listener) -> Self {
        Self {
            listener,
            log: LogThrottle::new(ACCEPT_LOG_INTERVAL),
        }
    }

    pub(crate) fn record(&mut self, metrics: &Metrics, error: &io::Error) {
        metrics.accept_failed(self.listener);
        if let Some(suppressed) = self.log.hit(Instant::now()) {
            // EMFILE/ENFILE: the process or the system is out of file descriptors.
            tracing::warn!(
                listener = self.listener.as_str(),
                error = %error,
                suppressed,
                "accept failed"
            );
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn one_line_per_interval_with_the_count_of_the_rest() {
        let mut log = LogThrottle::new(Duration::from_secs(10));
        // The first failure is logged at once.
        assert_eq!(log.hit(Instant::now()), Some(0));
        // 50 a second for 10 s: all quiet.
        let mut quiet = 0;
        for _ in 0..499 {
            tokio::time::advance(Duration::from_millis(20)).await;
            if log.hit(Instant::now()).is_none() {
                quiet += 1;
            }
        }
        assert_eq!(quiet, 499);
        // The first one after the interval is logged and reports the 499 before it.
        tokio::time::advance(Duration::from_millis(20)).await;
        assert_eq!(log.hit(Instant::now()), Some(499));
        assert_eq!(log.hit(Instant::now()), None);
        // After a quiet spell the next failure is logged at once, with what was left over.
        tokio::time::advance(Duration::from_secs(60)).await;
        assert_eq!(log.hit(Instant::now()), Some(1));
    }

    #[derive(Clone, Default)]
    struct Capture(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for Capture {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[tokio::test(start_paused = true)]
    async fn every_failure_is_counted_and_few_are_logged() {
        let capture = Capture::default();
        let writer = capture.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        let _guard = tracing::subscriber::set_default(subscriber);

        let metrics = Metrics::new();
        let mut failures = AcceptFailures::new(Listener::Tunnel);
        let error = io::Error::from_raw_os_error(24); // EMFILE
                                                      // 50 a second for 12 s.
        for _ in 0..600 {
            failures.record(&metrics, &error);
            tokio::time::advance(Duration::from_millis(20)).await;
        }
        assert_eq!(metrics.accept_failures(Listener::Tunnel), 600);
        assert_eq!(metrics.accept_failures(Listener::Admin), 0);
        let text = metrics.encode();
        assert!(
            text.contains("cable_relay_accept_failures_total{listener=\"tunnel\"} 600"),
            "{text}"
        );
        assert!(
            text.contains("cable_relay_accept_failures_total{listener=\"admin\"} 0"),
            "{text}"
        );

        let logs = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<&str> = logs.lines().collect();
        assert_eq!(lines.len(), 2, "{logs}");
        assert!(
            lines
                .iter()
                .all(|l| l.contains("accept failed") && l.contains("listener=\"tunnel\"")),
            "{logs}"
        );
        assert!(lines[0].contains("suppressed=0"), "{logs}");
        assert!(lines[1].contains("suppressed=499"), "{logs}");
    }
}
