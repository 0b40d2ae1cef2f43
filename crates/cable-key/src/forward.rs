//! A request carried to the phone byte for byte, and its answer brought back the same way.

use std::sync::{Mutex, PoisonError};

use cable_client::{AuthenticatorInfo, CeremonyRequest, ClientError};
use cable_proto::cbor;
use cable_proto::qr::RequestHint;
use zeroize::Zeroizing;

use crate::classify::{Kind, GET_NEXT_ASSERTION};

/// The most getNextAssertion requests one ceremony makes, whatever the phone counts: a
/// host picking among more accounts than this is better served by the phone's own picker.
pub const MAX_NEXT_ASSERTIONS: usize = 16;

/// What the phone answered: its reply as it sent it (status byte, then CBOR) and, for a
/// getAssertion that counted several credentials, the answers to getNextAssertion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forwarded {
    /// The phone's reply.
    pub reply: Vec<u8>,
    /// Its answers to getNextAssertion, in order.
    pub next: Vec<Vec<u8>>,
}

/// `command ‖ params` exactly as the host built them (it computed clientDataHash itself).
#[derive(Debug)]
pub struct ForwardedRequest {
    request: Zeroizing<Vec<u8>>,
    kind: Kind,
    next: Mutex<NextAssertions>,
}

#[derive(Debug, Default)]
struct NextAssertions {
    /// How many the first reply made due; `None` until it was seen.
    due: Option<usize>,
    replies: Vec<Vec<u8>>,
}

impl ForwardedRequest {
    /// A request of `kind` with its command byte and parameters.
    pub fn new(kind: Kind, command: u8, params: &[u8]) -> ForwardedRequest {
        let mut request = Zeroizing::new(Vec::with_capacity(1 + params.len()));
        request.push(command);
        request.extend_from_slice(params);
        ForwardedRequest {
            request,
            kind,
            next: Mutex::new(NextAssertions::default()),
        }
    }

    fn next(&self) -> std::sync::MutexGuard<'_, NextAssertions> {
        self.next.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The request parameters in CTAP2 canonical CBOR, as phones require (Google Play
/// services refuses anything else): the host's own bytes when they are canonical already,
/// else the same map re-encoded. Parameters that do not decode at all are left alone (the
/// bridge refused them before this).
pub fn canonical(params: Zeroizing<Vec<u8>>) -> Zeroizing<Vec<u8>> {
    if cbor::decode(&params).is_ok() {
        return params;
    }
    match cbor::decode_any_key_order(&params) {
        Ok(value) => Zeroizing::new(value.to_bytes()),
        Err(_) => params,
    }
}

/// numberOfCredentials (0x05) of a successful getAssertion reply.
fn number_of_credentials(reply: &[u8]) -> Option<u64> {
    let (&status, body) = reply.split_first()?;
    if status != 0 {
        return None;
    }
    let value = cbor::decode(body).ok()?;
    cbor::map_get(value.as_map()?, 5)?.as_unsigned()
}

impl CeremonyRequest for ForwardedRequest {
    type Response = Forwarded;

    fn hint(&self) -> RequestHint {
        match self.kind {
            Kind::Register => RequestHint::MakeCredential,
            Kind::SignIn => RequestHint::GetAssertion,
        }
    }

    fn ctap_request(&self, _info: &AuthenticatorInfo) -> Result<Vec<u8>, ClientError> {
        Ok(self.request.to_vec())
    }

    fn finish(&self, _info: &AuthenticatorInfo, reply: &[u8]) -> Result<Forwarded, ClientError> {
        Ok(Forwarded {
            reply: reply.to_vec(),
            next: std::mem::take(&mut self.next().replies),
        })
    }

    fn follow_up(&self, reply: &[u8]) -> Option<Vec<u8>> {
        if self.kind != Kind::SignIn {
            return None;
        }
        let mut next = self.next();
        let due = *next.due.get_or_insert_with(|| {
            let n = number_of_credentials(reply).unwrap_or(1);
            usize::try_from(n.saturating_sub(1))
                .unwrap_or(usize::MAX)
                .min(MAX_NEXT_ASSERTIONS)
        });
        // A refusal ends it: the host gets NOT_ALLOWED for the ones that never came.
        let last_ok = reply.first() == Some(&0);
        (last_ok && next.replies.len() < due).then(|| vec![GET_NEXT_ASSERTION])
    }

    fn follow_up_reply(&self, reply: Vec<u8>) {
        if reply.first() == Some(&0) {
            self.next().replies.push(reply);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cable_proto::cbor::Value;

    fn assertion(count: Option<u64>) -> Vec<u8> {
        let mut entries = vec![(Value::Unsigned(2), Value::Bytes(vec![0; 37]))];
        if let Some(n) = count {
            entries.push((Value::Unsigned(5), Value::Unsigned(n)));
        }
        let mut out = vec![0];
        Value::map(entries).encode_into(&mut out);
        out
    }

    #[test]
    fn requests_reach_the_phone_in_canonical_cbor() {
        // getAssertion {1: rp id, 2: hash, 5: {"uv": true, "up": true}}, options written
        // in authenticator-rs' order.
        let mut host = vec![0xa3, 0x01, 0x61, b'a', 0x02, 0x41, 0x07, 0x05, 0xa2];
        host.extend_from_slice(&[0x62, b'u', b'v', 0xf5, 0x62, b'u', b'p', 0xf5]);
        let forwarded = canonical(Zeroizing::new(host.clone()));
        assert_ne!(*forwarded, host);
        let strict = cbor::decode(&forwarded).expect("canonical now");
        assert_eq!(
            strict,
            cbor::decode_any_key_order(&host).expect("the same map")
        );
        // Canonical bytes stay exactly as the host built them.
        let again = canonical(forwarded.clone());
        assert_eq!(*again, *forwarded);
    }

    #[test]
    fn one_credential_asks_for_nothing_more() {
        let r = ForwardedRequest::new(Kind::SignIn, 2, &[0xa0]);
        assert_eq!(r.follow_up(&assertion(None)), None);
        let r = ForwardedRequest::new(Kind::SignIn, 2, &[0xa0]);
        assert_eq!(r.follow_up(&assertion(Some(1))), None);
        let r = ForwardedRequest::new(Kind::Register, 1, &[0xa0]);
        assert_eq!(r.follow_up(&assertion(Some(3))), None);
    }

    #[test]
    fn several_credentials_are_fetched_then_handed_over() {
        let r = ForwardedRequest::new(Kind::SignIn, 2, &[0xa0]);
        let first = assertion(Some(3));
        assert_eq!(r.follow_up(&first), Some(vec![0x08]));
        r.follow_up_reply(assertion(None));
        assert_eq!(r.follow_up(&assertion(None)), Some(vec![0x08]));
        r.follow_up_reply(assertion(None));
        assert_eq!(r.follow_up(&assertion(None)), None);
        let info = Value::map([(
            Value::Unsigned(1),
            Value::Array(vec![Value::Text("FIDO_2_0".into())]),
        )]);
        let info = AuthenticatorInfo::parse(&info.to_bytes()).expect("a getInfo");
        let done = r.finish(&info, &first).expect("raw");
        assert_eq!(done.reply, first);
        assert_eq!(done.next.len(), 2);
    }

    #[test]
    fn a_refused_follow_up_ends_the_exchange() {
        let r = ForwardedRequest::new(Kind::SignIn, 2, &[0xa0]);
        assert_eq!(r.follow_up(&assertion(Some(5))), Some(vec![0x08]));
        r.follow_up_reply(vec![0x01]);
        assert_eq!(r.follow_up(&[0x01]), None);
    }

    #[test]
    fn a_huge_count_is_capped() {
        let r = ForwardedRequest::new(Kind::SignIn, 2, &[0xa0]);
        let mut asked = 0;
        let mut last = assertion(Some(u64::MAX));
        while r.follow_up(&last).is_some() {
            asked += 1;
            last = assertion(None);
            r.follow_up_reply(last.clone());
        }
        assert_eq!(asked, MAX_NEXT_ASSERTIONS);
    }
}
