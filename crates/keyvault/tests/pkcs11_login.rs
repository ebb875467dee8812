//! Logging in to a token: a wrong PIN is refused, before and after another
//! vault of the same process logged in (PKCS#11 keeps one login per
//! process, so the second case is checked by the vault itself).
//!
//! One test in its own binary: it needs to be the first to log in to the
//! process's token, which other tests sharing the process would spoil.

use strongroom_keyvault::{Pkcs11Config, Pkcs11KeyVault, Pkcs11Pin, VaultError, VaultProperties};
use strongroom_test_tokens::{TokenKind, token};

fn open(kind: TokenKind, pin: &str) -> Result<Pkcs11KeyVault, VaultError> {
    let t = token(kind);
    Pkcs11KeyVault::open(
        Pkcs11Config {
            module: t.module().to_path_buf(),
            token_label: t.label().to_owned(),
            pin: Pkcs11Pin::new(pin),
        },
        VaultProperties::new("kv-login"),
    )
}

#[track_caller]
fn assert_wrong_pin(result: Result<Pkcs11KeyVault, VaultError>, pin: &str) {
    match result {
        Err(
            err @ VaultError::Token {
                operation: "C_Login",
                ..
            },
        ) => {
            let shown = format!("{err} {err:?}");
            assert!(shown.contains("PIN"), "{shown}");
            assert!(!shown.contains(pin), "the PIN must never be shown: {shown}");
        }
        other => panic!("expected a C_Login failure, got {other:?}"),
    }
}

#[test]
fn wrong_pin_is_refused_before_and_after_a_login() {
    for kind in [TokenKind::SoftHsm2, TokenKind::Kryoptic] {
        let right = token(kind).user_pin().to_owned();
        assert_wrong_pin(open(kind, "wrong-pin-1"), "wrong-pin-1");
        let vault = open(kind, &right).unwrap_or_else(|e| panic!("{kind:?}: {e}"));
        assert_eq!(vault.backend(), kind.backend_name());
        // The token is logged in now (the vault keeps a session open).
        assert_wrong_pin(open(kind, "wrong-pin-2"), "wrong-pin-2");
        let again = open(kind, &right).expect("the right PIN still opens");
        drop((vault, again));
    }
}
