//! # cable-store: private files for secrets
//!
//! Every file of the workspace that holds key material (the software authenticator's
//! passkeys, a phone's identity, a computer's linked phones) is read and written through
//! this crate, so that each of them gets the same three guarantees:
//!
//! - **Never leaked.** A file is written to a fresh temporary file in the same directory,
//!   with a random name, created exclusively (`O_CREAT | O_EXCL`) with mode 0600 and
//!   without following symbolic links, then renamed over the target. Nothing that already
//!   exists (a world-readable leftover, a symbolic link planted by someone else) is ever
//!   opened for writing. [`read_private`] refuses a file that other users can read or
//!   write, a symbolic link and anything that is not a regular file, with an error that
//!   says in one line how to fix it.
//! - **Never partial.** The temporary file is `fsync`ed before the rename and the
//!   directory after it, so whether the writer is killed or the machine loses power, the
//!   file holds either the old or the new content.
//! - **Never a lost update.** [`lock`] takes an exclusive advisory lock (`flock`) on a
//!   sibling `<name>.lock` file; a read-modify-write done under it ([`Locked::read`],
//!   then [`Locked::write`]) cannot overwrite what another process wrote in between.
//!
//! What it does not do: it has no format (bytes in, bytes out), it does not create
//! directories, and it does not encrypt. Bytes read come back in a
//! [`Zeroizing`] buffer; the bytes handed to a write stay the caller's to wipe.
//!
//! ## Files on disk
//!
//! For a file `passkeys.json`:
//!
//! | name | what |
//! |---|---|
//! | `passkeys.json` | the content, mode 0600 |
//! | `passkeys.json.lock` | empty, mode 0600; only its lock matters. It is left in place: removing it while another process waits on it would let two writers in at once |
//! | `.passkeys.json.<16 hex digits>.tmp` | a write in progress. One whose writer was killed stays until the next write, which removes it (under the lock, every such file belongs to a dead writer), so at most one is ever left behind |
//!
//! ## Example
//!
//! ```
//! # fn main() -> Result<(), cable_store::Error> {
//! # let dir = std::env::temp_dir().join(format!("cable-store-doc-{}", std::process::id()));
//! # std::fs::create_dir_all(&dir).map_err(|e| cable_store::Error::Io {
//! #     op: "create", path: dir.clone(), source: e })?;
//! let path = dir.join("counter");
//! // A read-modify-write that no other process can interleave with.
//! let file = cable_store::lock(&path)?;
//! let count = match file.read()? {
//!     Some(bytes) => String::from_utf8_lossy(&bytes).parse::<u64>().unwrap_or(0),
//!     None => 0, // not written yet
//! };
//! file.write((count + 1).to_string().as_bytes())?;
//! drop(file); // releases the lock
//! assert_eq!(&cable_store::read_private(&path)?.unwrap()[..], b"1");
//! # let _ = std::fs::remove_dir_all(&dir);
//! # Ok(())
//! # }
//! ```
//!
//! ## Platforms
//!
//! On Unix everything above holds. `flock` is advisory: it orders processes that use this
//! crate, not other programs; on network file systems it is only as good as the server's
//! lock support (NFSv4 emulates it with byte-range locks). Locks are per open file, so
//! two [`Locked`] in one process exclude each other too; do not call [`write_private`]
//! while holding a [`Locked`] for the same file (it would wait for itself).
//!
//! Elsewhere (Windows) the crate compiles with the best plain behaviour: the temporary
//! file is created exclusively and renamed over the target, but there is no mode to set
//! or check (a file inherits the ACL of its directory: keep it in the user's profile), no
//! directory sync, and [`lock`] does not exclude other processes.

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

/// Why a private file could not be read, written or locked.
///
/// Every message is one line; the ones about the file's state say how to fix it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Users other than the owner may read or write the file (its mode has group or other
    /// bits). Whatever it holds may already have been copied.
    #[error(
        "`{}` is {} by other users (mode {mode:04o}); run `chmod 600 {}`",
        .path.display(),
        exposure(*.mode),
        ShellWord(.path)
    )]
    Exposed {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The path names a symbolic link, a directory or another kind of file that is not a
    /// regular file.
    #[error("`{}` is {kind}, not a regular file; put the file itself there", .path.display())]
    NotAFile {
        /// The path.
        path: PathBuf,
        /// What it is instead: "a symbolic link", "a directory", "a special file".
        kind: &'static str,
    },
    /// A file system operation failed.
    #[error("cannot {op} `{}`", .path.display())]
    Io {
        /// What was being done: "read", "lock", "write", …
        op: &'static str,
        /// The file it was done to.
        path: PathBuf,
        /// What the system said.
        #[source]
        source: io::Error,
    },
}

impl Error {
    /// The file the error is about.
    pub fn path(&self) -> &Path {
        match self {
            Error::Exposed { path, .. } | Error::NotAFile { path, .. } | Error::Io { path, .. } => {
                path
            }
        }
    }
}

fn io_error<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> Error + 'a {
    move |source| Error::Io {
        op,
        path: path.to_owned(),
        source,
    }
}

fn exposure(mode: u32) -> &'static str {
    if mode & 0o044 != 0 {
        "readable"
    } else if mode & 0o022 != 0 {
        "writable"
    } else {
        "accessible"
    }
}

/// A path as one word for a POSIX shell, quoted only when it has to be.
struct ShellWord<'a>(&'a Path);

impl fmt::Display for ShellWord<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = self.0.to_string_lossy();
        let plain = !text.is_empty()
            && text
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "/._-+,:@%=~".contains(c));
        if plain {
            f.write_str(&text)
        } else {
            write!(f, "'{}'", text.replace('\'', r"'\''"))
        }
    }
}

/// Reads a private file: `Ok(None)` if it does not exist.
///
/// Refused, before a byte is read: a file whose mode lets group or other users read,
/// write or execute it ([`Error::Exposed`]), a symbolic link and anything that is not a
/// regular file ([`Error::NotAFile`]). The checks are made on the opened file, so the
/// path cannot be swapped between check and read.
///
/// No lock is needed to read: writes replace the file in one rename, so a reader sees
/// either the old or the new content.
pub fn read_private(path: impl AsRef<Path>) -> Result<Option<Zeroizing<Vec<u8>>>, Error> {
    let path = path.as_ref();
    let mut file = match sys::open_read(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            // Opening a symbolic link without following it fails with ELOOP on Linux and
            // macOS but EMLINK on FreeBSD; asking again is portable.
            if is_symlink(path) {
                return Err(Error::NotAFile {
                    path: path.to_owned(),
                    kind: "a symbolic link",
                });
            }
            return Err(io_error("read", path)(e));
        }
    };
    let meta = file.metadata().map_err(io_error("read", path))?;
    if !meta.is_file() {
        return Err(Error::NotAFile {
            path: path.to_owned(),
            kind: if meta.is_dir() {
                "a directory"
            } else {
                "a special file"
            },
        });
    }
    if let Some(mode) = sys::mode(&meta) {
        if mode & 0o077 != 0 {
            return Err(Error::Exposed {
                path: path.to_owned(),
                mode,
            });
        }
    }
    // Sized up front: a vector that grows leaves copies of the secret in freed memory.
    let len = usize::try_from(meta.len()).unwrap_or(0);
    let mut bytes = Zeroizing::new(Vec::with_capacity(len.saturating_add(1)));
    file.read_to_end(&mut bytes)
        .map_err(io_error("read", path))?;
    Ok(Some(bytes))
}

/// Replaces a private file with `bytes`, atomically and durably, with mode 0600.
///
/// Takes the file's [`lock`] for the duration. For a read-modify-write, take the lock
/// yourself and use [`Locked::read`] and [`Locked::write`] instead: calling this while
/// holding the lock would wait forever.
pub fn write_private(path: impl AsRef<Path>, bytes: &[u8]) -> Result<(), Error> {
    lock(path)?.write(bytes)
}

/// Replaces `path` with `bytes` like [`write_private`] (fresh exclusive 0600 temporary
/// file, `fsync`, rename, directory `fsync`) but without the lock: for an output file that
/// one process writes once and nobody updates, such as an exported QR code image, so that
/// no `.lock` file is left next to it. A temporary file left by a killed writer is not
/// cleaned up, since without the lock a live writer's cannot be told from it.
pub fn replace_private(path: impl AsRef<Path>, bytes: &[u8]) -> Result<(), Error> {
    replace(path.as_ref(), bytes)
}

fn replace(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    let (dir, name) = split(path)?;
    let (tmp_path, mut file) = create_temp(dir, name)?;
    let written = file
        .write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(io_error("write", &tmp_path))
        .and_then(|()| std::fs::rename(&tmp_path, path).map_err(io_error("replace", path)));
    drop(file);
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp_path);
        return Err(e);
    }
    sys::sync_dir(dir).map_err(io_error("sync the directory of", path))
}

/// Waits for the exclusive lock on `path` (its sibling `<name>.lock`) and holds it until
/// the returned [`Locked`] is dropped.
///
/// The lock file is created (mode 0600) if missing and never removed. A process that dies
/// holding the lock releases it.
pub fn lock(path: impl AsRef<Path>) -> Result<Locked, Error> {
    let path = path.as_ref();
    let (_, name) = split(path)?;
    let mut lock_name = name.to_owned();
    lock_name.push(".lock");
    let lock_path = path.with_file_name(lock_name);
    let file = sys::open_lock(&lock_path).map_err(io_error("open the lock file", &lock_path))?;
    sys::lock_exclusive(&file).map_err(io_error("lock", &lock_path))?;
    Ok(Locked {
        path: path.to_owned(),
        _lock: file,
    })
}

/// The exclusive lock on one private file, for a read-modify-write no other process can
/// interleave with. Dropping it releases the lock.
#[derive(Debug)]
pub struct Locked {
    path: PathBuf,
    _lock: File,
}

impl Locked {
    /// The file this lock is for.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// [`read_private`] of the locked file: its current content, `Ok(None)` if missing.
    pub fn read(&self) -> Result<Option<Zeroizing<Vec<u8>>>, Error> {
        read_private(&self.path)
    }

    /// Replaces the locked file with `bytes`, as [`write_private`] does.
    ///
    /// The steps: remove temporary files left by killed writers, create a fresh one
    /// exclusively (mode 0600, no symbolic link followed), write, `fsync`, rename it over
    /// the file, `fsync` the directory. If a step before the rename fails, the temporary
    /// file is removed and the file is untouched. If the directory sync fails the new
    /// content is in place but may not survive a power loss; the error says so.
    pub fn write(&self, bytes: &[u8]) -> Result<(), Error> {
        let (dir, name) = split(&self.path)?;
        remove_stale_temps(dir, name);
        replace(&self.path, bytes)
    }
}

/// The directory (`.` for a bare name) and the file name of `path`.
fn split(path: &Path) -> Result<(&Path, &OsStr), Error> {
    let name = path.file_name().ok_or_else(|| Error::Io {
        op: "use",
        path: path.to_owned(),
        source: io::Error::new(io::ErrorKind::InvalidInput, "the path names no file"),
    })?;
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    Ok((dir, name))
}

fn is_symlink(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink())
}

const TEMP_DIGITS: usize = 16;

fn temp_name(name: &OsStr, random: u64) -> OsString {
    let mut temp = OsString::from(".");
    temp.push(name);
    temp.push(format!(".{random:0width$x}.tmp", width = TEMP_DIGITS));
    temp
}

/// Whether `candidate` is a name [`temp_name`] makes for `name`.
fn is_temp_name(name: &OsStr, candidate: &OsStr) -> bool {
    let candidate = candidate.as_encoded_bytes();
    let Some(rest) = candidate.strip_prefix(b".") else {
        return false;
    };
    let Some(rest) = rest.strip_prefix(name.as_encoded_bytes()) else {
        return false;
    };
    let Some(rest) = rest.strip_prefix(b".") else {
        return false;
    };
    let Some(digits) = rest.strip_suffix(b".tmp") else {
        return false;
    };
    digits.len() == TEMP_DIGITS && digits.iter().all(u8::is_ascii_hexdigit)
}

/// Removes the temporary files of writers that died before their rename. Only called
/// under the lock, when no live writer has one. Best effort: a leftover that cannot be
/// removed costs disk space, not correctness.
fn remove_stale_temps(dir: &Path, name: &OsStr) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        if is_temp_name(name, &entry.file_name()) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

fn create_temp(dir: &Path, name: &OsStr) -> Result<(PathBuf, File), Error> {
    use rand_core::RngCore;
    // 64 random bits make a collision unlikely; a few tries make one harmless.
    let mut last = None;
    for _ in 0..8 {
        let mut random = [0u8; 8];
        rand_core::OsRng.try_fill_bytes(&mut random).map_err(|e| {
            io_error("create a temporary file in", dir)(io::Error::other(e.to_string()))
        })?;
        let tmp_path = dir.join(temp_name(name, u64::from_le_bytes(random)));
        match sys::create_new_private(&tmp_path) {
            Ok(file) => return Ok((tmp_path, file)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last = Some(e),
            Err(e) => return Err(io_error("create a temporary file in", dir)(e)),
        }
    }
    let e = last.unwrap_or_else(|| io::Error::from(io::ErrorKind::AlreadyExists));
    Err(io_error("create a temporary file in", dir)(e))
}

#[cfg(unix)]
mod sys {
    use std::fs::File;
    use std::io;
    use std::os::unix::fs::PermissionsExt;
    use std::path::Path;

    use rustix::fs::{FlockOperation, Mode, OFlags};

    const PRIVATE: Mode = Mode::RUSR.union(Mode::WUSR);

    pub fn open_read(path: &Path) -> io::Result<File> {
        // NONBLOCK: opening a FIFO planted at the path must not hang; it is refused next.
        let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
        Ok(rustix::fs::open(path, flags, Mode::empty())?.into())
    }

    pub fn create_new_private(path: &Path) -> io::Result<File> {
        // EXCL already refuses an existing symbolic link; NOFOLLOW says so twice.
        let flags =
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        Ok(rustix::fs::open(path, flags, PRIVATE)?.into())
    }

    pub fn open_lock(path: &Path) -> io::Result<File> {
        let flags = OFlags::RDWR | OFlags::CREATE | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        Ok(rustix::fs::open(path, flags, PRIVATE)?.into())
    }

    pub fn lock_exclusive(file: &File) -> io::Result<()> {
        loop {
            match rustix::fs::flock(file, FlockOperation::LockExclusive) {
                Err(rustix::io::Errno::INTR) => continue,
                result => return Ok(result?),
            }
        }
    }

    pub fn sync_dir(dir: &Path) -> io::Result<()> {
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
        let dir = rustix::fs::open(dir, flags, Mode::empty())?;
        Ok(rustix::fs::fsync(dir)?)
    }

    pub fn mode(meta: &std::fs::Metadata) -> Option<u32> {
        Some(meta.permissions().mode() & 0o7777)
    }
}

#[cfg(not(unix))]
mod sys {
    use std::fs::{File, OpenOptions};
    use std::io;
    use std::path::Path;

    pub fn open_read(path: &Path) -> io::Result<File> {
        if super::is_symlink(path) {
            return Err(io::Error::other("symbolic link"));
        }
        File::open(path)
    }

    pub fn create_new_private(path: &Path) -> io::Result<File> {
        OpenOptions::new().write(true).create_new(true).open(path)
    }

    pub fn open_lock(path: &Path) -> io::Result<File> {
        OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
    }

    /// No portable lock without unsafe code before `File::lock` (Rust 1.89).
    pub fn lock_exclusive(_file: &File) -> io::Result<()> {
        Ok(())
    }

    /// Directories cannot be opened for a sync here; the rename is as durable as it gets.
    pub fn sync_dir(_dir: &Path) -> io::Result<()> {
        Ok(())
    }

    pub fn mode(_meta: &std::fs::Metadata) -> Option<u32> {
        None
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn temp_names_are_recognised_and_nothing_else() {
        let name = OsStr::new("passkeys.json");
        let temp = temp_name(name, 0x0123_4567_89ab_cdef);
        assert_eq!(temp, ".passkeys.json.0123456789abcdef.tmp");
        assert!(is_temp_name(name, &temp));
        assert!(is_temp_name(name, &temp_name(name, 7)));
        for other in [
            "passkeys.json",
            "passkeys.json.tmp",
            "passkeys.json.lock",
            ".passkeys.json.tmp",
            ".passkeys.json.0123456789abcdeg.tmp",
            ".passkeys.json.0123456789abcde.tmp",
            ".other.json.0123456789abcdef.tmp",
            ".passkeys.json.0123456789abcdef.tmp.bak",
        ] {
            assert!(!is_temp_name(name, OsStr::new(other)), "{other}");
        }
    }

    #[test]
    fn the_exposed_message_is_one_line_with_a_command_that_works() {
        let err = Error::Exposed {
            path: "/home/u/.config/cable/passkeys.json".into(),
            mode: 0o644,
        };
        assert_eq!(
            err.to_string(),
            "`/home/u/.config/cable/passkeys.json` is readable by other users (mode 0644); \
             run `chmod 600 /home/u/.config/cable/passkeys.json`"
        );
        let err = Error::Exposed {
            path: "/tmp/it's mine".into(),
            mode: 0o620,
        };
        assert_eq!(
            err.to_string(),
            r"`/tmp/it's mine` is writable by other users (mode 0620); run `chmod 600 '/tmp/it'\''s mine'`"
        );
    }

    #[test]
    fn a_bare_name_lives_in_the_current_directory() {
        let (dir, name) = split(Path::new("store.json")).unwrap();
        assert_eq!((dir, name), (Path::new("."), OsStr::new("store.json")));
        assert!(matches!(split(Path::new("/")), Err(Error::Io { .. })));
    }
}
