//! The phone's side of a session: Noise responder, the post-handshake
//! message, and the dispatch of exactly one CTAP request.

use std::collections::VecDeque;

use p256::{PublicKey, SecretKey};

use crate::advert::{encrypt_eid, Eid, ADVERT_LEN};
use crate::cbor::{self, Value};
use crate::crypter::Crypter;
use crate::ctap::{command, status, CtapRequest, CtapResponse};
use crate::derive::Psk;
use crate::error::{Error, Result};
use crate::handshake::{Responder, HASH_LEN};
use crate::ids::RoutingId;
use crate::keys;
use crate::message::{LinkSecret, Message, MessageType, PostHandshake, UpdateMessage};
use crate::qr::QrCode;

/// How many getInfo requests a session answers before giving up on the computer (Chromium
/// never sends one; a computer asking again and again is broken or hostile).
pub const MAX_GET_INFO: usize = 4;

/// The kind of CTAP request the computer made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestKind {
    /// authenticatorMakeCredential (registration).
    MakeCredential,
    /// authenticatorGetAssertion (sign-in).
    GetAssertion,
    /// authenticatorSelection: the user picked this phone, nothing else follows.
    Selection,
}

impl RequestKind {
    /// A short human name.
    pub fn as_str(self) -> &'static str {
        match self {
            RequestKind::MakeCredential => "makeCredential",
            RequestKind::GetAssertion => "getAssertion",
            RequestKind::Selection => "selection",
        }
    }
}

/// A request for the authenticator to decide; answer it with [`PhoneSession::respond`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServeRequest {
    /// makeCredential or getAssertion.
    pub kind: RequestKind,
    /// The CBOR parameters as the computer sent them.
    pub params: Value,
}

/// Where a phone session is; see [`PhoneSession::state`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PhoneState {
    /// Advertising; waiting for the computer's handshake message.
    AwaitHandshake,
    /// Handshake answered; the post-handshake message needs the authenticator's getInfo
    /// ([`PhoneSession::post_handshake`]).
    AwaitGetInfo,
    /// Waiting for the CTAP request.
    AwaitRequest,
    /// The authenticator is deciding ([`PhoneSession::respond`]).
    Serving,
    /// Done: the reply (or nothing, after the computer's shutdown) is all that is left to send.
    Done,
    /// A protocol error ended the session.
    Failed,
}

impl PhoneState {
    fn name(self) -> &'static str {
        match self {
            PhoneState::AwaitHandshake => "waiting for the handshake",
            PhoneState::AwaitGetInfo => "waiting for getInfo",
            PhoneState::AwaitRequest => "waiting for the request",
            PhoneState::Serving => "serving a request",
            PhoneState::Done => "done",
            PhoneState::Failed => "failed",
        }
    }
}

/// What a phone session reports.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PhoneEvent {
    /// The computer's handshake message authenticated; handshake message 2 is queued. Stop
    /// advertising and call [`PhoneSession::post_handshake`].
    HandshakeDone,
    /// A request arrived (makeCredential, getAssertion or selection).
    RequestReceived {
        /// Which command.
        kind: RequestKind,
        /// The relying party it names, when it names one.
        rp_id: Option<String>,
    },
    /// The authenticator must decide.
    Serve(ServeRequest),
    /// A reply is queued (from [`PhoneSession::respond`], or one this machine gave itself:
    /// selection, missing parameters).
    Replied {
        /// The CTAP status byte (0 = success).
        status: u8,
    },
    /// The computer sent shutdown: before any request (it chose another authenticator), or
    /// while the request was being served (nobody waits for the answer any more).
    Shutdown {
        /// Whether no request had arrived yet.
        before_request: bool,
    },
}

enum Responding {
    Qr { qr_public_key: PublicKey, psk: Psk },
    Linked { identity: SecretKey, psk: Psk },
}

enum Inner {
    AwaitHandshake(Responding),
    AwaitGetInfo,
    AwaitRequest,
    Serving,
    Done,
    Failed,
}

/// The phone's side of one hybrid session, from the advert to one answered request.
///
/// ```text
/// new_qr / new_linked (advert) ─msg1─▶ AwaitGetInfo ─post_handshake─▶ AwaitRequest
/// AwaitRequest ─getInfo─▶ AwaitRequest (answered here, at most MAX_GET_INFO times)
/// AwaitRequest ─makeCredential/getAssertion─▶ Serving ─respond─▶ Done
/// AwaitRequest ─selection─▶ Done (answered here)       shutdown ─▶ Done
/// ```
pub struct PhoneSession {
    inner: Inner,
    /// Drawn at creation so that no later step needs an RNG.
    ephemeral: SecretKey,
    advert: [u8; ADVERT_LEN],
    crypter: Option<Crypter>,
    handshake_hash: [u8; HASH_LEN],
    /// The validated getInfo bytes, kept so that getInfo requests never re-encode.
    get_info: Vec<u8>,
    get_info_count: usize,
    transmit: VecDeque<Vec<u8>>,
    events: VecDeque<PhoneEvent>,
}

impl core::fmt::Debug for PhoneSession {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("PhoneSession")
            .field("state", &self.state())
            .finish_non_exhaustive()
    }
}

impl PhoneSession {
    /// QR flow: the relay assigned `routing_id` to the tunnel of `qr`'s tunnel id. The advert
    /// to put on the air is [`PhoneSession::advert`].
    pub fn new_qr(
        qr: &QrCode,
        routing_id: RoutingId,
        domain_id: u16,
        rng: &mut impl rand_core::CryptoRngCore,
    ) -> PhoneSession {
        let eid = Eid::new(rng, routing_id, domain_id).to_bytes();
        let advert = encrypt_eid(&qr.secret.eid_key(), &eid);
        let responding = Responding::Qr {
            qr_public_key: qr.public_key,
            psk: qr.secret.psk(&eid),
        };
        PhoneSession::start(responding, advert, rng)
    }

    /// Linked flow (PROTOCOL.md §10, phone side): the phone joined the tunnel a contact named;
    /// the advert is keyed by the link secret and the computer's client nonce, and the
    /// handshake (NKpsk0) proves the phone's identity key.
    pub fn new_linked(
        identity: &SecretKey,
        link_secret: &LinkSecret,
        client_nonce: &[u8; 16],
        routing_id: RoutingId,
        domain_id: u16,
        rng: &mut impl rand_core::CryptoRngCore,
    ) -> PhoneSession {
        let eid = Eid::new(rng, routing_id, domain_id).to_bytes();
        let advert = encrypt_eid(&link_secret.eid_key(client_nonce), &eid);
        let responding = Responding::Linked {
            identity: identity.clone(),
            psk: link_secret.psk(&eid),
        };
        PhoneSession::start(responding, advert, rng)
    }

    fn start(
        responding: Responding,
        advert: [u8; ADVERT_LEN],
        rng: &mut impl rand_core::CryptoRngCore,
    ) -> PhoneSession {
        PhoneSession {
            inner: Inner::AwaitHandshake(responding),
            ephemeral: keys::random_secret_key(rng),
            advert,
            crypter: None,
            handshake_hash: [0; HASH_LEN],
            get_info: Vec::new(),
            get_info_count: 0,
            transmit: VecDeque::new(),
            events: VecDeque::new(),
        }
    }

    /// The 20 bytes of BLE service data to advertise until [`PhoneEvent::HandshakeDone`].
    pub fn advert(&self) -> [u8; ADVERT_LEN] {
        self.advert
    }

    /// Feeds one binary message from the tunnel. An error fails the session; a reply queued
    /// before it (e.g. `INVALID_CBOR` for a malformed request) should still be sent.
    pub fn handle_frame(&mut self, frame: &[u8]) -> Result<()> {
        let result = self.dispatch(frame);
        if result.is_err() {
            self.inner = Inner::Failed;
        }
        result
    }

    fn dispatch(&mut self, frame: &[u8]) -> Result<()> {
        match std::mem::replace(&mut self.inner, Inner::Failed) {
            Inner::AwaitHandshake(responding) => {
                let (msg2, output) = match &responding {
                    Responding::Qr { qr_public_key, psk } => Responder::respond_qr_with_ephemeral(
                        qr_public_key,
                        psk,
                        frame,
                        &self.ephemeral,
                    ),
                    Responding::Linked { identity, psk } => {
                        Responder::respond_linked_with_ephemeral(
                            identity,
                            psk,
                            frame,
                            &self.ephemeral,
                        )
                    }
                }?;
                self.crypter = Some(output.crypter);
                self.handshake_hash = output.handshake_hash;
                self.transmit.push_back(msg2.to_vec());
                self.events.push_back(PhoneEvent::HandshakeDone);
                self.inner = Inner::AwaitGetInfo;
                Ok(())
            }
            Inner::AwaitGetInfo => Err(Error::UnexpectedMessage {
                what: "a message before the post-handshake message was sent",
            }),
            Inner::AwaitRequest => self.request(frame),
            Inner::Serving => {
                match self.decrypt_message(frame)? {
                    // A computer may send updates; only their syntax matters, and decode
                    // checked it.
                    Message::Update(_) => {
                        self.inner = Inner::Serving;
                        Ok(())
                    }
                    Message::Shutdown => {
                        self.events.push_back(PhoneEvent::Shutdown {
                            before_request: false,
                        });
                        self.inner = Inner::Done;
                        Ok(())
                    }
                    other => Err(Error::UnsupportedMessage {
                        message_type: other.message_type() as u8,
                    }),
                }
            }
            Inner::Done => {
                // The computer's shutdown after the reply, or anything racing the close: the
                // session is over either way.
                self.inner = Inner::Done;
                Ok(())
            }
            Inner::Failed => Err(self.wrong_state("handle_frame")),
        }
    }

    fn request(&mut self, frame: &[u8]) -> Result<()> {
        let bytes = match self.decrypt_message(frame)? {
            Message::Shutdown => {
                self.events.push_back(PhoneEvent::Shutdown {
                    before_request: true,
                });
                self.inner = Inner::Done;
                return Ok(());
            }
            Message::Update(_) => {
                self.inner = Inner::AwaitRequest;
                return Ok(());
            }
            Message::Json(_) => {
                return Err(Error::UnsupportedMessage {
                    message_type: MessageType::Json as u8,
                })
            }
            Message::Ctap(bytes) => bytes,
        };
        let request = match CtapRequest::decode(&bytes) {
            Ok(request) => request,
            Err(e) => {
                self.reply(&CtapResponse::error(status::INVALID_CBOR))?;
                return Err(e);
            }
        };
        let kind = match request.command {
            command::GET_INFO => {
                self.get_info_count += 1;
                if self.get_info_count > MAX_GET_INFO {
                    return Err(Error::TooManyGetInfo {
                        limit: MAX_GET_INFO,
                    });
                }
                let mut reply = vec![status::OK];
                reply.extend_from_slice(&self.get_info);
                self.send(&Message::Ctap(reply))?;
                self.inner = Inner::AwaitRequest;
                return Ok(());
            }
            command::MAKE_CREDENTIAL => RequestKind::MakeCredential,
            command::GET_ASSERTION => RequestKind::GetAssertion,
            command::SELECTION => RequestKind::Selection,
            other => {
                self.reply(&CtapResponse::error(status::INVALID_COMMAND))?;
                return Err(Error::UnsupportedCommand { command: other });
            }
        };
        let rp_id = request.params.as_ref().and_then(|p| rp_id_of(kind, p));
        self.events
            .push_back(PhoneEvent::RequestReceived { kind, rp_id });
        match (kind, request.params) {
            (RequestKind::Selection, _) => {
                self.answer(&CtapResponse {
                    status: status::OK,
                    body: None,
                })?;
            }
            (_, None) => self.answer(&CtapResponse::error(status::MISSING_PARAMETER))?,
            (_, Some(params)) => {
                self.events
                    .push_back(PhoneEvent::Serve(ServeRequest { kind, params }));
                self.inner = Inner::Serving;
            }
        }
        Ok(())
    }

    /// Sends the post-handshake message with the authenticator's getInfo response (CBOR map,
    /// no status byte), then `update` if given (linking data, padded as Chrome-for-Android
    /// does). getInfo is checked once here: it must be a map that encodes canonically and
    /// reads back with the strict decoder, so that every later getInfo request is answered
    /// with exactly these bytes.
    pub fn post_handshake(
        &mut self,
        get_info: &Value,
        update: Option<&UpdateMessage>,
    ) -> Result<()> {
        if !matches!(self.inner, Inner::AwaitGetInfo) {
            return Err(self.wrong_state("post_handshake"));
        }
        let bytes = get_info.to_bytes();
        let valid =
            get_info.as_map().is_some() && cbor::decode(&bytes).is_ok_and(|read| read == *get_info);
        if !valid {
            self.inner = Inner::Failed;
            return Err(Error::BadGetInfo);
        }
        let post = PostHandshake::new(bytes.clone()).encode();
        let sent = self.encrypt(&post).and_then(|frame| {
            self.transmit.push_back(frame);
            match update {
                Some(update) => self.send(&Message::Update(update.clone())),
                None => Ok(()),
            }
        });
        if sent.is_err() {
            self.inner = Inner::Failed;
            return sent;
        }
        self.get_info = bytes;
        self.inner = Inner::AwaitRequest;
        Ok(())
    }

    /// The authenticator's answer to [`PhoneEvent::Serve`]; ends the session.
    pub fn respond(&mut self, response: &CtapResponse) -> Result<()> {
        if !matches!(self.inner, Inner::Serving) {
            return Err(self.wrong_state("respond"));
        }
        self.answer(response)
    }

    fn answer(&mut self, response: &CtapResponse) -> Result<()> {
        match self.reply(response) {
            Ok(()) => {
                self.events.push_back(PhoneEvent::Replied {
                    status: response.status,
                });
                self.inner = Inner::Done;
                Ok(())
            }
            Err(e) => {
                self.inner = Inner::Failed;
                Err(e)
            }
        }
    }

    fn reply(&mut self, response: &CtapResponse) -> Result<()> {
        self.send(&Message::Ctap(response.encode()))
    }

    fn send(&mut self, message: &Message) -> Result<()> {
        // An update's plaintext holds the link secret.
        let plaintext = zeroize::Zeroizing::new(message.encode());
        let frame = self.encrypt(&plaintext)?;
        self.transmit.push_back(frame);
        Ok(())
    }

    fn encrypt(&mut self, plaintext: &[u8]) -> Result<Vec<u8>> {
        self.crypter_mut()?.encrypt(plaintext)
    }

    fn decrypt_message(&mut self, frame: &[u8]) -> Result<Message> {
        let plaintext = self.crypter_mut()?.decrypt(frame)?;
        Message::decode(&plaintext)
    }

    fn crypter_mut(&mut self) -> Result<&mut Crypter> {
        self.crypter.as_mut().ok_or(Error::WrongState {
            operation: "encrypt",
            state: "handshaking",
        })
    }

    /// The next message to send on the tunnel.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.transmit.pop_front()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<PhoneEvent> {
        self.events.pop_front()
    }

    /// Where the session is.
    pub fn state(&self) -> PhoneState {
        match self.inner {
            Inner::AwaitHandshake(_) => PhoneState::AwaitHandshake,
            Inner::AwaitGetInfo => PhoneState::AwaitGetInfo,
            Inner::AwaitRequest => PhoneState::AwaitRequest,
            Inner::Serving => PhoneState::Serving,
            Inner::Done => PhoneState::Done,
            Inner::Failed => PhoneState::Failed,
        }
    }

    /// The Noise handshake hash (what linking data is signed over), once the handshake is done.
    pub fn handshake_hash(&self) -> Option<&[u8; HASH_LEN]> {
        self.crypter.as_ref().map(|_| &self.handshake_hash)
    }

    fn wrong_state(&self, operation: &'static str) -> Error {
        Error::WrongState {
            operation,
            state: self.state().name(),
        }
    }

    /// Encrypts as this phone, outside its rules: for tests of what a misbehaving phone sends.
    #[cfg(test)]
    pub(crate) fn encrypt_for_test(&mut self, plaintext: &[u8]) -> Result<Vec<u8>> {
        self.encrypt(plaintext)
    }

    /// Decrypts what the computer sent, outside the phone's rules.
    #[cfg(test)]
    pub(crate) fn decrypt_for_test(&mut self, frame: &[u8]) -> Result<Vec<u8>> {
        self.crypter_mut()?.decrypt(frame)
    }
}

/// The RP id a request names: makeCredential key 2 (`rp.id`), getAssertion key 1.
fn rp_id_of(kind: RequestKind, params: &Value) -> Option<String> {
    let map = params.as_map()?;
    let rp_id = match kind {
        RequestKind::MakeCredential => cbor::map_get(map, 2)?
            .as_map()?
            .get(&Value::Text("id".to_owned()))?
            .as_text()?,
        RequestKind::GetAssertion => cbor::map_get(map, 1)?.as_text()?,
        RequestKind::Selection => return None,
    };
    Some(rp_id.to_owned())
}
