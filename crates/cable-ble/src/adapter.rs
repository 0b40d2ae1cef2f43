//! Choosing and describing a local Bluetooth adapter (shared by scanner and advertiser).

use std::fmt;

use crate::BleError;

/// Which local Bluetooth adapter to use.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum AdapterChoice {
    /// `hci0` if present, else the first adapter by name.
    #[default]
    Default,
    /// The adapter with this name (`hci1`) or address (`00:1A:7D:DA:71:13`, any case).
    Named(String),
}

impl AdapterChoice {
    /// Parses a command-line value: empty or `default` pick the default adapter.
    pub fn parse(value: &str) -> Self {
        let value = value.trim();
        if value.is_empty() || value.eq_ignore_ascii_case("default") {
            AdapterChoice::Default
        } else {
            AdapterChoice::Named(value.to_owned())
        }
    }

    /// Index of the chosen adapter in `adapters` (sorted by name by the caller).
    #[cfg_attr(not(any(feature = "btleplug", feature = "bluez")), allow(dead_code))]
    pub(crate) fn pick(&self, adapters: &[AdapterReport]) -> Result<usize, BleError> {
        if adapters.is_empty() {
            return Err(BleError::NoAdapter);
        }
        match self {
            AdapterChoice::Default => {
                Ok(adapters.iter().position(|a| a.name == "hci0").unwrap_or(0))
            }
            AdapterChoice::Named(wanted) => adapters
                .iter()
                .position(|a| {
                    a.name == *wanted
                        || a.address
                            .as_deref()
                            .is_some_and(|addr| addr.eq_ignore_ascii_case(wanted))
                })
                .ok_or_else(|| BleError::AdapterNotFound {
                    wanted: wanted.clone(),
                    available: adapters.iter().map(|a| a.name.clone()).collect(),
                }),
        }
    }
}

/// What is known about one local adapter.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AdapterReport {
    /// Platform name (`hci0` on Linux).
    pub name: String,
    /// Its Bluetooth address, when the platform reports one.
    pub address: Option<String>,
    /// `Some(true)` when on, `Some(false)` when off, `None` when the platform cannot tell yet.
    pub powered: Option<bool>,
}

/// The outcome of [`crate::diagnose`]: what was found and the first thing in the way of scanning.
#[derive(Debug)]
#[non_exhaustive]
pub struct Diagnosis {
    /// Every adapter the Bluetooth service reported.
    pub adapters: Vec<AdapterReport>,
    /// The adapter a scan would use.
    pub selected: Option<String>,
    /// Why a scan would fail; `None` when it should work.
    pub problem: Option<BleError>,
}

impl Diagnosis {
    /// Whether a scan should be able to start.
    pub fn is_ready(&self) -> bool {
        self.problem.is_none()
    }
}

impl fmt::Display for Diagnosis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for a in &self.adapters {
            let power = match a.powered {
                Some(true) => "powered on",
                Some(false) => "powered off",
                None => "power state unknown",
            };
            let selected = if self.selected.as_deref() == Some(a.name.as_str()) {
                " (selected)"
            } else {
                ""
            };
            writeln!(
                f,
                "adapter {} [{}]: {}{}",
                a.name,
                a.address.as_deref().unwrap_or("address unknown"),
                power,
                selected
            )?;
        }
        match &self.problem {
            None => write!(f, "Bluetooth: ready to scan"),
            Some(problem) => {
                // Messages leave their cause to `source()`; a person needs both.
                write!(f, "Bluetooth: not usable: {problem}")?;
                let mut source = std::error::Error::source(problem);
                while let Some(cause) = source {
                    write!(f, ": {cause}")?;
                    source = cause.source();
                }
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(name: &str, address: &str) -> AdapterReport {
        AdapterReport {
            name: name.into(),
            address: Some(address.into()),
            powered: Some(true),
        }
    }

    #[test]
    fn parses_default_and_names() {
        assert_eq!(AdapterChoice::parse(""), AdapterChoice::Default);
        assert_eq!(AdapterChoice::parse("Default"), AdapterChoice::Default);
        assert_eq!(
            AdapterChoice::parse(" hci1 "),
            AdapterChoice::Named("hci1".into())
        );
    }

    #[test]
    fn picks_by_name_address_or_default() {
        let list = [
            report("hci0", "00:01:02:03:04:05"),
            report("hci1", "AA:BB:CC:DD:EE:FF"),
        ];
        assert_eq!(AdapterChoice::Default.pick(&list).ok(), Some(0));
        assert_eq!(AdapterChoice::parse("hci1").pick(&list).ok(), Some(1));
        assert_eq!(
            AdapterChoice::parse("aa:bb:cc:dd:ee:ff").pick(&list).ok(),
            Some(1)
        );
        match AdapterChoice::parse("hci7").pick(&list) {
            Err(BleError::AdapterNotFound { wanted, available }) => {
                assert_eq!(wanted, "hci7");
                assert_eq!(available, ["hci0", "hci1"]);
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(matches!(
            AdapterChoice::Default.pick(&[]),
            Err(BleError::NoAdapter)
        ));
    }
}
