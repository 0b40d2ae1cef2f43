//! The `prf` extension (WebAuthn Level 3 §10.1.4): a relying party asks the credential for
//! one or two pseudo-random values, fixed per credential and input, which password
//! managers use to unlock a vault with a passkey.
//!
//! Over hybrid the client speaks it as Chrome does to phones (PROTOCOL.md §9): the CTAP
//! extension `prf` carries the salts `SHA-256("WebAuthn PRF" ‖ 0x00 ‖ input)` in the clear,
//! and the phone answers in its unsigned extension outputs; the tunnel's encryption stands
//! in for the PIN protocol that `hmac-secret` needs on a USB key. A phone that does not list
//! `prf` in getInfo is sent nothing: registration then reports `enabled: false` and sign-in
//! reports no outputs, as browsers do.

use std::collections::BTreeMap;
use std::fmt;

use cable_proto::cbor::Value;
use serde_json::{Map, Value as Json};
use sha2::{Digest, Sha256};
use zeroize::Zeroize;

use super::options::b64url;
use crate::error::ClientError;

/// What each output is: HMAC-SHA-256.
pub const OUTPUT_LEN: usize = 32;

/// One or two PRF inputs, or the outputs for them (`AuthenticationExtensionsPRFValues`).
///
/// Outputs are key material: they are wiped when dropped and never printed by `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct PrfValues {
    /// The first input, or its output.
    pub first: Vec<u8>,
    /// The optional second input (for key rotation), or its output.
    pub second: Option<Vec<u8>>,
}

impl PrfValues {
    /// One input or output.
    pub fn new(first: impl Into<Vec<u8>>) -> Self {
        PrfValues {
            first: first.into(),
            second: None,
        }
    }

    /// Two inputs or outputs.
    pub fn with_second(first: impl Into<Vec<u8>>, second: impl Into<Vec<u8>>) -> Self {
        PrfValues {
            first: first.into(),
            second: Some(second.into()),
        }
    }

    /// `{"first": b64url, "second"?: b64url}`, as `toJSON()` gives it.
    fn to_json(&self) -> Json {
        let mut map = Map::new();
        map.insert("first".into(), b64url(&self.first).into());
        if let Some(second) = &self.second {
            map.insert("second".into(), b64url(second).into());
        }
        Json::Object(map)
    }

    /// The CTAP form: each input hashed into its salt.
    fn salts(&self) -> Value {
        let mut map = vec![(text("first"), Value::Bytes(salt(&self.first).to_vec()))];
        if let Some(second) = &self.second {
            map.push((text("second"), Value::Bytes(salt(second).to_vec())));
        }
        Value::map(map)
    }
}

impl fmt::Debug for PrfValues {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PrfValues")
            .field("first", &format_args!("<{} bytes>", self.first.len()))
            .field(
                "second",
                &format_args!(
                    "{}",
                    if self.second.is_some() {
                        "<set>"
                    } else {
                        "None"
                    }
                ),
            )
            .finish()
    }
}

impl Drop for PrfValues {
    fn drop(&mut self) {
        self.first.zeroize();
        if let Some(second) = &mut self.second {
            second.zeroize();
        }
    }
}

/// The `prf` inputs of a ceremony (`AuthenticationExtensionsPRFInputs`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PrfInputs {
    /// Inputs for whichever credential answers (at registration: for the new one, if the
    /// phone evaluates at creation).
    pub eval: Option<PrfValues>,
    /// Inputs for particular credentials, by credential id (sign-in only, and only for ids in
    /// the allow list).
    pub eval_by_credential: BTreeMap<Vec<u8>, PrfValues>,
}

/// The `prf` client extension output (`AuthenticationExtensionsPRFOutputs`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrfOutputs {
    /// Registration only: whether the new credential supports the PRF.
    pub enabled: Option<bool>,
    /// The outputs for the inputs that applied, each [`OUTPUT_LEN`] bytes.
    pub results: Option<PrfValues>,
}

impl PrfOutputs {
    /// `{"enabled"?: bool, "results"?: {"first": b64url, "second"?: b64url}}`, as a browser's
    /// `getClientExtensionResults()` would give it to the page's script. Secret: not for the
    /// relying party's server (the response JSON leaves the results out).
    pub fn to_json(&self) -> Json {
        let mut map = Map::new();
        if let Some(enabled) = self.enabled {
            map.insert("enabled".into(), enabled.into());
        }
        if let Some(results) = &self.results {
            map.insert("results".into(), results.to_json());
        }
        Json::Object(map)
    }
}

/// `SHA-256("WebAuthn PRF" ‖ 0x00 ‖ input)`: what the relying party's input becomes before
/// an authenticator sees it, so that a site cannot evaluate the PRF at points another use of
/// hmac-secret relies on.
pub fn salt(input: &[u8]) -> [u8; 32] {
    Sha256::new()
        .chain_update(b"WebAuthn PRF\0")
        .chain_update(input)
        .finalize()
        .into()
}

fn text(s: &str) -> Value {
    Value::Text(s.into())
}

impl PrfInputs {
    /// The CTAP extension input, `{"eval"?: salts, "evalByCredential"?: {id: salts}}`.
    pub(crate) fn ctap_input(&self) -> Value {
        let mut map = BTreeMap::new();
        if let Some(eval) = &self.eval {
            map.insert(text("eval"), eval.salts());
        }
        if !self.eval_by_credential.is_empty() {
            map.insert(
                text("evalByCredential"),
                Value::map(
                    self.eval_by_credential
                        .iter()
                        .map(|(id, values)| (Value::Bytes(id.clone()), values.salts())),
                ),
            );
        }
        Value::Map(map)
    }

    /// WebAuthn's checks at registration: `evalByCredential` has no credential to name yet.
    pub(crate) fn check_for_registration(&self) -> Result<(), ClientError> {
        if self.eval_by_credential.is_empty() {
            Ok(())
        } else {
            Err(ClientError::PrfNotSupported {
                why: "evalByCredential is not allowed when creating a credential",
            })
        }
    }

    /// WebAuthn's checks at sign-in: `evalByCredential` only with an allow list, and only
    /// for credentials in it.
    pub(crate) fn check_for_authentication(&self, allow: &[Vec<u8>]) -> Result<(), ClientError> {
        if self.eval_by_credential.is_empty() {
            return Ok(());
        }
        if allow.is_empty() {
            return Err(ClientError::PrfNotSupported {
                why: "evalByCredential needs allowCredentials",
            });
        }
        if self.eval_by_credential.keys().any(|id| !allow.contains(id)) {
            return Err(ClientError::BadPrfInput {
                why: "evalByCredential names a credential that is not in allowCredentials",
            });
        }
        Ok(())
    }
}

/// Reads the phone's `prf` output from a reply's unsigned extension outputs (makeCredential
/// key 6, getAssertion key 8). `None` when the phone gave none.
pub(crate) fn parse_output(
    unsigned: Option<&Value>,
    what: &'static str,
) -> Result<Option<PrfOutputs>, ClientError> {
    let bad = |why| ClientError::MalformedResponse { what, why };
    let Some(unsigned) = unsigned else {
        return Ok(None);
    };
    let Value::Map(unsigned) = unsigned else {
        return Err(bad("unsigned extension outputs are not a map"));
    };
    let Some(prf) = unsigned.get(&text("prf")) else {
        return Ok(None);
    };
    let Value::Map(prf) = prf else {
        return Err(bad("prf output is not a map"));
    };
    let enabled = match prf.get(&text("enabled")) {
        None => None,
        Some(Value::Bool(b)) => Some(*b),
        Some(_) => return Err(bad("prf enabled is not a boolean")),
    };
    let output = |v: &Value| match v {
        Value::Bytes(b) if b.len() == OUTPUT_LEN => Ok(b.clone()),
        _ => Err(bad("prf result is not 32 bytes")),
    };
    let results = match prf.get(&text("results")) {
        None => None,
        Some(Value::Map(results)) => {
            let Some(first) = results.get(&text("first")) else {
                return Err(bad("prf results lack first"));
            };
            Some(PrfValues {
                first: output(first)?,
                second: results.get(&text("second")).map(output).transpose()?,
            })
        }
        Some(_) => return Err(bad("prf results are not a map")),
    };
    Ok(Some(PrfOutputs { enabled, results }))
}

/// JSON members of `extensions.prf`, base64url as `PublicKeyCredential*OptionsJSON` carries
/// them.
pub(crate) mod json {
    use std::collections::BTreeMap;

    use serde::Deserialize;

    use super::{PrfInputs, PrfValues};
    use crate::error::ClientError;
    use crate::webauthn::options::b64_field;

    #[derive(Deserialize)]
    pub(crate) struct ValuesJson {
        first: String,
        #[serde(default)]
        second: Option<String>,
    }

    #[derive(Deserialize, Default)]
    #[serde(rename_all = "camelCase")]
    pub(crate) struct InputsJson {
        #[serde(default)]
        eval: Option<ValuesJson>,
        #[serde(default)]
        eval_by_credential: Option<BTreeMap<String, ValuesJson>>,
    }

    fn values(v: ValuesJson, field: &'static str) -> Result<PrfValues, ClientError> {
        Ok(PrfValues {
            first: b64_field(&v.first, field)?,
            second: v.second.map(|s| b64_field(&s, field)).transpose()?,
        })
    }

    impl InputsJson {
        pub(crate) fn decode(self) -> Result<PrfInputs, ClientError> {
            let eval = self
                .eval
                .map(|v| values(v, "extensions.prf.eval"))
                .transpose()?;
            let mut eval_by_credential = BTreeMap::new();
            for (id, v) in self.eval_by_credential.unwrap_or_default() {
                let id = b64_field(&id, "extensions.prf.evalByCredential").map_err(|_| {
                    ClientError::BadPrfInput {
                        why: "evalByCredential has a credential id that is not base64url",
                    }
                })?;
                if id.is_empty() {
                    return Err(ClientError::BadPrfInput {
                        why: "evalByCredential has an empty credential id",
                    });
                }
                eval_by_credential.insert(id, values(v, "extensions.prf.evalByCredential")?);
            }
            Ok(PrfInputs {
                eval,
                eval_by_credential,
            })
        }
    }
}

/// The `prf` member of `clientExtensionResults` in the JSON for the relying party's server:
/// `enabled` only. The outputs are the caller's secret (a vault key derived from them must
/// not reach the server, and strict relying parties such as webauthn_rp refuse responses
/// that carry them); [`PrfOutputs::to_json`] gives them to a caller that wants them as JSON.
pub(crate) fn insert_json(extensions: &mut Map<String, Json>, prf: Option<&PrfOutputs>) {
    if let Some(enabled) = prf.and_then(|p| p.enabled) {
        extensions.insert("prf".into(), serde_json::json!({ "enabled": enabled }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The salt as every browser computes it (the prefix includes its terminating zero).
    #[test]
    fn salts_are_hashed_with_the_prefix_and_its_zero() {
        let mut expected = Sha256::new();
        expected.update(b"WebAuthn PRF");
        expected.update([0]);
        expected.update(b"input");
        assert_eq!(salt(b"input"), <[u8; 32]>::from(expected.finalize()));
        assert_eq!(
            hex::encode(salt(b"")),
            hex::encode(Sha256::digest(b"WebAuthn PRF\0"))
        );
    }

    #[test]
    fn outputs_never_print_and_parse_strictly() {
        let outputs = PrfValues::with_second(vec![0xab; 32], vec![0xcd; 32]);
        let printed = format!("{outputs:?}");
        assert!(
            !printed.contains("171") && !printed.contains("ab"),
            "{printed}"
        );

        let reply = |prf: Value| Value::map([(text("prf"), prf)]);
        let ok = reply(Value::map([
            (text("enabled"), Value::Bool(true)),
            (
                text("results"),
                Value::map([(text("first"), Value::Bytes(vec![1; 32]))]),
            ),
        ]));
        let parsed = parse_output(Some(&ok), "r").unwrap().unwrap();
        assert_eq!(parsed.enabled, Some(true));
        assert_eq!(parsed.results, Some(PrfValues::new(vec![1; 32])));
        assert_eq!(parse_output(None, "r").unwrap(), None);
        assert_eq!(parse_output(Some(&Value::map([])), "r").unwrap(), None);
        for bad in [
            Value::Bytes(vec![]),
            reply(Value::Bool(true)),
            reply(Value::map([(text("enabled"), Value::Unsigned(1))])),
            reply(Value::map([(text("results"), Value::map([]))])),
            reply(Value::map([(
                text("results"),
                Value::map([(text("first"), Value::Bytes(vec![1; 31]))]),
            )])),
            reply(Value::map([(
                text("results"),
                Value::map([
                    (text("first"), Value::Bytes(vec![1; 32])),
                    (text("second"), Value::Text("x".into())),
                ]),
            )])),
        ] {
            assert!(
                matches!(
                    parse_output(Some(&bad), "r"),
                    Err(ClientError::MalformedResponse { .. })
                ),
                "{bad:?}"
            );
        }
    }
}
