//! A relay in-process, the in-memory air, and a computer side scripted from cable-proto.

#![allow(dead_code, clippy::unwrap_used, clippy::result_large_err)]

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cable_ble::{Air, Scanner};
use cable_phone::{Deadlines, Outcome, PhoneError, PhoneSession, Progress};
use cable_proto::advert::{decrypt_advert, DecryptedAdvert};
use cable_proto::cbor::{self, Value};
use cable_proto::ctap::{CtapRequest, CtapResponse};
use cable_proto::handshake::Initiator;
use cable_proto::message::{Message, PostHandshake, UpdateMessage};
use cable_proto::qr::{QrKey, RequestHint};
use cable_proto::rand_core::OsRng;
use cable_transport::{Connector, EncryptedChannel, RelayUrl, TunnelConnection};
use cable_tunnel_server::{Relay, RelayConfig, RunningRelay};
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

pub fn soon() -> Instant {
    Instant::now() + Duration::from_secs(5)
}

pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

pub fn qr_key(hint: RequestHint) -> QrKey {
    QrKey::generate(&mut OsRng, unix_now(), hint)
}

/// Short deadlines so failing tests fail fast.
pub fn test_deadlines() -> Deadlines {
    let mut d = Deadlines::default();
    d.open_tunnel = Duration::from_secs(5);
    d.advertise = Duration::from_secs(2);
    d.await_computer = Duration::from_secs(10);
    d.handshake = Duration::from_secs(5);
    d.await_request = Duration::from_secs(10);
    d.authenticate = Duration::from_secs(10);
    d.reply = Duration::from_secs(5);
    d.close = Duration::from_secs(1);
    d
}

pub struct Env {
    pub relay: RunningRelay,
    pub air: Air,
}

impl Env {
    pub async fn start() -> Env {
        let relay = Relay::bind(RelayConfig::default()).await.unwrap();
        Env {
            relay,
            air: Air::with_interval(Duration::from_millis(10)),
        }
    }

    pub fn relay_url(&self) -> RelayUrl {
        RelayUrl::parse(&self.relay.url()).unwrap()
    }

    /// A phone session for `qr` on this relay and air.
    pub fn phone(
        &self,
        qr: &QrKey,
        authenticator: impl cable_phone::Authenticator + 'static,
    ) -> PhoneSession {
        PhoneSession::new(qr.to_uri(), self.air.advertiser(), authenticator)
            .relay(self.relay_url())
            .deadlines(test_deadlines())
    }
}

pub struct RunningPhone {
    pub task: JoinHandle<Result<Outcome, PhoneError>>,
    pub progress: mpsc::UnboundedReceiver<Progress>,
    pub cancel: CancellationToken,
}

pub fn spawn_phone(mut session: PhoneSession) -> RunningPhone {
    let progress = session.progress();
    let cancel = CancellationToken::new();
    let task = tokio::spawn(session.run(cancel.clone()));
    RunningPhone {
        task,
        progress,
        cancel,
    }
}

impl RunningPhone {
    pub async fn result(self) -> Result<Outcome, PhoneError> {
        tokio::time::timeout(Duration::from_secs(30), self.task)
            .await
            .expect("phone session did not end")
            .expect("phone session panicked")
    }
}

/// Scans the air until an advert decrypts with the QR secret's EID key.
pub async fn scan_advert(air: &Air, qr: &QrKey) -> DecryptedAdvert {
    let key = qr.secret().eid_key();
    let mut stream = air.scanner().start_scan().await.unwrap();
    let found = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let advert = stream.next_advert().await.unwrap().unwrap();
            if let Ok(d) = decrypt_advert(&key, advert.service_data()) {
                return d;
            }
        }
    })
    .await
    .expect("no advert");
    stream.stop().await;
    found
}

/// Joins the tunnel named by the advert.
pub async fn join(env: &Env, qr: &QrKey, advert: &DecryptedAdvert) -> TunnelConnection {
    let tunnel_id = qr.secret().tunnel_id();
    Connector::new()
        .unwrap()
        .connect_tunnel(
            &env.relay_url(),
            &advert.eid().routing_id,
            &tunnel_id,
            soon(),
        )
        .await
        .unwrap()
}

/// The scripted computer after a successful handshake.
pub struct Computer {
    pub channel: EncryptedChannel,
    pub post: PostHandshake,
    /// The update message that follows the post-handshake message in a QR session.
    pub update: Option<UpdateMessage>,
    /// Its ciphertext's length.
    pub update_len: usize,
    pub handshake_hash: [u8; 32],
}

/// Scans, joins, runs the KNpsk0 initiator and reads the post-handshake message and the
/// update message that follows it.
pub async fn computer_connect(env: &Env, qr: &QrKey) -> Computer {
    let advert = scan_advert(&env.air, qr).await;
    let mut conn = join(env, qr, &advert).await;
    let psk = qr.secret().psk(&advert.plaintext);
    let (initiator, msg1) = Initiator::new_qr(qr, &psk, &mut OsRng).unwrap();
    conn.send(msg1.to_vec(), soon()).await.unwrap();
    let msg2 = conn.recv(soon()).await.unwrap();
    assert_eq!(msg2.len(), 81);
    let output = initiator.finish(&msg2).unwrap();
    let mut crypter = output.crypter;
    let first = conn.recv(soon()).await.unwrap();
    let (post, revision) = PostHandshake::decode(&crypter.decrypt(&first).unwrap()).unwrap();
    assert_eq!(revision, cable_proto::message::ProtocolRevision::One);
    let second = conn.recv(soon()).await.unwrap();
    let update = match Message::decode(&crypter.decrypt(&second).unwrap()).unwrap() {
        Message::Update(update) => update,
        other => panic!("expected the update message, got {other:?}"),
    };
    Computer {
        channel: EncryptedChannel::new(conn, crypter),
        post,
        update: Some(update),
        update_len: second.len(),
        handshake_hash: output.handshake_hash,
    }
}

/// The state-assisted computer: opens a tunnel as the relay would for a contact, hands its
/// routing id and tunnel id to the phone (as the push would), scans for the advert keyed by
/// the link secret and the client nonce, and runs NKpsk0 towards the stored identity key.
pub struct LinkedComputer {
    pub conn: TunnelConnection,
    pub routing_id: cable_proto::ids::RoutingId,
    pub tunnel_id: cable_proto::ids::TunnelId,
}

impl LinkedComputer {
    /// Opens `/cable/new/<random tunnel id>` in place of the relay's contact tunnel.
    pub async fn open(env: &Env) -> LinkedComputer {
        let mut id = [0u8; 16];
        cable_proto::rand_core::RngCore::fill_bytes(&mut OsRng, &mut id);
        let tunnel_id = cable_proto::ids::TunnelId::from_bytes(id);
        let (conn, routing_id) = Connector::new()
            .unwrap()
            .open_new_tunnel(&env.relay_url(), &tunnel_id, soon())
            .await
            .unwrap();
        LinkedComputer {
            conn,
            routing_id,
            tunnel_id,
        }
    }

    /// Scans, handshakes and reads the post-handshake message.
    pub async fn handshake(
        mut self,
        env: &Env,
        link_secret: &cable_proto::message::LinkSecret,
        client_nonce: &[u8; 16],
        phone_identity: &p256::PublicKey,
    ) -> Computer {
        let key = link_secret.eid_key(client_nonce);
        let mut stream = env.air.scanner().start_scan().await.unwrap();
        let advert = tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                let advert = stream.next_advert().await.unwrap().unwrap();
                if let Ok(d) = decrypt_advert(&key, advert.service_data()) {
                    return d;
                }
            }
        })
        .await
        .expect("no advert");
        stream.stop().await;
        assert_eq!(advert.plaintext[0], 0);
        let psk = link_secret.psk(&advert.plaintext);
        let (initiator, msg1) = Initiator::new_linked(phone_identity, &psk, &mut OsRng).unwrap();
        self.conn.send(msg1.to_vec(), soon()).await.unwrap();
        let msg2 = self.conn.recv(soon()).await.unwrap();
        assert_eq!(msg2.len(), 81);
        let output = initiator.finish(&msg2).unwrap();
        let mut channel = EncryptedChannel::new(self.conn, output.crypter);
        let first = channel.recv(soon()).await.unwrap();
        let (post, _) = PostHandshake::decode(&first).unwrap();
        Computer {
            channel,
            post,
            update: None,
            update_len: 0,
            handshake_hash: output.handshake_hash,
        }
    }
}

impl Computer {
    /// Sends one CTAP request and returns the response.
    pub async fn request(&mut self, command: u8, params: Value) -> CtapResponse {
        let frame = Message::Ctap(CtapRequest::new(command, params).encode()).encode();
        self.channel.send(&frame, soon()).await.unwrap();
        let reply = self.channel.recv(soon()).await.unwrap();
        match Message::decode(&reply).unwrap() {
            Message::Ctap(bytes) => CtapResponse::decode(&bytes).unwrap(),
            other => panic!("unexpected {other:?}"),
        }
    }
}

pub fn text(s: &str) -> Value {
    Value::Text(s.to_owned())
}

pub fn client_data_hash(seed: &str) -> [u8; 32] {
    Sha256::digest(seed.as_bytes()).into()
}

/// makeCredential as libwebauthn sends it: keys 1, 2, 3, 4, 7 with options {rk, uv}.
pub fn make_credential_params(rp_id: &str, cdh: &[u8; 32], user_id: &[u8]) -> Value {
    Value::map([
        (Value::Unsigned(1), Value::Bytes(cdh.to_vec())),
        (
            Value::Unsigned(2),
            Value::map([(text("id"), text(rp_id)), (text("name"), text("Example"))]),
        ),
        (
            Value::Unsigned(3),
            Value::map([
                (text("id"), Value::Bytes(user_id.to_vec())),
                (text("name"), text("alice")),
                (text("displayName"), text("Alice")),
            ]),
        ),
        (
            Value::Unsigned(4),
            Value::Array(vec![
                Value::map([
                    (text("alg"), Value::integer(-8)),
                    (text("type"), text("public-key")),
                ]),
                Value::map([
                    (text("alg"), Value::integer(-7)),
                    (text("type"), text("public-key")),
                ]),
            ]),
        ),
        (
            Value::Unsigned(7),
            Value::map([
                (text("rk"), Value::Bool(true)),
                (text("uv"), Value::Bool(true)),
            ]),
        ),
    ])
}

/// getAssertion as libwebauthn sends it: keys 1, 2, 3 (optional), 5 with options {up, uv}.
pub fn get_assertion_params(rp_id: &str, cdh: &[u8; 32], allow: Option<&[u8]>) -> Value {
    let mut entries = vec![
        (Value::Unsigned(1), text(rp_id)),
        (Value::Unsigned(2), Value::Bytes(cdh.to_vec())),
        (
            Value::Unsigned(5),
            Value::map([
                (text("up"), Value::Bool(true)),
                (text("uv"), Value::Bool(true)),
            ]),
        ),
    ];
    if let Some(id) = allow {
        entries.push((
            Value::Unsigned(3),
            Value::Array(vec![Value::map([
                (text("id"), Value::Bytes(id.to_vec())),
                (text("type"), text("public-key")),
            ])]),
        ));
    }
    Value::map(entries)
}

/// authenticatorData, parsed.
#[derive(Debug)]
pub struct AuthData {
    pub rp_id_hash: [u8; 32],
    pub flags: u8,
    pub counter: u32,
    pub aaguid: Option<[u8; 16]>,
    pub credential_id: Option<Vec<u8>>,
    pub public_key: Option<p256::ecdsa::VerifyingKey>,
}

pub const UP: u8 = 0x01;
pub const UV: u8 = 0x04;
pub const AT: u8 = 0x40;
pub const ED: u8 = 0x80;

pub fn parse_auth_data(bytes: &[u8]) -> AuthData {
    assert!(bytes.len() >= 37, "authData too short");
    let mut rp_id_hash = [0u8; 32];
    rp_id_hash.copy_from_slice(&bytes[..32]);
    let flags = bytes[32];
    let counter = u32::from_be_bytes(bytes[33..37].try_into().unwrap());
    let mut out = AuthData {
        rp_id_hash,
        flags,
        counter,
        aaguid: None,
        credential_id: None,
        public_key: None,
    };
    if flags & AT != 0 {
        let rest = &bytes[37..];
        out.aaguid = Some(rest[..16].try_into().unwrap());
        let len = usize::from(u16::from_be_bytes([rest[16], rest[17]]));
        out.credential_id = Some(rest[18..18 + len].to_vec());
        let (cose, used) = cbor::decode_prefix(&rest[18 + len..]).unwrap();
        assert_eq!(
            18 + len + used,
            rest.len(),
            "trailing bytes after the COSE key"
        );
        let m = cose.as_map().unwrap();
        let get = |k: i64| m.get(&Value::integer(k)).unwrap().clone();
        assert_eq!(get(1), Value::integer(2), "kty EC2");
        assert_eq!(get(3), Value::integer(-7), "alg ES256");
        assert_eq!(get(-1), Value::integer(1), "crv P-256");
        let x = get(-2);
        let y = get(-3);
        let mut sec1 = vec![4u8];
        sec1.extend_from_slice(x.as_bytes().unwrap());
        sec1.extend_from_slice(y.as_bytes().unwrap());
        out.public_key = Some(p256::ecdsa::VerifyingKey::from_sec1_bytes(&sec1).unwrap());
    }
    out
}

pub fn rp_id_hash(rp_id: &str) -> [u8; 32] {
    Sha256::digest(rp_id.as_bytes()).into()
}
