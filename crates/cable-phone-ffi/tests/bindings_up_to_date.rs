//! The Kotlin, Swift and Python bindings in `bindings/` are what the library generates now.
//! To refresh them:
//!
//! ```sh
//! cargo build -p cable-phone-ffi
//! for l in kotlin swift python; do
//!   target/debug/uniffi-bindgen generate --no-format --library target/debug/libcable_phone_ffi.so \
//!     --language $l --out-dir crates/cable-phone-ffi/bindings/$l
//! done
//! ```
#![allow(clippy::unwrap_used)]

mod support;

use std::collections::BTreeMap;
use std::path::Path;

fn files(root: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let name = path.strip_prefix(root).unwrap().display().to_string();
                out.insert(name, std::fs::read(&path).unwrap());
            }
        }
    }
    out
}

#[test]
fn committed_bindings_are_current() {
    for language in ["kotlin", "swift", "python"] {
        let dir = tempfile::tempdir().unwrap();
        support::generate(language, dir.path());
        let committed = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("bindings")
            .join(language);
        let (now, then) = (files(dir.path()), files(&committed));
        assert_eq!(
            now.keys().collect::<Vec<_>>(),
            then.keys().collect::<Vec<_>>(),
            "{language}: generated files differ; see this test's doc comment to refresh them"
        );
        for (name, bytes) in &now {
            assert!(
                then[name] == *bytes,
                "{language}/{name} is out of date; see this test's doc comment to refresh it"
            );
        }
    }
}
