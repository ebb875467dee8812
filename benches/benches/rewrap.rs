//! The rewrap job (issue 13, "Performance"): points per second moving a
//! whole vault to a new key version, on 2 threads, with the platform key
//! (A256KW) and with an RSA-3072 customer key in a `FileKeyVault`; the cost
//! per point at 1 KiB against 64 MiB points; and the limit, one key vault
//! unwrap + wrap + one header write.
//!
//! Each iteration rotates the key first (not timed), so that every point
//! has work; then times one `rewrap` job (4 points in flight).
//!
//! Groups:
//! * `rewrap_points/{platform-a256kw,customer-rsa3072}`: `REWRAP_BENCH_POINTS`
//!   points of 1 KiB (default 1000; the figure is 10,000).
//! * `rewrap_per_point/{1KiB,64MiB}`: 32 points of each size, platform key.
//! * `rewrap_limit/platform-a256kw`: `unwrap_key` + `wrap_key` in the
//!   platform `FileKeyVault` and one 300-byte put through the same store,
//!   per point, sequentially.
//!
//! `VAULT_BENCH_DIR` sets where vaults go (default: the system temporary
//! directory).
//!
//! Run: `cargo bench -p strongroom-benches --bench rewrap`.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{base_dir, customer_key_vault};
use criterion::{Criterion, SamplingMode, Throughput, criterion_main};
use strongroom::keyvault::{
    FileKeyVault, KeyOptions, KeyType, KeyVault, Permissions, Principal, RootKeySource,
    VaultProperties,
};
use strongroom::object_store::local::LocalFileSystem;
use strongroom::object_store::path::Path;
use strongroom::object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use strongroom::policy::{CustomerKey, EncryptionSettings};
use strongroom::{BackupOptions, RecoveryVault, RewrapOptions};
use strongroom_envelope::WrapAlgorithm;

/// Points of each size in `rewrap_per_point` (2 GiB of 64 MiB points).
const PER_POINT_POINTS: usize = 32;

fn points() -> usize {
    std::env::var("REWRAP_BENCH_POINTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000)
}

/// A vault with `count` points of `size` bytes.
async fn vault_with(dir: &std::path::Path, count: usize, size: usize) -> RecoveryVault {
    let vault = RecoveryVault::create_local(dir, "rewrap-bench")
        .await
        .expect("vault");
    fill(&vault, count, size).await;
    vault
}

async fn fill(vault: &RecoveryVault, count: usize, size: usize) {
    let item = vault.protect("disk").await.expect("item");
    let data = vec![0x5au8; size];
    for _ in 0..count {
        vault
            .backup(&item, data.as_slice(), BackupOptions::default())
            .await
            .expect("backup");
    }
}

/// Times one rewrap job per iteration, rotating first with `rotate`.
fn job<F, Fut>(
    runtime: &tokio::runtime::Runtime,
    vault: &RecoveryVault,
    rotate: F,
) -> impl FnMut(u64) -> Duration
where
    F: Fn() -> Fut,
    Fut: Future<Output = ()>,
{
    move |iters| {
        let mut total = Duration::ZERO;
        for _ in 0..iters {
            runtime.block_on(rotate());
            let began = Instant::now();
            let report = runtime
                .block_on(vault.rewrap(RewrapOptions::default()))
                .expect("rewrap");
            total += began.elapsed();
            assert!(
                report.skipped.is_empty() && report.rewrapped > 0,
                "{report:?}"
            );
        }
        total
    }
}

fn bench(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let tmp = tempfile::tempdir_in(base_dir()).expect("bench dir");
    let n = points();

    // The platform key.
    let platform = runtime.block_on(vault_with(&tmp.path().join("platform"), n, 1024));
    // An RSA-3072 customer key in a file key vault.
    let customer = runtime.block_on(async {
        let vault = RecoveryVault::create_local(tmp.path().join("customer"), "cmk-bench")
            .await
            .expect("vault");
        let (kv, admin) = customer_key_vault(tmp.path(), "contoso-kv");
        kv.set_access_policy(&vault.system_identity(), Permissions::key_user())
            .expect("grant");
        vault.attach_key_vault(kv.clone()).expect("attach");
        vault
            .set_encryption(EncryptionSettings::customer_managed(CustomerKey::new(
                "contoso-kv",
                "cmk",
            )))
            .await
            .expect("customer key");
        fill(&vault, n, 1024).await;
        (vault, kv, admin)
    });

    let mut g = c.benchmark_group("rewrap_points");
    g.throughput(Throughput::Elements(n as u64))
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_millis(1))
        .measurement_time(Duration::from_secs(5));
    g.bench_function("platform-a256kw", |b| {
        b.iter_custom(job(&runtime, &platform, || async {
            platform.rotate_platform_key().await.expect("rotate");
        }));
    });
    let (cmk_vault, kv, admin) = &customer;
    g.bench_function("customer-rsa3072", |b| {
        b.iter_custom(job(&runtime, cmk_vault, || async {
            kv.rotate_key(admin, "cmk", KeyOptions::default())
                .expect("rotate");
        }));
    });
    g.finish();

    let per = PER_POINT_POINTS;
    let small = runtime.block_on(vault_with(&tmp.path().join("small"), per, 1024));
    let large = runtime.block_on(vault_with(&tmp.path().join("large"), per, 64 << 20));
    let mut g = c.benchmark_group("rewrap_per_point");
    g.throughput(Throughput::Elements(per as u64))
        .sample_size(30)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_millis(1))
        .measurement_time(Duration::from_secs(10));
    for (name, vault) in [("1KiB", &small), ("64MiB", &large)] {
        g.bench_function(name, |b| {
            b.iter_custom(job(&runtime, vault, || async {
                vault.rotate_platform_key().await.expect("rotate");
            }));
        });
    }
    g.finish();

    // The limit: the key vault's unwrap + wrap and one header write.
    let limit_dir = tmp.path().join("limit");
    std::fs::create_dir_all(&limit_dir).expect("limit dir");
    let key_file = limit_dir.join("kv.key");
    FileKeyVault::generate_key_file(&key_file).expect("key file");
    let kv = FileKeyVault::create(
        limit_dir.join("kv"),
        VaultProperties::new("limit"),
        RootKeySource::KeyFile(key_file),
    )
    .expect("key vault");
    let who = Principal::new("bench");
    kv.set_access_policy(&who, Permissions::all())
        .expect("policy");
    kv.create_key(&who, "k", KeyType::Aes256, KeyOptions::default())
        .expect("key");
    let wrapped = kv
        .wrap_key(&who, "k", None, WrapAlgorithm::A256Kw, &[7u8; 32])
        .expect("wrap");
    let store: Arc<dyn ObjectStore> = Arc::new(
        LocalFileSystem::new_with_prefix(&limit_dir)
            .expect("store")
            .with_fsync(true),
    );
    let header = Path::from("header");
    let mut g = c.benchmark_group("rewrap_limit");
    g.throughput(Throughput::Elements(1))
        .sample_size(30)
        .measurement_time(Duration::from_secs(3));
    g.bench_function("platform-a256kw", |b| {
        b.iter(|| {
            let dek = kv
                .unwrap_key(
                    &who,
                    "k",
                    &wrapped.version,
                    WrapAlgorithm::A256Kw,
                    &wrapped.wrapped,
                )
                .expect("unwrap");
            let again = kv
                .wrap_key(&who, "k", None, WrapAlgorithm::A256Kw, &dek)
                .expect("wrap");
            runtime
                .block_on(store.put(&header, PutPayload::from(vec![again.wrapped[0]; 300])))
                .expect("put");
        });
    });
    g.finish();
}

fn benches() {
    let mut c = Criterion::default().configure_from_args();
    bench(&mut c);
}

criterion_main!(benches);
