//! One test or more for every command and every error of the device.

use std::time::{Duration, Instant};

use cable_ctaphid::{
    fragment, Cid, Command, Config, Device, DeviceInfo, ErrorCode, Event, KeepaliveStatus, Message,
    Packet, Reassembler, ReceiveError, Report, RequestId, RespondError, MAX_MESSAGE_LEN,
};

const NONCE: [u8; 8] = [1, 2, 3, 4, 5, 6, 7, 8];

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn device() -> Device {
    Device::new(DeviceInfo::new(1, 2, 3))
}

/// A report from hex digits (spaces ignored), zero-padded to 64 bytes.
fn report(hex: &str) -> Report {
    let digits: Vec<u8> = hex.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    let mut out = [0u8; 64];
    for (i, pair) in digits.chunks(2).enumerate() {
        let text = std::str::from_utf8(pair).expect("ascii");
        out[i] = u8::from_str_radix(text, 16).expect("hex digits");
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

/// Reads the device's output as a host would; panics on a malformed stream.
fn messages(reports: &[Report]) -> Vec<Message> {
    let mut host = Reassembler::new();
    let mut out = Vec::new();
    for r in reports {
        let packet = Packet::parse(r).expect("64 bytes");
        if let Some(m) = host.push(&packet).expect("well-formed output") {
            out.push(m);
        }
    }
    assert_eq!(host.in_progress(), None, "output ends mid-message");
    out
}

fn take(dev: &mut Device) -> Vec<Message> {
    messages(&dev.take_outgoing())
}

fn error(cid: Cid, code: ErrorCode) -> Message {
    Message {
        cid,
        cmd: Command::Error,
        payload: vec![code.code()],
    }
}

fn open(dev: &mut Device, now: Instant) -> Cid {
    send(dev, Cid::BROADCAST, Command::Init, &NONCE, now);
    let out = take(dev);
    assert_eq!(out.len(), 1);
    let p = &out[0].payload;
    Cid::from_bytes([p[8], p[9], p[10], p[11]])
}

fn cbor(dev: &mut Device, cid: Cid, request: &[u8], now: Instant) -> RequestId {
    match send(dev, cid, Command::Cbor, request, now).as_slice() {
        [Event::Cbor { id, request: got }] => {
            assert_eq!(got, request);
            *id
        }
        other => panic!("{other:?}"),
    }
}

// ---- INIT ----

/// CTAP 2.2, USB HID, CTAPHID_INIT: request BCNT 8 with an 8-byte nonce on the
/// broadcast channel; response BCNT 17 on the same channel: nonce, new CID, CTAPHID
/// protocol version 2, major, minor, build, capability flags (WINK 0x01 | CBOR 0x04 |
/// NMSG 0x08 = 0x0d). Bytes written out by hand from that layout.
#[test]
fn init_vector() {
    let mut dev = device();
    let request = report("ffffffff 86 0008 0102030405060708");
    assert_eq!(
        fragment(Cid::BROADCAST, Command::Init, &NONCE).unwrap(),
        vec![request]
    );
    assert_eq!(dev.receive(&request, Instant::now()).unwrap(), vec![]);
    assert_eq!(
        dev.take_outgoing(),
        vec![report(
            "ffffffff 86 0011 0102030405060708 00000001 02 01 02 03 0d"
        )]
    );
    assert!(dev.is_allocated(Cid(1)));
}

#[test]
fn init_allocates_fresh_channels() {
    let mut dev = device();
    let now = Instant::now();
    let a = open(&mut dev, now);
    let b = open(&mut dev, now);
    assert_ne!(a, b);
    for cid in [a, b] {
        assert!(cid.is_allocatable());
        assert!(dev.is_allocated(cid));
    }
}

#[test]
fn init_skips_reserved_and_broadcast_channels() {
    let mut config = Config::default();
    config.first_cid = 0xffff_fffe;
    let mut dev = Device::with_config(DeviceInfo::new(0, 0, 0), config);
    let now = Instant::now();
    assert_eq!(open(&mut dev, now), Cid(0xffff_fffe));
    assert_eq!(open(&mut dev, now), Cid(1));
}

#[test]
fn oldest_channel_is_forgotten_beyond_the_limit() {
    let mut config = Config::default();
    config.max_channels = 2;
    let mut dev = Device::with_config(DeviceInfo::new(0, 0, 0), config);
    let now = Instant::now();
    let a = open(&mut dev, now);
    let b = open(&mut dev, now);
    let c = open(&mut dev, now);
    assert!(!dev.is_allocated(a));
    assert!(dev.is_allocated(b) && dev.is_allocated(c));
    send(&mut dev, a, Command::Ping, b"x", now);
    assert_eq!(take(&mut dev), vec![error(a, ErrorCode::InvalidChannel)]);
}

#[test]
fn init_with_a_wrong_length_is_invalid_len() {
    let mut dev = device();
    let now = Instant::now();
    for len in [0usize, 7, 9, 57] {
        send(&mut dev, Cid::BROADCAST, Command::Init, &vec![0; len], now);
        assert_eq!(
            take(&mut dev),
            vec![error(Cid::BROADCAST, ErrorCode::InvalidLen)]
        );
    }
    // BCNT above one packet is refused at its first packet, not after reassembly.
    dev.receive(&report("ffffffff 86 0100"), now).unwrap();
    assert_eq!(
        take(&mut dev),
        vec![error(Cid::BROADCAST, ErrorCode::InvalidLen)]
    );
    assert_eq!(dev.next_deadline(), None);
}

#[test]
fn init_on_an_unallocated_or_reserved_channel_is_invalid_channel() {
    let mut dev = device();
    let now = Instant::now();
    for cid in [Cid(0x1234_5678), Cid::RESERVED] {
        send(&mut dev, cid, Command::Init, &NONCE, now);
        assert_eq!(take(&mut dev), vec![error(cid, ErrorCode::InvalidChannel)]);
    }
}

#[test]
fn init_on_an_allocated_channel_resynchronises_it() {
    let mut dev = device();
    let now = Instant::now();
    let cid = open(&mut dev, now);
    send(&mut dev, cid, Command::Init, &[9; 8], now);
    let out = take(&mut dev);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].cid, cid);
    assert_eq!(out[0].cmd, Command::Init);
    assert_eq!(&out[0].payload[..8], &[9; 8]);
    assert_eq!(&out[0].payload[8..12], &cid.to_bytes());
}

#[test]
fn resynchronising_aborts_an_outstanding_request() {
    let mut dev = device();
    let now = Instant::now();
    let cid = open(&mut dev, now);
    let id = cbor(&mut dev, cid, &[0x04], now);
    let events = send(&mut dev, cid, Command::Init, &NONCE, now);
    assert_eq!(events, vec![Event::Aborted { id }]);
    assert_eq!(take(&mut dev).len(), 1);
    assert_eq!(dev.pending_request(), None);
    assert_eq!(
        dev.respond_cbor(id, &[0]),
        Err(RespondError::NotPending(id))
    );
    dev.poll(now + ms(1000));
    assert!(!dev.has_outgoing(), "no keepalives for an aborted request");

    // A new request on the same channel is not answered by a stale answer.
    let id2 = cbor(&mut dev, cid, &[0x04], now);
    assert_ne!(id, id2);
    assert_eq!(
        dev.respond_cbor(id, &[0]),
        Err(RespondError::NotPending(id))
    );
    assert_eq!(dev.respond_cbor(id2, &[0]), Ok(()));
}

#[test]
fn resynchronising_drops_a_half_read_message() {
    let mut dev = device();
    let now = Instant::now();
    let cid = open(&mut dev, now);
    let ping = fragment(cid, Command::Ping, &[7; 100]).unwrap();
    dev.receive(&ping[0], now).unwrap();
    send(&mut dev, cid, Command::Init, &NONCE, now);
    assert_eq!(take(&mut dev).len(), 1);
    // Its continuation is now spurious, and no timeout follows.
    dev.receive(&ping[1], now).unwrap();
    dev.poll(now + ms(5000));
    assert!(!dev.has_outgoing());
    assert_eq!(dev.next_deadline(), None);
}

#[test]
fn init_is_served_while_another_channel_is_busy() {
    let mut dev = device();
    let now = Instant::now();
    let a = open(&mut dev, now);
    let _id = cbor(&mut dev, a, &[0x01], now);
    let b = open(&mut dev, now);
    assert_ne!(a, b);
    assert_eq!(dev.pending_request().map(|id| id.cid()), Some(a));

    // Between the packets of another channel's message, too.
    let mut dev = device();
    let a = open(&mut dev, now);
    let long = fragment(a, Command::Ping, &[5; 200]).unwrap();
    dev.receive(&long[0], now).unwrap();
    let b = open(&mut dev, now);
    for r in &long[1..] {
        dev.receive(r, now).unwrap();
    }
    assert_eq!(
        take(&mut dev),
        vec![Message {
            cid: a,
            cmd: Command::Ping,
            payload: vec![5; 200]
        }]
    );
    assert!(dev.is_allocated(b));
}

// ---- PING ----

#[test]
fn ping_echoes_any_length() {
    let mut dev = device();
    let now = Instant::now();
    let cid = open(&mut dev, now);
    for len in [0usize, 1, 57, 58, 116, 117, 1000, MAX_MESSAGE_LEN] {
        let payload: Vec<u8> = (0..len).map(|i| (i * 7) as u8).collect();
        assert_eq!(send(&mut dev, cid, Command::Ping, &payload, now), vec![]);
        assert_eq!(
            take(&mut dev),
            vec![Message {
                cid,
                cmd: Command::Ping,
                payload
            }]
        );
    }
}

// ---- WINK ----

#[test]
fn wink_is_answered_and_reported() {
    let mut dev = device();
    let now = Instant::now();
    let cid = open(&mut dev, now);
    assert_eq!(
        send(&mut dev, cid, Command::Wink, &[], now),
        vec![Event::Wink { cid }]
    );
    assert_eq!(dev.take_outgoing(), vec![report("00000001 88 0000")]);
}

#[test]
fn wink_with_data_is_invalid_len() {
    let mut dev = device();
    let now = Instant::now();
    let cid = open(&mut dev, now);
    assert_eq!(send(&mut dev, cid, Command::Wink, &[1], now), vec![]);
    assert_eq!(take(&mut dev), vec![error(cid, ErrorCode::InvalidLen)]);
}

// ---- CBOR ----

/// CTAP 2.2, USB HID message and packet structure: a 100-byte CTAPHID_CBOR message
/// is an initialisation packet (CID, 0x80 | 0x10, BCNT 0x0064, bytes 0..57) and one
/// continuation packet (CID, SEQ 0, bytes 57..100, zero padding). Written out by hand.
#[test]
fn fragmented_cbor_vector() {
    let payload: Vec<u8> = (0..100u8).collect();
    let init = report(
        "00000001 90 0064
         000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f
         202122232425262728292a2b2c2d2e2f303132333435363738",
    );
    let cont = report(
        "00000001 00
         393a3b3c3d3e3f404142434445464748494a4b4c4d4e4f505152535455565758
         595a5b5c5d5e5f60616263",
    );
    assert_eq!(init[63], 0x38);
    assert_eq!(&cont[48..], &[0; 16]);
    assert_eq!(
        fragment(Cid(1), Command::Cbor, &payload).unwrap(),
        vec![init, cont]
    );

    let mut dev = device();
    let now = Instant::now();
    assert_eq!(open(&mut dev, now), Cid(1));
    assert_eq!(dev.receive(&init, now).unwrap(), vec![]);
    let events = dev.receive(&cont, now).unwrap();
    let [Event::Cbor { id, request }] = events.as_slice() else {
        panic!("{events:?}")
    };
    assert_eq!(request, &payload);
    assert_eq!(id.cid(), Cid(1));

    // The same bytes as the answer come out as the same two reports.
    dev.respond_cbor(*id, &payload).unwrap();
    assert_eq!(dev.take_outgoing(), vec![init, cont]);
    assert_eq!(dev.pending_request(), None);
}

#[test]
fn get_info_request_vector() {
    // authenticatorGetInfo (0x04) is a one-byte CTAPHID_CBOR message.
    let mut dev = device();
    let now = Instant::now();
    open(&mut dev, now);
    let events = dev.receive(&report("00000001 90 0001 04"), now).unwrap();
    assert!(matches!(events.as_slice(), [Event::Cbor { request, .. }] if request == &[4]));
    assert!(!dev.has_outgoing());
}

#[test]
fn empty_cbor_is_invalid_len() {
    let mut dev = device();
    let now = Instant::now();
    let cid = open(&mut dev, now);
    assert_eq!(send(&mut dev, cid, Command::Cbor, &[], now), vec![]);
    assert_eq!(take(&mut dev), vec![error(cid, ErrorCode::InvalidLen)]);
    assert_eq!(dev.pending_request(), None);
}

#[test]
fn respond_cbor_refuses_bad_answers() {
    let mut dev = device();
    let now = Instant::now();
    let cid = open(&mut dev, now);
    let id = cbor(&mut dev, cid, &[0x04], now);
    assert_eq!(dev.respond_cbor(id, &[]), Err(RespondError::Empty));
    assert_eq!(
        dev.respond_cbor(id, &vec![0; MAX_MESSAGE_LEN + 1]),
        Err(RespondError::TooLong { len: 7610 })
    );
    assert_eq!(dev.pending_request(), Some(id), "still outstanding");
    assert!(!dev.has_outgoing());
    dev.respond_cbor(id, &vec![0; MAX_MESSAGE_LEN]).unwrap();
    assert_eq!(dev.take_outgoing().len(), 129);
    assert_eq!(
        dev.respond_cbor(id, &[0]),
        Err(RespondError::NotPending(id))
    );
}

// ---- CANCEL ----

#[test]
fn cancel_reports_once_and_is_never_answered() {
    let mut dev = device();
    let now = Instant::now();
    let cid = open(&mut dev, now);
    let id = cbor(&mut dev, cid, &[0x01, 0xa0], now);
    assert_eq!(
        send(&mut dev, cid, Command::Cancel, &[], now),
        vec![Event::Cancel { id }]
    );
    // python-fido2 repeats CANCEL on every read while cancelling.
    assert_eq!(send(&mut dev, cid, Command::Cancel, &[], now), vec![]);
    assert!(!dev.has_outgoing());
    dev.confirm_cancel(id).unwrap();
    assert_eq!(dev.take_outgoing(), vec![report("00000001 90 0001 2d")]);
}

#[test]
fn cancelled_request_may_still_get_its_real_answer() {
    let mut dev = device();
    let now = Instant::now();
    let cid = open(&mut dev, now);
    let id = cbor(&mut dev, cid, &[0x02], now);
    send(&mut dev, cid, Command::Cancel, &[], now);
    dev.respond_cbor(id, &[0x00, 0xa0]).unwrap();
    assert_eq!(
        take(&mut dev),
        vec![Message {
            cid,
            cmd: Command::Cbor,
            payload: vec![0x00, 0xa0]
        }]
    );
}

#[test]
fn cancel_without_a_request_or_from_another_channel_is_ignored() {
    let mut dev = device();
    let now = Instant::now();
    let a = open(&mut dev, now);
    let b = open(&mut dev, now);
    assert_eq!(send(&mut dev, a, Command::Cancel, &[], now), vec![]);
    let id = cbor(&mut dev, a, &[0x01], now);
    assert_eq!(send(&mut dev, b, Command::Cancel, &[], now), vec![]);
    assert!(!dev.has_outgoing(), "no CHANNEL_BUSY for a CANCEL either");
    assert_eq!(dev.pending_request(), Some(id));
}

#[test]
fn cancel_does_not_break_a_half_read_message() {
    let mut dev = device();
    let now = Instant::now();
    let cid = open(&mut dev, now);
    let ping = fragment(cid, Command::Ping, &[3; 80]).unwrap();
    dev.receive(&ping[0], now).unwrap();
    send(&mut dev, cid, Command::Cancel, &[], now);
    dev.receive(&ping[1], now).unwrap();
    assert_eq!(take(&mut dev)[0].payload, vec![3; 80]);
}

// ---- KEEPALIVE ----

#[test]
fn keepalive_every_100ms_while_a_request_is_outstanding() {
    let mut dev = device();
    let t = Instant::now();
    let cid = open(&mut dev, t);
    assert_eq!(dev.next_deadline(), None);
    let id = cbor(&mut dev, cid, &[0x01], t);
    assert_eq!(dev.next_deadline(), Some(t + ms(100)));

    dev.poll(t + ms(99));
    assert!(!dev.has_outgoing());
    dev.poll(t + ms(100));
    assert_eq!(dev.take_outgoing(), vec![report("00000001 bb 0001 01")]);
    dev.poll(t + ms(150));
    assert!(!dev.has_outgoing());
    // Late: one keepalive, and the next one an interval later.
    dev.poll(t + ms(450));
    assert_eq!(dev.take_outgoing().len(), 1);
    assert_eq!(dev.next_deadline(), Some(t + ms(550)));

    dev.set_keepalive_status(id, KeepaliveStatus::UpNeeded, t + ms(460))
        .unwrap();
    assert_eq!(dev.take_outgoing(), vec![report("00000001 bb 0001 02")]);
    dev.set_keepalive_status(id, KeepaliveStatus::UpNeeded, t + ms(470))
        .unwrap();
    assert!(!dev.has_outgoing(), "only a change is sent at once");
    dev.poll(t + ms(560));
    assert_eq!(dev.take_outgoing(), vec![report("00000001 bb 0001 02")]);

    dev.respond_cbor(id, &[0]).unwrap();
    dev.take_outgoing();
    assert_eq!(dev.next_deadline(), None);
    dev.poll(t + ms(10_000));
    assert!(!dev.has_outgoing());
    assert_eq!(
        dev.set_keepalive_status(id, KeepaliveStatus::Processing, t),
        Err(RespondError::NotPending(id))
    );
}

#[test]
fn keepalives_go_on_after_cancel_until_the_answer() {
    let mut dev = device();
    let t = Instant::now();
    let cid = open(&mut dev, t);
    let id = cbor(&mut dev, cid, &[0x01], t);
    send(&mut dev, cid, Command::Cancel, &[], t);
    dev.poll(t + ms(100));
    assert_eq!(take(&mut dev)[0].cmd, Command::Keepalive);
    dev.confirm_cancel(id).unwrap();
    assert_eq!(dev.next_deadline(), None);
}

// ---- unsupported commands ----

#[test]
fn msg_lock_vendor_and_device_only_commands_are_invalid_cmd() {
    let mut dev = device();
    let now = Instant::now();
    let cid = open(&mut dev, now);
    for code in [0x03u8, 0x04, 0x3b, 0x3f, 0x40, 0x7f, 0x00, 0x02] {
        let cmd = Command::from_code(code);
        assert_eq!(send(&mut dev, cid, cmd, &[0; 70], now), vec![]);
        assert_eq!(
            take(&mut dev),
            vec![error(cid, ErrorCode::InvalidCmd)],
            "{cmd:?}"
        );
    }
    // U2F's CTAPHID_MSG with a real APDU (U2F_VERSION) as a byte vector.
    dev.receive(&report("00000001 83 0007 0003000000 0000"), now)
        .unwrap();
    assert_eq!(dev.take_outgoing(), vec![report("00000001 bf 0001 01")]);
}

// ---- errors ----

#[test]
fn continuation_out_of_order_is_invalid_seq() {
    let mut dev = device();
    let now = Instant::now();
    let cid = open(&mut dev, now);
    let ping = fragment(cid, Command::Ping, &[1; 200]).unwrap();
    assert_eq!(ping.len(), 4);
    dev.receive(&ping[0], now).unwrap();
    dev.receive(&ping[1], now).unwrap();
    dev.receive(&ping[3], now).unwrap();
    assert_eq!(take(&mut dev), vec![error(cid, ErrorCode::InvalidSeq)]);
    // The message is gone: the rest is spurious.
    dev.receive(&ping[2], now).unwrap();
    assert!(!dev.has_outgoing());
    // A repeated packet is out of order too.
    dev.receive(&ping[0], now).unwrap();
    dev.receive(&ping[1], now).unwrap();
    dev.receive(&ping[1], now).unwrap();
    assert_eq!(take(&mut dev), vec![error(cid, ErrorCode::InvalidSeq)]);
}

#[test]
fn new_message_on_a_half_read_channel_is_invalid_seq() {
    let mut dev = device();
    let now = Instant::now();
    let cid = open(&mut dev, now);
    let ping = fragment(cid, Command::Ping, &[1; 100]).unwrap();
    dev.receive(&ping[0], now).unwrap();
    send(&mut dev, cid, Command::Ping, b"hi", now);
    assert_eq!(take(&mut dev), vec![error(cid, ErrorCode::InvalidSeq)]);
    // Both were dropped; the device is idle again.
    dev.receive(&ping[1], now).unwrap();
    assert!(!dev.has_outgoing());
    send(&mut dev, cid, Command::Ping, b"hi", now);
    assert_eq!(take(&mut dev)[0].payload, b"hi");
}

#[test]
fn bcnt_above_7609_is_invalid_len() {
    let mut dev = device();
    let now = Instant::now();
    open(&mut dev, now);
    dev.receive(&report("00000001 81 1dba"), now).unwrap();
    assert_eq!(dev.take_outgoing(), vec![report("00000001 bf 0001 03")]);
    dev.receive(&report("00000001 81 ffff"), now).unwrap();
    assert_eq!(dev.take_outgoing(), vec![report("00000001 bf 0001 03")]);
    // 7609 itself (0x1db9) is accepted and waits for its continuations.
    dev.receive(&report("00000001 81 1db9"), now).unwrap();
    assert!(!dev.has_outgoing());
    assert!(dev.next_deadline().is_some());
}

#[test]
fn stalled_message_is_msg_timeout() {
    let mut dev = device();
    let t = Instant::now();
    let cid = open(&mut dev, t);
    let ping = fragment(cid, Command::Ping, &[1; 200]).unwrap();
    dev.receive(&ping[0], t).unwrap();
    assert_eq!(dev.next_deadline(), Some(t + ms(500)));
    // Every packet restarts the wait.
    dev.receive(&ping[1], t + ms(400)).unwrap();
    dev.poll(t + ms(899));
    assert!(!dev.has_outgoing());
    dev.poll(t + ms(900));
    assert_eq!(take(&mut dev), vec![error(cid, ErrorCode::MsgTimeout)]);
    assert_eq!(dev.next_deadline(), None);
    // What comes after is spurious.
    dev.receive(&ping[2], t + ms(901)).unwrap();
    assert!(!dev.has_outgoing());
}

#[test]
fn late_continuation_first_times_the_message_out() {
    let mut dev = device();
    let t = Instant::now();
    let cid = open(&mut dev, t);
    let ping = fragment(cid, Command::Ping, &[1; 100]).unwrap();
    dev.receive(&ping[0], t).unwrap();
    dev.receive(&ping[1], t + ms(700)).unwrap();
    assert_eq!(take(&mut dev), vec![error(cid, ErrorCode::MsgTimeout)]);
}

#[test]
fn other_channel_while_a_message_is_half_read_is_channel_busy() {
    let mut dev = device();
    let now = Instant::now();
    let a = open(&mut dev, now);
    let b = open(&mut dev, now);
    let ping = fragment(a, Command::Ping, &[2; 100]).unwrap();
    dev.receive(&ping[0], now).unwrap();
    send(&mut dev, b, Command::Ping, b"b", now);
    assert_eq!(take(&mut dev), vec![error(b, ErrorCode::ChannelBusy)]);
    // B's continuation packets are ignored, A's message is intact.
    let b_long = fragment(b, Command::Ping, &[9; 100]).unwrap();
    dev.receive(&b_long[1], now).unwrap();
    dev.receive(&ping[1], now).unwrap();
    assert_eq!(
        take(&mut dev),
        vec![Message {
            cid: a,
            cmd: Command::Ping,
            payload: vec![2; 100]
        }]
    );
}

#[test]
fn any_channel_while_a_request_is_outstanding_is_channel_busy() {
    let mut dev = device();
    let now = Instant::now();
    let a = open(&mut dev, now);
    let b = open(&mut dev, now);
    let id = cbor(&mut dev, a, &[0x01], now);
    for cid in [b, a] {
        assert_eq!(send(&mut dev, cid, Command::Cbor, &[0x04], now), vec![]);
        assert_eq!(take(&mut dev), vec![error(cid, ErrorCode::ChannelBusy)]);
    }
    dev.respond_cbor(id, &[0]).unwrap();
    take(&mut dev);
    send(&mut dev, b, Command::Ping, b"free", now);
    assert_eq!(take(&mut dev)[0].payload, b"free");
}

#[test]
fn broadcast_and_unknown_channels_are_invalid_channel() {
    let mut dev = device();
    let now = Instant::now();
    open(&mut dev, now);
    for cid in [Cid::BROADCAST, Cid(0x0bad_0bad), Cid::RESERVED] {
        for cmd in [Command::Ping, Command::Cbor, Command::Wink, Command::Lock] {
            send(&mut dev, cid, cmd, &[1], now);
            assert_eq!(take(&mut dev), vec![error(cid, ErrorCode::InvalidChannel)]);
        }
        // CANCEL is never answered, not even on a channel that does not exist.
        send(&mut dev, cid, Command::Cancel, &[], now);
        assert!(!dev.has_outgoing());
    }
    dev.receive(&report("ffffffff 81 0001 00"), now).unwrap();
    assert_eq!(dev.take_outgoing(), vec![report("ffffffff bf 0001 0b")]);
}

#[test]
fn spurious_continuations_are_ignored() {
    let mut dev = device();
    let now = Instant::now();
    let cid = open(&mut dev, now);
    for seq in [0u8, 1, 0x7f] {
        let mut r = [0u8; 64];
        r[..4].copy_from_slice(&cid.to_bytes());
        r[4] = seq;
        assert_eq!(dev.receive(&r, now).unwrap(), vec![]);
        r[..4].copy_from_slice(&Cid::BROADCAST.to_bytes());
        assert_eq!(dev.receive(&r, now).unwrap(), vec![]);
    }
    assert!(!dev.has_outgoing());
}

#[test]
fn report_of_another_length_is_refused_and_changes_nothing() {
    let mut dev = device();
    let now = Instant::now();
    for len in [0usize, 1, 63, 65, 128] {
        assert!(matches!(
            dev.receive(&vec![0xff; len], now),
            Err(ReceiveError::Frame(_))
        ));
    }
    assert!(!dev.has_outgoing());
    assert_eq!(open(&mut dev, now), Cid(1));
}
