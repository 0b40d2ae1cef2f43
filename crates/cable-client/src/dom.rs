//! What a failed ceremony is to a web page: the `DOMException` a browser's
//! `navigator.credentials.create()` / `get()` rejects with (WebAuthn Level 3 §5.1.3 and
//! §5.1.4, and the authenticator operations' error codes in §6.3), and whether the person
//! can simply try again.
//!
//! Browsers fold most failures into `NotAllowedError` on purpose, so that a page cannot
//! tell "no such credential" from "the person said no" or "the phone was out of range";
//! this mapping does the same, and keeps the distinct names for what the specification
//! names: an excluded credential, an unsupported algorithm or feature, a bad origin or
//! relying party id, malformed options and the caller's own abort.

use std::fmt;

use cable_proto::ctap::status;

use crate::ClientError;

/// The `DOMException` names a WebAuthn call rejects with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DomException {
    /// The person declined or did not act in time, the phone has no matching credential,
    /// or the phone could not be reached: browsers do not say which.
    NotAllowedError,
    /// makeCredential: the phone already holds a credential in `excludeCredentials`.
    InvalidStateError,
    /// No `pubKeyCredParams` algorithm the phone supports, or none of type `public-key`; `prf`
    /// inputs WebAuthn does not allow in this ceremony.
    NotSupportedError,
    /// The phone cannot do what the options require (a discoverable credential, user
    /// verification).
    ConstraintError,
    /// The origin is not a secure origin, or the relying party id is not its registrable
    /// suffix (or is a public suffix).
    SecurityError,
    /// The options are malformed (JSON, base64url, user id length, empty challenge).
    TypeError,
    /// An extension's input is malformed (a `prf.evalByCredential` id not in the allow list).
    SyntaxError,
    /// The caller aborted (its `AbortSignal`).
    AbortError,
    /// The phone's answer could not be understood.
    UnknownError,
}

impl DomException {
    /// The exception's name as a page sees it (`error.name`).
    pub fn name(self) -> &'static str {
        match self {
            DomException::NotAllowedError => "NotAllowedError",
            DomException::InvalidStateError => "InvalidStateError",
            DomException::NotSupportedError => "NotSupportedError",
            DomException::ConstraintError => "ConstraintError",
            DomException::SecurityError => "SecurityError",
            DomException::TypeError => "TypeError",
            DomException::SyntaxError => "SyntaxError",
            DomException::AbortError => "AbortError",
            DomException::UnknownError => "UnknownError",
        }
    }
}

impl fmt::Display for DomException {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl ClientError {
    /// The `DOMException` a browser would reject the WebAuthn call with.
    pub fn dom_exception(&self) -> DomException {
        match self {
            ClientError::OptionsJson { .. }
            | ClientError::BadBase64 { .. }
            | ClientError::BadUserId { .. }
            | ClientError::EmptyChallenge => DomException::TypeError,
            ClientError::BadOrigin { .. }
            | ClientError::RpIdMismatch { .. }
            | ClientError::RpIdIsPublicSuffix { .. }
            | ClientError::ClientDataMismatch { member: "origin" } => DomException::SecurityError,
            ClientError::ClientDataMismatch { .. } => DomException::TypeError,
            ClientError::NoSupportedAlgorithm
            | ClientError::PrfNotSupported { .. }
            | ClientError::LargeBlobNotSupported { .. } => DomException::NotSupportedError,
            ClientError::BadPrfInput { .. } => DomException::SyntaxError,
            ClientError::Unsupported { .. } => DomException::ConstraintError,
            ClientError::Cancelled { .. } => DomException::AbortError,
            ClientError::Authenticator { status } => match *status {
                status::CREDENTIAL_EXCLUDED => DomException::InvalidStateError,
                status::UNSUPPORTED_ALGORITHM => DomException::NotSupportedError,
                _ => DomException::NotAllowedError,
            },
            ClientError::MalformedCbor { .. }
            | ClientError::MalformedResponse { .. }
            | ClientError::UnexpectedMessage { .. } => DomException::UnknownError,
            // Out of range, offline, declined, timed out, a phone without passkeys here,
            // an unlinked phone: all look alike to a page.
            _ => DomException::NotAllowedError,
        }
    }

    /// Whether the person can try again as things are (scan again, unlock or bring the
    /// phone closer, confirm this time, use another phone) with a chance of success; false
    /// where the request itself, or this phone's answer to it, would have to change.
    pub fn is_retryable(&self) -> bool {
        match self {
            ClientError::Timeout { .. }
            | ClientError::Cancelled { .. }
            | ClientError::Ble { .. }
            | ClientError::ScanEnded
            | ClientError::Transport { .. }
            // A handshake that does not authenticate is a stale or misread QR code.
            | ClientError::Protocol { .. }
            // Next time the QR code is offered instead.
            | ClientError::PhoneUnlinked { .. }
            // Another phone may have the passkey, or offer passkeys.
            | ClientError::NoCtapSupport
            | ClientError::DigitalCredentialsOnly => true,
            ClientError::Authenticator { status } => matches!(
                *status,
                status::OPERATION_DENIED
                    | status::KEEPALIVE_CANCEL
                    | status::USER_ACTION_TIMEOUT
                    | status::NO_CREDENTIALS
                    | status::NOT_ALLOWED
                    | status::OTHER
            ),
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Phase;

    fn refused(status: u8) -> ClientError {
        ClientError::Authenticator { status }
    }

    #[test]
    fn what_the_specification_names_keeps_its_name() {
        let cases = [
            (
                refused(status::CREDENTIAL_EXCLUDED),
                DomException::InvalidStateError,
                false,
            ),
            (
                refused(status::UNSUPPORTED_ALGORITHM),
                DomException::NotSupportedError,
                false,
            ),
            (
                ClientError::NoSupportedAlgorithm,
                DomException::NotSupportedError,
                false,
            ),
            (
                ClientError::Unsupported {
                    what: "discoverable credentials",
                },
                DomException::ConstraintError,
                false,
            ),
            (
                ClientError::BadOrigin {
                    origin: "http://example.com".into(),
                },
                DomException::SecurityError,
                false,
            ),
            (
                ClientError::RpIdMismatch {
                    rp_id: "other.example".into(),
                    origin: "https://example.com".into(),
                },
                DomException::SecurityError,
                false,
            ),
            (
                ClientError::RpIdIsPublicSuffix {
                    rp_id: "co.uk".into(),
                },
                DomException::SecurityError,
                false,
            ),
            (ClientError::EmptyChallenge, DomException::TypeError, false),
            (
                ClientError::BadUserId { len: 65 },
                DomException::TypeError,
                false,
            ),
            (
                ClientError::BadBase64 { field: "challenge" },
                DomException::TypeError,
                false,
            ),
            (
                ClientError::Cancelled { phase: Phase::Scan },
                DomException::AbortError,
                true,
            ),
        ];
        for (error, dom, retryable) in cases {
            assert_eq!(error.dom_exception(), dom, "{error}");
            assert_eq!(error.is_retryable(), retryable, "{error}");
            // The caller's input is never worth retrying unchanged.
            if error.is_input_error() {
                assert!(!error.is_retryable(), "{error}");
            }
        }
    }

    #[test]
    fn the_rest_is_not_allowed_as_browsers_say() {
        for (error, retryable) in [
            (refused(status::OPERATION_DENIED), true),
            (refused(status::NO_CREDENTIALS), true),
            (refused(status::USER_ACTION_TIMEOUT), true),
            (refused(status::KEEPALIVE_CANCEL), true),
            (refused(status::INVALID_OPTION), false),
            (ClientError::Timeout { phase: Phase::Scan }, true),
            (ClientError::ScanEnded, true),
            (
                ClientError::PhoneUnlinked {
                    name: "pixel".into(),
                    forgotten: true,
                },
                true,
            ),
            (ClientError::DigitalCredentialsOnly, true),
        ] {
            assert_eq!(
                error.dom_exception(),
                DomException::NotAllowedError,
                "{error}"
            );
            assert_eq!(error.is_retryable(), retryable, "{error}");
        }
    }

    #[test]
    fn a_phone_that_answers_nonsense_is_an_unknown_error() {
        let error = ClientError::MalformedResponse {
            what: "getAssertion reply",
            why: "no signature",
        };
        assert_eq!(error.dom_exception(), DomException::UnknownError);
        assert_eq!(error.dom_exception().name(), "UnknownError");
        assert!(!error.is_retryable());
    }
}
