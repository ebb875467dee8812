//! Items encrypted in the guest (issue 16, R17): what carrying the disk
//! keys costs a backup. Two vaults' items differ only in that: one
//! protected with no source encryption, one with in-guest encryption (a BEK
//! secret wrapped by an RSA-3072 KEK, both in a `FileKeyVault`), so each of
//! its backups first checks the identity's permissions, lists the BEK's and
//! KEK's versions, backs both up through the key vault (each call audited
//! and fsynced there) and stores their backups as the point's attachment.
//!
//! Groups (`Throughput::Bytes`), at 1 MiB (where the fixed cost shows) and
//! `DISK_BENCH_MIB` MiB (default 64):
//! * `disk_encryption_backup_<size>/{none,in-guest}`: one
//!   `RecoveryVault::backup` from memory per iteration; the point is
//!   deleted after each iteration, outside the timing.
//! * `disk_encryption_restore_keys`: one `restore_disk_keys` of a point
//!   whose BEK and KEK are still there (the point's header opened, its key
//!   backups authenticated, two lookups in the key vault): absolute time.
//!
//! `VAULT_BENCH_DIR` sets where the vaults go (default: the system
//! temporary directory).
//!
//! Run: `cargo bench -p strongroom-benches --bench disk_encryption`.

mod common;

use std::time::{Duration, Instant};

use common::{base_dir, customer_key_vault, input};
use criterion::{Criterion, SamplingMode, Throughput, criterion_main};
use strongroom::envelope::WrapAlgorithm;
use strongroom::keyvault::{Permission, Permissions, SecretOptions};
use strongroom::{BackupOptions, KeyReference, RecoveryVault, SecretReference, SourceEncryption};

fn large() -> usize {
    std::env::var("DISK_BENCH_MIB")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(64)
        << 20
}

fn bench(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let tmp = tempfile::tempdir_in(base_dir()).expect("bench dir");
    // The machine's key vault: the KEK ("cmk", RSA-3072) and the BEK,
    // wrapped by it as Azure Disk Encryption keeps it.
    let (kv, admin) = customer_key_vault(tmp.path(), "contoso");
    let wrapped = kv
        .wrap_key(&admin, "cmk", None, WrapAlgorithm::RsaOaep256, &[0x5a; 32])
        .expect("wrap the BEK");
    kv.set_secret(&admin, "bek", &wrapped.wrapped, SecretOptions::default())
        .expect("the BEK");
    let vault = runtime
        .block_on(RecoveryVault::create_local(
            tmp.path().join("vault"),
            "bench",
        ))
        .expect("vault");
    vault.attach_key_vault(kv.clone()).expect("attach");
    kv.set_access_policy(
        &vault.system_identity(),
        Permissions::disk_encryption_backup()
            .with(Permission::Restore)
            .with(Permission::RestoreSecret),
    )
    .expect("grant");
    let items = [
        ("none", SourceEncryption::None),
        (
            "in-guest",
            SourceEncryption::InGuest {
                bek: SecretReference::latest("contoso", "bek"),
                kek: Some(KeyReference::latest("contoso", "cmk")),
            },
        ),
    ]
    .map(|(name, source)| {
        let item = runtime
            .block_on(vault.protect_with(name, source))
            .expect("item");
        (name, item)
    });

    for (label, len) in [("1MiB", 1 << 20), ("large", large())] {
        let data = input(len);
        let mut g = c.benchmark_group(format!("disk_encryption_backup_{label}"));
        g.throughput(Throughput::Bytes(len as u64))
            .sample_size(10)
            .sampling_mode(SamplingMode::Flat)
            .warm_up_time(Duration::from_millis(100))
            .measurement_time(Duration::from_secs(10));
        for (name, item) in &items {
            g.bench_function(*name, |b| {
                b.iter_custom(|iters| {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        let began = Instant::now();
                        let point = runtime
                            .block_on(vault.backup(item, data.as_slice(), BackupOptions::default()))
                            .expect("backup");
                        total += began.elapsed();
                        assert_eq!(
                            point.source_encryption().is_none(),
                            *name == "none",
                            "{name}"
                        );
                        runtime
                            .block_on(vault.delete_point(&point))
                            .expect("delete");
                    }
                    total
                });
            });
        }
        g.finish();
    }

    let (_, in_guest) = &items[1];
    let point = runtime
        .block_on(vault.backup(in_guest, &b"disk"[..], BackupOptions::default()))
        .expect("backup");
    let mut g = c.benchmark_group("disk_encryption_restore_keys");
    g.sample_size(20)
        .warm_up_time(Duration::from_millis(100))
        .measurement_time(Duration::from_secs(5));
    g.bench_function("bek-and-kek-present", |b| {
        b.iter(|| {
            let keys = runtime
                .block_on(vault.restore_disk_keys(&point, None))
                .expect("restore keys");
            assert!(!keys.bek.restored);
        });
    });
    g.finish();
}

fn benches() {
    let mut c = Criterion::default().configure_from_args();
    bench(&mut c);
}

criterion_main!(benches);
