//! A phone scripted step by step from `cable-proto` and `cable-transport`, so tests can make it
//! misbehave at any point (vanish, stall, tamper, speak revision 0, send linking data).

use cable_ble::{AdvertGuard, Advertiser, Air};
use cable_proto::advert::{encrypt_eid, Eid};
use cable_proto::handshake::{HandshakeOutput, Responder};
use cable_proto::ids::RoutingId;
use cable_proto::qr::QrCode;
use cable_proto::rand_core::OsRng;
use cable_transport::{Connector, EncryptedChannel, Instant, RelayUrl, TunnelConnection};
use std::time::Duration;

/// Why a scripted step failed.
#[derive(Debug, thiserror::Error)]
pub enum ScriptError {
    /// The protocol core refused a step.
    #[error("protocol")]
    Proto(#[from] cable_proto::Error),
    /// The tunnel failed.
    #[error("transport")]
    Transport(#[from] cable_transport::TransportError),
    /// The air failed.
    #[error("ble")]
    Ble(#[from] cable_ble::BleError),
}

fn soon() -> Instant {
    Instant::now() + Duration::from_secs(5)
}

/// A phone that has opened its tunnel and is advertising.
#[derive(Debug)]
pub struct ScriptedPhone {
    /// The tunnel to the relay.
    pub conn: TunnelConnection,
    /// The QR code it scanned.
    pub qr: QrCode,
    /// The EID plaintext it advertises.
    pub eid: [u8; 16],
    advert: Option<AdvertGuard>,
}

impl ScriptedPhone {
    /// Scans `qr_uri`, opens `/cable/new/` on `relay` and advertises on `air`.
    pub async fn open(air: &Air, relay: &RelayUrl, qr_uri: &str) -> Result<Self, ScriptError> {
        let qr = QrCode::parse(qr_uri)?;
        let connector = Connector::builder().public_roots(false).build()?;
        let tunnel_id = qr.secret.tunnel_id();
        let (conn, routing) = connector.open_new_tunnel(relay, &tunnel_id, soon()).await?;
        let eid = Eid::new(&mut OsRng, routing, 0).to_bytes();
        let advert = advertise(air, &qr, &eid).await?;
        Ok(ScriptedPhone {
            conn,
            qr,
            eid,
            advert: Some(advert),
        })
    }

    /// Waits for the computer's first handshake message.
    pub async fn recv_msg1(&mut self) -> Result<Vec<u8>, ScriptError> {
        let msg1 = self.conn.recv(soon()).await?;
        if let Some(advert) = self.advert.take() {
            advert.stop().await?;
        }
        Ok(msg1)
    }

    /// Answers `msg1` correctly; returns the session keys.
    pub async fn respond(&mut self, msg1: &[u8]) -> Result<HandshakeOutput, ScriptError> {
        let psk = self.qr.secret.psk(&self.eid);
        let (msg2, output) = Responder::respond_qr(&self.qr.public_key, &psk, msg1, &mut OsRng)?;
        self.conn.send(msg2.to_vec(), soon()).await?;
        Ok(output)
    }

    /// Runs the handshake and returns the encrypted channel.
    pub async fn handshake(mut self) -> Result<(EncryptedChannel, [u8; 32]), ScriptError> {
        let msg1 = self.recv_msg1().await?;
        let output = self.respond(&msg1).await?;
        Ok((
            EncryptedChannel::new(self.conn, output.crypter),
            output.handshake_hash,
        ))
    }
}

/// Puts the encrypted EID for `qr` on the air.
pub async fn advertise(air: &Air, qr: &QrCode, eid: &[u8; 16]) -> Result<AdvertGuard, ScriptError> {
    let payload = encrypt_eid(&qr.secret.eid_key(), eid);
    Ok(air.advertiser().start_advertising(payload).await?)
}

/// A phone that only advertises for `qr_uri` (routing id `routing`, domain 0) and never opens
/// a tunnel: for tests of what happens after the advert.
pub async fn advertise_only(
    air: &Air,
    qr_uri: &str,
    routing: [u8; 3],
) -> Result<AdvertGuard, ScriptError> {
    let qr = QrCode::parse(qr_uri)?;
    let eid = Eid::new(&mut OsRng, RoutingId::from_bytes(routing), 0).to_bytes();
    advertise(air, &qr, &eid).await
}

/// An expiring deadline a few seconds out, for scripted sends and receives.
pub fn deadline() -> Instant {
    soon()
}
