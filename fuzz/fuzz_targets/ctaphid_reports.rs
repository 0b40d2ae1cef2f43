#![no_main]
//! cable-ctaphid's device fed arbitrary host reports, interleaved with the passing of
//! time and with whatever the application may do (answer, confirm a cancel, change the
//! keepalive status).
//!
//! The input is a list of steps, each an op byte and, for a report, the 64 bytes that
//! follow. Low three bits of the op byte: 0–3 receive a report, 4 wait `(op >> 3) × 20`
//! ms and poll, 5 answer the outstanding request with the next `op >> 3` bytes, 6
//! confirm a cancel, 7 set the keepalive status.
//!
//! Invariants: nothing panics; everything the device writes reads back, on the host
//! side, as whole messages never interleaved with each other, each one a command the
//! device may send with a payload of the right shape; events refer to the outstanding
//! request; nothing is overdue after a call.
use std::time::{Duration, Instant};

use cable_ctaphid::{
    Command, Device, DeviceInfo, ErrorCode, Event, KeepaliveStatus, Packet, Reassembler, REPORT_LEN,
};
use libfuzzer_sys::fuzz_target;

fn check(host: &mut Reassembler, dev: &mut Device) {
    for report in dev.take_outgoing() {
        let packet = Packet::parse(&report).expect("the device writes 64-byte reports");
        let message = match host.push(&packet) {
            Ok(Some(m)) => m,
            Ok(None) => continue,
            Err(e) => panic!("malformed device output: {e}"),
        };
        match message.cmd {
            Command::Init => assert_eq!(message.payload.len(), 17),
            Command::Error => {
                assert_eq!(message.payload.len(), 1);
                assert!(ErrorCode::from_code(message.payload[0]).is_some());
            }
            Command::Keepalive => assert!(message.payload == [1] || message.payload == [2]),
            Command::Wink => assert!(message.payload.is_empty()),
            Command::Ping | Command::Cbor => {}
            other => panic!("the device sent {other:?}"),
        }
    }
    assert_eq!(host.in_progress(), None, "a response was cut");
}

fuzz_target!(|data: &[u8]| {
    let mut dev = Device::new(DeviceInfo::new(1, 0, 0));
    let mut host = Reassembler::new();
    let mut now = Instant::now();
    let mut rest = data;
    let mut up_needed = false;
    while let Some((&op, tail)) = rest.split_first() {
        rest = tail;
        let arg = usize::from(op >> 3);
        match op & 7 {
            0..=3 => {
                if rest.len() < REPORT_LEN {
                    // A short report is refused and changes nothing.
                    assert!(dev.receive(rest, now).is_err());
                    assert!(!dev.has_outgoing());
                    break;
                }
                let (report, tail) = rest.split_at(REPORT_LEN);
                rest = tail;
                let pending_before = dev.pending_request();
                let events = dev.receive(report, now).expect("64 bytes");
                for event in events {
                    match event {
                        Event::Cbor { id, request } => {
                            assert!(!request.is_empty());
                            assert_eq!(dev.pending_request(), Some(id));
                        }
                        Event::Cancel { id } => assert_eq!(dev.pending_request(), Some(id)),
                        Event::Aborted { id } => {
                            assert_eq!(pending_before, Some(id));
                            assert_ne!(dev.pending_request(), Some(id));
                        }
                        Event::Wink { cid } => assert!(dev.is_allocated(cid)),
                        _ => {}
                    }
                }
            }
            4 => {
                now += Duration::from_millis(20 * arg as u64);
                dev.poll(now);
            }
            5 => {
                let (answer, tail) = rest.split_at(arg.min(rest.len()));
                rest = tail;
                if let Some(id) = dev.pending_request() {
                    assert_eq!(dev.respond_cbor(id, answer).is_ok(), !answer.is_empty());
                }
            }
            6 => {
                if let Some(id) = dev.pending_request() {
                    assert!(dev.confirm_cancel(id).is_ok());
                }
            }
            _ => {
                if let Some(id) = dev.pending_request() {
                    up_needed = !up_needed;
                    let status = if up_needed {
                        KeepaliveStatus::UpNeeded
                    } else {
                        KeepaliveStatus::Processing
                    };
                    assert!(dev.set_keepalive_status(id, status, now).is_ok());
                }
            }
        }
        check(&mut host, &mut dev);
        if let Some(deadline) = dev.next_deadline() {
            assert!(deadline > now);
        }
    }
});
