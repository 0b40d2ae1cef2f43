//! A virtual key on `/dev/uhid` that answers authenticatorGetInfo and nothing else, until
//! its standard input ends: what `tests/vm/guest/uhid-tests.sh` runs in the test guest.
//!
//! ```sh
//! cargo build -p cable-uhid --example uhid_key
//! sudo target/debug/examples/uhid_key [/dev/uhid]   # Ctrl-D destroys the key
//! ```

use std::io::Read;
use std::process::ExitCode;

use cable_uhid::{Application, CtapRequest, KeyConfig, Reply, VirtualKey};

/// CTAP1_ERR_INVALID_COMMAND: this example has no phone to carry ceremonies to.
const CTAP1_ERR_INVALID_COMMAND: u8 = 0x01;

struct GetInfoOnly;

impl Application for GetInfoOnly {
    fn request(&mut self, request: CtapRequest, reply: Reply) {
        eprintln!(
            "uhid_key: CTAP2 command {:#04x} ({} bytes of parameters): invalid command here",
            request.command,
            request.params.len()
        );
        reply.error(CTAP1_ERR_INVALID_COMMAND);
    }

    fn open_changed(&mut self, open: bool) {
        eprintln!("uhid_key: {}", if open { "opened" } else { "closed" });
    }
}

fn main() -> ExitCode {
    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "/dev/uhid".into());
    let uhid = match std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
    {
        Ok(f) => f,
        Err(e) => {
            eprintln!("uhid_key: cannot open {path}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let key = match VirtualKey::create(uhid, KeyConfig::default(), GetInfoOnly) {
        Ok(key) => key,
        Err(e) => {
            eprintln!("uhid_key: {e}");
            return ExitCode::FAILURE;
        }
    };
    eprintln!("uhid_key: created on {path}");
    // Any input, or its end, destroys the key.
    let _ = std::io::stdin().read(&mut [0u8; 1]);
    match key.destroy() {
        Ok(()) => {
            eprintln!("uhid_key: destroyed");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("uhid_key: {e}");
            ExitCode::FAILURE
        }
    }
}
