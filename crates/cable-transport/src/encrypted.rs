//! A tunnel connection after the Noise handshake: plaintext in, ciphertext on the wire.

use std::time::Duration;

use cable_proto::crypter::Crypter;
use tokio::time::Instant;

use crate::connection::TunnelConnection;
use crate::error::TransportError;

/// How long to wait for the closing handshake after a message failed to decrypt.
const CLOSE_AFTER_FAILURE: Duration = Duration::from_secs(1);

/// A [`TunnelConnection`] paired with the session's [`Crypter`] (padding + AES-GCM, §7).
///
/// Every message on the wire is one encrypted plaintext. A message that fails to decrypt
/// (tampered, replayed, out of order, wrong key) is fatal: the connection is closed and
/// [`TransportError::Decrypt`] returned, because the counters can no longer agree.
#[derive(Debug)]
pub struct EncryptedChannel {
    conn: TunnelConnection,
    crypter: Crypter,
}

impl EncryptedChannel {
    /// Wraps a connection whose handshake produced `crypter`.
    pub fn new(conn: TunnelConnection, crypter: Crypter) -> Self {
        Self { conn, crypter }
    }

    /// Pads, encrypts and sends one plaintext.
    pub async fn send(
        &mut self,
        plaintext: &[u8],
        deadline: Instant,
    ) -> Result<(), TransportError> {
        if !self.conn.is_open() {
            return Err(TransportError::Closed);
        }
        let ciphertext = self
            .crypter
            .encrypt(plaintext)
            .map_err(TransportError::Encrypt)?;
        self.conn.send(ciphertext, deadline).await
    }

    /// Receives, decrypts and unpads one message.
    pub async fn recv(&mut self, deadline: Instant) -> Result<Vec<u8>, TransportError> {
        let ciphertext = self.conn.recv(deadline).await?;
        match self.crypter.decrypt(&ciphertext) {
            Ok(plaintext) => Ok(plaintext),
            Err(e) => {
                // The session is over either way; do not let a silent peer hold it open.
                let close_by = deadline.min(Instant::now() + CLOSE_AFTER_FAILURE);
                let _ = self.conn.close(close_by).await;
                Err(TransportError::Decrypt(e))
            }
        }
    }

    /// Closes the WebSocket (see [`TunnelConnection::close`]).
    pub async fn close(&mut self, deadline: Instant) -> Result<(), TransportError> {
        self.conn.close(deadline).await
    }

    /// True until the connection was closed or failed.
    pub fn is_open(&self) -> bool {
        self.conn.is_open()
    }

    /// The underlying connection, e.g. to send raw bytes in tests.
    pub fn connection_mut(&mut self) -> &mut TunnelConnection {
        &mut self.conn
    }

    /// Splits into the connection and the cipher state.
    pub fn into_parts(self) -> (TunnelConnection, Crypter) {
        (self.conn, self.crypter)
    }
}
