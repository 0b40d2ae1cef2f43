//! # cable-proto: the sans-IO core of the FIDO hybrid transport (caBLE v2)
//!
//! Every byte format, key derivation, handshake and cipher of CTAP 2.2
//! "hybrid", as Chromium implements it, in plain functions and small state
//! machines. Bytes go in, bytes come out.
//!
//! **What it does not do:** no sockets, no async, no BLE, no clock and no
//! global randomness. Callers pass an RNG (`rand_core::CryptoRngCore`) where
//! randomness is needed and the Unix time where a timestamp is needed, so
//! every output can be pinned by a test vector. The WebSocket tunnel, the BLE
//! scanner/advertiser and the CTAP authenticator live in other crates.
//!
//! ## A QR transaction, computer side
//! 1. [`qr::QrKey::generate`] → show [`qr::QrKey::to_uri`].
//! 2. For each BLE service-data payload: [`advert::decrypt_advert`] with
//!    [`qr::QrSecret::eid_key`]; the hit gives routing id and domain
//!    ([`advert::DecryptedAdvert::eid`]).
//! 3. [`domain::connect_url`] with [`domain::host_for_domain_id`] and
//!    [`qr::QrSecret::tunnel_id`].
//! 4. [`handshake::Initiator::new_qr`] with [`qr::QrSecret::psk`] of the EID
//!    plaintext → send msg1; [`handshake::Initiator::finish`] on msg2 →
//!    [`handshake::HandshakeOutput`] (crypter + handshake hash).
//! 5. Decrypt the first message into [`message::PostHandshake`]; then
//!    exchange [`message::Message`]s wrapping [`ctap::CtapRequest`] /
//!    [`ctap::CtapResponse`]; verify linking data with
//!    [`message::LinkingInfo::verify`].
//!
//! The phone side mirrors it: [`qr::QrCode::parse`], [`advert::Eid`] +
//! [`advert::encrypt_eid`], [`handshake::Responder::respond_qr`],
//! [`message::PostHandshake::encode`].
//!
//! ```
//! use cable_proto::advert::{decrypt_advert, encrypt_eid, Eid};
//! use cable_proto::handshake::{Initiator, Responder};
//! use cable_proto::ids::RoutingId;
//! use cable_proto::message::{Message, PostHandshake};
//! use cable_proto::qr::{QrCode, QrKey, RequestHint};
//! use cable_proto::rand_core::OsRng;
//!
//! // Desktop: show a QR code.
//! let qr_key = QrKey::generate(&mut OsRng, 1_700_000_000, RequestHint::GetAssertion);
//! let uri = qr_key.to_uri();
//!
//! // Phone: scan it, advertise.
//! let code = QrCode::parse(&uri)?;
//! let eid = Eid::new(&mut OsRng, RoutingId::from_bytes([1, 2, 3]), 0);
//! let advert = encrypt_eid(&code.secret.eid_key(), &eid.to_bytes());
//!
//! // Desktop: recognise the advert, start the handshake.
//! let seen = decrypt_advert(&qr_key.secret().eid_key(), &advert)?;
//! let psk = qr_key.secret().psk(&seen.plaintext);
//! let (initiator, msg1) = Initiator::new_qr(&qr_key, &psk, &mut OsRng)?;
//!
//! // Phone: answer and send the post-handshake message.
//! let (msg2, mut phone) =
//!     Responder::respond_qr(&code.public_key, &code.secret.psk(&eid.to_bytes()), &msg1, &mut OsRng)?;
//! let first = phone.crypter.encrypt(&PostHandshake::new(vec![0xa0]).encode())?;
//!
//! // Desktop: finish and read it.
//! let mut desktop = initiator.finish(&msg2)?;
//! assert_eq!(desktop.handshake_hash, phone.handshake_hash);
//! let (post, _revision) = PostHandshake::decode(&desktop.crypter.decrypt(&first)?)?;
//! assert!(post.supports_ctap());
//! let shutdown = desktop.crypter.encrypt(&Message::Shutdown.encode())?;
//! assert_eq!(Message::decode(&phone.crypter.decrypt(&shutdown)?)?, Message::Shutdown);
//! # Ok::<(), cable_proto::Error>(())
//! ```
//!
//! ## Central types
//! * [`qr::QrKey`] / [`qr::QrCode`]: the desktop's key and the QR contents.
//! * [`handshake::Initiator`], [`handshake::Responder`]: Noise KNpsk0/NKpsk0 via `snow`.
//! * [`crypter::Crypter`]: the padded AES-GCM transport cipher.
//! * [`cbor::Value`]: canonical CTAP2 CBOR, strictly decoded.
//! * [`Error`]: the one error type; parsers never panic.
//!
//! ## Module map
//! | module | contents |
//! |---|---|
//! | [`qr`] | `QrKey::{generate, from_seed, from_private_key, with_state_assisted, to_uri}`, `QrCode::{parse, from_cbor, to_cbor, to_uri}`, `QrSecret::{eid_key, tunnel_id, psk}`, `RequestHint` |
//! | [`digits`] | `encode`, `decode` (QR numeric encoding) |
//! | [`cbor`] | `Value` (canonical order built in), `decode`, `decode_prefix`, `map_get` |
//! | [`derive`](mod@derive) | `derive`, `derive_32`, `DerivedValueType`, `EidKey::derive`, `Psk::derive` |
//! | [`keys`] | SEC1 encodings, `ecdh_x`, `random_secret_key`, `derive_private_key_from_seed` (BoringSSL) |
//! | [`ids`] | `TunnelId` (redacted `Debug`, `short_hash`), `RoutingId` (hex either case in, upper case out) |
//! | [`domain`] | `host_for_domain_id`, `is_known_domain_id`, `assigned_domain_id`, `find_domain_id`, `new_path`, `connect_path`, `contact_path`, `new_url`, `connect_url`, `contact_url`, `TunnelPath::parse` |
//! | [`wire`] | `SUBPROTOCOL` (`fido.cable`) and the `X-caBLE-*` header names |
//! | [`advert`] | `Eid::{new, to_bytes, from_bytes}`, `encrypt_eid`, `decrypt_advert` → `DecryptedAdvert` |
//! | [`handshake`] | `Initiator::{new_qr, new_linked, finish}`, `Responder::{respond_qr, respond_linked}` → `HandshakeOutput { crypter, handshake_hash }` |
//! | [`crypter`] | `Crypter::{new, encrypt, decrypt, decrypt_first_accepting_legacy}`, `pad`, `unpad` |
//! | [`message`] | `PostHandshake`, `ProtocolRevision`, `Message`, `UpdateMessage`, `LinkingInfo`, `LinkSecret`, `linking_signature`, `ClientPayload` |
//! | [`push`] | `PushPayload::{encode, decode}`: what this project's relay pushes to a linked phone |
//! | [`ctap`] | `CtapRequest`, `CtapResponse`, `command::*`, `status::*` |
//!
//! Secrets ([`qr::QrSecret`], [`derive::Psk`], [`derive::EidKey`],
//! [`message::LinkSecret`], private keys) are zeroized on drop and redacted
//! in `Debug`; tags and signatures are compared in constant time.

pub mod advert;
pub mod cbor;
pub mod crypter;
pub mod ctap;
pub mod derive;
pub mod digits;
pub mod domain;
mod error;
pub mod handshake;
pub mod ids;
pub mod keys;
pub mod message;
pub mod push;
pub mod qr;
mod secret;
pub mod session;
pub mod wire;

pub use error::{CborErrorKind, Error, HexIdErrorKind, Result, TunnelPathErrorKind};

/// Re-exported so callers can name key types without depending on `p256` directly.
pub use p256::{PublicKey, SecretKey};
/// Re-exported RNG traits (rand_core 0.6, the version `p256` and `snow` use).
pub use rand_core;
