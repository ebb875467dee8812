//! The recovery vault end to end (issue 12, "Performance"): back up then
//! restore `VAULT_BENCH_MIB` MiB (default 1024) through the local store on
//! 2 threads, against the peer a user would otherwise pick and the limit.
//!
//! Group `vault_backup_restore` (`Throughput::Bytes`), one backup and one
//! restore of the whole data per iteration, timed together:
//! * `strongroom-2t`: `RecoveryVault::backup` from memory (default 1 MiB
//!   chunks, 8 MiB parts, 2 in flight) into a vault made by
//!   `create_local` (the local filesystem with fsync), then `restore` into a
//!   reused, pre-touched buffer. The platform key (A256KW) in a
//!   `FileKeyVault`: the wrap and the check unwrap are included. The point
//!   is deleted after each iteration, outside the timing.
//! * `age`: the `age` crate encrypting the same bytes to one X25519
//!   recipient into a file (buffered, then `sync_all`, as the store
//!   fsyncs), then decrypting the file back into the buffer.
//! * `plain-object-store`: the same bytes uploaded unencrypted through the
//!   same `LocalFileSystem` store (fsync), as an 8 MiB-part multipart
//!   upload with 2 parts in flight, then read back in 8 MiB ranged gets
//!   with one ahead, as the vault reads (the limit).
//!
//! Group `vault_range_4k`: one 4 KiB `restore_range` at a fresh offset
//! each iteration from a point of the same size (reads and authenticates
//! the one or two 1 MiB chunks holding it).
//!
//! `VAULT_BENCH_DIR` sets where the vault and files go (default: the
//! system temporary directory; `/dev/shm` takes the disk out).
//!
//! Run: `cargo bench -p strongroom-benches --bench vault`.

mod common;

use std::hint::black_box;
use std::io::{BufWriter, Read, Write};
use std::iter;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{Into, base_dir, input, plain_upload};
use criterion::{Criterion, SamplingMode, Throughput, criterion_main};
use strongroom::object_store::local::LocalFileSystem;
use strongroom::object_store::path::Path;
use strongroom::object_store::{ObjectStore, ObjectStoreExt};
use strongroom::{BackupOptions, RecoveryVault};

fn len() -> usize {
    std::env::var("VAULT_BENCH_MIB")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(1024)
        << 20
}

fn bench(c: &mut Criterion) {
    let len = len();
    let data = input(len);
    let mut out = vec![1u8; len + (1 << 20)];
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let tmp = tempfile::tempdir_in(base_dir()).expect("bench dir");
    let vault = runtime
        .block_on(RecoveryVault::create_local(
            tmp.path().join("vault"),
            "bench",
        ))
        .expect("vault");
    let item = runtime.block_on(vault.protect("disk")).expect("item");

    let mut g = c.benchmark_group("vault_backup_restore");
    g.throughput(Throughput::Bytes(len as u64))
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_millis(100))
        .measurement_time(Duration::from_secs(20));

    g.bench_function("strongroom-2t", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let began = Instant::now();
                let point = runtime
                    .block_on(vault.backup(&item, data.as_slice(), BackupOptions::default()))
                    .expect("backup");
                let n = runtime
                    .block_on(vault.restore(
                        &point,
                        Into {
                            buf: &mut out,
                            at: 0,
                        },
                    ))
                    .expect("restore");
                total += began.elapsed();
                assert_eq!(n as usize, len);
                runtime
                    .block_on(vault.delete_point(&point))
                    .expect("delete");
            }
            total
        });
    });
    assert!(out[..len] == data[..], "strongroom round trip");

    let identity = age::x25519::Identity::generate();
    let recipient = identity.to_public();
    let age_file = tmp.path().join("data.age");
    g.bench_function("age", |b| {
        b.iter(|| {
            let file = std::fs::File::create(&age_file).expect("create");
            let mut file = BufWriter::with_capacity(1 << 20, file);
            let enc =
                age::Encryptor::with_recipients(iter::once(&recipient as &dyn age::Recipient))
                    .expect("age recipients");
            let mut w = enc.wrap_output(&mut file).expect("age header");
            w.write_all(black_box(&data)).expect("age write");
            w.finish().expect("age finish");
            file.into_inner().expect("flush").sync_all().expect("sync");

            let file = std::io::BufReader::with_capacity(
                1 << 20,
                std::fs::File::open(&age_file).expect("open"),
            );
            let dec = age::Decryptor::new_buffered(file).expect("age header");
            let mut r = dec
                .decrypt(iter::once(&identity as &dyn age::Identity))
                .expect("age unwrap");
            let mut n = 0;
            loop {
                match r.read(&mut out[n..]).expect("age read") {
                    0 => break,
                    k => n += k,
                }
            }
            assert_eq!(n, len);
        });
    });
    assert!(out[..len] == data[..], "age round trip");

    let plain_dir = tmp.path().join("plain");
    std::fs::create_dir_all(&plain_dir).expect("plain dir");
    let store: Arc<dyn ObjectStore> = Arc::new(
        LocalFileSystem::new_with_prefix(&plain_dir)
            .expect("store")
            .with_fsync(true),
    );
    let path = Path::from("data");
    g.bench_function("plain-object-store", |b| {
        b.iter(|| {
            runtime.block_on(async {
                plain_upload(&store, &path, &data).await;
                // Read back as the vault does: 8 MiB ranged gets, the next
                // one in flight while the last is copied out.
                let part = 8u64 << 20;
                let fetch = |at: u64| {
                    let (store, path) = (Arc::clone(&store), path.clone());
                    let end = (at + part).min(len as u64);
                    tokio::spawn(async move { store.get_range(&path, at..end).await })
                };
                let mut at = 0u64;
                let mut next = Some(fetch(0));
                while let Some(current) = next.take() {
                    let bytes = current.await.expect("join").expect("range");
                    let end = at + bytes.len() as u64;
                    if end < len as u64 {
                        next = Some(fetch(end));
                    }
                    out[at as usize..end as usize].copy_from_slice(&bytes);
                    at = end;
                }
                assert_eq!(at as usize, len);
            });
        });
    });
    g.finish();

    let point = runtime
        .block_on(vault.backup(&item, data.as_slice(), BackupOptions::default()))
        .expect("backup");
    let mut g = c.benchmark_group("vault_range_4k");
    g.sample_size(50)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(5));
    let mut offset = 12_345u64;
    let mut block = vec![0u8; 4096];
    g.bench_function("strongroom", |b| {
        b.iter(|| {
            offset = (offset
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1))
                % (len as u64 - 4096);
            let n = runtime
                .block_on(vault.restore_range(
                    &point,
                    offset..offset + 4096,
                    Into {
                        buf: &mut block,
                        at: 0,
                    },
                ))
                .expect("range");
            assert_eq!(n, 4096);
        });
    });
    g.finish();
    assert!(
        block[..] == data[offset as usize..offset as usize + 4096],
        "range bytes"
    );
}

fn benches() {
    let mut c = Criterion::default().configure_from_args();
    bench(&mut c);
}

criterion_main!(benches);
