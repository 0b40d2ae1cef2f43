//! The one error type of this crate.
//!
//! Every failure of a ceremony comes back as a `ClientError` from the call that ran it; the
//! progress stream only reports what happened, it never carries the only copy of an error.
//! Failures of the connection say in which [`Phase`] they happened.

use std::fmt;

/// The phases of a hybrid ceremony, in order; each has its own deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Phase {
    /// Waiting for the phone's BLE advert after showing the QR code.
    Scan,
    /// Opening the WebSocket to the relay named by the advert.
    Connect,
    /// Noise handshake and the phone's post-handshake message.
    Handshake,
    /// Waiting for the phone to answer the CTAP request (the person is deciding).
    Reply,
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Phase::Scan => "scan for the phone's Bluetooth advert",
            Phase::Connect => "connection to the tunnel relay",
            Phase::Handshake => "handshake with the phone",
            Phase::Reply => "wait for the phone's answer",
        })
    }
}

/// Why a ceremony (or one of its pure building blocks) failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    // ----- WebAuthn input -----
    /// The options are not JSON of the expected shape.
    #[error("the {what} are not valid WebAuthn JSON")]
    OptionsJson {
        /// Which options: creation or request.
        what: &'static str,
        /// Where and why the JSON does not parse.
        #[source]
        source: serde_json::Error,
    },
    /// A binary field is not base64url.
    #[error("`{field}` is not valid base64url")]
    BadBase64 {
        /// The field's name in the JSON.
        field: &'static str,
    },
    /// The caller's origin is not a secure web origin.
    #[error("origin {origin:?} is not an https origin (or http on localhost)")]
    BadOrigin {
        /// The origin as given.
        origin: String,
    },
    /// The relying party id does not belong to the origin.
    #[error("relying party id {rp_id:?} is not a registrable suffix of origin {origin}")]
    RpIdMismatch {
        /// The relying party id as given.
        rp_id: String,
        /// The caller's origin.
        origin: String,
    },
    /// The relying party id is a public suffix (`co.uk`, `github.io`): a credential scoped to
    /// it would be valid for every site under it, so browsers refuse it and so does this.
    #[error("relying party id {rp_id:?} is a public suffix, not a registrable domain")]
    RpIdIsPublicSuffix {
        /// The relying party id as given.
        rp_id: String,
    },
    /// `user.id` must be 1 to 64 bytes (WebAuthn).
    #[error("user.id must be 1 to 64 bytes, got {len}")]
    BadUserId {
        /// The length given.
        len: usize,
    },
    /// Client data the caller built does not belong to this ceremony: `member` (`type`,
    /// `challenge` or `origin`) differs, or it is not a JSON object.
    #[error("the caller's clientDataJSON does not match the ceremony: {member}")]
    ClientDataMismatch {
        /// The member that differs.
        member: &'static str,
    },
    /// The challenge is empty.
    #[error("the challenge is empty")]
    EmptyChallenge,
    /// `pubKeyCredParams` lists no `public-key` algorithm.
    #[error("pubKeyCredParams lists no public-key credential type")]
    NoSupportedAlgorithm,
    /// The `prf` inputs ask for what WebAuthn does not allow here (`evalByCredential` at
    /// registration, or without an allow list).
    #[error("the prf extension's inputs are not supported here: {why}")]
    PrfNotSupported {
        /// What was asked.
        why: &'static str,
    },
    /// The `prf` inputs are malformed (an `evalByCredential` id that is empty or not in
    /// `allowCredentials`).
    #[error("the prf extension's inputs are invalid: {why}")]
    BadPrfInput {
        /// What is wrong.
        why: &'static str,
    },
    /// The `largeBlob` inputs ask for what WebAuthn does not allow here (`read`/`write` at
    /// registration, `support` at sign-in, both `read` and `write`, a write without exactly
    /// one allowed credential, or more than 64 KiB).
    #[error("the largeBlob extension's inputs are not supported here: {why}")]
    LargeBlobNotSupported {
        /// What was asked.
        why: &'static str,
    },
    /// A request needs an authenticator feature the phone does not offer.
    #[error("the phone's authenticator does not support {what}")]
    Unsupported {
        /// The feature, e.g. `discoverable credentials`.
        what: &'static str,
    },

    // ----- Authenticator replies -----
    /// Bytes that should be canonical CTAP2 CBOR are not (malformed, or with duplicate or
    /// unsorted map keys, non-minimal lengths, indefinite lengths, floats or tags).
    #[error("malformed CBOR in the authenticator's {what}")]
    MalformedCbor {
        /// Which reply or field.
        what: &'static str,
        /// What the strict decoder refused.
        #[source]
        source: cable_proto::Error,
    },
    /// The authenticator's reply is well-formed CBOR but not what CTAP2 specifies.
    #[error("the authenticator's {what} is invalid: {why}")]
    MalformedResponse {
        /// Which reply or field.
        what: &'static str,
        /// What is wrong with it.
        why: &'static str,
    },
    /// The phone's post-handshake message does not offer CTAP2.
    #[error("the phone does not offer CTAP2 over this tunnel")]
    NoCtapSupport,
    /// The phone offers only digital credentials (CTAP 2.3 feature `"dc"`) on this tunnel.
    #[error("this phone offers digital credentials only, not passkeys, on this connection")]
    DigitalCredentialsOnly,

    // ----- The session -----
    /// A phase did not finish before its deadline.
    #[error("the {phase} timed out")]
    Timeout {
        /// The phase that ran out of time.
        phase: Phase,
    },
    /// The caller cancelled the ceremony.
    #[error("cancelled during the {phase}")]
    Cancelled {
        /// The phase the ceremony was in.
        phase: Phase,
    },
    /// The Bluetooth scanner failed.
    #[error("Bluetooth scan failed")]
    Ble {
        /// The scanner's error.
        #[source]
        source: cable_ble::BleError,
    },
    /// The scanner stopped delivering adverts before the phone's arrived.
    #[error("the Bluetooth scan ended before the phone's advert was seen")]
    ScanEnded,
    /// The tunnel connection failed.
    #[error("the tunnel failed during the {phase}")]
    Transport {
        /// The phase the ceremony was in.
        phase: Phase,
        /// The tunnel's error.
        #[source]
        source: cable_transport::TransportError,
    },
    /// A protocol step failed (e.g. the Noise handshake did not authenticate: wrong QR code).
    #[error("protocol error during the {phase}")]
    Protocol {
        /// The phase the ceremony was in.
        phase: Phase,
        /// The protocol core's error.
        #[source]
        source: cable_proto::Error,
    },
    /// The phone sent a message that is not allowed at this point.
    #[error("unexpected {what} during the {phase}")]
    UnexpectedMessage {
        /// The phase the ceremony was in.
        phase: Phase,
        /// What arrived.
        what: &'static str,
    },

    /// The relay answered 410 Gone to a contact: the linked phone unlinked this computer (or
    /// its contact id was revoked). Offer the QR code instead.
    #[error("{name:?} is no longer linked to this computer{}", if *forgotten { " (forgotten here too)" } else { "" })]
    PhoneUnlinked {
        /// The phone's name in the store.
        name: String,
        /// Whether it was removed from [`crate::CeremonyConfig::linked_phones`].
        forgotten: bool,
    },

    /// The authenticator answered with a CTAP2 error status.
    #[error("the authenticator refused: CTAP status {status:#04x} ({})", ctap_status_name(*status))]
    Authenticator {
        /// The CTAP2 status byte.
        status: u8,
    },
}

impl ClientError {
    /// Whether the caller's input is at fault (the options JSON, the origin, the RP id), as
    /// opposed to the phone, the network or the person at the phone: a command line exits
    /// with its usage code for these, and retrying without changing the input cannot help.
    pub fn is_input_error(&self) -> bool {
        match self {
            ClientError::OptionsJson { .. }
            | ClientError::BadBase64 { .. }
            | ClientError::BadOrigin { .. }
            | ClientError::RpIdMismatch { .. }
            | ClientError::RpIdIsPublicSuffix { .. }
            | ClientError::BadUserId { .. }
            | ClientError::EmptyChallenge
            | ClientError::ClientDataMismatch { .. }
            | ClientError::PrfNotSupported { .. }
            | ClientError::BadPrfInput { .. }
            | ClientError::LargeBlobNotSupported { .. }
            | ClientError::NoSupportedAlgorithm => true,
            // Everything else comes from the phone, the network, the radio or the person at
            // the phone, where trying again with the same input can succeed.
            _ => false,
        }
    }
}

/// CTAP2 status names for the codes a hybrid phone realistically returns.
pub fn ctap_status_name(status: u8) -> &'static str {
    match status {
        0x00 => "CTAP2_OK",
        0x01 => "CTAP1_ERR_INVALID_COMMAND",
        0x02 => "CTAP1_ERR_INVALID_PARAMETER",
        0x03 => "CTAP1_ERR_INVALID_LENGTH",
        0x11 => "CTAP2_ERR_CBOR_UNEXPECTED_TYPE",
        0x12 => "CTAP2_ERR_INVALID_CBOR",
        0x14 => "CTAP2_ERR_MISSING_PARAMETER",
        0x19 => "CTAP2_ERR_CREDENTIAL_EXCLUDED",
        0x26 => "CTAP2_ERR_UNSUPPORTED_ALGORITHM",
        0x27 => "CTAP2_ERR_OPERATION_DENIED",
        0x28 => "CTAP2_ERR_KEY_STORE_FULL",
        0x2B => "CTAP2_ERR_UNSUPPORTED_OPTION",
        0x2C => "CTAP2_ERR_INVALID_OPTION",
        0x2D => "CTAP2_ERR_KEEPALIVE_CANCEL",
        0x2E => "CTAP2_ERR_NO_CREDENTIALS",
        0x2F => "CTAP2_ERR_USER_ACTION_TIMEOUT",
        0x36 => "CTAP2_ERR_PIN_REQUIRED",
        0x3C => "CTAP2_ERR_UV_BLOCKED",
        0x3F => "CTAP2_ERR_UV_INVALID",
        0x7F => "CTAP1_ERR_OTHER",
        _ => "unknown status",
    }
}

/// An error and its causes on one line, each after `": "`: how this workspace prints errors,
/// since no message repeats its source.
pub fn chain(err: &dyn std::error::Error) -> String {
    let mut line = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        line.push_str(": ");
        line.push_str(&cause.to_string());
        source = cause.source();
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_can_cross_threads_and_name_their_phase() {
        fn assert_send_sync<T: Send + Sync + 'static>() {}
        assert_send_sync::<ClientError>();
        let e = ClientError::Timeout {
            phase: Phase::Handshake,
        };
        assert_eq!(e.to_string(), "the handshake with the phone timed out");
        let e = ClientError::Authenticator { status: 0x27 };
        assert!(e.to_string().contains("CTAP2_ERR_OPERATION_DENIED"));
    }

    #[test]
    fn messages_leave_their_source_to_the_chain() {
        use std::error::Error as _;
        let source = cable_proto::Error::HandshakeFailed;
        let e = ClientError::Protocol {
            phase: Phase::Handshake,
            source: source.clone(),
        };
        assert_eq!(
            e.to_string(),
            "protocol error during the handshake with the phone"
        );
        assert_eq!(
            e.source().map(ToString::to_string),
            Some(source.to_string())
        );
        let json = serde_json::from_str::<serde_json::Value>("{").unwrap_err();
        let e = ClientError::OptionsJson {
            what: "creation options",
            source: json,
        };
        assert_eq!(
            e.to_string(),
            "the creation options are not valid WebAuthn JSON"
        );
    }

    #[test]
    fn input_errors_are_the_callers() {
        assert!(ClientError::EmptyChallenge.is_input_error());
        assert!(ClientError::BadOrigin {
            origin: "https://".into()
        }
        .is_input_error());
        assert!(!ClientError::ScanEnded.is_input_error());
        assert!(!ClientError::Authenticator { status: 0x27 }.is_input_error());
        assert!(!ClientError::Unsupported {
            what: "user verification"
        }
        .is_input_error());
    }
}
