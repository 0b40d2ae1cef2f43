//! The crate's error type.

use std::net::SocketAddr;

/// Everything that can go wrong in this crate, as typed variants.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    /// A duration in configuration could not be parsed.
    #[error("invalid duration {text:?}: use a number with unit ms, s, m or h (e.g. 120s)")]
    BadDuration {
        /// The offending text.
        text: String,
    },
    /// Only one of `--tls-cert` / `--tls-key` was given.
    #[error("TLS needs both a certificate chain and a private key")]
    TlsIncomplete,
    /// A PEM file could not be read.
    #[error("cannot read {path}: {source}")]
    ReadFile {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The PEM certificate file held no certificate.
    #[error("no certificate found in {path}")]
    NoCertificate {
        /// The file.
        path: String,
    },
    /// The PEM key file held no private key.
    #[error("no private key found in {path}")]
    NoPrivateKey {
        /// The file.
        path: String,
    },
    /// rustls rejected the certificate/key pair.
    #[error("TLS configuration rejected: {0}")]
    Tls(#[from] rustls::Error),
    /// A listener could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// A configuration value is out of its valid range.
    #[error("invalid configuration: {setting} {problem}")]
    InvalidConfig {
        /// The setting's name.
        setting: &'static str,
        /// What is wrong with it.
        problem: &'static str,
    },
    /// The relay's main task panicked or was cancelled.
    #[error("relay task failed: {0}")]
    Join(#[from] tokio::task::JoinError),
}
