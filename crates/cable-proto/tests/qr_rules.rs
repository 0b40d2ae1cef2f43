//! One test per QR parsing rule: each builds a QR text that breaks exactly
//! one rule (or exercises one leniency) and checks the typed outcome.

#![allow(clippy::unwrap_used)]

use cable_proto::cbor::Value;
use cable_proto::qr::{QrCode, RequestHint};
use cable_proto::{digits, keys, CborErrorKind, Error};

const PUBLIC: &str = "03ad78c8498351887772abef035f0557f1c39369f7121528dcee1c98b3ace1e318";
const SECRET: &str = "000102030405060708090a0b0c0d0e0f";
const VECTOR_CBOR: &str = "a600582103ad78c8498351887772abef035f0557f1c39369f7121528dcee1c98b3ace1e3180150000102030405060708090a0b0c0d0e0f0202031a6553f10004f505626761";

fn uri(cbor: &[u8]) -> String {
    format!("FIDO:/{}", digits::encode(cbor))
}

fn parse_cbor_hex(h: &str) -> Result<QrCode, Error> {
    QrCode::parse(&uri(&hex::decode(h).unwrap()))
}

fn base_entries() -> Vec<(Value, Value)> {
    vec![
        (
            Value::Unsigned(0),
            Value::Bytes(hex::decode(PUBLIC).unwrap()),
        ),
        (
            Value::Unsigned(1),
            Value::Bytes(hex::decode(SECRET).unwrap()),
        ),
        (Value::Unsigned(2), Value::Unsigned(2)),
        (Value::Unsigned(3), Value::Unsigned(1_700_000_000)),
        (Value::Unsigned(4), Value::Bool(true)),
        (Value::Unsigned(5), Value::Text("ga".into())),
    ]
}

fn with(key: u64, value: Option<Value>) -> Result<QrCode, Error> {
    let mut entries: Vec<_> = base_entries()
        .into_iter()
        .filter(|(k, _)| *k != Value::Unsigned(key))
        .collect();
    if let Some(v) = value {
        entries.push((Value::Unsigned(key), v));
    }
    QrCode::parse(&uri(&Value::map(entries).to_bytes()))
}

fn cbor_kind(r: Result<QrCode, Error>) -> CborErrorKind {
    match r {
        Err(Error::Cbor { kind, .. }) => kind,
        other => panic!("expected a CBOR error, got {other:?}"),
    }
}

#[test]
fn baseline_parses() {
    let code = parse_cbor_hex(VECTOR_CBOR).unwrap();
    assert_eq!(hex::encode(keys::compressed(&code.public_key)), PUBLIC);
    assert_eq!(hex::encode(code.secret.as_bytes()), SECRET);
    assert_eq!(code.to_cbor(), hex::decode(VECTOR_CBOR).unwrap());
}

#[test]
fn prefix_is_case_insensitive_and_required() {
    let digits_part = digits::encode(&hex::decode(VECTOR_CBOR).unwrap());
    for prefix in ["fido:/", "Fido:/", "FIDO:/", "fIdO:/"] {
        assert!(
            QrCode::parse(&format!("{prefix}{digits_part}")).is_ok(),
            "{prefix}"
        );
    }
    for prefix in ["", "FIDO:", "FIDO://", "FIDX:/", "é"] {
        assert!(
            QrCode::parse(&format!("{prefix}{digits_part}")).is_err(),
            "{prefix}"
        );
    }
    assert_eq!(QrCode::parse("FIDO"), Err(Error::QrPrefix));
    assert_eq!(QrCode::parse("éééé"), Err(Error::QrPrefix));
}

#[test]
fn digits_are_strict() {
    assert!(matches!(
        QrCode::parse("FIDO:/12a"),
        Err(Error::NonDigit { position: 2 })
    ));
    assert!(matches!(
        QrCode::parse("FIDO:/1234"),
        Err(Error::BadDigitCount { .. })
    ));
    assert!(matches!(
        QrCode::parse("FIDO:/999"),
        Err(Error::DigitGroupOverflow { .. })
    ));
    assert!(QrCode::parse(&format!("FIDO:/ {}", digits::encode(&[0xa0]))).is_err());
}

#[test]
fn non_minimal_integer_rejected() {
    // Key 2 written as 0x18 0x02 instead of 0x02.
    let h = VECTOR_CBOR.replace("0202031a", "021802031a");
    assert_eq!(cbor_kind(parse_cbor_hex(&h)), CborErrorKind::NonMinimal);
    // Map key 5 written non-minimally.
    let h = VECTOR_CBOR.replace("f505626761", "f51805626761");
    assert_eq!(cbor_kind(parse_cbor_hex(&h)), CborErrorKind::NonMinimal);
}

#[test]
fn unsorted_keys_rejected() {
    // Swap keys 4 and 5: ... 04 f5 05 62 67 61 → 05 62 67 61 04 f5.
    let h = VECTOR_CBOR.replace("04f505626761", "0562676104f5");
    assert_eq!(cbor_kind(parse_cbor_hex(&h)), CborErrorKind::UnsortedKeys);
}

#[test]
fn duplicate_key_rejected() {
    // Seven entries, key 5 twice.
    let h = VECTOR_CBOR.replacen("a6", "a7", 1) + "05626761";
    assert_eq!(cbor_kind(parse_cbor_hex(&h)), CborErrorKind::DuplicateKey);
}

#[test]
fn trailing_bytes_rejected() {
    let h = VECTOR_CBOR.to_owned() + "00";
    assert_eq!(cbor_kind(parse_cbor_hex(&h)), CborErrorKind::TrailingBytes);
}

#[test]
fn not_a_map_rejected() {
    assert_eq!(parse_cbor_hex("80"), Err(Error::QrNotAMap));
}

#[test]
fn key0_must_be_valid_compressed_point() {
    assert_eq!(with(0, None), Err(Error::QrMissingKey { key: 0 }));
    // x = 0xff…ff is above the field prime.
    let mut bad = vec![0x02];
    bad.extend_from_slice(&[0xff; 32]);
    assert_eq!(
        with(0, Some(Value::Bytes(bad))),
        Err(Error::QrBadPublicKey { len: 33 })
    );
    // Uncompressed form is not accepted in the QR code.
    let uncompressed =
        keys::uncompressed(&keys::public_key_from_sec1(&hex::decode(PUBLIC).unwrap()).unwrap());
    assert_eq!(
        with(0, Some(Value::Bytes(uncompressed.to_vec()))),
        Err(Error::QrBadPublicKey { len: 65 })
    );
    assert_eq!(
        with(0, Some(Value::Bytes(hex::decode(&PUBLIC[..64]).unwrap()))),
        Err(Error::QrBadPublicKey { len: 32 })
    );
    assert!(matches!(
        with(0, Some(Value::Text(PUBLIC.into()))),
        Err(Error::QrWrongType { key: 0, .. })
    ));
}

#[test]
fn key1_must_be_16_bytes() {
    assert_eq!(with(1, None), Err(Error::QrMissingKey { key: 1 }));
    assert_eq!(
        with(1, Some(Value::Bytes(vec![0; 15]))),
        Err(Error::QrBadSecretLength { len: 15 })
    );
    assert_eq!(
        with(1, Some(Value::Bytes(vec![0; 17]))),
        Err(Error::QrBadSecretLength { len: 17 })
    );
    assert!(matches!(
        with(1, Some(Value::Unsigned(1))),
        Err(Error::QrWrongType { key: 1, .. })
    ));
}

#[test]
fn type_checks_on_keys_2_4_5() {
    assert!(matches!(
        with(2, Some(Value::Text("2".into()))),
        Err(Error::QrWrongType { key: 2, .. })
    ));
    assert!(matches!(
        with(2, Some(Value::integer(-1))),
        Err(Error::QrWrongType { key: 2, .. })
    ));
    assert!(matches!(
        with(4, Some(Value::Unsigned(1))),
        Err(Error::QrWrongType { key: 4, .. })
    ));
    assert!(matches!(
        with(5, Some(Value::Bytes(b"ga".to_vec()))),
        Err(Error::QrWrongType { key: 5, .. })
    ));
}

#[test]
fn optional_keys_default() {
    let code = with(2, None).unwrap();
    assert_eq!(code.known_domains, 0);
    assert_eq!(with(4, None).unwrap().state_assisted, None);
    assert_eq!(
        with(4, Some(Value::Bool(false))).unwrap().state_assisted,
        Some(false)
    );
    assert_eq!(with(5, None).unwrap().hint, RequestHint::GetAssertion);
    assert_eq!(with(3, None).unwrap().timestamp, None);
}

#[test]
fn unknown_hint_reads_as_ga() {
    assert_eq!(
        with(5, Some(Value::Text("mc".into()))).unwrap().hint,
        RequestHint::MakeCredential
    );
    for hint in ["xx", "", "MC", "DCP", "dc"] {
        assert_eq!(
            with(5, Some(Value::Text(hint.into()))).unwrap().hint,
            RequestHint::GetAssertion
        );
    }
}

#[test]
fn digital_credential_hints_read_as_such() {
    // CTAP 2.3: "dcp" used to read as "ga".
    for (text, hint) in [
        ("dcp", RequestHint::DigitalCredentialPresentation),
        ("dci", RequestHint::DigitalCredentialIssuance),
    ] {
        let code = with(5, Some(Value::Text(text.into()))).unwrap();
        assert_eq!(code.hint, hint);
        assert!(hint.is_digital_credential());
        assert_eq!(hint.as_str(), text);
        // And they survive a round trip through the QR's CBOR.
        assert_eq!(QrCode::from_cbor(&code.to_cbor()).unwrap().hint, hint);
    }
    assert!(!RequestHint::GetAssertion.is_digital_credential());
    assert!(!RequestHint::MakeCredential.is_digital_credential());
}

#[test]
fn unknown_keys_ignored() {
    let mut entries = base_entries();
    entries.push((Value::Unsigned(1000), Value::Text("future".into())));
    entries.push((Value::Unsigned(6), Value::Array(vec![Value::Unsigned(0)])));
    entries.push((Value::Text("x".into()), Value::Null));
    let code = QrCode::parse(&uri(&Value::map(entries).to_bytes())).unwrap();
    assert_eq!(code, parse_cbor_hex(VECTOR_CBOR).unwrap());
}

#[test]
fn key_6_is_never_written() {
    // Pre-2.3 Play Services read key 6 as a bool and reject the CTAP 2.3 array; this
    // implementation offers no BLE data channel, so it never writes the key at all.
    for hint in [RequestHint::GetAssertion, RequestHint::MakeCredential] {
        let qr = cable_proto::qr::QrKey::generate(
            &mut cable_proto::rand_core::OsRng,
            1_700_000_000,
            hint,
        )
        .with_state_assisted(true);
        let value = cable_proto::cbor::decode(&qr.code().to_cbor()).unwrap();
        let map = value.as_map().unwrap();
        assert!(cable_proto::cbor::map_get(map, 6).is_none());
        assert_eq!(map.len(), 6, "keys 0 to 5");
    }
}
