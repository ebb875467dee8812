//! Switch a new vault to a customer-managed RSA key: preflight lists every
//! problem with the key vault at once; fix them; switch; back up.
//!
//! ```text
//! cargo run -p strongroom --example customer_key
//! ```

use std::sync::Arc;

use strongroom::keyvault::{
    FileKeyVault, KeyOptions, KeyType, KeyVault, Permission, Permissions, Principal, RootKeySource,
    VaultProperties,
};
use strongroom::policy::{CustomerKey, EncryptionSettings};
use strongroom::{BackupOptions, Error, RecoveryVault};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let tmp = tempfile::tempdir()?;
    let vault = RecoveryVault::create_local(tmp.path().join("vault"), "backups").await?;

    // The customer's key vault, set up wrong in three ways.
    FileKeyVault::generate_key_file(tmp.path().join("kv.key"))?;
    let kv = Arc::new(FileKeyVault::create(
        tmp.path().join("contoso-kv"),
        VaultProperties::new("contoso-kv"),
        RootKeySource::KeyFile(tmp.path().join("kv.key")),
    )?);
    let admin = Principal::new("admin@contoso");
    kv.set_access_policy(&admin, Permissions::all())?;
    kv.create_key(&admin, "cmk", KeyType::Rsa3072, KeyOptions::default())?;
    let identity = vault.system_identity();
    kv.set_access_policy(&identity, Permissions::NONE.with(Permission::Get))?;
    vault.attach_key_vault(kv.clone())?;

    let settings = EncryptionSettings::customer_managed(CustomerKey::new("contoso-kv", "cmk"));
    match vault.set_encryption(settings.clone()).await {
        Err(Error::Preflight { problems, .. }) => {
            println!("refused, {} problems:", problems.len());
            for problem in &problems {
                println!("  - {problem}");
            }
            if problems.len() != 3 {
                return Err(format!("expected 3 problems, got {problems:?}").into());
            }
        }
        other => return Err(format!("expected a preflight refusal, got {other:?}").into()),
    }

    println!("fixing: purge protection on, get + wrapKey + unwrapKey for {identity}");
    kv.enable_purge_protection()?;
    kv.set_access_policy(&identity, Permissions::key_user())?;
    vault.set_encryption(settings).await?;
    println!("encryption: {:?}", vault.encryption().await?.settings().key);

    let item = vault.protect("db-1").await?;
    let data = b"rows and rows".repeat(10_000);
    let point = vault
        .backup(&item, data.as_slice(), BackupOptions::default())
        .await?;
    println!("point {} wrapped under {}", point.id(), point.keys()[0]);
    let mut out = Vec::new();
    vault.restore(&point, &mut out).await?;
    if out != data {
        return Err("the restored bytes differ".into());
    }
    println!("restored {} bytes, identical", out.len());
    Ok(())
}
