//! Authentication: WebAuthn request options → CTAP2 getAssertion → authentication response.
//!
//! Pure: no I/O. The session feeds it the phone's getInfo and the phone's reply bytes.

use std::collections::BTreeMap;

use cable_proto::cbor::{map_get, Value};
use cable_proto::ctap::command;

use crate::ctap::{decode_map, map_get_text, split_status, AuthenticatorData, AuthenticatorInfo};
use crate::error::ClientError;
use crate::registration::{descriptor_list, uv_decision};
use crate::webauthn::client_data::{prepare, Caller, CeremonyKind, ClientData};
use crate::webauthn::large_blob::{self, LargeBlobOutputs, LargeBlobRequest};
use crate::webauthn::options::{RequestOptions, UserVerification};
use crate::webauthn::prf::{self, PrfInputs, PrfOutputs};
use crate::webauthn::response::AuthenticationResponse;

/// An authentication whose options were validated and whose client data was built.
#[derive(Debug, Clone)]
pub struct PreparedAuthentication {
    options: RequestOptions,
    rp_id: String,
    client_data: ClientData,
}

impl PreparedAuthentication {
    /// Validates `options_json` for `origin` and builds the client data.
    pub fn new(options_json: &str, origin: &str) -> Result<Self, ClientError> {
        Self::prepare(
            RequestOptions::from_json(options_json)?,
            origin,
            Caller::SameOrigin,
        )
    }

    /// As [`Self::new`], from already decoded options.
    pub fn from_options(options: RequestOptions, origin: &str) -> Result<Self, ClientError> {
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
            RequestOptions::from_json(options_json)?,
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
            RequestOptions::from_json(options_json)?,
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
            RequestOptions::from_json(options_json)?,
            origin,
            Caller::OwnClientData(client_data_json),
        )
    }

    fn prepare(
        options: RequestOptions,
        origin: &str,
        caller: Caller<'_>,
    ) -> Result<Self, ClientError> {
        if let Some(prf) = &options.extensions.prf {
            prf.check_for_authentication(&options.allow_credentials)?;
        }
        if let Some(request) = &options.extensions.large_blob {
            large_blob::check_for_authentication(request, &options.allow_credentials)?;
        }
        let (rp_id, client_data) = prepare(
            CeremonyKind::Get,
            &options.challenge,
            options.rp_id.as_deref(),
            origin,
            caller,
        )?;
        Ok(PreparedAuthentication {
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
    pub fn options(&self) -> &RequestOptions {
        &self.options
    }

    /// The client data this assertion signs over.
    pub fn client_data(&self) -> &ClientData {
        &self.client_data
    }

    /// The tunnel payload of the request: command byte ‖ canonical CBOR parameters.
    ///
    /// Always `up: true`: a hybrid phone shows UI for every request, so a silent probe
    /// (`up: false`) would only time out.
    pub fn ctap_request(&self, info: &AuthenticatorInfo) -> Result<Vec<u8>, ClientError> {
        let uv = uv_decision(self.options.user_verification, info)?;
        let mut params = BTreeMap::from([
            (Value::Unsigned(1), Value::Text(self.rp_id.clone())),
            (
                Value::Unsigned(2),
                Value::Bytes(self.client_data.hash().to_vec()),
            ),
            (
                Value::Unsigned(5),
                Value::map([
                    (Value::Text("up".into()), Value::Bool(true)),
                    (Value::Text("uv".into()), Value::Bool(uv)),
                ]),
            ),
        ]);
        if !self.options.allow_credentials.is_empty() {
            params.insert(
                Value::Unsigned(3),
                descriptor_list(&self.options.allow_credentials),
            );
        }
        let mut extensions = BTreeMap::new();
        if let Some(prf) = self.prf_request(info) {
            extensions.insert(Value::Text("prf".into()), prf.ctap_input());
        }
        if let Some(request) = self.large_blob_request(info) {
            extensions.insert(
                Value::Text("largeBlob".into()),
                large_blob::authentication_input(request)?,
            );
        }
        if self.cred_blob_request(info) {
            extensions.insert(Value::Text("credBlob".into()), Value::Bool(true));
        }
        if !extensions.is_empty() {
            params.insert(Value::Unsigned(4), Value::Map(extensions));
        }
        let mut out = vec![command::GET_ASSERTION];
        Value::Map(params).encode_into(&mut out);
        Ok(out)
    }

    /// The `prf` inputs to send: when the relying party gave some and the phone offers it.
    fn prf_request(&self, info: &AuthenticatorInfo) -> Option<&PrfInputs> {
        let prf = self.options.extensions.prf.as_ref()?;
        let any = prf.eval.is_some() || !prf.eval_by_credential.is_empty();
        (any && info.has_extension("prf")).then_some(prf)
    }

    /// The `largeBlob` request to send: asked for, and the phone offers the extension.
    fn large_blob_request(&self, info: &AuthenticatorInfo) -> Option<&LargeBlobRequest> {
        let request = self.options.extensions.large_blob.as_ref()?;
        info.has_extension("largeBlob").then_some(request)
    }

    /// Whether `credBlob: true` is sent: `getCredBlob` asked for, and the phone offers it.
    fn cred_blob_request(&self, info: &AuthenticatorInfo) -> bool {
        self.options.extensions.get_cred_blob && info.has_extension("credBlob")
    }

    /// Turns the phone's reply (`status ‖ CBOR`) into the authentication response.
    pub fn finish(
        &self,
        info: &AuthenticatorInfo,
        reply: &[u8],
    ) -> Result<AuthenticationResponse, ClientError> {
        const WHAT: &str = "getAssertion response";
        let bad = |why| ClientError::MalformedResponse { what: WHAT, why };
        let uv = uv_decision(self.options.user_verification, info)?;
        let body = split_status(reply)?;
        let map = decode_map(body, WHAT)?;
        let allow = &self.options.allow_credentials;
        let credential_id = match map_get(&map, 1) {
            Some(Value::Map(cred)) => match map_get_text(cred, "id") {
                Some(Value::Bytes(id)) => id.clone(),
                _ => return Err(bad("credential id missing or not bytes")),
            },
            Some(_) => return Err(bad("credential is not a map")),
            // CTAP2 lets the authenticator omit it when the allow list had exactly one entry.
            None if allow.len() == 1 => allow[0].clone(),
            None => return Err(bad("credential missing")),
        };
        if !allow.is_empty() && !allow.contains(&credential_id) {
            return Err(bad("credential was not in the allow list"));
        }
        let Some(Value::Bytes(auth_data)) = map_get(&map, 2) else {
            return Err(bad("authData missing or not bytes"));
        };
        let Some(Value::Bytes(signature)) = map_get(&map, 3) else {
            return Err(bad("signature missing or not bytes"));
        };
        let user_handle = match map_get(&map, 4) {
            Some(Value::Map(user)) => match map_get_text(user, "id") {
                Some(Value::Bytes(id)) => Some(id.clone()),
                _ => return Err(bad("user id missing or not bytes")),
            },
            Some(_) => return Err(bad("user is not a map")),
            None => None,
        };
        if allow.is_empty() && user_handle.is_none() {
            return Err(bad("discoverable credential without a user handle"));
        }
        let parsed = AuthenticatorData::parse(auth_data, &self.rp_id)?;
        if parsed.flags & crate::ctap::flags::USER_PRESENT == 0 {
            return Err(bad("user presence flag not set"));
        }
        if uv
            && self.options.user_verification == UserVerification::Required
            && parsed.flags & crate::ctap::flags::USER_VERIFIED == 0
        {
            return Err(bad("user verification was required but not performed"));
        }
        // Only results count at sign-in; a phone that was not asked gets no say.
        let prf = match self.prf_request(info) {
            Some(_) => prf::parse_output(map_get(&map, 8), WHAT)?.and_then(|o| {
                o.results.map(|results| PrfOutputs {
                    enabled: None,
                    results: Some(results),
                })
            }),
            None => None,
        };
        let large_blob = match (
            &self.options.extensions.large_blob,
            self.large_blob_request(info),
        ) {
            (None, _) => None,
            (Some(_), Some(request)) => Some(large_blob::authentication_output(
                request,
                map_get(&map, 8),
                WHAT,
            )?),
            // Not offered: nothing read, nothing written.
            (Some(LargeBlobRequest::Read), None) => Some(LargeBlobOutputs::default()),
            (Some(LargeBlobRequest::Write(_)), None) => Some(LargeBlobOutputs {
                written: Some(false),
                ..LargeBlobOutputs::default()
            }),
        };
        // Chrome: an empty blob when the credential has none.
        let cred_blob = self
            .cred_blob_request(info)
            .then(|| match parsed.extension("credBlob") {
                Some(Value::Bytes(blob)) => blob.clone(),
                _ => Vec::new(),
            });
        Ok(AuthenticationResponse {
            credential_id,
            client_data_json: self.client_data.json().to_vec(),
            authenticator_data: auth_data.clone(),
            signature: signature.clone(),
            user_handle,
            prf,
            large_blob,
            cred_blob,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ctap::tests::{auth_data, cbor_kind, int, text, CHROME_GET_INFO};
    use cable_proto::CborErrorKind;

    fn chrome_info() -> AuthenticatorInfo {
        AuthenticatorInfo::parse(&hex::decode(CHROME_GET_INFO).unwrap()).unwrap()
    }

    const DISCOVERABLE: &str =
        r#"{"challenge": "AAECAw", "rpId": "example.com", "userVerification": "required"}"#;

    #[test]
    fn get_assertion_request_is_canonical_cbor() {
        let auth = PreparedAuthentication::new(DISCOVERABLE, "https://example.com").unwrap();
        let req = auth.ctap_request(&chrome_info()).unwrap();
        let expected = format!(
            "02a3016b6578616d706c652e636f6d025820{}05a2627570f5627576f5",
            hex::encode(auth.client_data().hash())
        );
        assert_eq!(hex::encode(req), expected);
    }

    #[test]
    fn a_sign_in_from_a_frame_of_another_site() {
        let auth = PreparedAuthentication::new_in_frame(
            DISCOVERABLE,
            "https://example.com",
            "https://shop.example",
        )
        .unwrap();
        let json = std::str::from_utf8(auth.client_data().json()).unwrap();
        assert!(
            json.ends_with(r#""origin":"https://example.com","crossOrigin":true,"topOrigin":"https://shop.example"}"#),
            "{json}"
        );
        // The phone signs over this client data's hash.
        let req = auth.ctap_request(&chrome_info()).unwrap();
        assert!(hex::encode(req).contains(&hex::encode(auth.client_data().hash())));
        // The relying party id is the frame's to claim, not the page's.
        let err = PreparedAuthentication::new_in_frame(
            DISCOVERABLE,
            "https://shop.example",
            "https://example.com",
        )
        .unwrap_err();
        assert!(matches!(err, ClientError::RpIdMismatch { .. }), "{err:?}");
        // A page that is not a secure origin is refused like an origin would be.
        let err = PreparedAuthentication::new_in_frame(
            DISCOVERABLE,
            "https://example.com",
            "http://shop.example",
        )
        .unwrap_err();
        assert!(matches!(err, ClientError::BadOrigin { .. }), "{err:?}");
    }

    #[test]
    fn client_data_the_caller_built_is_what_the_phone_signs() {
        let own = br#"{"type":"webauthn.get","challenge":"AAECAw","origin":"https://example.com","crossOrigin":false}"#;
        let auth = PreparedAuthentication::with_client_data_json(
            DISCOVERABLE,
            "https://example.com",
            own.to_vec(),
        )
        .unwrap();
        assert_eq!(auth.client_data().json(), own);
        let req = auth.ctap_request(&chrome_info()).unwrap();
        let hash: [u8; 32] = <sha2::Sha256 as sha2::Digest>::digest(own).into();
        assert!(hex::encode(req).contains(&hex::encode(hash)));
        let ad = auth_data("example.com", 0x05, None);
        let done = auth
            .finish(&chrome_info(), &reply(Some(&[7]), &ad, Some(b"u")))
            .unwrap();
        assert_eq!(done.client_data_json, own);
        // Another ceremony's client data is refused before any phone is involved.
        let err = PreparedAuthentication::with_client_data_json(
            DISCOVERABLE,
            "https://example.com",
            br#"{"type":"webauthn.get","challenge":"BBBB","origin":"https://example.com"}"#
                .to_vec(),
        )
        .unwrap_err();
        assert!(err.is_input_error());
        assert_eq!(err.dom_exception(), crate::DomException::TypeError);
    }

    #[test]
    fn a_related_origin_signs_in_for_the_id_that_lists_it() {
        let opts = r#"{"challenge": "AAECAw", "rpId": "example.com"}"#;
        let doc = r#"{"origins": ["https://example.co.uk"]}"#;
        let auth =
            PreparedAuthentication::new_with_related_origins(opts, "https://example.co.uk", doc)
                .unwrap();
        assert_eq!(auth.rp_id(), "example.com");
        let json = std::str::from_utf8(auth.client_data().json()).unwrap();
        assert!(
            json.contains(r#""origin":"https://example.co.uk""#),
            "{json}"
        );
        let err = PreparedAuthentication::new(opts, "https://example.co.uk").unwrap_err();
        assert!(matches!(err, ClientError::RpIdMismatch { .. }), "{err:?}");
    }

    #[test]
    fn allow_list_is_sent_and_checked() {
        let opts = r#"{"challenge": "AAECAw", "rpId": "example.com",
            "allowCredentials": [{"type": "public-key", "id": "AQ"}]}"#;
        let auth = PreparedAuthentication::new(opts, "https://example.com").unwrap();
        let req = auth.ctap_request(&chrome_info()).unwrap();
        assert!(hex::encode(&req).contains("0381a2626964410164747970656a7075626c69632d6b6579"));
        let ad = auth_data("example.com", 0x05, None);
        // Credential omitted: the single allowed id is implied.
        let implied = reply(None, &ad, None);
        assert_eq!(
            auth.finish(&chrome_info(), &implied).unwrap().credential_id,
            vec![1]
        );
        let other = reply(Some(&[2]), &ad, None);
        assert!(auth.finish(&chrome_info(), &other).is_err());
    }

    fn reply(cred: Option<&[u8]>, ad: &[u8], user: Option<&[u8]>) -> Vec<u8> {
        let mut m = Vec::new();
        if let Some(id) = cred {
            m.push((
                int(1),
                Value::map([
                    (text("id"), Value::Bytes(id.to_vec())),
                    (text("type"), text("public-key")),
                ]),
            ));
        }
        m.push((int(2), Value::Bytes(ad.to_vec())));
        m.push((int(3), Value::Bytes(vec![0x30, 0x01])));
        if let Some(u) = user {
            m.push((int(4), Value::map([(text("id"), Value::Bytes(u.to_vec()))])));
        }
        let mut out = vec![0];
        out.extend(Value::map(m).to_bytes());
        out
    }

    #[test]
    fn finish_discoverable() {
        let auth = PreparedAuthentication::new(DISCOVERABLE, "https://example.com").unwrap();
        let info = chrome_info();
        let ad = auth_data("example.com", 0x05, None);
        let r = auth
            .finish(&info, &reply(Some(&[9]), &ad, Some(&[4, 4])))
            .unwrap();
        assert_eq!(r.credential_id, vec![9]);
        assert_eq!(r.user_handle, Some(vec![4, 4]));
        assert_eq!(r.signature, vec![0x30, 0x01]);
        assert_eq!(r.authenticator_data, ad);
        assert_eq!(r.client_data_json, auth.client_data().json());
        // Without a user handle a discoverable assertion is useless to the RP.
        assert!(auth.finish(&info, &reply(Some(&[9]), &ad, None)).is_err());
        // UV required but not performed.
        let no_uv = auth_data("example.com", 0x01, None);
        assert!(auth
            .finish(&info, &reply(Some(&[9]), &no_uv, Some(&[4])))
            .is_err());
        let wrong_rp = auth_data("evil.com", 0x05, None);
        assert!(auth
            .finish(&info, &reply(Some(&[9]), &wrong_rp, Some(&[4])))
            .is_err());
        assert!(matches!(
            auth.finish(&info, &[0x2e]),
            Err(ClientError::Authenticator { status: 0x2e })
        ));
        for garbage in [&[0u8][..], &[0, 0xa0], &[0, 0x80], &[0, 0xa1, 0x01, 0x01]] {
            assert!(auth.finish(&info, garbage).is_err());
        }
    }

    const PRF_SIGN_IN: &str = r#"{"challenge": "AAECAw", "rpId": "example.com",
        "allowCredentials": [{"type": "public-key", "id": "AQ"}, {"type": "public-key", "id": "Ag"}],
        "extensions": {"prf": {"eval": {"first": "AQ"},
                               "evalByCredential": {"Ag": {"first": "Aw", "second": "BA"}}}}}"#;

    /// As Chrome sends it to a phone: `eval` and `evalByCredential` (raw credential ids as
    /// keys) with hashed salts; the phone picks, and its unsigned results come back.
    #[test]
    fn prf_at_sign_in_sends_both_input_kinds_and_reads_the_results() {
        let auth = PreparedAuthentication::new(PRF_SIGN_IN, "https://example.com").unwrap();
        let req = auth.ctap_request(&chrome_info()).unwrap();
        let Value::Map(params) = cable_proto::cbor::decode(&req[1..]).unwrap() else {
            unreachable!()
        };
        let salts = |inputs: &[&[u8]]| {
            Value::map(
                ["first", "second"]
                    .iter()
                    .zip(inputs)
                    .map(|(k, i)| (text(k), Value::Bytes(prf::salt(i).to_vec()))),
            )
        };
        let expected = Value::map([(
            text("prf"),
            Value::map([
                (text("eval"), salts(&[&[1]])),
                (
                    text("evalByCredential"),
                    Value::map([(Value::Bytes(vec![2]), salts(&[&[3], &[4]]))]),
                ),
            ]),
        )]);
        assert_eq!(params.get(&int(4)), Some(&expected));

        let ad = auth_data("example.com", 0x05, None);
        let Value::Map(mut map) =
            cable_proto::cbor::decode(&reply(Some(&[2]), &ad, None)[1..]).unwrap()
        else {
            unreachable!()
        };
        map.insert(
            int(8),
            Value::map([(
                text("prf"),
                Value::map([(
                    text("results"),
                    Value::map([(text("first"), Value::Bytes(vec![0xb1; 32]))]),
                )]),
            )]),
        );
        let mut with_results = vec![0];
        with_results.extend(Value::Map(map).to_bytes());
        let resp = auth.finish(&chrome_info(), &with_results).unwrap();
        assert_eq!(
            resp.prf.as_ref().unwrap().to_json(),
            serde_json::json!({"results": {
                "first": crate::webauthn::options::b64url(&[0xb1; 32])}})
        );
        // Secret outputs stay out of the JSON for the server.
        assert!(!resp
            .to_json_string()
            .contains(&crate::webauthn::options::b64url(&[0xb1; 32])));
        assert_eq!(
            resp.to_json()["clientExtensionResults"],
            serde_json::json!({})
        );
        // No results from the phone: no output at all.
        let resp = auth
            .finish(&chrome_info(), &reply(Some(&[2]), &ad, None))
            .unwrap();
        assert_eq!(resp.prf, None);
        assert_eq!(
            resp.to_json()["clientExtensionResults"],
            serde_json::json!({})
        );
    }

    /// `largeBlob` write and read, and `getCredBlob`, against a phone that offers them.
    #[test]
    fn large_blob_and_cred_blob_at_sign_in() {
        let info = crate::registration::tests::info_with(&["credBlob", "credProtect", "largeBlob"]);
        let write = r#"{"challenge": "AAECAw", "rpId": "example.com",
            "allowCredentials": [{"type": "public-key", "id": "AQ"}],
            "extensions": {"largeBlob": {"write": "AQIDBA"}, "getCredBlob": true}}"#;
        let auth = PreparedAuthentication::new(write, "https://example.com").unwrap();
        let req = auth.ctap_request(&info).unwrap();
        let Value::Map(params) = cable_proto::cbor::decode(&req[1..]).unwrap() else {
            unreachable!()
        };
        let Some(Value::Map(ext)) = params.get(&int(4)) else {
            panic!("{params:?}")
        };
        assert_eq!(ext.get(&text("credBlob")), Some(&Value::Bool(true)));
        let Some(Value::Map(lb)) = ext.get(&text("largeBlob")) else {
            panic!()
        };
        assert_eq!(lb.get(&text("originalSize")), Some(&Value::Unsigned(4)));

        let mut ad = auth_data("example.com", 0x05 | 0x80, None);
        ad.extend(Value::map([(text("credBlob"), Value::Bytes(vec![7, 7]))]).to_bytes());
        let Value::Map(mut map) =
            cable_proto::cbor::decode(&reply(Some(&[1]), &ad, None)[1..]).unwrap()
        else {
            unreachable!()
        };
        map.insert(
            int(8),
            Value::map([(
                text("largeBlob"),
                Value::map([(text("written"), Value::Bool(true))]),
            )]),
        );
        let mut out = vec![0];
        out.extend(Value::Map(map).to_bytes());
        let resp = auth.finish(&info, &out).unwrap();
        assert_eq!(
            resp.to_json()["clientExtensionResults"],
            serde_json::json!({"getCredBlob": "Bwc", "largeBlob": {"written": true}})
        );
        // A phone without them: nothing sent, nothing written, no blob.
        let req = auth.ctap_request(&chrome_info()).unwrap();
        let Value::Map(params) = cable_proto::cbor::decode(&req[1..]).unwrap() else {
            unreachable!()
        };
        assert_eq!(params.get(&int(4)), None);
        let plain = auth_data("example.com", 0x05, None);
        let resp = auth
            .finish(&chrome_info(), &reply(Some(&[1]), &plain, None))
            .unwrap();
        assert_eq!(
            resp.to_json()["clientExtensionResults"],
            serde_json::json!({"largeBlob": {"written": false}})
        );

        // WebAuthn §10.1.5: a write names exactly one credential; read and write exclude
        // each other; support belongs to registration.
        for bad in [
            write.replace(r#"[{"type": "public-key", "id": "AQ"}]"#, "[]"),
            write.replace(r#""write": "AQIDBA""#, r#""write": "AQIDBA", "read": true"#),
            write.replace(r#""write": "AQIDBA""#, r#""support": "required""#),
        ] {
            let err = PreparedAuthentication::new(&bad, "https://example.com").unwrap_err();
            assert_eq!(
                err.dom_exception(),
                crate::DomException::NotSupportedError,
                "{bad}"
            );
        }
    }

    /// WebAuthn §10.1.4: `evalByCredential` needs an allow list (NotSupportedError) and may
    /// only name credentials in it (SyntaxError), checked before any QR code is shown.
    #[test]
    fn prf_eval_by_credential_is_checked_against_the_allow_list() {
        let no_allow = PRF_SIGN_IN.replace(
            r#""allowCredentials": [{"type": "public-key", "id": "AQ"}, {"type": "public-key", "id": "Ag"}],"#,
            "",
        );
        let err = PreparedAuthentication::new(&no_allow, "https://example.com").unwrap_err();
        assert_eq!(err.dom_exception(), crate::DomException::NotSupportedError);
        let stranger = PRF_SIGN_IN.replace(r#""Ag": {"#, r#""BQ": {"#);
        let err = PreparedAuthentication::new(&stranger, "https://example.com").unwrap_err();
        assert!(matches!(err, ClientError::BadPrfInput { .. }), "{err:?}");
        assert_eq!(err.dom_exception(), crate::DomException::SyntaxError);
        let empty_id = PRF_SIGN_IN.replace(r#""Ag": {"#, r#""": {"#);
        let err = PreparedAuthentication::new(&empty_id, "https://example.com").unwrap_err();
        assert_eq!(err.dom_exception(), crate::DomException::SyntaxError);
        let not_b64 = PRF_SIGN_IN.replace(r#""Ag": {"#, r#""!!": {"#);
        let err = PreparedAuthentication::new(&not_b64, "https://example.com").unwrap_err();
        assert_eq!(err.dom_exception(), crate::DomException::SyntaxError);
    }

    #[test]
    fn finish_refuses_a_reply_with_duplicate_keys() {
        let auth = PreparedAuthentication::new(DISCOVERABLE, "https://example.com").unwrap();
        // {1: {"id": h'09', "id": h'0a'}, …}: two credential ids in one descriptor.
        let mut body = hex::decode("00a301a2626964410962696441").unwrap();
        body.push(0x0a);
        body.push(0x02);
        Value::Bytes(auth_data("example.com", 0x05, None)).encode_into(&mut body);
        body.extend_from_slice(&[0x03, 0x41, 0x30]);
        assert_eq!(
            cbor_kind(auth.finish(&chrome_info(), &body)),
            Some(CborErrorKind::DuplicateKey)
        );
    }
}
