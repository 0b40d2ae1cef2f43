//! Request paths the tunnel listener serves.

use crate::error::RelayError;
use crate::ids::{RoutingId, TunnelId};

/// What a request path asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// `GET /cable/new/<tunnel id>`: a phone opens a tunnel.
    New(TunnelId),
    /// `GET /cable/connect/<routing id>/<tunnel id>`: a computer joins a waiting phone.
    Connect(RoutingId, TunnelId),
    /// `GET /cable/contact/<contact id>`: state-assisted transactions (not served yet).
    Contact,
}

impl Route {
    /// Parses a request target (path plus optional query, which is ignored).
    pub fn parse(target: &str) -> Result<Self, RelayError> {
        let path = target.split_once('?').map_or(target, |(p, _)| p);
        let rest = path
            .strip_prefix("/cable/")
            .ok_or(RelayError::UnknownPath)?;
        if let Some(id) = rest.strip_prefix("new/") {
            return Ok(Route::New(TunnelId::parse_hex(id)?));
        }
        if let Some(ids) = rest.strip_prefix("connect/") {
            let (routing, tunnel) = ids.split_once('/').ok_or(RelayError::UnknownPath)?;
            return Ok(Route::Connect(
                RoutingId::parse_hex(routing)?,
                TunnelId::parse_hex(tunnel)?,
            ));
        }
        if rest.starts_with("contact/") {
            return Ok(Route::Contact);
        }
        Err(RelayError::UnknownPath)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const T: &str = "00112233445566778899aabbccddeeff";

    #[test]
    fn parses_new_and_connect() {
        assert_eq!(
            Route::parse(&format!("/cable/new/{T}")).unwrap(),
            Route::New(TunnelId::parse_hex(T).unwrap())
        );
        let r = Route::parse(&format!("/cable/connect/ABCDEF/{}", T.to_uppercase())).unwrap();
        assert_eq!(
            r,
            Route::Connect(
                RoutingId([0xab, 0xcd, 0xef]),
                TunnelId::parse_hex(T).unwrap()
            )
        );
        assert_eq!(
            Route::parse(&format!("/cable/new/{T}?x=1")).unwrap(),
            Route::New(TunnelId::parse_hex(T).unwrap())
        );
        assert_eq!(Route::parse("/cable/contact/abc").unwrap(), Route::Contact);
    }

    #[test]
    fn rejects_malformed_paths() {
        for bad in [
            "/",
            "/cable",
            "/cable/new",
            "/cable/new/",
            "/cable/new/00",
            &format!("/cable/new/{T}/"),
            &format!("/cable/connect/{T}"),
            &format!("/cable/connect/ABCDE/{T}"),
            &format!("/cable/connect/ABCDEF/{T}/x"),
            &format!("/CABLE/new/{T}"),
            "/cable/other/x",
        ] {
            assert!(Route::parse(bad).is_err(), "{bad}");
        }
    }
}
