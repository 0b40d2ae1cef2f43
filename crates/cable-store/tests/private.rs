//! What is on disk after reads and writes, with hostile leftovers in the directory.

#![cfg(unix)]
#![allow(clippy::unwrap_used)]

use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};

use cable_store::{lock, read_private, write_private, Error};

/// A fresh directory, removed when dropped.
struct Dir(PathBuf);

impl Dir {
    fn new(test: &str) -> Dir {
        let dir = std::env::temp_dir().join(format!("cable-store-{test}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        Dir(dir)
    }

    fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    /// The names in the directory, sorted.
    fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(&self.0)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn mode(path: &Path) -> u32 {
    fs::symlink_metadata(path).unwrap().permissions().mode() & 0o777
}

fn chmod(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

#[test]
fn a_write_makes_a_0600_file_and_a_read_gives_it_back() {
    let dir = Dir::new("roundtrip");
    let path = dir.join("secret");
    assert!(read_private(&path).unwrap().is_none());
    write_private(&path, b"first").unwrap();
    assert_eq!(mode(&path), 0o600);
    write_private(&path, b"second").unwrap();
    assert_eq!(&read_private(&path).unwrap().unwrap()[..], b"second");
    assert_eq!(mode(&path), 0o600);
    // The content and the lock file, no temporary file.
    assert_eq!(dir.names(), ["secret", "secret.lock"]);
    assert_eq!(mode(&dir.join("secret.lock")), 0o600);
}

#[test]
fn a_leftover_world_readable_temp_file_is_neither_reused_nor_touched() {
    let dir = Dir::new("leftover");
    let path = dir.join("passkeys.json");
    let old_temp = dir.join("passkeys.json.tmp");
    fs::write(&old_temp, b"someone else's").unwrap();
    chmod(&old_temp, 0o644);
    write_private(&path, b"key").unwrap();
    assert_eq!(mode(&path), 0o600);
    assert_eq!(fs::read(&old_temp).unwrap(), b"someone else's");
    assert_eq!(mode(&old_temp), 0o644);
}

#[test]
fn a_symbolic_link_in_place_of_the_file_is_replaced_not_written_through() {
    let dir = Dir::new("target-link");
    let victim = dir.join("victim");
    fs::write(&victim, b"untouched").unwrap();
    chmod(&victim, 0o644);
    let path = dir.join("secret");
    symlink(&victim, &path).unwrap();
    // Reading refuses the link.
    let err = read_private(&path).unwrap_err();
    assert!(
        matches!(
            err,
            Error::NotAFile {
                kind: "a symbolic link",
                ..
            }
        ),
        "{err}"
    );
    // Writing replaces the link with a private file.
    write_private(&path, b"key").unwrap();
    assert_eq!(fs::read(&victim).unwrap(), b"untouched");
    assert!(fs::symlink_metadata(&path).unwrap().is_file());
    assert_eq!(mode(&path), 0o600);
}

#[test]
fn a_symbolic_link_as_lock_file_is_refused() {
    let dir = Dir::new("lock-link");
    let victim = dir.join("victim");
    fs::write(&victim, b"untouched").unwrap();
    symlink(&victim, dir.join("secret.lock")).unwrap();
    let err = write_private(dir.join("secret"), b"key").unwrap_err();
    assert!(
        matches!(
            err,
            Error::Io {
                op: "open the lock file",
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(fs::read(&victim).unwrap(), b"untouched");
    assert!(!dir.join("secret").exists());
}

#[test]
fn stale_temp_files_are_removed_by_the_next_write_and_only_they() {
    let dir = Dir::new("stale");
    let path = dir.join("secret");
    for name in [
        ".secret.00000000deadbeef.tmp",
        ".secret.0123456789abcdef.tmp",
    ] {
        fs::write(dir.join(name), b"half").unwrap();
    }
    // Not ours: another file's temp, and a name that only looks alike.
    fs::write(dir.join(".other.0123456789abcdef.tmp"), b"x").unwrap();
    fs::write(dir.join(".secret.backup.tmp"), b"x").unwrap();
    write_private(&path, b"key").unwrap();
    assert_eq!(
        dir.names(),
        [
            ".other.0123456789abcdef.tmp",
            ".secret.backup.tmp",
            "secret",
            "secret.lock"
        ]
    );
}

#[test]
fn files_others_can_read_or_write_are_refused_with_a_one_line_fix() {
    let dir = Dir::new("exposed");
    let path = dir.join("secret");
    write_private(&path, b"key").unwrap();
    for bad in [0o644, 0o640, 0o604, 0o620, 0o602, 0o700 | 0o010] {
        chmod(&path, bad);
        let err = read_private(&path).unwrap_err();
        assert!(
            matches!(err, Error::Exposed { mode, .. } if mode == bad),
            "{err}"
        );
        let text = err.to_string();
        assert_eq!(text.lines().count(), 1);
        assert!(text.contains(&format!("(mode 0{bad:o})")), "{text}");
        assert!(
            text.ends_with(&format!("run `chmod 600 {}`", path.display())),
            "{text}"
        );
    }
    // The fix it names works.
    chmod(&path, 0o600);
    assert_eq!(&read_private(&path).unwrap().unwrap()[..], b"key");
    chmod(&path, 0o400);
    assert_eq!(&read_private(&path).unwrap().unwrap()[..], b"key");
}

#[test]
fn a_directory_or_fifo_is_not_a_file() {
    let dir = Dir::new("not-a-file");
    let sub = dir.join("sub");
    fs::create_dir(&sub).unwrap();
    let err = read_private(&sub).unwrap_err();
    assert!(
        matches!(
            err,
            Error::NotAFile {
                kind: "a directory",
                ..
            }
        ),
        "{err}"
    );
    let fifo = dir.join("fifo");
    let made = std::process::Command::new("mkfifo").arg(&fifo).status();
    if made.is_ok_and(|s| s.success()) {
        // Returns instead of waiting for a writer.
        let err = read_private(&fifo).unwrap_err();
        assert!(
            matches!(
                err,
                Error::NotAFile {
                    kind: "a special file",
                    ..
                }
            ),
            "{err}"
        );
    }
}

#[test]
fn a_failed_write_leaves_the_old_content_and_no_temp_file() {
    let dir = Dir::new("failed");
    let path = dir.join("secret");
    write_private(&path, b"old").unwrap();
    // A directory where the file is: the rename fails after the temp file was written.
    let blocked = dir.join("blocked");
    fs::create_dir(&blocked).unwrap();
    fs::write(blocked.join("inside"), b"x").unwrap();
    let err = write_private(&blocked, b"new").unwrap_err();
    assert!(matches!(err, Error::Io { op: "replace", .. }), "{err}");
    assert_eq!(
        dir.names(),
        ["blocked", "blocked.lock", "secret", "secret.lock"]
    );
    assert_eq!(&read_private(&path).unwrap().unwrap()[..], b"old");
}

#[test]
fn two_locks_on_one_file_exclude_each_other_within_a_process() {
    let dir = Dir::new("threads");
    let path = dir.join("list");
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let path = path.clone();
            std::thread::spawn(move || {
                for i in 0..20 {
                    let file = lock(&path).unwrap();
                    let mut text = file.read().unwrap().map(|b| b.to_vec()).unwrap_or_default();
                    text.extend_from_slice(format!("{t}-{i}\n").as_bytes());
                    file.write(&text).unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let text = read_private(&path).unwrap().unwrap();
    let mut lines: Vec<&str> = std::str::from_utf8(&text).unwrap().lines().collect();
    lines.sort_unstable();
    lines.dedup();
    assert_eq!(lines.len(), 4 * 20);
}

#[test]
fn replace_private_makes_a_0600_file_over_an_open_one_and_leaves_no_lock() {
    let dir = Dir::new("replace");
    let path = dir.join("qr.png");
    fs::write(&path, b"old").unwrap();
    chmod(&path, 0o644);
    cable_store::replace_private(&path, b"new").unwrap();
    assert_eq!(mode(&path), 0o600);
    assert_eq!(fs::read(&path).unwrap(), b"new");
    assert_eq!(dir.names(), vec!["qr.png".to_owned()]);
    // A symbolic link in its place is replaced, never written through.
    let target = dir.join("elsewhere");
    fs::write(&target, b"keep").unwrap();
    let link = dir.join("link.png");
    symlink(&target, &link).unwrap();
    cable_store::replace_private(&link, b"image").unwrap();
    assert_eq!(fs::read(&target).unwrap(), b"keep");
    assert!(!fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
}
