//! The generated Python module loads the built library and raises the documented typed
//! exceptions (tests/python/error_paths.py).
#![allow(clippy::unwrap_used)]

mod support;

use std::process::Command;

#[test]
fn python_sees_typed_errors_with_their_phase() {
    let dir = tempfile::tempdir().unwrap();
    support::generate("python", dir.path());
    std::fs::copy(support::cdylib(), dir.path().join(support::CDYLIB_NAME)).unwrap();
    let python = std::env::var("CABLE_TEST_PYTHON").unwrap_or_else(|_| "/usr/bin/python3".into());
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/error_paths.py");
    let output = Command::new(&python)
        .arg(script)
        .env("PYTHONPATH", dir.path())
        .output()
        .unwrap_or_else(|e| panic!("{python}: {e}"));
    assert!(
        output.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&output.stdout).trim(), "ok");
}
