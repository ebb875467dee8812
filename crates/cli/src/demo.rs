//! `strongroom demo`: the whole story in a temporary folder, narrated. Each
//! step checks that it behaved as told; the first that does not ends the
//! demo with an error (exit 1).

use std::path::Path;
use std::sync::Arc;

use strongroom::keyvault::{
    FileKeyVault, KeyOptions, KeyType, KeyVault, Permissions, Principal, RootKeySource,
    VaultProperties,
};
use strongroom::policy::{CustomerKey, EncryptionSettings};
use strongroom::{BackupOptions, Error, RecoveryPoint, RecoveryVault, RewrapOptions};

use crate::exit::{Class, Failure};

/// A step that did not behave as the demo says it does.
fn misbehaved(what: impl Into<String>) -> Failure {
    Failure::new(
        Class::Other,
        format!("the demo went wrong: {}", what.into()),
    )
}

/// Bytes that differ at every offset, so that a misplaced chunk shows.
fn data(len: usize, seed: u8) -> Vec<u8> {
    let mut state = 0x9E37_79B9_7F4A_7C15u64 ^ u64::from(seed);
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        out.extend_from_slice(&state.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
    }
    out.truncate(len);
    out
}

async fn restored(vault: &RecoveryVault, point: &RecoveryPoint) -> Result<Vec<u8>, Error> {
    let mut out = Vec::new();
    vault.restore(point, &mut out).await.map(|_| out)
}

/// Restores `point` and checks it is `expected`, byte for byte.
async fn restore_same(
    vault: &RecoveryVault,
    point: &RecoveryPoint,
    expected: &[u8],
) -> Result<(), Failure> {
    let out = restored(vault, point).await?;
    if out != expected {
        return Err(misbehaved(format!(
            "point {} restored to other bytes",
            point.id()
        )));
    }
    say(&format!(
        "restored point {}: {} bytes, identical to what was backed up",
        point.id(),
        out.len()
    ));
    Ok(())
}

fn step(n: u32, title: &str) {
    println!();
    println!("{n}. {title}");
}

fn say(line: &str) {
    println!("   {line}");
}

pub(crate) async fn run() -> Result<(), Failure> {
    let tmp = tempfile::Builder::new()
        .prefix("strongroom-demo-")
        .tempdir()
        .map_err(|e| Failure::io("cannot make a temporary folder", &e))?;
    println!(
        "Strongroom demo, in {} (removed at the end)",
        tmp.path().display()
    );
    story(tmp.path()).await?;
    println!();
    println!("Every step behaved as told.");
    Ok(())
}

async fn story(dir: &Path) -> Result<(), Failure> {
    let disk = data(4 << 20, 1);

    step(1, "A vault with the platform-managed key (the default)");
    let vault = RecoveryVault::create_local(dir.join("vault"), "demo").await?;
    say("created vault \"demo\"; its platform key (AES-256) is in a file key vault beside it");
    let item = vault.protect("vm-1/disk-0").await?;
    let point = vault
        .backup(&item, disk.as_slice(), BackupOptions::default())
        .await?;
    let key = &point.keys()[0];
    say(&format!(
        "backed up {} bytes of \"vm-1/disk-0\" as point {}, under a fresh data key wrapped by {}/{} ({})",
        point.size(),
        point.id(),
        key.vault,
        key.name,
        key.algorithm
    ));
    restore_same(&vault, &point, &disk).await?;

    step(2, "A customer-managed key");
    let customer =
        RecoveryVault::create_local(dir.join("customer-vault"), "contoso-backups").await?;
    let key_file = dir.join("contoso-kv.key");
    FileKeyVault::generate_key_file(&key_file).map_err(|e| misbehaved(e.to_string()))?;
    let kv: Arc<dyn KeyVault> = Arc::new(
        FileKeyVault::create(
            dir.join("contoso-kv"),
            VaultProperties::new("contoso-kv"),
            RootKeySource::KeyFile(key_file),
        )
        .map_err(|e| misbehaved(e.to_string()))?,
    );
    let admin = Principal::new("admin@contoso");
    let key_error = |e: strongroom::keyvault::VaultError| misbehaved(e.to_string());
    kv.set_access_policy(&admin, Permissions::all())
        .map_err(key_error)?;
    kv.create_key(&admin, "cmk", KeyType::Rsa3072, KeyOptions::default())
        .map_err(key_error)?;
    customer.attach_key_vault(kv.clone())?;
    say(
        "a second vault, \"contoso-backups\", and the customer's key vault \"contoso-kv\" with an RSA-3072 key \"cmk\"",
    );
    let cmk = CustomerKey::new("contoso-kv", "cmk");
    let problems = customer.preflight(&cmk).await?;
    if problems.is_empty() {
        return Err(misbehaved(
            "preflight found no problem before access was granted",
        ));
    }
    say(&format!(
        "preflight, before anything is granted, lists {} problems at once:",
        problems.len()
    ));
    for problem in &problems {
        say(&format!("  - {problem}"));
    }
    let identity = customer.system_identity();
    kv.enable_purge_protection().map_err(key_error)?;
    kv.set_access_policy(&identity, Permissions::key_user())
        .map_err(key_error)?;
    say(&format!(
        "the customer turned on purge protection and granted the vault's identity ({}) get, wrapKey and unwrapKey",
        identity.id()
    ));
    customer
        .set_encryption(EncryptionSettings::customer_managed(cmk.clone()))
        .await?;
    say(
        "preflight passes; the vault now wraps every new point's key with contoso-kv/cmk (versionless: its latest version)",
    );
    let item = customer.protect("db").await?;
    let db = data(3 << 20, 2);
    let first = customer
        .backup(&item, db.as_slice(), BackupOptions::default())
        .await?;
    let v1 = first.keys()[0].version.clone();
    say(&format!(
        "backed up \"db\" as point {}, its key wrapped by contoso-kv/cmk/{v1} (RSA-OAEP-256)",
        first.id()
    ));

    step(3, "Rotation");
    let v2 = kv
        .rotate_key(&admin, "cmk", KeyOptions::default())
        .map_err(key_error)?
        .version;
    say(&format!("the customer rotated \"cmk\": version {v2}"));
    let db2 = data(1 << 20, 3);
    let second = customer
        .backup(&item, db2.as_slice(), BackupOptions::default())
        .await?;
    if second.keys()[0].version != v2 {
        return Err(misbehaved(
            "a new point was not wrapped under the new version",
        ));
    }
    say(&format!(
        "a new backup, point {}, is under {v2}",
        second.id()
    ));
    let health = customer.key_health().await?;
    match health.version("contoso-kv", "cmk", &v1) {
        Some(needed) if !needed.safe_to_disable() => say(&format!(
            "key health: {v1} still holds the only key copy of {} point(s); disabling it now would lose them",
            needed.sole_copy_points.len()
        )),
        _ => {
            return Err(misbehaved(
                "key health did not say the old version is needed",
            ));
        }
    }
    let report = customer.rewrap(RewrapOptions::default()).await?;
    if report.rewrapped != 1 || report.current != 1 || !report.skipped.is_empty() {
        return Err(misbehaved(format!(
            "the rewrap did not move exactly one point: {report:?}"
        )));
    }
    say(
        "rewrap: 1 point moved to the latest version by rewriting only its header, 1 already there",
    );
    if customer
        .key_health()
        .await?
        .version("contoso-kv", "cmk", &v1)
        .is_some()
    {
        return Err(misbehaved(
            "the old version is still needed after the rewrap",
        ));
    }
    say(&format!(
        "key health: no point needs {v1} any more: it is safe to disable"
    ));

    step(4, "Access revoked");
    kv.set_access_policy(&identity, Permissions::NONE)
        .map_err(key_error)?;
    say("the customer removed every permission of the vault's identity");
    let first = customer.point(&item, first.id()).await?;
    match restored(&customer, &first).await {
        Err(e @ Error::Key { .. }) => say(&format!("restore refused, as it must be: {e}")),
        Err(e) => return Err(misbehaved(format!("the restore failed otherwise: {e}"))),
        Ok(_) => return Err(misbehaved("the restore succeeded without access")),
    }
    match customer
        .backup(&item, db.as_slice(), BackupOptions::default())
        .await
    {
        Err(Error::Key { .. }) => say("a backup is refused too, before any data moves"),
        other => return Err(misbehaved(format!("the backup was not refused: {other:?}"))),
    }

    step(5, "Access granted back");
    kv.set_access_policy(&identity, Permissions::key_user())
        .map_err(key_error)?;
    say("the customer granted get, wrapKey and unwrapKey again; nothing else was done");
    restore_same(&customer, &first, &db).await?;
    let second = customer.point(&item, second.id()).await?;
    restore_same(&customer, &second, &db2).await?;

    step(6, "Crypto-shred");
    customer.delete_point(&second).await?;
    say(&format!(
        "deleted point {}: its wrapped keys first, then its data",
        second.id()
    ));
    match customer.point(&item, second.id()).await {
        Err(Error::NotFound { .. }) => {
            say("it is gone: without its wrapped keys no copy of its data can be decrypted");
        }
        other => {
            return Err(misbehaved(format!(
                "the deleted point is still there: {other:?}"
            )));
        }
    }
    restore_same(&customer, &first, &db).await?;
    Ok(())
}
