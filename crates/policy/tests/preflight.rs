//! Preflight (R13) against real key vaults: a correct setup passes, every
//! problem is reported, all at once.

mod common;

use std::sync::Arc;

use common::{KEY, KV, NOW, ReportsSoftDeleteOff, Setup};
use strongroom_envelope::WrapAlgorithm;
use strongroom_keyvault::{
    AttributeUpdate, FileKeyVault, KeyOperation, KeyOptions, KeyType, KeyVault, ManualClock,
    MemoryKeyVault, Permission, Permissions, Principal, RootKeySource, VaultError, VaultProperties,
};
use strongroom_policy::{
    CustomerKey, Identity, InvalidField, Problem, SettingsField, VaultIdentities, preflight,
};

fn versioned(setup: &Setup) -> CustomerKey {
    setup.reference().with_version(setup.key.version.clone())
}

#[test]
fn a_correct_setup_has_no_problem() {
    let setup = Setup::new();
    assert_eq!(
        preflight(&setup.kv, &setup.identities, &setup.reference(), NOW),
        []
    );
    assert_eq!(
        preflight(&setup.kv, &setup.identities, &versioned(&setup), NOW),
        []
    );
    // And it really works: the identity wraps and unwraps under the key.
    let wrapped = setup
        .kv
        .wrap_key(
            &setup.system,
            KEY,
            None,
            WrapAlgorithm::RsaOaep256,
            &[1; 32],
        )
        .unwrap();
    setup
        .kv
        .unwrap_wrapped(&setup.system, KEY, WrapAlgorithm::RsaOaep256, &wrapped)
        .unwrap();
}

#[test]
fn a_correct_user_assigned_identity_has_no_problem() {
    let setup = Setup::new();
    let uami = Principal::new("uami-object-id-1");
    setup
        .kv
        .set_access_policy(&uami, Permissions::key_user())
        .unwrap();
    let identities = VaultIdentities::new().with_user_assigned("uami-backup", uami);
    let key = setup
        .reference()
        .with_identity(Identity::UserAssigned("uami-backup".into()));
    assert_eq!(preflight(&setup.kv, &identities, &key, NOW), []);
}

#[test]
fn several_problems_are_all_listed() {
    // A key vault without purge protection, an AES key that is disabled,
    // expired and permits only wrapKey, and an identity with get only.
    let clock = Arc::new(ManualClock::new(NOW));
    let kv = MemoryKeyVault::with_clock(VaultProperties::new(KV), clock.clone()).unwrap();
    let admin = Principal::new("admin");
    kv.set_access_policy(&admin, Permissions::all()).unwrap();
    let options = KeyOptions {
        expires: Some(NOW + 10),
        operations: vec![KeyOperation::WrapKey],
        ..KeyOptions::default()
    };
    let key = kv
        .create_key(&admin, KEY, KeyType::Aes256, options)
        .unwrap();
    kv.update_key(
        &admin,
        KEY,
        &key.version,
        AttributeUpdate {
            enabled: Some(false),
            ..AttributeUpdate::default()
        },
    )
    .unwrap();
    clock.advance(60);
    let system = Principal::new("backup-vault-7/system");
    kv.set_access_policy(&system, Permissions::NONE.with(Permission::Get))
        .unwrap();
    let identities = VaultIdentities::new().with_system(system.clone());

    let problems = preflight(&kv, &identities, &CustomerKey::new(KV, KEY), NOW + 60);
    let version = key.version.clone();
    assert_eq!(
        problems,
        [
            Problem::PurgeProtectionOff,
            Problem::MissingPermission {
                principal: system.clone(),
                permission: Permission::WrapKey
            },
            Problem::MissingPermission {
                principal: system,
                permission: Permission::UnwrapKey
            },
            Problem::NotRsa {
                key_type: KeyType::Aes256
            },
            Problem::KeyDisabled {
                name: KEY.into(),
                version: version.clone()
            },
            Problem::Expired {
                name: KEY.into(),
                version: version.clone(),
                expires: NOW + 10
            },
            Problem::OperationNotPermitted {
                name: KEY.into(),
                version,
                operation: KeyOperation::UnwrapKey
            },
        ]
    );
}

#[test]
fn an_unknown_system_identity() {
    let setup = Setup::new();
    let problems = preflight(&setup.kv, &VaultIdentities::new(), &setup.reference(), NOW);
    assert_eq!(
        problems,
        [Problem::IdentityUnknown(Identity::SystemAssigned)]
    );
    assert_eq!(
        problems[0].to_string(),
        "the vault has no system-assigned identity: enable it on the vault, or pick an identity the vault has"
    );
}

#[test]
fn an_unknown_user_assigned_identity() {
    let setup = Setup::new();
    let identities = setup
        .identities
        .clone()
        .with_user_assigned("uami-backup", Principal::new("uami-backup"));
    let key = setup
        .reference()
        .with_identity(Identity::UserAssigned("uami-other".into()));
    let problems = preflight(&setup.kv, &identities, &key, NOW);
    assert_eq!(
        problems,
        [Problem::IdentityUnknown(Identity::UserAssigned(
            "uami-other".into()
        ))]
    );
    assert_eq!(
        problems[0].to_string(),
        "the vault has no user-assigned identity uami-other: enable it on the vault, or pick an identity the vault has"
    );
}

#[test]
fn each_missing_permission_is_its_own_problem() {
    let setup = Setup::new();
    setup
        .kv
        .set_access_policy(&setup.system, Permissions::NONE)
        .unwrap();
    let problems = preflight(&setup.kv, &setup.identities, &setup.reference(), NOW);
    let missing: Vec<Permission> = problems
        .iter()
        .map(|p| match p {
            Problem::MissingPermission {
                principal,
                permission,
            } => {
                assert_eq!(principal, &setup.system);
                *permission
            }
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert_eq!(
        missing,
        [Permission::Get, Permission::WrapKey, Permission::UnwrapKey]
    );
}

#[test]
fn without_get_the_key_is_not_read() {
    let setup = Setup::new();
    // The key has a problem of its own, which stays unseen without get.
    setup
        .kv
        .update_key(
            &setup.admin,
            KEY,
            &setup.key.version,
            AttributeUpdate {
                enabled: Some(false),
                ..AttributeUpdate::default()
            },
        )
        .unwrap();
    setup
        .kv
        .set_access_policy(
            &setup.system,
            Permissions::key_user().without(Permission::Get),
        )
        .unwrap();
    let problems = preflight(&setup.kv, &setup.identities, &setup.reference(), NOW);
    assert_eq!(
        problems,
        [Problem::MissingPermission {
            principal: setup.system.clone(),
            permission: Permission::Get
        }]
    );
    // No denied `get` was made as the identity.
    let log = setup.kv.audit_log().unwrap();
    assert!(
        !log.iter()
            .any(|e| e.principal == setup.system.id() && e.operation == "get")
    );

    // Once granted, the key's own problem shows.
    setup
        .kv
        .set_access_policy(&setup.system, Permissions::key_user())
        .unwrap();
    let problems = preflight(&setup.kv, &setup.identities, &setup.reference(), NOW);
    assert_eq!(
        problems,
        [Problem::KeyDisabled {
            name: KEY.into(),
            version: setup.key.version.clone()
        }]
    );
}

#[test]
fn purge_protection_off() {
    let kv = MemoryKeyVault::new(VaultProperties::new(KV)).unwrap();
    let admin = Principal::new("admin");
    kv.set_access_policy(&admin, Permissions::all()).unwrap();
    kv.create_key(&admin, KEY, KeyType::Rsa2048, KeyOptions::default())
        .unwrap();
    let identities = VaultIdentities::new().with_system(admin);
    assert_eq!(
        preflight(&kv, &identities, &CustomerKey::new(KV, KEY), NOW),
        [Problem::PurgeProtectionOff]
    );
}

#[test]
fn the_wrong_key_vault_is_reported_and_nothing_else_of_it_checked() {
    let setup = Setup::new();
    // The other vault would also lack the key, but that says nothing about
    // the vault the reference names.
    let key = CustomerKey::new("fabrikam-kv", "no-such-key");
    let problems = preflight(&setup.kv, &setup.identities, &key, NOW);
    assert_eq!(
        problems,
        [Problem::WrongKeyVault {
            expected: "fabrikam-kv".into(),
            found: KV.into()
        }]
    );
    // The identity is the vault's own question: still checked.
    let problems = preflight(&setup.kv, &VaultIdentities::new(), &key, NOW);
    assert_eq!(problems.len(), 2);
    assert_eq!(
        problems[1],
        Problem::IdentityUnknown(Identity::SystemAssigned)
    );
}

#[test]
fn a_key_that_does_not_exist() {
    let setup = Setup::new();
    let key = CustomerKey::new(KV, "other");
    assert_eq!(
        preflight(&setup.kv, &setup.identities, &key, NOW),
        [Problem::KeyNotFound {
            name: "other".into(),
            version: None
        }]
    );
}

#[test]
fn a_version_that_does_not_exist() {
    let setup = Setup::new();
    let missing = "0123456789abcdef0123456789abcdef";
    assert_ne!(setup.key.version, missing);
    let key = setup.reference().with_version(missing);
    let problems = preflight(&setup.kv, &setup.identities, &key, NOW);
    assert_eq!(
        problems,
        [Problem::KeyNotFound {
            name: KEY.into(),
            version: Some(missing.into())
        }]
    );
    assert_eq!(
        problems[0].to_string(),
        format!(
            "key cmk has no version {missing}: reference an existing version, or leave the version out to follow the latest"
        )
    );
    // A version of a form the vault never hands out cannot exist either.
    let key = setup.reference().with_version("v1");
    assert_eq!(
        preflight(&setup.kv, &setup.identities, &key, NOW),
        [Problem::KeyNotFound {
            name: KEY.into(),
            version: Some("v1".into())
        }]
    );
}

#[test]
fn a_deleted_key() {
    let setup = Setup::new();
    setup.kv.delete_key(&setup.admin, KEY).unwrap();
    assert_eq!(
        preflight(&setup.kv, &setup.identities, &setup.reference(), NOW),
        [Problem::KeyDeleted { name: KEY.into() }]
    );
}

#[test]
fn a_purged_key() {
    // Purge protection would keep it: this vault has it off.
    let kv = MemoryKeyVault::new(VaultProperties::new(KV)).unwrap();
    let admin = Principal::new("admin");
    kv.set_access_policy(&admin, Permissions::all()).unwrap();
    kv.create_key(&admin, KEY, KeyType::Rsa2048, KeyOptions::default())
        .unwrap();
    kv.delete_key(&admin, KEY).unwrap();
    kv.purge_key(&admin, KEY).unwrap();
    let identities = VaultIdentities::new().with_system(admin);
    assert_eq!(
        preflight(&kv, &identities, &CustomerKey::new(KV, KEY), NOW),
        [
            Problem::PurgeProtectionOff,
            Problem::KeyPurged { name: KEY.into() }
        ]
    );
}

#[test]
fn an_aes_key_is_not_rsa() {
    let setup = Setup::with_key(KeyType::Aes256, KeyOptions::default());
    let problems = preflight(&setup.kv, &setup.identities, &setup.reference(), NOW);
    assert_eq!(
        problems,
        [Problem::NotRsa {
            key_type: KeyType::Aes256
        }]
    );
    assert_eq!(
        problems[0].to_string(),
        "the key is AES-256, not RSA: use an RSA 2048, 3072 or 4096 key"
    );
}

#[test]
fn every_accepted_rsa_size_passes() {
    let setup = Setup::with_key(KeyType::Rsa3072, KeyOptions::default());
    assert_eq!(
        preflight(&setup.kv, &setup.identities, &setup.reference(), NOW),
        []
    );
}

#[test]
fn a_disabled_version() {
    let setup = Setup::new();
    setup
        .kv
        .update_key(
            &setup.admin,
            KEY,
            &setup.key.version,
            AttributeUpdate {
                enabled: Some(false),
                ..AttributeUpdate::default()
            },
        )
        .unwrap();
    assert_eq!(
        preflight(&setup.kv, &setup.identities, &versioned(&setup), NOW),
        [Problem::KeyDisabled {
            name: KEY.into(),
            version: setup.key.version.clone()
        }]
    );
}

#[test]
fn versionless_checks_the_newest_version() {
    let setup = Setup::new();
    let newest = setup
        .kv
        .rotate_key(
            &setup.admin,
            KEY,
            KeyOptions {
                enabled: false,
                ..KeyOptions::default()
            },
        )
        .unwrap();
    // Versionless follows the newest version, which is disabled.
    assert_eq!(
        preflight(&setup.kv, &setup.identities, &setup.reference(), NOW),
        [Problem::KeyDisabled {
            name: KEY.into(),
            version: newest.version.clone()
        }]
    );
    // Pinned to the first version, which is enabled: fine.
    assert_eq!(
        preflight(&setup.kv, &setup.identities, &versioned(&setup), NOW),
        []
    );
}

#[test]
fn not_yet_valid_and_expired_at_the_given_time() {
    let options = KeyOptions {
        not_before: Some(NOW + 100),
        expires: Some(NOW + 200),
        ..KeyOptions::default()
    };
    let setup = Setup::with_key(KeyType::Rsa2048, options);
    let version = setup.key.version.clone();
    assert_eq!(
        preflight(&setup.kv, &setup.identities, &setup.reference(), NOW),
        [Problem::NotYetValid {
            name: KEY.into(),
            version: version.clone(),
            not_before: NOW + 100
        }]
    );
    // The window is the key vault's: valid from not-before, expired at
    // expires.
    assert_eq!(
        preflight(&setup.kv, &setup.identities, &setup.reference(), NOW + 100),
        []
    );
    assert_eq!(
        preflight(&setup.kv, &setup.identities, &setup.reference(), NOW + 199),
        []
    );
    assert_eq!(
        preflight(&setup.kv, &setup.identities, &setup.reference(), NOW + 200),
        [Problem::Expired {
            name: KEY.into(),
            version: version.clone(),
            expires: NOW + 200
        }]
    );
    // The key vault agrees at the same times.
    setup.clock.set(NOW + 200);
    let err = setup
        .kv
        .wrap_key(
            &setup.system,
            KEY,
            None,
            WrapAlgorithm::RsaOaep256,
            &[1; 32],
        )
        .unwrap_err();
    assert!(matches!(err, VaultError::KeyExpired { .. }));
    setup.clock.set(NOW + 99);
    let err = setup
        .kv
        .wrap_key(
            &setup.system,
            KEY,
            None,
            WrapAlgorithm::RsaOaep256,
            &[1; 32],
        )
        .unwrap_err();
    assert!(matches!(err, VaultError::KeyNotYetValid { .. }));
}

#[test]
fn an_empty_operation_list_permits_nothing() {
    let setup = Setup::new();
    setup
        .kv
        .update_key(
            &setup.admin,
            KEY,
            &setup.key.version,
            AttributeUpdate {
                operations: Some(Vec::new()),
                ..AttributeUpdate::default()
            },
        )
        .unwrap();
    let problems = preflight(&setup.kv, &setup.identities, &setup.reference(), NOW);
    let version = setup.key.version.clone();
    assert_eq!(
        problems,
        [
            Problem::OperationNotPermitted {
                name: KEY.into(),
                version: version.clone(),
                operation: KeyOperation::WrapKey
            },
            Problem::OperationNotPermitted {
                name: KEY.into(),
                version,
                operation: KeyOperation::UnwrapKey
            },
        ]
    );
    // As the key vault applies it.
    let err = setup
        .kv
        .wrap_key(
            &setup.system,
            KEY,
            None,
            WrapAlgorithm::RsaOaep256,
            &[1; 32],
        )
        .unwrap_err();
    assert!(matches!(
        err,
        VaultError::OperationNotPermitted {
            operation: KeyOperation::WrapKey,
            ..
        }
    ));
}

#[test]
fn a_bad_key_reference_is_not_looked_up() {
    let setup = Setup::new();
    let key = CustomerKey::new(KV, "cmk_1");
    let problems = preflight(&setup.kv, &setup.identities, &key, NOW);
    assert_eq!(
        problems,
        [Problem::InvalidKeyReference(InvalidField {
            field: SettingsField::KeyName,
            rule: "1 to 127 characters of 0-9, A-Z, a-z and -"
        })]
    );
    assert!(
        !setup
            .kv
            .audit_log()
            .unwrap()
            .iter()
            .any(|e| e.operation == "get" && e.principal == setup.system.id())
    );
}

#[test]
fn a_failing_key_vault_is_unavailable() {
    let dir = std::env::temp_dir().join(format!(
        "strongroom-policy-test-{}-{}",
        std::process::id(),
        NOW
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let key_file = dir.join("root.key");
    FileKeyVault::generate_key_file(&key_file).unwrap();
    let vault_dir = dir.join("vault");
    let kv = FileKeyVault::create(
        &vault_dir,
        VaultProperties::new(KV),
        RootKeySource::KeyFile(key_file),
    )
    .unwrap();
    let system = Principal::new("backup-vault-7/system");
    kv.set_access_policy(&system, Permissions::key_user())
        .unwrap();
    let identities = VaultIdentities::new().with_system(system);
    // Its directory is gone: every call fails with a storage error.
    std::fs::remove_dir_all(&vault_dir).unwrap();
    let problems = preflight(&kv, &identities, &CustomerKey::new(KV, KEY), NOW);
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(!problems.is_empty());
    for problem in &problems {
        let Problem::KeyVaultUnavailable { reason } = problem else {
            panic!("unexpected {problem:?}");
        };
        assert!(!reason.is_empty());
        assert!(
            problem
                .to_string()
                .ends_with("fix the key vault and run the checks again")
        );
    }
}

#[test]
fn soft_delete_off() {
    let setup = Setup::new();
    let kv = ReportsSoftDeleteOff(setup.kv);
    let problems = preflight(&kv, &setup.identities, &CustomerKey::new(KV, KEY), NOW);
    assert_eq!(problems, [Problem::SoftDeleteOff]);
    assert_eq!(
        problems[0].to_string(),
        "the key vault has soft delete off: turn soft delete on so that a deleted key can be recovered"
    );
}

#[test]
fn every_message_is_one_line_that_says_what_to_do() {
    let principal = Principal::new("p");
    let (name, version) = (String::from("k"), String::from("v"));
    let problems = [
        Problem::IdentityUnknown(Identity::SystemAssigned),
        Problem::MissingPermission {
            principal,
            permission: Permission::Get,
        },
        Problem::SoftDeleteOff,
        Problem::PurgeProtectionOff,
        Problem::WrongKeyVault {
            expected: "a".into(),
            found: "b".into(),
        },
        Problem::KeyNotFound {
            name: name.clone(),
            version: None,
        },
        Problem::KeyDeleted { name: name.clone() },
        Problem::KeyPurged { name: name.clone() },
        Problem::NotRsa {
            key_type: KeyType::Aes256,
        },
        Problem::KeyDisabled {
            name: name.clone(),
            version: version.clone(),
        },
        Problem::NotYetValid {
            name: name.clone(),
            version: version.clone(),
            not_before: 1,
        },
        Problem::Expired {
            name: name.clone(),
            version: version.clone(),
            expires: 1,
        },
        Problem::OperationNotPermitted {
            name,
            version,
            operation: KeyOperation::UnwrapKey,
        },
        Problem::KeyVaultUnavailable {
            reason: "disk on fire".into(),
        },
        Problem::InvalidKeyReference(InvalidField {
            field: SettingsField::KeyVault,
            rule: "short",
        }),
    ];
    for problem in problems {
        let message = problem.to_string();
        assert!(!message.contains('\n'), "{message}");
        assert!(!message.ends_with('.'), "{message}");
        assert!(message.contains(':') || message.contains(';'), "{message}");
    }
}
