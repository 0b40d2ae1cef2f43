//! Writers in other processes: killed mid-write, and racing each other.
//!
//! The children are this test binary run again with `CHILD` set, through the
//! `child` test below (which does nothing in a normal run).

#![cfg(unix)]
#![allow(clippy::unwrap_used)]

use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use cable_store::{lock, read_private, write_private};

const CHILD: &str = "CABLE_STORE_TEST_CHILD";

/// Two contents of different lengths and bytes, so a mix or a cut is never mistaken for
/// either.
fn content(which: u8) -> Vec<u8> {
    match which {
        0 => vec![b'o'; 1 << 20],
        _ => vec![b'n'; (1 << 20) + 4099],
    }
}

/// The entry point of the child processes.
#[test]
fn child() {
    let Ok(role) = std::env::var(CHILD) else {
        return;
    };
    let path = PathBuf::from(std::env::var("CABLE_STORE_TEST_PATH").unwrap());
    match role.as_str() {
        // Alternates the two contents until killed; says "ready" once it has replaced
        // what it found, so every run of it changes the file at least once.
        "writer" => {
            let found = read_private(&path).unwrap().unwrap();
            let mut next = u8::from(found[0] == b'o');
            let mut first = true;
            loop {
                write_private(&path, &content(next)).unwrap();
                if first {
                    println!("ready");
                    first = false;
                }
                next ^= 1;
            }
        }
        // Appends `<id>-<i>` lines, one locked read-modify-write each.
        "adder" => {
            let id: usize = std::env::var("CABLE_STORE_TEST_ID")
                .unwrap()
                .parse()
                .unwrap();
            for i in 0..ADDS {
                let file = lock(&path).unwrap();
                let mut text = file.read().unwrap().map(|b| b.to_vec()).unwrap_or_default();
                text.extend_from_slice(format!("{id}-{i}\n").as_bytes());
                file.write(&text).unwrap();
            }
        }
        other => panic!("unknown child role {other}"),
    }
}

fn spawn(role: &str, path: &Path, id: usize, stdout: Stdio) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args(["child", "--exact", "--nocapture", "--test-threads=1", "-q"])
        .env(CHILD, role)
        .env("CABLE_STORE_TEST_PATH", path)
        .env("CABLE_STORE_TEST_ID", id.to_string())
        .stdout(stdout)
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap()
}

/// A fresh directory, removed when dropped (a failed test included).
struct Dir(PathBuf);

impl Dir {
    fn new(test: &str) -> Dir {
        let dir = std::env::temp_dir().join(format!("cable-store-{test}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        Dir(dir)
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn temp_files(dir: &Path) -> usize {
    fs::read_dir(dir)
        .unwrap()
        .filter(|e| {
            let name = e.as_ref().unwrap().file_name();
            let name = name.to_string_lossy();
            name.starts_with(".store.") && name.ends_with(".tmp")
        })
        .count()
}

/// Which content the file holds; panics on anything else.
fn old_or_new(path: &Path, olds: &[Vec<u8>; 2]) -> u8 {
    let bytes = read_private(path).unwrap().unwrap();
    match olds.iter().position(|c| c[..] == bytes[..]) {
        Some(i) => i as u8,
        None => panic!(
            "partial content: {} bytes starting {:?}",
            bytes.len(),
            &bytes[..bytes.len().min(8)]
        ),
    }
}

/// A small deterministic generator: the kill points vary, the outcome does not.
struct XorShift(u64);

impl XorShift {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

#[test]
fn a_writer_killed_at_any_point_leaves_the_old_or_the_new_content() {
    const KILLS: usize = 60;
    let guard = Dir::new("crash");
    let dir = &guard.0;
    let path = dir.join("store");
    let contents = [content(0), content(1)];
    write_private(&path, &contents[0]).unwrap();
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    let started = Instant::now();
    let mut changes = 0;
    let mut mid_write = 0;
    for kill in 0..KILLS {
        let before = old_or_new(&path, &contents);
        let mut writer = spawn("writer", &path, 0, Stdio::piped());
        // The harness prints its own lines first.
        let mut out = BufReader::new(writer.stdout.take().unwrap());
        let mut line = String::new();
        while line.trim() != "ready" {
            line.clear();
            let read = out.read_line(&mut line).unwrap();
            assert!(read > 0, "writer {kill} ended before writing");
        }
        // Somewhere inside one of the next few writes, and a read while it runs.
        std::thread::sleep(Duration::from_micros(rng.below(8_000)));
        old_or_new(&path, &contents);
        std::thread::sleep(Duration::from_micros(rng.below(4_000)));
        writer.kill().unwrap();
        writer.wait().unwrap();
        let after = old_or_new(&path, &contents);
        changes += usize::from(before != after);
        // The killed writer's temp file at most: each writer removes its predecessors'.
        let temps = temp_files(dir);
        assert!(temps <= 1, "temp files pile up after kill {kill}");
        mid_write += temps;
    }
    eprintln!("{mid_write} of {KILLS} kills left a write half done, {changes} changed the file");
    // Every writer replaced the file at least once, so the kills hit real writes.
    assert!(changes > 0);
    write_private(&path, &contents[0]).unwrap();
    assert_eq!(temp_files(dir), 0);
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "took {:?}",
        started.elapsed()
    );
}

const WRITERS: usize = 4;
const ADDS: usize = 25;

#[test]
fn concurrent_read_modify_writes_in_separate_processes_lose_nothing() {
    let guard = Dir::new("concurrent");
    let dir = &guard.0;
    let path = dir.join("store");
    let children: Vec<Child> = (0..WRITERS)
        .map(|id| spawn("adder", &path, id, Stdio::null()))
        .collect();
    for mut c in children {
        assert!(c.wait().unwrap().success());
    }
    let text = read_private(&path).unwrap().unwrap();
    let mut lines: Vec<&str> = std::str::from_utf8(&text).unwrap().lines().collect();
    lines.sort_unstable();
    let mut expected: Vec<String> = (0..WRITERS)
        .flat_map(|id| (0..ADDS).map(move |i| format!("{id}-{i}")))
        .collect();
    expected.sort_unstable();
    assert_eq!(lines, expected);
    assert_eq!(temp_files(dir), 0);
}
