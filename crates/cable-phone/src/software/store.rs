//! Resident credentials, in memory and optionally persisted to a JSON file.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use passkey_authenticator::{CredentialStore, DiscoverabilitySupport, StoreInfo};
use passkey_crypto::coset::{CborSerializable, CoseKey};
use passkey_types::ctap2::make_credential::{
    Options, PublicKeyCredentialRpEntity, PublicKeyCredentialUserEntity,
};
use passkey_types::ctap2::{Ctap2Error, StatusCode};
use passkey_types::webauthn::PublicKeyCredentialDescriptor;
use passkey_types::{CredentialExtensions, Passkey};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::error::StoreError;

const FILE_VERSION: u32 = 1;

/// A summary of one stored credential (no key material), for listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialInfo {
    /// The credential id.
    pub credential_id: Vec<u8>,
    /// The relying party id.
    pub rp_id: String,
    /// The user handle given at registration.
    pub user_handle: Option<Vec<u8>>,
    /// The user name given at registration.
    pub user_name: Option<String>,
}

/// The credential store of the software authenticator. Cheap to clone; clones share state.
///
/// Every credential is discoverable. Registering again for the same relying party and user
/// handle replaces the older credential, as platform passkey providers do. With a file, every
/// change is written through (to a temporary file, then renamed; mode 0600 on Unix) before the
/// authenticator answers, so an answered registration is never lost.
#[derive(Clone)]
pub struct PasskeyStore {
    inner: Arc<Mutex<Inner>>,
}

struct Inner {
    path: Option<PathBuf>,
    /// Newest last.
    credentials: Vec<Passkey>,
}

impl fmt::Debug for PasskeyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = self.lock();
        f.debug_struct("PasskeyStore")
            .field("path", &inner.path)
            .field("credentials", &inner.credentials.len())
            .finish()
    }
}

impl Default for PasskeyStore {
    fn default() -> Self {
        Self::in_memory()
    }
}

impl PasskeyStore {
    /// A store that lives only as long as the process.
    pub fn in_memory() -> Self {
        Self {
            inner: Arc::new(Mutex::new(Inner {
                path: None,
                credentials: Vec::new(),
            })),
        }
    }

    /// Opens (or, if missing, starts) a store persisted at `path`.
    pub fn open(path: impl Into<PathBuf>) -> Result<Self, StoreError> {
        let path = path.into();
        let credentials = match std::fs::read(&path) {
            Ok(bytes) => decode_file(&bytes)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(StoreError::Io(e)),
        };
        Ok(Self {
            inner: Arc::new(Mutex::new(Inner {
                path: Some(path),
                credentials,
            })),
        })
    }

    /// The file backing this store, if any.
    pub fn path(&self) -> Option<PathBuf> {
        self.lock().path.clone()
    }

    /// The stored credentials, oldest first.
    pub fn list(&self) -> Vec<CredentialInfo> {
        self.lock()
            .credentials
            .iter()
            .map(|p| CredentialInfo {
                credential_id: p.credential_id.to_vec(),
                rp_id: p.rp_id.clone(),
                user_handle: p.user_handle.as_ref().map(|h| h.to_vec()),
                user_name: p.username.clone(),
            })
            .collect()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // No code path panics while holding the lock; recover the data if one ever does.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn change(&self, apply: impl FnOnce(&mut Vec<Passkey>)) -> Result<(), StatusCode> {
        let mut inner = self.lock();
        let mut next = inner.credentials.clone();
        apply(&mut next);
        if let Some(path) = &inner.path {
            if let Err(e) = write_file(path, &next) {
                tracing::error!(path = %path.display(), error = %e, "could not save credential store");
                return Err(Ctap2Error::Other.into());
            }
        }
        inner.credentials = next;
        Ok(())
    }
}

#[async_trait::async_trait]
impl CredentialStore for PasskeyStore {
    type PasskeyItem = Passkey;

    async fn find_credentials(
        &self,
        ids: Option<&[PublicKeyCredentialDescriptor]>,
        rp_id: &str,
        user_handle: Option<&[u8]>,
    ) -> Result<Vec<Passkey>, StatusCode> {
        let inner = self.lock();
        let found: Vec<Passkey> = inner
            .credentials
            .iter()
            .rev()
            .filter(|p| p.rp_id == rp_id)
            .filter(|p| match ids {
                Some(ids) => ids.iter().any(|d| *d.id == *p.credential_id),
                None => true,
            })
            .filter(|p| match user_handle {
                // Exclude-list checks pass the new user's handle; any listed id matches.
                Some(_) if ids.is_some() => true,
                Some(h) => p.user_handle.as_deref().map(|u| &u[..]) == Some(h),
                None => true,
            })
            .cloned()
            .collect();
        if found.is_empty() {
            Err(Ctap2Error::NoCredentials.into())
        } else {
            Ok(found)
        }
    }

    async fn save_credential(
        &mut self,
        cred: Passkey,
        _user: PublicKeyCredentialUserEntity,
        _rp: PublicKeyCredentialRpEntity,
        _options: Options,
    ) -> Result<(), StatusCode> {
        self.change(|all| {
            all.retain(|p| !(p.rp_id == cred.rp_id && p.user_handle == cred.user_handle));
            all.push(cred);
        })
    }

    async fn update_credential(&mut self, cred: &Passkey) -> Result<(), StatusCode> {
        self.change(|all| {
            for p in all.iter_mut() {
                if p.credential_id == cred.credential_id {
                    *p = cred.clone();
                }
            }
        })
    }

    async fn get_info(&self) -> StoreInfo {
        StoreInfo {
            discoverability: DiscoverabilitySupport::ForcedDiscoverable,
        }
    }
}

#[derive(Serialize, Deserialize)]
struct StoreFile {
    version: u32,
    credentials: Vec<StoredCredential>,
}

/// One credential as written to disk; binary fields are base64url without padding.
#[derive(Serialize, Deserialize)]
struct StoredCredential {
    credential_id: String,
    rp_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    user_handle: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    user_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    user_display_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    counter: Option<u32>,
    /// The COSE private key.
    private_key: SecretText,
}

/// Text holding key material: wiped when dropped.
#[derive(Serialize, Deserialize)]
#[serde(transparent)]
struct SecretText(String);

impl Drop for SecretText {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.0);
    }
}

fn encode_credential(p: &Passkey) -> Result<StoredCredential, StoreError> {
    let key = Zeroizing::new(
        p.key
            .clone()
            .to_vec()
            .map_err(|_| StoreError::BadCredential {
                index: 0,
                field: "private_key",
            })?,
    );
    Ok(StoredCredential {
        credential_id: URL_SAFE_NO_PAD.encode(&*p.credential_id),
        rp_id: p.rp_id.clone(),
        user_handle: p.user_handle.as_ref().map(|h| URL_SAFE_NO_PAD.encode(&**h)),
        user_name: p.username.clone(),
        user_display_name: p.user_display_name.clone(),
        counter: p.counter,
        private_key: SecretText(URL_SAFE_NO_PAD.encode(&*key)),
    })
}

fn decode_credential(index: usize, c: StoredCredential) -> Result<Passkey, StoreError> {
    let b64 = |field: &'static str, text: &str| {
        URL_SAFE_NO_PAD
            .decode(text)
            .map_err(|_| StoreError::BadCredential { index, field })
    };
    let key_bytes = Zeroizing::new(b64("private_key", &c.private_key.0)?);
    let key = CoseKey::from_slice(&key_bytes).map_err(|_| StoreError::BadCredential {
        index,
        field: "private_key",
    })?;
    Ok(Passkey {
        key,
        credential_id: b64("credential_id", &c.credential_id)?.into(),
        rp_id: c.rp_id,
        user_handle: c
            .user_handle
            .as_deref()
            .map(|h| b64("user_handle", h))
            .transpose()?
            .map(Into::into),
        username: c.user_name,
        user_display_name: c.user_display_name,
        counter: c.counter,
        extensions: CredentialExtensions::default(),
    })
}

fn decode_file(bytes: &[u8]) -> Result<Vec<Passkey>, StoreError> {
    let file: StoreFile = serde_json::from_slice(bytes)?;
    if file.version != FILE_VERSION {
        return Err(StoreError::UnsupportedVersion(file.version));
    }
    file.credentials
        .into_iter()
        .enumerate()
        .map(|(i, c)| decode_credential(i, c))
        .collect()
}

fn write_file(path: &Path, credentials: &[Passkey]) -> Result<(), StoreError> {
    let file = StoreFile {
        version: FILE_VERSION,
        credentials: credentials
            .iter()
            .map(encode_credential)
            .collect::<Result<_, _>>()?,
    };
    let json = Zeroizing::new(serde_json::to_vec_pretty(&file)?);
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    write_private(&tmp, &json)?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}

#[cfg(unix)]
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

#[cfg(not(unix))]
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::write(path, bytes)
}
