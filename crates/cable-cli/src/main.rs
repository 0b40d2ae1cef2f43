//! `cable`: the command-line face of the hybrid transport.
//!
//! Each subcommand lives in its own module with a clap `Args` struct and a `run`
//! function; this file only parses and dispatches, and turns errors into one line on
//! stderr and an exit code (2 for bad input, 1 for failures while working).

mod ble;
mod ceremony;
mod demo;
mod doctor;
mod error;
mod inspect;
mod phone;
mod qr_command;
mod render;

use clap::{Parser, Subcommand};
use error::CliError;
use std::process::ExitCode;

/// FIDO hybrid transport (caBLE v2): sign in on a computer with a passkey on a phone.
#[derive(Debug, Parser)]
#[command(name = "cable", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Show a fresh hybrid QR code (FIDO:/…) in the terminal or as PNG/SVG.
    Qr(qr_command::QrArgs),
    /// Decode QR codes, BLE adverts and tunnel domain ids into readable JSON.
    #[command(subcommand)]
    Inspect(InspectCommand),
    /// Check that Bluetooth can be used: service running, adapter present and powered,
    /// permission to scan. Exits 1 when something is in the way and says what.
    Doctor(doctor::DoctorArgs),
    /// Act as the phone: answer a computer's QR code with the bundled software
    /// authenticator (passkeys in a file with --store).
    Phone(phone::PhoneArgs),
    /// Register a passkey on a phone: show a QR code, wait for the phone, print the
    /// registration response JSON.
    Register(ceremony::RegisterArgs),
    /// Sign in with a passkey on a phone: show a QR code, wait for the phone, print the
    /// authentication response JSON.
    Login(ceremony::LoginArgs),
    /// A complete ceremony on this machine, no Bluetooth, no internet: embedded relay,
    /// simulated phone, register then sign in, verified by an independent relying party.
    Demo(demo::DemoArgs),
}

#[derive(Debug, Subcommand)]
enum InspectCommand {
    /// Print the fields of a FIDO:/ QR code as JSON.
    Qr {
        /// The scanned text, starting with FIDO:/ (any case).
        uri: String,
    },
    /// Decrypt a phone's BLE advert (20+ bytes of service data, hex) with the QR code it
    /// answers, and print the routing details as JSON.
    Advert {
        /// The FIDO:/ QR code the phone scanned.
        #[arg(long)]
        qr: String,
        /// The service data, hex.
        hex: String,
    },
    /// Print the tunnel-server host name of an encoded domain id (0–65535).
    Domain {
        /// The domain id from an advert.
        id: String,
    },
}

fn run(cli: Cli) -> Result<(), CliError> {
    match cli.command {
        Command::Phone(args) => runtime()?.block_on(phone::run(&args)),
        Command::Register(args) => Ok(ceremony::register(&args)?),
        Command::Login(args) => Ok(ceremony::login(&args)?),
        Command::Demo(args) => Ok(demo::run(&args)?),
        Command::Doctor(args) => {
            if runtime()?.block_on(doctor::run(&args)) {
                Ok(())
            } else {
                Err(CliError::BluetoothNotReady)
            }
        }
        Command::Qr(args) => qr_command::run(&args),
        Command::Inspect(cmd) => {
            let out = match cmd {
                InspectCommand::Qr { uri } => inspect::qr(&uri)?.to_string(),
                InspectCommand::Advert { qr, hex } => inspect::advert(&qr, &hex)?.to_string(),
                InspectCommand::Domain { id } => inspect::domain(&id)?,
            };
            println!("{out}");
            Ok(())
        }
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, CliError> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(CliError::Runtime)
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("cable: {}", error::chain(&err));
            ExitCode::from(err.exit_code())
        }
    }
}
