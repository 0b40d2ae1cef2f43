//! authenticatorClientPIN, as far as a key whose user verification happens on the phone
//! needs it.
//!
//! The key lists PIN/UV auth protocols 2 and 1 in getInfo because some hosts (python-fido2
//! 2.x) will not ask a key for user verification unless it lists one, even when they then
//! only send `uv: true`. A key that lists a protocol answers getKeyAgreement in it, so this
//! one does. It has no PIN and grants no pinUvAuthToken (`clientPin` and `pinUvAuthToken`
//! are absent from its options): the phone verifies the person for every request, so
//! every other subcommand is refused as a key without it refuses it.

use cable_proto::cbor::{self, Value};
use cable_proto::rand_core::{CryptoRng, RngCore};
use p256::elliptic_curve::sec1::ToEncodedPoint;
use p256::SecretKey;

use crate::status;

use cable_uhid::info::PIN_UV_AUTH_PROTOCOLS;

/// authenticatorClientPIN parameter keys and subcommands (CTAP 2.2 §6.5.5).
const PIN_UV_AUTH_PROTOCOL: u64 = 0x01;
const SUB_COMMAND: u64 = 0x02;
const GET_KEY_AGREEMENT: u64 = 0x02;
/// The answer's `keyAgreement` key.
const KEY_AGREEMENT: u64 = 0x01;

/// The key's key-agreement key pair, drawn once per bridge (a real key draws one at power
/// up).
pub struct ClientPin {
    key: SecretKey,
}

impl std::fmt::Debug for ClientPin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientPin").finish_non_exhaustive()
    }
}

impl ClientPin {
    /// A fresh key-agreement key.
    pub fn generate(rng: &mut (impl CryptoRng + RngCore)) -> ClientPin {
        ClientPin {
            key: SecretKey::random(rng),
        }
    }

    /// The whole answer (status, then CBOR) to authenticatorClientPIN with `params`.
    pub fn answer(&self, params: &[u8]) -> Vec<u8> {
        match self.read(params) {
            Ok(()) => {
                let mut out = vec![status::OK];
                Value::map([(Value::Unsigned(KEY_AGREEMENT), self.cose_key())])
                    .encode_into(&mut out);
                out
            }
            Err(status) => vec![status],
        }
    }

    /// Checks a getKeyAgreement request in a listed protocol; anything else is the status
    /// to answer.
    fn read(&self, params: &[u8]) -> Result<(), u8> {
        if params.is_empty() {
            return Err(status::MISSING_PARAMETER);
        }
        let value = cbor::decode_any_key_order(params).map_err(|_| status::INVALID_CBOR)?;
        let map = value.as_map().ok_or(status::INVALID_CBOR)?;
        let number = |key| match cbor::map_get(map, key) {
            None => Err(status::MISSING_PARAMETER),
            Some(v) => v.as_unsigned().ok_or(status::INVALID_CBOR),
        };
        let protocol = number(PIN_UV_AUTH_PROTOCOL);
        let sub_command = number(SUB_COMMAND)?;
        if sub_command != GET_KEY_AGREEMENT {
            return Err(status::INVALID_SUBCOMMAND);
        }
        if !PIN_UV_AUTH_PROTOCOLS.contains(&protocol?) {
            return Err(status::INVALID_PARAMETER);
        }
        Ok(())
    }

    /// The public key as a COSE_Key: EC2, ECDH-ES+HKDF-256, P-256.
    fn cose_key(&self) -> Value {
        let point = self.key.public_key().to_encoded_point(false);
        let coordinate =
            |c: Option<&p256::FieldBytes>| Value::Bytes(c.map(|c| c.to_vec()).unwrap_or_default());
        Value::map([
            (Value::Unsigned(1), Value::Unsigned(2)),
            // alg -25, crv 1 (P-256), x (-2), y (-3).
            (Value::Unsigned(3), Value::Negative(24)),
            (Value::Negative(0), Value::Unsigned(1)),
            (Value::Negative(1), coordinate(point.x())),
            (Value::Negative(2), coordinate(point.y())),
        ])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cable_proto::rand_core::OsRng;
    use p256::elliptic_curve::sec1::FromEncodedPoint;
    use p256::{EncodedPoint, PublicKey};

    fn request(protocol: Option<u64>, sub_command: Option<u64>) -> Vec<u8> {
        let mut entries = Vec::new();
        if let Some(p) = protocol {
            entries.push((Value::Unsigned(1), Value::Unsigned(p)));
        }
        if let Some(s) = sub_command {
            entries.push((Value::Unsigned(2), Value::Unsigned(s)));
        }
        Value::map(entries).to_bytes()
    }

    fn public_key(answer: &[u8]) -> PublicKey {
        assert_eq!(answer[0], status::OK);
        let value = cbor::decode(&answer[1..]).expect("canonical CBOR");
        let map = value.as_map().expect("a map");
        assert_eq!(map.len(), 1);
        let cose = cbor::map_get(map, 1)
            .and_then(Value::as_map)
            .expect("keyAgreement");
        assert_eq!(cose.len(), 5);
        let get = |k: Value| cose.get(&k).expect("present").clone();
        assert_eq!(get(Value::Unsigned(1)), Value::Unsigned(2));
        assert_eq!(get(Value::Unsigned(3)), Value::Negative(24));
        assert_eq!(get(Value::Negative(0)), Value::Unsigned(1));
        let x = get(Value::Negative(1));
        let y = get(Value::Negative(2));
        let (x, y) = (x.as_bytes().expect("x"), y.as_bytes().expect("y"));
        assert_eq!((x.len(), y.len()), (32, 32));
        let point = EncodedPoint::from_affine_coordinates(x.into(), y.into(), false);
        Option::from(PublicKey::from_encoded_point(&point)).expect("a point on P-256")
    }

    #[test]
    fn get_key_agreement_in_both_protocols_gives_one_p256_key() {
        let pin = ClientPin::generate(&mut OsRng);
        let one = public_key(&pin.answer(&request(Some(1), Some(2))));
        let two = public_key(&pin.answer(&request(Some(2), Some(2))));
        assert_eq!(one, two);
        assert_eq!(one, pin.key.public_key());
        let other = ClientPin::generate(&mut OsRng);
        assert_ne!(public_key(&other.answer(&request(Some(2), Some(2)))), one);
    }

    #[test]
    fn a_host_and_the_key_agree_on_a_secret() {
        let pin = ClientPin::generate(&mut OsRng);
        let key = public_key(&pin.answer(&request(Some(2), Some(2))));
        let host = p256::ecdh::EphemeralSecret::random(&mut OsRng);
        let host_side = host.diffie_hellman(&key);
        let key_side = p256::ecdh::diffie_hellman(
            pin.key.to_nonzero_scalar(),
            p256::PublicKey::from(&host).as_affine(),
        );
        assert_eq!(
            host_side.raw_secret_bytes(),
            key_side.raw_secret_bytes(),
            "the COSE key is the key's own"
        );
    }

    #[test]
    fn no_pin_and_no_token() {
        let pin = ClientPin::generate(&mut OsRng);
        // getPINRetries, setPIN, changePIN, getPINToken, the token with UV or PIN,
        // getUVRetries, and numbers no version defines.
        for sub_command in [1, 3, 4, 5, 6, 7, 9, 0, 10, 255] {
            assert_eq!(
                pin.answer(&request(Some(2), Some(sub_command))),
                [status::INVALID_SUBCOMMAND],
                "{sub_command}"
            );
        }
    }

    #[test]
    fn bad_requests_get_their_status() {
        let pin = ClientPin::generate(&mut OsRng);
        assert_eq!(pin.answer(&[]), [status::MISSING_PARAMETER]);
        assert_eq!(pin.answer(&[0xa1]), [status::INVALID_CBOR]);
        assert_eq!(
            pin.answer(&Value::Unsigned(2).to_bytes()),
            [status::INVALID_CBOR]
        );
        assert_eq!(
            pin.answer(&request(None, Some(2))),
            [status::MISSING_PARAMETER]
        );
        assert_eq!(
            pin.answer(&request(Some(2), None)),
            [status::MISSING_PARAMETER]
        );
        assert_eq!(
            pin.answer(&request(Some(3), Some(2))),
            [status::INVALID_PARAMETER]
        );
        let text_protocol = Value::map([
            (Value::Unsigned(1), Value::Text("2".into())),
            (Value::Unsigned(2), Value::Unsigned(2)),
        ])
        .to_bytes();
        assert_eq!(pin.answer(&text_protocol), [status::INVALID_CBOR]);
    }
}
