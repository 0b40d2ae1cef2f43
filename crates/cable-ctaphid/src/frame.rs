//! Packets and messages: parsing a report, cutting a message into reports and putting
//! one back together (CTAP 2.2, "USB HID", message and packet structure).
//!
//! Nothing here knows about channels being allocated or busy; that policy lives in
//! [`crate::Device`]. These pieces are shared by both directions, so a host-side test or
//! a fuzz target can check the device's output with the same code that reads its input.

use std::fmt;

/// Length of every HID report of a full-speed FIDO device, in both directions.
pub const REPORT_LEN: usize = 64;

/// Header of an initialisation packet: CID (4), CMD (1), BCNTH (1), BCNTL (1).
pub const INIT_HEADER_LEN: usize = 7;

/// Header of a continuation packet: CID (4), SEQ (1).
pub const CONT_HEADER_LEN: usize = 5;

/// Payload bytes carried by an initialisation packet (64 − 7).
pub const INIT_DATA_LEN: usize = REPORT_LEN - INIT_HEADER_LEN;

/// Payload bytes carried by a continuation packet (64 − 5).
pub const CONT_DATA_LEN: usize = REPORT_LEN - CONT_HEADER_LEN;

/// Highest continuation sequence number: bit 7 of the fifth byte tells the two packet
/// kinds apart, so SEQ has seven bits.
pub const MAX_SEQ: u8 = 0x7f;

/// Largest message payload: one initialisation packet and 128 continuation packets,
/// 57 + 128 × 59 = 7609 bytes, as the spec computes it for 64-byte reports.
pub const MAX_MESSAGE_LEN: usize = INIT_DATA_LEN + (MAX_SEQ as usize + 1) * CONT_DATA_LEN;

/// Bit 7 of the fifth byte: set in an initialisation packet's CMD, clear in a SEQ.
pub const TYPE_INIT: u8 = 0x80;

/// One HID report, exactly as it travels.
pub type Report = [u8; REPORT_LEN];

/// A channel identifier. The spec treats it as four opaque bytes; this crate reads and
/// writes them big-endian, as python-fido2 does, so `Cid(1)` is `00 00 00 01` on the wire.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Cid(pub u32);

impl Cid {
    /// The broadcast channel `ffffffff`, on which only CTAPHID_INIT may be sent.
    pub const BROADCAST: Cid = Cid(0xffff_ffff);
    /// Channel 0 is reserved and never allocated.
    pub const RESERVED: Cid = Cid(0);

    /// The four bytes as they appear in a report.
    pub const fn to_bytes(self) -> [u8; 4] {
        self.0.to_be_bytes()
    }

    /// Reads the four bytes of a report.
    pub const fn from_bytes(bytes: [u8; 4]) -> Cid {
        Cid(u32::from_be_bytes(bytes))
    }

    /// Whether a device could ever allocate this channel (not 0, not broadcast).
    pub const fn is_allocatable(self) -> bool {
        self.0 != Self::RESERVED.0 && self.0 != Self::BROADCAST.0
    }
}

impl fmt::Debug for Cid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Cid({:08x})", self.0)
    }
}

impl fmt::Display for Cid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:08x}", self.0)
    }
}

/// A CTAPHID command, without the packet-type bit 7.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Command {
    /// 0x01: echo.
    Ping,
    /// 0x03: a U2F (CTAP1) message.
    Msg,
    /// 0x04: lock the device to one channel.
    Lock,
    /// 0x06: allocate or resynchronise a channel.
    Init,
    /// 0x08: make the device identify itself.
    Wink,
    /// 0x10: a CTAP2 request or response.
    Cbor,
    /// 0x11: cancel the outstanding CTAP2 request.
    Cancel,
    /// 0x3b: the device is still working on a request.
    Keepalive,
    /// 0x3f: a transport error.
    Error,
    /// Any other 7-bit value (vendor commands are 0x40..=0x7f). Built only by
    /// [`Command::from_code`], so it never holds one of the values above.
    Other(u8),
}

impl Command {
    /// The command of a CMD byte; bit 7 is ignored.
    pub const fn from_code(code: u8) -> Command {
        match code & !TYPE_INIT {
            0x01 => Command::Ping,
            0x03 => Command::Msg,
            0x04 => Command::Lock,
            0x06 => Command::Init,
            0x08 => Command::Wink,
            0x10 => Command::Cbor,
            0x11 => Command::Cancel,
            0x3b => Command::Keepalive,
            0x3f => Command::Error,
            other => Command::Other(other),
        }
    }

    /// The 7-bit command code.
    pub const fn code(self) -> u8 {
        match self {
            Command::Ping => 0x01,
            Command::Msg => 0x03,
            Command::Lock => 0x04,
            Command::Init => 0x06,
            Command::Wink => 0x08,
            Command::Cbor => 0x10,
            Command::Cancel => 0x11,
            Command::Keepalive => 0x3b,
            Command::Error => 0x3f,
            Command::Other(code) => code & !TYPE_INIT,
        }
    }
}

/// The one-byte payload of a CTAPHID_ERROR response.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorCode {
    /// 0x01: the command is not supported (here: MSG, LOCK, vendor commands).
    InvalidCmd,
    /// 0x02: a parameter of the command is invalid.
    InvalidPar,
    /// 0x03: BCNT is wrong for the command or above the maximum message size.
    InvalidLen,
    /// 0x04: a continuation packet came out of order, or an initialisation packet
    /// interrupted a message on its own channel.
    InvalidSeq,
    /// 0x05: the rest of a message did not arrive in time.
    MsgTimeout,
    /// 0x06: another channel's transaction is in progress.
    ChannelBusy,
    /// 0x0a: the device is locked to another channel (never sent: LOCK is unsupported).
    LockRequired,
    /// 0x0b: the channel was never allocated, or is not valid for the command.
    InvalidChannel,
    /// 0x7f: anything else.
    Other,
}

impl ErrorCode {
    /// The byte sent on the wire.
    pub const fn code(self) -> u8 {
        match self {
            ErrorCode::InvalidCmd => 0x01,
            ErrorCode::InvalidPar => 0x02,
            ErrorCode::InvalidLen => 0x03,
            ErrorCode::InvalidSeq => 0x04,
            ErrorCode::MsgTimeout => 0x05,
            ErrorCode::ChannelBusy => 0x06,
            ErrorCode::LockRequired => 0x0a,
            ErrorCode::InvalidChannel => 0x0b,
            ErrorCode::Other => 0x7f,
        }
    }

    /// The error of a byte, if it is one the spec defines.
    pub const fn from_code(code: u8) -> Option<ErrorCode> {
        Some(match code {
            0x01 => ErrorCode::InvalidCmd,
            0x02 => ErrorCode::InvalidPar,
            0x03 => ErrorCode::InvalidLen,
            0x04 => ErrorCode::InvalidSeq,
            0x05 => ErrorCode::MsgTimeout,
            0x06 => ErrorCode::ChannelBusy,
            0x0a => ErrorCode::LockRequired,
            0x0b => ErrorCode::InvalidChannel,
            0x7f => ErrorCode::Other,
            _ => return None,
        })
    }
}

/// What went wrong while reading or writing packets.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// A report that is not 64 bytes long.
    #[error("a CTAPHID report is {REPORT_LEN} bytes, not {len}")]
    ReportLength {
        /// Length of the report given.
        len: usize,
    },
    /// A message longer than 128 continuation packets can carry.
    #[error("a CTAPHID message holds at most {MAX_MESSAGE_LEN} bytes, not {len}")]
    TooLong {
        /// Length of the message (BCNT, or the payload to send).
        len: usize,
    },
    /// A continuation packet with no message being put together.
    #[error("continuation packet on channel {cid} without an initialisation packet")]
    Spurious {
        /// Its channel.
        cid: Cid,
    },
    /// A continuation packet of another channel than the message being put together.
    #[error("continuation packet on channel {got} while reassembling channel {expected}")]
    WrongChannel {
        /// The message's channel.
        expected: Cid,
        /// The packet's channel.
        got: Cid,
    },
    /// A continuation packet out of order; the message is dropped.
    #[error("continuation packet {got} where {expected} was due")]
    InvalidSeq {
        /// The sequence number due.
        expected: u8,
        /// The packet's.
        got: u8,
    },
}

/// A report read as one of the two packet kinds. Both borrow their payload from the
/// report, padding included: only BCNT says where a message ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Packet<'a> {
    /// The first packet of a message.
    Init {
        /// Channel.
        cid: Cid,
        /// Command (bit 7 removed).
        cmd: Command,
        /// Length of the whole message payload.
        bcnt: u16,
        /// The 57 payload bytes of this packet.
        data: &'a [u8],
    },
    /// A following packet.
    Cont {
        /// Channel.
        cid: Cid,
        /// Sequence number, 0..=127.
        seq: u8,
        /// The 59 payload bytes of this packet.
        data: &'a [u8],
    },
}

impl<'a> Packet<'a> {
    /// Reads a report. Every 64-byte report is a packet of one kind or the other; only
    /// the length can be wrong.
    pub fn parse(report: &'a [u8]) -> Result<Packet<'a>, FrameError> {
        let report: &'a Report = report
            .try_into()
            .map_err(|_| FrameError::ReportLength { len: report.len() })?;
        let cid = Cid::from_bytes([report[0], report[1], report[2], report[3]]);
        let kind = report[4];
        Ok(if kind & TYPE_INIT != 0 {
            Packet::Init {
                cid,
                cmd: Command::from_code(kind),
                bcnt: u16::from_be_bytes([report[5], report[6]]),
                data: &report[INIT_HEADER_LEN..],
            }
        } else {
            Packet::Cont {
                cid,
                seq: kind,
                data: &report[CONT_HEADER_LEN..],
            }
        })
    }

    /// The packet's channel.
    pub fn cid(&self) -> Cid {
        match *self {
            Packet::Init { cid, .. } | Packet::Cont { cid, .. } => cid,
        }
    }
}

/// A whole message: what a host sent, or what the device answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    /// Channel.
    pub cid: Cid,
    /// Command.
    pub cmd: Command,
    /// Payload, BCNT bytes.
    pub payload: Vec<u8>,
}

/// Cuts a message into reports: one initialisation packet, then as many continuation
/// packets as the payload needs, zero-padded. An empty payload is one packet with BCNT 0.
pub fn fragment(cid: Cid, cmd: Command, payload: &[u8]) -> Result<Vec<Report>, FrameError> {
    let bcnt = u16::try_from(payload.len())
        .ok()
        .filter(|_| payload.len() <= MAX_MESSAGE_LEN)
        .ok_or(FrameError::TooLong { len: payload.len() })?;
    let first_len = payload.len().min(INIT_DATA_LEN);
    let (first, rest) = payload.split_at(first_len);

    let mut reports = Vec::with_capacity(1 + rest.len().div_ceil(CONT_DATA_LEN));
    let mut init = [0u8; REPORT_LEN];
    init[..4].copy_from_slice(&cid.to_bytes());
    init[4] = TYPE_INIT | cmd.code();
    init[5..7].copy_from_slice(&bcnt.to_be_bytes());
    init[INIT_HEADER_LEN..INIT_HEADER_LEN + first.len()].copy_from_slice(first);
    reports.push(init);

    // The length check above bounds the chunks to 128, so the sequence numbers fit.
    for (seq, chunk) in (0..=MAX_SEQ).zip(rest.chunks(CONT_DATA_LEN)) {
        let mut cont = [0u8; REPORT_LEN];
        cont[..4].copy_from_slice(&cid.to_bytes());
        cont[4] = seq;
        cont[CONT_HEADER_LEN..CONT_HEADER_LEN + chunk.len()].copy_from_slice(chunk);
        reports.push(cont);
    }
    Ok(reports)
}

/// Where a message being put together stands.
#[derive(Clone, Debug)]
struct Partial {
    cid: Cid,
    cmd: Command,
    len: usize,
    buf: Vec<u8>,
    next_seq: u8,
}

/// Puts one channel's messages back together from packets, checking the sequence.
///
/// It holds at most one partial message. An initialisation packet always starts a new
/// message, dropping a partial one: whether that is an error (the device answers
/// INVALID_SEQ on the same channel, CHANNEL_BUSY on another) is the caller's policy,
/// decided before it hands the packet over.
#[derive(Clone, Debug, Default)]
pub struct Reassembler {
    partial: Option<Partial>,
}

impl Reassembler {
    /// Nothing in progress.
    pub fn new() -> Reassembler {
        Reassembler::default()
    }

    /// The channel of the message in progress, if any.
    pub fn in_progress(&self) -> Option<Cid> {
        self.partial.as_ref().map(|p| p.cid)
    }

    /// Drops the message in progress.
    pub fn reset(&mut self) {
        self.partial = None;
    }

    /// Takes one packet; returns the message it completes, if it does.
    ///
    /// On [`FrameError::InvalidSeq`] and [`FrameError::TooLong`] nothing is left in
    /// progress; on [`FrameError::Spurious`] and [`FrameError::WrongChannel`] the
    /// message in progress, if any, is kept, since the packet was not part of it.
    pub fn push(&mut self, packet: &Packet<'_>) -> Result<Option<Message>, FrameError> {
        match *packet {
            Packet::Init {
                cid,
                cmd,
                bcnt,
                data,
            } => {
                self.partial = None;
                let len = usize::from(bcnt);
                if len > MAX_MESSAGE_LEN {
                    return Err(FrameError::TooLong { len });
                }
                let take = len.min(data.len());
                let mut buf = Vec::with_capacity(len);
                buf.extend_from_slice(&data[..take]);
                if buf.len() == len {
                    return Ok(Some(Message {
                        cid,
                        cmd,
                        payload: buf,
                    }));
                }
                self.partial = Some(Partial {
                    cid,
                    cmd,
                    len,
                    buf,
                    next_seq: 0,
                });
                Ok(None)
            }
            Packet::Cont { cid, seq, data } => {
                let Some(partial) = self.partial.as_mut() else {
                    return Err(FrameError::Spurious { cid });
                };
                if partial.cid != cid {
                    return Err(FrameError::WrongChannel {
                        expected: partial.cid,
                        got: cid,
                    });
                }
                if partial.next_seq != seq {
                    let expected = partial.next_seq;
                    self.partial = None;
                    return Err(FrameError::InvalidSeq { expected, got: seq });
                }
                let take = (partial.len - partial.buf.len()).min(data.len());
                partial.buf.extend_from_slice(&data[..take]);
                // At most 7609 bytes need at most 128 continuation packets, so the
                // message is complete before the sequence number could pass 127.
                partial.next_seq = partial.next_seq.saturating_add(1);
                if partial.buf.len() < partial.len {
                    return Ok(None);
                }
                Ok(self.partial.take().map(|p| Message {
                    cid: p.cid,
                    cmd: p.cmd,
                    payload: p.buf,
                }))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_message_len_is_the_specs_7609() {
        assert_eq!(MAX_MESSAGE_LEN, 7609);
    }

    #[test]
    fn every_report_parses_and_only_length_fails() {
        assert_eq!(
            Packet::parse(&[0; 63]),
            Err(FrameError::ReportLength { len: 63 })
        );
        assert_eq!(
            Packet::parse(&[0; 65]),
            Err(FrameError::ReportLength { len: 65 })
        );
        let mut r = [0u8; 64];
        r[..5].copy_from_slice(&[1, 2, 3, 4, 0x7f]);
        assert!(matches!(
            Packet::parse(&r),
            Ok(Packet::Cont { cid: Cid(0x0102_0304), seq: 0x7f, data }) if data.len() == 59
        ));
        r[4..7].copy_from_slice(&[0x90, 0x01, 0x02]);
        assert!(matches!(
            Packet::parse(&r),
            Ok(Packet::Init { cid: Cid(0x0102_0304), cmd: Command::Cbor, bcnt: 0x0102, data })
                if data.len() == 57
        ));
    }

    #[test]
    fn command_codes_round_trip() {
        for code in 0..=0xffu8 {
            let cmd = Command::from_code(code);
            assert_eq!(cmd.code(), code & 0x7f);
            assert_eq!(Command::from_code(cmd.code()), cmd);
        }
    }

    #[test]
    fn error_codes_round_trip() {
        for code in 0..=0xffu8 {
            if let Some(e) = ErrorCode::from_code(code) {
                assert_eq!(e.code(), code);
            }
        }
        assert_eq!(ErrorCode::from_code(0x06), Some(ErrorCode::ChannelBusy));
        assert_eq!(ErrorCode::from_code(0x07), None);
    }

    #[test]
    fn fragment_sizes() {
        let cid = Cid(7);
        assert_eq!(fragment(cid, Command::Ping, &[]).map(|r| r.len()), Ok(1));
        assert_eq!(
            fragment(cid, Command::Ping, &[0; 57]).map(|r| r.len()),
            Ok(1)
        );
        assert_eq!(
            fragment(cid, Command::Ping, &[0; 58]).map(|r| r.len()),
            Ok(2)
        );
        assert_eq!(
            fragment(cid, Command::Ping, &[0; 57 + 59]).map(|r| r.len()),
            Ok(2)
        );
        assert_eq!(
            fragment(cid, Command::Ping, &[0; MAX_MESSAGE_LEN]).map(|r| r.len()),
            Ok(129)
        );
        assert_eq!(
            fragment(cid, Command::Ping, &[0; MAX_MESSAGE_LEN + 1]),
            Err(FrameError::TooLong { len: 7610 })
        );
    }

    #[test]
    fn last_continuation_of_a_maximal_message_has_seq_127() {
        let reports = fragment(Cid(7), Command::Cbor, &[0xaa; MAX_MESSAGE_LEN]).unwrap_or_default();
        assert_eq!(reports.last().map(|r| r[4]), Some(0x7f));
        assert_eq!(reports.last().map(|r| r[63]), Some(0xaa));
    }

    fn p(rep: &Report) -> Option<Packet<'_>> {
        Packet::parse(rep).ok()
    }

    #[test]
    fn reassembler_rejects_bad_sequences() {
        let payload: Vec<u8> = (0..200u8).collect();
        let reports = fragment(Cid(9), Command::Ping, &payload).unwrap_or_default();
        let mut r = Reassembler::new();

        assert_eq!(
            p(&reports[1]).map(|pk| r.push(&pk)),
            Some(Err(FrameError::Spurious { cid: Cid(9) }))
        );
        assert_eq!(p(&reports[0]).map(|pk| r.push(&pk)), Some(Ok(None)));
        assert_eq!(r.in_progress(), Some(Cid(9)));
        let other = fragment(Cid(10), Command::Ping, &payload).unwrap_or_default();
        assert_eq!(
            p(&other[1]).map(|pk| r.push(&pk)),
            Some(Err(FrameError::WrongChannel {
                expected: Cid(9),
                got: Cid(10)
            }))
        );
        assert_eq!(
            p(&reports[2]).map(|pk| r.push(&pk)),
            Some(Err(FrameError::InvalidSeq {
                expected: 0,
                got: 1
            }))
        );
        assert_eq!(r.in_progress(), None);

        for (i, rep) in reports.iter().enumerate() {
            let out = p(rep).map(|pk| r.push(&pk));
            if i + 1 < reports.len() {
                assert_eq!(out, Some(Ok(None)));
            } else {
                assert_eq!(
                    out,
                    Some(Ok(Some(Message {
                        cid: Cid(9),
                        cmd: Command::Ping,
                        payload: payload.clone()
                    })))
                );
            }
        }
    }

    #[test]
    fn oversized_bcnt_is_refused_at_once() {
        let mut rep = [0u8; 64];
        rep[4] = 0x81;
        rep[5..7].copy_from_slice(&7610u16.to_be_bytes());
        let mut r = Reassembler::new();
        assert_eq!(
            Packet::parse(&rep).map(|pk| r.push(&pk)),
            Ok(Err(FrameError::TooLong { len: 7610 }))
        );
        assert_eq!(r.in_progress(), None);
    }
}
