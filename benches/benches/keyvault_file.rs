//! FileKeyVault latency: wrap and unwrap through the file backend, next to
//! the memory backend on the same key type in the same run, and the cost
//! of opening a vault with a key file or a passphrase (Argon2id).
//!
//! Groups (`Throughput::Elements(1)`, so criterion prints ops/s):
//! * `keyvault_file_wrap/<key>`, `keyvault_file_unwrap/<key>` for
//!   `rsa2048`, `rsa3072`, `rsa4096` (RSA-OAEP-256) and `aes256` (A256KW); ids `file`
//!   (`FileKeyVault`, a vault directory under the system temp dir) and
//!   `memory` (`MemoryKeyVault`).
//! * `keyvault_file_open/<root>`: `FileKeyVault::open` of a vault holding
//!   one key, with `key-file` or `passphrase` (the default Argon2id
//!   parameters: 64 MiB, 3 passes, 4 lanes).
//! * `keyvault_file_scale/<op>/<keys>`: `get`, `wrap` and `unwrap` (A256KW)
//!   on a vault of `10` or `10000` AES-256 keys (issue 11: a call's cost
//!   must not grow with the vault; the two are within 1.2x). The vaults
//!   are made through the API once, under `CARGO_TARGET_TMPDIR`, and
//!   reused by later runs (making 10,000 keys takes a while: each is a
//!   commit with two fsyncs). `KEYVAULT_SCALE_DIR=/dev/shm` keeps them on a
//!   tmpfs, which takes the disk's fsync latency out of the figures.
//!
//! Every file-backend call is a transaction: take the directory lock, check
//! `state.json` is unchanged (its first 64 bytes), append one MACed audit
//! entry and fsync it. Wrap and unwrap change no state, so that is all they
//! write; a change also writes `state.json.tmp`, fsyncs, renames and fsyncs
//! the directory. So the difference between `file` and `memory` here is
//! mostly one fsync of the disk the temp dir is on.
//!
//! Run: `cargo bench -p strongroom-benches --bench keyvault_file`.

use std::hint::black_box;
use std::path::PathBuf;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_main};
use strongroom_envelope::WrapAlgorithm;
use strongroom_keyvault::{
    FileKeyVault, KeyOptions, KeyType, KeyVault, MemoryKeyVault, Passphrase, Permissions,
    Principal, RootKeySource, VaultProperties,
};

const DEK: [u8; 32] = [0x42; 32];

struct Fixture {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    key_file: PathBuf,
}

fn fixture() -> Fixture {
    let tmp = tempfile::tempdir().expect("temp dir");
    let key_file = tmp.path().join("root.key");
    FileKeyVault::generate_key_file(&key_file).expect("key file");
    Fixture {
        dir: tmp.path().join("vault"),
        key_file,
        _tmp: tmp,
    }
}

fn wrap_unwrap(c: &mut Criterion) {
    let who = Principal::new("bench");
    for (name, key_type, alg) in [
        ("rsa2048", KeyType::Rsa2048, WrapAlgorithm::RsaOaep256),
        ("rsa3072", KeyType::Rsa3072, WrapAlgorithm::RsaOaep256),
        ("rsa4096", KeyType::Rsa4096, WrapAlgorithm::RsaOaep256),
        ("aes256", KeyType::Aes256, WrapAlgorithm::A256Kw),
    ] {
        let fx = fixture();
        let file = FileKeyVault::create(
            &fx.dir,
            VaultProperties::new("bench"),
            RootKeySource::KeyFile(fx.key_file.clone()),
        )
        .expect("file vault");
        let memory = MemoryKeyVault::new(VaultProperties::new("bench")).expect("memory vault");
        let vaults: [(&str, &dyn KeyVault); 2] = [("file", &file), ("memory", &memory)];
        let mut keys = Vec::new();
        for (id, vault) in vaults {
            vault
                .set_access_policy(&who, Permissions::all())
                .expect("policy");
            let info = vault
                .create_key(&who, "k", key_type, KeyOptions::default())
                .expect("create");
            let wrapped = vault
                .wrap_key(&who, "k", Some(&info.version), alg, &DEK)
                .expect("wrap")
                .wrapped;
            keys.push((id, vault, info.version, wrapped));
        }

        let mut g = c.benchmark_group(format!("keyvault_file_wrap/{name}"));
        g.throughput(Throughput::Elements(1));
        for (id, vault, version, _) in &keys {
            g.bench_function(BenchmarkId::from_parameter(id), |b| {
                b.iter(|| {
                    vault
                        .wrap_key(&who, "k", Some(version), alg, black_box(&DEK))
                        .expect("wrap")
                });
            });
        }
        g.finish();

        let mut g = c.benchmark_group(format!("keyvault_file_unwrap/{name}"));
        g.throughput(Throughput::Elements(1));
        for (id, vault, version, wrapped) in &keys {
            g.bench_function(BenchmarkId::from_parameter(id), |b| {
                b.iter(|| {
                    vault
                        .unwrap_key(&who, "k", version, alg, black_box(wrapped))
                        .expect("unwrap")
                });
            });
        }
        g.finish();
    }
}

fn open(c: &mut Criterion) {
    let mut g = c.benchmark_group("keyvault_file_open");
    g.throughput(Throughput::Elements(1));

    let fx = fixture();
    let vault = FileKeyVault::create(
        &fx.dir,
        VaultProperties::new("bench"),
        RootKeySource::KeyFile(fx.key_file.clone()),
    )
    .expect("create");
    let who = Principal::new("bench");
    vault
        .set_access_policy(&who, Permissions::all())
        .expect("policy");
    vault
        .create_key(&who, "k", KeyType::Aes256, KeyOptions::default())
        .expect("create key");
    drop(vault);
    g.bench_function(BenchmarkId::from_parameter("key-file"), |b| {
        b.iter(|| {
            FileKeyVault::open(&fx.dir, RootKeySource::KeyFile(fx.key_file.clone())).expect("open")
        });
    });

    let fx = fixture();
    let passphrase = "correct horse battery staple";
    let vault = FileKeyVault::create(
        &fx.dir,
        VaultProperties::new("bench"),
        RootKeySource::Passphrase(Passphrase::from(passphrase)),
    )
    .expect("create");
    vault
        .set_access_policy(&who, Permissions::all())
        .expect("policy");
    vault
        .create_key(&who, "k", KeyType::Aes256, KeyOptions::default())
        .expect("create key");
    drop(vault);
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(8));
    g.bench_function(BenchmarkId::from_parameter("passphrase"), |b| {
        b.iter(|| {
            FileKeyVault::open(
                &fx.dir,
                RootKeySource::Passphrase(Passphrase::from(passphrase)),
            )
            .expect("open")
        });
    });
    g.finish();
}

/// A vault of `keys` AES-256 keys named `k0`, `k1`, ..., made once and
/// kept for later runs.
fn scale_vault(keys: usize) -> FileKeyVault {
    // KEYVAULT_SCALE_DIR puts them elsewhere (a tmpfs such as /dev/shm
    // takes the disk's fsync latency, and its noise, out of the figures).
    let root = std::env::var_os("KEYVAULT_SCALE_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_TARGET_TMPDIR")), PathBuf::from);
    let base = root.join(format!("keyvault_scale_{keys}"));
    let dir = base.join("vault");
    let key_file = base.join("root.key");
    let done = base.join("complete");
    let who = Principal::new("bench");
    if !done.exists() {
        let _ = std::fs::remove_dir_all(&base);
        std::fs::create_dir_all(&base).expect("bench dir");
        FileKeyVault::generate_key_file(&key_file).expect("key file");
        let vault = FileKeyVault::create(
            &dir,
            VaultProperties::new("bench"),
            RootKeySource::KeyFile(key_file.clone()),
        )
        .expect("create");
        vault
            .set_access_policy(&who, Permissions::all())
            .expect("policy");
        for i in 0..keys {
            vault
                .create_key(
                    &who,
                    &format!("k{i}"),
                    KeyType::Aes256,
                    KeyOptions::default(),
                )
                .expect("create key");
        }
        std::fs::write(&done, b"").expect("marker");
    }
    FileKeyVault::open(&dir, RootKeySource::KeyFile(key_file)).expect("open")
}

fn scale(c: &mut Criterion) {
    let who = Principal::new("bench");
    let alg = WrapAlgorithm::A256Kw;
    let vaults: Vec<(usize, FileKeyVault)> = [10, 10_000]
        .into_iter()
        .map(|n| (n, scale_vault(n)))
        .collect();
    // A key in the middle of each vault, and a DEK wrapped under it.
    let keys: Vec<(usize, &FileKeyVault, String, String, Vec<u8>)> = vaults
        .iter()
        .map(|(n, vault)| {
            let name = format!("k{}", n / 2);
            let w = vault.wrap_key(&who, &name, None, alg, &DEK).expect("wrap");
            (*n, vault, name, w.version, w.wrapped)
        })
        .collect();
    let mut g = c.benchmark_group("keyvault_file_scale/get");
    g.throughput(Throughput::Elements(1));
    for (n, vault, name, _, _) in &keys {
        g.bench_function(BenchmarkId::from_parameter(n), |b| {
            b.iter(|| vault.get_key(&who, black_box(name), None).expect("get"));
        });
    }
    g.finish();
    let mut g = c.benchmark_group("keyvault_file_scale/wrap");
    g.throughput(Throughput::Elements(1));
    for (n, vault, name, version, _) in &keys {
        g.bench_function(BenchmarkId::from_parameter(n), |b| {
            b.iter(|| {
                vault
                    .wrap_key(&who, name, Some(version), alg, black_box(&DEK))
                    .expect("wrap")
            });
        });
    }
    g.finish();
    let mut g = c.benchmark_group("keyvault_file_scale/unwrap");
    g.throughput(Throughput::Elements(1));
    for (n, vault, name, version, wrapped) in &keys {
        g.bench_function(BenchmarkId::from_parameter(n), |b| {
            b.iter(|| {
                vault
                    .unwrap_key(&who, name, version, alg, black_box(wrapped))
                    .expect("unwrap")
            });
        });
    }
    g.finish();
}

fn benches() {
    let mut c = Criterion::default()
        .sample_size(30)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    wrap_unwrap(&mut c);
    open(&mut c);
    scale(&mut c);
}

criterion_main!(benches);
