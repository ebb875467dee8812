//! `Pkcs11KeyVault` on a SoftHSM2 token (Debian `softhsm2`, 2.6): the
//! conformance suite with RSA-OAEP (SHA-1), since SoftHSM2 2.6 does OAEP
//! with SHA-1 only, plus the token-specific tests and the SHA-256 refusal.
//!
//! The token is started by `strongroom_test_tokens::softhsm2()` in a
//! temporary directory, once per process; the tests fail if SoftHSM2 is
//! not installed.

mod common;
mod pkcs11_support;

use std::sync::Arc;

use strongroom_envelope::WrapAlgorithm;
use strongroom_keyvault::{
    KeyOptions, KeyType, KeyVault, ManualClock, Pkcs11KeyVault, VaultError, VaultProperties,
};
use strongroom_test_tokens::{TokenKind, softhsm2};

fn make(clock: Arc<ManualClock>) -> Box<dyn KeyVault> {
    let mut props = VaultProperties::new(common::VAULT);
    props.soft_delete_retention_days = 7;
    Box::new(
        Pkcs11KeyVault::open_with_clock(softhsm2().config(), props, clock)
            .unwrap_or_else(|e| panic!("open a vault on SoftHSM2: {e}")),
    )
}

keyvault_conformance!(make, rsa = WrapAlgorithm::RsaOaep);
pkcs11_token_tests!(TokenKind::SoftHsm2, rsa = WrapAlgorithm::RsaOaep);

/// SoftHSM2 2.6 lists CKM_RSA_PKCS_OAEP but takes SHA-1 only: RSA-OAEP-256
/// is refused as unsupported, naming the token, for wrap and for unwrap
/// (whatever the wrapped bytes), and SHA-1 keeps working on the same key.
#[test]
fn rsa_oaep_256_is_unsupported() {
    let (vault, _, admin) = pkcs11_support::vault(TokenKind::SoftHsm2);
    let info = vault
        .create_key(&admin, "cmk", KeyType::Rsa2048, KeyOptions::default())
        .unwrap();
    let unsupported = |err: VaultError| match err {
        VaultError::AlgorithmUnsupported { algorithm, backend } => {
            assert_eq!(algorithm, WrapAlgorithm::RsaOaep256);
            assert_eq!(backend, "SoftHSM2");
        }
        other => panic!("expected AlgorithmUnsupported, got {other:?}"),
    };
    unsupported(
        vault
            .wrap_key(&admin, "cmk", None, WrapAlgorithm::RsaOaep256, &[1; 32])
            .unwrap_err(),
    );
    let outside = pkcs11_support::wrap_locally(&info, WrapAlgorithm::RsaOaep256, &[1; 32]);
    for wrapped in [outside, vec![0; 256], Vec::new()] {
        unsupported(
            vault
                .unwrap_key(
                    &admin,
                    "cmk",
                    &info.version,
                    WrapAlgorithm::RsaOaep256,
                    &wrapped,
                )
                .unwrap_err(),
        );
    }
    let w = vault
        .wrap_key(&admin, "cmk", None, WrapAlgorithm::RsaOaep, &[2; 32])
        .unwrap();
    let back = vault
        .unwrap_key(
            &admin,
            "cmk",
            &w.version,
            WrapAlgorithm::RsaOaep,
            &w.wrapped,
        )
        .unwrap();
    assert_eq!(back.as_slice(), [2; 32]);
}
