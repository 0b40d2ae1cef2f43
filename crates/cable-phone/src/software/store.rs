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
use passkey_types::{CredentialExtensions, Passkey, StoredHmacSecret};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::error::StoreError;

const FILE_VERSION: u32 = 1;

/// A summary of one stored credential (no key material), for listing.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
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
/// handle replaces the older credential, as platform passkey providers do.
///
/// With a file, every change is written through [`cable_store`] before the authenticator
/// answers, so an answered registration is never lost: under the file's lock, the store
/// reads what is on disk now, applies the change to that and writes it back (a fresh 0600
/// file renamed into place). Another process using the same file (a second `cable phone`)
/// therefore never loses a credential to this one, and this store picks up that process's
/// credentials at its next change. A save blocks the calling thread for as long as another
/// process holds the lock, which is one file write.
#[derive(Clone)]
pub struct PasskeyStore {
    inner: Arc<Mutex<Inner>>,
}

struct Inner {
    path: Option<PathBuf>,
    /// Newest last.
    credentials: Vec<Record>,
}

/// A credential and what the relying party keeps with it.
#[derive(Clone)]
pub(crate) struct Record {
    passkey: Passkey,
    /// The `largeBlob` data as the client sent it: DEFLATE bytes and the inflated size.
    large_blob: Option<LargeBlob>,
}

impl Record {
    fn new(passkey: Passkey) -> Self {
        Record {
            passkey,
            large_blob: None,
        }
    }
}

/// A credential's large blob, stored compressed, as it came.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct LargeBlob {
    /// Raw DEFLATE bytes.
    pub(crate) compressed: Vec<u8>,
    /// The size once inflated.
    pub(crate) original_size: u64,
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
    ///
    /// A file other users can read or write is refused ([`StoreError::File`], whose message
    /// says how to fix it), as is a symbolic link: whatever the file holds may already have
    /// been copied, and writing new keys next to it would not help.
    pub fn open(path: impl Into<PathBuf>) -> Result<Self, StoreError> {
        let path = path.into();
        let credentials = read_file(&path)?;
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
            .map(|r| &r.passkey)
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

    /// An ES256 signature (DER) over `message` by the private key of credential `id`, for
    /// self attestation; `None` for an unknown credential or a key that is not P-256.
    pub(crate) fn sign(&self, id: &[u8], message: &[u8]) -> Option<Vec<u8>> {
        use p256::ecdsa::signature::Signer;
        use passkey_crypto::coset::{iana, Label, RegisteredLabel};
        let inner = self.lock();
        let passkey = &inner
            .credentials
            .iter()
            .find(|r| r.passkey.credential_id.as_slice() == id)?
            .passkey;
        if passkey.key.kty != RegisteredLabel::Assigned(iana::KeyType::EC2) {
            return None;
        }
        let param = |label: i64| {
            passkey
                .key
                .params
                .iter()
                .find(|(l, _)| *l == Label::Int(label))
                .and_then(|(_, v)| v.as_bytes())
        };
        let p256_curve =
            passkey_crypto::coset::cbor::value::Value::from(iana::EllipticCurve::P_256 as i64);
        let curve_ok =
            passkey.key.params.iter().any(|(l, v)| {
                *l == Label::Int(iana::Ec2KeyParameter::Crv as i64) && *v == p256_curve
            });
        if !curve_ok {
            return None;
        }
        let d = Zeroizing::new(param(iana::Ec2KeyParameter::D as i64)?.clone());
        let key = p256::ecdsa::SigningKey::from_slice(&d).ok()?;
        let signature: p256::ecdsa::Signature = key.sign(message);
        Some(signature.to_der().as_bytes().to_vec())
    }

    fn add(&self, cred: Passkey) -> Result<(), StatusCode> {
        self.change(|all| {
            all.retain(|r| {
                !(r.passkey.rp_id == cred.rp_id && r.passkey.user_handle == cred.user_handle)
            });
            all.push(Record::new(cred));
        })
    }

    /// The large blob of credential `id`, if it has one.
    pub(crate) fn large_blob(&self, id: &[u8]) -> Option<LargeBlob> {
        self.lock()
            .credentials
            .iter()
            .find(|r| r.passkey.credential_id.as_slice() == id)?
            .large_blob
            .clone()
    }

    /// Replaces the large blob of credential `id`; false when there is no such credential.
    pub(crate) fn set_large_blob(&self, id: &[u8], blob: LargeBlob) -> Result<bool, StatusCode> {
        let mut found = false;
        self.change(|all| {
            for r in all.iter_mut() {
                if r.passkey.credential_id.as_slice() == id {
                    r.large_blob = Some(blob.clone());
                    found = true;
                }
            }
        })?;
        Ok(found)
    }

    fn change(&self, apply: impl FnOnce(&mut Vec<Record>)) -> Result<(), StatusCode> {
        let mut inner = self.lock();
        let Some(path) = &inner.path else {
            apply(&mut inner.credentials);
            return Ok(());
        };
        match save(path, apply) {
            Ok(now) => {
                inner.credentials = now;
                Ok(())
            }
            Err(e) => {
                // With its causes: "cannot write …" alone does not say the disk is full.
                let mut error = e.to_string();
                let mut cause = std::error::Error::source(&e);
                while let Some(c) = cause {
                    error.push_str(": ");
                    error.push_str(&c.to_string());
                    cause = c.source();
                }
                tracing::error!(path = %path.display(), %error, "could not save credential store");
                Err(Ctap2Error::Other.into())
            }
        }
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
            .map(|r| &r.passkey)
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
        self.add(cred)
    }

    async fn update_credential(&mut self, cred: &Passkey) -> Result<(), StatusCode> {
        self.change(|all| {
            for r in all.iter_mut() {
                if r.passkey.credential_id == cred.credential_id {
                    r.passkey = cred.clone();
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
    /// The `prf` (hmac-secret) secret used when the user was verified.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    prf_secret: Option<SecretText>,
    /// The `prf` secret used without user verification.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    prf_secret_without_uv: Option<SecretText>,
    /// The relying party's `largeBlob` data, compressed as it came.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    large_blob: Option<String>,
    /// Its size once inflated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    large_blob_size: Option<u64>,
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

fn encode_credential(r: &Record) -> Result<StoredCredential, StoreError> {
    let p = &r.passkey;
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
        prf_secret: p
            .extensions
            .hmac_secret
            .as_ref()
            .map(|h| SecretText(URL_SAFE_NO_PAD.encode(&h.cred_with_uv))),
        prf_secret_without_uv: p
            .extensions
            .hmac_secret
            .as_ref()
            .and_then(|h| h.cred_without_uv.as_ref())
            .map(|secret| SecretText(URL_SAFE_NO_PAD.encode(secret))),
        large_blob: r
            .large_blob
            .as_ref()
            .map(|b| URL_SAFE_NO_PAD.encode(&b.compressed)),
        large_blob_size: r.large_blob.as_ref().map(|b| b.original_size),
    })
}

fn decode_credential(index: usize, c: StoredCredential) -> Result<Record, StoreError> {
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
    let large_blob = match (&c.large_blob, c.large_blob_size) {
        (Some(data), Some(original_size)) => Some(LargeBlob {
            compressed: b64("large_blob", data)?,
            original_size,
        }),
        (None, None) => None,
        _ => {
            return Err(StoreError::BadCredential {
                index,
                field: "large_blob",
            })
        }
    };
    let passkey = Passkey {
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
        extensions: CredentialExtensions {
            hmac_secret: c
                .prf_secret
                .as_ref()
                .map(|secret| -> Result<_, StoreError> {
                    Ok(StoredHmacSecret {
                        cred_with_uv: b64("prf_secret", &secret.0)?,
                        cred_without_uv: c
                            .prf_secret_without_uv
                            .as_ref()
                            .map(|s| b64("prf_secret_without_uv", &s.0))
                            .transpose()?,
                    })
                })
                .transpose()?,
        },
    };
    Ok(Record {
        passkey,
        large_blob,
    })
}

fn decode_file(bytes: &[u8]) -> Result<Vec<Record>, StoreError> {
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

fn read_file(path: &Path) -> Result<Vec<Record>, StoreError> {
    match cable_store::read_private(path)? {
        Some(bytes) => decode_file(&bytes),
        None => Ok(Vec::new()),
    }
}

/// One locked read-modify-write of the file: `apply` sees what is on disk now, not what
/// this process read earlier, so a credential another process saved meanwhile is kept.
/// Returns the credentials as written.
fn save(path: &Path, apply: impl FnOnce(&mut Vec<Record>)) -> Result<Vec<Record>, StoreError> {
    let file = cable_store::lock(path)?;
    let mut credentials = match file.read()? {
        Some(bytes) => decode_file(&bytes)?,
        None => Vec::new(),
    };
    apply(&mut credentials);
    file.write(&encode_file(&credentials)?)?;
    Ok(credentials)
}

fn encode_file(credentials: &[Record]) -> Result<Zeroizing<Vec<u8>>, StoreError> {
    let file = StoreFile {
        version: FILE_VERSION,
        credentials: credentials
            .iter()
            .map(encode_credential)
            .collect::<Result<_, _>>()?,
    };
    Ok(Zeroizing::new(serde_json::to_vec_pretty(&file)?))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use passkey_crypto::coset::{iana, CoseKeyBuilder};

    use super::*;

    fn passkey(user: &str) -> Passkey {
        Passkey {
            key: CoseKeyBuilder::new_ec2_priv_key(
                iana::EllipticCurve::P_256,
                vec![1; 32],
                vec![2; 32],
                vec![3; 32],
            )
            .build(),
            credential_id: user.as_bytes().to_vec().into(),
            rp_id: "example.com".into(),
            user_handle: Some(user.as_bytes().to_vec().into()),
            username: Some(user.into()),
            user_display_name: None,
            counter: None,
            extensions: CredentialExtensions::default(),
        }
    }

    fn users(store: &PasskeyStore) -> Vec<String> {
        let mut names: Vec<String> = store
            .list()
            .into_iter()
            .map(|c| c.user_name.unwrap())
            .collect();
        names.sort();
        names
    }

    /// A fresh directory, removed when dropped.
    struct Dir(PathBuf);

    impl Dir {
        fn new(test: &str) -> Dir {
            let dir = std::env::temp_dir()
                .join(format!("cable-phone-store-{test}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            Dir(dir)
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn two_stores_on_one_file_keep_each_others_credentials() {
        let dir = Dir::new("two");
        let path = dir.0.join("passkeys.json");
        // Both opened before either saved, as two `cable phone` processes would be.
        let first = PasskeyStore::open(&path).unwrap();
        let second = PasskeyStore::open(&path).unwrap();
        first.add(passkey("alice")).unwrap();
        second.add(passkey("bob")).unwrap();
        assert_eq!(users(&second), ["alice", "bob"]);
        first.add(passkey("carol")).unwrap();
        assert_eq!(
            users(&PasskeyStore::open(&path).unwrap()),
            ["alice", "bob", "carol"]
        );
    }

    #[test]
    fn concurrent_saves_through_separate_stores_lose_nothing() {
        let dir = Dir::new("threads");
        let path = dir.0.join("passkeys.json");
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let store = PasskeyStore::open(&path).unwrap();
                std::thread::spawn(move || {
                    for i in 0..8 {
                        store.add(passkey(&format!("{t}-{i}"))).unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(PasskeyStore::open(&path).unwrap().list().len(), 4 * 8);
    }

    #[cfg(unix)]
    mod unix {
        use std::os::unix::fs::{symlink, PermissionsExt};

        use super::*;

        fn mode(path: &Path) -> u32 {
            std::fs::symlink_metadata(path)
                .unwrap()
                .permissions()
                .mode()
                & 0o777
        }

        fn chmod(path: &Path, mode: u32) {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
        }

        #[test]
        fn a_world_readable_leftover_temp_file_never_becomes_the_store() {
            let dir = Dir::new("leftover");
            let path = dir.0.join("passkeys.json");
            let leftover = dir.0.join("passkeys.json.tmp");
            std::fs::write(&leftover, b"left over").unwrap();
            chmod(&leftover, 0o644);
            let store = PasskeyStore::open(&path).unwrap();
            store.add(passkey("alice")).unwrap();
            assert_eq!(mode(&path), 0o600);
            assert_eq!(std::fs::read(&leftover).unwrap(), b"left over");
            assert_eq!(users(&PasskeyStore::open(&path).unwrap()), ["alice"]);
        }

        #[test]
        fn a_symbolic_link_at_the_temp_path_is_not_written_through() {
            let dir = Dir::new("symlink");
            let path = dir.0.join("passkeys.json");
            let victim = dir.0.join("victim");
            std::fs::write(&victim, b"victim").unwrap();
            chmod(&victim, 0o644);
            symlink(&victim, dir.0.join("passkeys.json.tmp")).unwrap();
            let store = PasskeyStore::open(&path).unwrap();
            store.add(passkey("alice")).unwrap();
            assert_eq!(std::fs::read(&victim).unwrap(), b"victim");
            assert!(std::fs::symlink_metadata(&path).unwrap().is_file());
            assert_eq!(mode(&path), 0o600);
        }

        #[test]
        fn a_store_other_users_can_read_is_refused_in_one_line() {
            let dir = Dir::new("exposed");
            let path = dir.0.join("passkeys.json");
            PasskeyStore::open(&path)
                .unwrap()
                .add(passkey("alice"))
                .unwrap();
            chmod(&path, 0o644);
            let err = PasskeyStore::open(&path).unwrap_err();
            assert!(
                matches!(
                    err,
                    StoreError::File(cable_store::Error::Exposed { mode: 0o644, .. })
                ),
                "{err:?}"
            );
            assert_eq!(
                err.to_string(),
                format!(
                    "`{0}` is readable by other users (mode 0644); run `chmod 600 {0}`",
                    path.display()
                )
            );
            chmod(&path, 0o600);
            assert_eq!(users(&PasskeyStore::open(&path).unwrap()), ["alice"]);
        }

        #[test]
        fn a_failed_save_changes_nothing_and_says_so() {
            let dir = Dir::new("failed");
            let path = dir.0.join("passkeys.json");
            let store = PasskeyStore::open(&path).unwrap();
            store.add(passkey("alice")).unwrap();
            // Someone opened the file up meanwhile: saving refuses to read it.
            chmod(&path, 0o644);
            assert!(store.add(passkey("bob")).is_err());
            assert_eq!(users(&store), ["alice"]);
            chmod(&path, 0o600);
            assert_eq!(users(&PasskeyStore::open(&path).unwrap()), ["alice"]);
        }
    }
}
