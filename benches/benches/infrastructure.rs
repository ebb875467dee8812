//! Infrastructure (double) encryption (issue 13, R16): what the second
//! layer costs. Backs up, then restores, `INFRA_BENCH_MIB` MiB (default
//! 256) through the local store on 2 threads, in two vaults that differ
//! only in that setting: both under the same RSA-3072 customer key in a
//! `FileKeyVault` (so the per-point key work is alike, and small at this
//! size), one with one layer, one with two.
//!
//! Groups (`Throughput::Bytes`):
//! * `infrastructure_backup/{one-layer,two-layers}`: one
//!   `RecoveryVault::backup` from memory per iteration (default 1 MiB
//!   chunks, 8 MiB parts, 2 in flight); the point is deleted after each
//!   iteration, outside the timing.
//! * `infrastructure_restore/{one-layer,two-layers}`: one `restore` of a
//!   point of that size into a reused, pre-touched buffer.
//!
//! `VAULT_BENCH_DIR` sets where the vaults go (default: the system
//! temporary directory; `/dev/shm` takes the disk out, leaving the
//! encryption's cost in plain view).
//!
//! Run: `cargo bench -p strongroom-benches --bench infrastructure`.

mod common;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{Into, base_dir, customer_key_vault, input};
use criterion::{Criterion, SamplingMode, Throughput, criterion_main};
use strongroom::keyvault::{KeyVault, Permissions};
use strongroom::policy::{CustomerKey, EncryptionSettings};
use strongroom::{BackupOptions, Item, RecoveryVault};

fn len() -> usize {
    std::env::var("INFRA_BENCH_MIB")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(256)
        << 20
}

/// A vault in `dir` under the customer key of `kv`, with infrastructure
/// encryption or not, one item protected.
async fn vault(dir: PathBuf, kv: &Arc<dyn KeyVault>, double: bool) -> (RecoveryVault, Item) {
    let vault = RecoveryVault::create_local(dir, "bench")
        .await
        .expect("vault");
    vault.attach_key_vault(kv.clone()).expect("attach");
    kv.set_access_policy(&vault.system_identity(), Permissions::key_user())
        .expect("grant");
    let mut settings = EncryptionSettings::customer_managed(CustomerKey::new("contoso", "cmk"));
    if double {
        settings = settings.with_infrastructure_encryption();
    }
    vault.set_encryption(settings).await.expect("settings");
    let item = vault.protect("disk").await.expect("item");
    (vault, item)
}

fn bench(c: &mut Criterion) {
    let len = len();
    let data = input(len);
    let mut out = vec![1u8; len];
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let tmp = tempfile::tempdir_in(base_dir()).expect("bench dir");
    let (kv, _admin) = customer_key_vault(tmp.path(), "contoso");
    let vaults = [("one-layer", false), ("two-layers", true)].map(|(name, double)| {
        let dir = tmp.path().join(name);
        (name, runtime.block_on(vault(dir, &kv, double)))
    });

    let mut g = c.benchmark_group("infrastructure_backup");
    g.throughput(Throughput::Bytes(len as u64))
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_millis(100))
        .measurement_time(Duration::from_secs(15));
    for (name, (vault, item)) in &vaults {
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
                        point.infrastructure_encrypted(),
                        *name == "two-layers",
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

    let mut g = c.benchmark_group("infrastructure_restore");
    g.throughput(Throughput::Bytes(len as u64))
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_millis(100))
        .measurement_time(Duration::from_secs(15));
    for (name, (vault, item)) in &vaults {
        let point = runtime
            .block_on(vault.backup(item, data.as_slice(), BackupOptions::default()))
            .expect("backup");
        out.fill(0);
        g.bench_function(*name, |b| {
            b.iter(|| {
                let n = runtime
                    .block_on(vault.restore(
                        &point,
                        Into {
                            buf: &mut out,
                            at: 0,
                        },
                    ))
                    .expect("restore");
                assert_eq!(n as usize, len);
            });
        });
        assert!(out == data, "{name}: round trip");
    }
    g.finish();
}

fn benches() {
    let mut c = Criterion::default().configure_from_args();
    bench(&mut c);
}

criterion_main!(benches);
