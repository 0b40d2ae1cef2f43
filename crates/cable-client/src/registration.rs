//! Registration: WebAuthn creation options → CTAP2 makeCredential → registration response.
//!
//! Pure: no I/O. The session feeds it the phone's getInfo and the phone's reply bytes.

use std::collections::BTreeMap;

use cable_proto::cbor::{map_get, Value};
use cable_proto::ctap::command;
use p256::pkcs8::EncodePublicKey;

use crate::ctap::{decode_map, map_get_int, split_status, AuthenticatorData, AuthenticatorInfo};
use crate::error::ClientError;
use crate::webauthn::client_data::{prepare, Caller, CeremonyKind, ClientData};
use crate::webauthn::large_blob::{self, LargeBlobOutputs, LargeBlobSupport};
use crate::webauthn::options::{Attestation, CreationOptions, ResidentKey, UserVerification};
use crate::webauthn::prf::{self, PrfOutputs};
use crate::webauthn::response::RegistrationResponse;

/// A registration whose options were validated and whose client data was built.
#[derive(Debug, Clone)]
pub struct PreparedRegistration {
    options: CreationOptions,
    rp_id: String,
    client_data: ClientData,
}

/// What the client decided to ask the phone for, from the options and the phone's getInfo.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Decisions {
    rk: bool,
    uv: bool,
    cred_protect: Option<u8>,
    /// The relying party asked for `prf` and the phone offers it.
    prf: bool,
    /// `largeBlob.support`, when the phone offers the extension.
    large_blob: Option<LargeBlobSupport>,
    /// `credBlob` is sent: the phone offers it and the blob fits.
    cred_blob: bool,
    /// `minPinLength` is sent: asked for and offered.
    min_pin_length: bool,
}

impl PreparedRegistration {
    /// Validates `options_json` for `origin` and builds the client data.
    pub fn new(options_json: &str, origin: &str) -> Result<Self, ClientError> {
        Self::prepare(
            CreationOptions::from_json(options_json)?,
            origin,
            Caller::SameOrigin,
        )
    }

    /// As [`Self::new`], from already decoded options.
    pub fn from_options(options: CreationOptions, origin: &str) -> Result<Self, ClientError> {
        Self::prepare(options, origin, Caller::SameOrigin)
    }

    /// As [`Self::new`], for `origin` asking from a frame inside a page of `top_origin`: the
    /// client data says `crossOrigin: true` and names the `topOrigin` when the two differ.
    /// The relying party id is checked against `origin`, the frame's (WebAuthn §5.1.3); a
    /// browser would also require the page to allow the frame
    /// (`publickey-credentials-create`/`-get`), which is the caller's to check.
    pub fn new_in_frame(
        options_json: &str,
        origin: &str,
        top_origin: &str,
    ) -> Result<Self, ClientError> {
        Self::prepare(
            CreationOptions::from_json(options_json)?,
            origin,
            Caller::Frame(top_origin),
        )
    }

    /// As [`Self::new`], for a relying party id that is not `origin`'s own but allows it
    /// as a related origin: `well_known` is the document the caller fetched from
    /// `https://{rpId}/.well-known/webauthn` ([`Origin::rp_id_for_related`](crate::webauthn::client_data::Origin::rp_id_for_related)).
    pub fn new_with_related_origins(
        options_json: &str,
        origin: &str,
        well_known: &str,
    ) -> Result<Self, ClientError> {
        Self::prepare(
            CreationOptions::from_json(options_json)?,
            origin,
            Caller::Related(well_known),
        )
    }

    /// As [`Self::new`], with the `clientDataJSON` the caller serialised itself (a browser
    /// embedding the computer side): it must name this ceremony's type, challenge and
    /// origin ([`ClientError::ClientDataMismatch`] otherwise); the phone signs over its hash
    /// and the response carries it byte for byte.
    pub fn with_client_data_json(
        options_json: &str,
        origin: &str,
        client_data_json: Vec<u8>,
    ) -> Result<Self, ClientError> {
        Self::prepare(
            CreationOptions::from_json(options_json)?,
            origin,
            Caller::OwnClientData(client_data_json),
        )
    }

    fn prepare(
        options: CreationOptions,
        origin: &str,
        caller: Caller<'_>,
    ) -> Result<Self, ClientError> {
        if let Some(prf) = &options.extensions.prf {
            prf.check_for_registration()?;
        }
        let (rp_id, client_data) = prepare(
            CeremonyKind::Create,
            &options.challenge,
            options.rp_id.as_deref(),
            origin,
            caller,
        )?;
        Ok(PreparedRegistration {
            options,
            rp_id,
            client_data,
        })
    }

    /// The effective relying party id.
    pub fn rp_id(&self) -> &str {
        &self.rp_id
    }

    /// The decoded options.
    pub fn options(&self) -> &CreationOptions {
        &self.options
    }

    /// The client data this registration signs over.
    pub fn client_data(&self) -> &ClientData {
        &self.client_data
    }

    fn decide(&self, info: &AuthenticatorInfo) -> Result<Decisions, ClientError> {
        let rk = match self.options.resident_key {
            ResidentKey::Required if info.option("rk") != Some(true) => {
                return Err(ClientError::Unsupported {
                    what: "discoverable credentials",
                })
            }
            ResidentKey::Required => true,
            ResidentKey::Preferred => info.option("rk") == Some(true),
            ResidentKey::Discouraged => false,
        };
        let uv = uv_decision(self.options.user_verification, info)?;
        let ext = &self.options.extensions;
        let cred_protect = match ext.cred_protect {
            Some(level) if info.has_extension("credProtect") => Some(level),
            Some(level) if ext.enforce_cred_protect && level > 1 => {
                return Err(ClientError::Unsupported {
                    what: "the credProtect extension",
                })
            }
            _ => None,
        };
        let large_blob = match ext.large_blob {
            Some(LargeBlobSupport::Required) if !info.has_extension("largeBlob") => {
                return Err(ClientError::Unsupported {
                    what: "the largeBlob extension",
                })
            }
            support => support.filter(|_| info.has_extension("largeBlob")),
        };
        // CTAP: an authenticator that supports credBlob stores at least 32 bytes.
        let cred_blob_max = info.max_cred_blob_length.unwrap_or(32).max(32);
        let cred_blob = ext
            .cred_blob
            .as_ref()
            .is_some_and(|b| info.has_extension("credBlob") && b.len() as u64 <= cred_blob_max);
        Ok(Decisions {
            rk,
            uv,
            cred_protect,
            prf: ext.prf.is_some() && info.has_extension("prf"),
            large_blob,
            cred_blob,
            min_pin_length: ext.min_pin_length && info.has_extension("minPinLength"),
        })
    }

    /// The tunnel payload of the request: command byte ‖ canonical CBOR parameters.
    pub fn ctap_request(&self, info: &AuthenticatorInfo) -> Result<Vec<u8>, ClientError> {
        let d = self.decide(info)?;
        let o = &self.options;
        let mut params = BTreeMap::from([
            (
                Value::Unsigned(1),
                Value::Bytes(self.client_data.hash().to_vec()),
            ),
            (
                Value::Unsigned(2),
                Value::map([
                    (text("id"), text(&self.rp_id)),
                    (text("name"), text(&o.rp_name)),
                ]),
            ),
            (
                Value::Unsigned(3),
                // Chrome-for-Android requires all three user members.
                Value::map([
                    (text("id"), Value::Bytes(o.user_id.clone())),
                    (text("name"), text(&o.user_name)),
                    (text("displayName"), text(&o.user_display_name)),
                ]),
            ),
            (
                Value::Unsigned(4),
                Value::Array(
                    o.algorithms
                        .iter()
                        .map(|&alg| {
                            Value::map([
                                (text("alg"), Value::integer(alg)),
                                (text("type"), text("public-key")),
                            ])
                        })
                        .collect(),
                ),
            ),
            (
                Value::Unsigned(7),
                Value::map([
                    (text("rk"), Value::Bool(d.rk)),
                    (text("uv"), Value::Bool(d.uv)),
                ]),
            ),
        ]);
        if !o.exclude_credentials.is_empty() {
            params.insert(Value::Unsigned(5), descriptor_list(&o.exclude_credentials));
        }
        let mut extensions = BTreeMap::new();
        if let Some(level) = d.cred_protect {
            extensions.insert(text("credProtect"), Value::Unsigned(u64::from(level)));
        }
        if let (true, Some(prf)) = (d.prf, &o.extensions.prf) {
            extensions.insert(text("prf"), prf.ctap_input());
        }
        if let Some(support) = d.large_blob {
            extensions.insert(text("largeBlob"), large_blob::registration_input(support));
        }
        if let (true, Some(blob)) = (d.cred_blob, &o.extensions.cred_blob) {
            extensions.insert(text("credBlob"), Value::Bytes(blob.clone()));
        }
        if d.min_pin_length {
            extensions.insert(text("minPinLength"), Value::Bool(true));
        }
        if !extensions.is_empty() {
            params.insert(Value::Unsigned(6), Value::Map(extensions));
        }
        let mut out = vec![command::MAKE_CREDENTIAL];
        Value::Map(params).encode_into(&mut out);
        Ok(out)
    }

    /// Turns the phone's reply (`status ‖ CBOR`) into the registration response.
    pub fn finish(
        &self,
        info: &AuthenticatorInfo,
        reply: &[u8],
    ) -> Result<RegistrationResponse, ClientError> {
        const WHAT: &str = "makeCredential response";
        let bad = |why| ClientError::MalformedResponse { what: WHAT, why };
        let d = self.decide(info)?;
        let body = split_status(reply)?;
        let map = decode_map(body, WHAT)?;
        let Some(Value::Text(fmt)) = map_get(&map, 1) else {
            return Err(bad("fmt missing or not text"));
        };
        let Some(Value::Bytes(auth_data)) = map_get(&map, 2) else {
            return Err(bad("authData missing or not bytes"));
        };
        let Some(att_stmt @ Value::Map(_)) = map_get(&map, 3) else {
            return Err(bad("attStmt missing or not a map"));
        };
        let parsed = AuthenticatorData::parse(auth_data, &self.rp_id)?;
        let Some(attested) = parsed.attested.clone() else {
            return Err(bad("authData has no attested credential"));
        };
        if d.uv
            && self.options.user_verification == UserVerification::Required
            && parsed.flags & crate::ctap::flags::USER_VERIFIED == 0
        {
            return Err(bad("user verification was required but not performed"));
        }
        // WebAuthn: `enabled` is what the authenticator said, false when it said nothing or
        // was not asked because it does not offer the extension.
        let prf = match &self.options.extensions.prf {
            None => None,
            Some(_) => {
                let output = if d.prf {
                    prf::parse_output(map_get(&map, 6), WHAT)?
                } else {
                    None
                };
                Some(PrfOutputs {
                    enabled: Some(output.as_ref().and_then(|o| o.enabled) == Some(true)),
                    results: output.and_then(|o| o.results),
                })
            }
        };
        let large_blob = match self.options.extensions.large_blob {
            None => None,
            Some(_) => Some(LargeBlobOutputs {
                supported: Some(
                    d.large_blob.is_some()
                        && large_blob::registration_output(map_get(&map, 6), WHAT)?,
                ),
                ..LargeBlobOutputs::default()
            }),
        };
        let cred_blob = self
            .options
            .extensions
            .cred_blob
            .as_ref()
            .map(|_| d.cred_blob && parsed.extension("credBlob") == Some(&Value::Bool(true)));
        let (alg, der) = public_key_info(&attested.public_key)?;
        if !self.options.algorithms.contains(&alg) {
            return Err(bad("credential algorithm was not requested"));
        }
        // With conveyance "none" the client replaces the statement (WebAuthn §5.1.3 step 20);
        // authData stays as signed, so no signature elsewhere is invalidated.
        let (fmt, att_stmt) = match self.options.attestation {
            Attestation::None => ("none".to_owned(), Value::Map(BTreeMap::new())),
            _ => (fmt.clone(), att_stmt.clone()),
        };
        let attestation_object = Value::map([
            (text("fmt"), Value::Text(fmt)),
            (text("attStmt"), att_stmt),
            (text("authData"), Value::Bytes(auth_data.clone())),
        ])
        .to_bytes();
        Ok(RegistrationResponse {
            credential_id: attested.credential_id,
            client_data_json: self.client_data.json().to_vec(),
            attestation_object,
            authenticator_data: auth_data.clone(),
            public_key_der: der,
            public_key_algorithm: alg,
            cred_props_rk: self.options.extensions.cred_props.then_some(d.rk),
            prf,
            large_blob,
            cred_blob,
        })
    }
}

pub(crate) fn uv_decision(
    requirement: UserVerification,
    info: &AuthenticatorInfo,
) -> Result<bool, ClientError> {
    Ok(match requirement {
        UserVerification::Required if info.option("uv") != Some(true) => {
            return Err(ClientError::Unsupported {
                what: "user verification",
            })
        }
        UserVerification::Required => true,
        UserVerification::Preferred => info.option("uv") == Some(true),
        UserVerification::Discouraged => false,
    })
}

pub(crate) fn descriptor_list(ids: &[Vec<u8>]) -> Value {
    Value::Array(
        ids.iter()
            .map(|id| {
                Value::map([
                    (text("id"), Value::Bytes(id.clone())),
                    (text("type"), text("public-key")),
                ])
            })
            .collect(),
    )
}

/// `(COSE alg, SubjectPublicKeyInfo DER)` of a COSE_Key; DER only for ES256 and EdDSA.
fn public_key_info(map: &BTreeMap<Value, Value>) -> Result<(i64, Option<Vec<u8>>), ClientError> {
    const WHAT: &str = "credential public key";
    let bad = |why| ClientError::MalformedResponse { what: WHAT, why };
    let alg = match map_get_int(map, 3) {
        Some(a @ (Value::Unsigned(_) | Value::Negative(_))) => {
            a.as_i64().ok_or_else(|| bad("alg out of range"))?
        }
        _ => return Err(bad("alg missing")),
    };
    let bytes_at = |key: i64| map_get_int(map, key).and_then(Value::as_bytes);
    let der = match alg {
        -7 => {
            let (Some(x), Some(y)) = (bytes_at(-2), bytes_at(-3)) else {
                return Err(bad("EC2 key lacks x or y"));
            };
            if x.len() != 32 || y.len() != 32 {
                return Err(bad("EC2 coordinates are not 32 bytes"));
            }
            let mut sec1 = Vec::with_capacity(65);
            sec1.push(0x04);
            sec1.extend_from_slice(x);
            sec1.extend_from_slice(y);
            let key = p256::PublicKey::from_sec1_bytes(&sec1)
                .map_err(|_| bad("EC2 point is not on P-256"))?;
            let der = key
                .to_public_key_der()
                .map_err(|_| bad("EC2 key cannot be DER-encoded"))?;
            Some(der.as_bytes().to_vec())
        }
        -8 => {
            let Some(x) = bytes_at(-2).filter(|x| x.len() == 32) else {
                return Err(bad("OKP key lacks a 32-byte x"));
            };
            // RFC 8410 SubjectPublicKeyInfo prefix for Ed25519.
            let mut der = vec![
                0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
            ];
            der.extend_from_slice(x);
            Some(der)
        }
        _ => None,
    };
    Ok((alg, der))
}

fn text(s: &str) -> Value {
    Value::Text(s.to_owned())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::ctap::tests::{auth_data, cbor_kind, cose_es256, int, CHROME_GET_INFO};
    use cable_proto::CborErrorKind;
    use p256::elliptic_curve::sec1::ToEncodedPoint;

    const OPTIONS: &str = r#"{
        "rp": {"id": "example.com", "name": "Example"},
        "user": {"id": "AQID", "name": "ada", "displayName": "Ada"},
        "challenge": "AAECAw",
        "pubKeyCredParams": [{"type": "public-key", "alg": -7}],
        "excludeCredentials": [{"type": "public-key", "id": "qg"}],
        "authenticatorSelection": {"residentKey": "required", "userVerification": "required"},
        "extensions": {"credProps": true}
    }"#;

    fn chrome_info() -> AuthenticatorInfo {
        AuthenticatorInfo::parse(&hex::decode(CHROME_GET_INFO).unwrap()).unwrap()
    }

    #[test]
    fn a_registration_from_a_frame_of_another_site() {
        let options = r#"{"rp": {"id": "example.com", "name": "Example"},
            "user": {"id": "AQ", "name": "ada", "displayName": "Ada"},
            "challenge": "AAECAw", "pubKeyCredParams": [{"type": "public-key", "alg": -7}]}"#;
        let reg = PreparedRegistration::new_in_frame(
            options,
            "https://example.com",
            "https://shop.example",
        )
        .unwrap();
        let json = std::str::from_utf8(reg.client_data().json()).unwrap();
        assert!(
            json.starts_with(r#"{"type":"webauthn.create","challenge":"AAECAw","#)
                && json.ends_with(r#""crossOrigin":true,"topOrigin":"https://shop.example"}"#),
            "{json}"
        );
    }

    #[test]
    fn make_credential_request_is_canonical_cbor() {
        let reg = PreparedRegistration::new(OPTIONS, "https://example.com").unwrap();
        let req = reg.ctap_request(&chrome_info()).unwrap();
        let hash = hex::encode(reg.client_data().hash());
        let expected = format!(
            "01a6\
             015820{hash}\
             02a2626964{rp}646e616d65674578616d706c65\
             03a362696443010203646e616d65636164616b646973706c61794e616d6563416461\
             0481a263616c672664747970656a7075626c69632d6b6579\
             0581a262696441aa64747970656a7075626c69632d6b6579\
             07a262726bf5627576f5",
            rp = hex::encode(b"\x6bexample.com"),
        )
        .replace(' ', "");
        assert_eq!(hex::encode(req), expected);
    }

    #[test]
    fn requests_pass_the_strict_canonical_decoder_of_cable_proto() {
        let opts = OPTIONS.replace(
            "\"pubKeyCredParams\": [{\"type\": \"public-key\", \"alg\": -7}]",
            "\"pubKeyCredParams\": [{\"type\": \"public-key\", \"alg\": -257}, {\"type\": \"public-key\", \"alg\": -7}]",
        );
        let reg = PreparedRegistration::new(&opts, "https://example.com").unwrap();
        let req = reg.ctap_request(&chrome_info()).unwrap();
        let decoded = cable_proto::cbor::decode(&req[1..]).unwrap();
        assert_eq!(decoded.to_bytes(), req[1..].to_vec());
        let auth = crate::PreparedAuthentication::new(
            r#"{"challenge": "AQ", "allowCredentials": [{"type": "public-key", "id": "AQ"}]}"#,
            "https://example.com",
        )
        .unwrap();
        let req = auth.ctap_request(&chrome_info()).unwrap();
        let decoded = cable_proto::cbor::decode(&req[1..]).unwrap();
        assert_eq!(decoded.to_bytes(), req[1..].to_vec());
    }

    #[test]
    fn preferred_and_discouraged_follow_get_info() {
        let opts = OPTIONS
            .replace(
                "\"residentKey\": \"required\"",
                "\"residentKey\": \"preferred\"",
            )
            .replace(
                "\"userVerification\": \"required\"",
                "\"userVerification\": \"discouraged\"",
            );
        let reg = PreparedRegistration::new(&opts, "https://example.com").unwrap();
        let req = reg.ctap_request(&chrome_info()).unwrap();
        assert!(hex::encode(&req).ends_with("07a262726bf5627576f4"));
        let no_rk = AuthenticatorInfo::parse(&hex::decode("a104a0").unwrap()).unwrap();
        let req = reg.ctap_request(&no_rk).unwrap();
        assert!(hex::encode(&req).ends_with("07a262726bf4627576f4"));
        let strict = PreparedRegistration::new(OPTIONS, "https://example.com").unwrap();
        assert!(matches!(
            strict.ctap_request(&no_rk),
            Err(ClientError::Unsupported { .. })
        ));
    }

    #[test]
    fn cred_protect_is_forwarded_or_enforced() {
        let opts = OPTIONS.replace(
            "\"credProps\": true",
            "\"credentialProtectionPolicy\": \"userVerificationRequired\", \"enforceCredentialProtectionPolicy\": true",
        );
        let reg = PreparedRegistration::new(&opts, "https://example.com").unwrap();
        assert!(matches!(
            reg.ctap_request(&chrome_info()),
            Err(ClientError::Unsupported { .. })
        ));
        // a2 01 f5 ... options {rk, uv}, extensions {"credProtect": 3}
        let info = AuthenticatorInfo::parse(
            &hex::decode("a202816b6372656450726f7465637404a262726bf5627576f5").unwrap(),
        )
        .unwrap();
        let req = reg.ctap_request(&info).unwrap();
        assert!(hex::encode(&req).contains("06a16b6372656450726f7465637403"));
    }

    #[test]
    fn rejects_rp_id_of_another_site() {
        assert!(matches!(
            PreparedRegistration::new(OPTIONS, "https://evil.com"),
            Err(ClientError::RpIdMismatch { .. })
        ));
    }

    fn reply(auth: &[u8], fmt: &str) -> Vec<u8> {
        let mut out = vec![0];
        out.extend(
            Value::map([
                (int(1), text(fmt)),
                (int(2), Value::Bytes(auth.to_vec())),
                (int(3), Value::map([(text("alg"), int(-7))])),
            ])
            .to_bytes(),
        );
        out
    }

    fn test_key() -> ([u8; 32], [u8; 32]) {
        let sk = p256::SecretKey::from_slice(&[7u8; 32]).unwrap();
        let pt = sk.public_key().to_encoded_point(false);
        let b = pt.as_bytes();
        (b[1..33].try_into().unwrap(), b[33..65].try_into().unwrap())
    }

    const PRF_OPTIONS: &str = r#"{
        "rp": {"id": "example.com", "name": "Example"},
        "user": {"id": "AQID", "name": "ada", "displayName": "Ada"},
        "challenge": "AAECAw",
        "pubKeyCredParams": [{"type": "public-key", "alg": -7}],
        "extensions": {"prf": {"eval": {"first": "AQ", "second": "Ag"}}}
    }"#;

    fn with_unsigned(reply: Vec<u8>, outputs: Value) -> Vec<u8> {
        let Value::Map(mut map) = cable_proto::cbor::decode(&reply[1..]).unwrap() else {
            unreachable!()
        };
        map.insert(int(6), outputs);
        let mut out = vec![0];
        out.extend(Value::Map(map).to_bytes());
        out
    }

    /// `prf` at registration as Chrome asks a phone: the hashed inputs under extension `prf`,
    /// and the phone's unsigned outputs become `clientExtensionResults.prf`.
    #[test]
    fn prf_at_registration_sends_salts_and_reads_the_unsigned_outputs() {
        let reg = PreparedRegistration::new(PRF_OPTIONS, "https://example.com").unwrap();
        let req = reg.ctap_request(&chrome_info()).unwrap();
        let Value::Map(params) = cable_proto::cbor::decode(&req[1..]).unwrap() else {
            unreachable!()
        };
        let expected = Value::map([(
            text("prf"),
            Value::map([(
                text("eval"),
                Value::map([
                    (text("first"), Value::Bytes(prf::salt(&[1]).to_vec())),
                    (text("second"), Value::Bytes(prf::salt(&[2]).to_vec())),
                ]),
            )]),
        )]);
        assert_eq!(params.get(&int(6)), Some(&expected));

        let (x, y) = test_key();
        let auth = auth_data("example.com", 0x45, Some((&[5, 6], cose_es256(x, y))));
        let outputs = Value::map([(
            text("prf"),
            Value::map([
                (text("enabled"), Value::Bool(true)),
                (
                    text("results"),
                    Value::map([
                        (text("first"), Value::Bytes(vec![0xa1; 32])),
                        (text("second"), Value::Bytes(vec![0xa2; 32])),
                    ]),
                ),
            ]),
        )]);
        let resp = reg
            .finish(
                &chrome_info(),
                &with_unsigned(reply(&auth, "none"), outputs),
            )
            .unwrap();
        let outputs = resp.prf.as_ref().unwrap();
        assert_eq!(
            outputs.to_json(),
            serde_json::json!({"enabled": true, "results": {
                "first": crate::webauthn::options::b64url(&[0xa1; 32]),
                "second": crate::webauthn::options::b64url(&[0xa2; 32]),
            }})
        );
        // The JSON for the server says whether PRF is enabled, never the outputs.
        assert_eq!(
            resp.to_json()["clientExtensionResults"],
            serde_json::json!({"prf": {"enabled": true}})
        );

        // A phone that says nothing about prf: not enabled.
        let silent = reg.finish(&chrome_info(), &reply(&auth, "none")).unwrap();
        assert_eq!(
            silent.prf,
            Some(PrfOutputs {
                enabled: Some(false),
                results: None
            })
        );
        // Malformed outputs are the phone's error, not silently dropped.
        let short = Value::map([(
            text("prf"),
            Value::map([(
                text("results"),
                Value::map([(text("first"), Value::Bytes(vec![1; 16]))]),
            )]),
        )]);
        assert!(matches!(
            reg.finish(&chrome_info(), &with_unsigned(reply(&auth, "none"), short)),
            Err(ClientError::MalformedResponse { .. })
        ));
    }

    /// A phone without `prf` in getInfo is not asked, and the credential is reported as not
    /// supporting it; a relying party that did not ask gets nothing either way.
    #[test]
    fn prf_is_only_sent_to_phones_that_offer_it() {
        // Chrome's getInfo with its extension list emptied.
        let mut bytes = hex::decode(CHROME_GET_INFO).unwrap();
        let Value::Map(mut map) = cable_proto::cbor::decode(&bytes).unwrap() else {
            unreachable!()
        };
        map.remove(&int(2));
        bytes = Value::Map(map).to_bytes();
        let no_prf = AuthenticatorInfo::parse(&bytes).unwrap();
        let reg = PreparedRegistration::new(PRF_OPTIONS, "https://example.com").unwrap();
        let req = reg.ctap_request(&no_prf).unwrap();
        let Value::Map(params) = cable_proto::cbor::decode(&req[1..]).unwrap() else {
            unreachable!()
        };
        assert_eq!(params.get(&int(6)), None);
        let (x, y) = test_key();
        let auth = auth_data("example.com", 0x45, Some((&[5, 6], cose_es256(x, y))));
        let resp = reg.finish(&no_prf, &reply(&auth, "none")).unwrap();
        assert_eq!(
            resp.to_json()["clientExtensionResults"],
            serde_json::json!({"prf": {"enabled": false}})
        );
        let plain = PreparedRegistration::new(OPTIONS, "https://example.com").unwrap();
        let resp = plain.finish(&chrome_info(), &reply(&auth, "none")).unwrap();
        assert_eq!(resp.prf, None);
    }

    /// A getInfo listing the extensions that security keys and some platforms offer.
    pub(crate) fn info_with(extensions: &[&str]) -> AuthenticatorInfo {
        let info = Value::map([
            (
                int(1),
                Value::Array(vec![text("FIDO_2_0"), text("FIDO_2_1")]),
            ),
            (
                int(2),
                Value::Array(extensions.iter().map(|e| text(e)).collect()),
            ),
            (int(3), Value::Bytes(vec![0; 16])),
            (
                int(4),
                Value::map([
                    (text("rk"), Value::Bool(true)),
                    (text("uv"), Value::Bool(true)),
                ]),
            ),
            (int(15), Value::Unsigned(32)),
        ]);
        AuthenticatorInfo::parse(&info.to_bytes()).unwrap()
    }

    fn extension_inputs(reg: &PreparedRegistration, info: &AuthenticatorInfo) -> Option<Value> {
        let req = reg.ctap_request(info).unwrap();
        let Value::Map(mut params) = cable_proto::cbor::decode(&req[1..]).unwrap() else {
            unreachable!()
        };
        params.remove(&int(6))
    }

    /// `largeBlob`, `credBlob` and `minPinLength` go to a phone that lists them, and only
    /// to one: what a phone does not offer it is not sent, and "required" support fails
    /// before anything is asked.
    #[test]
    fn large_blob_cred_blob_and_min_pin_length_follow_get_info() {
        let options = PRF_OPTIONS.replace(
            r#""prf": {"eval": {"first": "AQ", "second": "Ag"}}"#,
            r#""largeBlob": {"support": "preferred"}, "credBlob": "AQID", "minPinLength": true"#,
        );
        let reg = PreparedRegistration::new(&options, "https://example.com").unwrap();
        let all = info_with(&["credBlob", "credProtect", "largeBlob", "minPinLength"]);
        assert_eq!(
            extension_inputs(&reg, &all),
            Some(Value::map([
                (text("credBlob"), Value::Bytes(vec![1, 2, 3])),
                (
                    text("largeBlob"),
                    Value::map([(text("support"), text("preferred"))])
                ),
                (text("minPinLength"), Value::Bool(true)),
            ]))
        );
        assert_eq!(extension_inputs(&reg, &chrome_info()), None);

        // The outputs: credBlob from the signed data, largeBlob from the unsigned.
        let (x, y) = test_key();
        let mut ad = auth_data(
            "example.com",
            0x45 | 0x80,
            Some((&[5, 6], cose_es256(x, y))),
        );
        ad.extend(
            Value::map([
                (text("credBlob"), Value::Bool(true)),
                (text("minPinLength"), Value::Unsigned(6)),
            ])
            .to_bytes(),
        );
        let outputs = Value::map([(
            text("largeBlob"),
            Value::map([(text("supported"), Value::Bool(true))]),
        )]);
        let resp = reg
            .finish(&all, &with_unsigned(reply(&ad, "none"), outputs))
            .unwrap();
        assert_eq!(
            resp.to_json()["clientExtensionResults"],
            serde_json::json!({"credBlob": true, "largeBlob": {"supported": true}})
        );
        let (x, y) = test_key();
        let plain = auth_data("example.com", 0x45, Some((&[5, 6], cose_es256(x, y))));
        let resp = reg.finish(&chrome_info(), &reply(&plain, "none")).unwrap();
        assert_eq!(
            resp.to_json()["clientExtensionResults"],
            serde_json::json!({"credBlob": false, "largeBlob": {"supported": false}})
        );

        let required = options.replace("preferred", "required");
        let reg = PreparedRegistration::new(&required, "https://example.com").unwrap();
        assert!(matches!(
            reg.ctap_request(&chrome_info()),
            Err(ClientError::Unsupported { .. })
        ));
        // A credBlob longer than the phone stores is not sent.
        let long = options.replace("AQID", &crate::webauthn::options::b64url(&[9; 33]));
        let reg = PreparedRegistration::new(&long, "https://example.com").unwrap();
        let Some(Value::Map(sent)) = extension_inputs(&reg, &all) else {
            panic!()
        };
        assert!(!sent.contains_key(&text("credBlob")));
        // read and write belong to sign-in.
        let read = options.replace(r#"{"support": "preferred"}"#, r#"{"read": true}"#);
        let err = PreparedRegistration::new(&read, "https://example.com").unwrap_err();
        assert_eq!(err.dom_exception(), crate::DomException::NotSupportedError);
    }

    #[test]
    fn prf_eval_by_credential_at_registration_is_not_supported() {
        let options = PRF_OPTIONS.replace(
            r#""eval": {"first": "AQ", "second": "Ag"}"#,
            r#""evalByCredential": {"AQ": {"first": "AQ"}}"#,
        );
        let err = PreparedRegistration::new(&options, "https://example.com").unwrap_err();
        assert!(
            matches!(err, ClientError::PrfNotSupported { .. }),
            "{err:?}"
        );
        assert_eq!(err.dom_exception(), crate::DomException::NotSupportedError);
    }

    #[test]
    fn finish_builds_none_attestation_and_spki() {
        let reg = PreparedRegistration::new(OPTIONS, "https://example.com").unwrap();
        let (x, y) = test_key();
        let auth = auth_data("example.com", 0x45, Some((&[5, 6], cose_es256(x, y))));
        let resp = reg.finish(&chrome_info(), &reply(&auth, "packed")).unwrap();
        assert_eq!(resp.credential_id, vec![5, 6]);
        assert_eq!(resp.authenticator_data, auth);
        assert_eq!(resp.client_data_json, reg.client_data().json());
        assert_eq!(resp.public_key_algorithm, -7);
        assert_eq!(resp.cred_props_rk, Some(true));
        let der = resp.public_key_der.unwrap();
        assert_eq!(der.len(), 91);
        assert_eq!(&der[26..], [&[4u8][..], &x, &y].concat().as_slice());
        // {"fmt": "none", "attStmt": {}, "authData": h'…'}
        let mut expected =
            hex::decode("a363666d74646e6f6e656761747453746d74a068617574684461746158").unwrap();
        expected.push(auth.len() as u8);
        expected.extend_from_slice(&auth);
        assert_eq!(resp.attestation_object, expected);
    }

    #[test]
    fn finish_refuses_a_reply_with_duplicate_keys() {
        let reg = PreparedRegistration::new(OPTIONS, "https://example.com").unwrap();
        let (x, y) = test_key();
        let auth = auth_data("example.com", 0x45, Some((&[5], cose_es256(x, y))));
        // {1: "none", 2: authData, 2: authData, 3: {}}: two authData entries, so which one
        // the client checked and which one a relying party reads could differ.
        let mut reply = hex::decode("00a401646e6f6e65").unwrap();
        for _ in 0..2 {
            reply.push(0x02);
            Value::Bytes(auth.clone()).encode_into(&mut reply);
        }
        reply.extend_from_slice(&[0x03, 0xa0]);
        assert_eq!(
            cbor_kind(reg.finish(&chrome_info(), &reply)),
            Some(CborErrorKind::DuplicateKey)
        );
    }

    #[test]
    fn finish_refuses_a_reply_with_unsorted_keys() {
        let reg = PreparedRegistration::new(OPTIONS, "https://example.com").unwrap();
        let (x, y) = test_key();
        let auth = auth_data("example.com", 0x45, Some((&[5], cose_es256(x, y))));
        // {2: authData, 1: "none", 3: {}}
        let mut reply = vec![0x00, 0xa3, 0x02];
        Value::Bytes(auth).encode_into(&mut reply);
        reply.extend_from_slice(&hex::decode("01646e6f6e6503a0").unwrap());
        assert_eq!(
            cbor_kind(reg.finish(&chrome_info(), &reply)),
            Some(CborErrorKind::UnsortedKeys)
        );
    }

    #[test]
    fn finish_keeps_attestation_when_asked() {
        let opts = OPTIONS.replace(
            "\"extensions\"",
            "\"attestation\": \"direct\", \"extensions\"",
        );
        let reg = PreparedRegistration::new(&opts, "https://example.com").unwrap();
        let (x, y) = test_key();
        let auth = auth_data("example.com", 0x45, Some((&[5], cose_es256(x, y))));
        let resp = reg.finish(&chrome_info(), &reply(&auth, "packed")).unwrap();
        assert!(hex::encode(&resp.attestation_object).contains(&hex::encode("packed")));
    }

    #[test]
    fn finish_rejects_bad_replies() {
        let reg = PreparedRegistration::new(OPTIONS, "https://example.com").unwrap();
        let info = chrome_info();
        let (x, y) = test_key();
        assert!(matches!(
            reg.finish(&info, &[0x27]),
            Err(ClientError::Authenticator { status: 0x27 })
        ));
        let wrong_rp = auth_data("evil.com", 0x45, Some((&[5], cose_es256(x, y))));
        assert!(reg.finish(&info, &reply(&wrong_rp, "none")).is_err());
        let no_uv = auth_data("example.com", 0x41, Some((&[5], cose_es256(x, y))));
        assert!(reg.finish(&info, &reply(&no_uv, "none")).is_err());
        let no_cred = auth_data("example.com", 0x05, None);
        assert!(reg.finish(&info, &reply(&no_cred, "none")).is_err());
        let off_curve = auth_data(
            "example.com",
            0x45,
            Some((&[5], cose_es256([1; 32], [2; 32]))),
        );
        assert!(reg.finish(&info, &reply(&off_curve, "none")).is_err());
        for garbage in [&[0u8][..], &[0, 0xa0], &[0, 0x01], &[0, 0xa1, 0x01, 0x01]] {
            assert!(reg.finish(&info, garbage).is_err());
        }
    }
}
