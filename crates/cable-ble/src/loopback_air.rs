//! A loopback air between processes: adverts travel as small files in a shared directory,
//! so that two programs on one machine (`cable register` and `cable phone`) meet without
//! Bluetooth.
//!
//! Files rather than a socket or a daemon: every process that can see the directory takes
//! part, nobody has to start first, and an advertiser that crashes leaves only a file that
//! goes stale. Each advert is one `<name>.advert` file holding `<service uuid> <hex data>`,
//! written atomically (temporary file, then rename) and rewritten every refresh interval so
//! that its modification time says it is alive. Scanners poll the directory and report every
//! fresh, well-formed file on each poll, the way a phone repeats its advert.

use std::ffi::OsString;
use std::fmt;
use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures_util::future::BoxFuture;
use uuid::Uuid;

use crate::{
    AdvertGuard, AdvertStream, Advertiser, BleError, CableServiceUuid, ReceivedAdvert, Scanner,
    ADVERT_LEN,
};

/// Environment variable naming the directory of the loopback air.
pub const AIR_DIR_ENV: &str = "CABLE_AIR_DIR";
/// How often an advertiser rewrites its file unless configured otherwise.
pub const DEFAULT_REFRESH_INTERVAL: Duration = Duration::from_secs(1);
/// How often a scanner lists the directory unless configured otherwise.
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_millis(100);
/// Files not rewritten for longer than this are ignored: their advertiser is gone.
pub const DEFAULT_STALE_AFTER: Duration = Duration::from_secs(5);

const ADVERT_EXTENSION: &str = ".advert";
const TEMP_EXTENSION: &str = ".tmp";
/// An advert file is about 80 bytes; anything much larger is not one of ours.
const MAX_ADVERT_FILE: u64 = 1024;

/// Tells advert files of one process apart.
static NEXT_ADVERT: AtomicU64 = AtomicU64::new(1);

/// A simulated radio shared by every process that uses the same directory.
///
/// It is both a [`Scanner`] and an [`Advertiser`] and mirrors [`crate::Air`]: adverts repeat
/// until their guard is stopped or dropped, a scanner that starts late still sees the adverts
/// that are on the air, dropping the stream ends the scan, and scanners accept only what the
/// real backends accept (FFF9 or FDE2, at least 20 bytes). Malformed or stale files are
/// skipped, never reported as errors: like a radio, the directory is shared with strangers.
#[derive(Clone)]
pub struct LoopbackAir {
    dir: PathBuf,
    refresh: Duration,
    poll: Duration,
    stale_after: Duration,
}

impl LoopbackAir {
    /// The air in `dir` (created on first use), with the default intervals.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        LoopbackAir {
            dir: dir.into(),
            refresh: DEFAULT_REFRESH_INTERVAL,
            poll: DEFAULT_POLL_INTERVAL,
            stale_after: DEFAULT_STALE_AFTER,
        }
    }

    /// The air in [`LoopbackAir::default_dir`].
    pub fn from_env() -> Self {
        Self::new(Self::default_dir())
    }

    /// `$CABLE_AIR_DIR` if set, else `$XDG_RUNTIME_DIR/cable-air`, else
    /// `<temp dir>/cable-air-<uid>`: one air per user unless told otherwise.
    pub fn default_dir() -> PathBuf {
        default_dir_with(|name| std::env::var_os(name))
    }

    /// Sets how often adverts are rewritten, how often scanners look, and after how long
    /// without a rewrite an advert counts as gone (each at least 1 ms). `stale_after` should
    /// be several refresh intervals, or live adverts flicker.
    pub fn with_intervals(
        mut self,
        refresh: Duration,
        poll: Duration,
        stale_after: Duration,
    ) -> Self {
        let min = Duration::from_millis(1);
        self.refresh = refresh.max(min);
        self.poll = poll.max(min);
        self.stale_after = stale_after.max(min);
        self
    }

    /// The directory that carries the adverts.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Creates the directory now (scanning and advertising do it anyway), so that a caller
    /// can report an unusable directory before it shows a QR code or opens a tunnel.
    pub fn prepare(&self) -> Result<(), BleError> {
        create_dir(&self.dir)
    }

    /// Puts arbitrary service data under any UUID on the air until the guard goes. Meant for
    /// tests of what scanners and clients ignore (other UUIDs, wrong lengths).
    pub async fn advertise_raw(
        &self,
        service_uuid: Uuid,
        service_data: Vec<u8>,
    ) -> Result<AdvertGuard, BleError> {
        let file = Arc::new(AdvertFile::new(&self.dir, service_uuid, &service_data));
        let air = self.clone();
        let first = file.clone();
        blocking(move || {
            create_dir(&air.dir)?;
            first.write()?;
            air.sweep_stale();
            Ok(())
        })
        .await?;

        let (guard, mut control) = AdvertGuard::new();
        let refresh = self.refresh;
        tokio::spawn(async move {
            // `file` lives in this task: if the runtime drops the task, the file goes with it.
            loop {
                tokio::select! {
                    _ = control.stop_requested() => break,
                    _ = tokio::time::sleep(refresh) => {
                        let again = file.clone();
                        match blocking(move || again.write()).await {
                            Ok(()) => {}
                            // Keep going: the directory may come back; scanners meanwhile
                            // see the advert go stale, as with a phone out of range.
                            Err(e) => tracing::warn!(error = &e as &dyn std::error::Error, "cannot refresh loopback advert"),
                        }
                    }
                }
            }
            let result = blocking(move || file.remove()).await;
            control.finish(result);
        });
        Ok(guard)
    }

    /// Every fresh, well-formed caBLE advert in the directory right now.
    fn read_adverts(&self) -> Result<Vec<ReceivedAdvert>, BleError> {
        let entries = match fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            // Removed while scanning: nothing is on the air.
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => {
                return Err(BleError::AirDirectory {
                    path: self.dir.clone(),
                    source,
                })
            }
        };
        let now = SystemTime::now();
        let mut adverts: Vec<ReceivedAdvert> = entries
            .flatten()
            .filter_map(|entry| {
                let name = entry.file_name();
                let stem = advert_stem(name.to_str()?)?.to_owned();
                self.read_advert(&entry.path(), &stem, now)
            })
            .collect();
        // Listing order is up to the file system; a stable order makes logs comparable.
        adverts.sort_by(|a, b| a.peer_address.cmp(&b.peer_address));
        Ok(adverts)
    }

    fn read_advert(&self, path: &Path, stem: &str, now: SystemTime) -> Option<ReceivedAdvert> {
        let file = fs::File::open(path).ok()?;
        let meta = file.metadata().ok()?;
        if !meta.is_file() || meta.len() > MAX_ADVERT_FILE || self.is_stale(&meta, now) {
            return None;
        }
        let mut text = String::new();
        file.take(MAX_ADVERT_FILE).read_to_string(&mut text).ok()?;
        let (uuid, data) = parse_advert_file(&text)?;
        ReceivedAdvert::from_service_data(&uuid, &data)
            .map(|a| a.with_peer(Some(format!("loopback:{stem}")), None))
    }

    fn is_stale(&self, meta: &fs::Metadata, now: SystemTime) -> bool {
        match meta.modified() {
            // A file from the future (clock stepped back) counts as fresh: harmless.
            Ok(modified) => now
                .duration_since(modified)
                .is_ok_and(|age| age > self.stale_after),
            Err(_) => true,
        }
    }

    /// Removes adverts and half-written files left by advertisers that died; scanners ignore
    /// them anyway, this only keeps the directory small. Best effort.
    fn sweep_stale(&self) {
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return;
        };
        let now = SystemTime::now();
        for entry in entries.flatten() {
            let name = entry.file_name();
            let ours = name.to_str().is_some_and(|n| {
                n.ends_with(ADVERT_EXTENSION) || (n.starts_with('.') && n.ends_with(TEMP_EXTENSION))
            });
            let stale = entry
                .metadata()
                .is_ok_and(|m| m.is_file() && self.is_stale(&m, now));
            if ours && stale {
                let _ = fs::remove_file(entry.path());
            }
        }
    }
}

impl fmt::Debug for LoopbackAir {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoopbackAir")
            .field("dir", &self.dir)
            .field("refresh", &self.refresh)
            .field("poll", &self.poll)
            .field("stale_after", &self.stale_after)
            .finish()
    }
}

impl Scanner for LoopbackAir {
    fn start_scan(&self) -> BoxFuture<'_, Result<AdvertStream, BleError>> {
        Box::pin(async move {
            let air = self.clone();
            let dir = self.dir.clone();
            blocking(move || create_dir(&dir)).await?;
            let (feed, stream) = AdvertStream::channel(64);
            tokio::spawn(async move {
                loop {
                    let looking = air.clone();
                    let adverts = match blocking(move || looking.read_adverts()).await {
                        Ok(adverts) => adverts,
                        Err(e) => return feed.fail(e).await,
                    };
                    for advert in adverts {
                        if feed.send(advert).await.is_err() {
                            return;
                        }
                    }
                    tokio::select! {
                        _ = feed.stopped() => return,
                        _ = tokio::time::sleep(air.poll) => {}
                    }
                }
            });
            Ok(stream)
        })
    }
}

impl Advertiser for LoopbackAir {
    fn start_advertising(
        &self,
        payload: [u8; ADVERT_LEN],
    ) -> BoxFuture<'_, Result<AdvertGuard, BleError>> {
        Box::pin(self.advertise_raw(CableServiceUuid::Fido.uuid(), payload.to_vec()))
    }
}

/// One advert's file; removed (best effort) when the last handle goes.
#[derive(Debug)]
struct AdvertFile {
    path: PathBuf,
    temp: PathBuf,
    contents: String,
}

impl AdvertFile {
    fn new(dir: &Path, uuid: Uuid, data: &[u8]) -> Self {
        let nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let name = format!(
            "{}-{}-{nanos:08x}",
            std::process::id(),
            NEXT_ADVERT.fetch_add(1, Ordering::Relaxed)
        );
        AdvertFile {
            path: dir.join(format!("{name}{ADVERT_EXTENSION}")),
            temp: dir.join(format!(".{name}{TEMP_EXTENSION}")),
            contents: format_advert_file(uuid, data),
        }
    }

    /// Writes (or rewrites) the file so that a reader sees either the whole advert or none.
    fn write(&self) -> Result<(), BleError> {
        let fail = |source| BleError::AirDirectory {
            path: self.path.clone(),
            source,
        };
        let mut temp = fs::File::create(&self.temp).map_err(fail)?;
        temp.write_all(self.contents.as_bytes()).map_err(fail)?;
        drop(temp);
        fs::rename(&self.temp, &self.path).map_err(fail)
    }

    fn remove(&self) -> Result<(), BleError> {
        let _ = fs::remove_file(&self.temp);
        match fs::remove_file(&self.path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(BleError::AirDirectory {
                path: self.path.clone(),
                source,
            }),
        }
    }
}

impl Drop for AdvertFile {
    fn drop(&mut self) {
        let _ = self.remove();
    }
}

/// `<uuid> <hex>` and a newline.
fn format_advert_file(uuid: Uuid, data: &[u8]) -> String {
    format!("{} {}\n", uuid.hyphenated(), hex::encode(data))
}

/// The inverse of [`format_advert_file`]; `None` for anything else.
fn parse_advert_file(text: &str) -> Option<(Uuid, Vec<u8>)> {
    let mut words = text.split_ascii_whitespace();
    let uuid = Uuid::parse_str(words.next()?).ok()?;
    let data = hex::decode(words.next()?).ok()?;
    words.next().is_none().then_some((uuid, data))
}

/// The name of an advert file without its extension; `None` for other files (temporary
/// files start with a dot).
fn advert_stem(file_name: &str) -> Option<&str> {
    let stem = file_name.strip_suffix(ADVERT_EXTENSION)?;
    (!stem.is_empty() && !stem.starts_with('.')).then_some(stem)
}

fn create_dir(dir: &Path) -> Result<(), BleError> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        // Only this user's processes need to take part.
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder
        .create(dir)
        .map_err(|source| BleError::AirDirectory {
            path: dir.to_owned(),
            source,
        })
}

/// Runs file-system work off the async threads.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, BleError> + Send + 'static,
) -> Result<T, BleError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| BleError::backend("loopback air file access", e))?
}

fn default_dir_with(var: impl Fn(&str) -> Option<OsString>) -> PathBuf {
    let set = |name| var(name).filter(|v| !v.is_empty());
    if let Some(dir) = set(AIR_DIR_ENV) {
        return dir.into();
    }
    if let Some(runtime) = set("XDG_RUNTIME_DIR") {
        return PathBuf::from(runtime).join("cable-air");
    }
    let user = user_tag().or_else(|| set("USER").and_then(|u| u.into_string().ok()));
    std::env::temp_dir().join(match user {
        Some(user) => format!("cable-air-{user}"),
        None => "cable-air".to_owned(),
    })
}

/// The numeric user id where the system tells it without a C call.
fn user_tag() -> Option<String> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        fs::metadata("/proc/self").ok().map(|m| m.uid().to_string())
    }
    #[cfg(not(unix))]
    {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::time::timeout;

    const T: Duration = Duration::from_secs(5);

    /// A fresh directory under the system's temp dir, removed when dropped.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(tag: &str) -> TempDir {
            let dir = std::env::temp_dir().join(format!(
                "cable-ble-loopback-{tag}-{}-{}",
                std::process::id(),
                NEXT_ADVERT.fetch_add(1, Ordering::Relaxed)
            ));
            let _ = fs::remove_dir_all(&dir);
            TempDir(dir)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn fast(dir: &Path) -> LoopbackAir {
        LoopbackAir::new(dir).with_intervals(
            Duration::from_millis(20),
            Duration::from_millis(10),
            Duration::from_secs(2),
        )
    }

    fn advert_files(dir: &Path) -> Vec<String> {
        fs::read_dir(dir)
            .map(|entries| {
                entries
                    .flatten()
                    .filter_map(|e| e.file_name().into_string().ok())
                    .filter(|n| n.ends_with(ADVERT_EXTENSION))
                    .collect()
            })
            .unwrap_or_default()
    }

    async fn next(scan: &mut AdvertStream) -> ReceivedAdvert {
        timeout(T, scan.next_advert())
            .await
            .expect("an advert in time")
            .expect("scan still open")
            .expect("no scan error")
    }

    async fn until(what: &str, mut done: impl FnMut() -> bool) {
        timeout(T, async {
            while !done() {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await
        .unwrap_or_else(|_| panic!("{what} within {T:?}"));
    }

    #[tokio::test]
    async fn two_instances_on_one_directory_hear_each_other() {
        let dir = TempDir::new("pair");
        let phone = fast(&dir.0);
        let computer = fast(&dir.0);
        let mut scan = computer.start_scan().await.expect("scan");
        let guard = phone.start_advertising([7; 20]).await.expect("advertise");
        for _ in 0..3 {
            let a = next(&mut scan).await;
            assert_eq!(a.payload(), [7; 20]);
            assert_eq!(a.service(), CableServiceUuid::Fido);
            assert!(a.suffix().is_empty());
            assert!(a.peer_address.is_some_and(|p| p.starts_with("loopback:")));
        }
        guard.stop().await.expect("stop");
        timeout(T, scan.stop()).await.expect("scan task ended");
    }

    #[tokio::test]
    async fn stopping_or_dropping_the_guard_removes_the_file() {
        let dir = TempDir::new("stop");
        let air = fast(&dir.0);
        let guard = air.start_advertising([1; 20]).await.expect("advertise");
        assert_eq!(advert_files(&dir.0).len(), 1);
        guard.stop().await.expect("stop");
        assert!(advert_files(&dir.0).is_empty());

        let guard = air.start_advertising([2; 20]).await.expect("advertise");
        assert_eq!(advert_files(&dir.0).len(), 1);
        drop(guard);
        until("the advert file is removed", || {
            advert_files(&dir.0).is_empty()
        })
        .await;
    }

    #[tokio::test]
    async fn late_scanner_sees_an_active_advert_kept_fresh() {
        let dir = TempDir::new("late");
        // Stale after 150 ms, rewritten every 20 ms: only the refresh keeps it visible.
        let air = LoopbackAir::new(&dir.0).with_intervals(
            Duration::from_millis(20),
            Duration::from_millis(10),
            Duration::from_millis(150),
        );
        let _guard = air.start_advertising([3; 20]).await.expect("advertise");
        tokio::time::sleep(Duration::from_millis(500)).await;
        let mut scan = LoopbackAir::new(&dir.0)
            .with_intervals(
                Duration::from_millis(20),
                Duration::from_millis(10),
                Duration::from_millis(150),
            )
            .start_scan()
            .await
            .expect("scan");
        assert_eq!(next(&mut scan).await.payload(), [3; 20]);
    }

    #[tokio::test]
    async fn stale_malformed_and_foreign_files_are_ignored() {
        let dir = TempDir::new("junk");
        let air = fast(&dir.0);
        create_dir(&dir.0).expect("dir");
        let fido = CableServiceUuid::Fido.uuid();
        let write = |name: &str, text: &str| fs::write(dir.0.join(name), text).expect("write");

        // A valid advert from an advertiser that stopped refreshing a minute ago.
        write("stale.advert", &format_advert_file(fido, &[4; 20]));
        fs::File::options()
            .write(true)
            .open(dir.0.join("stale.advert"))
            .expect("open")
            .set_modified(SystemTime::now() - Duration::from_secs(60))
            .expect("backdate");
        write("garbage.advert", "not an advert at all");
        write("badhex.advert", &format!("{fido} zz{}\n", "00".repeat(19)));
        write(
            "extra.advert",
            &format!("{fido} {} more\n", "05".repeat(20)),
        );
        write("short.advert", &format_advert_file(fido, &[6; 19]));
        let other = Uuid::from_u128(0x0000_180f_0000_1000_8000_0080_5f9b_34fb);
        write("other.advert", &format_advert_file(other, &[7; 20]));
        write("huge.advert", &format!("{fido} {}\n", "08".repeat(2000)));
        write("notes.txt", &format_advert_file(fido, &[9; 20]));
        write(".half.advert", &format_advert_file(fido, &[10; 20]));
        fs::create_dir(dir.0.join("folder.advert")).expect("mkdir");

        let mut suffixed = vec![11; 20];
        suffixed.push(0xa0);
        let google = CableServiceUuid::Google.uuid();
        let _guard = air
            .advertise_raw(google, suffixed.clone())
            .await
            .expect("advertise");
        let mut scan = air.start_scan().await.expect("scan");
        // Each poll reports every acceptable file; ten adverts span several polls.
        for _ in 0..10 {
            let a = next(&mut scan).await;
            assert_eq!(a.service(), CableServiceUuid::Google);
            assert_eq!(a.service_data(), suffixed.as_slice());
        }
    }

    #[tokio::test]
    async fn advertising_sweeps_stale_files() {
        let dir = TempDir::new("sweep");
        let air = fast(&dir.0);
        create_dir(&dir.0).expect("dir");
        let old = dir.0.join("crashed.advert");
        fs::write(
            &old,
            format_advert_file(CableServiceUuid::Fido.uuid(), &[1; 20]),
        )
        .expect("w");
        fs::File::options()
            .write(true)
            .open(&old)
            .expect("open")
            .set_modified(SystemTime::now() - Duration::from_secs(60))
            .expect("backdate");
        let _guard = air.start_advertising([2; 20]).await.expect("advertise");
        assert!(!old.exists(), "the crashed advertiser's file is gone");
        assert_eq!(advert_files(&dir.0).len(), 1);
    }

    #[tokio::test]
    async fn an_unusable_directory_is_a_typed_error() {
        let dir = TempDir::new("file");
        create_dir(&dir.0).expect("dir");
        let not_a_dir = dir.0.join("plain-file");
        fs::write(&not_a_dir, "x").expect("write");
        let air = LoopbackAir::new(&not_a_dir);
        assert!(matches!(air.prepare(), Err(BleError::AirDirectory { .. })));
        assert!(matches!(
            air.start_scan().await,
            Err(BleError::AirDirectory { .. })
        ));
        assert!(matches!(
            air.start_advertising([0; 20]).await,
            Err(BleError::AirDirectory { .. })
        ));
    }

    #[tokio::test]
    async fn dropping_the_stream_ends_the_scan() {
        let dir = TempDir::new("drop");
        let air = fast(&dir.0);
        let _guard = air.start_advertising([1; 20]).await.expect("advertise");
        let tasks = || {
            tokio::runtime::Handle::current()
                .metrics()
                .num_alive_tasks()
        };
        let before = tasks();
        let mut scan = air.start_scan().await.expect("scan");
        next(&mut scan).await;
        assert!(tasks() > before, "the scan runs a task");
        drop(scan);
        timeout(T, async {
            while tasks() > before {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await
        .expect("the scan task ended after the stream was dropped");
    }

    #[tokio::test]
    async fn stopping_the_stream_ends_the_scan() {
        let dir = TempDir::new("stop");
        let air = fast(&dir.0);
        let _guard = air.start_advertising([1; 20]).await.expect("advertise");
        let mut scan = air.start_scan().await.expect("scan");
        next(&mut scan).await;
        timeout(T, scan.stop()).await.expect("the scan task ended");
    }

    #[test]
    fn advert_file_round_trips_and_rejects_junk() {
        let uuid = CableServiceUuid::Fido.uuid();
        let text = format_advert_file(uuid, &[0xab; 20]);
        assert_eq!(
            text,
            format!("0000fff9-0000-1000-8000-00805f9b34fb {}\n", "ab".repeat(20))
        );
        assert_eq!(parse_advert_file(&text), Some((uuid, vec![0xab; 20])));
        for junk in [
            "",
            "\n",
            "0000fff9",
            "nope abab",
            "0000fff9-0000-1000-8000-00805f9b34fb a",
        ] {
            assert_eq!(parse_advert_file(junk), None, "{junk:?}");
        }
        assert_eq!(advert_stem("1-2-3.advert"), Some("1-2-3"));
        assert_eq!(advert_stem(".1-2-3.tmp"), None);
        assert_eq!(advert_stem(".x.advert"), None);
        assert_eq!(advert_stem(".advert"), None);
        assert_eq!(advert_stem("x.txt"), None);
    }

    #[test]
    fn default_directory_follows_the_environment() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| OsString::from(v))
            }
        };
        assert_eq!(
            default_dir_with(env(&[
                ("CABLE_AIR_DIR", "/x/air"),
                ("XDG_RUNTIME_DIR", "/run/user/7")
            ])),
            PathBuf::from("/x/air")
        );
        assert_eq!(
            default_dir_with(env(&[
                ("CABLE_AIR_DIR", ""),
                ("XDG_RUNTIME_DIR", "/run/user/7")
            ])),
            PathBuf::from("/run/user/7/cable-air")
        );
        let fallback = default_dir_with(env(&[]));
        assert!(fallback.starts_with(std::env::temp_dir()));
        let name = fallback
            .file_name()
            .and_then(|n| n.to_str())
            .expect("a name");
        assert!(name.starts_with("cable-air"), "{name}");
    }
}
