//! # cable-uhid: a virtual FIDO security key on Linux `/dev/uhid`
//!
//! The computer side of a phone acting as a security key: to the computer's browsers and
//! libfido2 the key is a USB HID authenticator; behind it, CTAP2 requests go to an
//! [`Application`] (later: a phone over hybrid). Three layers:
//!
//! - [`event`]: the uhid protocol of `linux/uhid.h` as plain bytes, no ioctl and no
//!   unsafe code: CREATE2, INPUT2, DESTROY and the replies written, START, STOP, OPEN,
//!   CLOSE, OUTPUT, GET_REPORT and SET_REPORT read. Malformed events are typed errors.
//! - [`descriptor`]: the FIDO HID report descriptor (usage page 0xF1D0, 64-byte reports).
//! - [`VirtualKey`]: the I/O loop. It owns the device handle (`/dev/uhid` or a fake
//!   kernel), feeds OUTPUT reports to the sans-IO [`cable_ctaphid::Device`], writes its
//!   reports as INPUT2, wakes for its keepalives and timeouts, answers
//!   authenticatorGetInfo from [`info`] and hands every other CTAP2 request to the
//!   [`Application`].
//!
//! ```no_run
//! use cable_uhid::{Application, CtapRequest, KeyConfig, Reply, VirtualKey};
//!
//! struct NoCeremoniesYet;
//! impl Application for NoCeremoniesYet {
//!     fn request(&mut self, _request: CtapRequest, reply: Reply) {
//!         reply.error(0x01); // CTAP1_ERR_INVALID_COMMAND
//!     }
//! }
//!
//! let uhid = std::fs::OpenOptions::new().read(true).write(true).open("/dev/uhid")?;
//! let key = VirtualKey::create(uhid, KeyConfig::default(), NoCeremoniesYet)?;
//! // … the key is /dev/hidrawN until it is dropped …
//! key.destroy()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod descriptor;
pub mod event;
pub mod info;
mod key;

pub use cable_ctaphid::{KeepaliveStatus, RequestId};
pub use descriptor::FIDO_REPORT_DESCRIPTOR;
pub use event::{Create2, DecodeError, EncodeError, KernelEvent, ReportType, UserEvent};
pub use info::AAGUID;
pub use key::{
    AbortReason, Application, CtapRequest, KeyConfig, KeyError, Reply, VirtualKey,
    CTAP1_ERR_INVALID_LENGTH, CTAP1_ERR_OTHER, CTAP2_GET_INFO, DEFAULT_PRODUCT, DEFAULT_VENDOR,
};
