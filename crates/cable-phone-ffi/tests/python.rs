//! The generated Python module loads the built library, raises the documented typed
//! exceptions (tests/python/error_paths.py), and takes coroutines as callbacks
//! (tests/python/async_callbacks.py).
#![allow(clippy::unwrap_used)]

mod support;

use std::process::Command;

/// Runs `tests/python/<script>` against freshly generated bindings; it prints `ok`.
fn run_script(script: &str) {
    let dir = tempfile::tempdir().unwrap();
    support::generate("python", dir.path());
    std::fs::copy(support::cdylib(), dir.path().join(support::CDYLIB_NAME)).unwrap();
    let python = std::env::var("CABLE_TEST_PYTHON").unwrap_or_else(|_| "/usr/bin/python3".into());
    let script = format!("{}/tests/python/{script}", env!("CARGO_MANIFEST_DIR"));
    let output = Command::new(&python)
        .arg(&script)
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

#[test]
fn python_sees_typed_errors_with_their_phase() {
    run_script("error_paths.py");
}

#[test]
fn python_coroutines_serve_as_callbacks_and_are_cancelled_with_the_session() {
    run_script("async_callbacks.py");
}
