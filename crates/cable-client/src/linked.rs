//! Linked phones: what a phone handed over in a QR session so that later ceremonies can reach
//! it without a QR code (PROTOCOL.md §8.4, §10).
//!
//! One entry per phone identity key: a new link from the same phone replaces its old entry
//! (keeping the name the person gave it), and only linking data whose handshake signature
//! verified is ever added, so a forged link can neither appear nor evict a real one. Names are
//! unique, as a person expects when naming devices: a second "Pixel 8" is stored as
//! "Pixel 8 (2)".
//!
//! [`LinkedPhones`] is the store: in memory, or a JSON file written atomically with mode 0600
//! (the link secrets are as sensitive as the passkeys they unlock). Each change re-reads the
//! file under a lock, applies itself and writes the result back, so two processes sharing a
//! store never lose each other's links.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use cable_proto::keys;
use cable_proto::message::{LinkSecret, LinkingInfo};
use p256::PublicKey;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

const FILE_VERSION: u32 = 1;
/// File name under the data directory (`$XDG_DATA_HOME/cable/`).
pub const DEFAULT_FILE_NAME: &str = "linked-phones.json";

/// One linked phone.
#[derive(Clone, PartialEq, Eq)]
pub struct LinkedPhone {
    /// The name shown to the person; unique within a store.
    pub name: String,
    /// The name the phone gave itself when it linked (key 5).
    pub authenticator_name: String,
    /// The phone's long-term identity key (key 4): the NKpsk0 responder key, and the entry's
    /// identity.
    pub identity_public_key: PublicKey,
    /// Opaque id the relay uses to wake the phone (key 1).
    pub contact_id: Vec<u8>,
    /// Identifies this link to the phone (key 2).
    pub link_id: Vec<u8>,
    /// The secret shared with the phone (key 3).
    pub link_secret: LinkSecret,
    /// The tunnel-server domain id the phone's QR-session advert named: where to contact it.
    pub domain_id: u16,
    /// When the link was made, in seconds since the Unix epoch.
    pub linked_at: u64,
}

impl fmt::Debug for LinkedPhone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The contact id and link secret are capabilities; the key's hash is enough to tell
        // phones apart in a log.
        f.debug_struct("LinkedPhone")
            .field("name", &self.name)
            .field("authenticator_name", &self.authenticator_name)
            .field("id", &self.id())
            .field("domain_id", &self.domain_id)
            .field("linked_at", &self.linked_at)
            .finish_non_exhaustive()
    }
}

impl LinkedPhone {
    /// A short, stable id for the phone: the first 8 bytes of SHA-256 of its compressed
    /// identity key, in hex. Safe to print.
    pub fn id(&self) -> String {
        use sha2::Digest;
        let digest = sha2::Sha256::digest(keys::compressed(&self.identity_public_key));
        hex::encode(&digest[..8])
    }

    fn from_linking(linking: &LinkingInfo, domain_id: u16, linked_at: u64) -> Self {
        LinkedPhone {
            name: linking.name.clone(),
            authenticator_name: linking.name.clone(),
            identity_public_key: linking.identity_public_key,
            contact_id: linking.contact_id.clone(),
            link_id: linking.link_id.clone(),
            link_secret: linking.link_secret.clone(),
            domain_id,
            linked_at,
        }
    }
}

/// Why the linked-phone store refused an operation.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LinkedStoreError {
    /// The file could not be read, written or locked (the source names the file).
    #[error("the linked-phone store cannot be used")]
    Io {
        /// What went wrong, with the file's path.
        #[source]
        source: cable_store::Error,
    },
    /// The store's directory could not be created.
    #[error("cannot create the directory {}", path.display())]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// What the system said.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a linked-phone store this version understands.
    #[error("linked-phone store {} is not valid: {why}", path.display())]
    Format {
        /// The store's file.
        path: PathBuf,
        /// What is wrong with it.
        why: String,
    },
    /// No phone has this name.
    #[error("no linked phone is named {name:?}")]
    NotFound {
        /// The name asked for.
        name: String,
    },
    /// Another phone already has this name.
    #[error("another linked phone is already named {name:?}")]
    NameTaken {
        /// The name asked for.
        name: String,
    },
    /// A name must have a visible character.
    #[error("a phone's name cannot be empty")]
    EmptyName,
}

impl LinkedStoreError {
    /// Whether the caller asked for something the store cannot do (an unknown or taken name),
    /// as opposed to the file failing.
    pub fn is_input_error(&self) -> bool {
        matches!(
            self,
            LinkedStoreError::NotFound { .. }
                | LinkedStoreError::NameTaken { .. }
                | LinkedStoreError::EmptyName
        )
    }
}

/// The linked phones of this computer. Cheap to clone; clones share state.
#[derive(Clone)]
pub struct LinkedPhones {
    inner: Arc<Mutex<Inner>>,
}

struct Inner {
    path: Option<PathBuf>,
    phones: Vec<LinkedPhone>,
}

impl fmt::Debug for LinkedPhones {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = self.lock();
        f.debug_struct("LinkedPhones")
            .field("path", &inner.path)
            .field("phones", &inner.phones.len())
            .finish()
    }
}

impl LinkedPhones {
    /// A store that lives only as long as the process.
    pub fn in_memory() -> Self {
        LinkedPhones {
            inner: Arc::new(Mutex::new(Inner {
                path: None,
                phones: Vec::new(),
            })),
        }
    }

    /// Opens the store at `path`; a missing file is an empty store (created on the first link).
    pub fn open(path: impl Into<PathBuf>) -> Result<Self, LinkedStoreError> {
        let path = path.into();
        let phones = load(&path)?;
        Ok(LinkedPhones {
            inner: Arc::new(Mutex::new(Inner {
                path: Some(path),
                phones,
            })),
        })
    }

    /// `$XDG_DATA_HOME/cable/linked-phones.json`, or `~/.local/share/cable/…` when
    /// `XDG_DATA_HOME` is unset or not absolute (as the XDG base directory spec says).
    pub fn default_path() -> Option<PathBuf> {
        let base = match std::env::var_os("XDG_DATA_HOME").map(PathBuf::from) {
            Some(dir) if dir.is_absolute() => dir,
            _ => PathBuf::from(std::env::var_os("HOME")?).join(".local/share"),
        };
        Some(base.join("cable").join(DEFAULT_FILE_NAME))
    }

    /// The file backing this store, if any.
    pub fn path(&self) -> Option<PathBuf> {
        self.lock().path.clone()
    }

    /// The linked phones, oldest link first.
    pub fn list(&self) -> Vec<LinkedPhone> {
        self.lock().phones.clone()
    }

    /// The phone named `name`.
    pub fn get(&self, name: &str) -> Result<LinkedPhone, LinkedStoreError> {
        self.lock()
            .phones
            .iter()
            .find(|p| p.name == name)
            .cloned()
            .ok_or_else(|| LinkedStoreError::NotFound {
                name: name.to_owned(),
            })
    }

    /// Stores linking data whose signature verified, seen in a QR session whose advert named
    /// `domain_id`. Replaces the entry of the same phone (same identity key), keeping its name;
    /// a new phone gets its own name, made unique. Returns the stored entry.
    ///
    /// Callers must pass only verified data ([`cable_proto::session::DesktopEvent::Linking`]
    /// with `verified`), which is what makes "never evicts another phone" hold.
    pub fn add_verified(
        &self,
        linking: &LinkingInfo,
        domain_id: u16,
        linked_at: u64,
    ) -> Result<LinkedPhone, LinkedStoreError> {
        let new = LinkedPhone::from_linking(linking, domain_id, linked_at);
        self.update(move |phones| {
            let entry = match phones
                .iter()
                .position(|p| p.identity_public_key == new.identity_public_key)
            {
                Some(i) => {
                    let name = phones[i].name.clone();
                    phones[i] = LinkedPhone { name, ..new };
                    phones[i].clone()
                }
                None => {
                    let name = unique_name(phones, &new.authenticator_name);
                    phones.push(LinkedPhone { name, ..new });
                    phones[phones.len() - 1].clone()
                }
            };
            Ok(entry)
        })
    }

    /// Renames a phone. Names are unique and not empty (surrounding spaces are trimmed).
    pub fn rename(&self, old: &str, new: &str) -> Result<LinkedPhone, LinkedStoreError> {
        let new = new.trim().to_owned();
        if new.is_empty() {
            return Err(LinkedStoreError::EmptyName);
        }
        let old = old.to_owned();
        self.update(move |phones| {
            let i = position(phones, &old)?;
            if phones.iter().any(|p| p.name == new && p.name != old) {
                return Err(LinkedStoreError::NameTaken { name: new });
            }
            phones[i].name = new;
            Ok(phones[i].clone())
        })
    }

    /// Forgets a phone: this computer can no longer contact it (the phone keeps its side of
    /// the link until it unlinks too).
    pub fn forget(&self, name: &str) -> Result<LinkedPhone, LinkedStoreError> {
        let name = name.to_owned();
        self.update(move |phones| {
            let i = position(phones, &name)?;
            Ok(phones.remove(i))
        })
    }

    /// Forgets the phone with this identity key, if it is still linked (a relay's 410 says the
    /// phone is gone; the person may have renamed it since the ceremony started).
    pub fn forget_phone(
        &self,
        identity: &PublicKey,
    ) -> Result<Option<LinkedPhone>, LinkedStoreError> {
        let identity = *identity;
        self.update(move |phones| {
            Ok(phones
                .iter()
                .position(|p| p.identity_public_key == identity)
                .map(|i| phones.remove(i)))
        })
    }

    /// Re-reads the file under its lock (so a concurrent writer's change is kept), applies `f`
    /// and writes the result. An in-memory store just applies `f`.
    fn update<T>(
        &self,
        f: impl FnOnce(&mut Vec<LinkedPhone>) -> Result<T, LinkedStoreError>,
    ) -> Result<T, LinkedStoreError> {
        let mut inner = self.lock();
        let Some(path) = inner.path.clone() else {
            return f(&mut inner.phones);
        };
        let io = |source| LinkedStoreError::Io { source };
        create_parent(&path)?;
        let locked = cable_store::lock(&path).map_err(io)?;
        let mut phones = match locked.read().map_err(io)? {
            Some(bytes) => decode(&path, &bytes)?,
            None => Vec::new(),
        };
        let value = f(&mut phones)?;
        locked.write(&encode(&phones)).map_err(io)?;
        inner.phones = phones;
        Ok(value)
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves the list as it was before the change (changes
        // are applied to the file first), so the data is still good.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The data directory may not exist yet on a fresh account; made private, as the XDG spec
/// asks of the directories it creates.
fn create_parent(path: &Path) -> Result<(), LinkedStoreError> {
    let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) else {
        return Ok(());
    };
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder
        .create(dir)
        .map_err(|source| LinkedStoreError::CreateDir {
            path: dir.to_owned(),
            source,
        })
}

fn position(phones: &[LinkedPhone], name: &str) -> Result<usize, LinkedStoreError> {
    phones
        .iter()
        .position(|p| p.name == name)
        .ok_or_else(|| LinkedStoreError::NotFound {
            name: name.to_owned(),
        })
}

fn unique_name(phones: &[LinkedPhone], wanted: &str) -> String {
    let base = match wanted.trim() {
        "" => "Phone",
        name => name,
    };
    let taken = |name: &str| phones.iter().any(|p| p.name == name);
    if !taken(base) {
        return base.to_owned();
    }
    (2..)
        .map(|n| format!("{base} ({n})"))
        .find(|name| !taken(name))
        .unwrap_or_else(|| base.to_owned())
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StoreFile {
    version: u32,
    phones: Vec<StoredPhone>,
}

/// The file form: binary fields in base64url, as the passkey store writes them.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StoredPhone {
    name: String,
    authenticator_name: String,
    identity_public_key: String,
    contact_id: String,
    link_id: String,
    link_secret: Zeroizing<String>,
    domain_id: u16,
    linked_at: u64,
}

fn load(path: &Path) -> Result<Vec<LinkedPhone>, LinkedStoreError> {
    match cable_store::read_private(path) {
        Ok(Some(bytes)) => decode(path, &bytes),
        Ok(None) => Ok(Vec::new()),
        Err(source) => Err(LinkedStoreError::Io { source }),
    }
}

fn decode(path: &Path, bytes: &[u8]) -> Result<Vec<LinkedPhone>, LinkedStoreError> {
    let format = |why: String| LinkedStoreError::Format {
        path: path.to_owned(),
        why,
    };
    let file: StoreFile = serde_json::from_slice(bytes).map_err(|e| format(e.to_string()))?;
    if file.version != FILE_VERSION {
        return Err(format(format!(
            "version {} is not supported (this build reads version {FILE_VERSION})",
            file.version
        )));
    }
    file.phones
        .into_iter()
        .enumerate()
        .map(|(i, p)| {
            let field = |what: &str| format(format!("phone {i}: bad {what}"));
            let b64 = |s: &str, what: &str| URL_SAFE_NO_PAD.decode(s).map_err(|_| field(what));
            let key_bytes = b64(&p.identity_public_key, "identity_public_key")?;
            let identity_public_key =
                keys::public_key_from_sec1(&key_bytes).map_err(|_| field("identity_public_key"))?;
            let secret = Zeroizing::new(b64(&p.link_secret, "link_secret")?);
            let secret: [u8; 32] = secret
                .as_slice()
                .try_into()
                .map_err(|_| field("link_secret"))?;
            Ok(LinkedPhone {
                name: p.name,
                authenticator_name: p.authenticator_name,
                identity_public_key,
                contact_id: b64(&p.contact_id, "contact_id")?,
                link_id: b64(&p.link_id, "link_id")?,
                link_secret: LinkSecret::from_bytes(secret),
                domain_id: p.domain_id,
                linked_at: p.linked_at,
            })
        })
        .collect()
}

fn encode(phones: &[LinkedPhone]) -> Zeroizing<Vec<u8>> {
    let file = StoreFile {
        version: FILE_VERSION,
        phones: phones
            .iter()
            .map(|p| StoredPhone {
                name: p.name.clone(),
                authenticator_name: p.authenticator_name.clone(),
                identity_public_key: URL_SAFE_NO_PAD
                    .encode(keys::uncompressed(&p.identity_public_key)),
                contact_id: URL_SAFE_NO_PAD.encode(&p.contact_id),
                link_id: URL_SAFE_NO_PAD.encode(&p.link_id),
                link_secret: Zeroizing::new(URL_SAFE_NO_PAD.encode(p.link_secret.as_bytes())),
                domain_id: p.domain_id,
                linked_at: p.linked_at,
            })
            .collect(),
    };
    // Serializing these plain structs cannot fail.
    Zeroizing::new(serde_json::to_vec_pretty(&file).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn linking(seed: u8, name: &str) -> LinkingInfo {
        let identity = keys::secret_key_from_bytes(&[seed; 32]).unwrap();
        LinkingInfo {
            contact_id: vec![seed; 40],
            link_id: vec![seed; 8],
            link_secret: LinkSecret::from_bytes([seed; 32]),
            identity_public_key: identity.public_key(),
            name: name.to_owned(),
            signature: [0; 32],
            from_new_implementation: false,
        }
    }

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("cable-linked-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn names_are_unique_and_a_relink_replaces_the_same_phone() {
        let store = LinkedPhones::in_memory();
        let a = store.add_verified(&linking(1, "Pixel 8"), 0, 10).unwrap();
        let b = store.add_verified(&linking(2, "Pixel 8"), 0, 11).unwrap();
        assert_eq!(
            (a.name.as_str(), b.name.as_str()),
            ("Pixel 8", "Pixel 8 (2)")
        );
        store.rename("Pixel 8", "Work phone").unwrap();

        // The same phone links again with new secrets: one entry, the person's name kept.
        let mut again = linking(1, "Pixel 8");
        again.link_id = vec![9; 8];
        let relinked = store.add_verified(&again, 3, 12).unwrap();
        assert_eq!(relinked.name, "Work phone");
        let phones = store.list();
        assert_eq!(phones.len(), 2);
        assert_eq!(phones[0].link_id, vec![9; 8]);
        assert_eq!((phones[0].domain_id, phones[0].linked_at), (3, 12));
        assert_eq!(phones[1].name, "Pixel 8 (2)");
    }

    #[test]
    fn rename_and_forget_say_what_is_wrong() {
        let store = LinkedPhones::in_memory();
        store.add_verified(&linking(1, "A"), 0, 0).unwrap();
        store.add_verified(&linking(2, "B"), 0, 0).unwrap();
        assert!(matches!(
            store.rename("A", "B"),
            Err(LinkedStoreError::NameTaken { name }) if name == "B"
        ));
        assert!(matches!(
            store.rename("A", "  "),
            Err(LinkedStoreError::EmptyName)
        ));
        assert!(matches!(
            store.rename("C", "D"),
            Err(LinkedStoreError::NotFound { name }) if name == "C"
        ));
        // Renaming to its own name, spaces trimmed, is fine.
        assert_eq!(store.rename("A", " A ").unwrap().name, "A");
        assert!(store.forget("C").unwrap_err().is_input_error());
        let gone = store.forget("A").unwrap();
        assert_eq!(store.forget_phone(&gone.identity_public_key).unwrap(), None);
        let b = store.get("B").unwrap();
        assert_eq!(
            store
                .forget_phone(&b.identity_public_key)
                .unwrap()
                .map(|p| p.name),
            Some("B".to_owned())
        );
        assert!(store.list().is_empty());
    }

    #[test]
    fn the_file_round_trips_and_is_private() {
        let dir = temp_dir("roundtrip");
        let path = dir.join("nested").join(DEFAULT_FILE_NAME);
        let store = LinkedPhones::open(&path).unwrap();
        assert!(store.list().is_empty());
        let phone = store.add_verified(&linking(7, "Pixel"), 5, 99).unwrap();
        let again = LinkedPhones::open(&path).unwrap();
        assert_eq!(again.list(), vec![phone]);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn two_handles_on_one_file_keep_each_others_links() {
        let dir = temp_dir("two");
        let path = dir.join(DEFAULT_FILE_NAME);
        let first = LinkedPhones::open(&path).unwrap();
        let second = LinkedPhones::open(&path).unwrap();
        first.add_verified(&linking(1, "A"), 0, 0).unwrap();
        second.add_verified(&linking(2, "A"), 0, 0).unwrap();
        let names: Vec<_> = LinkedPhones::open(&path)
            .unwrap()
            .list()
            .into_iter()
            .map(|p| p.name)
            .collect();
        // The second handle saw the first one's "A" when it wrote.
        assert_eq!(names, ["A", "A (2)"]);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_damaged_file_is_an_error_naming_the_file() {
        let dir = temp_dir("damaged");
        let path = dir.join(DEFAULT_FILE_NAME);
        for bad in [
            "not json",
            r#"{"version": 2, "phones": []}"#,
            r#"{"version": 1, "phones": [{"name": "x", "authenticator_name": "x",
                "identity_public_key": "AAAA", "contact_id": "", "link_id": "",
                "link_secret": "", "domain_id": 0, "linked_at": 0}]}"#,
        ] {
            cable_store::write_private(&path, bad.as_bytes()).unwrap();
            let err = LinkedPhones::open(&path).unwrap_err();
            assert!(matches!(err, LinkedStoreError::Format { .. }), "{err:?}");
            assert!(err.to_string().contains(DEFAULT_FILE_NAME), "{err}");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn debug_output_holds_no_capability() {
        let store = LinkedPhones::in_memory();
        let phone = store.add_verified(&linking(0xab, "P"), 0, 0).unwrap();
        let text = format!("{phone:?} {store:?}");
        assert!(!text.contains("abab"), "{text}");
        assert!(text.contains(&phone.id()));
    }
}
