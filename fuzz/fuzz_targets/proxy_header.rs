#![no_main]
//! The relay's PROXY protocol parser (`tunnel-server`'s `proxy_protocol::parse`, which the
//! tunnel listener runs with `--proxy-protocol` before anything else), and its reading of
//! `X-Forwarded-For` and `Forwarded` client addresses.
//!
//! Invariants: a complete header never claims more bytes than it was given and parses the
//! same from exactly its own bytes; fed the way the relay reads a socket (never more than
//! `Need` says), parsing reaches the same header without reading past it; every prefix of
//! an accepted header asks for more rather than failing.
use cable_tunnel_server::client_addr::{forwarded_client, ForwardedHeader};
use cable_tunnel_server::proxy_protocol::{parse, Progress};
use cable_tunnel_server::Cidr;
use libfuzzer_sys::fuzz_target;
use std::net::IpAddr;

fuzz_target!(|data: &[u8]| {
    let whole = parse(data);
    if let Ok(Progress::Done(header, len)) = whole {
        assert!(len <= data.len());
        assert_eq!(parse(&data[..len]), Ok(Progress::Done(header, len)));
        for cut in 0..len {
            match parse(&data[..cut]) {
                Ok(Progress::Need(n)) => assert!(n >= 1 && cut + n <= len, "{cut} + {n} > {len}"),
                other => panic!("prefix of {cut} bytes: {other:?}"),
            }
        }
        // Read as a socket is read: never more than asked for.
        let mut buf = Vec::new();
        loop {
            match parse(&buf) {
                Ok(Progress::Need(n)) => {
                    let end = (buf.len() + n).min(data.len());
                    assert!(end > buf.len() && end <= len);
                    buf.extend_from_slice(&data[buf.len()..end]);
                }
                Ok(Progress::Done(h, l)) => {
                    assert_eq!((h, l), (header, len));
                    break;
                }
                Err(e) => panic!("stepwise: {e:?}"),
            }
        }
    }
    if let Ok(Progress::Need(n)) = whole {
        assert!(n >= 1);
    }

    let trusted: Vec<Cidr> = ["10.0.0.0/8", "127.0.0.1", "::1/128"]
        .iter()
        .filter_map(|t| t.parse().ok())
        .collect();
    let values: Vec<&[u8]> = data.split(|&b| b == b'\n').collect();
    for kind in [ForwardedHeader::XForwardedFor, ForwardedHeader::Forwarded] {
        if let Some(IpAddr::V6(v6)) = forwarded_client(kind, values.iter().copied(), &trusted) {
            // Mapped addresses are keyed as the IPv4 address they are.
            assert!(v6.to_ipv4_mapped().is_none(), "{v6}");
        }
    }
});
