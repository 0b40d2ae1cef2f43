//! The events of Linux `/dev/uhid` (`include/uapi/linux/uhid.h`) as plain bytes.
//!
//! Every event is a `struct uhid_event`: a native-endian `__u32` type, then a union of
//! packed request structs. The union also holds `struct uhid_start_req { __u64 }`, which
//! is not packed, so the union is aligned to 8 and rounded up from 4372 to 4376 bytes;
//! the outer struct is packed, so the whole event is 4 + 4376 = [`EVENT_SIZE`] = 4380
//! bytes. The offsets below were checked against the header with `offsetof`.
//!
//! - [`KernelEvent`] is what a `read` returns: the kernel always copies a whole
//!   `struct uhid_event`, so [`KernelEvent::decode`] wants at least the request struct of
//!   the type it reads, and says why in a [`DecodeError`] otherwise.
//! - [`UserEvent`] is what the key writes. The kernel zero-fills its copy of the event
//!   before reading a write into it, so a write only needs to reach the last byte the
//!   event uses; [`UserEvent::encode`] writes that much and no more (an INPUT2 of a 64-byte
//!   report is 70 bytes, not 4380).
//!
//! The byte order is the machine's (`__u32` and friends are native), as for any ioctl-free
//! kernel struct read through a file.

use thiserror::Error;

/// Size of `struct uhid_event`, what every read of `/dev/uhid` returns.
pub const EVENT_SIZE: usize = 4380;

/// `UHID_DATA_MAX`: the largest report an INPUT2, OUTPUT, GET_REPORT_REPLY or SET_REPORT
/// carries.
pub const DATA_MAX: usize = 4096;

/// `HID_MAX_DESCRIPTOR_SIZE`: the largest report descriptor CREATE2 carries.
pub const DESCRIPTOR_MAX: usize = 4096;

/// Size of CREATE2's `name` field; the kernel keeps at most one byte less and a NUL.
pub const NAME_LEN: usize = 128;
/// Size of CREATE2's `phys` field.
pub const PHYS_LEN: usize = 64;
/// Size of CREATE2's `uniq` field.
pub const UNIQ_LEN: usize = 64;

/// `BUS_USB` of `linux/input.h`: what the key claims to be plugged into. libfido2 and
/// browsers look at the usage page, not the bus, but a USB key is what they expect.
pub const BUS_USB: u16 = 3;

/// `UHID_DESTROY` (user space to kernel).
pub const UHID_DESTROY: u32 = 1;
/// `UHID_START` (kernel to user space).
pub const UHID_START: u32 = 2;
/// `UHID_STOP` (kernel to user space).
pub const UHID_STOP: u32 = 3;
/// `UHID_OPEN` (kernel to user space).
pub const UHID_OPEN: u32 = 4;
/// `UHID_CLOSE` (kernel to user space).
pub const UHID_CLOSE: u32 = 5;
/// `UHID_OUTPUT` (kernel to user space).
pub const UHID_OUTPUT: u32 = 6;
/// `UHID_GET_REPORT` (kernel to user space).
pub const UHID_GET_REPORT: u32 = 9;
/// `UHID_GET_REPORT_REPLY` (user space to kernel).
pub const UHID_GET_REPORT_REPLY: u32 = 10;
/// `UHID_CREATE2` (user space to kernel).
pub const UHID_CREATE2: u32 = 11;
/// `UHID_INPUT2` (user space to kernel).
pub const UHID_INPUT2: u32 = 12;
/// `UHID_SET_REPORT` (kernel to user space).
pub const UHID_SET_REPORT: u32 = 13;
/// `UHID_SET_REPORT_REPLY` (user space to kernel).
pub const UHID_SET_REPORT_REPLY: u32 = 14;

/// `EIO`: the error code a key without feature reports answers GET_REPORT and SET_REPORT
/// with (the kernel turns any non-zero code into `-EIO` for the caller anyway).
pub const EIO: u16 = 5;

/// Where the union starts: right after the packed `__u32 type`.
const U: usize = 4;

// struct uhid_create2_req
const CREATE2_NAME: usize = U;
const CREATE2_PHYS: usize = U + 128;
const CREATE2_UNIQ: usize = U + 192;
const CREATE2_RD_SIZE: usize = U + 256;
const CREATE2_BUS: usize = U + 258;
const CREATE2_VENDOR: usize = U + 260;
const CREATE2_PRODUCT: usize = U + 264;
const CREATE2_VERSION: usize = U + 268;
const CREATE2_COUNTRY: usize = U + 272;
const CREATE2_RD_DATA: usize = U + 276;

// struct uhid_input2_req
const INPUT2_SIZE: usize = U;
const INPUT2_DATA: usize = U + 2;

// struct uhid_output_req: the data comes first, its size after the whole array.
const OUTPUT_DATA: usize = U;
const OUTPUT_SIZE: usize = U + DATA_MAX;
const OUTPUT_RTYPE: usize = U + DATA_MAX + 2;
const OUTPUT_END: usize = OUTPUT_RTYPE + 1;

// struct uhid_get_report_req and struct uhid_set_report_req share their first 6 bytes.
const REPORT_ID: usize = U;
const REPORT_RNUM: usize = U + 4;
const REPORT_RTYPE: usize = U + 5;
const GET_REPORT_END: usize = U + 6;
const SET_REPORT_SIZE: usize = U + 6;
const SET_REPORT_DATA: usize = U + 8;
const SET_REPORT_END: usize = SET_REPORT_DATA + DATA_MAX;

// struct uhid_get_report_reply_req and struct uhid_set_report_reply_req
const REPLY_ID: usize = U;
const REPLY_ERR: usize = U + 4;
const GET_REPORT_REPLY_SIZE: usize = U + 6;
const GET_REPORT_REPLY_DATA: usize = U + 8;
const SET_REPORT_REPLY_END: usize = U + 6;

// struct uhid_start_req
const START_DEV_FLAGS: usize = U;
const START_END: usize = U + 8;

/// `UHID_DEV_NUMBERED_FEATURE_REPORTS` in [`KernelEvent::Start`]'s flags.
pub const DEV_NUMBERED_FEATURE_REPORTS: u64 = 1 << 0;
/// `UHID_DEV_NUMBERED_OUTPUT_REPORTS` in [`KernelEvent::Start`]'s flags.
pub const DEV_NUMBERED_OUTPUT_REPORTS: u64 = 1 << 1;
/// `UHID_DEV_NUMBERED_INPUT_REPORTS` in [`KernelEvent::Start`]'s flags.
pub const DEV_NUMBERED_INPUT_REPORTS: u64 = 1 << 2;

/// `enum uhid_report_type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ReportType {
    /// `UHID_FEATURE_REPORT` (0).
    Feature,
    /// `UHID_OUTPUT_REPORT` (1).
    Output,
    /// `UHID_INPUT_REPORT` (2).
    Input,
}

impl ReportType {
    /// The byte on the wire.
    pub const fn code(self) -> u8 {
        match self {
            ReportType::Feature => 0,
            ReportType::Output => 1,
            ReportType::Input => 2,
        }
    }

    /// The report type of a byte, if it is one.
    pub const fn from_code(code: u8) -> Option<ReportType> {
        match code {
            0 => Some(ReportType::Feature),
            1 => Some(ReportType::Output),
            2 => Some(ReportType::Input),
            _ => None,
        }
    }
}

/// An event read from `/dev/uhid`.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum KernelEvent {
    /// `UHID_START`: a HID driver bound the device; [`DEV_NUMBERED_FEATURE_REPORTS`] and
    /// friends say which report types carry a report number.
    Start {
        /// `dev_flags`.
        dev_flags: u64,
    },
    /// `UHID_STOP`: the driver let go of the device (also after DESTROY).
    Stop,
    /// `UHID_OPEN`: the first reader opened the device (a hidraw node, say).
    Open,
    /// `UHID_CLOSE`: the last reader closed it; nobody reads input reports any more.
    Close,
    /// `UHID_OUTPUT`: a report the host wrote. Through hidraw, a device without report IDs
    /// gets the writer's leading report number 0 too (65 bytes for a 64-byte report).
    Output {
        /// The report, `size` bytes of it.
        data: Vec<u8>,
        /// `rtype`.
        report_type: ReportType,
    },
    /// `UHID_GET_REPORT`: answer with [`UserEvent::GetReportReply`] and the same `id`.
    GetReport {
        /// Matches the answer to the request.
        id: u32,
        /// The report number asked for.
        report_number: u8,
        /// `rtype`.
        report_type: ReportType,
    },
    /// `UHID_SET_REPORT`: answer with [`UserEvent::SetReportReply`] and the same `id`.
    SetReport {
        /// Matches the answer to the request.
        id: u32,
        /// The report number written.
        report_number: u8,
        /// `rtype`.
        report_type: ReportType,
        /// The report, `size` bytes of it.
        data: Vec<u8>,
    },
}

/// An event written to `/dev/uhid`.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum UserEvent {
    /// `UHID_CREATE2`: makes the device.
    Create2(Create2),
    /// `UHID_INPUT2`: one input report for the host.
    Input2 {
        /// The report, at most [`DATA_MAX`] bytes.
        data: Vec<u8>,
    },
    /// `UHID_DESTROY`: removes the device (closing the file does too).
    Destroy,
    /// `UHID_GET_REPORT_REPLY`.
    GetReportReply {
        /// The `id` of the [`KernelEvent::GetReport`] answered.
        id: u32,
        /// 0, or an errno such as [`EIO`].
        err: u16,
        /// The report, at most [`DATA_MAX`] bytes; empty with an error.
        data: Vec<u8>,
    },
    /// `UHID_SET_REPORT_REPLY`.
    SetReportReply {
        /// The `id` of the [`KernelEvent::SetReport`] answered.
        id: u32,
        /// 0, or an errno such as [`EIO`].
        err: u16,
    },
}

/// What `UHID_CREATE2` says about the device.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Create2 {
    /// The device's name (`HID_NAME`), fewer than [`NAME_LEN`] bytes, no NUL.
    pub name: String,
    /// Its physical path (`HID_PHYS`), fewer than [`PHYS_LEN`] bytes, no NUL.
    pub phys: String,
    /// Its unique id (`HID_UNIQ`, a serial number), fewer than [`UNIQ_LEN`] bytes, no NUL.
    pub uniq: String,
    /// `BUS_*`, [`BUS_USB`] for a key.
    pub bus: u16,
    /// USB vendor id.
    pub vendor: u32,
    /// USB product id.
    pub product: u32,
    /// Device version.
    pub version: u32,
    /// HID country code, 0 for none.
    pub country: u32,
    /// The HID report descriptor, 1 to [`DESCRIPTOR_MAX`] bytes.
    pub descriptor: Vec<u8>,
}

/// Why bytes read from `/dev/uhid` are not a [`KernelEvent`] (or, for a fake kernel, not a
/// [`UserEvent`]).
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// Fewer bytes than the event's type and request struct take.
    #[error("a uhid event of {got} bytes is too short: type {event_type:?} needs {needed}")]
    Truncated {
        /// The type, if the 4 bytes of it were there.
        event_type: Option<u32>,
        /// Bytes the event needs.
        needed: usize,
        /// Bytes there were.
        got: usize,
    },
    /// A type `linux/uhid.h` does not define.
    #[error("unknown uhid event type {0}")]
    UnknownType(u32),
    /// A defined type that never travels this way (a legacy event, or one the other side
    /// sends).
    #[error("uhid event type {0} does not travel in this direction")]
    WrongDirection(u32),
    /// A report size above what the struct holds.
    #[error("uhid event type {event_type} gives a size of {size}, above {max}")]
    SizeTooLarge {
        /// The event's type.
        event_type: u32,
        /// The size field.
        size: usize,
        /// What the struct can hold.
        max: usize,
    },
    /// An `rtype` that is not `enum uhid_report_type`.
    #[error("unknown uhid report type {0}")]
    UnknownReportType(u8),
    /// CREATE2's descriptor size is 0 (the kernel refuses it).
    #[error("a CREATE2 without a report descriptor")]
    EmptyDescriptor,
    /// A CREATE2 string that is not NUL-terminated UTF-8.
    #[error("the CREATE2 field {0} is not NUL-terminated UTF-8")]
    BadString(&'static str),
}

/// Why a [`UserEvent`] cannot be written.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// A CREATE2 string too long for its field (which also keeps a NUL).
    #[error("the CREATE2 {field} of {len} bytes does not fit in {max}")]
    StringTooLong {
        /// `name`, `phys` or `uniq`.
        field: &'static str,
        /// Its length.
        len: usize,
        /// The most it can be.
        max: usize,
    },
    /// A CREATE2 string with a NUL, which would cut it short.
    #[error("the CREATE2 {0} contains a NUL byte")]
    Nul(&'static str),
    /// A report descriptor of 0 bytes or more than [`DESCRIPTOR_MAX`].
    #[error("a report descriptor of {0} bytes (1 to {DESCRIPTOR_MAX})")]
    DescriptorLen(usize),
    /// A report of more than [`DATA_MAX`] bytes.
    #[error("a report of {0} bytes (at most {DATA_MAX})")]
    DataTooLong(usize),
}

fn put_u16(buf: &mut [u8], at: usize, v: u16) {
    buf[at..at + 2].copy_from_slice(&v.to_ne_bytes());
}

fn put_u32(buf: &mut [u8], at: usize, v: u32) {
    buf[at..at + 4].copy_from_slice(&v.to_ne_bytes());
}

/// Reads fixed-size fields; callers check the length first, and the `None`s only stand in
/// for an impossible short slice so that nothing here can panic.
fn get<const N: usize>(buf: &[u8], at: usize) -> Option<[u8; N]> {
    buf.get(at..at.checked_add(N)?)?.try_into().ok()
}

fn get_u16(buf: &[u8], at: usize) -> Option<u16> {
    get::<2>(buf, at).map(u16::from_ne_bytes)
}

fn get_u32(buf: &[u8], at: usize) -> Option<u32> {
    get::<4>(buf, at).map(u32::from_ne_bytes)
}

fn get_u64(buf: &[u8], at: usize) -> Option<u64> {
    get::<8>(buf, at).map(u64::from_ne_bytes)
}

fn need(buf: &[u8], event_type: u32, needed: usize) -> Result<(), DecodeError> {
    if buf.len() < needed {
        return Err(DecodeError::Truncated {
            event_type: Some(event_type),
            needed,
            got: buf.len(),
        });
    }
    Ok(())
}

/// The length fields and slices of a checked buffer; the error cannot happen after
/// [`need`], but a typed error beats an index panic if a constant above were ever wrong.
fn short(buf: &[u8], event_type: u32, needed: usize) -> DecodeError {
    DecodeError::Truncated {
        event_type: Some(event_type),
        needed,
        got: buf.len(),
    }
}

fn event_type(buf: &[u8]) -> Result<u32, DecodeError> {
    get_u32(buf, 0).ok_or(DecodeError::Truncated {
        event_type: None,
        needed: U,
        got: buf.len(),
    })
}

fn report_type(code: u8) -> Result<ReportType, DecodeError> {
    ReportType::from_code(code).ok_or(DecodeError::UnknownReportType(code))
}

fn data_size(buf: &[u8], event_type: u32, at: usize, data: usize) -> Result<Vec<u8>, DecodeError> {
    let size = usize::from(get_u16(buf, at).ok_or_else(|| short(buf, event_type, at + 2))?);
    if size > DATA_MAX {
        return Err(DecodeError::SizeTooLarge {
            event_type,
            size,
            max: DATA_MAX,
        });
    }
    buf.get(data..data + size)
        .map(<[u8]>::to_vec)
        .ok_or_else(|| short(buf, event_type, data + size))
}

impl KernelEvent {
    /// Decodes one event as read from `/dev/uhid`. Bytes past the event's request struct
    /// (the rest of the union) are ignored.
    pub fn decode(buf: &[u8]) -> Result<KernelEvent, DecodeError> {
        let ty = event_type(buf)?;
        match ty {
            UHID_START => {
                need(buf, ty, START_END)?;
                let dev_flags =
                    get_u64(buf, START_DEV_FLAGS).ok_or_else(|| short(buf, ty, START_END))?;
                Ok(KernelEvent::Start { dev_flags })
            }
            UHID_STOP => Ok(KernelEvent::Stop),
            UHID_OPEN => Ok(KernelEvent::Open),
            UHID_CLOSE => Ok(KernelEvent::Close),
            UHID_OUTPUT => {
                need(buf, ty, OUTPUT_END)?;
                let data = data_size(buf, ty, OUTPUT_SIZE, OUTPUT_DATA)?;
                let report_type = report_type(buf[OUTPUT_RTYPE])?;
                Ok(KernelEvent::Output { data, report_type })
            }
            UHID_GET_REPORT => {
                need(buf, ty, GET_REPORT_END)?;
                let id = get_u32(buf, REPORT_ID).ok_or_else(|| short(buf, ty, GET_REPORT_END))?;
                Ok(KernelEvent::GetReport {
                    id,
                    report_number: buf[REPORT_RNUM],
                    report_type: report_type(buf[REPORT_RTYPE])?,
                })
            }
            UHID_SET_REPORT => {
                need(buf, ty, SET_REPORT_END)?;
                let id = get_u32(buf, REPORT_ID).ok_or_else(|| short(buf, ty, SET_REPORT_END))?;
                let report_type = report_type(buf[REPORT_RTYPE])?;
                let data = data_size(buf, ty, SET_REPORT_SIZE, SET_REPORT_DATA)?;
                Ok(KernelEvent::SetReport {
                    id,
                    report_number: buf[REPORT_RNUM],
                    report_type,
                    data,
                })
            }
            // The legacy CREATE, OUTPUT_EV and INPUT, and what user space sends.
            0
            | 7
            | 8
            | UHID_DESTROY
            | UHID_GET_REPORT_REPLY
            | UHID_CREATE2
            | UHID_INPUT2
            | UHID_SET_REPORT_REPLY => Err(DecodeError::WrongDirection(ty)),
            _ => Err(DecodeError::UnknownType(ty)),
        }
    }

    /// The event as the kernel writes it: a whole [`EVENT_SIZE`]-byte `struct
    /// uhid_event`, zero past the request. For fake kernels in tests.
    ///
    /// Reports longer than [`DATA_MAX`] are cut to fit, as no kernel sends them.
    pub fn encode(&self) -> Vec<u8> {
        let mut buf = vec![0u8; EVENT_SIZE];
        let ty = match self {
            KernelEvent::Start { dev_flags } => {
                buf[START_DEV_FLAGS..START_END].copy_from_slice(&dev_flags.to_ne_bytes());
                UHID_START
            }
            KernelEvent::Stop => UHID_STOP,
            KernelEvent::Open => UHID_OPEN,
            KernelEvent::Close => UHID_CLOSE,
            KernelEvent::Output { data, report_type } => {
                let n = data.len().min(DATA_MAX);
                buf[OUTPUT_DATA..OUTPUT_DATA + n].copy_from_slice(&data[..n]);
                put_u16(&mut buf, OUTPUT_SIZE, n as u16);
                buf[OUTPUT_RTYPE] = report_type.code();
                UHID_OUTPUT
            }
            KernelEvent::GetReport {
                id,
                report_number,
                report_type,
            } => {
                put_u32(&mut buf, REPORT_ID, *id);
                buf[REPORT_RNUM] = *report_number;
                buf[REPORT_RTYPE] = report_type.code();
                UHID_GET_REPORT
            }
            KernelEvent::SetReport {
                id,
                report_number,
                report_type,
                data,
            } => {
                put_u32(&mut buf, REPORT_ID, *id);
                buf[REPORT_RNUM] = *report_number;
                buf[REPORT_RTYPE] = report_type.code();
                let n = data.len().min(DATA_MAX);
                put_u16(&mut buf, SET_REPORT_SIZE, n as u16);
                buf[SET_REPORT_DATA..SET_REPORT_DATA + n].copy_from_slice(&data[..n]);
                UHID_SET_REPORT
            }
        };
        put_u32(&mut buf, 0, ty);
        buf
    }
}

fn put_str(
    buf: &mut [u8],
    at: usize,
    field: &'static str,
    value: &str,
    max: usize,
) -> Result<(), EncodeError> {
    if value.as_bytes().contains(&0) {
        return Err(EncodeError::Nul(field));
    }
    // The kernel copies the field with strscpy into a buffer of the same size, so one
    // byte goes to the NUL.
    if value.len() >= max {
        return Err(EncodeError::StringTooLong {
            field,
            len: value.len(),
            max: max - 1,
        });
    }
    buf[at..at + value.len()].copy_from_slice(value.as_bytes());
    Ok(())
}

fn get_str(buf: &[u8], at: usize, len: usize, field: &'static str) -> Result<String, DecodeError> {
    let bytes = buf.get(at..at + len).ok_or(DecodeError::BadString(field))?;
    let end = bytes
        .iter()
        .position(|&b| b == 0)
        .ok_or(DecodeError::BadString(field))?;
    String::from_utf8(bytes[..end].to_vec()).map_err(|_| DecodeError::BadString(field))
}

impl UserEvent {
    /// The bytes to write: the type and the request up to its last byte in use (the
    /// kernel zero-fills the rest).
    pub fn encode(&self) -> Result<Vec<u8>, EncodeError> {
        match self {
            UserEvent::Create2(c) => {
                let len = c.descriptor.len();
                if len == 0 || len > DESCRIPTOR_MAX {
                    return Err(EncodeError::DescriptorLen(len));
                }
                let mut buf = vec![0u8; CREATE2_RD_DATA + len];
                put_u32(&mut buf, 0, UHID_CREATE2);
                put_str(&mut buf, CREATE2_NAME, "name", &c.name, NAME_LEN)?;
                put_str(&mut buf, CREATE2_PHYS, "phys", &c.phys, PHYS_LEN)?;
                put_str(&mut buf, CREATE2_UNIQ, "uniq", &c.uniq, UNIQ_LEN)?;
                put_u16(&mut buf, CREATE2_RD_SIZE, len as u16);
                put_u16(&mut buf, CREATE2_BUS, c.bus);
                put_u32(&mut buf, CREATE2_VENDOR, c.vendor);
                put_u32(&mut buf, CREATE2_PRODUCT, c.product);
                put_u32(&mut buf, CREATE2_VERSION, c.version);
                put_u32(&mut buf, CREATE2_COUNTRY, c.country);
                buf[CREATE2_RD_DATA..].copy_from_slice(&c.descriptor);
                Ok(buf)
            }
            UserEvent::Input2 { data } => {
                if data.len() > DATA_MAX {
                    return Err(EncodeError::DataTooLong(data.len()));
                }
                let mut buf = vec![0u8; INPUT2_DATA + data.len()];
                put_u32(&mut buf, 0, UHID_INPUT2);
                put_u16(&mut buf, INPUT2_SIZE, data.len() as u16);
                buf[INPUT2_DATA..].copy_from_slice(data);
                Ok(buf)
            }
            UserEvent::Destroy => Ok(UHID_DESTROY.to_ne_bytes().to_vec()),
            UserEvent::GetReportReply { id, err, data } => {
                if data.len() > DATA_MAX {
                    return Err(EncodeError::DataTooLong(data.len()));
                }
                let mut buf = vec![0u8; GET_REPORT_REPLY_DATA + data.len()];
                put_u32(&mut buf, 0, UHID_GET_REPORT_REPLY);
                put_u32(&mut buf, REPLY_ID, *id);
                put_u16(&mut buf, REPLY_ERR, *err);
                put_u16(&mut buf, GET_REPORT_REPLY_SIZE, data.len() as u16);
                buf[GET_REPORT_REPLY_DATA..].copy_from_slice(data);
                Ok(buf)
            }
            UserEvent::SetReportReply { id, err } => {
                let mut buf = vec![0u8; SET_REPORT_REPLY_END];
                put_u32(&mut buf, 0, UHID_SET_REPORT_REPLY);
                put_u32(&mut buf, REPLY_ID, *id);
                put_u16(&mut buf, REPLY_ERR, *err);
                Ok(buf)
            }
        }
    }

    /// Decodes one written event, short (as [`UserEvent::encode`] writes it) or padded to
    /// [`EVENT_SIZE`]: what a fake kernel in a test reads.
    pub fn decode(buf: &[u8]) -> Result<UserEvent, DecodeError> {
        let ty = event_type(buf)?;
        match ty {
            UHID_CREATE2 => {
                need(buf, ty, CREATE2_RD_DATA)?;
                let rd_size = usize::from(
                    get_u16(buf, CREATE2_RD_SIZE).ok_or_else(|| short(buf, ty, CREATE2_RD_DATA))?,
                );
                if rd_size == 0 {
                    return Err(DecodeError::EmptyDescriptor);
                }
                if rd_size > DESCRIPTOR_MAX {
                    return Err(DecodeError::SizeTooLarge {
                        event_type: ty,
                        size: rd_size,
                        max: DESCRIPTOR_MAX,
                    });
                }
                need(buf, ty, CREATE2_RD_DATA + rd_size)?;
                let field = |at| get_u32(buf, at).ok_or_else(|| short(buf, ty, CREATE2_RD_DATA));
                Ok(UserEvent::Create2(Create2 {
                    name: get_str(buf, CREATE2_NAME, NAME_LEN, "name")?,
                    phys: get_str(buf, CREATE2_PHYS, PHYS_LEN, "phys")?,
                    uniq: get_str(buf, CREATE2_UNIQ, UNIQ_LEN, "uniq")?,
                    bus: get_u16(buf, CREATE2_BUS)
                        .ok_or_else(|| short(buf, ty, CREATE2_RD_DATA))?,
                    vendor: field(CREATE2_VENDOR)?,
                    product: field(CREATE2_PRODUCT)?,
                    version: field(CREATE2_VERSION)?,
                    country: field(CREATE2_COUNTRY)?,
                    descriptor: buf[CREATE2_RD_DATA..CREATE2_RD_DATA + rd_size].to_vec(),
                }))
            }
            UHID_INPUT2 => {
                need(buf, ty, INPUT2_DATA)?;
                let data = data_size(buf, ty, INPUT2_SIZE, INPUT2_DATA)?;
                Ok(UserEvent::Input2 { data })
            }
            UHID_DESTROY => Ok(UserEvent::Destroy),
            UHID_GET_REPORT_REPLY => {
                need(buf, ty, GET_REPORT_REPLY_DATA)?;
                let id = get_u32(buf, REPLY_ID).ok_or_else(|| short(buf, ty, REPLY_ERR))?;
                let err = get_u16(buf, REPLY_ERR).ok_or_else(|| short(buf, ty, REPLY_ERR + 2))?;
                let data = data_size(buf, ty, GET_REPORT_REPLY_SIZE, GET_REPORT_REPLY_DATA)?;
                Ok(UserEvent::GetReportReply { id, err, data })
            }
            UHID_SET_REPORT_REPLY => {
                need(buf, ty, SET_REPORT_REPLY_END)?;
                let id = get_u32(buf, REPLY_ID).ok_or_else(|| short(buf, ty, REPLY_ERR))?;
                let err = get_u16(buf, REPLY_ERR).ok_or_else(|| short(buf, ty, REPLY_ERR + 2))?;
                Ok(UserEvent::SetReportReply { id, err })
            }
            0 | 7 | 8 | UHID_START | UHID_STOP | UHID_OPEN | UHID_CLOSE | UHID_OUTPUT
            | UHID_GET_REPORT | UHID_SET_REPORT => Err(DecodeError::WrongDirection(ty)),
            _ => Err(DecodeError::UnknownType(ty)),
        }
    }
}

#[cfg(test)]
mod tests;
