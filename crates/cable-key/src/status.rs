//! The CTAP status bytes the bridge answers with itself, and what a failed ceremony becomes.

use cable_client::ClientError;

/// CTAP1_ERR_INVALID_COMMAND: a command this key does not have (reset, clientPin, …).
pub const INVALID_COMMAND: u8 = 0x01;
/// CTAP1_ERR_INVALID_LENGTH: parameters for a command that takes none.
pub const INVALID_LENGTH: u8 = 0x03;
/// CTAP2_ERR_INVALID_CBOR: parameters that are not canonical CBOR.
pub const INVALID_CBOR: u8 = 0x12;
/// CTAP2_ERR_MISSING_PARAMETER: a required parameter is absent or of the wrong type.
pub const MISSING_PARAMETER: u8 = 0x14;
/// CTAP2_ERR_OPERATION_DENIED: the person declined at the bridge.
pub const OPERATION_DENIED: u8 = 0x27;
/// CTAP2_ERR_INVALID_OPTION: `up: false` on makeCredential.
pub const INVALID_OPTION: u8 = 0x2c;
/// CTAP2_ERR_KEEPALIVE_CANCEL: the host cancelled.
pub const KEEPALIVE_CANCEL: u8 = 0x2d;
/// CTAP2_ERR_NO_CREDENTIALS: the answer to a silent probe.
pub const NO_CREDENTIALS: u8 = 0x2e;
/// CTAP2_ERR_USER_ACTION_TIMEOUT: the phone never came, or the person never decided.
pub const USER_ACTION_TIMEOUT: u8 = 0x2f;
/// CTAP2_ERR_NOT_ALLOWED: getNextAssertion with nothing left to give.
pub const NOT_ALLOWED: u8 = 0x30;
/// CTAP2_ERR_PIN_NOT_SET: the answer to a zero-length pinUvAuthParam once touched.
pub const PIN_NOT_SET: u8 = 0x35;
/// CTAP1_ERR_OTHER: the phone could not be reached or the tunnel failed.
pub const OTHER: u8 = 0x7f;

/// The status a host gets when the ceremony ended without the phone's answer.
pub fn for_failure(error: &ClientError) -> u8 {
    match error {
        ClientError::Cancelled { .. } => KEEPALIVE_CANCEL,
        ClientError::Timeout { .. } => USER_ACTION_TIMEOUT,
        // The phone's own verdict: pass it on as a key would give it.
        ClientError::Authenticator { status } => *status,
        _ => OTHER,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cable_client::Phase;

    #[test]
    fn failures_map_to_what_hosts_understand() {
        assert_eq!(
            for_failure(&ClientError::Cancelled { phase: Phase::Scan }),
            KEEPALIVE_CANCEL
        );
        assert_eq!(
            for_failure(&ClientError::Timeout {
                phase: Phase::Reply
            }),
            USER_ACTION_TIMEOUT
        );
        assert_eq!(
            for_failure(&ClientError::Authenticator { status: 0x27 }),
            0x27
        );
        assert_eq!(for_failure(&ClientError::ScanEnded), OTHER);
    }
}
