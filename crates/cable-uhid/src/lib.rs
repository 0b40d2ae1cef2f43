//! # cable-uhid: a virtual FIDO security key on Linux `/dev/uhid`
//!
//! The computer side of a phone acting as a security key: to the computer's browsers and
//! libfido2 the key is a USB HID authenticator. This crate starts with the layers that
//! speak to the kernel:
//!
//! - [`event`]: the uhid protocol of `linux/uhid.h` as plain bytes, no ioctl and no
//!   unsafe code: CREATE2, INPUT2, DESTROY and the replies written, START, STOP, OPEN,
//!   CLOSE, OUTPUT, GET_REPORT and SET_REPORT read. Malformed events are typed errors.
//! - [`descriptor`]: the FIDO HID report descriptor (usage page 0xF1D0, 64-byte reports).
//! - [`info`]: the authenticatorGetInfo answer the key gives by itself.

pub mod descriptor;
pub mod event;
pub mod info;

pub use descriptor::FIDO_REPORT_DESCRIPTOR;
pub use event::{Create2, DecodeError, EncodeError, KernelEvent, ReportType, UserEvent};
pub use info::AAGUID;
