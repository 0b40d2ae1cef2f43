//! The phone's long-term identity: one root secret, the P-256 identity key derived from
//! it, the contact id the relay gave this phone, and the links it handed to computers.
//!
//! Everything secret is derived from the root secret the way Chrome-for-Android does it
//! (PROTOCOL.md §3, types 4–6): the identity key is
//! `EC_KEY_derive_from_secret(Derive(root, ∅, 5))` and each link's secret is
//! `Derive(Derive(root, contact_id, 6), link_id, 4)`. So the file only has to keep the root
//! secret and, per link, the (public) link id and contact id: forgetting a link's record
//! is enough to refuse that computer for good.
//!
//! ## File format
//!
//! JSON, binary fields base64url without padding, written through [`cable_store`] (0600,
//! atomic, under a lock for every change):
//!
//! ```json
//! {
//!   "version": 1,
//!   "root_secret": "…32 bytes…",
//!   "contact_id": "…",
//!   "name": "my laptop's phone",
//!   "links": [
//!     { "link_id": "…8 bytes…", "contact_id": "…", "computer": "work laptop", "created": 1764690000 }
//!   ]
//! }
//! ```
//!
//! `contact_id` (the one new links get), `name`, a link's `computer` and `registration`
//! (`{"relay": …, "endpoint": …}`: where a contact id from
//! [`register_for_contacts`](crate::register_for_contacts) came from) are optional. The Web
//! Push subscription keys derive from the root secret too ([`crate::push`]). Each
//! link keeps the contact id it was made under, so that a new registration with the relay
//! does not silently break the computers that already know this phone.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use cable_proto::handshake::HASH_LEN;
use cable_proto::keys;
use cable_proto::message::{LinkSecret, LinkingInfo, UpdateMessage};
use p256::{PublicKey, SecretKey};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::error::IdentityError;
use crate::push::PushKeys;

const FILE_VERSION: u32 = 1;

/// Length of the root secret.
pub const ROOT_SECRET_LEN: usize = 32;
/// Length of the link ids this phone makes (what libwebauthn requires).
pub const LINK_ID_LEN: usize = 8;
/// The authenticator name when the host has none.
pub const FALLBACK_NAME: &str = "Linux phone";
/// The longest authenticator name, in bytes: longer ones would push the update message past
/// its 528-byte padding and so tell an observer that linking data is present.
pub const MAX_NAME_LEN: usize = 64;
/// The identity file's usual name, next to the passkey store.
pub const DEFAULT_FILE_NAME: &str = "phone-identity.json";

/// One link this phone gave a computer (no secret: the link secret is derived on demand).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LinkRecord {
    /// The link id the computer sends back in its client payload.
    pub link_id: Vec<u8>,
    /// The contact id the link was made under.
    pub contact_id: Vec<u8>,
    /// What the user called the computer, if anything (the protocol does not tell the phone).
    pub computer: Option<String>,
    /// When the link was made, in seconds since the Unix epoch.
    pub created: u64,
}

/// Which links [`PhoneIdentity::unlink`] removes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkSelector {
    /// The link with this id.
    Id(Vec<u8>),
    /// Every link whose computer has this name, or whose base64url link id is this text.
    Name(String),
    /// Every link.
    All,
}

impl LinkSelector {
    fn matches(&self, link: &LinkRecord) -> bool {
        match self {
            LinkSelector::Id(id) => link.link_id == *id,
            LinkSelector::Name(name) => {
                link.computer.as_deref() == Some(name.as_str())
                    || URL_SAFE_NO_PAD.encode(&link.link_id) == *name
            }
            LinkSelector::All => true,
        }
    }
}

/// The phone's identity, in memory or backed by a file. Cheap to clone; clones share state.
///
/// Every change is a locked read-modify-write of the file, so two phone processes sharing
/// it never lose each other's links.
#[derive(Clone)]
pub struct PhoneIdentity {
    inner: Arc<Mutex<Inner>>,
}

struct Inner {
    path: Option<PathBuf>,
    state: State,
    identity: SecretKey,
    push: PushKeys,
}

/// What the file holds.
#[derive(Clone)]
struct State {
    root: Zeroizing<[u8; ROOT_SECRET_LEN]>,
    contact_id: Option<Vec<u8>>,
    name: Option<String>,
    links: Vec<LinkRecord>,
    registration: Option<Registration>,
}

/// Where this phone's contact id came from: the relay it registered with and the push
/// endpoint it gave, so that a phone can tell whether it must register again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration {
    /// The relay's base URL.
    pub relay: String,
    /// The Web Push endpoint in the subscription.
    pub endpoint: String,
}

impl fmt::Debug for PhoneIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = self.lock();
        f.debug_struct("PhoneIdentity")
            .field("path", &inner.path)
            .field("root_secret", &"<redacted>")
            .field(
                "identity_public_key",
                &URL_SAFE_NO_PAD.encode(keys::compressed(&inner.identity.public_key())),
            )
            .field("has_contact_id", &inner.state.contact_id.is_some())
            .field("name", &inner.state.name)
            .field("links", &inner.state.links.len())
            .finish()
    }
}

impl PhoneIdentity {
    /// A fresh identity that lives only as long as the process.
    pub fn generate(rng: &mut impl rand_core::CryptoRngCore) -> Result<Self, IdentityError> {
        Self::build(None, State::fresh(rng))
    }

    /// An identity from a known root secret, in memory (tests, or a root kept elsewhere).
    pub fn from_root_secret(root: [u8; ROOT_SECRET_LEN]) -> Result<Self, IdentityError> {
        Self::build(
            None,
            State {
                root: Zeroizing::new(root),
                contact_id: None,
                name: None,
                links: Vec::new(),
                registration: None,
            },
        )
    }

    /// Opens the identity at `path`, creating it (a new random root secret) if the file does
    /// not exist yet. A file other users can read or write is refused, as is a symbolic link.
    pub fn open_or_create(
        path: impl Into<PathBuf>,
        rng: &mut impl rand_core::CryptoRngCore,
    ) -> Result<Self, IdentityError> {
        let path = path.into();
        if let Some(bytes) = cable_store::read_private(&path)? {
            return Self::build(Some(path), decode_file(&bytes)?);
        }
        let file = cable_store::lock(&path)?;
        // Another process may have created it while this one waited for the lock.
        let state = match file.read()? {
            Some(bytes) => decode_file(&bytes)?,
            None => {
                let state = State::fresh(rng);
                file.write(&encode_file(&state)?)?;
                state
            }
        };
        drop(file);
        Self::build(Some(path), state)
    }

    /// Opens an existing identity file without writing anything; `Ok(None)` if it does not
    /// exist.
    pub fn open_existing(path: impl Into<PathBuf>) -> Result<Option<Self>, IdentityError> {
        let path = path.into();
        match cable_store::read_private(&path)? {
            Some(bytes) => Ok(Some(Self::build(Some(path), decode_file(&bytes)?)?)),
            None => Ok(None),
        }
    }

    /// The usual identity file for a passkey store at `store`: a sibling named
    /// [`DEFAULT_FILE_NAME`].
    pub fn path_next_to(store: &Path) -> PathBuf {
        store.with_file_name(DEFAULT_FILE_NAME)
    }

    fn build(path: Option<PathBuf>, state: State) -> Result<Self, IdentityError> {
        let identity = keys::identity_key_from_root_secret(&state.root[..]).map_err(|_| {
            IdentityError::BadField {
                field: "root_secret",
            }
        })?;
        let push = PushKeys::derive(&state.root[..])?;
        Ok(Self {
            inner: Arc::new(Mutex::new(Inner {
                path,
                state,
                identity,
                push,
            })),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // No code path panics while holding the lock; recover the data if one ever does.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The file backing this identity, if any.
    pub fn path(&self) -> Option<PathBuf> {
        self.lock().path.clone()
    }

    /// The long-term identity public key (what linked computers store as key 4).
    pub fn public_key(&self) -> PublicKey {
        self.lock().identity.public_key()
    }

    /// The identity private key, for the NKpsk0 responder.
    pub(crate) fn secret_key(&self) -> SecretKey {
        self.lock().identity.clone()
    }

    /// The contact id new links are made under, if the phone has one.
    pub fn contact_id(&self) -> Option<Vec<u8>> {
        self.lock().state.contact_id.clone()
    }

    /// The authenticator name computers show: the configured one, else the host name, else
    /// [`FALLBACK_NAME`].
    pub fn name(&self) -> String {
        self.lock().state.name.clone().unwrap_or_else(host_name)
    }

    /// The Web Push subscription keys, derived from the root secret.
    pub fn push_keys(&self) -> PushKeys {
        self.lock().push.clone()
    }

    /// The relay and endpoint the contact id was registered with, if it was registered by
    /// [`register_for_contacts`](crate::register_for_contacts) (not set by hand).
    pub fn registration(&self) -> Option<Registration> {
        self.lock().state.registration.clone()
    }

    /// Saves a contact id from a registration, and where it came from.
    pub(crate) fn set_registration(
        &self,
        contact_id: Vec<u8>,
        registration: Registration,
    ) -> Result<(), IdentityError> {
        self.change(|state| {
            state.contact_id = Some(contact_id);
            state.registration = Some(registration);
            Ok(())
        })
    }

    /// Sets (and saves) the contact id for new links; existing links keep theirs. The
    /// registration record is dropped: the id no longer comes from it.
    pub fn set_contact_id(&self, contact_id: Option<Vec<u8>>) -> Result<(), IdentityError> {
        self.change(|state| {
            if state.contact_id != contact_id {
                state.registration = None;
            }
            state.contact_id = contact_id;
            Ok(())
        })
    }

    /// Sets (and saves) the authenticator name; `None` goes back to the host name. At most
    /// [`MAX_NAME_LEN`] bytes and not empty.
    pub fn set_name(&self, name: Option<String>) -> Result<(), IdentityError> {
        if let Some(len) = name.as_ref().map(String::len) {
            if len == 0 || len > MAX_NAME_LEN {
                return Err(IdentityError::BadName { len });
            }
        }
        self.change(|state| {
            state.name = name;
            Ok(())
        })
    }

    /// The links, oldest first.
    pub fn links(&self) -> Vec<LinkRecord> {
        self.lock().state.links.clone()
    }

    /// The secret of a known link; `None` for a link id this phone does not know (a
    /// forgotten link, or one made by another phone). Reads only memory.
    pub fn link_secret(&self, link_id: &[u8]) -> Option<LinkSecret> {
        let inner = self.lock();
        let link = inner.state.links.iter().find(|l| l.link_id == link_id)?;
        Some(LinkSecret::derive_chrome_style(
            &inner.state.root[..],
            &link.contact_id,
            &link.link_id,
        ))
    }

    /// Re-reads the file, so that links made or removed by other processes since this one
    /// opened it count (a long-running listener must refuse a computer unlinked meanwhile).
    /// Nothing to do for an identity in memory or a file that is gone.
    pub fn reload(&self) -> Result<(), IdentityError> {
        let mut inner = self.lock();
        let Some(path) = inner.path.clone() else {
            return Ok(());
        };
        let Some(bytes) = cable_store::read_private(&path)? else {
            return Ok(());
        };
        let state = decode_file(&bytes)?;
        if state.root != inner.state.root {
            return Err(IdentityError::Replaced { path });
        }
        inner.state = state;
        Ok(())
    }

    /// Removes the links `selector` picks (and saves); returns them. Nothing matching is
    /// [`IdentityError::NoSuchLink`] and leaves the file as it was.
    pub fn unlink(&self, selector: &LinkSelector) -> Result<Vec<LinkRecord>, IdentityError> {
        let mut removed = Vec::new();
        self.change(|state| {
            let (gone, kept): (Vec<_>, Vec<_>) =
                state.links.drain(..).partition(|l| selector.matches(l));
            state.links = kept;
            if gone.is_empty() && *selector != LinkSelector::All {
                return Err(IdentityError::NoSuchLink {
                    name: match selector {
                        LinkSelector::Id(id) => URL_SAFE_NO_PAD.encode(id),
                        LinkSelector::Name(name) => name.clone(),
                        LinkSelector::All => String::new(),
                    },
                });
            }
            removed = gone;
            Ok(())
        })?;
        Ok(removed)
    }

    /// Makes a new link for the computer of this QR session and returns the update message
    /// carrying it, signed over `handshake_hash` with the identity key and the QR key.
    ///
    /// `None` when the phone has no contact id (a computer could never reach it). The link
    /// is saved before it is returned: a computer must never hold a link the phone forgot.
    pub fn new_link(
        &self,
        qr_public_key: &PublicKey,
        handshake_hash: &[u8; HASH_LEN],
        computer: Option<String>,
        created: u64,
        rng: &mut impl rand_core::CryptoRngCore,
    ) -> Result<Option<UpdateMessage>, IdentityError> {
        let Some(contact_id) = self.contact_id() else {
            return Ok(None);
        };
        let mut link_id = vec![0u8; LINK_ID_LEN];
        rng.fill_bytes(&mut link_id);
        let record = LinkRecord {
            link_id: link_id.clone(),
            contact_id: contact_id.clone(),
            computer,
            created,
        };
        self.change(|state| {
            state.links.push(record);
            Ok(())
        })?;
        let (secret, identity) = {
            let inner = self.lock();
            (
                LinkSecret::derive_chrome_style(&inner.state.root[..], &contact_id, &link_id),
                inner.identity.clone(),
            )
        };
        let linking = LinkingInfo::new_signed(
            contact_id,
            link_id,
            secret,
            &identity,
            self.name(),
            qr_public_key,
            handshake_hash,
        );
        Ok(Some(UpdateMessage {
            linking: Some(linking),
        }))
    }

    /// Applies `apply` to the state on disk now (or in memory), saves, and keeps the result.
    fn change(
        &self,
        apply: impl FnOnce(&mut State) -> Result<(), IdentityError>,
    ) -> Result<(), IdentityError> {
        let mut inner = self.lock();
        let Some(path) = inner.path.clone() else {
            let mut state = inner.state.clone();
            apply(&mut state)?;
            inner.state = state;
            return Ok(());
        };
        let file = cable_store::lock(&path)?;
        let mut state = match file.read()? {
            Some(bytes) => decode_file(&bytes)?,
            None => inner.state.clone(),
        };
        if state.root != inner.state.root {
            // Someone replaced the file with another identity: never mix the two.
            return Err(IdentityError::Replaced { path });
        }
        apply(&mut state)?;
        file.write(&encode_file(&state)?)?;
        inner.state = state;
        Ok(())
    }
}

impl State {
    fn fresh(rng: &mut impl rand_core::CryptoRngCore) -> State {
        let mut root = Zeroizing::new([0u8; ROOT_SECRET_LEN]);
        rng.fill_bytes(&mut root[..]);
        State {
            root,
            contact_id: None,
            name: None,
            links: Vec::new(),
            registration: None,
        }
    }
}

/// The host name (`/etc/hostname`, else the kernel's), or [`FALLBACK_NAME`].
pub fn host_name() -> String {
    ["/etc/hostname", "/proc/sys/kernel/hostname"]
        .iter()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .map(|s| s.trim().to_owned())
        .find(|s| !s.is_empty() && s.len() <= MAX_NAME_LEN)
        .unwrap_or_else(|| FALLBACK_NAME.to_owned())
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct IdentityFile {
    version: u32,
    root_secret: SecretText,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    contact_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    #[serde(default)]
    links: Vec<StoredLink>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    registration: Option<StoredRegistration>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StoredRegistration {
    relay: String,
    endpoint: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StoredLink {
    link_id: String,
    contact_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    computer: Option<String>,
    created: u64,
}

/// Text holding the root secret: wiped when dropped.
#[derive(Serialize, Deserialize)]
#[serde(transparent)]
struct SecretText(String);

impl Drop for SecretText {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.0);
    }
}

fn encode_file(state: &State) -> Result<Zeroizing<Vec<u8>>, IdentityError> {
    let file = IdentityFile {
        version: FILE_VERSION,
        root_secret: SecretText(URL_SAFE_NO_PAD.encode(&state.root[..])),
        contact_id: state.contact_id.as_ref().map(|c| URL_SAFE_NO_PAD.encode(c)),
        name: state.name.clone(),
        links: state
            .links
            .iter()
            .map(|l| StoredLink {
                link_id: URL_SAFE_NO_PAD.encode(&l.link_id),
                contact_id: URL_SAFE_NO_PAD.encode(&l.contact_id),
                computer: l.computer.clone(),
                created: l.created,
            })
            .collect(),
        registration: state.registration.as_ref().map(|r| StoredRegistration {
            relay: r.relay.clone(),
            endpoint: r.endpoint.clone(),
        }),
    };
    Ok(Zeroizing::new(serde_json::to_vec_pretty(&file)?))
}

fn decode_file(bytes: &[u8]) -> Result<State, IdentityError> {
    let file: IdentityFile = serde_json::from_slice(bytes)?;
    if file.version != FILE_VERSION {
        return Err(IdentityError::UnsupportedVersion(file.version));
    }
    let b64 = |field: &'static str, text: &str| {
        URL_SAFE_NO_PAD
            .decode(text)
            .map_err(|_| IdentityError::BadField { field })
    };
    let root_bytes = Zeroizing::new(b64("root_secret", &file.root_secret.0)?);
    let mut root = Zeroizing::new([0u8; ROOT_SECRET_LEN]);
    if root_bytes.len() != ROOT_SECRET_LEN {
        return Err(IdentityError::BadField {
            field: "root_secret",
        });
    }
    root.copy_from_slice(&root_bytes);
    let contact_id = file
        .contact_id
        .as_deref()
        .map(|c| b64("contact_id", c))
        .transpose()?;
    let links = file
        .links
        .iter()
        .map(|l| {
            Ok(LinkRecord {
                link_id: b64("links.link_id", &l.link_id)?,
                contact_id: b64("links.contact_id", &l.contact_id)?,
                computer: l.computer.clone(),
                created: l.created,
            })
        })
        .collect::<Result<Vec<_>, IdentityError>>()?;
    Ok(State {
        root,
        contact_id,
        name: file.name,
        links,
        registration: file.registration.map(|r| Registration {
            relay: r.relay,
            endpoint: r.endpoint,
        }),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use cable_proto::qr::{QrKey, RequestHint};
    use rand_core::OsRng;

    struct TempDir(PathBuf);

    impl TempDir {
        fn new(tag: &str) -> TempDir {
            let mut suffix = [0u8; 8];
            rand_core::RngCore::fill_bytes(&mut OsRng, &mut suffix);
            let dir = std::env::temp_dir().join(format!(
                "cable-phone-identity-{tag}-{}",
                URL_SAFE_NO_PAD.encode(suffix)
            ));
            std::fs::create_dir_all(&dir).unwrap();
            TempDir(dir)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn link(identity: &PhoneIdentity, computer: Option<&str>) -> UpdateMessage {
        let qr = QrKey::generate(&mut OsRng, 0, RequestHint::GetAssertion);
        identity
            .new_link(
                qr.public_key(),
                &[7; HASH_LEN],
                computer.map(str::to_owned),
                1_700_000_000,
                &mut OsRng,
            )
            .unwrap()
            .unwrap()
    }

    #[test]
    fn round_trips_through_the_file() {
        let dir = TempDir::new("round-trip");
        let path = dir.0.join(DEFAULT_FILE_NAME);
        let identity = PhoneIdentity::open_or_create(&path, &mut OsRng).unwrap();
        identity.set_contact_id(Some(b"contact".to_vec())).unwrap();
        identity.set_name(Some("Test phone".into())).unwrap();
        let update = link(&identity, Some("laptop"));
        let linking = update.linking.unwrap();

        let again = PhoneIdentity::open_existing(&path).unwrap().unwrap();
        assert_eq!(again.public_key(), identity.public_key());
        assert_eq!(again.contact_id(), Some(b"contact".to_vec()));
        assert_eq!(again.name(), "Test phone");
        let links = again.links();
        assert_eq!(links.len(), 1);
        assert_eq!(links[0].link_id, linking.link_id);
        assert_eq!(links[0].computer.as_deref(), Some("laptop"));
        assert_eq!(links[0].created, 1_700_000_000);
        assert_eq!(
            again.link_secret(&linking.link_id),
            Some(linking.link_secret)
        );
        assert_eq!(linking.identity_public_key, identity.public_key());
        assert_eq!(linking.link_id.len(), LINK_ID_LEN);
        assert!(again.link_secret(b"unknown!").is_none());

        // Opening again neither changes the root nor rewrites the file.
        let before = std::fs::read(&path).unwrap();
        let third = PhoneIdentity::open_or_create(&path, &mut OsRng).unwrap();
        assert_eq!(third.public_key(), identity.public_key());
        assert_eq!(std::fs::read(&path).unwrap(), before);
    }

    #[cfg(unix)]
    #[test]
    fn the_file_is_private_and_a_readable_one_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = TempDir::new("mode");
        let path = dir.0.join(DEFAULT_FILE_NAME);
        PhoneIdentity::open_or_create(&path, &mut OsRng).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);

        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = PhoneIdentity::open_existing(&path).unwrap_err();
        assert!(matches!(err, IdentityError::File(_)), "{err:?}");
        let err = PhoneIdentity::open_or_create(&path, &mut OsRng).unwrap_err();
        assert!(matches!(err, IdentityError::File(_)), "{err:?}");
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn debug_shows_no_secret() {
        let root = [0x5au8; ROOT_SECRET_LEN];
        let identity = PhoneIdentity::from_root_secret(root).unwrap();
        identity.set_contact_id(Some(b"contact".to_vec())).unwrap();
        let update = link(&identity, None);
        let linking = update.linking.unwrap();
        let text = format!("{identity:?}");
        assert!(text.contains("<redacted>"), "{text}");
        for secret in [
            URL_SAFE_NO_PAD.encode(root),
            hex(&root),
            URL_SAFE_NO_PAD.encode(linking.link_secret.as_bytes()),
            hex(linking.link_secret.as_bytes()),
            format!("{:?}", &root[..4]),
        ] {
            assert!(!text.contains(&secret), "{text}");
        }
    }

    #[test]
    fn no_contact_id_means_no_link() {
        let identity = PhoneIdentity::generate(&mut OsRng).unwrap();
        let qr = QrKey::generate(&mut OsRng, 0, RequestHint::GetAssertion);
        let made = identity
            .new_link(qr.public_key(), &[0; HASH_LEN], None, 0, &mut OsRng)
            .unwrap();
        assert!(made.is_none());
        assert!(identity.links().is_empty());
    }

    #[test]
    fn the_link_secret_is_chrome_style_and_the_signature_verifies() {
        let root = [3u8; ROOT_SECRET_LEN];
        let identity = PhoneIdentity::from_root_secret(root).unwrap();
        identity.set_contact_id(Some(vec![9; 20])).unwrap();
        let qr = QrKey::generate(&mut OsRng, 0, RequestHint::MakeCredential);
        let hash = [0x42; HASH_LEN];
        let linking = identity
            .new_link(qr.public_key(), &hash, None, 0, &mut OsRng)
            .unwrap()
            .unwrap()
            .linking
            .unwrap();
        assert_eq!(
            linking.link_secret,
            LinkSecret::derive_chrome_style(&root, &[9; 20], &linking.link_id)
        );
        assert_eq!(
            linking.identity_public_key,
            keys::identity_key_from_root_secret(&root)
                .unwrap()
                .public_key()
        );
        assert!(!linking.from_new_implementation);
        linking.verify(&qr, &hash).unwrap();
    }

    #[test]
    fn a_push_token_sized_contact_id_still_pads_to_528_bytes() {
        // FCM registration tokens, which Chrome uses as contact ids, run to about 160 bytes.
        let identity = PhoneIdentity::from_root_secret([1; ROOT_SECRET_LEN]).unwrap();
        identity.set_contact_id(Some(vec![0xcc; 200])).unwrap();
        identity.set_name(Some(host_name())).unwrap();
        let update = link(&identity, None);
        let plaintext = cable_proto::message::Message::Update(update).encode();
        let mut crypter = cable_proto::crypter::Crypter::new(&[1; 32], &[2; 32]);
        assert_eq!(crypter.encrypt(&plaintext).unwrap().len(), 528);
    }

    #[test]
    fn names_are_bounded() {
        let identity = PhoneIdentity::generate(&mut OsRng).unwrap();
        for bad in [String::new(), "x".repeat(MAX_NAME_LEN + 1)] {
            let err = identity.set_name(Some(bad)).unwrap_err();
            assert!(matches!(err, IdentityError::BadName { .. }), "{err:?}");
            assert!(err.is_input_error());
        }
        identity.set_name(Some("x".repeat(MAX_NAME_LEN))).unwrap();
        assert!(host_name().len() <= MAX_NAME_LEN);
    }

    #[test]
    fn unlink_by_name_id_and_all() {
        let dir = TempDir::new("unlink");
        let path = dir.0.join(DEFAULT_FILE_NAME);
        let identity = PhoneIdentity::open_or_create(&path, &mut OsRng).unwrap();
        identity.set_contact_id(Some(b"c".to_vec())).unwrap();
        let a = link(&identity, Some("a")).linking.unwrap().link_id;
        let b = link(&identity, Some("b")).linking.unwrap().link_id;
        link(&identity, None);
        assert_eq!(identity.links().len(), 3);

        let before = std::fs::read(&path).unwrap();
        let err = identity
            .unlink(&LinkSelector::Name("nobody".into()))
            .unwrap_err();
        assert!(matches!(err, IdentityError::NoSuchLink { .. }), "{err:?}");
        assert_eq!(std::fs::read(&path).unwrap(), before);

        let gone = identity.unlink(&LinkSelector::Name("a".into())).unwrap();
        assert_eq!(gone.len(), 1);
        assert!(identity.link_secret(&a).is_none());
        let by_id = LinkSelector::Name(URL_SAFE_NO_PAD.encode(&b));
        assert_eq!(identity.unlink(&by_id).unwrap()[0].link_id, b);
        assert_eq!(identity.unlink(&LinkSelector::All).unwrap().len(), 1);
        assert!(identity.unlink(&LinkSelector::All).unwrap().is_empty());
        let again = PhoneIdentity::open_existing(&path).unwrap().unwrap();
        assert!(again.links().is_empty());
    }

    #[test]
    fn bad_files_are_errors_not_panics() {
        for text in [
            "",
            "{}",
            "[]",
            r#"{"version":2,"root_secret":"AAAA"}"#,
            r#"{"version":1,"root_secret":"AAAA"}"#,
            r#"{"version":1,"root_secret":"!!"}"#,
            r#"{"version":1,"root_secret":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA","links":[{"link_id":"*","contact_id":"","created":0}]}"#,
        ] {
            assert!(decode_file(text.as_bytes()).is_err(), "{text}");
        }
        let ok = r#"{"version":1,"root_secret":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}"#;
        assert!(decode_file(ok.as_bytes()).is_ok());
    }
}
