//! Key and secret backups on arbitrary input, through the public API
//! (`KeyVault::restore_key` and `KeyVault::restore_secret` of a
//! `MemoryKeyVault`).
//!
//! An input is `[mode, payload...]`. With `mode & 1`, the payload is the
//! whole backup (its frame: magic, kind, owner id, nonce, tag). Otherwise
//! it is sealed, as a backup of a key (`mode & 2`) or of a secret, under
//! the vault's own owner key (`seal_backup_for_tests`), so that the input
//! reaches the payload's parser and checks. Either way it is given to both
//! `restore_key` and `restore_secret`.
//!
//! For every input: no panic, and a refusal is one of `BackupInvalid`,
//! `BackupOwnerMismatch`, `LimitExceeded` or `InvalidArgument` (a window
//! whose not-before is not before its expiry), never a storage or token
//! error. A restore that succeeds yields a key that wraps and unwraps a
//! DEK, or a secret whose every version lists and whose enabled versions
//! read; it is then deleted and purged, so the next input finds the name
//! free.

#![no_main]

use std::sync::Mutex;

use libfuzzer_sys::fuzz_target;
use strongroom_envelope::WrapAlgorithm;
use strongroom_keyvault::{
    KeyVault, MemoryKeyVault, OwnerKey, Permissions, Principal, VaultError, VaultProperties,
    seal_backup_for_tests,
};

/// A memory vault keeps its whole audit log in memory, one entry per call:
/// it is replaced by a fresh one after this many inputs.
const INPUTS_PER_VAULT: u32 = 4096;

struct Fixture {
    vault: MemoryKeyVault,
    owner: OwnerKey,
    admin: Principal,
    inputs: u32,
}

static FIXTURE: Mutex<Option<Fixture>> = Mutex::new(None);

fn fresh() -> Fixture {
    let vault = MemoryKeyVault::new(VaultProperties::new("fuzz")).expect("a memory vault");
    let admin = Principal::new("fuzz-admin");
    vault
        .set_access_policy(&admin, Permissions::all())
        .expect("an access policy");
    let owner = OwnerKey::from_bytes([0x0f; 32]);
    vault.set_owner_key(&owner).expect("an owner key");
    Fixture {
        vault,
        owner,
        admin,
        inputs: 0,
    }
}

/// A refusal an input may get.
fn check_refusal(err: &VaultError) {
    assert!(
        matches!(
            err,
            VaultError::BackupInvalid { .. }
                | VaultError::BackupOwnerMismatch { .. }
                | VaultError::LimitExceeded { .. }
                | VaultError::InvalidArgument { .. }
        ),
        "unexpected refusal: {err:?}"
    );
    assert!(!err.to_string().is_empty());
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, payload)) = data.split_first() else {
        return;
    };
    let mut guard = FIXTURE.lock().unwrap_or_else(|p| p.into_inner());
    if guard.as_ref().is_none_or(|f| f.inputs >= INPUTS_PER_VAULT) {
        *guard = Some(fresh());
    }
    let fixture = guard.as_mut().expect("a fixture");
    fixture.inputs += 1;
    let (vault, admin) = (&fixture.vault, &fixture.admin);
    let backup = if mode & 1 == 1 {
        payload.to_vec()
    } else {
        let kind = if mode & 2 == 2 { b'K' } else { b'S' };
        seal_backup_for_tests(&fixture.owner, kind, payload).expect("sealed")
    };

    match vault.restore_key(admin, &backup) {
        Ok(info) => {
            let algorithm = if info.key_type.is_rsa() {
                WrapAlgorithm::RsaOaep256
            } else {
                WrapAlgorithm::A256Kw
            };
            let versions = vault.list_versions(admin, &info.name).expect("versions");
            assert!(!versions.is_empty());
            assert_eq!(versions.last().map(|v| &v.version), Some(&info.version));
            // A version that may wrap does, and what it wraps unwraps.
            let wrapped =
                vault.wrap_key(admin, &info.name, Some(&info.version), algorithm, &[3; 32]);
            if let Ok(wrapped) = wrapped {
                let dek = vault
                    .unwrap_wrapped(admin, &info.name, algorithm, &wrapped)
                    .expect("a wrapped DEK unwraps");
                assert_eq!(dek.as_slice(), [3; 32]);
            }
            vault.delete_key(admin, &info.name).expect("delete");
            vault.purge_key(admin, &info.name).expect("purge");
        }
        Err(err) => check_refusal(&err),
    }
    match vault.restore_secret(admin, &backup) {
        Ok(info) => {
            let versions = vault
                .list_secret_versions(admin, &info.name)
                .expect("versions");
            assert_eq!(versions.last().map(|v| &v.version), Some(&info.version));
            for v in &versions {
                let read = vault.get_secret(admin, &info.name, Some(&v.version));
                match read {
                    Ok(secret) => assert!(v.attributes.enabled && secret.info == *v),
                    Err(err) => assert!(
                        !v.attributes.enabled && matches!(err, VaultError::SecretDisabled { .. }),
                        "{err:?}"
                    ),
                }
            }
            vault.delete_secret(admin, &info.name).expect("delete");
            vault.purge_secret(admin, &info.name).expect("purge");
        }
        Err(err) => check_refusal(&err),
    }
});
