//! How `/metrics` is written: OpenMetrics (what prometheus-client produces, and what
//! Prometheus asks for first) or the older Prometheus text format 0.0.4 for scrapers that
//! accept only `text/plain`; and the process gauges every Prometheus target is expected to
//! have (`process_*`, unprefixed), read from `/proc` on Linux.

use std::collections::HashSet;
use std::sync::atomic::AtomicU64;
use std::time::{SystemTime, UNIX_EPOCH};

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// A `/metrics` text format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// OpenMetrics 1.0.0.
    OpenMetrics,
    /// Prometheus text 0.0.4.
    Prometheus,
}

impl Format {
    /// The format an `Accept` header asks for: OpenMetrics when it names it, or names
    /// nothing in particular (absent, `*/*`); text 0.0.4 when it names `text/plain` only.
    pub fn from_accept(accept: Option<&[u8]>) -> Format {
        let Some(accept) = accept else {
            return Format::OpenMetrics;
        };
        let accept = String::from_utf8_lossy(accept).to_ascii_lowercase();
        if accept.contains("application/openmetrics-text") {
            Format::OpenMetrics
        } else if accept.contains("text/plain") {
            Format::Prometheus
        } else {
            Format::OpenMetrics
        }
    }

    /// The answer's `Content-Type`.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
            Format::Prometheus => "text/plain; version=0.0.4; charset=utf-8",
        }
    }
}

/// OpenMetrics text rewritten as Prometheus text 0.0.4: no `# EOF` or `# UNIT`, counter
/// families named after their `_total` samples, info families as `_info` gauges. Samples
/// are the same in both.
pub fn to_prometheus(openmetrics: &str) -> String {
    let mut renamed = HashSet::new();
    let mut infos = HashSet::new();
    for line in openmetrics.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            match rest.split_once(' ') {
                Some((name, "counter")) => {
                    renamed.insert(name.to_owned());
                }
                Some((name, "info")) => {
                    infos.insert(name.to_owned());
                }
                _ => {}
            }
        }
    }
    let mut out = String::with_capacity(openmetrics.len());
    for line in openmetrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let meta = ["# HELP ", "# TYPE "]
            .into_iter()
            .find_map(|p| line.strip_prefix(p).map(|rest| (p, rest)));
        match meta.and_then(|(p, rest)| rest.split_once(' ').map(|(n, t)| (p, n, t))) {
            Some((prefix, name, tail)) if renamed.contains(name) => {
                out.push_str(&format!("{prefix}{name}_total {tail}\n"));
            }
            Some((prefix, name, tail)) if infos.contains(name) => {
                let tail = if prefix == "# TYPE " { "gauge" } else { tail };
                out.push_str(&format!("{prefix}{name}_info {tail}\n"));
            }
            _ => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    out
}

/// `process_*` gauges, refreshed at each scrape.
#[derive(Debug)]
pub struct ProcessMetrics {
    registry: Registry,
    resident: Gauge,
    open_fds: Gauge,
    max_fds: Gauge,
}

impl ProcessMetrics {
    /// Registers the gauges; the start time is now.
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let resident = Gauge::default();
        let open_fds = Gauge::default();
        let max_fds = Gauge::default();
        let start = Gauge::<f64, AtomicU64>::default();
        start.set(
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64()),
        );
        registry.register(
            "process_start_time_seconds",
            "Start time of the process since the Unix epoch in seconds",
            start,
        );
        if cfg!(target_os = "linux") {
            registry.register(
                "process_resident_memory_bytes",
                "Resident memory size in bytes",
                resident.clone(),
            );
            registry.register(
                "process_open_fds",
                "Number of open file descriptors",
                open_fds.clone(),
            );
            registry.register(
                "process_max_fds",
                "Maximum number of open file descriptors",
                max_fds.clone(),
            );
        }
        ProcessMetrics {
            registry,
            resident,
            open_fds,
            max_fds,
        }
    }

    /// Reads `/proc/self` now (nothing elsewhere), then appends the OpenMetrics text.
    pub fn encode_into(&self, out: &mut String) {
        if cfg!(target_os = "linux") {
            if let Some(kib) = std::fs::read_to_string("/proc/self/status")
                .ok()
                .and_then(|s| resident_kib(&s))
            {
                self.resident.set(kib.saturating_mul(1024));
            }
            if let Ok(dir) = std::fs::read_dir("/proc/self/fd") {
                // One of them is the directory being read.
                self.open_fds
                    .set((dir.count() as i64).saturating_sub(1).max(0));
            }
            if let Some(max) = std::fs::read_to_string("/proc/self/limits")
                .ok()
                .and_then(|s| max_open_files(&s))
            {
                self.max_fds.set(max);
            }
        }
        // Writing into a String cannot fail.
        let _ = encode(out, &self.registry);
    }
}

impl Default for ProcessMetrics {
    fn default() -> Self {
        Self::new()
    }
}

/// The soft limit on the `Max open files` line of `/proc/self/limits`.
fn max_open_files(limits: &str) -> Option<i64> {
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.trim_start_matches("Max open files")
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// `VmRSS` of `/proc/self/status`, in KiB (the kernel's "kB").
fn resident_kib(status: &str) -> Option<i64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_picks_the_format() {
        assert_eq!(Format::from_accept(None), Format::OpenMetrics);
        assert_eq!(Format::from_accept(Some(b"*/*")), Format::OpenMetrics);
        // What Prometheus sends.
        let prometheus = b"application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
        assert_eq!(Format::from_accept(Some(prometheus)), Format::OpenMetrics);
        assert_eq!(
            Format::from_accept(Some(b"text/plain;version=0.0.4;q=0.3,*/*;q=0.1")),
            Format::Prometheus
        );
        assert_eq!(Format::from_accept(Some(b"TEXT/PLAIN")), Format::Prometheus);
        assert_eq!(
            Format::from_accept(Some(&[0xff, 0xfe])),
            Format::OpenMetrics
        );
    }

    #[test]
    fn openmetrics_becomes_prometheus_text() {
        let om = "# HELP cable_relay_tunnels_created Tunnels opened.\n\
                  # TYPE cable_relay_tunnels_created counter\n\
                  cable_relay_tunnels_created_total 3\n\
                  # HELP cable_relay_active Tunnels joined.\n\
                  # TYPE cable_relay_active gauge\n\
                  cable_relay_active 1\n\
                  # HELP cable_relay_build Build.\n\
                  # TYPE cable_relay_build info\n\
                  cable_relay_build_info{version=\"0.1.0\"} 1\n\
                  # HELP process_start_time_seconds Start.\n\
                  # TYPE process_start_time_seconds gauge\n\
                  # UNIT process_start_time_seconds seconds\n\
                  process_start_time_seconds 1.5\n\
                  # EOF\n";
        assert_eq!(
            to_prometheus(om),
            "# HELP cable_relay_tunnels_created_total Tunnels opened.\n\
             # TYPE cable_relay_tunnels_created_total counter\n\
             cable_relay_tunnels_created_total 3\n\
             # HELP cable_relay_active Tunnels joined.\n\
             # TYPE cable_relay_active gauge\n\
             cable_relay_active 1\n\
             # HELP cable_relay_build_info Build.\n\
             # TYPE cable_relay_build_info gauge\n\
             cable_relay_build_info{version=\"0.1.0\"} 1\n\
             # HELP process_start_time_seconds Start.\n\
             # TYPE process_start_time_seconds gauge\n\
             process_start_time_seconds 1.5\n"
        );
    }

    #[test]
    fn process_gauges_are_read() {
        let mut out = String::new();
        ProcessMetrics::new().encode_into(&mut out);
        assert!(out.contains("process_start_time_seconds "), "{out}");
        if cfg!(target_os = "linux") {
            let value = |name: &str| -> f64 {
                out.lines()
                    .find_map(|l| l.strip_prefix(&format!("{name} ")))
                    .and_then(|v| v.parse().ok())
                    .unwrap_or_else(|| panic!("{name} in {out}"))
            };
            assert!(value("process_resident_memory_bytes") > 1e6);
            assert!(value("process_open_fds") >= 3.0);
            assert!(value("process_max_fds") >= value("process_open_fds"));
        }
    }

    #[test]
    fn limits_line_is_read() {
        let limits = "Limit                     Soft Limit           Hard Limit           Units     \n\
                      Max open files            1024                 524288               files     \n";
        assert_eq!(max_open_files(limits), Some(1024));
        assert_eq!(max_open_files("nothing"), None);
        assert_eq!(resident_kib("Name:\tx\nVmRSS:\t  5120 kB\n"), Some(5120));
        assert_eq!(resident_kib("VmRSS: lots"), None);
    }
}
