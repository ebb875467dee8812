//! Create a vault with its platform key, protect an item, back it up,
//! restore it and check the bytes.
//!
//! ```text
//! cargo run -p strongroom --example quickstart [-- DIR]
//! ```
//! Without DIR, a temporary directory is used and removed at the end.

use strongroom::{BackupOptions, RecoveryVault};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let tmp = tempfile::tempdir()?;
    let dir = std::env::args_os()
        .nth(1)
        .map_or_else(|| tmp.path().join(".strongroom"), Into::into);

    let vault = RecoveryVault::open_or_create(&dir).await?;
    println!(
        "vault {} ({}) in {}",
        vault.name(),
        vault.id(),
        dir.display()
    );
    let encryption = vault.encryption().await?;
    println!("encryption: {:?}", encryption.settings().key);

    let item = match vault.protect("quickstart/disk-0").await {
        Ok(item) => item,
        Err(strongroom::Error::AlreadyExists { .. }) => vault.item("quickstart/disk-0").await?,
        Err(e) => return Err(e.into()),
    };
    // 24 MiB of data that differs at every offset.
    let disk: Vec<u8> = (0..24u32 << 20).map(|i| (i ^ (i >> 11)) as u8).collect();
    let options = BackupOptions::default()
        .size_hint(disk.len() as u64)
        .progress(|p| eprintln!("  backed up {} of {:?} bytes", p.done, p.total));
    let point = vault.backup(&item, disk.as_slice(), options).await?;
    println!(
        "point {} of {}: {} bytes, key {}",
        point.id(),
        point.item(),
        point.size(),
        point.keys()[0]
    );

    let mut restored = Vec::with_capacity(disk.len());
    vault.restore(&point, &mut restored).await?;
    if restored != disk {
        return Err("the restored bytes differ".into());
    }
    println!("restored {} bytes, identical", restored.len());
    println!("verified {} bytes", vault.verify(&point).await?);
    println!(
        "{} points of {}",
        vault.points(&item).await?.len(),
        item.name()
    );
    Ok(())
}
