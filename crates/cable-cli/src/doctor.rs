//! `cable doctor`: can this computer scan for (and advertise) hybrid BLE adverts?

use crate::error::CliError;
use cable_ble::AdapterChoice;

#[derive(Debug, clap::Args)]
pub struct DoctorArgs {
    /// Bluetooth adapter to check: a name such as hci0, an address such as
    /// 00:1A:7D:DA:71:13, or "default" (hci0 if present, else the first adapter).
    #[arg(
        long,
        default_value = "default",
        env = "CABLE_BLE_ADAPTER",
        allow_hyphen_values = true
    )]
    pub adapter: String,
}

/// Prints the diagnosis; returns whether Bluetooth is ready.
pub async fn run(args: &DoctorArgs) -> Result<bool, CliError> {
    let diagnosis = cable_ble::diagnose(&AdapterChoice::parse(&args.adapter)).await;
    crate::out::outln!("{diagnosis}")?;
    Ok(diagnosis.is_ready())
}
