//! Key vault wrap / unwrap latency on PKCS#11 tokens (`Pkcs11KeyVault`):
//! SoftHSM2 2.6 and Kryoptic, each started by the bench in a temporary
//! directory (`strongroom-test-tokens`), keys generated inside the token.
//!
//! Groups (`Throughput::Elements(1)`, so criterion prints ops/s):
//! * `keyvault_pkcs11_wrap/<key>`, `keyvault_pkcs11_unwrap/<key>` for
//!   `rsa2048`, `rsa3072`, `rsa4096` and `aes256`;
//! * ids: `softhsm2` (RSA-OAEP with SHA-1: SoftHSM2 2.6 has no SHA-256
//!   OAEP) and `kryoptic` (RSA-OAEP-256); A256KW on both.
//!
//! Each call is the whole vault call: access check, key state, audit entry,
//! and in the token a fresh session, a key lookup by `CKA_ID`, the DEK as a
//! session object, `C_WrapKey` / `C_UnwrapKey`, and the DEK object's
//! destruction. Compare with `keyvault` (memory backend, same rules, keys
//! in software).
//!
//! Run: `cargo build --release -p strongroom-kryoptic-pkcs11` (Kryoptic's
//! own code runs unoptimised from a dev build; the bench takes
//! `target/release` first, else `target/debug`), then
//! `cargo bench -p strongroom-benches --bench keyvault_pkcs11`. Needs
//! SoftHSM2 installed (`apt-get install softhsm2`).

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_main};
use strongroom_envelope::WrapAlgorithm;
use strongroom_keyvault::{
    KeyOptions, KeyType, KeyVault, Permissions, Pkcs11KeyVault, Principal, VaultProperties,
};
use strongroom_test_tokens::TokenKind;

const DEK: [u8; 32] = [0x42; 32];

/// The tokens, with the RSA wrap algorithm each does.
const TOKENS: [(TokenKind, &str, WrapAlgorithm); 2] = [
    (TokenKind::SoftHsm2, "softhsm2", WrapAlgorithm::RsaOaep),
    (TokenKind::Kryoptic, "kryoptic", WrapAlgorithm::RsaOaep256),
];

fn vault(kind: TokenKind) -> (Pkcs11KeyVault, Principal) {
    let config = strongroom_test_tokens::token(kind).config();
    let vault = Pkcs11KeyVault::open(config, VaultProperties::new("bench")).expect("vault");
    let who = Principal::new("bench");
    vault
        .set_access_policy(&who, Permissions::all())
        .expect("policy");
    (vault, who)
}

fn keys(c: &mut Criterion) {
    for (key_type, name) in [
        (KeyType::Rsa2048, "rsa2048"),
        (KeyType::Rsa3072, "rsa3072"),
        (KeyType::Rsa4096, "rsa4096"),
        (KeyType::Aes256, "aes256"),
    ] {
        // One vault and key per token, made before either group is timed.
        let setups: Vec<_> = TOKENS
            .iter()
            .map(|&(kind, id, rsa)| {
                let algorithm = if key_type.is_rsa() {
                    rsa
                } else {
                    WrapAlgorithm::A256Kw
                };
                let (vault, who) = vault(kind);
                let info = vault
                    .create_key(&who, "k", key_type, KeyOptions::default())
                    .expect("create");
                let wrapped = vault
                    .wrap_key(&who, "k", None, algorithm, &DEK)
                    .expect("wrap")
                    .wrapped;
                let back = vault
                    .unwrap_key(&who, "k", &info.version, algorithm, &wrapped)
                    .expect("unwrap");
                assert_eq!(back.as_slice(), DEK, "{id}: round trip");
                (id, algorithm, vault, who, info.version, wrapped)
            })
            .collect();

        let mut g = c.benchmark_group(format!("keyvault_pkcs11_wrap/{name}"));
        g.throughput(Throughput::Elements(1));
        for (id, algorithm, vault, who, version, _) in &setups {
            g.bench_function(BenchmarkId::from_parameter(id), |b| {
                b.iter(|| {
                    vault
                        .wrap_key(who, "k", Some(version), *algorithm, black_box(&DEK))
                        .expect("wrap")
                });
            });
        }
        g.finish();

        let mut g = c.benchmark_group(format!("keyvault_pkcs11_unwrap/{name}"));
        g.throughput(Throughput::Elements(1));
        for (id, algorithm, vault, who, version, wrapped) in &setups {
            g.bench_function(BenchmarkId::from_parameter(id), |b| {
                b.iter(|| {
                    vault
                        .unwrap_key(who, "k", version, *algorithm, black_box(wrapped))
                        .expect("unwrap")
                });
            });
        }
        g.finish();
    }
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
        targets = super::keys
    }
}
criterion_main!(entry::benches);
