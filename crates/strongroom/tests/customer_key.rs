//! A customer-managed key (R12–R15): preflight, the rules of change, and
//! revocation as a user lives it, with the key in a `FileKeyVault` and, for
//! revocation, on a Kryoptic PKCS#11 token too (started by
//! `strongroom-test-tokens`; the test fails without the module, which
//! `cargo build -p strongroom-kryoptic-pkcs11` builds).

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use strongroom::keyvault::{
    AttributeUpdate, FileKeyVault, KeyOptions, KeyType, KeyVault, ManualClock, Permission,
    Permissions, Pkcs11KeyVault, Principal, RootKeySource, VaultError, VaultProperties,
};
use strongroom::policy::{CustomerKey, EncryptionSettings, Problem, TransitionError};
use strongroom::{BackupOptions, Error, RecoveryVault};

const KV: &str = "contoso-kv";
const KEY: &str = "cmk";

struct Setup {
    _tmp: tempfile::TempDir,
    dir: std::path::PathBuf,
    kv: Arc<dyn KeyVault>,
    clock: Arc<ManualClock>,
    admin: Principal,
    vault: RecoveryVault,
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Where the customer key lives.
#[derive(Clone, Copy, Debug)]
enum Backend {
    /// A `FileKeyVault` in a temporary directory.
    File,
    /// A `Pkcs11KeyVault` on a fresh Kryoptic token (one per process).
    Kryoptic,
}

/// A recovery vault, and a customer key vault (purge protection off) with
/// an RSA-3072 key and an admin; the vault's identity not granted yet.
async fn setup() -> Setup {
    setup_on(Backend::File).await
}

async fn setup_on(backend: Backend) -> Setup {
    let tmp = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(now()));
    let kv: Arc<dyn KeyVault> = match backend {
        Backend::File => {
            let key_file = tmp.path().join("kv.key");
            FileKeyVault::generate_key_file(&key_file).unwrap();
            Arc::new(
                FileKeyVault::create_with_clock(
                    tmp.path().join("kv"),
                    VaultProperties::new(KV),
                    RootKeySource::KeyFile(key_file),
                    clock.clone(),
                )
                .unwrap(),
            )
        }
        Backend::Kryoptic => Arc::new(
            Pkcs11KeyVault::open_with_clock(
                strongroom_test_tokens::kryoptic().config(),
                VaultProperties::new(KV),
                clock.clone(),
            )
            .unwrap_or_else(|e| panic!("a vault on Kryoptic: {e}")),
        ),
    };
    let admin = Principal::new("admin@contoso");
    kv.set_access_policy(&admin, Permissions::all()).unwrap();
    kv.create_key(&admin, KEY, KeyType::Rsa3072, KeyOptions::default())
        .unwrap();
    let dir = tmp.path().join("vault");
    let vault = RecoveryVault::create_local(&dir, "backups").await.unwrap();
    vault.attach_key_vault(kv.clone()).unwrap();
    Setup {
        _tmp: tmp,
        dir,
        kv,
        clock,
        admin,
        vault,
    }
}

/// `setup`, fixed up and switched to the customer key, one item protected.
async fn customer_managed() -> (Setup, strongroom::Item) {
    customer_managed_on(Backend::File).await
}

async fn customer_managed_on(backend: Backend) -> (Setup, strongroom::Item) {
    let s = setup_on(backend).await;
    s.kv.enable_purge_protection().unwrap();
    s.kv.set_access_policy(&s.vault.system_identity(), Permissions::key_user())
        .unwrap();
    s.vault
        .set_encryption(EncryptionSettings::customer_managed(CustomerKey::new(
            KV, KEY,
        )))
        .await
        .unwrap();
    let item = s.vault.protect("vm-7").await.unwrap();
    (s, item)
}

fn headers(dir: &std::path::Path) -> usize {
    let mut count = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.file_name().is_some_and(|n| n == "header") {
                count += 1;
            }
        }
    }
    count
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preflight_lists_every_problem_and_nothing_changes_until_they_are_fixed() {
    let s = setup().await;
    let key = CustomerKey::new(KV, KEY);
    let refused = s
        .vault
        .set_encryption(EncryptionSettings::customer_managed(key.clone()))
        .await;
    let Err(Error::Preflight { problems, .. }) = refused else {
        panic!("{refused:?}");
    };
    let system = s.vault.system_identity();
    assert_eq!(
        problems,
        vec![
            Problem::PurgeProtectionOff,
            Problem::MissingPermission {
                principal: system.clone(),
                permission: Permission::Get
            },
            Problem::MissingPermission {
                principal: system.clone(),
                permission: Permission::WrapKey
            },
            Problem::MissingPermission {
                principal: system.clone(),
                permission: Permission::UnwrapKey
            },
        ]
    );
    let message = Error::Preflight {
        key: key.to_string(),
        problems,
    }
    .to_string();
    assert!(
        message.contains("purge protection") && message.contains("unwrapKey"),
        "{message}"
    );
    assert!(
        !s.vault
            .encryption()
            .await
            .unwrap()
            .settings()
            .is_customer_managed()
    );

    s.kv.enable_purge_protection().unwrap();
    s.kv.set_access_policy(&system, Permissions::key_user())
        .unwrap();
    assert_eq!(s.vault.preflight(&key).await.unwrap(), vec![]);
    s.vault
        .set_encryption(EncryptionSettings::customer_managed(key.clone()))
        .await
        .unwrap();
    assert_eq!(
        s.vault.encryption().await.unwrap().settings(),
        &EncryptionSettings::customer_managed(key)
    );

    // A key vault not attached is named.
    let elsewhere = CustomerKey::new("fabrikam-kv", KEY);
    assert!(matches!(
        s.vault.preflight(&elsewhere).await,
        Err(Error::NotFound { .. })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rules_of_change_hold_across_handles_and_reopen() {
    // A protection attempt first: no customer key afterwards, ever.
    let s = setup().await;
    s.kv.enable_purge_protection().unwrap();
    s.kv.set_access_policy(&s.vault.system_identity(), Permissions::key_user())
        .unwrap();
    s.vault.protect("first").await.unwrap();
    let reopened = RecoveryVault::open_local(&s.dir).await.unwrap();
    reopened.attach_key_vault(s.kv.clone()).unwrap();
    let refused = reopened
        .set_encryption(EncryptionSettings::customer_managed(CustomerKey::new(
            KV, KEY,
        )))
        .await;
    assert!(
        matches!(
            refused,
            Err(Error::Policy(TransitionError::ItemsAlreadyProtected))
        ),
        "{refused:?}"
    );
    assert!(reopened.encryption().await.unwrap().protection_attempted());

    // Customer-managed: no way back; another key is fine.
    let (s, _item) = customer_managed().await;
    let back = s
        .vault
        .set_encryption(EncryptionSettings::platform_managed())
        .await;
    assert!(
        matches!(
            back,
            Err(Error::Policy(TransitionError::NoWayBackToPlatformManaged))
        ),
        "{back:?}"
    );
    s.kv.create_key(&s.admin, "cmk-2", KeyType::Rsa2048, KeyOptions::default())
        .unwrap();
    s.vault
        .set_encryption(EncryptionSettings::customer_managed(CustomerKey::new(
            KV, "cmk-2",
        )))
        .await
        .unwrap();
    let double = s
        .vault
        .set_encryption(
            EncryptionSettings::customer_managed(CustomerKey::new(KV, "cmk-2"))
                .with_infrastructure_encryption(),
        )
        .await;
    assert!(double.is_err(), "{double:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_handles_racing_customer_key_against_first_protection_never_both_win() {
    for _ in 0..8 {
        let s = setup().await;
        s.kv.enable_purge_protection().unwrap();
        s.kv.set_access_policy(&s.vault.system_identity(), Permissions::key_user())
            .unwrap();
        let other = RecoveryVault::open_local(&s.dir).await.unwrap();
        let (set, protected) = tokio::join!(
            s.vault
                .set_encryption(EncryptionSettings::customer_managed(CustomerKey::new(
                    KV, KEY
                ))),
            other.protect("vm"),
        );
        protected.unwrap();
        let settings = s.vault.encryption().await.unwrap();
        assert!(settings.protection_attempted());
        match set {
            // The key was set before the protection was recorded.
            Ok(()) => assert!(settings.settings().is_customer_managed()),
            Err(Error::Policy(TransitionError::ItemsAlreadyProtected)) => {
                assert!(!settings.settings().is_customer_managed());
            }
            other => panic!("{other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn points_are_wrapped_under_the_customer_key_and_restore() {
    let (s, item) = customer_managed().await;
    let disk = vec![0x5a; 300_000];
    let point = s
        .vault
        .backup(&item, disk.as_slice(), BackupOptions::default())
        .await
        .unwrap();
    let keys = point.keys();
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0].vault, KV);
    assert_eq!(keys[0].name, KEY);
    assert_eq!(
        keys[0].algorithm,
        strongroom::envelope::WrapAlgorithm::RsaOaep256
    );
    let mut out = Vec::new();
    s.vault.restore(&point, &mut out).await.unwrap();
    assert!(out == disk);

    // Without the key vault attached, the point names what it needs.
    let reopened = RecoveryVault::open_local(&s.dir).await.unwrap();
    let refused = reopened.verify(&point).await;
    assert!(matches!(refused, Err(Error::NoKey { .. })), "{refused:?}");
    let message = refused.unwrap_err().to_string();
    assert!(message.contains(KV), "{message}");

    // Key health: the version holds the point's only copy.
    let health = s.vault.key_health().await.unwrap();
    let version = health.version(KV, KEY, &keys[0].version).unwrap();
    assert_eq!(version.points, 1);
    assert!(!version.safe_to_disable());
}

/// What breaks the key, and what fixes it.
struct Case {
    name: &'static str,
    /// Whether a restore (unwrap) still works while broken.
    restore_works: bool,
    /// The error a backup or restore gives, as its key vault error.
    expect: fn(&VaultError) -> bool,
    brk: fn(&Setup, &str),
    fix: fn(&Setup, &str),
}

fn set_enabled(s: &Setup, version: &str, enabled: bool) {
    s.kv.update_key(
        &s.admin,
        KEY,
        version,
        AttributeUpdate {
            enabled: Some(enabled),
            ..AttributeUpdate::default()
        },
    )
    .unwrap();
}

fn set_expiry(s: &Setup, version: &str, expires: Option<u64>) {
    s.kv.update_key(
        &s.admin,
        KEY,
        version,
        AttributeUpdate {
            expires: Some(expires),
            ..AttributeUpdate::default()
        },
    )
    .unwrap();
}

fn grant(s: &Setup, permissions: Permissions) {
    s.kv.set_access_policy(&s.vault.system_identity(), permissions)
        .unwrap();
}

const CASES: &[Case] = &[
    Case {
        name: "key disabled",
        restore_works: false,
        expect: |e| matches!(e, VaultError::KeyDisabled { .. }),
        brk: |s, v| set_enabled(s, v, false),
        fix: |s, v| set_enabled(s, v, true),
    },
    Case {
        name: "key expired",
        // As in Azure Key Vault: an expired key still unwraps (old points
        // restore), it no longer wraps.
        restore_works: true,
        expect: |e| matches!(e, VaultError::KeyExpired { .. }),
        brk: |s, v| {
            let now = now();
            set_expiry(s, v, Some(now + 60));
            s.clock.set(now + 120);
        },
        fix: |s, v| set_expiry(s, v, None),
    },
    Case {
        name: "key soft-deleted",
        restore_works: false,
        expect: |e| matches!(e, VaultError::KeyDeleted { .. }),
        brk: |s, _| drop(s.kv.delete_key(&s.admin, KEY).unwrap()),
        fix: |s, _| drop(s.kv.recover_key(&s.admin, KEY).unwrap()),
    },
    Case {
        name: "unwrapKey revoked",
        restore_works: false,
        expect: |e| matches!(e, VaultError::AccessDenied { permission, .. } if *permission == Permission::UnwrapKey),
        brk: |s, _| grant(s, Permissions::key_user().without(Permission::UnwrapKey)),
        fix: |s, _| grant(s, Permissions::key_user()),
    },
    Case {
        name: "wrapKey revoked",
        restore_works: true,
        expect: |e| matches!(e, VaultError::AccessDenied { permission, .. } if *permission == Permission::WrapKey),
        brk: |s, _| grant(s, Permissions::key_user().without(Permission::WrapKey)),
        fix: |s, _| grant(s, Permissions::key_user()),
    },
    Case {
        name: "get revoked",
        restore_works: false,
        expect: |e| matches!(e, VaultError::AccessDenied { permission, .. } if *permission == Permission::Get),
        brk: |s, _| grant(s, Permissions::key_user().without(Permission::Get)),
        fix: |s, _| grant(s, Permissions::key_user()),
    },
    Case {
        name: "identity removed",
        restore_works: false,
        expect: |e| matches!(e, VaultError::AccessDenied { .. }),
        brk: |s, _| grant(s, Permissions::NONE),
        fix: |s, _| grant(s, Permissions::key_user()),
    },
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocation_refuses_backup_and_restore_with_the_reason_and_a_fix_restores_both() {
    revocation(Backend::File).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocation_on_a_kryoptic_token_refuses_and_recovers_the_same_way() {
    revocation(Backend::Kryoptic).await;
}

async fn revocation(backend: Backend) {
    for case in CASES {
        let (s, item) = customer_managed_on(backend).await;
        let disk = vec![0x11; 70_000];
        let point = s
            .vault
            .backup(&item, disk.as_slice(), BackupOptions::default())
            .await
            .unwrap();
        let version = point.keys()[0].version.clone();
        (case.brk)(&s, &version);

        let backup = s
            .vault
            .backup(&item, disk.as_slice(), BackupOptions::default())
            .await;
        match &backup {
            Err(Error::Key { key, source }) => {
                assert!((case.expect)(source), "{}: {source:?}", case.name);
                assert!(key.contains(KEY), "{}: {key}", case.name);
            }
            other => panic!("{}: backup gave {other:?}", case.name),
        }
        assert_eq!(
            headers(&s.dir),
            1,
            "{}: nothing of the refused backup is left",
            case.name
        );
        assert_eq!(
            s.vault.points(&item).await.unwrap().len(),
            1,
            "{}",
            case.name
        );

        let mut out = Vec::new();
        let restore = s.vault.restore(&point, &mut out).await;
        if case.restore_works {
            assert_eq!(restore.unwrap(), disk.len() as u64, "{}", case.name);
        } else {
            match &restore {
                Err(Error::Key { source, .. }) => {
                    assert!((case.expect)(source), "{}: {source:?}", case.name);
                }
                other => panic!("{}: restore gave {other:?}", case.name),
            }
            assert!(out.is_empty(), "{}", case.name);
        }

        let checked = s.vault.check_keys(&point).await;
        assert_eq!(
            checked.is_ok(),
            case.restore_works,
            "{}: {checked:?}",
            case.name
        );
        (case.fix)(&s, &version);
        s.vault.check_keys(&point).await.unwrap();
        let again = s
            .vault
            .backup(&item, disk.as_slice(), BackupOptions::default())
            .await
            .unwrap_or_else(|e| panic!("{}: after the fix: {e}", case.name));
        for p in [&point, &again] {
            let mut out = Vec::new();
            s.vault.restore(p, &mut out).await.unwrap();
            assert!(out == disk, "{}", case.name);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_purged_key_s_points_are_lost_and_restore_says_so() {
    let (s, item) = customer_managed().await;
    let point = s
        .vault
        .backup(&item, [1u8; 1000].as_slice(), BackupOptions::default())
        .await
        .unwrap();
    s.kv.delete_key(&s.admin, KEY).unwrap();
    // Purge protection: not before the retention ends.
    assert!(matches!(
        s.kv.purge_key(&s.admin, KEY),
        Err(VaultError::PurgeProtected { .. })
    ));
    // Once it ends, the vault purges the key itself (an explicit purge
    // then finds it gone).
    s.clock.advance(91 * 86_400);
    match s.kv.purge_key(&s.admin, KEY) {
        Ok(()) | Err(VaultError::KeyPurged { .. }) => {}
        Err(e) => panic!("{e:?}"),
    }
    // Still listed, and checking its keys says it is lost; so does a
    // restore.
    assert_eq!(s.vault.points(&item).await.unwrap(), vec![point.clone()]);
    let checked = s.vault.check_keys(&point).await;
    assert!(
        matches!(checked, Err(Error::KeyPurged { .. })),
        "{checked:?}"
    );
    let restore = s.vault.restore(&point, Vec::new()).await;
    let Err(Error::KeyPurged { key }) = &restore else {
        panic!("{restore:?}");
    };
    assert!(key.contains(KEY));
    assert!(restore.unwrap_err().to_string().contains("lost for good"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_assigned_identity_reaches_the_key_once_the_handle_knows_it() {
    use strongroom::policy::Identity;
    let s = setup().await;
    s.kv.enable_purge_protection().unwrap();
    let uami = Principal::new("uami-backup@contoso");
    s.kv.set_access_policy(&uami, Permissions::key_user())
        .unwrap();
    let key = CustomerKey::new(KV, KEY).with_identity(Identity::UserAssigned("uami-backup".into()));
    let settings = EncryptionSettings::customer_managed(key.clone());

    // Not added to the handle: the identity is unknown.
    let refused = s.vault.set_encryption(settings.clone()).await;
    let Err(Error::Preflight { problems, .. }) = &refused else {
        panic!("{refused:?}");
    };
    assert!(
        matches!(problems.as_slice(), [Problem::IdentityUnknown(Identity::UserAssigned(name))] if name == "uami-backup"),
        "{problems:?}"
    );

    s.vault
        .add_user_assigned_identity("uami-backup", uami.clone());
    s.vault.set_encryption(settings).await.unwrap();
    let item = s.vault.protect("vm").await.unwrap();
    let point = s
        .vault
        .backup(&item, [9u8; 5000].as_slice(), BackupOptions::default())
        .await
        .unwrap();
    // The system identity has no access: the user-assigned one did it.
    assert_eq!(
        s.kv.access_policy(&s.vault.system_identity()).unwrap(),
        Permissions::NONE
    );
    let mut out = Vec::new();
    s.vault.restore(&point, &mut out).await.unwrap();
    assert_eq!(out, [9u8; 5000]);

    // Revoked from the user-assigned identity: refused, naming it.
    s.kv.set_access_policy(&uami, Permissions::NONE).unwrap();
    let restore = s.vault.restore(&point, Vec::new()).await;
    assert!(
        matches!(&restore, Err(Error::Key { source: VaultError::AccessDenied { principal, .. }, .. }) if *principal == uami),
        "{restore:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_settings_cannot_be_forged_or_rolled_back_through_the_store() {
    let (s, item) = customer_managed().await;
    let settings_dir = s.dir.join("store/settings");
    let mut records: Vec<_> = std::fs::read_dir(&settings_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    records.sort();
    // The customer key, then the protection.
    assert_eq!(records.len(), 2, "{records:?}");
    let newest = std::fs::read(&records[1]).unwrap();

    // Rolled back: the newest record deleted, or both.
    std::fs::remove_file(&records[1]).unwrap();
    let rolled = s.vault.encryption().await;
    assert!(
        matches!(rolled, Err(Error::RolledBack { .. })),
        "{rolled:?}"
    );
    let backup = s
        .vault
        .backup(&item, [1u8; 10].as_slice(), BackupOptions::default())
        .await;
    assert!(
        matches!(backup, Err(Error::RolledBack { .. })),
        "{backup:?}"
    );
    let first = std::fs::read(&records[0]).unwrap();
    std::fs::remove_file(&records[0]).unwrap();
    let reopened = RecoveryVault::open_local(&s.dir).await.unwrap();
    let rolled = reopened.encryption().await;
    assert!(
        matches!(rolled, Err(Error::RolledBack { .. })),
        "{rolled:?}"
    );
    let message = rolled.unwrap_err().to_string();
    assert!(message.contains("number 2 was written"), "{message}");
    std::fs::write(&records[0], &first).unwrap();
    std::fs::write(&records[1], &newest).unwrap();
    assert!(
        reopened
            .encryption()
            .await
            .unwrap()
            .settings()
            .is_customer_managed()
    );

    // Forged: a third record back to the platform key, without the key.
    let text = String::from_utf8(newest.clone()).unwrap();
    let forged: String = text
        .replace("\"seq\": 2", "\"seq\": 3")
        .lines()
        .collect::<Vec<_>>()
        .join("\n");
    let start = forged.find("\"key\": {").unwrap();
    let end = start + forged[start..].find("},\n      \"infrastructure").unwrap() + 1;
    let forged = format!(
        "{}\"key\": \"platform_managed\"{}",
        &forged[..start],
        &forged[end..]
    );
    assert!(
        forged.contains("\"seq\": 3") && forged.contains("platform_managed"),
        "{forged}"
    );
    let third = settings_dir.join(format!("{:020}.json", 3));
    std::fs::write(&third, forged).unwrap();
    let refused = s.vault.encryption().await;
    assert!(
        matches!(&refused, Err(Error::Corrupt { reason, .. }) if reason.contains("MAC")),
        "{refused:?}"
    );
    let backup = s
        .vault
        .backup(&item, [1u8; 10].as_slice(), BackupOptions::default())
        .await;
    assert!(matches!(backup, Err(Error::Corrupt { .. })), "{backup:?}");
    std::fs::remove_file(&third).unwrap();
    s.vault
        .backup(&item, [1u8; 10].as_slice(), BackupOptions::default())
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_versionless_key_follows_rotation_and_a_versioned_one_stays_put() {
    let (s, item) = customer_managed().await;
    let first = s
        .vault
        .backup(&item, [1u8; 2000].as_slice(), BackupOptions::default())
        .await
        .unwrap();
    let v1 = first.keys()[0].version.clone();
    let v2 =
        s.kv.rotate_key(&s.admin, KEY, KeyOptions::default())
            .unwrap()
            .version;
    let second = s
        .vault
        .backup(&item, [2u8; 2000].as_slice(), BackupOptions::default())
        .await
        .unwrap();
    assert_eq!(
        second.keys()[0].version,
        v2,
        "versionless: the latest version"
    );

    // Pinned to v1: new points stay under it after another rotation.
    s.vault
        .set_encryption(EncryptionSettings::customer_managed(
            CustomerKey::new(KV, KEY).with_version(&v1),
        ))
        .await
        .unwrap();
    s.kv.rotate_key(&s.admin, KEY, KeyOptions::default())
        .unwrap();
    let third = s
        .vault
        .backup(&item, [3u8; 2000].as_slice(), BackupOptions::default())
        .await
        .unwrap();
    assert_eq!(third.keys()[0].version, v1, "versioned: stays put");

    // Back to versionless, rewrap: every point under the latest, all
    // restore, and v1 and v2 are free to disable.
    s.vault
        .set_encryption(EncryptionSettings::customer_managed(CustomerKey::new(
            KV, KEY,
        )))
        .await
        .unwrap();
    let report = s
        .vault
        .rewrap(strongroom::RewrapOptions::default())
        .await
        .unwrap();
    assert_eq!(report.rewrapped, 3, "{report:?}");
    let latest = report.target.unwrap().version;
    assert!(latest != v1 && latest != v2);
    for (point, byte) in [(&first, 1u8), (&second, 2), (&third, 3)] {
        let point = s.vault.point(&item, point.id()).await.unwrap();
        assert_eq!(point.keys()[0].version, latest);
        let mut out = Vec::new();
        s.vault.restore(&point, &mut out).await.unwrap();
        assert_eq!(out, [byte; 2000]);
    }
    let health = s.vault.key_health().await.unwrap();
    assert!(health.version(KV, KEY, &v1).is_none() && health.version(KV, KEY, &v2).is_none());
}
