//! Every vector in tests/vectors/hybrid.json, read as data.

#![allow(clippy::unwrap_used)]

mod common;

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use cable_proto::advert::{decrypt_advert, encrypt_eid, Eid};
use cable_proto::ctap::{command, CtapRequest};
use cable_proto::derive::{derive, DerivedValueType, EidKey, Psk};
use cable_proto::domain::{
    connect_path, connect_url, contact_path, contact_url, host_for_domain_id, new_path, new_url,
    TunnelPath,
};
use cable_proto::handshake::{Initiator, Responder};
use cable_proto::ids::{RoutingId, TunnelId};
use cable_proto::keys;
use cable_proto::message::{
    linking_signature, ClientPayload, LinkSecret, LinkingInfo, Message, PostHandshake,
    ProtocolRevision, UpdateMessage,
};
use cable_proto::qr::{QrCode, QrKey, QrSecret, RequestHint};
use cable_proto::{digits, Error};
use common::{arr, hex_field, str_field, vectors, ReplayRng};

#[test]
fn digit_encoding() {
    let v = vectors();
    let cases = v["digit_encoding"].as_array().unwrap();
    assert!(!cases.is_empty());
    for case in cases {
        let bytes = hex_field(case, "bytes");
        let expected = str_field(case, "digits");
        assert_eq!(digits::encode(&bytes), expected);
        assert_eq!(digits::decode(expected).unwrap(), bytes);
    }
}

#[test]
fn digit_rejections() {
    let v = vectors();
    let cases = v["digit_decoding_rejects"].as_array().unwrap();
    assert_eq!(cases.len(), 7);
    for case in cases {
        let digits_in = str_field(case, "digits");
        let result = digits::decode(digits_in);
        assert!(
            matches!(
                result,
                Err(Error::NonDigit { .. }
                    | Error::BadDigitCount { .. }
                    | Error::DigitGroupOverflow { .. })
            ),
            "{digits_in}: {result:?}"
        );
    }
}

fn derived_type(n: u64) -> DerivedValueType {
    match n {
        1 => DerivedValueType::EidKey,
        2 => DerivedValueType::TunnelId,
        3 => DerivedValueType::Psk,
        4 => DerivedValueType::PairedSecret,
        5 => DerivedValueType::IdentityKeySeed,
        6 => DerivedValueType::PerContactIdSecret,
        other => panic!("unknown type {other}"),
    }
}

#[test]
fn hkdf_derive() {
    let v = vectors();
    let cases = v["hkdf_derive"].as_array().unwrap();
    assert!(!cases.is_empty());
    for case in cases {
        let mut out = vec![0u8; case["length"].as_u64().unwrap() as usize];
        derive(
            &hex_field(case, "secret"),
            &hex_field(case, "salt"),
            derived_type(case["type"].as_u64().unwrap()),
            &mut out,
        )
        .unwrap();
        assert_eq!(hex::encode(&out), str_field(case, "output"));
        if case["type"] == 1 && out.len() == 64 {
            let key = EidKey::derive(&hex_field(case, "secret"), &hex_field(case, "salt"));
            assert_eq!(key.as_bytes()[..], out[..]);
        }
    }
}

#[test]
fn tunnel_domains() {
    let v = vectors();
    let cases = v["tunnel_domains"].as_array().unwrap();
    assert!(!cases.is_empty());
    for case in cases {
        let id = case["id"].as_u64().unwrap() as u16;
        match case["host"].as_str() {
            Some(host) => assert_eq!(host_for_domain_id(id).unwrap(), host),
            None => assert_eq!(host_for_domain_id(id), Err(Error::UnassignedDomain { id })),
        }
    }
}

#[test]
fn boringssl_seed_to_private_key() {
    let v = vectors();
    let cases = v["boringssl_seed_to_private_key"].as_array().unwrap();
    assert!(!cases.is_empty());
    for case in cases {
        let key = keys::derive_private_key_from_seed(&hex_field(case, "seed")).unwrap();
        assert_eq!(hex::encode(key.to_bytes()), str_field(case, "private_key"));
    }
}

struct QrFixture {
    t: serde_json::Value,
    qr_key: QrKey,
    psk: Psk,
}

fn qr_fixture() -> QrFixture {
    let t = vectors()["transcripts"]["qr_knpsk0"].clone();
    let secret = QrSecret::from_slice(&hex_field(&t, "qr_secret")).unwrap();
    let qr_key = QrKey::from_seed(
        &hex_field(&t, "qr_seed"),
        secret,
        1_700_000_000,
        RequestHint::GetAssertion,
    )
    .unwrap();
    let psk = qr_key.secret().psk(&arr(&hex_field(&t, "eid_plaintext")));
    QrFixture { t, qr_key, psk }
}

#[test]
fn qr_transcript_keys_and_code() {
    let QrFixture { t, qr_key, .. } = qr_fixture();
    assert_eq!(
        hex::encode(qr_key.private_key().to_bytes()),
        str_field(&t, "qr_private_key")
    );
    assert_eq!(
        hex::encode(keys::uncompressed(qr_key.public_key())),
        str_field(&t, "qr_public_key_uncompressed")
    );
    assert_eq!(
        hex::encode(keys::compressed(qr_key.public_key())),
        str_field(&t, "qr_public_key_compressed")
    );
    assert_eq!(t["qr_cbor_map"]["2"], 2);
    assert_eq!(t["qr_cbor_map"]["3"], 1_700_000_000u64);
    assert_eq!(t["qr_cbor_map"]["4"], true);
    assert_eq!(t["qr_cbor_map"]["5"], "ga");
    assert_eq!(
        hex::encode(qr_key.code().to_cbor()),
        str_field(&t, "qr_cbor")
    );
    assert_eq!(qr_key.to_uri(), str_field(&t, "qr_uri"));

    let parsed = QrCode::parse(str_field(&t, "qr_uri")).unwrap();
    assert_eq!(&parsed, qr_key.code());
    assert_eq!(parsed.known_domains, 2);
    assert_eq!(parsed.timestamp, Some(1_700_000_000));
    assert_eq!(parsed.state_assisted, Some(true));
    assert_eq!(parsed.hint, RequestHint::GetAssertion);

    // generate() draws the seed, then the secret, from the caller's RNG.
    let mut rng = ReplayRng::new(&[&hex_field(&t, "qr_seed"), &hex_field(&t, "qr_secret")]);
    let generated = QrKey::generate(&mut rng, 1_700_000_000, RequestHint::GetAssertion);
    assert!(rng.is_exhausted());
    assert_eq!(generated.to_uri(), str_field(&t, "qr_uri"));
}

#[test]
fn qr_transcript_advert_and_urls() {
    let QrFixture { t, qr_key, psk } = qr_fixture();
    let secret = qr_key.secret();
    let eid_key = secret.eid_key();
    assert_eq!(hex::encode(eid_key.as_bytes()), str_field(&t, "eid_key"));
    let tunnel_id = secret.tunnel_id();
    assert_eq!(tunnel_id.to_hex(), str_field(&t, "tunnel_id"));
    assert_eq!(tunnel_id, TunnelId::derive(secret.as_bytes()));

    let routing_id = RoutingId::from_hex(str_field(&t, "routing_id")).unwrap();
    let domain_id = t["tunnel_server_domain_id"].as_u64().unwrap() as u16;
    let eid = Eid {
        nonce: arr(&hex_field(&t, "eid_nonce")),
        routing_id,
        domain_id,
    };
    let plaintext = hex_field(&t, "eid_plaintext");
    assert_eq!(eid.to_bytes().to_vec(), plaintext);
    // Eid::new draws the nonce from the RNG.
    let mut rng = ReplayRng::new(&[&hex_field(&t, "eid_nonce")]);
    assert_eq!(Eid::new(&mut rng, routing_id, domain_id), eid);

    let advert = encrypt_eid(&eid_key, &eid.to_bytes());
    assert_eq!(hex::encode(advert), str_field(&t, "advert"));
    let decrypted = decrypt_advert(&eid_key, &advert).unwrap();
    assert_eq!(decrypted.plaintext.to_vec(), plaintext);
    assert_eq!(decrypted.eid(), eid);
    assert!(decrypted.suffix.is_empty());

    assert_eq!(hex::encode(psk.as_bytes()), str_field(&t, "psk"));

    let host = host_for_domain_id(domain_id).unwrap();
    assert_eq!(new_url(&host, &tunnel_id), str_field(&t, "new_url"));
    assert_eq!(
        connect_url(&host, &routing_id, &tunnel_id),
        str_field(&t, "connect_url")
    );
    // The paths alone, as relays and relay base URLs use them, and what a relay parses back.
    let origin = format!("wss://{host}");
    let new = str_field(&t, "new_url").strip_prefix(&origin).unwrap();
    let connect = str_field(&t, "connect_url").strip_prefix(&origin).unwrap();
    assert_eq!(new_path(&tunnel_id), new);
    assert_eq!(connect_path(&routing_id, &tunnel_id), connect);
    assert_eq!(
        TunnelPath::parse(new).unwrap(),
        TunnelPath::New { tunnel_id }
    );
    assert_eq!(
        TunnelPath::parse(&connect.to_lowercase()).unwrap(),
        TunnelPath::Connect {
            routing_id,
            tunnel_id
        }
    );
}

/// Decrypts a vector ciphertext with the vector's raw key, checking that the
/// k1/k2 values and the nonce convention in the file agree with each other.
fn raw_open(key: &[u8], counter: u32, ciphertext: &[u8]) -> Vec<u8> {
    let mut nonce = [0u8; 12];
    nonce[8..].copy_from_slice(&counter.to_be_bytes());
    let padded = Aes256Gcm::new_from_slice(key)
        .unwrap()
        .decrypt(&Nonce::from(nonce), ciphertext)
        .expect("vector ciphertext opens with the vector key");
    let pad = *padded.last().unwrap() as usize;
    padded[..padded.len() - pad - 1].to_vec()
}

#[test]
fn qr_transcript_handshake_and_transport_both_roles() {
    let QrFixture { t, qr_key, psk } = qr_fixture();
    let desktop_e = hex_field(&t, "desktop_ephemeral_private");
    let phone_e = hex_field(&t, "phone_ephemeral_private");

    // Desktop (initiator) builds msg1.
    let mut rng = ReplayRng::new(&[&desktop_e]);
    let (initiator, msg1) = Initiator::new_qr(&qr_key, &psk, &mut rng).unwrap();
    assert!(rng.is_exhausted());
    assert_eq!(hex::encode(msg1), str_field(&t, "msg1"));

    // Phone (responder) knows only the QR contents.
    let code = QrCode::parse(&qr_key.to_uri()).unwrap();
    let mut rng = ReplayRng::new(&[&phone_e]);
    let (msg2, mut phone) =
        Responder::respond_qr(&code.public_key, &psk, &hex_field(&t, "msg1"), &mut rng).unwrap();
    assert_eq!(hex::encode(msg2), str_field(&t, "msg2"));
    assert_eq!(
        hex::encode(phone.handshake_hash),
        str_field(&t, "handshake_hash")
    );

    let mut desktop = initiator.finish(&hex_field(&t, "msg2")).unwrap();
    assert_eq!(
        hex::encode(desktop.handshake_hash),
        str_field(&t, "handshake_hash")
    );

    // Post-handshake message, phone → desktop, k2 counter 0.
    let get_info = hex_field(&t, "get_info");
    let post = PostHandshake::new(get_info.clone());
    assert_eq!(
        hex::encode(post.encode()),
        str_field(&t, "post_handshake_plaintext")
    );
    let ct = phone.crypter.encrypt(&post.encode()).unwrap();
    assert_eq!(hex::encode(&ct), str_field(&t, "post_handshake_ciphertext"));
    assert_eq!(t["post_handshake_key_and_counter"], "k2, counter 0");
    assert_eq!(raw_open(&hex_field(&t, "k2"), 0, &ct), post.encode());
    let (decoded, revision) =
        PostHandshake::decode(&desktop.crypter.decrypt(&ct).unwrap()).unwrap();
    assert_eq!(revision, ProtocolRevision::One);
    assert_eq!(decoded.get_info, Some(get_info));
    assert!(decoded.supports_ctap());

    // Chrome-style update without linking data, k2 counter 1: 528 bytes.
    let update = Message::Update(UpdateMessage::default()).encode();
    assert_eq!(hex::encode(&update), str_field(&t, "update_plaintext"));
    let ct = phone.crypter.encrypt(&update).unwrap();
    assert_eq!(
        ct.len() as u64,
        t["update_ciphertext_length"].as_u64().unwrap()
    );
    assert_eq!(raw_open(&hex_field(&t, "k2"), 1, &ct), update);
    assert_eq!(
        Message::decode(&desktop.crypter.decrypt(&ct).unwrap()).unwrap(),
        Message::Update(UpdateMessage { linking: None })
    );

    // CTAP request, desktop → phone, k1 counter 0.
    let request = hex_field(&t, "ctap_request_plaintext");
    let ct = desktop.crypter.encrypt(&request).unwrap();
    assert_eq!(hex::encode(&ct), str_field(&t, "ctap_request_ciphertext"));
    assert_eq!(raw_open(&hex_field(&t, "k1"), 0, &ct), request);
    let Message::Ctap(ctap) = Message::decode(&phone.crypter.decrypt(&ct).unwrap()).unwrap() else {
        panic!("expected a CTAP message")
    };
    let parsed = CtapRequest::decode(&ctap).unwrap();
    assert_eq!(parsed.command, command::GET_ASSERTION);
    assert_eq!(Message::Ctap(parsed.encode()).encode(), request);

    // Shutdown, k1 counter 1.
    let ct = desktop
        .crypter
        .encrypt(&Message::Shutdown.encode())
        .unwrap();
    assert_eq!(hex::encode(&ct), str_field(&t, "shutdown_ciphertext"));
    assert_eq!(
        hex_field(&t, "shutdown_plaintext"),
        Message::Shutdown.encode()
    );
    assert_eq!(
        Message::decode(&phone.crypter.decrypt(&ct).unwrap()).unwrap(),
        Message::Shutdown
    );
}

#[test]
fn linking_signature_vector() {
    let QrFixture { t, qr_key, .. } = qr_fixture();
    let s = vectors()["transcripts"]["state_assisted_nkpsk0"].clone();
    let identity = keys::secret_key_from_bytes(&hex_field(&s, "phone_identity_private")).unwrap();
    let hash: [u8; 32] = arr(&hex_field(&t, "handshake_hash"));
    let sig = linking_signature(&identity, qr_key.public_key(), &hash);
    assert_eq!(hex::encode(sig), str_field(&t, "linking_signature"));

    let info = LinkingInfo::new_signed(
        b"contact-id-example".to_vec(),
        hex_field(&s, "link_id"),
        LinkSecret::from_slice(&hex_field(&s, "link_secret")).unwrap(),
        &identity,
        "Test phone".into(),
        qr_key.public_key(),
        &hash,
    );
    assert_eq!(info.signature, sig);
    info.verify(&qr_key, &hash).unwrap();
    let mut other_hash = hash;
    other_hash[0] ^= 1;
    assert_eq!(
        info.verify(&qr_key, &other_hash),
        Err(Error::BadLinkingSignature)
    );

    // Carried in an update message it still fits Chrome's 528-byte ciphertext.
    let update = UpdateMessage {
        linking: Some(info),
    };
    let plaintext = Message::Update(update.clone()).encode();
    assert!(plaintext.len() < 512, "{}", plaintext.len());
    assert!(plaintext.len() >= 480, "{}", plaintext.len());
    assert_eq!(
        Message::decode(&plaintext).unwrap(),
        Message::Update(update)
    );
}

#[test]
fn state_assisted_transcript_both_roles() {
    let v = vectors();
    let s = &v["transcripts"]["state_assisted_nkpsk0"];
    let link_secret = LinkSecret::from_slice(&hex_field(s, "link_secret")).unwrap();
    let client_nonce: [u8; 16] = arr(&hex_field(s, "client_nonce"));
    let eid_key = link_secret.eid_key(&client_nonce);
    assert_eq!(hex::encode(eid_key.as_bytes()), str_field(s, "eid_key"));

    let plaintext: [u8; 16] = arr(&hex_field(s, "eid_plaintext"));
    let advert = encrypt_eid(&eid_key, &plaintext);
    assert_eq!(hex::encode(advert), str_field(s, "advert"));
    assert_eq!(
        decrypt_advert(&eid_key, &advert).unwrap().plaintext,
        plaintext
    );
    let psk = link_secret.psk(&plaintext);
    assert_eq!(hex::encode(psk.as_bytes()), str_field(s, "psk"));

    // Client payload, generated with the nonce drawn from the RNG.
    let mut rng = ReplayRng::new(&[&client_nonce]);
    let payload = ClientPayload::new(&mut rng, hex_field(s, "link_id"), RequestHint::GetAssertion);
    assert_eq!(str_field(s, "request_type"), "ga");
    assert_eq!(
        hex::encode(payload.to_cbor()),
        str_field(s, "client_payload_cbor")
    );
    assert_eq!(
        payload.to_header_value(),
        str_field(s, "client_payload_cbor").to_uppercase()
    );
    assert_eq!(
        ClientPayload::from_header_value(str_field(s, "client_payload_cbor")).unwrap(),
        payload
    );

    let contact_id = str_field(s, "contact_id_ascii").as_bytes();
    let host = host_for_domain_id(0).unwrap();
    assert_eq!(contact_url(&host, contact_id), str_field(s, "contact_url"));
    let path = str_field(s, "contact_url")
        .strip_prefix(&format!("wss://{host}"))
        .unwrap();
    assert_eq!(contact_path(contact_id), path);
    assert_eq!(
        TunnelPath::parse(path).unwrap(),
        TunnelPath::Contact {
            contact_id: contact_id.to_vec()
        }
    );

    let identity = keys::secret_key_from_bytes(&hex_field(s, "phone_identity_private")).unwrap();
    let identity_public =
        keys::public_key_from_sec1(&hex_field(s, "phone_identity_public")).unwrap();
    assert_eq!(identity.public_key(), identity_public);

    let mut rng = ReplayRng::new(&[&hex_field(s, "desktop_ephemeral_private")]);
    let (initiator, msg1) = Initiator::new_linked(&identity_public, &psk, &mut rng).unwrap();
    assert_eq!(hex::encode(msg1), str_field(s, "msg1"));

    let mut rng = ReplayRng::new(&[&hex_field(s, "phone_ephemeral_private")]);
    let (msg2, mut phone) =
        Responder::respond_linked(&identity, &psk, &hex_field(s, "msg1"), &mut rng).unwrap();
    assert_eq!(hex::encode(msg2), str_field(s, "msg2"));
    assert_eq!(
        hex::encode(phone.handshake_hash),
        str_field(s, "handshake_hash")
    );

    let mut desktop = initiator.finish(&hex_field(s, "msg2")).unwrap();
    assert_eq!(
        hex::encode(desktop.handshake_hash),
        str_field(s, "handshake_hash")
    );

    // The split keys: desktop writes with k1, phone with k2.
    let ct = desktop.crypter.encrypt(b"to phone").unwrap();
    assert_eq!(raw_open(&hex_field(s, "k1"), 0, &ct), b"to phone");
    assert_eq!(phone.crypter.decrypt(&ct).unwrap(), b"to phone");
    let ct = phone.crypter.encrypt(b"to desktop").unwrap();
    assert_eq!(raw_open(&hex_field(s, "k2"), 0, &ct), b"to desktop");
    assert_eq!(desktop.crypter.decrypt(&ct).unwrap(), b"to desktop");
}

#[test]
fn handshake_rejections() {
    let QrFixture { t, qr_key, psk } = qr_fixture();
    let mut rng = ReplayRng::new(&[&[0x42; 32], &[0x43; 32], &[0x44; 32], &[0x45; 32]]);
    let msg1 = hex_field(&t, "msg1");
    // Wrong length.
    assert_eq!(
        Responder::respond_qr(qr_key.public_key(), &psk, &msg1[..80], &mut rng).unwrap_err(),
        Error::HandshakeLength { len: 80 }
    );
    // Wrong PSK.
    let wrong = Psk::from_bytes([9; 32]);
    assert_eq!(
        Responder::respond_qr(qr_key.public_key(), &wrong, &msg1, &mut rng).unwrap_err(),
        Error::HandshakeFailed
    );
    // Tampered tag.
    let mut tampered = msg1.clone();
    tampered[80] ^= 1;
    assert_eq!(
        Responder::respond_qr(qr_key.public_key(), &psk, &tampered, &mut rng).unwrap_err(),
        Error::HandshakeFailed
    );
    // Wrong static key on the desktop side: the phone's reply does not authenticate.
    let (initiator, _) = Initiator::new_qr(&qr_key, &psk, &mut rng).unwrap();
    assert_eq!(
        initiator.finish(&hex_field(&t, "msg2")).unwrap_err(),
        Error::HandshakeFailed
    );
}

/// Fails when hybrid.json gains a section or field that no test above reads,
/// so that every vector stays a test.
#[test]
fn every_vector_field_is_checked() {
    let v = vectors();
    let keys = |o: &serde_json::Value| -> Vec<String> {
        let mut k: Vec<String> = o.as_object().unwrap().keys().cloned().collect();
        k.sort();
        k
    };
    assert_eq!(
        keys(&v),
        [
            "boringssl_seed_to_private_key",
            "conventions",
            "description",
            "digit_decoding_rejects",
            "digit_encoding",
            "hkdf_derive",
            "transcripts",
            "tunnel_domains"
        ]
    );
    assert_eq!(
        keys(&v["transcripts"]),
        ["qr_knpsk0", "state_assisted_nkpsk0"]
    );
    let qr_fields = [
        "advert",
        "connect_url",
        "ctap_request_ciphertext",
        "ctap_request_key_and_counter",
        "ctap_request_plaintext",
        "description",
        "desktop_ephemeral_private",
        "eid_key",
        "eid_nonce",
        "eid_plaintext",
        "get_info",
        "handshake_hash",
        "k1",
        "k2",
        "linking_signature",
        "linking_signature_inputs",
        "msg1",
        "msg2",
        "new_url",
        "phone_ephemeral_private",
        "post_handshake_ciphertext",
        "post_handshake_key_and_counter",
        "post_handshake_plaintext",
        "psk",
        "qr_cbor",
        "qr_cbor_map",
        "qr_private_key",
        "qr_public_key_compressed",
        "qr_public_key_uncompressed",
        "qr_secret",
        "qr_seed",
        "qr_uri",
        "routing_id",
        "shutdown_ciphertext",
        "shutdown_key_and_counter",
        "shutdown_plaintext",
        "source",
        "tunnel_id",
        "tunnel_server_domain_id",
        "update_ciphertext_length",
        "update_key_and_counter",
        "update_plaintext",
    ];
    assert_eq!(keys(&v["transcripts"]["qr_knpsk0"]), qr_fields);
    let sa_fields = [
        "advert",
        "client_nonce",
        "client_payload_cbor",
        "contact_id_ascii",
        "contact_url",
        "description",
        "desktop_ephemeral_private",
        "eid_key",
        "eid_plaintext",
        "handshake_hash",
        "k1",
        "k2",
        "link_id",
        "link_secret",
        "msg1",
        "msg2",
        "phone_ephemeral_private",
        "phone_identity_private",
        "phone_identity_public",
        "psk",
        "request_type",
        "source",
    ];
    assert_eq!(keys(&v["transcripts"]["state_assisted_nkpsk0"]), sa_fields);
    // Both transcripts share the ephemeral keys, as the file says.
    let t = &v["transcripts"];
    assert_eq!(
        t["qr_knpsk0"]["desktop_ephemeral_private"],
        t["state_assisted_nkpsk0"]["desktop_ephemeral_private"]
    );
    assert_eq!(
        t["qr_knpsk0"]["phone_ephemeral_private"],
        t["state_assisted_nkpsk0"]["phone_ephemeral_private"]
    );
    assert_eq!(t["qr_knpsk0"]["update_key_and_counter"], "k2, counter 1");
    assert_eq!(
        t["qr_knpsk0"]["ctap_request_key_and_counter"],
        "k1, counter 0"
    );
    assert_eq!(t["qr_knpsk0"]["shutdown_key_and_counter"], "k1, counter 1");
}
