//! Finding the built library and running the crate's own binding generator.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

pub const CDYLIB_NAME: &str = "libcable_phone_ffi.so";

/// The cdylib cargo built beside this test binary (cargo builds every crate type of the
/// library for its tests).
pub fn cdylib() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let deps = exe.parent().unwrap();
    let path = deps.join(CDYLIB_NAME);
    assert!(path.exists(), "{} was not built", path.display());
    path
}

/// Generates `language` bindings into `out` (unformatted: ktlint and swift-format are not
/// installed everywhere, and the committed files must not depend on them).
pub fn generate(language: &str, out: &Path) {
    let status = Command::new(env!("CARGO_BIN_EXE_uniffi-bindgen"))
        .args(["generate", "--no-format", "--library"])
        .arg(cdylib())
        .args(["--language", language, "--out-dir"])
        .arg(out)
        .output()
        .unwrap();
    assert!(
        status.status.success(),
        "uniffi-bindgen: {}",
        String::from_utf8_lossy(&status.stderr)
    );
}
