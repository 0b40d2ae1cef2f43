//! `cable`: the command-line face of the hybrid transport.
//!
//! Each subcommand lives in its own module with a clap `Args` struct and a `run`
//! function; this file only parses and dispatches, and turns errors into one line on
//! stderr and an exit code (2 for bad input, 1 for failures while working).

mod ble;
mod ceremony;
#[cfg(feature = "demo")]
mod demo;
mod doctor;
mod error;
mod inspect;
#[cfg(target_os = "linux")]
mod key;
mod logging;
mod narrate;
#[cfg(target_os = "linux")]
mod notify;
mod out;
mod phone;
mod phone_listen;
mod phones;
mod qr_command;
mod render;
mod signals;

use clap::{Parser, Subcommand};
use error::CliError;
use out::outln;
use std::process::ExitCode;

/// FIDO hybrid transport (caBLE v2): sign in on a computer with a passkey on a phone.
#[derive(Debug, Parser)]
#[command(name = "cable", version, about, long_about = None)]
struct Cli {
    /// Log diagnostics to stderr: -v info, -vv debug, -vvv trace (this program's own crates
    /// only). RUST_LOG, when set, replaces it; libraries it uses log warnings only unless
    /// named there, e.g. RUST_LOG=debug,btleplug=debug.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,

    /// How diagnostics are written: human (one line per event, coloured on a terminal) or
    /// json (one object per line, for log collectors).
    #[arg(
        long,
        value_enum,
        default_value = "human",
        global = true,
        allow_hyphen_values = true
    )]
    log_format: logging::LogFormat,

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
    /// authenticator (passkeys in a file with --store); `cable phone listen` waits for linked
    /// computers to reach it without a QR code; `cable phone links` and `cable phone unlink`
    /// list and forget the computers it linked to.
    Phone(phone::PhoneArgs),
    /// Register a passkey on a phone: show a QR code, wait for the phone, print the
    /// registration response JSON.
    Register(ceremony::RegisterArgs),
    /// Sign in with a passkey on a phone: show a QR code, wait for the phone, print the
    /// authentication response JSON.
    Login(ceremony::LoginArgs),
    /// List, rename or forget the phones linked to this computer (they link when they offer
    /// to during register or login).
    Phones(phones::PhonesArgs),
    /// Be a USB security key for every app on this computer (Linux, /dev/uhid): apps'
    /// requests go to your phone over hybrid, with the QR code here and as a desktop
    /// notification, or to a linked phone (--phone).
    #[cfg(target_os = "linux")]
    Key(key::KeyArgs),
    /// A complete ceremony on this machine, no Bluetooth, no internet: embedded relay,
    /// simulated phone, register with a QR code (the phone links), then sign in with the
    /// linked phone and no QR code, verified by an independent relying party.
    #[cfg(feature = "demo")]
    Demo(demo::DemoArgs),
}

#[derive(Debug, Subcommand)]
enum InspectCommand {
    /// Print the fields of a FIDO:/ QR code as JSON.
    Qr {
        /// The scanned text, starting with FIDO:/ (any case).
        #[arg(allow_hyphen_values = true)]
        uri: String,
    },
    /// Decrypt a phone's BLE advert (20+ bytes of service data, hex) with the QR code it
    /// answers, and print the routing details as JSON.
    Advert {
        /// The FIDO:/ QR code the phone scanned.
        #[arg(long, allow_hyphen_values = true)]
        qr: String,
        /// The service data, hex.
        #[arg(allow_hyphen_values = true)]
        hex: String,
    },
    /// Print the tunnel-server host name of an encoded domain id (0–65535).
    Domain {
        /// The domain id from an advert.
        #[arg(allow_hyphen_values = true)]
        id: String,
    },
}

fn run(cli: Cli) -> Result<(), CliError> {
    match cli.command {
        Command::Phone(args) => runtime()?.block_on(phone::run(&args)),
        Command::Register(args) => ceremony::register(&args),
        Command::Login(args) => ceremony::login(&args),
        #[cfg(feature = "demo")]
        Command::Demo(args) => demo::run(&args),
        #[cfg(target_os = "linux")]
        Command::Key(args) => key::run(&args),
        Command::Phones(args) => phones::run(&args),
        Command::Doctor(args) => {
            if runtime()?.block_on(doctor::run(&args))? {
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
            outln!("{out}")?;
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
    let cli = Cli::parse();
    logging::init(cli.verbose, cli.log_format);
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        // The reader of our output went away (`cable demo | head -1`): stop quietly with
        // the status a shell reports for a process ended by SIGPIPE.
        Err(err) if out::is_closed_pipe(&err) => ExitCode::from(141),
        Err(err) => {
            eprintln!("cable: {}", error::chain(&err));
            ExitCode::from(err.exit_code())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    /// Every argument of every subcommand that takes a value, as `path: --name`.
    fn value_args(cmd: &clap::Command, path: &str, out: &mut Vec<(String, bool)>) {
        for arg in cmd.get_arguments() {
            if arg.get_action().takes_values() {
                out.push((
                    format!("{path} {}", arg.get_id()),
                    arg.is_allow_hyphen_values_set(),
                ));
            }
        }
        for sub in cmd.get_subcommands() {
            value_args(sub, &format!("{path} {}", sub.get_name()), out);
        }
    }

    #[test]
    fn every_value_may_start_with_a_hyphen() {
        // Base64url challenges and credential ids start with '-' once in 64; no value a
        // person pastes may be mistaken for a flag.
        let mut args = Vec::new();
        value_args(&Cli::command(), "cable", &mut args);
        assert!(args.len() > 20, "{args:?}");
        let refused: Vec<_> = args.iter().filter(|(_, ok)| !ok).map(|(a, _)| a).collect();
        assert!(
            refused.is_empty(),
            "these refuse values starting with '-': {refused:?}"
        );
    }

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    fn parse(args: &[&str]) -> Command {
        match Cli::try_parse_from(args) {
            Ok(cli) => cli.command,
            Err(e) => panic!("{args:?}: {e}"),
        }
    }

    #[test]
    fn challenges_credential_ids_and_users_may_start_with_a_hyphen() {
        let Command::Login(login) = parse(&[
            "cable",
            "login",
            "--rp-id",
            "example.com",
            "--challenge",
            "-abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG",
            "--credential-id",
            "-AQ",
            "--credential-id",
            "--w",
        ]) else {
            panic!("not login")
        };
        assert_eq!(
            login.challenge.as_deref(),
            Some("-abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG")
        );
        assert_eq!(login.credential_ids, ["-AQ", "--w"]);
        let Command::Register(register) = parse(&[
            "cable",
            "register",
            "--rp-id",
            "example.com",
            "--user",
            "-bob",
            "--display-name",
            "-Bob",
            "--challenge",
            "-_-_",
        ]) else {
            panic!("not register")
        };
        assert_eq!(register.user.as_deref(), Some("-bob"));
        assert_eq!(register.display_name.as_deref(), Some("-Bob"));
        assert_eq!(register.challenge.as_deref(), Some("-_-_"));
        #[cfg(feature = "demo")]
        {
            let Command::Demo(demo) = parse(&["cable", "demo", "--user", "-ada"]) else {
                panic!("not demo")
            };
            assert_eq!(demo.user, "-ada");
        }
    }

    #[test]
    fn flags_after_a_value_are_still_flags() {
        let Command::Login(login) = parse(&[
            "cable",
            "login",
            "--challenge",
            "-AQ",
            "--rp-id",
            "example.com",
            "--json",
        ]) else {
            panic!("not login")
        };
        assert!(login.common.json);
        assert_eq!(login.rp_id.as_deref(), Some("example.com"));
    }
}
