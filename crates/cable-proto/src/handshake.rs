//! The Noise handshakes, run by `snow` (P-256, AES-GCM, SHA-256).
//!
//! * QR flow: `Noise_KNpsk0_P256_AESGCM_SHA256`, prologue `01`. The desktop
//!   (initiator) uses its QR key as static key; the phone (responder) knows
//!   its public half from the QR code.
//! * State-assisted flow: `Noise_NKpsk0_P256_AESGCM_SHA256`, prologue `00`.
//!   The phone (responder) uses its long-term identity key; the desktop knows
//!   the public half from earlier linking data.
//!
//! Both messages are exactly 81 bytes (65-byte ephemeral point ‖ 16-byte tag
//! over an empty payload). The desktop is always the initiator.
//!
//! Ephemeral keys come from the caller's RNG: 32 bytes are drawn (again
//! only if they are not a valid scalar) and handed to snow through a
//! resolver whose RNG yields exactly those bytes. So there is no global RNG,
//! and a test that supplies an RNG replaying known bytes reproduces a
//! transcript through the same code path as production.

use p256::{PublicKey, SecretKey};
use snow::params::{CipherChoice, DHChoice, HashChoice, NoiseParams};
use snow::resolvers::{CryptoResolver, DefaultResolver};
use snow::types::{Cipher, Dh, Hash, Random};
use snow::HandshakeState;
use zeroize::Zeroizing;

use crate::crypter::Crypter;
use crate::derive::Psk;
use crate::error::{Error, Result};
use crate::keys;
use crate::qr::QrKey;

/// Length of both handshake messages.
pub const MESSAGE_LEN: usize = 81;
/// Length of the handshake hash.
pub const HASH_LEN: usize = 32;

const KN_PATTERN: &str = "Noise_KNpsk0_P256_AESGCM_SHA256";
const NK_PATTERN: &str = "Noise_NKpsk0_P256_AESGCM_SHA256";
const KN_PROLOGUE: &[u8] = &[1];
const NK_PROLOGUE: &[u8] = &[0];

/// What a completed handshake yields.
#[derive(Debug)]
pub struct HandshakeOutput {
    /// The transport cipher, keyed for this side.
    pub crypter: Crypter,
    /// The final handshake hash (signed in linking data).
    pub handshake_hash: [u8; HASH_LEN],
}

/// Which handshake a session runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pattern {
    /// QR-initiated: KNpsk0, prologue 01.
    Qr,
    /// State-assisted (linked): NKpsk0, prologue 00.
    Linked,
}

impl Pattern {
    fn params(self) -> Result<NoiseParams> {
        let name = match self {
            Pattern::Qr => KN_PATTERN,
            Pattern::Linked => NK_PATTERN,
        };
        name.parse().map_err(|e| Error::HandshakeSetup {
            reason: snow_reason(&e),
        })
    }

    fn prologue(self) -> &'static [u8] {
        match self {
            Pattern::Qr => KN_PROLOGUE,
            Pattern::Linked => NK_PROLOGUE,
        }
    }
}

fn snow_reason(e: &snow::Error) -> &'static str {
    match e {
        snow::Error::Pattern(_) => "pattern",
        snow::Error::Init(_) => "initialisation",
        snow::Error::Prereq(_) => "missing key",
        snow::Error::State(_) => "state",
        snow::Error::Input => "input",
        snow::Error::Dh => "Diffie-Hellman",
        snow::Error::Decrypt => "decrypt",
        snow::Error::Rng => "RNG",
        #[allow(unreachable_patterns)]
        _ => "other",
    }
}

/// Errors while processing the peer's message mean it did not authenticate
/// or carried a bad point; anything else is a setup problem.
fn peer_error(e: snow::Error) -> Error {
    match e {
        snow::Error::Decrypt | snow::Error::Dh | snow::Error::Input => Error::HandshakeFailed,
        other => Error::HandshakeSetup {
            reason: snow_reason(&other),
        },
    }
}

fn setup_error(e: snow::Error) -> Error {
    Error::HandshakeSetup {
        reason: snow_reason(&e),
    }
}

/// A resolver that delegates to snow's default primitives but supplies the
/// ephemeral key bytes drawn from the caller's RNG.
struct CallerEphemeral {
    ephemeral: Zeroizing<[u8; 32]>,
}

struct OneShotRandom(Option<Zeroizing<[u8; 32]>>);

impl Random for OneShotRandom {
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> core::result::Result<(), snow::Error> {
        match self.0.take() {
            Some(bytes) if dest.len() == bytes.len() => {
                dest.copy_from_slice(&bytes[..]);
                Ok(())
            }
            _ => Err(snow::Error::Rng),
        }
    }
}

impl CryptoResolver for CallerEphemeral {
    fn resolve_rng(&self) -> Option<Box<dyn Random>> {
        Some(Box::new(OneShotRandom(Some(self.ephemeral.clone()))))
    }
    fn resolve_dh(&self, choice: &DHChoice) -> Option<Box<dyn Dh>> {
        DefaultResolver.resolve_dh(choice)
    }
    fn resolve_hash(&self, choice: &HashChoice) -> Option<Box<dyn Hash>> {
        DefaultResolver.resolve_hash(choice)
    }
    fn resolve_cipher(&self, choice: &CipherChoice) -> Option<Box<dyn Cipher>> {
        DefaultResolver.resolve_cipher(choice)
    }
}

/// Snow's builder with the ephemeral key fixed to `ephemeral`, drawn by the caller.
fn builder_for<'a>(pattern: Pattern, ephemeral: &SecretKey) -> Result<snow::Builder<'a>> {
    // The scalar is valid by construction (a SecretKey): snow's P-256 code would panic on
    // bytes >= n, which is why it never draws the ephemeral itself.
    let mut bytes = Zeroizing::new([0u8; 32]);
    bytes.copy_from_slice(&ephemeral.to_bytes());
    let resolver = CallerEphemeral { ephemeral: bytes };
    Ok(snow::Builder::with_resolver(
        pattern.params()?,
        Box::new(resolver),
    ))
}

fn private_bytes(key: &SecretKey) -> Zeroizing<[u8; 32]> {
    let mut out = Zeroizing::new([0u8; 32]);
    out.copy_from_slice(&key.to_bytes());
    out
}

fn check_len(message: &[u8]) -> Result<()> {
    if message.len() != MESSAGE_LEN {
        return Err(Error::HandshakeLength { len: message.len() });
    }
    Ok(())
}

fn write_empty(hs: &mut HandshakeState) -> Result<[u8; MESSAGE_LEN]> {
    let mut out = [0u8; MESSAGE_LEN];
    let n = hs.write_message(&[], &mut out).map_err(setup_error)?;
    if n != MESSAGE_LEN {
        return Err(Error::HandshakeSetup {
            reason: "unexpected message length",
        });
    }
    Ok(out)
}

fn read_empty(hs: &mut HandshakeState, message: &[u8]) -> Result<()> {
    check_len(message)?;
    let mut payload = [0u8; MESSAGE_LEN];
    let n = hs.read_message(message, &mut payload).map_err(peer_error)?;
    if n != 0 {
        return Err(Error::HandshakePayload { len: n });
    }
    Ok(())
}

fn finish(mut hs: HandshakeState, initiator: bool) -> Result<HandshakeOutput> {
    if !hs.is_handshake_finished() {
        return Err(Error::HandshakeSetup {
            reason: "handshake not finished",
        });
    }
    let mut handshake_hash = [0u8; HASH_LEN];
    let h = hs.get_handshake_hash();
    if h.len() != HASH_LEN {
        return Err(Error::HandshakeSetup {
            reason: "unexpected hash length",
        });
    }
    handshake_hash.copy_from_slice(h);
    let (k1, k2) = hs.dangerously_get_raw_split();
    let (k1, k2) = (Zeroizing::new(k1), Zeroizing::new(k2));
    // k1 carries desktop → phone, k2 phone → desktop.
    let crypter = if initiator {
        Crypter::new(&k2, &k1)
    } else {
        Crypter::new(&k1, &k2)
    };
    Ok(HandshakeOutput {
        crypter,
        handshake_hash,
    })
}

/// The desktop's side of a handshake, waiting for the phone's reply.
pub struct Initiator {
    state: HandshakeState,
}

impl core::fmt::Debug for Initiator {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Initiator").finish_non_exhaustive()
    }
}

impl Initiator {
    /// QR flow (KNpsk0): starts the handshake with the QR key as static key;
    /// returns the initiator and the 81-byte first message.
    pub fn new_qr(
        qr_key: &QrKey,
        psk: &Psk,
        rng: &mut impl rand_core::CryptoRngCore,
    ) -> Result<(Initiator, [u8; MESSAGE_LEN])> {
        Self::new_qr_with_ephemeral(qr_key, psk, &keys::random_secret_key(rng))
    }

    /// As [`Initiator::new_qr`] with an ephemeral key drawn earlier (the session machines draw
    /// all randomness when they are created).
    pub(crate) fn new_qr_with_ephemeral(
        qr_key: &QrKey,
        psk: &Psk,
        ephemeral: &SecretKey,
    ) -> Result<(Initiator, [u8; MESSAGE_LEN])> {
        let private = private_bytes(qr_key.private_key());
        let state = builder_for(Pattern::Qr, ephemeral)?
            .prologue(Pattern::Qr.prologue())
            .and_then(|b| b.psk(0, psk.as_bytes()))
            .and_then(|b| b.local_private_key(&private[..]))
            .and_then(|b| b.build_initiator())
            .map_err(setup_error)?;
        Initiator::start(state)
    }

    /// State-assisted flow (NKpsk0): starts the handshake towards a linked
    /// phone whose identity public key was stored from linking data.
    pub fn new_linked(
        phone_identity: &PublicKey,
        psk: &Psk,
        rng: &mut impl rand_core::CryptoRngCore,
    ) -> Result<(Initiator, [u8; MESSAGE_LEN])> {
        Self::new_linked_with_ephemeral(phone_identity, psk, &keys::random_secret_key(rng))
    }

    /// As [`Initiator::new_linked`] with an ephemeral key drawn earlier.
    pub(crate) fn new_linked_with_ephemeral(
        phone_identity: &PublicKey,
        psk: &Psk,
        ephemeral: &SecretKey,
    ) -> Result<(Initiator, [u8; MESSAGE_LEN])> {
        let remote = keys::uncompressed(phone_identity);
        let state = builder_for(Pattern::Linked, ephemeral)?
            .prologue(Pattern::Linked.prologue())
            .and_then(|b| b.psk(0, psk.as_bytes()))
            .and_then(|b| b.remote_public_key(&remote))
            .and_then(|b| b.build_initiator())
            .map_err(setup_error)?;
        Initiator::start(state)
    }

    fn start(mut state: HandshakeState) -> Result<(Initiator, [u8; MESSAGE_LEN])> {
        let msg1 = write_empty(&mut state)?;
        Ok((Initiator { state }, msg1))
    }

    /// Processes the phone's 81-byte reply.
    pub fn finish(mut self, msg2: &[u8]) -> Result<HandshakeOutput> {
        read_empty(&mut self.state, msg2)?;
        finish(self.state, true)
    }

    /// As [`Initiator::finish`], but a reply that does not complete the handshake hands the
    /// initiator back unchanged, so the next reply can be tried on it: snow restores its
    /// symmetric state when `read_message` fails, and everything else a failed read touches
    /// (the peer's ephemeral) is overwritten by the next read. Only for the fuzz targets,
    /// where building an initiator per input (P-256 multiplications) would dominate; no
    /// protocol lets a peer retry a handshake message.
    #[cfg(any(test, feature = "fuzzing"))]
    #[doc(hidden)]
    pub fn try_finish(
        mut self,
        msg2: &[u8],
    ) -> core::result::Result<HandshakeOutput, (Error, Option<Box<Initiator>>)> {
        match read_empty(&mut self.state, msg2) {
            Ok(()) => finish(self.state, true).map_err(|e| (e, None)),
            // A payload was read: the handshake moved on and cannot be retried.
            Err(e @ Error::HandshakePayload { .. }) => Err((e, None)),
            Err(e) => Err((e, Some(Box::new(self)))),
        }
    }
}

/// The phone's side of a handshake (one message in, one out).
#[derive(Debug, Clone, Copy)]
pub struct Responder;

impl Responder {
    /// QR flow (KNpsk0): answers the desktop's first message using the QR
    /// public key; returns the 81-byte reply and the session.
    pub fn respond_qr(
        qr_public_key: &PublicKey,
        psk: &Psk,
        msg1: &[u8],
        rng: &mut impl rand_core::CryptoRngCore,
    ) -> Result<([u8; MESSAGE_LEN], HandshakeOutput)> {
        Self::respond_qr_with_ephemeral(qr_public_key, psk, msg1, &keys::random_secret_key(rng))
    }

    /// As [`Responder::respond_qr`] with an ephemeral key drawn earlier.
    pub(crate) fn respond_qr_with_ephemeral(
        qr_public_key: &PublicKey,
        psk: &Psk,
        msg1: &[u8],
        ephemeral: &SecretKey,
    ) -> Result<([u8; MESSAGE_LEN], HandshakeOutput)> {
        check_len(msg1)?;
        let remote = keys::uncompressed(qr_public_key);
        let state = builder_for(Pattern::Qr, ephemeral)?
            .prologue(Pattern::Qr.prologue())
            .and_then(|b| b.psk(0, psk.as_bytes()))
            .and_then(|b| b.remote_public_key(&remote))
            .and_then(|b| b.build_responder())
            .map_err(setup_error)?;
        Responder::respond(state, msg1)
    }

    /// State-assisted flow (NKpsk0): answers with the phone's identity key.
    pub fn respond_linked(
        identity: &SecretKey,
        psk: &Psk,
        msg1: &[u8],
        rng: &mut impl rand_core::CryptoRngCore,
    ) -> Result<([u8; MESSAGE_LEN], HandshakeOutput)> {
        Self::respond_linked_with_ephemeral(identity, psk, msg1, &keys::random_secret_key(rng))
    }

    /// As [`Responder::respond_linked`] with an ephemeral key drawn earlier.
    pub(crate) fn respond_linked_with_ephemeral(
        identity: &SecretKey,
        psk: &Psk,
        msg1: &[u8],
        ephemeral: &SecretKey,
    ) -> Result<([u8; MESSAGE_LEN], HandshakeOutput)> {
        check_len(msg1)?;
        let private = private_bytes(identity);
        let state = builder_for(Pattern::Linked, ephemeral)?
            .prologue(Pattern::Linked.prologue())
            .and_then(|b| b.psk(0, psk.as_bytes()))
            .and_then(|b| b.local_private_key(&private[..]))
            .and_then(|b| b.build_responder())
            .map_err(setup_error)?;
        Responder::respond(state, msg1)
    }

    fn respond(
        mut state: HandshakeState,
        msg1: &[u8],
    ) -> Result<([u8; MESSAGE_LEN], HandshakeOutput)> {
        read_empty(&mut state, msg1)?;
        // Writing msg2 performs ee/se; an invalid peer point fails here.
        let mut msg2 = [0u8; MESSAGE_LEN];
        let n = state.write_message(&[], &mut msg2).map_err(peer_error)?;
        if n != MESSAGE_LEN {
            return Err(Error::HandshakeSetup {
                reason: "unexpected message length",
            });
        }
        Ok((msg2, finish(state, false)?))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::qr::{QrSecret, RequestHint};

    fn keys() -> (QrKey, Psk, SecretKey, SecretKey) {
        let qr = QrKey::from_seed(
            &[0x11; 32],
            QrSecret::from_bytes([7; 16]),
            1_700_000_000,
            RequestHint::GetAssertion,
        )
        .unwrap();
        let psk = qr.secret().psk(&[3; 16]);
        let desktop = SecretKey::from_slice(&[5; 32]).unwrap();
        let phone = SecretKey::from_slice(&[9; 32]).unwrap();
        (qr, psk, desktop, phone)
    }

    #[test]
    fn a_failed_try_finish_leaves_the_initiator_as_new() {
        let (qr, psk, desktop, phone) = keys();
        let (initiator, msg1) = Initiator::new_qr_with_ephemeral(&qr, &psk, &desktop).unwrap();
        let (msg2, phone_out) =
            Responder::respond_qr_with_ephemeral(qr.public_key(), &psk, &msg1, &phone).unwrap();
        let mut bad_tag = msg2;
        bad_tag[80] ^= 1;
        let mut bad_point = msg2;
        bad_point[10] ^= 1;
        // A wrong length, a point off the curve, and a valid point with a tag that fails.
        let mut initiator = Some(initiator);
        for bad in [&msg2[..80], &bad_point[..], &bad_tag[..]] {
            let (e, back) = initiator.take().unwrap().try_finish(bad).unwrap_err();
            assert!(
                matches!(e, Error::HandshakeLength { .. } | Error::HandshakeFailed),
                "{e:?}"
            );
            initiator = back.map(|b| *b);
        }
        let out = initiator.unwrap().try_finish(&msg2).unwrap();
        let fresh = Initiator::new_qr_with_ephemeral(&qr, &psk, &desktop)
            .unwrap()
            .0
            .finish(&msg2)
            .unwrap();
        assert_eq!(out.handshake_hash, fresh.handshake_hash);
        assert_eq!(out.handshake_hash, phone_out.handshake_hash);
    }

    #[test]
    fn try_finish_retries_the_linked_pattern_too() {
        let (_, psk, desktop, phone) = keys();
        let identity = SecretKey::from_slice(&[13; 32]).unwrap();
        let (initiator, msg1) =
            Initiator::new_linked_with_ephemeral(&identity.public_key(), &psk, &desktop).unwrap();
        let (msg2, phone_out) =
            Responder::respond_linked_with_ephemeral(&identity, &psk, &msg1, &phone).unwrap();
        let mut bad_tag = msg2;
        bad_tag[70] ^= 0x80;
        let (_, back) = initiator.try_finish(&bad_tag).unwrap_err();
        let out = back.unwrap().try_finish(&msg2).unwrap();
        assert_eq!(out.handshake_hash, phone_out.handshake_hash);
    }
}
