//! `Pkcs11KeyVault` on a Kryoptic token (crates.io `kryoptic-lib`, built
//! as a PKCS#11 module by `crates/test-support/kryoptic-pkcs11`): the
//! conformance suite with RSA-OAEP-256, plus the token-specific tests and
//! SHA-1 OAEP on the same keys.
//!
//! The token is started by `strongroom_test_tokens::kryoptic()` in a
//! temporary directory, once per process; the tests fail if the module
//! has not been built (`cargo build -p strongroom-kryoptic-pkcs11`).

mod common;
mod pkcs11_support;

use std::sync::Arc;

use strongroom_envelope::WrapAlgorithm;
use strongroom_keyvault::{
    KeyOptions, KeyType, KeyVault, ManualClock, Pkcs11KeyVault, VaultProperties,
};
use strongroom_test_tokens::{TokenKind, kryoptic};

fn make(clock: Arc<ManualClock>) -> Box<dyn KeyVault> {
    let mut props = VaultProperties::new(common::VAULT);
    props.soft_delete_retention_days = 7;
    Box::new(
        Pkcs11KeyVault::open_with_clock(kryoptic().config(), props, clock)
            .unwrap_or_else(|e| panic!("open a vault on Kryoptic: {e}")),
    )
}

keyvault_conformance!(make);
pkcs11_token_tests!(TokenKind::Kryoptic, rsa = WrapAlgorithm::RsaOaep256);

/// Kryoptic does OAEP with SHA-256 and SHA-1: both on one key, each
/// interoperating with a local wrap, and neither unwrapping the other's.
#[test]
fn rsa_oaep_256_and_sha1_on_one_key() {
    let (vault, _, admin) = pkcs11_support::vault(TokenKind::Kryoptic);
    let info = vault
        .create_key(&admin, "cmk", KeyType::Rsa2048, KeyOptions::default())
        .unwrap();
    for (alg, other) in [
        (WrapAlgorithm::RsaOaep256, WrapAlgorithm::RsaOaep),
        (WrapAlgorithm::RsaOaep, WrapAlgorithm::RsaOaep256),
    ] {
        let w = vault.wrap_key(&admin, "cmk", None, alg, &[3; 32]).unwrap();
        let back = vault
            .unwrap_key(&admin, "cmk", &w.version, alg, &w.wrapped)
            .unwrap();
        assert_eq!(back.as_slice(), [3; 32]);
        let outside = pkcs11_support::wrap_locally(&info, alg, &[4; 32]);
        let back = vault
            .unwrap_key(&admin, "cmk", &info.version, alg, &outside)
            .unwrap();
        assert_eq!(back.as_slice(), [4; 32]);
        assert!(matches!(
            vault.unwrap_key(&admin, "cmk", &info.version, other, &outside),
            Err(strongroom_keyvault::VaultError::DecryptionFailed)
        ));
    }
}
