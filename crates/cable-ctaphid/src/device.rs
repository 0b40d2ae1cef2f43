//! The device side: channels, transactions, keepalives and timeouts.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::frame::{
    fragment, Cid, Command, ErrorCode, FrameError, Message, Packet, Reassembler, Report,
    MAX_MESSAGE_LEN,
};

/// CTAPHID protocol version in the INIT response; 2 since U2F HID 1.1.
pub const PROTOCOL_VERSION: u8 = 2;

/// Capability flag: the device answers CTAPHID_WINK.
pub const CAPABILITY_WINK: u8 = 0x01;
/// Capability flag: the device answers CTAPHID_CBOR.
pub const CAPABILITY_CBOR: u8 = 0x04;
/// Capability flag: the device does *not* answer CTAPHID_MSG (no U2F).
pub const CAPABILITY_NMSG: u8 = 0x08;

/// What this device advertises: CBOR and WINK, no MSG (the phone behind it speaks CTAP2
/// only), no LOCK.
pub const CAPABILITIES: u8 = CAPABILITY_WINK | CAPABILITY_CBOR | CAPABILITY_NMSG;

/// CTAP2_ERR_KEEPALIVE_CANCEL, the CTAP2 status that answers a cancelled request.
pub const CTAP2_ERR_KEEPALIVE_CANCEL: u8 = 0x2d;

/// Length of the CTAPHID_INIT nonce.
pub const INIT_NONCE_LEN: usize = 8;

/// Gap allowed between two packets of one message before the device gives up on it.
/// CTAP 2.2 asks for a timeout without a number; this is `U2FHID_FRAME_TIMEOUT` of the
/// FIDO U2F HID header (`u2f_hid.h`), 500 ms.
pub const DEFAULT_FRAME_TIMEOUT: Duration = Duration::from_millis(500);

/// CTAP 2.2: a KEEPALIVE "should be sent at least every 100ms".
pub const DEFAULT_KEEPALIVE_INTERVAL: Duration = Duration::from_millis(100);

/// Channels remembered at once; the oldest allocation is forgotten beyond this.
pub const DEFAULT_MAX_CHANNELS: usize = 256;

/// The device's identity in the CTAPHID_INIT response.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeviceInfo {
    /// Major device version number.
    pub major: u8,
    /// Minor device version number.
    pub minor: u8,
    /// Build device version number.
    pub build: u8,
}

impl DeviceInfo {
    /// A device of version `major.minor.build`.
    pub const fn new(major: u8, minor: u8, build: u8) -> DeviceInfo {
        DeviceInfo {
            major,
            minor,
            build,
        }
    }
}

/// Timing and bookkeeping choices; the defaults follow the spec.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Config {
    /// See [`DEFAULT_FRAME_TIMEOUT`].
    pub frame_timeout: Duration,
    /// See [`DEFAULT_KEEPALIVE_INTERVAL`].
    pub keepalive_interval: Duration,
    /// See [`DEFAULT_MAX_CHANNELS`]; at least 1 is used.
    pub max_channels: usize,
    /// The first channel to allocate; later ones count up from it, skipping 0, the
    /// broadcast channel and channels still allocated. A host that must not guess other
    /// applications' channels can start it at a random value.
    pub first_cid: u32,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            frame_timeout: DEFAULT_FRAME_TIMEOUT,
            keepalive_interval: DEFAULT_KEEPALIVE_INTERVAL,
            max_channels: DEFAULT_MAX_CHANNELS,
            first_cid: 1,
        }
    }
}

/// The status byte of a CTAPHID_KEEPALIVE.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum KeepaliveStatus {
    /// 1: still working.
    Processing,
    /// 2: waiting for the user (here: for the person at the phone).
    UpNeeded,
}

impl KeepaliveStatus {
    /// The byte sent on the wire.
    pub const fn code(self) -> u8 {
        match self {
            KeepaliveStatus::Processing => 1,
            KeepaliveStatus::UpNeeded => 2,
        }
    }
}

/// Names one CTAP2 request, so that an answer meant for a request that was since aborted
/// cannot be taken for the answer to a later one on the same channel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RequestId {
    cid: Cid,
    serial: u64,
}

impl RequestId {
    /// The channel the request came on.
    pub fn cid(self) -> Cid {
        self.cid
    }
}

/// What the host application has to act on.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// CTAPHID_WINK: show that this is the device (it has been answered already).
    Wink {
        /// Channel of the request.
        cid: Cid,
    },
    /// CTAPHID_CBOR: a CTAP2 request (command byte then CBOR), to be answered with
    /// [`Device::respond_cbor`]. Until then the device sends keepalives from
    /// [`Device::poll`] and tells other channels it is busy.
    Cbor {
        /// Pass to [`Device::respond_cbor`].
        id: RequestId,
        /// The CTAP2 command byte and its CBOR parameters.
        request: Vec<u8>,
    },
    /// CTAPHID_CANCEL for the outstanding request: stop it, then answer it with
    /// [`Device::confirm_cancel`] (CTAP2_ERR_KEEPALIVE_CANCEL), or with its real answer if
    /// it finished anyway. Repeated cancels of one request give one event.
    Cancel {
        /// The request to cancel.
        id: RequestId,
    },
    /// The host resynchronised the channel (CTAPHID_INIT) while its request was
    /// outstanding: the request is gone and must not be answered.
    Aborted {
        /// The request dropped.
        id: RequestId,
    },
}

/// Why a report was not taken.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReceiveError {
    /// Not a 64-byte report; nothing was changed.
    #[error(transparent)]
    Frame(#[from] FrameError),
}

/// Why an answer was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RespondError {
    /// The request is not outstanding: answered already, or aborted by the host.
    #[error("no outstanding CTAP2 request {0:?}")]
    NotPending(RequestId),
    /// A CTAP2 response starts with a status byte, so it is never empty.
    #[error("an empty CTAP2 response")]
    Empty,
    /// Longer than one CTAPHID message; the request stays outstanding.
    #[error("a CTAP2 response of {len} bytes is longer than {MAX_MESSAGE_LEN}")]
    TooLong {
        /// Length of the response given.
        len: usize,
    },
}

#[derive(Clone, Debug)]
struct Pending {
    id: RequestId,
    status: KeepaliveStatus,
    next_keepalive: Option<Instant>,
    cancelled: bool,
}

/// One virtual CTAPHID device. See the crate documentation for how to drive it.
#[derive(Debug)]
pub struct Device {
    info: DeviceInfo,
    config: Config,
    /// Allocated channels, oldest first.
    channels: VecDeque<Cid>,
    next_cid: u32,
    next_serial: u64,
    reassembler: Reassembler,
    /// When the message in progress gets ERR_MSG_TIMEOUT; `None` if it never does
    /// (a timeout too long for the clock).
    reassembly_deadline: Option<Instant>,
    pending: Option<Pending>,
    outgoing: VecDeque<Report>,
}

impl Device {
    /// A device with the default [`Config`].
    pub fn new(info: DeviceInfo) -> Device {
        Device::with_config(info, Config::default())
    }

    /// A device with the given timings.
    pub fn with_config(info: DeviceInfo, config: Config) -> Device {
        Device {
            next_cid: config.first_cid,
            info,
            config,
            channels: VecDeque::new(),
            next_serial: 0,
            reassembler: Reassembler::new(),
            reassembly_deadline: None,
            pending: None,
            outgoing: VecDeque::new(),
        }
    }

    /// Takes one output report of the host (64 bytes, no report ID). Answers that need
    /// nothing from the application (INIT, PING, WINK, errors) are queued for
    /// [`Device::take_outgoing`] at once; the rest comes back as events.
    ///
    /// Deadlines that passed by `now` are handled first, as [`Device::poll`] would.
    pub fn receive(&mut self, report: &[u8], now: Instant) -> Result<Vec<Event>, ReceiveError> {
        let packet = Packet::parse(report)?;
        self.poll(now);
        let mut events = Vec::new();
        match packet {
            Packet::Init { cid, cmd, bcnt, .. } => {
                self.on_init_packet(&packet, cid, cmd, bcnt, now, &mut events)
            }
            Packet::Cont { cid, .. } => self.on_cont_packet(&packet, cid, now, &mut events),
        }
        Ok(events)
    }

    fn on_init_packet(
        &mut self,
        packet: &Packet<'_>,
        cid: Cid,
        cmd: Command,
        bcnt: u16,
        now: Instant,
        events: &mut Vec<Event>,
    ) {
        // INIT fits one packet and changes no other channel's state, so it is served at
        // any time, busy or not: a host must always be able to get a channel or
        // resynchronise its own.
        if cmd == Command::Init {
            self.on_init(packet, cid, bcnt, events);
            return;
        }
        if cmd == Command::Cancel {
            // The spec: no reply to CANCEL ever, and one that matches no outstanding
            // CBOR request, or comes on any other ("non-active") channel, is ignored;
            // so not even an unallocated channel gets ERR_INVALID_CHANNEL for it.
            if let Some(p) = self.pending.as_mut() {
                if p.id.cid == cid && !p.cancelled {
                    p.cancelled = true;
                    events.push(Event::Cancel { id: p.id });
                }
            }
            return;
        }
        if cid == Cid::BROADCAST || !self.is_allocated(cid) {
            self.send_error(cid, ErrorCode::InvalidChannel);
            return;
        }
        if let Some(busy) = self.reassembler.in_progress() {
            if busy == cid {
                // A new message on the channel whose message is half read: the host lost
                // track of its own packets. Drop both and say so.
                self.abort_reassembly();
                self.send_error(cid, ErrorCode::InvalidSeq);
            } else {
                self.send_error(cid, ErrorCode::ChannelBusy);
            }
            return;
        }
        if self.pending.is_some() {
            // Even on the request's own channel: one transaction at a time, and only
            // CANCEL and INIT may interrupt it.
            self.send_error(cid, ErrorCode::ChannelBusy);
            return;
        }
        match self.reassembler.push(packet) {
            Ok(Some(message)) => self.dispatch(message, now, events),
            Ok(None) => {
                self.reassembly_deadline = now.checked_add(self.config.frame_timeout);
            }
            Err(FrameError::TooLong { .. }) => self.send_error(cid, ErrorCode::InvalidLen),
            Err(_) => self.send_error(cid, ErrorCode::Other),
        }
    }

    fn on_cont_packet(
        &mut self,
        packet: &Packet<'_>,
        cid: Cid,
        now: Instant,
        events: &mut Vec<Event>,
    ) {
        if self.reassembler.in_progress() != Some(cid) {
            // Spurious continuation packets (nothing in progress, or another channel's)
            // are ignored, as the spec asks; the other channel already had its
            // initialisation packet refused.
            return;
        }
        match self.reassembler.push(packet) {
            Ok(Some(message)) => {
                self.reassembly_deadline = None;
                self.dispatch(message, now, events);
            }
            Ok(None) => {
                self.reassembly_deadline = now.checked_add(self.config.frame_timeout);
            }
            Err(FrameError::InvalidSeq { .. }) => {
                self.abort_reassembly();
                self.send_error(cid, ErrorCode::InvalidSeq);
            }
            Err(_) => {
                self.abort_reassembly();
                self.send_error(cid, ErrorCode::Other);
            }
        }
    }

    fn on_init(&mut self, packet: &Packet<'_>, cid: Cid, bcnt: u16, events: &mut Vec<Event>) {
        let Packet::Init { data, .. } = *packet else {
            return;
        };
        if cid == Cid::RESERVED || (cid != Cid::BROADCAST && !self.is_allocated(cid)) {
            self.send_error(cid, ErrorCode::InvalidChannel);
            return;
        }
        if usize::from(bcnt) != INIT_NONCE_LEN {
            self.send_error(cid, ErrorCode::InvalidLen);
            return;
        }
        let new_cid = if cid == Cid::BROADCAST {
            self.allocate()
        } else {
            // Resynchronisation: whatever this channel had going is over.
            if self.reassembler.in_progress() == Some(cid) {
                self.abort_reassembly();
            }
            if let Some(p) = self.pending.take_if(|p| p.id.cid == cid) {
                events.push(Event::Aborted { id: p.id });
            }
            cid
        };
        let mut response = Vec::with_capacity(17);
        response.extend_from_slice(&data[..INIT_NONCE_LEN]);
        response.extend_from_slice(&new_cid.to_bytes());
        response.extend_from_slice(&[
            PROTOCOL_VERSION,
            self.info.major,
            self.info.minor,
            self.info.build,
            CAPABILITIES,
        ]);
        self.send(cid, Command::Init, &response);
    }

    fn dispatch(&mut self, message: Message, now: Instant, events: &mut Vec<Event>) {
        let Message { cid, cmd, payload } = message;
        match cmd {
            Command::Ping => self.send(cid, Command::Ping, &payload),
            Command::Wink if !payload.is_empty() => self.send_error(cid, ErrorCode::InvalidLen),
            Command::Wink => {
                self.send(cid, Command::Wink, &[]);
                events.push(Event::Wink { cid });
            }
            Command::Cbor if payload.is_empty() => self.send_error(cid, ErrorCode::InvalidLen),
            Command::Cbor => {
                let id = RequestId {
                    cid,
                    serial: self.next_serial,
                };
                self.next_serial = self.next_serial.wrapping_add(1);
                self.pending = Some(Pending {
                    id,
                    status: KeepaliveStatus::Processing,
                    next_keepalive: now.checked_add(self.config.keepalive_interval),
                    cancelled: false,
                });
                events.push(Event::Cbor {
                    id,
                    request: payload,
                });
            }
            // No U2F behind this device (NMSG is advertised), no LOCK, no vendor
            // commands; KEEPALIVE and ERROR only ever go from device to host. INIT and
            // CANCEL were handled from their initialisation packet.
            _ => self.send_error(cid, ErrorCode::InvalidCmd),
        }
    }

    /// Answers the outstanding CTAP2 request with `response` (CTAP2 status byte, then
    /// CBOR), cut into reports for [`Device::take_outgoing`]. The device is free for
    /// other transactions afterwards.
    pub fn respond_cbor(&mut self, id: RequestId, response: &[u8]) -> Result<(), RespondError> {
        if self.pending.as_ref().map(|p| p.id) != Some(id) {
            return Err(RespondError::NotPending(id));
        }
        if response.is_empty() {
            return Err(RespondError::Empty);
        }
        let reports =
            fragment(id.cid, Command::Cbor, response).map_err(|_| RespondError::TooLong {
                len: response.len(),
            })?;
        self.pending = None;
        self.outgoing.extend(reports);
        Ok(())
    }

    /// Answers a cancelled (or any outstanding) request with CTAP2_ERR_KEEPALIVE_CANCEL,
    /// as CTAP 2.2 asks of a request stopped by CTAPHID_CANCEL.
    pub fn confirm_cancel(&mut self, id: RequestId) -> Result<(), RespondError> {
        self.respond_cbor(id, &[CTAP2_ERR_KEEPALIVE_CANCEL])
    }

    /// Sets what the keepalives of the outstanding request say. A change is sent at
    /// once (the spec: "and whenever the status changes"), then every interval.
    pub fn set_keepalive_status(
        &mut self,
        id: RequestId,
        status: KeepaliveStatus,
        now: Instant,
    ) -> Result<(), RespondError> {
        let interval = self.config.keepalive_interval;
        let Some(p) = self.pending.as_mut().filter(|p| p.id == id) else {
            return Err(RespondError::NotPending(id));
        };
        if p.status != status {
            p.status = status;
            p.next_keepalive = now.checked_add(interval);
            self.send(id.cid, Command::Keepalive, &[status.code()]);
        }
        Ok(())
    }

    /// Lets time pass: a message whose next packet is overdue gets ERR_MSG_TIMEOUT, and
    /// an outstanding request gets its keepalive when one is due. Call it by
    /// [`Device::next_deadline`] at the latest. A late call sends one keepalive, not
    /// one for every interval missed.
    pub fn poll(&mut self, now: Instant) {
        if let (Some(cid), Some(deadline)) =
            (self.reassembler.in_progress(), self.reassembly_deadline)
        {
            if now >= deadline {
                self.abort_reassembly();
                self.send_error(cid, ErrorCode::MsgTimeout);
            }
        }
        let interval = self.config.keepalive_interval;
        let due = self.pending.as_mut().and_then(|p| match p.next_keepalive {
            Some(at) if now >= at => {
                p.next_keepalive = now.checked_add(interval);
                Some((p.id.cid, p.status))
            }
            _ => None,
        });
        if let Some((cid, status)) = due {
            self.send(cid, Command::Keepalive, &[status.code()]);
        }
    }

    /// When [`Device::poll`] next has something to do, if ever.
    pub fn next_deadline(&self) -> Option<Instant> {
        let reassembly = self.reassembler.in_progress().and(self.reassembly_deadline);
        let keepalive = self.pending.as_ref().and_then(|p| p.next_keepalive);
        match (reassembly, keepalive) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The reports to write to the host, in order, leaving none queued.
    pub fn take_outgoing(&mut self) -> Vec<Report> {
        self.outgoing.drain(..).collect()
    }

    /// Whether reports are waiting for [`Device::take_outgoing`].
    pub fn has_outgoing(&self) -> bool {
        !self.outgoing.is_empty()
    }

    /// The outstanding CTAP2 request, if any.
    pub fn pending_request(&self) -> Option<RequestId> {
        self.pending.as_ref().map(|p| p.id)
    }

    /// Whether a channel is currently allocated.
    pub fn is_allocated(&self, cid: Cid) -> bool {
        self.channels.contains(&cid)
    }

    fn allocate(&mut self) -> Cid {
        // At most `channels.len() + 2` candidates are taken, so this ends.
        let cid = loop {
            let candidate = Cid(self.next_cid);
            self.next_cid = self.next_cid.wrapping_add(1);
            if candidate.is_allocatable() && !self.is_allocated(candidate) {
                break candidate;
            }
        };
        while self.channels.len() >= self.config.max_channels.max(1) {
            self.channels.pop_front();
        }
        self.channels.push_back(cid);
        cid
    }

    fn abort_reassembly(&mut self) {
        self.reassembler.reset();
        self.reassembly_deadline = None;
    }

    fn send_error(&mut self, cid: Cid, error: ErrorCode) {
        self.send(cid, Command::Error, &[error.code()]);
    }

    fn send(&mut self, cid: Cid, cmd: Command, payload: &[u8]) {
        // Payloads built here are at most 17 bytes or an echo of a message that
        // already fitted, so fragmenting cannot fail; if it did, saying "other" beats
        // saying nothing.
        match fragment(cid, cmd, payload) {
            Ok(reports) => self.outgoing.extend(reports),
            Err(_) => {
                if let Ok(reports) = fragment(cid, Command::Error, &[ErrorCode::Other.code()]) {
                    self.outgoing.extend(reports);
                }
            }
        }
    }
}
