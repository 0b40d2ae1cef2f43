//! `cable phones`: the phones linked to this computer, and where they are kept.
//!
//! A phone links during a QR ceremony (`cable register`/`login`) when it offers linking data
//! and that data's signature verifies; this command lists, renames and forgets them.

use std::io::Write;
use std::path::PathBuf;

use cable_client::{LinkedPhone, LinkedPhones};
use clap::{Args, Subcommand};
use serde_json::json;

use crate::error::CliError;

/// Where the linked phones are kept; shared by `phones`, `register` and `login`.
#[derive(Debug, Clone, Args)]
pub struct StoreArgs {
    /// The linked-phone store [default: $XDG_DATA_HOME/cable/linked-phones.json, else
    /// ~/.local/share/cable/linked-phones.json].
    #[arg(
        long,
        env = "CABLE_PHONES_FILE",
        value_name = "FILE",
        allow_hyphen_values = true
    )]
    pub phones_file: Option<PathBuf>,
}

impl StoreArgs {
    /// The store's path: the flag, the environment, or the XDG default.
    pub fn path(&self) -> Result<PathBuf, CliError> {
        self.phones_file
            .clone()
            .or_else(LinkedPhones::default_path)
            .ok_or(CliError::NoDataDir)
    }

    /// Opens the store (an absent file is an empty store).
    pub fn open(&self) -> Result<LinkedPhones, CliError> {
        Ok(LinkedPhones::open(self.path()?)?)
    }
}

/// `cable phones`.
#[derive(Debug, Args)]
pub struct PhonesArgs {
    #[command(subcommand)]
    command: PhonesCommand,
    #[command(flatten)]
    store: StoreArgs,
}

#[derive(Debug, Subcommand)]
enum PhonesCommand {
    /// List the linked phones: name, the name the phone gave itself, id, relay domain id and
    /// when it linked. With --json, one JSON array (no secrets).
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Give a linked phone another name (names are unique).
    Rename {
        /// The phone's current name.
        #[arg(allow_hyphen_values = true)]
        old: String,
        /// The new name.
        #[arg(allow_hyphen_values = true)]
        new: String,
    },
    /// Forget a linked phone: this computer will need a QR code to use it again. The phone
    /// keeps its side of the link until it unlinks too.
    Forget {
        /// The phone's name.
        #[arg(allow_hyphen_values = true, required_unless_present = "all")]
        name: Option<String>,
        /// Forget every linked phone.
        #[arg(long, conflicts_with = "name")]
        all: bool,
    },
}

/// Runs `cable phones …`.
pub fn run(args: &PhonesArgs) -> Result<(), CliError> {
    let store = args.store.open()?;
    let mut out = std::io::stdout().lock();
    let text = match &args.command {
        PhonesCommand::List { json } => {
            let phones = store.list();
            if *json {
                let list: Vec<_> = phones.iter().map(phone_json).collect();
                serde_json::Value::Array(list).to_string()
            } else if phones.is_empty() {
                "no linked phones (a phone links when it offers to during `cable register` or \
                 `cable login`)"
                    .to_owned()
            } else {
                table(&phones)
            }
        }
        PhonesCommand::Rename { old, new } => {
            let phone = store.rename(old, new)?;
            format!("renamed {old:?} to {:?}", phone.name)
        }
        PhonesCommand::Forget { all: true, .. } => {
            let mut forgotten = 0;
            for phone in store.list() {
                store.forget(&phone.name)?;
                forgotten += 1;
            }
            format!("forgot {forgotten} linked phone(s)")
        }
        PhonesCommand::Forget { name, .. } => {
            let name = name.as_deref().unwrap_or_default();
            let phone = store.forget(name)?;
            format!("forgot {:?}", phone.name)
        }
    };
    writeln!(out, "{text}").map_err(CliError::Stdout)
}

/// A phone as `phones list --json` prints it: everything but the capabilities (contact id,
/// link secret).
fn phone_json(phone: &LinkedPhone) -> serde_json::Value {
    json!({
        "name": phone.name,
        "authenticator_name": phone.authenticator_name,
        "id": phone.id(),
        "domain_id": phone.domain_id,
        "linked_at": phone.linked_at,
    })
}

fn table(phones: &[LinkedPhone]) -> String {
    let width = phones
        .iter()
        .map(|p| p.name.chars().count())
        .max()
        .unwrap_or(0)
        .max("NAME".len());
    let mut text = format!(
        "{:width$}  {:16}  {:>6}  LINKED (UTC)",
        "NAME", "ID", "DOMAIN"
    );
    for p in phones {
        text.push_str(&format!(
            "\n{:width$}  {:16}  {:>6}  {}",
            p.name,
            p.id(),
            p.domain_id,
            utc(p.linked_at)
        ));
    }
    text
}

/// `YYYY-MM-DD HH:MM` from Unix seconds.
pub(crate) fn utc(secs: u64) -> String {
    let Ok(at) = i64::try_from(secs)
        .map_err(drop)
        .and_then(|s| time::OffsetDateTime::from_unix_timestamp(s).map_err(drop))
    else {
        return format!("{secs} s after 1970");
    };
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_utc() {
        assert_eq!(utc(0), "1970-01-01 00:00");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00");
        assert_eq!(utc(1_796_223_600), "2026-12-02 15:00");
    }
}
