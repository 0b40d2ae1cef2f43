//! The `largeBlob` extension (WebAuthn Level 3 §10.1.5): a few kilobytes of data the
//! relying party keeps with the credential on the authenticator (a certificate, a key
//! share), written and read at sign-in.
//!
//! Over hybrid it is the CTAP extension `largeBlob` that Chrome sends to phones, not the
//! `largeBlobKey` + authenticatorLargeBlobs pair of security keys: at registration
//! `{"support": "required"|"preferred"}`, answered in the unsigned outputs with
//! `{"supported": bool}`; at sign-in `{"read": true}` or `{"write": DEFLATE bytes,
//! "originalSize": n}`, answered with `{"blob", "originalSize"}` or `{"written": bool}`.
//! The client compresses and decompresses (raw DEFLATE, RFC 1951), as CTAP prescribes.

use std::collections::BTreeMap;
use std::io::{Read, Write};

use cable_proto::cbor::Value;
use flate2::read::DeflateDecoder;
use flate2::write::DeflateEncoder;
use flate2::Compression;
use serde_json::{Map, Value as Json};

use super::options::b64url;
use crate::error::ClientError;

/// The most a relying party may store: larger blobs are refused before the QR code.
/// CTAP requires authenticators to hold at least 1 KiB of compressed data in total; phones
/// hold more, and a read refuses anything that inflates beyond this.
pub const MAX_BLOB_LEN: usize = 64 * 1024;

/// `largeBlob.support` at registration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LargeBlobSupport {
    /// The credential must support large blobs, or the registration fails.
    Required,
    /// Support if the phone offers it (the default for an unknown value).
    Preferred,
}

/// `largeBlob` at sign-in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LargeBlobRequest {
    /// Read the credential's blob.
    Read,
    /// Replace the credential's blob with these bytes.
    Write(Vec<u8>),
}

/// The `largeBlob` client extension output (`AuthenticationExtensionsLargeBlobOutputs`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct LargeBlobOutputs {
    /// Registration: whether the new credential can hold a blob.
    pub supported: Option<bool>,
    /// Sign-in with `read`: the blob, when the credential has one.
    pub blob: Option<Vec<u8>>,
    /// Sign-in with `write`: whether it was stored.
    pub written: Option<bool>,
}

impl LargeBlobOutputs {
    /// `{"supported"?: bool, "blob"?: b64url, "written"?: bool}`.
    pub fn to_json(&self) -> Json {
        let mut map = Map::new();
        if let Some(supported) = self.supported {
            map.insert("supported".into(), supported.into());
        }
        if let Some(blob) = &self.blob {
            map.insert("blob".into(), b64url(blob).into());
        }
        if let Some(written) = self.written {
            map.insert("written".into(), written.into());
        }
        Json::Object(map)
    }
}

fn text(s: &str) -> Value {
    Value::Text(s.into())
}

/// The registration's CTAP input.
pub(crate) fn registration_input(support: LargeBlobSupport) -> Value {
    let support = match support {
        LargeBlobSupport::Required => "required",
        LargeBlobSupport::Preferred => "preferred",
    };
    Value::map([(text("support"), text(support))])
}

/// The sign-in's CTAP input; the data is compressed here.
pub(crate) fn authentication_input(request: &LargeBlobRequest) -> Result<Value, ClientError> {
    Ok(match request {
        LargeBlobRequest::Read => Value::map([(text("read"), Value::Bool(true))]),
        LargeBlobRequest::Write(data) => {
            let mut encoder = DeflateEncoder::new(Vec::new(), Compression::default());
            let compressed = encoder
                .write_all(data)
                .and_then(|()| encoder.finish())
                .map_err(|_| ClientError::LargeBlobNotSupported {
                    why: "the data could not be compressed",
                })?;
            Value::map([
                (text("originalSize"), Value::Unsigned(data.len() as u64)),
                (text("write"), Value::Bytes(compressed)),
            ])
        }
    })
}

/// WebAuthn's checks at sign-in (§10.1.5): a write names exactly one credential, and fits.
pub(crate) fn check_for_authentication(
    request: &LargeBlobRequest,
    allow: &[Vec<u8>],
) -> Result<(), ClientError> {
    match request {
        LargeBlobRequest::Read => Ok(()),
        LargeBlobRequest::Write(_) if allow.len() != 1 => Err(ClientError::LargeBlobNotSupported {
            why: "a write needs exactly one credential in allowCredentials",
        }),
        LargeBlobRequest::Write(data) if data.len() > MAX_BLOB_LEN => {
            Err(ClientError::LargeBlobNotSupported {
                why: "the data is larger than 64 KiB",
            })
        }
        LargeBlobRequest::Write(_) => Ok(()),
    }
}

fn large_blob_of<'a>(
    unsigned: Option<&'a Value>,
    what: &'static str,
) -> Result<Option<&'a BTreeMap<Value, Value>>, ClientError> {
    let bad = |why| ClientError::MalformedResponse { what, why };
    let Some(unsigned) = unsigned else {
        return Ok(None);
    };
    let Value::Map(unsigned) = unsigned else {
        return Err(bad("unsigned extension outputs are not a map"));
    };
    match unsigned.get(&text("largeBlob")) {
        None => Ok(None),
        Some(Value::Map(map)) => Ok(Some(map)),
        Some(_) => Err(bad("largeBlob output is not a map")),
    }
}

/// `supported` from a makeCredential reply's unsigned outputs (false when absent).
pub(crate) fn registration_output(
    unsigned: Option<&Value>,
    what: &'static str,
) -> Result<bool, ClientError> {
    let Some(map) = large_blob_of(unsigned, what)? else {
        return Ok(false);
    };
    match map.get(&text("supported")) {
        None => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(ClientError::MalformedResponse {
            what,
            why: "largeBlob supported is not a boolean",
        }),
    }
}

/// The output for `request` from a getAssertion reply's unsigned outputs. A blob that does
/// not inflate to its stated size is reported as no blob, as Chrome does: the data is the
/// relying party's, and a damaged copy is no copy.
pub(crate) fn authentication_output(
    request: &LargeBlobRequest,
    unsigned: Option<&Value>,
    what: &'static str,
) -> Result<LargeBlobOutputs, ClientError> {
    let bad = |why| ClientError::MalformedResponse { what, why };
    let map = large_blob_of(unsigned, what)?;
    let member = |name: &str| map.and_then(|m| m.get(&text(name)));
    let (written, blob, size) = (member("written"), member("blob"), member("originalSize"));
    let output = match (request, written, blob, size) {
        (LargeBlobRequest::Write(_), Some(Value::Bool(w)), None, None) => LargeBlobOutputs {
            written: Some(*w),
            ..LargeBlobOutputs::default()
        },
        (LargeBlobRequest::Write(_), None, None, None) => LargeBlobOutputs {
            written: Some(false),
            ..LargeBlobOutputs::default()
        },
        (LargeBlobRequest::Read, None, Some(Value::Bytes(blob)), Some(Value::Unsigned(size))) => {
            LargeBlobOutputs {
                blob: inflate(blob, *size),
                ..LargeBlobOutputs::default()
            }
        }
        (LargeBlobRequest::Read, None, None, None) => LargeBlobOutputs::default(),
        _ => return Err(bad("largeBlob output does not answer the request")),
    };
    Ok(output)
}

fn inflate(compressed: &[u8], original_size: u64) -> Option<Vec<u8>> {
    let size = usize::try_from(original_size).ok()?;
    if size > MAX_BLOB_LEN {
        return None;
    }
    let mut out = Vec::with_capacity(size);
    // One byte more than promised is enough to tell a lie.
    DeflateDecoder::new(compressed)
        .take(size as u64 + 1)
        .read_to_end(&mut out)
        .ok()?;
    (out.len() == size).then_some(out)
}

/// JSON members of `extensions.largeBlob`.
pub(crate) mod json {
    use serde::Deserialize;

    use super::{LargeBlobRequest, LargeBlobSupport};
    use crate::error::ClientError;
    use crate::webauthn::options::b64_field;

    #[derive(Deserialize, Default)]
    pub(crate) struct InputsJson {
        #[serde(default)]
        support: Option<String>,
        #[serde(default)]
        read: Option<bool>,
        #[serde(default)]
        write: Option<String>,
    }

    impl InputsJson {
        /// At registration only `support` is allowed.
        pub(crate) fn for_registration(self) -> Result<LargeBlobSupport, ClientError> {
            if self.read.is_some() || self.write.is_some() {
                return Err(ClientError::LargeBlobNotSupported {
                    why: "read and write are for signing in, not for creating a credential",
                });
            }
            Ok(match self.support.as_deref() {
                Some("required") => LargeBlobSupport::Required,
                _ => LargeBlobSupport::Preferred,
            })
        }

        /// At sign-in, `read` or `write`, not both, and no `support`. `None` for a
        /// `read: false` alone, which asks for nothing.
        pub(crate) fn for_authentication(self) -> Result<Option<LargeBlobRequest>, ClientError> {
            let not = |why| Err(ClientError::LargeBlobNotSupported { why });
            if self.support.is_some() {
                return not("support is for creating a credential, not for signing in");
            }
            match (self.read, self.write) {
                (Some(_), Some(_)) => not("read and write cannot be asked for together"),
                (Some(true), None) => Ok(Some(LargeBlobRequest::Read)),
                (_, Some(data)) => Ok(Some(LargeBlobRequest::Write(b64_field(
                    &data,
                    "extensions.largeBlob.write",
                )?))),
                _ => Ok(None),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unsigned(members: Vec<(Value, Value)>) -> Value {
        Value::map([(text("largeBlob"), Value::map(members))])
    }

    #[test]
    fn a_written_blob_reads_back() {
        let data = b"a certificate, say".repeat(40);
        let Value::Map(input) =
            authentication_input(&LargeBlobRequest::Write(data.clone())).unwrap()
        else {
            unreachable!()
        };
        assert_eq!(
            input[&text("originalSize")],
            Value::Unsigned(data.len() as u64)
        );
        let compressed = input[&text("write")].as_bytes().unwrap().to_vec();
        assert!(compressed.len() < data.len());
        // What a phone answers to a later read.
        let reply = unsigned(vec![
            (text("blob"), Value::Bytes(compressed)),
            (text("originalSize"), Value::Unsigned(data.len() as u64)),
        ]);
        let out = authentication_output(&LargeBlobRequest::Read, Some(&reply), "r").unwrap();
        assert_eq!(out.blob, Some(data));
    }

    #[test]
    fn outputs_that_do_not_answer_the_request_are_refused() {
        let write = LargeBlobRequest::Write(vec![1]);
        let written = unsigned(vec![(text("written"), Value::Bool(true))]);
        assert_eq!(
            authentication_output(&write, Some(&written), "r")
                .unwrap()
                .written,
            Some(true)
        );
        assert_eq!(
            authentication_output(&write, None, "r").unwrap().written,
            Some(false)
        );
        assert!(matches!(
            authentication_output(&LargeBlobRequest::Read, Some(&written), "r"),
            Err(ClientError::MalformedResponse { .. })
        ));
        let both = unsigned(vec![
            (text("written"), Value::Bool(true)),
            (text("blob"), Value::Bytes(vec![])),
        ]);
        assert!(authentication_output(&write, Some(&both), "r").is_err());
        let not_a_map = Value::map([(text("largeBlob"), Value::Bool(true))]);
        assert!(authentication_output(&write, Some(&not_a_map), "r").is_err());
    }

    #[test]
    fn a_blob_that_does_not_inflate_to_its_size_is_no_blob() {
        let Value::Map(input) =
            authentication_input(&LargeBlobRequest::Write(vec![7; 100])).unwrap()
        else {
            unreachable!()
        };
        let compressed = input[&text("write")].as_bytes().unwrap().to_vec();
        for (blob, size) in [
            (compressed.clone(), 99),
            (compressed.clone(), 101),
            (vec![0xff; 8], 100),
            (compressed, u64::MAX),
        ] {
            let reply = unsigned(vec![
                (text("blob"), Value::Bytes(blob)),
                (text("originalSize"), Value::Unsigned(size)),
            ]);
            let out = authentication_output(&LargeBlobRequest::Read, Some(&reply), "r").unwrap();
            assert_eq!(out.blob, None, "size {size}");
        }
    }
}
