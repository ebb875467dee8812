//! [`FileKeyVault`]: the embedded default backend, a vault in a directory
//! (`vault.json`, `state.json`, `audit.log`, `lock`). The on-disk layout
//! and the crash-safety argument are in [`FileKeyVault`]'s documentation.

mod fsio;
mod header;
mod store;

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use zeroize::Zeroizing;

use crate::clock::{Clock, SystemClock};
use crate::software::SoftwareCrypto;
use crate::state::{State, hex};
use crate::vault::{AsVault, Vault, validate_properties};
use crate::{VaultError, VaultProperties};
use fsio::{Paths, io_err};
use header::{RootKeyKind, VaultFile};
#[cfg_attr(not(feature = "pkcs11"), allow(unused_imports))]
pub(crate) use store::{DirStore, MAX_WITNESS_FILE, StateMacKey, Witness, read_audit_segments};
use store::{FileWitness, LocalMacKey};

const VAULT_FILE: &str = "vault.json";
const STATE_FILE: &str = "state.json";
const AUDIT_FILE: &str = "audit.log";
const OPS_FILE: &str = "ops.log";
const LOCK_FILE: &str = "lock";
/// Length of a key file.
const KEY_FILE_LEN: u64 = 32;

/// Where a file vault's root key comes from.
#[non_exhaustive]
pub enum RootKeySource {
    /// A file of 32 random bytes, made by
    /// [`FileKeyVault::generate_key_file`]. Keep it apart from the vault
    /// directory (another disk, a secret store): whoever has both has the
    /// keys.
    KeyFile(PathBuf),
    /// A passphrase, stretched with Argon2id.
    Passphrase(Passphrase),
}

impl core::fmt::Debug for RootKeySource {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::KeyFile(path) => f.debug_tuple("KeyFile").field(path).finish(),
            Self::Passphrase(p) => f.debug_tuple("Passphrase").field(p).finish(),
        }
    }
}

/// A vault passphrase: zeroized on drop, never printed, not `Clone`.
///
/// Its bytes are used as given (UTF-8, no Unicode normalization). The
/// Argon2id parameters matter only when a vault is created; opening uses
/// those the vault recorded.
pub struct Passphrase {
    secret: Zeroizing<Vec<u8>>,
    kdf: KdfParams,
}

impl Passphrase {
    /// A passphrase, with the default Argon2id parameters for new vaults.
    /// Takes the `String` so that its buffer is zeroized with it.
    #[must_use]
    pub fn new(passphrase: String) -> Self {
        Self {
            secret: Zeroizing::new(passphrase.into_bytes()),
            kdf: KdfParams::default(),
        }
    }

    /// Sets the Argon2id parameters a vault created with this passphrase
    /// records.
    #[must_use]
    pub fn with_kdf(mut self, kdf: KdfParams) -> Self {
        self.kdf = kdf;
        self
    }
}

impl From<&str> for Passphrase {
    fn from(passphrase: &str) -> Self {
        Self::new(passphrase.to_owned())
    }
}

impl core::fmt::Debug for Passphrase {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Passphrase(..)")
    }
}

/// Argon2id parameters for a passphrase root key.
///
/// The default is RFC 9106's second recommended option: 64 MiB, 3 passes,
/// 4 lanes (computed one after another: this crate does not spawn threads).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KdfParams {
    memory_kib: u32,
    iterations: u32,
    parallelism: u32,
}

impl KdfParams {
    /// Most memory a vault may ask Argon2id for: 4 GiB.
    pub const MAX_MEMORY_KIB: u32 = 4 * 1024 * 1024;
    /// Most passes a vault may ask for.
    pub const MAX_ITERATIONS: u32 = 64;
    /// Most lanes a vault may ask for.
    pub const MAX_PARALLELISM: u32 = 16;

    /// Parameters of your choosing. Below OWASP's floor (19 MiB with 2
    /// passes) a passphrase is cheap to guess; such values are for tests.
    ///
    /// # Errors
    /// [`VaultError::InvalidArgument`] outside 1 to
    /// [`MAX_ITERATIONS`](Self::MAX_ITERATIONS) passes, 1 to
    /// [`MAX_PARALLELISM`](Self::MAX_PARALLELISM) lanes, or 8 KiB per lane
    /// to [`MAX_MEMORY_KIB`](Self::MAX_MEMORY_KIB).
    pub fn new(memory_kib: u32, iterations: u32, parallelism: u32) -> Result<Self, VaultError> {
        let invalid = |reason: String| Err(VaultError::InvalidArgument { reason });
        if !(1..=Self::MAX_PARALLELISM).contains(&parallelism) {
            return invalid(format!(
                "argon2id parallelism must be 1 to {}, not {parallelism}",
                Self::MAX_PARALLELISM
            ));
        }
        if !(1..=Self::MAX_ITERATIONS).contains(&iterations) {
            return invalid(format!(
                "argon2id iterations must be 1 to {}, not {iterations}",
                Self::MAX_ITERATIONS
            ));
        }
        if !(8 * parallelism..=Self::MAX_MEMORY_KIB).contains(&memory_kib) {
            return invalid(format!(
                "argon2id memory must be {} to {} KiB, not {memory_kib}",
                8 * parallelism,
                Self::MAX_MEMORY_KIB
            ));
        }
        Ok(Self {
            memory_kib,
            iterations,
            parallelism,
        })
    }

    /// Memory in KiB.
    #[must_use]
    pub fn memory_kib(&self) -> u32 {
        self.memory_kib
    }

    /// Passes over the memory.
    #[must_use]
    pub fn iterations(&self) -> u32 {
        self.iterations
    }

    /// Lanes.
    #[must_use]
    pub fn parallelism(&self) -> u32 {
        self.parallelism
    }
}

impl Default for KdfParams {
    fn default() -> Self {
        Self {
            memory_kib: 64 * 1024,
            iterations: 3,
            parallelism: 4,
        }
    }
}

/// How [`FileKeyVault::open_with_options`] and
/// [`FileKeyVault::create_with_options`] run beyond the directory and root
/// key: the clock, and the witness that makes rollbacks detectable.
#[derive(Clone)]
#[non_exhaustive]
pub struct FileVaultOptions {
    clock: Arc<dyn Clock>,
    witness: Option<PathBuf>,
}

impl FileVaultOptions {
    /// The system clock, no witness.
    #[must_use]
    pub fn new() -> Self {
        Self {
            clock: Arc::new(SystemClock),
            witness: None,
        }
    }

    /// Reads time from `clock`.
    #[must_use]
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Keeps the newest state generation and audit head the vault reached
    /// in the file at `path`, which must be outside the vault directory
    /// (another disk, a place its attacker cannot write). Written after
    /// every call that appended to the audit log; checked at open and by
    /// every call. A vault whose state or audit log is older than its
    /// witness fails with [`VaultError::RolledBack`] or
    /// [`VaultError::AuditRolledBack`]. Every process using the vault should
    /// name the same witness. A missing witness file is made at open.
    #[must_use]
    pub fn witness(mut self, path: impl Into<PathBuf>) -> Self {
        self.witness = Some(path.into());
        self
    }
}

impl Default for FileVaultOptions {
    fn default() -> Self {
        Self::new()
    }
}

impl core::fmt::Debug for FileVaultOptions {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("FileVaultOptions")
            .field("witness", &self.witness)
            .finish_non_exhaustive()
    }
}

/// A key vault in a directory: the embedded default backend (DESIGN.md
/// R10). Implements [`KeyVault`](crate::KeyVault).
///
/// Key material is sealed at rest (AES-256-GCM, by the same software key
/// backend as [`MemoryKeyVault`](crate::MemoryKeyVault)) under a root key
/// that comes from a key file made at initialization or from a passphrase
/// through Argon2id. Every change is crash-safe, and any number of
/// `FileKeyVault` values, in one process or several, may use one directory at
/// once: each call runs under the directory's exclusive lock on the state it
/// reads from disk.
///
/// ```
/// use strongroom_envelope::WrapAlgorithm;
/// use strongroom_keyvault::{
///     FileKeyVault, KeyOptions, KeyType, KeyVault, Permissions, Principal, RootKeySource,
///     VaultProperties,
/// };
///
/// let tmp = tempfile::tempdir()?;
/// let key_file = tmp.path().join("root.key");
/// FileKeyVault::generate_key_file(&key_file)?;
///
/// let dir = tmp.path().join("vault");
/// let vault = FileKeyVault::create(
///     &dir,
///     VaultProperties::new("kv-backup"),
///     RootKeySource::KeyFile(key_file.clone()),
/// )?;
/// let admin = Principal::new("admin");
/// vault.set_access_policy(&admin, Permissions::all())?;
/// vault.create_key(&admin, "cmk", KeyType::Aes256, KeyOptions::default())?;
/// let wrapped = vault.wrap_key(&admin, "cmk", None, WrapAlgorithm::A256Kw, &[7; 32])?;
/// drop(vault);
///
/// // Later, or in another process:
/// let vault = FileKeyVault::open(&dir, RootKeySource::KeyFile(key_file))?;
/// let dek = vault.unwrap_key(&admin, "cmk", &wrapped.version, WrapAlgorithm::A256Kw, &wrapped.wrapped)?;
/// assert_eq!(dek.as_slice(), [7; 32]);
/// vault.verify_audit_log()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # On-disk layout (format version 1)
///
/// | file | written | contents |
/// | --- | --- | --- |
/// | `vault.json` | once, at creation | `magic` (`"strongroom-keyvault file vault"`), `format` (1), `vault_id` (16 random bytes, hex), `root_key` (`{"kind":"key-file"}` or `{"kind":"passphrase","algorithm":"argon2id","version":19,"memory_kib","iterations","parallelism","salt"}`), `check` (32 bytes, hex) |
/// | `state.json` | at creation and at each compaction (the snapshot) | `commit` (16 random bytes, hex), `format` (1), `vault_id`, `generation`, `audit_len` (bytes of `audit.log` up to the committed head), `state` (its own `format`, 2; keys, versions, attributes, sealed key material, deleted and purged keys, access policies, secrets with their sealed values, deleted and purged secrets, the sealed owner key, audit head at the commit), `mac` (HMAC-SHA256 of all of it, label `strongroom-keyvault state v1`) |
/// | `ops.log` | appended by every call that changes the state; emptied at compaction | one JSON op record per line: `snapshot` (the `commit` of the `state.json` it extends), `generation` (one more than the record before, or the snapshot), `audit_len`, `audit_head`, `delta` (the new value of each key, deleted key, purged name and access policy the commit changed, `null` for removed, and the properties if they changed), `mac` (HMAC-SHA256 of all of it and of the previous record's MAC, or the snapshot's; label `strongroom-keyvault op v1`) |
/// | `audit.log` | appended by every call, until the first [rotation](FileKeyVault::rotate_audit_log) | one JSON [`AuditEntry`](crate::AuditEntry) per line: `seq`, `generation` (the state's generation once the call was done), time, principal, operation, key, version, outcome, `prev` (the previous entry's MAC), `mac` (HMAC-SHA256 of all of it under the vault's key, label `strongroom-keyvault audit entry v2`) |
/// | `audit.<n>.log` (`n`: 20 digits) | the live audit log segment after a rotation: appended by every call until the next | as `audit.log`; its first entry has sequence number `n` and follows the last of the segment before. Which segment is live follows from the state (`audit_start`: the head the live segment starts after, in `state.json`'s `state` once the log was rotated, and in the `delta` of the rotation's op record) |
/// | `lock` | created at creation | empty; locked exclusively (`File::lock`: `flock` on Unix) for each transaction |
/// | `*.tmp` | during a change | the next `vault.json` / `state.json` before its rename; a leftover is ignored and overwritten |
///
/// Files are created with mode 0600. Nothing in the directory is a secret
/// in the clear: the private and secret key material in `state.json` and
/// `ops.log` is sealed under the root key (its AAD binds the version's
/// material id and key type), and the rest is authenticated by the MACs.
///
/// **Keys.** The root secret (the 32 bytes of a key file, or Argon2id of
/// the passphrase with the salt and parameters of `vault.json`) is derived
/// once per [`open`](FileKeyVault::open). HKDF-SHA256, salted with the vault
/// id, splits it into the sealing key, the MAC key (of `state.json`,
/// `ops.log`, `audit.log` and the witness, each message with its own
/// label), and the check value kept in `vault.json`: a wrong key file or
/// passphrase gives [`VaultError::WrongRootKey`] before anything else is
/// read.
///
/// **Transactions.** Each call takes the directory's lock and checks
/// whether another process committed since this one last looked: the first
/// 64 bytes of `state.json` (its commit id) and the length of `ops.log`,
/// whatever the vault's size; new op records are replayed, a new snapshot
/// read whole. The call runs on the state in place (an undo journal puts
/// back what it touched if it fails), then (1) appends its audit entries to
/// `audit.log` and fsyncs it, and, if it changed the state, (2) appends one
/// op record of what changed to `ops.log` and fsyncs it: the commit point
/// (a torn record is never acknowledged, and cut off by the next append).
/// A call that changes nothing (get, list, wrap, unwrap, a refused call)
/// stops after (1): its audit entry is all it writes. So a call's cost
/// follows what it touches, not the number of keys, versions or policies.
///
/// **Compaction.** Once `ops.log` is larger than `state.json` (and than
/// 16 KiB), the commit goes on: (3) `state.json.tmp` with the whole state,
/// fsync, rename over `state.json`, fsync the directory, then (4) `ops.log`
/// emptied and fsynced. Each snapshot is written after as many bytes of op
/// records as it holds, so compaction costs O(1) per commit, amortized. A
/// crash between (3) and (4) leaves records of the old snapshot: their
/// `snapshot` field names the old commit id, so they are ignored, and
/// emptied before the next append. [`FileKeyVault::compact`] does it on
/// demand.
///
/// **Witness.** With [`FileVaultOptions::witness`], a file outside the
/// directory holds `{format, vault_id, generation, audit_head, mac}`,
/// replaced (temporary file, fsync, rename) after every call that wrote,
/// and checked at open and by every call: an older state or shorter log is
/// [`VaultError::RolledBack`] / [`VaultError::AuditRolledBack`].
///
/// **Recovery.** A crash between (1) and (2) leaves audit entries past
/// the committed head. The next transaction cuts off a torn last line (it
/// was never acknowledged), and takes over complete entries that continue
/// the chain *and whose MAC verifies* (a line someone else wrote is
/// skipped, and verification reports it); the log stays verifiable at
/// every step, since a log ahead of the recorded head still verifies. An
/// entry one generation ahead of the state is a crashed commit: the next
/// transaction commits the state as it is (an empty op record), so the
/// state's generation reaches it again. Entries more than one generation
/// ahead mean older state files were put back: [`VaultError::RolledBack`].
/// Such an entry records a call whose caller never saw it return, and
/// whose change never landed: the log errs on the side of recording an
/// attempt. Reads commit nothing, so a process's first call reads the
/// audit entries written since the last commit once; later calls read only
/// what other processes appended.
///
/// **Limits.** `vault.json` is read up to 64 KiB, `state.json` and each
/// op record up to 64 MiB, audit lines up to 1 MiB each; Argon2id parameters in `vault.json`
/// are bounded by [`KdfParams::new`]'s limits before any memory is taken.
/// Someone who can write the directory cannot read keys, forge a state or
/// add to the audit log, but can delete files or put back older, genuine
/// ones (rollback): `SECURITY.md` lists which rollbacks are detected with
/// and without a witness. Keep the directory writable only by the vault's
/// user.
pub struct FileKeyVault {
    inner: Vault,
    dir: PathBuf,
    vault_id: String,
}

impl FileKeyVault {
    /// Makes a key file: 32 random bytes, mode 0600 on Unix. Refuses to
    /// overwrite an existing file.
    ///
    /// # Errors
    /// [`VaultError::Io`] (e.g. the file exists),
    /// [`VaultError::RandomnessUnavailable`].
    pub fn generate_key_file(path: impl AsRef<Path>) -> Result<(), VaultError> {
        let path = path.as_ref();
        let mut key = Zeroizing::new([0u8; KEY_FILE_LEN as usize]);
        getrandom::fill(key.as_mut_slice()).map_err(|_| VaultError::RandomnessUnavailable)?;
        let mut options = OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options.open(path).map_err(io_err(path))?;
        file.write_all(key.as_slice()).map_err(io_err(path))?;
        file.sync_all().map_err(io_err(path))?;
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            fsio::sync_dir(parent)?;
        }
        Ok(())
    }

    /// Creates a vault in `dir` (made if missing) on the system clock.
    ///
    /// # Errors
    /// As [`create_with_clock`](Self::create_with_clock).
    pub fn create(
        dir: impl AsRef<Path>,
        properties: VaultProperties,
        root: RootKeySource,
    ) -> Result<Self, VaultError> {
        Self::create_with_clock(dir, properties, root, Arc::new(SystemClock))
    }

    /// Creates a vault in `dir`, reading time from `clock`. The directory
    /// must be empty, or hold only what an unfinished creation left.
    ///
    /// # Errors
    /// [`VaultError::InvalidArgument`] for a directory that holds a vault
    /// or anything else, invalid properties, an empty passphrase or a key
    /// file that is not 32 bytes; [`VaultError::Io`];
    /// [`VaultError::RandomnessUnavailable`].
    pub fn create_with_clock(
        dir: impl AsRef<Path>,
        properties: VaultProperties,
        root: RootKeySource,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, VaultError> {
        Self::create_with_options(dir, properties, root, FileVaultOptions::new().clock(clock))
    }

    /// Creates a vault in `dir` with `options` (clock, witness). The
    /// directory must be empty, or hold only what an unfinished creation
    /// left.
    ///
    /// # Errors
    /// As [`create_with_clock`](Self::create_with_clock).
    pub fn create_with_options(
        dir: impl AsRef<Path>,
        properties: VaultProperties,
        root: RootKeySource,
        options: FileVaultOptions,
    ) -> Result<Self, VaultError> {
        let dir = dir.as_ref();
        validate_properties(&properties)?;
        let mut vault_id = vec![0u8; header::VAULT_ID_LEN];
        getrandom::fill(&mut vault_id).map_err(|_| VaultError::RandomnessUnavailable)?;
        // The slow part (Argon2id) before touching the directory.
        let (kind, secret) = match &root {
            RootKeySource::KeyFile(path) => (RootKeyKind::KeyFile, read_key_file(path)?),
            RootKeySource::Passphrase(p) => {
                if p.secret.is_empty() {
                    return Err(VaultError::InvalidArgument {
                        reason: "the vault passphrase is empty".into(),
                    });
                }
                let kind = RootKeyKind::new_passphrase(p.kdf)?;
                let secret = header::passphrase_secret(&p.secret, &kind, &dir.join(VAULT_FILE))?;
                (kind, secret)
            }
        };
        let keys = header::derive_keys(&secret, &vault_id);
        drop(secret);
        let vault_file = VaultFile {
            magic: header::MAGIC.into(),
            format: header::FORMAT,
            vault_id: vault_id.clone(),
            root_key: kind,
            check: keys.check.to_vec(),
        };
        let paths = Paths::new(dir);
        make_dir(dir)?;
        {
            let lock_file =
                fsio::create_private(&paths.lock, false).map_err(io_err(&paths.lock))?;
            lock_file.lock().map_err(io_err(&paths.lock))?;
            fsio::crash_point("create:locked");
            // Under the lock, so that of two processes creating a vault
            // here at once one succeeds and the other is told it exists.
            check_dir_is_free(dir)?;
            let log = fsio::create_private(&paths.audit, true).map_err(io_err(&paths.audit))?;
            log.sync_all().map_err(io_err(&paths.audit))?;
            drop(log);
            fsio::sync_dir(dir)?;
            fsio::crash_point("create:audit-log-created");
            let bytes = serde_json::to_vec_pretty(&vault_file).map_err(|e| {
                VaultError::InvalidArgument {
                    reason: format!("vault.json cannot be serialized: {e}"),
                }
            })?;
            fsio::replace_durable(dir, VAULT_FILE, &bytes)?;
            // state.json last: its rename is the point at which the vault
            // exists.
            DirStore::write_initial(
                &paths,
                &vault_id,
                &LocalMacKey(keys.mac.clone()),
                &State::new(properties),
            )?;
            // Dropping the file releases the lock.
        }
        Self::assemble(paths, vault_id, keys, options)
    }

    /// Opens the vault in `dir` on the system clock.
    ///
    /// # Errors
    /// As [`open_with_clock`](Self::open_with_clock).
    pub fn open(dir: impl AsRef<Path>, root: RootKeySource) -> Result<Self, VaultError> {
        Self::open_with_clock(dir, root, Arc::new(SystemClock))
    }

    /// Opens the vault in `dir`, reading time from `clock`. Derives the
    /// root key once (Argon2id for a passphrase).
    ///
    /// # Errors
    /// [`VaultError::WrongRootKey`] for another key file or passphrase (or
    /// a key file for a passphrase vault, and the reverse);
    /// [`VaultError::Corrupt`] for a damaged, foreign or unfinished vault
    /// file; [`VaultError::Io`] (e.g. no vault in `dir`).
    pub fn open_with_clock(
        dir: impl AsRef<Path>,
        root: RootKeySource,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, VaultError> {
        Self::open_with_options(dir, root, FileVaultOptions::new().clock(clock))
    }

    /// Opens the vault in `dir` with `options` (clock, witness).
    ///
    /// # Errors
    /// As [`open_with_clock`](Self::open_with_clock);
    /// [`VaultError::RolledBack`] / [`VaultError::AuditRolledBack`] when the
    /// state or audit log is older than the witness (or than the audit
    /// log) records; [`VaultError::Corrupt`] for a witness that is not this
    /// vault's.
    pub fn open_with_options(
        dir: impl AsRef<Path>,
        root: RootKeySource,
        options: FileVaultOptions,
    ) -> Result<Self, VaultError> {
        let paths = Paths::new(dir.as_ref());
        let bytes = fsio::read_bounded(&paths.vault, header::MAX_VAULT_FILE)?.ok_or_else(|| {
            VaultError::Io {
                path: paths.vault.clone(),
                source: std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "no vault in this directory (vault.json is missing)",
                ),
            }
        })?;
        let vault_file = VaultFile::parse(&bytes, &paths.vault)?;
        let secret = match (&root, &vault_file.root_key) {
            (RootKeySource::KeyFile(path), RootKeyKind::KeyFile) => read_key_file(path)?,
            (RootKeySource::Passphrase(p), kind @ RootKeyKind::Passphrase { .. }) => {
                header::passphrase_secret(&p.secret, kind, &paths.vault)?
            }
            _ => return Err(VaultError::WrongRootKey),
        };
        let keys = header::derive_keys(&secret, &vault_file.vault_id);
        drop(secret);
        if !vault_file.check_matches(&keys) {
            return Err(VaultError::WrongRootKey);
        }
        Self::assemble(paths, vault_file.vault_id, keys, options)
    }

    fn assemble(
        paths: Paths,
        vault_id: Vec<u8>,
        keys: header::RootKeys,
        options: FileVaultOptions,
    ) -> Result<Self, VaultError> {
        let dir = paths.dir.clone();
        let id = hex(&vault_id);
        let header::RootKeys { seal, mac, .. } = keys;
        let store = DirStore::open_with_witness(
            paths,
            vault_id,
            Box::new(LocalMacKey(mac)),
            options
                .witness
                .map(|path| Box::new(FileWitness(path)) as Box<dyn Witness>),
        )?;
        let inner = Vault::new(
            Box::new(store),
            Box::new(SoftwareCrypto::new(seal)),
            options.clock,
        )?;
        Ok(Self {
            inner,
            dir,
            vault_id: id,
        })
    }

    /// The vault's directory.
    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The vault's id (32 hex digits), random at creation.
    #[must_use]
    pub fn vault_id(&self) -> &str {
        &self.vault_id
    }

    /// Writes the state as a new snapshot (`state.json`) and empties the op
    /// log. Calls do this by themselves once the op log outgrows the
    /// snapshot; this is for a moment of your choosing (before a backup of
    /// the directory, say).
    ///
    /// # Errors
    /// [`VaultError::Io`], [`VaultError::Corrupt`], rollback errors as any
    /// call.
    pub fn compact(&self) -> Result<(), VaultError> {
        self.inner.store.compact()
    }

    /// Rotates the audit log: closes the live segment, which stays in the
    /// directory under its name (`audit.log` for the first, then
    /// `audit.<first sequence number>.log`) and is never written again, and
    /// begins a new one whose first entry records the rotation. From then on
    /// [`audit_log`](crate::KeyVault::audit_log),
    /// [`verify_audit_log`](crate::KeyVault::verify_audit_log) and
    /// [`export_audit_log`](crate::KeyVault::export_audit_log) cover the new
    /// segment; archived ones are checked with
    /// [`verify_archived_audit_log`](Self::verify_archived_audit_log), here or
    /// after they were moved elsewhere. Returns the closed segment, or
    /// `None` when the live one held no entry (nothing is done).
    ///
    /// The live segment is verified first: a tampered log is refused, never
    /// archived. The rotation is one commit: a crash leaves the old segment
    /// live or the new one, and the chain of entries runs on unbroken
    /// across segments (each entry still carries the MAC of the one before).
    ///
    /// # Errors
    /// [`VaultError::AuditTampered`] when the live segment does not verify;
    /// [`VaultError::Io`], [`VaultError::Corrupt`], rollback errors as any
    /// call.
    ///
    /// ```
    /// # use strongroom_keyvault::*;
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let tmp = tempfile::tempdir()?;
    /// # let key_file = tmp.path().join("root.key");
    /// # FileKeyVault::generate_key_file(&key_file)?;
    /// let vault = FileKeyVault::create(
    ///     tmp.path().join("vault"),
    ///     VaultProperties::new("backups"),
    ///     RootKeySource::KeyFile(key_file),
    /// )?;
    /// let admin = Principal::new("admin");
    /// vault.set_access_policy(&admin, Permissions::all())?;
    /// vault.create_key(&admin, "k", KeyType::Aes256, KeyOptions::default())?;
    ///
    /// let archived = vault.rotate_audit_log()?.expect("entries to archive");
    /// assert_eq!((archived.first_seq, archived.last_seq), (1, 2));
    /// // The live log starts afresh with the rotation's own entry...
    /// assert_eq!(vault.audit_log()?[0].seq, 3);
    /// vault.verify_audit_log()?;
    /// // ...and the archive still verifies, against it.
    /// assert_eq!(vault.verify_archived_audit_log(&[&archived.path])?, 1..=2);
    /// # Ok(())
    /// # }
    /// ```
    pub fn rotate_audit_log(&self) -> Result<Option<crate::AuditSegment>, VaultError> {
        self.inner.rotate_audit_log()
    }

    /// Verifies archived audit log segments (the files
    /// [`rotate_audit_log`](Self::rotate_audit_log) closed, wherever they are
    /// now), given oldest first: every entry's MAC under the vault's key,
    /// the links between entries and between files, and that the last one
    /// ends exactly where the live log begins. The oldest segments may be
    /// left out (the check then starts at the first entry given); a missing,
    /// edited, forged or reordered one in between is found. Returns the
    /// sequence numbers the segments cover.
    ///
    /// # Errors
    /// [`VaultError::AuditTampered`] naming the first bad entry (its
    /// position counts across the files, in the order given);
    /// [`VaultError::Corrupt`] for a line that is not an audit entry;
    /// [`VaultError::Io`]; [`VaultError::InvalidArgument`] when no segment
    /// is given or the log was never rotated.
    pub fn verify_archived_audit_log(
        &self,
        segments: &[impl AsRef<Path>],
    ) -> Result<core::ops::RangeInclusive<u64>, VaultError> {
        let entries = read_audit_segments(segments)?;
        self.inner.verify_archived_entries(&entries)
    }

    /// Test hook (feature `testing`): every crash point of the
    /// crash-safety tests, in the order a transaction meets them.
    #[cfg(feature = "testing")]
    #[must_use]
    pub fn crash_points_for_tests() -> &'static [&'static str] {
        fsio::CRASH_POINTS
    }

    /// Test hook (feature `testing`): makes this process abort when it
    /// reaches `point` (`None` disarms); for the crash-safety tests, which
    /// run it in a child process.
    ///
    /// # Errors
    /// [`VaultError::InvalidArgument`] for an unknown point.
    #[cfg(feature = "testing")]
    pub fn set_crash_point_for_tests(point: Option<&str>) -> Result<(), VaultError> {
        fsio::set_crash_point(point)
    }
}

impl AsVault for FileKeyVault {
    fn vault(&self) -> &Vault {
        &self.inner
    }
}

impl core::fmt::Debug for FileKeyVault {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("FileKeyVault")
            .field("dir", &self.dir)
            .field("vault_id", &self.vault_id)
            .finish_non_exhaustive()
    }
}

/// A new vault directory whose `vault.json` and state MAC key come from
/// another backend (the PKCS#11 vault): see [`create_dir_vault`].
#[cfg_attr(not(feature = "pkcs11"), allow(dead_code))]
pub(crate) struct NewDirVault {
    /// The bytes of `vault.json`.
    pub(crate) header: Vec<u8>,
    /// The vault id `state.json` is bound to.
    pub(crate) vault_id: Vec<u8>,
    /// The key that authenticates `state.json`.
    pub(crate) mac_key: Box<dyn StateMacKey>,
    /// Where the newest generation seen is kept, if anywhere.
    pub(crate) witness: Option<Box<dyn Witness>>,
    /// The first state.
    pub(crate) state: State,
}

/// The magic of a [`FileKeyVault`]'s `vault.json`, for other backends to
/// recognize (and refuse) a file vault's directory.
#[cfg_attr(not(feature = "pkcs11"), allow(dead_code))]
pub(crate) const FILE_VAULT_MAGIC: &str = header::MAGIC;

/// Creates a vault in `dir` (made if missing) with the same layout and
/// crash safety as [`FileKeyVault::create`], unless `dir` holds a vault
/// already: then returns `None` and changes nothing. Under the directory's
/// lock, `make` is given the `vault.json` an unfinished creation left (if
/// any) and supplies the new vault's header, id, MAC key and state.
#[cfg_attr(not(feature = "pkcs11"), allow(dead_code))]
pub(crate) fn create_dir_vault(
    dir: &Path,
    make: impl FnOnce(Option<Vec<u8>>) -> Result<NewDirVault, VaultError>,
) -> Result<Option<DirStore>, VaultError> {
    let paths = Paths::new(dir);
    make_dir(dir)?;
    let (vault_id, mac_key, witness) = {
        let lock_file = fsio::create_private(&paths.lock, false).map_err(io_err(&paths.lock))?;
        lock_file.lock().map_err(io_err(&paths.lock))?;
        if paths.state.exists() {
            return Ok(None);
        }
        check_dir_is_free(dir)?;
        let leftover = fsio::read_bounded(&paths.vault, header::MAX_VAULT_FILE)?;
        let new = make(leftover)?;
        let log = fsio::create_private(&paths.audit, true).map_err(io_err(&paths.audit))?;
        log.sync_all().map_err(io_err(&paths.audit))?;
        drop(log);
        fsio::sync_dir(dir)?;
        fsio::replace_durable(dir, VAULT_FILE, &new.header)?;
        // state.json last: its rename is the point at which the vault
        // exists.
        DirStore::write_initial(&paths, &new.vault_id, new.mac_key.as_ref(), &new.state)?;
        (new.vault_id, new.mac_key, new.witness)
    };
    DirStore::open_with_witness(paths, vault_id, mac_key, witness).map(Some)
}

/// The path of `dir`'s `vault.json`, and its bytes (`None` when missing).
#[cfg_attr(not(feature = "pkcs11"), allow(dead_code))]
pub(crate) fn read_dir_vault_header(dir: &Path) -> Result<(PathBuf, Option<Vec<u8>>), VaultError> {
    let paths = Paths::new(dir);
    let bytes = fsio::read_bounded(&paths.vault, header::MAX_VAULT_FILE)?;
    Ok((paths.vault, bytes))
}

/// Opens the state of the existing vault in `dir`, authenticated by
/// `mac_key`, with the newest generation seen kept in `witness` if given.
#[cfg_attr(not(feature = "pkcs11"), allow(dead_code))]
pub(crate) fn open_dir_store(
    dir: &Path,
    vault_id: Vec<u8>,
    mac_key: Box<dyn StateMacKey>,
    witness: Option<Box<dyn Witness>>,
) -> Result<DirStore, VaultError> {
    DirStore::open_with_witness(Paths::new(dir), vault_id, mac_key, witness)
}

/// Reads a key file: exactly 32 bytes.
fn read_key_file(path: &Path) -> Result<Zeroizing<[u8; 32]>, VaultError> {
    use std::io::Read;
    let file = File::open(path).map_err(io_err(path))?;
    let len = file.metadata().map_err(io_err(path))?.len();
    if len != KEY_FILE_LEN {
        return Err(VaultError::InvalidKeyMaterial {
            reason: format!(
                "a vault key file holds exactly {KEY_FILE_LEN} bytes; {} holds {len}",
                path.display()
            ),
        });
    }
    let mut key = Zeroizing::new([0u8; 32]);
    file.take(KEY_FILE_LEN)
        .read_exact(key.as_mut_slice())
        .map_err(io_err(path))?;
    Ok(key)
}

/// Makes the vault directory (mode 0700 on Unix) if it is missing.
fn make_dir(dir: &Path) -> Result<(), VaultError> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir).map_err(io_err(dir))?;
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        fsio::sync_dir(parent)?;
    }
    Ok(())
}

/// Refuses a directory that holds a vault, or anything but the files of an
/// unfinished creation.
fn check_dir_is_free(dir: &Path) -> Result<(), VaultError> {
    if dir.join(STATE_FILE).exists() {
        return Err(VaultError::InvalidArgument {
            reason: format!("{} already holds a vault", dir.display()),
        });
    }
    let ours = [
        VAULT_FILE,
        AUDIT_FILE,
        OPS_FILE,
        LOCK_FILE,
        "vault.json.tmp",
        "state.json.tmp",
    ];
    for entry in std::fs::read_dir(dir).map_err(io_err(dir))? {
        let entry = entry.map_err(io_err(dir))?;
        let name = entry.file_name();
        if !ours.iter().any(|o| name == *o) {
            return Err(VaultError::InvalidArgument {
                reason: format!(
                    "{} is not empty ({} is there); a vault needs a directory of its own",
                    dir.display(),
                    name.to_string_lossy()
                ),
            });
        }
    }
    // A vault.json left by an unfinished creation may carry another root
    // key; the caller replaces it.
    Ok(())
}
