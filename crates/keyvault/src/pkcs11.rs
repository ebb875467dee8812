//! `Pkcs11KeyVault`: keys generated, kept and used inside a PKCS#11 token
//! (an HSM, or a soft token such as SoftHSM2 or Kryoptic), through the
//! `cryptoki` crate. Feature `pkcs11`.
//!
//! The token holds the key material: every private or secret key is a token
//! object with `CKA_SENSITIVE` true and `CKA_EXTRACTABLE` false, named by
//! `CKA_ID` = the version's random material id, and every wrap and unwrap is
//! a `C_WrapKey` / `C_UnwrapKey` inside the token. Versions, attributes,
//! access policies and the audit log are kept by our vault layer, as for the
//! other backends, so the rules are the same everywhere.
//!
//! # The token is not trusted
//!
//! Every object the vault makes is `CKA_PRIVATE`, so a process without the
//! PIN can neither see nor touch it. Before each use the vault looks at
//! private objects only, wants exactly one with the version's `CKA_ID`,
//! and checks it against its state (key type; modulus and exponent, or
//! length): several or a mismatch is [`VaultError::KeyMaterialCorrupt`],
//! none [`VaultError::KeyMaterialMissing`]. RSA-OAEP wrapping is done in
//! software with the state's public key once the matching private key is
//! found. Key objects are labelled `strongroom-keyvault key <vault id>
//! <material id>`; a vault kept in a directory destroys, when it opens,
//! those its state no longer names (what a crash left), and audits it.
//! A vault kept in a directory also keeps its state MAC key (`state-mac
//! <vault id>`) and its rollback witness, a data object (`witness <vault
//! id>`), on the token: the sweep touches neither.
//!
//! # Contexts and sessions
//!
//! A PKCS#11 module may be initialised once per process (`C_Initialize`),
//! so the process keeps one context per module path, shared by every vault
//! on that module. Sessions are never shared between threads: each
//! operation opens its own session and closes it when done. Each vault also
//! keeps one idle session open, logged in as the user, so that the login
//! (which PKCS#11 holds per application, not per session) survives between
//! operations.
//!
//! # Mechanisms
//!
//! | algorithm      | mechanism                                              |
//! |----------------|--------------------------------------------------------|
//! | `RsaOaep256`   | `CKM_RSA_PKCS_OAEP`, SHA-256, MGF1-SHA-256, no label     |
//! | `RsaOaep`      | `CKM_RSA_PKCS_OAEP`, SHA-1, MGF1-SHA-1, no label         |
//! | `A256Kw`       | `CKM_AES_KEY_WRAP` (RFC 3394, default IV)                |
//!
//! A token that lacks a mechanism (or, as SoftHSM2 2.6, accepts OAEP with
//! SHA-1 only) gives [`VaultError::AlgorithmUnsupported`] naming the token,
//! decided before any wrapped byte is looked at. The DEK passes through the
//! token as a short-lived session object (not a token object, destroyed in
//! the same call).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Function, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::rsa::{PkcsMgfType, PkcsOaepParams, PkcsOaepSource};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{
    Attribute, AttributeInfo, AttributeType, KeyType as CkKeyType, ObjectClass, ObjectHandle,
};
use cryptoki::session::{Session, SessionState, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::{AuthPin, Ulong};
use rsa::traits::{PrivateKeyParts, PublicKeyParts};
use strongroom_envelope::WrapAlgorithm;
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, Zeroizing};

use serde::{Deserialize, Serialize};

use crate::clock::{Clock, SystemClock};
use crate::file::{self, MAX_WITNESS_FILE, NewDirVault, StateMacKey, Witness};
use crate::memory::MemoryStore;
use crate::state::{ImportedKey, KeyCrypto, Material, State, StateStore, hex, hex_bytes};
use crate::vault::{AsVault, Vault};
use crate::{KeyType, RsaPublicParts, VaultError, VaultProperties};

/// Length of a material id (`CKA_ID`).
const ID_LEN: usize = crate::state::MATERIAL_ID_LEN;
/// The public exponent of generated RSA keys (65537).
const PUBLIC_EXPONENT: [u8; 3] = [0x01, 0x00, 0x01];
/// The prefix of every object label the vault makes.
const LABEL_PREFIX: &str = "strongroom-keyvault";

/// A token PIN (user or security officer). Zeroized on drop; its `Debug`
/// never shows it.
///
/// ```
/// use strongroom_keyvault::Pkcs11Pin;
///
/// let pin = Pkcs11Pin::new("123456");
/// assert_eq!(format!("{pin:?}"), "Pkcs11Pin(..)");
/// ```
pub struct Pkcs11Pin(Zeroizing<String>);

impl Pkcs11Pin {
    /// Takes the PIN. The caller's `String` is moved in; zeroizing any
    /// other copy is the caller's job.
    #[must_use]
    pub fn new(pin: impl Into<String>) -> Self {
        Self(Zeroizing::new(pin.into()))
    }

    fn auth_pin(&self) -> AuthPin {
        AuthPin::from(self.0.as_str())
    }
}

impl core::fmt::Debug for Pkcs11Pin {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Pkcs11Pin(..)")
    }
}

/// Which token a [`Pkcs11KeyVault`] uses, and how it logs in.
#[derive(Debug)]
pub struct Pkcs11Config {
    /// The PKCS#11 module (shared library), e.g.
    /// `/usr/lib/softhsm/libsofthsm2.so`.
    pub module: PathBuf,
    /// The label of an initialised token (`CKA_LABEL` of the token, as
    /// `softhsm2-util --init-token --label` or `C_InitToken` set it).
    pub token_label: String,
    /// The user PIN.
    pub pin: Pkcs11Pin,
}

/// A key vault whose keys live in a PKCS#11 token. Implements
/// [`KeyVault`](crate::KeyVault).
///
/// RSA 2048/3072/4096 key pairs and AES-256 keys are generated inside the
/// token (or imported into it) as sensitive, non-extractable token objects;
/// wrap and unwrap run inside the token. The vault's own state (key
/// versions, attributes, access policies, audit log) is held in memory by
/// [`open`](Self::open): a new vault on a token that already holds keys
/// does not see them, and a dropped vault leaves its token objects behind
/// (purging a key destroys them). [`open_in_dir`](Self::open_in_dir) keeps
/// the state in a directory instead, so that it survives the process.
///
/// ```no_run
/// use strongroom_envelope::WrapAlgorithm;
/// use strongroom_keyvault::{
///     KeyOptions, KeyType, KeyVault, Permissions, Pkcs11Config, Pkcs11KeyVault, Pkcs11Pin,
///     Principal, VaultProperties,
/// };
///
/// let vault = Pkcs11KeyVault::open(
///     Pkcs11Config {
///         module: "/usr/lib/softhsm/libsofthsm2.so".into(),
///         token_label: "backup-keys".into(),
///         pin: Pkcs11Pin::new("1234"),
///     },
///     VaultProperties::new("kv-hsm"),
/// )?;
/// let admin = Principal::new("admin");
/// vault.set_access_policy(&admin, Permissions::all())?;
/// vault.create_key(&admin, "cmk", KeyType::Rsa3072, KeyOptions::default())?;
/// // SoftHSM2 2.6 does OAEP with SHA-1 only.
/// let wrapped = vault.wrap_key(&admin, "cmk", None, WrapAlgorithm::RsaOaep, &[7; 32])?;
/// let dek = vault.unwrap_key(&admin, "cmk", &wrapped.version, WrapAlgorithm::RsaOaep, &wrapped.wrapped)?;
/// assert_eq!(dek.as_slice(), [7; 32]);
/// # Ok::<(), strongroom_keyvault::VaultError>(())
/// ```
pub struct Pkcs11KeyVault {
    inner: Vault,
    backend: &'static str,
    slot: Slot,
    /// The directory and vault id of a vault made by
    /// [`open_in_dir`](Self::open_in_dir).
    dir: Option<(PathBuf, String)>,
}

impl Pkcs11KeyVault {
    /// Opens the token labelled `config.token_label` on `config.module`,
    /// logs in as the user, and starts an empty vault on the system clock.
    ///
    /// # Errors
    /// [`VaultError::InvalidArgument`] for invalid properties or when no
    /// (or more than one) token carries the label; [`VaultError::Token`]
    /// when the module does not load or the login fails.
    pub fn open(config: Pkcs11Config, properties: VaultProperties) -> Result<Self, VaultError> {
        Self::open_with_clock(config, properties, Arc::new(SystemClock))
    }

    /// As [`open`](Self::open), reading time from `clock` (e.g. a
    /// [`ManualClock`](crate::ManualClock) in tests).
    ///
    /// # Errors
    /// As [`open`](Self::open).
    pub fn open_with_clock(
        config: Pkcs11Config,
        properties: VaultProperties,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, VaultError> {
        crate::vault::validate_properties(&properties)?;
        let crypto = Pkcs11Crypto::open(&config)?;
        let backend = crypto.module.backend;
        let slot = crypto.slot;
        let inner = Vault::new(
            Box::new(MemoryStore::new(properties)),
            Box::new(crypto),
            clock,
        )?;
        Ok(Self {
            inner,
            backend,
            slot,
            dir: None,
        })
    }

    /// Opens the token as [`open`](Self::open) does, and keeps the vault's
    /// state in `dir`, on the system clock: the first call creates the
    /// vault there with `properties`, later calls open it.
    ///
    /// # Errors
    /// As [`open_in_dir_with_clock`](Self::open_in_dir_with_clock).
    pub fn open_in_dir(
        config: Pkcs11Config,
        dir: impl AsRef<Path>,
        properties: VaultProperties,
    ) -> Result<Self, VaultError> {
        Self::open_in_dir_with_clock(config, dir, properties, Arc::new(SystemClock))
    }

    /// Opens the token as [`open`](Self::open) does, and keeps the vault's
    /// state (key versions, attributes, access policies, deleted keys, the
    /// audit log) in `dir`, reading time from `clock`.
    ///
    /// When `dir` holds no vault (it is missing, empty, or holds what an
    /// unfinished creation left), a vault is created there with
    /// `properties`, and a state MAC key is generated in the token for it.
    /// Otherwise the vault in `dir` is opened: its properties are the ones
    /// on disk, and `properties.name` must match its name.
    ///
    /// The directory has the layout and crash safety of a
    /// [`FileKeyVault`](crate::FileKeyVault), and as there any number of
    /// vault values, in one process or several, may use it at once. Its
    /// `vault.json` names the token and the MAC key; `state.json` holds no
    /// secret (key material stays in the token) and is authenticated by
    /// HMAC-SHA256 (`CKM_SHA256_HMAC`) computed inside the token, under a
    /// generic secret key object that is sensitive, not extractable, and
    /// labelled `strongroom-keyvault state-mac <vault id>`. Destroying that
    /// object makes the directory unusable (keys stay on the token, but
    /// the state naming them can no longer be authenticated).
    ///
    /// **Rollback witness, always on.** The token is a second place the
    /// vault already has, so it keeps the newest state generation and
    /// audit head the vault reached there, as
    /// [`FileVaultOptions::witness`](crate::FileVaultOptions::witness)
    /// keeps them in a file (same bytes, MACed by the token under the
    /// state MAC key): one private data object (`CKO_DATA`,
    /// `CKA_APPLICATION` `strongroom-keyvault`) labelled
    /// `strongroom-keyvault witness <vault id>`. No option turns it on or
    /// off. It is read, under the directory's lock, at open and by every
    /// call (as a witness file is), and written after every call that
    /// committed or appended an audit entry: its value is set in place, or,
    /// on tokens that keep a data object's value read-only (SoftHSM2), the
    /// object is replaced (a new one labelled `strongroom-keyvault
    /// witness-pending <vault id>`, the old one destroyed, the new one
    /// relabelled; what a crash leaves is settled by the next write). So a
    /// copy of the whole directory put back after later calls is refused
    /// at open, and by the next call of a vault already open:
    /// [`VaultError::RolledBack`] naming both generations, or
    /// [`VaultError::AuditRolledBack`]. It cannot tell when the token is
    /// put back together with the directory, nor when someone with the PIN
    /// destroys the object (the next open makes it again from the state it
    /// finds); `SECURITY.md` has the full list.
    ///
    /// # Errors
    /// [`VaultError::InvalidArgument`] for invalid properties, a vault in
    /// `dir` with another name, a directory holding something else (a
    /// [`FileKeyVault`](crate::FileKeyVault), foreign files), or a token
    /// that cannot be found; [`VaultError::Token`] when the module does not
    /// load, the login fails, the token lacks `CKM_SHA256_HMAC`, or it does
    /// not hold the vault's MAC key (another token, or the key object was
    /// destroyed), or its witness object is not the vault's or has been
    /// duplicated; [`VaultError::Corrupt`] for a damaged or altered
    /// `vault.json` or `state.json`; [`VaultError::RolledBack`] /
    /// [`VaultError::AuditRolledBack`] when the directory's state or audit
    /// log is older than the token's witness (or than the audit log)
    /// records; [`VaultError::Io`]; [`VaultError::RandomnessUnavailable`].
    pub fn open_in_dir_with_clock(
        config: Pkcs11Config,
        dir: impl AsRef<Path>,
        properties: VaultProperties,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, VaultError> {
        let dir = dir.as_ref();
        crate::vault::validate_properties(&properties)?;
        let mut crypto = Pkcs11Crypto::open(&config)?;
        let backend = crypto.module.backend;
        let slot = crypto.slot;
        let (store, vault_id) = open_dir_state(&crypto, dir, properties.clone())?;
        crypto.owner.clone_from(&vault_id);
        let sweep = OrphanSweep {
            module: Arc::clone(&crypto.module),
            slot,
            pin: crypto.pin.clone(),
            owner: vault_id.clone(),
        };
        let mut on_disk = None;
        store.transact(&mut |state: &mut State| {
            on_disk = Some(state.properties.name.clone());
            Ok(())
        })?;
        if let Some(name) = on_disk.filter(|name| *name != properties.name) {
            return Err(VaultError::InvalidArgument {
                reason: format!(
                    "the vault in {} is named {name:?}, not {:?}",
                    dir.display(),
                    properties.name
                ),
            });
        }
        let inner = Vault::new(Box::new(store), Box::new(crypto), clock)?;
        sweep.destroy_orphans(&inner)?;
        Ok(Self {
            inner,
            backend,
            slot,
            dir: Some((dir.to_path_buf(), hex(&vault_id))),
        })
    }

    /// Initialises a token for use with the vault: the first slot of
    /// `module` whose token is not initialised yet gets `label`, the
    /// security officer PIN `so_pin` and the user PIN `user_pin`. Tokens
    /// already initialised are never touched: this provisions a new token
    /// (a Kryoptic store, a fresh HSM partition, a SoftHSM2 free slot).
    ///
    /// # Errors
    /// [`VaultError::InvalidArgument`] when every token of the module is
    /// already initialised or the label is longer than 32 bytes;
    /// [`VaultError::Token`] when the module refuses.
    pub fn initialize_token(
        module: &Path,
        label: &str,
        so_pin: &Pkcs11Pin,
        user_pin: &Pkcs11Pin,
    ) -> Result<(), VaultError> {
        if label.is_empty() || label.len() > 32 {
            return Err(VaultError::InvalidArgument {
                reason: "a token label is 1 to 32 bytes".to_owned(),
            });
        }
        let module = Module::get(module)?;
        let ctx = &module.ctx;
        let mut free = None;
        for slot in ctx
            .get_slots_with_token()
            .map_err(token_error("C_GetSlotList"))?
        {
            let info = ctx
                .get_token_info(slot)
                .map_err(token_error("C_GetTokenInfo"))?;
            if !info.token_initialized() {
                free = Some(slot);
                break;
            }
        }
        let slot = free.ok_or_else(|| VaultError::InvalidArgument {
            reason: format!(
                "every token of PKCS#11 module {} is initialised already",
                module.path.display()
            ),
        })?;
        let so = so_pin.auth_pin();
        ctx.init_token(slot, &so, label)
            .map_err(token_error("C_InitToken"))?;
        let session = ctx
            .open_rw_session(slot)
            .map_err(token_error("C_OpenSession"))?;
        session
            .login(UserType::So, Some(&so))
            .map_err(token_error("C_Login (security officer)"))?;
        session
            .init_pin(&user_pin.auth_pin())
            .map_err(token_error("C_InitPIN"))?;
        session.logout().map_err(token_error("C_Logout"))?;
        Ok(())
    }

    /// Which token this is, as errors name it: `"SoftHSM2"`, `"Kryoptic"`,
    /// or `"PKCS#11 module <file name>"`.
    #[must_use]
    pub fn backend(&self) -> &'static str {
        self.backend
    }

    /// The slot of the token.
    #[must_use]
    pub fn slot_id(&self) -> u64 {
        self.slot.id()
    }

    /// The directory holding the vault's state, for a vault made by
    /// [`open_in_dir`](Self::open_in_dir); `None` for one held in memory.
    #[must_use]
    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_ref().map(|(dir, _)| dir.as_path())
    }

    /// The vault id (32 hex digits, random at creation) of a vault made by
    /// [`open_in_dir`](Self::open_in_dir); `None` for one held in memory.
    /// Its state MAC key object in the token is labelled
    /// `strongroom-keyvault state-mac <vault id>`.
    #[must_use]
    pub fn vault_id(&self) -> Option<&str> {
        self.dir.as_ref().map(|(_, id)| id.as_str())
    }

    /// Rotates the audit log of a vault kept in a directory, as
    /// [`FileKeyVault::rotate_audit_log`](crate::FileKeyVault::rotate_audit_log)
    /// does (the segments' MACs are computed in the token).
    ///
    /// # Errors
    /// As there; [`VaultError::InvalidArgument`] for a vault kept in memory
    /// ([`open`](Self::open)), whose log has no segments.
    pub fn rotate_audit_log(&self) -> Result<Option<crate::AuditSegment>, VaultError> {
        self.inner.rotate_audit_log()
    }

    /// Verifies archived audit log segments, oldest first, against the
    /// live log, as
    /// [`FileKeyVault::verify_archived_audit_log`](crate::FileKeyVault::verify_archived_audit_log)
    /// does.
    ///
    /// # Errors
    /// As there.
    pub fn verify_archived_audit_log(
        &self,
        segments: &[impl AsRef<Path>],
    ) -> Result<core::ops::RangeInclusive<u64>, VaultError> {
        let entries = file::read_audit_segments(segments)?;
        self.inner.verify_archived_entries(&entries)
    }

    /// The `CKA_ID` of the token objects holding a key version (active or
    /// soft-deleted key): for HSM administrators who audit the token's
    /// contents. A management-plane call, like
    /// [`access_policy`](crate::KeyVault::access_policy): not checked
    /// against an access policy.
    ///
    /// # Errors
    /// [`VaultError::KeyNotFound`] when the key or version does not exist.
    pub fn token_object_id(&self, name: &str, version: &str) -> Result<Vec<u8>, VaultError> {
        self.find_material_id(name, version)
    }

    /// Test hook: makes this process abort once a purge is committed,
    /// before the purged key's token objects are destroyed (`false`
    /// disarms). Not part of the API; for the crash tests.
    #[doc(hidden)]
    pub fn abort_after_purge_commit_for_tests(on: bool) {
        crate::vault::set_abort_after_purge_commit(on);
    }

    fn find_material_id(&self, name: &str, version: &str) -> Result<Vec<u8>, VaultError> {
        let mut found = None;
        self.inner.store.transact(&mut |state: &mut State| {
            let name = crate::vault::stored_name(state, name);
            let record = state
                .keys
                .get(&name)
                .or_else(|| state.deleted.get(&name).map(|d| &d.key));
            found = record.and_then(|r| {
                r.versions
                    .iter()
                    .find(|v| v.version == version)
                    .map(|v| v.material.id.clone())
            });
            Ok(())
        })?;
        found.ok_or_else(|| VaultError::KeyNotFound {
            name: name.to_owned(),
            version: Some(version.to_owned()),
        })
    }
}

impl AsVault for Pkcs11KeyVault {
    fn vault(&self) -> &Vault {
        &self.inner
    }
}

impl core::fmt::Debug for Pkcs11KeyVault {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Pkcs11KeyVault")
            .field("backend", &self.backend)
            .field("slot", &self.slot.id())
            .field("dir", &self.dir())
            .field("vault_id", &self.vault_id())
            .finish_non_exhaustive()
    }
}

/// A loaded, initialised PKCS#11 module: one per module path per process.
struct Module {
    path: PathBuf,
    ctx: Pkcs11,
    backend: &'static str,
    /// Whether the token accepts an OAEP hash, keyed by slot id and "is
    /// SHA-1", learned on first use.
    oaep: Mutex<HashMap<(u64, bool), bool>>,
    /// The user PIN this crate logged in with, by slot id: PKCS#11 keeps a
    /// login per process, so a later vault on a logged-in token gets
    /// `CKR_USER_ALREADY_LOGGED_IN` whatever PIN it gives; its PIN is
    /// checked against this one instead.
    logins: Mutex<HashMap<u64, Zeroizing<Vec<u8>>>>,
    /// Held while this process creates, changes or destroys token objects
    /// through the module (see [`writing`](Self::writing)).
    writes: Mutex<()>,
}

impl Module {
    /// Serialises this process's writes of token objects on the module:
    /// SoftHSM2's file object store now and then fails two made at once
    /// from two threads (`CKR_GENERAL_ERROR` from `C_GenerateKeyPair` or
    /// `C_CreateObject`: SoftHSMv2 issue 573), so they go one at a time.
    /// Reads, wrapping and session objects are not held. Taken after the
    /// session is open, and never twice by one call.
    fn writing(&self) -> MutexGuard<'_, ()> {
        lock(&self.writes)
    }

    /// The process's context for `path`, loading and initialising the
    /// module on first use.
    fn get(path: &Path) -> Result<Arc<Self>, VaultError> {
        static MODULES: OnceLock<Mutex<HashMap<PathBuf, Arc<Module>>>> = OnceLock::new();
        let key = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
        let mut modules = lock(MODULES.get_or_init(Mutex::default));
        if let Some(module) = modules.get(&key) {
            return Ok(Arc::clone(module));
        }
        let ctx = Pkcs11::new(&key).map_err(token_error("load the PKCS#11 module"))?;
        match ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
            // Already initialised by other code of this process (a test
            // inspecting the token): the library is usable as it is.
            Ok(()) | Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
            Err(err) => return Err(token_error("C_Initialize")(err)),
        }
        let info = ctx.get_library_info().map_err(token_error("C_GetInfo"))?;
        let backend = backend_name(&key, info.manufacturer_id(), info.library_description());
        let module = Arc::new(Self {
            path: key.clone(),
            ctx,
            backend,
            oaep: Mutex::default(),
            logins: Mutex::default(),
            writes: Mutex::default(),
        });
        modules.insert(key, Arc::clone(&module));
        Ok(module)
    }
}

/// The name errors give the token. Unknown modules get a name leaked once
/// per module path (the module table keeps it for the process's life).
fn backend_name(path: &Path, manufacturer: &str, description: &str) -> &'static str {
    let text = format!("{manufacturer} {description}").to_ascii_lowercase();
    if text.contains("softhsm") {
        "SoftHSM2"
    } else if text.contains("kryoptic") {
        "Kryoptic"
    } else {
        let file = path.file_name().map_or_else(
            || path.display().to_string(),
            |f| f.to_string_lossy().into_owned(),
        );
        Box::leak(format!("PKCS#11 module {file}").into_boxed_str())
    }
}

/// Key material in a PKCS#11 token.
pub(crate) struct Pkcs11Crypto {
    module: Arc<Module>,
    slot: Slot,
    pin: AuthPin,
    /// Whose objects these are: the vault id of a vault kept in a
    /// directory, random for one kept in memory. Every key object's label
    /// carries it, so that [`destroy_orphans`](OrphanSweep::run) can tell
    /// this vault's objects from another vault's on the same token.
    owner: Vec<u8>,
    /// Held open, logged in, so the user login lasts between operations.
    _anchor: Mutex<Session>,
}

impl Pkcs11Crypto {
    fn open(config: &Pkcs11Config) -> Result<Self, VaultError> {
        let module = Module::get(&config.module)?;
        let wanted = config.token_label.trim_end();
        let mut matches = Vec::new();
        for slot in module
            .ctx
            .get_slots_with_initialized_token()
            .map_err(token_error("C_GetSlotList"))?
        {
            let info = module
                .ctx
                .get_token_info(slot)
                .map_err(token_error("C_GetTokenInfo"))?;
            if info.label().trim_end() == wanted {
                matches.push(slot);
            }
        }
        let slot = match matches.as_slice() {
            [slot] => *slot,
            [] => {
                return Err(VaultError::InvalidArgument {
                    reason: format!(
                        "no initialised token labelled {wanted:?} on PKCS#11 module {}",
                        module.path.display()
                    ),
                });
            }
            _ => {
                return Err(VaultError::InvalidArgument {
                    reason: format!(
                        "{} tokens are labelled {wanted:?} on PKCS#11 module {}; relabel one",
                        matches.len(),
                        module.path.display()
                    ),
                });
            }
        };
        let pin = config.pin.auth_pin();
        let anchor = module
            .ctx
            .open_rw_session(slot)
            .map_err(token_error("C_OpenSession"))?;
        match anchor.login(UserType::User, Some(&pin)) {
            Ok(()) => {
                lock(&module.logins)
                    .insert(slot.id(), Zeroizing::new(config.pin.0.as_bytes().to_vec()));
            }
            Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => {
                // Logged in by an earlier vault of this process: the PIN
                // must be the one that worked then. (Logged in by other
                // code of the process, it cannot be checked without
                // logging everyone out; it is accepted.)
                let logins = lock(&module.logins);
                if let Some(known) = logins.get(&slot.id()) {
                    let same: bool = known.as_slice().ct_eq(config.pin.0.as_bytes()).into();
                    if !same {
                        return Err(token_error("C_Login")(CkError::Pkcs11(
                            RvError::PinIncorrect,
                            Function::Login,
                        )));
                    }
                }
            }
            Err(err) => return Err(token_error("C_Login")(err)),
        }
        Ok(Self {
            module,
            slot,
            pin,
            owner: random_id()?,
            _anchor: Mutex::new(anchor),
        })
    }

    /// A new session for one operation, logged in as the user.
    fn session(&self) -> Result<Session, VaultError> {
        user_session(&self.module, self.slot, &self.pin)
    }

    fn unsupported(&self, algorithm: WrapAlgorithm) -> VaultError {
        VaultError::AlgorithmUnsupported {
            algorithm,
            backend: self.module.backend,
        }
    }

    fn scheme(&self, algorithm: WrapAlgorithm) -> Result<Scheme, VaultError> {
        match algorithm {
            WrapAlgorithm::A256Kw => Ok(Scheme::AesKw),
            WrapAlgorithm::RsaOaep => Ok(Scheme::Oaep { sha1: true }),
            WrapAlgorithm::RsaOaep256 => Ok(Scheme::Oaep { sha1: false }),
            _ => Err(self.unsupported(algorithm)),
        }
    }

    /// Refuses an algorithm the token cannot do, before any data is used.
    /// `public` is the RSA public key from the vault's state, for the OAEP
    /// hash probe.
    fn check_supported(
        &self,
        session: &Session,
        algorithm: WrapAlgorithm,
        public: Option<&RsaPublicParts>,
    ) -> Result<(), VaultError> {
        let scheme = self.scheme(algorithm)?;
        let mechanism = match scheme {
            Scheme::AesKw => MechanismType::AES_KEY_WRAP,
            Scheme::Oaep { .. } => MechanismType::RSA_PKCS_OAEP,
        };
        match self.module.ctx.get_mechanism_info(self.slot, mechanism) {
            Ok(info) if info.wrap() && info.unwrap() => {}
            Ok(_) | Err(CkError::Pkcs11(RvError::MechanismInvalid, _)) => {
                return Err(self.unsupported(algorithm));
            }
            Err(err) => return Err(token_error("C_GetMechanismInfo")(err)),
        }
        let (Scheme::Oaep { sha1 }, Some(public)) = (scheme, public) else {
            return Ok(());
        };
        // A token may list CKM_RSA_PKCS_OAEP yet refuse some hashes
        // (SoftHSM2 2.6 takes SHA-1 only, and says CKR_ARGUMENTS_BAD).
        // Mechanism info cannot tell, so the first use per hash encrypts
        // a dummy block and remembers the answer. The probe key is a
        // session object made from the vault's state, seen by this
        // process only: no token object is trusted for it.
        let key = (self.slot.id(), sha1);
        if let Some(&supported) = lock(&self.module.oaep).get(&key) {
            return if supported {
                Ok(())
            } else {
                Err(self.unsupported(algorithm))
            };
        }
        let probe = session
            .create_object(&[
                Attribute::Class(ObjectClass::PUBLIC_KEY),
                Attribute::KeyType(CkKeyType::RSA),
                Attribute::Token(false),
                Attribute::Encrypt(true),
                Attribute::Modulus(public.n.clone()),
                Attribute::PublicExponent(public.e.clone()),
            ])
            .map_err(token_error("C_CreateObject (OAEP probe key)"))?;
        let probed = session.encrypt(&scheme.mechanism(), probe, &[0; 32]);
        let _ = session.destroy_object(probe);
        let supported = match probed {
            Ok(_) => true,
            Err(CkError::Pkcs11(
                RvError::MechanismInvalid | RvError::MechanismParamInvalid | RvError::ArgumentsBad,
                _,
            )) => false,
            Err(err) => return Err(token_error("C_Encrypt (OAEP probe)")(err)),
        };
        lock(&self.module.oaep).insert(key, supported);
        if supported {
            Ok(())
        } else {
            Err(self.unsupported(algorithm))
        }
    }

    /// The vault's one private (RSA) or secret (AES) key object for
    /// `material`, after checking it against the vault's state.
    ///
    /// Only private token objects are considered: a process that has not
    /// logged in can make public objects with any `CKA_ID` and label, but
    /// not private ones. Of those, there must be exactly one; the vault
    /// never picks among several. Its key type, and for RSA its modulus
    /// and public exponent, must be the ones the state records; for AES
    /// its length must be 32 bytes.
    ///
    /// # Errors
    /// [`VaultError::KeyMaterialMissing`] when there is none,
    /// [`VaultError::KeyMaterialCorrupt`] when there are several or it
    /// does not match (both with name and version left for the vault
    /// layer to fill in), [`VaultError::Token`] when the token fails.
    fn key_object(
        &self,
        session: &Session,
        material: &Material,
        key_type: KeyType,
    ) -> Result<ObjectHandle, VaultError> {
        let (class, ck_type, what) = if key_type.is_rsa() {
            (ObjectClass::PRIVATE_KEY, CkKeyType::RSA, "RSA private key")
        } else {
            (ObjectClass::SECRET_KEY, CkKeyType::AES, "AES key")
        };
        let found = session
            .find_objects(&[
                Attribute::Token(true),
                Attribute::Private(true),
                Attribute::Class(class),
                Attribute::Id(material.id.clone()),
            ])
            .map_err(token_error("C_FindObjects"))?;
        let handle = match found.as_slice() {
            [handle] => *handle,
            [] => {
                return Err(VaultError::KeyMaterialMissing {
                    name: String::new(),
                    version: String::new(),
                    object: what,
                    backend: self.module.backend,
                });
            }
            _ => {
                return Err(VaultError::material_corrupt(format!(
                    "the token holds {} private {what} objects with its CKA_ID {}, where the \
                     vault made one; none is used",
                    found.len(),
                    hex(&material.id)
                )));
            }
        };
        let wanted: &[AttributeType] = if key_type.is_rsa() {
            &[
                AttributeType::KeyType,
                AttributeType::Modulus,
                AttributeType::PublicExponent,
            ]
        } else {
            &[AttributeType::KeyType, AttributeType::ValueLen]
        };
        let attributes = session
            .get_attributes(handle, wanted)
            .map_err(token_error("C_GetAttributeValue"))?;
        let (mut found_type, mut n, mut e, mut len) = (None, None, None, None);
        for attribute in attributes {
            match attribute {
                Attribute::KeyType(t) => found_type = Some(t),
                Attribute::Modulus(v) => n = Some(strip_zeros(v)),
                Attribute::PublicExponent(v) => e = Some(strip_zeros(v)),
                Attribute::ValueLen(v) => len = Some(u64::from(v)),
                _ => {}
            }
        }
        let mismatch = |reason: &str| {
            Err(VaultError::material_corrupt(format!(
                "the token's {what} object with CKA_ID {} {reason}; it is not used",
                hex(&material.id)
            )))
        };
        if found_type != Some(ck_type) {
            return mismatch("has another key type than the vault recorded");
        }
        if key_type.is_rsa() {
            let Some(public) = material.public.as_ref() else {
                return mismatch("has no public key in the vault's state to check it against");
            };
            if n.as_deref() != Some(public.n.as_slice()) {
                return mismatch("has another modulus than the vault recorded");
            }
            if e.as_deref() != Some(public.e.as_slice()) {
                return mismatch("has another public exponent than the vault recorded");
            }
        } else if len != Some(32) {
            return mismatch("is not 32 bytes long");
        }
        Ok(handle)
    }

    /// Reads an RSA public key object's modulus and exponent.
    fn public_parts(
        &self,
        session: &Session,
        public: ObjectHandle,
    ) -> Result<RsaPublicParts, VaultError> {
        let attributes = session
            .get_attributes(
                public,
                &[AttributeType::Modulus, AttributeType::PublicExponent],
            )
            .map_err(token_error("C_GetAttributeValue"))?;
        let (mut n, mut e) = (None, None);
        for attribute in attributes {
            match attribute {
                Attribute::Modulus(v) => n = Some(strip_zeros(v)),
                Attribute::PublicExponent(v) => e = Some(strip_zeros(v)),
                _ => {}
            }
        }
        match (n, e) {
            (Some(n), Some(e)) if !n.is_empty() && !e.is_empty() => Ok(RsaPublicParts { n, e }),
            _ => Err(VaultError::Token {
                operation: "C_GetAttributeValue",
                source: "the RSA public key object has no modulus or exponent".into(),
            }),
        }
    }

    /// Destroys whatever objects carry `id`, best effort (used to clean up
    /// after a failed generate or import).
    fn discard(&self, session: &Session, id: &[u8]) {
        if let Ok(found) = session.find_objects(&[Attribute::Id(id.to_vec())]) {
            for handle in found {
                let _ = session.destroy_object(handle);
            }
        }
    }

    fn generate_rsa(&self, bits: usize) -> Result<Material, VaultError> {
        let id = random_id()?;
        let label = new_label(&self.owner, &id);
        let session = self.session()?;
        let _writing = self.module.writing();
        let bits = Ulong::from(u64::try_from(bits).unwrap_or(u64::MAX));
        let public_template = [
            Attribute::Class(ObjectClass::PUBLIC_KEY),
            Attribute::KeyType(CkKeyType::RSA),
            Attribute::Token(true),
            // Private: a process that has not logged in can neither see
            // nor destroy it (finding 5 of issue 11).
            Attribute::Private(true),
            Attribute::ModulusBits(bits),
            Attribute::PublicExponent(PUBLIC_EXPONENT.to_vec()),
            Attribute::Encrypt(true),
            Attribute::Wrap(true),
            Attribute::Verify(false),
            Attribute::Id(id.clone()),
            Attribute::Label(label.clone()),
        ];
        let private_template = [
            Attribute::Class(ObjectClass::PRIVATE_KEY),
            Attribute::KeyType(CkKeyType::RSA),
            Attribute::Token(true),
            Attribute::Private(true),
            Attribute::Sensitive(true),
            Attribute::Extractable(false),
            Attribute::Decrypt(true),
            Attribute::Unwrap(true),
            Attribute::Sign(false),
            Attribute::Id(id.clone()),
            Attribute::Label(label),
        ];
        let (public, _private) = session
            .generate_key_pair(
                &Mechanism::RsaPkcsKeyPairGen,
                &public_template,
                &private_template,
            )
            .map_err(token_error("C_GenerateKeyPair"))?;
        match self.public_parts(&session, public) {
            Ok(parts) => Ok(Material {
                id,
                public: Some(parts),
                handle: Vec::new(),
            }),
            Err(err) => {
                self.discard(&session, &id);
                Err(err)
            }
        }
    }

    fn generate_aes(&self) -> Result<Material, VaultError> {
        let id = random_id()?;
        let session = self.session()?;
        let _writing = self.module.writing();
        session
            .generate_key(
                &Mechanism::AesKeyGen,
                &[
                    Attribute::Class(ObjectClass::SECRET_KEY),
                    Attribute::KeyType(CkKeyType::AES),
                    Attribute::ValueLen(Ulong::from(32u64)),
                    Attribute::Token(true),
                    Attribute::Private(true),
                    Attribute::Sensitive(true),
                    Attribute::Extractable(false),
                    Attribute::Wrap(true),
                    Attribute::Unwrap(true),
                    Attribute::Encrypt(false),
                    Attribute::Decrypt(false),
                    Attribute::Id(id.clone()),
                    Attribute::Label(new_label(&self.owner, &id)),
                ],
            )
            .map_err(token_error("C_GenerateKey"))?;
        Ok(Material {
            id,
            public: None,
            handle: Vec::new(),
        })
    }

    fn import_rsa(&self, key: &rsa::PrivateKey) -> Result<Material, VaultError> {
        let id = random_id()?;
        let label = new_label(&self.owner, &id);
        let invalid = |what: &str| VaultError::InvalidKeyMaterial {
            reason: format!("the RSA key lacks its {what}"),
        };
        let [p, q] = key.primes() else {
            return Err(VaultError::InvalidKeyMaterial {
                reason: "only two-prime RSA keys can be imported into a token".to_owned(),
            });
        };
        let n = strip_zeros(key.n_bytes().into_vec());
        let e = strip_zeros(key.e_bytes().into_vec());
        let mut private_template = vec![
            Attribute::Class(ObjectClass::PRIVATE_KEY),
            Attribute::KeyType(CkKeyType::RSA),
            Attribute::Token(true),
            Attribute::Private(true),
            Attribute::Sensitive(true),
            Attribute::Extractable(false),
            Attribute::Decrypt(true),
            Attribute::Unwrap(true),
            Attribute::Sign(false),
            Attribute::Id(id.clone()),
            Attribute::Label(label.clone()),
            Attribute::Modulus(n.clone()),
            Attribute::PublicExponent(e.clone()),
            Attribute::PrivateExponent(secret_bytes(key.d())),
            Attribute::Prime1(secret_bytes(p.as_ref())),
            Attribute::Prime2(secret_bytes(q.as_ref())),
            Attribute::Exponent1(secret_bytes(
                key.dp().ok_or_else(|| invalid("CRT exponent dP"))?,
            )),
            Attribute::Exponent2(secret_bytes(
                key.dq().ok_or_else(|| invalid("CRT exponent dQ"))?,
            )),
            Attribute::Coefficient(secret_bytes(
                &key.crt_coefficient()
                    .ok_or_else(|| invalid("CRT coefficient"))?,
            )),
        ];
        let session = match self.session() {
            Ok(session) => session,
            Err(err) => {
                wipe(&mut private_template);
                return Err(err);
            }
        };
        let _writing = self.module.writing();
        let created = session.create_object(&private_template);
        wipe(&mut private_template);
        created.map_err(token_error("C_CreateObject (RSA private key)"))?;
        let public = session
            .create_object(&[
                Attribute::Class(ObjectClass::PUBLIC_KEY),
                Attribute::KeyType(CkKeyType::RSA),
                Attribute::Token(true),
                Attribute::Private(true),
                Attribute::Encrypt(true),
                Attribute::Wrap(true),
                Attribute::Verify(false),
                Attribute::Id(id.clone()),
                Attribute::Label(label),
                Attribute::Modulus(n),
                Attribute::PublicExponent(e),
            ])
            .map_err(token_error("C_CreateObject (RSA public key)"));
        let parts = public.and_then(|public| self.public_parts(&session, public));
        match parts {
            Ok(parts) => Ok(Material {
                id,
                public: Some(parts),
                handle: Vec::new(),
            }),
            Err(err) => {
                self.discard(&session, &id);
                Err(err)
            }
        }
    }

    fn import_aes(&self, key: &strongroom_aes::Aes256Key) -> Result<Material, VaultError> {
        let id = random_id()?;
        let mut template = vec![
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(CkKeyType::AES),
            Attribute::Token(true),
            Attribute::Private(true),
            Attribute::Sensitive(true),
            Attribute::Extractable(false),
            Attribute::Wrap(true),
            Attribute::Unwrap(true),
            Attribute::Encrypt(false),
            Attribute::Decrypt(false),
            Attribute::Id(id.clone()),
            Attribute::Label(new_label(&self.owner, &id)),
            Attribute::Value(key.expose_secret().to_vec()),
        ];
        let result = self.session().and_then(|session| {
            let _writing = self.module.writing();
            session
                .create_object(&template)
                .map_err(token_error("C_CreateObject (AES key)"))
        });
        wipe(&mut template);
        result?;
        Ok(Material {
            id,
            public: None,
            handle: Vec::new(),
        })
    }
}

impl KeyCrypto for Pkcs11Crypto {
    fn backend_name(&self) -> &'static str {
        self.module.backend
    }

    fn generate(&self, key_type: KeyType) -> Result<Material, VaultError> {
        match key_type.rsa_bits() {
            Some(bits) => self.generate_rsa(bits),
            None => self.generate_aes(),
        }
    }

    fn import(&self, key: ImportedKey) -> Result<Material, VaultError> {
        match key {
            ImportedKey::Rsa(key) => self.import_rsa(&key),
            ImportedKey::Aes256(key) => self.import_aes(&key),
        }
    }

    fn wrap(
        &self,
        material: &Material,
        key_type: KeyType,
        algorithm: WrapAlgorithm,
        dek: &[u8],
    ) -> Result<Vec<u8>, VaultError> {
        let session = self.session()?;
        self.check_supported(&session, algorithm, material.public.as_ref())?;
        // The key must be there, and be the vault's, before anything is
        // wrapped under it: a DEK wrapped under a key the token lost could
        // never be unwrapped.
        let kek = self.key_object(&session, material, key_type)?;
        if key_type.is_rsa() {
            // RSA-OAEP encryption needs no secret: it is done here, with
            // the public key from the vault's state, so no token object
            // (which another process may have planted) ever chooses the
            // key a DEK is wrapped under.
            let public = material
                .public
                .as_ref()
                .and_then(|p| p.to_rsa().ok())
                .ok_or_else(|| {
                    VaultError::material_corrupt(
                        "the vault's record of the public key is not a valid RSA key",
                    )
                })?;
            return crate::software::rsa_oaep_encrypt(&public, algorithm, dek);
        }
        // The DEK enters the token as a session object (gone when the
        // session closes at the latest), extractable so it can be wrapped.
        let mut template = vec![
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(CkKeyType::GENERIC_SECRET),
            Attribute::Token(false),
            Attribute::Private(true),
            Attribute::Sensitive(false),
            Attribute::Extractable(true),
            Attribute::Value(dek.to_vec()),
        ];
        let created = session.create_object(&template);
        wipe(&mut template);
        let object = created.map_err(token_error("C_CreateObject (DEK)"))?;
        let mechanism = self.scheme(algorithm)?.mechanism();
        let wrapped = session.wrap_key(&mechanism, kek, object);
        let destroyed = session.destroy_object(object);
        let wrapped = wrapped.map_err(token_error("C_WrapKey"))?;
        destroyed.map_err(token_error("C_DestroyObject (DEK)"))?;
        Ok(wrapped)
    }

    fn unwrap(
        &self,
        material: &Material,
        key_type: KeyType,
        algorithm: WrapAlgorithm,
        wrapped: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, VaultError> {
        let session = self.session()?;
        self.check_supported(&session, algorithm, material.public.as_ref())?;
        let kek = self.key_object(&session, material, key_type)?;
        // Lengths the mechanism can never produce are refused here, the
        // same way as a wrong tag, so that no token's quirks show through.
        let plausible = match self.scheme(algorithm)? {
            Scheme::AesKw => wrapped.len() >= 24 && wrapped.len().is_multiple_of(8),
            Scheme::Oaep { .. } => material
                .public
                .as_ref()
                .is_some_and(|p| p.n.len() == wrapped.len()),
        };
        if !plausible {
            return Err(VaultError::DecryptionFailed);
        }
        let mechanism = self.scheme(algorithm)?.mechanism();
        // Whatever the token says (bad padding, bad integrity check, bad
        // length), the answer is the same detail-free error.
        let object = session
            .unwrap_key(
                &mechanism,
                kek,
                wrapped,
                &[
                    Attribute::Class(ObjectClass::SECRET_KEY),
                    Attribute::KeyType(CkKeyType::GENERIC_SECRET),
                    Attribute::Token(false),
                    Attribute::Private(true),
                    Attribute::Sensitive(false),
                    Attribute::Extractable(true),
                ],
            )
            .map_err(|_| VaultError::DecryptionFailed)?;
        let read = session.get_attributes(object, &[AttributeType::Value]);
        let destroyed = session.destroy_object(object);
        let mut dek = None;
        for attribute in read.map_err(token_error("C_GetAttributeValue (DEK)"))? {
            if let Attribute::Value(value) = attribute {
                dek = Some(Zeroizing::new(value));
            }
        }
        destroyed.map_err(token_error("C_DestroyObject (DEK)"))?;
        match dek {
            // An empty "key" (OAEP of an empty message) is no DEK.
            Some(dek) if dek.is_empty() => Err(VaultError::DecryptionFailed),
            Some(dek) => Ok(dek),
            // The token unwrapped (so the wrapped key was sound) but keeps
            // the result secret: a token policy, not a decryption failure.
            None => Err(VaultError::Token {
                operation: "C_GetAttributeValue (DEK)",
                source: "the token keeps unwrapped keys sensitive (CKA_VALUE not readable)".into(),
            }),
        }
    }

    fn adopt(&self, material: &Material) -> Result<(), VaultError> {
        let session = self.session()?;
        let _writing = self.module.writing();
        let found = session
            .find_objects(&[
                Attribute::Token(true),
                Attribute::Private(true),
                Attribute::Id(material.id.clone()),
            ])
            .map_err(token_error("C_FindObjects"))?;
        for handle in found {
            session
                .update_attributes(
                    handle,
                    &[Attribute::Label(label(&self.owner, &material.id))],
                )
                .map_err(token_error("C_SetAttributeValue (label)"))?;
        }
        Ok(())
    }

    fn destroy(&self, material: &Material) -> Result<(), VaultError> {
        let session = self.session()?;
        let _writing = self.module.writing();
        let found = session
            .find_objects(&[Attribute::Token(true), Attribute::Id(material.id.clone())])
            .map_err(token_error("C_FindObjects"))?;
        for handle in found {
            session
                .destroy_object(handle)
                .map_err(token_error("C_DestroyObject"))?;
        }
        Ok(())
    }

    fn seal_secret(&self, value: &[u8]) -> Result<Material, VaultError> {
        let id = random_id()?;
        let mut template = vec![
            Attribute::Class(ObjectClass::DATA),
            Attribute::Token(true),
            Attribute::Private(true),
            Attribute::Modifiable(false),
            Attribute::Application(LABEL_PREFIX.as_bytes().to_vec()),
            Attribute::Label(secret_label(&self.owner, &id)),
            Attribute::Value(value.to_vec()),
        ];
        let result = self.session().and_then(|session| {
            let _writing = self.module.writing();
            session
                .create_object(&template)
                .map_err(token_error("C_CreateObject (secret data object)"))
        });
        wipe(&mut template);
        result?;
        Ok(Material {
            id,
            public: None,
            handle: Vec::new(),
        })
    }

    fn open_secret(&self, material: &Material) -> Result<Zeroizing<Vec<u8>>, VaultError> {
        let session = self.session()?;
        let found = session
            .find_objects(&secret_template(&self.owner, &material.id))
            .map_err(token_error("C_FindObjects (secret data object)"))?;
        let handle = match found.as_slice() {
            [handle] => *handle,
            [] => {
                return Err(VaultError::KeyMaterialMissing {
                    name: String::new(),
                    version: String::new(),
                    object: "secret data object",
                    backend: self.module.backend,
                });
            }
            more => {
                return Err(VaultError::material_corrupt(format!(
                    "the token holds {} data objects labelled as its value; the vault never picks one",
                    more.len()
                )));
            }
        };
        let attributes = session
            .get_attributes(handle, &[AttributeType::Value])
            .map_err(token_error("C_GetAttributeValue (secret value)"))?;
        for attribute in attributes {
            if let Attribute::Value(value) = attribute {
                return Ok(Zeroizing::new(value));
            }
        }
        Err(VaultError::material_corrupt(
            "its data object has no readable value",
        ))
    }

    fn destroy_secret(&self, material: &Material) -> Result<(), VaultError> {
        let session = self.session()?;
        let _writing = self.module.writing();
        let found = session
            .find_objects(&secret_template(&self.owner, &material.id))
            .map_err(token_error("C_FindObjects (secret data object)"))?;
        for handle in found {
            session
                .destroy_object(handle)
                .map_err(token_error("C_DestroyObject (secret data object)"))?;
        }
        Ok(())
    }

    fn export(
        &self,
        _material: &Material,
        _key_type: KeyType,
    ) -> Result<Zeroizing<Vec<u8>>, VaultError> {
        // Keys are made and imported sensitive and non-extractable: the
        // token never lets them out, not even wrapped.
        Err(VaultError::NotExportable {
            name: String::new(),
            backend: self.module.backend,
        })
    }
}

/// The label of a secret value's data object of vault `owner`:
/// `strongroom-keyvault secret <owner> <material id>`, both in hex. Data
/// objects have no `CKA_ID`: the label names them.
fn secret_label(owner: &[u8], id: &[u8]) -> Vec<u8> {
    format!("{LABEL_PREFIX} secret {} {}", hex(owner), hex(id)).into_bytes()
}

/// The search template of a secret value's data object.
fn secret_template(owner: &[u8], id: &[u8]) -> [Attribute; 4] {
    [
        Attribute::Class(ObjectClass::DATA),
        Attribute::Token(true),
        Attribute::Private(true),
        Attribute::Label(secret_label(owner, id)),
    ]
}

/// Finds and destroys a directory vault's key objects that its state no
/// longer names: what a crash left between making objects and committing
/// them, or between committing a purge and destroying its objects.
struct OrphanSweep {
    module: Arc<Module>,
    slot: Slot,
    pin: AuthPin,
    /// The vault id its key objects' labels carry.
    owner: Vec<u8>,
}

impl OrphanSweep {
    /// Under the state's lock (so no other process of the vault makes or
    /// commits objects meanwhile): destroys every private token object
    /// labelled as this vault's whose material id no key version of the
    /// state (active or soft-deleted) holds, and audits each material id
    /// destroyed, as done by the vault itself.
    fn destroy_orphans(&self, vault: &Vault) -> Result<(), VaultError> {
        let now = vault.clock.now();
        vault.store.transact(&mut |state: &mut State| {
            let known: std::collections::BTreeSet<&[u8]> = state
                .keys
                .values()
                .chain(state.deleted.values().map(|d| &d.key))
                .flat_map(|k| k.versions.iter().map(|v| v.material.id.as_slice()))
                .chain(
                    state
                        .secrets
                        .values()
                        .chain(state.deleted_secrets.values().map(|d| &d.secret))
                        .flat_map(|k| k.versions.iter().map(|v| v.material.id.as_slice())),
                )
                .chain(state.owner.iter().map(|o| o.material.id.as_slice()))
                .collect();
            let destroyed = self.run(&known)?;
            for (id, objects) in destroyed {
                crate::vault::audit(
                    state,
                    now,
                    crate::vault::SYSTEM,
                    &format!(
                        "destroyOrphanedTokenObjects {} ({objects} objects)",
                        hex(&id)
                    ),
                    None,
                    None,
                    crate::AuditOutcome::Allowed,
                );
            }
            Ok(())
        })
    }

    /// The token side of [`destroy_orphans`](Self::destroy_orphans): the
    /// material ids destroyed, with how many objects each had.
    fn run(
        &self,
        known: &std::collections::BTreeSet<&[u8]>,
    ) -> Result<std::collections::BTreeMap<Vec<u8>, usize>, VaultError> {
        let session = user_session(&self.module, self.slot, &self.pin)?;
        let _writing = self.module.writing();
        // Private objects only: one a process without the PIN made is not
        // the vault's, whatever its label says, and is left alone.
        let found = session
            .find_objects(&[Attribute::Token(true), Attribute::Private(true)])
            .map_err(token_error("C_FindObjects (orphaned objects)"))?;
        let prefix = format!("{LABEL_PREFIX} key {} ", hex(&self.owner));
        let new_prefix = format!("{LABEL_PREFIX} new {} ", hex(&self.owner));
        let secret_prefix = format!("{LABEL_PREFIX} secret {} ", hex(&self.owner));
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let mut destroyed = std::collections::BTreeMap::new();
        for handle in found {
            let attributes = session
                .get_attributes(handle, &[AttributeType::Label, AttributeType::Id])
                .map_err(token_error("C_GetAttributeValue (orphaned objects)"))?;
            let (mut label, mut id) = (None, None);
            for attribute in attributes {
                match attribute {
                    Attribute::Label(v) => label = Some(v),
                    Attribute::Id(v) => id = Some(v),
                    _ => {}
                }
            }
            // A secret value's data object (no CKA_ID: its id is in the
            // label). Made inside the transaction that commits it, so one
            // the state does not name is an orphan at once.
            if let Some(secret_id) = label
                .as_deref()
                .and_then(|l| l.strip_prefix(secret_prefix.as_bytes()))
                .and_then(|rest| std::str::from_utf8(rest).ok())
                .and_then(crate::state::unhex)
            {
                if !known.contains(secret_id.as_slice()) {
                    session
                        .destroy_object(handle)
                        .map_err(token_error("C_DestroyObject (orphaned object)"))?;
                    *destroyed.entry(secret_id).or_insert(0) += 1;
                }
                continue;
            }
            let (Some(label), Some(id)) = (label, id) else {
                continue;
            };
            // Adopted by a transaction: an orphan now. Made outside the
            // lock and never adopted: an orphan once the grace is over.
            let adopted = label.strip_prefix(prefix.as_bytes()) == Some(hex(&id).as_bytes());
            let stale = std::str::from_utf8(&label)
                .ok()
                .and_then(|l| l.strip_prefix(new_prefix.as_str()))
                .and_then(|rest| rest.split_once(' '))
                .filter(|(i, _)| *i == hex(&id))
                .and_then(|(_, made)| made.parse::<u64>().ok())
                .is_some_and(|made| now.saturating_sub(made) > NEW_OBJECT_GRACE);
            let ours = adopted || stale;
            if ours && !known.contains(id.as_slice()) {
                session
                    .destroy_object(handle)
                    .map_err(token_error("C_DestroyObject (orphaned object)"))?;
                *destroyed.entry(id).or_insert(0) += 1;
            }
        }
        Ok(destroyed)
    }
}

/// A new read-write session on `slot`, logged in as the user.
fn user_session(module: &Module, slot: Slot, pin: &AuthPin) -> Result<Session, VaultError> {
    let session = module
        .ctx
        .open_rw_session(slot)
        .map_err(token_error("C_OpenSession"))?;
    let state = session
        .get_session_info()
        .map_err(token_error("C_GetSessionInfo"))?
        .session_state();
    if !matches!(state, SessionState::RwUser | SessionState::RoUser) {
        login(&session, pin)?;
    }
    Ok(session)
}

/// Logs the session's application in as the user, unless it already is.
fn login(session: &Session, pin: &AuthPin) -> Result<(), VaultError> {
    match session.login(UserType::User, Some(pin)) {
        Ok(()) | Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => Ok(()),
        Err(err) => Err(token_error("C_Login")(err)),
    }
}

/// How the token does a [`WrapAlgorithm`].
#[derive(Clone, Copy)]
enum Scheme {
    /// `CKM_AES_KEY_WRAP`.
    AesKw,
    /// `CKM_RSA_PKCS_OAEP` with SHA-1 (`RsaOaep`) or SHA-256
    /// (`RsaOaep256`) for both the hash and MGF1, and an empty label.
    Oaep { sha1: bool },
}

impl Scheme {
    fn mechanism(self) -> Mechanism<'static> {
        match self {
            Self::AesKw => Mechanism::AesKeyWrap,
            Self::Oaep { sha1 } => {
                let (hash, mgf) = if sha1 {
                    (MechanismType::SHA1, PkcsMgfType::MGF1_SHA1)
                } else {
                    (MechanismType::SHA256, PkcsMgfType::MGF1_SHA256)
                };
                Mechanism::RsaPkcsOaep(PkcsOaepParams::new(hash, mgf, PkcsOaepSource::empty()))
            }
        }
    }
}

/// Maps a `cryptoki` error to [`VaultError::Token`] naming the step.
fn token_error(operation: &'static str) -> impl FnOnce(CkError) -> VaultError {
    move |err| VaultError::Token {
        operation,
        source: Box::new(err),
    }
}

fn random_id() -> Result<Vec<u8>, VaultError> {
    crate::state::random_bytes(ID_LEN)
}

/// The label of a key object of vault `owner`:
/// `strongroom-keyvault key <owner> <material id>`, both in hex.
fn label(owner: &[u8], id: &[u8]) -> Vec<u8> {
    format!("{LABEL_PREFIX} key {} {}", hex(owner), hex(id)).into_bytes()
}

/// The label of a key object made outside the state's lock and not yet
/// adopted by a transaction: `strongroom-keyvault new <owner> <material
/// id> <Unix time made>`. An open sweeping orphans leaves these alone for
/// [`NEW_OBJECT_GRACE`] (another process may be about to commit them).
fn new_label(owner: &[u8], id: &[u8]) -> Vec<u8> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    format!("{LABEL_PREFIX} new {} {} {now}", hex(owner), hex(id)).into_bytes()
}

/// How long an orphan sweep leaves a not-yet-adopted object alone.
const NEW_OBJECT_GRACE: u64 = 24 * 3600;

/// Big-endian integer bytes without leading zeros (PKCS#11 and JWK form).
fn strip_zeros(mut bytes: Vec<u8>) -> Vec<u8> {
    let zeros = bytes.iter().take_while(|&&b| b == 0).count();
    bytes.drain(..zeros);
    bytes
}

/// A secret big integer as big-endian bytes. The intermediate buffer is
/// zeroized; the result is wiped by [`wipe`] once the token has it.
fn secret_bytes(value: &rsa::BoxedUint) -> Vec<u8> {
    let full = Zeroizing::new(value.to_be_bytes().into_vec());
    let zeros = full.iter().take_while(|&&b| b == 0).count();
    full[zeros..].to_vec()
}

/// Zeroizes every byte-valued attribute of a template (key values, private
/// exponents, primes) once the token has taken them.
fn wipe(template: &mut [Attribute]) {
    for attribute in template {
        match attribute {
            Attribute::Value(v)
            | Attribute::PrivateExponent(v)
            | Attribute::Prime1(v)
            | Attribute::Prime2(v)
            | Attribute::Exponent1(v)
            | Attribute::Exponent2(v)
            | Attribute::Coefficient(v) => v.zeroize(),
            _ => {}
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

// ------------------------------------------------- the state in a directory

/// The magic of a PKCS#11 vault's `vault.json`.
const DIR_MAGIC: &str = "strongroom-keyvault pkcs11 vault";
/// The version of a PKCS#11 vault's `vault.json`.
const DIR_FORMAT: u32 = 1;
/// Length of a vault id.
const VAULT_ID_LEN: usize = 16;
/// How the state MAC is computed, as `vault.json` records it.
const STATE_MAC_MECHANISM: &str = "CKM_SHA256_HMAC";
/// The state MAC key object's `CKA_ID` is this followed by the vault id:
/// 26 bytes, so it never equals a key version's 16-byte material id.
const MAC_ID_PREFIX: &[u8] = b"state-mac:";

/// `vault.json` of a PKCS#11 vault: written once, at creation.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct DirHeader {
    /// [`DIR_MAGIC`].
    magic: String,
    /// [`DIR_FORMAT`].
    format: u32,
    #[serde(with = "hex_bytes")]
    vault_id: Vec<u8>,
    state_mac: StateMacRecord,
    /// The token the vault was created on (for error messages).
    token: TokenRecord,
}

/// Which token object authenticates `state.json`, and how.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StateMacRecord {
    /// [`STATE_MAC_MECHANISM`].
    mechanism: String,
    /// The key object's `CKA_ID`.
    #[serde(with = "hex_bytes")]
    key_id: Vec<u8>,
    /// The key object's `CKA_LABEL`.
    key_label: String,
}

/// A token as `C_GetTokenInfo` describes it.
#[derive(Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
struct TokenRecord {
    label: String,
    manufacturer: String,
    model: String,
    serial: String,
}

impl core::fmt::Display for TokenRecord {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "token {:?} ({} {}, serial {:?})",
            self.label, self.manufacturer, self.model, self.serial
        )
    }
}

fn mac_key_id(vault_id: &[u8]) -> Vec<u8> {
    [MAC_ID_PREFIX, vault_id].concat()
}

fn mac_key_label(vault_id: &[u8]) -> String {
    format!("{LABEL_PREFIX} state-mac {}", hex(vault_id))
}

/// The one state MAC key object with `CKA_ID` = `key_id`, or `None`.
fn find_mac_key(session: &Session, key_id: &[u8]) -> Result<Option<ObjectHandle>, VaultError> {
    let found = session
        .find_objects(&[
            Attribute::Token(true),
            // Only private objects: one made by a process that never
            // logged in is not the vault's, and must not make the MAC key
            // ambiguous.
            Attribute::Private(true),
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::Id(key_id.to_vec()),
        ])
        .map_err(token_error("C_FindObjects (state MAC key)"))?;
    match found.as_slice() {
        [] => Ok(None),
        [handle] => Ok(Some(*handle)),
        _ => Err(VaultError::Token {
            operation: "C_FindObjects (state MAC key)",
            source: format!(
                "the token holds {} state MAC keys with CKA_ID {}",
                found.len(),
                hex(key_id)
            )
            .into(),
        }),
    }
}

/// The state MAC key of a vault directory: a generic secret key object in
/// the token; the token computes the HMAC, the key never leaves it.
struct TokenMacKey {
    module: Arc<Module>,
    slot: Slot,
    pin: AuthPin,
    key_id: Vec<u8>,
}

impl StateMacKey for TokenMacKey {
    fn hmac_sha256(&self, message: &[u8]) -> Result<[u8; 32], VaultError> {
        const OPERATION: &str = "C_Sign (state MAC)";
        let session = user_session(&self.module, self.slot, &self.pin)?;
        let key = find_mac_key(&session, &self.key_id)?.ok_or_else(|| VaultError::Token {
            operation: OPERATION,
            source: format!(
                "the token no longer holds the vault's state MAC key (CKA_ID {}): it was \
                 destroyed outside the vault",
                hex(&self.key_id)
            )
            .into(),
        })?;
        let mac = session
            .sign(&Mechanism::Sha256Hmac, key, message)
            .map_err(token_error(OPERATION))?;
        <[u8; 32]>::try_from(mac.as_slice()).map_err(|_| VaultError::Token {
            operation: OPERATION,
            source: format!("the token gave {} bytes of HMAC-SHA256, not 32", mac.len()).into(),
        })
    }
}

/// The `CKA_APPLICATION` of the witness object.
const WITNESS_APPLICATION: &str = "strongroom-keyvault";

/// The label of vault `vault_id`'s witness object.
fn witness_label(vault_id: &[u8]) -> String {
    format!("{LABEL_PREFIX} witness {}", hex(vault_id))
}

/// The label of the object that replaces a witness object on a token that
/// cannot change a data object's value in place, until it has.
fn pending_witness_label(vault_id: &[u8]) -> String {
    format!("{LABEL_PREFIX} witness-pending {}", hex(vault_id))
}

/// The rollback witness of a vault directory, kept in its token: one
/// private data object (`CKO_DATA`, `CKA_APPLICATION`
/// `strongroom-keyvault`) labelled `strongroom-keyvault witness <vault
/// id>`, whose `CKA_VALUE` holds the witness bytes (JSON, MACed under the
/// state MAC key, as a witness file). Private, so a process without the
/// PIN can neither see, change nor destroy it. It has no `CKA_ID`, and its
/// label is neither `key` nor `new`: the orphan sweep never takes it for a
/// key object.
///
/// A write sets `CKA_VALUE` in place (`C_SetAttributeValue`). PKCS#11 does
/// not list a data object's value as modifiable, and some tokens refuse
/// (SoftHSM2: `CKR_ATTRIBUTE_READ_ONLY`); there the object is replaced:
/// (1) a new object with the new value, labelled `strongroom-keyvault
/// witness-pending <vault id>`, (2) the old object destroyed, (3) the new
/// one relabelled. A crash after (1) leaves the old value in force (one
/// step behind, as a witness file's crash does), after (2) the pending
/// object holds the newest value and is read as the witness; the next
/// write finishes or discards what the crash left.
struct TokenWitness {
    module: Arc<Module>,
    slot: Slot,
    pin: AuthPin,
    label: String,
    pending_label: String,
    /// The token refused to set the value in place: replace from now on.
    replace: AtomicBool,
}

impl TokenWitness {
    /// The private data objects labelled `label`.
    fn find_labelled(
        &self,
        session: &Session,
        label: &str,
    ) -> Result<Vec<ObjectHandle>, VaultError> {
        session
            .find_objects(&[
                Attribute::Token(true),
                // A public object is not the vault's, whatever its label
                // says: a process without the PIN may have made it.
                Attribute::Private(true),
                Attribute::Class(ObjectClass::DATA),
                Attribute::Label(label.as_bytes().to_vec()),
            ])
            .map_err(token_error("C_FindObjects (rollback witness)"))
    }

    /// The witness objects: the ones labelled as the witness, and the ones
    /// labelled as pending.
    fn objects(
        &self,
        session: &Session,
    ) -> Result<(Vec<ObjectHandle>, Vec<ObjectHandle>), VaultError> {
        let current = self.find_labelled(session, &self.label)?;
        let pending = self.find_labelled(session, &self.pending_label)?;
        if current.len() > 1 || (current.is_empty() && pending.len() > 1) {
            let (n, label) = if current.len() > 1 {
                (current.len(), &self.label)
            } else {
                (pending.len(), &self.pending_label)
            };
            return Err(self.corrupt(format!(
                "the token holds {n} private data objects labelled {label:?}, where the vault \
                 makes one; none is used (someone with the PIN made them: destroy the extra \
                 ones)"
            )));
        }
        Ok((current, pending))
    }

    fn create(
        &self,
        session: &Session,
        label: &str,
        bytes: &[u8],
    ) -> Result<ObjectHandle, VaultError> {
        session
            .create_object(&[
                Attribute::Class(ObjectClass::DATA),
                Attribute::Token(true),
                Attribute::Private(true),
                Attribute::Modifiable(true),
                Attribute::Application(WITNESS_APPLICATION.as_bytes().to_vec()),
                Attribute::Label(label.as_bytes().to_vec()),
                Attribute::Value(bytes.to_vec()),
            ])
            .map_err(token_error("C_CreateObject (rollback witness)"))
    }

    fn relabel(&self, session: &Session, object: ObjectHandle) -> Result<(), VaultError> {
        session
            .update_attributes(object, &[Attribute::Label(self.label.as_bytes().to_vec())])
            .map_err(token_error("C_SetAttributeValue (rollback witness label)"))
    }
}

impl Witness for TokenWitness {
    fn read(&self) -> Result<Option<Vec<u8>>, VaultError> {
        const OPERATION: &str = "C_GetAttributeValue (rollback witness)";
        let session = user_session(&self.module, self.slot, &self.pin)?;
        // The witness; without one, what a crash mid-replace left (the
        // newest value).
        let (current, pending) = self.objects(&session)?;
        let Some(&object) = current.first().or(pending.first()) else {
            return Ok(None);
        };
        // Bounded before the token is asked for the bytes.
        let info = session
            .get_attribute_info(object, &[AttributeType::Value])
            .map_err(token_error(OPERATION))?;
        match info.as_slice() {
            [AttributeInfo::Available(len)] if *len as u64 <= MAX_WITNESS_FILE => {}
            [AttributeInfo::Available(len)] => {
                return Err(self.corrupt(format!(
                    "{len} bytes, more than the {MAX_WITNESS_FILE} a witness may hold"
                )));
            }
            other => {
                return Err(self.corrupt(format!("its CKA_VALUE cannot be read ({other:?})")));
            }
        }
        let attributes = session
            .get_attributes(object, &[AttributeType::Value])
            .map_err(token_error(OPERATION))?;
        match attributes.into_iter().next() {
            Some(Attribute::Value(bytes)) if bytes.len() as u64 <= MAX_WITNESS_FILE => {
                Ok(Some(bytes))
            }
            _ => Err(self.corrupt("its CKA_VALUE cannot be read".to_owned())),
        }
    }

    fn write(&self, bytes: &[u8]) -> Result<(), VaultError> {
        const DESTROY: &str = "C_DestroyObject (rollback witness)";
        let session = user_session(&self.module, self.slot, &self.pin)?;
        let _writing = self.module.writing();
        // First settle what a crash mid-replace left.
        let (current, pending) = self.objects(&session)?;
        let object = match (current.first(), pending.as_slice()) {
            (None, []) => None,
            // Crashed after destroying the old object: finish. (There is
            // one: objects() refuses several.)
            (None, [newest, ..]) => {
                self.relabel(&session, *newest)?;
                Some(*newest)
            }
            // Crashed before destroying it: the old value is in force;
            // the pending one is superseded by this write.
            (Some(object), stale) => {
                for handle in stale {
                    session
                        .destroy_object(*handle)
                        .map_err(token_error(DESTROY))?;
                }
                Some(*object)
            }
        };
        let Some(object) = object else {
            self.create(&session, &self.label, bytes)?;
            return Ok(());
        };
        if !self.replace.load(Ordering::Relaxed) {
            match session.update_attributes(object, &[Attribute::Value(bytes.to_vec())]) {
                Ok(()) => return Ok(()),
                Err(CkError::Pkcs11(RvError::AttributeReadOnly, _)) => {
                    self.replace.store(true, Ordering::Relaxed);
                }
                Err(err) => return Err(token_error("C_SetAttributeValue (rollback witness)")(err)),
            }
        }
        let new = self.create(&session, &self.pending_label, bytes)?;
        session
            .destroy_object(object)
            .map_err(token_error(DESTROY))?;
        self.relabel(&session, new)
    }

    fn corrupt(&self, reason: String) -> VaultError {
        VaultError::Token {
            operation: "check the rollback witness",
            source: format!(
                "the token object labelled {:?} is not the vault's witness: {reason}",
                self.label
            )
            .into(),
        }
    }
}

impl Pkcs11Crypto {
    /// The state MAC key object `key_id` of this token.
    fn mac_key(&self, key_id: Vec<u8>) -> TokenMacKey {
        TokenMacKey {
            module: Arc::clone(&self.module),
            slot: self.slot,
            pin: self.pin.clone(),
            key_id,
        }
    }

    /// The rollback witness object of vault `vault_id` on this token.
    fn witness(&self, vault_id: &[u8]) -> Box<dyn Witness> {
        Box::new(TokenWitness {
            module: Arc::clone(&self.module),
            slot: self.slot,
            pin: self.pin.clone(),
            label: witness_label(vault_id),
            pending_label: pending_witness_label(vault_id),
            replace: AtomicBool::new(false),
        })
    }

    fn token_record(&self) -> Result<TokenRecord, VaultError> {
        let info = self
            .module
            .ctx
            .get_token_info(self.slot)
            .map_err(token_error("C_GetTokenInfo"))?;
        Ok(TokenRecord {
            label: info.label().trim_end().to_owned(),
            manufacturer: info.manufacturer_id().trim_end().to_owned(),
            model: info.model().trim_end().to_owned(),
            serial: info.serial_number().trim_end().to_owned(),
        })
    }

    /// Generates a vault's state MAC key in the token: a 32-byte generic
    /// secret, sensitive, not extractable, good for signing (HMAC) only.
    fn generate_mac_key(&self, vault_id: &[u8]) -> Result<(), VaultError> {
        for (mechanism, sign) in [
            (MechanismType::SHA256_HMAC, true),
            (MechanismType::GENERIC_SECRET_KEY_GEN, false),
        ] {
            match self.module.ctx.get_mechanism_info(self.slot, mechanism) {
                Ok(info) if !sign || info.sign() => {}
                Ok(_) | Err(CkError::Pkcs11(RvError::MechanismInvalid, _)) => {
                    return Err(VaultError::Token {
                        operation: "C_GetMechanismInfo",
                        source: format!(
                            "{} lacks {mechanism}, which a vault keeping its state in a \
                             directory needs for the state MAC",
                            self.module.backend
                        )
                        .into(),
                    });
                }
                Err(err) => return Err(token_error("C_GetMechanismInfo")(err)),
            }
        }
        let session = self.session()?;
        let _writing = self.module.writing();
        session
            .generate_key(
                &Mechanism::GenericSecretKeyGen,
                &[
                    Attribute::Class(ObjectClass::SECRET_KEY),
                    Attribute::KeyType(CkKeyType::GENERIC_SECRET),
                    Attribute::ValueLen(Ulong::from(32u64)),
                    Attribute::Token(true),
                    Attribute::Private(true),
                    Attribute::Sensitive(true),
                    Attribute::Extractable(false),
                    Attribute::Sign(true),
                    Attribute::Verify(true),
                    Attribute::Derive(false),
                    Attribute::Id(mac_key_id(vault_id)),
                    Attribute::Label(mac_key_label(vault_id).into_bytes()),
                ],
            )
            .map_err(token_error("C_GenerateKey (state MAC key)"))?;
        Ok(())
    }

    /// Destroys the state MAC key `key_id`, best effort.
    fn discard_mac_key(&self, key_id: &[u8]) {
        if let Ok(session) = self.session()
            && let Ok(Some(handle)) = find_mac_key(&session, key_id)
        {
            let _writing = self.module.writing();
            let _ = session.destroy_object(handle);
        }
    }
}

/// Creates the vault's state in `dir`, or opens it: the store and the
/// vault id.
fn open_dir_state(
    crypto: &Pkcs11Crypto,
    dir: &Path,
    properties: VaultProperties,
) -> Result<(file::DirStore, Vec<u8>), VaultError> {
    let token = crypto.token_record()?;
    let mut made = None;
    let created = file::create_dir_vault(dir, |leftover| {
        // A PKCS#11 vault.json without a state.json is an unfinished
        // creation: the MAC key it made on this token guards nothing.
        if let Some(header) = leftover.and_then(|b| serde_json::from_slice::<DirHeader>(&b).ok())
            && header.magic == DIR_MAGIC
            && header.state_mac.key_id == mac_key_id(&header.vault_id)
        {
            crypto.discard_mac_key(&header.state_mac.key_id);
        }
        let vault_id = random_id()?;
        let key_id = mac_key_id(&vault_id);
        crypto.generate_mac_key(&vault_id)?;
        made = Some(vault_id.clone());
        let header = DirHeader {
            magic: DIR_MAGIC.to_owned(),
            format: DIR_FORMAT,
            vault_id: vault_id.clone(),
            state_mac: StateMacRecord {
                mechanism: STATE_MAC_MECHANISM.to_owned(),
                key_id: key_id.clone(),
                key_label: mac_key_label(&vault_id),
            },
            token,
        };
        let header =
            serde_json::to_vec_pretty(&header).map_err(|e| VaultError::InvalidArgument {
                reason: format!("vault.json cannot be serialized: {e}"),
            })?;
        Ok(NewDirVault {
            header,
            witness: Some(crypto.witness(&vault_id)),
            vault_id,
            mac_key: Box::new(crypto.mac_key(key_id)),
            state: State::new(properties),
        })
    });
    match (created, made) {
        (Ok(Some(store)), Some(vault_id)) => return Ok((store, vault_id)),
        // Not created (a vault is there): open it.
        (Ok(_), _) => {}
        (Err(err), made) => {
            // The key guards nothing unless the state was committed.
            if let Some(vault_id) = made
                && !dir.join("state.json").exists()
            {
                crypto.discard_mac_key(&mac_key_id(&vault_id));
            }
            return Err(err);
        }
    }
    let (path, bytes) = file::read_dir_vault_header(dir)?;
    let bytes = bytes.ok_or_else(|| VaultError::Corrupt {
        path: path.clone(),
        reason: "missing, though state.json is there".into(),
    })?;
    let header = parse_dir_header(&bytes, &path, dir)?;
    let current = crypto.token_record()?;
    let session = crypto.session()?;
    if find_mac_key(&session, &header.state_mac.key_id)?.is_none() {
        let why = if current == header.token {
            "the key object was destroyed: the vault's state can no longer be authenticated"
                .to_owned()
        } else {
            format!(
                "the vault was created on {}: open it with that token",
                header.token
            )
        };
        return Err(VaultError::Token {
            operation: "find the vault's state MAC key",
            source: format!(
                "{current} holds no state MAC key for the vault in {} (label {:?}); {why}",
                dir.display(),
                header.state_mac.key_label
            )
            .into(),
        });
    }
    drop(session);
    let store = file::open_dir_store(
        dir,
        header.vault_id.clone(),
        Box::new(crypto.mac_key(header.state_mac.key_id)),
        Some(crypto.witness(&header.vault_id)),
    )?;
    Ok((store, header.vault_id))
}

/// Parses and checks a PKCS#11 vault's `vault.json`.
fn parse_dir_header(bytes: &[u8], path: &Path, dir: &Path) -> Result<DirHeader, VaultError> {
    let corrupt = |reason: String| VaultError::Corrupt {
        path: path.to_path_buf(),
        reason,
    };
    let probe: serde_json::Value = serde_json::from_slice(bytes)
        .map_err(|e| corrupt(format!("not a strongroom PKCS#11 key vault ({e})")))?;
    match probe.get("magic").and_then(serde_json::Value::as_str) {
        Some(DIR_MAGIC) => {}
        Some(file::FILE_VAULT_MAGIC) => {
            return Err(VaultError::InvalidArgument {
                reason: format!(
                    "{} holds a FileKeyVault, not a PKCS#11 vault",
                    dir.display()
                ),
            });
        }
        _ => {
            return Err(corrupt(format!(
                "not a strongroom PKCS#11 key vault (no \"magic\": \"{DIR_MAGIC}\")"
            )));
        }
    }
    match probe.get("format").and_then(serde_json::Value::as_u64) {
        Some(v) if v == u64::from(DIR_FORMAT) => {}
        Some(v) => {
            return Err(corrupt(format!(
                "vault format version {v}; this build reads version {DIR_FORMAT}"
            )));
        }
        None => return Err(corrupt("no format version".into())),
    }
    let header: DirHeader =
        serde_json::from_slice(bytes).map_err(|e| corrupt(format!("malformed: {e}")))?;
    if header.vault_id.len() != VAULT_ID_LEN {
        return Err(corrupt(format!(
            "vault id of {} bytes, not {VAULT_ID_LEN}",
            header.vault_id.len()
        )));
    }
    if header.state_mac.mechanism != STATE_MAC_MECHANISM {
        return Err(corrupt(format!(
            "state MAC mechanism {}; this build uses {STATE_MAC_MECHANISM}",
            header.state_mac.mechanism
        )));
    }
    if header.state_mac.key_id != mac_key_id(&header.vault_id) {
        return Err(corrupt(
            "the state MAC key id does not match the vault id".into(),
        ));
    }
    Ok(header)
}
