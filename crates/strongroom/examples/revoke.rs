//! The customer revokes the vault's access to their key: backups and
//! restores are refused with a message that says why; access granted back,
//! everything restores.
//!
//! ```text
//! cargo run -p strongroom --example revoke
//! ```

use std::sync::Arc;

use strongroom::keyvault::{
    KeyOptions, KeyType, KeyVault, MemoryKeyVault, Permission, Permissions, Principal,
    VaultProperties,
};
use strongroom::policy::{CustomerKey, EncryptionSettings};
use strongroom::{BackupOptions, Error, RecoveryVault};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let tmp = tempfile::tempdir()?;
    let vault = RecoveryVault::create_local(tmp.path(), "backups").await?;
    let kv = Arc::new(MemoryKeyVault::new(VaultProperties::new("contoso-kv"))?);
    kv.enable_purge_protection()?;
    let admin = Principal::new("admin@contoso");
    kv.set_access_policy(&admin, Permissions::all())?;
    kv.create_key(&admin, "cmk", KeyType::Rsa2048, KeyOptions::default())?;
    let identity = vault.system_identity();
    kv.set_access_policy(&identity, Permissions::key_user())?;
    vault.attach_key_vault(kv.clone())?;
    vault
        .set_encryption(EncryptionSettings::customer_managed(CustomerKey::new(
            "contoso-kv",
            "cmk",
        )))
        .await?;
    let item = vault.protect("vm-9").await?;
    let data = vec![42u8; 1 << 20];
    let point = vault
        .backup(&item, data.as_slice(), BackupOptions::default())
        .await?;
    println!("backed up point {}", point.id());

    println!("the customer revokes unwrapKey from {identity}");
    kv.set_access_policy(
        &identity,
        Permissions::key_user().without(Permission::UnwrapKey),
    )?;
    match vault.restore(&point, Vec::new()).await {
        Err(e @ Error::Key { .. }) => println!("restore refused: {e}"),
        other => return Err(format!("expected a refusal, got {other:?}").into()),
    }
    match vault
        .backup(&item, data.as_slice(), BackupOptions::default())
        .await
    {
        Err(e @ Error::Key { .. }) => println!("backup refused: {e}"),
        other => return Err(format!("expected a refusal, got {other:?}").into()),
    }
    if vault.points(&item).await?.len() != 1 {
        return Err("the refused backup left a point".into());
    }

    println!("access granted back");
    kv.set_access_policy(&identity, Permissions::key_user())?;
    let mut out = Vec::new();
    vault.restore(&point, &mut out).await?;
    if out != data {
        return Err("the restored bytes differ".into());
    }
    println!("restored {} bytes, identical", out.len());
    Ok(())
}
