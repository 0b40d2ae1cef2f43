//! The phone's long-term identity for linked computers: what lets a computer that linked
//! during a QR ceremony reach this phone later without a QR code.

use std::sync::Arc;
use std::time::Duration;

use cable_phone::LinkSelector;
use cable_transport::{Connector, RelayUrl};

use crate::error::SessionError;
use crate::runtime;

/// How long registering with the relay may take.
const REGISTER_TIMEOUT: Duration = Duration::from_secs(30);

/// Why the identity could not be read, written or registered.
#[derive(Debug, thiserror::Error, uniffi::Error)]
pub enum IdentityError {
    /// The identity file cannot be used: unreadable, malformed, readable by other users, a
    /// symbolic link, or not writable.
    #[error("{reason}")]
    Storage {
        /// What is wrong, naming the file.
        reason: String,
    },
    /// An argument cannot be used (a relay or push endpoint URL, a name).
    #[error("{reason}")]
    InvalidArgument {
        /// What is wrong.
        reason: String,
    },
    /// The relay could not be reached or refused the registration.
    #[error("{reason}")]
    Network {
        /// What the transport reported.
        reason: String,
    },
    /// The binding's runtime could not start, or a blocking call was made on one of its
    /// threads.
    #[error("{reason}")]
    Runtime {
        /// What went wrong.
        reason: String,
    },
}

impl From<cable_phone::IdentityError> for IdentityError {
    fn from(error: cable_phone::IdentityError) -> Self {
        match error {
            cable_phone::IdentityError::BadName { .. } => IdentityError::InvalidArgument {
                reason: crate::error::chain(&error),
            },
            _ => IdentityError::Storage {
                reason: crate::error::chain(&error),
            },
        }
    }
}

impl From<SessionError> for IdentityError {
    fn from(error: SessionError) -> Self {
        IdentityError::Runtime {
            reason: error.to_string(),
        }
    }
}

/// A computer this phone linked to.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct LinkedComputer {
    /// The link id the computer sends back when it contacts the phone.
    pub link_id: Vec<u8>,
    /// What the person called the computer when the link was made, if anything.
    pub name: Option<String>,
    /// When the link was made, in seconds since the Unix epoch.
    pub created_unix_secs: u64,
}

/// The phone's identity: a root secret from which its identity key, its Web Push
/// subscription keys and every link secret are derived, and the list of linked computers.
///
/// Kept in a file the app chooses (in its private storage); every change is a locked
/// read-modify-write, so sessions running at once never lose each other's links. The file
/// holds the root secret: whoever reads it can answer for this phone.
#[derive(Debug, uniffi::Object)]
pub struct PhoneIdentity {
    pub(crate) inner: cable_phone::PhoneIdentity,
}

#[uniffi::export]
impl PhoneIdentity {
    /// Opens the identity at `path`, creating it with a fresh random root secret if the file
    /// does not exist. A file other users can read or write, or a symbolic link, is refused.
    #[uniffi::constructor]
    pub fn open(path: String) -> Result<Arc<Self>, IdentityError> {
        let inner =
            cable_phone::PhoneIdentity::open_or_create(path, &mut cable_proto::rand_core::OsRng)?;
        Ok(Arc::new(PhoneIdentity { inner }))
    }

    /// The name computers show for this phone (sent with linking data); `None` restores the
    /// default (the device's host name).
    pub fn set_name(&self, name: Option<String>) -> Result<(), IdentityError> {
        Ok(self.inner.set_name(name)?)
    }

    /// The name computers show for this phone.
    pub fn name(&self) -> String {
        self.inner.name()
    }

    /// The contact id the relay issued at the last registration, if any. Only a phone with a
    /// contact id offers computers a link.
    pub fn contact_id(&self) -> Option<Vec<u8>> {
        self.inner.contact_id()
    }

    /// The Web Push subscription to hand the app's push service for `push_endpoint`, as
    /// the JSON `{"endpoint", "keys": {"p256dh", "auth"}}` (the keys are the identity's).
    pub fn subscription_json(&self, push_endpoint: String) -> Result<String, IdentityError> {
        self.inner
            .push_keys()
            .subscription_json(&push_endpoint)
            .map_err(|e| IdentityError::InvalidArgument {
                reason: crate::error::chain(&e),
            })
    }

    /// Registers this phone's Web Push subscription (`push_endpoint`, the URL the app's push
    /// service gave it) with the relay, and keeps the contact id the relay returns. Blocks
    /// until the relay answered (at most 30 seconds); call it from a worker thread.
    pub fn register_for_contacts(
        &self,
        relay_url: String,
        push_endpoint: String,
    ) -> Result<(), IdentityError> {
        if tokio::runtime::Handle::try_current().is_ok() {
            return Err(IdentityError::Runtime {
                reason: "register_for_contacts() was called on one of the binding's threads".into(),
            });
        }
        let relay = RelayUrl::parse(&relay_url).map_err(|e| IdentityError::InvalidArgument {
            reason: format!("relay_url {relay_url:?}: {e}"),
        })?;
        let connector = Connector::new().map_err(|e| IdentityError::Network {
            reason: crate::error::chain(&e),
        })?;
        let deadline = cable_transport::Instant::now() + REGISTER_TIMEOUT;
        runtime::get()?
            .block_on(cable_phone::register_for_contacts(
                &self.inner,
                &connector,
                &relay,
                &push_endpoint,
                deadline,
            ))
            .map(|_| ())
            .map_err(|e| match e {
                cable_phone::PushError::BadEndpoint(_) => IdentityError::InvalidArgument {
                    reason: crate::error::chain(&e),
                },
                cable_phone::PushError::Identity(e) => e.into(),
                other => IdentityError::Network {
                    reason: crate::error::chain(&other),
                },
            })
    }

    /// The computers this phone is linked to (read afresh from the file).
    pub fn links(&self) -> Result<Vec<LinkedComputer>, IdentityError> {
        self.inner.reload()?;
        Ok(self
            .inner
            .links()
            .into_iter()
            .map(|link| LinkedComputer {
                link_id: link.link_id,
                name: link.computer,
                created_unix_secs: link.created,
            })
            .collect())
    }

    /// Forgets the link with this id: that computer can no longer reach the phone. Returns
    /// whether there was one.
    pub fn unlink(&self, link_id: Vec<u8>) -> Result<bool, IdentityError> {
        match self.inner.unlink(&LinkSelector::Id(link_id)) {
            Ok(removed) => Ok(!removed.is_empty()),
            Err(cable_phone::IdentityError::NoSuchLink { .. }) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }
}
