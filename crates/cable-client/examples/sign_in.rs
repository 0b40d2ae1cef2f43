//! Sign in with a phone: the relying party's `PublicKeyCredentialRequestOptionsJSON` in,
//! the `AuthenticationResponseJSON` it verifies out.
//!
//! ```sh
//! cargo run -p cable-client --example sign_in -- \
//!     '{"challenge":"AAECAwQFBgcICQoLDA0ODw","rpId":"example.com"}' https://example.com
//! ```
//!
//! On Linux it links the system's libdbus (Debian: `libdbus-1-dev`); add
//! `--features cable-ble/vendored-libdbus` to build libdbus from source instead.
//!
//! It prints the `FIDO:/` text of the QR code (render it with any QR library, as `cable qr`
//! does), the ceremony's progress on stderr, then the response JSON.

use cable_ble::{system_scanner, AdapterChoice};
use cable_client::{Ceremony, CeremonyConfig};
use tokio_util::sync::CancellationToken;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(options_json), Some(origin)) = (args.next(), args.next()) else {
        eprintln!("usage: sign_in REQUEST_OPTIONS_JSON ORIGIN");
        std::process::exit(2);
    };
    // The phone proves it is near with a BLE advert: the system's Bluetooth hears it
    // (BlueZ on Linux, CoreBluetooth on macOS, WinRT on Windows).
    let scanner = system_scanner(&AdapterChoice::Default).await?;
    let config = CeremonyConfig::new(scanner)?;
    // The options and the origin are checked here, before any QR code is shown.
    let (ceremony, mut progress) = Ceremony::authenticate(config, &options_json, &origin)?;
    println!("{}", ceremony.qr_uri());
    tokio::spawn(async move {
        while let Some(step) = progress.recv().await {
            eprintln!("{step:?}");
        }
    });
    // Cancelling the token (a Cancel button) ends the scan and closes the tunnel.
    let response = ceremony.run(CancellationToken::new()).await?;
    println!("{}", response.to_json_string());
    Ok(())
}
