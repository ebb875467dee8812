//! Items whose disks are encrypted at the source (DESIGN.md R17), per kind:
//! none, server-side with a customer key, in the guest with a BEK, and with
//! a BEK wrapped by a KEK. The in-guest disks are really encrypted
//! (`strongroom-test-disk`, dm-crypt's aes-xts-plain64): after the BEK and
//! KEK are purged from their key vault, a restore must bring back bytes
//! that the restored BEK version opens.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use strongroom::keyvault::{
    KeyOptions, KeyType, KeyVault, MemoryKeyVault, OwnerKey, Permission, Permissions, Principal,
    SecretOptions, VaultError, VaultProperties,
};
use strongroom::{
    BackupOptions, Error, KeyReference, RecoveryPoint, SecretReference, SourceEncryption,
    blocking::RecoveryVault,
};
use strongroom_envelope::WrapAlgorithm;
use strongroom_test_disk::Disk;

/// The machine's key vault name.
const KV: &str = "vm-42-kv";

struct Fixture {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    vault: RecoveryVault,
    kv: Arc<MemoryKeyVault>,
    admin: Principal,
    identity: Principal,
}

fn fixture() -> Fixture {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("vault");
    let vault = RecoveryVault::open_or_create(&dir).unwrap();
    let kv = Arc::new(MemoryKeyVault::new(VaultProperties::new(KV)).unwrap());
    let admin = Principal::new("admin");
    kv.set_access_policy(&admin, Permissions::all()).unwrap();
    let identity = vault.as_async().system_identity();
    kv.set_access_policy(&identity, Permissions::disk_encryption_backup())
        .unwrap();
    vault.attach_key_vault(kv.clone()).unwrap();
    Fixture {
        _tmp: tmp,
        dir,
        vault,
        kv,
        admin,
        identity,
    }
}

impl Fixture {
    /// A random BEK (an AES-128-XTS key) set as secret `name`: its version.
    fn set_bek(&self, name: &str, bek: &[u8]) -> String {
        self.kv
            .set_secret(
                &self.admin,
                name,
                bek,
                SecretOptions {
                    content_type: Some("BEK".into()),
                    ..SecretOptions::default()
                },
            )
            .unwrap()
            .version
    }

    fn purge_secret(&self, name: &str) {
        self.kv.delete_secret(&self.admin, name).unwrap();
        self.kv.purge_secret(&self.admin, name).unwrap();
    }

    fn purge_key(&self, name: &str) {
        self.kv.delete_key(&self.admin, name).unwrap();
        self.kv.purge_key(&self.admin, name).unwrap();
    }

    /// Lets the vault's identity put keys back (list and restore).
    fn allow_restore(&self) {
        self.kv
            .set_access_policy(
                &self.identity,
                Permissions::disk_encryption_backup()
                    .with(Permission::Restore)
                    .with(Permission::RestoreSecret),
            )
            .unwrap();
    }

    fn restore(&self, point: &RecoveryPoint) -> Vec<u8> {
        let mut out = Vec::new();
        self.vault.restore(point, &mut out).unwrap();
        out
    }

    /// The BEK version `version` of secret `name`, read back from the key
    /// vault.
    fn bek(&self, name: &str, version: &str) -> [u8; 32] {
        let secret = self
            .kv
            .get_secret(&self.admin, name, Some(version))
            .unwrap();
        secret.value.expose_secret().try_into().unwrap()
    }

    /// The objects a point left in the store.
    fn point_dir(&self, item: &str, point: &RecoveryPoint) -> PathBuf {
        self.dir.join("store/points").join(item).join(point.id())
    }
}

fn random_bek() -> [u8; 32] {
    *OwnerKey::generate().unwrap().expose_secret()
}

fn in_guest(bek: &str, kek: Option<&str>) -> SourceEncryption {
    SourceEncryption::InGuest {
        bek: SecretReference::latest(KV, bek),
        kek: kek.map(|k| KeyReference::latest(KV, k)),
    }
}

#[test]
fn an_item_without_source_encryption_records_none() {
    let fx = fixture();
    let item = fx.vault.protect("plain").unwrap();
    assert_eq!(item.source_encryption(), &SourceEncryption::None);
    let point = fx
        .vault
        .backup(&item, &b"plain bytes"[..], BackupOptions::default())
        .unwrap();
    assert_eq!(point.source_encryption(), &SourceEncryption::None);
    assert!(!fx.point_dir("plain", &point).join("key-backups").exists());
    assert_eq!(fx.restore(&point), b"plain bytes");
    assert!(matches!(
        fx.vault.restore_disk_keys(&point, None),
        Err(Error::InvalidArgument { .. })
    ));
}

#[test]
fn server_side_encryption_is_recorded_in_every_point() {
    let fx = fixture();
    let des =
        "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/diskEncryptionSets/des-1";
    let v1 = "1".repeat(32);
    let sse = |version: &str| SourceEncryption::ServerSide {
        disk_encryption_set: des.into(),
        key: KeyReference::version("customer-kv", "des-key", version),
    };
    let item = fx.vault.protect_with("sse-disk", sse(&v1)).unwrap();
    assert_eq!(
        fx.vault.item("sse-disk").unwrap().source_encryption(),
        &sse(&v1)
    );
    // The bytes go as the platform gives them (already encrypted by it).
    let platform_bytes = vec![0xA5; 70_000];
    let first = fx
        .vault
        .backup(&item, platform_bytes.as_slice(), BackupOptions::default())
        .unwrap();
    // The set's key was rotated: the next point says so.
    let v2 = "2".repeat(32);
    let second = fx
        .vault
        .backup(
            &item,
            platform_bytes.as_slice(),
            BackupOptions::default().source_encryption(sse(&v2)),
        )
        .unwrap();
    assert_eq!(first.source_encryption(), &sse(&v1));
    assert_eq!(second.source_encryption(), &sse(&v2));
    // Listed again, from the points' headers.
    let listed = fx.vault.points(&item).unwrap();
    assert_eq!(listed[0].source_encryption(), &sse(&v1));
    assert_eq!(listed[1].source_encryption(), &sse(&v2));
    assert_eq!(fx.restore(&listed[1]), platform_bytes);
    assert!(
        !fx.point_dir("sse-disk", &first)
            .join("key-backups")
            .exists()
    );
    // A malformed reference is refused at once.
    let bad = SourceEncryption::ServerSide {
        disk_encryption_set: String::new(),
        key: KeyReference::latest("kv", "k"),
    };
    assert!(matches!(
        fx.vault.protect_with("bad", bad),
        Err(Error::InvalidArgument { .. })
    ));
}

#[test]
fn in_guest_bek_is_restored_and_opens_the_restored_disk() {
    let fx = fixture();
    let bek = random_bek();
    let version = fx.set_bek("disk0-bek", &bek);
    let disk = Disk::sample(64);
    let encrypted = disk.encrypt(&bek);
    let item = fx
        .vault
        .protect_with("bitlocker-disk", in_guest("disk0-bek", None))
        .unwrap();
    let point = fx
        .vault
        .backup(&item, encrypted.as_slice(), BackupOptions::default())
        .unwrap();
    assert_eq!(
        point.source_encryption(),
        &SourceEncryption::InGuest {
            bek: SecretReference::version(KV, "disk0-bek", &version),
            kek: None,
        }
    );
    // The point carries the BEK's backup, encrypted: the key is not in it.
    let carried =
        std::fs::read(fx.point_dir("bitlocker-disk", &point).join("key-backups")).unwrap();
    assert!(!carried.windows(32).any(|w| w == bek));

    // The BEK is lost for good in its key vault.
    fx.purge_secret("disk0-bek");
    let restored = fx.restore(&point);
    assert_eq!(restored, encrypted, "the bytes come back as they were");
    fx.allow_restore();
    let keys = fx.vault.restore_disk_keys(&point, None).unwrap();
    assert_eq!(keys.bek.key_vault, KV);
    assert_eq!(keys.bek.version, version);
    assert!(keys.bek.restored);
    assert!(keys.kek.is_none());
    // The restored BEK opens the restored disk.
    assert_eq!(
        Disk::decrypt(&restored, &fx.bek("disk0-bek", &version)),
        disk.plaintext()
    );
    // Run again: the version is there, nothing changes.
    let again = fx.vault.restore_disk_keys(&point, None).unwrap();
    assert!(!again.bek.restored);
}

#[test]
fn in_guest_bek_wrapped_by_a_kek_comes_back_with_its_kek() {
    let fx = fixture();
    let kek = fx
        .kv
        .create_key(&fx.admin, "vm-kek", KeyType::Rsa2048, KeyOptions::default())
        .unwrap();
    let bek = random_bek();
    // As Azure Disk Encryption does: the secret's value is the BEK wrapped
    // by the KEK.
    let wrapped = fx
        .kv
        .wrap_key(&fx.admin, "vm-kek", None, WrapAlgorithm::RsaOaep256, &bek)
        .unwrap();
    let bek_version = fx.set_bek("disk0-bek", &wrapped.wrapped);
    let disk = Disk::sample(32);
    let encrypted = disk.encrypt(&bek);
    let item = fx
        .vault
        .protect_with("dm-crypt-disk", in_guest("disk0-bek", Some("vm-kek")))
        .unwrap();
    let point = fx
        .vault
        .backup(&item, encrypted.as_slice(), BackupOptions::default())
        .unwrap();
    assert_eq!(
        point.source_encryption(),
        &SourceEncryption::InGuest {
            bek: SecretReference::version(KV, "disk0-bek", &bek_version),
            kek: Some(KeyReference::version(KV, "vm-kek", &kek.version)),
        }
    );

    fx.purge_secret("disk0-bek");
    fx.purge_key("vm-kek");
    fx.allow_restore();
    let restored = fx.restore(&point);
    let keys = fx.vault.restore_disk_keys(&point, None).unwrap();
    assert!(keys.bek.restored);
    let kek_back = keys.kek.unwrap();
    assert!(kek_back.restored);
    assert_eq!(kek_back.version, kek.version);
    // The restored secret, unwrapped by the restored KEK, opens the disk.
    let value = fx
        .kv
        .get_secret(&fx.admin, "disk0-bek", Some(&bek_version))
        .unwrap();
    let unwrapped = fx
        .kv
        .unwrap_key(
            &fx.admin,
            "vm-kek",
            &kek.version,
            WrapAlgorithm::RsaOaep256,
            value.value.expose_secret(),
        )
        .unwrap();
    let bek_back: [u8; 32] = unwrapped.as_slice().try_into().unwrap();
    assert_eq!(Disk::decrypt(&restored, &bek_back), disk.plaintext());
}

#[test]
fn a_rotated_bek_restores_the_version_the_point_was_taken_with() {
    let fx = fixture();
    let old_bek = random_bek();
    let old_version = fx.set_bek("disk0-bek", &old_bek);
    let disk = Disk::sample(16);
    let item = fx
        .vault
        .protect_with("rotating-disk", in_guest("disk0-bek", None))
        .unwrap();
    let point = fx
        .vault
        .backup(
            &item,
            disk.encrypt(&old_bek).as_slice(),
            BackupOptions::default(),
        )
        .unwrap();
    // The guest rotates its BEK (and re-encrypts): a new latest version.
    let new_bek = random_bek();
    let new_version = fx.set_bek("disk0-bek", &new_bek);
    let later = fx
        .vault
        .backup(
            &item,
            disk.encrypt(&new_bek).as_slice(),
            BackupOptions::default(),
        )
        .unwrap();
    let SourceEncryption::InGuest { bek: recorded, .. } = later.source_encryption() else {
        panic!("in-guest");
    };
    assert_eq!(recorded.version.as_deref(), Some(new_version.as_str()));

    // Both versions still there: nothing to put back, and the old point's
    // version is the one that opens its bytes.
    fx.allow_restore();
    let keys = fx.vault.restore_disk_keys(&point, None).unwrap();
    assert!(!keys.bek.restored);
    assert_eq!(keys.bek.version, old_version);
    let restored = fx.restore(&point);
    assert_eq!(
        Disk::decrypt(&restored, &fx.bek("disk0-bek", &old_version)),
        disk.plaintext()
    );
    assert_ne!(
        Disk::decrypt(&restored, &fx.bek("disk0-bek", &new_version)),
        disk.plaintext()
    );
    // Purged after the rotation: the old point brings back the secret as
    // it was at its backup, with the old version.
    fx.purge_secret("disk0-bek");
    let keys = fx.vault.restore_disk_keys(&point, None).unwrap();
    assert!(keys.bek.restored);
    assert_eq!(keys.bek.version, old_version);
    assert_eq!(
        Disk::decrypt(&restored, &fx.bek("disk0-bek", &old_version)),
        disk.plaintext()
    );
    // A backup can also name the version explicitly.
    let explicit = SourceEncryption::InGuest {
        bek: SecretReference::version(KV, "disk0-bek", &old_version),
        kek: None,
    };
    let pinned = fx
        .vault
        .backup(
            &item,
            &b"x"[..],
            BackupOptions::default().source_encryption(explicit.clone()),
        )
        .unwrap();
    assert_eq!(pinned.source_encryption(), &explicit);
    // A version the key vault does not have is refused.
    let unknown = SourceEncryption::InGuest {
        bek: SecretReference::version(KV, "disk0-bek", "f".repeat(32)),
        kek: None,
    };
    assert!(matches!(
        fx.vault.backup(
            &item,
            &b"x"[..],
            BackupOptions::default().source_encryption(unknown)
        ),
        Err(Error::NotFound { .. })
    ));
}

/// A source that counts the bytes read from it.
struct Counting<'a>(&'a [u8], Arc<AtomicUsize>);

impl Read for Counting<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.0.read(buf)?;
        self.1.fetch_add(n, Ordering::SeqCst);
        Ok(n)
    }
}

/// Every file under `dir` (none when it does not exist).
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out
}

#[test]
fn missing_backup_permissions_are_refused_before_data_moves_each_named() {
    let fx = fixture();
    fx.kv
        .create_key(&fx.admin, "vm-kek", KeyType::Rsa2048, KeyOptions::default())
        .unwrap();
    fx.set_bek("disk0-bek", &random_bek());
    let item = fx
        .vault
        .protect_with("locked-disk", in_guest("disk0-bek", Some("vm-kek")))
        .unwrap();
    // The identity may only read the secret.
    fx.kv
        .set_access_policy(&fx.identity, Permissions::NONE.with(Permission::GetSecret))
        .unwrap();
    let read = Arc::new(AtomicUsize::new(0));
    let data = vec![1u8; 100_000];
    let err = fx
        .vault
        .backup(
            &item,
            Counting(&data, read.clone()),
            BackupOptions::default(),
        )
        .unwrap_err();
    let Error::MissingPermissions { missing } = &err else {
        panic!("expected MissingPermissions, got {err:?}");
    };
    let named: Vec<(Permission, &str)> = missing
        .iter()
        .map(|m| (m.permission, m.object.as_str()))
        .collect();
    assert_eq!(
        named,
        [
            (Permission::ListSecrets, "secret disk0-bek"),
            (Permission::BackupSecret, "secret disk0-bek"),
            (Permission::Get, "key vm-kek"),
            (Permission::List, "key vm-kek"),
            (Permission::Backup, "key vm-kek"),
        ]
    );
    assert!(
        missing
            .iter()
            .all(|m| m.key_vault == KV && m.principal == fx.identity)
    );
    let message = err.to_string();
    for name in [
        "listSecrets",
        "backupSecret",
        "get on key vm-kek",
        "list on key",
        "backup on key",
    ] {
        assert!(message.contains(name), "{name} not in: {message}");
    }
    assert_eq!(
        read.load(Ordering::SeqCst),
        0,
        "no byte of the source was read"
    );
    assert!(
        files_under(&fx.dir.join("store/points")).is_empty(),
        "nothing was written"
    );
    assert!(fx.vault.points(&item).unwrap().is_empty());
    // Granted, the same backup goes through.
    fx.kv
        .set_access_policy(&fx.identity, Permissions::disk_encryption_backup())
        .unwrap();
    fx.vault
        .backup(
            &item,
            Counting(&data, read.clone()),
            BackupOptions::default(),
        )
        .unwrap();
    assert_eq!(read.load(Ordering::SeqCst), data.len());
}

#[test]
fn tampered_or_missing_key_backups_are_refused() {
    let fx = fixture();
    let bek = random_bek();
    fx.set_bek("disk0-bek", &bek);
    let item = fx
        .vault
        .protect_with("tampered-disk", in_guest("disk0-bek", None))
        .unwrap();
    let disk = Disk::sample(8);
    let point = fx
        .vault
        .backup(
            &item,
            disk.encrypt(&bek).as_slice(),
            BackupOptions::default(),
        )
        .unwrap();
    fx.purge_secret("disk0-bek");
    fx.allow_restore();
    let path = fx.point_dir("tampered-disk", &point).join("key-backups");
    let original = std::fs::read(&path).unwrap();
    for at in [0, 12, original.len() / 2, original.len() - 1] {
        let mut changed = original.clone();
        changed[at] ^= 0x01;
        std::fs::write(&path, &changed).unwrap();
        let err = fx.vault.restore_disk_keys(&point, None).unwrap_err();
        assert!(
            matches!(&err, Error::Integrity { reason, .. } if reason.contains("altered")),
            "{err:?}"
        );
    }
    // Nothing was put back meanwhile.
    assert!(matches!(
        fx.kv.get_secret(&fx.admin, "disk0-bek", None),
        Err(VaultError::SecretPurged { .. })
    ));
    // With the BEK purged, a new backup fails before data moves, with the
    // key vault's refusal.
    let other = fx
        .vault
        .backup(&item, &b"other"[..], BackupOptions::default());
    assert!(
        matches!(
            &other,
            Err(Error::Key {
                source: VaultError::SecretPurged { .. },
                ..
            })
        ),
        "{other:?}"
    );
    std::fs::remove_file(&path).unwrap();
    assert!(matches!(
        fx.vault.restore_disk_keys(&point, None),
        Err(Error::Integrity { reason, .. }) if reason.contains("missing")
    ));
    std::fs::write(&path, &original).unwrap();
    let keys = fx.vault.restore_disk_keys(&point, None).unwrap();
    assert!(keys.bek.restored);
}

#[test]
fn key_backups_of_another_point_do_not_open() {
    let fx = fixture();
    fx.set_bek("disk0-bek", &random_bek());
    let item = fx
        .vault
        .protect_with("swap-disk", in_guest("disk0-bek", None))
        .unwrap();
    let a = fx
        .vault
        .backup(&item, &b"a"[..], BackupOptions::default())
        .unwrap();
    let b = fx
        .vault
        .backup(&item, &b"b"[..], BackupOptions::default())
        .unwrap();
    let from_b = std::fs::read(fx.point_dir("swap-disk", &b).join("key-backups")).unwrap();
    std::fs::write(fx.point_dir("swap-disk", &a).join("key-backups"), from_b).unwrap();
    fx.allow_restore();
    assert!(matches!(
        fx.vault.restore_disk_keys(&a, None),
        Err(Error::Integrity { .. })
    ));
    // And the data of point a is untouched by it.
    assert_eq!(fx.restore(&a), b"a");
}

#[test]
fn keys_go_into_another_key_vault_of_the_same_owner_only() {
    let fx = fixture();
    let owner = OwnerKey::generate().unwrap();
    fx.kv.set_owner_key(&owner).unwrap();
    let bek = random_bek();
    let version = fx.set_bek("disk0-bek", &bek);
    let item = fx
        .vault
        .protect_with("moved-disk", in_guest("disk0-bek", None))
        .unwrap();
    let disk = Disk::sample(8);
    let point = fx
        .vault
        .backup(
            &item,
            disk.encrypt(&bek).as_slice(),
            BackupOptions::default(),
        )
        .unwrap();
    let grant = |kv: &MemoryKeyVault| {
        kv.set_access_policy(&fx.admin, Permissions::all()).unwrap();
        kv.set_access_policy(&fx.identity, Permissions::all())
            .unwrap();
    };
    // The same owner's key vault in another region.
    let other = Arc::new(MemoryKeyVault::new(VaultProperties::new("dr-kv")).unwrap());
    other.set_owner_key(&owner).unwrap();
    grant(&other);
    fx.vault.attach_key_vault(other.clone()).unwrap();
    let keys = fx.vault.restore_disk_keys(&point, Some("dr-kv")).unwrap();
    assert_eq!(keys.bek.key_vault, "dr-kv");
    assert!(keys.bek.restored);
    let value = other
        .get_secret(&fx.admin, "disk0-bek", Some(&version))
        .unwrap();
    let restored = fx.restore(&point);
    assert_eq!(
        Disk::decrypt(&restored, value.value.expose_secret().try_into().unwrap()),
        disk.plaintext()
    );
    // Another owner's key vault refuses the backup.
    let stranger = Arc::new(MemoryKeyVault::new(VaultProperties::new("stranger-kv")).unwrap());
    stranger
        .set_owner_key(&OwnerKey::generate().unwrap())
        .unwrap();
    grant(&stranger);
    fx.vault.attach_key_vault(stranger).unwrap();
    let err = fx
        .vault
        .restore_disk_keys(&point, Some("stranger-kv"))
        .unwrap_err();
    assert!(
        matches!(
            &err,
            Error::Key {
                source: VaultError::BackupOwnerMismatch { .. },
                ..
            }
        ),
        "{err:?}"
    );
    // An unattached key vault is named.
    assert!(matches!(
        fx.vault.restore_disk_keys(&point, Some("nowhere")),
        Err(Error::NotFound { .. })
    ));
}

#[test]
fn a_deleted_or_remade_bek_is_in_the_way() {
    let fx = fixture();
    fx.set_bek("disk0-bek", &random_bek());
    let item = fx
        .vault
        .protect_with("busy-disk", in_guest("disk0-bek", None))
        .unwrap();
    let point = fx
        .vault
        .backup(&item, &b"x"[..], BackupOptions::default())
        .unwrap();
    fx.allow_restore();
    // Soft-deleted: recover or purge it first.
    fx.kv.delete_secret(&fx.admin, "disk0-bek").unwrap();
    let err = fx.vault.restore_disk_keys(&point, None).unwrap_err();
    assert!(
        matches!(&err, Error::DiskKeyConflict { what } if what.contains("soft-deleted")),
        "{err:?}"
    );
    // Purged and made again: the point's version is not there.
    fx.kv.purge_secret(&fx.admin, "disk0-bek").unwrap();
    fx.set_bek("disk0-bek", &random_bek());
    let err = fx.vault.restore_disk_keys(&point, None).unwrap_err();
    assert!(
        matches!(&err, Error::DiskKeyConflict { what } if what.contains("without version")),
        "{err:?}"
    );
    // Without restore permission, the key vault's refusal says so.
    fx.kv.delete_secret(&fx.admin, "disk0-bek").unwrap();
    fx.kv.purge_secret(&fx.admin, "disk0-bek").unwrap();
    fx.kv
        .set_access_policy(&fx.identity, Permissions::disk_encryption_backup())
        .unwrap();
    let err = fx.vault.restore_disk_keys(&point, None).unwrap_err();
    assert!(
        matches!(
            &err,
            Error::Key {
                source: VaultError::AccessDenied {
                    permission: Permission::RestoreSecret,
                    ..
                },
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn key_backups_still_open_after_the_point_is_rewrapped() {
    let fx = fixture();
    let bek = random_bek();
    let version = fx.set_bek("disk0-bek", &bek);
    let item = fx
        .vault
        .protect_with("rewrapped-disk", in_guest("disk0-bek", None))
        .unwrap();
    let disk = Disk::sample(8);
    let point = fx
        .vault
        .backup(
            &item,
            disk.encrypt(&bek).as_slice(),
            BackupOptions::default(),
        )
        .unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let vault = fx.vault.as_async();
    runtime.block_on(vault.rotate_platform_key()).unwrap();
    assert!(runtime.block_on(vault.rewrap_point(&point)).unwrap());
    let point = fx.vault.point(&item, point.id()).unwrap();
    // The header is new (the DEK under the new platform key version); the
    // key backups, sealed under the same DEK, still open.
    fx.purge_secret("disk0-bek");
    fx.allow_restore();
    let keys = fx.vault.restore_disk_keys(&point, None).unwrap();
    assert!(keys.bek.restored);
    assert_eq!(
        Disk::decrypt(&fx.restore(&point), &fx.bek("disk0-bek", &version)),
        disk.plaintext()
    );
}
