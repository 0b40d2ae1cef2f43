//! CTAP2 envelopes as carried in type-1 messages: a command byte and CBOR
//! parameters going to the phone, a status byte and CBOR coming back. Both
//! CBOR parts are strictly canonical.

use crate::cbor::{self, Value};
use crate::error::{Error, Result};

/// CTAP2 command bytes used over hybrid.
pub mod command {
    /// authenticatorMakeCredential.
    pub const MAKE_CREDENTIAL: u8 = 0x01;
    /// authenticatorGetAssertion.
    pub const GET_ASSERTION: u8 = 0x02;
    /// authenticatorGetInfo (answered locally by desktops; phones may still get it).
    pub const GET_INFO: u8 = 0x04;
    /// authenticatorClientPIN.
    pub const CLIENT_PIN: u8 = 0x06;
    /// authenticatorGetNextAssertion.
    pub const GET_NEXT_ASSERTION: u8 = 0x08;
    /// authenticatorSelection (ends the session on Chrome-as-phone).
    pub const SELECTION: u8 = 0x0b;
}

/// A few CTAP2 status codes.
pub mod status {
    /// CTAP2_OK.
    pub const OK: u8 = 0x00;
    /// CTAP1_ERR_INVALID_COMMAND.
    pub const INVALID_COMMAND: u8 = 0x01;
    /// CTAP1_ERR_INVALID_PARAMETER.
    pub const INVALID_PARAMETER: u8 = 0x02;
    /// CTAP1_ERR_INVALID_LENGTH.
    pub const INVALID_LENGTH: u8 = 0x03;
    /// CTAP2_ERR_INVALID_CBOR.
    pub const INVALID_CBOR: u8 = 0x12;
    /// CTAP2_ERR_MISSING_PARAMETER.
    pub const MISSING_PARAMETER: u8 = 0x14;
    /// CTAP2_ERR_CREDENTIAL_EXCLUDED.
    pub const CREDENTIAL_EXCLUDED: u8 = 0x19;
    /// CTAP2_ERR_UNSUPPORTED_ALGORITHM.
    pub const UNSUPPORTED_ALGORITHM: u8 = 0x26;
    /// CTAP2_ERR_OPERATION_DENIED.
    pub const OPERATION_DENIED: u8 = 0x27;
    /// CTAP2_ERR_INVALID_OPTION.
    pub const INVALID_OPTION: u8 = 0x2c;
    /// CTAP2_ERR_NO_CREDENTIALS.
    pub const NO_CREDENTIALS: u8 = 0x2e;
    /// CTAP2_ERR_KEEPALIVE_CANCEL.
    pub const KEEPALIVE_CANCEL: u8 = 0x2d;
    /// CTAP2_ERR_USER_ACTION_TIMEOUT.
    pub const USER_ACTION_TIMEOUT: u8 = 0x2f;
    /// CTAP2_ERR_NOT_ALLOWED.
    pub const NOT_ALLOWED: u8 = 0x30;
    /// CTAP2_ERR_PIN_NOT_SET.
    pub const PIN_NOT_SET: u8 = 0x35;
    /// CTAP2_ERR_INVALID_SUBCOMMAND.
    pub const INVALID_SUBCOMMAND: u8 = 0x3e;
    /// CTAP1_ERR_OTHER.
    pub const OTHER: u8 = 0x7f;
}

fn optional_cbor(bytes: &[u8]) -> Result<Option<Value>> {
    if bytes.is_empty() {
        Ok(None)
    } else {
        cbor::decode(bytes).map(Some)
    }
}

/// A CTAP2 request: command byte ‖ optional CBOR parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CtapRequest {
    /// The command byte (see [`command`]).
    pub command: u8,
    /// The parameters, usually a map.
    pub params: Option<Value>,
}

impl CtapRequest {
    /// A request with parameters.
    pub fn new(command: u8, params: Value) -> CtapRequest {
        CtapRequest {
            command,
            params: Some(params),
        }
    }

    /// The bytes after the type-1 message byte.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![self.command];
        if let Some(p) = &self.params {
            p.encode_into(&mut out);
        }
        out
    }

    /// Parses the bytes after the type-1 message byte.
    pub fn decode(bytes: &[u8]) -> Result<CtapRequest> {
        let (&command, rest) = bytes.split_first().ok_or(Error::EmptyCtap)?;
        Ok(CtapRequest {
            command,
            params: optional_cbor(rest)?,
        })
    }
}

/// A CTAP2 response: status byte ‖ optional CBOR body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CtapResponse {
    /// The status byte (see [`status`]).
    pub status: u8,
    /// The body, usually a map; normally absent on errors.
    pub body: Option<Value>,
}

impl CtapResponse {
    /// A successful response.
    pub fn ok(body: Value) -> CtapResponse {
        CtapResponse {
            status: status::OK,
            body: Some(body),
        }
    }

    /// An error response (status only).
    pub fn error(status: u8) -> CtapResponse {
        CtapResponse { status, body: None }
    }

    /// The bytes after the type-1 message byte.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![self.status];
        if let Some(b) = &self.body {
            b.encode_into(&mut out);
        }
        out
    }

    /// Parses the bytes after the type-1 message byte.
    pub fn decode(bytes: &[u8]) -> Result<CtapResponse> {
        let (&status, rest) = bytes.split_first().ok_or(Error::EmptyCtap)?;
        Ok(CtapResponse {
            status,
            body: optional_cbor(rest)?,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn envelopes() {
        let r = CtapRequest::decode(&[command::GET_INFO]).unwrap();
        assert_eq!(
            r,
            CtapRequest {
                command: 4,
                params: None
            }
        );
        assert_eq!(r.encode(), vec![4]);
        assert_eq!(CtapRequest::decode(&[]), Err(Error::EmptyCtap));
        assert!(CtapRequest::decode(&[1, 0xa2, 0x02, 0x00, 0x01, 0x00]).is_err());
        let resp = CtapResponse::ok(Value::map([(Value::Unsigned(1), Value::Text("x".into()))]));
        assert_eq!(CtapResponse::decode(&resp.encode()).unwrap(), resp);
        assert_eq!(
            CtapResponse::decode(&[0x2e]).unwrap(),
            CtapResponse::error(0x2e)
        );
    }
}
