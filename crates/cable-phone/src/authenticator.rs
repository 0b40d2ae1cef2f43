//! The interface between a phone session and whatever answers CTAP2 requests.

use std::fmt;

use cable_proto::cbor::Value;

/// A CTAP2 status byte other than success (e.g. `0x27` operation denied, `0x2E` no credentials).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CtapStatus(pub u8);

impl fmt::Display for CtapStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CTAP status {:#04x}", self.0)
    }
}

/// Answers the CTAP2 requests a computer sends over the tunnel.
///
/// Parameters arrive as decoded (canonical, strictly parsed) CBOR maps; responses are returned
/// as maps and encoded canonically by the session. Implementations do their own user presence
/// and verification: hybrid carries no PIN protocol, so `getInfo` should say `uv: true` and
/// list no `pinUvAuthProtocols`.
#[async_trait::async_trait]
pub trait Authenticator: Send + Sync {
    /// The authenticatorGetInfo response map (sent in the post-handshake message).
    async fn get_info(&self) -> Value;

    /// authenticatorMakeCredential (command 0x01).
    async fn make_credential(&mut self, params: Value) -> Result<Value, CtapStatus>;

    /// authenticatorGetAssertion (command 0x02).
    async fn get_assertion(&mut self, params: Value) -> Result<Value, CtapStatus>;
}

#[async_trait::async_trait]
impl<A: Authenticator + ?Sized> Authenticator for Box<A> {
    async fn get_info(&self) -> Value {
        (**self).get_info().await
    }

    async fn make_credential(&mut self, params: Value) -> Result<Value, CtapStatus> {
        (**self).make_credential(params).await
    }

    async fn get_assertion(&mut self, params: Value) -> Result<Value, CtapStatus> {
        (**self).get_assertion(params).await
    }
}
