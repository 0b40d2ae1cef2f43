//! # cable-ctaphid: the CTAPHID layer of a virtual security key
//!
//! A future virtual FIDO security key will show itself to the computer as a USB HID
//! device, and pass every CTAP2 request it receives to a phone over hybrid (caBLE v2).
//! This crate is the part in between that speaks CTAPHID, the HID transport of CTAP 2.2
//! ("USB Human Interface Device (USB HID)"): channels, framing, keepalives, cancel and
//! the transport errors. It does no I/O at all.
//!
//! ## Sans-IO
//!
//! [`Device`] is a plain state machine. The caller feeds it the host's 64-byte output
//! reports and the time, and takes from it the reports to write back and the
//! [`Event`]s to act on:
//!
//! ```
//! use std::time::{Duration, Instant};
//! use cable_ctaphid::{Cid, Command, Device, DeviceInfo, Event, fragment};
//!
//! let mut device = Device::new(DeviceInfo::new(0, 1, 0));
//! let now = Instant::now();
//!
//! // The host asks for a channel on the broadcast channel ...
//! let init = fragment(Cid::BROADCAST, Command::Init, b"\x01\x02\x03\x04\x05\x06\x07\x08")?;
//! device.receive(&init[0], now)?;
//! let answer = device.take_outgoing();
//! let cid = Cid::from_bytes([answer[0][15], answer[0][16], answer[0][17], answer[0][18]]);
//!
//! // ... and sends authenticatorGetInfo on it.
//! let get_info = fragment(cid, Command::Cbor, &[0x04])?;
//! let events = device.receive(&get_info[0], now)?;
//! let Some(Event::Cbor { id, request }) = events.into_iter().next() else { panic!() };
//! assert_eq!(request, [0x04]);
//!
//! // While the phone works on it, keepalives go out every 100 ms ...
//! device.poll(now + Duration::from_millis(100));
//! assert_eq!(device.take_outgoing()[0][4], 0xbb);
//!
//! // ... until the answer comes back (status byte, then CBOR).
//! device.respond_cbor(id, &[0x00, 0xa0])?;
//! assert_eq!(device.take_outgoing()[0][4], 0x90);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Time only moves when the caller says so: every call that depends on it takes an
//! [`std::time::Instant`], and [`Device::next_deadline`] says when [`Device::poll`] must
//! be called next. So the whole crate is tested, fuzzed and property-tested without a
//! clock, a runtime or a kernel device; whoever drives `/dev/uhid` later adds only the
//! I/O loop.
//!
//! ## What the device does
//!
//! - **Framing** ([`frame`]): an initialisation packet (CID, CMD with bit 7 set, BCNT,
//!   57 bytes) and up to 128 continuation packets (CID, SEQ 0..=127, 59 bytes), so at
//!   most [`MAX_MESSAGE_LEN`] = 7609 bytes a message. [`fragment`] cuts a message into
//!   reports and [`Reassembler`] puts one together again; the device uses both.
//! - **Channels**: CTAPHID_INIT on the broadcast channel allocates a new channel
//!   (never 0, never `ffffffff`); INIT on an allocated channel resynchronises it and
//!   aborts whatever it had going. Other commands on the broadcast channel or on a
//!   channel never allocated get ERR_INVALID_CHANNEL.
//! - **One transaction at a time**: from a message's first packet until its answer, an
//!   initialisation packet of another channel gets ERR_CHANNEL_BUSY. A CTAP2 request
//!   keeps the device busy until the application answers it, with keepalives in
//!   between. INIT and CANCEL are served even while busy.
//! - **Commands**: PING (echo), WINK (answered, and an event), CBOR (an event; the
//!   application answers), CANCEL (an event, no reply of its own). MSG (U2F), LOCK and
//!   vendor commands get ERR_INVALID_CMD; the INIT response advertises CBOR, WINK and
//!   NMSG.
//! - **Errors**: a continuation out of order, or a new message on a channel whose
//!   message is half read, gets ERR_INVALID_SEQ; BCNT above 7609 (or not 8 for INIT, or
//!   wrong for WINK and CBOR) gets ERR_INVALID_LEN; a message whose next packet does not
//!   arrive within 500 ms gets ERR_MSG_TIMEOUT. Continuation packets that belong to no
//!   message in progress are ignored, as the spec asks.
//!
//! Nothing the host sends can make the device panic: every 64-byte report is a valid
//! packet of one kind or the other, and every way it can be wrong has an answer on the
//! wire. A report of another length is refused with [`ReceiveError`] and changes
//! nothing.
//!
//! ## What it does not do
//!
//! It does not look inside CTAP2 requests (that is the phone's business), does not
//! create a uhid device and does not tie a request to a hybrid ceremony.

mod device;
pub mod frame;

pub use device::{
    Config, Device, DeviceInfo, Event, KeepaliveStatus, ReceiveError, RequestId, RespondError,
    CAPABILITIES, CAPABILITY_CBOR, CAPABILITY_NMSG, CAPABILITY_WINK, CTAP2_ERR_KEEPALIVE_CANCEL,
    DEFAULT_FRAME_TIMEOUT, DEFAULT_KEEPALIVE_INTERVAL, DEFAULT_MAX_CHANNELS, INIT_NONCE_LEN,
    PROTOCOL_VERSION,
};
pub use frame::{
    fragment, Cid, Command, ErrorCode, FrameError, Message, Packet, Reassembler, Report,
    MAX_MESSAGE_LEN, REPORT_LEN,
};
