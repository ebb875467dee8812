//! Backups to and restores from the cloud stores' emulators (issue 15,
//! "Performance"): `STORE_BENCH_MIB` MiB (default 1024) to Azurite (Azure
//! Blob) and `STORE_BENCH_MOTO_MIB` (default 256: moto reads a whole object
//! for each ranged get) to moto (S3), on 2 threads over loopback HTTP, against an
//! unencrypted upload and download of the same bytes through the same
//! `object_store` client: encryption must cost under 10% of the transfer.
//!
//! Groups `store_backup_<store>` and `store_restore_<store>`
//! (`Throughput::Bytes`):
//! * `strongroom`: `RecoveryVault::backup` from memory (1 MiB chunks,
//!   8 MiB parts, 2 parts in flight, the defaults) into a vault whose
//!   points are in the emulator (`Store::open` of `az://` / `s3://`), and
//!   `restore` into a reused, pre-touched buffer. Points are deleted after
//!   each backup, outside the timing.
//! * `plain`: the same bytes through the same client, unencrypted: an
//!   8 MiB-part multipart upload with 2 parts in flight, and a read back in
//!   8 MiB ranged gets with two in flight (as the vault reads).
//!
//! Before the groups, one pass of each prints the peak RSS it added
//! (VmHWM over VmRSS, reset through /proc/self/clear_refs), beside the
//! 2 GiB the input and output buffers hold; then `STORE_BENCH_PAIRS`
//! (default 5) backups and 4 × as many restores run in pairs with their
//! plain peer, alternating which goes first, and the median per-pair
//! speed ratio is printed: on a shared machine whose load drifts it holds
//! better than two groups timed minutes apart.
//!
//! Needs the emulators:
//! `bash scripts/emulators.sh -- cargo bench -p strongroom-benches --bench stores`

mod common;

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{Into, input, plain_upload};
use criterion::{Criterion, SamplingMode, Throughput, criterion_main};
use strongroom::object_store::path::Path;
use strongroom::object_store::{ObjectStore, ObjectStoreExt};
use strongroom::{BackupOptions, RecoveryVault, StoreOptions};
use strongroom_test_stores::{Emulator, EmulatorKind, azurite, moto, unique_prefix};

const PART: usize = 8 << 20;

fn mib(var: &str, default: usize) -> usize {
    std::env::var(var)
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(default)
        << 20
}

/// A /proc/self/status field in KiB.
fn status_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix(field))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// Runs `f` and returns the MiB of peak RSS it added.
fn peak_added_mib(f: impl FnOnce()) -> u64 {
    // "5" resets the peak to the current RSS (Linux).
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let before = status_kib("VmRSS:");
    f();
    status_kib("VmHWM:").saturating_sub(before) / 1024
}

async fn plain_download(store: &Arc<dyn ObjectStore>, path: &Path, out: &mut [u8], len: usize) {
    // As the vault reads: 8 MiB ranges, two in flight while one is copied.
    let mut requested = 0u64;
    let mut in_flight = VecDeque::new();
    let mut request = |in_flight: &mut VecDeque<_>| {
        while in_flight.len() < 2 && requested < len as u64 {
            let end = (requested + PART as u64).min(len as u64);
            let (store, path) = (Arc::clone(store), path.clone());
            let range = requested..end;
            in_flight.push_back(tokio::spawn(
                async move { store.get_range(&path, range).await },
            ));
            requested = end;
        }
    };
    request(&mut in_flight);
    let mut at = 0usize;
    while let Some(current) = in_flight.pop_front() {
        let bytes = current.await.expect("join").expect("range");
        request(&mut in_flight);
        out[at..at + bytes.len()].copy_from_slice(&bytes);
        at += bytes.len();
    }
    assert_eq!(at, len);
}

/// A group of whole-data runs: 10 samples, one run each.
fn group<'c>(
    c: &'c mut Criterion,
    name: &str,
    len: usize,
) -> criterion::BenchmarkGroup<'c, criterion::measurement::WallTime> {
    let mut g = c.benchmark_group(name);
    g.throughput(Throughput::Bytes(len as u64))
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_millis(100))
        .measurement_time(Duration::from_secs(30));
    g
}

fn bench_store(c: &mut Criterion, emulator: Emulator, data: &[u8], out: &mut [u8]) {
    let len = data.len();
    let name = match emulator.kind() {
        EmulatorKind::Azurite => "azurite",
        EmulatorKind::Moto => "moto",
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let mut options = StoreOptions::default()
        .from_env(false)
        .allow_http_loopback(true)
        // 1 GiB objects on a loaded emulator: no request cut short.
        .request_timeout(Duration::from_secs(600));
    for (key, value) in emulator.config(emulator.addr()) {
        options = options.config(key, value);
    }
    let store = options
        .open(&emulator.url(&unique_prefix("bench")))
        .expect("store");
    let client = store.object_store();
    let plain_path = Path::from(format!("{}/plain", store.prefix()));
    let dir = tempfile::tempdir().expect("dir");
    let vault = runtime
        .block_on(RecoveryVault::create_local_with_store(
            dir.path(),
            "bench",
            store,
        ))
        .expect("vault");
    let item = runtime.block_on(vault.protect("disk")).expect("item");

    // Peak memory, one pass each.
    let mut point = None;
    let backup_mib = peak_added_mib(|| {
        point = Some(
            runtime
                .block_on(vault.backup(&item, data, BackupOptions::default()))
                .expect("backup"),
        );
    });
    let point = point.expect("a point");
    let restore_mib = peak_added_mib(|| {
        runtime
            .block_on(vault.restore(&point, Into { buf: out, at: 0 }))
            .expect("restore");
    });
    assert!(out[..len] == data[..], "{name}: round trip");
    let upload_mib = peak_added_mib(|| runtime.block_on(plain_upload(&client, &plain_path, data)));
    let download_mib =
        peak_added_mib(|| runtime.block_on(plain_download(&client, &plain_path, out, len)));
    eprintln!(
        "{name}: parts in flight 2 (8 MiB); peak RSS added: backup {backup_mib} MiB, restore {restore_mib} MiB, plain upload {upload_mib} MiB, plain download {download_mib} MiB"
    );

    // Paired runs, alternating which goes first: on a shared machine whose
    // load drifts, the median of per-pair ratios holds better than two
    // groups timed minutes apart.
    let pairs: usize = std::env::var("STORE_BENCH_PAIRS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let mut backup_ratios = Vec::new();
    let mut restore_ratios = Vec::new();
    for pair in 0..pairs {
        let ours = || {
            let began = Instant::now();
            let point = runtime
                .block_on(vault.backup(&item, data, BackupOptions::default()))
                .expect("backup");
            let took = began.elapsed();
            runtime
                .block_on(vault.delete_point(&point))
                .expect("delete");
            took
        };
        let theirs = || {
            let began = Instant::now();
            runtime.block_on(plain_upload(&client, &plain_path, data));
            began.elapsed()
        };
        let (a, b) = if pair % 2 == 0 {
            let a = ours();
            (a, theirs())
        } else {
            let b = theirs();
            (ours(), b)
        };
        backup_ratios.push(b.as_secs_f64() / a.as_secs_f64());
        for round in 0..4 {
            let ours = |out: &mut [u8]| {
                let began = Instant::now();
                runtime
                    .block_on(vault.restore(&point, Into { buf: out, at: 0 }))
                    .expect("restore");
                began.elapsed()
            };
            let (a, b) = if (pair + round) % 2 == 0 {
                let a = ours(out);
                let began = Instant::now();
                runtime.block_on(plain_download(&client, &plain_path, out, len));
                (a, began.elapsed())
            } else {
                let began = Instant::now();
                runtime.block_on(plain_download(&client, &plain_path, out, len));
                let b = began.elapsed();
                (ours(out), b)
            };
            restore_ratios.push(b.as_secs_f64() / a.as_secs_f64());
        }
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
    };
    eprintln!(
        "{name}: paired speed ratios (plain time / strongroom time, median): backup {:.3} over {} pairs, restore {:.3} over {} pairs",
        median(&mut backup_ratios),
        backup_ratios.len(),
        median(&mut restore_ratios),
        restore_ratios.len()
    );

    let mut g = group(c, &format!("store_backup_{name}"), len);
    g.bench_function("strongroom", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let began = Instant::now();
                let point = runtime
                    .block_on(vault.backup(&item, data, BackupOptions::default()))
                    .expect("backup");
                total += began.elapsed();
                runtime
                    .block_on(vault.delete_point(&point))
                    .expect("delete");
            }
            total
        });
    });
    g.bench_function("plain", |b| {
        b.iter(|| runtime.block_on(plain_upload(&client, &plain_path, data)));
    });
    g.finish();

    let mut g = group(c, &format!("store_restore_{name}"), len);
    g.bench_function("strongroom", |b| {
        b.iter(|| {
            let n = runtime
                .block_on(vault.restore(&point, Into { buf: out, at: 0 }))
                .expect("restore");
            assert_eq!(n as usize, len);
        });
    });
    g.bench_function("plain", |b| {
        b.iter(|| runtime.block_on(plain_download(&client, &plain_path, out, len)));
    });
    g.finish();
    runtime
        .block_on(vault.delete_point(&point))
        .expect("delete");
    runtime
        .block_on(client.delete(&plain_path))
        .expect("delete plain");
}

fn bench(c: &mut Criterion) {
    // moto serves a ranged get by reading the whole object (an emulator
    // gap): restoring n bytes in 8 MiB ranges costs O(n²) there, 85 s for
    // 1 GiB. Its default is therefore 256 MiB.
    for (emulator, len) in [
        (azurite(), mib("STORE_BENCH_MIB", 1024)),
        (moto(), mib("STORE_BENCH_MOTO_MIB", 256)),
    ] {
        let data = input(len);
        let mut out = vec![1u8; len + (1 << 20)];
        bench_store(c, emulator, &data, &mut out);
    }
}

fn benches() {
    let mut c = Criterion::default().configure_from_args();
    bench(&mut c);
}

criterion_main!(benches);
