//! A recovery point whose objects an attacker controls: the facade's
//! record parsers (`vault.json`, the item record, the settings record, the
//! manifest, the source encryption a header records, the key backups a
//! point carries) and its restore path, on arbitrary bytes.
//!
//! Two vaults are made once, in an in-memory `object_store` with memory key
//! vaults, each with one item and one point of known data: one under the
//! platform key whose item is encrypted in the guest (its point carries the
//! BEK's backup in `key-backups`), one with a customer key and
//! infrastructure encryption (two layers: `header`, `outer-header` and a
//! body sealed twice). For every
//! input, their objects are put back, then one of them (chosen by the first
//! byte) is replaced by the rest of the input, or has it spliced in, or is
//! cut (chosen by the second byte). Then that object's vault is opened, its
//! item and points listed, and each point verified, restored whole and by a
//! range.
//!
//! Checks: nothing panics; every failure is a typed `strongroom::Error`;
//! a restore or range that succeeds returns exactly the data backed up
//! (nothing forged or unauthenticated gets out); and a restore of the disk
//! keys that succeeds names the BEK version the point was taken with (the
//! BEK is still in its key vault, so nothing is put back).

#![no_main]

use std::sync::{Arc, OnceLock};

use libfuzzer_sys::fuzz_target;
use strongroom::keyvault::{
    KeyOptions, KeyType, KeyVault, MemoryKeyVault, Permissions, Principal, SecretOptions,
    VaultProperties,
};
use strongroom::object_store::memory::InMemory;
use strongroom::object_store::path::Path;
use strongroom::object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use strongroom::policy::{CustomerKey, EncryptionSettings};
use strongroom::{BackupOptions, RecoveryVault, SecretReference, SourceEncryption, VaultConfig};

struct World {
    runtime: tokio::runtime::Runtime,
    store: Arc<InMemory>,
    platform: Arc<MemoryKeyVault>,
    customer: Arc<MemoryKeyVault>,
    /// The machine's key vault, holding its disk's BEK.
    machine: Arc<MemoryKeyVault>,
    /// The BEK's version.
    bek_version: String,
    /// Every object of the vaults, as made.
    objects: Vec<(Path, Vec<u8>)>,
    data: Vec<u8>,
}

/// The vaults' prefixes in the store: one layer, two layers.
const VAULTS: [&str; 2] = ["vault", "double"];

fn config(world: &World, prefix: &str) -> VaultConfig {
    VaultConfig::new(
        world.store.clone(),
        Path::from(prefix),
        world.platform.clone(),
    )
    .threads(1)
    .expect("1 thread is valid")
}

fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        let store = Arc::new(InMemory::new());
        let platform =
            Arc::new(MemoryKeyVault::new(VaultProperties::new("platform")).expect("a key vault"));
        let data: Vec<u8> = (0..3 * 4096 + 100u32)
            .map(|i| (i * 7 + i / 251) as u8)
            .collect();
        let customer =
            Arc::new(MemoryKeyVault::new(VaultProperties::new("contoso")).expect("a key vault"));
        let admin = Principal::new("admin");
        customer
            .set_access_policy(&admin, Permissions::all())
            .expect("a policy");
        customer
            .enable_purge_protection()
            .expect("purge protection");
        customer
            .create_key(&admin, "cmk", KeyType::Rsa2048, KeyOptions::default())
            .expect("a key");
        let machine =
            Arc::new(MemoryKeyVault::new(VaultProperties::new("machine")).expect("a key vault"));
        machine
            .set_access_policy(&admin, Permissions::all())
            .expect("a policy");
        let bek_version = machine
            .set_secret(&admin, "bek", &[0x42; 32], SecretOptions::default())
            .expect("a secret")
            .version;
        let mut world = World {
            runtime,
            store,
            platform,
            customer,
            machine,
            bek_version,
            objects: Vec::new(),
            data,
        };
        let objects = world.runtime.block_on(async {
            for prefix in VAULTS {
                let vault = RecoveryVault::create(config(&world, prefix), "fuzz")
                    .await
                    .expect("a vault");
                if prefix == "double" {
                    vault
                        .attach_key_vault(world.customer.clone())
                        .expect("attached");
                    world
                        .customer
                        .set_access_policy(&vault.system_identity(), Permissions::key_user())
                        .expect("a policy");
                    vault
                        .set_encryption(
                            EncryptionSettings::customer_managed(CustomerKey::new(
                                "contoso", "cmk",
                            ))
                            .with_infrastructure_encryption(),
                        )
                        .await
                        .expect("customer key with infrastructure encryption");
                }
                let source = if prefix == "vault" {
                    vault
                        .attach_key_vault(world.machine.clone())
                        .expect("attached");
                    world
                        .machine
                        .set_access_policy(&vault.system_identity(), Permissions::all())
                        .expect("a policy");
                    SourceEncryption::InGuest {
                        bek: SecretReference::latest("machine", "bek"),
                        kek: None,
                    }
                } else {
                    SourceEncryption::None
                };
                let item = vault.protect_with("vm", source).await.expect("an item");
                let options = BackupOptions::default().chunk_size(4096).expect("4 KiB");
                let point = vault
                    .backup(&item, world.data.as_slice(), options)
                    .await
                    .expect("a point");
                assert_eq!(point.infrastructure_encrypted(), prefix == "double");
            }
            let mut objects = Vec::new();
            let listed: Vec<_> = {
                use futures::TryStreamExt;
                world.store.list(None).try_collect().await.expect("listing")
            };
            for meta in listed {
                let bytes = world
                    .store
                    .get(&meta.location)
                    .await
                    .expect("get")
                    .bytes()
                    .await
                    .expect("bytes");
                objects.push((meta.location, bytes.to_vec()));
            }
            objects.sort();
            objects
        });
        world.objects = objects;
        world
    })
}

fuzz_target!(|input: &[u8]| {
    let world = world();
    let [which, how, rest @ ..] = input else {
        return;
    };
    world.runtime.block_on(async {
        // Put the vault back as made, then damage one object.
        for (path, bytes) in &world.objects {
            world
                .store
                .put(path, PutPayload::from(bytes.clone()))
                .await
                .expect("put");
        }
        let (path, original) = &world.objects[usize::from(*which) % world.objects.len()];
        let damaged = match how % 3 {
            0 => rest.to_vec(),
            1 => {
                let at = usize::from(rest.first().copied().unwrap_or(0)) * original.len() / 256;
                let mut bytes = original.clone();
                bytes.splice(at..(at + rest.len()).min(bytes.len()), rest.iter().copied());
                bytes
            }
            _ => {
                let keep = usize::from(u16::from_le_bytes([
                    rest.first().copied().unwrap_or(0),
                    rest.get(1).copied().unwrap_or(0),
                ]));
                original[..keep.min(original.len())].to_vec()
            }
        };
        world
            .store
            .put(path, PutPayload::from(damaged))
            .await
            .expect("put");

        // Only the damaged object's vault: the other is as made.
        let prefix = VAULTS
            .into_iter()
            .find(|prefix| path.as_ref().starts_with(prefix))
            .expect("every object is in a vault");
        check(world, prefix).await;
    });
});

/// Opens the vault at `prefix` and reads every point it lists.
async fn check(world: &World, prefix: &str) {
    let vault = match RecoveryVault::open(config(world, prefix)).await {
        Ok(vault) => vault,
        Err(e) => {
            let _ = e.to_string();
            return;
        }
    };
    if prefix == "double" {
        vault
            .attach_key_vault(world.customer.clone())
            .expect("attached");
    } else {
        vault
            .attach_key_vault(world.machine.clone())
            .expect("attached");
    }
    let _ = vault.encryption().await.map_err(|e| e.to_string());
    let item = match vault.item("vm").await {
        Ok(item) => item,
        Err(e) => {
            let _ = e.to_string();
            return;
        }
    };
    let points = match vault.points(&item).await {
        Ok(points) => points,
        Err(e) => {
            let _ = e.to_string();
            return;
        }
    };
    for point in points {
        // (Verify is restore into nothing: skipped where each key vault
        // call is an RSA decryption, to keep the executions fast.)
        if !point.infrastructure_encrypted() {
            let _ = vault.verify(&point).await.map_err(|e| e.to_string());
        }
        match vault.restore_disk_keys(&point, None).await {
            Ok(keys) => {
                assert_eq!(keys.bek.version, world.bek_version);
                assert!(!keys.bek.restored, "the BEK was there: nothing to put back");
            }
            Err(e) => {
                let _ = e.to_string();
            }
        }
        let mut out = Vec::new();
        if vault.restore(&point, &mut out).await.is_ok() {
            assert!(out == world.data, "a restore released other bytes");
        }
        let end = point.size().min(5000);
        let start = end / 3;
        let mut out = Vec::new();
        if vault
            .restore_range(&point, start..end, &mut out)
            .await
            .is_ok()
        {
            assert!(
                out == world.data[start as usize..end as usize],
                "a range restore released other bytes"
            );
        }
    }
}
