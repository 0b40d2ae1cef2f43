//! Framing of transport messages after the post-handshake message
//! (protocol revision 1): one type byte, then the payload.

use super::linking::UpdateMessage;
use crate::error::{Error, Result};

/// The type byte of a framed message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum MessageType {
    /// Desktop → phone only: the desktop is done.
    Shutdown = 0,
    /// A CTAP request (command byte ‖ CBOR) or response (status ‖ CBOR).
    Ctap = 1,
    /// Phone → desktop: linking data.
    Update = 2,
    /// UTF-8 JSON (digital credentials, feature `"dc"`).
    Json = 3,
}

/// A decoded framed message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// Type 0. Any payload is ignored, as Chromium does.
    Shutdown,
    /// Type 1: the raw CTAP bytes; see [`crate::ctap`] to interpret them.
    Ctap(Vec<u8>),
    /// Type 2: an update, usually carrying linking data.
    Update(UpdateMessage),
    /// Type 3: JSON text.
    Json(String),
}

impl Message {
    /// The message's type.
    pub fn message_type(&self) -> MessageType {
        match self {
            Message::Shutdown => MessageType::Shutdown,
            Message::Ctap(_) => MessageType::Ctap,
            Message::Update(_) => MessageType::Update,
            Message::Json(_) => MessageType::Json,
        }
    }

    /// The plaintext to hand to the crypter. Updates use Chrome's padded
    /// form (see [`UpdateMessage::encode`]).
    pub fn encode(&self) -> Vec<u8> {
        match self {
            Message::Shutdown => vec![MessageType::Shutdown as u8],
            Message::Ctap(bytes) => framed(MessageType::Ctap, bytes),
            Message::Update(update) => update.encode(),
            Message::Json(text) => framed(MessageType::Json, text.as_bytes()),
        }
    }

    /// Parses a decrypted plaintext.
    pub fn decode(plaintext: &[u8]) -> Result<Message> {
        let (&ty, payload) = plaintext.split_first().ok_or(Error::EmptyMessage)?;
        match ty {
            0 => Ok(Message::Shutdown),
            1 if payload.is_empty() => Err(Error::EmptyCtap),
            1 => Ok(Message::Ctap(payload.to_vec())),
            2 => Ok(Message::Update(UpdateMessage::decode_payload(payload)?)),
            3 => core::str::from_utf8(payload)
                .map(|s| Message::Json(s.to_owned()))
                .map_err(|_| Error::JsonNotUtf8),
            value => Err(Error::UnknownMessageType { value }),
        }
    }
}

fn framed(ty: MessageType, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 1);
    out.push(ty as u8);
    out.extend_from_slice(payload);
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn framing() {
        assert_eq!(Message::decode(&[0]).unwrap(), Message::Shutdown);
        assert_eq!(Message::Shutdown.encode(), vec![0]);
        assert_eq!(Message::decode(&[1, 4]).unwrap(), Message::Ctap(vec![4]));
        assert_eq!(Message::decode(&[1]), Err(Error::EmptyCtap));
        assert_eq!(Message::decode(&[]), Err(Error::EmptyMessage));
        assert_eq!(
            Message::decode(&[4]),
            Err(Error::UnknownMessageType { value: 4 })
        );
        assert_eq!(Message::decode(&[3, 0xff]), Err(Error::JsonNotUtf8));
        assert_eq!(
            Message::decode(b"\x03{}").unwrap(),
            Message::Json("{}".into())
        );
        let ctap = Message::Ctap(vec![1, 0xa0]);
        assert_eq!(Message::decode(&ctap.encode()).unwrap(), ctap);
    }
}
