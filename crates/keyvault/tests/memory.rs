//! `MemoryKeyVault`: the conformance suite, plus what only the software
//! path or the memory backend shows (properties, RSA sizes, both OAEP
//! hashes, audit tampering in the store itself, the envelope end to end).

mod common;

use std::io::{Read, Write};
use std::sync::Arc;

use strongroom_envelope::{
    Decryptor, Encryptor, Error as EnvelopeError, HeaderOptions, KeyWrapper, WrapAlgorithm,
    WrapError,
};
use strongroom_keyvault::{
    AttributeUpdate, KeyOptions, KeyType, KeyVault, ManualClock, MemoryKeyVault, Permission,
    Permissions, Principal, VaultError, VaultKeyWrapper, VaultProperties,
};

fn properties() -> VaultProperties {
    VaultProperties {
        name: common::VAULT.to_owned(),
        soft_delete_retention_days: 7,
        purge_protection: false,
    }
}

fn make(clock: Arc<ManualClock>) -> Box<dyn KeyVault> {
    Box::new(MemoryKeyVault::with_clock(properties(), clock).expect("memory vault"))
}

keyvault_conformance!(make);

mod sha1_oaep {
    //! The suite again with RSA-OAEP (SHA-1), the algorithm for HSMs
    //! without SHA-256 OAEP.
    use super::{common, make};
    crate::keyvault_conformance!(make, rsa = ::strongroom_envelope::WrapAlgorithm::RsaOaep);
}

#[test]
fn properties_are_validated() {
    for (name, days) in [
        ("", 7),
        ("kv", 6),
        ("kv", 91),
        ("kv", 0),
        (&*"n".repeat(256), 30),
    ] {
        let properties = VaultProperties {
            name: name.to_owned(),
            soft_delete_retention_days: days,
            purge_protection: false,
        };
        assert!(
            matches!(
                MemoryKeyVault::new(properties),
                Err(VaultError::InvalidArgument { .. })
            ),
            "{name:?} / {days} accepted"
        );
    }
    for days in [7, 90] {
        let mut properties = VaultProperties::new("kv");
        properties.soft_delete_retention_days = days;
        properties.purge_protection = true;
        let vault = MemoryKeyVault::new(properties.clone()).unwrap();
        assert_eq!(vault.properties().unwrap(), properties);
    }
    assert_eq!(VaultProperties::new("kv").soft_delete_retention_days, 90);
}

#[test]
fn retention_follows_the_vault_properties() {
    let clock = Arc::new(ManualClock::new(common::T0));
    let mut properties = properties();
    properties.soft_delete_retention_days = 90;
    let vault = MemoryKeyVault::with_clock(properties, clock.clone()).unwrap();
    let admin = common::admin();
    vault.set_access_policy(&admin, Permissions::all()).unwrap();
    common::create(&vault, &admin, "k", KeyType::Aes256);
    let deleted = vault.delete_key(&admin, "k").unwrap();
    assert_eq!(deleted.scheduled_purge, common::T0 + 90 * 86_400);
    clock.set(deleted.scheduled_purge - 1);
    assert_eq!(vault.list_deleted_keys(&admin).unwrap().len(), 1);
}

#[test]
fn larger_rsa_keys_wrap_with_both_oaep_hashes() {
    let vault = MemoryKeyVault::new(properties()).unwrap();
    let admin = common::admin();
    vault.set_access_policy(&admin, Permissions::all()).unwrap();
    for (name, key_type, bytes) in [
        ("rsa3072", KeyType::Rsa3072, 384),
        ("rsa4096", KeyType::Rsa4096, 512),
    ] {
        let info = common::create(&vault, &admin, name, key_type);
        assert_eq!(info.key_type, key_type);
        assert_eq!(info.public.as_ref().unwrap().n.len(), bytes);
        for alg in [WrapAlgorithm::RsaOaep256, WrapAlgorithm::RsaOaep] {
            let w = vault
                .wrap_key(&admin, name, None, alg, &common::dek(1))
                .unwrap();
            assert_eq!(w.wrapped.len(), bytes);
            let back = vault
                .unwrap_key(&admin, name, &w.version, alg, &w.wrapped)
                .unwrap();
            assert_eq!(back.as_slice(), common::dek(1));
            // One hash does not open the other's.
            let other = if alg == WrapAlgorithm::RsaOaep {
                WrapAlgorithm::RsaOaep256
            } else {
                WrapAlgorithm::RsaOaep
            };
            assert!(matches!(
                vault.unwrap_key(&admin, name, &w.version, other, &w.wrapped),
                Err(VaultError::DecryptionFailed)
            ));
        }
    }
}

#[test]
fn verify_audit_log_catches_tampering_in_the_store() {
    type Tamper = fn(&mut Vec<strongroom_keyvault::AuditEntry>);
    let cases: [(&str, Tamper, usize); 5] = [
        ("edited", |log| log[1].principal = "mallory".into(), 1),
        ("removed", |log| drop(log.remove(2)), 2),
        ("reordered", |log| log.swap(1, 2), 1),
        ("truncated", |log| log.truncate(3), 3),
        ("emptied", Vec::clear, 0),
    ];
    for (what, tamper, at) in cases {
        let vault = MemoryKeyVault::new(properties()).unwrap();
        let admin = common::admin();
        vault.set_access_policy(&admin, Permissions::all()).unwrap();
        common::create(&vault, &admin, "k", KeyType::Aes256);
        for _ in 0..3 {
            vault
                .wrap_key(&admin, "k", None, WrapAlgorithm::A256Kw, &common::dek(0))
                .unwrap();
        }
        vault.verify_audit_log().unwrap();
        vault.tamper_audit_log_for_tests(tamper);
        assert_eq!(
            common::tampered_at(vault.verify_audit_log(), what),
            at,
            "{what}"
        );
    }
}

#[test]
fn failed_calls_change_nothing_but_the_audit_log() {
    let vault = MemoryKeyVault::new(properties()).unwrap();
    let admin = common::admin();
    vault.set_access_policy(&admin, Permissions::all()).unwrap();
    let info = common::create(&vault, &admin, "k", KeyType::Aes256);
    // An update whose attributes are refused after some were applied.
    let bad = AttributeUpdate {
        enabled: Some(false),
        not_before: Some(Some(10)),
        expires: Some(Some(5)),
        ..AttributeUpdate::default()
    };
    assert!(vault.update_key(&admin, "k", &info.version, bad).is_err());
    assert_eq!(vault.get_key(&admin, "k", None).unwrap(), info);
    let log = vault.audit_log().unwrap();
    assert!(matches!(
        &log[log.len() - 2].outcome,
        strongroom_keyvault::AuditOutcome::Failed(_)
    ));
    vault.verify_audit_log().unwrap();
}

#[test]
fn vault_key_wrapper_through_the_envelope_and_revocation() {
    let vault = Arc::new(MemoryKeyVault::new(properties()).unwrap());
    let admin = common::admin();
    vault.set_access_policy(&admin, Permissions::all()).unwrap();
    let v1 = common::create(&*vault, &admin, "cmk", KeyType::Rsa2048);
    let identity = Principal::new("backup-vault-7/system");
    vault
        .set_access_policy(&identity, Permissions::key_user())
        .unwrap();

    let kek = VaultKeyWrapper::new(
        vault.clone(),
        identity.clone(),
        "cmk",
        None,
        WrapAlgorithm::RsaOaep256,
    )
    .unwrap();
    let key_ref = kek.key_ref().clone();
    assert_eq!(key_ref.vault, common::VAULT);
    assert_eq!(key_ref.name, "cmk");
    assert_eq!(key_ref.version, v1.version);
    assert_eq!(key_ref.algorithm, WrapAlgorithm::RsaOaep256);

    let mut encryptor = Encryptor::new(Vec::new(), &[&kek], &HeaderOptions::default()).unwrap();
    encryptor.write_all(b"recovery point 1").unwrap();
    let stored = encryptor.finish().unwrap();
    let decrypt = |wrapper: &VaultKeyWrapper| -> Result<Vec<u8>, EnvelopeError> {
        let mut plain = Vec::new();
        Decryptor::new(stored.as_slice(), &[wrapper])?.read_to_end(&mut plain)?;
        Ok(plain)
    };
    assert_eq!(decrypt(&kek).unwrap(), b"recovery point 1");

    // Revoke unwrapKey: the very next decrypt fails, naming who, what, which key.
    vault
        .set_access_policy(
            &identity,
            Permissions::key_user().without(Permission::UnwrapKey),
        )
        .unwrap();
    let err = decrypt(&kek).unwrap_err();
    let EnvelopeError::KeyUnavailable { key, source } = &err else {
        panic!("expected KeyUnavailable, got {err:?}");
    };
    assert_eq!(**key, key_ref);
    let WrapError::Backend(inner) = source.as_ref() else {
        panic!("expected a backend error, got {source:?}");
    };
    match inner.downcast_ref::<VaultError>() {
        Some(VaultError::AccessDenied {
            principal,
            permission,
            key,
        }) => {
            assert_eq!(principal, &identity);
            assert_eq!(*permission, Permission::UnwrapKey);
            assert_eq!(key.as_deref(), Some("cmk"));
        }
        other => panic!("expected AccessDenied, got {other:?}"),
    }
    let message = err.to_string();
    assert!(
        message.contains("backup-vault-7/system")
            && message.contains("unwrapKey")
            && message.contains("cmk"),
        "{message}"
    );
    // Through std::error::Error::source, as a generic caller would.
    let source = std::error::Error::source(&err).unwrap();
    let inner = std::error::Error::source(source).unwrap();
    assert!(inner.downcast_ref::<VaultError>().is_some());

    // Restored: works again.
    vault
        .set_access_policy(&identity, Permissions::key_user())
        .unwrap();
    assert_eq!(decrypt(&kek).unwrap(), b"recovery point 1");

    // After a rotation, a new versionless wrapper wraps under v2 and still
    // unwraps what v1 wrapped.
    let v2 = vault
        .rotate_key(&admin, "cmk", KeyOptions::default())
        .unwrap();
    let kek2 = VaultKeyWrapper::new(
        vault.clone(),
        identity.clone(),
        "cmk",
        None,
        WrapAlgorithm::RsaOaep256,
    )
    .unwrap();
    assert_eq!(kek2.key_ref().version, v2.version);
    assert!(kek2.can_unwrap(&key_ref));
    assert_eq!(decrypt(&kek2).unwrap(), b"recovery point 1");

    // Disabled key: KeyDisabled travels the same way.
    vault
        .update_key(
            &admin,
            "cmk",
            &v1.version,
            AttributeUpdate {
                enabled: Some(false),
                ..AttributeUpdate::default()
            },
        )
        .unwrap();
    match decrypt(&kek) {
        Err(EnvelopeError::KeyUnavailable { source, .. }) => match *source {
            WrapError::Backend(inner) => assert!(matches!(
                inner.downcast_ref::<VaultError>(),
                Some(VaultError::KeyDisabled { .. })
            )),
            other => panic!("{other:?}"),
        },
        other => panic!("expected KeyUnavailable, got {other:?}"),
    }

    // A wrapper for another key, or another algorithm, does not claim it.
    let pmk_info = common::create(&*vault, &admin, "pmk", KeyType::Aes256);
    let pmk = VaultKeyWrapper::new(
        vault.clone(),
        identity.clone(),
        "pmk",
        Some(&pmk_info.version),
        WrapAlgorithm::A256Kw,
    )
    .unwrap();
    assert!(!pmk.can_unwrap(&key_ref));
    assert!(matches!(
        VaultKeyWrapper::new(
            vault.clone(),
            identity.clone(),
            "pmk",
            None,
            WrapAlgorithm::RsaOaep256
        ),
        Err(VaultError::AlgorithmMismatch { .. })
    ));
    // Building needs `get`.
    vault
        .set_access_policy(&identity, Permissions::key_user().without(Permission::Get))
        .unwrap();
    common::assert_denied(
        VaultKeyWrapper::new(
            vault.clone(),
            identity.clone(),
            "cmk",
            None,
            WrapAlgorithm::RsaOaep256,
        ),
        &identity,
        Permission::Get,
        Some("cmk"),
    );
}

#[test]
fn vault_key_wrapper_reports_decryption_failed_plainly() {
    let vault = Arc::new(MemoryKeyVault::new(properties()).unwrap());
    let admin = common::admin();
    vault.set_access_policy(&admin, Permissions::all()).unwrap();
    common::create(&*vault, &admin, "pmk", KeyType::Aes256);
    let kek = VaultKeyWrapper::new(vault, admin, "pmk", None, WrapAlgorithm::A256Kw).unwrap();
    let dek = strongroom_envelope::Dek::generate().unwrap();
    let mut wrapped = kek.wrap(&dek).unwrap();
    assert_eq!(
        kek.unwrap(kek.key_ref(), &wrapped)
            .unwrap()
            .key()
            .expose_secret(),
        dek.key().expose_secret()
    );
    wrapped[0] ^= 1;
    assert!(matches!(
        kek.unwrap(kek.key_ref(), &wrapped),
        Err(WrapError::DecryptionFailed)
    ));
    assert!(format!("{kek:?}").contains("pmk"));
}

#[test]
fn versions_per_key_are_bounded() {
    common::versions_per_key_are_bounded(&make);
}
