//! One suite, three stores (issue 15): everything the facade does, on the
//! local filesystem, on Azurite (Azure Blob Storage) and on moto (S3),
//! reached over loopback HTTP with `allow_http_loopback`, as a user points
//! it at an emulator. `scripts/test.sh` starts both emulators; without them
//! these tests fail, saying so (they never skip).
//!
//! The network faults (a connection cut mid-upload or mid-restore, once or
//! for good) go through [`FaultProxy`], a TCP proxy in front of the
//! emulator; the local store has no connection to cut (its failures are
//! tested with a failing store wrapper in tests/rewrap.rs and
//! tests/vault.rs).

use std::collections::BTreeSet;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use futures::TryStreamExt;
use futures::stream::BoxStream;
use strongroom::keyvault::{
    KeyOptions, KeyType, KeyVault, MemoryKeyVault, Permissions, Principal, VaultProperties,
};
use strongroom::object_store::path::Path;
use strongroom::object_store::{
    CopyOptions, Error as ObjectError, GetOptions, GetResult, ListResult, MultipartUpload,
    ObjectMeta, ObjectStore, ObjectStoreExt, PutMode, PutMultipartOptions, PutOptions, PutPayload,
    PutResult, RenameOptions, Result as ObjectResult,
};
use strongroom::policy::{CustomerKey, EncryptionSettings};
use strongroom::{
    BackupOptions, Error, RecoveryVault, RewrapOptions, Store, StoreOptions, VaultConfig,
};
use strongroom_test_stores::{Direction, Emulator, FaultProxy, azurite, moto, unique_prefix};

/// Where a test's vault keeps its points.
#[derive(Clone, Copy, Debug)]
enum Target {
    Local,
    Azurite,
    Moto,
}

impl Target {
    fn emulator(self) -> Option<Emulator> {
        match self {
            Target::Local => None,
            Target::Azurite => Some(azurite()),
            Target::Moto => Some(moto()),
        }
    }
}

/// A vault's places: the directory with its platform key vault, and its
/// store's URL and options.
struct Place {
    dir: tempfile::TempDir,
    url: String,
    options: StoreOptions,
}

impl Place {
    fn new(target: Target, name: &str) -> Self {
        Self::via(target, name, None)
    }

    /// As `new`, the emulator reached through `proxy`.
    fn via(target: Target, name: &str, proxy: Option<&FaultProxy>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let emulator = target.emulator();
        let (url, mut options) = match emulator {
            None => (
                format!("file://{}", dir.path().join("points").display()),
                StoreOptions::default(),
            ),
            Some(emulator) => {
                let addr = proxy.map_or(emulator.addr(), FaultProxy::addr);
                let mut options = StoreOptions::default()
                    .from_env(false)
                    .allow_http_loopback(true);
                for (key, value) in emulator.config(addr) {
                    options = options.config(key, value);
                }
                (emulator.url(&unique_prefix(name)), options)
            }
        };
        if proxy.is_some() {
            // A fault test waits for the retries to give up: a few, fast.
            options = options
                .retries(3, Duration::from_secs(10))
                .request_timeout(Duration::from_secs(20));
        }
        Self { dir, url, options }
    }

    fn store(&self) -> Store {
        self.options.open(&self.url).unwrap()
    }

    async fn create(&self) -> RecoveryVault {
        RecoveryVault::create_local_with_store(self.dir.path(), "suite", self.store())
            .await
            .unwrap()
    }

    async fn open(&self) -> RecoveryVault {
        RecoveryVault::open_local_with_store(self.dir.path(), self.store())
            .await
            .unwrap()
    }

    /// Every object under the vault's prefix, by path relative to it.
    async fn objects(&self) -> BTreeSet<String> {
        let store = self.store();
        let prefix = store.prefix().clone();
        let listed: Vec<_> = store
            .object_store()
            .list(Some(&prefix))
            .try_collect()
            .await
            .unwrap();
        listed
            .into_iter()
            .map(|meta| {
                let full = meta.location.as_ref().to_owned();
                full.strip_prefix(prefix.as_ref())
                    .unwrap_or(&full)
                    .trim_start_matches('/')
                    .to_owned()
            })
            .collect()
    }

    /// The object at `rel` under the vault's prefix.
    fn path(&self, rel: &str) -> Path {
        let store = self.store();
        let prefix = store.prefix().as_ref();
        if prefix.is_empty() {
            Path::from(rel)
        } else {
            Path::from(format!("{prefix}/{rel}"))
        }
    }
}

fn data(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed) ^ (i >> 13) as u8)
        .collect()
}

macro_rules! suite {
    ($($test:ident),* $(,)?) => {
        mod local {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $test() { super::$test(super::Target::Local).await }) *
        }
        mod azurite {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $test() { super::$test(super::Target::Azurite).await }) *
        }
        mod moto {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $test() { super::$test(super::Target::Moto).await }) *
        }
    };
}

suite!(
    backup_restore_ranges_and_listing,
    a_deleted_point_is_crypto_shredded,
    gc_clears_what_a_crash_leaves,
    rewrap_moves_points_to_a_new_key_version,
    a_second_vault_at_the_same_prefix_is_refused,
    a_retried_create_that_landed_counts_as_created,
    two_layers_under_a_customer_key,
);

/// Several parts (multipart upload of 8 MiB parts), range restore, the
/// listing, and a reopened handle seeing the same points.
async fn backup_restore_ranges_and_listing(target: Target) {
    let place = Place::new(target, "round-trip");
    let vault = place.create().await;
    let item = vault.protect("vm-42/disk-0").await.unwrap();
    let big = data(17 * 1024 * 1024 + 12_345, 1);
    let small = data(1000, 2);
    let first = vault
        .backup(&item, big.as_slice(), BackupOptions::default())
        .await
        .unwrap();
    let second = vault
        .backup(&item, small.as_slice(), BackupOptions::default())
        .await
        .unwrap();
    assert_eq!(first.size(), big.len() as u64);

    let mut restored = Vec::new();
    vault.restore(&first, &mut restored).await.unwrap();
    assert!(restored == big, "{target:?}: the restore differs");
    for range in [
        0..1,
        4095..4097,
        8 << 20..(8 << 20) + 70_000,
        17 << 20..big.len() as u64,
    ] {
        let mut part = Vec::new();
        vault
            .restore_range(&first, range.clone(), &mut part)
            .await
            .unwrap();
        assert!(
            part == big[range.start as usize..range.end as usize],
            "{target:?}: range {range:?}"
        );
    }
    assert_eq!(vault.verify(&second).await.unwrap(), small.len() as u64);

    let reopened = place.open().await;
    assert_eq!(reopened.id(), vault.id());
    let item = reopened.item("vm-42/disk-0").await.unwrap();
    assert_eq!(
        reopened.points(&item).await.unwrap(),
        vec![first.clone(), second.clone()]
    );
    let objects = place.objects().await;
    for point in [&first, &second] {
        for name in ["header", "body", "manifest.json"] {
            // (The item name is one path segment: its "/" is escaped.)
            let rel = format!("points/vm-42%2Fdisk-0/{}/{name}", point.id());
            assert!(objects.contains(&rel), "{target:?}: {rel} in {objects:?}");
        }
    }
}

/// Infrastructure encryption (R16) with a customer key: both headers go
/// to the store, both layers restore (whole and by range), and a rewrap
/// after a platform rotation moves the outer one.
async fn two_layers_under_a_customer_key(target: Target) {
    let place = Place::new(target, "two-layers");
    let vault = place.create().await;
    let kv = Arc::new(MemoryKeyVault::new(VaultProperties::new("contoso-kv")).unwrap());
    let admin = Principal::new("admin@contoso");
    kv.set_access_policy(&admin, Permissions::all()).unwrap();
    kv.create_key(&admin, "cmk", KeyType::Rsa2048, KeyOptions::default())
        .unwrap();
    kv.enable_purge_protection().unwrap();
    kv.set_access_policy(&vault.system_identity(), Permissions::key_user())
        .unwrap();
    vault.attach_key_vault(kv).unwrap();
    vault
        .set_encryption(
            EncryptionSettings::customer_managed(CustomerKey::new("contoso-kv", "cmk"))
                .with_infrastructure_encryption(),
        )
        .await
        .unwrap();
    let item = vault.protect("db").await.unwrap();
    let source = data(9 * 1024 * 1024 + 3, 11);
    let point = vault
        .backup(&item, source.as_slice(), BackupOptions::default())
        .await
        .unwrap();
    assert!(point.infrastructure_encrypted());
    let objects = place.objects().await;
    assert!(
        objects.contains(&format!("points/db/{}/outer-header", point.id())),
        "{target:?}: {objects:?}"
    );
    let mut restored = Vec::new();
    vault.restore(&point, &mut restored).await.unwrap();
    assert!(restored == source, "{target:?}");
    let mut part = Vec::new();
    vault
        .restore_range(&point, 8_000_000..8_500_000, &mut part)
        .await
        .unwrap();
    assert!(part == source[8_000_000..8_500_000], "{target:?}");

    let version = vault.rotate_platform_key().await.unwrap();
    let report = vault.rewrap(RewrapOptions::default()).await.unwrap();
    assert_eq!(report.rewrapped, 1, "{target:?}: {report:?}");
    let point = vault.point(&item, point.id()).await.unwrap();
    assert_eq!(point.infrastructure_keys()[0].version, version);
    let mut restored = Vec::new();
    vault.restore(&point, &mut restored).await.unwrap();
    assert!(restored == source, "{target:?}");
}

/// Deleting a point removes its header (its only wrapped DEK) first: a copy
/// of its body put back is noise.
async fn a_deleted_point_is_crypto_shredded(target: Target) {
    let place = Place::new(target, "delete");
    let vault = place.create().await;
    let item = vault.protect("vm").await.unwrap();
    let keep = vault
        .backup(&item, data(3000, 5).as_slice(), BackupOptions::default())
        .await
        .unwrap();
    let doomed = vault
        .backup(&item, data(3000, 6).as_slice(), BackupOptions::default())
        .await
        .unwrap();
    let store = place.store().object_store();
    let body = place.path(&format!("points/vm/{}/body", doomed.id()));
    let copy = store.get(&body).await.unwrap().bytes().await.unwrap();

    vault.delete_point(&doomed).await.unwrap();
    assert!(matches!(
        vault.point(&item, doomed.id()).await,
        Err(Error::NotFound { .. })
    ));
    assert_eq!(vault.points(&item).await.unwrap(), vec![keep.clone()]);
    let left = place.objects().await;
    assert!(
        !left.iter().any(|p| p.contains(doomed.id())),
        "{target:?}: {left:?}"
    );

    // The copied body under the surviving point's header: another DEK.
    let keep_body = place.path(&format!("points/vm/{}/body", keep.id()));
    let original = store.get(&keep_body).await.unwrap().bytes().await.unwrap();
    store.put(&keep_body, copy.into()).await.unwrap();
    let verified = vault.verify(&keep).await;
    assert!(
        matches!(verified, Err(Error::Integrity { .. })),
        "{target:?}: {verified:?}"
    );
    store.put(&keep_body, original.into()).await.unwrap();
    vault.verify(&keep).await.unwrap();
}

/// A backup that crashed before its manifest is not listed; gc removes it
/// once past the grace period, not before.
async fn gc_clears_what_a_crash_leaves(target: Target) {
    let place = Place::new(target, "gc");
    let vault = place.create().await;
    let item = vault.protect("vm").await.unwrap();
    let point = vault
        .backup(&item, data(5000, 1).as_slice(), BackupOptions::default())
        .await
        .unwrap();
    let store = place.store().object_store();
    store
        .delete(&place.path(&format!("points/vm/{}/manifest.json", point.id())))
        .await
        .unwrap();
    assert!(vault.points(&item).await.unwrap().is_empty());
    assert_eq!(vault.gc(Duration::from_secs(3600)).await.unwrap(), 0);
    // Store clocks count whole seconds.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(vault.gc(Duration::from_secs(1)).await.unwrap(), 1);
    let left = place.objects().await;
    assert!(
        !left.iter().any(|p| p.starts_with("points/")),
        "{target:?}: {left:?}"
    );
}

/// Rotation then rewrap: each header is replaced, bodies untouched, and
/// every point restores under the new version.
async fn rewrap_moves_points_to_a_new_key_version(target: Target) {
    let place = Place::new(target, "rewrap");
    let vault = place.create().await;
    let item = vault.protect("vm").await.unwrap();
    let mut points = Vec::new();
    for seed in 0..3 {
        points.push(
            vault
                .backup(
                    &item,
                    data(40_000, seed).as_slice(),
                    BackupOptions::default(),
                )
                .await
                .unwrap(),
        );
    }
    let store = place.store().object_store();
    let body = place.path(&format!("points/vm/{}/body", points[0].id()));
    let body_before = store.get(&body).await.unwrap().bytes().await.unwrap();
    let version = vault.rotate_platform_key().await.unwrap();
    let report = vault.rewrap(RewrapOptions::default()).await.unwrap();
    assert_eq!(report.rewrapped, 3, "{target:?}: {report:?}");
    assert!(report.skipped.is_empty(), "{target:?}: {report:?}");
    let body_after = store.get(&body).await.unwrap().bytes().await.unwrap();
    assert_eq!(body_before, body_after);
    for (seed, point) in points.iter().enumerate() {
        let point = vault.point(&item, point.id()).await.unwrap();
        assert!(
            point.keys().iter().all(|k| k.version == version),
            "{target:?}: {:?}",
            point.keys()
        );
        let mut restored = Vec::new();
        vault.restore(&point, &mut restored).await.unwrap();
        assert_eq!(restored, data(40_000, seed as u8));
    }
}

/// `vault.json` is written create-only: a second vault at the same prefix
/// is refused and the first is untouched.
async fn a_second_vault_at_the_same_prefix_is_refused(target: Target) {
    let place = Place::new(target, "second");
    let vault = place.create().await;
    let other_dir = tempfile::tempdir().unwrap();
    let second =
        RecoveryVault::create_local_with_store(other_dir.path(), "intruder", place.store()).await;
    assert!(
        matches!(second, Err(Error::AlreadyExists { .. })),
        "{target:?}: {second:?}"
    );
    // Refused before its platform key vault was made: nothing left there.
    assert!(
        std::fs::read_dir(other_dir.path())
            .unwrap()
            .next()
            .is_none(),
        "{target:?}: the refused vault left files behind"
    );
    assert_eq!(place.open().await.id(), vault.id());
}

/// A create-only put whose first attempt landed but whose answer was lost
/// is retried by the client, which then gets "already exists" for its own
/// object. `LandedTwice` does exactly that on every create-only put of an
/// object with fresh random bytes in it: `vault.json`, a point's headers
/// and its manifest (the commit). (Item and settings records are plain
/// create-only puts: there a lost answer reads as "exists", which is
/// safe: the item is there, the settings update re-reads and sees itself.)
#[derive(Debug)]
struct LandedTwice(Arc<dyn ObjectStore>);

impl std::fmt::Display for LandedTwice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LandedTwice({})", self.0)
    }
}

#[async_trait::async_trait]
impl ObjectStore for LandedTwice {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> ObjectResult<PutResult> {
        let unique = ["vault.json", "header", "outer-header", "manifest.json"]
            .contains(&location.filename().unwrap_or(""));
        if opts.mode == PutMode::Create && unique {
            self.0
                .put_opts(location, payload.clone(), opts.clone())
                .await?;
        }
        self.0.put_opts(location, payload, opts).await
    }
    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> ObjectResult<Box<dyn MultipartUpload>> {
        self.0.put_multipart_opts(location, opts).await
    }
    async fn get_opts(&self, location: &Path, options: GetOptions) -> ObjectResult<GetResult> {
        self.0.get_opts(location, options).await
    }
    async fn get_ranges(
        &self,
        location: &Path,
        ranges: &[std::ops::Range<u64>],
    ) -> ObjectResult<Vec<bytes::Bytes>> {
        self.0.get_ranges(location, ranges).await
    }
    fn delete_stream(
        &self,
        locations: BoxStream<'static, ObjectResult<Path>>,
    ) -> BoxStream<'static, ObjectResult<Path>> {
        self.0.delete_stream(locations)
    }
    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, ObjectResult<ObjectMeta>> {
        self.0.list(prefix)
    }
    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> ObjectResult<ListResult> {
        self.0.list_with_delimiter(prefix).await
    }
    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> ObjectResult<()> {
        self.0.copy_opts(from, to, options).await
    }
    async fn rename_opts(
        &self,
        from: &Path,
        to: &Path,
        options: RenameOptions,
    ) -> ObjectResult<()> {
        self.0.rename_opts(from, to, options).await
    }
}

/// Every create-only put of the vault record, headers and manifests
/// answered "already exists" after it landed: the vault is made, points
/// committed and restored all the same (an object holding exactly the
/// bytes sent is the put's own). A different object there is still a lost
/// race.
async fn a_retried_create_that_landed_counts_as_created(target: Target) {
    let place = Place::new(target, "retried-create");
    let store = place.store();
    let platform = Arc::new(MemoryKeyVault::new(VaultProperties::new("platform")).unwrap());
    let wrapped = Store::from_object_store(
        Arc::new(LandedTwice(store.object_store())),
        store.prefix().clone(),
        store.url(),
    );
    let vault = RecoveryVault::create(VaultConfig::at(wrapped, platform), "twice")
        .await
        .unwrap();
    let item = vault.protect("vm").await.unwrap();
    let point = vault
        .backup(&item, data(70_000, 3).as_slice(), BackupOptions::default())
        .await
        .unwrap();
    assert_eq!(vault.points(&item).await.unwrap(), vec![point.clone()]);
    let mut restored = Vec::new();
    vault.restore(&point, &mut restored).await.unwrap();
    assert_eq!(restored, data(70_000, 3));

    // The store refuses a create-only put over another object: the race
    // the commit relies on is still lost by the second writer.
    let raw = store.object_store();
    let path = place.path("probe/create-only");
    let create = PutOptions {
        mode: PutMode::Create,
        ..PutOptions::default()
    };
    raw.put_opts(&path, b"first".to_vec().into(), create.clone())
        .await
        .unwrap();
    let again = raw.put_opts(&path, b"second".to_vec().into(), create).await;
    assert!(
        matches!(again, Err(ObjectError::AlreadyExists { .. })),
        "{target:?}: create-only put over an object: {again:?}"
    );
    let there = raw.get(&path).await.unwrap().bytes().await.unwrap();
    assert_eq!(&there[..], b"first", "{target:?}");
}

// ---- R19: plain HTTP ------------------------------------------------------

#[test]
fn plain_http_is_refused_unless_allowed_for_a_loopback_emulator() {
    for (url, key, endpoint) in [
        ("s3://bucket/v", "aws_endpoint", "http://s3.example.com"),
        (
            "az://container/v",
            "azure_storage_endpoint",
            "http://account.blob.example.com",
        ),
    ] {
        let account = StoreOptions::default()
            .from_env(false)
            .config("azure_storage_account_name", "account");
        let options = |key: &str, value: &str| {
            if url.starts_with("az") {
                account.clone().config(key, value)
            } else {
                StoreOptions::default().from_env(false).config(key, value)
            }
        };
        let base = options(key, endpoint);
        for allow in [false, true] {
            let refused = base.clone().allow_http_loopback(allow).open(url);
            assert!(
                matches!(&refused, Err(Error::InsecureTransport { endpoint: e, .. }) if e == endpoint),
                "{url} over {endpoint} (allow {allow}): {refused:?}"
            );
        }
        // A loopback emulator, but not allowed: refused, saying how.
        let loopback = options(key, "http://127.0.0.1:9");
        let refused = loopback.clone().open(url).unwrap_err();
        assert!(matches!(refused, Error::InsecureTransport { .. }));
        assert!(
            refused.to_string().contains("allow-http-loopback"),
            "{refused}"
        );
        loopback.allow_http_loopback(true).open(url).unwrap();
        if url.starts_with("az") {
            // No account: a settings problem, said as one.
            let missing = StoreOptions::default()
                .from_env(false)
                .config(key, endpoint.replace("http://", "https://"))
                .open(url)
                .unwrap_err();
            assert!(
                matches!(&missing, Error::InvalidArgument { reason } if reason.contains("az://container")),
                "{missing:?}"
            );
        }
        // HTTPS is fine, and turning certificate checks or HTTPS off is not
        // a setting one can give.
        let https = endpoint.replace("http://", "https://");
        options(key, &https).open(url).unwrap();
        for bad in ["allow_invalid_certificates", "allow_http"] {
            let prefix = if url.starts_with("s3") {
                "aws_"
            } else {
                "azure_"
            };
            let refused = options(&format!("{prefix}{bad}"), "true").open(url);
            assert!(
                matches!(refused, Err(Error::InvalidArgument { .. })),
                "{bad}: {refused:?}"
            );
        }
    }
}

// ---- the network failing mid-transfer ---------------------------------------

macro_rules! network_suite {
    ($($test:ident),* $(,)?) => {
        mod azurite_network {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $test() { super::$test(super::Target::Azurite).await }) *
        }
        mod moto_network {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $test() { super::$test(super::Target::Moto).await }) *
        }
    };
}

network_suite!(
    an_outage_mid_upload_leaves_nothing_visible,
    a_connection_cut_once_mid_upload_is_retried,
    an_outage_mid_restore_fails_as_unreachable,
    a_connection_cut_once_mid_restore_is_retried,
);

fn proxied(target: Target, name: &str) -> (FaultProxy, Place) {
    let emulator = target.emulator().unwrap();
    let proxy = FaultProxy::start(emulator.addr());
    let place = Place::via(target, name, Some(&proxy));
    (proxy, place)
}

/// The store goes away 10 MiB into a 24 MiB upload: the backup fails as
/// unreachable, the source file is untouched, and once the store is back
/// no point is listed and gc leaves no object of it.
async fn an_outage_mid_upload_leaves_nothing_visible(target: Target) {
    let (proxy, place) = proxied(target, "outage-upload");
    let vault = place.create().await;
    let item = vault.protect("vm").await.unwrap();
    let source_path = place.dir.path().join("disk.img");
    let source = data(24 << 20, 9);
    std::fs::write(&source_path, &source).unwrap();

    proxy.outage_after(Direction::Up, 10 << 20);
    let file = tokio::fs::File::open(&source_path).await.unwrap();
    let failed = vault.backup(&item, file, BackupOptions::default()).await;
    assert!(proxy.cuts() > 0, "{target:?}: the fault never fired");
    let error = failed.unwrap_err();
    assert!(
        matches!(error, Error::StoreUnreachable { .. }),
        "{target:?}: {error:?}"
    );
    assert!(error.to_string().contains("unreachable"), "{error}");
    proxy.heal();

    assert_eq!(std::fs::read(&source_path).unwrap(), source);
    assert!(vault.points(&item).await.unwrap().is_empty());
    tokio::time::sleep(Duration::from_millis(2100)).await;
    vault.gc(Duration::from_secs(1)).await.unwrap();
    let left = place.objects().await;
    assert!(
        !left.iter().any(|p| p.starts_with("points/")),
        "{target:?}: {left:?}"
    );
    // And the vault works again.
    let point = vault
        .backup(&item, data(5000, 1).as_slice(), BackupOptions::default())
        .await
        .unwrap();
    assert_eq!(vault.points(&item).await.unwrap(), vec![point]);
}

/// Every connection cut once, 10 MiB into a 24 MiB upload: the client's
/// retries carry the backup through, and it restores.
async fn a_connection_cut_once_mid_upload_is_retried(target: Target) {
    let (proxy, place) = proxied(target, "cut-upload");
    let vault = place.create().await;
    let item = vault.protect("vm").await.unwrap();
    let source = data(24 << 20, 4);
    proxy.cut_once_after(Direction::Up, 10 << 20);
    let point = vault
        .backup(&item, source.as_slice(), BackupOptions::default())
        .await
        .unwrap();
    assert_eq!(proxy.cuts(), 1, "{target:?}: the fault never fired");
    let mut restored = Vec::new();
    vault.restore(&point, &mut restored).await.unwrap();
    assert!(restored == source, "{target:?}: the restore differs");
}

/// The store goes away 5 MiB into a restore: it fails as unreachable, and
/// what was written to the sink is whole authenticated chunks only.
async fn an_outage_mid_restore_fails_as_unreachable(target: Target) {
    let (proxy, place) = proxied(target, "outage-restore");
    let vault = place.create().await;
    let item = vault.protect("vm").await.unwrap();
    let source = data(20 << 20, 7);
    let point = vault
        .backup(&item, source.as_slice(), BackupOptions::default())
        .await
        .unwrap();
    proxy.outage_after(Direction::Down, 5 << 20);
    let mut sink = Vec::new();
    let failed = vault.restore(&point, &mut sink).await;
    assert!(proxy.cuts() > 0, "{target:?}: the fault never fired");
    let error = failed.unwrap_err();
    assert!(
        matches!(error, Error::StoreUnreachable { .. }),
        "{target:?}: {error:?}"
    );
    // Only whole, authenticated 1 MiB chunks were released.
    assert_eq!(sink.len() % (1 << 20), 0, "{target:?}");
    assert!(sink.len() < source.len());
    assert!(sink == source[..sink.len()], "{target:?}");
    proxy.heal();
    let mut restored = Vec::new();
    vault.restore(&point, &mut restored).await.unwrap();
    assert!(restored == source, "{target:?}");
}

/// Every connection cut once, 5 MiB into a restore: retried, and the
/// restore is whole.
async fn a_connection_cut_once_mid_restore_is_retried(target: Target) {
    let (proxy, place) = proxied(target, "cut-restore");
    let vault = place.create().await;
    let item = vault.protect("vm").await.unwrap();
    let source = data(20 << 20, 8);
    let point = vault
        .backup(&item, source.as_slice(), BackupOptions::default())
        .await
        .unwrap();
    proxy.cut_once_after(Direction::Down, 5 << 20);
    let mut restored = Vec::new();
    vault.restore(&point, &mut restored).await.unwrap();
    assert_eq!(proxy.cuts(), 1, "{target:?}: the fault never fired");
    assert!(restored == source, "{target:?}: the restore differs");
}

// ---- two processes -----------------------------------------------------------

const RACE: &str = "two_processes_race_for_one_item_and_one_wins";

/// Two processes protect the same item of one vault at the same instant,
/// on each store: the item record is a create-only put, so exactly one
/// wins and the other is told it exists.
#[test]
fn two_processes_race_for_one_item_and_one_wins() {
    if let Ok(role) = std::env::var("STRONGROOM_STORE_RACE") {
        race_child(&role);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    for target in [Target::Local, Target::Azurite, Target::Moto] {
        for round in 0..3 {
            let place = Place::new(target, "race");
            runtime.block_on(place.create());
            let at = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_millis()
                + 1500;
            let children: Vec<_> = (0..2)
                .map(|_| {
                    let mut command = Command::new(std::env::current_exe().unwrap());
                    command
                        .args(["--exact", RACE, "--nocapture", "--test-threads=1"])
                        .env("STRONGROOM_STORE_RACE", format!("{target:?}"))
                        .env("STRONGROOM_STORE_RACE_DIR", place.dir.path())
                        .env("STRONGROOM_STORE_RACE_URL", &place.url)
                        .env("STRONGROOM_STORE_RACE_AT", at.to_string())
                        .stdout(Stdio::piped())
                        .stderr(Stdio::inherit());
                    command.spawn().unwrap()
                })
                .collect();
            let mut outcomes: Vec<String> = children
                .into_iter()
                .map(|child| {
                    let output = child.wait_with_output().unwrap();
                    assert!(output.status.success(), "{output:?}");
                    String::from_utf8(output.stdout)
                        .unwrap()
                        .lines()
                        .find_map(|l| l.split_once("outcome=").map(|(_, o)| o.trim().to_owned()))
                        .expect("an outcome")
                })
                .collect();
            outcomes.sort();
            assert_eq!(outcomes, ["exists", "ok"], "{target:?} round {round}");
            let vault = runtime.block_on(place.open());
            let items = runtime.block_on(vault.items()).unwrap();
            assert_eq!(items.len(), 1, "{target:?} round {round}");
        }
    }
}

fn race_child(role: &str) -> ! {
    let target = match role {
        "Local" => Target::Local,
        "Azurite" => Target::Azurite,
        "Moto" => Target::Moto,
        other => panic!("unknown store {other}"),
    };
    let dir = std::env::var("STRONGROOM_STORE_RACE_DIR").unwrap();
    let url = std::env::var("STRONGROOM_STORE_RACE_URL").unwrap();
    let at: u128 = std::env::var("STRONGROOM_STORE_RACE_AT")
        .unwrap()
        .parse()
        .unwrap();
    let mut options = StoreOptions::default()
        .from_env(false)
        .allow_http_loopback(true);
    if let Some(emulator) = target.emulator() {
        for (key, value) in emulator.config(emulator.addr()) {
            options = options.config(key, value);
        }
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let outcome = runtime.block_on(async {
        let store = options.open(&url).unwrap();
        let vault = RecoveryVault::open_local_with_store(&dir, store)
            .await
            .unwrap();
        while std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis()
            < at
        {
            std::hint::spin_loop();
        }
        match vault.protect("vm").await {
            Ok(_) => "ok".to_owned(),
            Err(Error::AlreadyExists { .. }) => "exists".to_owned(),
            Err(e) => format!("error {e}"),
        }
    });
    println!("outcome={outcome}");
    std::process::exit(0);
}
