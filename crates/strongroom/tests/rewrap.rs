//! Key rotation and the rewrap job (R8, issue 13): points move to the
//! current key by their headers only; a job that fails at any store call
//! leaves every point restorable, and a second job finishes the work (with
//! one layer of encryption, and with infrastructure encryption's two).

use std::fmt;
use std::ops::Range;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures::StreamExt;
use futures::stream::BoxStream;
use strongroom::keyvault::{
    KeyOptions, KeyType, KeyVault, MemoryKeyVault, Permissions, Principal, VaultProperties,
};
use strongroom::object_store::memory::InMemory;
use strongroom::object_store::path::Path;
use strongroom::object_store::{
    self, CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    ObjectStoreExt, PutMultipartOptions, PutOptions, PutPayload, PutResult, RenameOptions, Result,
};
use strongroom::policy::{CustomerKey, EncryptionSettings};
use strongroom::{BackupOptions, Error, RecoveryPoint, RecoveryVault, RewrapOptions, VaultConfig};

/// A store that fails its Nth call (counting from 1) once armed.
#[derive(Debug, Default)]
struct Faulty {
    inner: InMemory,
    calls: AtomicUsize,
    fail_at: AtomicUsize,
}

impl fmt::Display for Faulty {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Faulty(InMemory)")
    }
}

impl Faulty {
    /// Counts from zero again; fails call `n` (0: never).
    fn arm(&self, n: usize) {
        self.calls.store(0, Ordering::SeqCst);
        self.fail_at.store(n, Ordering::SeqCst);
    }

    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    fn check(&self) -> Result<()> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        if n == self.fail_at.load(Ordering::SeqCst) {
            return Err(object_store::Error::Generic {
                store: "Faulty",
                source: format!("injected failure at call {n}").into(),
            });
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl ObjectStore for Faulty {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> Result<PutResult> {
        self.check()?;
        self.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> Result<Box<dyn MultipartUpload>> {
        self.check()?;
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
        self.check()?;
        self.inner.get_opts(location, options).await
    }

    async fn get_ranges(&self, location: &Path, ranges: &[Range<u64>]) -> Result<Vec<Bytes>> {
        self.check()?;
        self.inner.get_ranges(location, ranges).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, Result<Path>>,
    ) -> BoxStream<'static, Result<Path>> {
        if let Err(e) = self.check() {
            return futures::stream::once(async move { Err(e) }).boxed();
        }
        self.inner.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
        if let Err(e) = self.check() {
            return futures::stream::once(async move { Err(e) }).boxed();
        }
        self.inner.list(prefix)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
        self.check()?;
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> Result<()> {
        self.check()?;
        self.inner.copy_opts(from, to, options).await
    }

    async fn rename_opts(&self, from: &Path, to: &Path, options: RenameOptions) -> Result<()> {
        self.check()?;
        self.inner.rename_opts(from, to, options).await
    }
}

fn data(i: usize) -> Vec<u8> {
    (0..5000 + i * 300).map(|j| (j * 7 + i) as u8).collect()
}

/// A vault over a `Faulty` store with `n` points (under the first platform
/// key version), then the platform key rotated.
async fn world(n: usize) -> (Arc<Faulty>, RecoveryVault, Vec<RecoveryPoint>) {
    let store = Arc::new(Faulty::default());
    let platform = Arc::new(MemoryKeyVault::new(VaultProperties::new("platform")).unwrap());
    let config = VaultConfig::new(store.clone(), Path::from("v"), platform)
        .threads(1)
        .unwrap();
    let vault = RecoveryVault::create(config, "rewrap").await.unwrap();
    let mut points = Vec::new();
    for i in 0..n {
        let name = format!("item-{}", i % 2);
        let item = match vault.protect(&name).await {
            Ok(item) => item,
            Err(Error::AlreadyExists { .. }) => vault.item(&name).await.unwrap(),
            Err(e) => panic!("{e}"),
        };
        let options = BackupOptions::default().chunk_size(4096).unwrap();
        points.push(
            vault
                .backup(&item, data(i).as_slice(), options)
                .await
                .unwrap(),
        );
    }
    vault.rotate_platform_key().await.unwrap();
    (store, vault, points)
}

/// Every point restores to its data; returns the key versions they are
/// under now.
async fn check_all(vault: &RecoveryVault, points: &[RecoveryPoint]) -> Vec<String> {
    let mut versions = Vec::new();
    for (i, old) in points.iter().enumerate() {
        let item = vault.item(old.item()).await.unwrap();
        let point = vault.point(&item, old.id()).await.unwrap();
        let mut out = Vec::new();
        vault
            .restore(&point, &mut out)
            .await
            .unwrap_or_else(|e| panic!("point {i}: {e}"));
        assert!(out == data(i), "point {i}");
        assert_eq!(point.keys().len(), 1);
        versions.push(point.keys()[0].version.clone());
    }
    versions
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_then_rewrap_moves_every_point_and_only_once() {
    let (_store, vault, points) = world(5).await;
    let before = check_all(&vault, &points).await;
    assert!(before.windows(2).all(|w| w[0] == w[1]));
    // A point taken after the rotation is under the new version.
    let item = vault.item("item-0").await.unwrap();
    let fresh = vault
        .backup(&item, [1u8; 100].as_slice(), BackupOptions::default())
        .await
        .unwrap();
    let new_version = fresh.keys()[0].version.clone();
    assert_ne!(new_version, before[0]);

    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    let report = vault
        .rewrap(RewrapOptions::default().progress(move |p| log.lock().unwrap().push(p)))
        .await
        .unwrap();
    assert_eq!((report.rewrapped, report.current), (5, 1), "{report:?}");
    assert!(report.skipped.is_empty() && !report.cancelled);
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.last().unwrap().done, 6);
    assert_eq!(seen.last().unwrap().total, 6);
    let after = check_all(&vault, &points).await;
    assert!(after.iter().all(|v| *v == new_version), "{after:?}");

    // Key health: the old version holds nothing now.
    let health = vault.key_health().await.unwrap();
    assert!(health.versions().iter().all(|v| v.version == new_version));

    // Again: nothing to do.
    let report = vault.rewrap(RewrapOptions::default()).await.unwrap();
    assert_eq!((report.rewrapped, report.current), (0, 6));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_failing_at_any_store_call_leaves_every_point_restorable_and_a_rerun_finishes() {
    // How many store calls a clean job makes.
    let (store, vault, _) = world(4).await;
    store.arm(0);
    let report = vault.rewrap(RewrapOptions::default()).await.unwrap();
    assert_eq!(report.rewrapped, 4);
    let calls = store.calls();
    assert!(calls > 10, "{calls}");

    for n in 1..=calls {
        let (store, vault, points) = world(4).await;
        store.arm(n);
        let first = vault
            .rewrap(RewrapOptions::default().in_flight(2).unwrap())
            .await;
        store.arm(0);
        // Old header or new: every point opens.
        check_all(&vault, &points).await;
        let second = vault
            .rewrap(RewrapOptions::default())
            .await
            .unwrap_or_else(|e| panic!("call {n}: the second job failed: {e} (first: {first:?})"));
        assert!(second.skipped.is_empty(), "call {n}: {second:?}");
        let versions = check_all(&vault, &points).await;
        let target = second.target.unwrap().version;
        assert!(
            versions.iter().all(|v| *v == target),
            "call {n}: {versions:?}"
        );
        // Nothing left behind: the checkpoint is gone.
        let left: Vec<_> = store
            .inner
            .list(Some(&Path::from("v/jobs")))
            .collect::<Vec<_>>()
            .await;
        assert!(left.is_empty(), "call {n}: {left:?}");
    }
}

/// A customer key vault holding `cmk` in two versions (RSA-2048, made
/// once per test and shared by its worlds); returns them.
fn customer_key_vault() -> (Arc<dyn KeyVault>, String, String) {
    let kv: Arc<dyn KeyVault> =
        Arc::new(MemoryKeyVault::new(VaultProperties::new("contoso")).unwrap());
    let admin = Principal::new("admin");
    kv.set_access_policy(&admin, Permissions::all()).unwrap();
    kv.enable_purge_protection().unwrap();
    let v1 = kv
        .create_key(&admin, "cmk", KeyType::Rsa2048, KeyOptions::default())
        .unwrap()
        .version;
    let v2 = kv
        .rotate_key(&admin, "cmk", KeyOptions::default())
        .unwrap()
        .version;
    (kv, v1, v2)
}

/// A vault over a `Faulty` store with infrastructure encryption and `n`
/// points under the customer key's version `v1` and the first platform
/// key version; then the platform key rotated and the settings made
/// versionless (the customer key's latest version): a job has both
/// headers of every point to move.
async fn double_world(
    kv: &Arc<dyn KeyVault>,
    v1: &str,
    n: usize,
) -> (Arc<Faulty>, RecoveryVault, Vec<RecoveryPoint>) {
    let store = Arc::new(Faulty::default());
    let platform = Arc::new(MemoryKeyVault::new(VaultProperties::new("platform")).unwrap());
    let config = VaultConfig::new(store.clone(), Path::from("v"), platform)
        .threads(1)
        .unwrap();
    let vault = RecoveryVault::create(config, "rewrap").await.unwrap();
    vault.attach_key_vault(kv.clone()).unwrap();
    kv.set_access_policy(&vault.system_identity(), Permissions::key_user())
        .unwrap();
    let settings = |key: CustomerKey| {
        EncryptionSettings::customer_managed(key).with_infrastructure_encryption()
    };
    vault
        .set_encryption(settings(
            CustomerKey::new("contoso", "cmk").with_version(v1),
        ))
        .await
        .unwrap();
    let item = vault.protect("item").await.unwrap();
    let mut points = Vec::new();
    for i in 0..n {
        let options = BackupOptions::default().chunk_size(4096).unwrap();
        let point = vault
            .backup(&item, data(i).as_slice(), options)
            .await
            .unwrap();
        assert!(point.infrastructure_encrypted());
        points.push(point);
    }
    vault.rotate_platform_key().await.unwrap();
    vault
        .set_encryption(settings(CustomerKey::new("contoso", "cmk")))
        .await
        .unwrap();
    (store, vault, points)
}

/// Every point restores to its data; returns the customer and platform
/// key versions each is under now.
async fn check_all_double(
    vault: &RecoveryVault,
    points: &[RecoveryPoint],
) -> Vec<(String, String)> {
    let item = vault.item("item").await.unwrap();
    let mut versions = Vec::new();
    for (i, old) in points.iter().enumerate() {
        let point = vault.point(&item, old.id()).await.unwrap();
        let mut out = Vec::new();
        vault
            .restore(&point, &mut out)
            .await
            .unwrap_or_else(|e| panic!("point {i}: {e}"));
        assert!(out == data(i), "point {i}");
        versions.push((
            point.keys()[0].version.clone(),
            point.infrastructure_keys()[0].version.clone(),
        ));
    }
    versions
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_two_layers_a_job_failing_at_any_store_call_leaves_every_point_restorable() {
    let (kv, v1, v2) = customer_key_vault();
    let (store, vault, points) = double_world(&kv, &v1, 3).await;
    let before = check_all_double(&vault, &points).await;
    assert!(before.iter().all(|(c, _)| *c == v1));
    store.arm(0);
    let report = vault.rewrap(RewrapOptions::default()).await.unwrap();
    assert_eq!(report.rewrapped, 3, "{report:?}");
    let calls = store.calls();
    let platform = report.infrastructure_target.unwrap().version;
    assert!(before.iter().all(|(_, p)| *p != platform));

    for n in 1..=calls {
        let (store, vault, points) = double_world(&kv, &v1, 3).await;
        store.arm(n);
        let first = vault
            .rewrap(RewrapOptions::default().in_flight(2).unwrap())
            .await;
        store.arm(0);
        // Each header old or new: every point opens.
        check_all_double(&vault, &points).await;
        let second = vault
            .rewrap(RewrapOptions::default())
            .await
            .unwrap_or_else(|e| panic!("call {n}: the second job failed: {e} (first: {first:?})"));
        assert!(second.skipped.is_empty(), "call {n}: {second:?}");
        let platform = second.infrastructure_target.unwrap().version;
        let versions = check_all_double(&vault, &points).await;
        assert!(
            versions.iter().all(|(c, p)| *c == v2 && *p == platform),
            "call {n}: {versions:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_point_is_skipped_with_its_reason_and_retried_by_the_next_job() {
    let (store, vault, points) = world(5).await;
    // Damage the third point's header (in job order).
    let mut sorted = points.clone();
    sorted.sort_by_key(|p| format!("{}/{}", p.item(), p.id()));
    let bad = &sorted[2];
    let path = Path::from(format!("v/points/{}/{}/header", bad.item(), bad.id()));
    let original = store.inner.get(&path).await.unwrap().bytes().await.unwrap();
    let mut damaged = original.to_vec();
    let last = damaged.len() - 1;
    damaged[last] ^= 1;
    store.inner.put(&path, damaged.into()).await.unwrap();

    let report = vault.rewrap(RewrapOptions::default()).await.unwrap();
    assert_eq!(report.rewrapped, 4, "{report:?}");
    assert_eq!(report.skipped.len(), 1);
    assert_eq!(report.skipped[0].point, bad.id());
    assert!(
        matches!(report.skipped[0].error, Error::Integrity { .. }),
        "{report:?}"
    );
    // The checkpoint stops before the bad point.
    let checkpoint = store
        .inner
        .get(&Path::from("v/jobs/rewrap.json"))
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let checkpoint: serde_json::Value = serde_json::from_slice(&checkpoint).unwrap();
    assert_eq!(
        checkpoint["through"],
        format!("{}/{}", sorted[1].item(), sorted[1].id())
    );

    // Repaired, the next job moves it and skips the first two unread.
    store.inner.put(&path, original.into()).await.unwrap();
    let report = vault.rewrap(RewrapOptions::default()).await.unwrap();
    assert!(report.skipped.is_empty(), "{report:?}");
    assert_eq!((report.rewrapped, report.current), (1, 4));
    check_all(&vault, &points).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_job_stops_and_the_next_goes_on_from_its_checkpoint() {
    let (store, vault, points) = world(6).await;
    let flag = Arc::new(AtomicBool::new(false));
    let stop = Arc::clone(&flag);
    let options = RewrapOptions::default()
        .in_flight(1)
        .unwrap()
        .cancel_flag(Arc::clone(&flag))
        .progress(move |p| {
            if p.done == 3 {
                stop.store(true, Ordering::SeqCst);
            }
        });
    let report = vault.rewrap(options).await.unwrap();
    assert!(report.cancelled, "{report:?}");
    assert!(report.rewrapped >= 3 && report.rewrapped < 6, "{report:?}");
    check_all(&vault, &points).await;

    store.arm(0);
    let report = vault.rewrap(RewrapOptions::default()).await.unwrap();
    assert!(!report.cancelled && report.skipped.is_empty());
    assert_eq!(report.rewrapped + report.current, 6);
    let versions = check_all(&vault, &points).await;
    assert!(versions.windows(2).all(|w| w[0] == w[1]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filters_select_an_item_or_a_key_version_and_one_point_moves_alone() {
    let (_store, vault, points) = world(4).await;
    let old = points[0].keys()[0].clone();
    let report = vault
        .rewrap(RewrapOptions::default().item("item-1"))
        .await
        .unwrap();
    assert_eq!(report.rewrapped, 2);
    let versions = check_all(&vault, &points).await;
    assert_eq!(versions[0], old.version);
    assert_ne!(versions[1], old.version);

    let item = vault.item("item-0").await.unwrap();
    let point = vault.point(&item, points[0].id()).await.unwrap();
    assert!(vault.rewrap_point(&point).await.unwrap());
    let point = vault.point(&item, points[0].id()).await.unwrap();
    assert!(!vault.rewrap_point(&point).await.unwrap());

    let report = vault
        .rewrap(RewrapOptions::default().from_version(&old.vault, &old.name, &old.version))
        .await
        .unwrap();
    assert_eq!((report.rewrapped, report.current), (1, 0), "{report:?}");
    let versions = check_all(&vault, &points).await;
    assert!(versions.iter().all(|v| *v != old.version));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_old_version_cannot_be_disabled_while_points_need_it_until_rewrapped() {
    let (_store, vault, points) = world(3).await;
    // The first platform version wraps the vault's settings key: never.
    let first = points[0].keys()[0].clone();
    let anchor = vault
        .disable_key_version(&first.vault, &first.name, &first.version, true)
        .await;
    assert!(
        matches!(anchor, Err(Error::InvalidArgument { .. })),
        "{anchor:?}"
    );

    let second = vault
        .rewrap(RewrapOptions::default())
        .await
        .unwrap()
        .target
        .unwrap();
    vault.rotate_platform_key().await.unwrap();
    let refused = vault
        .disable_key_version(&second.vault, &second.name, &second.version, false)
        .await;
    let Err(Error::KeyStillNeeded { points: needed, .. }) = &refused else {
        panic!("{refused:?}");
    };
    assert_eq!(needed.len(), 3);
    assert!(refused.unwrap_err().to_string().contains("rewrap them"));
    check_all(&vault, &points).await;

    let report = vault.rewrap(RewrapOptions::default()).await.unwrap();
    assert_eq!(report.rewrapped, 3);
    vault
        .disable_key_version(&second.vault, &second.name, &second.version, false)
        .await
        .unwrap();
    check_all(&vault, &points).await;

    // Forced: the current version goes, and its points cannot be opened
    // until it is enabled again.
    let current = report.target.unwrap();
    let forced = vault
        .disable_key_version(&current.vault, &current.name, &current.version, false)
        .await;
    assert!(
        matches!(forced, Err(Error::KeyStillNeeded { .. })),
        "{forced:?}"
    );
    vault
        .disable_key_version(&current.vault, &current.name, &current.version, true)
        .await
        .unwrap();
    let item = vault.item(points[0].item()).await.unwrap();
    let point = vault.point(&item, points[0].id()).await.unwrap();
    let checked = vault.check_keys(&point).await;
    assert!(
        matches!(
            &checked,
            Err(Error::Key {
                source: strongroom::keyvault::VaultError::KeyDisabled { .. },
                ..
            })
        ),
        "{checked:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_filtered_job_s_checkpoint_does_not_serve_a_job_over_other_points() {
    let (_store, vault, points) = world(6).await;
    // A job over item-1 only, cancelled after its first point.
    let flag = Arc::new(AtomicBool::new(false));
    let stop = Arc::clone(&flag);
    let options = RewrapOptions::default()
        .item("item-1")
        .in_flight(1)
        .unwrap()
        .cancel_flag(Arc::clone(&flag))
        .progress(move |p| {
            if p.done == 1 {
                stop.store(true, Ordering::SeqCst);
            }
        });
    let report = vault.rewrap(options).await.unwrap();
    assert!(report.cancelled && report.rewrapped == 1, "{report:?}");

    // A job over every point: item-0's points sort before the checkpoint
    // but were never moved; they must be.
    let report = vault.rewrap(RewrapOptions::default()).await.unwrap();
    assert_eq!((report.rewrapped, report.current), (5, 1), "{report:?}");
    let versions = check_all(&vault, &points).await;
    let target = report.target.unwrap().version;
    assert!(versions.iter().all(|v| *v == target), "{versions:?}");
}
