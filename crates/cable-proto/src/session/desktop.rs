//! The computer's side of a session: Noise initiator, CTAP client framing,
//! linking data, the connect signal of linked sessions and the late-update
//! linger.

use std::collections::VecDeque;

use p256::{PublicKey, SecretKey};

use crate::advert::DecryptedAdvert;
use crate::crypter::Crypter;
use crate::ctap::command;
use crate::derive::EidKey;
use crate::error::{Error, Result};
use crate::handshake::{Initiator, HASH_LEN};
use crate::keys;
use crate::message::{
    LinkSecret, LinkingInfo, Message, PostHandshake, ProtocolRevision, UpdateMessage,
};
use crate::qr::QrKey;

/// Where a desktop session is; see [`DesktopSession::state`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DesktopState {
    /// Linked flow: the tunnel is open, the phone's advert has not been seen yet.
    AwaitAdvert,
    /// Handshake message 1 is queued or sent; waiting for message 2 (and, in a linked session
    /// whose relay echoed the signal header, for the connect signal).
    AwaitHandshake,
    /// Handshake done; waiting for the phone's post-handshake message.
    AwaitPostHandshake,
    /// Established, no request outstanding.
    Ready,
    /// A CTAP request is outstanding.
    AwaitReply,
    /// Shutdown sent; reading late update messages until the adapter's linger ends.
    Lingering,
    /// Nothing more to do: close the tunnel.
    Closed,
    /// A protocol error ended the session.
    Failed,
}

impl DesktopState {
    fn name(self) -> &'static str {
        match self {
            DesktopState::AwaitAdvert => "waiting for the advert",
            DesktopState::AwaitHandshake => "handshaking",
            DesktopState::AwaitPostHandshake => "waiting for the post-handshake message",
            DesktopState::Ready => "ready",
            DesktopState::AwaitReply => "waiting for a reply",
            DesktopState::Lingering => "shut down",
            DesktopState::Closed => "closed",
            DesktopState::Failed => "failed",
        }
    }
}

/// What a desktop session reports.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DesktopEvent {
    /// Linked flow: the relay's connect signal (the phone joined the tunnel).
    PhoneConnected,
    /// The post-handshake message was read: the phone speaks CTAP2 in this revision; its
    /// getInfo is [`DesktopSession::get_info`].
    Established {
        /// The post-handshake revision (framing of later messages).
        revision: ProtocolRevision,
    },
    /// The phone offered linking data (QR flow only; a linked session ignores it, as no QR key
    /// can verify it). `verified` says whether the signature binds it to this session and QR
    /// key: only verified data may be stored.
    Linking {
        /// The data as sent.
        linking: Box<LinkingInfo>,
        /// Whether its handshake signature verified (constant-time comparison).
        verified: bool,
    },
    /// The reply to the outstanding request: `status ‖ CBOR`.
    Reply(Vec<u8>),
}

/// How the session was started: what verifies linking data and what the handshake needs.
enum Flow {
    Qr { qr: Box<QrKey> },
    Linked,
}

enum Inner {
    AwaitAdvert {
        phone: PublicKey,
        link_secret: LinkSecret,
        client_nonce: [u8; 16],
        signal_pending: bool,
    },
    AwaitHandshake {
        initiator: Box<Initiator>,
        signal_pending: bool,
    },
    AwaitPostHandshake,
    Ready,
    AwaitReply,
    Lingering,
    Closed,
    Failed,
}

/// The computer's side of one hybrid session, from handshake message 1 to the end of the
/// linger after shutdown.
///
/// ```text
/// new_qr ─────────────────────────────▶ AwaitHandshake ─msg2─▶ AwaitPostHandshake ─▶ Ready
/// new_linked ─▶ AwaitAdvert ─advert_seen─▶ ┘ (connect signal 00 accepted before or after msg1)
/// Ready ─send_request─▶ AwaitReply ─reply─▶ Ready ─shutdown─▶ Lingering (updates still read)
/// ```
pub struct DesktopSession {
    flow: Flow,
    inner: Inner,
    /// Drawn at creation so that no later step needs an RNG.
    ephemeral: SecretKey,
    crypter: Option<Crypter>,
    handshake_hash: [u8; HASH_LEN],
    revision: ProtocolRevision,
    get_info: Option<Vec<u8>>,
    transmit: VecDeque<Vec<u8>>,
    events: VecDeque<DesktopEvent>,
}

impl core::fmt::Debug for DesktopSession {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("DesktopSession")
            .field("state", &self.state())
            .field("revision", &self.revision)
            .finish_non_exhaustive()
    }
}

impl DesktopSession {
    /// QR flow: the phone's advert was decrypted with the QR secret and the tunnel it names
    /// is open. Handshake message 1 (KNpsk0) is queued.
    pub fn new_qr(
        qr: &QrKey,
        advert: &DecryptedAdvert,
        rng: &mut impl rand_core::CryptoRngCore,
    ) -> Result<DesktopSession> {
        let mut session = DesktopSession::blank(
            Flow::Qr {
                qr: Box::new(qr.clone()),
            },
            keys::random_secret_key(rng),
        );
        let psk = qr.secret().psk(&advert.plaintext);
        let (initiator, msg1) = Initiator::new_qr_with_ephemeral(qr, &psk, &session.ephemeral)?;
        session.transmit.push_back(msg1.to_vec());
        session.inner = Inner::AwaitHandshake {
            initiator: Box::new(initiator),
            signal_pending: false,
        };
        Ok(session)
    }

    /// Linked flow (PROTOCOL.md §10): the contact tunnel is open; `connect_signal` says whether
    /// the relay echoed `X-caBLE-Signal-Connection` (then its first message must be `00`).
    /// Scan for adverts with [`DesktopSession::eid_key`] and hand the match to
    /// [`DesktopSession::advert_seen`].
    pub fn new_linked(
        phone_identity: &PublicKey,
        link_secret: &LinkSecret,
        client_nonce: [u8; 16],
        connect_signal: bool,
        rng: &mut impl rand_core::CryptoRngCore,
    ) -> DesktopSession {
        let mut session = DesktopSession::blank(Flow::Linked, keys::random_secret_key(rng));
        session.inner = Inner::AwaitAdvert {
            phone: *phone_identity,
            link_secret: link_secret.clone(),
            client_nonce,
            signal_pending: connect_signal,
        };
        session
    }

    fn blank(flow: Flow, ephemeral: SecretKey) -> DesktopSession {
        DesktopSession {
            flow,
            inner: Inner::Closed,
            ephemeral,
            crypter: None,
            handshake_hash: [0; HASH_LEN],
            revision: ProtocolRevision::One,
            get_info: None,
            transmit: VecDeque::new(),
            events: VecDeque::new(),
        }
    }

    /// Linked flow, before the advert: the key the phone's advert is encrypted with.
    pub fn eid_key(&self) -> Option<EidKey> {
        match &self.inner {
            Inner::AwaitAdvert {
                link_secret,
                client_nonce,
                ..
            } => Some(link_secret.eid_key(client_nonce)),
            _ => None,
        }
    }

    /// Linked flow: the phone's advert was decrypted with [`DesktopSession::eid_key`]; queues
    /// handshake message 1 (NKpsk0), whether or not the connect signal came yet.
    pub fn advert_seen(&mut self, advert: &DecryptedAdvert) -> Result<()> {
        let Inner::AwaitAdvert {
            phone,
            link_secret,
            signal_pending,
            ..
        } = &self.inner
        else {
            return Err(self.wrong_state("advert_seen"));
        };
        let psk = link_secret.psk(&advert.plaintext);
        let started = Initiator::new_linked_with_ephemeral(phone, &psk, &self.ephemeral);
        let signal_pending = *signal_pending;
        let (initiator, msg1) = self.check(started)?;
        self.transmit.push_back(msg1.to_vec());
        self.inner = Inner::AwaitHandshake {
            initiator: Box::new(initiator),
            signal_pending,
        };
        Ok(())
    }

    /// Feeds one binary message from the tunnel. An error fails the session.
    pub fn handle_frame(&mut self, frame: &[u8]) -> Result<()> {
        let result = self.dispatch(frame);
        if result.is_err() {
            self.inner = Inner::Failed;
        }
        result
    }

    fn dispatch(&mut self, frame: &[u8]) -> Result<()> {
        match std::mem::replace(&mut self.inner, Inner::Failed) {
            Inner::AwaitAdvert {
                phone,
                link_secret,
                client_nonce,
                signal_pending,
            } => {
                // Only the connect signal may come before message 1 is sent.
                if !(signal_pending && frame == [0]) {
                    return Err(if signal_pending {
                        Error::BadConnectSignal
                    } else {
                        Error::UnexpectedMessage {
                            what: "a message before the handshake started",
                        }
                    });
                }
                self.events.push_back(DesktopEvent::PhoneConnected);
                self.inner = Inner::AwaitAdvert {
                    phone,
                    link_secret,
                    client_nonce,
                    signal_pending: false,
                };
                Ok(())
            }
            Inner::AwaitHandshake {
                initiator,
                signal_pending,
            } => {
                if signal_pending {
                    if frame != [0] {
                        return Err(Error::BadConnectSignal);
                    }
                    self.events.push_back(DesktopEvent::PhoneConnected);
                    self.inner = Inner::AwaitHandshake {
                        initiator,
                        signal_pending: false,
                    };
                    return Ok(());
                }
                let output = initiator.finish(frame)?;
                self.crypter = Some(output.crypter);
                self.handshake_hash = output.handshake_hash;
                self.inner = Inner::AwaitPostHandshake;
                Ok(())
            }
            Inner::AwaitPostHandshake => self.post_handshake(frame),
            Inner::Ready => {
                let message = self.decrypt_message(frame)?;
                match message {
                    Some(Message::Update(update)) => {
                        self.update(update);
                        self.inner = Inner::Ready;
                        Ok(())
                    }
                    _ => Err(Error::UnexpectedMessage {
                        what: "a message with no request outstanding",
                    }),
                }
            }
            Inner::AwaitReply => {
                let Some(message) = self.decrypt_message(frame)? else {
                    // Revision 0: every message is the raw CTAP reply.
                    let plaintext = self.decrypt(frame)?;
                    self.events.push_back(DesktopEvent::Reply(plaintext));
                    self.inner = Inner::Ready;
                    return Ok(());
                };
                match message {
                    Message::Ctap(reply) => {
                        self.events.push_back(DesktopEvent::Reply(reply));
                        self.inner = Inner::Ready;
                        Ok(())
                    }
                    Message::Update(update) => {
                        self.update(update);
                        self.inner = Inner::AwaitReply;
                        Ok(())
                    }
                    Message::Shutdown => Err(Error::UnexpectedMessage {
                        what: "shutdown from the phone",
                    }),
                    Message::Json(_) => Err(Error::UnexpectedMessage {
                        what: "a JSON reply to a CTAP request",
                    }),
                }
            }
            Inner::Lingering => {
                // After shutdown only late linking data matters; Chromium ignores the rest.
                if let Some(Message::Update(update)) = self.decrypt_message(frame)? {
                    self.update(update);
                }
                self.inner = Inner::Lingering;
                Ok(())
            }
            Inner::Closed => {
                self.inner = Inner::Closed;
                Err(self.wrong_state("handle_frame"))
            }
            Inner::Failed => Err(self.wrong_state("handle_frame")),
        }
    }

    fn post_handshake(&mut self, frame: &[u8]) -> Result<()> {
        let crypter = self.crypter_mut()?;
        // Phones from before Chromium's current transport construction are accepted on the
        // first message; the crypter then keeps whichever construction the phone used.
        let (plaintext, _legacy) = crypter.decrypt_first_accepting_legacy(frame)?;
        let (post, revision) = PostHandshake::decode(&plaintext)?;
        let ctap = post.supports_ctap();
        let get_info = match (post.get_info, ctap) {
            (Some(info), true) => info,
            _ if post.features.iter().any(|f| f == "dc") => {
                return Err(Error::DigitalCredentialsOnly)
            }
            _ => return Err(Error::NoCtapSupport),
        };
        self.revision = revision;
        self.get_info = Some(get_info);
        self.events
            .push_back(DesktopEvent::Established { revision });
        if let Some(linking) = post.linking {
            self.linking(linking);
        }
        self.inner = Inner::Ready;
        Ok(())
    }

    fn update(&mut self, update: UpdateMessage) {
        if let Some(linking) = update.linking {
            self.linking(linking);
        }
    }

    fn linking(&mut self, linking: LinkingInfo) {
        // PROTOCOL.md §8.4: only a QR key can verify linking data; a linked session ignores it.
        if let Flow::Qr { qr } = &self.flow {
            let verified = linking.verify(qr, &self.handshake_hash).is_ok();
            self.events.push_back(DesktopEvent::Linking {
                linking: Box::new(linking),
                verified,
            });
        }
    }

    fn crypter_mut(&mut self) -> Result<&mut Crypter> {
        self.crypter.as_mut().ok_or(Error::WrongState {
            operation: "decrypt",
            state: "handshaking",
        })
    }

    fn decrypt(&mut self, frame: &[u8]) -> Result<Vec<u8>> {
        self.crypter_mut()?.decrypt(frame)
    }

    /// Revision 1: the decoded framed message. Revision 0 has no framing: `None`, and the
    /// frame is left for the caller to decrypt.
    fn decrypt_message(&mut self, frame: &[u8]) -> Result<Option<Message>> {
        if self.revision == ProtocolRevision::Zero {
            return Ok(None);
        }
        let plaintext = self.decrypt(frame)?;
        Message::decode(&plaintext).map(Some)
    }

    /// Sends a CTAP request (`command ‖ CBOR`). getInfo is answered locally from the
    /// post-handshake message, as Chromium does; its reply is the next event.
    pub fn send_request(&mut self, request: &[u8]) -> Result<()> {
        if !matches!(self.inner, Inner::Ready) {
            return Err(self.wrong_state("send_request"));
        }
        if request == [command::GET_INFO] {
            let mut reply = vec![crate::ctap::status::OK];
            reply.extend_from_slice(self.get_info.as_deref().unwrap_or_default());
            self.events.push_back(DesktopEvent::Reply(reply));
            return Ok(());
        }
        let plaintext = match self.revision {
            ProtocolRevision::One => Message::Ctap(request.to_vec()).encode(),
            ProtocolRevision::Zero => request.to_vec(),
        };
        let encrypted = self.crypter_mut()?.encrypt(&plaintext);
        let frame = self.check(encrypted)?;
        self.transmit.push_back(frame);
        self.inner = Inner::AwaitReply;
        Ok(())
    }

    /// Ends the session from this side. Revision 1: queues the encrypted shutdown message and
    /// returns `true`: keep reading (the linger) so that late linking data is not lost, then
    /// close. Revision 0, or before the session was established: nothing to send, `false`:
    /// close now.
    pub fn shutdown(&mut self) -> bool {
        let established = matches!(self.inner, Inner::Ready | Inner::AwaitReply);
        if !established || self.revision == ProtocolRevision::Zero {
            if !matches!(self.inner, Inner::Failed) {
                self.inner = Inner::Closed;
            }
            return false;
        }
        let encrypted = self
            .crypter
            .as_mut()
            .map(|c| c.encrypt(&Message::Shutdown.encode()));
        match encrypted {
            Some(Ok(frame)) => {
                self.transmit.push_back(frame);
                self.inner = Inner::Lingering;
                true
            }
            _ => {
                self.inner = Inner::Closed;
                false
            }
        }
    }

    /// The next message to send on the tunnel.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.transmit.pop_front()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<DesktopEvent> {
        self.events.pop_front()
    }

    /// Where the session is.
    pub fn state(&self) -> DesktopState {
        match self.inner {
            Inner::AwaitAdvert { .. } => DesktopState::AwaitAdvert,
            Inner::AwaitHandshake { .. } => DesktopState::AwaitHandshake,
            Inner::AwaitPostHandshake => DesktopState::AwaitPostHandshake,
            Inner::Ready => DesktopState::Ready,
            Inner::AwaitReply => DesktopState::AwaitReply,
            Inner::Lingering => DesktopState::Lingering,
            Inner::Closed => DesktopState::Closed,
            Inner::Failed => DesktopState::Failed,
        }
    }

    /// The post-handshake revision (meaningful once established).
    pub fn revision(&self) -> ProtocolRevision {
        self.revision
    }

    /// The phone's getInfo response (CBOR, no status byte), once established.
    pub fn get_info(&self) -> Option<&[u8]> {
        self.get_info.as_deref()
    }

    /// The Noise handshake hash, once the handshake is done.
    pub fn handshake_hash(&self) -> Option<&[u8; HASH_LEN]> {
        self.crypter.as_ref().map(|_| &self.handshake_hash)
    }

    fn wrong_state(&self, operation: &'static str) -> Error {
        Error::WrongState {
            operation,
            state: self.state().name(),
        }
    }

    /// Fails the session on `Err`.
    fn check<T>(&mut self, result: Result<T>) -> Result<T> {
        if result.is_err() {
            self.inner = Inner::Failed;
        }
        result
    }
}
