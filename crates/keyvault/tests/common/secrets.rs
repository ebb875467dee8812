//! The conformance suite's secret and backup behaviours (DESIGN.md R17).

use std::collections::BTreeMap;

use strongroom_envelope::WrapAlgorithm;
use strongroom_keyvault::{
    AuditOutcome, KeyType, KeyVault, MemoryKeyVault, OwnerKey, Permission, Permissions, Principal,
    SecretOptions, SecretUpdate, VaultError, VaultProperties, limits,
};

use super::{Make, RETENTION, T0, alg_for, assert_denied, create, dek, fresh, with_admin};

fn set(vault: &dyn KeyVault, who: &Principal, name: &str, value: &[u8]) -> String {
    vault
        .set_secret(who, name, value, SecretOptions::default())
        .unwrap_or_else(|e| panic!("set {name}: {e}"))
        .version
}

pub fn secrets_set_get_list(make: Make<'_>, _rsa: WrapAlgorithm) {
    let (vault, _clock, admin) = with_admin(make);
    assert!(vault.list_secrets(&admin).unwrap().is_empty());
    let options = SecretOptions {
        content_type: Some("BEK".into()),
        tags: BTreeMap::from([("DiskEncryptionKeyFileName".into(), "disk0.BEK".into())]),
        ..SecretOptions::default()
    };
    let v1 = vault
        .set_secret(&admin, "bek-disk0", &[1u8; 32], options)
        .unwrap();
    assert_eq!(v1.vault, super::VAULT);
    assert_eq!(v1.name, "bek-disk0");
    assert_eq!(v1.attributes.content_type.as_deref(), Some("BEK"));
    assert_eq!(v1.attributes.created, T0);
    assert!(v1.attributes.enabled);
    // A second set is a new version, the latest; the first stays readable.
    let v2 = set(&*vault, &admin, "bek-disk0", b"second value");
    assert_ne!(v2, v1.version);
    let latest = vault.get_secret(&admin, "bek-disk0", None).unwrap();
    assert_eq!(latest.info.version, v2);
    assert_eq!(latest.value.expose_secret(), b"second value");
    let first = vault
        .get_secret(&admin, "bek-disk0", Some(&v1.version))
        .unwrap();
    assert_eq!(first.value.expose_secret(), [1u8; 32]);
    assert_eq!(first.info, v1);
    // Debug never shows the value.
    let shown = format!("{first:?}");
    assert!(shown.contains("SecretValue(32 bytes)"), "{shown}");
    assert!(!shown.contains("1, 1, 1"), "{shown}");
    // Listing shows the latest version of each secret, versions oldest
    // first; names are case-insensitive, as key names are.
    set(&*vault, &admin, "other", b"x");
    let listed = vault.list_secrets(&admin).unwrap();
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0].version, v2);
    let versions = vault.list_secret_versions(&admin, "BEK-DISK0").unwrap();
    assert_eq!(
        versions
            .iter()
            .map(|v| v.version.as_str())
            .collect::<Vec<_>>(),
        [v1.version.as_str(), v2.as_str()]
    );
    // An empty value is a value.
    set(&*vault, &admin, "empty", b"");
    assert!(
        vault
            .get_secret(&admin, "empty", None)
            .unwrap()
            .value
            .is_empty()
    );
    // Unknown names and versions.
    assert!(matches!(
        vault.get_secret(&admin, "nope", None),
        Err(VaultError::SecretNotFound { version: None, .. })
    ));
    assert!(matches!(
        vault.get_secret(&admin, "bek-disk0", Some(&"0".repeat(32))),
        Err(VaultError::SecretNotFound {
            version: Some(_),
            ..
        })
    ));
    assert!(matches!(
        vault.get_secret(&admin, "bek-disk0", Some("v1")),
        Err(VaultError::InvalidArgument { .. })
    ));
    // Keys and secrets are separate namespaces.
    assert!(matches!(
        vault.get_key(&admin, "bek-disk0", None),
        Err(VaultError::KeyNotFound { .. })
    ));
}

pub fn secret_attributes_and_disabled_versions(make: Make<'_>, _rsa: WrapAlgorithm) {
    let (vault, clock, admin) = with_admin(make);
    let v1 = set(&*vault, &admin, "s", b"one");
    clock.advance(10);
    let updated = vault
        .update_secret(
            &admin,
            "s",
            &v1,
            SecretUpdate {
                enabled: Some(false),
                expires: Some(Some(T0 + 100)),
                content_type: Some(Some("text/plain".into())),
                ..SecretUpdate::default()
            },
        )
        .unwrap();
    assert!(!updated.attributes.enabled);
    assert_eq!(updated.attributes.updated, T0 + 10);
    assert_eq!(updated.attributes.created, T0);
    assert_eq!(
        updated.attributes.content_type.as_deref(),
        Some("text/plain")
    );
    // A disabled version's value cannot be read; listing still shows it.
    let err = vault.get_secret(&admin, "s", Some(&v1)).unwrap_err();
    assert!(
        matches!(&err, VaultError::SecretDisabled { name, version } if name == "s" && *version == v1),
        "{err:?}"
    );
    assert!(err.to_string().contains("disabled"), "{err}");
    assert_eq!(vault.list_secret_versions(&admin, "s").unwrap().len(), 1);
    // Enabled again, and past its expiry: readable, as in Azure Key Vault
    // (expiry is for the secret's users to honour), and said so.
    vault
        .update_secret(
            &admin,
            "s",
            &v1,
            SecretUpdate {
                enabled: Some(true),
                ..SecretUpdate::default()
            },
        )
        .unwrap();
    clock.advance(1_000);
    let read = vault.get_secret(&admin, "s", None).unwrap();
    assert_eq!(read.value.expose_secret(), b"one");
    assert!(!read.info.attributes.is_valid_at(T0 + 1_010));
    assert!(read.info.attributes.is_valid_at(T0 + 50));
    // Not-before must come before expiry.
    assert!(matches!(
        vault.update_secret(
            &admin,
            "s",
            &v1,
            SecretUpdate {
                not_before: Some(Some(T0 + 200)),
                ..SecretUpdate::default()
            },
        ),
        Err(VaultError::InvalidArgument { .. })
    ));
    assert!(matches!(
        vault.set_secret(
            &admin,
            "s",
            b"x",
            SecretOptions {
                not_before: Some(5),
                expires: Some(5),
                ..SecretOptions::default()
            }
        ),
        Err(VaultError::InvalidArgument { .. })
    ));
}

pub fn secret_soft_delete_recover_and_purge(make: Make<'_>, _rsa: WrapAlgorithm) {
    let (vault, clock, admin) = with_admin(make);
    let v1 = set(&*vault, &admin, "s", b"value");
    let deleted = vault.delete_secret(&admin, "s").unwrap();
    assert_eq!(deleted.deleted, T0);
    assert_eq!(deleted.scheduled_purge, T0 + RETENTION);
    assert_eq!(deleted.latest.version, v1);
    assert!(matches!(
        vault.get_secret(&admin, "s", None),
        Err(VaultError::SecretDeleted { .. })
    ));
    // The name stays taken while deleted.
    assert!(matches!(
        vault.set_secret(&admin, "s", b"new", SecretOptions::default()),
        Err(VaultError::SecretExists { deleted: true, .. })
    ));
    assert_eq!(vault.list_deleted_secrets(&admin).unwrap().len(), 1);
    assert!(vault.list_secrets(&admin).unwrap().is_empty());
    // Recovered: whole, with its value.
    vault.recover_secret(&admin, "s").unwrap();
    assert_eq!(
        vault
            .get_secret(&admin, "s", None)
            .unwrap()
            .value
            .expose_secret(),
        b"value"
    );
    assert!(matches!(
        vault.recover_secret(&admin, "s"),
        Err(VaultError::InvalidArgument { .. })
    ));
    assert!(matches!(
        vault.purge_secret(&admin, "s"),
        Err(VaultError::InvalidArgument { .. })
    ));
    // Deleted and purged: gone for good, said so; the name is free again.
    vault.delete_secret(&admin, "s").unwrap();
    vault.purge_secret(&admin, "s").unwrap();
    let err = vault.get_secret(&admin, "s", None).unwrap_err();
    assert!(matches!(err, VaultError::SecretPurged { .. }), "{err:?}");
    assert!(err.to_string().contains("purged"), "{err}");
    set(&*vault, &admin, "s", b"reborn");
    assert_eq!(vault.list_secret_versions(&admin, "s").unwrap().len(), 1);
    // The vault purges a deleted secret by itself when retention ends.
    set(&*vault, &admin, "t", b"t");
    vault.delete_secret(&admin, "t").unwrap();
    clock.advance(RETENTION);
    assert!(matches!(
        vault.get_secret(&admin, "t", None),
        Err(VaultError::SecretPurged { .. })
    ));
    assert!(vault.list_deleted_secrets(&admin).unwrap().is_empty());
    let log = vault.audit_log().unwrap();
    assert!(
        log.iter().any(
            |e| e.operation == "purgeSecret (retention ended)" && e.key.as_deref() == Some("t")
        ),
        "the automatic purge is audited"
    );
}

pub fn secret_purge_protection(make: Make<'_>, _rsa: WrapAlgorithm) {
    let (vault, clock, admin) = with_admin(make);
    vault.enable_purge_protection().unwrap();
    set(&*vault, &admin, "s", b"value");
    vault.delete_secret(&admin, "s").unwrap();
    let err = vault.purge_secret(&admin, "s").unwrap_err();
    assert!(
        matches!(err, VaultError::SecretPurgeProtected { until, .. } if until == T0 + RETENTION),
        "{err:?}"
    );
    // Still recoverable.
    clock.advance(RETENTION - 1);
    vault.recover_secret(&admin, "s").unwrap();
}

pub fn secret_input_is_bounded(make: Make<'_>, _rsa: WrapAlgorithm) {
    let (vault, _clock, admin) = with_admin(make);
    let too_big = vec![7u8; limits::MAX_SECRET_VALUE_BYTES + 1];
    super::assert_limit(
        vault.set_secret(&admin, "s", &too_big, SecretOptions::default()),
        "bytes of secret value",
        limits::MAX_SECRET_VALUE_BYTES,
    );
    set(
        &*vault,
        &admin,
        "s",
        &vec![7u8; limits::MAX_SECRET_VALUE_BYTES],
    );
    super::assert_limit(
        vault.set_secret(
            &admin,
            "s",
            b"x",
            SecretOptions {
                content_type: Some("c".repeat(limits::MAX_CONTENT_TYPE_CHARS + 1)),
                ..SecretOptions::default()
            },
        ),
        "characters in a secret content type",
        limits::MAX_CONTENT_TYPE_CHARS,
    );
    let tags = (0..=limits::MAX_TAGS)
        .map(|i| (format!("t{i}"), String::new()))
        .collect();
    super::assert_limit(
        vault.set_secret(
            &admin,
            "s",
            b"x",
            SecretOptions {
                tags,
                ..SecretOptions::default()
            },
        ),
        "tags on a secret version",
        limits::MAX_TAGS,
    );
    for bad in ["", "has space", "under_score", &"a".repeat(128)] {
        let err = vault
            .set_secret(&admin, bad, b"x", SecretOptions::default())
            .unwrap_err();
        assert!(
            matches!(&err, VaultError::InvalidArgument { reason } if reason.contains("secret name")),
            "{bad:?}: {err:?}"
        );
    }
    // Nothing refused was stored.
    assert_eq!(vault.list_secret_versions(&admin, "s").unwrap().len(), 1);
}

/// One call that needs a secret or backup `permission`, on secret `s`
/// (`gone` is a soft-deleted secret) or key `k`.
fn secret_call_needing(
    vault: &dyn KeyVault,
    who: &Principal,
    permission: Permission,
    version: &str,
    secret_backup: &[u8],
    key_backup: &[u8],
) -> Result<(), VaultError> {
    match permission {
        Permission::GetSecret => vault.get_secret(who, "s", None).map(drop),
        Permission::ListSecrets => vault.list_secret_versions(who, "s").map(drop),
        Permission::SetSecret => vault
            .set_secret(who, "s", b"new", SecretOptions::default())
            .map(drop),
        Permission::DeleteSecret => vault.delete_secret(who, "s").map(drop),
        Permission::RecoverSecret => vault.recover_secret(who, "gone").map(drop),
        Permission::PurgeSecret => vault.purge_secret(who, "gone"),
        Permission::BackupSecret => vault.backup_secret(who, "s").map(drop),
        Permission::RestoreSecret => vault.restore_secret(who, secret_backup).map(drop),
        Permission::Backup => vault.backup_key(who, "k").map(drop),
        Permission::Restore => vault.restore_key(who, key_backup).map(drop),
        other => panic!("not a secret or backup permission: {other}"),
    }
    .and_then(|()| {
        // Update needs setSecret too.
        if permission == Permission::SetSecret {
            vault
                .update_secret(who, "s", version, SecretUpdate::default())
                .map(drop)
        } else {
            Ok(())
        }
    })
}

pub fn every_missing_secret_permission_is_denied(make: Make<'_>, _rsa: WrapAlgorithm) {
    let (vault, _clock, admin) = with_admin(make);
    let version = set(&*vault, &admin, "s", b"value");
    set(&*vault, &admin, "gone", b"value");
    vault.delete_secret(&admin, "gone").unwrap();
    create(&*vault, &admin, "k", KeyType::Aes256);
    // Backups made by a vault of the same owner, so that only the
    // permission is missing.
    let owner = OwnerKey::generate().unwrap();
    vault.set_owner_key(&owner).unwrap();
    let (secret_backup, key_backup) = {
        let source = MemoryKeyVault::new(VaultProperties::new("source")).unwrap();
        source.set_owner_key(&owner).unwrap();
        source
            .set_access_policy(&admin, Permissions::all())
            .unwrap();
        set(&source, &admin, "restored-s", b"v");
        create(&source, &admin, "restored-k", KeyType::Aes256);
        (
            source.backup_secret(&admin, "restored-s").unwrap(),
            source.backup_key(&admin, "restored-k").unwrap(),
        )
    };
    let calls = [
        (Permission::GetSecret, Some("s")),
        (Permission::ListSecrets, Some("s")),
        (Permission::SetSecret, Some("s")),
        (Permission::DeleteSecret, Some("s")),
        (Permission::RecoverSecret, Some("gone")),
        (Permission::PurgeSecret, Some("gone")),
        (Permission::BackupSecret, Some("s")),
        (Permission::RestoreSecret, None),
        (Permission::Backup, Some("k")),
        (Permission::Restore, None),
    ];
    for (permission, subject) in calls {
        let who = Principal::new(format!("lacks-{permission}"));
        vault
            .set_access_policy(&who, Permissions::all().without(permission))
            .unwrap();
        let before = vault.audit_log().unwrap().len();
        let result = secret_call_needing(
            &*vault,
            &who,
            permission,
            &version,
            &secret_backup,
            &key_backup,
        );
        assert_denied(result, &who, permission, subject);
        let log = vault.audit_log().unwrap();
        assert_eq!(log.len(), before + 1, "{permission}");
        let entry = log.last().unwrap();
        assert_eq!(entry.principal, who.id());
        assert_eq!(entry.key.as_deref(), subject);
        assert!(
            matches!(&entry.outcome, AuditOutcome::Denied(why) if why.contains(permission.name())),
            "{entry:?}"
        );
    }
    // A secret permission's refusal names a secret.
    let who = Principal::new("lacks-getSecret");
    let message = vault.get_secret(&who, "s", None).unwrap_err().to_string();
    assert!(
        message.contains("getSecret permission on secret s"),
        "{message}"
    );
    // The list calls without a name.
    let who = Principal::new("lacks-listSecrets");
    assert_denied(
        vault.list_secrets(&who),
        &who,
        Permission::ListSecrets,
        None,
    );
    assert_denied(
        vault.list_deleted_secrets(&who),
        &who,
        Permission::ListSecrets,
        None,
    );
    // Nothing changed.
    assert_eq!(vault.list_secret_versions(&admin, "s").unwrap().len(), 1);
    assert_eq!(vault.list_deleted_secrets(&admin).unwrap().len(), 1);
    // The key permissions do not open secrets, nor the other way round.
    let key_user = Principal::new("key-user");
    vault
        .set_access_policy(&key_user, Permissions::key_user())
        .unwrap();
    assert_denied(
        vault.get_secret(&key_user, "s", None),
        &key_user,
        Permission::GetSecret,
        Some("s"),
    );
    let secret_reader = Principal::new("secret-reader");
    vault
        .set_access_policy(
            &secret_reader,
            Permissions::NONE.with(Permission::GetSecret),
        )
        .unwrap();
    assert_denied(
        vault.get_key(&secret_reader, "k", None),
        &secret_reader,
        Permission::Get,
        Some("k"),
    );
    // With every permission, each call goes through.
    for (permission, _) in calls {
        let result = secret_call_needing(
            &*vault,
            &admin,
            permission,
            &version,
            &secret_backup,
            &key_backup,
        );
        assert!(
            !matches!(result, Err(VaultError::AccessDenied { .. })),
            "{permission}: {result:?}"
        );
    }
}

pub fn secret_backup_restores_every_version(make: Make<'_>, _rsa: WrapAlgorithm) {
    let (vault, clock, admin) = with_admin(make);
    let v1 = vault
        .set_secret(
            &admin,
            "bek",
            &[0xB1; 32],
            SecretOptions {
                content_type: Some("BEK".into()),
                ..SecretOptions::default()
            },
        )
        .unwrap();
    clock.advance(5);
    let v2 = set(&*vault, &admin, "bek", &[0xB2; 32]);
    vault
        .update_secret(
            &admin,
            "bek",
            &v1.version,
            SecretUpdate {
                enabled: Some(false),
                ..SecretUpdate::default()
            },
        )
        .unwrap();
    let before = vault.list_secret_versions(&admin, "bek").unwrap();
    let backup = vault.backup_secret(&admin, "bek").unwrap();
    // The blob is encrypted: no value in it.
    assert!(
        !backup
            .windows(32)
            .any(|w| w == [0xB1; 32] || w == [0xB2; 32])
    );
    // While the secret exists (or is deleted), a restore is refused.
    assert!(matches!(
        vault.restore_secret(&admin, &backup),
        Err(VaultError::SecretExists { deleted: false, .. })
    ));
    vault.delete_secret(&admin, "bek").unwrap();
    assert!(matches!(
        vault.restore_secret(&admin, &backup),
        Err(VaultError::SecretExists { deleted: true, .. })
    ));
    vault.purge_secret(&admin, "bek").unwrap();
    let restored = vault.restore_secret(&admin, &backup).unwrap();
    assert_eq!(restored.version, v2);
    // The same versions, attributes and values.
    assert_eq!(vault.list_secret_versions(&admin, "bek").unwrap(), before);
    assert_eq!(
        vault
            .get_secret(&admin, "bek", Some(&v2))
            .unwrap()
            .value
            .expose_secret(),
        [0xB2; 32]
    );
    assert!(matches!(
        vault.get_secret(&admin, "bek", Some(&v1.version)),
        Err(VaultError::SecretDisabled { .. })
    ));
    let log = vault.audit_log().unwrap();
    let entry = log
        .iter()
        .rev()
        .find(|e| e.operation == "restoreSecret")
        .unwrap();
    assert_eq!(entry.outcome, AuditOutcome::Allowed);
    assert_eq!(entry.key.as_deref(), Some("bek"));
    assert_eq!(entry.version.as_deref(), Some(v2.as_str()));
    vault.verify_audit_log().unwrap();
}

pub fn key_backup_restores_every_version(make: Make<'_>, rsa: WrapAlgorithm) {
    let (vault, _clock, admin) = with_admin(make);
    for key_type in [KeyType::Aes256, KeyType::Rsa2048] {
        let name = format!("kek-{}", if key_type.is_rsa() { "rsa" } else { "aes" });
        let alg = alg_for(key_type, rsa);
        let v1 = create(&*vault, &admin, &name, key_type);
        let w1 = vault.wrap_key(&admin, &name, None, alg, &dek(1)).unwrap();
        let v2 = vault
            .rotate_key(&admin, &name, strongroom_keyvault::KeyOptions::default())
            .unwrap();
        let w2 = vault.wrap_key(&admin, &name, None, alg, &dek(2)).unwrap();
        assert_eq!(w2.version, v2.version);
        let before = vault.list_versions(&admin, &name).unwrap();
        let backup = match vault.backup_key(&admin, &name) {
            Ok(backup) => backup,
            Err(VaultError::NotExportable { name: n, backend }) => {
                // A token's keys never leave it: said plainly, naming the
                // key and the token. Only a token says so.
                assert_eq!(n, name);
                assert_ne!(backend, "software");
                return;
            }
            Err(other) => panic!("backup {name}: {other}"),
        };
        assert!(matches!(
            vault.restore_key(&admin, &backup),
            Err(VaultError::KeyExists { .. })
        ));
        vault.delete_key(&admin, &name).unwrap();
        vault.purge_key(&admin, &name).unwrap();
        let restored = vault.restore_key(&admin, &backup).unwrap();
        assert_eq!(restored.version, v2.version);
        assert_eq!(vault.list_versions(&admin, &name).unwrap(), before);
        // DEKs wrapped before the backup unwrap under the restored versions.
        for (w, byte) in [(&w1, 1), (&w2, 2)] {
            let back = vault.unwrap_wrapped(&admin, &name, alg, w).unwrap();
            assert_eq!(back.as_slice(), dek(byte));
        }
        assert_eq!(w1.version, v1.version);
    }
}

pub fn key_backup_restores_into_any_vault_of_the_owner(make: Make<'_>, rsa: WrapAlgorithm) {
    // A backup made by a software vault, restored into this backend's
    // vault given the same owner key (into a token: imported).
    let owner = OwnerKey::generate().unwrap();
    let (vault, _clock, admin) = with_admin(make);
    let source = MemoryKeyVault::new(VaultProperties::new("source")).unwrap();
    source
        .set_access_policy(&admin, Permissions::all())
        .unwrap();
    source.set_owner_key(&owner).unwrap();
    let key = create(&source, &admin, "kek", KeyType::Rsa2048);
    let wrapped = source.wrap_key(&admin, "kek", None, rsa, &dek(9)).unwrap();
    set(&source, &admin, "bek", b"bek value");
    let key_backup = source.backup_key(&admin, "kek").unwrap();
    let secret_backup = source.backup_secret(&admin, "bek").unwrap();

    // Another owner's vault (here: one that made its own owner key on its
    // first backup) refuses both, naming both owners.
    set(&*vault, &admin, "mine", b"x");
    vault.backup_secret(&admin, "mine").unwrap();
    let own = vault.owner_id().unwrap().expect("made on the first backup");
    assert_ne!(own, owner.id());
    let err = vault.restore_key(&admin, &key_backup).unwrap_err();
    assert!(
        matches!(&err, VaultError::BackupOwnerMismatch { backup_owner, vault_owner }
            if *backup_owner == owner.id() && *vault_owner == own),
        "{err:?}"
    );
    assert!(matches!(
        vault.restore_secret(&admin, &secret_backup),
        Err(VaultError::BackupOwnerMismatch { .. })
    ));
    // Its owner key never changes.
    assert!(matches!(
        vault.set_owner_key(&owner),
        Err(VaultError::InvalidArgument { .. })
    ));

    // A fresh vault given the owner's key restores both.
    let (vault, _clock) = fresh(make);
    vault.set_access_policy(&admin, Permissions::all()).unwrap();
    assert_eq!(vault.owner_id().unwrap(), None);
    vault.set_owner_key(&owner).unwrap();
    vault.set_owner_key(&owner).unwrap(); // the same key again: nothing changes
    assert_eq!(vault.owner_id().unwrap(), Some(owner.id()));
    let restored = vault.restore_key(&admin, &key_backup).unwrap();
    assert_eq!(restored.version, key.version);
    assert_eq!(restored.public, key.public);
    assert_eq!(restored.vault, super::VAULT);
    let back = vault.unwrap_wrapped(&admin, "kek", rsa, &wrapped).unwrap();
    assert_eq!(back.as_slice(), dek(9));
    vault.restore_secret(&admin, &secret_backup).unwrap();
    assert_eq!(
        vault
            .get_secret(&admin, "bek", None)
            .unwrap()
            .value
            .expose_secret(),
        b"bek value"
    );
}

pub fn tampered_backups_are_refused(make: Make<'_>, _rsa: WrapAlgorithm) {
    let (vault, _clock, admin) = with_admin(make);
    set(&*vault, &admin, "s", b"value");
    let backup = vault.backup_secret(&admin, "s").unwrap();
    vault.delete_secret(&admin, "s").unwrap();
    vault.purge_secret(&admin, "s").unwrap();
    // Every single-byte change, a cut, and trailing bytes are refused,
    // and nothing is restored.
    let mut cases: Vec<Vec<u8>> = Vec::new();
    for at in [0, 8, 9, 24, 25, 37, 40, backup.len() / 2, backup.len() - 1] {
        let mut changed = backup.clone();
        changed[at] ^= 0x01;
        cases.push(changed);
    }
    cases.push(backup[..backup.len() - 1].to_vec());
    cases.push(backup[..20].to_vec());
    cases.push(Vec::new());
    let mut longer = backup.clone();
    longer.push(0);
    cases.push(longer);
    for case in &cases {
        let err = vault.restore_secret(&admin, case).unwrap_err();
        assert!(
            matches!(
                err,
                VaultError::BackupInvalid { .. } | VaultError::BackupOwnerMismatch { .. }
            ),
            "{err:?}"
        );
        assert!(!err.to_string().is_empty());
    }
    // A secret backup is not a key backup.
    let err = vault.restore_key(&admin, &backup).unwrap_err();
    assert!(
        matches!(&err, VaultError::BackupInvalid { reason } if reason.contains("restore_secret")),
        "{err:?}"
    );
    assert!(matches!(
        vault.get_secret(&admin, "s", None),
        Err(VaultError::SecretPurged { .. })
    ));
    // The untouched backup still restores.
    vault.restore_secret(&admin, &backup).unwrap();
}
