//! The crate's single error type.
//!
//! Every parser in this crate returns [`Error`]; each variant says what was
//! wrong with the input so that callers (and the `cable inspect` CLI) can
//! report a precise reason without string matching.

/// What was wrong with a CBOR item (see [`Error::Cbor`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CborErrorKind {
    /// The input ended in the middle of an item.
    #[error("truncated")]
    Truncated,
    /// An integer or length was not encoded in its shortest form.
    #[error("non-minimal integer or length encoding")]
    NonMinimal,
    /// Indefinite-length items are not canonical.
    #[error("indefinite length")]
    IndefiniteLength,
    /// Map keys were not in canonical (major type, length, bytes) order.
    #[error("map keys out of canonical order")]
    UnsortedKeys,
    /// The same map key appeared twice.
    #[error("duplicate map key")]
    DuplicateKey,
    /// Bytes followed the top-level item.
    #[error("trailing bytes after the item")]
    TrailingBytes,
    /// Text was not valid UTF-8.
    #[error("text string is not UTF-8")]
    InvalidUtf8,
    /// Tags, floats and simple values other than false/true/null are not used by CTAP.
    #[error("unsupported item (initial byte {initial_byte:#04x})")]
    Unsupported {
        /// The initial byte of the rejected item.
        initial_byte: u8,
    },
    /// Only integers and strings are accepted as map keys.
    #[error("unsupported map key type")]
    UnsupportedKey,
    /// Nesting deeper than the limit.
    #[error("nested too deeply")]
    TooDeep,
}

/// What was wrong with a hex identifier (see [`Error::BadHexId`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HexIdErrorKind {
    /// The text is not exactly twice the id's byte length.
    #[error("expected {expected} hex characters, got {got}")]
    Length {
        /// Required number of hex characters.
        expected: usize,
        /// Length of the input in bytes.
        got: usize,
    },
    /// A byte that is not an ASCII hex digit.
    #[error("invalid hex character at position {position}")]
    Char {
        /// Byte offset of the first bad character.
        position: usize,
    },
}

/// Which part of a tunnel-server request path was wrong (see [`Error::BadTunnelPath`]).
///
/// No variant carries the input, so a refused path can be logged without leaking a
/// tunnel id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TunnelPathErrorKind {
    /// The path does not start with `/cable/`.
    #[error("not under /cable/")]
    NotCable,
    /// The segment after `/cable/` is not `new`, `connect` or `contact`.
    #[error("unknown endpoint (known: new, connect, contact)")]
    UnknownEndpoint,
    /// The endpoint has too few or too many segments after it.
    #[error("/cable/{endpoint}/ takes {expected} segment(s), got {got}")]
    SegmentCount {
        /// `new`, `connect` or `contact`.
        endpoint: &'static str,
        /// Segments the endpoint takes.
        expected: usize,
        /// Segments found.
        got: usize,
    },
    /// The routing id segment of `connect`.
    #[error("routing id: {0}")]
    RoutingId(HexIdErrorKind),
    /// The tunnel id segment of `new` or `connect`.
    #[error("tunnel id: {0}")]
    TunnelId(HexIdErrorKind),
    /// The contact id of `contact` is empty or not base64url without padding.
    #[error("contact id is empty or not base64url without padding")]
    ContactId,
}

/// Everything that can go wrong in this crate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    // --- digits -----------------------------------------------------------
    /// A character other than ASCII `0`..`9` in a digit string.
    #[error("digit string: non-digit character at position {position}")]
    NonDigit {
        /// Index of the offending byte.
        position: usize,
    },
    /// The digit count leaves a remainder that no byte count encodes to.
    #[error("digit string: invalid length {len} (remainder {remainder} digits is not one of 0,3,5,8,10,13,15)")]
    BadDigitCount {
        /// Total number of digits.
        len: usize,
        /// Digits left after the 17-digit groups.
        remainder: usize,
    },
    /// A digit group encodes a value too large for its byte count.
    #[error("digit string: group at position {position} does not fit in {bytes} bytes")]
    DigitGroupOverflow {
        /// Index of the group's first digit.
        position: usize,
        /// Number of bytes the group must fit in.
        bytes: usize,
    },

    // --- CBOR ---------------------------------------------------------------
    /// Malformed or non-canonical CBOR.
    #[error("CBOR at byte {offset}: {kind}")]
    Cbor {
        /// Byte offset where the problem was found.
        offset: usize,
        /// What was wrong.
        kind: CborErrorKind,
    },

    // --- QR -------------------------------------------------------------------
    /// The text does not start with `FIDO:/` (any case).
    #[error("QR: missing FIDO:/ prefix")]
    QrPrefix,
    /// The QR payload is not a CBOR map.
    #[error("QR: payload is not a CBOR map")]
    QrNotAMap,
    /// A required QR key is absent.
    #[error("QR: required key {key} is missing")]
    QrMissingKey {
        /// The CBOR map key.
        key: u64,
    },
    /// A QR key holds a value of the wrong CBOR type.
    #[error("QR: key {key} must be {expected}")]
    QrWrongType {
        /// The CBOR map key.
        key: u64,
        /// The type that was required.
        expected: &'static str,
    },
    /// QR key 0 is not a 33-byte compressed P-256 point on the curve.
    #[error("QR: key 0 is not a valid compressed P-256 public key ({len} bytes)")]
    QrBadPublicKey {
        /// Length of the byte string found.
        len: usize,
    },
    /// QR key 1 is not exactly 16 bytes.
    #[error("QR: key 1 (secret) must be 16 bytes, got {len}")]
    QrBadSecretLength {
        /// Length of the byte string found.
        len: usize,
    },

    // --- keys -------------------------------------------------------------------
    /// A P-256 public key did not decode to a point on the curve.
    #[error("invalid P-256 public key ({len} bytes)")]
    BadPublicKey {
        /// Length of the encoding given.
        len: usize,
    },
    /// A P-256 private key was zero or not below the group order.
    #[error("invalid P-256 private key")]
    BadPrivateKey,
    /// Seed-based key derivation produced zero (probability 2^-256).
    #[error("seed derivation produced the zero scalar")]
    DerivedKeyZero,
    /// An HKDF output length above 255 * 32 bytes was requested.
    #[error("HKDF output of {len} bytes is too long")]
    DeriveLength {
        /// The requested length.
        len: usize,
    },

    // --- ids and domains --------------------------------------------------------
    /// A hex identifier had the wrong length or a non-hex character.
    #[error("{what}: {kind}")]
    BadHexId {
        /// Which identifier was being parsed.
        what: &'static str,
        /// What was wrong.
        kind: HexIdErrorKind,
    },
    /// Tunnel-server domain ids 2..=255 are unassigned.
    #[error("tunnel-server domain id {id} is unassigned")]
    UnassignedDomain {
        /// The rejected id.
        id: u16,
    },
    /// A tunnel-server request path is not one of new / connect / contact.
    #[error("tunnel path: {kind}")]
    BadTunnelPath {
        /// Which part of the path was wrong, and how.
        kind: TunnelPathErrorKind,
    },

    // --- advert -------------------------------------------------------------------
    /// BLE service data shorter than the 20-byte advert.
    #[error("advert: {len} bytes, need at least 20")]
    AdvertTooShort {
        /// Length received.
        len: usize,
    },
    /// The advert's MAC does not match: it was made with another key.
    #[error("advert: authentication tag mismatch (not for this key)")]
    AdvertTagMismatch,
    /// The decrypted EID's reserved first byte was not zero.
    #[error("advert: reserved byte is {value:#04x}, must be 0")]
    AdvertReservedByte {
        /// The byte found.
        value: u8,
    },
    /// The decrypted EID names an unassigned tunnel-server domain.
    #[error("advert: unknown tunnel-server domain id {id}")]
    AdvertUnknownDomain {
        /// The decoded id.
        id: u16,
    },

    // --- handshake -----------------------------------------------------------------
    /// A Noise handshake message was not exactly 81 bytes.
    #[error("handshake message must be 81 bytes, got {len}")]
    HandshakeLength {
        /// Length received.
        len: usize,
    },
    /// The peer's handshake message did not authenticate (wrong PSK, key or tampering)
    /// or carried an invalid point.
    #[error("handshake failed: peer message did not authenticate")]
    HandshakeFailed,
    /// A handshake message carried a non-empty payload.
    #[error("handshake message carried a {len}-byte payload, must be empty")]
    HandshakePayload {
        /// Payload length.
        len: usize,
    },
    /// The Noise library refused to set up or run the handshake.
    #[error("handshake setup failed: {reason}")]
    HandshakeSetup {
        /// Static description from the Noise library's error.
        reason: &'static str,
    },

    // --- transport cipher ----------------------------------------------------------------
    /// A transport message failed AES-GCM authentication.
    #[error("transport message did not authenticate")]
    DecryptFailed,
    /// A decrypted transport message was empty (not even a padding byte).
    #[error("transport message has an empty plaintext")]
    EmptyPlaintext,
    /// The padding count byte exceeds the plaintext length.
    #[error("transport padding count {count} exceeds message length {len}")]
    BadPadding {
        /// The trailing count byte.
        count: u8,
        /// The decrypted length.
        len: usize,
    },
    /// AES-GCM refused to encrypt (only possible for plaintexts beyond 64 GiB).
    #[error("transport message could not be encrypted")]
    EncryptFailed,
    /// More than 2^24 - 1 messages in one direction.
    #[error("transport message counter exhausted")]
    CounterExhausted,
    /// A transport message too short to hold the AES-GCM tag.
    #[error("transport message of {len} bytes is shorter than the 16-byte tag")]
    CiphertextTooShort {
        /// Length received.
        len: usize,
    },

    // --- messages ------------------------------------------------------------------------
    /// A framed message had no type byte.
    #[error("empty message")]
    EmptyMessage,
    /// A framed message's type byte is not 0..=3.
    #[error("unknown message type {value}")]
    UnknownMessageType {
        /// The type byte.
        value: u8,
    },
    /// A JSON message payload is not UTF-8.
    #[error("JSON message is not UTF-8")]
    JsonNotUtf8,
    /// The post-handshake message decodes neither as revision 1 nor as a padded revision 0 map.
    #[error("post-handshake message is neither a CBOR map nor a padded CBOR map")]
    PostHandshakeUndecodable,
    /// A CBOR map field has the wrong type or is missing.
    #[error("{context}: key {key} {problem}")]
    BadField {
        /// Which structure was being parsed.
        context: &'static str,
        /// The CBOR map key.
        key: u64,
        /// What was wrong.
        problem: &'static str,
    },
    /// A CBOR structure was not a map where one was required.
    #[error("{context}: not a CBOR map")]
    NotAMap {
        /// Which structure was being parsed.
        context: &'static str,
    },
    /// The linking signature did not verify.
    #[error("linking signature does not verify")]
    BadLinkingSignature,
    /// A CTAP message was empty.
    #[error("empty CTAP message")]
    EmptyCtap,
    /// A hex header value had invalid hex.
    #[error("invalid hex")]
    BadHex,

    // --- sessions ----------------------------------------------------------------------------
    /// A message arrived that the session's state does not allow.
    #[error("unexpected message: {what}")]
    UnexpectedMessage {
        /// What arrived, and when.
        what: &'static str,
    },
    /// The phone's post-handshake message lacks the `"ctap"` feature.
    #[error("the phone does not offer CTAP2")]
    NoCtapSupport,
    /// The phone's post-handshake message offers only the `"dc"` feature (digital
    /// credentials, CTAP 2.3): it will not answer CTAP2 on this tunnel.
    #[error("the phone offers digital credentials only, not passkeys")]
    DigitalCredentialsOnly,
    /// The relay promised a connect signal, but the first message was not the single byte 00.
    #[error("bad connection signal: the first message from the relay was not 00")]
    BadConnectSignal,
    /// A message type the phone does not serve (JSON without the `"dc"` feature).
    #[error("message type {message_type} is not served")]
    UnsupportedMessage {
        /// The type byte.
        message_type: u8,
    },
    /// A CTAP command the phone does not serve over hybrid.
    #[error("CTAP command {command:#04x} is not served")]
    UnsupportedCommand {
        /// The command byte.
        command: u8,
    },
    /// The computer asked for getInfo more often than any computer needs to.
    #[error("more than {limit} getInfo requests in one session")]
    TooManyGetInfo {
        /// How many are answered.
        limit: usize,
    },
    /// The caller asked a session for something its current state does not allow.
    #[error("{operation} is not possible while the session is {state}")]
    WrongState {
        /// What was asked.
        operation: &'static str,
        /// The state the session was in.
        state: &'static str,
    },
    /// The authenticator's getInfo response is not a canonical CBOR map that the strict
    /// decoder reads back.
    #[error("the authenticator's getInfo is not a canonical CBOR map")]
    BadGetInfo,
}

impl Error {
    pub(crate) fn cbor(offset: usize, kind: CborErrorKind) -> Self {
        Error::Cbor { offset, kind }
    }
}

/// Shorthand for results in this crate.
pub type Result<T, E = Error> = core::result::Result<T, E>;
