//! In-process TLS: a rustls server configuration from PEM files.

use std::fs::File;
use std::io::BufReader;
use std::path::Path;
use std::sync::Arc;

use crate::error::RelayError;

/// Builds a rustls server configuration (ring provider, TLS 1.2 and 1.3, HTTP/1.1 ALPN) from a
/// PEM certificate chain and a PEM private key (PKCS#8, PKCS#1 or SEC1).
pub fn server_config_from_pem(
    cert_path: &Path,
    key_path: &Path,
) -> Result<Arc<rustls::ServerConfig>, RelayError> {
    let open = |p: &Path| {
        File::open(p)
            .map(BufReader::new)
            .map_err(|source| RelayError::ReadFile {
                path: p.display().to_string(),
                source,
            })
    };
    let certs = rustls_pemfile::certs(&mut open(cert_path)?)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| RelayError::ReadFile {
            path: cert_path.display().to_string(),
            source,
        })?;
    if certs.is_empty() {
        return Err(RelayError::NoCertificate {
            path: cert_path.display().to_string(),
        });
    }
    let key = rustls_pemfile::private_key(&mut open(key_path)?)
        .map_err(|source| RelayError::ReadFile {
            path: key_path.display().to_string(),
            source,
        })?
        .ok_or_else(|| RelayError::NoPrivateKey {
            path: key_path.display().to_string(),
        })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
