#![no_main]
//! The relay's request-head parser and path router (`tunnel-server`'s
//! `parse_head`, which `read_request` runs on every read).
//!
//! Invariants for an accepted head: it never routes `connect` to another
//! instance's routing id, bounds hold (key, client payload, body length), the
//! routed path re-parses to itself, and the same head rewritten with the
//! canonical path (query dropped) routes identically.
use cable_tunnel_server::contact::MAX_REGISTER_BODY;
use cable_tunnel_server::fuzzing::{parse_head, Head};
use cable_tunnel_server::{RoutingId, TunnelPath};
use libfuzzer_sys::fuzz_target;

const REGISTER_PATH: &str = "/cable/push/register";

/// The head with its request target replaced, everything else as httparse read it.
fn rewrite(data: &[u8], target: &str) -> Option<Vec<u8>> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut req = httparse::Request::new(&mut headers);
    let httparse::Status::Complete(_) = req.parse(data).ok()? else {
        return None;
    };
    let mut out = Vec::new();
    out.extend_from_slice(req.method?.as_bytes());
    out.push(b' ');
    out.extend_from_slice(target.as_bytes());
    out.extend_from_slice(format!(" HTTP/1.{}\r\n", req.version?).as_bytes());
    for h in req.headers.iter() {
        out.extend_from_slice(h.name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(h.value);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    Some(out)
}

fuzz_target!(|data: &[u8]| {
    let routing_id = RoutingId::from_bytes([1, 2, 3]);
    let (head, head_len) = match parse_head(data, routing_id) {
        Ok(Some(parsed)) => parsed,
        Ok(None) => return,
        Err(refusal) => {
            let _ = refusal.detail();
            assert!(refusal.reason().status().is_some(), "{refusal:?}");
            return;
        }
    };
    assert!(head_len <= data.len());
    // What follows the head (a WebSocket frame, a body) never changes the routing.
    assert_eq!(
        parse_head(&data[..head_len], routing_id).ok().flatten(),
        Some((head.clone(), head_len))
    );
    let canonical = match &head {
        Head::Upgrade {
            path,
            key,
            client_payload,
            ..
        } => {
            if let TunnelPath::Connect {
                routing_id: rid, ..
            } = path
            {
                assert_eq!(*rid, routing_id);
            }
            assert!(!key.is_empty() && key.len() <= 64);
            if let Some(p) = client_payload {
                assert!(matches!(path, TunnelPath::Contact { .. }));
                assert!(!p.is_empty() && p.len() <= cable_proto::push::MAX_CLIENT_PAYLOAD);
            }
            let canonical = path.to_path();
            assert_eq!(TunnelPath::parse(&canonical).as_ref(), Ok(path));
            canonical
        }
        Head::Register { length, .. } => {
            assert!(*length <= MAX_REGISTER_BODY);
            REGISTER_PATH.to_owned()
        }
    };
    let again = rewrite(&data[..head_len], &canonical).expect("an accepted head parses");
    match parse_head(&again, routing_id) {
        Ok(Some((routed, _))) => assert_eq!(routed, head),
        other => panic!("{canonical} routed differently: {other:?}"),
    }
});
