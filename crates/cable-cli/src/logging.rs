//! Diagnostic logging to stderr: `-v` (repeatable) or `RUST_LOG`.
//!
//! The tunnel id is a capability: whoever knows it can join the tunnel. The workspace's crates
//! never log it, but tungstenite logs the request it sends, which carries it, and every frame
//! at trace level, and other dependencies print requests and socket details at debug. So a
//! bare level (`-vvv`, `RUST_LOG=trace`) turns on this workspace's crates only; a dependency
//! logs more than warnings only when named (`RUST_LOG=info,tungstenite=trace`).

use std::io::IsTerminal;

use tracing_subscriber::filter::{LevelFilter, ParseError};
use tracing_subscriber::EnvFilter;

/// Crates whose events a bare level turns on (`cable` is this binary): every workspace
/// crate the binary links.
const OWN_TARGETS: [&str; 12] = [
    "cable",
    "cable_proto",
    "cable_transport",
    "cable_ble",
    "cable_client",
    "cable_phone",
    "cable_demo",
    "cable_tunnel_server",
    "cable_store",
    "cable_ctaphid",
    "cable_uhid",
    "cable_key",
];

/// `--log-format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    /// One line per event, coloured on a terminal.
    #[default]
    Human,
    /// One JSON object per line (timestamp, level, target, fields), for log collectors.
    Json,
}

/// Every other target logs at most this much unless the filter names it.
const DEPENDENCY_LEVEL: LevelFilter = LevelFilter::WARN;

/// The filter text for `-v` given `verbose` times, or `RUST_LOG` when that is set.
fn user_spec(verbose: u8, rust_log: Option<&str>) -> String {
    match rust_log.map(str::trim) {
        Some(spec) if !spec.is_empty() => spec.to_owned(),
        _ => match verbose {
            0 => "warn",
            1 => "info",
            2 => "debug",
            _ => "trace",
        }
        .to_owned(),
    }
}

/// Rewrites a filter so that bare levels apply to `OWN_TARGETS` only; directives that name a
/// target or a span are kept as written.
fn directives(spec: &str) -> String {
    let mut own_level = None;
    let mut named = Vec::new();
    for directive in spec.split(',').map(str::trim).filter(|d| !d.is_empty()) {
        match directive.parse::<LevelFilter>() {
            Ok(level) => own_level = Some(level),
            Err(_) => named.push(directive),
        }
    }
    // A quieter bare level than the dependencies' default quiets them too.
    let global = own_level.map_or(DEPENDENCY_LEVEL, |l| l.min(DEPENDENCY_LEVEL));
    let mut out = vec![global.to_string()];
    if let Some(level) = own_level {
        out.extend(OWN_TARGETS.iter().map(|t| format!("{t}={level}")));
    }
    out.extend(named.into_iter().map(str::to_owned));
    out.join(",")
}

fn filter(verbose: u8, rust_log: Option<&str>) -> Result<EnvFilter, ParseError> {
    EnvFilter::builder().parse(directives(&user_spec(verbose, rust_log)))
}

/// Installs the stderr logger. A `RUST_LOG` that does not parse is reported and ignored.
pub fn init(verbose: u8, format: LogFormat) {
    let rust_log = std::env::var("RUST_LOG").ok();
    let (filter, invalid) = match filter(verbose, rust_log.as_deref()) {
        Ok(f) => (f, None),
        Err(e) => (
            filter(verbose, None).unwrap_or_else(|_| EnvFilter::new("warn")),
            Some(e),
        ),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let installed = match format {
        LogFormat::Human => builder
            .with_ansi(std::io::stderr().is_terminal())
            .try_init(),
        LogFormat::Json => builder.json().with_ansi(false).try_init(),
    };
    if let (Ok(()), Some(e)) = (installed, invalid) {
        tracing::warn!(error = %e, "RUST_LOG ignored: it does not parse");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[test]
    fn every_workspace_crate_the_binary_links_is_an_own_target() {
        // A crate missing here logs nothing under `-v`: `cable key -v` showed no bridge log.
        let manifest = include_str!("../Cargo.toml");
        let linked: Vec<String> = manifest
            .lines()
            .filter_map(|l| l.trim().split(['.', ' ', '=']).next())
            .filter(|name| name.starts_with("cable-"))
            .map(|name| name.replace('-', "_"))
            .collect();
        assert!(linked.len() >= 10, "{linked:?}");
        for name in linked {
            assert!(
                OWN_TARGETS.contains(&name.as_str()),
                "{name} is not an own target"
            );
        }
    }

    #[test]
    fn verbosity_and_rust_log() {
        assert_eq!(user_spec(0, None), "warn");
        assert_eq!(user_spec(1, None), "info");
        assert_eq!(user_spec(2, None), "debug");
        assert_eq!(user_spec(7, None), "trace");
        assert_eq!(user_spec(0, Some("")), "warn");
        assert_eq!(user_spec(3, Some("cable_ble=debug")), "cable_ble=debug");
    }

    #[test]
    fn bare_levels_apply_to_the_workspace_only() {
        let trace = directives("trace");
        assert!(
            trace.starts_with("warn,cable=trace,cable_proto=trace,"),
            "{trace}"
        );
        assert!(trace.contains(",cable_transport=trace"), "{trace}");
        assert!(!trace.contains("tungstenite"), "{trace}");
        assert_eq!(
            directives("info, tungstenite=trace"),
            format!(
                "warn,{},tungstenite=trace",
                OWN_TARGETS.map(|t| format!("{t}=info")).join(",")
            )
        );
        assert!(directives("off").starts_with("off,cable=off,"));
        assert_eq!(directives("cable_ble=debug"), "warn,cable_ble=debug");
        assert!(filter(0, Some("tungstenite=loud")).is_err());
    }

    #[derive(Clone, Default)]
    struct Capture(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Capture {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            if let Ok(mut v) = self.0.lock() {
                v.extend_from_slice(buf);
            }
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn logged(verbose: u8, rust_log: Option<&str>) -> String {
        let capture = Capture::default();
        let writer = capture.clone();
        let Ok(filter) = filter(verbose, rust_log) else {
            panic!("{rust_log:?} does not parse");
        };
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            tracing::trace!(target: "cable_transport::connection", "transport trace");
            tracing::debug!(target: "cable::phone", "cli debug");
            tracing::trace!(target: "tungstenite::handshake::client", "GET /cable/connect/000000/a0a1");
            tracing::debug!(target: "tokio_tungstenite", "tokio-tungstenite debug");
            tracing::debug!(target: "btleplug::bluez", "btleplug debug");
            tracing::warn!(target: "btleplug::bluez", "btleplug warning");
        });
        let bytes = capture.0.lock().map(|v| v.clone()).unwrap_or_default();
        String::from_utf8_lossy(&bytes).into_owned()
    }

    #[test]
    fn vvv_and_rust_log_trace_keep_dependencies_quiet() {
        for out in [logged(3, None), logged(0, Some("trace"))] {
            assert!(
                out.contains("transport trace") && out.contains("cli debug"),
                "{out}"
            );
            assert!(out.contains("btleplug warning"), "{out}");
            for quiet in [
                "/cable/connect/",
                "tokio-tungstenite debug",
                "btleplug debug",
            ] {
                assert!(!out.contains(quiet), "{quiet} in:\n{out}");
            }
        }
        // Named explicitly, a dependency logs what was asked for.
        let asked = logged(0, Some("warn,tungstenite=trace"));
        assert!(asked.contains("/cable/connect/000000/a0a1"), "{asked}");
        assert!(!asked.contains("transport trace"), "{asked}");
        // Without -v: warnings only.
        let quiet = logged(0, None);
        assert!(
            !quiet.contains("cli debug") && quiet.contains("btleplug warning"),
            "{quiet}"
        );
    }
}
