//! The bearer token that can guard `/metrics` on the admin listener.
//!
//! Metrics say how busy an instance is and how it refuses clients, which is for the operator's
//! scraper, not for whoever reaches the port (a shared node, a misconfigured Service). Probes
//! stay open: a kubelet must reach `/healthz` and `/readyz`, and they only say up or draining.
//! The token comes from a file so that it is in neither the process list nor the environment.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::error::RelayError;
pub use crate::error::TokenProblem;

pub use crate::error::MIN_TOKEN_LEN;

/// A bearer token for `/metrics`. Its `Debug` never shows it; it is zeroized when dropped.
#[derive(Clone)]
pub struct AdminToken(Arc<Zeroizing<Vec<u8>>>);

impl AdminToken {
    /// A token of at least [`MIN_TOKEN_LEN`] visible ASCII characters (no spaces), as a bearer
    /// credential must be to travel in an `Authorization` header unchanged.
    pub fn new(token: &str) -> Result<Self, TokenProblem> {
        if token.len() < MIN_TOKEN_LEN {
            return Err(TokenProblem::TooShort);
        }
        if !token.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(TokenProblem::NotVisibleAscii);
        }
        Ok(AdminToken(Arc::new(Zeroizing::new(
            token.as_bytes().to_vec(),
        ))))
    }

    /// Reads the token from a file: its one line, without the line end.
    pub fn load(path: &Path) -> Result<Self, RelayError> {
        let text = Zeroizing::new(std::fs::read_to_string(path).map_err(|source| {
            RelayError::ReadFile {
                path: path.display().to_string(),
                source,
            }
        })?);
        let token = text.strip_suffix('\n').unwrap_or(&text);
        let token = token.strip_suffix('\r').unwrap_or(token);
        AdminToken::new(token).map_err(|problem| RelayError::BadAdminToken {
            path: path.display().to_string(),
            problem,
        })
    }

    /// Whether an `Authorization` header value carries this token (`Bearer <token>`, the
    /// scheme in any case). The token is compared in constant time.
    pub(crate) fn accepts(&self, authorization: Option<&[u8]>) -> bool {
        let Some(value) = authorization else {
            return false;
        };
        let Some((scheme, credentials)) = split_once(value, b' ') else {
            return false;
        };
        if !scheme.eq_ignore_ascii_case(b"bearer") {
            return false;
        }
        let credentials = trim_spaces(credentials);
        bool::from(credentials.ct_eq(self.0.as_slice()))
    }
}

impl fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AdminToken(..)")
    }
}

fn split_once(bytes: &[u8], at: u8) -> Option<(&[u8], &[u8])> {
    let i = bytes.iter().position(|&b| b == at)?;
    Some((&bytes[..i], &bytes[i + 1..]))
}

fn trim_spaces(mut bytes: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = bytes {
        bytes = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = bytes {
        bytes = rest;
    }
    bytes
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const TOKEN: &str = "0123456789abcdef0123";

    #[test]
    fn accepts_only_its_own_bearer_token() {
        let token = AdminToken::new(TOKEN).unwrap();
        assert!(token.accepts(Some(format!("Bearer {TOKEN}").as_bytes())));
        assert!(token.accepts(Some(format!("bearer  {TOKEN} ").as_bytes())));
        assert!(!token.accepts(None));
        assert!(!token.accepts(Some(TOKEN.as_bytes())));
        assert!(!token.accepts(Some(format!("Basic {TOKEN}").as_bytes())));
        assert!(!token.accepts(Some(format!("Bearer {TOKEN}x").as_bytes())));
        assert!(!token.accepts(Some(format!("Bearer {}", &TOKEN[1..]).as_bytes())));
        assert!(!token.accepts(Some(b"Bearer ")));
        assert!(!token.accepts(Some(b"")));
    }

    #[test]
    fn refuses_weak_or_unsendable_tokens() {
        assert_eq!(
            AdminToken::new("short").unwrap_err(),
            TokenProblem::TooShort
        );
        assert_eq!(
            AdminToken::new("0123456789 abcdef").unwrap_err(),
            TokenProblem::NotVisibleAscii
        );
        assert_eq!(
            AdminToken::new("0123456789abcdéf0").unwrap_err(),
            TokenProblem::NotVisibleAscii
        );
    }

    #[test]
    fn loads_one_line_and_never_shows_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, format!("{TOKEN}\n")).unwrap();
        let token = AdminToken::load(&path).unwrap();
        assert!(token.accepts(Some(format!("Bearer {TOKEN}").as_bytes())));
        assert!(!format!("{token:?}").contains(TOKEN));
        std::fs::write(&path, "\n").unwrap();
        assert!(matches!(
            AdminToken::load(&path),
            Err(RelayError::BadAdminToken {
                problem: TokenProblem::TooShort,
                ..
            })
        ));
        assert!(matches!(
            AdminToken::load(&dir.path().join("missing")),
            Err(RelayError::ReadFile { .. })
        ));
    }
}
