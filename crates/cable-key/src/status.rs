//! The CTAP status bytes the bridge answers with (cable-proto's), and what a failed
//! ceremony becomes.

use cable_client::ClientError;

pub use cable_proto::ctap::status::*;

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
