//! The key against a fake kernel: a `SOCK_SEQPACKET` socket pair, where one write is one
//! read as on `/dev/uhid`, with the test on the kernel's end.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::sync::mpsc::{self, Receiver, Sender};
use std::time::Duration;

use cable_ctaphid::{fragment, Cid, Command, Message, Packet, Reassembler, Report};
use cable_proto::cbor::{self, Value};
use cable_uhid::event::{EIO, EVENT_SIZE};
use cable_uhid::{
    info, AbortReason, Application, CtapRequest, KeepaliveStatus, KernelEvent, KeyConfig, Reply,
    ReportType, RequestId, UserEvent, VirtualKey, FIDO_REPORT_DESCRIPTOR,
};

const WAIT: Duration = Duration::from_secs(5);

fn seqpacket_pair() -> (UnixStream, UnixStream) {
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

#[derive(Debug)]
enum Seen {
    Request(CtapRequest, Reply),
    Cancel(RequestId),
    Abort(RequestId, AbortReason),
    Open(bool),
    Wink,
}

/// Hands everything to the test, which answers from its own thread.
struct Forward(Sender<Seen>);

impl Application for Forward {
    fn request(&mut self, request: CtapRequest, reply: Reply) {
        let _ = self.0.send(Seen::Request(request, reply));
    }
    fn cancel(&mut self, id: RequestId) {
        let _ = self.0.send(Seen::Cancel(id));
    }
    fn abort(&mut self, id: RequestId, reason: AbortReason) {
        let _ = self.0.send(Seen::Abort(id, reason));
    }
    fn wink(&mut self) {
        let _ = self.0.send(Seen::Wink);
    }
    fn open_changed(&mut self, open: bool) {
        let _ = self.0.send(Seen::Open(open));
    }
}

struct Kernel {
    sock: UnixStream,
    host: Reassembler,
}

impl Kernel {
    fn send(&self, event: &KernelEvent) {
        (&self.sock).write_all(&event.encode()).expect("send");
    }

    fn send_raw(&self, bytes: &[u8]) {
        (&self.sock).write_all(bytes).expect("send");
    }

    fn recv(&self) -> UserEvent {
        let mut buf = vec![0u8; EVENT_SIZE + 1];
        let n = (&self.sock).read(&mut buf).expect("an event from the key");
        assert!(n > 0, "the key closed its end");
        UserEvent::decode(&buf[..n]).expect("a well-formed event")
    }

    /// Writes a CTAPHID message as hidraw does: report number 0, then the 64 bytes.
    fn write(&self, cid: Cid, cmd: Command, payload: &[u8]) {
        for report in fragment(cid, cmd, payload).expect("fits") {
            let mut data = vec![0u8];
            data.extend_from_slice(&report);
            self.send(&KernelEvent::Output {
                data,
                report_type: ReportType::Output,
            });
        }
    }

    /// The next whole CTAPHID message the key sends.
    fn read(&mut self) -> Message {
        loop {
            let UserEvent::Input2 { data } = self.recv() else {
                panic!("expected INPUT2");
            };
            assert_eq!(
                data.len(),
                64,
                "input reports are 64 bytes, no report number"
            );
            let packet = Packet::parse(&data).expect("64 bytes");
            if let Some(message) = self.host.push(&packet).expect("well-formed output") {
                return message;
            }
        }
    }

    /// The next message that is not a keepalive.
    fn read_answer(&mut self) -> Message {
        loop {
            let m = self.read();
            if m.cmd != Command::Keepalive {
                return m;
            }
        }
    }

    fn init(&mut self) -> Cid {
        let nonce = *b"\x11\x22\x33\x44\x55\x66\x77\x88";
        self.write(Cid::BROADCAST, Command::Init, &nonce);
        let answer = self.read();
        assert_eq!((answer.cid, answer.cmd), (Cid::BROADCAST, Command::Init));
        assert_eq!(answer.payload[..8], nonce);
        let cid = Cid::from_bytes(answer.payload[8..12].try_into().expect("4 bytes"));
        assert!(cid.is_allocatable());
        cid
    }
}

struct Rig {
    kernel: Kernel,
    seen: Receiver<Seen>,
    key: Option<VirtualKey>,
}

fn start() -> (Rig, cable_uhid::Create2) {
    let (key_end, kernel_end) = seqpacket_pair();
    kernel_end.set_read_timeout(Some(WAIT)).expect("timeout");
    let (tx, seen) = mpsc::channel();
    let key = VirtualKey::create(key_end, KeyConfig::default(), Forward(tx)).expect("create");
    let kernel = Kernel {
        sock: kernel_end,
        host: Reassembler::new(),
    };
    let UserEvent::Create2(create) = kernel.recv() else {
        panic!("CREATE2 first");
    };
    kernel.send(&KernelEvent::Start { dev_flags: 0 });
    kernel.send(&KernelEvent::Open);
    let rig = Rig {
        kernel,
        seen,
        key: Some(key),
    };
    assert!(matches!(rig.next(), Seen::Open(true)));
    (rig, create)
}

impl Rig {
    fn next(&self) -> Seen {
        self.seen.recv_timeout(WAIT).expect("the application hears")
    }

    fn request(&self) -> (CtapRequest, Reply) {
        match self.next() {
            Seen::Request(r, reply) => (r, reply),
            other => panic!("expected a request, got {other:?}"),
        }
    }
}

#[test]
fn create2_then_init_and_get_info_through_output_and_input2_events() {
    let (mut rig, create) = start();
    assert_eq!(create.descriptor, FIDO_REPORT_DESCRIPTOR);
    assert_eq!(create.bus, 3);
    assert_eq!(create.name, "cable hybrid key");
    assert_eq!((create.vendor, create.product), (0x1209, 0x0001));

    let cid = rig.kernel.init();
    rig.kernel.write(cid, Command::Cbor, &[0x04]);
    let answer = rig.kernel.read();
    assert_eq!((answer.cid, answer.cmd), (cid, Command::Cbor));
    assert_eq!(answer.payload[0], 0x00, "CTAP2_OK");
    let map = cbor::decode(&answer.payload[1..]).expect("canonical CBOR");
    assert_eq!(map, info::get_info());
    let map = map.as_map().expect("a map").clone();
    let get = |k| cbor::map_get(&map, k).expect("present").clone();
    assert_eq!(
        get(1),
        Value::Array(vec![
            Value::Text("FIDO_2_0".into()),
            Value::Text("FIDO_2_1".into())
        ])
    );
    assert_eq!(get(3), Value::Bytes(info::AAGUID.to_vec()));
    assert_eq!(
        get(4),
        Value::map([
            (Value::Text("rk".into()), Value::Bool(true)),
            (Value::Text("up".into()), Value::Bool(true)),
            (Value::Text("uv".into()), Value::Bool(true)),
            (Value::Text("plat".into()), Value::Bool(false)),
        ])
    );
    assert_eq!(get(5), Value::Unsigned(7609));
    assert_eq!(
        get(9),
        Value::Array(vec![
            Value::Text("hybrid".into()),
            Value::Text("usb".into())
        ])
    );
    // getInfo never reached the application.
    assert!(rig.seen.try_recv().is_err());

    // Reports without the report number (64 bytes) are taken too.
    let report: Report = fragment(cid, Command::Ping, b"hi").expect("fits")[0];
    rig.kernel.send(&KernelEvent::Output {
        data: report.to_vec(),
        report_type: ReportType::Output,
    });
    assert_eq!(rig.kernel.read().payload, b"hi");

    drop(rig.key.take());
    assert_eq!(rig.kernel.recv(), UserEvent::Destroy);
}

#[test]
fn get_info_with_parameters_is_refused() {
    let (mut rig, _) = start();
    let cid = rig.kernel.init();
    rig.kernel.write(cid, Command::Cbor, &[0x04, 0xa0]);
    assert_eq!(rig.kernel.read().payload, [0x03]);
}

#[test]
fn other_commands_reach_the_application_which_answers_later() {
    let (mut rig, _) = start();
    let cid = rig.kernel.init();
    // A makeCredential long enough for continuation packets.
    let params = Value::map([(Value::Unsigned(1), Value::Bytes(vec![7; 200]))]).to_bytes();
    let mut request = vec![0x01];
    request.extend_from_slice(&params);
    rig.kernel.write(cid, Command::Cbor, &request);
    let (seen, reply) = rig.request();
    assert_eq!(seen.command, 0x01);
    assert_eq!(seen.params, params);

    // While the application works, keepalives go out every 100 ms ...
    let first = rig.kernel.read();
    assert_eq!(
        (first.cmd, first.payload.as_slice()),
        (Command::Keepalive, &[1u8][..])
    );
    reply.keepalive(KeepaliveStatus::UpNeeded);
    let mut status = 1;
    while status != 2 {
        let m = rig.kernel.read();
        assert_eq!(m.cmd, Command::Keepalive);
        status = m.payload[0];
    }
    // ... and other channels are told to wait.
    let other = rig.kernel.init();
    rig.kernel.write(other, Command::Ping, b"x");
    let busy = rig.kernel.read_answer();
    assert_eq!(
        (busy.cid, busy.cmd, busy.payload),
        (other, Command::Error, vec![0x06])
    );

    let answer = vec![0x55; 300];
    std::thread::spawn(move || reply.success(&answer));
    let m = rig.kernel.read_answer();
    assert_eq!((m.cid, m.cmd), (cid, Command::Cbor));
    assert_eq!(m.payload[0], 0);
    assert_eq!(&m.payload[1..], &[0x55; 300][..]);
}

#[test]
fn a_dropped_reply_answers_ctap1_err_other() {
    let (mut rig, _) = start();
    let cid = rig.kernel.init();
    rig.kernel.write(cid, Command::Cbor, &[0x02]);
    let (_, reply) = rig.request();
    drop(reply);
    assert_eq!(rig.kernel.read_answer().payload, [0x7f]);
}

#[test]
fn cancel_reaches_the_application_which_confirms() {
    let (mut rig, _) = start();
    let cid = rig.kernel.init();
    rig.kernel.write(cid, Command::Cbor, &[0x02, 0xa0]);
    let (_, reply) = rig.request();
    rig.kernel.write(cid, Command::Cancel, &[]);
    let Seen::Cancel(id) = rig.next() else {
        panic!("expected a cancel");
    };
    assert_eq!(id, reply.id());
    reply.cancelled();
    assert_eq!(rig.kernel.read_answer().payload, [0x2d]);
}

#[test]
fn closing_the_device_aborts_the_outstanding_request() {
    let (mut rig, _) = start();
    let cid = rig.kernel.init();
    rig.kernel.write(cid, Command::Cbor, &[0x02, 0xa0]);
    let (_, reply) = rig.request();
    rig.kernel.send(&KernelEvent::Close);
    match rig.next() {
        Seen::Abort(id, AbortReason::Closed) => assert_eq!(id, reply.id()),
        other => panic!("expected an abort, got {other:?}"),
    }
    assert!(matches!(rig.next(), Seen::Open(false)));
    // The late answer goes nowhere, and the device is free for the next program.
    reply.success(&[0xa0]);
    rig.kernel.send(&KernelEvent::Open);
    assert!(matches!(rig.next(), Seen::Open(true)));
    let cid = rig.kernel.init();
    rig.kernel.write(cid, Command::Cbor, &[0x04]);
    let m = rig.kernel.read_answer();
    assert_eq!((m.cid, m.payload[0]), (cid, 0));
}

#[test]
fn resynchronising_aborts_the_request() {
    let (mut rig, _) = start();
    let cid = rig.kernel.init();
    rig.kernel.write(cid, Command::Cbor, &[0x02, 0xa0]);
    let (_, reply) = rig.request();
    rig.kernel.write(cid, Command::Init, &[9; 8]);
    match rig.next() {
        Seen::Abort(id, AbortReason::Resynchronised) => assert_eq!(id, reply.id()),
        other => panic!("expected an abort, got {other:?}"),
    }
}

#[test]
fn wink_is_answered_and_passed_on() {
    let (mut rig, _) = start();
    let cid = rig.kernel.init();
    rig.kernel.write(cid, Command::Wink, &[]);
    assert_eq!(rig.kernel.read().cmd, Command::Wink);
    assert!(matches!(rig.next(), Seen::Wink));
}

#[test]
fn feature_reports_are_refused_with_eio() {
    let (rig, _) = start();
    rig.kernel.send(&KernelEvent::GetReport {
        id: 41,
        report_number: 0,
        report_type: ReportType::Feature,
    });
    assert_eq!(
        rig.kernel.recv(),
        UserEvent::GetReportReply {
            id: 41,
            err: EIO,
            data: vec![]
        }
    );
    rig.kernel.send(&KernelEvent::SetReport {
        id: 42,
        report_number: 0,
        report_type: ReportType::Feature,
        data: vec![1, 2],
    });
    assert_eq!(
        rig.kernel.recv(),
        UserEvent::SetReportReply { id: 42, err: EIO }
    );
}

#[test]
fn malformed_events_and_odd_reports_are_skipped() {
    let (mut rig, _) = start();
    rig.kernel.send_raw(&[1, 2]);
    rig.kernel.send_raw(&99u32.to_ne_bytes());
    rig.kernel.send_raw(&6u32.to_ne_bytes()); // an OUTPUT cut short
    rig.kernel.send(&KernelEvent::Output {
        data: vec![0; 10],
        report_type: ReportType::Output,
    });
    rig.kernel.send(&KernelEvent::Output {
        data: vec![0; 65],
        report_type: ReportType::Feature,
    });
    // Still serving.
    let cid = rig.kernel.init();
    rig.kernel.write(cid, Command::Ping, b"still here");
    assert_eq!(rig.kernel.read().payload, b"still here");
}

#[test]
fn the_key_ends_when_the_kernel_side_closes() {
    let (mut rig, _) = start();
    let key = rig.key.take().expect("key");
    drop(rig.kernel);
    key.wait().expect("a clean end");
}
