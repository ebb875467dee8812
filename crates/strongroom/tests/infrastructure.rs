//! Infrastructure (double) encryption (R16): each point sealed in two
//! independent layers, the inner under a DEK wrapped by the customer key,
//! the outer under a second DEK wrapped by the platform key. Round trips at
//! the sizes where the layers' chunks line up or not, ranges, a decryption
//! by hand from docs/FORMAT.md section 9, tampering with either layer (by
//! someone without keys, and by someone holding the platform key), each
//! layer's key refused on its own, and rotation with rewrap.

use std::path::PathBuf;
use std::sync::Arc;

use strongroom::envelope::{Dek, Header, HeaderOptions, WrapAlgorithm};
use strongroom::keyvault::{
    AttributeUpdate, FileKeyVault, KeyOptions, KeyType, KeyVault, Permissions, Principal,
    RootKeySource, VaultKeyWrapper, VaultProperties,
};
use strongroom::policy::{CustomerKey, EncryptionSettings};
use strongroom::{BackupOptions, Error, RecoveryPoint, RecoveryVault, RewrapOptions};

const KV: &str = "contoso-kv";
const KEY: &str = "cmk";
const ITEM: &str = "vm-9";

struct Setup {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    kv: Arc<dyn KeyVault>,
    admin: Principal,
    vault: RecoveryVault,
    item: strongroom::Item,
}

/// A vault with a customer key (RSA-2048 in a `FileKeyVault`) and
/// infrastructure encryption, one item protected.
async fn setup() -> Setup {
    let tmp = tempfile::tempdir().unwrap();
    let key_file = tmp.path().join("kv.key");
    FileKeyVault::generate_key_file(&key_file).unwrap();
    let kv: Arc<dyn KeyVault> = Arc::new(
        FileKeyVault::create(
            tmp.path().join("kv"),
            VaultProperties::new(KV),
            RootKeySource::KeyFile(key_file),
        )
        .unwrap(),
    );
    let admin = Principal::new("admin@contoso");
    kv.set_access_policy(&admin, Permissions::all()).unwrap();
    kv.create_key(&admin, KEY, KeyType::Rsa2048, KeyOptions::default())
        .unwrap();
    kv.enable_purge_protection().unwrap();
    let dir = tmp.path().join("vault");
    let vault = RecoveryVault::create_local(&dir, "backups").await.unwrap();
    vault.attach_key_vault(kv.clone()).unwrap();
    kv.set_access_policy(&vault.system_identity(), Permissions::key_user())
        .unwrap();
    vault
        .set_encryption(
            EncryptionSettings::customer_managed(CustomerKey::new(KV, KEY))
                .with_infrastructure_encryption(),
        )
        .await
        .unwrap();
    let item = vault.protect(ITEM).await.unwrap();
    Setup {
        _tmp: tmp,
        dir,
        kv,
        admin,
        vault,
        item,
    }
}

/// Bytes that differ at every offset.
fn data(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_le_bytes()[i % 4] ^ seed)
        .collect()
}

/// Body bytes of `plain` bytes sealed in chunks of `chunk`.
fn sealed_len(plain: u64, chunk: u64) -> u64 {
    plain + 16 * plain.div_ceil(chunk).max(1)
}

/// The directory of a point's objects in the local store.
fn point_dir(s: &Setup, point: &RecoveryPoint) -> PathBuf {
    s.dir
        .join("store")
        .join("points")
        .join(ITEM)
        .join(point.id())
}

/// The platform key as someone who holds it (the platform operator, or
/// whoever stole the vault's key file) reaches it: a second handle on the
/// vault's platform key vault.
fn platform_wrapper(s: &Setup, point: &RecoveryPoint) -> VaultKeyWrapper {
    let kv: Arc<dyn KeyVault> = Arc::new(
        FileKeyVault::open(
            s.dir.join("platform-keyvault"),
            RootKeySource::KeyFile(s.dir.join("platform-keyvault.key")),
        )
        .unwrap(),
    );
    let key = &point.infrastructure_keys()[0];
    VaultKeyWrapper::new(
        kv,
        Principal::new("strongroom/platform"),
        &key.name,
        Some(&key.version),
        WrapAlgorithm::A256Kw,
    )
    .unwrap()
}

fn customer_wrapper(s: &Setup, point: &RecoveryPoint) -> VaultKeyWrapper {
    let key = &point.keys()[0];
    VaultKeyWrapper::new(
        s.kv.clone(),
        s.admin.clone(),
        &key.name,
        Some(&key.version),
        WrapAlgorithm::RsaOaep256,
    )
    .unwrap()
}

async fn restored(vault: &RecoveryVault, point: &RecoveryPoint) -> Result<Vec<u8>, Error> {
    let mut out = Vec::new();
    vault.restore(point, &mut out).await.map(|_| out)
}

fn integrity(result: Result<impl std::fmt::Debug, Error>, what: &str) -> String {
    match result {
        Err(Error::Integrity { reason, .. }) => reason,
        other => panic!("{what}: expected an integrity error, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn points_round_trip_through_both_layers_where_their_chunks_line_up_and_where_not() {
    let s = setup().await;
    let chunk = 4096u64;
    let part = 8 * 1024 * 1024;
    // 4080 and 8160 bytes seal to exactly one and two 4 KiB chunks of
    // inner body: the outer layer's final chunk is then a whole chunk. The
    // others: empty, one byte, around a chunk, and over one and two parts
    // (the outer layer holds bytes back across parts).
    for len in [0, 1, 4080, 4081, 4096, 8160, part + 1, 2 * part + 12_345] {
        let disk = data(len, len as u8);
        let options = BackupOptions::default().chunk_size(chunk as usize).unwrap();
        let point = s
            .vault
            .backup(&s.item, disk.as_slice(), options)
            .await
            .unwrap();
        assert!(point.infrastructure_encrypted(), "{len}");
        assert_eq!(point.keys()[0].vault, KV);
        let platform = &point.infrastructure_keys()[0];
        assert_eq!(platform.algorithm, WrapAlgorithm::A256Kw);
        assert_ne!(platform.vault, KV);
        // Two layers of tags on disk: the inner body sealed again.
        let body = std::fs::metadata(point_dir(&s, &point).join("body"))
            .unwrap()
            .len();
        assert_eq!(
            body,
            sealed_len(sealed_len(len as u64, chunk), chunk),
            "{len}"
        );
        // Listed as written.
        let listed = s.vault.point(&s.item, point.id()).await.unwrap();
        assert_eq!(listed, point);
        assert!(restored(&s.vault, &point).await.unwrap() == disk, "{len}");
        assert_eq!(s.vault.verify(&point).await.unwrap(), len as u64);
        // Ranges: inside a chunk, across inner chunks (and so across the
        // outer ones), the last bytes.
        for (start, end) in [
            (0, len.min(10)),
            (len / 3, (len / 3 + 5000).min(len)),
            (len.saturating_sub(7), len),
        ] {
            let mut out = Vec::new();
            s.vault
                .restore_range(&point, start as u64..end as u64, &mut out)
                .await
                .unwrap();
            assert!(out == disk[start..end], "{len}: {start}..{end}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_point_opens_by_hand_as_docs_format_section_9_says() {
    let s = setup().await;
    let disk = data(3 * 1024 * 1024 + 77, 3);
    let point = s
        .vault
        .backup(&s.item, disk.as_slice(), BackupOptions::default())
        .await
        .unwrap();
    let dir = point_dir(&s, &point);
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["infrastructure_encryption"], true);

    // The outer stream: `outer-header` over `body`, under the platform key.
    let platform = platform_wrapper(&s, &point);
    let outer = Header::from_bytes(&std::fs::read(dir.join("outer-header")).unwrap())
        .unwrap()
        .open(&[&platform])
        .unwrap();
    let metadata = outer.header().metadata();
    assert_eq!(metadata["strongroom.layer"], "infrastructure");
    assert_eq!(metadata["strongroom.vault"], s.vault.id());
    assert_eq!(metadata["strongroom.item"], ITEM);
    assert_eq!(metadata["strongroom.point"], point.id());
    let body = std::fs::read(dir.join("body")).unwrap();
    let mut inner_body = vec![0u8; outer.plaintext_len(body.len() as u64).unwrap() as usize];
    outer.decrypt_slice(&body, &mut inner_body, 2).unwrap();

    // Its plaintext is the inner stream's body, under `header` and the
    // customer key; the inner header says there are two layers.
    let customer = customer_wrapper(&s, &point);
    let inner = Header::from_bytes(&std::fs::read(dir.join("header")).unwrap())
        .unwrap()
        .open(&[&customer])
        .unwrap();
    assert_eq!(inner.header().metadata()["strongroom.layers"], "2");
    assert!(!inner.header().metadata().contains_key("strongroom.layer"));
    let mut plain = vec![0u8; inner.plaintext_len(inner_body.len() as u64).unwrap() as usize];
    inner.decrypt_slice(&inner_body, &mut plain, 2).unwrap();
    assert!(plain == disk);

    // Each layer needs its own key: the platform key does not open the
    // inner header, nor the customer key the outer one.
    let wrong = Header::from_bytes(&std::fs::read(dir.join("header")).unwrap())
        .unwrap()
        .open(&[&platform]);
    assert!(wrong.is_err());
    let wrong = Header::from_bytes(&std::fs::read(dir.join("outer-header")).unwrap())
        .unwrap()
        .open(&[&customer]);
    assert!(wrong.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampering_with_either_layer_is_detected() {
    let s = setup().await;
    let chunk = 4096;
    let disk = data(10 * chunk + 100, 9);
    let options = || BackupOptions::default().chunk_size(chunk).unwrap();
    let point = s
        .vault
        .backup(&s.item, disk.as_slice(), options())
        .await
        .unwrap();
    let dir = point_dir(&s, &point);
    let read = |name: &str| std::fs::read(dir.join(name)).unwrap();
    let write = |name: &str, bytes: &[u8]| std::fs::write(dir.join(name), bytes).unwrap();
    let (header, outer_header, body, manifest) = (
        read("header"),
        read("outer-header"),
        read("body"),
        read("manifest.json"),
    );
    let put_back = || {
        write("header", &header);
        write("outer-header", &outer_header);
        write("body", &body);
        write("manifest.json", &manifest);
    };

    // Without any key: a byte of the stored body (the outer layer).
    let mut bad = body.clone();
    bad[5 * (chunk + 16) + 3] ^= 1;
    write("body", &bad);
    let reason = integrity(restored(&s.vault, &point).await, "outer body byte");
    assert!(reason.contains("infrastructure layer"), "{reason}");
    integrity(s.vault.verify(&point).await, "verify");
    integrity(
        s.vault
            .restore_range(&point, 0..disk.len() as u64, &mut Vec::new())
            .await,
        "range",
    );
    put_back();

    // A byte of either header.
    for name in ["header", "outer-header"] {
        let mut bad = read(name);
        let at = bad.len() - 40;
        bad[at] ^= 1;
        write(name, &bad);
        integrity(restored(&s.vault, &point).await, name);
        put_back();
    }

    // The headers swapped (each still opens under its own key vault's key
    // only, so the data header moved to the outer place opens nowhere);
    // the outer header of another point of the same vault: another point.
    write("outer-header", &header);
    assert!(restored(&s.vault, &point).await.is_err());
    put_back();
    let other = s
        .vault
        .backup(&s.item, disk.as_slice(), options())
        .await
        .unwrap();
    write(
        "outer-header",
        &std::fs::read(point_dir(&s, &other).join("outer-header")).unwrap(),
    );
    let reason = integrity(restored(&s.vault, &point).await, "other point's");
    assert!(reason.contains("another recovery point"), "{reason}");
    put_back();
    assert!(restored(&s.vault, &point).await.unwrap() == disk);

    // Holding the platform key: open the outer layer, change the inner
    // body, seal it again under a fresh outer DEK with the same metadata.
    // The outer layer is then valid; the inner layer refuses.
    let platform = platform_wrapper(&s, &point);
    let opened = Header::from_bytes(&outer_header)
        .unwrap()
        .open(&[&platform])
        .unwrap();
    let mut inner_body = vec![0u8; opened.plaintext_len(body.len() as u64).unwrap() as usize];
    opened.decrypt_slice(&body, &mut inner_body, 2).unwrap();
    let reseal = |inner_body: &[u8]| {
        let mut options = HeaderOptions::default().chunk_size(chunk).unwrap();
        for (k, v) in opened.header().metadata() {
            options = options.metadata(k, v);
        }
        let sealing = Header::create(Dek::generate().unwrap(), &[&platform], &options).unwrap();
        let header = sealing.header().as_bytes().to_vec();
        let mut body = vec![0u8; sealing.body_len(inner_body.len() as u64).unwrap() as usize];
        sealing.encrypt_slice(inner_body, &mut body, 2).unwrap();
        (header, body)
    };
    // As a control, resealed unchanged it restores: the attack is sound.
    let (h, b) = reseal(&inner_body);
    write("outer-header", &h);
    write("body", &b);
    assert!(restored(&s.vault, &point).await.unwrap() == disk);
    // One inner byte changed: refused, in every reading path.
    inner_body[3 * (chunk + 16) + 7] ^= 0x80;
    let (h, b) = reseal(&inner_body);
    write("outer-header", &h);
    write("body", &b);
    let reason = integrity(restored(&s.vault, &point).await, "inner byte");
    assert!(!reason.contains("infrastructure layer"), "{reason}");
    integrity(s.vault.verify(&point).await, "inner byte, verify");
    integrity(
        s.vault
            .restore_range(
                &point,
                3 * chunk as u64..3 * chunk as u64 + 10,
                &mut Vec::new(),
            )
            .await,
        "inner byte, range",
    );
    inner_body[3 * (chunk + 16) + 7] ^= 0x80;

    // Stripping the outer layer: the inner body stored as the body and
    // the manifest edited to match. The data header says, under the
    // customer key, that there are two layers.
    write("body", &inner_body);
    std::fs::remove_file(dir.join("outer-header")).unwrap();
    let mut m: serde_json::Value = serde_json::from_slice(&manifest).unwrap();
    m.as_object_mut()
        .unwrap()
        .remove("infrastructure_encryption");
    m["body_size"] = serde_json::json!(inner_body.len());
    write("manifest.json", &serde_json::to_vec(&m).unwrap());
    let stripped = s.vault.point(&s.item, point.id()).await.unwrap();
    assert!(!stripped.infrastructure_encrypted());
    let reason = integrity(restored(&s.vault, &stripped).await, "stripped");
    assert!(reason.contains("stripped"), "{reason}");
    integrity(
        s.vault
            .restore_range(&stripped, 0..10, &mut Vec::new())
            .await,
        "stripped, range",
    );
    integrity(s.vault.check_keys(&stripped).await, "stripped, check_keys");

    // The manifest claiming a layer the point lacks: the outer header is
    // missing, and the point is reported damaged.
    put_back();
    std::fs::remove_file(dir.join("outer-header")).unwrap();
    let listed = s.vault.point(&s.item, point.id()).await;
    assert!(matches!(listed, Err(Error::Corrupt { .. })), "{listed:?}");
    put_back();
    assert!(restored(&s.vault, &point).await.unwrap() == disk);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_layer_s_key_is_needed_and_key_health_counts_both() {
    let s = setup().await;
    let disk = data(100_000, 5);
    // A second platform key version, so that one can be disabled (the
    // first holds the vault's settings key).
    let platform_v2 = s.vault.rotate_platform_key().await.unwrap();
    let point = s
        .vault
        .backup(&s.item, disk.as_slice(), BackupOptions::default())
        .await
        .unwrap();
    let platform = point.infrastructure_keys()[0].clone();
    assert_eq!(platform.version, platform_v2);
    let customer = point.keys()[0].clone();

    // Key health: each layer's version holds the only copy of its DEK.
    let health = s.vault.key_health().await.unwrap();
    let outer = health
        .version(&platform.vault, &platform.name, &platform.version)
        .unwrap();
    assert_eq!(
        outer.sole_copy_points,
        [format!("{ITEM}/{} (infrastructure layer)", point.id())]
    );
    let inner = health
        .version(&customer.vault, &customer.name, &customer.version)
        .unwrap();
    assert_eq!(inner.sole_copy_points, [format!("{ITEM}/{}", point.id())]);
    let refused = s
        .vault
        .disable_key_version(&platform.vault, &platform.name, &platform.version, false)
        .await;
    assert!(
        matches!(refused, Err(Error::KeyStillNeeded { .. })),
        "{refused:?}"
    );

    // The customer key disabled: the outer layer still opens, the point
    // does not.
    s.kv.update_key(
        &s.admin,
        KEY,
        &customer.version,
        AttributeUpdate {
            enabled: Some(false),
            ..AttributeUpdate::default()
        },
    )
    .unwrap();
    let result = restored(&s.vault, &point).await;
    assert!(matches!(result, Err(Error::Key { .. })), "{result:?}");
    assert!(matches!(
        s.vault.check_keys(&point).await,
        Err(Error::Key { .. })
    ));
    s.kv.update_key(
        &s.admin,
        KEY,
        &customer.version,
        AttributeUpdate {
            enabled: Some(true),
            ..AttributeUpdate::default()
        },
    )
    .unwrap();
    assert!(restored(&s.vault, &point).await.unwrap() == disk);

    // The platform key version disabled (forced): the customer key still
    // opens the inner header, the point does not.
    s.vault
        .disable_key_version(&platform.vault, &platform.name, &platform.version, true)
        .await
        .unwrap();
    let result = restored(&s.vault, &point).await;
    assert!(matches!(result, Err(Error::Key { .. })), "{result:?}");
    assert!(matches!(
        s.vault.restore_range(&point, 0..10, &mut Vec::new()).await,
        Err(Error::Key { .. })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotating_both_keys_and_rewrapping_moves_both_headers_and_frees_the_old_versions() {
    let s = setup().await;
    let mut points = Vec::new();
    for i in 0..3u8 {
        let disk = data(50_000 + usize::from(i), i);
        let point = s
            .vault
            .backup(&s.item, disk.as_slice(), BackupOptions::default())
            .await
            .unwrap();
        points.push((point, disk));
    }
    let old_customer = points[0].0.keys()[0].clone();
    let old_platform = points[0].0.infrastructure_keys()[0].clone();
    let body_before = std::fs::read(point_dir(&s, &points[0].0).join("body")).unwrap();

    // Only the platform key rotated: the job rewrites the outer headers.
    let platform_v2 = s.vault.rotate_platform_key().await.unwrap();
    let report = s.vault.rewrap(RewrapOptions::default()).await.unwrap();
    assert_eq!(report.rewrapped, 3, "{report:?}");
    assert!(report.skipped.is_empty(), "{report:?}");
    assert_eq!(report.infrastructure_target.unwrap().version, platform_v2);
    assert_eq!(report.target.unwrap(), old_customer);
    for (point, _) in &points {
        let now = s.vault.point(&s.item, point.id()).await.unwrap();
        assert_eq!(now.keys()[0], old_customer);
        assert_eq!(now.infrastructure_keys()[0].version, platform_v2);
    }
    // Then the customer key: the data headers move too; a second job
    // finds nothing to do.
    let customer_v2 =
        s.kv.rotate_key(&s.admin, KEY, KeyOptions::default())
            .unwrap()
            .version;
    let report = s.vault.rewrap(RewrapOptions::default()).await.unwrap();
    assert_eq!((report.rewrapped, report.current), (3, 0), "{report:?}");
    let report = s.vault.rewrap(RewrapOptions::default()).await.unwrap();
    assert_eq!((report.rewrapped, report.current), (0, 3), "{report:?}");

    // The bodies were not touched, and the old versions are free.
    assert_eq!(
        std::fs::read(point_dir(&s, &points[0].0).join("body")).unwrap(),
        body_before
    );
    let health = s.vault.key_health().await.unwrap();
    assert!(
        health
            .version(
                &old_platform.vault,
                &old_platform.name,
                &old_platform.version
            )
            .is_none()
    );
    assert!(health.version(KV, KEY, &old_customer.version).is_none());
    // (The vault's identity may not update the customer's key: its admin
    // disables the version.)
    s.kv.update_key(
        &s.admin,
        KEY,
        &old_customer.version,
        AttributeUpdate {
            enabled: Some(false),
            ..AttributeUpdate::default()
        },
    )
    .unwrap();
    for (point, disk) in &points {
        let now = s.vault.point(&s.item, point.id()).await.unwrap();
        assert_eq!(now.keys()[0].version, customer_v2);
        assert!(restored(&s.vault, &now).await.unwrap() == *disk);
    }

    // A job limited to the points under one version of the platform key
    // finds them by their outer layer.
    let platform_v3 = s.vault.rotate_platform_key().await.unwrap();
    let report = s
        .vault
        .rewrap(RewrapOptions::default().from_version(
            &old_platform.vault,
            &old_platform.name,
            &platform_v2,
        ))
        .await
        .unwrap();
    assert_eq!(report.rewrapped, 3, "{report:?}");
    s.vault
        .disable_key_version(&old_platform.vault, &old_platform.name, &platform_v2, false)
        .await
        .unwrap();
    for (point, disk) in &points {
        let now = s.vault.point(&s.item, point.id()).await.unwrap();
        assert_eq!(now.infrastructure_keys()[0].version, platform_v3);
        assert!(restored(&s.vault, &now).await.unwrap() == *disk);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_point_removes_both_headers_first() {
    let s = setup().await;
    let point = s
        .vault
        .backup(&s.item, [7u8; 5000].as_slice(), BackupOptions::default())
        .await
        .unwrap();
    let dir = point_dir(&s, &point);
    assert!(dir.join("outer-header").exists());
    s.vault.delete_point(&point).await.unwrap();
    for name in ["header", "outer-header", "manifest.json", "body"] {
        assert!(!dir.join(name).exists(), "{name}");
    }
    assert!(s.vault.points(&s.item).await.unwrap().is_empty());
}
