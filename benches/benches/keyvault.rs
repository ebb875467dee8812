//! Key vault wrap / unwrap latency: the memory backend (all the vault's
//! rules: access check, key state, audit entry, sealed key material) per
//! key size, next to the raw RSA-OAEP-256 operation of `rsa` 0.10 (the
//! software path's engine) and `aws-lc-rs`, on the same key, in the same
//! run.
//!
//! Groups (`Throughput::Elements(1)`, so criterion prints ops/s):
//! * `keyvault_wrap/<key>`, `keyvault_unwrap/<key>` for `rsa2048`,
//!   `rsa3072`, `rsa4096` (RSA-OAEP-256) and `aes256` (A256KW);
//! * ids: `memory` (`MemoryKeyVault::wrap_key` / `unwrap_key`), `rsa`
//!   (`PublicKey::oaep_encrypt` / blinded `PrivateKey::oaep_decrypt`),
//!   `aws-lc-rs` (`OaepPublicEncryptingKey` / `OaepPrivateDecryptingKey`).
//!   For AES the peers are `strongroom-aes` KW and `aws-lc-rs` KW.
//!
//! The vault unwrap opens the sealed PKCS#8 key and parses it on every
//! call (no decrypted key is cached between calls); the difference between
//! `memory` and `rsa` is that cost plus the bookkeeping.
//!
//! Run: `cargo bench -p strongroom-benches --bench keyvault`.

use std::hint::black_box;
use std::time::Duration;

use aws_lc_rs::key_wrap::{AES_256, AesKek, KeyWrap as _};
use aws_lc_rs::rsa::{OAEP_SHA256_MGF1SHA256, OaepPrivateDecryptingKey, PrivateDecryptingKey};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_main};
use strongroom_aes::Aes256Key;
use strongroom_aes::kw::Aes256Kw;
use strongroom_envelope::WrapAlgorithm;
use strongroom_envelope::rsa;
use strongroom_envelope::rsa::pkcs8::EncodePrivateKey;
use strongroom_envelope::rsa::sha2::Sha256;
use strongroom_keyvault::{
    KeyImport, KeyOptions, KeyVault, MemoryKeyVault, Permissions, Principal, VaultProperties,
};

const DEK: [u8; 32] = [0x42; 32];

fn vault() -> (MemoryKeyVault, Principal) {
    let vault = MemoryKeyVault::new(VaultProperties::new("bench")).expect("vault");
    let who = Principal::new("bench");
    vault
        .set_access_policy(&who, Permissions::all())
        .expect("policy");
    (vault, who)
}

fn rsa_sizes(c: &mut Criterion) {
    for bits in [2048usize, 3072, 4096] {
        let key = rsa::PrivateKey::new(&mut getrandom::SysRng, bits).expect("generate");
        let der = key.to_pkcs8_der().expect("pkcs8");
        let public = key.to_public_key();
        let (vault, who) = vault();
        let info = vault
            .import_key(
                &who,
                "k",
                KeyImport::Pkcs8Der(der.as_bytes()),
                KeyOptions::default(),
            )
            .expect("import");
        let aws_private = PrivateDecryptingKey::from_pkcs8(der.as_bytes()).expect("aws-lc-rs key");
        let aws_public = aws_lc_rs::rsa::OaepPublicEncryptingKey::new(aws_private.public_key())
            .expect("aws-lc-rs public");
        let aws_private = OaepPrivateDecryptingKey::new(aws_private).expect("aws-lc-rs oaep");
        let wrapped = vault
            .wrap_key(&who, "k", None, WrapAlgorithm::RsaOaep256, &DEK)
            .expect("wrap")
            .wrapped;
        let name = format!("rsa{bits}");

        let mut g = c.benchmark_group(format!("keyvault_wrap/{name}"));
        g.throughput(Throughput::Elements(1));
        g.bench_function(BenchmarkId::from_parameter("memory"), |b| {
            b.iter(|| {
                vault
                    .wrap_key(
                        &who,
                        "k",
                        Some(&info.version),
                        WrapAlgorithm::RsaOaep256,
                        black_box(&DEK),
                    )
                    .expect("wrap")
            });
        });
        g.bench_function(BenchmarkId::from_parameter("rsa"), |b| {
            b.iter(|| {
                public
                    .oaep_encrypt::<Sha256>(black_box(&DEK))
                    .expect("encrypt")
            });
        });
        g.bench_function(BenchmarkId::from_parameter("aws-lc-rs"), |b| {
            let mut out = vec![0u8; aws_public.ciphertext_size()];
            b.iter(|| {
                aws_public
                    .encrypt(&OAEP_SHA256_MGF1SHA256, black_box(&DEK), &mut out, None)
                    .expect("encrypt")
                    .len()
            });
        });
        g.finish();

        let mut g = c.benchmark_group(format!("keyvault_unwrap/{name}"));
        g.throughput(Throughput::Elements(1));
        g.bench_function(BenchmarkId::from_parameter("memory"), |b| {
            b.iter(|| {
                vault
                    .unwrap_key(
                        &who,
                        "k",
                        &info.version,
                        WrapAlgorithm::RsaOaep256,
                        black_box(&wrapped),
                    )
                    .expect("unwrap")
            });
        });
        g.bench_function(BenchmarkId::from_parameter("rsa"), |b| {
            b.iter(|| {
                key.oaep_decrypt::<Sha256>(black_box(&wrapped))
                    .expect("decrypt")
            });
        });
        g.bench_function(BenchmarkId::from_parameter("aws-lc-rs"), |b| {
            let mut out = vec![0u8; aws_private.min_output_size()];
            b.iter(|| {
                aws_private
                    .decrypt(&OAEP_SHA256_MGF1SHA256, black_box(&wrapped), &mut out, None)
                    .expect("decrypt")
                    .len()
            });
        });
        g.finish();
    }
}

fn aes(c: &mut Criterion) {
    let secret = [0x17u8; 32];
    let (vault, who) = vault();
    // base64url of the 32 bytes 0x17 (checked below against `secret`).
    let jwk = r#"{"kty":"oct","k":"FxcXFxcXFxcXFxcXFxcXFxcXFxcXFxcXFxcXFxcXFxc"}"#;
    let info = vault
        .import_key(&who, "k", KeyImport::Jwk(jwk), KeyOptions::default())
        .expect("import");
    let kw = Aes256Kw::new(&Aes256Key::from_bytes(secret));
    let wrapped = vault
        .wrap_key(&who, "k", None, WrapAlgorithm::A256Kw, &DEK)
        .expect("wrap")
        .wrapped;
    assert_eq!(wrapped, kw.wrap(&DEK).expect("kw"), "same key in the vault");

    let mut g = c.benchmark_group("keyvault_wrap/aes256");
    g.throughput(Throughput::Elements(1));
    g.bench_function(BenchmarkId::from_parameter("memory"), |b| {
        b.iter(|| {
            vault
                .wrap_key(
                    &who,
                    "k",
                    Some(&info.version),
                    WrapAlgorithm::A256Kw,
                    black_box(&DEK),
                )
                .expect("wrap")
        });
    });
    g.bench_function(BenchmarkId::from_parameter("strongroom-aes"), |b| {
        b.iter(|| kw.wrap(black_box(&DEK)).expect("wrap"));
    });
    g.bench_function(BenchmarkId::from_parameter("aws-lc-rs+key-setup"), |b| {
        let mut out = [0u8; 40];
        b.iter(|| {
            AesKek::new(&AES_256, &secret)
                .expect("kek")
                .wrap(black_box(&DEK), &mut out)
                .expect("wrap")
                .len()
        });
    });
    g.finish();

    let mut g = c.benchmark_group("keyvault_unwrap/aes256");
    g.throughput(Throughput::Elements(1));
    g.bench_function(BenchmarkId::from_parameter("memory"), |b| {
        b.iter(|| {
            vault
                .unwrap_key(
                    &who,
                    "k",
                    &info.version,
                    WrapAlgorithm::A256Kw,
                    black_box(&wrapped),
                )
                .expect("unwrap")
        });
    });
    g.bench_function(BenchmarkId::from_parameter("strongroom-aes"), |b| {
        b.iter(|| kw.unwrap(black_box(&wrapped)).expect("unwrap"));
    });
    g.bench_function(BenchmarkId::from_parameter("aws-lc-rs+key-setup"), |b| {
        let mut out = [0u8; 32];
        b.iter(|| {
            AesKek::new(&AES_256, &secret)
                .expect("kek")
                .unwrap(black_box(&wrapped), &mut out)
                .expect("unwrap")
                .len()
        });
    });
    g.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(30)
}

// The macro-generated `pub fn benches()` carries no doc comment.
#[allow(missing_docs)]
mod entry {
    criterion::criterion_group! {
        name = benches;
        config = super::config();
        targets = super::aes, super::rsa_sizes
    }
}
criterion_main!(entry::benches);
