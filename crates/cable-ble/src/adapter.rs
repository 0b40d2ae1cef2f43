//! Choosing and describing a local Bluetooth adapter (shared by scanner and advertiser).

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
    pub(crate) fn pick(&self, adapters: &[AdapterReport]) -> Result<usize, crate::BleError> {
        if adapters.is_empty() {
            return Err(crate::BleError::NoAdapter);
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
                .ok_or_else(|| crate::BleError::AdapterNotFound {
                    wanted: wanted.clone(),
                    available: adapters.iter().map(|a| a.name.clone()).collect(),
                }),
        }
    }
}

/// What is known about one local adapter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdapterReport {
    /// Platform name (`hci0` on Linux).
    pub name: String,
    /// Its Bluetooth address, when the platform reports one.
    pub address: Option<String>,
    /// `Some(true)` when on, `Some(false)` when off, `None` when the platform cannot tell yet.
    pub powered: Option<bool>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::BleError;

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
