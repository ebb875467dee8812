//! Restore 4 KiB from the middle of a 64 MiB recovery point: only the
//! chunk that holds it is read and authenticated.
//!
//! ```text
//! cargo run -p strongroom --example range_restore
//! ```

use std::time::Instant;

use strongroom::{BackupOptions, RecoveryVault};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let tmp = tempfile::tempdir()?;
    let vault = RecoveryVault::create_local(tmp.path(), "ranges").await?;
    let item = vault.protect("vm-1/disk-0").await?;
    let disk: Vec<u8> = (0..64u32 << 20)
        .map(|i| (i.wrapping_mul(31) >> 7) as u8)
        .collect();
    let options = BackupOptions::default().chunk_size(64 * 1024)?;
    let point = vault.backup(&item, disk.as_slice(), options).await?;

    let start = 40 * 1024 * 1024 + 12_345;
    let range = start..start + 4096;
    let began = Instant::now();
    let mut block = Vec::new();
    let n = vault
        .restore_range(&point, range.clone(), &mut block)
        .await?;
    let took = began.elapsed();
    if block != disk[range.start as usize..range.end as usize] {
        return Err("the restored range differs".into());
    }
    println!(
        "restored bytes {}..{} ({n} bytes) of a {} byte point in {took:?}",
        range.start,
        range.end,
        point.size()
    );
    Ok(())
}
