//! A tour of the key vault: a customer-managed key, the backup vault's
//! identity, rotation, revocation, soft delete and the audit log.
//!
//! Run: `cargo run -p strongroom-keyvault --example keyvault_demo`.

use std::io::{Read, Write};
use std::sync::Arc;

use strongroom_envelope::{Decryptor, Encryptor, HeaderOptions, KeyWrapper, WrapAlgorithm};
use strongroom_keyvault::{
    KeyOptions, KeyType, KeyVault, MemoryKeyVault, Permission, Permissions, Principal,
    VaultKeyWrapper, VaultProperties,
};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut properties = VaultProperties::new("contoso-kv");
    properties.soft_delete_retention_days = 30;
    let vault = Arc::new(MemoryKeyVault::new(properties)?);
    vault.enable_purge_protection()?;

    let admin = Principal::new("admin@contoso");
    vault.set_access_policy(&admin, Permissions::all())?;
    let v1 = vault.create_key(&admin, "cmk", KeyType::Rsa3072, KeyOptions::default())?;
    println!(
        "created {} version {} ({})",
        v1.name, v1.version, v1.key_type
    );

    let identity = Principal::new("backup-vault-7/system");
    vault.set_access_policy(&identity, Permissions::key_user())?;
    let kek = VaultKeyWrapper::new(
        vault.clone(),
        identity.clone(),
        "cmk",
        None,
        WrapAlgorithm::RsaOaep256,
    )?;
    println!("wrapping under {}", kek.key_ref());

    let mut encryptor = Encryptor::new(Vec::new(), &[&kek], &HeaderOptions::default())?;
    encryptor.write_all(b"recovery point of vm-42")?;
    let stored = encryptor.finish()?;
    let decrypt = |wrapper: &VaultKeyWrapper| -> Result<Vec<u8>, strongroom_envelope::Error> {
        let mut plain = Vec::new();
        Decryptor::new(stored.as_slice(), &[wrapper])?.read_to_end(&mut plain)?;
        Ok(plain)
    };
    println!("restored: {:?}", String::from_utf8(decrypt(&kek)?)?);

    // Rotation: new backups follow the new version; old ones still open.
    let v2 = vault.rotate_key(&admin, "cmk", KeyOptions::default())?;
    let kek2 = VaultKeyWrapper::new(
        vault.clone(),
        identity.clone(),
        "cmk",
        None,
        WrapAlgorithm::RsaOaep256,
    )?;
    println!(
        "rotated to {}; old backup still opens: {}",
        v2.version,
        decrypt(&kek2).is_ok()
    );

    // Revocation: refused on the very next call, with who, what and which key.
    vault.set_access_policy(
        &identity,
        Permissions::key_user().without(Permission::UnwrapKey),
    )?;
    match decrypt(&kek2) {
        Err(e) => println!("after revoking unwrapKey: {e}"),
        Ok(_) => println!("unexpected: decrypted without unwrapKey"),
    }
    vault.set_access_policy(&identity, Permissions::key_user())?;
    println!("access restored: {}", decrypt(&kek2).is_ok());

    // Soft delete with purge protection.
    let deleted = vault.delete_key(&admin, "cmk")?;
    println!(
        "deleted; purge now: {}",
        vault.purge_key(&admin, "cmk").unwrap_err()
    );
    println!("scheduled purge at {} (Unix time)", deleted.scheduled_purge);
    vault.recover_key(&admin, "cmk")?;

    println!("\naudit log:");
    for entry in vault.audit_log()? {
        println!(
            "  #{:<2} {} {:<24} {:<40} {:<5} {}",
            entry.seq,
            entry.time,
            entry.principal,
            entry.operation,
            entry.key.as_deref().unwrap_or("-"),
            entry.outcome
        );
    }
    println!("audit log verifies: {}", vault.verify_audit_log().is_ok());
    Ok(())
}
