//! Shared by the bridge's tests and benchmarks: the kernel's end of `/dev/uhid` (a
//! `SOCK_SEQPACKET` pair, one write one read), the host's CTAPHID on top of it, and CTAP2
//! requests as hosts build them.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;

use cable_ctaphid::{fragment, Cid, Command, Message, Packet, Reassembler};
use cable_proto::cbor::{self, Value};
use cable_uhid::event::EVENT_SIZE;
use cable_uhid::{KernelEvent, ReportType, UserEvent};

const KEEPALIVE: Command = Command::Keepalive;

pub fn seqpacket_pair() -> (UnixStream, UnixStream) {
    use rustix::net::{socketpair, AddressFamily, SocketFlags, SocketType};
    let (a, b) = socketpair(
        AddressFamily::UNIX,
        SocketType::SEQPACKET,
        SocketFlags::CLOEXEC,
        None,
    )
    .expect("socketpair");
    (UnixStream::from(a), UnixStream::from(b))
}

/// The kernel's end of `/dev/uhid`, and the host's CTAPHID on top of it.
pub struct Kernel {
    pub sock: UnixStream,
    pub host: Reassembler,
}

impl Kernel {
    pub fn send(&self, event: &KernelEvent) {
        (&self.sock).write_all(&event.encode()).expect("send");
    }

    pub fn recv(&self) -> UserEvent {
        let mut buf = vec![0u8; EVENT_SIZE + 1];
        let n = (&self.sock).read(&mut buf).expect("an event from the key");
        assert!(n > 0, "the key closed its end");
        UserEvent::decode(&buf[..n]).expect("a well-formed event")
    }

    pub fn write(&self, cid: Cid, cmd: Command, payload: &[u8]) {
        for report in fragment(cid, cmd, payload).expect("fits") {
            let mut data = vec![0u8];
            data.extend_from_slice(&report);
            self.send(&KernelEvent::Output {
                data,
                report_type: ReportType::Output,
            });
        }
    }

    pub fn read(&mut self) -> Message {
        loop {
            let UserEvent::Input2 { data } = self.recv() else {
                panic!("expected INPUT2");
            };
            let packet = Packet::parse(&data).expect("64 bytes");
            if let Some(message) = self.host.push(&packet).expect("well-formed input") {
                return message;
            }
        }
    }

    /// The answer to the outstanding request, and the keepalive statuses sent before it.
    pub fn answer(&mut self) -> (Message, Vec<u8>) {
        let mut keepalives = Vec::new();
        loop {
            let m = self.read();
            if m.cmd == KEEPALIVE {
                keepalives.push(m.payload[0]);
            } else {
                return (m, keepalives);
            }
        }
    }

    pub fn init(&mut self) -> Cid {
        let nonce = *b"\x01\x02\x03\x04\x05\x06\x07\x08";
        self.write(Cid::BROADCAST, Command::Init, &nonce);
        let answer = self.read();
        assert_eq!(answer.payload[..8], nonce);
        Cid::from_bytes(answer.payload[8..12].try_into().expect("4 bytes"))
    }
}

pub fn text(s: &str) -> Value {
    Value::Text(s.into())
}

pub fn make_credential(client_data_hash: &[u8; 32], rp_id: &str) -> Vec<u8> {
    let mut out = vec![0x01];
    Value::map([
        (Value::Unsigned(1), Value::Bytes(client_data_hash.to_vec())),
        (
            Value::Unsigned(2),
            Value::map([(text("id"), text(rp_id)), (text("name"), text(rp_id))]),
        ),
        (
            Value::Unsigned(3),
            Value::map([
                (text("id"), Value::Bytes(vec![9; 16])),
                (text("name"), text("ada")),
                (text("displayName"), text("Ada")),
            ]),
        ),
        (
            Value::Unsigned(4),
            Value::Array(vec![Value::map([
                (text("alg"), Value::integer(-7)),
                (text("type"), text("public-key")),
            ])]),
        ),
        (
            Value::Unsigned(7),
            Value::map([(text("rk"), Value::Bool(true))]),
        ),
    ])
    .encode_into(&mut out);
    out
}

pub fn get_assertion(client_data_hash: &[u8; 32], rp_id: &str, up: Option<bool>) -> Vec<u8> {
    let mut entries = vec![
        (Value::Unsigned(1), text(rp_id)),
        (Value::Unsigned(2), Value::Bytes(client_data_hash.to_vec())),
    ];
    if let Some(up) = up {
        entries.push((
            Value::Unsigned(5),
            Value::map([(text("up"), Value::Bool(up))]),
        ));
    }
    let mut out = vec![0x02];
    Value::map(entries).encode_into(&mut out);
    out
}

/// `request` (command byte, then a CBOR map) with `key` set to a list of credential
/// descriptors with these ids.
pub fn with_list(request: &[u8], key: u64, ids: &[&[u8]]) -> Vec<u8> {
    let mut map = cbor::decode(&request[1..])
        .expect("CBOR")
        .as_map()
        .expect("a map")
        .clone();
    let list = ids
        .iter()
        .map(|id| {
            Value::map([
                (text("id"), Value::Bytes(id.to_vec())),
                (text("type"), text("public-key")),
            ])
        })
        .collect();
    map.insert(Value::Unsigned(key), Value::Array(list));
    let mut out = vec![request[0]];
    Value::Map(map).encode_into(&mut out);
    out
}

/// `request` with options (0x05) `{"uv": uv, "up": up}` written in that order, as Firefox's
/// authenticator-rs writes them: not CTAP2 canonical ("up" sorts first), which security
/// keys accept.
pub fn with_options_in_field_order(request: &[u8], uv: bool, up: bool) -> Vec<u8> {
    let map = cbor::decode(&request[1..])
        .expect("CBOR")
        .as_map()
        .expect("a map")
        .clone();
    let entries: Vec<_> = map
        .into_iter()
        .filter(|(k, _)| *k != Value::Unsigned(5))
        .collect();
    let count = u8::try_from(entries.len() + 1).expect("a small map");
    let mut out = vec![request[0], 0xa0 | count];
    for (k, v) in &entries {
        k.encode_into(&mut out);
        v.encode_into(&mut out);
    }
    let flag = |b: bool| if b { 0xf5 } else { 0xf4 };
    out.extend_from_slice(&[
        0x05,
        0xa2,
        0x62,
        b'u',
        b'v',
        flag(uv),
        0x62,
        b'u',
        b'p',
        flag(up),
    ]);
    out
}
