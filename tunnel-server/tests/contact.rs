//! Contacts end to end on loopback: register a subscription, contact it, and act as the phone
//! that a loopback Web Push endpoint (decrypting with the subscription's own keys) wakes up.
#![allow(clippy::unwrap_used)]

use std::convert::Infallible;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::Arc;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use cable_proto::ids::RoutingId;
use cable_proto::push::PushPayload;
use cable_tunnel_server::contact::ContactKeys;
use cable_tunnel_server::{
    ContactConfig, ContactOutcome, PushFailure, Relay, RelayConfig, RunningRelay, VapidKey,
    SUBPROTOCOL,
};
use futures_util::{SinkExt, StreamExt};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use p256::elliptic_curve::sec1::ToEncodedPoint;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::WebSocketStream;
use web_push_native::jwt_simple::algorithms::{ECDSAP256PublicKeyLike, ES256PublicKey};
use web_push_native::jwt_simple::claims::NoCustomClaims;

const WAIT: Duration = Duration::from_secs(5);
const K1: &str = "1 0101010101010101010101010101010101010101010101010101010101010101";
const K2: &str = "2 0202020202020202020202020202020202020202020202020202020202020202";
const CLIENT_PAYLOAD: [u8; 4] = [0xa1, 0x01, 0x42, 0xbe];

type Client = WebSocketStream<TcpStream>;

/// What the loopback push service received, decrypted.
struct Delivered {
    plaintext: Vec<u8>,
    headers: http::HeaderMap,
}

/// A Web Push endpoint on 127.0.0.1 answering with `status`; it decrypts each message with the
/// subscription's private key and auth secret and checks the VAPID signature.
struct PushService {
    url: String,
    status: Arc<AtomicU16>,
    rx: mpsc::UnboundedReceiver<Delivered>,
    secret: p256::SecretKey,
    auth: [u8; 16],
}

async fn push_service(vapid_public: String) -> PushService {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/push/SECRETPATH", listener.local_addr().unwrap());
    let status = Arc::new(AtomicU16::new(201));
    let (tx, rx) = mpsc::unbounded_channel();
    let secret = p256::SecretKey::random(&mut rand_core::OsRng);
    let auth = [0x5a; 16];
    let (status2, secret2) = (status.clone(), secret.clone());
    tokio::spawn(async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            let (tx, status, secret, vapid_public) = (
                tx.clone(),
                status.clone(),
                secret2.clone(),
                vapid_public.clone(),
            );
            tokio::spawn(async move {
                let service =
                    hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
                        let (tx, status, secret, vapid_public) = (
                            tx.clone(),
                            status.clone(),
                            secret.clone(),
                            vapid_public.clone(),
                        );
                        async move {
                            let (parts, body) = req.into_parts();
                            let body = body.collect().await.unwrap().to_bytes().to_vec();
                            assert_eq!(parts.uri.path(), "/push/SECRETPATH");
                            assert_eq!(parts.headers["content-encoding"], "aes128gcm");
                            assert_eq!(parts.headers["urgency"], "high");
                            let vapid = parts.headers["authorization"].to_str().unwrap();
                            let rest = vapid.strip_prefix("vapid t=").unwrap();
                            let (token, k) = rest.split_once(", k=").unwrap();
                            assert_eq!(k, vapid_public);
                            let key =
                                ES256PublicKey::from_bytes(&URL_SAFE_NO_PAD.decode(k).unwrap())
                                    .unwrap();
                            let claims = key.verify_token::<NoCustomClaims>(token, None).unwrap();
                            assert!(claims.audiences.is_some() && claims.expires_at.is_some());
                            let plaintext =
                                web_push_native::decrypt(body, &secret, &auth.into()).unwrap();
                            let _ = tx.send(Delivered {
                                plaintext,
                                headers: parts.headers,
                            });
                            let mut response = http::Response::new(Full::new(Bytes::new()));
                            *response.status_mut() =
                                http::StatusCode::from_u16(status.load(Ordering::Relaxed)).unwrap();
                            Ok::<_, Infallible>(response)
                        }
                    });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tcp), service)
                    .await;
            });
        }
    });
    PushService {
        url,
        status: status2,
        rx,
        secret,
        auth,
    }
}

impl PushService {
    fn subscription_json(&self) -> String {
        let p256dh = self.secret.public_key().to_encoded_point(false);
        format!(
            r#"{{"endpoint":"{}","expirationTime":null,"keys":{{"p256dh":"{}","auth":"{}"}}}}"#,
            self.url,
            URL_SAFE_NO_PAD.encode(p256dh.as_bytes()),
            URL_SAFE_NO_PAD.encode(self.auth)
        )
    }

    async fn next(&mut self) -> Delivered {
        tokio::time::timeout(WAIT, self.rx.recv())
            .await
            .expect("no push arrived")
            .unwrap()
    }
}

async fn relay(keys: &str, vapid: VapidKey) -> RunningRelay {
    let mut contact = ContactConfig::new(ContactKeys::parse(keys).unwrap(), vapid);
    contact.allow_insecure_push = true;
    contact.push_timeout = Duration::from_secs(2);
    let mut config = RelayConfig::default();
    config.routing_id = RoutingId::from_bytes([0x0a, 0x0b, 0x0c]);
    config.contact = Some(contact);
    config.limits.close_timeout = Duration::from_millis(200);
    Relay::bind(config).await.unwrap()
}

/// One raw HTTP request; returns the status and the body.
async fn http(relay: &RunningRelay, raw: &[u8]) -> (u16, String) {
    let mut tcp = TcpStream::connect(relay.local_addr()).await.unwrap();
    tcp.write_all(raw).await.unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(WAIT, tcp.read_to_end(&mut out))
        .await
        .unwrap()
        .unwrap();
    let text = String::from_utf8(out).unwrap();
    let status = text[9..12].parse().unwrap();
    let body = text.split_once("\r\n\r\n").unwrap().1.to_owned();
    (status, body)
}

async fn register_raw(relay: &RunningRelay, body: &str) -> (u16, String) {
    let raw = format!(
        "POST /cable/push/register HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    http(relay, raw.as_bytes()).await
}

async fn register(relay: &RunningRelay, push: &PushService) -> String {
    let (status, body) = register_raw(relay, &push.subscription_json()).await;
    assert_eq!(status, 200, "{body}");
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    json["contact_id"].as_str().unwrap().to_owned()
}

/// Contacts `id`; returns the computer's socket and whether the signal was echoed, or the
/// refusal's status.
async fn contact(relay: &RunningRelay, id: &str, signal: bool) -> Result<(Client, bool), u16> {
    let addr = relay.local_addr();
    let mut req = format!("ws://{addr}/cable/contact/{id}")
        .into_client_request()
        .unwrap();
    let h = req.headers_mut();
    h.insert(
        "Sec-WebSocket-Protocol",
        HeaderValue::from_static(SUBPROTOCOL),
    );
    // Lower-case hex, as libwebauthn sends it.
    h.insert(
        "X-caBLE-Client-Payload",
        HeaderValue::from_str(&hex::encode(CLIENT_PAYLOAD)).unwrap(),
    );
    if signal {
        h.insert(
            "X-caBLE-Signal-Connection",
            HeaderValue::from_static("true"),
        );
    }
    let tcp = TcpStream::connect(addr).await.unwrap();
    match tokio::time::timeout(WAIT, tokio_tungstenite::client_async(req, tcp))
        .await
        .unwrap()
    {
        Ok((ws, resp)) => {
            assert_eq!(resp.headers()["sec-websocket-protocol"], SUBPROTOCOL);
            assert!(resp.headers().get("x-cable-routing-id").is_none());
            let echoed = resp
                .headers()
                .get("x-cable-signal-connection")
                .is_some_and(|v| v == "true");
            Ok((ws, echoed))
        }
        Err(WsError::Http(resp)) => Err(resp.status().as_u16()),
        Err(e) => panic!("{e}"),
    }
}

async fn recv(ws: &mut Client) -> Vec<u8> {
    match tokio::time::timeout(WAIT, ws.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap()
    {
        Message::Binary(b) => b.to_vec(),
        other => panic!("expected binary, got {other:?}"),
    }
}

/// The phone's side: decode the push, connect to the tunnel.
async fn phone_joins(relay: &RunningRelay, delivered: &Delivered) -> Client {
    let payload = PushPayload::decode(&delivered.plaintext).unwrap();
    assert_eq!(payload.routing_id, relay.routing_id());
    assert_eq!(payload.client_payload, CLIENT_PAYLOAD);
    let path = format!(
        "ws://{}/cable/connect/{}/{}",
        relay.local_addr(),
        payload.routing_id.to_hex(),
        payload.tunnel_id.to_hex()
    );
    let mut req = path.into_client_request().unwrap();
    req.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        HeaderValue::from_static(SUBPROTOCOL),
    );
    let tcp = TcpStream::connect(relay.local_addr()).await.unwrap();
    tokio_tungstenite::client_async(req, tcp).await.unwrap().0
}

#[tokio::test]
async fn register_contact_and_relay_with_and_without_the_signal() {
    let vapid = VapidKey::generate();
    let mut push = push_service(vapid.public_key_b64url()).await;
    let relay = relay(K1, vapid).await;
    let id = register(&relay, &push).await;

    for signal in [true, false] {
        let (mut computer, echoed) = contact(&relay, &id, signal).await.unwrap();
        assert_eq!(echoed, signal);
        let delivered = push.next().await;
        let ttl: u64 = delivered.headers["ttl"].to_str().unwrap().parse().unwrap();
        assert_eq!(ttl, 60);
        // The computer speaks first (msg1 may precede the phone); it is buffered.
        computer.send(Message::binary(vec![0x11])).await.unwrap();
        let mut phone = phone_joins(&relay, &delivered).await;
        if signal {
            assert_eq!(recv(&mut computer).await, [0x00]);
        }
        assert_eq!(recv(&mut phone).await, [0x11]);
        phone.send(Message::binary(vec![0x22, 0x33])).await.unwrap();
        assert_eq!(recv(&mut computer).await, [0x22, 0x33]);
        computer.send(Message::binary(vec![0x44])).await.unwrap();
        assert_eq!(recv(&mut phone).await, [0x44]);
        computer.close(None).await.unwrap();
    }
    let m = relay.metrics();
    assert_eq!(m.contacts(ContactOutcome::Ok), 2);
    assert_eq!(m.registrations(Ok(())), 1);
    let text = m.encode();
    assert!(
        text.contains("cable_relay_push_duration_seconds_count 2"),
        "{text}"
    );
}

#[tokio::test]
async fn rotation_keeps_old_ids_for_the_grace_period_only() {
    let vapid = VapidKey::generate();
    let vapid_public = vapid.public_key_b64url();
    let pem = vapid.to_pem().unwrap();
    let mut push = push_service(vapid_public).await;
    let old = relay(K1, vapid).await;
    let id = register(&old, &push).await;
    drop(old);

    let vapid = VapidKey::from_file_contents(pem.as_bytes()).unwrap();
    let grace = relay(&format!("{K2}\n{K1} until=99999999999\n"), vapid).await;
    let (_computer, _) = contact(&grace, &id, false).await.unwrap();
    push.next().await;
    // New registrations are sealed under the new key.
    let new_id = register(&grace, &push).await;
    assert_eq!(URL_SAFE_NO_PAD.decode(&new_id).unwrap()[0], 2);

    let vapid = VapidKey::from_file_contents(pem.as_bytes()).unwrap();
    let expired = relay(&format!("{K2}\n{K1} until=1\n"), vapid).await;
    assert_eq!(contact(&expired, &id, false).await.unwrap_err(), 410);
    assert!(contact(&expired, &new_id, false).await.is_ok());
    assert_eq!(expired.metrics().contacts(ContactOutcome::Gone), 1);
}

#[tokio::test]
async fn push_service_answers_decide_the_status() {
    let vapid = VapidKey::generate();
    let mut push = push_service(vapid.public_key_b64url()).await;
    let relay = relay(K1, vapid).await;
    let id = register(&relay, &push).await;

    push.status.store(410, Ordering::Relaxed);
    assert_eq!(contact(&relay, &id, true).await.unwrap_err(), 410);
    push.next().await;
    push.status.store(404, Ordering::Relaxed);
    assert_eq!(contact(&relay, &id, true).await.unwrap_err(), 410);
    push.next().await;
    push.status.store(500, Ordering::Relaxed);
    assert_eq!(contact(&relay, &id, true).await.unwrap_err(), 503);
    push.next().await;
    push.status.store(400, Ordering::Relaxed);
    assert_eq!(contact(&relay, &id, true).await.unwrap_err(), 502);
    push.next().await;

    let m = relay.metrics();
    assert_eq!(m.push_failures(PushFailure::Gone), 2);
    assert_eq!(m.push_failures(PushFailure::ServerError), 1);
    assert_eq!(m.push_failures(PushFailure::Rejected), 1);
    assert_eq!(m.contacts(ContactOutcome::PushGone), 2);
    assert_eq!(m.contacts(ContactOutcome::PushFailed), 2);
    // Every failed contact freed its tunnel.
    assert_eq!(m.pending(), 0);

    // A push endpoint nobody listens on: a connect failure, 502.
    let dead = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dead_url = format!("http://{}/x", dead.local_addr().unwrap());
    drop(dead);
    let body = push.subscription_json().replace(&push.url, &dead_url);
    let (status, body) = register_raw(&relay, &body).await;
    assert_eq!(status, 200);
    let dead_id: serde_json::Value = serde_json::from_str(&body).unwrap();
    let dead_id = dead_id["contact_id"].as_str().unwrap();
    assert_eq!(contact(&relay, dead_id, false).await.unwrap_err(), 502);
    assert_eq!(m.push_failures(PushFailure::Connect), 1);
}

#[tokio::test]
async fn bad_registrations_get_400_with_a_reason() {
    let vapid = VapidKey::generate();
    let push = push_service(vapid.public_key_b64url()).await;
    let relay = relay(K1, vapid).await;
    let good = push.subscription_json();
    let https_only = {
        let mut c = ContactConfig::new(ContactKeys::parse(K1).unwrap(), VapidKey::generate());
        c.allow_insecure_push = false;
        Relay::bind({
            let mut config = RelayConfig::default();
            config.contact = Some(c);
            config
        })
        .await
        .unwrap()
    };
    let (status, body) = register_raw(&https_only, &good).await;
    assert_eq!((status, body.as_str()), (400, "endpoint must be https\n"));

    let no_auth = good.replace(r#","auth":"#, r#","other":"#);
    let bad_b64 = good.replace(r#""auth":""#, r#""auth":"!!"#);
    for (body, reason) in [
        ("not json".to_owned(), "not a push subscription JSON"),
        (
            r#"{"endpoint":"https://x/y"}"#.to_owned(),
            "not a push subscription JSON",
        ),
        (no_auth, "not a push subscription JSON"),
        (bad_b64, "keys.auth must be base64url"),
        (
            good.replace("http://", "ftp://"),
            "endpoint is not an absolute URL",
        ),
    ] {
        let (status, text) = register_raw(&relay, &body).await;
        assert_eq!(status, 400, "{body}");
        assert!(text.contains(reason), "{body}: {text}");
    }
    let big = format!(
        "POST /cable/push/register HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n{}",
        "x".repeat(5000)
    );
    let (status, text) = http(&relay, big.as_bytes()).await;
    assert_eq!(
        (status, text.as_str()),
        (400, "body larger than 4096 bytes\n")
    );
    let (status, _) = http(
        &relay,
        b"GET /cable/push/register HTTP/1.1\r\nHost: x\r\n\r\n",
    )
    .await;
    assert_eq!(status, 405);
    let m = relay.metrics();
    assert_eq!(
        m.registrations(Err(cable_tunnel_server::contact::RegisterError::NotJson)),
        3
    );
}

#[tokio::test]
async fn bad_contact_ids_get_410_and_bad_payloads_400() {
    let vapid = VapidKey::generate();
    let push = push_service(vapid.public_key_b64url()).await;
    let relay = relay(K1, vapid).await;
    let id = register(&relay, &push).await;
    let raw = URL_SAFE_NO_PAD.decode(&id).unwrap();
    let mut other_key = raw.clone();
    other_key[0] = 7;
    let mut flipped = raw.clone();
    *flipped.last_mut().unwrap() ^= 1;
    for bad in [
        "AAAA".to_owned(),
        URL_SAFE_NO_PAD.encode(&raw[..raw.len() - 1]),
        URL_SAFE_NO_PAD.encode(&raw[..20]),
        URL_SAFE_NO_PAD.encode(other_key),
        URL_SAFE_NO_PAD.encode(flipped),
        "A".repeat(3000),
    ] {
        assert_eq!(contact(&relay, &bad, true).await.unwrap_err(), 410, "{bad}");
    }
    // Not base64url at all: the path itself is refused.
    assert_eq!(contact(&relay, "!!!", true).await.unwrap_err(), 404);

    let raw_req = |payload: &str| {
        format!(
            "GET /cable/contact/{id} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
             Sec-WebSocket-Protocol: fido.cable\r\n{payload}\r\n"
        )
    };
    for payload in ["", "X-caBLE-Client-Payload: xyz\r\n"] {
        let (status, text) = http(&relay, raw_req(payload).as_bytes()).await;
        assert_eq!(status, 400);
        assert!(text.contains("hex CBOR"), "{text}");
    }
    let m = relay.metrics();
    assert_eq!(m.contacts(ContactOutcome::Gone), 6);
    assert_eq!(m.contacts(ContactOutcome::BadRequest), 2);
    assert_eq!(m.pending(), 0);
}

#[tokio::test]
async fn a_relay_without_contact_keys_answers_404() {
    let relay = Relay::bind(RelayConfig::default()).await.unwrap();
    let (status, _) = http(
        &relay,
        b"POST /cable/push/register HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}",
    )
    .await;
    assert_eq!(status, 404);
}
