//! `RecoveryVault`: create or open a vault, protect items, back up, list,
//! restore, verify and delete recovery points.

use std::collections::BTreeMap;
use std::path::{Path as FsPath, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use object_store::ObjectStore;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use strongroom_envelope::WrapAlgorithm;
use strongroom_keyvault::{
    FileKeyVault, KeyOptions, KeyType, KeyVault, Permissions, Principal, RootKeySource, VaultError,
    VaultProperties,
};
use strongroom_policy::VaultIdentities;
use zeroize::Zeroizing;

use crate::error::key_error;
use crate::layout::{self, ItemRecord, Layout, Manifest, VaultRecord};
use crate::settings::{SettingsKey, system_principal};
use crate::{Error, store};

/// The principal the vault uses its platform key as.
const PLATFORM_PRINCIPAL: &str = "strongroom/platform";

/// How to reach a vault: its store, where in it, and its platform key
/// vault.
///
/// [`RecoveryVault::create_local`] / [`open_local`](RecoveryVault::open_local)
/// make one for a directory; build one to keep points in another
/// `object_store` (Azure, S3) or the platform key in another key vault.
pub struct VaultConfig {
    store: Arc<dyn ObjectStore>,
    prefix: Path,
    platform: Arc<dyn KeyVault>,
    threads: usize,
}

impl VaultConfig {
    /// A vault in `store` under `prefix`, its platform key in `platform`
    /// (the vault uses it as principal `strongroom/platform`, and gives
    /// itself the permissions it needs there when it creates its key).
    #[must_use]
    pub fn new(store: Arc<dyn ObjectStore>, prefix: Path, platform: Arc<dyn KeyVault>) -> Self {
        Self {
            store,
            prefix,
            platform,
            threads: default_threads(),
        }
    }

    /// A vault in `store` (opened from a URL with
    /// [`StoreOptions::open`](crate::StoreOptions::open)) under its
    /// prefix, its platform key in `platform`.
    #[must_use]
    pub fn at(store: crate::Store, platform: Arc<dyn KeyVault>) -> Self {
        let (store, prefix) = store.into_parts();
        Self::new(store, prefix, platform)
    }

    /// Threads sealing and opening chunks (default: the CPUs available).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] outside 1 to 256.
    pub fn threads(mut self, threads: usize) -> Result<Self, Error> {
        if !(1..=256).contains(&threads) {
            return Err(Error::InvalidArgument {
                reason: format!("threads must be 1 to 256, not {threads}"),
            });
        }
        self.threads = threads;
        Ok(self)
    }
}

impl core::fmt::Debug for VaultConfig {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("VaultConfig")
            .field("store", &self.store.to_string())
            .field("prefix", &self.prefix)
            .field("threads", &self.threads)
            .finish_non_exhaustive()
    }
}

fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

/// A protected item: what recovery points are taken of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    pub(crate) name: String,
    pub(crate) created: u64,
    pub(crate) source_encryption: crate::SourceEncryption,
}

impl Item {
    /// The item's name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// When it was protected (Unix seconds).
    #[must_use]
    pub fn created(&self) -> u64 {
        self.created
    }

    /// How its disks are encrypted at the source (R17): what its backups
    /// do and record unless a backup is told otherwise
    /// ([`BackupOptions::source_encryption`](crate::BackupOptions::source_encryption)).
    #[must_use]
    pub fn source_encryption(&self) -> &crate::SourceEncryption {
        &self.source_encryption
    }
}

/// A recovery point as the vault lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecoveryPoint {
    pub(crate) item: String,
    pub(crate) id: String,
    pub(crate) created: u64,
    pub(crate) size: u64,
    pub(crate) body_size: u64,
    pub(crate) chunk_size: u64,
    pub(crate) keys: Vec<strongroom_envelope::KeyRef>,
    /// The outer layer's key references: empty without infrastructure
    /// encryption.
    pub(crate) infrastructure_keys: Vec<strongroom_envelope::KeyRef>,
    /// The source encryption the point was taken with (R17).
    pub(crate) source_encryption: crate::SourceEncryption,
}

impl RecoveryPoint {
    /// The item it is a point of.
    #[must_use]
    pub fn item(&self) -> &str {
        &self.item
    }

    /// Its id: the time it was taken in milliseconds, and 16 random hex
    /// digits; ids sort by time.
    #[must_use]
    pub fn id(&self) -> &str {
        &self.id
    }

    /// When it was taken (Unix seconds).
    #[must_use]
    pub fn created(&self) -> u64 {
        self.created
    }

    /// Bytes of data it holds.
    #[must_use]
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The keys its data-encryption key is wrapped under (any one opens
    /// it): vault, key name, version and algorithm.
    #[must_use]
    pub fn keys(&self) -> &[strongroom_envelope::KeyRef] {
        &self.keys
    }

    /// Whether the point has two layers of encryption (infrastructure
    /// encryption, R16): the data under a DEK wrapped by the customer key
    /// ([`keys`](Self::keys)), and that ciphertext again under a second
    /// DEK wrapped by the platform key
    /// ([`infrastructure_keys`](Self::infrastructure_keys)).
    #[must_use]
    pub fn infrastructure_encrypted(&self) -> bool {
        !self.infrastructure_keys.is_empty()
    }

    /// The keys the outer layer's data-encryption key is wrapped under
    /// (platform key versions); empty for a point of one layer. Restoring
    /// needs one of these and one of [`keys`](Self::keys).
    #[must_use]
    pub fn infrastructure_keys(&self) -> &[strongroom_envelope::KeyRef] {
        &self.infrastructure_keys
    }

    /// How the item's disks were encrypted at the source when the point
    /// was taken (R17): the disk-encryption set and key of server-side
    /// encryption, or the exact BEK (and KEK) versions of in-guest
    /// encryption, whose backups the point carries
    /// ([`RecoveryVault::restore_disk_keys`]). Read from the point's
    /// header; authenticated when the header is opened (a restore of the
    /// disk keys checks it again).
    #[must_use]
    pub fn source_encryption(&self) -> &crate::SourceEncryption {
        &self.source_encryption
    }
}

/// A recovery vault: protected items and their recovery points, each
/// point under its own data-encryption key, wrapped by the vault's key.
///
/// Cheap to clone (one shared vault). Every method is async (the store is
/// async); the encryption runs on the envelope's threads, never on the
/// executor's. Synchronous programs use [`crate::blocking::RecoveryVault`].
#[derive(Clone)]
pub struct RecoveryVault {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) store: Arc<dyn ObjectStore>,
    pub(crate) layout: Layout,
    pub(crate) record: VaultRecord,
    pub(crate) platform: Arc<dyn KeyVault>,
    pub(crate) platform_principal: Principal,
    /// Customer key vaults attached to this handle, by name.
    pub(crate) key_vaults: RwLock<BTreeMap<String, Arc<dyn KeyVault>>>,
    /// The identities the vault acts as in customer key vaults.
    pub(crate) identities: RwLock<VaultIdentities>,
    /// Authenticates the settings records.
    pub(crate) settings_key: SettingsKey,
    pub(crate) threads: usize,
}

impl core::fmt::Debug for RecoveryVault {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("RecoveryVault")
            .field("id", &self.inner.record.id)
            .field("name", &self.inner.record.name)
            .field("store", &self.inner.store.to_string())
            .finish_non_exhaustive()
    }
}

pub(crate) fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

pub(crate) fn now_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Runs blocking work (key vault calls, which may fsync or reach an HSM;
/// sealing and opening) off the executor.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, Error> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::Io(std::io::Error::other(format!("a worker task failed: {e}"))))
}

/// The directory layout of a local vault.
struct LocalPaths {
    store: PathBuf,
    keyvault: PathBuf,
    key_file: PathBuf,
}

impl LocalPaths {
    fn new(dir: &FsPath) -> Self {
        Self {
            store: dir.join("store"),
            keyvault: dir.join("platform-keyvault"),
            key_file: dir.join("platform-keyvault.key"),
        }
    }
}

pub(crate) fn local_store(dir: &FsPath) -> Result<Arc<dyn ObjectStore>, Error> {
    std::fs::create_dir_all(dir)?;
    let store = LocalFileSystem::new_with_prefix(dir)
        .map_err(|source| Error::Store {
            operation: "open",
            path: dir.display().to_string(),
            source,
        })?
        .with_fsync(true)
        .with_automatic_cleanup(true);
    Ok(Arc::new(store))
}

/// `store`, or the local vault's own `dir/store` when none is given.
fn store_or_local(store: Option<crate::Store>, dir: &FsPath) -> Result<crate::Store, Error> {
    match store {
        Some(store) => Ok(store),
        None => Ok(crate::Store::from_object_store(
            local_store(&LocalPaths::new(dir).store)?,
            Path::default(),
            "local",
        )),
    }
}

fn vault_error(what: &str) -> impl FnOnce(VaultError) -> Error + '_ {
    move |source| key_error(what.to_owned(), source)
}

impl RecoveryVault {
    /// Creates a vault named `name` in directory `dir`: recovery points in
    /// `dir/store` (the local filesystem, fsynced), the platform key in a
    /// [`FileKeyVault`] in `dir/platform-keyvault` whose root key is the
    /// key file `dir/platform-keyvault.key` (mode 0600: whoever reads it
    /// and the store reads the backups; keep `dir` private, or pass
    /// another platform key vault with [`create`](Self::create)).
    ///
    /// # Errors
    /// [`Error::AlreadyExists`] when `dir` holds a vault; [`Error::Io`],
    /// [`Error::Store`], [`Error::Key`] on failure.
    pub async fn create_local(dir: impl AsRef<FsPath>, name: &str) -> Result<Self, Error> {
        Self::create_local_in(dir.as_ref(), name, None).await
    }

    /// Creates a vault named `name` whose recovery points are kept in
    /// `store` (Azure, S3, or another directory: see [`crate::remote`]),
    /// its platform key in a [`FileKeyVault`] in `dir` as
    /// [`create_local`](Self::create_local) makes it. Open it again with
    /// [`open_local_with_store`](Self::open_local_with_store) and the same
    /// store.
    ///
    /// # Errors
    /// As [`create_local`](Self::create_local); [`Error::AlreadyExists`]
    /// also when the store holds a vault at its prefix.
    pub async fn create_local_with_store(
        dir: impl AsRef<FsPath>,
        name: &str,
        store: crate::Store,
    ) -> Result<Self, Error> {
        Self::create_local_in(dir.as_ref(), name, Some(store)).await
    }

    async fn create_local_in(
        dir: &FsPath,
        name: &str,
        store: Option<crate::Store>,
    ) -> Result<Self, Error> {
        let dir = dir.to_path_buf();
        let paths = LocalPaths::new(&dir);
        if paths.keyvault.exists() || paths.store.join("vault.json").exists() {
            return Err(Error::AlreadyExists {
                what: format!("a vault in {}", dir.display()),
            });
        }
        // A store that holds a vault already is refused before the platform
        // key vault is made (none is left behind in `dir`).
        if let Some(store) = &store {
            let record = Layout::new(store.prefix().clone()).vault();
            if store::head(store.object_store().as_ref(), &record)
                .await?
                .is_some()
            {
                return Err(Error::AlreadyExists {
                    what: format!("a vault in {}", store.url()),
                });
            }
        }
        std::fs::create_dir_all(&dir)?;
        let name_owned = name.to_owned();
        let platform = blocking(move || -> Result<Arc<dyn KeyVault>, Error> {
            FileKeyVault::generate_key_file(&paths.key_file).map_err(vault_error("platform"))?;
            let vault = FileKeyVault::create(
                &paths.keyvault,
                VaultProperties::new(format!("{name_owned}-platform")),
                RootKeySource::KeyFile(paths.key_file.clone()),
            )
            .map_err(vault_error("platform"))?;
            Ok(Arc::new(vault))
        })
        .await??;
        let store = store_or_local(store, &dir)?;
        Self::create(VaultConfig::at(store, platform), name).await
    }

    /// Opens the vault in directory `dir` made by
    /// [`create_local`](Self::create_local).
    ///
    /// # Errors
    /// [`Error::NotFound`] when `dir` holds no vault; [`Error::Corrupt`],
    /// [`Error::Store`], [`Error::Key`] on failure.
    pub async fn open_local(dir: impl AsRef<FsPath>) -> Result<Self, Error> {
        Self::open_local_in(dir.as_ref(), None).await
    }

    /// Opens the vault made by
    /// [`create_local_with_store`](Self::create_local_with_store): its
    /// platform key in `dir`, its recovery points in `store`.
    ///
    /// # Errors
    /// As [`open_local`](Self::open_local).
    pub async fn open_local_with_store(
        dir: impl AsRef<FsPath>,
        store: crate::Store,
    ) -> Result<Self, Error> {
        Self::open_local_in(dir.as_ref(), Some(store)).await
    }

    async fn open_local_in(dir: &FsPath, store: Option<crate::Store>) -> Result<Self, Error> {
        let dir = dir.to_path_buf();
        let paths = LocalPaths::new(&dir);
        if !paths.keyvault.exists() {
            return Err(Error::NotFound {
                what: format!("a vault in {}", dir.display()),
            });
        }
        let platform = blocking(move || -> Result<Arc<dyn KeyVault>, Error> {
            let vault = FileKeyVault::open(&paths.keyvault, RootKeySource::KeyFile(paths.key_file))
                .map_err(vault_error("platform"))?;
            Ok(Arc::new(vault))
        })
        .await??;
        let store = store_or_local(store, &dir)?;
        Self::open(VaultConfig::at(store, platform)).await
    }

    /// Opens the vault in `dir`, or creates one there (named after the
    /// directory) when there is none.
    ///
    /// # Errors
    /// As [`open_local`](Self::open_local) and
    /// [`create_local`](Self::create_local).
    pub async fn open_or_create(dir: impl AsRef<FsPath>) -> Result<Self, Error> {
        let dir = dir.as_ref();
        if LocalPaths::new(dir).keyvault.exists() {
            return Self::open_local(dir).await;
        }
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().trim_start_matches('.').to_owned())
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| "strongroom".to_owned());
        match Self::create_local(dir, &name).await {
            Err(Error::AlreadyExists { .. }) => Self::open_local(dir).await,
            other => other,
        }
    }

    /// Creates a vault named `name` as `config` says: makes its platform
    /// key (AES-256, A256KW) in the platform key vault, and writes
    /// `vault.json` with a create-only put (two creators: one wins, the
    /// other gets [`Error::AlreadyExists`]).
    ///
    /// # Errors
    /// [`Error::AlreadyExists`]; [`Error::Store`]; [`Error::Key`] when the
    /// platform key vault refuses.
    pub async fn create(config: VaultConfig, name: &str) -> Result<Self, Error> {
        if name.is_empty() || name.len() > 255 || name.chars().any(char::is_control) {
            return Err(Error::InvalidArgument {
                reason: "a vault name is 1 to 255 bytes of UTF-8 without control characters".into(),
            });
        }
        let layout = Layout::new(config.prefix.clone());
        if store::head(config.store.as_ref(), &layout.vault())
            .await?
            .is_some()
        {
            return Err(Error::AlreadyExists {
                what: format!("a vault at {}", layout.vault()),
            });
        }
        let mut id = [0u8; 16];
        getrandom::fill(&mut id).map_err(|_| Error::InvalidArgument {
            reason: "the operating system's random generator failed".into(),
        })?;
        let id = layout::hex(&id);
        let key_name = format!("platform-{id}");
        let platform = Arc::clone(&config.platform);
        let principal = Principal::new(PLATFORM_PRINCIPAL);
        let settings_key = SettingsKey::generate()?;
        let (kv_name, version, wrapped_settings_key, principal) = {
            let key_name = key_name.clone();
            let raw = Zeroizing::new(*settings_key.0);
            blocking(
                move || -> Result<(String, String, Vec<u8>, Principal), Error> {
                    let kv = platform.properties().map_err(vault_error("platform"))?;
                    platform
                        .set_access_policy(&principal, Permissions::all())
                        .map_err(vault_error("platform"))?;
                    platform
                        .create_key(
                            &principal,
                            &key_name,
                            KeyType::Aes256,
                            KeyOptions::default(),
                        )
                        .map_err(vault_error(&key_name))?;
                    let wrapped = platform
                        .wrap_key(&principal, &key_name, None, WrapAlgorithm::A256Kw, &*raw)
                        .map_err(vault_error(&key_name))?;
                    Ok((kv.name, wrapped.version, wrapped.wrapped, principal))
                },
            )
            .await??
        };
        let record = VaultRecord {
            magic: layout::VAULT_MAGIC.to_owned(),
            format: layout::FORMAT,
            id,
            name: name.to_owned(),
            created: now_secs(),
            platform_key_vault: kv_name,
            platform_key: key_name,
            platform_key_version: version,
            settings_key: layout::hex(&wrapped_settings_key),
        };
        if !store::put_new_unique(
            config.store.as_ref(),
            &layout.vault(),
            layout::to_json(&record),
        )
        .await?
        {
            return Err(Error::AlreadyExists {
                what: format!("a vault at {}", layout.vault()),
            });
        }
        Ok(Self::assemble(
            config,
            layout,
            record,
            principal,
            settings_key,
        ))
    }

    /// Opens the vault `config` points at.
    ///
    /// # Errors
    /// [`Error::NotFound`]; [`Error::Corrupt`] for a `vault.json` that is
    /// not a vault's, or of another format version; [`Error::Store`].
    pub async fn open(config: VaultConfig) -> Result<Self, Error> {
        let layout = Layout::new(config.prefix.clone());
        let path = layout.vault();
        let bytes = store::get_small(config.store.as_ref(), &path, layout::MAX_RECORD)
            .await?
            .ok_or_else(|| Error::NotFound {
                what: format!("a vault at {path}"),
            })?;
        let record: VaultRecord = layout::parse(&path, &bytes)?;
        if record.magic != layout::VAULT_MAGIC {
            return Err(layout::corrupt(&path, "not a Strongroom recovery vault"));
        }
        layout::check_ours(&path, record.format, &record.id, &record.id)?;
        let principal = Principal::new(PLATFORM_PRINCIPAL);
        let wrapped = layout::unhex(&record.settings_key)
            .ok_or_else(|| layout::corrupt(&path, "its settings key is not hex"))?;
        let settings_key = {
            let platform = Arc::clone(&config.platform);
            let principal = principal.clone();
            let (name, version) = (
                record.platform_key.clone(),
                record.platform_key_version.clone(),
            );
            let label = format!("{}/{}", record.platform_key_vault, record.platform_key);
            let path = path.clone();
            blocking(move || -> Result<SettingsKey, Error> {
                let raw = platform
                    .unwrap_key(&principal, &name, &version, WrapAlgorithm::A256Kw, &wrapped)
                    .map_err(|e| key_error(label, e))?;
                SettingsKey::from_slice(&raw)
                    .ok_or_else(|| layout::corrupt(&path, "its settings key is not 32 bytes"))
            })
            .await??
        };
        Ok(Self::assemble(
            config,
            layout,
            record,
            principal,
            settings_key,
        ))
    }

    fn assemble(
        config: VaultConfig,
        layout: Layout,
        record: VaultRecord,
        platform_principal: Principal,
        settings_key: SettingsKey,
    ) -> Self {
        let system = system_principal(&record.id);
        Self {
            inner: Arc::new(Inner {
                store: config.store,
                layout,
                record,
                platform: config.platform,
                platform_principal,
                key_vaults: RwLock::new(BTreeMap::new()),
                identities: RwLock::new(VaultIdentities::new().with_system(system)),
                settings_key,
                threads: config.threads,
            }),
        }
    }

    /// The vault's id (32 hex digits).
    #[must_use]
    pub fn id(&self) -> &str {
        &self.inner.record.id
    }

    /// The vault's name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.inner.record.name
    }

    /// Protects `name`: from now on recovery points of it can be taken.
    /// The attempt is recorded first, durably: after it the vault's key
    /// can no longer be switched to a customer-managed key, even when the
    /// protection itself then fails (R12).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a name that is empty, over 255 bytes
    /// or holds control characters; [`Error::AlreadyExists`];
    /// [`Error::Store`].
    pub async fn protect(&self, name: &str) -> Result<Item, Error> {
        self.protect_with(name, crate::SourceEncryption::None).await
    }

    /// Protects item `name` whose disks are encrypted at the source as
    /// `source_encryption` says (R17): server-side with a customer key (a
    /// disk-encryption set), or in the guest with a BEK secret (and a
    /// KEK) in an attached key vault, whose backups each of its points
    /// then carries (see [`crate::source`]).
    ///
    /// # Errors
    /// As [`protect`](Self::protect); [`Error::InvalidArgument`] for a
    /// malformed reference ([`SourceEncryption::check`](crate::SourceEncryption::check)).
    pub async fn protect_with(
        &self,
        name: &str,
        source_encryption: crate::SourceEncryption,
    ) -> Result<Item, Error> {
        layout::check_item_name(name)?;
        source_encryption.check()?;
        // Before anything else: from here on the vault has had an item
        // protected, even if what follows fails (R12).
        self.record_protection_attempt().await?;
        let record = ItemRecord {
            format: layout::FORMAT,
            vault_id: self.inner.record.id.clone(),
            name: name.to_owned(),
            created: now_secs(),
            source_encryption,
        };
        let path = self.inner.layout.item(name);
        if !store::put_new(self.inner.store.as_ref(), &path, layout::to_json(&record)).await? {
            return Err(Error::AlreadyExists {
                what: format!("item {name:?}"),
            });
        }
        Ok(Item {
            name: record.name,
            created: record.created,
            source_encryption: record.source_encryption,
        })
    }

    /// The protected item `name`.
    ///
    /// # Errors
    /// [`Error::NotFound`]; [`Error::Corrupt`]; [`Error::Store`].
    pub async fn item(&self, name: &str) -> Result<Item, Error> {
        layout::check_item_name(name)?;
        let path = self.inner.layout.item(name);
        let bytes = store::get_small(self.inner.store.as_ref(), &path, layout::MAX_RECORD)
            .await?
            .ok_or_else(|| Error::NotFound {
                what: format!("item {name:?}"),
            })?;
        let record: ItemRecord = layout::parse(&path, &bytes)?;
        layout::check_ours(&path, record.format, &record.vault_id, self.id())?;
        if record.name != name {
            return Err(layout::corrupt(&path, "it names another item"));
        }
        record
            .source_encryption
            .check()
            .map_err(|e| layout::corrupt(&path, format!("its source encryption: {e}")))?;
        Ok(Item {
            name: record.name,
            created: record.created,
            source_encryption: record.source_encryption,
        })
    }

    /// Every protected item, by name.
    ///
    /// # Errors
    /// [`Error::Store`]; [`Error::Corrupt`].
    pub async fn items(&self) -> Result<Vec<Item>, Error> {
        let mut items = Vec::new();
        for meta in store::list(self.inner.store.as_ref(), &self.inner.layout.items_dir()).await? {
            if let Some(name) = self.inner.layout.item_of(&meta.location) {
                items.push(self.item(&name).await?);
            }
        }
        items.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(items)
    }

    /// Attaches a customer key vault (found by its name in key
    /// references) to this handle: customer keys are used through it.
    ///
    /// # Errors
    /// [`Error::Key`] when the key vault cannot say its name.
    pub fn attach_key_vault(&self, key_vault: Arc<dyn KeyVault>) -> Result<(), Error> {
        let name = key_vault
            .properties()
            .map_err(vault_error("the key vault"))?
            .name;
        self.inner
            .key_vaults
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(name, key_vault);
        Ok(())
    }

    /// The committed recovery points of `item`, oldest first.
    ///
    /// # Errors
    /// [`Error::NotFound`] for an item never protected; [`Error::Store`];
    /// [`Error::Corrupt`] for a damaged manifest or header.
    pub async fn points(&self, item: &Item) -> Result<Vec<RecoveryPoint>, Error> {
        let objects = store::list(
            self.inner.store.as_ref(),
            &self.inner.layout.points_of(&item.name),
        )
        .await?;
        let mut ids: Vec<String> = objects
            .iter()
            .filter_map(|meta| self.inner.layout.point_of(&meta.location))
            .filter(|(it, _, name)| *it == item.name && name == "manifest.json")
            .map(|(_, point, _)| point)
            .collect();
        ids.sort();
        let mut points = Vec::with_capacity(ids.len());
        for id in ids {
            match self.point(item, &id).await {
                Ok(point) => points.push(point),
                // A delete in progress (header gone first): not listed.
                Err(Error::NotFound { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(points)
    }

    /// The recovery point `id` of `item`.
    ///
    /// # Errors
    /// [`Error::NotFound`] when it does not exist (or was deleted);
    /// [`Error::Corrupt`]; [`Error::Store`].
    pub async fn point(&self, item: &Item, id: &str) -> Result<RecoveryPoint, Error> {
        if !layout::valid_point_id(id) {
            return Err(Error::InvalidArgument {
                reason: format!("{id:?} is not a recovery point id"),
            });
        }
        let not_found = || Error::NotFound {
            what: format!("recovery point {id} of item {:?}", item.name),
        };
        let layout = &self.inner.layout;
        let path = layout.manifest(&item.name, id);
        let bytes = store::get_small(self.inner.store.as_ref(), &path, layout::MAX_RECORD)
            .await?
            .ok_or_else(not_found)?;
        let manifest: Manifest = layout::parse(&path, &bytes)?;
        layout::check_ours(&path, manifest.format, &manifest.vault_id, self.id())?;
        if manifest.item != item.name || manifest.point != id {
            return Err(layout::corrupt(&path, "it names another recovery point"));
        }
        // A header, parsed (not opened); `None` when it is not there.
        let read_header = |path: Path| async move {
            let Some(header) =
                store::get_small(self.inner.store.as_ref(), &path, layout::MAX_HEADER).await?
            else {
                return Ok(None);
            };
            let header = strongroom_envelope::Header::from_bytes(&header)
                .map_err(|e| crate::error::envelope_error(id, e))?;
            Ok::<_, Error>(Some(header))
        };
        // No header: a delete in progress (it goes first).
        let header_path = layout.header(&item.name, id);
        let header = read_header(header_path.clone())
            .await?
            .ok_or_else(not_found)?;
        let keys = header.key_refs().cloned().collect();
        let source_encryption = match header.metadata().get(layout::METADATA_SOURCE_ENCRYPTION) {
            None => crate::SourceEncryption::None,
            Some(text) => crate::SourceEncryption::from_json(text).ok_or_else(|| {
                layout::corrupt(&header_path, "its source encryption record is malformed")
            })?,
        };
        let infrastructure_keys = if manifest.infrastructure_encryption {
            // Written before the manifest, deleted after the header: never
            // missing while both are there.
            let outer = layout.outer_header(&item.name, id);
            read_header(outer.clone())
                .await?
                .ok_or_else(|| {
                    layout::corrupt(
                        &outer,
                        "missing: the manifest says the point has an infrastructure layer",
                    )
                })?
                .key_refs()
                .cloned()
                .collect()
        } else {
            Vec::new()
        };
        Ok(RecoveryPoint {
            item: manifest.item,
            id: manifest.point,
            created: manifest.created,
            size: manifest.size,
            body_size: manifest.body_size,
            chunk_size: manifest.chunk_size,
            keys,
            infrastructure_keys,
            source_encryption,
        })
    }

    /// Deletes a recovery point as a crypto-shred: the header (every
    /// wrapped copy of its DEK) goes first, so the body is unreadable from
    /// then on, even from a copy of it; then the manifest and the body. A
    /// crash part-way leaves a point that is no longer listed, which
    /// [`gc`](Self::gc) finishes deleting.
    ///
    /// # Errors
    /// [`Error::Store`].
    pub async fn delete_point(&self, point: &RecoveryPoint) -> Result<(), Error> {
        let layout = &self.inner.layout;
        let store = self.inner.store.as_ref();
        store::delete(store, &layout.header(&point.item, &point.id)).await?;
        store::delete(store, &layout.outer_header(&point.item, &point.id)).await?;
        store::delete(store, &layout.key_backups(&point.item, &point.id)).await?;
        store::delete(store, &layout.manifest(&point.item, &point.id)).await?;
        store::delete(store, &layout.body(&point.item, &point.id)).await
    }

    /// Removes what interrupted operations left: the objects of backups
    /// that never committed (older than `grace`, so that backups running
    /// now are left alone), and of deletes that stopped part-way. Returns
    /// how many points it removed.
    ///
    /// Give `grace` more than the longest backup takes: a backup whose
    /// header a gc removed while it ran fails with [`Error::Conflict`]
    /// instead of committing a point that cannot be restored.
    ///
    /// # Errors
    /// [`Error::Store`].
    pub async fn gc(&self, grace: std::time::Duration) -> Result<usize, Error> {
        let store = self.inner.store.as_ref();
        let layout = &self.inner.layout;
        let objects = store::list(store, &layout.points_dir()).await?;
        let mut points: BTreeMap<(String, String), Vec<(String, u64)>> = BTreeMap::new();
        for meta in &objects {
            if let Some((item, point, name)) = layout.point_of(&meta.location) {
                let modified = meta.last_modified.timestamp().max(0) as u64;
                points
                    .entry((item, point))
                    .or_default()
                    .push((name, modified));
            }
        }
        let cutoff = now_secs().saturating_sub(grace.as_secs());
        let mut removed = 0;
        for ((item, point), names) in points {
            let has = |n: &str| names.iter().any(|(name, _)| name == n);
            let newest = names.iter().map(|(_, t)| *t).max().unwrap_or(0);
            let uncommitted = !has("manifest.json") && newest <= cutoff;
            let half_deleted = has("manifest.json") && !has("header");
            if uncommitted || half_deleted {
                store::delete(store, &layout.header(&item, &point)).await?;
                store::delete(store, &layout.outer_header(&item, &point)).await?;
                store::delete(store, &layout.key_backups(&item, &point)).await?;
                store::delete(store, &layout.manifest(&item, &point)).await?;
                store::delete(store, &layout.body(&item, &point)).await?;
                removed += 1;
            }
        }
        Ok(removed)
    }
}
