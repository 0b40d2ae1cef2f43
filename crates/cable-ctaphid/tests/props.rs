//! Properties over arbitrary inputs: the device never panics and always writes a
//! well-formed report stream, fragmenting and reassembling are inverse for every message
//! size, and one channel never sees another's data.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use cable_ctaphid::{
    fragment, Cid, Command, Device, DeviceInfo, ErrorCode, Event, KeepaliveStatus, Message, Packet,
    Reassembler, Report, MAX_MESSAGE_LEN,
};
use proptest::prelude::*;

/// Channels the device hands out first, so that random reports often hit them.
const FIRST_CIDS: [u32; 3] = [1, 2, 3];

#[derive(Clone, Debug)]
enum Op {
    Receive(Report),
    Wait(u64),
    Respond(Vec<u8>),
    ConfirmCancel,
    UpNeeded,
}

fn any_report() -> impl Strategy<Value = Report> {
    let cid = prop_oneof![
        Just(Cid::BROADCAST.0),
        prop::sample::select(FIRST_CIDS.to_vec()),
        any::<u32>(),
    ];
    let kind = prop_oneof![
        // INIT, PING, MSG, LOCK, WINK, CBOR, CANCEL, KEEPALIVE, ERROR, vendor
        prop::sample::select(vec![
            0x86u8, 0x81, 0x83, 0x84, 0x88, 0x90, 0x91, 0xbb, 0xbf, 0xc0
        ]),
        0u8..4,
        any::<u8>(),
    ];
    let bcnt = prop_oneof![Just(8u16), 0u16..200, any::<u16>()];
    (cid, kind, bcnt, prop::collection::vec(any::<u8>(), 57)).prop_map(|(cid, kind, bcnt, data)| {
        let mut r = [0u8; 64];
        r[..4].copy_from_slice(&cid.to_be_bytes());
        r[4] = kind;
        r[5..7].copy_from_slice(&bcnt.to_be_bytes());
        r[7..].copy_from_slice(&data);
        r
    })
}

fn any_op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => any_report().prop_map(Op::Receive),
        2 => prop_oneof![0u64..150, 400u64..700].prop_map(Op::Wait),
        1 => prop::collection::vec(any::<u8>(), 0..200).prop_map(Op::Respond),
        1 => Just(Op::ConfirmCancel),
        1 => Just(Op::UpNeeded),
    ]
}

/// Host-side check of everything the device wrote: whole messages, never interleaved,
/// and each of a kind the device may send.
fn check_output(host: &mut Reassembler, reports: &[Report]) -> Vec<Message> {
    let mut out = Vec::new();
    for r in reports {
        let packet = Packet::parse(r).expect("64 bytes");
        match host.push(&packet) {
            Ok(Some(m)) => out.push(m),
            Ok(None) => {}
            Err(e) => panic!("malformed device output: {e}"),
        }
    }
    assert_eq!(host.in_progress(), None, "a response was cut");
    for m in &out {
        match m.cmd {
            Command::Init => assert_eq!(m.payload.len(), 17),
            Command::Error => {
                assert_eq!(m.payload.len(), 1);
                assert!(ErrorCode::from_code(m.payload[0]).is_some());
            }
            Command::Keepalive => assert!(m.payload == [1] || m.payload == [2]),
            Command::Wink => assert!(m.payload.is_empty()),
            Command::Ping | Command::Cbor => {}
            other => panic!("device sent {other:?}"),
        }
    }
    out
}

fn send(dev: &mut Device, cid: Cid, cmd: Command, payload: &[u8], now: Instant) -> Vec<Event> {
    let mut events = Vec::new();
    for r in fragment(cid, cmd, payload).expect("fits") {
        events.extend(dev.receive(&r, now).expect("64 bytes"));
    }
    events
}

fn open(dev: &mut Device, now: Instant) -> Cid {
    send(dev, Cid::BROADCAST, Command::Init, &[0; 8], now);
    let mut host = Reassembler::new();
    let out = check_output(&mut host, &dev.take_outgoing());
    let p = &out[0].payload;
    Cid::from_bytes([p[8], p[9], p[10], p[11]])
}

proptest! {
    #[test]
    fn arbitrary_reports_never_panic_and_output_stays_well_formed(
        ops in prop::collection::vec(any_op(), 0..80)
    ) {
        let mut dev = Device::new(DeviceInfo::new(0, 1, 2));
        let mut host = Reassembler::new();
        let mut now = Instant::now();
        let mut requests_seen = HashSet::new();
        for op in ops {
            let mut events = Vec::new();
            match op {
                Op::Receive(r) => events = dev.receive(&r, now).expect("64 bytes"),
                Op::Wait(n) => {
                    now += Duration::from_millis(n);
                    dev.poll(now);
                }
                Op::Respond(bytes) => {
                    if let Some(id) = dev.pending_request() {
                        let ok = dev.respond_cbor(id, &bytes).is_ok();
                        prop_assert_eq!(ok, !bytes.is_empty());
                    }
                }
                Op::ConfirmCancel => {
                    if let Some(id) = dev.pending_request() {
                        prop_assert!(dev.confirm_cancel(id).is_ok());
                        prop_assert_eq!(dev.pending_request(), None);
                    }
                }
                Op::UpNeeded => {
                    if let Some(id) = dev.pending_request() {
                        prop_assert!(dev
                            .set_keepalive_status(id, KeepaliveStatus::UpNeeded, now)
                            .is_ok());
                    }
                }
            }
            for e in &events {
                match e {
                    Event::Cbor { id, request } => {
                        prop_assert!(!request.is_empty() && request.len() <= MAX_MESSAGE_LEN);
                        prop_assert!(requests_seen.insert(*id), "request ids are unique");
                        prop_assert_eq!(dev.pending_request(), Some(*id));
                    }
                    Event::Cancel { id } | Event::Aborted { id } => {
                        prop_assert!(requests_seen.contains(id));
                    }
                    Event::Wink { cid } => prop_assert!(dev.is_allocated(*cid)),
                    _ => {}
                }
            }
            check_output(&mut host, &dev.take_outgoing());
            if let Some(deadline) = dev.next_deadline() {
                prop_assert!(deadline > now, "nothing overdue after a call");
            }
        }
    }

    #[test]
    fn fragment_then_reassemble_is_the_identity(
        cid in any::<u32>(),
        code in 0u8..0x80,
        payload in prop::collection::vec(any::<u8>(), 0..=MAX_MESSAGE_LEN),
    ) {
        let cmd = Command::from_code(code);
        let reports = fragment(Cid(cid), cmd, &payload).expect("fits");
        let conts = payload.len().saturating_sub(57).div_ceil(59);
        prop_assert_eq!(reports.len(), 1 + conts);
        let mut r = Reassembler::new();
        let mut done = None;
        for (i, report) in reports.iter().enumerate() {
            let packet = Packet::parse(report).expect("64 bytes");
            let out = r.push(&packet).expect("in order");
            prop_assert_eq!(out.is_some(), i + 1 == reports.len());
            done = out;
        }
        prop_assert_eq!(done, Some(Message { cid: Cid(cid), cmd, payload }));
    }

    #[test]
    fn ping_through_the_device_echoes_any_message(
        payload in prop::collection::vec(any::<u8>(), 0..=MAX_MESSAGE_LEN),
    ) {
        let mut dev = Device::new(DeviceInfo::new(0, 0, 0));
        let now = Instant::now();
        let cid = open(&mut dev, now);
        send(&mut dev, cid, Command::Ping, &payload, now);
        let mut host = Reassembler::new();
        let out = check_output(&mut host, &dev.take_outgoing());
        prop_assert_eq!(out, vec![Message { cid, cmd: Command::Ping, payload }]);
    }

    /// The packets of several channels' PINGs interleaved at random: every answer goes to a
    /// channel that asked, an echo carries only what that channel sent, and a message
    /// sent alone is echoed exactly.
    #[test]
    fn channels_are_isolated(
        messages in prop::collection::vec(
            (0usize..3, prop::collection::vec(any::<u8>(), 0..300)),
            1..6,
        ),
        picks in prop::collection::vec(any::<usize>(), 0..200),
    ) {
        let mut dev = Device::new(DeviceInfo::new(0, 0, 0));
        let now = Instant::now();
        let cids: Vec<Cid> = (0..3).map(|_| open(&mut dev, now)).collect();

        // A channel's own packets stay in order (two messages of one channel mixed are
        // indistinguishable from one message); the channels are interleaved.
        let mut sent: HashMap<Cid, Vec<Vec<u8>>> = HashMap::new();
        let mut queues: Vec<Vec<Report>> = vec![Vec::new(); cids.len()];
        for (chan, payload) in &messages {
            let cid = cids[*chan];
            sent.entry(cid).or_default().push(payload.clone());
            queues[*chan].extend(fragment(cid, Command::Ping, payload).expect("fits"));
        }
        for q in &mut queues {
            q.reverse();
        }
        let mut picks = picks.into_iter();
        while queues.iter().any(|q| !q.is_empty()) {
            let live: Vec<usize> = (0..queues.len()).filter(|&i| !queues[i].is_empty()).collect();
            let i = live[picks.next().unwrap_or(0) % live.len()];
            if let Some(r) = queues[i].pop() {
                prop_assert!(dev.receive(&r, now).expect("64 bytes").is_empty());
            }
        }

        let mut host = Reassembler::new();
        for m in check_output(&mut host, &dev.take_outgoing()) {
            let theirs = sent.get(&m.cid);
            prop_assert!(theirs.is_some(), "answer on a channel that sent nothing");
            match m.cmd {
                Command::Ping => prop_assert!(theirs.is_some_and(|s| s.contains(&m.payload))),
                Command::Error => {}
                other => prop_assert!(false, "unexpected {:?}", other),
            }
        }

        // One after the other, each channel gets exactly its own echo.
        for (chan, payload) in &messages {
            let cid = cids[*chan];
            send(&mut dev, cid, Command::Ping, payload, now);
            let out = check_output(&mut host, &dev.take_outgoing());
            prop_assert_eq!(out, vec![Message { cid, cmd: Command::Ping, payload: payload.clone() }]);
        }
    }
}
