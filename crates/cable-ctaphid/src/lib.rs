//! # cable-ctaphid: the CTAPHID layer of a virtual security key
//!
//! Framing of CTAPHID, the HID transport of CTAP 2.2: 64-byte reports, initialisation
//! and continuation packets, messages of up to [`MAX_MESSAGE_LEN`] bytes.

pub mod frame;

pub use frame::{
    fragment, Cid, Command, ErrorCode, FrameError, Message, Packet, Reassembler, Report,
    MAX_MESSAGE_LEN, REPORT_LEN,
};
