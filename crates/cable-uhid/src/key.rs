//! The virtual key: a uhid device, the CTAPHID state machine and the application behind
//! it, tied together by an I/O loop on two threads.

use std::io::{self, Read, Write};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

use cable_ctaphid::{
    Config, Device, DeviceInfo, Event, KeepaliveStatus, RequestId, RespondError, REPORT_LEN,
};
use thiserror::Error;

use crate::descriptor::FIDO_REPORT_DESCRIPTOR;
use crate::event::{
    Create2, DecodeError, EncodeError, KernelEvent, ReportType, UserEvent, BUS_USB, EIO, EVENT_SIZE,
};
use crate::info::get_info_response;

/// authenticatorGetInfo, answered by the key itself.
pub const CTAP2_GET_INFO: u8 = 0x04;
/// CTAP1_ERR_INVALID_LENGTH: a getInfo with parameters (it takes none).
pub const CTAP1_ERR_INVALID_LENGTH: u8 = 0x03;
/// CTAP1_ERR_OTHER: what a request gets whose [`Reply`] was dropped unanswered, or whose
/// answer could not be sent.
pub const CTAP1_ERR_OTHER: u8 = 0x7f;

/// How the key shows itself to the computer.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct KeyConfig {
    /// The HID name (`HID_NAME`, what `fido2-token -L` and browsers show).
    pub name: String,
    /// The HID physical path.
    pub phys: String,
    /// The HID unique id (a serial number); empty for none.
    pub uniq: String,
    /// USB vendor id.
    pub vendor: u32,
    /// USB product id.
    pub product: u32,
    /// Device version (HID and, as major.minor.build, CTAPHID INIT).
    pub version: DeviceInfo,
    /// CTAPHID timings.
    pub ctaphid: Config,
}

/// `0x1209`, the vendor id of pid.codes (open-source hardware).
pub const DEFAULT_VENDOR: u32 = 0x1209;
/// `0x0001`, pid.codes' test product id: this key has no product id of its own yet.
pub const DEFAULT_PRODUCT: u32 = 0x0001;

impl Default for KeyConfig {
    fn default() -> KeyConfig {
        KeyConfig {
            name: "cable hybrid key".into(),
            phys: "cable-uhid".into(),
            uniq: String::new(),
            vendor: DEFAULT_VENDOR,
            product: DEFAULT_PRODUCT,
            version: DeviceInfo::new(0, 1, 0),
            ctaphid: Config::default(),
        }
    }
}

impl KeyConfig {
    /// The CREATE2 event of this key.
    pub fn create2(&self) -> Create2 {
        let v = &self.version;
        Create2 {
            name: self.name.clone(),
            phys: self.phys.clone(),
            uniq: self.uniq.clone(),
            bus: BUS_USB,
            vendor: self.vendor,
            product: self.product,
            version: u32::from(v.major) << 16 | u32::from(v.minor) << 8 | u32::from(v.build),
            country: 0,
            descriptor: FIDO_REPORT_DESCRIPTOR.to_vec(),
        }
    }
}

/// A CTAP2 request for the application: every command but authenticatorGetInfo.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct CtapRequest {
    /// The CTAP2 command byte (0x01 makeCredential, 0x02 getAssertion, …).
    pub command: u8,
    /// Its CBOR parameters, possibly empty, exactly as the host sent them.
    pub params: Vec<u8>,
}

/// Why a request the application holds is over without an answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AbortReason {
    /// The host resynchronised the channel (CTAPHID_INIT): it forgot the request.
    Resynchronised,
    /// The last program that had the key open closed it: nobody will read an answer.
    Closed,
}

/// What the key passes on. Its methods run on the key's loop thread and must return
/// quickly: long work (a hybrid ceremony) goes elsewhere and answers through its
/// [`Reply`], from any thread.
pub trait Application: Send + 'static {
    /// A CTAP2 request. The key sends keepalives until `reply` is used; a reply dropped
    /// unanswered answers [`CTAP1_ERR_OTHER`] so that the host is not left waiting.
    fn request(&mut self, request: CtapRequest, reply: Reply);

    /// The host sent CTAPHID_CANCEL for request `id`: stop it, then answer it with
    /// [`Reply::cancelled`] (or with its real answer if it finished anyway).
    fn cancel(&mut self, id: RequestId) {
        let _ = id;
    }

    /// Request `id` is over: stop working on it; its [`Reply`] now goes nowhere.
    fn abort(&mut self, id: RequestId, reason: AbortReason) {
        let _ = (id, reason);
    }

    /// CTAPHID_WINK (already answered): show which key this is, if there is a way.
    fn wink(&mut self) {}

    /// A program opened the key (`true`) or the last one closed it (`false`).
    fn open_changed(&mut self, open: bool) {
        let _ = open;
    }
}

enum Msg {
    Kernel(KernelEvent),
    Malformed(DecodeError),
    KernelGone,
    ReadFailed(io::Error),
    Answer {
        id: RequestId,
        response: Vec<u8>,
    },
    Keepalive {
        id: RequestId,
        status: KeepaliveStatus,
    },
    Shutdown,
}

/// The answer to one [`CtapRequest`]; [`Send`], so that the work can happen anywhere.
#[derive(Debug)]
pub struct Reply {
    id: RequestId,
    to_key: Option<Sender<Msg>>,
}

impl Reply {
    /// The request this answers.
    pub fn id(&self) -> RequestId {
        self.id
    }

    /// CTAP2_OK and the response's CBOR (empty for commands that return nothing).
    pub fn success(self, cbor: &[u8]) {
        let mut response = Vec::with_capacity(1 + cbor.len());
        response.push(0x00);
        response.extend_from_slice(cbor);
        self.send(response);
    }

    /// A CTAP2 error status, without CBOR.
    pub fn error(self, status: u8) {
        self.send(vec![status]);
    }

    /// CTAP2_ERR_KEEPALIVE_CANCEL, for a request stopped by [`Application::cancel`].
    pub fn cancelled(self) {
        self.error(cable_ctaphid::CTAP2_ERR_KEEPALIVE_CANCEL);
    }

    /// A whole CTAP2 response as the phone gave it (status byte, then CBOR). An empty
    /// one, or one longer than a CTAPHID message, is answered [`CTAP1_ERR_OTHER`].
    pub fn raw(self, response: Vec<u8>) {
        self.send(response);
    }

    /// What the keepalives say from now on: [`KeepaliveStatus::UpNeeded`] while the
    /// person at the phone has to act, so that the host can tell them.
    pub fn keepalive(&self, status: KeepaliveStatus) {
        if let Some(tx) = &self.to_key {
            let _ = tx.send(Msg::Keepalive {
                id: self.id,
                status,
            });
        }
    }

    fn send(mut self, response: Vec<u8>) {
        if let Some(tx) = self.to_key.take() {
            // A key that has gone away has nobody to answer.
            let _ = tx.send(Msg::Answer {
                id: self.id,
                response,
            });
        }
    }
}

impl Drop for Reply {
    fn drop(&mut self) {
        if let Some(tx) = self.to_key.take() {
            let _ = tx.send(Msg::Answer {
                id: self.id,
                response: vec![CTAP1_ERR_OTHER],
            });
        }
    }
}

/// Why the key could not be created, or stopped.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The configuration does not fit in a CREATE2 event.
    #[error("invalid key configuration: {0}")]
    Config(#[from] EncodeError),
    /// Writing CREATE2 failed (no permission on `/dev/uhid`, or a device already created
    /// on this handle).
    #[error("cannot create the uhid device: {0}")]
    Create(#[source] io::Error),
    /// Writing an event failed.
    #[error("cannot write to the uhid device: {0}")]
    Write(#[source] io::Error),
    /// Reading an event failed.
    #[error("cannot read from the uhid device: {0}")]
    Read(#[source] io::Error),
    /// A thread of the key could not be started.
    #[error("cannot start the key's threads: {0}")]
    Spawn(#[source] io::Error),
    /// The loop thread panicked (a bug, or a panicking [`Application`]).
    #[error("the key's loop thread panicked")]
    Panicked,
}

/// A FIDO security key on a uhid device handle: `/dev/uhid` opened read-write, or a fake
/// kernel in tests (anything whose shared reference reads and writes whole events, such
/// as a `SOCK_SEQPACKET` [`std::os::unix::net::UnixStream`]).
///
/// [`VirtualKey::create`] writes CREATE2 and starts two threads: one blocks reading the
/// kernel's events, the other owns the CTAPHID [`Device`] and the [`Application`], writes
/// input reports and wakes for keepalives and timeouts. authenticatorGetInfo is
/// answered at once from [`crate::info`]; every other CTAP2 command goes to the
/// application. Dropping the key (or [`VirtualKey::destroy`]) writes DESTROY.
#[derive(Debug)]
pub struct VirtualKey {
    to_loop: Sender<Msg>,
    thread: Option<JoinHandle<Result<(), KeyError>>>,
}

impl VirtualKey {
    /// Creates the device on `handle` and starts serving it with `app`.
    pub fn create<H, A>(handle: H, config: KeyConfig, app: A) -> Result<VirtualKey, KeyError>
    where
        H: Send + Sync + 'static,
        for<'a> &'a H: Read + Write,
        A: Application,
    {
        let create = UserEvent::Create2(config.create2()).encode()?;
        let handle = Arc::new(handle);
        (&*handle).write_all(&create).map_err(KeyError::Create)?;

        let (to_loop, from_all) = mpsc::channel();
        let reader = {
            let handle = Arc::clone(&handle);
            let to_loop = to_loop.clone();
            std::thread::Builder::new()
                .name("uhid-read".into())
                .spawn(move || read_events(&*handle, &to_loop))
        };
        if let Err(e) = reader {
            let _ = write_event(&*handle, &UserEvent::Destroy);
            return Err(KeyError::Spawn(e));
        }
        let device = Device::with_config(config.version.clone(), config.ctaphid.clone());
        let key_loop = KeyLoop {
            device,
            open: false,
            app,
            to_loop: to_loop.clone(),
            from_all,
        };
        let writer = Arc::clone(&handle);
        let thread = std::thread::Builder::new()
            .name("uhid-key".into())
            .spawn(move || {
                // `run` drops the loop's receiver, so the reader lets go of the handle at
                // the next event it reads: the STOP that DESTROY provokes.
                let result = key_loop.run(&*writer);
                let destroyed = write_event(&*writer, &UserEvent::Destroy);
                result.and(destroyed.or_else(ignore_gone_device))
            });
        match thread {
            Ok(thread) => Ok(VirtualKey {
                to_loop,
                thread: Some(thread),
            }),
            Err(e) => {
                let _ = write_event(&*handle, &UserEvent::Destroy);
                Err(KeyError::Spawn(e))
            }
        }
    }

    /// Waits until the device is gone on the kernel's side (end of file) or fails.
    pub fn wait(mut self) -> Result<(), KeyError> {
        self.join()
    }

    /// Destroys the device and waits for the loop to end; what dropping the key does,
    /// with the error.
    pub fn destroy(mut self) -> Result<(), KeyError> {
        let _ = self.to_loop.send(Msg::Shutdown);
        self.join()
    }

    /// Whether the loop has ended (the device is gone or failed).
    pub fn is_finished(&self) -> bool {
        self.thread.as_ref().is_none_or(JoinHandle::is_finished)
    }

    fn join(&mut self) -> Result<(), KeyError> {
        match self.thread.take() {
            Some(thread) => thread.join().map_err(|_| KeyError::Panicked)?,
            None => Ok(()),
        }
    }
}

impl Drop for VirtualKey {
    fn drop(&mut self) {
        let _ = self.to_loop.send(Msg::Shutdown);
        if let Err(e) = self.join() {
            tracing::warn!(error = %e, "the virtual key ended with an error");
        }
    }
}

/// DESTROY after the kernel side went away cannot and need not succeed.
fn ignore_gone_device(e: KeyError) -> Result<(), KeyError> {
    match e {
        KeyError::Write(ref io)
            if matches!(
                io.kind(),
                io::ErrorKind::BrokenPipe | io::ErrorKind::NotConnected
            ) =>
        {
            Ok(())
        }
        // The kernel answers DESTROY of a device that is already gone with EINVAL.
        KeyError::Write(ref io) if io.kind() == io::ErrorKind::InvalidInput => Ok(()),
        e => Err(e),
    }
}

fn write_event<W: Write>(mut handle: W, event: &UserEvent) -> Result<(), KeyError> {
    let bytes = event.encode()?;
    // One write(2) is one event for the kernel, which takes it whole or fails.
    handle.write_all(&bytes).map_err(KeyError::Write)
}

fn read_events<R: Read + Copy>(handle: R, to_loop: &Sender<Msg>) {
    let mut buf = vec![0u8; EVENT_SIZE];
    loop {
        let mut handle = handle;
        // One read(2) is one whole event: never assemble one from several reads, or a
        // short event would swallow the start of the next.
        let msg = match handle.read(&mut buf) {
            Ok(0) => Msg::KernelGone,
            Ok(n) => match KernelEvent::decode(&buf[..n]) {
                Ok(event) => Msg::Kernel(event),
                Err(e) => Msg::Malformed(e),
            },
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => Msg::ReadFailed(e),
        };
        let last = matches!(msg, Msg::KernelGone | Msg::ReadFailed(_));
        // A send fails once the loop has ended: nobody needs events any more.
        if to_loop.send(msg).is_err() || last {
            return;
        }
    }
}

struct KeyLoop<A> {
    device: Device,
    /// Whether a program has the device open. Reports made while nobody has it open (the
    /// answer to a request cut off by CLOSE, a timeout of a half-sent message) would
    /// reach nobody, so they are dropped rather than written.
    open: bool,
    app: A,
    to_loop: Sender<Msg>,
    from_all: Receiver<Msg>,
}

impl<A: Application> KeyLoop<A> {
    fn run<W>(mut self, writer: W) -> Result<(), KeyError>
    where
        W: Write + Copy,
    {
        loop {
            let msg = match self.device.next_deadline() {
                Some(deadline) => {
                    let wait = deadline.saturating_duration_since(Instant::now());
                    match self.from_all.recv_timeout(wait) {
                        Ok(msg) => Some(msg),
                        Err(RecvTimeoutError::Timeout) => None,
                        // The loop holds a sender itself, so this cannot happen.
                        Err(RecvTimeoutError::Disconnected) => return Ok(()),
                    }
                }
                None => match self.from_all.recv() {
                    Ok(msg) => Some(msg),
                    Err(_) => return Ok(()),
                },
            };
            let now = Instant::now();
            if let Some(msg) = msg {
                match msg {
                    Msg::Kernel(event) => self.on_kernel(event, writer, now)?,
                    Msg::Malformed(e) => {
                        tracing::warn!(error = %e, "ignoring a malformed uhid event");
                    }
                    Msg::KernelGone => return Ok(()),
                    Msg::ReadFailed(e) => return Err(KeyError::Read(e)),
                    Msg::Answer { id, response } => self.answer(id, &response),
                    Msg::Keepalive { id, status } => {
                        // A keepalive for a request already answered or aborted is moot.
                        let _ = self.device.set_keepalive_status(id, status, now);
                    }
                    Msg::Shutdown => return Ok(()),
                }
            }
            self.device.poll(now);
            let reports = self.device.take_outgoing();
            if !self.open {
                continue;
            }
            for report in reports {
                write_event(
                    writer,
                    &UserEvent::Input2 {
                        data: report.to_vec(),
                    },
                )?;
            }
        }
    }

    fn on_kernel<W>(&mut self, event: KernelEvent, writer: W, now: Instant) -> Result<(), KeyError>
    where
        W: Write + Copy,
    {
        match event {
            KernelEvent::Start { dev_flags } => tracing::debug!(dev_flags, "uhid device started"),
            KernelEvent::Stop => tracing::debug!("uhid device stopped"),
            KernelEvent::Open => {
                self.open = true;
                self.app.open_changed(true);
            }
            KernelEvent::Close => {
                self.open = false;
                // Nobody reads the answer any more: free the device for the next program
                // and tell the application to stop.
                if let Some(id) = self.device.pending_request() {
                    let _ = self.device.confirm_cancel(id);
                    self.app.abort(id, AbortReason::Closed);
                }
                self.app.open_changed(false);
            }
            KernelEvent::Output { data, report_type } => {
                if report_type != ReportType::Output {
                    tracing::debug!(?report_type, "ignoring a non-output report");
                    return Ok(());
                }
                let Some(report) = strip_report_number(&data) else {
                    tracing::debug!(len = data.len(), "ignoring an output report of odd size");
                    return Ok(());
                };
                // Only an open device gets output reports; should OPEN ever go missing,
                // the report proves the device open all the same.
                self.open = true;
                match self.device.receive(report, now) {
                    Ok(events) => {
                        for event in events {
                            self.on_ctaphid(event);
                        }
                    }
                    Err(e) => tracing::debug!(error = %e, "ignoring an output report"),
                }
            }
            // A FIDO key has no feature reports; say so, or the caller waits for the
            // kernel's timeout.
            KernelEvent::GetReport { id, .. } => write_event(
                writer,
                &UserEvent::GetReportReply {
                    id,
                    err: EIO,
                    data: Vec::new(),
                },
            )?,
            KernelEvent::SetReport { id, .. } => {
                write_event(writer, &UserEvent::SetReportReply { id, err: EIO })?
            }
        }
        Ok(())
    }

    fn on_ctaphid(&mut self, event: Event) {
        match event {
            Event::Cbor { id, request } => {
                let Some((&command, params)) = request.split_first() else {
                    // cable-ctaphid never hands out an empty request.
                    self.answer(id, &[CTAP1_ERR_INVALID_LENGTH]);
                    return;
                };
                if command == CTAP2_GET_INFO {
                    if params.is_empty() {
                        self.answer(id, &get_info_response());
                    } else {
                        self.answer(id, &[CTAP1_ERR_INVALID_LENGTH]);
                    }
                    return;
                }
                let reply = Reply {
                    id,
                    to_key: Some(self.to_loop.clone()),
                };
                self.app.request(
                    CtapRequest {
                        command,
                        params: params.to_vec(),
                    },
                    reply,
                );
            }
            Event::Cancel { id } => self.app.cancel(id),
            Event::Aborted { id } => self.app.abort(id, AbortReason::Resynchronised),
            Event::Wink { .. } => self.app.wink(),
            _ => {}
        }
    }

    fn answer(&mut self, id: RequestId, response: &[u8]) {
        match self.device.respond_cbor(id, response) {
            Ok(()) => {}
            // Aborted or closed meanwhile: the host has forgotten the request.
            Err(RespondError::NotPending(_)) => {}
            Err(e) => {
                tracing::warn!(error = %e, "answering a request with CTAP1_ERR_OTHER instead");
                let _ = self.device.respond_cbor(id, &[CTAP1_ERR_OTHER]);
            }
        }
    }
}

/// The 64-byte CTAPHID report in an OUTPUT event. A hidraw writer puts the report number
/// first (0 for a device without report IDs) and uhid passes it on, so 65 bytes starting
/// with 0 are a report too.
fn strip_report_number(data: &[u8]) -> Option<&[u8]> {
    match data.len() {
        REPORT_LEN => Some(data),
        n if n == REPORT_LEN + 1 && data[0] == 0 => Some(&data[1..]),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_number_is_stripped() {
        let mut with_number = vec![0u8; 65];
        with_number[1] = 0xff;
        assert_eq!(strip_report_number(&with_number).map(|r| r[0]), Some(0xff));
        assert_eq!(strip_report_number(&[7u8; 64]).map(<[u8]>::len), Some(64));
        let mut numbered = vec![0u8; 65];
        numbered[0] = 1;
        assert_eq!(strip_report_number(&numbered), None);
        assert_eq!(strip_report_number(&[0u8; 63]), None);
        assert_eq!(strip_report_number(&[]), None);
    }

    #[test]
    fn create2_of_the_default_config() {
        let c = KeyConfig::default().create2();
        assert_eq!(c.bus, BUS_USB);
        assert_eq!(c.descriptor, FIDO_REPORT_DESCRIPTOR);
        assert_eq!(c.version, 0x00_01_00);
        assert!(UserEvent::Create2(c).encode().is_ok());
    }
}
