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
    /// The admin token file holds no usable token.
    #[error("the admin token in {path} is not usable")]
    BadAdminToken {
        /// The file.
        path: String,
        /// What is wrong with it.
        #[source]
        problem: TokenProblem,
    },
    /// A certificate reload was asked of a relay serving plain HTTP.
    #[error("the relay was started without TLS; restart it with --tls-cert and --tls-key")]
    TlsNotEnabled,
    /// Only one of `--tls-cert` / `--tls-key` was given.
    #[error("TLS needs both a certificate chain and a private key")]
    TlsIncomplete,
    /// A PEM file could not be read.
    #[error("cannot read {path}")]
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
    #[error("TLS configuration rejected")]
    Tls(#[from] rustls::Error),
    /// A listener could not be bound.
    #[error("cannot listen on {addr}")]
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
    /// The contact key file is malformed.
    #[error("contact key file {path}, line {line}: {problem}")]
    ContactKeyFile {
        /// The file.
        path: String,
        /// 1-based line number (0: the file as a whole).
        line: usize,
        /// What was wrong.
        problem: &'static str,
    },
    /// The VAPID key file holds no usable P-256 private key.
    #[error("VAPID key file {path}: expected a PEM P-256 private key (PKCS#8) or 32 raw bytes")]
    VapidKey {
        /// The file.
        path: String,
    },
    /// The relay's main task panicked or was cancelled.
    #[error("relay task failed")]
    Join(#[from] tokio::task::JoinError),
}

impl RelayError {
    /// The message and its sources on one line (`cannot listen on …: Address in use`).
    ///
    /// Messages leave their source to `source()`, and a JSON log field shows only its
    /// `Display`, so log lines use this to keep the cause.
    pub fn chain(&self) -> String {
        let mut line = self.to_string();
        let mut source = std::error::Error::source(self);
        while let Some(cause) = source {
            line.push_str(": ");
            line.push_str(&cause.to_string());
            source = cause.source();
        }
        line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_chain_keeps_the_cause_the_message_leaves_out() {
        let err = RelayError::ReadFile {
            path: "cert.pem".into(),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such file"),
        };
        assert_eq!(err.to_string(), "cannot read cert.pem");
        assert_eq!(err.chain(), "cannot read cert.pem: no such file");
    }
}

/// Shortest admin token accepted: 16 characters of a random base64 or hex string.
pub const MIN_TOKEN_LEN: usize = 16;

/// Why a token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenProblem {
    /// Fewer than [`MIN_TOKEN_LEN`] characters.
    #[error("the token is shorter than {MIN_TOKEN_LEN} characters (e.g. `openssl rand -hex 32`)")]
    TooShort,
    /// Spaces, control characters or non-ASCII.
    #[error("the token must be one line of visible ASCII characters without spaces")]
    NotVisibleAscii,
}
